/*
 * em_db.h -- earmark's PostgreSQL plumbing, shared by the indexer, the HTTP
 * server and the command-line tools.
 *
 * This header is the whole public interface of libearmark-db:
 *
 *   db_conn.c      where the database is (conninfo resolution), connecting
 *                  with retry, simple statements, liveness and reconnection
 *   db_cluster.c   a private PostgreSQL cluster under ${EARMARK_VAR:-./var}/pg
 *                  for development, tests and single-machine installs
 *   db_migrate.c   numbered SQL migrations (sql/NNN_name.sql) and the
 *                  schema version check
 *
 * The fingerprint store is not here: this is only the connection, the
 * cluster and the schema machinery the store and the catalog are built on.
 *
 * Errors: functions return db_err_t (0 = success).  Functions that can fail
 * for a reason a person should read take `char *err, size_t errlen` (err may
 * be NULL).  The message is in the PostgreSQL manner: a first line that says
 * what failed, then, where useful, a line "detail: ..." with the particulars
 * and a line "hint: ..." saying what to do.  The library never prints and
 * never exits.
 *
 * Threads: a db_conn_t is used by one thread at a time; different
 * connections may be used from different threads at once.  The cluster
 * functions may run at the same time in several processes: they serialize on
 * a lock file.  They run initdb and pg_ctl as child processes and wait for
 * those children by pid, so the calling process must not ignore SIGCHLD.
 *
 * Ownership: pointers passed in are borrowed for the duration of the call.
 * Handles are created by one function and released by the matching *_close
 * or *_free; passing NULL to those is a no-op.
 */
#ifndef EARMARK_DB_H
#define EARMARK_DB_H

#include <stddef.h>

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The error codes of the database layer.  Values are stable: they are logged
 * and mapped to the machine-readable codes of the HTTP API.  New codes are
 * only ever appended.
 */
typedef enum db_err {
    DB_OK = 0,
    DB_ERR_NOMEM = 1,    /* an allocation failed */
    DB_ERR_INVALID = 2,  /* a bad argument or a malformed conninfo / file name */
    DB_ERR_CONNECT = 3,  /* no session with the server (down, starting,
                            refusing, connection lost): trying again later
                            may succeed */
    DB_ERR_QUERY = 4,    /* the server refused a statement */
    DB_ERR_SCHEMA = 5,   /* the schema is missing, behind or newer than this
                            build, or an applied migration was changed */
    DB_ERR_CLUSTER = 6,  /* initdb, pg_ctl or the cluster's folders failed */
    DB_ERR_IO = 7,       /* a file or folder cannot be read or written */
    DB_ERR_CORRUPT = 8   /* data read from the database does not decode */
} db_err_t;

/* Static English text for an error code; never NULL. */
const char *db_strerror(db_err_t code);

/* A stable short machine name ("connect", "schema", ...); never NULL. */
const char *db_errname(db_err_t code);

/*
 * Format a message into err (when err is not NULL and errlen > 0) and
 * return code: for the libraries built on this one, so that every layer
 * reports errors the same way.
 */
