/*
 * server_text.c -- text built by appending (the /metrics page, a match's
 * evidence): a buffer that grows by doubling and, once an allocation
 * fails, ignores further appends and is given back as NULL.
 */
#include "server_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `more` bytes and the terminating NUL; 0, or -1 (failed). */
static int grow(srv_text_t *t, size_t more)
{
    if (t->failed) return -1;
    if (t->len + more + 1 <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1) cap *= 2;
    char *x = realloc(t->p, cap);
    if (!x) {
        t->failed = 1;
        return -1;
    }
    t->p = x;
    t->cap = cap;
    return 0;
}

void srv_text_add(srv_text_t *t, const char *s, size_t n)
{
    if (grow(t, n)) return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void srv_text_printf(srv_text_t *t, const char *fmt, ...)
{
    for (;;) {
        if (grow(t, 0)) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        if (grow(t, (size_t)n)) return;
    }
}

char *srv_text_take(srv_text_t *t, size_t *len)
{
    if (t->failed || grow(t, 0)) { /* (an empty text still gets its NUL) */
        free(t->p);
        *t = (srv_text_t){0};
        return NULL;
    }
    char *p = t->p;
    if (len) *len = t->len;
    *t = (srv_text_t){0};
    return p;
}
