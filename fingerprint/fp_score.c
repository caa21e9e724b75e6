/*
 * fp_score.c -- time-offset voting over candidate hits.
 *
 * A recording that really sits inside the query produces many hits whose
 * ref_t - query_t is (nearly) the same: a spike in that track's offset
 * histogram.  Random hash collisions spread evenly over offsets.  So:
 *
 *   1. drop every hit that cannot be part of min_count hits of its track in
 *      one band of offsets, nor of min_count invariant hits in the window
 *      the scaled search looks at: on a large catalog that is all but a
 *      few thousand of hundreds of thousands of chance hits.  The sieve
 *      (fp_sieve.c, cache-sized tables of counters) finds them in two
 *      passes; the hits kept, grouped by track with a radix sort of
 *      12-byte references, go through the exact test per track
 *      (track_may_align); the hits of the tracks left are copied out sorted
 *      by (track, offset, position in the input);
 *   2. per track, count the hits of each offset and of its +-tolerance band,
 *      and take band maxima with at least min_count hits, strongest first,
 *      suppressing maxima that overlap one already taken;
 *   3. per maximum, gather its band's hits, count each query print once, and
 *      split them where the query time jumps by more than max_gap frames, so
 *      a recording heard twice, or an outlier hit far away, gives separate
 *      segments rather than one stretched one.
 *   4. a copy played faster or slower puts its hits on a line of another
 *      slope: ref_t = speed * query_t + offset.  Only hits of
 *      scale-invariant prints (FP_HIT_INVARIANT: triplets) can lie on such
 *      a line; for the tracks with most of them, try speeds on a grid of up
 *      to 1% (offsets voted within +-2 frames), refine the best to 0.1%
 *      (+-tolerance), and keep what beats the unscaled alignment of the same
 *      part of the query.
 *
 * Pure computation: no I/O, no globals; the input is not modified; the only
 * allocations are scratch arrays freed before returning and the result
 * array.
 */
#include "fp_internal.h"

#include <math.h>
#include <string.h>

void fp_score_opts_default(fp_score_opts_t *o)
{
    o->min_count = 5;
    o->tolerance = 1;
    o->max_gap = 108;
    o->max_candidates = 16;
    o->min_speed = 0.77;
    o->max_speed = 1.30;
    o->scaled_tracks = 32;
}

/* Frames are below 2^31 (checked), so the offset fits 32 bits. */
static inline uint32_t hit_offset(const fp_hit_t *h)
{
    return (uint32_t)((int64_t)h->ref_t - (int64_t)h->query_t + ((int64_t)1 << 31));
}

static inline uint64_t hit_key(uint32_t track, uint32_t offset)
{
    return (uint64_t)track << 32 | offset;
}

static inline int64_t key_offset(uint64_t key)
{
    return (int64_t)(key & 0xffffffffu) - ((int64_t)1 << 31);
}

/*
 * A hit while the tracks are sorted out: 12 bytes instead of the hit's 24,
 * so that sorting moves half the data.  off is the
 * biased offset (hit_offset); idx the hit's index in the caller's array
 * (below 2^31), with REF_INVARIANT set when the hit is FP_HIT_INVARIANT.
 */
typedef struct hitref {
    uint32_t track, off, idx;
} hitref_t;

#define REF_INVARIANT 0x80000000u

#define SIEVE_FROM 4096 /* fewer hits go straight to the exact test */
#define SIEVE_CHUNK 256 /* hits the sieve selects from at a time */

#define COARSE_SLOTS 8192 /* counters of window_may_hold, by bucket number mod this */

/*
 * Does some window of `width` consecutive offsets hold min_count of one
 * track's references r[0 .. m) (only the invariant ones when `invariant`)?
 * Offsets are cut into buckets of at least `width` (bucket = off * scale >>
 * 32 with scale = 2^32 / width rounded down: a multiply, not a division):
 * any such window lies in two neighbouring buckets, so when no two
 * neighbours together hold min_count, no window does.  Buckets are counted
 * in slots (bucket number mod COARSE_SLOTS; zero on entry and on return):
 * buckets that share a slot only add up, which can give a false yes but
 * never a false no.  O(m).
 */
