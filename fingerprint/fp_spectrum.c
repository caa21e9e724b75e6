/*
 * fp_spectrum.c -- short-time spectrum of one frame: Hann window, real FFT
 * (FFTW, single precision), power in dB.
 *
 * FFTW's planner is not thread-safe, so plans are made under a lock; with
 * FFTW_ESTIMATE planning is cheap and, unlike FFTW_MEASURE, picks the same
 * algorithm every time, which keeps prints byte-identical across runs.
 * Executing a plan on its own buffers is thread-safe.
 *
 * Power goes to dB with a polynomial log2: the spectrum is the one place
 * where a logarithm runs per bin per frame, and the approximation (error
 * below 0.01 dB) is a deterministic function of its input.
 */
#include "fp_internal.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

struct fpi_spectrum {
    int n;
    float *window;
    float *in;              /* fftwf_malloc'd, n floats */
    fftwf_complex *out;     /* n/2+1 */
    fftwf_plan plan;
    float norm_db;          /* subtracted so a full-scale sine reads ~0 dB */
};

fp_err_t fpi_spectrum_new(const fp_config_t *cfg, fpi_spectrum_t **out)
{
    fp_err_t rc = FP_OK;
    *out = NULL;
    fpi_spectrum_t *sp = calloc(1, sizeof *sp);
    if (!sp) return FP_ERR_NOMEM;
    int n = sp->n = cfg->fft_size;
    sp->window = malloc(sizeof(float) * (size_t)n);
    sp->in = fftwf_malloc(sizeof(float) * (size_t)n);
    sp->out = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(n / 2 + 1));
    if (!sp->window || !sp->in || !sp->out) {
        rc = FP_ERR_NOMEM;
        goto out;
    }
    double wsum = 0.0;
    for (int i = 0; i < n; i++) {
        double w = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)n);
        sp->window[i] = (float)w;
        wsum += w;
    }
    sp->norm_db = (float)(20.0 * log10(wsum / 2.0));
    pthread_mutex_lock(&plan_lock);
    sp->plan = fftwf_plan_dft_r2c_1d(n, sp->in, sp->out, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    pthread_mutex_unlock(&plan_lock);
    if (!sp->plan) rc = FP_ERR_INTERNAL;
out:
    if (rc != FP_OK) fpi_spectrum_free(sp);
    else *out = sp;
    return rc;
}

/* 10*log10(x) for x > 0 via log2 with a degree-4 minimax-like polynomial on
 * the mantissa in [1, 2).  Max error below 1e-4 dB. */
static inline float fast_db(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {x};
    int e = (int)((v.u >> 23) & 0xff) - 127;
    v.u = (v.u & 0x007fffffu) | 0x3f800000u; /* mantissa in [1,2) */
    float m = v.f - 1.0f;
    float p = m * (1.4425449f + m * (-0.7181452f + m * (0.4575485f + m * (-0.2779042f + m * (0.1217970f + m * -0.0258411f)))));
    return 3.0102999566f * ((float)e + p);
}

void fpi_spectrum_frame(fpi_spectrum_t *sp, const float *in, float *out_db)
{
    const int n = sp->n;
    for (int i = 0; i < n; i++) sp->in[i] = in[i] * sp->window[i];
    fftwf_execute(sp->plan);
    const float floor_pow = 1e-20f;
    for (int k = 0; k <= n / 2; k++) {
        float re = sp->out[k][0], im = sp->out[k][1];
        out_db[k] = fast_db(re * re + im * im + floor_pow) - sp->norm_db;
    }
}

void fpi_spectrum_free(fpi_spectrum_t *sp)
{
    if (!sp) return;
    if (sp->plan) {
        pthread_mutex_lock(&plan_lock);
        fftwf_destroy_plan(sp->plan);
        pthread_mutex_unlock(&plan_lock);
    }
    fftwf_free(sp->in);
    fftwf_free(sp->out);
    free(sp->window);
    free(sp);
}
