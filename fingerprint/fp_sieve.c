/*
 * fp_sieve.c -- a filter that drops, before scoring, the hits that cannot
 * belong to any alignment.
 *
 * On a large catalog almost every hit of a clip is a chance collision: a
 * 10 s clip against 10 000 recordings brings ~600 000 hits, of which a few
 * thousand line up.  fp_score_hits needs min_count hits of one track in a
 * band of 2 tolerance + 1 offsets (unscaled voting), or min_count invariant
 * hits of one track in a window of `width` offsets (the scaled search; width
 * covers every offset a line of speed min_speed..max_speed takes over the
 * query's span).  Cut offsets into buckets at least that wide: a band or a
 * window lies in two neighbouring buckets, and so does every hit in it.  A
 * hit whose bucket, together with neither neighbour, holds min_count hits
 * of its track is in no band and no window that can qualify: it is
 * dropped.
 *
 * The counts are kept in two tables of byte counters (narrow buckets for
 * the bands, wide ones for the windows, invariant hits only), a slot being
 * (a hash of the track) + (the bucket number), so that a track's
 * neighbouring buckets are neighbouring slots.  Tracks that share a slot,
 * and counters saturating at 255, only add: they can keep a hit that
 * could be dropped, never drop one that must be kept.  The tables are sized
 * to the number of hits (a few hits a counter), so that few hits are
 * kept by chance (table_bits).
 *
 * Once every hit is counted, the first filtering call seals the sieve:
 * each table becomes a bitmap of its slots, a bit set where the slot with
 * one of its neighbours reaches min_count (seal_table; 1/8 of the table,
 * small enough for the core's first caches).  Testing a hit is then one
 * bit a table instead of three bytes scattered over 256 kB.
 *
 * Use: fp_sieve_count every hit, then fp_sieve_filter every hit (in any
 * order, in any chunks).  The store does this while it decodes postings,
 * twice, so the hundreds of thousands of chance hits are never written
 * out.  fp_score_hits runs the same sieve over its input.  Threads can
 * count parts of the hits in sieves of their own, made alike, and
 * fp_sieve_merge them: counters add (saturating).
 */
#include "fp_internal.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SIEVE_MIN_BITS 16  /* 64 kB a table at least ... */
#define SIEVE_MAX_BITS 23  /* ... and 8 MB at most */

struct fp_sieve {
    uint32_t min_count;
    int scaled;
    uint32_t nmask, wmask;
    uint64_t nscale, wscale; /* bucket = offset * scale >> 32 */
    uint8_t *narrow, *wide;
    uint64_t *nkeep, *wkeep;  /* the sealed tables: a bit a slot */
    int sealed;               /* the bitmaps match the counters */
};

uint32_t fpi_sieve_width(const fp_score_opts_t *o, uint32_t query_span)
{
    double reach = fmax(1.0 - o->min_speed, o->max_speed - 1.0);
    double w = ceil(reach * (double)query_span) + 4.0 * o->tolerance + 3.0;
    return w < (double)UINT32_MAX ? (uint32_t)w : UINT32_MAX;
}

/*
 * Counters for the hits: a pair of counters holds twice the load in chance
 * hits, which must stay well below min_count for few to be kept by chance;
 * a load of min_count / 3 (4 hits a counter at min_count 12) measured the
 * fastest on 10 000 tracks: smaller tables stay in the core's cache.
 */
static int table_bits(size_t hits, uint32_t min_count)
{
    int b = SIEVE_MIN_BITS;
    while (b < SIEVE_MAX_BITS && ((uint64_t)min_count << b) < 3 * (uint64_t)hits) b++;
    return b;
}

fp_err_t fp_sieve_new(const fp_score_opts_t *opts, const fp_print_t *q, size_t nq,
                      size_t expected_hits, fp_sieve_t **out)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    *out = NULL;
    if (!q && nq) return FP_ERR_INVALID;
    for (size_t i = 0; i < nq; i++) {
        if (q[i].t < lo) lo = q[i].t;
        if (q[i].t > hi) hi = q[i].t;
    }
    return fpi_sieve_new(opts, nq ? hi - lo : 0, expected_hits, out);
}