static int window_may_hold(const hitref_t *r, size_t m, int invariant, uint32_t width,
                           uint32_t min_count, uint32_t *slots)
{
    const uint32_t mask = COARSE_SLOTS - 1, need = invariant ? REF_INVARIANT : 0;
    const uint64_t scale = ((uint64_t)1 << 32) / width;
    int found = 0;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if ((r[i].idx & need) != need) continue;
        slots[(uint32_t)((r[i].off * scale) >> 32) & mask]++;
        k++;
    }
    if (k >= min_count)
        for (size_t i = 0; i < m && !found; i++) {
            if ((r[i].idx & need) != need) continue;
            uint32_t b = (uint32_t)((r[i].off * scale) >> 32), here = slots[b & mask];
            found = here + slots[(b + 1) & mask] >= min_count ||
                    here + slots[(b - 1) & mask] >= min_count;
        }
    for (size_t i = 0; i < m; i++) slots[(uint32_t)((r[i].off * scale) >> 32) & mask] = 0;
    return found;
}

/*
 * Can a track whose references are r[0 .. m) give a candidate?  Unscaled
 * voting needs min_count hits within a band of 2 tolerance + 1 offsets;
 * the scaled search needs min_count invariant hits within `width` offsets
 * (densest_window).  Most tracks have neither: their hits are chance
 * collisions spread over the whole recording.
 */
static int track_may_align(const hitref_t *r, size_t m, const fp_score_opts_t *o,
                           int scaled, uint32_t width, uint32_t *slots)
{
    if (m < o->min_count) return 0;
    if (window_may_hold(r, m, 0, 2 * (uint32_t)o->tolerance + 1, o->min_count, slots)) return 1;
    return scaled && window_may_hold(r, m, 1, width, o->min_count, slots);
}

/*
 * Stable LSD radix sort of r[0 .. n) through tmp (n entries) by the key
 * (track - tbase) << off_bits | (off - omin) when by_offset, else by track
 * alone (off_bits 0).  The key has track_bits + off_bits bits, sorted in as
 * few passes of at most 11 bits as cover them, each pass as narrow as
 * that allows (fewer buckets scatter faster, and clearing and summing the
 * counters is cheap: 2^16 of them, one pass for 65 536 tracks, cost more
 * than a second pass over the ~15 000 hits a sieved lookup brings); count
 * holds 2^11 entries.  Passes where every
 * key has the same digit are skipped.  Stability keeps the input order
 * among equal keys.
 */
static void sort_refs(hitref_t *r, hitref_t *tmp, size_t n, uint32_t tbase, int track_bits,
                      int by_offset, uint32_t omin, int off_bits, uint32_t *count)
{
    hitref_t *src = r, *dst = tmp;
    const uint32_t off_mask = by_offset ? UINT32_MAX : 0;
    if (!by_offset) off_bits = 0;
    int bits = track_bits + off_bits, widest = 11;
    int passes = (bits + widest - 1) / widest;
    int digit = passes ? (bits + passes - 1) / passes : 0;
    uint32_t mask = (1u << digit) - 1;
    for (int shift = 0; shift < bits && n; shift += digit) {
        memset(count, 0, ((size_t)mask + 1) * sizeof *count);
#define REF_DIGIT(x)                                                                   \
    ((uint32_t)((((uint64_t)((x).track - tbase) << off_bits) | (((x).off - omin) & off_mask)) >> \
                shift) &                                                               \
     mask)
        for (size_t i = 0; i < n; i++) count[REF_DIGIT(src[i])]++;
        if (count[REF_DIGIT(src[0])] == n) continue;
        uint32_t sum = 0;
        for (size_t d = 0; d <= mask; d++) {
            uint32_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[count[REF_DIGIT(src[i])]++] = src[i];
#undef REF_DIGIT
        hitref_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != r) memcpy(r, src, n * sizeof *r);
}

/* Bits of the values 0 .. range. */
static int bits_of(uint32_t range)
{
    int b = 0;
    while (b < 32 && range >> b) b++;
    return b;
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
    if (x->frames != y->frames) return x->frames > y->frames ? -1 : 1;
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
    fp_hit_t *band_tmp;   /* room to sort a band */
    size_t band_tmp_cap;
    fp_candidate_t *cands;
    size_t ncands, cands_cap;
    double *ratios;       /* pitch ratios */
    size_t ratios_cap;
    fp_hit_t *inv;        /* one track's scale-invariant hits */
    size_t inv_cap;
    uint32_t *hist;       /* SCALED_SLOTS counters, zero between uses */
    int64_t *offs;        /* the hits' offsets at one speed */
    size_t offs_cap;
} scratch_t;

/*
 * Put the k-th smallest of a[0 .. n) at a[k], the smaller ones before it
 * and the larger after (quickselect, Hoare's partition around the median
 * of three): a median in O(n), where sorting every candidate's ratios took
 * a tenth of the scoring.
 */
static void select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        /* a[lo .. j] <= pivot <= a[i .. hi], and between them equal to it */
        if (k <= j && j != (size_t)-1) hi = j;
        else if (k >= i) lo = i;
        else return;
    }
}

