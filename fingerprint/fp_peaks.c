/*
 * fp_peaks.c -- spectral peak picking over a stream of spectrum frames.
 *
 * A peak is a point of the log-power spectrogram that is the maximum of its
 * (2*peak_df+1) x (2*peak_dt+1) neighbourhood (ties go to the lower bin and
 * the earlier frame, so a plateau gives one peak), lies above floor_db, and
 * stands at least min_contrast_db above the mean of the surrounding band of
 * +-contrast_bins bins in its own frame (so flat noise gives no peaks).
 *
 * Peaks compete by level: their power in dB plus a tilt of tilt_db_per_octave
 * per octave above min_bin.  Loud components are the ones that survive
 * codecs and added noise; the gentle tilt offsets the falling spectrum of
 * most music so that peaks do not all sit in the lowest octaves.  Level is
 * gain-invariant as far as ranking goes: a louder copy ranks the same.
 *
 * Density is capped by a shift-invariant rule: a peak is kept when fewer than
 * `density` candidates within +-density_window/2 frames of it rank higher.
 * Unlike per-block top-N selection this gives the same decision for a clip
 * cut anywhere out of a recording, except within half a window of its ends.
 *
 * Everything streams: a frame is decided peak_dt frames after it arrives and
 * a candidate is kept or dropped density_window/2 frames after that.
 */
#include "fp_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct cand {
    uint32_t t;
    uint16_t bin;
    uint16_t f16;
    float level;        /* dB plus the tilt: what peaks compete on */
    float dt;           /* sub-frame time offset */
} cand_t;

struct fpi_peaks {
    fp_config_t cfg;
    int nbins;          /* fft_size/2 + 1 */
    int ring;           /* frames kept: 2*peak_dt + 1 */
    float *db;          /* ring x nbins, log power */
    float *fmax;        /* ring x nbins, max over +-peak_df bins */
    float *prev, *next; /* nbins: max over the frames before / after */
    float *tilt;        /* nbins: dB added to a peak's level */
    uint8_t *mask;      /* nbins: scratch, 1 where a bin is a local maximum */
    uint64_t pushed;    /* frames pushed so far */
    uint64_t decided;   /* frames decided so far */
    cand_t *cands;      /* candidates not yet kept or dropped, time order */
    float *levels;      /* their levels, contiguous, same indices */
    size_t levels_cap;
    size_t ncand, cand_cap, cand_head;
    size_t next_final;  /* index of the first candidate not yet judged */
    size_t win_end;     /* one past the last candidate in the current window */
};

fp_err_t fpi_peaks_new(const fp_config_t *cfg, fpi_peaks_t **out)
{
    *out = NULL;
    fpi_peaks_t *pk = calloc(1, sizeof *pk);
    if (!pk) return FP_ERR_NOMEM;
    pk->cfg = *cfg;
    pk->nbins = cfg->fft_size / 2 + 1;
    pk->ring = 2 * cfg->peak_dt + 1;
    size_t cells = (size_t)pk->ring * (size_t)pk->nbins;
    pk->db = malloc(cells * sizeof(float));
    pk->fmax = malloc(cells * sizeof(float));
    pk->prev = malloc((size_t)pk->nbins * sizeof(float));
    pk->next = malloc((size_t)pk->nbins * sizeof(float));
    pk->tilt = malloc((size_t)pk->nbins * sizeof(float));
    pk->mask = malloc((size_t)pk->nbins);
    if (!pk->mask || !pk->tilt || !pk->db || !pk->fmax || !pk->prev || !pk->next) {
        fpi_peaks_free(pk);
        return FP_ERR_NOMEM;
    }
    for (int k = 0; k < pk->nbins; k++)
        pk->tilt[k] = k < 1 ? 0.0f : cfg->tilt_db_per_octave * log2f((float)k / (float)cfg->min_bin);
    *out = pk;
    return FP_OK;
}

static inline float *row(float *base, const fpi_peaks_t *pk, uint64_t t)
{
    return base + (size_t)(t % (uint64_t)pk->ring) * (size_t)pk->nbins;
}

/*
 * Max over +-peak_df bins for bins [min_bin, max_bin]: one pass per shift
 * over contiguous memory, which the compiler vectorizes.  Bins outside the
 * spectrum count as -infinity.
 */
