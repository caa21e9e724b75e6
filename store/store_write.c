/*
 * store_write.c -- the store handle, and writing segments.
 *
 * A batch holds its postings in memory; at commit they are sorted by key,
 * encoded into rows and sent with one binary COPY into a new table, whose
 * primary key is then built over the sorted rows (a bulk index build, much
 * cheaper than maintaining the index row by row).  Creating the table and
 * filling it in one transaction also lets PostgreSQL skip the WAL for it
 * when wal_level is minimal, as in the private cluster.
 */
#include "store_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the handle ---------------------------------------------------------- */

db_err_t store_open(db_conn_t *conn, store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    db_err_t rc = db_schema_check(conn, DB_SCHEMA_VERSION, err, errlen);
    if (rc != DB_OK) return rc;
    store_t *s = calloc(1, sizeof *s);
    if (!s) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    s->generation = -1;
    for (unsigned i = 0; i < STRI_HOURS_SLOTS; i++) s->hours[i].generation = -2;
    s->threads = 1;
    s->thread_postings = 32768;
    rc = stri_refresh(s, conn, err, errlen);
    if (rc != DB_OK) {
        store_free(s);
        return rc;
    }
    *out = s;
    return DB_OK;
}

void store_free(store_t *s)
{
    if (!s) return;
    free(s->segments);
    free(s->dead);
    free(s->track_tenant);
    free(s->counts);
    for (size_t i = 0; i < s->ndirs; i++) free(s->dirs[i].starts);
    free(s->dirs);
    stri_pool_free(s->pool);
    free(s);
}

db_err_t stri_save_counts(db_conn_t *conn, int64_t segment, const uint32_t *counts, char *err,
                          size_t errlen)
{
    uint8_t *packed = malloc(STORE_KEY_SPACE);
    if (!packed) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    for (uint32_t k = 0; k < STORE_KEY_SPACE; k++) packed[k] = store_count_pack(counts[k]);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)segment);
    const char *values[2] = {(const char *)packed, id};
    int lengths[2] = {(int)STORE_KEY_SPACE, 0};
    int formats[2] = {1, 0};
    PGresult *res = PQexecParams(db_pg(conn),
                                 "UPDATE print_segments SET key_counts = $1 WHERE id = $2::bigint", 2,
                                 NULL, values, lengths, formats, 0);
    db_err_t rc = res && PQresultStatus(res) == PGRES_COMMAND_OK
                      ? DB_OK
                      : db_result_error(conn, res, "saving key counts", err, errlen);
    PQclear(res);
    free(packed);
    return rc;
}

/*
 * The summed key counts of the live segments: each segment's packed counts,
 * or, for a segment written before they existed, counted from its rows.
 */
static db_err_t load_counts(store_t *s, db_conn_t *conn, char *err, size_t errlen)
{
    uint32_t *sum = calloc(STORE_KEY_SPACE, sizeof *sum);
    if (!sum) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    db_err_t rc = DB_OK;
    for (size_t i = 0; i < s->nsegments && rc == DB_OK; i++) {
        char id[24], sql[160];
        snprintf(id, sizeof id, "%lld", (long long)s->segments[i]);
        const char *p[1] = {id};
        PGresult *res;
        rc = db_query(conn, "SELECT key_counts FROM print_segments WHERE id = $1::bigint", 1, p, 1,
                      &res, err, errlen);
        if (rc != DB_OK) break;
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
            PQgetlength(res, 0, 0) == (int)STORE_KEY_SPACE) {
            const uint8_t *q = (const uint8_t *)PQgetvalue(res, 0, 0);
            for (uint32_t k = 0; k < STORE_KEY_SPACE; k++) sum[k] += store_count_unpack(q[k]);
            PQclear(res);
            continue;
        }
        PQclear(res);
        /* no counts saved: read them off the rows' group headers */
        snprintf(sql, sizeof sql, "SELECT start, data FROM postings_%lld", (long long)s->segments[i]);
        rc = db_query(conn, sql, 0, NULL, 1, &res, err, errlen);
        if (rc != DB_OK) break;
        for (int r = 0; r < PQntuples(res); r++) {
            uint32_t start = stri_int4(res, r, 0);
            size_t len, pos = 0;
            const uint8_t *data = stri_bytes(res, r, 1, &len);
            store_group_t g;
            while (store_row_next(data, len, &pos, &start, &g) == 1) sum[g.key] += g.count;
        }
        PQclear(res);
    }
    if (rc != DB_OK) {
        free(sum);
        return rc;
    }
    uint16_t *c = realloc(s->counts, STORE_KEY_SPACE * sizeof *c);
    if (!c) {
        free(sum);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    for (uint32_t k = 0; k < STORE_KEY_SPACE; k++) c[k] = sum[k] > 65535 ? 65535 : (uint16_t)sum[k];
    s->counts = c;
    free(sum);
    return DB_OK;
}

