/*
 * catalog.c -- tenants, tracks and index runs (em_catalog.h).  Plain
 * parameterized statements; the prints are the store's business.
 */
#include "em_catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex32(const uint8_t *sha, char *out)
{
    static const char d[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < 32; i++) {
        out[2 + 2 * i] = d[sha[i] >> 4];
        out[3 + 2 * i] = d[sha[i] & 15];
    }
    out[66] = '\0';
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* bytea in hex output ("\x...") to 32 bytes; -1 when malformed. */
static int parse_sha(const char *s, uint8_t *out)
{
    if (strlen(s) != 66 || s[0] != '\\' || s[1] != 'x') return -1;
    for (int i = 0; i < 32; i++) {
        int a = unhex(s[2 + 2 * i]), b = unhex(s[3 + 2 * i]);
        if (a < 0 || b < 0) return -1;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

static char *dup_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) return NULL;
    return strdup(PQgetvalue(res, row, col));
}

db_err_t catalog_tenant_ensure(db_conn_t *conn, const char *name, int64_t *id, char *err,
                               size_t errlen)
{
    if (!name || !*name) return db_errorf(DB_ERR_INVALID, err, errlen, "a tenant needs a name");
    const char *p[1] = {name};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "WITH ins AS (INSERT INTO tenants (name) VALUES ($1) "
                           "ON CONFLICT (name) DO NOTHING RETURNING id) "
                           "SELECT id FROM ins UNION ALL SELECT id FROM tenants WHERE name = $1",
                           1, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    if (PQntuples(res) < 1) {
        PQclear(res);
        return db_errorf(DB_ERR_QUERY, err, errlen, "tenant '%s' could not be created", name);
    }
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return DB_OK;
}

void catalog_track_clear(catalog_track_t *t)
{
    if (!t) return;
    free(t->tenant);
    free(t->external_id);
    free(t->title);
    free(t->artist);
    free(t->source);
    memset(t, 0, sizeof *t);
}

db_err_t catalog_track_insert(db_conn_t *conn, const catalog_track_t *t, int64_t *id,
                              int *existed, char *err, size_t errlen)
{
    char tenant[24], dur[40], pv[16], cid[16], prints[24], sha[67];
    snprintf(tenant, sizeof tenant, "%lld", (long long)t->tenant_id);
    snprintf(dur, sizeof dur, "%.6f", t->duration_s);
    snprintf(pv, sizeof pv, "%d", t->params_version);
    snprintf(cid, sizeof cid, "%u", t->config_id);
    snprintf(prints, sizeof prints, "%lld", (long long)t->prints);
    hex32(t->sha256, sha);
    const char *p[10] = {tenant, t->external_id, t->title, t->artist, dur, sha, pv, cid,
                         prints, t->source};
    PGresult *res;
    db_err_t rc = db_query(
        conn,
        "INSERT INTO tracks (tenant_id, external_id, title, artist, duration_s, sha256, "
        "params_version, config_id, status, prints, source) "
        "VALUES ($1, $2, $3, $4, $5, $6::bytea, $7, $8, 'indexed', $9, $10) "
        "ON CONFLICT (tenant_id, sha256) WHERE status <> 'deleted' DO NOTHING RETURNING id",
        10, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    *existed = PQntuples(res) == 0;
    if (!*existed) {
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return DB_OK;
    }
    PQclear(res);
    const char *q[2] = {tenant, sha};
    rc = db_query(conn,
                  "SELECT id FROM tracks WHERE tenant_id = $1 AND sha256 = $2::bytea "
                  "AND status <> 'deleted'",
                  2, q, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    *id = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return DB_OK;
}

/* Run an UPDATE with its parameters; *n (may be NULL) gets the rows it changed. */
static db_err_t update_rows(db_conn_t *conn, const char *sql, int nparams, const char *const *p,
                            int64_t *n, char *err, size_t errlen)
{
    PGresult *res;
    db_err_t rc = db_query(conn, sql, nparams, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    if (n) *n = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return DB_OK;
}

db_err_t catalog_track_supersede(db_conn_t *conn, int64_t tenant_id, const char *source,
                                 const char *external_id, const uint8_t sha256[32], int64_t *n,
                                 char *err, size_t errlen)
{
    char tenant[24], sha[67];
    snprintf(tenant, sizeof tenant, "%lld", (long long)tenant_id);
    hex32(sha256, sha);
    const char *p[3] = {tenant, external_id ? external_id : source, sha};
    return update_rows(conn,
                       external_id
                           ? "UPDATE tracks SET status = 'deleted' WHERE tenant_id = $1 "
                             "AND external_id = $2 AND sha256 <> $3::bytea "
                             "AND status <> 'deleted'"
                           : "UPDATE tracks SET status = 'deleted' WHERE tenant_id = $1 "
                             "AND source = $2 AND sha256 <> $3::bytea "
                             "AND status <> 'deleted'",
                       3, p, n, err, errlen);
}

db_err_t catalog_track_supersede_config(db_conn_t *conn, int64_t tenant_id,
                                        const uint8_t sha256[32], uint32_t config_id, int64_t *n,
                                        char *err, size_t errlen)
{
    char tenant[24], sha[67], cid[16];
    snprintf(tenant, sizeof tenant, "%lld", (long long)tenant_id);
    hex32(sha256, sha);
    snprintf(cid, sizeof cid, "%u", config_id);
    const char *p[3] = {tenant, sha, cid};
    return update_rows(conn,
                       "UPDATE tracks SET status = 'deleted' WHERE tenant_id = $1 "
                       "AND sha256 = $2::bytea AND config_id <> $3::bigint "
                       "AND status <> 'deleted'",
                       3, p, n, err, errlen);
}

db_err_t catalog_track_get(db_conn_t *conn, int64_t id, catalog_track_t *out, char *err,
                           size_t errlen)
{
    memset(out, 0, sizeof *out);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    PGresult *res;
    db_err_t rc = db_query(
        conn,
        "SELECT t.id, t.tenant_id, n.name, t.external_id, t.title, t.artist, t.source, "
        "coalesce(t.duration_s, 0), t.sha256, t.params_version, t.config_id, t.status, "
        "coalesce(t.prints, 0), coalesce(t.segment_id, 0), "
        "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = $1",
        1, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return db_errorf(DB_ERR_INVALID, err, errlen, "there is no track %lld", (long long)id);
    }
    out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->tenant_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->tenant = dup_or_null(res, 0, 2);
    out->external_id = dup_or_null(res, 0, 3);
    out->title = dup_or_null(res, 0, 4);
    out->artist = dup_or_null(res, 0, 5);
    out->source = dup_or_null(res, 0, 6);
    out->duration_s = strtod(PQgetvalue(res, 0, 7), NULL);
    if (parse_sha(PQgetvalue(res, 0, 8), out->sha256)) memset(out->sha256, 0, 32);
    out->params_version = atoi(PQgetvalue(res, 0, 9));
    out->config_id = (uint32_t)strtoul(PQgetvalue(res, 0, 10), NULL, 10);
    snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 11));
    out->prints = strtoll(PQgetvalue(res, 0, 12), NULL, 10);
    out->segment_id = strtoll(PQgetvalue(res, 0, 13), NULL, 10);
    snprintf(out->created_at, sizeof out->created_at, "%s", PQgetvalue(res, 0, 14));
    PQclear(res);
    return DB_OK;
}

db_err_t catalog_track_delete(db_conn_t *conn, int64_t id, char *err, size_t errlen)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "UPDATE tracks SET status = 'deleted' WHERE id = $1 "
                           "AND status <> 'deleted'",
                           1, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n != 1) return db_errorf(DB_ERR_INVALID, err, errlen, "there is no live track %lld", (long long)id);
    return DB_OK;
}

