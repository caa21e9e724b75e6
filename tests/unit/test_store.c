/*
 * test_store.c -- the fingerprint store: the row codec on its own, then
 * segments, lookups, merges and deletions against a real private
 * PostgreSQL cluster, and a real recording found through the store.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_catalog.h"
#include "em_match.h"
#include "em_store.h"
#include "testlib.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int cmp_posting(const void *a, const void *b)
{
    const store_posting_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* ---- codec ---------------------------------------------------------------- */

static void test_keys(void)
{
    uint32_t k;
    CHECK(store_key(0, &k) == 0 && k == 0);
    CHECK(store_key((1u << FP_HASH_BITS) - 1, &k) == 0 && k == (1u << FP_HASH_BITS) - 1);
    CHECK(store_key(1u << FP_HASH_BITS, &k) == -1, "a pair hash over 22 bits");
    uint32_t t = fp_hash_pack_triplet(15, 12, -12, 1, 7);
    REQUIRE(store_key(t, &k) == 0);
    CHECK(k >= (1u << FP_HASH_BITS) && k < STORE_KEY_SPACE);
    CHECK(store_key_hash(k) == t);
    CHECK(store_key(FP_HASH_TRIPLET | (1u << STORE_TRIPLET_BITS), &k) == -1);
    for (uint32_t f = 16 * 8; f < 16 * 512; f += 7) {
        uint16_t back = store_f_unpack(store_f_pack((uint16_t)f));
        CHECK(fabs((double)back / f - 1.0) < 0.004, "f %u -> %u", f, back);
    }
    CHECK(store_f_pack(0) == 0 && store_f_unpack(0) == 0);
}

static void test_sort(void)
{
    size_t n = 200000;
    store_posting_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    REQUIRE(a && b);
    for (size_t i = 0; i < n; i++)
        a[i] = (store_posting_t){rnd() % STORE_KEY_SPACE, rnd() % 5000, rnd() % 100000, 1, 0};
    memcpy(b, a, n * sizeof *a);
    CHECK(store_postings_sort(a, n) == DB_OK);
    qsort(b, n, sizeof *b, cmp_posting);
    int same = 1;
    for (size_t i = 0; i < n; i++)
        same &= a[i].key == b[i].key && a[i].track == b[i].track && a[i].t == b[i].t;
    CHECK(same, "radix sort agrees with qsort");
    free(a);
    free(b);
}

typedef struct rows {
    uint32_t start[100000];
    uint8_t *data[100000];
    size_t len[100000];
    size_t n;
} rows_t;

static int collect(void *ctx, uint32_t start, const uint8_t *data, size_t len)
{
    rows_t *r = ctx;
    if (r->n == 100000) return 99;
    r->start[r->n] = start;
    r->data[r->n] = malloc(len ? len : 1);
    memcpy(r->data[r->n], data, len);
    r->len[r->n++] = len;
    return 0;
}

/* Encode, decode every row, compare with the input without duplicates. */
static void test_codec_roundtrip(void)
{
    size_t n = 300000;
    store_posting_t *p = malloc((n + 3000) * sizeof *p);
    REQUIRE(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (store_posting_t){rnd() % 200000, rnd() % 3000, rnd() % 20000,
                                 (uint16_t)(rnd() % 1024), 0};
    /* a very common key (rows over the byte limit) and exact duplicates */
    for (size_t i = 0; i < 3000; i++)
        p[n++] = (store_posting_t){4242, rnd() % 3000, rnd() % 20000, 5, 0};
    p[n - 1] = p[n - 2];
    REQUIRE(store_postings_sort(p, n) == DB_OK);
    size_t uniq = 0;
    for (size_t i = 0; i < n; i++)
        if (!i || cmp_posting(&p[i], &p[uniq - 1])) p[uniq++] = p[i];

    rows_t *r = calloc(1, sizeof *r);
    REQUIRE(r);
    size_t written = 0;
    REQUIRE(store_rows_encode(p, n, collect, r, &written) == DB_OK);
    CHECK(written == uniq, "%zu written, %zu distinct", written, uniq);
    size_t bytes = 0, got = 0, big = 0;
    int ok = 1;
    store_posting_t *dec = malloc(4000 * sizeof *dec);
    for (size_t i = 0; i < r->n; i++) {
        size_t pos = 0;
        uint32_t prev = r->start[i];
        store_group_t g;
        int st, first = 1;
        bytes += r->len[i];
        if (r->len[i] > STORE_ROW_BYTES) big++;
        if (i) ok &= r->start[i] > r->start[i - 1];
        while ((st = store_row_next(r->data[i], r->len[i], &pos, &prev, &g)) == 1) {
            if (first) ok &= g.key == r->start[i];
            first = 0;
            ok &= g.count <= 4000 && store_group_decode(&g, dec) == 0;
            for (uint32_t j = 0; j < g.count && ok; j++) {
                ok &= got < uniq && !cmp_posting(&dec[j], &p[got]) && dec[j].f == p[got].f;
                got++;
            }
        }
        ok &= st == 0;
    }
    CHECK(ok, "every row decodes to the postings in order");
    CHECK(got == uniq, "decoded %zu of %zu distinct postings", got, uniq);
    CHECK(big == 1, "only the common key's row exceeds the byte limit (%zu do)", big);
    double bpp = (double)bytes / (double)uniq;
    printf("  %zu postings in %zu rows, %.2f bytes a posting\n", uniq, r->n, bpp);
    /* sparse keys (1.5 postings a key) and 3000 tracks: group headers and
     * track numbers cost more here than in a real store */
    CHECK(bpp < 8.0, "%.2f bytes a posting", bpp);

    /* every truncation and a flipped byte of a row: an error or a clean
     * decode, never a read outside the row (ASan watches) */
    size_t bad = 0;
    for (size_t i = 0; i < r->n && i < 50; i++) {
        for (size_t cut = 0; cut < r->len[i]; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, r->data[i], cut);
            size_t pos = 0;
            uint32_t prev = r->start[i];
            store_group_t g;
            int st;
            while ((st = store_row_next(copy, cut, &pos, &prev, &g)) == 1)
                if (g.count <= 4000 && store_group_decode(&g, dec)) break;
            bad += st < 0;
            free(copy);
        }
    }
    CHECK(bad > 0, "truncated rows are seen as malformed");
    free(dec);
    for (size_t i = 0; i < r->n; i++) free(r->data[i]);
    free(r);

    /* unsorted input is refused */
    store_posting_t two[2] = {{5, 1, 1, 0, 0}, {4, 1, 1, 0, 0}};
    CHECK(store_rows_encode(two, 2, collect, NULL, NULL) == DB_ERR_INVALID);
    free(p);
}