/* Median of query_f / ref_f over hits [a, b) that carry both; 0 if none. */
static double pitch_of(scratch_t *s, const fp_hit_t *h, size_t a, size_t b)
{
    size_t n = 0;
    if (b <= a) return 0.0;
    if (fpi_grow((void **)&s->ratios, &s->ratios_cap, b - a, sizeof(double)) != FP_OK) return 0.0;
    for (size_t i = a; i < b; i++)
        if (h[i].ref_f && h[i].query_f) s->ratios[n++] = (double)h[i].query_f / h[i].ref_f;
    if (!n) return 0.0;
    double *r = s->ratios;
    select_kth(r, n, n / 2);
    if (n % 2) return r[n / 2];
    double below = r[0]; /* the largest of r[0 .. n/2), all <= r[n/2] */
    for (size_t i = 1; i < n / 2; i++)
        if (r[i] > below) below = r[i];
    return 0.5 * (below + r[n / 2]);
}

/*
 * A scaled alignment's speed comes from a grid and its hits sit within
 * +-tolerance frames of the line; a least-squares fit of ref_t on query_t
 * over the segment's hits pins the speed down to a fraction of a percent.
 */
/* Least-squares line ref_t = slope * query_t + icpt through n hits; 0 when
 * the hits span a single query frame. */
static int fit_hits(const fp_hit_t *h, size_t n, double *slope, double *icpt)
{
    double mq = 0, mr = 0, sqq = 0, sqr = 0;
    if (n < 2) return 0;
    for (size_t i = 0; i < n; i++) mq += h[i].query_t, mr += h[i].ref_t;
    mq /= (double)n;
    mr /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double dq = h[i].query_t - mq;
        sqq += dq * dq;
        sqr += dq * (h[i].ref_t - mr);
    }
    if (sqq <= 0.0) return 0;
    *slope = sqr / sqq;
    *icpt = mr - *slope * mq;
    return 1;
}

static void fit_line(fp_candidate_t *c, const fp_hit_t *h, size_t n)
{
    double slope, icpt;
    if (!fit_hits(h, n, &slope, &icpt)) return;
    if (fabs(slope / c->speed - 1.0) > 0.01) return; /* keep the grid's */
    c->speed = slope;
    c->offset = (int64_t)llround(icpt);
}

/*
 * Sort h[0 .. n) into cmp_query_t's order (query_t, query_idx, ref_t):
 * a stable LSD radix sort by query_idx, then by query_t, 11 bits a pass
 * (passes where every hit has the same digit skipped), through tmp; then
 * each run of equal (query_t, query_idx) in ref_t order.  A band of a
 * real match holds thousands of hits, and qsort moving 24-byte hits was
 * a twentieth of a request's time in the service.  Small bands: insertion.
 */
