/*
 * fp_score.c -- time-offset voting over candidate hits.
 *
 * A recording that really sits inside the query produces many hits whose
 * ref_t - query_t is (nearly) the same: a spike in that track's offset
 * histogram.  Random hash collisions spread evenly over offsets.  So:
 *
 *   1. sort the hits by (track, offset) with an LSD radix sort (linear time;
 *      byte passes where every key agrees are skipped);
 *   2. per track, count the hits of each offset and of its +-tolerance band,
 *      and take band maxima with at least min_count hits, strongest first,
 *      suppressing maxima that overlap one already taken;
 *   3. per maximum, gather its band's hits, count each query print once, and
 *      split them where the query time jumps by more than max_gap frames, so
 *      a recording heard twice, or an outlier hit far away, gives separate
 *      segments rather than one stretched one.
 *
 * Pure computation: no I/O, no globals; the only allocations are scratch
 * arrays freed before returning and the result array.
 */
#include "fp_internal.h"

#include <string.h>

void fp_score_opts_default(fp_score_opts_t *o)
{
    o->min_count = 5;
    o->tolerance = 1;
    o->max_gap = 430;
    o->max_candidates = 16;
}

/* Frames are below 2^31 (checked), so the offset fits 32 bits. */
static inline uint64_t hit_key(const fp_hit_t *h)
{
    int64_t off = (int64_t)h->ref_t - (int64_t)h->query_t;
    return (uint64_t)h->track << 32 | (uint64_t)(off + ((int64_t)1 << 31));
}

static inline int64_t key_offset(uint64_t key)
{
    return (int64_t)(key & 0xffffffffu) - ((int64_t)1 << 31);
}

/* LSD radix sort of hits by hit_key, 8 bits a pass; tmp holds n hits. */
static void radix_sort(fp_hit_t *hits, fp_hit_t *tmp, uint64_t *keys, uint64_t *ktmp, size_t n)
{
    size_t count[256];
    for (size_t i = 0; i < n; i++) keys[i] = hit_key(&hits[i]);
    for (int shift = 0; shift < 64; shift += 8) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++) count[(keys[i] >> shift) & 0xff]++;
        if (count[(keys[0] >> shift) & 0xff] == n) continue; /* all agree */
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t d = count[(keys[i] >> shift) & 0xff]++;
            tmp[d] = hits[i];
            ktmp[d] = keys[i];
        }
        memcpy(hits, tmp, n * sizeof *hits);
        memcpy(keys, ktmp, n * sizeof *keys);
    }
}

typedef struct bin {
    int64_t offset;
    size_t first, count; /* hits [first, first+count) of this offset */
    size_t band;         /* hits within +-tolerance */
    int used;
} bin_t;

