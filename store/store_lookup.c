/*
 * store_lookup.c -- the postings of a clip's hashes, and store figures.
 *
 * One statement fetches, for every live segment, the row that can hold
 * each of the clip's keys (the row with the greatest start <= key: an
 * index probe per key and segment).  The rows come back in binary; each
 * distinct row is walked group by group, skipping by byte length every
 * group whose key the clip does not have, and the clip's groups are
 * decoded into hits.  A key whose postings over all segments exceed
 * max_postings is skipped as too common to tell recordings apart.
 */
#include "store_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct qkey {
    uint32_t key;
    uint32_t idx;   /* the query print */
} qkey_t;

typedef struct row_ref {
    uint32_t seg;   /* index into the segment list */
    uint32_t start;
    int tuple;      /* in the result; -1: from the cache */
    const uint8_t *data; /* cached rows: decoded (stri_drow_t), lent by the cache */
} row_ref_t;

/* Rows found in the cache: references, and the loans to return. */
typedef struct cached {
    row_ref_t *rows;
    store_cache_loan_t **loans;
    size_t n, cap;
} cached_t;

/*
 * Sort q[0 .. n) (made in idx order) by key, then idx: a stable LSD radix
 * sort by key, 12 bits a pass, through tmp.  Keys are below
 * STORE_KEY_SPACE (24 bits).  A tenth of qsort's time on a clip's ~1 600
 * prints.
 */
_Static_assert(STORE_KEY_SPACE <= 1u << 24, "sort_qkeys sorts 24-bit keys");

static void sort_qkeys(qkey_t *q, qkey_t *tmp, size_t n)
{
    qkey_t *src = q, *dst = tmp;
    size_t count[4096];
    for (int shift = 0; shift < 24; shift += 12) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++) count[(src[i].key >> shift) & 4095]++;
        size_t sum = 0;
        for (size_t d = 0; d < 4096; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[count[(src[i].key >> shift) & 4095]++] = src[i];
        qkey_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != q) memcpy(q, src, n * sizeof *q);
}

static int cmp_row(const void *a, const void *b)
{
    const row_ref_t *x = a, *y = b;
    if (x->seg != y->seg) return x->seg < y->seg ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_found(const void *a, const void *b)
{
    const stri_group_t *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Append grp to (*found)[0 .. *n), growing it; -1 out of memory. */
static int add_found(stri_group_t **found, size_t *n, size_t *cap, stri_group_t grp)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 1024;
        stri_group_t *x = realloc(*found, nc * sizeof *x);
        if (!x) return -1;
        *found = x;
        *cap = nc;
    }
    (*found)[(*n)++] = grp;
    return 0;
}

static int grow_cached(cached_t *c)
{
    size_t nc = c->cap ? 2 * c->cap : 256;
    row_ref_t *x = realloc(c->rows, nc * sizeof *x);
    if (x) c->rows = x;
    store_cache_loan_t **l = realloc(c->loans, nc * sizeof *l);
    if (l) c->loans = l;
    if (!x || !l) return -1;
    c->cap = nc;
    return 0;
}