static void sort_band(fp_hit_t *h, fp_hit_t *tmp, size_t n)
{
    if (n < 48) {
        for (size_t i = 1; i < n; i++) {
            fp_hit_t x = h[i];
            size_t j = i;
            while (j > 0 && cmp_query_t(&h[j - 1], &x) > 0) h[j] = h[j - 1], j--;
            h[j] = x;
        }
        return;
    }
    fp_hit_t *src = h, *dst = tmp;
    size_t count[2048];
    for (int field = 0; field < 2; field++) {
        uint32_t any = 0;
        for (size_t i = 0; i < n; i++) any |= field ? src[i].query_t : src[i].query_idx;
        for (int shift = 0; shift < 32 && any >> shift; shift += 11) {
#define BAND_DIGIT(x) ((((field) ? (x).query_t : (x).query_idx) >> shift) & 2047u)
            memset(count, 0, sizeof count);
            for (size_t i = 0; i < n; i++) count[BAND_DIGIT(src[i])]++;
            if (count[BAND_DIGIT(src[0])] == n) continue;
            size_t sum = 0;
            for (size_t d = 0; d < 2048; d++) {
                size_t c = count[d];
                count[d] = sum;
                sum += c;
            }
            for (size_t i = 0; i < n; i++) dst[count[BAND_DIGIT(src[i])]++] = src[i];
#undef BAND_DIGIT
            fp_hit_t *x = src;
            src = dst;
            dst = x;
        }
    }
    if (src != h) memcpy(h, src, n * sizeof *h);
    for (size_t i = 0; i < n;) { /* ties: by ref_t */
        size_t j = i + 1;
        while (j < n && h[j].query_t == h[i].query_t && h[j].query_idx == h[i].query_idx) j++;
        for (size_t a = i + 1; a < j; a++) {
            fp_hit_t x = h[a];
            size_t b = a;
            while (b > i && h[b - 1].ref_t > x.ref_t) h[b] = h[b - 1], b--;
            h[b] = x;
        }
        i = j;
    }
}

/* Split the hits of one band into segments and append the good ones. */
static fp_err_t band_segments(scratch_t *s, size_t nband, int64_t offset, double speed,
                              const fp_score_opts_t *o)
{
    fp_err_t grc = fpi_grow((void **)&s->band_tmp, &s->band_tmp_cap, nband, sizeof(fp_hit_t));
    if (grc != FP_OK) return grc;
    sort_band(s->band, s->band_tmp, nband);
    size_t i = 0;
    while (i < nband) {
        fp_candidate_t c = {.track = s->band[i].track, .offset = offset, .speed = speed,
                            .query_start = s->band[i].query_t, .ref_start = s->band[i].ref_t,
                            .ref_end = s->band[i].ref_t};
        uint32_t last_q = s->band[i].query_t, last_idx = s->band[i].query_idx;
        c.count = 1;
        c.frames = 1;
        size_t j = i + 1;
        for (; j < nband; j++) {
            const fp_hit_t *h = &s->band[j];
            if (h->query_t - last_q > o->max_gap) break;
            if (h->query_idx != last_idx) c.count++;
            if (h->query_t != last_q) c.frames++;
            last_q = h->query_t;
            last_idx = h->query_idx;
            if (h->ref_t < c.ref_start) c.ref_start = h->ref_t;
            if (h->ref_t > c.ref_end) c.ref_end = h->ref_t;
        }
        c.query_end = last_q;
        if (c.count >= o->min_count) {
            c.pitch = pitch_of(s, s->band, i, j);
            if (speed != 1.0) fit_line(&c, s->band + i, j - i);
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
    if (nord == 0) return FP_OK;
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
            rc = band_segments(s, nband, peak->offset, 1.0, o);
            if (rc != FP_OK) return rc;
        }
    }
    return FP_OK;
}

#define SCALED_SLOTS 65536 /* offset histogram of the scaled search, by offset mod this */

/* Round to nearest without a libm call: this runs per hit per speed. */
static inline int64_t round_i64(double x)
{
    return x >= 0.0 ? (int64_t)(x + 0.5) : -(int64_t)(0.5 - x);
}