/* ---- against PostgreSQL --------------------------------------------------- */

static db_conn_t *conn;
static store_t *store;
static int64_t tenant;

/* A synthetic track: n random prints, hashes from a small range so that
 * tracks share keys, frames ascending. */
static fp_print_t *fake_prints(size_t n, uint32_t seed)
{
    fp_print_t *p = malloc(n * sizeof *p);
    uint64_t save = rng;
    rng = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t h = rnd() % 50000;
        if (i % 4 == 3) h = FP_HASH_TRIPLET | (rnd() % (1u << STORE_TRIPLET_BITS));
        p[i] = (fp_print_t){h, (uint32_t)(i / 3), (uint16_t)(16 * 9 + rnd() % 8000), 16};
    }
    rng = save;
    return p;
}

static int64_t add_track(store_batch_t *b, const char *name, const fp_print_t *p, size_t n)
{
    catalog_track_t t = {0};
    t.tenant_id = tenant;
    t.title = (char *)name;
    t.source = (char *)name;
    t.params_version = FP_PARAMS_VERSION;
    t.prints = (int64_t)n;
    for (int i = 0; i < 32; i++) t.sha256[i] = (uint8_t)(name[i % strlen(name)] + i);
    int64_t id = 0;
    int existed = 0;
    char err[1024];
    if (catalog_track_insert(conn, &t, &id, &existed, err, sizeof err) != DB_OK) {
        printf("  insert: %s\n", err);
        return 0;
    }
    if (existed) return -id;
    if (store_batch_add(b, (uint32_t)id, p, n, err, sizeof err) != DB_OK) {
        printf("  add: %s\n", err);
        return 0;
    }
    return id;
}

/* How many hits of the query q[0..nq) are on track at ref_t == query_t,
 * looking at one tenant's tracks (0: all), sieved with so when it is not
 * NULL. */
static size_t aligned_hits_sieved(int64_t of_tenant, const fp_print_t *q, size_t nq, int64_t track,
                                  const fp_score_opts_t *so, size_t *total)
{
    fp_hit_t *hits = NULL;
    size_t n = 0, cap = 0, skipped = 0, on = 0;
    char err[1024];
    db_err_t rc = store_hits(store, conn, of_tenant, q, nq, 0, 0, so, NULL, &hits, &n, &cap, NULL, &skipped, err,
                             sizeof err);
    if (rc != DB_OK) printf("  store_hits: %s\n", err);
    for (size_t i = 0; i < n; i++) on += hits[i].track == (uint32_t)track && hits[i].ref_t == hits[i].query_t;
    if (total) *total = n;
    free(hits);
    return on;
}

static size_t aligned_hits_of(int64_t of_tenant, const fp_print_t *q, size_t nq, int64_t track,
                              size_t *total)
{
    return aligned_hits_sieved(of_tenant, q, nq, track, NULL, total);
}

static size_t aligned_hits(const fp_print_t *q, size_t nq, int64_t track, size_t *total)
{
    return aligned_hits_of(0, q, nq, track, total);
}

static int64_t ta, tb, tc;
static fp_print_t *pa, *pb, *pc;
#define NP 20000

static void test_db_open(void)
{
    char err[2048];
    const char *ci = test_db_start();
    REQUIRE(db_connect(ci, &conn, err, sizeof err) == DB_OK, "%s", err);
    REQUIRE(store_open(conn, &store, err, sizeof err) == DB_OK, "%s", err);
    REQUIRE(catalog_tenant_ensure(conn, "test-label", &tenant, err, sizeof err) == DB_OK, "%s", err);
    int64_t again = 0;
    CHECK(catalog_tenant_ensure(conn, "test-label", &again, err, sizeof err) == DB_OK && again == tenant);
}

static void test_batch_and_lookup(void)
{
    REQUIRE(conn);
    char err[2048];
    pa = fake_prints(NP, 1);
    pb = fake_prints(NP, 2);
    pc = fake_prints(NP, 3);
    store_batch_t *b;
    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    ta = add_track(b, "a.wav", pa, NP);
    tb = add_track(b, "b.wav", pb, NP);
    REQUIRE(ta > 0 && tb > 0);
    int64_t seg = 0;
    REQUIRE(store_batch_commit(b, &seg, err, sizeof err) == DB_OK, "%s", err);
    CHECK(seg > 0);

    /* a batch rolled back leaves nothing */
    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    CHECK(add_track(b, "gone.wav", pc, NP) > 0);
    store_batch_abort(b);
    catalog_track_t t;
    PGresult *res;
    REQUIRE(db_query(conn, "SELECT count(*) FROM tracks", 0, NULL, 0, &res, err, sizeof err) == DB_OK);
    CHECK(!strcmp(PQgetvalue(res, 0, 0), "2"), "tracks after an aborted batch: %s", PQgetvalue(res, 0, 0));
    PQclear(res);

    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    tc = add_track(b, "c.wav", pc, NP);
    REQUIRE(tc > 0);
    REQUIRE(store_batch_commit(b, &seg, err, sizeof err) == DB_OK, "%s", err);
    CHECK(catalog_track_get(conn, tc, &t, err, sizeof err) == DB_OK && !strcmp(t.status, "indexed") &&
          t.prints == NP && !strcmp(t.tenant, "test-label"));
    catalog_track_clear(&t);

    /* a 10 s slice of each track finds every one of its own prints */
    size_t total;
    size_t on = aligned_hits(pb + 5000, 1200, tb, &total);
    CHECK(on == 1200, "track b: %zu of 1200 prints at the right time (%zu hits)", on, total);
    on = aligned_hits(pc + 100, 1200, tc, &total);
    CHECK(on == 1200, "track c: %zu of 1200 prints at the right time", on);

    /* each hit carries its posting's frequency, packed and unpacked
     * (store_f_pack), with the sieve and without, and through a row cache
     * (filled, then read from) */
    fp_score_opts_t so;
    fp_score_opts_default(&so);
    store_cache_t *fc;
    REQUIRE(store_cache_new((size_t)64 << 20, &fc) == DB_OK);
    for (int pass = 0; pass < 6; pass++) {
        int sieved = pass % 2;
        if (pass == 2) store_set_cache(store, fc);
        fp_hit_t *fh = NULL;
        size_t fn = 0, fcap = 0, fsk = 0, on_f = 0, bad_f = 0;
        REQUIRE(store_hits(store, conn, 0, pb + 5000, 1200, 0, 0, sieved ? &so : NULL, NULL, &fh, &fn,
                           &fcap, NULL, &fsk, err, sizeof err) == DB_OK, "%s", err);
        for (size_t i = 0; i < fn; i++) {
            const fp_print_t *qp = &pb[5000 + fh[i].query_idx];
            if (fh[i].track != (uint32_t)tb || fh[i].ref_t != qp->t) continue;
            on_f++;
            bad_f += fh[i].ref_f != store_f_unpack(store_f_pack(qp->f)) || !fh[i].ref_f;
        }
        CHECK(on_f >= 1200 && bad_f == 0, "pass %d, %s: %zu of %zu aligned hits with another f",
              pass, sieved ? "sieved" : "unsieved", bad_f, on_f);
        free(fh);
    }
    store_set_cache(store, NULL);
    store_cache_free(fc);

    /* a budget of hits: kept to, the rarest keys first */
    fp_hit_t *hits = NULL;
    size_t nh = 0, hcap = 0, sk = 0;
    REQUIRE(store_hits(store, conn, 0, pb + 5000, 1200, 0, 500, NULL, NULL, &hits, &nh, &hcap, NULL, &sk, err,
                       sizeof err) == DB_OK, "%s", err);
    CHECK(nh <= 500 * 1.05 && nh > 100, "%zu hits under a budget of 500", nh);
    CHECK(sk > 0, "keys over the budget are counted as skipped");
    free(hits);

    store_stats_t st;
    REQUIRE(store_stats(conn, &st, err, sizeof err) == DB_OK, "%s", err);
    CHECK(st.segments == 2 && st.prints >= 3 * NP - 10, "%lld segments, %lld prints",
          (long long)st.segments, (long long)st.prints);
    CHECK(st.bytes > 0);
}

