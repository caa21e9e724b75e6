/*
 * fuzz_rows.c -- libFuzzer harness for the store's row decoder
 * (store_row_next(), store_group_decode(); store/store_codec.c), which reads
 * rows back from PostgreSQL.
 *
 * The first 4 bytes of the input are the row's start key (little endian,
 * modulo STORE_KEY_SPACE), the rest the row's bytes.  The row is copied to
 * a buffer of exactly its size, and each group's bytes to one of exactly
 * the group's size, so that AddressSanitizer reports any read outside them.
 *
 * Besides crashes and sanitizer reports, a broken promise of the codec is
 * turned into a crash (abort) so the fuzzer keeps the input:
 *   - store_row_next() returns a group only inside the row, right after the
 *     previous one, with keys from the start key on, strictly increasing
 *     after the first group, below STORE_KEY_SPACE, and a count >= 1;
 *   - every posting store_group_decode() gives has the group's key (groups
 *     of count <= 1 << 20 are decoded, into an array of exactly count);
 *   - a row that decodes fully, sorted (store_postings_sort()) and encoded
 *     again (store_rows_encode()), decodes to the same postings (key,
 *     track, t, f) less the exact duplicates of (key, track, t) the encoder
 *     drops (it keeps the first): same number written, rows in key order
 *     starting at their first key, and a row of several groups within
 *     STORE_ROW_BYTES;
 *   - stri_row_decode() (the row as the row cache keeps it) decodes exactly
 *     the rows that decode group by group, to the same postings, f left
 *     packed, and refuses the others with DB_ERR_CORRUPT.
 *
 * With FUZZ_ROWS_SEEDS=DIR in the environment the program only writes seed
 * inputs (rows encoded from random postings) into DIR and exits.
 *
 * Built and run by tests/fuzz/run.sh.
 */
#include "em_store.h"
#include "store_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DECODE (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, uint32_t detail)
{
    fprintf(stderr, "fuzz_rows: broken promise: %s [%u]\n", what, (unsigned)detail);
    abort();
}

/* ---- a growing array of postings ------------------------------------------ */

typedef struct plist {
    store_posting_t *p;
    size_t n, cap;
} plist_t;

static void plist_add(plist_t *l, const store_posting_t *p, size_t n)
{
    if (l->n + n > l->cap) {
        l->cap = 2 * (l->n + n) + 16;
        l->p = realloc(l->p, l->cap * sizeof *l->p);
        if (!l->p) abort();
    }
    memcpy(l->p + l->n, p, n * sizeof *p);
    l->n += n;
}

/*
 * Walk a row, checking the promises, and append its postings to *out (when
 * out is not NULL).  Returns 1 when every group was decoded and the row
 * ended cleanly, 0 otherwise.
 */
static int walk_row(uint32_t start, const uint8_t *row, size_t len, plist_t *out)
{
    size_t pos = 0;
    uint32_t prev = start, last = 0;
    int ngroups = 0, all = 1;
    store_group_t g;
    int r;
    while ((r = store_row_next(row, len, &pos, &prev, &g)) == 1) {
        size_t off = (size_t)(g.data - row);
        if (g.data < row || off > len || g.len > len - off) broken("a group outside the row", off);
        if (off + g.len != pos) broken("*pos is not the end of the group", (uint32_t)pos);
        if (g.count == 0) broken("a group of no postings", g.key);
        if (g.key >= STORE_KEY_SPACE) broken("a key outside the key space", g.key);
        if (g.key < start) broken("a key below the row's start", g.key);
        if (ngroups && g.key <= last) broken("keys do not strictly increase", g.key);
        if (prev != g.key) broken("*prev_key is not the group's key", prev);
        last = g.key;
        ngroups++;
        if (g.count > MAX_DECODE) {
            all = 0;
            continue;
        }
        /* the group's bytes alone, so that ASan sees any read past them */
        uint8_t *gb = malloc(g.len);
        store_posting_t *ps = malloc(g.count * sizeof *ps);
        if ((!gb && g.len) || !ps) abort();
        memcpy(gb, g.data, g.len);
        store_group_t g2 = g;
        g2.data = gb;
        if (store_group_decode(&g2, ps) == 0) {
            for (uint32_t i = 0; i < g.count; i++)
                if (ps[i].key != g.key) broken("a posting without its group's key", ps[i].key);
            if (out) plist_add(out, ps, g.count);
        } else {
            all = 0;
        }
        free(ps);
        free(gb);
    }
    if (r != 0 && r != -1) broken("store_row_next returned neither 1, 0 nor -1", (uint32_t)r);
    if (pos > len) broken("*pos past the row", (uint32_t)pos);
    if (r == 0 && pos != len) broken("end of row before its end", (uint32_t)pos);
    return r == 0 && all;
}

/* ---- the round trip ----------------------------------------------------------- */