/*
 * The most of the n hits in s->inv whose offsets ref_t - speed * query_t lie
 * in one window of 2w+1 offsets; the window's centre in *at.  The histogram is
 * indexed by offset modulo SCALED_SLOTS (offsets that far apart rarely meet:
 * chance hits are sparse) and cleared by the same hits afterwards, so one
 * speed costs O(n * (2w+1)) whatever the length of the recording.
 */
static size_t densest_scaled(scratch_t *s, size_t n, double speed, int64_t w, int64_t *at)
{
    const uint32_t mask = SCALED_SLOTS - 1;
    for (size_t i = 0; i < n; i++) {
        s->offs[i] = round_i64((double)s->inv[i].ref_t - speed * (double)s->inv[i].query_t);
        s->hist[(uint64_t)s->offs[i] & mask]++;
    }
    /* the fullest window of 2w+1 offsets starts at some hit's offset */
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        for (int64_t d = 0; d <= 2 * w; d++) c += s->hist[(uint64_t)(s->offs[i] + d) & mask];
        if (c > best || (c == best && s->offs[i] + w < *at)) {
            best = c;
            *at = s->offs[i] + w;
        }
    }
    for (size_t i = 0; i < n; i++) s->hist[(uint64_t)s->offs[i] & mask] = 0;
    return best;
}

/*
 * The best time-scaled alignment among one track's n scale-invariant hits
 * (s->inv): a grid of speeds fine enough that the offset drifts by at most
 * ~3 frames across the hits' query span (steps of 0.35% to 1%), then a
 * refinement in 0.1% steps.  The line found, every hit of the track on it
 * counts (all[0..nall)).  Unscaled alignments (within 0.4% of speed 1) are
 * left to the plain voting.
 */
static fp_err_t score_scaled(scratch_t *s, size_t n, const fp_hit_t *all, size_t nall,
                             const fp_score_opts_t *o)
{
    uint32_t qmin = UINT32_MAX, qmax = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->inv[i].query_t < qmin) qmin = s->inv[i].query_t;
        if (s->inv[i].query_t > qmax) qmax = s->inv[i].query_t;
    }
    fp_err_t rc = fpi_grow((void **)&s->offs, &s->offs_cap, n, sizeof(int64_t));
    if (rc != FP_OK) return rc;
    if (!s->hist) {
        s->hist = calloc(SCALED_SLOTS, sizeof *s->hist);
        if (!s->hist) return FP_ERR_NOMEM;
    }
    double span = (double)(qmax - qmin) + 1.0;
    double step = 3.0 / span;
    if (step > 0.01) step = 0.01;
    if (step < 0.0035) step = 0.0035;
    size_t best = 0;
    double best_speed = 1.0;
    int64_t at = 0, best_at = 0;
    for (double sp = o->min_speed; sp <= o->max_speed * (1.0 + step / 2); sp *= 1.0 + step) {
        size_t c = densest_scaled(s, n, sp, 2, &at);
        if (c > best) best = c, best_speed = sp, best_at = at;
    }
    if (best < o->min_count) return FP_OK;
    double center = best_speed;
    best = 0;
    int reach = (int)(step * 1000.0) + 1;
    for (int k = -reach; k <= reach; k++) {
        double sp = center * (1.0 + 0.001 * k);
        size_t c = densest_scaled(s, n, sp, o->tolerance, &at);
        if (c > best) best = c, best_speed = sp, best_at = at;
    }
    if (best < o->min_count || fabs(best_speed - 1.0) < 0.004) return FP_OK;
    /* the line found, all of the track's hits on it count: pairs with short
     * spans survive small changes of speed */
    size_t nband = 0;
    rc = fpi_grow((void **)&s->band, &s->band_cap, nall, sizeof(fp_hit_t));
    if (rc != FP_OK) return rc;
    double slope = best_speed, icpt = (double)best_at;
    for (int pass = 0; pass < 2; pass++) {
        nband = 0;
        for (size_t i = 0; i < nall; i++) {
            double off = (double)all[i].ref_t - slope * (double)all[i].query_t - icpt;
            if (off >= -o->tolerance - 0.5 && off < o->tolerance + 0.5) s->band[nband++] = all[i];
        }
        /* the grid's line is within 0.1%: a least-squares fit over its hits
         * finds the true one, whose band then gathers the hits again */
        if (pass == 0 && !fit_hits(s->band, nband, &slope, &icpt)) break;
        if (fabs(slope / best_speed - 1.0) > 0.005) {
            slope = best_speed;
            icpt = (double)best_at;
        }
    }
    return band_segments(s, nband, round_i64(icpt), slope, o);
}