/* Read the tenants of tracks with ids from s->ntracks on. */
static db_err_t load_tenants(store_t *s, db_conn_t *conn, char *err, size_t errlen)
{
    char from[24];
    snprintf(from, sizeof from, "%zu", s->ntracks);
    const char *p[1] = {from};
    PGresult *res;
    db_err_t rc = db_query(conn, "SELECT id, tenant_id FROM tracks WHERE id >= $1 ORDER BY id", 1,
                           p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    if (rows) {
        size_t maxid = (size_t)strtoull(PQgetvalue(res, rows - 1, 0), NULL, 10);
        if (maxid >= UINT32_MAX) {
            PQclear(res);
            return db_errorf(DB_ERR_CORRUPT, err, errlen, "track id %zu exceeds 32 bits", maxid);
        }
        uint32_t *t = realloc(s->track_tenant, (maxid + 1) * sizeof *t);
        if (!t) {
            PQclear(res);
            return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        }
        memset(t + s->ntracks, 0, (maxid + 1 - s->ntracks) * sizeof *t);
        for (int i = 0; i < rows; i++) {
            uint32_t tenant = (uint32_t)strtoull(PQgetvalue(res, i, 1), NULL, 10);
            t[strtoull(PQgetvalue(res, i, 0), NULL, 10)] = tenant;
            if (!tenant || (s->sole_tenant && s->sole_tenant != tenant))
                s->sole_tenant = UINT32_MAX; /* (no tenant: never one to trust) */
            else
                s->sole_tenant = tenant;
        }
        s->track_tenant = t;
        s->ntracks = maxid + 1;
    }
    PQclear(res);
    return DB_OK;
}

int stri_is_dead(const uint32_t *dead, size_t n, uint32_t track)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (dead[mid] < track) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && dead[lo] == track;
}

