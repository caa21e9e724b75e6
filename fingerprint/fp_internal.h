/*
 * fp_internal.h -- declarations shared between the files of the fingerprint
 * core.  Not installed, not API: everything here may change.  Names carry the
 * fpi_ prefix so they never collide with the public fp_ names.
 */
#ifndef EARMARK_FP_INTERNAL_H
#define EARMARK_FP_INTERNAL_H

#include "earmark_fp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* An assertion that stays on in release builds: for impossible states only,
 * never for anything that comes from input. */
#define fpi_assert(cond)                                                    \
    do {                                                                    \
        if (!(cond)) fpi_assert_fail(#cond, __FILE__, __LINE__);            \
    } while (0)
void fpi_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

/* Write a formatted message into err (when err != NULL) and return code. */
fp_err_t fpi_error(fp_err_t code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Monotonic wall clock in seconds. */
double fpi_now(void);

/* ---- resample: interleaved input -> mono float at the analysis rate ---- */
typedef struct fpi_resampler fpi_resampler_t;
fp_err_t fpi_resampler_new(int in_rate, int channels, int out_rate,
                           fpi_resampler_t **out);
/* Convert `frames` input frames; output is appended to *dst (grown with
 * realloc, *dst_len samples used, *dst_cap allocated).  flush=1 drains the
 * filter's delay line at the end of the stream. */
fp_err_t fpi_resampler_process(fpi_resampler_t *rs, const float *in,
                               size_t frames, int flush, float **dst,
                               size_t *dst_len, size_t *dst_cap);
void fpi_resampler_free(fpi_resampler_t *rs);

/* ---- spectrum: one frame of samples -> log power per bin ---- */
typedef struct fpi_spectrum fpi_spectrum_t;
fp_err_t fpi_spectrum_new(const fp_config_t *cfg, fpi_spectrum_t **out);
/* `in` holds cfg->fft_size samples; writes log10 power (in dB) of bins
 * [0, fft_size/2] into out_db. */
void fpi_spectrum_frame(fpi_spectrum_t *sp, const float *in, float *out_db);
void fpi_spectrum_free(fpi_spectrum_t *sp);

/* ---- peaks: a stream of spectrum frames -> a stream of peaks ---- */
typedef struct fpi_peak {
    uint32_t t;        /* frame */
    uint16_t bin;      /* integer FFT bin */
    uint16_t f16;      /* interpolated frequency, 1/16 bin */
    float level;       /* dB plus tilt: the rank among nearby peaks */
    float dt;          /* interpolated time - t, in frames, -0.5..0.5 */
} fpi_peak_t;

typedef struct fpi_peaks fpi_peaks_t;
fp_err_t fpi_peaks_new(const fp_config_t *cfg, fpi_peaks_t **out);
/* Push the next frame's log spectrum (fft_size/2+1 values, copied).  Peaks
 * that became final are appended to *out (grown with realloc). */
fp_err_t fpi_peaks_push(fpi_peaks_t *pk, const float *db, fpi_peak_t **out,
                        size_t *n, size_t *cap);
/* End of stream: flush every pending peak. */
fp_err_t fpi_peaks_finish(fpi_peaks_t *pk, fpi_peak_t **out, size_t *n,
                          size_t *cap);
void fpi_peaks_free(fpi_peaks_t *pk);

/* ---- hash: a stream of final peaks -> prints ---- */
typedef struct fpi_hasher fpi_hasher_t;
fp_err_t fpi_hasher_new(const fp_config_t *cfg, fpi_hasher_t **out);
/* Add final peaks (in time order); prints of anchors whose target zone is
 * complete are appended to *out. `final` = end of stream. */
fp_err_t fpi_hasher_push(fpi_hasher_t *h, const fpi_peak_t *peaks, size_t n,
                         int final, fp_print_t **out, size_t *len, size_t *cap);
void fpi_hasher_free(fpi_hasher_t *h);

/* The sieve's wide buckets, in offsets: the spread of a scaled line's hits
 * over query_span frames, with margins (fp_sieve.c). */
uint32_t fpi_sieve_width(const fp_score_opts_t *o, uint32_t query_span);
/* fp_sieve_new for a query of query_span frames (last - first). */
fp_err_t fpi_sieve_new(const fp_score_opts_t *opts, uint32_t query_span, size_t expected_hits,
                       fp_sieve_t **out);
/* The indexes (ascending) of the hits of h[0 .. n) the sieve keeps, in idx
 * (room for n); returns how many. */
size_t fpi_sieve_select(fp_sieve_t *s, const fp_hit_t *h, size_t n, uint32_t *idx);

/* Grow *buf so that it holds at least `need` elements of `elem` bytes. */
fp_err_t fpi_grow(void **buf, size_t *cap, size_t need, size_t elem);

#endif