/*
 * A track's hits [first, end); of its scale-invariant hits, the most that
 * fit one window of unscaled offsets (ref_t - query_t) wide enough to hold
 * every hit of a scaled alignment, and where that window starts.
 */
typedef struct span {
    size_t first, end, invariant;
    int64_t win_lo;
} span_t;

/*
 * A scaled alignment ref_t = speed * query_t + offset spreads its hits'
 * unscaled offsets over |speed - 1| times the query's span: with speeds
 * within 0.77..1.30, a window of 0.3 spans holds them all, while chance
 * hits spread over the whole recording.  The densest such window of a
 * track is what ranks it for the scaled search, and only the hits inside it
 * are searched: on a long recording this is a small share of its hits.
 * Hits [a, b) are sorted by offset.
 */
static size_t densest_window(const fp_hit_t *h, const uint64_t *keys, size_t a, size_t b,
                             int64_t width, int64_t *lo)
{
    size_t best = 0, l = a, in = 0;
    *lo = 0;
    for (size_t r = a; r < b; r++) {
        if (!(h[r].flags & FP_HIT_INVARIANT)) continue;
        in++;
        int64_t off = key_offset(keys[r]);
        while (key_offset(keys[l]) < off - width || !(h[l].flags & FP_HIT_INVARIANT)) {
            if (h[l].flags & FP_HIT_INVARIANT) in--;
            l++;
        }
        if (in > best) {
            best = in;
            *lo = off - width;
        }
    }
    return best;
}

static int cmp_span_desc(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    if (x->invariant != y->invariant) return x->invariant > y->invariant ? -1 : 1;
    return x->first < y->first ? -1 : 1;
}

/*
 * Of two candidates of one track that cover mostly the same query time (more
 * than half of the shorter one), keep the one with more frames, then
 * prints.  A scaled match also shows as a weak unscaled one, and a clip of
 * music that repeats itself aligns with every repeat: the best alignment
 * stands for them.  Different parts of the query keep their own.
 */
static void drop_overlaps(scratch_t *s)
{
    size_t w = 0;
    for (size_t i = 0; i < s->ncands; i++) {
        const fp_candidate_t *c = &s->cands[i];
        int dominated = 0;
        for (size_t j = 0; j < s->ncands && !dominated; j++) {
            const fp_candidate_t *d = &s->cands[j];
            if (j == i || d->track != c->track) continue;
            int64_t lo = c->query_start > d->query_start ? c->query_start : d->query_start;
            int64_t hi = c->query_end < d->query_end ? c->query_end : d->query_end;
            int64_t lc = (int64_t)c->query_end - c->query_start, ld = (int64_t)d->query_end - d->query_start;
            if (2 * (hi - lo) <= (lc < ld ? lc : ld)) continue;
            dominated = d->frames > c->frames ||
                        (d->frames == c->frames && (d->count > c->count ||
                                                    (d->count == c->count && j < i)));
        }
        if (!dominated) s->cands[w++] = *c;
    }
    s->ncands = w;
}

/*
 * The order of work: one pass over all hits for their frame ranges; the
 * sieve (two passes); references to the hits of marked tracks, sorted by
 * track; the exact test per track (track_may_align); for the tracks left,
 * their references sorted by (rank, offset) and the hits copied out in
 * that order; then the voting on those.  A track's hits come out in the
 * same order as a stable sort of all hits by (track, offset) would give,
 * so the result is that of voting over every track.
 */