typedef struct rows {
    uint8_t **data;
    size_t *len;
    uint32_t *start;
    size_t n, cap;
} rows_t;

static int collect(void *ctx, uint32_t start, const uint8_t *data, size_t len)
{
    rows_t *rs = ctx;
    if (rs->n == rs->cap) {
        rs->cap = 2 * rs->cap + 8;
        rs->data = realloc(rs->data, rs->cap * sizeof *rs->data);
        rs->len = realloc(rs->len, rs->cap * sizeof *rs->len);
        rs->start = realloc(rs->start, rs->cap * sizeof *rs->start);
        if (!rs->data || !rs->len || !rs->start) abort();
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, data, len);
    rs->data[rs->n] = copy;
    rs->len[rs->n] = len;
    rs->start[rs->n] = start;
    rs->n++;
    return 0;
}

static void rows_free(rows_t *rs)
{
    for (size_t i = 0; i < rs->n; i++) free(rs->data[i]);
    free(rs->data);
    free(rs->len);
    free(rs->start);
}

static int same_ktt(const store_posting_t *a, const store_posting_t *b)
{
    return a->key == b->key && a->track == b->track && a->t == b->t;
}

static void round_trip(plist_t *dec)
{
    /* what the encoder gets: the postings sorted (store_postings_sort() is
     * stable, so the first of duplicates stays first) */
    size_t n = dec->n;
    store_posting_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    store_posting_t *want = malloc((n ? n : 1) * sizeof *want);
    if (!sorted || !want) abort();
    if (n) memcpy(sorted, dec->p, n * sizeof *sorted);
    if (store_postings_sort(sorted, n) != DB_OK) broken("store_postings_sort failed", 0);
    for (size_t i = 1; i < n; i++)
        if (sorted[i - 1].key > sorted[i].key ||
            (sorted[i - 1].key == sorted[i].key &&
             (sorted[i - 1].track > sorted[i].track ||
              (sorted[i - 1].track == sorted[i].track && sorted[i - 1].t > sorted[i].t))))
            broken("store_postings_sort did not sort", (uint32_t)i);
    for (size_t i = 0; i < n; i++)  /* decoded rows are sorted already: a stable sort keeps them */
        if (!same_ktt(&sorted[i], &dec->p[i]) || sorted[i].f != dec->p[i].f)
            broken("store_postings_sort moved sorted postings", (uint32_t)i);
    /* what must come back: the first of each (key, track, t) */
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (!nw || !same_ktt(&want[nw - 1], &sorted[i])) want[nw++] = sorted[i];

    rows_t rs = {0};
    size_t written = (size_t)-1;
    db_err_t rc = store_rows_encode(sorted, n, collect, &rs, &written);
    if (rc != DB_OK) broken("store_rows_encode failed on sorted postings", (uint32_t)rc);
    if (written != nw) broken("store_rows_encode wrote another number of postings", (uint32_t)written);

    plist_t again = {0};
    for (size_t i = 0; i < rs.n; i++) {
        if (rs.len[i] == 0) broken("an empty row", (uint32_t)i);
        if (i && rs.start[i] <= rs.start[i - 1]) broken("rows not in key order", rs.start[i]);
        size_t before = again.n;
        /* each row in a buffer of its own size (collect() made it so) */
        if (!walk_row(rs.start[i], rs.data[i], rs.len[i], &again))
            broken("an encoded row does not decode", rs.start[i]);
        if (again.n == before) broken("a row without postings", rs.start[i]);
        if (again.p[before].key != rs.start[i]) broken("a row's start is not its first key", rs.start[i]);
        if (i && again.p[before].key <= again.p[before - 1].key)
            broken("a key split over two rows", again.p[before].key);
        if (again.p[again.n - 1].key != again.p[before].key && rs.len[i] > STORE_ROW_BYTES)
            broken("a row of several groups over STORE_ROW_BYTES", (uint32_t)rs.len[i]);
    }
    if (again.n != nw) broken("the round trip changed the number of postings", (uint32_t)again.n);
    for (size_t i = 0; i < nw; i++) {
        const store_posting_t *a = &want[i], *b = &again.p[i];
        if (!same_ktt(a, b) || a->f != b->f) broken("the round trip changed a posting", (uint32_t)i);
    }
    free(again.p);
    rows_free(&rs);
    free(sorted);
    free(want);
}

/* stri_row_decode agrees with walk_row: the same postings when the row
 * decodes whole (dec holds them), a refusal when a group does not decode. */
