/*
 * store_codec.c -- keys and the byte format of posting rows (em_store.h has
 * the layout).  Pure functions: no I/O, no state.
 *
 * The format is byte-oriented (LEB128 varints, little-endian 16-bit f) so
 * that decoding is a tight loop and a group can be skipped by its length
 * without touching its postings: a lookup reads only the groups of the
 * clip's keys.
 */
#include "store_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int store_key(uint32_t hash, uint32_t *key)
{
    if (hash & FP_HASH_TRIPLET) {
        uint32_t low = hash & ~FP_HASH_TRIPLET;
        if (low >> STORE_TRIPLET_BITS) return -1;
        *key = (1u << FP_HASH_BITS) + low;
        return 0;
    }
    if (hash >> FP_HASH_BITS) return -1;
    *key = hash;
    return 0;
}

uint32_t store_key_hash(uint32_t key)
{
    if (key < (1u << FP_HASH_BITS)) return key;
    return FP_HASH_TRIPLET | (key - (1u << FP_HASH_BITS));
}

/*
 * f16 in [2^7, 2^13) (bins 8 .. 512 in 1/16 bin) on 170 steps an octave:
 * 6 octaves in 1020 steps, each 0.41%: the round trip is within 0.21%, plus
 * the rounding of the result to a whole 1/16 bin.  Values outside are clamped; 0 (unknown) is kept as 0 by using 1..1023.
 */
#define F_STEPS 170.0

uint16_t store_f_pack(uint16_t f16)
{
    if (!f16) return 0;
    double q = (log2((double)f16) - 7.0) * F_STEPS;
    long v = lrint(q) + 1;
    if (v < 1) v = 1;
    if (v > 1023) v = 1023;
    return (uint16_t)v;
}

static uint16_t f_unpack_slow(uint16_t q)
{
    if (!q) return 0;
    double f = exp2((double)(q - 1) / F_STEPS + 7.0);
    return (uint16_t)(f > 65535.0 ? 65535 : lrint(f));
}

/* The 1024 values in a table, built once: a lookup unpacks hundreds of
 * thousands (an exp2() per posting was 6% of a lookup's time at 10k
 * tracks). */
static uint16_t f_table[1024];
static pthread_once_t f_table_once = PTHREAD_ONCE_INIT;

static void f_table_build(void)
{
    for (uint16_t i = 0; i < 1024; i++) f_table[i] = f_unpack_slow(i);
}

uint16_t store_f_unpack(uint16_t q)
{
    if (q >= 1024) return f_unpack_slow(q);
    pthread_once(&f_table_once, f_table_build);
    return f_table[q];
}

uint8_t store_count_pack(uint64_t count)
{
    if (!count) return 0;
    int q = 1 + (int)floor(16.0 * log2((double)count) + 1e-9);
    return (uint8_t)(q > 255 ? 255 : q);
}

uint32_t store_count_unpack(uint8_t q)
{
    if (!q) return 0;
    double c = ceil(exp2((double)(q - 1) / 16.0) - 1e-9);
    return c > 4e9 ? 4000000000u : (uint32_t)c;
}

/* ---- sorting ------------------------------------------------------------ */

static inline uint64_t sort_key(const store_posting_t *p)
{
    /* key (23 bits) and track (32 bits) in one word; t sorted in a pass */
    return (uint64_t)p->key << 32 | p->track;
}

/*
 * LSD radix sort on t (32 bits) then on (key, track) (55 bits), 11 bits a
 * pass, skipping passes where every element has the same digit.  Stable,
 * so the result is sorted by (key, track, t).
 */