fp_err_t fpi_sieve_new(const fp_score_opts_t *opts, uint32_t query_span, size_t expected_hits,
                       fp_sieve_t **out)
{
    fp_score_opts_t o;
    *out = NULL;
    if (opts) o = *opts;
    else fp_score_opts_default(&o);
    if (o.tolerance < 0 || o.tolerance > 1000 ||
        !(o.min_speed > 0.1 && o.min_speed <= 1.0 && o.max_speed >= 1.0 && o.max_speed < 10.0))
        return FP_ERR_INVALID;
    fp_sieve_t *s = calloc(1, sizeof *s);
    if (!s) return FP_ERR_NOMEM;
    /* counters saturate at 255: a pair of them shows at least min(real, 255) */
    s->min_count = o.min_count < 1 ? 1 : o.min_count > 255 ? 255 : o.min_count;
    s->scaled = o.scaled_tracks && o.min_speed < o.max_speed;
    int bits = table_bits(expected_hits, s->min_count);
    s->nmask = (1u << bits) - 1;
    s->wmask = s->nmask;
    s->nscale = ((uint64_t)1 << 32) / (2 * (uint64_t)o.tolerance + 1);
    s->wscale = ((uint64_t)1 << 32) / fpi_sieve_width(&o, query_span);
    s->narrow = calloc((size_t)1 << bits, 1);
    s->wide = s->scaled ? calloc((size_t)1 << bits, 1) : NULL;
    s->nkeep = malloc(((size_t)1 << bits) / 8);
    s->wkeep = s->scaled ? malloc(((size_t)1 << bits) / 8) : NULL;
    if (!s->narrow || !s->nkeep || (s->scaled && (!s->wide || !s->wkeep))) {
        fp_sieve_free(s);
        return FP_ERR_NOMEM;
    }
    *out = s;
    return FP_OK;
}

void fp_sieve_free(fp_sieve_t *s)
{
    if (!s) return;
    free(s->narrow);
    free(s->wide);
    free(s->nkeep);
    free(s->wkeep);
    free(s);
}

/* The offset biased to be unsigned; frames are below 2^31 (callers drop the
 * rest), so it fits 32 bits. */
static inline uint32_t sieve_offset(const fp_hit_t *h)
{
    return h->ref_t - h->query_t + 0x80000000u;
}

static inline uint32_t sieve_base(uint32_t track)
{
    return track * 0x9E3779B1u;
}

static inline void bump(uint8_t *c)
{
    *c = (uint8_t)(*c + (*c != 255));
}

/* A counter's slot: the track's hash plus the offset's bucket. */
static inline uint32_t slot(uint32_t track, uint32_t off, uint64_t scale)
{
    return sieve_base(track) + (uint32_t)((off * scale) >> 32);
}

/* Count one hit of track at the biased offset off. */
static inline void count_one(fp_sieve_t *s, uint32_t track, uint32_t off, int invariant)
{
    bump(&s->narrow[slot(track, off, s->nscale) & s->nmask]);
    if (s->scaled && invariant) bump(&s->wide[slot(track, off, s->wscale) & s->wmask]);
}

/* Does the bucket at slot a, with one of its neighbours, reach need? */
static inline int pair_holds(const uint8_t *t, uint32_t mask, uint32_t a, uint32_t need)
{
    uint32_t c = t[a & mask];
    return c + t[(a + 1) & mask] >= need || c + t[(a - 1) & mask] >= need;
}

/* pair_holds for the 64 slots of word w, one bit each. */
static uint64_t seal_word(const uint8_t *t, uint32_t mask, size_t w, uint32_t need)
{
    uint64_t word = 0;
    for (uint32_t b = 0; b < 64; b++)
        word |= (uint64_t)pair_holds(t, mask, (uint32_t)(w * 64 + b), need) << b;
    return word;
}

/*
 * The bitmap of a table of mask + 1 counters (a power of two, at least
 * 2^16): bit a of keep is pair_holds(t, mask, a, need).  The first and the
 * last word wrap around the table; the words between them take 16 slots at
 * a time with SSE2 (saturating pair sums compared with need), where there
 * is SSE2.
 */
static void seal_table(const uint8_t *t, uint32_t mask, uint32_t need, uint64_t *keep)
{
    size_t words = ((size_t)mask + 1) / 64;
    keep[0] = seal_word(t, mask, 0, need);
    keep[words - 1] = seal_word(t, mask, words - 1, need);
#ifdef __SSE2__
    const __m128i nv = _mm_set1_epi8((char)need);
    for (size_t w = 1; w + 1 < words; w++) {
        uint64_t word = 0;
        for (int part = 0; part < 4; part++) {
            const uint8_t *c = t + w * 64 + 16 * part;
            __m128i x = _mm_loadu_si128((const __m128i *)c);
            __m128i r = _mm_adds_epu8(x, _mm_loadu_si128((const __m128i *)(c + 1)));
            __m128i l = _mm_adds_epu8(x, _mm_loadu_si128((const __m128i *)(c - 1)));
            __m128i ok = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(r, nv), r),
                                      _mm_cmpeq_epi8(_mm_max_epu8(l, nv), l));
            word |= (uint64_t)(uint16_t)_mm_movemask_epi8(ok) << (16 * part);
        }
        keep[w] = word;
    }