/* The bytes a test row (segment, start) holds: derived from both, len 1..3000. */
static size_t test_row(int64_t seg, uint32_t start, uint8_t *out)
{
    size_t len = 1 + (size_t)((seg * 7919 + start * 31) % 3000);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(seg * 13 + start * 7 + i);
    return len;
}

static void test_cache_basic(void)
{
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)4 << 20, &c) == DB_OK);
    uint8_t row[3000], *buf = NULL;
    size_t used = 0, cap = 0;
    CHECK(store_cache_get(c, 1, 10, &buf, &used, &cap) == 0 && used == 0, "an empty cache misses");
    size_t l1 = test_row(1, 10, row);
    store_cache_put(c, 1, 10, row, l1);
    store_cache_put(c, 1, 10, row, l1); /* twice: kept once */
    size_t l2 = test_row(2, 10, row);
    store_cache_put(c, 2, 10, row, l2);
    /* rows are appended to the caller's buffer */
    CHECK(store_cache_get(c, 2, 10, &buf, &used, &cap) == 1 && used == l2);
    CHECK(store_cache_get(c, 1, 10, &buf, &used, &cap) == 1 && used == l1 + l2);
    test_row(2, 10, row);
    CHECK(buf && !memcmp(buf, row, l2), "the first row's bytes");
    test_row(1, 10, row);
    CHECK(buf && !memcmp(buf + l2, row, l1), "the second row's bytes");
    CHECK(store_cache_get(c, 1, 11, &buf, &used, &cap) == 0 && used == l1 + l2,
          "another start of the same segment misses");
    store_cache_stats_t st;
    store_cache_stats(c, &st);
    CHECK(st.hits == 2 && st.misses == 2 && st.rows == 2 && st.evictions == 0,
          "hits %llu misses %llu rows %llu", (unsigned long long)st.hits,
          (unsigned long long)st.misses, (unsigned long long)st.rows);

    /* a lent row: its bytes stay put while the rows around it come and go,
     * even once it is evicted; a miss lends nothing */
    const uint8_t *lent = NULL;
    size_t lent_len = 0;
    store_cache_loan_t *loan = NULL;
    CHECK(store_cache_lend(c, 9, 9, &lent, &lent_len, &loan) == 0, "nothing to lend");
    CHECK(store_cache_lend(c, 2, 10, &lent, &lent_len, &loan) == 1 && lent_len == l2 && loan,
          "a row lent");
    store_cache_return(c, NULL);

    /* far more than the budget: it stays within it, evicting */
    for (uint32_t k = 0; k < 20000; k++) {
        size_t l = test_row(3, k, row);
        store_cache_put(c, 3, k, row, l);
    }
    store_cache_stats(c, &st);
    CHECK(st.bytes <= (size_t)4 << 20 && st.bytes > (size_t)3 << 20, "%llu bytes held",
          (unsigned long long)st.bytes);
    CHECK(st.evictions > 0 && st.rows < 20000);
    /* what is still there is intact, and the last row put is there */
    size_t found = 0;
    for (uint32_t k = 0; k < 20000; k++) {
        used = 0;
        if (store_cache_get(c, 3, k, &buf, &used, &cap) != 1) continue;
        size_t l = test_row(3, k, row);
        CHECK(used == l && !memcmp(buf, row, l), "row %u intact", k);
        found++;
    }
    used = 0;
    CHECK(store_cache_get(c, 3, 19999, &buf, &used, &cap) == 1, "the newest row is kept");
    test_row(2, 10, row);
    CHECK(lent && !memcmp(lent, row, l2), "a lent row is intact");
    store_cache_return(c, loan);
    /* a lent row certainly evicted: stripes that hold one row of 2 500
     * bytes each, 2 000 more rows put */
    store_cache_t *one;
    REQUIRE(store_cache_new(64 * 4000, &one) == DB_OK);
    uint8_t big[2500];
    memset(big, 0xa5, sizeof big);
    store_cache_put(one, 7, 1, big, sizeof big);
    REQUIRE(store_cache_lend(one, 7, 1, &lent, &lent_len, &loan) == 1);
    memset(big, 0x5a, sizeof big);
    for (uint32_t k = 2; k < 2002; k++) store_cache_put(one, 7, k, big, sizeof big);
    used = 0;
    CHECK(store_cache_get(one, 7, 1, &buf, &used, &cap) == 0, "the lent row was evicted");
    size_t same = 0;
    for (size_t i = 0; i < lent_len; i++) same += lent[i] == 0xa5;
    CHECK(lent_len == sizeof big && same == sizeof big, "a lent row is intact after its eviction");
    store_cache_stats_t st1;
    store_cache_stats(one, &st1);
    CHECK(st1.bytes <= 64 * 4000, "the evicted lent row is not counted: %llu bytes",
          (unsigned long long)st1.bytes);
    store_cache_return(one, loan); /* frees it (ASan: no leak, no double free) */
    store_cache_free(one);
    /* (the two rows of segments 1 and 2 put first may be held too) */
    CHECK(found + 2 >= st.rows && found <= st.rows && found > 1000, "%zu rows found, %llu held", found,
          (unsigned long long)st.rows);
    /* a row larger than a stripe's share of the budget is not kept */
    store_cache_t *tiny;
    REQUIRE(store_cache_new(64 * 1000, &tiny) == DB_OK);
    store_cache_put(tiny, 5, 5, row, 2000);
    store_cache_put(tiny, 5, 6, row, 100);
    used = 0;
    CHECK(store_cache_get(tiny, 5, 5, &buf, &used, &cap) == 0, "a row over a 64th of the budget");
    CHECK(store_cache_get(tiny, 5, 6, &buf, &used, &cap) == 1 && used == 100, "a small one");
    store_cache_free(tiny);
    store_cache_free(NULL);
    free(buf);
    store_cache_free(c);
}

