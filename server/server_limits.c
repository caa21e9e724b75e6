/*
 * server_limits.c -- per-key rate limiting: a token bucket per key digest,
 * refilled at `rate` tokens a second up to `burst`.  Buckets live in a
 * fixed open-addressed table (4096 slots); when it is full the least
 * recently used slot of a short probe run is reused, so memory stays flat
 * whatever the number of keys (an evicted key starts again with a full
 * bucket, which only errs on the side of letting a request through).
 */
#include "server_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096
#define PROBE 8

typedef struct bucket {
    uint8_t digest[32];
    int used;
    double tokens;
    double last;
} bucket_t;

struct srv_limiter {
    pthread_mutex_t lock;
    double rate, burst;
    bucket_t b[SLOTS];
};

srv_limiter_t *srv_limiter_new(double rate, double burst)
{
    srv_limiter_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->rate = rate;
    l->burst = burst < 1 ? 1 : burst;
    return l;
}

void srv_limiter_free(srv_limiter_t *l)
{
    if (!l) return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

unsigned srv_limiter_take(srv_limiter_t *l, const uint8_t digest[32], double now)
{
    if (l->rate <= 0) return 0;
    uint32_t h;
    memcpy(&h, digest, 4);
    pthread_mutex_lock(&l->lock);
    bucket_t *b = NULL, *oldest = NULL;
    for (int i = 0; i < PROBE && !b; i++) {
        bucket_t *x = &l->b[(h + (uint32_t)i) % SLOTS];
        if (x->used && !memcmp(x->digest, digest, 32)) b = x;
        else if (!oldest || !x->used || (oldest->used && x->last < oldest->last)) oldest = x;
    }
    if (!b) {
        b = oldest;
        memcpy(b->digest, digest, 32);
        b->used = 1;
        b->tokens = l->burst;
        b->last = now;
    }
    b->tokens += (now - b->last) * l->rate;
    if (b->tokens > l->burst) b->tokens = l->burst;
    b->last = now;
    unsigned wait = 0;
    if (b->tokens >= 1.0) b->tokens -= 1.0;
    else wait = (unsigned)ceil((1.0 - b->tokens) / l->rate);
    pthread_mutex_unlock(&l->lock);
    return wait;
}
