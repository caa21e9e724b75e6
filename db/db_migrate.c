/*
 * db_migrate.c -- numbered SQL migrations and the schema version.
 * See em_db.h.
 *
 * One pass reads schema_migrations and checks every applied migration
 * against its file before anything runs, so a changed or missing file stops
 * the whole run.  Then each missing migration runs in its own transaction,
 * which first takes the advisory lock and looks again: a migrator that
 * waited for another one finds the work done and only checks it.
 */
#include "db_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#ifndef EARMARK_SHARE_DIR
#define EARMARK_SHARE_DIR "/usr/local/share/earmark"
#endif

/* A migration file may not be larger than this. */
#define MAX_SQL_BYTES (16u << 20)
/* The key of the advisory lock migrators share: "earmark" in ASCII. */
#define LOCK_SQL "SELECT pg_advisory_xact_lock(28536116737045099)"

#define CREATE_SQL                                                         \
    "CREATE TABLE IF NOT EXISTS schema_migrations ("                       \
    " version int PRIMARY KEY,"                                           \
    " name text NOT NULL,"                                                \
    " applied_at timestamptz NOT NULL DEFAULT now(),"                     \
    " checksum text NOT NULL)"

typedef struct migration {
    int version;
    char file[256];   /* "001_catalog.sql" */
    char name[256];   /* "catalog" */
} migration_t;

typedef struct migration_list {
    migration_t *items;
    size_t n, cap;
} migration_list_t;

db_err_t db_sql_dir_resolve(char *buf, size_t len)
{
    struct stat st;
    const char *env = getenv("EARMARK_SQL");
    if (!buf || !len) return DB_ERR_INVALID;
    if (env && *env) return snprintf(buf, len, "%s", env) < (int)len ? DB_OK : DB_ERR_INVALID;
    if (stat("sql", &st) == 0 && S_ISDIR(st.st_mode)) return dbi_abspath("sql", buf, len);
    return snprintf(buf, len, "%s/sql", EARMARK_SHARE_DIR) < (int)len ? DB_OK : DB_ERR_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

static int by_version(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Parse "NNN_name.sql": 1 and *m filled when it is one, 0 when the name
 * does not end in .sql, -1 when it ends in .sql but is not a migration. */
static int parse_name(const char *file, migration_t *m)
{
    size_t len = strlen(file);
    if (len < 4 || strcmp(file + len - 4, ".sql")) return 0;
    size_t digits = strspn(file, "0123456789");
    if (digits == 0 || digits > 9 || file[digits] != '_' || len >= sizeof m->file) return -1;
    size_t name_len = len - 4 - digits - 1;
    if (name_len == 0) return -1;
    for (size_t i = digits + 1; i < len - 4; i++) {
        char c = file[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    m->version = atoi(file);
    snprintf(m->file, sizeof m->file, "%s", file);
    snprintf(m->name, sizeof m->name, "%.*s", (int)name_len, file + digits + 1);
    return 1;
}

static db_err_t list_migrations(const char *dir, migration_list_t *list, char *err, size_t errlen)
{
    db_err_t rc = DB_OK;
    DIR *d = opendir(dir);
    if (!d)
        return db_errorf(DB_ERR_IO, err, errlen,
                         "cannot read the migrations folder %s: %s\n"
                         "hint: run from the source folder, or set EARMARK_SQL to the sql folder",
                         dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        migration_t m;
        int kind = parse_name(e->d_name, &m);
        if (kind == 0) continue;
        if (kind < 0) {
            rc = db_errorf(DB_ERR_INVALID, err, errlen,
                           "%s/%s is not named like a migration\n"
                           "hint: migrations are named NNN_name.sql (digits, an underscore, "
                           "then letters, digits, - or _)",
                           dir, e->d_name);
            goto out;
        }
        if (list->n == list->cap) {
            size_t cap = list->cap ? list->cap * 2 : 16;
            migration_t *items = realloc(list->items, cap * sizeof *items);
            if (!items) {
                rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
                goto out;
            }
            list->items = items;
            list->cap = cap;
        }
        list->items[list->n++] = m;
    }
    if (list->n == 0) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "no migrations in %s\n"
                       "hint: set EARMARK_SQL to the folder of the NNN_name.sql files",
                       dir);
        goto out;
    }
    qsort(list->items, list->n, sizeof *list->items, by_version);
    for (size_t i = 1; i < list->n; i++) {
        if (list->items[i].version == list->items[i - 1].version) {
            rc = db_errorf(DB_ERR_INVALID, err, errlen,
                           "two migrations have the number %d: %s and %s", list->items[i].version,
                           list->items[i - 1].file, list->items[i].file);
            goto out;
        }
    }
out:
    closedir(d);
    return rc;
}

/* Read a migration into a new NUL-terminated buffer and its SHA-256 in
 * hex into sha (65 bytes). */
static db_err_t read_migration(const char *dir, const migration_t *m, char **text,
                               char sha[65], char *err, size_t errlen)
{
    char path[4096];
    db_err_t rc = DB_OK;
    char *buf = NULL;
    *text = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, m->file) >= (int)sizeof path)
        return db_errorf(DB_ERR_INVALID, err, errlen, "path too long: %s/%s", dir, m->file);
    FILE *f = fopen(path, "rb");
    if (!f) return db_errorf(DB_ERR_IO, err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        rc = db_errorf(DB_ERR_IO, err, errlen, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > (off_t)MAX_SQL_BYTES) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "%s is larger than %u MiB", path,
                       MAX_SQL_BYTES >> 20);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    if (fread(buf, 1, size, f) != size) {
        rc = db_errorf(DB_ERR_IO, err, errlen, "cannot read %s", path);
        goto out;
    }
    buf[size] = '\0';
    if (strlen(buf) != size) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "%s contains a NUL byte", path);
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(buf, size, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "cannot compute the SHA-256 of %s", path);
        goto out;
    }
    for (unsigned i = 0; i < 32; i++) snprintf(sha + 2 * i, 3, "%02x", md[i]);
    *text = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* The line of character `pos` (1-based, as the server counts: characters,
 * not bytes) in UTF-8 text. */