db_err_t store_postings_sort(store_posting_t *p, size_t n)
{
    if (n < 2) return DB_OK;
    store_posting_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return DB_ERR_NOMEM;
    store_posting_t *src = p, *dst = tmp;
    size_t count[2048];
    for (int field = 0; field < 2; field++) {
        int bits = field == 0 ? 32 : 55;
        for (int shift = 0; shift < bits; shift += 11) {
            memset(count, 0, sizeof count);
            for (size_t i = 0; i < n; i++) {
                uint64_t v = field == 0 ? src[i].t : sort_key(&src[i]);
                count[(v >> shift) & 2047]++;
            }
            uint64_t first = field == 0 ? src[0].t : sort_key(&src[0]);
            if (count[(first >> shift) & 2047] == n) continue;
            size_t sum = 0;
            for (int d = 0; d < 2048; d++) {
                size_t c = count[d];
                count[d] = sum;
                sum += c;
            }
            for (size_t i = 0; i < n; i++) {
                uint64_t v = field == 0 ? src[i].t : sort_key(&src[i]);
                dst[count[(v >> shift) & 2047]++] = src[i];
            }
            store_posting_t *x = src;
            src = dst;
            dst = x;
        }
    }
    if (src != p) memcpy(p, src, n * sizeof *p);
    free(tmp);
    return DB_OK;
}

/* ---- encoding ----------------------------------------------------------- */

static inline size_t put_varint(uint8_t *o, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}


/* Bytes of the postings p[0 .. n) of one key, written to o (room: 12 n). */
static size_t encode_postings(const store_posting_t *p, size_t n, uint8_t *o)
{
    size_t len = 0;
    uint32_t track = 0, t = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t dtrack = p[i].track - track;
        len += put_varint(o + len, dtrack);
        len += put_varint(o + len, (dtrack || i == 0) ? p[i].t : p[i].t - t);
        o[len++] = (uint8_t)(p[i].f & 0xff);
        o[len++] = (uint8_t)(p[i].f >> 8);
        track = p[i].track;
        t = p[i].t;
    }
    return len;
}

/*
 * Rows are built group by group: a group (one key's postings, duplicates
 * dropped) is encoded into a scratch buffer, then appended to the current
 * row behind its header; the row is emitted when it has reached
 * STORE_ROW_POSTINGS postings or the next group would take it past
 * STORE_ROW_BYTES.
 */
db_err_t store_rows_encode(const store_posting_t *p, size_t n, store_row_fn fn, void *ctx,
                           size_t *written)
{
    size_t total = 0;
    if (written) *written = 0;
    db_err_t rc = DB_OK;
    uint8_t *row = NULL, *grp = NULL;
    store_posting_t *uniq = NULL;
    size_t row_cap = 0, grp_cap = 0, uniq_cap = 0, row_len = 0, row_count = 0;
    uint32_t row_start = 0, prev_key = 0;

    for (size_t i = 0; i < n;) {
        uint32_t key = p[i].key;
        if (key >= STORE_KEY_SPACE || (i > 0 && key < p[i - 1].key)) {
            rc = DB_ERR_INVALID;
            goto done;
        }
        size_t j = i, m = 0;
        while (j < n && p[j].key == key) j++;
        if (j - i > uniq_cap) {
            uniq_cap = 2 * (j - i);
            store_posting_t *x = realloc(uniq, uniq_cap * sizeof *uniq);
            if (!x) { rc = DB_ERR_NOMEM; goto done; }
            uniq = x;
        }
        for (size_t k = i; k < j; k++) {
            if (k > i && (p[k].track < p[k - 1].track ||
                          (p[k].track == p[k - 1].track && p[k].t < p[k - 1].t))) {
                rc = DB_ERR_INVALID;
                goto done;
            }
            if (m && uniq[m - 1].track == p[k].track && uniq[m - 1].t == p[k].t) continue;
            uniq[m++] = p[k];
        }
        i = j;
        if (12 * m + 16 > grp_cap) {
            grp_cap = 2 * (12 * m + 16);
            uint8_t *x = realloc(grp, grp_cap);
            if (!x) { rc = DB_ERR_NOMEM; goto done; }
            grp = x;
        }
        size_t glen = encode_postings(uniq, m, grp);
        /* the next group does not fit: emit the current row first */
        if (row_count && row_len + glen + 15 > STORE_ROW_BYTES) {
            int r = fn(ctx, row_start, row, row_len);
            if (r) { rc = (db_err_t)r; goto done; }
            row_len = row_count = 0;
        }
        if (!row_count) row_start = prev_key = key;
        if (row_len + glen + 15 > row_cap) {
            row_cap = 2 * (row_len + glen + 15) + 256;
            uint8_t *x = realloc(row, row_cap);
            if (!x) { rc = DB_ERR_NOMEM; goto done; }
            row = x;
        }
        row_len += put_varint(row + row_len, key - prev_key);
        row_len += put_varint(row + row_len, (uint32_t)m);
        row_len += put_varint(row + row_len, (uint32_t)glen);
        memcpy(row + row_len, grp, glen);
        row_len += glen;
        row_count += m;
        total += m;
        prev_key = key;
        if (row_count >= STORE_ROW_POSTINGS) {
            int r = fn(ctx, row_start, row, row_len);
            if (r) { rc = (db_err_t)r; goto done; }
            row_len = row_count = 0;
        }
    }
    if (row_count) {
        int r = fn(ctx, row_start, row, row_len);
        if (r) rc = (db_err_t)r;
    }
done:
    if (written) *written = total;
    free(row);
    free(grp);
    free(uniq);
    return rc;
}

