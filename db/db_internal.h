/*
 * db_internal.h -- declarations shared between the files of libearmark-db.
 * Not installed, not API.  Names carry the dbi_ prefix so they never collide
 * with the public db_ names.
 */
#ifndef EARMARK_DB_INTERNAL_H
#define EARMARK_DB_INTERNAL_H

#include "em_db.h"

#include <stdarg.h>

/* Port of private clusters; safe to share because each has its own socket
 * folder and no TCP listener. */
#define DBI_CLUSTER_PORT 5432
/* Name of the superuser and of the database in a private cluster. */
#define DBI_CLUSTER_NAME "earmark"

#define DBI_MAX_PREPARED 16

struct db_conn {
    PGconn *pg;
    /* statements prepared in this session (db_query_prepared): their
     * names, the callers' static strings; forgotten when the session is
     * reset */
    const char *prepared[DBI_MAX_PREPARED];
    int nprepared;
};

/*
 * Write "PREFIX: primary", then "detail: " and "hint: " lines taken from a
 * failed result (or, without one, from the connection's message), and
 * return DB_ERR_CONNECT when the connection is broken, else `code`.
 */
db_err_t dbi_pg_error(db_err_t code, PGconn *pg, const PGresult *res,
                      char *err, size_t errlen, const char *prefix);

/* The first line of libpq's last message for pg, without "ERROR:  " and the
 * newline, into buf. */
void dbi_pg_message(PGconn *pg, char *buf, size_t len);

/* Absolute form of path (relative to the current folder; need not exist),
 * without "./" components and trailing slashes.  DB_ERR_INVALID when it
 * does not fit or the current folder is unknown. */
db_err_t dbi_abspath(const char *path, char *buf, size_t len);

/* The conninfo of database `dbname` in the private cluster of var_dir. */
db_err_t dbi_cluster_conninfo(const char *var_dir, const char *dbname, char *buf, size_t len);

/* Connect with retry to `conninfo` (see db_connect_opts()); *pg_out is set
 * on success. */
db_err_t dbi_connect_pg(const char *conninfo, const db_connect_opts_t *opts,
                        PGconn **pg_out, char *err, size_t errlen);

/* Monotonic wall clock in seconds; sleep for s seconds (s <= 0: none). */
double dbi_now(void);
void dbi_sleep(double s);

#endif
