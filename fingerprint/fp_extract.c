/*
 * fp_extract.c -- the streaming extractor: resample -> spectrum -> peaks ->
 * hashes, block by block, with bounded memory; and the one-call helpers that
 * decode a whole file or buffer through it.
 */
#include "fp_internal.h"

#include <string.h>

struct fp_extractor {
    fp_config_t cfg;
    fp_limits_t lim;
    int in_rate, channels;
    fpi_resampler_t *rs;
    fpi_spectrum_t *sp;
    fpi_peaks_t *pk;
    fpi_hasher_t *hs;
    float *samples;          /* analysis-rate mono samples not yet framed */
    size_t s_len, s_cap, s_pos; /* s_pos: start of the next frame */
    float *db;               /* one frame of log power */
    fpi_peak_t *peaks;       /* scratch: peaks made final by one step */
    size_t p_len, p_cap;
    fp_print_t *prints;      /* final prints not yet taken */
    size_t o_len, o_cap, o_head;
    uint64_t in_frames;      /* input frames fed */
    fp_stats_t st;
    int finished;
};

fp_err_t fp_extractor_new(const fp_config_t *cfg, const fp_limits_t *lim, int sample_rate,
                          int channels, fp_extractor_t **out, char *err, size_t errlen)
{
    fp_err_t rc;
    fp_extractor_t *ex = NULL;

    *out = NULL;
    ex = calloc(1, sizeof *ex);
    if (!ex) return fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory");
    if (cfg) ex->cfg = *cfg;
    else fp_config_default(&ex->cfg);
    if (lim) ex->lim = *lim;
    else fp_limits_default(&ex->lim);
    rc = fp_config_check(&ex->cfg, err, errlen);
    if (rc != FP_OK) goto out;
    if (channels < 1 || channels > ex->lim.max_channels) {
        rc = fpi_error(FP_ERR_LIMIT, err, errlen, "%d channels (limit %d)", channels,
                       ex->lim.max_channels);
        goto out;
    }
    if (sample_rate < 1000 || sample_rate > ex->lim.max_sample_rate) {
        rc = fpi_error(FP_ERR_LIMIT, err, errlen, "sample rate %d Hz out of range 1000..%d",
                       sample_rate, ex->lim.max_sample_rate);
        goto out;
    }
    ex->in_rate = sample_rate;
    ex->channels = channels;
    rc = fpi_resampler_new(sample_rate, channels, ex->cfg.sample_rate, &ex->rs);
    if (rc == FP_OK) rc = fpi_spectrum_new(&ex->cfg, &ex->sp);
    if (rc == FP_OK) rc = fpi_peaks_new(&ex->cfg, &ex->pk);
    if (rc == FP_OK) rc = fpi_hasher_new(&ex->cfg, &ex->hs);
    if (rc == FP_OK) {
        ex->db = malloc(sizeof(float) * (size_t)(ex->cfg.fft_size / 2 + 1));
        if (!ex->db) rc = FP_ERR_NOMEM;
    }
    if (rc != FP_OK) fpi_error(rc, err, errlen, "cannot set up the extractor: %s", fp_strerror(rc));
out:
    if (rc != FP_OK) fp_extractor_free(ex);
    else *out = ex;
    return rc;
}

/* Frame every complete window, pass the frames on; `final` flushes all. */
static fp_err_t run_frames(fp_extractor_t *ex, int final)
{
    fp_err_t rc = FP_OK;
    const size_t n = (size_t)ex->cfg.fft_size, hop = (size_t)ex->cfg.hop;
    while (ex->s_pos + n <= ex->s_len) {
        fpi_spectrum_frame(ex->sp, ex->samples + ex->s_pos, ex->db);
        ex->s_pos += hop;
        ex->st.frames++;
        rc = fpi_peaks_push(ex->pk, ex->db, &ex->peaks, &ex->p_len, &ex->p_cap);
        if (rc != FP_OK) return rc;
    }
    /* keep only the samples the next frame needs */
    if (ex->s_pos > 0) {
        size_t keep = ex->s_pos < ex->s_len ? ex->s_len - ex->s_pos : 0;
        memmove(ex->samples, ex->samples + ex->s_pos, keep * sizeof(float));
        ex->s_pos = ex->s_pos < ex->s_len ? 0 : ex->s_pos - ex->s_len;
        ex->s_len = keep;
    }
    if (final) rc = fpi_peaks_finish(ex->pk, &ex->peaks, &ex->p_len, &ex->p_cap);
    if (rc != FP_OK) return rc;
    ex->st.peaks += ex->p_len;
    if (ex->o_head > 0 && ex->o_head == ex->o_len) ex->o_head = ex->o_len = 0;
    size_t before = ex->o_len;
    rc = fpi_hasher_push(ex->hs, ex->peaks, ex->p_len, final, &ex->prints, &ex->o_len,
                         &ex->o_cap);
    ex->p_len = 0;
    ex->st.prints += ex->o_len - before;
    return rc;
}