typedef struct cache_worker {
    store_cache_t *c;
    unsigned seed;
    size_t bad, hits;
} cache_worker_t;

static void *cache_thread(void *arg)
{
    cache_worker_t *w = arg;
    uint8_t row[3000], *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < 40000; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        uint32_t start = (w->seed >> 8) % 3000;
        int64_t seg = 1 + (w->seed >> 24) % 3;
        size_t used = 0;
        int got;
        size_t l = test_row(seg, start, row);
        if (i % 2) { /* borrowed, held while other threads evict */
            const uint8_t *data;
            store_cache_loan_t *loan;
            got = store_cache_lend(w->c, seg, start, &data, &used, &loan);
            if (got == 1) {
                for (int k = 0; k < 50; k++) sched_yield();
                if (used != l || memcmp(data, row, l)) w->bad++;
                store_cache_return(w->c, loan);
            }
        } else {
            got = store_cache_get(w->c, seg, start, &buf, &used, &cap);
            if (got == 1 && (used != l || memcmp(buf, row, l))) w->bad++;
        }
        if (got == 1) {
            w->hits++;
        } else {
            store_cache_put(w->c, seg, start, row, l);
        }
    }
    free(buf);
    return NULL;
}

/* Four threads getting, borrowing and putting overlapping rows through a
 * cache that keeps about half of them: every row read back is the one
 * put, borrowed ones included while they are evicted. */
static void test_cache_threads(void)
{
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)6 << 20, &c) == DB_OK);
    pthread_t t[4];
    cache_worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (cache_worker_t){c, (unsigned)i * 7777u + 1u, 0, 0};
        REQUIRE(pthread_create(&t[i], NULL, cache_thread, &w[i]) == 0);
    }
    size_t bad = 0, hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += w[i].bad;
        hits += w[i].hits;
    }
    store_cache_stats_t st;
    store_cache_stats(c, &st);
    CHECK(bad == 0, "%zu rows read back wrong", bad);
    CHECK(hits > 10000 && st.evictions > 0, "%zu hits, %llu evictions", hits,
          (unsigned long long)st.evictions);
    CHECK(st.bytes <= (size_t)6 << 20);
    store_cache_free(c);
}

static int cmp_hit(const void *a, const void *b)
{
    const fp_hit_t *x = a, *y = b;
    uint32_t u[6] = {x->track, x->ref_t, x->query_t, x->query_idx, x->ref_f, x->flags};
    uint32_t v[6] = {y->track, y->ref_t, y->query_t, y->query_idx, y->ref_f, y->flags};
    for (int i = 0; i < 6; i++)
        if (u[i] != v[i]) return u[i] < v[i] ? -1 : 1;
    return (x->query_f > y->query_f) - (x->query_f < y->query_f);
}

/* The same hits, in any order (sorts both). */
static int same_hits(fp_hit_t *a, size_t na, fp_hit_t *b, size_t nb)
{
    if (na != nb) return 0;
    qsort(a, na, sizeof *a, cmp_hit);
    qsort(b, nb, sizeof *b, cmp_hit);
    for (size_t i = 0; i < na; i++)
        if (cmp_hit(&a[i], &b[i])) return 0;
    return 1;
}

/* Lookups through a row cache give the hits of lookups without one, the
 * first time (rows fetched and kept) and the next (rows from the cache). */
static void test_cache_lookup(void)
{
    REQUIRE(conn);
    char err[2048];
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)64 << 20, &c) == DB_OK);
    fp_hit_t *want = NULL, *got = NULL;
    size_t nw = 0, cw = 0, ng = 0, cg = 0, sk = 0;
    REQUIRE(store_hits(store, conn, 0, pa + 3000, 1500, 0, 0, NULL, NULL, &want, &nw, &cw, NULL, &sk, err,
                       sizeof err) == DB_OK, "%s", err);
    store_set_cache(store, c);
    for (int round = 0; round < 2; round++) {
        ng = 0;
        REQUIRE(store_hits(store, conn, 0, pa + 3000, 1500, 0, 0, NULL, NULL, &got, &ng, &cg, NULL, &sk, err,
                           sizeof err) == DB_OK, "%s", err);
        CHECK(nw > 1500 && same_hits(got, ng, want, nw),
              "round %d: %zu hits, %zu without the cache", round, ng, nw);
        store_cache_stats_t st;
        store_cache_stats(c, &st);
        if (round == 0) CHECK(st.hits == 0 && st.rows > 0, "the first lookup fills the cache");
        else CHECK(st.hits > 0 && st.hits == st.rows, "the second is served from it (%llu of %llu)",
                   (unsigned long long)st.hits, (unsigned long long)st.rows);
    }
    store_set_cache(store, NULL);
    free(want);
    free(got);
    store_cache_free(c);
}

/* Candidates of two scorings agree field by field. */
static int same_candidates(const fp_candidate_t *a, size_t na, const fp_candidate_t *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].track != b[i].track || a[i].offset != b[i].offset ||
            a[i].frames != b[i].frames || a[i].count != b[i].count ||
            a[i].query_start != b[i].query_start || a[i].query_end != b[i].query_end ||
            a[i].ref_start != b[i].ref_start || a[i].ref_end != b[i].ref_end ||
            a[i].speed != b[i].speed || a[i].pitch != b[i].pitch)
            return 0;
    return 1;
}

