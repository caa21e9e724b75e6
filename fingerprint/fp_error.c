/* fp_error.c -- error text, error formatting and small shared helpers. */
#include "fp_internal.h"

#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    const char *text;
} errors[] = {
    [FP_OK] = {"ok", "success"},
    [FP_ERR_NOMEM] = {"nomem", "out of memory"},
    [FP_ERR_INVALID] = {"invalid", "invalid argument"},
    [FP_ERR_IO] = {"io", "cannot read the input"},
    [FP_ERR_FORMAT] = {"format", "unsupported or corrupt audio"},
    [FP_ERR_EMPTY] = {"empty", "no audio in the input"},
    [FP_ERR_LIMIT] = {"limit", "input exceeds a configured limit"},
    [FP_ERR_VERSION] = {"version", "prints made with incompatible parameters"},
    [FP_ERR_INTERNAL] = {"internal", "internal error"},
};

#define N_ERRORS (sizeof errors / sizeof errors[0])

const char *fp_strerror(fp_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown error";
    return errors[code].text;
}

const char *fp_errname(fp_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown";
    return errors[code].name;
}

fp_err_t fpi_error(fp_err_t code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void fpi_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "earmark: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

double fpi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Grow an array geometrically.  Overflow of need * elem is checked before
 * any arithmetic that could wrap.
 */
fp_err_t fpi_grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return FP_OK;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return FP_ERR_NOMEM;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) return FP_ERR_NOMEM;
    void *p = realloc(*buf, ncap * elem);
    if (!p) return FP_ERR_NOMEM;
    *buf = p;
    *cap = ncap;
    return FP_OK;
}