static void freq_max(const fpi_peaks_t *pk, const float *db, float *fm)
{
    const int D = pk->cfg.peak_df, lo = pk->cfg.min_bin, hi = pk->cfg.max_bin;
    for (int k = lo; k <= hi; k++) fm[k] = db[k];
    for (int j = 1; j <= D; j++) {
        int a = lo < j ? j : lo, b = hi;
        for (int k = a; k <= b; k++) fm[k] = fm[k] > db[k - j] ? fm[k] : db[k - j];
        a = lo, b = hi + j >= pk->nbins ? pk->nbins - 1 - j : hi;
        for (int k = a; k <= b; k++) fm[k] = fm[k] > db[k + j] ? fm[k] : db[k + j];
    }
}

/* dst[k] = max(dst[k], src[k]) over [lo, hi]. */
static void max_into(float *restrict dst, const float *restrict src, int lo, int hi)
{
    for (int k = lo; k <= hi; k++) dst[k] = dst[k] > src[k] ? dst[k] : src[k];
}

/* Append a candidate, compacting the consumed head first when useful. */
static fp_err_t add_cand(fpi_peaks_t *pk, const cand_t *c)
{
    if (pk->cand_head > 4096 && pk->cand_head * 2 > pk->ncand) {
        memmove(pk->cands, pk->cands + pk->cand_head, (pk->ncand - pk->cand_head) * sizeof(cand_t));
        memmove(pk->levels, pk->levels + pk->cand_head, (pk->ncand - pk->cand_head) * sizeof(float));
        pk->ncand -= pk->cand_head;
        pk->next_final -= pk->cand_head;
        pk->win_end = pk->win_end > pk->cand_head ? pk->win_end - pk->cand_head : 0;
        pk->cand_head = 0;
    }
    fp_err_t rc = fpi_grow((void **)&pk->cands, &pk->cand_cap, pk->ncand + 1, sizeof(cand_t));
    if (rc == FP_OK)
        rc = fpi_grow((void **)&pk->levels, &pk->levels_cap, pk->ncand + 1, sizeof(float));
    if (rc != FP_OK) return rc;
    pk->levels[pk->ncand] = c->level;
    pk->cands[pk->ncand++] = *c;
    return FP_OK;
}

/* Does a outrank b?  By level; ties go to the earlier, then lower, peak. */
static inline int outranks(const cand_t *a, const cand_t *b)
{
    if (a->level != b->level) return a->level > b->level;
    if (a->t != b->t) return a->t < b->t;
    return a->bin < b->bin;
}

/* Vertex of the parabola through (-1,l), (0,v), (1,r), clamped to +-0.5. */
static inline float interp(float l, float v, float r)
{
    float den = l - 2.0f * v + r;
    float p = den < 0.0f ? 0.5f * (l - r) / den : 0.0f;
    return p > 0.5f ? 0.5f : p < -0.5f ? -0.5f : p;
}

/*
 * Decide frame t: all frames t-peak_dt .. t+peak_dt that exist are in the
 * ring.  `last` is the newest frame available (frames after it are absent).
 */
static fp_err_t decide_frame(fpi_peaks_t *pk, uint64_t t, uint64_t last)
{
    const fp_config_t *c = &pk->cfg;
    const float *db = row(pk->db, pk, t);
    const int D = c->peak_df, C = c->contrast_bins;
    uint64_t t0 = t >= (uint64_t)c->peak_dt ? t - (uint64_t)c->peak_dt : 0;
    uint64_t t1 = t + (uint64_t)c->peak_dt;
    if (t1 > last) t1 = last;

    /* the neighbourhood's maxima before and after frame t, per bin */
    const int lo = c->min_bin, hi = c->max_bin;
    float *prev = pk->prev, *next = pk->next;
    for (int k = lo; k <= hi; k++) prev[k] = next[k] = -FLT_MAX;
    for (uint64_t u = t0; u < t; u++) max_into(prev, row(pk->fmax, pk, u), lo, hi);
    for (uint64_t u = t + 1; u <= t1; u++) max_into(next, row(pk->fmax, pk, u), lo, hi);
    const float *fm = row(pk->fmax, pk, t);
    /* the maxima of their rectangle (earlier frames must be beaten), as a
     * mask computed without branches so that the compiler vectorizes it */
    uint8_t *is_max = pk->mask;
    const float floor_db = c->floor_db;
    for (int k = lo; k <= hi; k++) {
        float v = db[k];
        is_max[k] = (uint8_t)((v >= fm[k]) & (v > prev[k]) & (v >= next[k]) & (v > floor_db));
    }

    for (int k = lo; k <= hi; k++) {
        if (!is_max[k]) continue;
        float v = db[k];
        /* ties within the frame go to the lower bin */
        int ok = 1;
        for (int j = 1; j <= D && k - j >= 0; j++)
            if (!(v > db[k - j])) ok = 0;
        if (!ok) continue;
        /* contrast: height over the mean of the surrounding band */
        int a = k - C < 0 ? 0 : k - C;
        int b = k + C >= pk->nbins ? pk->nbins - 1 : k + C;
        float sum = 0.0f;
        for (int q = a; q <= b; q++) sum += db[q];
        float mean = sum / (float)(b - a + 1);
        if (v - mean < c->min_contrast_db) continue;
        /* parabolic interpolation of the peak's frequency and time */
        float pf = interp(db[k - 1], v, db[k + 1]);
        float pt = 0.0f;
        if (t > 0 && t < last)
            pt = interp(row(pk->db, pk, t - 1)[k], v, row(pk->db, pk, t + 1)[k]);
        cand_t cd = {(uint32_t)t, (uint16_t)k, (uint16_t)((float)k * 16.0f + pf * 16.0f + 0.5f),
                     v + pk->tilt[k], pt};
        fp_err_t rc = add_cand(pk, &cd);
        if (rc != FP_OK) return rc;
    }
    return FP_OK;
}