/* The first index of keys[0 .. n) (sorted) whose key is >= key. */
static size_t lower_key(const uint32_t *keys, size_t n, uint32_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Index of key in keys[0 .. n) (sorted, distinct), or -1. */
static long find_key(const uint32_t *keys, size_t n, uint32_t key)
{
    size_t lo = lower_key(keys, n, key);
    return lo < n && keys[lo] == key ? (long)lo : -1;
}

/*
 * The row directory of a segment: the start key of every row, read once
 * (4 bytes a row, 1/16 byte a print) and kept while the segment lives.
 * With it a lookup asks for exact rows (start = ANY(...)), which
 * PostgreSQL answers about four times faster than finding, key by key,
 * the row with the greatest start below it.
 */
static db_err_t dir_of(store_t *s, db_conn_t *conn, int64_t segment, const stri_dir_t **out,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < s->ndirs; i++)
        if (s->dirs[i].segment == segment) {
            *out = &s->dirs[i];
            return DB_OK;
        }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT start FROM postings_%lld ORDER BY start", (long long)segment);
    PGresult *res;
    db_err_t rc = db_query(conn, sql, 0, NULL, 1, &res, err, errlen);
    if (rc != DB_OK) return rc;
    size_t n = (size_t)PQntuples(res);
    uint32_t *starts = malloc((n + 1) * sizeof *starts);
    stri_dir_t *d = realloc(s->dirs, (s->ndirs + 1) * sizeof *d);
    if (!starts || !d) {
        free(starts);
        if (d) s->dirs = d;
        PQclear(res);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    s->dirs = d;
    for (size_t i = 0; i < n; i++) starts[i] = stri_int4(res, (int)i, 0);
    PQclear(res);
    s->dirs[s->ndirs] = (stri_dir_t){segment, starts, n};
    *out = &s->dirs[s->ndirs++];
    return DB_OK;
}

/* Index of the row holding key (greatest start <= key), or -1. */
static long row_of(const stri_dir_t *d, uint32_t key)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->starts[mid] <= key) lo = mid + 1;
        else hi = mid;
    }
    return (long)lo - 1;
}

/*
 * The statement and its parameters for keys[0 .. nkeys) (ascending): for
 * each segment, the distinct rows that can hold them and that the cache
 * (if any) does not, as an int4[] literal ($i); the rows the cache holds
 * go to *c.  *sql and params[i] are malloc'd; segments with no row to
 * fetch get none.
 */
static db_err_t lookup_sql(store_t *s, db_conn_t *conn, const uint32_t *keys, size_t nkeys,
                           char **sql, char ***params, int *nparams, cached_t *c, char *err,
                           size_t errlen)
{
    /* the rows of an earlier attempt (over another list of segments) */
    for (size_t i = 0; i < c->n; i++) store_cache_return(s->cache, c->loans[i]);
    c->n = 0;
    *sql = NULL;
    *params = calloc(s->nsegments + 1, sizeof **params);
    *nparams = 0;
    size_t cap = 256 + s->nsegments * 160, len = 0;
    *sql = malloc(cap);
    if (!*params || !*sql) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    (*sql)[0] = '\0';
    for (size_t i = 0; i < s->nsegments; i++) {
        const stri_dir_t *d = NULL;
        db_err_t rc = dir_of(s, conn, s->segments[i], &d, err, errlen);
        if (rc != DB_OK) return rc;
        char *arr = malloc(nkeys * 11 + 3);
        if (!arr) return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        size_t al = 0;
        long last = -1;
        arr[al++] = '{';
        for (size_t k = 0; k < nkeys; k++) {
            long r = row_of(d, keys[k]);
            if (r < 0 || r == last) continue;
            last = r;
            if (s->cache) {
                if (c->n == c->cap && grow_cached(c)) {
                    free(arr);
                    return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
                }
                const uint8_t *data;
                size_t dlen;
                if (store_cache_lend(s->cache, s->segments[i], d->starts[r], &data, &dlen,
                                     &c->loans[c->n])) {
                    c->rows[c->n++] = (row_ref_t){(uint32_t)i, d->starts[r], -1, data};
                    continue;
                }
            }
            al += (size_t)sprintf(arr + al, al > 1 ? ",%u" : "%u", d->starts[r]);
        }
        arr[al++] = '}';
        arr[al] = '\0';
        if (al == 2) {
            free(arr);
            continue;
        }
        (*params)[(*nparams)++] = arr;
        len += (size_t)snprintf(*sql + len, cap - len,
                                "%sSELECT %zu::int4, start, data FROM postings_%lld "
                                "WHERE start = ANY($%d::int4[])",
                                len ? " UNION ALL " : "", i, (long long)s->segments[i], *nparams);
    }
    return DB_OK;
}

static void free_params(char **params, int n)
{
    if (!params) return;
    for (int i = 0; i < n; i++) free(params[i]);
    free(params);
}