db_err_t stri_load_dead(db_conn_t *conn, uint32_t **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "SELECT id FROM tracks WHERE status = 'deleted' AND purged_at IS NULL "
                           "ORDER BY id",
                           0, NULL, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    uint32_t *d = malloc(((size_t)rows + 1) * sizeof *d);
    if (!d) {
        PQclear(res);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    for (int i = 0; i < rows; i++) d[i] = (uint32_t)strtoull(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    *out = d;
    *n = (size_t)rows;
    return DB_OK;
}

/*
 * One round trip when nothing changed: the generation.  When it moved, the
 * segment list and the deleted tracks are read again, in one snapshot.
 */
db_err_t stri_refresh(store_t *s, db_conn_t *conn, char *err, size_t errlen)
{
    PGresult *res;
    db_err_t rc = db_query(conn, "SELECT generation FROM store_meta WHERE id = 1", 0, NULL, 0,
                           &res, err, errlen);
    if (rc != DB_OK) return rc;
    int64_t gen = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (gen < 0) return db_errorf(DB_ERR_SCHEMA, err, errlen, "store_meta has no row");
    if (gen == s->generation) return DB_OK;

    int in_tx = PQtransactionStatus(db_pg(conn)) != PQTRANS_IDLE;
    if (!in_tx) {
        rc = db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen);
        if (rc != DB_OK) return rc;
    }
    int64_t *segs = NULL;
    uint32_t *dead = NULL;
    size_t nseg = 0, ndead = 0;
    rc = db_query(conn,
                  "SELECT (SELECT generation FROM store_meta WHERE id = 1), id "
                  "FROM print_segments ORDER BY id",
                  0, NULL, 0, &res, err, errlen);
    if (rc != DB_OK) goto done;
    nseg = (size_t)PQntuples(res);
    segs = malloc((nseg + 1) * sizeof *segs);
    if (!segs) {
        PQclear(res);
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nseg; i++) {
        segs[i] = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        gen = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    }
    PQclear(res);
    rc = stri_load_dead(conn, &dead, &ndead, err, errlen);
    if (rc == DB_OK) rc = load_tenants(s, conn, err, errlen);
    if (rc == DB_OK) {
        /* the counts read below must be those of the segments just listed */
        int64_t *keep = s->segments;
        size_t keepn = s->nsegments;
        s->segments = segs;
        s->nsegments = nseg;
        rc = load_counts(s, conn, err, errlen);
        s->segments = keep;
        s->nsegments = keepn;
    }
done:
    if (!in_tx) {
        char e2[256];
        db_err_t rc2 = db_exec(conn, rc == DB_OK ? "COMMIT" : "ROLLBACK", e2, sizeof e2);
        if (rc == DB_OK && rc2 != DB_OK) rc = db_errorf(rc2, err, errlen, "%s", e2);
    }
    if (rc != DB_OK) {
        free(segs);
        free(dead);
        return rc;
    }
    free(s->segments);
    free(s->dead);
    s->segments = segs;
    s->nsegments = nseg;
    size_t kept = 0;
    for (size_t i = 0; i < s->ndirs; i++) {
        int live = 0;
        for (size_t k = 0; k < nseg && !live; k++) live = segs[k] == s->dirs[i].segment;
        if (live) s->dirs[kept++] = s->dirs[i];
        else free(s->dirs[i].starts);
    }
    s->ndirs = kept;
    s->dead = dead;
    s->ndead = ndead;
    s->generation = gen;
    return DB_OK;
}

/* ---- segment tables and COPY --------------------------------------------- */

db_err_t stri_create_segment_table(db_conn_t *conn, int64_t segment, char *err, size_t errlen)
{
    char sql[512];
    /* data is stored uncompressed (it is already compact) and, when a row of
     * a very common key exceeds the TOAST threshold, out of line */
    snprintf(sql, sizeof sql,
             "CREATE TABLE postings_%lld (start int4 NOT NULL, data bytea NOT NULL) "
             "WITH (fillfactor = 100);"
             "ALTER TABLE postings_%lld ALTER COLUMN data SET STORAGE EXTERNAL",
             (long long)segment, (long long)segment);
    return db_exec(conn, sql, err, errlen);
}

db_err_t stri_new_segment(db_conn_t *conn, int level, size_t prints, size_t tracks, int64_t *id,
                          char *err, size_t errlen)
{
    char a[32], b[32], c[32], d[32];
    snprintf(a, sizeof a, "%u", STORE_KEY_SPACE);
    snprintf(b, sizeof b, "%d", level);
    snprintf(c, sizeof c, "%zu", prints);
    snprintf(d, sizeof d, "%zu", tracks);
    const char *params[4] = {a, b, c, d};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "INSERT INTO print_segments (key_lo, key_hi, level, prints, tracks) "
                           "VALUES (0, $1, $2, $3, $4) RETURNING id",
                           4, params, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return stri_create_segment_table(conn, *id, err, errlen);
}

db_err_t stri_index_segment_table(db_conn_t *conn, int64_t segment, char *err, size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "ALTER TABLE postings_%lld ADD CONSTRAINT postings_%lld_pkey PRIMARY KEY (start)",
             (long long)segment, (long long)segment);
    return db_exec(conn, sql, err, errlen);
}