static void check_drow(uint32_t start, const uint8_t *row, size_t len, int whole, const plist_t *dec)
{
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    db_err_t rc = stri_row_decode(start, row, len, &blob, &bloblen);
    if (rc == DB_ERR_NOMEM) abort();
    if (whole) {
        if (rc != DB_OK) broken("stri_row_decode refused a row that decodes", (uint32_t)rc);
        const stri_drow_t *h = (const stri_drow_t *)blob;
        const stri_drow_group_t *g = stri_drow_groups(blob);
        const fp_ref_t *r = stri_drow_refs(blob);
        const uint16_t *rf = stri_drow_fs(blob);
        if (h->npostings != dec->n) broken("stri_row_decode: another number of postings", h->npostings);
        if ((const uint8_t *)(rf + h->npostings) != blob + bloblen)
            broken("stri_row_decode: the blob's length", (uint32_t)bloblen);
        size_t at = 0;
        for (uint32_t i = 0; i < h->ngroups; i++) {
            if (g[i].first != at) broken("stri_row_decode: a group's first posting", g[i].first);
            for (uint32_t k = 0; k < g[i].count; k++, at++) {
                const store_posting_t *p = &dec->p[at];
                if (p->key != g[i].key || p->track != r[at].track || p->t != r[at].t ||
                    p->f != rf[at])
                    broken("stri_row_decode: another posting", (uint32_t)at);
            }
        }
        if (at != dec->n) broken("stri_row_decode: groups do not cover the postings", (uint32_t)at);
    } else if (rc == DB_OK) {
        /* walk_row skips groups over MAX_DECODE postings: not a refusal */
        const stri_drow_t *h = (const stri_drow_t *)blob;
        int big = 0;
        for (uint32_t i = 0; i < h->ngroups; i++) big |= stri_drow_groups(blob)[i].count > MAX_DECODE;
        if (!big) broken("stri_row_decode took a row that does not decode", 0);
    } else if (rc != DB_ERR_CORRUPT) {
        broken("stri_row_decode: neither DB_OK nor DB_ERR_CORRUPT", (uint32_t)rc);
    }
    free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t start = ((uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                      (uint32_t)data[3] << 24) % STORE_KEY_SPACE;
    size_t len = size - 4;
    uint8_t *row = malloc(len ? len : 1);
    if (!row) abort();
    memcpy(row, data + 4, len);
    plist_t dec = {0};
    int whole = walk_row(start, row, len, &dec);
    check_drow(start, row, len, whole, &dec);
    if (whole) round_trip(&dec);
    free(dec.p);
    free(row);
    return 0;
}

/* ---- seeds (FUZZ_ROWS_SEEDS=DIR) ------------------------------------------------ */

typedef struct seed_ctx {
    const char *dir;
    const char *name;
    int n;
} seed_ctx_t;

static int write_seed(void *ctx, uint32_t start, const uint8_t *data, size_t len)
{
    seed_ctx_t *s = ctx;
    if (s->n >= 4) return 0;  /* a few rows of each kind are enough */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%d", s->dir, s->name, s->n++);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    uint8_t k[4] = {(uint8_t)start, (uint8_t)(start >> 8), (uint8_t)(start >> 16),
                    (uint8_t)(start >> 24)};
    int bad = fwrite(k, 1, 4, f) != 4 || fwrite(data, 1, len, f) != len;
    return fclose(f) || bad;
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* n random postings over nkeys keys from key0, ntracks tracks, t below tmax. */
static int make_seeds(const char *dir, const char *name, size_t n, uint32_t key0, uint32_t nkeys,
                      uint32_t ntracks, uint32_t tmax)
{
    store_posting_t *p = malloc(n * sizeof *p);
    if (!p) return 1;
    for (size_t i = 0; i < n; i++) {
        p[i] = (store_posting_t){(key0 + rnd() % nkeys) % STORE_KEY_SPACE, 1 + rnd() % ntracks,
                                 rnd() % tmax, store_f_pack((uint16_t)(rnd() % 8192)), 0};
        if (i && rnd() % 8 == 0) p[i] = p[i - 1];  /* exact duplicates, dropped */
    }
    if (store_postings_sort(p, n) != DB_OK) return 1;
    seed_ctx_t s = {dir, name, 0};
    db_err_t rc = store_rows_encode(p, n, write_seed, &s, NULL);
    free(p);
    return rc != DB_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("FUZZ_ROWS_SEEDS");
    if (!dir) return 0;
    int bad = 0;
    bad |= make_seeds(dir, "spread", 200, 1000, 400, 50, 20000);          /* one posting a key */
    bad |= make_seeds(dir, "dense", 300, 70000, 5, 8, 3000);              /* many a key */
    bad |= make_seeds(dir, "common", 100, 123, 1, 1000000, 4000000000u); /* one key, big values */
    bad |= make_seeds(dir, "triplet", 120, 1u << FP_HASH_BITS, 1u << STORE_TRIPLET_BITS, 3, 500);
    bad |= make_seeds(dir, "top", 20, STORE_KEY_SPACE - 30, 30, 2, 100);  /* near the top key */
    if (bad) {
        fprintf(stderr, "fuzz_rows: cannot write seeds into %s\n", dir);
        exit(1);
    }
    exit(0);
}