/*
 * The generation check of a lookup, sent without waiting for the answer
 * (PQsendQuery): the lookup chooses its keys and borrows its cached rows
 * meanwhile, and reads the answer (gen_recv) before it uses anything else
 * of the database.  Hides the round trip, ~0.4 ms of a lookup's ~10.
 * Returns 1 when sent; 0 when not (the caller then checks synchronously).
 */
static int gen_send(db_conn_t *conn)
{
    PGconn *pg = db_pg(conn);
    return PQstatus(pg) == CONNECTION_OK && PQisBusy(pg) == 0 &&
           PQsendQuery(pg, "SELECT generation FROM store_meta WHERE id = 1") == 1;
}

/* The answer to gen_send, every result read; 0 with *gen, -1 when there is
 * none to trust (the caller then checks synchronously, which reports). */
static int gen_recv(db_conn_t *conn, int64_t *gen)
{
    PGconn *pg = db_pg(conn);
    PGresult *r;
    int ok = 0;
    while ((r = PQgetResult(pg))) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !ok) {
            *gen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            ok = 1;
        }
        PQclear(r);
    }
    return ok ? 0 : -1;
}

/* Is every segment's row directory loaded (so lookup_sql runs no query)? */
static int dirs_loaded(const store_t *s)
{
    for (size_t i = 0; i < s->nsegments; i++) {
        size_t d = 0;
        while (d < s->ndirs && s->dirs[d].segment != s->segments[i]) d++;
        if (d == s->ndirs) return 0;
    }
    return 1;
}