#define COPY_FLUSH (1u << 20)

static int copy_flush(stri_copy_t *c)
{
    if (c->failed || !c->len) return c->failed;
    if (PQputCopyData(db_pg(c->conn), (const char *)c->buf, (int)c->len) != 1) c->failed = 1;
    c->len = 0;
    return c->failed;
}

static int copy_put(stri_copy_t *c, const void *p, size_t n)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : COPY_FLUSH + 4096;
        while (cap < c->len + n) cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) return -1;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    return 0;
}

db_err_t stri_copy_begin(stri_copy_t *c, db_conn_t *conn, int64_t segment, char *err,
                         size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->conn = conn;
    char sql[128];
    snprintf(sql, sizeof sql, "COPY postings_%lld (start, data) FROM STDIN (FORMAT binary)",
             (long long)segment);
    PGresult *res = PQexec(db_pg(conn), sql);
    int ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    db_err_t rc = ok ? DB_OK : db_result_error(conn, res, "COPY", err, errlen);
    PQclear(res);
    if (rc != DB_OK) return rc;
    static const uint8_t header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,
                                       0, 0, 0, 0, 0, 0, 0, 0};
    if (copy_put(c, header, sizeof header)) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    return DB_OK;
}

int stri_copy_row(void *ctx, uint32_t start, const uint8_t *data, size_t len)
{
    stri_copy_t *c = ctx;
    uint8_t head[14];
    uint16_t nf = htons(2);
    uint32_t l4 = htonl(4), v = htonl(start), ld = htonl((uint32_t)len);
    memcpy(head, &nf, 2);
    memcpy(head + 2, &l4, 4);
    memcpy(head + 6, &v, 4);
    memcpy(head + 10, &ld, 4);
    if (copy_put(c, head, sizeof head) || copy_put(c, data, len)) return DB_ERR_NOMEM;
    c->rows++;
    if (c->len >= COPY_FLUSH && copy_flush(c)) return DB_ERR_CONNECT;
    return 0;
}

db_err_t stri_copy_end(stri_copy_t *c, char *err, size_t errlen)
{
    PGconn *pg = db_pg(c->conn);
    uint16_t trailer = htons(0xffff);
    db_err_t rc = DB_OK;
    if (copy_put(c, &trailer, 2)) rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    if (rc == DB_OK) copy_flush(c);
    if (PQputCopyEnd(pg, rc == DB_OK && !c->failed ? NULL : "aborted by earmark") != 1)
        c->failed = 1;
    PGresult *res;
    while ((res = PQgetResult(pg))) {
        if (rc == DB_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = db_result_error(c->conn, res, "COPY", err, errlen);
        PQclear(res);
    }
    if (rc == DB_OK && c->failed)
        rc = db_result_error(c->conn, NULL, "COPY", err, errlen);
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    return rc;
}

/* ---- batches ------------------------------------------------------------- */

struct store_batch {
    store_t *store;
    db_conn_t *conn;
    store_posting_t *p;
    size_t n, cap;
    uint32_t *tracks;
    size_t ntracks, tracks_cap;
};

db_err_t store_batch_begin(store_t *s, db_conn_t *conn, store_batch_t **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    store_batch_t *b = calloc(1, sizeof *b);
    if (!b) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    db_err_t rc = db_exec(conn, "BEGIN", err, errlen);
    if (rc != DB_OK) {
        free(b);
        return rc;
    }
    b->store = s;
    b->conn = conn;
    *out = b;
    return DB_OK;
}

db_err_t store_batch_add(store_batch_t *b, uint32_t track, const fp_print_t *p, size_t n,
                         char *err, size_t errlen)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + n) cap *= 2;
        store_posting_t *x = realloc(b->p, cap * sizeof *x);
        if (!x) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        b->p = x;
        b->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t key;
        if (store_key(p[i].hash, &key))
            return db_errorf(DB_ERR_INVALID, err, errlen,
                              "print %zu of track %u has hash 0x%08x, outside the store's layout",
                              i, track, p[i].hash);
        b->p[b->n + i] = (store_posting_t){key, track, p[i].t, store_f_pack(p[i].f), 0};
    }
    b->n += n;
    if (b->ntracks == b->tracks_cap) {
        size_t cap = b->tracks_cap ? 2 * b->tracks_cap : 64;
        uint32_t *x = realloc(b->tracks, cap * sizeof *x);
        if (!x) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        b->tracks = x;
        b->tracks_cap = cap;
    }
    b->tracks[b->ntracks++] = track;
    return DB_OK;
}