/* A lookup through the sieve returns part of the hits of one without it:
 * every hit of the aligned track, none of the others' chance hits, the
 * count before the sieve in fetched, and the same candidates. */
static void test_sieve_lookup(void)
{
    REQUIRE(conn && ta > 0);
    char err[2048];
    fp_hit_t *want = NULL, *got = NULL;
    size_t nw = 0, cw = 0, ng = 0, cg = 0, sk = 0, fetched = 0;
    match_opts_t mo;
    fp_score_opts_t so;
    match_opts_default(&mo);
    match_score_opts(&mo, &so);
    REQUIRE(store_hits(store, conn, 0, pa + 3000, 1500, 0, 0, NULL, NULL, &want, &nw, &cw, NULL, &sk, err,
                       sizeof err) == DB_OK, "%s", err);
    REQUIRE(store_hits(store, conn, 0, pa + 3000, 1500, 0, 0, &so, NULL, &got, &ng, &cg, &fetched, &sk,
                       err, sizeof err) == DB_OK, "%s", err);
    size_t aligned = 0, others = 0, kept_aligned = 0, kept_others = 0;
    for (size_t i = 0; i < nw; i++) {
        int on = want[i].track == (uint32_t)ta && want[i].ref_t == want[i].query_t;
        aligned += on;
        others += want[i].track != (uint32_t)ta;
    }
    for (size_t i = 0; i < ng; i++) {
        kept_aligned += got[i].track == (uint32_t)ta && got[i].ref_t == got[i].query_t;
        kept_others += got[i].track != (uint32_t)ta;
    }
    CHECK(fetched == nw, "fetched %zu, %zu hits without the sieve", fetched, nw);
    /* split over threads (a thread for every 64 postings): the same hits,
     * in the same order */
    fp_hit_t *split = NULL;
    size_t ns = 0, cs = 0;
    store_set_threads(store, 4, 64);
    REQUIRE(store_hits(store, conn, 0, pa + 3000, 1500, 0, 0, &so, NULL, &split, &ns, &cs, NULL, &sk, err,
                       sizeof err) == DB_OK, "%s", err);
    store_set_threads(store, 1, 0);
    size_t same = 0;
    for (size_t i = 0; i < ns && i < ng; i++) same += !cmp_hit(&split[i], &got[i]);
    CHECK(ns == ng && same == ng && nw >= 4 * 64, "%zu hits on 4 threads, %zu on one, %zu alike",
          ns, ng, same);
    free(split);
    CHECK(aligned >= 1500 && kept_aligned == aligned, "aligned hits: %zu of %zu kept", kept_aligned,
          aligned);
    CHECK(others > 0 && kept_others == 0, "chance hits of other tracks: %zu of %zu kept",
          kept_others, others);
    /* what was kept is a part of what was fetched */
    fp_hit_t *w2 = malloc((nw + 1) * sizeof *w2), *g2 = malloc((ng + 1) * sizeof *g2);
    REQUIRE(w2 && g2);
    memcpy(w2, want, nw * sizeof *w2);
    memcpy(g2, got, ng * sizeof *g2);
    qsort(w2, nw, sizeof *w2, cmp_hit);
    qsort(g2, ng, sizeof *g2, cmp_hit);
    size_t j = 0;
    for (size_t i = 0; i < ng; i++) {
        while (j < nw && cmp_hit(&w2[j], &g2[i]) < 0) j++;
        if (j == nw || cmp_hit(&w2[j], &g2[i])) {
            CHECK(0, "kept hit %zu was not fetched", i);
            break;
        }
        j++;
    }
    fp_candidate_t *cw2 = NULL, *cg2 = NULL;
    size_t ncw = 0, ncg = 0;
    REQUIRE(fp_score_hits(want, nw, &so, &cw2, &ncw) == FP_OK);
    REQUIRE(fp_score_hits(got, ng, &so, &cg2, &ncg) == FP_OK);
    CHECK(ncw >= 1 && cw2[0].track == (uint32_t)ta && same_candidates(cw2, ncw, cg2, ncg),
          "%zu candidates from all hits, %zu from the sieved", ncw, ncg);
    free(cw2);
    free(cg2);
    free(w2);
    free(g2);
    free(want);
    free(got);
}