static int cmp_band_desc(const void *a, const void *b)
{
    const bin_t *x = *(const bin_t *const *)a, *y = *(const bin_t *const *)b;
    if (x->band != y->band) return x->band > y->band ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_query_t(const void *a, const void *b)
{
    const fp_hit_t *x = a, *y = b;
    if (x->query_t != y->query_t) return x->query_t < y->query_t ? -1 : 1;
    if (x->query_idx != y->query_idx) return x->query_idx < y->query_idx ? -1 : 1;
    return x->ref_t < y->ref_t ? -1 : x->ref_t > y->ref_t;
}

static int cmp_cand(const void *a, const void *b)
{
    const fp_candidate_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->query_start < y->query_start ? -1 : x->query_start > y->query_start;
}

typedef struct scratch {
    bin_t *bins;
    size_t nbins, bins_cap;
    bin_t **order;
    size_t order_cap;
    fp_hit_t *band;
    size_t band_cap;
    fp_candidate_t *cands;
    size_t ncands, cands_cap;
} scratch_t;

/* Split the hits of one band into segments and append the good ones. */
static fp_err_t band_segments(scratch_t *s, size_t nband, int64_t offset,
                              const fp_score_opts_t *o)
{
    qsort(s->band, nband, sizeof *s->band, cmp_query_t);
    size_t i = 0;
    while (i < nband) {
        fp_candidate_t c = {.track = s->band[i].track, .offset = offset, .speed = 1.0,
                            .query_start = s->band[i].query_t, .ref_start = s->band[i].ref_t,
                            .ref_end = s->band[i].ref_t};
        uint32_t last_q = s->band[i].query_t, last_idx = s->band[i].query_idx;
        c.count = 1;
        size_t j = i + 1;
        for (; j < nband; j++) {
            const fp_hit_t *h = &s->band[j];
            if (h->query_t - last_q > o->max_gap) break;
            if (h->query_idx != last_idx) c.count++;
            last_q = h->query_t;
            last_idx = h->query_idx;
            if (h->ref_t < c.ref_start) c.ref_start = h->ref_t;
            if (h->ref_t > c.ref_end) c.ref_end = h->ref_t;
        }
        c.query_end = last_q;
        if (c.count >= o->min_count) {
            fp_err_t rc = fpi_grow((void **)&s->cands, &s->cands_cap, s->ncands + 1, sizeof c);
            if (rc != FP_OK) return rc;
            s->cands[s->ncands++] = c;
        }
        i = j;
    }
    return FP_OK;
}

/* All alignments of one track: hits[a, b) sorted by offset. */
static fp_err_t score_track(scratch_t *s, const fp_hit_t *hits, const uint64_t *keys, size_t a,
                            size_t b, const fp_score_opts_t *o)
{
    fp_err_t rc;
    if (b - a < o->min_count) return FP_OK;
    /* distinct offsets */
    s->nbins = 0;
    for (size_t i = a; i < b;) {
        size_t j = i + 1;
        while (j < b && keys[j] == keys[i]) j++;
        rc = fpi_grow((void **)&s->bins, &s->bins_cap, s->nbins + 1, sizeof(bin_t));
        if (rc != FP_OK) return rc;
        s->bins[s->nbins++] = (bin_t){key_offset(keys[i]), i, j - i, 0, 0};
        i = j;
    }
    /* band sums with two pointers; keep the bins that can qualify */
    size_t lo = 0, hi = 0, sum = 0, nord = 0;
    for (size_t k = 0; k < s->nbins; k++) {
        int64_t off = s->bins[k].offset;
        while (hi < s->nbins && s->bins[hi].offset <= off + o->tolerance) sum += s->bins[hi++].count;
        while (s->bins[lo].offset < off - o->tolerance) sum -= s->bins[lo++].count;
        s->bins[k].band = sum;
        if (sum >= o->min_count) {
            rc = fpi_grow((void **)&s->order, &s->order_cap, nord + 1, sizeof(bin_t *));
            if (rc != FP_OK) return rc;
            s->order[nord++] = &s->bins[k];
        }
    }
    qsort(s->order, nord, sizeof *s->order, cmp_band_desc);
    for (size_t r = 0; r < nord; r++) {
        bin_t *peak = s->order[r];
        if (peak->used) continue;
        /* gather the band; mark bins within 2*tolerance as taken */
        size_t nband = 0, k0 = (size_t)(peak - s->bins);
        while (k0 > 0 && s->bins[k0 - 1].offset >= peak->offset - 2 * o->tolerance) k0--;
        for (size_t k = k0; k < s->nbins && s->bins[k].offset <= peak->offset + 2 * o->tolerance;
             k++) {
            bin_t *bn = &s->bins[k];
            int64_t d = bn->offset - peak->offset;
            if (d >= -o->tolerance && d <= o->tolerance && !bn->used) {
                rc = fpi_grow((void **)&s->band, &s->band_cap, nband + bn->count, sizeof(fp_hit_t));
                if (rc != FP_OK) return rc;
                memcpy(s->band + nband, hits + bn->first, bn->count * sizeof(fp_hit_t));
                nband += bn->count;
            }
            bn->used = 1;
        }
        if (nband >= o->min_count) {
            rc = band_segments(s, nband, peak->offset, o);
            if (rc != FP_OK) return rc;
        }
    }
    return FP_OK;
}

fp_err_t fp_score_hits(fp_hit_t *hits, size_t n, const fp_score_opts_t *opts,
                       fp_candidate_t **out, size_t *n_out)
{
    fp_err_t rc = FP_OK;
    fp_score_opts_t o;
    scratch_t s;
    fp_hit_t *tmp = NULL;
    uint64_t *keys = NULL, *ktmp = NULL;

    memset(&s, 0, sizeof s);
    *out = NULL;
    *n_out = 0;
    if (opts) o = *opts;
    else fp_score_opts_default(&o);
    if ((!hits && n) || o.tolerance < 0 || o.tolerance > 1000 || o.max_candidates == 0)
        return FP_ERR_INVALID;
    if (o.min_count < 1) o.min_count = 1;
    if (n < o.min_count) return FP_OK;
    if (n > SIZE_MAX / sizeof(fp_hit_t)) return FP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if ((hits[i].ref_t | hits[i].query_t) >= (uint32_t)1 << 31) return FP_ERR_INVALID;

    tmp = malloc(n * sizeof *tmp);
    keys = malloc(n * sizeof *keys);
    ktmp = malloc(n * sizeof *ktmp);
    if (!tmp || !keys || !ktmp) {
        rc = FP_ERR_NOMEM;
        goto out;
    }
    radix_sort(hits, tmp, keys, ktmp, n);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && hits[j].track == hits[i].track) j++;
        rc = score_track(&s, hits, keys, i, j, &o);
        if (rc != FP_OK) goto out;
        i = j;
    }
    if (s.ncands) {
        qsort(s.cands, s.ncands, sizeof *s.cands, cmp_cand);
        if (s.ncands > o.max_candidates) s.ncands = o.max_candidates;
        *out = s.cands;
        *n_out = s.ncands;
        s.cands = NULL;
    }
out:
    free(tmp);
    free(keys);
    free(ktmp);
    free(s.bins);
    free(s.order);
    free(s.band);
    free(s.cands);
    return rc;
}