size_t store_batch_prints(const store_batch_t *b)
{
    return b ? b->n : 0;
}

static void batch_free(store_batch_t *b)
{
    free(b->p);
    free(b->tracks);
    free(b);
}

void store_batch_abort(store_batch_t *b)
{
    if (!b) return;
    PGconn *pg = db_pg(b->conn);
    if (PQtransactionStatus(pg) != PQTRANS_IDLE && PQtransactionStatus(pg) != PQTRANS_UNKNOWN)
        PQclear(PQexec(pg, "ROLLBACK"));
    batch_free(b);
}

db_err_t stri_write_segment(db_conn_t *conn, const store_posting_t *p, size_t n, int level,
                            size_t ntracks, int64_t *segment, char *err, size_t errlen)
{
    int64_t id;
    db_err_t rc = stri_new_segment(conn, level, n, ntracks, &id, err, errlen);
    if (rc != DB_OK) return rc;
    stri_copy_t cp;
    rc = stri_copy_begin(&cp, conn, id, err, errlen);
    if (rc != DB_OK) return rc;
    size_t written = 0;
    db_err_t erc = store_rows_encode(p, n, stri_copy_row, &cp, &written);
    rc = stri_copy_end(&cp, err, errlen);
    if (erc != DB_OK) return db_errorf(erc, err, errlen, "encoding the segment's rows: %s",
                                        db_strerror(erc));
    if (rc != DB_OK) return rc;
    rc = stri_index_segment_table(conn, id, err, errlen);
    if (rc != DB_OK) return rc;
    uint32_t *counts = calloc(STORE_KEY_SPACE, sizeof *counts);
    if (!counts) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) counts[p[i].key]++;
    rc = stri_save_counts(conn, id, counts, err, errlen);
    free(counts);
    if (rc != DB_OK) return rc;
    char sql[128];
    snprintf(sql, sizeof sql,
             "UPDATE print_segments SET rows = %lld, prints = %zu WHERE id = %lld",
             (long long)cp.rows, written, (long long)id);
    rc = db_exec(conn, sql, err, errlen);
    if (rc != DB_OK) return rc;
    *segment = id;
    return DB_OK;
}

db_err_t store_batch_commit(store_batch_t *b, int64_t *segment, char *err, size_t errlen)
{
    if (segment) *segment = 0;
    db_err_t rc = DB_OK;
    int64_t id = 0;
    if (b->n) {
        rc = store_postings_sort(b->p, b->n);
        if (rc != DB_OK) {
            db_errorf(rc, err, errlen, "out of memory sorting %zu prints", b->n);
            goto fail;
        }
        rc = stri_write_segment(b->conn, b->p, b->n, 0, b->ntracks, &id, err, errlen);
        if (rc != DB_OK) goto fail;
    }
    rc = db_exec(b->conn, "COMMIT", err, errlen);
    if (rc != DB_OK) goto fail;
    if (segment) *segment = id;
    batch_free(b);
    return DB_OK;
fail:
    store_batch_abort(b);
    return rc;
}
