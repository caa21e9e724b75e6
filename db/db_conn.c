/*
 * db_conn.c -- errors, where the database is, connecting with retry,
 * simple statements, liveness and reconnection.  See em_db.h.
 */
#include "db_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *text;
} errors[] = {
    [DB_OK] = {"ok", "success"},
    [DB_ERR_NOMEM] = {"nomem", "out of memory"},
    [DB_ERR_INVALID] = {"invalid", "invalid argument"},
    [DB_ERR_CONNECT] = {"connect", "cannot reach the database"},
    [DB_ERR_QUERY] = {"query", "the database refused a statement"},
    [DB_ERR_SCHEMA] = {"schema", "the database schema does not match this build"},
    [DB_ERR_CLUSTER] = {"cluster", "the private database cluster failed"},
    [DB_ERR_IO] = {"io", "cannot read or write a file"},
    [DB_ERR_CORRUPT] = {"corrupt", "stored data does not decode"},
};

#define N_ERRORS (sizeof errors / sizeof errors[0])

const char *db_strerror(db_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown error";
    return errors[code].text;
}

const char *db_errname(db_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown";
    return errors[code].name;
}

db_err_t db_errorf(db_err_t code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void dbi_pg_message(PGconn *pg, char *buf, size_t len)
{
    const char *m = pg ? PQerrorMessage(pg) : "no connection";
    if (!m || !*m) m = "unknown error";
    /* The server's severity is noise in a message that already says what
     * failed. */
    static const char *const prefixes[] = {"ERROR:  ", "FATAL:  ", "PANIC:  "};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(m, prefixes[i], n)) {
            m += n;
            break;
        }
    }
    size_t n = strcspn(m, "\n");
    snprintf(buf, len, "%.*s", (int)n, m);
}

db_err_t dbi_pg_error(db_err_t code, PGconn *pg, const PGresult *res,
                      char *err, size_t errlen, const char *prefix)
{
    char conn_msg[512];
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!primary) {
        dbi_pg_message(pg, conn_msg, sizeof conn_msg);
        primary = conn_msg;
    }
    if (!pg || PQstatus(pg) == CONNECTION_BAD) code = DB_ERR_CONNECT;
    if (!err || !errlen) return code;
    size_t off = 0;
#define DBI_APPEND(...)                                                   \
    do {                                                                  \
        if (off < errlen) {                                               \
            int w = snprintf(err + off, errlen - off, __VA_ARGS__);       \
            if (w > 0) off += (size_t)w;                                  \
        }                                                                 \
    } while (0)
    if (prefix) DBI_APPEND("%s: ", prefix);
    DBI_APPEND("%s", primary);
    if (state) DBI_APPEND(" (SQLSTATE %s)", state);
    if (detail) DBI_APPEND("\ndetail: %s", detail);
    if (hint) DBI_APPEND("\nhint: %s", hint);
#undef DBI_APPEND
    return code;
}

