/*
 * fp_hash.c -- landmark pairing (Wang 2003): each anchor peak is paired with
 * the first `fanout` peaks of its target zone, the frames
 * [t + target_dt_min, t + target_dt_max] and bins within +-target_df, taken
 * in time order (then bin order).  Each pair becomes a 22-bit hash of
 * (anchor bin, bin difference, time difference) plus the anchor's frame.
 *
 * A second family of hashes survives changes of speed, tempo and pitch:
 * triplets of the anchor and two of the first `triplet_targets` peaks within
 * +-triplet_dl semitones after it (Panako's idea, Six 2014).  Their hash
 * holds only what those changes leave alone: the ratio of the two time
 * differences, the two frequency differences in semitones (log frequency),
 * the order of the three peaks' levels, and the anchor's octave above
 * min_bin (the only field a change of speed or pitch can change, and only
 * for anchors within that change of an octave's edge; without it, triplets
 * of a large catalog collide several times as often).  Triplet hashes have
 * bit 31 set; pair hashes never do.
 *
 * Peaks arrive final and in time order; an anchor is paired as soon as a
 * peak beyond its target zone has arrived, so the delay is target_dt_max
 * frames and memory holds only the peaks of that span.
 */
#include "fp_internal.h"

#include <math.h>
#include <string.h>

#define RECENT_SLOTS 4096 /* direct-mapped memory of recent hashes */

struct fpi_hasher {
    fp_config_t cfg;
    uint32_t recent_hash[RECENT_SLOTS]; /* last print of each slot's hash ... */
    uint32_t recent_t[RECENT_SLOTS];    /* ... and its frame + 1 (0: empty) */
    fpi_peak_t *peaks;      /* peaks not yet used as anchors, time order */
    size_t n, cap, head;
};

uint32_t fp_hash_pack(int f1, int df, int dt)
{
    return ((uint32_t)f1 & 0x1ffu) << 13 | ((uint32_t)(df + 64) & 0x7fu) << 6 |
           ((uint32_t)(dt - 1) & 0x3fu);
}

uint32_t fp_hash_pack_triplet(int ratio, int dl12, int dl13, int band, int louder)
{
    return FP_HASH_TRIPLET | ((uint32_t)band & 7u) << 17 | ((uint32_t)louder & 7u) << 14 |
           ((uint32_t)(dl13 + 12) & 31u) << 9 | ((uint32_t)(dl12 + 12) & 31u) << 4 |
           ((uint32_t)ratio & 15u);
}

void fp_hash_unpack(uint32_t hash, int *f1, int *df, int *dt)
{
    if (f1) *f1 = (int)((hash >> 13) & 0x1ffu);
    if (df) *df = (int)((hash >> 6) & 0x7fu) - 64;
    if (dt) *dt = (int)(hash & 0x3fu) + 1;
}

fp_err_t fpi_hasher_new(const fp_config_t *cfg, fpi_hasher_t **out)
{
    *out = NULL;
    fpi_hasher_t *h = calloc(1, sizeof *h);
    if (!h) return FP_ERR_NOMEM;
    h->cfg = *cfg;
    *out = h;
    return FP_OK;
}

/*
 * Is this a repeat of the same hash within repeat_frames?  A sustained note
 * or a stationary texture makes the same hash frame after frame; such prints
 * align with any stretch of any recording that holds the same sound, at
 * every offset, and prove nothing about where a clip comes from.  Only the
 * first of a run is kept (a direct-mapped table: a collision at worst lets a
 * repeat through; the result depends only on the print sequence).
 */
static int is_repeat(fpi_hasher_t *h, uint32_t hash, uint32_t t)
{
    if (h->cfg.repeat_frames <= 0) return 0;
    uint32_t slot = (hash * 2654435761u) >> 20; /* 12 bits */
    if (h->recent_hash[slot] == hash && h->recent_t[slot] &&
        t - (h->recent_t[slot] - 1) <= (uint32_t)h->cfg.repeat_frames)
        return 1;
    h->recent_hash[slot] = hash;
    h->recent_t[slot] = t + 1;
    return 0;
}

/* Semitones of a 1/16-bin frequency above min_bin. */
static inline float semitones(const fp_config_t *c, uint16_t f16)
{
    return 12.0f * log2f((float)f16 / (16.0f * (float)c->min_bin));
}

/*
 * Emit the triplet prints of the anchor at index i: every pair (j, k) of the
 * first triplet_targets peaks in its zone.  Times are the interpolated ones,
 * so the ratio does not depend on the frame grid.
 */
