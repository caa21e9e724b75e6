/*
 * store_merge.c -- merging segments.
 *
 * Every batch of the indexer adds a segment, and a lookup probes every
 * segment: segments must be merged as they accumulate.  The policy is
 * tiered, as in search engines: segments fall in size classes (powers of
 * 4 of their prints); when `fanin` segments share a class they are merged
 * into one of the next class, so each print is rewritten about
 * log4(total / batch) times and there are at most (fanin - 1) segments
 * per class.  `all` merges everything into one (after a bulk load, or to
 * purge deleted tracks).
 *
 * A merge streams: the key space is cut into ranges holding about
 * chunk_postings postings; for each range the sources' rows are read in key
 * order, decoded, stripped of deleted tracks, sorted, encoded and sent with
 * COPY into the new segment's table.  Sources are dropped and the new
 * segment published in the same transaction, so readers see either the old
 * segments or the new one.
 */
#include "store_internal.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERGE_LOCK "7415029361" /* pg_advisory_xact_lock key of merges */

void store_merge_opts_default(store_merge_opts_t *o)
{
    o->fanin = 4;
    o->all = 0;
    o->chunk_postings = (size_t)8 << 20;
}

typedef struct seg {
    int64_t id;
    int64_t prints;
    int level;
} seg_t;