db_err_t db_errorf(db_err_t code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------------ */
/* Where the database is                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Write the conninfo earmark uses into buf (a libpq connection string):
 *
 *   1. $EARMARK_DB when set and not empty;
 *   2. else "" when any of PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, PGUSER,
 *      PGSERVICE is set and not empty: libpq then reads them itself;
 *   3. else the private cluster of the var folder (db_var_dir_resolve()), as
 *      db_cluster_conninfo() gives it.
 *
 * Returns DB_OK, or DB_ERR_INVALID when buf is too small or the current
 * folder cannot be found.  Reads the environment: not safe against a
 * concurrent setenv().
 */
db_err_t db_conninfo_resolve(char *buf, size_t len);

/*
 * Write the absolute path of earmark's var folder into buf:
 * $EARMARK_VAR, else "./var", made absolute against the current folder
 * (the folder need not exist).  DB_ERR_INVALID when buf is too small.
 */
db_err_t db_var_dir_resolve(char *buf, size_t len);

/*
 * Write the conninfo of the private cluster of var_dir into buf:
 * host='VAR/pg' port=5432 dbname=earmark user=earmark, VAR made absolute.
 * DB_ERR_INVALID when buf is too small.
 */
db_err_t db_cluster_conninfo(const char *var_dir, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

/*
 * How hard db_connect_opts() tries.  While the server does not answer or
 * answers that it is starting up or shutting down, connecting is retried
 * with a growing pause (50 ms doubling to 1 s) until max_attempts attempts
 * or max_wait_s seconds, whichever comes first.  A server that answers and
 * refuses (wrong password, no such database) is not retried.
 */
typedef struct db_connect_opts {
    double max_wait_s;      /* give up after this long (default 10 s; 0: one
                               attempt) */
    int max_attempts;       /* ... or this many attempts (default 0: no limit
                               but the time) */
    int connect_timeout_s;  /* libpq connect_timeout of each attempt unless
                               the conninfo sets one (default 5, at least 2) */
} db_connect_opts_t;

/* Fill *opts with the defaults above. */
void db_connect_opts_default(db_connect_opts_t *opts);

typedef struct db_conn db_conn_t;

/*
 * Open a connection with the default retry policy.  `conninfo` is a libpq
 * connection string or URI ("" uses libpq's environment and defaults); its
 * own parameters win over earmark's (connect_timeout,
 * fallback_application_name "earmark").  On success *out owns the
 * connection.  Errors: DB_ERR_INVALID (malformed conninfo), DB_ERR_CONNECT
 * (with libpq's message and a hint), DB_ERR_NOMEM.
 */
db_err_t db_connect(const char *conninfo, db_conn_t **out, char *err, size_t errlen);

/* The same with an explicit retry policy (NULL = defaults). */
db_err_t db_connect_opts(const char *conninfo, const db_connect_opts_t *opts,
                         db_conn_t **out, char *err, size_t errlen);

/*
 * Run one or more SQL statements without parameters or result rows
 * (PQexec).  Errors: DB_ERR_QUERY (the server's message, its detail and
 * hint, and the SQLSTATE), DB_ERR_CONNECT (the connection broke: db_ping()
 * reconnects), DB_ERR_NOMEM.
 */
db_err_t db_exec(db_conn_t *conn, const char *sql, char *err, size_t errlen);

/*
 * Run one statement with text parameters (PQexecParams; params[i] NULL is
 * SQL NULL) and results in text (binary 0) or binary (1) format.  On
 * success *out owns the result (PQclear() it); on failure *out is NULL.
 * Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM, DB_ERR_INVALID.
 */
db_err_t db_query(db_conn_t *conn, const char *sql, int nparams, const char *const *params,
                  int binary, PGresult **out, char *err, size_t errlen);

/*
 * The same for a statement run often: prepared under `name` in the
 * connection's session on first use (PQprepare; parameter types inferred
 * from sql) and executed by name from then on, which spares the server
 * parsing and planning it each time.  name is kept by pointer: a string
 * literal, one per sql.  A session reset by db_ping() prepares again; so
 * does a server that no longer knows the name (SQLSTATE 26000, once).
 * Past 16 names on one connection, statements run as db_query() does.
 * Errors: those of db_query().
 */
db_err_t db_query_prepared(db_conn_t *conn, const char *name, const char *sql, int nparams,
                           const char *const *params, int binary, PGresult **out, char *err,
                           size_t errlen);

/*
 * DB_OK when res (from db_pg() calls of the caller's own) succeeded;
 * otherwise the error in db_exec()'s manner, `what` (may be NULL) put
 * before the server's message.  Does not free res.
 */
db_err_t db_result_error(db_conn_t *conn, const PGresult *res, const char *what, char *err,
                         size_t errlen);

/*
 * Check that the connection works with a round trip to the server; when it
 * does not (the server restarted, the network dropped), reconnect once with
 * the same conninfo (PQreset).  Session state (settings, prepared statements,
 * an open transaction) does not survive a reconnection.  The handle stays
 * the same either way.  Errors: DB_ERR_CONNECT (still no session; try
 * again later), DB_ERR_INVALID (a query is in progress on the connection).
 */
db_err_t db_ping(db_conn_t *conn, char *err, size_t errlen);

/*
 * The libpq connection inside, for queries this header does not cover.
 * Borrowed: valid until db_close(); do not PQfinish() it.
 */
PGconn *db_pg(db_conn_t *conn);

/* Close the connection and free the handle.  NULL is a no-op. */
void db_close(db_conn_t *conn);

/* ------------------------------------------------------------------------ */
/* The private cluster                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A PostgreSQL cluster that belongs to one earmark var folder:
 *
 *   VAR/pg/data                 the cluster (initdb --auth=trust -U earmark
 *                               -E UTF8 --locale=C); earmark's settings are in
 *                               data/earmark.conf, rewritten at every start
 *   VAR/pg/.s.PGSQL.5432        its Unix socket: no TCP at all, and trust
 *                               authentication is safe because VAR/pg is
 *                               mode 0700
 *   VAR/pg/log/postgres.log     the server's log; initdb.log, pg_ctl.log: the
 *                               output of those programs
 *
 * The binaries are found through `pg_config --bindir`, else in the newest
 * /usr/lib/postgresql/N/bin.  PostgreSQL refuses to run as root: when the
 * caller is root, the cluster belongs to the system user "earmark" (created
 * with useradd when missing) and initdb and pg_ctl run as that user, which
 * must be able to reach VAR/pg through every parent folder.
 */

/*
 * Start the private cluster of var_dir (NULL = db_var_dir_resolve()),
 * creating it first when VAR/pg/data does not exist, and create the database
 * "earmark" when missing.  Returns when the server accepts connections.
 * Starting a running cluster does nothing and succeeds.
 * Errors: DB_ERR_CLUSTER (initdb or pg_ctl failed: the first line of what
 * they said and the log file to read), DB_ERR_IO (folders), DB_ERR_INVALID
 * (the socket path would be too long), DB_ERR_CONNECT, DB_ERR_QUERY.
 */
db_err_t db_cluster_start(const char *var_dir, char *err, size_t errlen);

/*
 * Stop the private cluster (pg_ctl stop -m fast: open sessions are ended).
 * Stopping a cluster that is not running, or does not exist, does nothing and
 * succeeds.  Errors: DB_ERR_CLUSTER, DB_ERR_IO.
 */
db_err_t db_cluster_stop(const char *var_dir, char *err, size_t errlen);

/* What db_cluster_status() finds. */
typedef struct db_cluster_status {
    int initialized;      /* VAR/pg/data holds a cluster */
    int running;          /* its server process is alive */
    long pid;             /* that process, when running (else 0) */
    char pg_dir[1024];    /* VAR/pg, absolute: also the socket folder */
    char socket[1024];    /* VAR/pg/.s.PGSQL.5432 */
    char log_file[1024];  /* VAR/pg/log/postgres.log */
} db_cluster_status_t;

/*
 * Describe the private cluster of var_dir (NULL = db_var_dir_resolve())
 * without changing anything; runs no program.  "running" means the process
 * named in postmaster.pid is alive: a server that is still starting or
 * shutting down counts as running.  Errors: DB_ERR_INVALID (paths too long),
 * DB_ERR_IO.
 */
db_err_t db_cluster_status(const char *var_dir, db_cluster_status_t *st,
                           char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Migrations                                                               */
/* ------------------------------------------------------------------------ */

/*
 * The schema version this build's code expects: the number of the newest
 * file in sql/.  Bumped together with every new migration.
 */
#define DB_SCHEMA_VERSION 9

/*
 * Write the folder of the migrations into buf: $EARMARK_SQL when set, else
 * "./sql" when that folder exists, else the installed copy
 * (PREFIX/share/earmark/sql).  DB_ERR_INVALID when buf is too small.
 */
db_err_t db_sql_dir_resolve(char *buf, size_t len);

/*
 * Bring the schema up to date from sql_dir (NULL = db_sql_dir_resolve()).
 *
 * Migrations are the files NNN_name.sql (NNN: decimal digits, unique) taken
 * in the order of NNN; other files are ignored, a *.sql file with another
 * kind of name is an error.  Each missing one runs in its own transaction
 * together with its row in schema_migrations(version, name, applied_at,
 * checksum), checksum being the SHA-256 of the file in hex.  A file must not
 * contain BEGIN/COMMIT itself.  Migrators in different processes at once are
 * serialized by a transaction-level advisory lock, so each file runs once.
 *
 * *applied (may be NULL) is set to the number of migrations this call ran,
 * also when it fails part way (the earlier ones stay applied).
 * Errors: DB_ERR_SCHEMA (an applied file's checksum changed, or the database
 * holds a version for which there is no file), DB_ERR_QUERY (a migration
 * failed: named with file and line, nothing of it kept), DB_ERR_IO,
 * DB_ERR_INVALID (a bad file name or a file over 16 MiB), DB_ERR_CONNECT,
 * DB_ERR_NOMEM.
 */
db_err_t db_migrate(db_conn_t *conn, const char *sql_dir, int *applied,
                    char *err, size_t errlen);

/*
 * The highest applied migration, 0 when none is (no schema_migrations
 * table).  Errors: DB_ERR_QUERY, DB_ERR_CONNECT.
 */
db_err_t db_schema_version(db_conn_t *conn, int *version, char *err, size_t errlen);

/*
 * DB_OK when the database is at exactly schema version `expected` (normally
 * DB_SCHEMA_VERSION); DB_ERR_SCHEMA with a hint when it is behind (run the
 * migrations) or ahead (this build is older than the database).
 * Errors also: DB_ERR_QUERY, DB_ERR_CONNECT.
 */
db_err_t db_schema_check(db_conn_t *conn, int expected, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_DB_H */