fp_err_t fp_extractor_feed(fp_extractor_t *ex, const float *samples, size_t frames, char *err,
                           size_t errlen)
{
    fp_err_t rc;
    if (!ex || (!samples && frames)) return fpi_error(FP_ERR_INVALID, err, errlen, "bad arguments");
    if (ex->finished) return fpi_error(FP_ERR_INVALID, err, errlen, "stream already finished");
    ex->in_frames += frames;
    ex->st.seconds = (double)ex->in_frames / (double)ex->in_rate;
    if (ex->st.seconds > ex->lim.max_duration_s)
        return fpi_error(FP_ERR_LIMIT, err, errlen, "longer than %.0f s of audio (the limit)",
                         ex->lim.max_duration_s);
    rc = fpi_resampler_process(ex->rs, samples, frames, 0, &ex->samples, &ex->s_len, &ex->s_cap);
    if (rc == FP_OK) rc = run_frames(ex, 0);
    if (rc != FP_OK) return fpi_error(rc, err, errlen, "extraction failed: %s", fp_strerror(rc));
    double window = ex->st.seconds > 60.0 ? ex->st.seconds : 60.0;
    if ((double)ex->st.prints > (double)ex->lim.max_hashes_per_s * window)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "more than %d prints per second of audio (the limit)",
                         ex->lim.max_hashes_per_s);
    return FP_OK;
}

fp_err_t fp_extractor_finish(fp_extractor_t *ex, char *err, size_t errlen)
{
    fp_err_t rc;
    if (!ex) return fpi_error(FP_ERR_INVALID, err, errlen, "bad arguments");
    if (ex->finished) return FP_OK;
    ex->finished = 1;
    rc = fpi_resampler_process(ex->rs, NULL, 0, 1, &ex->samples, &ex->s_len, &ex->s_cap);
    if (rc == FP_OK) rc = run_frames(ex, 1);
    if (rc != FP_OK) return fpi_error(rc, err, errlen, "extraction failed: %s", fp_strerror(rc));
    return FP_OK;
}

size_t fp_extractor_take(fp_extractor_t *ex, fp_print_t *out, size_t max)
{
    if (!ex || !out) return 0;
    size_t n = ex->o_len - ex->o_head;
    if (n > max) n = max;
    if (n == 0) return 0;
    memcpy(out, ex->prints + ex->o_head, n * sizeof(fp_print_t));
    ex->o_head += n;
    return n;
}

void fp_extractor_stats(const fp_extractor_t *ex, fp_stats_t *st)
{
    *st = ex->st;
}

void fp_extractor_free(fp_extractor_t *ex)
{
    if (!ex) return;
    fpi_resampler_free(ex->rs);
    fpi_spectrum_free(ex->sp);
    fpi_peaks_free(ex->pk);
    fpi_hasher_free(ex->hs);
    free(ex->samples);
    free(ex->db);
    free(ex->peaks);
    free(ex->prints);
    free(ex);
}

/* ---- one-call extraction ---- */

/*
 * Frames decoded per step.  Decoder and fingerprinter evict each other's
 * working sets from the caches each time they alternate; at 4096 frames that
 * slowed decoding by ~15% (decode-only 418x real time, in the pipeline 363x),
 * at 65536 (1.5 s at 44.1 kHz; 512 KiB for stereo, at most 4 MiB at the
 * 16-channel limit) the pipeline runs ~10% faster.  Memory stays bounded.
 */
#define BLOCK_FRAMES 65536