static int cmp_seg(const void *a, const void *b)
{
    const seg_t *x = a, *y = b;
    if (x->prints != y->prints) return x->prints < y->prints ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int size_class(int64_t prints)
{
    int c = 0;
    while (prints >= 4 && c < 40) {
        prints /= 4;
        c++;
    }
    return c;
}

/*
 * Choose what to merge among segs[0 .. n) (sorted by size): the smallest
 * class with fanin members (all of them, up to 2 * fanin), or everything
 * when o->all.  *pick receives indexes; returns how many (0: nothing).
 */
static size_t choose(const seg_t *segs, size_t n, const store_merge_opts_t *o, int have_dead,
                     size_t *pick)
{
    if (o->all) {
        if (n < 2 && !(n == 1 && have_dead)) return 0;
        for (size_t i = 0; i < n; i++) pick[i] = i;
        return n;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int c = size_class(segs[i].prints);
        while (j < n && size_class(segs[j].prints) == c) j++;
        if ((int)(j - i) >= o->fanin) {
            size_t k = 0;
            for (size_t x = i; x < j && k < (size_t)(2 * o->fanin); x++) pick[k++] = x;
            return k;
        }
        i = j;
    }
    return 0;
}

/* Append to *p the postings with keys in [k0, k1) of segment id. */
static db_err_t read_range(db_conn_t *conn, int64_t id, uint32_t k0, uint32_t k1,
                           const uint32_t *dead, size_t ndead, store_posting_t **p, size_t *n,
                           size_t *cap, char *err, size_t errlen)
{
    char sql[512], a[16], b[16];
    snprintf(sql, sizeof sql,
             "SELECT start, data FROM postings_%lld WHERE start >= coalesce("
             "(SELECT max(start) FROM postings_%lld WHERE start <= $1::int4), 0) "
             "AND start < $2::int4 ORDER BY start",
             (long long)id, (long long)id);
    snprintf(a, sizeof a, "%u", k0);
    snprintf(b, sizeof b, "%u", k1);
    const char *params[2] = {a, b};
    PGresult *res;
    db_err_t rc = db_query(conn, sql, 2, params, 1, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    for (int r = 0; r < rows && rc == DB_OK; r++) {
        uint32_t start = stri_int4(res, r, 0);
        size_t len, pos = 0;
        const uint8_t *data = stri_bytes(res, r, 1, &len);
        store_group_t g;
        int st;
        while ((st = store_row_next(data, len, &pos, &start, &g)) == 1) {
            if (g.key < k0 || g.key >= k1) continue;
            if (*n + g.count > *cap) {
                size_t c = *cap ? *cap : 65536;
                while (c < *n + g.count) c *= 2;
                store_posting_t *x = realloc(*p, c * sizeof *x);
                if (!x) {
                    rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
                    break;
                }
                *p = x;
                *cap = c;
            }
            if (store_group_decode(&g, *p + *n)) {
                st = -1;
                break;
            }
            size_t w = *n;
            for (uint32_t i = 0; i < g.count; i++)
                if (!ndead || !stri_is_dead(dead, ndead, (*p)[*n + i].track))
                    (*p)[w++] = (*p)[*n + i];
            *n = w;
        }
        if (st < 0 && rc == DB_OK)
            rc = db_errorf(DB_ERR_CORRUPT, err, errlen,
                            "a row of segment %lld does not decode", (long long)id);
    }
    PQclear(res);
    return rc;
}

/* One merge of segs[pick[0 .. k)] in the current transaction. */
static db_err_t merge_once(db_conn_t *conn, const seg_t *segs, const size_t *pick, size_t k,
                           const uint32_t *dead, size_t ndead, size_t chunk, char *err,
                           size_t errlen)
{
    int64_t total = 0;
    int level = 0;
    for (size_t i = 0; i < k; i++) {
        total += segs[pick[i]].prints;
        if (segs[pick[i]].level + 1 > level) level = segs[pick[i]].level + 1;
    }
    size_t nchunks = (size_t)(total / (int64_t)chunk) + 1;
    uint32_t step = (uint32_t)((STORE_KEY_SPACE + nchunks - 1) / nchunks);

    int64_t id;
    db_err_t rc = stri_new_segment(conn, level, 0, 0, &id, err, errlen);
    if (rc != DB_OK) return rc;

    store_posting_t *p = NULL;
    size_t cap = 0;
    int64_t prints = 0, rows = 0;
    uint32_t *counts = calloc(STORE_KEY_SPACE, sizeof *counts);
    if (!counts) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    for (uint32_t k0 = 0; k0 < STORE_KEY_SPACE && rc == DB_OK; k0 += step) {
        uint32_t k1 = k0 + step > STORE_KEY_SPACE ? STORE_KEY_SPACE : k0 + step;
        size_t n = 0;
        for (size_t i = 0; i < k && rc == DB_OK; i++)
            rc = read_range(conn, segs[pick[i]].id, k0, k1, dead, ndead, &p, &n, &cap, err,
                            errlen);
        if (rc != DB_OK || !n) continue;
        rc = store_postings_sort(p, n);
        if (rc != DB_OK) {
            db_errorf(rc, err, errlen, "out of memory sorting %zu postings", n);
            break;
        }
        stri_copy_t cp;
        rc = stri_copy_begin(&cp, conn, id, err, errlen);
        if (rc != DB_OK) break;
        size_t written = 0;
        db_err_t erc = store_rows_encode(p, n, stri_copy_row, &cp, &written);
        rc = stri_copy_end(&cp, err, errlen);
        if (erc != DB_OK && rc == DB_OK)
            rc = db_errorf(erc, err, errlen, "encoding merged rows: %s", db_strerror(erc));
        prints += (int64_t)written;
        rows += cp.rows;
        for (size_t i = 0; i < n; i++) counts[p[i].key]++;
    }
    free(p);
    if (rc == DB_OK) rc = stri_index_segment_table(conn, id, err, errlen);
    if (rc == DB_OK) rc = stri_save_counts(conn, id, counts, err, errlen);
    free(counts);
    if (rc != DB_OK) return rc;

    /* publish: the new segment's figures, the sources gone */
    size_t sqlcap = 256 + k * 96, len = 0;
    char *sql = malloc(sqlcap);
    if (!sql) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    len += (size_t)snprintf(sql + len, sqlcap - len,
                            "UPDATE print_segments SET prints = %lld, rows = %lld, tracks = "
                            "(SELECT coalesce(sum(tracks), 0) FROM print_segments WHERE id IN (",
                            (long long)prints, (long long)rows);
    for (size_t i = 0; i < k; i++)
        len += (size_t)snprintf(sql + len, sqlcap - len, "%s%lld", i ? "," : "",
                                (long long)segs[pick[i]].id);
    len += (size_t)snprintf(sql + len, sqlcap - len, ")) WHERE id = %lld; DELETE FROM print_segments WHERE id IN (",
                            (long long)id);
    for (size_t i = 0; i < k; i++)
        len += (size_t)snprintf(sql + len, sqlcap - len, "%s%lld", i ? "," : "",
                                (long long)segs[pick[i]].id);
    len += (size_t)snprintf(sql + len, sqlcap - len, ")");
    rc = db_exec(conn, sql, err, errlen);
    for (size_t i = 0; i < k && rc == DB_OK; i++) {
        snprintf(sql, sqlcap, "DROP TABLE postings_%lld", (long long)segs[pick[i]].id);
        rc = db_exec(conn, sql, err, errlen);
    }
    free(sql);
    return rc;
}

db_err_t store_merge(store_t *s, db_conn_t *conn, const store_merge_opts_t *opts, int *merges,
                     char *err, size_t errlen)
{
    store_merge_opts_t o;
    if (opts) o = *opts;
    else store_merge_opts_default(&o);
    if (o.fanin < 2) o.fanin = 2;
    if (o.chunk_postings < 4096) o.chunk_postings = 4096;
    if (merges) *merges = 0;
    (void)s;

    for (;;) {
        db_err_t rc = db_exec(conn, "BEGIN; SELECT pg_advisory_xact_lock(" MERGE_LOCK ")", err,
                              errlen);
        if (rc != DB_OK) return rc;
        PGresult *res = NULL;
        seg_t *segs = NULL;
        size_t *pick = NULL;
        uint32_t *dead = NULL;
        size_t ndead = 0, k = 0;
        rc = db_query(conn, "SELECT id, prints, level FROM print_segments", 0, NULL, 0, &res, err,
                      errlen);
        if (rc != DB_OK) goto fail;
        size_t n = (size_t)PQntuples(res);
        segs = malloc((n + 1) * sizeof *segs);
        pick = malloc((n + 1) * sizeof *pick);
        if (!segs || !pick) {
            rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            segs[i] = (seg_t){strtoll(PQgetvalue(res, (int)i, 0), NULL, 10),
                              strtoll(PQgetvalue(res, (int)i, 1), NULL, 10),
                              atoi(PQgetvalue(res, (int)i, 2))};
        PQclear(res);
        res = NULL;
        qsort(segs, n, sizeof *segs, cmp_seg);
        rc = stri_load_dead(conn, &dead, &ndead, err, errlen);
        if (rc != DB_OK) goto fail;
        k = choose(segs, n, &o, ndead > 0, pick);
        if (k) rc = merge_once(conn, segs, pick, k, dead, ndead, o.chunk_postings, err, errlen);
        /* a merge of the whole store has dropped every deleted track's postings */
        if (rc == DB_OK && k && k == n && ndead) {
            char *ids = malloc(ndead * 11 + 128);
            if (!ids) {
                rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
                goto fail;
            }
            size_t l = (size_t)sprintf(ids, "UPDATE tracks SET purged_at = now() WHERE id IN (");
            for (size_t i = 0; i < ndead; i++) l += (size_t)sprintf(ids + l, i ? ",%u" : "%u", dead[i]);
            sprintf(ids + l, ")");
            rc = db_exec(conn, ids, err, errlen);
            free(ids);
        }
        if (rc != DB_OK) goto fail;
        rc = db_exec(conn, "COMMIT", err, errlen);
        free(segs);
        free(pick);
        free(dead);
        if (rc != DB_OK) return rc;
        if (!k) return DB_OK;
        if (merges) (*merges)++;
        if (o.all) return DB_OK;
        continue;
    fail:
        PQclear(res);
        free(segs);
        free(pick);
        free(dead);
        PQclear(PQexec(db_pg(conn), "ROLLBACK"));
        return rc;
    }
}