static void test_merge_and_delete(void)
{
    REQUIRE(conn && ta > 0 && tc > 0);
    char err[2048];
    size_t before_total, after_total;
    size_t before = aligned_hits(pa + 2000, 1200, ta, &before_total);

    store_stats_t st0, st;
    REQUIRE(store_stats(conn, &st0, err, sizeof err) == DB_OK, "%s", err);
    store_merge_opts_t o;
    store_merge_opts_default(&o);
    o.all = 1;
    o.chunk_postings = 10000; /* several key ranges */
    int merges = 0;
    REQUIRE(store_merge(store, conn, &o, &merges, err, sizeof err) == DB_OK, "%s", err);
    CHECK(merges == 1);
    REQUIRE(store_stats(conn, &st, err, sizeof err) == DB_OK, "%s", err);
    CHECK(st.segments == 1 && st.prints == st0.prints, "%lld segments, %lld prints (%lld before)",
          (long long)st.segments, (long long)st.prints, (long long)st0.prints);
    size_t after = aligned_hits(pa + 2000, 1200, ta, &after_total);
    CHECK(after == before && after_total == before_total, "hits before %zu/%zu, after %zu/%zu",
          before, before_total, after, after_total);

    /* delete b: its postings stop at once, and go with the next merge;
     * also through a row cache that held its rows before (the lookup must
     * leave b's cached postings out), with and without a sieve */
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)64 << 20, &c) == DB_OK);
    store_set_cache(store, c);
    match_opts_t mo;
    match_opts_default(&mo);
    fp_score_opts_t so;
    match_score_opts(&mo, &so);
    CHECK(aligned_hits(pb, 1200, tb, NULL) == 1200);
    CHECK(aligned_hits_sieved(0, pb, 1200, tb, &so, NULL) == 1200);
    REQUIRE(catalog_track_delete(conn, tb, err, sizeof err) == DB_OK, "%s", err);
    CHECK(catalog_track_delete(conn, tb, err, sizeof err) == DB_ERR_INVALID);
    for (int round = 0; round < 2; round++) {
        CHECK(aligned_hits(pb, 1200, tb, NULL) == 0, "cached %d: a deleted track's prints match",
              round);
        CHECK(aligned_hits_sieved(0, pb, 1200, tb, &so, NULL) == 0,
              "cached %d, sieved: a deleted track's prints match", round);
        CHECK(aligned_hits(pa + 2000, 1200, ta, NULL) == 1200, "cached %d: a live track lost", round);
        CHECK(aligned_hits_sieved(0, pa + 2000, 1200, ta, &so, NULL) == 1200,
              "cached %d, sieved: a live track lost", round);
    }
    store_set_cache(store, NULL);
    store_cache_free(c);
    CHECK(aligned_hits(pb, 1200, tb, NULL) == 0, "a deleted track's prints still match");
    REQUIRE(store_merge(store, conn, &o, &merges, err, sizeof err) == DB_OK, "%s", err);
    REQUIRE(store_stats(conn, &st, err, sizeof err) == DB_OK, "%s", err);
    catalog_track_t t;
    REQUIRE(catalog_track_get(conn, tb, &t, err, sizeof err) == DB_OK);
    int64_t bprints = t.prints;
    catalog_track_clear(&t);
    CHECK(st.prints < st0.prints && st.prints >= st0.prints - bprints && st.segments == 1,
          "after the purge: %lld prints, %lld before", (long long)st.prints, (long long)st0.prints);
    st0 = st;
    REQUIRE(catalog_track_get(conn, tb, &t, err, sizeof err) == DB_OK);
    CHECK(!strcmp(t.status, "deleted"));
    catalog_track_clear(&t);
    CHECK(aligned_hits(pc + 7000, 1200, tc, NULL) == 1200);

    /* the same file again is recognised by its digest; once deleted, it may
     * come back */
    store_batch_t *b;
    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    CHECK(add_track(b, "a.wav", pa, NP) == -ta, "a live duplicate is not inserted");
    int64_t back = add_track(b, "b.wav", pb, NP);
    CHECK(back > 0 && back != tb);
    REQUIRE(store_batch_commit(b, NULL, err, sizeof err) == DB_OK, "%s", err);
    CHECK(aligned_hits(pb, 1200, back, NULL) == 1200);

    /* tiered merging: four small segments of a class become one */
    for (int i = 0; i < 4; i++) {
        REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
        char name[32];
        snprintf(name, sizeof name, "tier%d.wav", i);
        fp_print_t *p = fake_prints(1000, 10 + (uint32_t)i);
        CHECK(add_track(b, name, p, 1000) > 0);
        free(p);
        REQUIRE(store_batch_commit(b, NULL, err, sizeof err) == DB_OK, "%s", err);
    }
    store_merge_opts_default(&o);
    REQUIRE(store_merge(store, conn, &o, &merges, err, sizeof err) == DB_OK, "%s", err);
    CHECK(merges >= 1, "%d merges", merges);
    REQUIRE(store_stats(conn, &st, err, sizeof err) == DB_OK, "%s", err);
    CHECK(st.prints >= st0.prints + NP + 4000 - 20 && st.segments <= 3, "%lld segments, %lld prints",
          (long long)st.segments, (long long)st.prints);
}

/* A tenant's lookups see its own tracks only. */
static void test_tenants(void)
{
    REQUIRE(conn && tc > 0);
    char err[2048];
    int64_t mine = tenant, other;
    REQUIRE(catalog_tenant_ensure(conn, "other-label", &other, err, sizeof err) == DB_OK, "%s", err);
    fp_print_t *p = fake_prints(NP, 77);
    /* through a row cache, twice (fetched, then from the cache, where the
     * postings are read in place while one tenant owns every track) */
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)64 << 20, &c) == DB_OK);
    store_set_cache(store, c);
    for (int round = 0; round < 2; round++) {
        CHECK(aligned_hits_of(mine, pc + 100, 1200, tc, NULL) == 1200, "cached %d: own track", round);
        CHECK(aligned_hits_of(other, pc + 100, 1200, tc, NULL) == 0,
              "cached %d: a tenant with no tracks sees another's", round);
    }
    store_batch_t *b;
    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    tenant = other;
    int64_t theirs = add_track(b, "theirs.wav", p, NP);
    tenant = mine;
    REQUIRE(theirs > 0);
    REQUIRE(store_batch_commit(b, NULL, err, sizeof err) == DB_OK, "%s", err);
    CHECK(aligned_hits_of(0, p + 100, 1200, theirs, NULL) == 1200, "unfiltered");
    CHECK(aligned_hits_of(other, p + 100, 1200, theirs, NULL) == 1200, "its own tenant");
    CHECK(aligned_hits_of(mine, p + 100, 1200, theirs, NULL) == 0, "another tenant's track seen");
    CHECK(aligned_hits_of(mine, pc + 100, 1200, tc, NULL) == 1200, "own track not seen");
    for (int round = 0; round < 2; round++) {
        CHECK(aligned_hits_of(other, p + 100, 1200, theirs, NULL) == 1200, "cached %d: its own", round);
        CHECK(aligned_hits_of(mine, p + 100, 1200, theirs, NULL) == 0,
              "cached %d: another tenant's track seen", round);
        CHECK(aligned_hits_of(other, pc + 100, 1200, tc, NULL) == 0,
              "cached %d: another tenant's track seen", round);
    }
    store_set_cache(store, NULL);
    store_cache_free(c);
    free(p);
}

/* Are a[0 .. n) and b[0 .. n) the same hits in the same order? */
static int same_hits_in_order(const fp_hit_t *a, const fp_hit_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cmp_hit(&a[i], &b[i])) return 0;
    return 1;
}

/* The hits of a lookup of q, in the order they come. */
static fp_hit_t *lookup_hits(const fp_print_t *q, size_t nq, size_t *n)
{
    fp_hit_t *hits = NULL;
    size_t cap = 0, skipped = 0;
    char err[1024];
    *n = 0;
    if (store_hits(store, conn, 0, q, nq, 0, 0, NULL, NULL, &hits, n, &cap, NULL, &skipped, err,
                   sizeof err) != DB_OK) {
        printf("  store_hits: %s\n", err);
        free(hits);
        return NULL;
    }
    return hits;
}

/*
 * A lookup's hits come in the same order whichever of its rows a row cache
 * holds (over several segments: the groups are put in key order after the
 * cached rows and the fetched ones are gathered).
 */