static int line_of(const char *text, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if ((*c & 0xC0) == 0x80) continue;
        if (++chars >= pos) break;
        if (*c == '\n') line++;
    }
    return line;
}

/* ------------------------------------------------------------------------ */
/* Statements                                                               */
/* ------------------------------------------------------------------------ */

/* Run sql; DB_OK when it succeeded. */
static db_err_t exec_ok(PGconn *pg, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    db_err_t rc = DB_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, what);
    PQclear(res);
    return rc;
}

static void rollback(PGconn *pg)
{
    if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(PQexec(pg, "ROLLBACK"));
}

static db_err_t changed_error(const char *dir, const migration_t *m, const char *was,
                              const char *now, char *err, size_t errlen)
{
    return db_errorf(DB_ERR_SCHEMA, err, errlen,
                     "migration %s was changed after it was applied (checksum mismatch)\n"
                     "detail: applied with SHA-256 %.12s..., %s/%s now has %.12s...\n"
                     "hint: restore the file as it was; changes to the schema go into a new "
                     "migration file",
                     m->file, was, dir, m->file, now);
}

/* Check the applied migrations against the files. */
static db_err_t verify_applied(PGconn *pg, const char *dir, const migration_list_t *list,
                               char *err, size_t errlen)
{
    db_err_t rc = exec_ok(pg, "BEGIN", "cannot begin a transaction", err, errlen);
    if (rc == DB_OK) rc = exec_ok(pg, LOCK_SQL, "cannot take the migration lock", err, errlen);
    if (rc == DB_OK)
        rc = exec_ok(pg, CREATE_SQL, "cannot create the table schema_migrations", err, errlen);
    if (rc != DB_OK) {
        rollback(pg);
        return rc;
    }
    PGresult *res = PQexec(pg, "SELECT version, name, checksum FROM schema_migrations "
                               "ORDER BY version");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, "cannot read schema_migrations");
        goto out;
    }
    for (int r = 0; r < PQntuples(res) && rc == DB_OK; r++) {
        int version = atoi(PQgetvalue(res, r, 0));
        const char *sum = PQgetvalue(res, r, 2);
        const migration_t *m = NULL;
        for (size_t i = 0; i < list->n && !m; i++)
            if (list->items[i].version == version) m = &list->items[i];
        if (!m) {
            rc = db_errorf(DB_ERR_SCHEMA, err, errlen,
                           "the database has migration %d (%s), which is not in %s\n"
                           "hint: this build is older than the database schema: use a newer "
                           "earmark, or set EARMARK_SQL to its sql folder",
                           version, PQgetvalue(res, r, 1), dir);
            break;
        }
        char *text = NULL, sha[65];
        rc = read_migration(dir, m, &text, sha, err, errlen);
        free(text);
        if (rc == DB_OK && strcmp(sha, sum)) rc = changed_error(dir, m, sum, sha, err, errlen);
    }
out:
    PQclear(res);
    if (rc == DB_OK) rc = exec_ok(pg, "COMMIT", "cannot commit", err, errlen);
    rollback(pg);
    return rc;
}

/* Apply one migration unless another migrator did; *ran = 1 when this one
 * did. */