db_err_t store_hits(store_t *s, db_conn_t *conn, int64_t tenant, const fp_print_t *q, size_t nq,
                    size_t max_postings, size_t max_hits, const fp_score_opts_t *sieve_opts,
                    match_plan_t *plan, fp_hit_t **out, size_t *n, size_t *cap, size_t *fetched,
                    size_t *skipped, char *err, size_t errlen)
{
    db_err_t rc = DB_OK;
    int pending = gen_send(conn);
    if (!pending) {
        rc = stri_refresh(s, conn, err, errlen);
        if (rc != DB_OK) return rc;
    }

    qkey_t *qk = NULL;
    uint32_t *keys = NULL, *totals = NULL, *qfirst = NULL, *qcount = NULL;
    uint64_t *cost = NULL;
    uint8_t *chosen = NULL, *part1 = NULL, *kpart = NULL;
    stri_gatherer_t *gatherer = NULL;
    int two = 0;
    row_ref_t *rows = NULL;
    stri_group_t *found = NULL;
    fp_ref_t *refs = NULL;
    uint16_t *fs = NULL;
    uint32_t *qprint = NULL;
    char *sql = NULL, **params = NULL;
    int nparams = 0, early = 0;
    PGresult *res = NULL;
    size_t nkeys = 0, nfound = 0, found_cap = 0, m = 0;
    size_t skipped0 = skipped ? *skipped : 0;
    cached_t cached = {0};

    qk = malloc((2 * nq + 1) * sizeof *qk); /* and room to sort */
    keys = malloc((nq + 1) * sizeof *keys);
    cost = malloc((nq + 1) * sizeof *cost);
    chosen = malloc(nq + 1);
    part1 = malloc(nq + 1);
    kpart = malloc(nq + 1);
    if (!qk || !keys || !cost || !chosen || !part1 || !kpart) goto nomem;
select:
    nkeys = m = 0;
    two = 0;
    if (skipped) *skipped = skipped0;
    if (nq && s->nsegments) {
        for (size_t i = 0; i < nq; i++) {
            uint32_t key;
            if (store_key(q[i].hash, &key)) continue;
            qk[m++] = (qkey_t){key, (uint32_t)i};
        }
        sort_qkeys(qk, qk + nq, m);
        /* what each key costs, from the segments' counts: absent keys are
         * not fetched, too common ones are skipped, and of the rest the
         * rarest are taken within the budget */
        size_t nc = 0;
        /* a count at the top of the one-byte scale only says "at least
         * ~60 000": under a budget such a key cannot be priced, and is not
         * fetched */
        uint32_t unpriced = max_hits ? store_count_unpack(255) : UINT32_MAX;
        for (size_t i = 0; i < m;) {
            size_t j = i;
            while (j < m && qk[j].key == qk[i].key) j++;
            uint32_t postings = s->counts ? s->counts[qk[i].key] : 1;
            if (postings && (!max_postings || postings <= max_postings) && postings < unpriced) {
                keys[nc] = qk[i].key;
                cost[nc++] = (uint64_t)postings * (j - i);
            } else if (postings && skipped) {
                (*skipped)++;
            }
            i = j;
        }
        match_budget_select(cost, nc, s->counts ? max_hits : 0, chosen);
        /* a plan's first part: what a budget of first_hits takes (the
         * rarest keys: a subset of what the whole budget takes) */
        size_t in1 = 0;
        if (plan && s->counts && plan->first_hits) {
            match_budget_select(cost, nc, plan->first_hits, part1);
            for (size_t i = 0; i < nc; i++) in1 += chosen[i] && part1[i];
        }
        for (size_t i = 0; i < nc; i++) {
            if (chosen[i]) {
                kpart[nkeys] = in1 && !part1[i] ? 2 : 1;
                two |= kpart[nkeys] == 2;
                keys[nkeys++] = keys[i];
            } else if (skipped) {
                (*skipped)++;
            }
        }
    }
    /* while the generation is on its way: the rows the cache lends */
    if (pending && nkeys && dirs_loaded(s)) {
        rc = lookup_sql(s, conn, keys, nkeys, &sql, &params, &nparams, &cached, err, errlen);
        early = 1;
    }
    if (pending) {
        int64_t gen = -1, before = s->generation;
        pending = 0;
        if (gen_recv(conn, &gen) || gen != before) {
            db_err_t r2 = stri_refresh(s, conn, err, errlen);
            if (r2 != DB_OK) {
                rc = r2;
                goto done;
            }
            if (s->generation != before) { /* the store moved: choose again */
                free(sql);
                free_params(params, nparams);
                sql = NULL;
                params = NULL;
                nparams = early = 0;
                rc = DB_OK;
                goto select;
            }
        }
    }
    if (rc != DB_OK || !nkeys) goto done;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (!(attempt == 0 && early)) {
            free(sql);
            free_params(params, nparams);
            rc = lookup_sql(s, conn, keys, nkeys, &sql, &params, &nparams, &cached, err, errlen);
        }
        if (rc == DB_OK && !nparams && !cached.n) goto done;
        if (rc == DB_OK && nparams)
            rc = db_query(conn, sql, nparams, (const char *const *)params, 1, &res, err, errlen);
        /* a merge may have dropped a segment between refresh and query:
         * reload the list once and try again */
        if (rc != DB_ERR_QUERY || attempt) break;
        s->generation = -1;
        rc = stri_refresh(s, conn, err, errlen);
        if (rc != DB_OK) break;
    }
    if (rc != DB_OK) goto done;

    /* the rows fetched (kept in the cache for next time) and the rows the
     * cache had, in one list by (segment, start) */
    int nfetched = res ? PQntuples(res) : 0;
    int ntup = nfetched + (int)cached.n;
    rows = malloc(((size_t)ntup + 1) * sizeof *rows);
    if (!rows) goto nomem;
    for (int i = 0; i < nfetched; i++) {
        if (PQgetlength(res, i, 0) != 4 || PQgetlength(res, i, 1) != 4 ||
            stri_int4(res, i, 0) >= s->nsegments) {
            rc = db_errorf(DB_ERR_CORRUPT, err, errlen, "unexpected lookup result");
            goto done;
        }
        rows[i] = (row_ref_t){stri_int4(res, i, 0), stri_int4(res, i, 1), i, NULL};
        if (s->cache) { /* kept decoded (a row that does not decode is not kept) */
            size_t len, bloblen;
            const uint8_t *data = stri_bytes(res, i, 2, &len);
            uint8_t *blob;
            db_err_t drc = stri_row_decode(rows[i].start, data, len, &blob, &bloblen);
            if (drc == DB_ERR_NOMEM) goto nomem;
            if (drc == DB_OK)
                store_cache_put(s->cache, s->segments[rows[i].seg], rows[i].start, blob, bloblen);
            free(blob);
        }
    }
    if (cached.n) memcpy(rows + nfetched, cached.rows, cached.n * sizeof *rows);
    qsort(rows, (size_t)ntup, sizeof *rows, cmp_row);

    totals = calloc(nkeys, sizeof *totals);
    if (!totals) goto nomem;
    for (int r = 0; r < ntup; r++) {
        if (r && rows[r].seg == rows[r - 1].seg && rows[r].start == rows[r - 1].start) continue;
        if (rows[r].tuple < 0) { /* from the cache: decoded */
            const uint8_t *blob = rows[r].data;
            uint32_t ng = ((const stri_drow_t *)blob)->ngroups;
            const stri_drow_group_t *dg = stri_drow_groups(blob);
            const fp_ref_t *drefs = stri_drow_refs(blob);
            const uint16_t *dfs = stri_drow_fs(blob);
            if (!ng) continue;
            /* the clip's keys within the row's (a row holds tens of
             * groups, the clip about one key of them): each found in the
             * row's groups, ascending by key, by bisection */
            uint32_t at = 0;
            for (size_t k = lower_key(keys, nkeys, dg[0].key);
                 k < nkeys && keys[k] <= dg[ng - 1].key; k++) {
                uint32_t lo = at, hi = ng;
                while (lo < hi) {
                    uint32_t mid = lo + (hi - lo) / 2;
                    if (dg[mid].key < keys[k]) lo = mid + 1;
                    else hi = mid;
                }
                at = lo;
                if (lo == ng || dg[lo].key != keys[k]) continue;
                if (add_found(&found, &nfound, &found_cap,
                              (stri_group_t){.key = (uint32_t)k, .count = dg[lo].count,
                                             .decoded = drefs + dg[lo].first,
                                             .decoded_f = dfs + dg[lo].first,
                                             .part = kpart[k]}))
                    goto nomem;
                totals[k] += dg[lo].count;
            }
            continue;
        }
        size_t len;
        const uint8_t *data = stri_bytes(res, rows[r].tuple, 2, &len);
        size_t pos = 0;
        uint32_t prev = rows[r].start;
        store_group_t g;
        int st;
        while ((st = store_row_next(data, len, &pos, &prev, &g)) == 1) {
            long k = find_key(keys, nkeys, g.key);
            if (k < 0) continue;
            if (add_found(&found, &nfound, &found_cap,
                          (stri_group_t){.key = (uint32_t)k, .count = g.count, .data = g.data,
                                         .len = g.len, .part = kpart[k]}))
                goto nomem;
            totals[k] += g.count;
        }
        if (st < 0) {
            rc = db_errorf(DB_ERR_CORRUPT, err, errlen,
                            "row %u of segment %lld does not decode", rows[r].start,
                            (long long)s->segments[rows[r].seg]);
            goto done;
        }
    }
    qsort(found, nfound, sizeof *found, cmp_found);

    /* how many query prints share each key (qk is sorted by key), and so
     * how many hits */
    qfirst = malloc(nkeys * sizeof *qfirst);
    qcount = calloc(nkeys, sizeof *qcount);
    if (!qfirst || !qcount) goto nomem;
    for (size_t k = 0, qi = 0; k < nkeys; k++) {
        while (qi < m && qk[qi].key < keys[k]) qi++;
        qfirst[k] = (uint32_t)qi;
        while (qi < m && qk[qi].key == keys[k]) qi++, qcount[k]++;
    }
    size_t need = 0, postings = 0, ng = 0;
    for (size_t f = 0; f < nfound; f++) {
        uint32_t k = found[f].key;
        if (max_postings && totals[k] > max_postings) {
            if (skipped && (f == 0 || found[f - 1].key != k)) (*skipped)++;
            continue; /* not decoded */
        }
        need += (size_t)qcount[k] * found[f].count;
        found[f].at = postings;
        postings += found[f].count;
        found[ng++] = found[f];
    }
    if (fetched) *fetched += need;
    if (!sieve_opts && need) {
        if (need > SIZE_MAX / sizeof(fp_hit_t) - *n) goto nomem;
        if (*n + need > *cap) { /* once, not by doubling */
            fp_hit_t *x = realloc(*out, (*n + need) * sizeof *x);
            if (!x) goto nomem;
            *out = x;
            *cap = *n + need;
        }
    }
    /* every group's postings, decoded once (8 bytes a posting, a third of
     * a hit's size, and 2 of packed frequency beside) or read in the
     * cache, and, with a sieve, counted in it while they are in the
     * cache; then the hits of each query print of the key, or with a
     * sieve only those it keeps: the chance hits are never written
     * (store_gather.c) */
    refs = malloc((postings ? postings : 1) * sizeof *refs);
    fs = malloc((postings ? postings : 1) * sizeof *fs);
    qprint = malloc((m ? m : 1) * sizeof *qprint);
    if (!refs || !fs || !qprint) goto nomem;
    for (size_t i = 0; i < m; i++) qprint[i] = qk[i].idx;
    stri_gather_t gather = {s, tenant, found, ng, q, nq, qprint, qfirst, qcount,
                            refs, fs, need ? sieve_opts : NULL, need};
    if (!two) {
        rc = stri_gather(&gather, &s->pool, s->threads, s->thread_postings, out, n, cap, err,
                         errlen);
        goto done;
    }
    /* in two parts: the first part's hits, sieved, for plan->decide; then
     * either the rest for the tracks it chose, or the whole lookup */
    size_t n0 = *n;
    rc = stri_gather_open(&gather, &s->pool, s->threads, s->thread_postings, &gatherer, err,
                          errlen);
    if (rc == DB_OK) rc = stri_gather_count(gatherer, 1, err, errlen);
    if (rc != DB_OK) goto done;
    /* a first part that keeps no hit has nothing to decide (the common
     * case of a clip that is not in the catalog): on in full */
    int k = 0;
    if (!stri_gather_keeps_none(gatherer)) {
        rc = stri_gather_select(gatherer, out, n, cap, err, errlen);
        if (rc != DB_OK) goto done;
        k = plan->decide(plan->ctx, *out + n0, *n - n0, plan->tracks, plan->max_tracks);
        if (k < 0) goto nomem;
    }
    if (k > 0) {
        plan->narrowed = 1;
        plan->ntracks = (size_t)k;
        plan->first_n = *n - n0;
        rc = stri_gather_narrow(gatherer, 2, plan->tracks, (size_t)k, out, n, cap, err, errlen);
    } else {
        *n = n0;
        rc = stri_gather_count(gatherer, 2, err, errlen);
        if (rc == DB_OK) rc = stri_gather_select(gatherer, out, n, cap, err, errlen);
    }
    goto done;
