/*
 * idx_manifest.c -- manifests: the list of files to index with their
 * catalog data, as CSV (RFC 4180, read by a small state machine here) or as
 * JSON Lines (each line parsed by jansson).  Both end in add_record(),
 * which resolves the path and appends one item; a failed parse rolls the
 * list back to what it held at entry.  See idx.h.
 */
#include "idx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* ------------------------------------------------------------------------ */
/* Messages, records and paths                                              */
/* ------------------------------------------------------------------------ */

/* What one parse needs besides its input.  All borrowed. */
typedef struct mctx {
    const char *name;     /* the manifest in messages, or NULL ("line N: ") */
    const char *base_dir; /* relative paths are joined to it; NULL or "": kept */
    idx_list_t *list;     /* where the items go */
    char *err;            /* the caller's message buffer (may be NULL) */
    size_t errlen;
} mctx_t;

/*
 * Write "NAME:LINE: message" (or "line LINE: message" without a name;
 * line 0: no line part) into the caller's buffer and return code.  Control
 * characters, which could come from a file name or from jansson quoting the
 * input, are replaced by '?' so the message stays on one line.
 */
static idx_err_t merr(const mctx_t *m, size_t line, idx_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static idx_err_t merr(const mctx_t *m, size_t line, idx_err_t code, const char *fmt, ...)
{
    if (!m->err || !m->errlen) return code;
    int n;
    if (m->name && line)
        n = snprintf(m->err, m->errlen, "%s:%zu: ", m->name, line);
    else if (m->name)
        n = snprintf(m->err, m->errlen, "%s: ", m->name);
    else if (line)
        n = snprintf(m->err, m->errlen, "line %zu: ", line);
    else
        n = snprintf(m->err, m->errlen, "%s", "");
    if (n >= 0 && (size_t)n < m->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->err + n, m->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    for (char *p = m->err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return code;
}

/* The fields of an item, in the order of idx_item_t. */
enum { ROLE_PATH, ROLE_EXTERNAL_ID, ROLE_TITLE, ROLE_ARTIST, ROLE_TENANT, N_ROLES };

static const char *const role_names[N_ROLES] = {"path", "external_id", "title", "artist",
                                                 "tenant"};

/*
 * The path as it goes into the list: absolute paths and all paths without
 * a base folder as written; others without leading "./" (unless nothing
 * else is left) and joined to the base folder.  Caller frees; NULL when
 * out of memory.
 */
static char *resolve_path(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir || !base_dir[0]) return strdup(path);
    const char *p = path;
    while (p[0] == '.' && p[1] == '/') {
        p += 2;
        while (*p == '/') p++;
    }
    if (!*p) p = path;
    return idxi_path_join(base_dir, p);
}

/*
 * Append one item built from val[] (indexed by ROLE_*; NULL or "" is
 * absent) to the list.  `line` is where the record starts, for messages.
 * IDX_ERR_PARSE when the path is empty, IDX_ERR_NOMEM.
 */
static idx_err_t add_record(const mctx_t *m, size_t line, const char *const val[N_ROLES])
{
    if (!val[ROLE_PATH] || !val[ROLE_PATH][0])
        return merr(m, line, IDX_ERR_PARSE, "the path is empty");
    idx_item_t it = {0};
    char **dst[N_ROLES] = {&it.path, &it.external_id, &it.title, &it.artist, &it.tenant};
    int fail = 0;
    it.path = resolve_path(m->base_dir, val[ROLE_PATH]);
    if (!it.path) fail = 1;
    for (int r = ROLE_PATH + 1; r < N_ROLES; r++) {
        if (!val[r] || !val[r][0]) continue;
        *dst[r] = strdup(val[r]);
        if (!*dst[r]) fail = 1;
    }
    idx_err_t rc = fail ? IDX_ERR_NOMEM : idxi_list_push(m->list, &it);
    idxi_item_clear(&it); /* a no-op after a successful push */
    if (rc != IDX_OK) return merr(m, line, rc, "out of memory");
    return IDX_OK;
}

/* ------------------------------------------------------------------------ */
/* CSV                                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The CSV reader: one record at a time.  The text of the first `keep`
 * fields of the record is unquoted into buf, each NUL-terminated, starting
 * at off[i]; later fields are only counted and checked.
 */
typedef struct csv {
    const char *p, *end; /* the unread input */
    size_t line;         /* the line p is on, 1-based */
    size_t rec_line;     /* the line the current record starts on */
    size_t nfields;      /* fields of the current record so far */
    size_t flen;         /* bytes of the current field so far */
    size_t keep;         /* keep the text of this many fields (<= IDX_MAX_COLUMNS) */
    size_t *off;         /* IDX_MAX_COLUMNS entries, owned */
    char *buf;           /* owned */
    size_t len, cap;
} csv_t;

/* Room for `extra` more bytes in c->buf.  The buffer never exceeds
 * IDX_MAX_COLUMNS * (IDX_MAX_FIELD + 1) bytes, so no overflow is possible. */
static idx_err_t csv_reserve(csv_t *c, size_t extra)
{
    if (c->cap - c->len >= extra) return IDX_OK;
    size_t ncap = c->cap ? c->cap : 4096;
    while (ncap - c->len < extra) ncap *= 2;
    char *p = realloc(c->buf, ncap);
    if (!p) return IDX_ERR_NOMEM;
    c->buf = p;
    c->cap = ncap;
    return IDX_OK;
}

/* Append s[0 .. n-1] to the current field: checks the length limit and NUL
 * bytes, and keeps the text if the field is kept. */
static idx_err_t csv_put(csv_t *c, const mctx_t *m, const char *s, size_t n)
{
    if (n > IDX_MAX_FIELD - c->flen)
        return merr(m, c->rec_line, IDX_ERR_PARSE,
                    "field %zu is longer than the limit of %d bytes", c->nfields + 1,
                    IDX_MAX_FIELD);
    if (n && memchr(s, '\0', n))
        return merr(m, c->rec_line, IDX_ERR_PARSE, "field %zu holds a NUL byte",
                    c->nfields + 1);
    c->flen += n;
    if (c->nfields >= c->keep || n == 0) return IDX_OK;
    if (csv_reserve(c, n) != IDX_OK) return merr(m, c->rec_line, IDX_ERR_NOMEM, "out of memory");
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    return IDX_OK;
}

/* A line break ends an unquoted field: LF, or CR before LF or at the end. */
static int csv_at_break(const csv_t *c, const char *q)
{
    return *q == '\n' || (*q == '\r' && (q + 1 == c->end || q[1] == '\n'));
}

/* The fields of a quoted field: from after the opening quote to after the
 * closing one, "" standing for one quote; counts the line breaks inside. */
static idx_err_t csv_quoted(csv_t *c, const mctx_t *m)
{
    size_t open_line = c->line;
    c->p++;
    for (;;) {
        const char *q = memchr(c->p, '"', (size_t)(c->end - c->p));
        const char *stop = q ? q : c->end;
        for (const char *s = c->p; (s = memchr(s, '\n', (size_t)(stop - s))) != NULL; s++)
            c->line++;
        if (!q)
            return merr(m, c->rec_line, IDX_ERR_PARSE,
                        "field %zu opens a quote on line %zu that is never closed",
                        c->nfields + 1, open_line);
        idx_err_t rc = csv_put(c, m, c->p, (size_t)(q - c->p));
        if (rc != IDX_OK) return rc;
        c->p = q + 1;
        if (c->p < c->end && *c->p == '"') { /* "" */
            rc = csv_put(c, m, "\"", 1);
            if (rc != IDX_OK) return rc;
            c->p++;
            continue;
        }
        break;
    }
    if (c->p < c->end && *c->p != ',' && !csv_at_break(c, c->p))
        return merr(m, c->rec_line, IDX_ERR_PARSE,
                    "field %zu has text after its closing quote (a quote inside a quoted "
                    "field is written as two quotes: \"\")",
                    c->nfields + 1);
    return IDX_OK;
}

/*
 * Read the next record, skipping blank lines (only spaces, tabs and CRs).
 * *got is 0 at the end of the input, else 1 with c->nfields fields, the
 * first min(nfields, keep) of them in c->buf.
 */
static idx_err_t csv_next(csv_t *c, const mctx_t *m, int *got)
{
    *got = 0;
    for (;;) {
        const char *q = c->p;
        while (q < c->end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == c->end) {
            c->p = q;
            return IDX_OK;
        }
        if (*q != '\n') break;
        c->p = q + 1;
        c->line++;
    }
    c->rec_line = c->line;
    c->nfields = 0;
    c->len = 0;
    for (;;) {
        idx_err_t rc;
        c->flen = 0;
        if (c->nfields < c->keep) c->off[c->nfields] = c->len;
        if (c->p < c->end && *c->p == '"') {
            rc = csv_quoted(c, m);
        } else {
            const char *q = c->p;
            while (q < c->end && *q != ',' && !csv_at_break(c, q)) q++;
            rc = csv_put(c, m, c->p, (size_t)(q - c->p));
            c->p = q;
        }
        if (rc != IDX_OK) return rc;
        if (c->nfields < c->keep) {
            if (csv_reserve(c, 1) != IDX_OK)
                return merr(m, c->rec_line, IDX_ERR_NOMEM, "out of memory");
            c->buf[c->len++] = '\0';
        }
        c->nfields++;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '\r') c->p++;
        if (c->p < c->end && *c->p == '\n') {
            c->p++;
            c->line++;
        }
        break;
    }
    *got = 1;
    return IDX_OK;
}

/* The ROLE_* a header name stands for (spaces and tabs around it ignored,
 * any case), or -1 for a column we ignore. */
static int csv_role(const char *name)
{
    static const struct {
        const char *name;
        int role;
    } names[] = {
        {"path", ROLE_PATH},   {"external_id", ROLE_EXTERNAL_ID}, {"isrc", ROLE_EXTERNAL_ID},
        {"id", ROLE_EXTERNAL_ID}, {"title", ROLE_TITLE},          {"artist", ROLE_ARTIST},
        {"tenant", ROLE_TENANT},
    };
    while (*name == ' ' || *name == '\t') name++;
    size_t n = strlen(name);
    while (n && (name[n - 1] == ' ' || name[n - 1] == '\t')) n--;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncasecmp(name, names[i].name, n) == 0)
            return names[i].role;
    return -1;
}