/* ---- decoding ----------------------------------------------------------- */

int store_row_next(const uint8_t *row, size_t len, size_t *pos, uint32_t *prev_key,
                   store_group_t *g)
{
    if (*pos >= len) return 0;
    int first = *pos == 0;
    uint32_t dk, count, glen;
    if (stri_get_varint(row, len, pos, &dk) || stri_get_varint(row, len, pos, &count) ||
        stri_get_varint(row, len, pos, &glen))
        return -1;
    if (glen > len - *pos || count == 0 || count > glen / 3 ||
        (uint64_t)*prev_key + dk >= STORE_KEY_SPACE)
        return -1;
    /* keys strictly increase after the first group (whose delta may be 0) */
    if (!first && dk == 0) return -1;
    g->key = *prev_key + dk;
    g->count = count;
    g->data = row + *pos;
    g->len = glen;
    *pos += glen;
    *prev_key = g->key;
    return 1;
}

int store_group_decode(const store_group_t *g, store_posting_t *out)
{
    stri_cursor_t c;
    stri_cursor_init(&c, g);
    uint32_t track, t, i = 0;
    uint16_t f;
    int st;
    while ((st = stri_cursor_next(&c, &track, &t, &f)) == 1)
        out[i++] = (store_posting_t){g->key, track, t, f, 0};
    return st == 0 ? 0 : -1;
}

db_err_t stri_row_decode(uint32_t start, const uint8_t *row, size_t len, uint8_t **blob,
                         size_t *bloblen)
{
    *blob = NULL;
    *bloblen = 0;
    size_t pos = 0, ngroups = 0, npostings = 0;
    uint32_t prev = start;
    store_group_t g;
    int st;
    while ((st = store_row_next(row, len, &pos, &prev, &g)) == 1) {
        ngroups++;
        npostings += g.count;
    }
    if (st < 0 || npostings > UINT32_MAX) return DB_ERR_CORRUPT;
    size_t size = sizeof(stri_drow_t) + ngroups * sizeof(stri_drow_group_t) +
                  npostings * (sizeof(fp_ref_t) + sizeof(uint16_t));
    uint8_t *b = malloc(size);
    if (!b) return DB_ERR_NOMEM;
    *(stri_drow_t *)b = (stri_drow_t){(uint32_t)ngroups, (uint32_t)npostings};
    stri_drow_group_t *grp = (stri_drow_group_t *)(b + sizeof(stri_drow_t));
    fp_ref_t *refs = (fp_ref_t *)(grp + ngroups);
    uint16_t *fs = (uint16_t *)(refs + npostings);
    size_t k = 0, at = 0;
    pos = 0;
    prev = start;
    while (store_row_next(row, len, &pos, &prev, &g) == 1) {
        grp[k++] = (stri_drow_group_t){g.key, g.count, (uint32_t)at};
        stri_cursor_t c;
        stri_cursor_init(&c, &g);
        uint32_t track, t;
        uint16_t f;
        while ((st = stri_cursor_next(&c, &track, &t, &f)) == 1) {
            fs[at] = f;
            refs[at++] = (fp_ref_t){track, t};
        }
        if (st < 0) {
            free(b);
            return DB_ERR_CORRUPT;
        }
    }
    *blob = b;
    *bloblen = size;
    return DB_OK;
}