/*
 * Judge the candidates whose whole density window has been decided (all of
 * them when `all`), appending the kept ones to *out.
 */
static fp_err_t judge(fpi_peaks_t *pk, int all, fpi_peak_t **out, size_t *n, size_t *cap)
{
    const uint64_t half = (uint64_t)pk->cfg.density_window / 2;
    while (pk->next_final < pk->ncand) {
        cand_t *c = &pk->cands[pk->next_final];
        if (!all && (uint64_t)c->t + half >= pk->decided) break;
        uint64_t lo = c->t >= half ? c->t - half : 0, hi = (uint64_t)c->t + half;
        /* drop candidates that no window will ever need again */
        while (pk->cand_head < pk->next_final && pk->cands[pk->cand_head].t < lo) pk->cand_head++;
        /* the window's end only moves forward, like its start */
        if (pk->win_end < pk->cand_head) pk->win_end = pk->cand_head;
        while (pk->win_end < pk->ncand && pk->cands[pk->win_end].t <= hi) pk->win_end++;
        size_t end = pk->win_end;
        /* count the higher levels over the contiguous level array (the
         * compiler vectorizes this); exact ties take the slow path */
        int above = 0, ties = 0;
        const float lv = c->level;
        for (size_t i = pk->cand_head; i < end; i++) {
            above += pk->levels[i] > lv;
            ties += pk->levels[i] == lv;
        }
        if (ties > 1)
            for (size_t i = pk->cand_head; i < end; i++)
                above += pk->levels[i] == lv && &pk->cands[i] != c && outranks(&pk->cands[i], c);
        if (above < pk->cfg.density) {
            fp_err_t rc = fpi_grow((void **)out, cap, *n + 1, sizeof(fpi_peak_t));
            if (rc != FP_OK) return rc;
            (*out)[(*n)++] = (fpi_peak_t){c->t, c->bin, c->f16, c->level, c->dt};
        }
        pk->next_final++;
    }
    return FP_OK;
}

fp_err_t fpi_peaks_push(fpi_peaks_t *pk, const float *db, fpi_peak_t **out, size_t *n,
                        size_t *cap)
{
    uint64_t t = pk->pushed;
    memcpy(row(pk->db, pk, t), db, (size_t)pk->nbins * sizeof(float));
    freq_max(pk, db, row(pk->fmax, pk, t));
    pk->pushed++;
    /* frame t - peak_dt now has its whole neighbourhood */
    if (t >= (uint64_t)pk->cfg.peak_dt) {
        fp_err_t rc = decide_frame(pk, t - (uint64_t)pk->cfg.peak_dt, t);
        if (rc != FP_OK) return rc;
        pk->decided = t - (uint64_t)pk->cfg.peak_dt + 1;
    }
    return judge(pk, 0, out, n, cap);
}

fp_err_t fpi_peaks_finish(fpi_peaks_t *pk, fpi_peak_t **out, size_t *n, size_t *cap)
{
    if (pk->pushed) {
        for (uint64_t t = pk->decided; t < pk->pushed; t++) {
            fp_err_t rc = decide_frame(pk, t, pk->pushed - 1);
            if (rc != FP_OK) return rc;
        }
        pk->decided = pk->pushed;
    }
    return judge(pk, 1, out, n, cap);
}

void fpi_peaks_free(fpi_peaks_t *pk)
{
    if (!pk) return;
    free(pk->db);
    free(pk->fmax);
    free(pk->prev);
    free(pk->next);
    free(pk->tilt);
    free(pk->mask);
    free(pk->cands);
    free(pk->levels);
    free(pk);
}