static fp_err_t triplet_anchor(fpi_hasher_t *h, size_t i, fp_print_t **out, size_t *len,
                               size_t *cap)
{
    const fp_config_t *c = &h->cfg;
    const fpi_peak_t *a = &h->peaks[i];
    size_t zone[8];
    float za[8];
    int nz = 0;
    if (c->triplet_targets < 2) return FP_OK;
    float la = semitones(c, a->f16);
    for (size_t j = i + 1; j < h->n && nz < c->triplet_targets; j++) {
        const fpi_peak_t *b = &h->peaks[j];
        uint32_t gap = b->t - a->t;
        if (gap > (uint32_t)c->target_dt_max) break;
        float dl = semitones(c, b->f16) - la;
        if (gap == 0 || dl < -(float)c->triplet_dl || dl > (float)c->triplet_dl) continue;
        zone[nz] = j;
        za[nz++] = dl;
    }
    fp_err_t rc = fpi_grow((void **)out, cap, *len + (size_t)(nz * (nz - 1) / 2),
                           sizeof(fp_print_t));
    if (rc != FP_OK) return rc;
    float ta = (float)a->t + a->dt;
    int band = (int)(la / (float)FP_TRIPLET_BAND_SEMITONES);
    if (band > 7) band = 7;
    for (int x = 0; x < nz; x++) {
        const fpi_peak_t *b = &h->peaks[zone[x]];
        for (int y = x + 1; y < nz; y++) {
            const fpi_peak_t *d = &h->peaks[zone[y]];
            float t2 = (float)b->t + b->dt - ta, t3 = (float)d->t + d->dt - ta;
            if (t2 <= 0.0f || t3 - t2 < 1.0f) continue;
            int ratio = (int)(t2 / t3 * 16.0f);
            if (ratio > 15) ratio = 15;
            int louder = (a->level > b->level) | (a->level > d->level) << 1 |
                         (b->level > d->level) << 2;
            uint32_t hash = fp_hash_pack_triplet(ratio, (int)lrintf(za[x]), (int)lrintf(za[y]),
                                                 band, louder);
            if (is_repeat(h, hash, a->t)) continue;
            (*out)[(*len)++] = (fp_print_t){hash, a->t, a->f16, (uint16_t)lrintf(t3 * 16.0f)};
        }
    }
    return FP_OK;
}

/* Emit the pair prints of the anchor at index i. */
static fp_err_t pair_anchor(fpi_hasher_t *h, size_t i, fp_print_t **out, size_t *len,
                            size_t *cap)
{
    const fp_config_t *c = &h->cfg;
    const fpi_peak_t *a = &h->peaks[i];
    int made = 0;
    fp_err_t rc = fpi_grow((void **)out, cap, *len + (size_t)c->fanout, sizeof(fp_print_t));
    if (rc != FP_OK) return rc;
    for (size_t j = i + 1; j < h->n && made < c->fanout; j++) {
        const fpi_peak_t *b = &h->peaks[j];
        uint32_t gap = b->t - a->t;
        if (gap + 1 < (uint32_t)c->target_dt_min) continue;
        if (gap > (uint32_t)c->target_dt_max + 1) break;
        /* the interpolated times give a time difference that does not
         * depend on where the frame grid happens to fall */
        int dt = (int)lrintf((float)gap + b->dt - a->dt);
        if (dt < c->target_dt_min || dt > c->target_dt_max) continue;
        int df = (int)b->bin - (int)a->bin;
        if (df < -c->target_df || df > c->target_df) continue;
        float span = (float)gap + b->dt - a->dt;
        made++;
        uint32_t hash = fp_hash_pack(a->bin, df, dt);
        if (is_repeat(h, hash, a->t)) continue;
        (*out)[(*len)++] = (fp_print_t){hash, a->t, a->f16,
                                        (uint16_t)lrintf(span * 16.0f)};
    }
    return FP_OK;
}

fp_err_t fpi_hasher_push(fpi_hasher_t *h, const fpi_peak_t *peaks, size_t n, int final,
                         fp_print_t **out, size_t *len, size_t *cap)
{
    fp_err_t rc;
    if (n) {
        if (h->head > 1024 && h->head * 2 > h->n) {
            memmove(h->peaks, h->peaks + h->head, (h->n - h->head) * sizeof(fpi_peak_t));
            h->n -= h->head;
            h->head = 0;
        }
        rc = fpi_grow((void **)&h->peaks, &h->cap, h->n + n, sizeof(fpi_peak_t));
        if (rc != FP_OK) return rc;
        memcpy(h->peaks + h->n, peaks, n * sizeof(fpi_peak_t));
        h->n += n;
    }
    if (h->n == h->head) return FP_OK;
    uint32_t newest = h->peaks[h->n - 1].t;
    while (h->head < h->n) {
        const fpi_peak_t *a = &h->peaks[h->head];
        /* the zone is complete once a later frame than its end has arrived */
        if (!final && (uint64_t)a->t + (uint64_t)h->cfg.target_dt_max + 1 >= newest) break;
        rc = pair_anchor(h, h->head, out, len, cap);
        if (rc == FP_OK) rc = triplet_anchor(h, h->head, out, len, cap);
        if (rc != FP_OK) return rc;
        h->head++;
    }
    return FP_OK;
}

void fpi_hasher_free(fpi_hasher_t *h)
{
    if (!h) return;
    free(h->peaks);
    free(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

fp_err_t fp_prints_anchors(const fp_print_t *p, size_t n, uint32_t t_lo, uint32_t t_hi,
                           uint32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t m = 0, u = 0;
    for (size_t i = 0; i < n; i++) m += p[i].t >= t_lo && p[i].t <= t_hi;
    if (m == 0) return FP_OK;
    uint64_t *v = malloc(m * sizeof *v);
    if (!v) return FP_ERR_NOMEM;
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].t >= t_lo && p[i].t <= t_hi) v[m++] = (uint64_t)p[i].t << 16 | p[i].f;
    qsort(v, m, sizeof *v, cmp_u64);
    for (size_t i = 0; i < m; i++)
        if (u == 0 || v[i] != v[u - 1]) v[u++] = v[i];
    uint32_t *r = malloc(2 * u * sizeof *r);
    if (!r) {
        free(v);
        return FP_ERR_NOMEM;
    }
    for (size_t i = 0; i < u; i++) {
        r[2 * i] = (uint32_t)(v[i] >> 16);
        r[2 * i + 1] = (uint32_t)(v[i] & 0xffff);
    }
    free(v);
    *out = r;
    *n_out = u;
    return FP_OK;
}