static int cmp_sha(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

db_err_t catalog_tenant_shas(db_conn_t *conn, int64_t tenant_id, uint32_t config_id,
                             uint8_t **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char tenant[24], cid[16];
    snprintf(tenant, sizeof tenant, "%lld", (long long)tenant_id);
    snprintf(cid, sizeof cid, "%u", config_id);
    const char *p[2] = {tenant, cid};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "SELECT sha256 FROM tracks WHERE tenant_id = $1 AND status <> 'deleted' "
                           "AND config_id = $2::bigint",
                           2, p, 1, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    uint8_t *s = malloc((size_t)rows * 32 + 32);
    if (!s) {
        PQclear(res);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    size_t k = 0;
    for (int i = 0; i < rows; i++)
        if (PQgetlength(res, i, 0) == 32) memcpy(s + 32 * k++, PQgetvalue(res, i, 0), 32);
    PQclear(res);
    qsort(s, k, 32, cmp_sha);
    *out = s;
    *n = k;
    return DB_OK;
}

int catalog_sha_in(const uint8_t *shas, size_t n, const uint8_t sha[32])
{
    return n && bsearch(sha, shas, n, 32, cmp_sha) != NULL;
}

db_err_t catalog_run_begin(db_conn_t *conn, int64_t tenant_id, const char *source, int threads,
                           int64_t files_total, int64_t *id, char *err, size_t errlen)
{
    char t[24], th[16], ft[24];
    snprintf(t, sizeof t, "%lld", (long long)tenant_id);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(ft, sizeof ft, "%lld", (long long)files_total);
    const char *p[4] = {t, source, th, ft};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "INSERT INTO index_runs (tenant_id, source, threads, files_total) "
                           "VALUES ($1, $2, $3, $4) RETURNING id",
                           4, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return DB_OK;
}

db_err_t catalog_run_progress(db_conn_t *conn, int64_t run, int64_t files_done,
                              int64_t files_failed, double seconds, int64_t prints, char *err,
                              size_t errlen)
{
    char r[24], d[24], f[24], s[40], pr[24];
    snprintf(r, sizeof r, "%lld", (long long)run);
    snprintf(d, sizeof d, "%lld", (long long)files_done);
    snprintf(f, sizeof f, "%lld", (long long)files_failed);
    snprintf(s, sizeof s, "%.3f", seconds);
    snprintf(pr, sizeof pr, "%lld", (long long)prints);
    const char *p[5] = {r, d, f, s, pr};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "UPDATE index_runs SET files_done = files_done + $2, "
                           "files_failed = files_failed + $3, seconds_audio = seconds_audio + $4, "
                           "prints = prints + $5 WHERE id = $1",
                           5, p, 0, &res, err, errlen);
    PQclear(res);
    return rc;
}

db_err_t catalog_run_failure(db_conn_t *conn, int64_t run, const char *path, const char *reason,
                             char *err, size_t errlen)
{
    char r[24];
    snprintf(r, sizeof r, "%lld", (long long)run);
    const char *p[3] = {r, path, reason};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "INSERT INTO index_failures (run_id, path, reason) VALUES ($1, $2, $3)",
                           3, p, 0, &res, err, errlen);
    PQclear(res);
    return rc;
}

db_err_t catalog_run_end(db_conn_t *conn, int64_t run, const char *status, const char *message,
                         char *err, size_t errlen)
{
    char r[24];
    snprintf(r, sizeof r, "%lld", (long long)run);
    const char *p[3] = {r, status, message};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "UPDATE index_runs SET status = $2, message = $3, finished_at = now() "
                           "WHERE id = $1",
                           3, p, 0, &res, err, errlen);
    PQclear(res);
    return rc;
}
