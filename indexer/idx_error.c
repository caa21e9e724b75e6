/*
 * idx_error.c -- the indexer's error codes: their texts and machine names,
 * the message formatter and the release-build assertion.  See idx.h.
 */
#include "idx_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *name;
    const char *text;
} errors[] = {
    [IDX_OK] = {"ok", "success"},
    [IDX_ERR_NOMEM] = {"nomem", "out of memory"},
    [IDX_ERR_INVALID] = {"invalid", "invalid argument or input over a limit"},
    [IDX_ERR_IO] = {"io", "cannot read a file or folder"},
    [IDX_ERR_PARSE] = {"parse", "malformed manifest"},
};

#define N_ERRORS (sizeof errors / sizeof errors[0])

const char *idx_strerror(idx_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown error";
    return errors[code].text;
}

const char *idx_errname(idx_err_t code)
{
    if ((unsigned)code >= N_ERRORS) return "unknown";
    return errors[code].name;
}

idx_err_t idxi_error(idx_err_t code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void idxi_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "earmark: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
