/*
 * fp_resample.c -- downmix to mono and resample to the analysis rate.
 *
 * Channels are averaged (not summed: a stereo file and its mono downmix give
 * the same spectrum).  Resampling uses libsoxr at medium quality, which is
 * transparent up to the highest analysed bin and, for the common 44.1 kHz ->
 * 11.025 kHz case, runs at several thousand times real time.  When the input
 * is already at the analysis rate the samples are copied.
 */
#include "fp_internal.h"

#include <soxr.h>
#include <string.h>

struct fpi_resampler {
    soxr_t soxr;           /* NULL when no rate change is needed */
    int channels;
    double ratio;          /* out_rate / in_rate */
    float *mono;           /* scratch for the downmix */
    size_t mono_cap;
};

fp_err_t fpi_resampler_new(int in_rate, int channels, int out_rate, fpi_resampler_t **out)
{
    *out = NULL;
    fpi_resampler_t *rs = calloc(1, sizeof *rs);
    if (!rs) return FP_ERR_NOMEM;
    rs->channels = channels;
    rs->ratio = (double)out_rate / (double)in_rate;
    if (in_rate != out_rate) {
        soxr_error_t e = NULL;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_MQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* our threads are ours */
        rs->soxr = soxr_create(in_rate, out_rate, 1, &e, &io, &q, &rt);
        if (!rs->soxr || e) {
            free(rs);
            return FP_ERR_INTERNAL;
        }
    }
    *out = rs;
    return FP_OK;
}

/* Run soxr until it has no more output for this input. */
static fp_err_t run_soxr(fpi_resampler_t *rs, const float *in, size_t n, float **dst,
                         size_t *len, size_t *cap)
{
    size_t done_in = 0;
    for (;;) {
        /* room for what this input can yield, plus the filter's tail */
        size_t want = (size_t)((double)(n - done_in) * rs->ratio) + 1024;
        fp_err_t rc = fpi_grow((void **)dst, cap, *len + want, sizeof(float));
        if (rc != FP_OK) return rc;
        size_t idone = 0, odone = 0;
        soxr_error_t e = soxr_process(rs->soxr, in ? in + done_in : NULL, in ? n - done_in : 0,
                                      &idone, *dst + *len, *cap - *len, &odone);
        if (e) return FP_ERR_INTERNAL;
        done_in += idone;
        *len += odone;
        if (in && done_in >= n && odone < *cap - *len) return FP_OK;
        if (!in && odone == 0) return FP_OK;
    }
}

fp_err_t fpi_resampler_process(fpi_resampler_t *rs, const float *in, size_t frames, int flush,
                               float **dst, size_t *dst_len, size_t *dst_cap)
{
    fp_err_t rc;
    const int ch = rs->channels;
    float *mono;

    if (frames) {
        if (!rs->soxr) {
            rc = fpi_grow((void **)dst, dst_cap, *dst_len + frames, sizeof(float));
            if (rc != FP_OK) return rc;
            mono = *dst + *dst_len;
        } else {
            rc = fpi_grow((void **)&rs->mono, &rs->mono_cap, frames, sizeof(float));
            if (rc != FP_OK) return rc;
            mono = rs->mono;
        }
        if (ch == 1) {
            memcpy(mono, in, frames * sizeof(float));
        } else if (ch == 2) {
            for (size_t i = 0; i < frames; i++) mono[i] = 0.5f * (in[2 * i] + in[2 * i + 1]);
        } else {
            const float g = 1.0f / (float)ch;
            for (size_t i = 0; i < frames; i++) {
                float s = 0.0f;
                for (int c = 0; c < ch; c++) s += in[i * (size_t)ch + (size_t)c];
                mono[i] = s * g;
            }
        }
        if (!rs->soxr) {
            *dst_len += frames;
        } else {
            rc = run_soxr(rs, mono, frames, dst, dst_len, dst_cap);
            if (rc != FP_OK) return rc;
        }
    }
    if (flush && rs->soxr) return run_soxr(rs, NULL, 0, dst, dst_len, dst_cap);
    return FP_OK;
}

void fpi_resampler_free(fpi_resampler_t *rs)
{
    if (!rs) return;
    if (rs->soxr) soxr_delete(rs->soxr);
    free(rs->mono);
    free(rs);
}