#define NO_COLUMN SIZE_MAX

/*
 * A CSV manifest: the header maps columns to roles, then each record
 * becomes an item.  Items are appended as they are read; the caller rolls
 * back on failure.
 */
static idx_err_t parse_csv(const char *data, size_t len, const mctx_t *m)
{
    idx_err_t rc = IDX_OK;
    csv_t c = {.p = data, .end = data + len, .line = 1, .keep = IDX_MAX_COLUMNS};
    size_t col[N_ROLES];
    for (int r = 0; r < N_ROLES; r++) col[r] = NO_COLUMN;
    int got;

    c.off = malloc(IDX_MAX_COLUMNS * sizeof *c.off);
    if (!c.off) {
        rc = merr(m, 0, IDX_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = csv_next(&c, m, &got);
    if (rc != IDX_OK) goto out;
    if (!got) {
        rc = merr(m, 0, IDX_ERR_PARSE,
                  "the CSV manifest is empty: its first row must be a header naming the "
                  "columns (path, and optionally external_id, title, artist, tenant)");
        goto out;
    }
    size_t ncols = c.nfields;
    if (ncols > IDX_MAX_COLUMNS) {
        rc = merr(m, c.rec_line, IDX_ERR_PARSE, "the header has %zu columns, more than the limit of %d",
                  ncols, IDX_MAX_COLUMNS);
        goto out;
    }
    for (size_t i = 0; i < ncols; i++) {
        int r = csv_role(c.buf + c.off[i]);
        if (r < 0) continue;
        if (col[r] != NO_COLUMN) {
            rc = merr(m, c.rec_line, IDX_ERR_PARSE,
                      "the header names the %s column twice (columns %zu and %zu)",
                      role_names[r], col[r] + 1, i + 1);
            goto out;
        }
        col[r] = i;
    }
    if (col[ROLE_PATH] == NO_COLUMN) {
        rc = merr(m, c.rec_line, IDX_ERR_PARSE,
                  "the header has no path column (the first row must name the columns: "
                  "path, and optionally external_id, title, artist, tenant)");
        goto out;
    }
    c.keep = ncols;
    for (;;) {
        rc = csv_next(&c, m, &got);
        if (rc != IDX_OK || !got) goto out;
        if (c.nfields != ncols) {
            rc = merr(m, c.rec_line, IDX_ERR_PARSE, "the row has %zu field%s, the header has %zu",
                      c.nfields, c.nfields == 1 ? "" : "s", ncols);
            goto out;
        }
        const char *val[N_ROLES];
        for (int r = 0; r < N_ROLES; r++)
            val[r] = col[r] == NO_COLUMN ? NULL : c.buf + c.off[col[r]];
        rc = add_record(m, c.rec_line, val);
        if (rc != IDX_OK) goto out;
    }
out:
    free(c.off);
    free(c.buf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* JSON Lines                                                               */
/* ------------------------------------------------------------------------ */

/* "an array", "a number", ... for messages. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/*
 * The value of `key` in object o as text into *out (NULL when missing or
 * null).  Strings are borrowed from o; for external_id, an integer (or a
 * real with an integral value below 2^53) is written in decimal into
 * num[numlen].  Anything else is an IDX_ERR_PARSE naming the key.
 */
static idx_err_t json_text(const mctx_t *m, size_t line, json_t *o, int role, char *num,
                           size_t numlen, const char **out)
{
    const char *key = role_names[role];
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return IDX_OK;
    if (json_is_string(v)) {
        if (json_string_length(v) > IDX_MAX_FIELD)
            return merr(m, line, IDX_ERR_PARSE, "\"%s\" is longer than the limit of %d bytes",
                        key, IDX_MAX_FIELD);
        *out = json_string_value(v);
        return IDX_OK;
    }
    if (role == ROLE_EXTERNAL_ID && json_is_integer(v)) {
        snprintf(num, numlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = num;
        return IDX_OK;
    }
    if (role == ROLE_EXTERNAL_ID && json_is_real(v)) {
        double d = json_real_value(v);
        const double exact = 9007199254740992.0; /* 2^53 */
        if (d > -exact && d < exact && (double)(long long)d == d) {
            snprintf(num, numlen, "%lld", (long long)d);
            *out = num;
            return IDX_OK;
        }
        return merr(m, line, IDX_ERR_PARSE,
                    "\"external_id\" is the number %.17g, which is not an exact integer "
                    "(write the id as a string)",
                    d);
    }
    return merr(m, line, IDX_ERR_PARSE, "\"%s\" is %s, not a string%s", key, json_kind(v),
                role == ROLE_EXTERNAL_ID ? " or a number" : "");
}

/* One line of JSON Lines, s[0 .. n-1] without its line break: one item. */
static idx_err_t jsonl_record(const mctx_t *m, size_t line, const char *s, size_t n)
{
    idx_err_t rc = IDX_OK;
    json_error_t je;
    json_t *o = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return merr(m, line, IDX_ERR_NOMEM, "out of memory");
        return merr(m, line, IDX_ERR_PARSE, "not valid JSON: %s (column %d)", je.text,
                    je.column);
    }
    if (!json_is_object(o)) {
        rc = merr(m, line, IDX_ERR_PARSE, "the line is %s, not a JSON object%s", json_kind(o),
                  json_is_array(o) ? " (JSON Lines holds one object per line, not an array)"
                                   : "");
        goto out;
    }
    json_t *p = json_object_get(o, "path");
    if (!p || json_is_null(p)) {
        rc = merr(m, line, IDX_ERR_PARSE, "the object has no \"path\"");
        goto out;
    }
    if (!json_is_string(p)) {
        rc = merr(m, line, IDX_ERR_PARSE, "\"path\" is %s, not a string", json_kind(p));
        goto out;
    }
    const char *val[N_ROLES];
    char num[32];
    for (int r = 0; r < N_ROLES; r++) {
        rc = json_text(m, line, o, r, num, sizeof num, &val[r]);
        if (rc != IDX_OK) goto out;
    }
    rc = add_record(m, line, val);
out:
    json_decref(o);
    return rc;
}

/* A JSON Lines manifest: each line that is not blank is one item. */
static idx_err_t parse_jsonl(const char *data, size_t len, const mctx_t *m)
{
    const char *p = data, *end = data + len;
    size_t line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p;
        size_t n = (size_t)((nl ? nl : end) - s);
        p = nl ? nl + 1 : end; /* a CR before the LF is JSON whitespace */
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
        if (i == n) continue;
        if (n > IDX_MAX_JSONL_LINE)
            return merr(m, line, IDX_ERR_PARSE, "the line is %zu bytes, more than the limit of %d",
                        n, IDX_MAX_JSONL_LINE);
        idx_err_t rc = jsonl_record(m, line, s, n);
        if (rc != IDX_OK) return rc;
    }
    return IDX_OK;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */
/* ------------------------------------------------------------------------ */

/* The first byte that is not a space, tab, CR or LF is '{'. */
static int looks_like_jsonl(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') continue;
        return ch == '{';
    }
    return 0;
}

/* idx_manifest_parse() with `name` for messages (NULL: "line N: "). */
static idx_err_t manifest_parse(const char *data, size_t len, idx_format_t fmt,
                                const char *base_dir, const char *name, idx_list_t *list,
                                char *err, size_t errlen)
{
    mctx_t m = {.name = name, .base_dir = base_dir, .list = list, .err = err, .errlen = errlen};
    if (!list) return merr(&m, 0, IDX_ERR_INVALID, "no list to add the manifest's items to");
    if (!data && len) return merr(&m, 0, IDX_ERR_INVALID, "no manifest data");
    if (len > IDX_MAX_MANIFEST)
        return merr(&m, 0, IDX_ERR_INVALID,
                    "the manifest is %zu bytes, more than the limit of %zu (split it into "
                    "several manifests)",
                    len, IDX_MAX_MANIFEST);
    if (!data) data = "";
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    if (fmt == IDX_FORMAT_AUTO) fmt = looks_like_jsonl(data, len) ? IDX_FORMAT_JSONL : IDX_FORMAT_CSV;
    size_t at_entry = list->count;
    idx_err_t rc;
    if (fmt == IDX_FORMAT_CSV)
        rc = parse_csv(data, len, &m);
    else if (fmt == IDX_FORMAT_JSONL)
        rc = parse_jsonl(data, len, &m);
    else
        rc = merr(&m, 0, IDX_ERR_INVALID, "unknown manifest format %d", (int)fmt);
    if (rc != IDX_OK) idxi_list_truncate(list, at_entry);
    return rc;
}

idx_err_t idx_manifest_parse(const char *data, size_t len, idx_format_t fmt,
                             const char *base_dir, idx_list_t *list, char *err, size_t errlen)
{
    return manifest_parse(data, len, fmt, base_dir, NULL, list, err, errlen);
}

/*
 * Read the whole of `file` (a regular file, or a pipe) into a new buffer
 * *out (caller frees) of *outlen bytes.  The size is checked before and
 * while reading, so a file over IDX_MAX_MANIFEST is refused without being
 * read into memory whole.
 */
static idx_err_t read_file(const char *file, char **out, size_t *outlen, char *err,
                           size_t errlen)
{
    idx_err_t rc = IDX_OK;
    char *buf = NULL, eb[128];
    size_t len = 0, cap;
    struct stat st;
    *out = NULL;
    *outlen = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot open the manifest: %s", file,
                          strerror_r(errno, eb, sizeof eb));
    if (fstat(fd, &st) != 0) {
        rc = idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot examine the manifest: %s", file,
                        strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = idxi_error(IDX_ERR_IO, err, errlen, "%s: is a folder, not a manifest file", file);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > IDX_MAX_MANIFEST) {
        rc = idxi_error(IDX_ERR_INVALID, err, errlen,
                        "%s: the manifest is %lld bytes, more than the limit of %zu (split it "
                        "into several manifests)",
                        file, (long long)st.st_size, IDX_MAX_MANIFEST);
        goto out;
    }
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    buf = malloc(cap);
    if (!buf) {
        rc = idxi_error(IDX_ERR_NOMEM, err, errlen, "%s: out of memory", file);
        goto out;
    }
    for (;;) {
        if (len == cap) { /* grown since fstat, or a pipe */
            size_t ncap = cap * 2 > IDX_MAX_MANIFEST + 1 ? IDX_MAX_MANIFEST + 1 : cap * 2;
            if (ncap <= len) {
                rc = idxi_error(IDX_ERR_INVALID, err, errlen,
                                "%s: the manifest is more than the limit of %zu bytes (split "
                                "it into several manifests)",
                                file, IDX_MAX_MANIFEST);
                goto out;
            }
            char *p = realloc(buf, ncap);
            if (!p) {
                rc = idxi_error(IDX_ERR_NOMEM, err, errlen, "%s: out of memory", file);
                goto out;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot read the manifest: %s", file,
                            strerror_r(errno, eb, sizeof eb));
            goto out;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > IDX_MAX_MANIFEST) {
        rc = idxi_error(IDX_ERR_INVALID, err, errlen,
                        "%s: the manifest is more than the limit of %zu bytes (split it into "
                        "several manifests)",
                        file, IDX_MAX_MANIFEST);
        goto out;
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* The name ends in .jsonl, .ndjson or .json, in any case. */
static int has_jsonl_name(const char *file)
{
    static const char *const ext[] = {".jsonl", ".ndjson", ".json"};
    size_t n = strlen(file);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcasecmp(file + n - e, ext[i]) == 0) return 1;
    }
    return 0;
}

idx_err_t idx_manifest_load(const char *file, idx_list_t *list, char *err, size_t errlen)
{
    if (!file || !file[0]) return idxi_error(IDX_ERR_INVALID, err, errlen, "no manifest file named");
    if (!list)
        return idxi_error(IDX_ERR_INVALID, err, errlen, "%s: no list to add the items to", file);
    char *data = NULL, *base = NULL;
    size_t len;
    idx_err_t rc = read_file(file, &data, &len, err, errlen);
    if (rc != IDX_OK) goto out;
    const char *slash = strrchr(file, '/');
    if (slash) {
        base = strndup(file, slash == file ? 1 : (size_t)(slash - file));
        if (!base) {
            rc = idxi_error(IDX_ERR_NOMEM, err, errlen, "%s: out of memory", file);
            goto out;
        }
    }
    rc = manifest_parse(data, len, has_jsonl_name(file) ? IDX_FORMAT_JSONL : IDX_FORMAT_AUTO,
                        base, file, list, err, errlen);
out:
    free(data);
    free(base);
    return rc;
}
