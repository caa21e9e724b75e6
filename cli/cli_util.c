/* cli_util.c -- helpers shared by the subcommands; see cli.h. */
#include "cli.h"
#include "em_db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
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