static void test_hit_order(void)
{
    REQUIRE(conn && pa && pc);
    store_stats_t st;
    char err[2048];
    REQUIRE(store_stats(conn, &st, err, sizeof err) == DB_OK, "%s", err);
    REQUIRE(st.segments >= 2, "%lld segments", (long long)st.segments);
    size_t n0 = 0, n1 = 0, n2 = 0;
    fp_hit_t *plain = lookup_hits(pa + 5000, 3000, &n0);
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)64 << 20, &c) == DB_OK);
    store_set_cache(store, c);
    /* warm the cache with part of the query's rows: the next lookup finds
     * some rows cached and fetches the others */
    size_t nw = 0;
    free(lookup_hits(pa + 5500, 700, &nw));
    free(lookup_hits(pc + 5000, 400, &nw));
    fp_hit_t *part = lookup_hits(pa + 5000, 3000, &n1);
    fp_hit_t *all = lookup_hits(pa + 5000, 3000, &n2);
    store_set_cache(store, NULL);
    store_cache_free(c);
    CHECK(plain && part && all && n0 > 3000 && n0 == n1 && n0 == n2, "%zu, %zu, %zu hits", n0, n1,
          n2);
    CHECK(plain && part && n0 == n1 && same_hits_in_order(plain, part, n0),
          "partly cached: the hits come in another order");
    CHECK(plain && all && n0 == n2 && same_hits_in_order(plain, all, n0),
          "all cached: the hits come in another order");
    free(plain);
    free(part);
    free(all);
}

/* A plan's decide for the tests: the tracks it is given (none: go on in
 * full), and what it saw. */
typedef struct test_plan {
    uint32_t tracks[80];
    int ntracks, called;
    size_t seen;
} test_plan_t;

static int test_decide(void *ctx, const fp_hit_t *h, size_t n, uint32_t *tracks, size_t max)
{
    test_plan_t *t = ctx;
    t->called++;
    t->seen = n;
    for (int i = 0; i < t->ntracks && (size_t)i < max; i++) tracks[i] = t->tracks[i];
    return t->ntracks;
}

/*
 * A lookup in two parts, with and without the row cache (cached groups
 * are cut by bisection, fetched ones by decoding), on one thread and on
 * four: going on in full gives the hits of one part, in the same order;
 * narrowed to some tracks, every hit after the first part's is theirs
 * (none of the deleted one's), and none of the aligned hits is lost; a
 * clip of no catalog track is not decided at all.  Through match_query, the same
 * matches as one part.
 */
static void test_two_parts(void)
{
    REQUIRE(conn && pa);
    char err[2048];
    const fp_print_t *q = pa + 3000;
    const size_t nq = 1500;
    match_opts_t mo;
    fp_score_opts_t so;
    match_opts_default(&mo);
    match_score_opts(&mo, &so);
    fp_hit_t *one = NULL;
    size_t n1 = 0, c1 = 0, sk = 0, fetched = 0;
    REQUIRE(store_hits(store, conn, 0, q, nq, 0, 0, &so, NULL, &one, &n1, &c1, &fetched, &sk, err,
                       sizeof err) == DB_OK, "%s", err);
    size_t aligned_all = aligned_hits(q, nq, ta, NULL);
    REQUIRE(fetched > 2 * nq && aligned_all >= nq, "%zu hits, %zu aligned", fetched, aligned_all);
    store_cache_t *c;
    REQUIRE(store_cache_new((size_t)64 << 20, &c) == DB_OK);
    for (int round = 0; round < 4; round++) {
        int cached = round >= 2, threads = round % 2 ? 4 : 1;
        store_set_cache(store, cached ? c : NULL);
        store_set_threads(store, threads, 64);
        test_plan_t tp = {{0}, 0, 0, 0};
        uint32_t room[80];
        match_plan_t plan = {fetched / 4, test_decide, &tp, room, 3, 0, 0, 0};
        fp_hit_t *got = NULL;
        size_t ng = 0, cg = 0, f2 = 0;
        REQUIRE(store_hits(store, conn, 0, q, nq, 0, 0, &so, &plan, &got, &ng, &cg, &f2, &sk, err,
                           sizeof err) == DB_OK, "%s", err);
        CHECK(tp.called == 1 && tp.seen > 0 && tp.seen < n1 && !plan.narrowed,
              "cache %d, %d threads: decide saw %zu hits of %zu", cached, threads, tp.seen, n1);
        CHECK(ng == n1 && f2 == fetched && same_hits_in_order(got, one, n1),
              "cache %d, %d threads: in full, %zu hits against %zu", cached, threads, ng, n1);
        free(got);

        /* in no order; tb is deleted */
        tp = (test_plan_t){{(uint32_t)tc, (uint32_t)tb, (uint32_t)ta}, 3, 0, 0};
        plan = (match_plan_t){fetched / 4, test_decide, &tp, room, 3, 0, 0, 0};
        got = NULL;
        ng = cg = 0;
        REQUIRE(store_hits(store, conn, 0, q, nq, 0, 0, &so, &plan, &got, &ng, &cg, NULL, &sk, err,
                           sizeof err) == DB_OK, "%s", err);
        size_t others = 0, aligned = 0, of_b = 0, of_c = 0;
        for (size_t i = 0; i < ng; i++) {
            aligned += got[i].track == (uint32_t)ta && got[i].ref_t == got[i].query_t;
            of_b += got[i].track == (uint32_t)tb;
            if (i < plan.first_n) continue;
            others += got[i].track != (uint32_t)ta && got[i].track != (uint32_t)tc;
            of_c += got[i].track == (uint32_t)tc;
        }
        CHECK(plan.narrowed && plan.first_n == tp.seen && others == 0 && of_b == 0 && of_c > 0,
              "cache %d, %d threads: narrowed %d, %zu first, %zu of other tracks, %zu of tb, "
              "%zu of tc",
              cached, threads, plan.narrowed, plan.first_n, others, of_b, of_c);
        CHECK(aligned == aligned_all, "cache %d, %d threads: %zu aligned hits of %zu", cached,
              threads, aligned, aligned_all);
        free(got);
    }
    store_set_threads(store, 1, 0);

    /* many tracks, the matched one last: none is left out */
    {
        test_plan_t many = {{0}, 80, 0, 0};
        for (int i = 0; i < 79; i++) many.tracks[i] = 1000000 + (uint32_t)i;
        many.tracks[79] = (uint32_t)ta;
        uint32_t room[80];
        match_plan_t plan = {fetched / 4, test_decide, &many, room, 80, 0, 0, 0};
        fp_hit_t *got = NULL;
        size_t ng = 0, cg = 0, aligned = 0;
        REQUIRE(store_hits(store, conn, 0, q, nq, 0, 0, &so, &plan, &got, &ng, &cg, NULL, &sk, err,
                           sizeof err) == DB_OK, "%s", err);
        for (size_t i = 0; i < ng; i++)
            aligned += got[i].track == (uint32_t)ta && got[i].ref_t == got[i].query_t;
        CHECK(plan.narrowed && aligned == aligned_all,
              "narrowed to 80 tracks: %zu aligned hits of %zu", aligned, aligned_all);
        free(got);
    }

    /* a clip of no catalog track: its first part keeps nothing, there is
     * nothing to decide, and the lookup goes on in full */
    fp_print_t *stranger = fake_prints(1500, 4242);
    fp_hit_t *s1 = NULL, *s2 = NULL;
    size_t ns1 = 0, ns2 = 0, cs1 = 0, cs2 = 0, fs1 = 0;
    REQUIRE(stranger);
    REQUIRE(store_hits(store, conn, 0, stranger, 1500, 0, 0, &so, NULL, &s1, &ns1, &cs1, &fs1, &sk,
                       err, sizeof err) == DB_OK, "%s", err);
    test_plan_t tp0 = {{(uint32_t)ta}, 1, 0, 0};
    uint32_t room0[3];
    match_plan_t plan0 = {fs1 / 4, test_decide, &tp0, room0, 3, 0, 0, 0};
    REQUIRE(store_hits(store, conn, 0, stranger, 1500, 0, 0, &so, &plan0, &s2, &ns2, &cs2, NULL,
                       &sk, err, sizeof err) == DB_OK, "%s", err);
    CHECK(fs1 > 1000 && tp0.called == 0 && !plan0.narrowed && ns2 == ns1 &&
              same_hits_in_order(s1, s2, ns1),
          "a stranger: %zu hits fetched, decide called %d times, %zu hits against %zu", fs1,
          tp0.called, ns2, ns1);
    free(s1);
    free(s2);
    free(stranger);

    /* the matcher: the same match in one part and in two */
    match_store_t *ms = NULL;
    REQUIRE(store_match_new(store, conn, 0, &ms) == DB_OK);
    match_result_t *r1 = NULL, *r2 = NULL;
    size_t nr1 = 0, nr2 = 0;
    match_stats_t st1, st2;
    mo.max_hits = 0;
    mo.first_hits = 0;
    REQUIRE(match_query(ms, q, nq, &mo, &r1, &nr1, &st1, err, sizeof err) == FP_OK, "%s", err);
    mo.first_hits = fetched / 4;
    REQUIRE(match_query(ms, q, nq, &mo, &r2, &nr2, &st2, err, sizeof err) == FP_OK, "%s", err);
    CHECK(nr1 >= 1 && nr1 == nr2 && r1[0].track == (uint32_t)ta && r2[0].track == r1[0].track &&
              r2[0].frames == r1[0].frames && r2[0].offset == r1[0].offset &&
              r2[0].query_start == r1[0].query_start && r2[0].query_end == r1[0].query_end,
          "one part: %zu matches (%u frames); two: %zu (%u frames)", nr1, nr1 ? r1[0].frames : 0,
          nr2, nr2 ? r2[0].frames : 0);
    CHECK(!st1.narrowed && st2.narrowed && st2.hits == st1.hits,
          "narrowed %d, %zu hits fetched against %zu", st2.narrowed, st2.hits, st1.hits);
    match_results_free(r1, nr1);
    match_results_free(r2, nr2);
    match_store_free(ms);
    store_set_cache(store, NULL);
    store_cache_free(c);
    free(one);
}