nomem:
    rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
done:
    stri_gather_close(gatherer);
    free(part1);
    free(kpart);
    free(refs);
    free(fs);
    free(qprint);
    PQclear(res);
    free(qk);
    free(keys);
    free(cost);
    free(chosen);
    free(totals);
    free(qfirst);
    free(qcount);
    free(rows);
    free(found);
    free(sql);
    free_params(params, nparams);
    for (size_t i = 0; i < cached.n; i++) store_cache_return(s->cache, cached.loans[i]);
    free(cached.rows);
    free(cached.loans);
    return rc;
}

void store_set_cache(store_t *s, store_cache_t *c)
{
    s->cache = c;
}

void store_set_threads(store_t *s, int threads, size_t min_postings)
{
    s->threads = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    s->thread_postings = min_postings ? min_postings : 32768;
}

/* ---- the catalog's size ------------------------------------------------------ */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

db_err_t store_hours(store_t *s, db_conn_t *conn, int64_t tenant, double *hours, char *err,
                     size_t errlen)
{
    double now = mono_now();
    for (unsigned i = 0; i < STRI_HOURS_SLOTS; i++) {
        const stri_hours_t *h = &s->hours[i];
        if (h->generation != -2 && h->tenant == tenant && h->generation == s->generation &&
            now - h->at < STRI_HOURS_TTL) {
            *hours = h->hours;
            return DB_OK;
        }
    }
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)tenant);
    const char *p[1] = {t};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "SELECT (coalesce(sum(t.duration_s), 0) / 3600)::text FROM tracks t "
                           "WHERE t.status = 'indexed' AND ($1::bigint = 0 OR t.tenant_id = $1) "
                           "AND NOT EXISTS (SELECT 1 FROM track_copy_links l JOIN tracks o ON "
                           "o.id = l.other_id WHERE l.track_id = t.id AND o.status = 'indexed' "
                           "AND ($1 = 0 OR o.tenant_id = $1) AND (l.relation = 'contained_in' OR "
                           "(l.relation = 'same' AND l.other_id < t.id)))",
                           1, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    *hours = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    stri_hours_t *h = &s->hours[s->hours_next++ % STRI_HOURS_SLOTS];
    *h = (stri_hours_t){tenant, s->generation, now, *hours};
    return DB_OK;
}

