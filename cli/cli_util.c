/* cli_util.c -- helpers shared by the subcommands; see cli.h. */
#include "cli.h"
#include "em_db.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "earmark %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage(const char *cmd, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "earmark %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\nhint: earmark %s --help lists the options\n", usage, cmd);
    return EXIT_USAGE;
}

int cli_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

void cli_json_string(FILE *f, const char *s)
{
    /* jansson writes the literal (quotes, controls, every escape JSON
     * wants) and refuses text that is not UTF-8: a file name's stray bytes
     * become \xNN first, so the line is always valid JSON in UTF-8 */
    char *valid = cli_text_dup(s, CLI_ESCAPE_UTF8);
    json_t *j = valid ? json_string(valid) : NULL;
    if (!j || json_dumpf(j, f, JSON_ENCODE_ANY) != 0) fputs("null", f);
    json_decref(j);
    free(valid);
}

size_t cli_utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0; /* a continuation byte, 0xc0, 0xc1 (overlong) or 0xf5.. */
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

int cli_utf8_valid(const char *s, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    uint32_t cp;
    while (i < n) {
        size_t l = cli_utf8_char(u + i, n - i, &cp);
        if (!l) {
            if (bad) *bad = i;
            return 0;
        }
        i += l;
    }
    return 1;
}

/* Would a terminal act on code point cp (CLI_ESCAPE_TERMINAL)? */
static int escape_shown(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == '\\' ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t cli_text_escape(char *out, size_t outlen, const char *s, cli_escape_t how)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)u), i = 0;
    size_t o = 0; /* the length of the whole escaped text so far */
    size_t w = 0; /* how much of it is in out (w < o once it was cut) */
    while (i < n) {
        char piece[8];
        int plen;
        uint32_t cp;
        size_t l = cli_utf8_char(u + i, n - i, &cp);
        if (!l) {
            plen = snprintf(piece, sizeof piece, "\\x%02x", u[i]);
            l = 1;
        } else if (how == CLI_ESCAPE_TERMINAL && escape_shown(cp)) {
            if (cp == '\n') plen = snprintf(piece, sizeof piece, "\\n");
            else if (cp == '\r') plen = snprintf(piece, sizeof piece, "\\r");
            else if (cp == '\t') plen = snprintf(piece, sizeof piece, "\\t");
            else if (cp == '\\') plen = snprintf(piece, sizeof piece, "\\\\");
            else if (cp < 0x80) plen = snprintf(piece, sizeof piece, "\\x%02x", (unsigned)cp);
            else plen = snprintf(piece, sizeof piece, "\\u%04x", (unsigned)cp);
        } else {
            memcpy(piece, u + i, l);
            plen = (int)l;
        }
        if (w == o && o + (size_t)plen < outlen) {
            memcpy(out + w, piece, (size_t)plen);
            w += (size_t)plen;
        }
        o += (size_t)plen;
        i += l;
    }
    if (outlen) out[w] = '\0';
    return o;
}

char *cli_text_dup(const char *s, cli_escape_t how)
{
    size_t len = cli_text_escape(NULL, 0, s, how);
    char *t = malloc(len + 1);
    if (t) cli_text_escape(t, len + 1, s, how);
    return t;
}

const char *cli_text(cli_texts_t *keep, const char *s)
{
    static const char nomem[] = "(out of memory)";
    if (keep->n == keep->cap) {
        size_t cap = keep->cap ? 2 * keep->cap : 16;
        char **v = realloc(keep->v, cap * sizeof *v);
        if (!v) return nomem;
        keep->v = v;
        keep->cap = cap;
    }
    char *t = cli_text_dup(s, CLI_ESCAPE_TERMINAL);
    if (!t) return nomem;
    keep->v[keep->n++] = t;
    return t;
}

void cli_texts_free(cli_texts_t *keep)
{
    for (size_t i = 0; i < keep->n; i++) free(keep->v[i]);
    free(keep->v);
    keep->v = NULL;
    keep->n = keep->cap = 0;
}

int cli_isatty(int fd)
{
    return isatty(fd);
}

struct db_conn *cli_db_open(const char *cmd)
{
    char conninfo[4096], err[2048] = "";
    db_conn_t *conn = NULL;
    if (db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK) {
        cli_error(cmd, "cannot tell where the database is: the current folder is unreadable "
                       "or $EARMARK_DB is too long");
        return NULL;
    }
    if (db_connect(conninfo, &conn, err, sizeof err) != DB_OK ||
        db_schema_check(conn, DB_SCHEMA_VERSION, err, sizeof err) != DB_OK) {
        cli_error(cmd, "%s", err);
        db_close(conn);
        return NULL;
    }
    return conn;
}