/* A real recording through the store and the matcher. */
static void test_real_audio(void)
{
    REQUIRE(conn);
    char err[2048];
    fp_config_t cfg;
    fp_config_default(&cfg);
    fp_result_t ref, clip;
    REQUIRE(fp_extract_path(test_corpus_file(1), &cfg, NULL, &ref, err, sizeof err) == FP_OK, "%s", err);
    store_batch_t *b;
    REQUIRE(store_batch_begin(store, conn, &b, err, sizeof err) == DB_OK, "%s", err);
    int64_t id = add_track(b, "real.ogg", ref.prints, ref.count);
    REQUIRE(id > 0);
    REQUIRE(store_batch_commit(b, NULL, err, sizeof err) == DB_OK, "%s", err);

    /* the clip: the prints of 10 s from 20 s on, shifted to start at 0 */
    size_t n = 0;
    fp_print_t *q = malloc(ref.count * sizeof *q);
    uint32_t t0 = (uint32_t)(20.0 / fp_config_frame_seconds(&cfg)), t1 = (uint32_t)(30.0 / fp_config_frame_seconds(&cfg));
    for (size_t i = 0; i < ref.count; i++)
        if (ref.prints[i].t >= t0 && ref.prints[i].t < t1) {
            q[n] = ref.prints[i];
            q[n++].t -= t0;
        }
    clip.prints = q;
    clip.count = n;
    match_store_t *ms;
    REQUIRE(store_match_new(store, conn, 0, &ms) == DB_OK);
    match_opts_t mo;
    match_opts_default(&mo);
    match_result_t *res = NULL;
    size_t nres = 0;
    match_stats_t st;
    fp_err_t rc = match_query(ms, clip.prints, clip.count, &mo, &res, &nres, &st, err, sizeof err);
    CHECK(rc == FP_OK, "%s", err);
    CHECK(nres >= 1 && res[0].track == (uint32_t)id, "best of %zu: track %u, want %lld", nres,
          nres ? res[0].track : 0, (long long)id);
    if (nres) CHECK(fabs(res[0].ref_start - res[0].query_start - 20.0) < 0.1,
                    "offset %.2f s", res[0].ref_start - res[0].query_start);
    match_results_free(res, nres);
    match_store_free(ms);
    free(q);
    fp_result_clear(&ref);
}

static void test_db_close(void)
{
    store_free(store);
    db_close(conn);
    free(pa);
    free(pb);
    free(pc);
}

int main(void)
{
    alarm(600);
    setvbuf(stdout, NULL, _IOLBF, 0);
    RUN(test_keys);
    RUN(test_sort);
    RUN(test_codec_roundtrip);
    RUN(test_db_open);
    RUN(test_cache_basic);
    RUN(test_cache_threads);
    RUN(test_batch_and_lookup);
    RUN(test_cache_lookup);
    RUN(test_sieve_lookup);
    RUN(test_merge_and_delete);
    RUN(test_tenants);
    RUN(test_hit_order);
    RUN(test_two_parts);
    RUN(test_real_audio);
    RUN(test_db_close);
    return test_main_end();
}