/* ---- as a match_store_t --------------------------------------------------- */

typedef struct pgstore {
    match_store_t base;
    store_t *s;
    db_conn_t *conn;
    int64_t tenant;
} pgstore_t;

static fp_err_t pg_hits(match_store_t *store, const fp_print_t *q, size_t nq, size_t max_postings,
                        size_t max_hits, const fp_score_opts_t *sieve, match_plan_t *plan,
                        fp_hit_t **out, size_t *n, size_t *cap, size_t *fetched, size_t *skipped,
                        char *err, size_t errlen)
{
    pgstore_t *p = (pgstore_t *)store;
    db_err_t rc = store_hits(p->s, p->conn, p->tenant, q, nq, max_postings, max_hits, sieve, plan,
                             out, n, cap, fetched, skipped, err, errlen);
    switch (rc) {
    case DB_OK: return FP_OK;
    case DB_ERR_NOMEM: return FP_ERR_NOMEM;
    case DB_ERR_INVALID: return FP_ERR_INVALID;
    default: return FP_ERR_IO;
    }
}

static void pg_free(match_store_t *store)
{
    free(store);
}

static double pg_hours(match_store_t *store)
{
    pgstore_t *p = (pgstore_t *)store;
    double h;
    return store_hours(p->s, p->conn, p->tenant, &h, NULL, 0) == DB_OK ? h : -1;
}

static const match_store_ops_t pg_ops = {pg_hits, pg_free, pg_hours};

db_err_t store_match_new(store_t *s, db_conn_t *conn, int64_t tenant, match_store_t **out)
{
    *out = NULL;
    pgstore_t *p = calloc(1, sizeof *p);
    if (!p) return DB_ERR_NOMEM;
    p->base.ops = &pg_ops;
    p->s = s;
    p->conn = conn;
    p->tenant = tenant;
    *out = &p->base;
    return DB_OK;
}

/* ---- figures ---------------------------------------------------------------- */

db_err_t store_stats(db_conn_t *conn, store_stats_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    PGresult *res;
    db_err_t rc = db_query(
        conn,
        "SELECT count(*), coalesce(sum(prints), 0), coalesce(sum(rows), 0), "
        "coalesce(sum(pg_total_relation_size(to_regclass('postings_' || id))), 0), "
        "(SELECT generation FROM store_meta WHERE id = 1) FROM print_segments",
        0, NULL, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    st->segments = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    st->prints = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    st->rows = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    st->bytes = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    st->generation = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    return DB_OK;
}