#else
    for (size_t w = 1; w + 1 < words; w++) keep[w] = seal_word(t, mask, w, need);
#endif
}

void fp_sieve_seal(fp_sieve_t *s)
{
    if (s->sealed) return;
    seal_table(s->narrow, s->nmask, s->min_count, s->nkeep);
    if (s->scaled) seal_table(s->wide, s->wmask, s->min_count, s->wkeep);
    s->sealed = 1;
}

int fp_sieve_keeps_none(fp_sieve_t *s)
{
    fp_sieve_seal(s);
    size_t words = ((size_t)s->nmask + 1) / 64;
    uint64_t any = 0;
    for (size_t w = 0; w < words; w++) any |= s->nkeep[w];
    if (s->scaled)
        for (size_t w = 0; w < words; w++) any |= s->wkeep[w];
    return any == 0;
}

/* t[i] += u[i], saturating, for n bytes. */
static void add_table(uint8_t *t, const uint8_t *u, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(t + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(u + i));
        _mm_storeu_si128((__m128i *)(t + i), _mm_adds_epu8(a, b));
    }
#endif
    for (; i < n; i++) t[i] = (uint8_t)(t[i] + u[i] > 255 ? 255 : t[i] + u[i]);
}

fp_err_t fp_sieve_merge(fp_sieve_t *dst, const fp_sieve_t *src)
{
    if (dst->min_count != src->min_count || dst->scaled != src->scaled ||
        dst->nmask != src->nmask || dst->wmask != src->wmask || dst->nscale != src->nscale ||
        dst->wscale != src->wscale)
        return FP_ERR_INVALID;
    add_table(dst->narrow, src->narrow, (size_t)dst->nmask + 1);
    if (dst->scaled) add_table(dst->wide, src->wide, (size_t)dst->wmask + 1);
    dst->sealed = 0;
    return FP_OK;
}

static inline int bit(const uint64_t *keep, uint32_t a)
{
    return (int)(keep[a >> 6] >> (a & 63)) & 1;
}

/* Is a hit of track at the biased offset off kept?  (sealed) */
static inline int keeps(const fp_sieve_t *s, uint32_t track, uint32_t off)
{
    return bit(s->nkeep, slot(track, off, s->nscale) & s->nmask) ||
           (s->scaled && bit(s->wkeep, slot(track, off, s->wscale) & s->wmask));
}

void fp_sieve_count(fp_sieve_t *s, const fp_hit_t *h, size_t n)
{
    s->sealed = 0;
    for (size_t i = 0; i < n; i++)
        count_one(s, h[i].track, sieve_offset(&h[i]), h[i].flags & FP_HIT_INVARIANT);
}

void fp_sieve_count_refs(fp_sieve_t *s, const fp_print_t *qp, const fp_ref_t *r, size_t n)
{
    const uint32_t bias = 0x80000000u - qp->t;
    const int invariant = (qp->hash & FP_HASH_TRIPLET) != 0;
    s->sealed = 0;
    for (size_t i = 0; i < n; i++) count_one(s, r[i].track, r[i].t + bias, invariant);
}

size_t fpi_sieve_select(fp_sieve_t *s, const fp_hit_t *h, size_t n, uint32_t *idx)
{
    size_t k = 0;
    fp_sieve_seal(s);
    for (size_t i = 0; i < n; i++) {
        idx[k] = (uint32_t)i;
        k += keeps(s, h[i].track, sieve_offset(&h[i]));
    }
    return k;
}

size_t fp_sieve_select_refs(fp_sieve_t *s, const fp_print_t *qp, const fp_ref_t *r,
                            size_t n, uint32_t *idx)
{
    const uint32_t bias = 0x80000000u - qp->t;
    size_t k = 0;
    fp_sieve_seal(s);
    for (size_t i = 0; i < n; i++) {
        idx[k] = (uint32_t)i;
        k += keeps(s, r[i].track, r[i].t + bias);
    }
    return k;
}

#define FILTER_CHUNK 256

size_t fp_sieve_filter(fp_sieve_t *s, fp_hit_t *h, size_t n)
{
    uint32_t idx[FILTER_CHUNK];
    size_t k = 0;
    for (size_t a = 0; a < n; a += FILTER_CHUNK) {
        size_t m = n - a < FILTER_CHUNK ? n - a : FILTER_CHUNK;
        size_t got = fpi_sieve_select(s, h + a, m, idx);
        for (size_t i = 0; i < got; i++) h[k++] = h[a + idx[i]];
    }
    return k;
}