fp_err_t fp_score_hits(const fp_hit_t *all, size_t n, const fp_score_opts_t *opts,
                       fp_candidate_t **out, size_t *n_out)
{
    fp_err_t rc = FP_OK;
    fp_score_opts_t o;
    scratch_t s;
    hitref_t *refs = NULL, *rtmp = NULL;
    uint32_t *count = NULL, *slots = NULL;
    fp_sieve_t *sieve = NULL;
    uint32_t idx[SIEVE_CHUNK];
    fp_hit_t *hits = NULL;
    uint64_t *keys = NULL;
    span_t *spans = NULL;
    size_t nspans = 0, spans_cap = 0;

    memset(&s, 0, sizeof s);
    *out = NULL;
    *n_out = 0;
    if (opts) o = *opts;
    else fp_score_opts_default(&o);
    if ((!all && n) || o.tolerance < 0 || o.tolerance > 1000 || o.max_candidates == 0 ||
        !(o.min_speed > 0.1 && o.min_speed <= 1.0 && o.max_speed >= 1.0 && o.max_speed < 10.0))
        return FP_ERR_INVALID;
    if (o.min_count < 1) o.min_count = 1;
    if (n < o.min_count) return FP_OK;
    if (n > INT32_MAX) return FP_ERR_INVALID;
    uint32_t qmin = UINT32_MAX, qmax = 0;
    for (size_t i = 0; i < n; i++) {
        const fp_hit_t *h = &all[i];
        if ((h->ref_t | h->query_t) >= (uint32_t)1 << 31) return FP_ERR_INVALID;
        if (h->query_t < qmin) qmin = h->query_t;
        if (h->query_t > qmax) qmax = h->query_t;
    }
    double reach = fmax(1.0 - o.min_speed, o.max_speed - 1.0);
    int64_t width = (int64_t)ceil(reach * (double)(qmax - qmin)) + 2 * o.tolerance + 2;

    int scaled = o.scaled_tracks && o.min_speed < o.max_speed;
    uint32_t wide = width < UINT32_MAX ? (uint32_t)width : UINT32_MAX;

    /* the sieve (fp_sieve.c) drops the hits that cannot be in a band or a
     * window of min_count; references to the others */
    count = malloc(((size_t)1 << 11) * sizeof *count);
    slots = calloc(COARSE_SLOTS, sizeof *slots);
    refs = malloc(n * sizeof *refs); /* pages are touched only for kept hits */
    if (!count || !slots || !refs) {
        rc = FP_ERR_NOMEM;
        goto out;
    }
    if (n >= SIEVE_FROM) {
        rc = fpi_sieve_new(&o, qmax - qmin, n, &sieve);
        if (rc != FP_OK) goto out;
        fp_sieve_count(sieve, all, n);
    }
    size_t kept = 0;
    uint32_t tmin = UINT32_MAX, tmax = 0, omin, omax;
    for (size_t a = 0; a < n; a += SIEVE_CHUNK) {
        size_t m = n - a < SIEVE_CHUNK ? n - a : SIEVE_CHUNK, got = m;
        if (sieve) got = fpi_sieve_select(sieve, all + a, m, idx);
        else for (size_t i = 0; i < m; i++) idx[i] = (uint32_t)i;
        for (size_t i = 0; i < got; i++) {
            const fp_hit_t *h = &all[a + idx[i]];
            hitref_t rf = {h->track, hit_offset(h),
                           (uint32_t)(a + idx[i]) | (h->flags & FP_HIT_INVARIANT ? REF_INVARIANT : 0)};
            if (rf.track < tmin) tmin = rf.track;
            if (rf.track > tmax) tmax = rf.track;
            refs[kept++] = rf;
        }
    }
    rtmp = malloc((kept ? kept : 1) * sizeof *rtmp);
    if (!rtmp) {
        rc = FP_ERR_NOMEM;
        goto out;
    }
    sort_refs(refs, rtmp, kept, tmin, bits_of(tmax - tmin), 0, 0, 0, count);

    /* the exact test on each marked track; the references of the tracks
     * that pass move to the front, the track replaced by its rank for the
     * sort by offset (the hit has the track) */
    n = kept;
    kept = 0;
    uint32_t ranks = 0;
    omin = UINT32_MAX, omax = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && refs[j].track == refs[i].track) j++;
        if (track_may_align(refs + i, j - i, &o, scaled, wide, slots)) {
            for (size_t k = i; k < j; k++) {
                hitref_t rf = refs[k];
                rf.track = ranks;
                if (rf.off < omin) omin = rf.off;
                if (rf.off > omax) omax = rf.off;
                refs[kept++] = rf;
            }
            ranks++;
        }
        i = j;
    }
    n = kept;
    sort_refs(refs, rtmp, n, 0, n ? bits_of(ranks - 1) : 0, 1, omin, bits_of(omax - omin), count);
    hits = malloc((n ? n : 1) * sizeof *hits);
    keys = malloc((n ? n : 1) * sizeof *keys);
    if (!hits || !keys) {
        rc = FP_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        hits[i] = all[refs[i].idx & ~REF_INVARIANT];
        keys[i] = hit_key(hits[i].track, refs[i].off);
    }

    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && hits[j].track == hits[i].track) j++;
        size_t before = s.ncands;
        rc = score_track(&s, hits, keys, i, j, &o);
        if (rc != FP_OK) goto out;
        /* a track whose unscaled alignment already holds half its hits has
         * no room for a better scaled one */
        uint32_t aligned = 0;
        for (size_t k = before; k < s.ncands; k++)
            if (s.cands[k].count > aligned) aligned = s.cands[k].count;
        if ((size_t)aligned * 2 >= j - i) {
            i = j;
            continue;
        }
        int64_t lo = 0;
        size_t inv = o.scaled_tracks ? densest_window(hits, keys, i, j, width, &lo) : 0;
        if (inv >= o.min_count) {
            rc = fpi_grow((void **)&spans, &spans_cap, nspans + 1, sizeof *spans);
            if (rc != FP_OK) goto out;
            spans[nspans++] = (span_t){i, j, inv, lo};
        }
        i = j;
    }
    if (o.min_speed < o.max_speed && nspans) {
        qsort(spans, nspans, sizeof *spans, cmp_span_desc);
        if (nspans > o.scaled_tracks) nspans = o.scaled_tracks;
        for (size_t k = 0; k < nspans; k++) {
            size_t ni = 0;
            rc = fpi_grow((void **)&s.inv, &s.inv_cap, spans[k].end - spans[k].first, sizeof(fp_hit_t));
            if (rc != FP_OK) goto out;
            int64_t lo = spans[k].win_lo - 2 * o.tolerance,
                    hi = spans[k].win_lo + width + 2 * o.tolerance;
            for (size_t i = spans[k].first; i < spans[k].end; i++) {
                int64_t off = key_offset(keys[i]);
                if ((hits[i].flags & FP_HIT_INVARIANT) && off >= lo && off <= hi)
                    s.inv[ni++] = hits[i];
            }
            rc = score_scaled(&s, ni, hits + spans[k].first, spans[k].end - spans[k].first, &o);
            if (rc != FP_OK) goto out;
        }
    }
    drop_overlaps(&s);
    if (s.ncands) {
        qsort(s.cands, s.ncands, sizeof *s.cands, cmp_cand);
        if (s.ncands > o.max_candidates) s.ncands = o.max_candidates;
        *out = s.cands;
        *n_out = s.ncands;
        s.cands = NULL;
    }
out:
    fp_sieve_free(sieve);
    free(refs);
    free(rtmp);
    free(count);
    free(slots);
    free(hits);
    free(keys);
    free(s.bins);
    free(s.order);
    free(s.band);
    free(s.band_tmp);
    free(s.cands);
    free(s.ratios);
    free(s.inv);
    free(s.hist);
    free(s.offs);
    free(spans);
    return rc;
}