double dbi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dbi_sleep(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */
/* Where the database is                                                    */
/* ------------------------------------------------------------------------ */

db_err_t dbi_abspath(const char *path, char *buf, size_t len)
{
    char tmp[4096];
    if (!path || !*path || !buf || !len) return DB_ERR_INVALID;
    if (path[0] == '/') {
        if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return DB_ERR_INVALID;
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) return DB_ERR_INVALID;
        if (snprintf(tmp, sizeof tmp, "%s/%s", cwd, path) >= (int)sizeof tmp)
            return DB_ERR_INVALID;
    }
    /* Copy component by component, dropping empty and "." ones.  ".." is
     * kept: resolving it would need the symbolic links on the way. */
    size_t o = 0;
    const char *p = tmp;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        size_t n = strcspn(p, "/");
        if (!(n == 1 && p[0] == '.')) {
            if (o + 1 + n + 1 > len) return DB_ERR_INVALID;
            buf[o++] = '/';
            memcpy(buf + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0) {
        if (len < 2) return DB_ERR_INVALID;
        buf[o++] = '/';
    }
    buf[o] = '\0';
    return DB_OK;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

db_err_t db_var_dir_resolve(char *buf, size_t len)
{
    const char *var = env_nonempty("EARMARK_VAR");
    return dbi_abspath(var ? var : "var", buf, len);
}

/* Append value to a conninfo string in single quotes, escaping ' and \. */
static int conninfo_quote(char *buf, size_t len, size_t *off, const char *value)
{
    size_t o = *off;
    if (o + 1 >= len) return -1;
    buf[o++] = '\'';
    for (const char *c = value; *c; c++) {
        if (*c == '\'' || *c == '\\') {
            if (o + 1 >= len) return -1;
            buf[o++] = '\\';
        }
        if (o + 1 >= len) return -1;
        buf[o++] = *c;
    }
    if (o + 2 > len) return -1;
    buf[o++] = '\'';
    buf[o] = '\0';
    *off = o;
    return 0;
}

db_err_t dbi_cluster_conninfo(const char *var_dir, const char *dbname, char *buf, size_t len)
{
    char var[4096], pg_dir[4096];
    if (!var_dir || !dbname || !buf) return DB_ERR_INVALID;
    if (dbi_abspath(var_dir, var, sizeof var) != DB_OK) return DB_ERR_INVALID;
    if (snprintf(pg_dir, sizeof pg_dir, "%s/pg", strcmp(var, "/") ? var : "") >= (int)sizeof pg_dir)
        return DB_ERR_INVALID;
    size_t off = 0;
    int w = snprintf(buf, len, "host=");
    if (w < 0 || (size_t)w >= len) return DB_ERR_INVALID;
    off = (size_t)w;
    if (conninfo_quote(buf, len, &off, pg_dir)) return DB_ERR_INVALID;
    w = snprintf(buf + off, len - off, " port=%d dbname=%s user=%s", DBI_CLUSTER_PORT, dbname,
                 DBI_CLUSTER_NAME);
    if (w < 0 || (size_t)w >= len - off) return DB_ERR_INVALID;
    return DB_OK;
}

db_err_t db_cluster_conninfo(const char *var_dir, char *buf, size_t len)
{
    return dbi_cluster_conninfo(var_dir, DBI_CLUSTER_NAME, buf, len);
}

db_err_t db_conninfo_resolve(char *buf, size_t len)
{
    static const char *const pgvars[] = {"PGHOST",   "PGHOSTADDR", "PGPORT",
                                         "PGDATABASE", "PGUSER",  "PGSERVICE"};
    if (!buf || !len) return DB_ERR_INVALID;
    const char *db = env_nonempty("EARMARK_DB");
    if (db) return snprintf(buf, len, "%s", db) < (int)len ? DB_OK : DB_ERR_INVALID;
    for (size_t i = 0; i < sizeof pgvars / sizeof pgvars[0]; i++) {
        if (env_nonempty(pgvars[i])) {
            buf[0] = '\0';
            return DB_OK;
        }
    }
    char var[4096];
    db_err_t rc = db_var_dir_resolve(var, sizeof var);
    if (rc != DB_OK) return rc;
    return db_cluster_conninfo(var, buf, len);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

void db_connect_opts_default(db_connect_opts_t *opts)
{
    opts->max_wait_s = 10.0;
    opts->max_attempts = 0;
    opts->connect_timeout_s = 5;
}

/* Server notices ("relation already exists, skipping") would go to stderr
 * through libpq's default processor; a library keeps quiet. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static const char *CONNECT_HINT =
    "hint: is the database running? `earmark db start` starts the private one";

db_err_t dbi_connect_pg(const char *conninfo, const db_connect_opts_t *opts,
                        PGconn **pg_out, char *err, size_t errlen)
{
    db_connect_opts_t o;
    if (opts) o = *opts;
    else db_connect_opts_default(&o);
    if (!conninfo || !pg_out || o.max_wait_s < 0 || o.max_attempts < 0)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_connect");
    *pg_out = NULL;

    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &perr);
    if (!parsed) {
        if (!perr) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        size_t n = strcspn(perr, "\n");
        db_errorf(DB_ERR_INVALID, err, errlen,
                  "invalid connection string: %.*s\n"
                  "hint: EARMARK_DB takes a libpq connection string such as "
                  "\"host=/run/postgresql dbname=earmark\" or a postgresql:// URI",
                  (int)n, perr);
        PQfreemem(perr);
        return DB_ERR_INVALID;
    }
    PQconninfoFree(parsed);

    /* Keywords before the expanded conninfo ("dbname") are defaults the
     * conninfo's own parameters override. */
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", o.connect_timeout_s < 2 ? 2 : o.connect_timeout_s);
    const char *kw[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *val[] = {getenv("PGCONNECT_TIMEOUT") ? NULL : timeout, "earmark", conninfo,
                         NULL};

    char msg[512] = "";
    double t0 = dbi_now(), pause = 0.05;
    int attempts = 0, refused = 0;
    for (;;) {
        attempts++;
        PGconn *pg = PQconnectdbParams(kw, val, 1);
        if (!pg) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        if (PQstatus(pg) == CONNECTION_OK) {
            PQsetNoticeProcessor(pg, quiet_notices, NULL);
            *pg_out = pg;
            return DB_OK;
        }
        dbi_pg_message(pg, msg, sizeof msg);
        PQfinish(pg);
        PGPing ping = PQpingParams(kw, val, 1);
        if (ping == PQPING_NO_ATTEMPT)
            return db_errorf(DB_ERR_INVALID, err, errlen, "cannot connect to the database: %s",
                             msg);
        if (ping == PQPING_OK) {
            /* The server answers and refused this session.  Once more right
             * away in case it only just finished starting. */
            if (refused++)
                return db_errorf(DB_ERR_CONNECT, err, errlen,
                                 "cannot connect to the database: %s\n"
                                 "hint: the server answered and refused the session: check "
                                 "the user, database name and password in EARMARK_DB or the "
                                 "PG* variables",
                                 msg);
            continue;
        }
        double elapsed = dbi_now() - t0;
        if ((o.max_attempts > 0 && attempts >= o.max_attempts) || elapsed >= o.max_wait_s) break;
        double left = o.max_wait_s - elapsed;
        dbi_sleep(pause < left ? pause : left);
        pause = pause * 2 < 1.0 ? pause * 2 : 1.0;
    }
    return db_errorf(DB_ERR_CONNECT, err, errlen,
                     "cannot connect to the database: %s\n"
                     "detail: %d attempt%s in %.1f s\n%s",
                     msg, attempts, attempts == 1 ? "" : "s", dbi_now() - t0, CONNECT_HINT);
}

db_err_t db_connect_opts(const char *conninfo, const db_connect_opts_t *opts,
                         db_conn_t **out, char *err, size_t errlen)
{
    if (!out) return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_connect");
    *out = NULL;
    db_conn_t *c = calloc(1, sizeof *c);
    if (!c) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    db_err_t rc = dbi_connect_pg(conninfo, opts, &c->pg, err, errlen);
    if (rc != DB_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return DB_OK;
}

db_err_t db_connect(const char *conninfo, db_conn_t **out, char *err, size_t errlen)
{
    return db_connect_opts(conninfo, NULL, out, err, errlen);
}

db_err_t db_exec(db_conn_t *conn, const char *sql, char *err, size_t errlen)
{
    if (!conn || !sql) return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_exec");
    PGresult *res = PQexec(conn->pg, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    db_err_t rc = DB_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        rc = dbi_pg_error(res ? DB_ERR_QUERY : DB_ERR_NOMEM, conn->pg, res, err, errlen, NULL);
    PQclear(res);
    return rc;
}

db_err_t db_query(db_conn_t *conn, const char *sql, int nparams, const char *const *params,
                  int binary, PGresult **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!conn || !sql || nparams < 0 || (nparams && !params))
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_query");
    PGresult *res = PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, binary ? 1 : 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        db_err_t rc = dbi_pg_error(res ? DB_ERR_QUERY : DB_ERR_NOMEM, conn->pg, res, err, errlen,
                                   NULL);
        PQclear(res);
        return rc;
    }
    *out = res;
    return DB_OK;
}

/* Is name prepared in this session (as far as this connection knows)? */
static int is_prepared(const db_conn_t *conn, const char *name)
{
    for (int i = 0; i < conn->nprepared; i++)
        if (!strcmp(conn->prepared[i], name)) return 1;
    return 0;
}

db_err_t db_query_prepared(db_conn_t *conn, const char *name, const char *sql, int nparams,
                           const char *const *params, int binary, PGresult **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (!conn || !name || !*name || !sql || nparams < 0 || (nparams && !params))
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_query_prepared");
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!is_prepared(conn, name)) {
            if (conn->nprepared == DBI_MAX_PREPARED) /* no room to remember it */
                return db_query(conn, sql, nparams, params, binary, out, err, errlen);
            PGresult *pr = PQprepare(conn->pg, name, sql, nparams, NULL);
            db_err_t rc = db_result_error(conn, pr, NULL, err, errlen);
            PQclear(pr);
            if (rc != DB_OK) return rc;
            conn->prepared[conn->nprepared++] = name;
        }
        PGresult *res = PQexecPrepared(conn->pg, name, nparams, params, NULL, NULL, binary ? 1 : 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *out = res;
            return DB_OK;
        }
        /* the session lost it (a reset this connection did not see):
         * prepare it again, once */
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (attempt == 0 && state && !strcmp(state, "26000")) {
            PQclear(res);
            conn->nprepared = 0;
            continue;
        }
        db_err_t rc = dbi_pg_error(res ? DB_ERR_QUERY : DB_ERR_NOMEM, conn->pg, res, err, errlen,
                                   NULL);
        PQclear(res);
        return rc;
    }
    return db_errorf(DB_ERR_QUERY, err, errlen, "statement %s could not be prepared", name);
}

db_err_t db_result_error(db_conn_t *conn, const PGresult *res, const char *what, char *err,
                         size_t errlen)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
                st == PGRES_COPY_OUT))
        return DB_OK;
    return dbi_pg_error(res ? DB_ERR_QUERY : DB_ERR_NOMEM, conn ? conn->pg : NULL, res, err,
                        errlen, what);
}

db_err_t db_ping(db_conn_t *conn, char *err, size_t errlen)
{
    if (!conn) return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_ping");
    PGconn *pg = conn->pg;
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE)
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "cannot check the connection: a query is in progress on it");
    if (PQstatus(pg) == CONNECTION_OK) {
        /* An empty query is the cheapest round trip, and is accepted even
         * inside a failed transaction. */
        PGresult *res = PQexec(pg, "");
        int ok = res && PQresultStatus(res) == PGRES_EMPTY_QUERY;
        PQclear(res);
        if (ok) return DB_OK;
    }
    PQreset(pg);
    conn->nprepared = 0; /* a new session: nothing is prepared in it */
    if (PQstatus(pg) == CONNECTION_OK) return DB_OK;
    char msg[512];
    dbi_pg_message(pg, msg, sizeof msg);
    return db_errorf(DB_ERR_CONNECT, err, errlen,
                     "lost the connection to the database and cannot reconnect: %s\n%s", msg,
                     CONNECT_HINT);
}

PGconn *db_pg(db_conn_t *conn)
{
    return conn ? conn->pg : NULL;
}

void db_close(db_conn_t *conn)
{
    if (!conn) return;
    PQfinish(conn->pg);
    free(conn);
}