/* Move every pending print of ex into res. */
static fp_err_t drain(fp_extractor_t *ex, fp_result_t *res, size_t *cap)
{
    size_t pending = ex->o_len - ex->o_head;
    if (!pending) return FP_OK;
    fp_err_t rc = fpi_grow((void **)&res->prints, cap, res->count + pending, sizeof(fp_print_t));
    if (rc != FP_OK) return rc;
    res->count += fp_extractor_take(ex, res->prints + res->count, pending);
    return FP_OK;
}

static fp_err_t extract_decoder(fp_decoder_t *dec, const char *name, const fp_config_t *cfg,
                                const fp_limits_t *lim, fp_result_t *res, double t_start,
                                char *err, size_t errlen)
{
    fp_err_t rc;
    fp_extractor_t *ex = NULL;
    float *buf = NULL;
    size_t cap = 0, got = 0;
    uint64_t total = 0;
    char why[256];

    res->info = *fp_decoder_info(dec);
    rc = fp_extractor_new(cfg, lim, res->info.sample_rate, res->info.channels, &ex, why,
                          sizeof why);
    if (rc != FP_OK) {
        fpi_error(rc, err, errlen, "cannot fingerprint \"%s\": %s", name, why);
        goto out;
    }
    buf = malloc(sizeof(float) * BLOCK_FRAMES * (size_t)res->info.channels);
    if (!buf) {
        rc = fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory for \"%s\"", name);
        goto out;
    }
    for (;;) {
        double t0 = fpi_now();
        rc = fp_decoder_read(dec, buf, BLOCK_FRAMES, &got, err, errlen);
        res->decode_seconds += fpi_now() - t0;
        if (rc != FP_OK) goto out;
        if (got == 0) break;
        total += got;
        rc = fp_extractor_feed(ex, buf, got, why, sizeof why);
        if (rc == FP_OK) rc = drain(ex, res, &cap);
        if (rc != FP_OK) {
            fpi_error(rc, err, errlen, "cannot fingerprint \"%s\": %s", name, why);
            goto out;
        }
    }
    if (total == 0) {
        rc = fpi_error(FP_ERR_EMPTY, err, errlen, "cannot fingerprint \"%s\": no audio samples",
                       name);
        goto out;
    }
    rc = fp_extractor_finish(ex, why, sizeof why);
    if (rc == FP_OK) rc = drain(ex, res, &cap);
    if (rc != FP_OK) {
        fpi_error(rc, err, errlen, "cannot fingerprint \"%s\": %s", name, why);
        goto out;
    }
    fp_extractor_stats(ex, &res->stats);
    res->total_seconds = fpi_now() - t_start;
out:
    free(buf);
    fp_extractor_free(ex);
    return rc;
}

fp_err_t fp_extract_path(const char *path, const fp_config_t *cfg, const fp_limits_t *lim,
                         fp_result_t *res, char *err, size_t errlen)
{
    fp_decoder_t *dec = NULL;
    double t0 = fpi_now();
    memset(res, 0, sizeof *res);
    fp_err_t rc = fp_decoder_open_path(path, lim, &dec, err, errlen);
    res->decode_seconds = fpi_now() - t0;
    if (rc == FP_OK) rc = extract_decoder(dec, path, cfg, lim, res, t0, err, errlen);
    fp_decoder_free(dec);
    if (rc != FP_OK) fp_result_clear(res);
    return rc;
}

fp_err_t fp_extract_memory(const void *data, size_t size, const char *name,
                           const fp_config_t *cfg, const fp_limits_t *lim, fp_result_t *res,
                           char *err, size_t errlen)
{
    fp_decoder_t *dec = NULL;
    double t0 = fpi_now();
    memset(res, 0, sizeof *res);
    if (!name) name = "upload";
    fp_err_t rc = fp_decoder_open_memory(data, size, name, lim, &dec, err, errlen);
    res->decode_seconds = fpi_now() - t0;
    if (rc == FP_OK) rc = extract_decoder(dec, name, cfg, lim, res, t0, err, errlen);
    fp_decoder_free(dec);
    if (rc != FP_OK) fp_result_clear(res);
    return rc;
}

void fp_result_clear(fp_result_t *res)
{
    if (!res) return;
    free(res->prints);
    memset(res, 0, sizeof *res);
}