static db_err_t apply_one(PGconn *pg, const char *dir, const migration_t *m, int *ran,
                          char *err, size_t errlen)
{
    char *text = NULL, sha[65], version[16], what[512];
    PGresult *res = NULL;
    *ran = 0;
    db_err_t rc = read_migration(dir, m, &text, sha, err, errlen);
    if (rc != DB_OK) return rc;
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[3] = {version, m->name, sha};

    if ((rc = exec_ok(pg, "BEGIN", "cannot begin a transaction", err, errlen)) != DB_OK) goto out;
    if ((rc = exec_ok(pg, LOCK_SQL, "cannot take the migration lock", err, errlen)) != DB_OK)
        goto out;
    res = PQexecParams(pg, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, NULL,
                       params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, "cannot read schema_migrations");
        goto out;
    }
    if (PQntuples(res) > 0) { /* applied meanwhile by another migrator */
        if (strcmp(PQgetvalue(res, 0, 0), sha))
            rc = changed_error(dir, m, PQgetvalue(res, 0, 0), sha, err, errlen);
        goto out;
    }
    PQclear(res);

    res = PQexec(pg, text);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        if (pos) snprintf(what, sizeof what, "migration %s failed at line %d", m->file,
                          line_of(text, atol(pos)));
        else snprintf(what, sizeof what, "migration %s failed", m->file);
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, what);
        goto out;
    }
    if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "migration %s ends the transaction it runs in\n"
                       "detail: part of it may have been applied without being recorded.\n"
                       "hint: remove BEGIN, COMMIT and ROLLBACK from the file: each migration "
                       "already runs in its own transaction",
                       m->file);
        goto out;
    }
    PQclear(res);
    res = PQexecParams(pg, "INSERT INTO schema_migrations (version, name, checksum) "
                           "VALUES ($1, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, "cannot record the migration");
        goto out;
    }
    snprintf(what, sizeof what, "cannot commit migration %s", m->file);
    if ((rc = exec_ok(pg, "COMMIT", what, err, errlen)) == DB_OK) *ran = 1;
out:
    PQclear(res);
    rollback(pg);
    free(text);
    return rc;
}

db_err_t db_migrate(db_conn_t *conn, const char *sql_dir, int *applied, char *err, size_t errlen)
{
    char dir[4096];
    migration_list_t list = {0};
    int count = 0;
    db_err_t rc = DB_OK;
    if (applied) *applied = 0;
    if (!conn) return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_migrate");
    if (sql_dir) rc = snprintf(dir, sizeof dir, "%s", sql_dir) < (int)sizeof dir ? DB_OK
                                                                                 : DB_ERR_INVALID;
    else rc = db_sql_dir_resolve(dir, sizeof dir);
    if (rc != DB_OK) return db_errorf(rc, err, errlen, "the migrations folder path is too long");
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "cannot migrate inside a transaction or while a query runs");

    if ((rc = list_migrations(dir, &list, err, errlen)) != DB_OK) goto out;
    if ((rc = verify_applied(conn->pg, dir, &list, err, errlen)) != DB_OK) goto out;
    for (size_t i = 0; i < list.n; i++) {
        int ran = 0;
        rc = apply_one(conn->pg, dir, &list.items[i], &ran, err, errlen);
        count += ran;
        if (rc != DB_OK) break;
    }
out:
    free(list.items);
    if (applied) *applied = count;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

db_err_t db_schema_version(db_conn_t *conn, int *version, char *err, size_t errlen)
{
    if (!conn || !version)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_schema_version");
    *version = 0;
    PGresult *res = PQexec(conn->pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    db_err_t rc = DB_OK;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = dbi_pg_error(DB_ERR_QUERY, conn->pg, res, err, errlen, "cannot read the schema version");
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t")) goto out;
    PQclear(res);
    res = PQexec(conn->pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = dbi_pg_error(DB_ERR_QUERY, conn->pg, res, err, errlen, "cannot read the schema version");
        goto out;
    }
    *version = atoi(PQgetvalue(res, 0, 0));
out:
    PQclear(res);
    return rc;
}

db_err_t db_schema_check(db_conn_t *conn, int expected, char *err, size_t errlen)
{
    int version = 0;
    db_err_t rc = db_schema_version(conn, &version, err, errlen);
    if (rc != DB_OK) return rc;
    if (version == expected) return DB_OK;
    if (version == 0)
        return db_errorf(DB_ERR_SCHEMA, err, errlen,
                         "the database has no earmark schema (this build needs version %d)\n"
                         "hint: run `earmark db migrate`",
                         expected);
    if (version < expected)
        return db_errorf(DB_ERR_SCHEMA, err, errlen,
                         "the database schema is at version %d, this build needs version %d\n"
                         "hint: run `earmark db migrate`",
                         version, expected);
    return db_errorf(DB_ERR_SCHEMA, err, errlen,
                     "the database schema is at version %d, newer than this build (version %d)\n"
                     "hint: use the earmark build that migrated it, or a newer one",
                     version, expected);
}
