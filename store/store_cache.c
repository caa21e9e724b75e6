/*
 * store_cache.c -- rows of the store kept in memory, shared by threads.
 *
 * A segment never changes once written (a merge writes a new one and
 * drops the old), so a row read once is valid for as long as its segment
 * lives, and a cache keyed by (segment, row start) needs no invalidation:
 * the rows of a dropped segment are simply never asked for again and age
 * out.  Lookups then fetch from PostgreSQL only the rows they miss.
 *
 * The cache is cut into STRIPES independent parts, chosen by a hash of the
 * key, each with its own mutex, chained hash table and share of the byte
 * budget, so threads rarely wait for each other.  Eviction is CLOCK (second
 * chance): every entry has a reference bit set on each hit; the hand walks
 * the stripe's entries, clearing set bits and evicting the first entry
 * found clear.
 *
 * A reader either copies a row out under the lock (store_cache_get) or
 * borrows it (store_cache_lend): the entry is pinned, and eviction then
 * only unlinks it (it no longer counts against the budget) and leaves the
 * freeing to the last store_cache_return; a copy is a loan copied and
 * returned.  A lookup borrows its ~1 000 rows rather than copying them:
 * the copy, cache misses and all, was a tenth of a lookup, on one thread,
 * while the threads that count and select read the borrowed rows.
 */
#include "store_internal.h"

#include <pthread.h>
#include <stdlib.h>

#define STRIPES 64

typedef struct entry {
    uint64_t key;
    struct entry *next;     /* hash chain */
    uint32_t len;
    uint32_t ring;          /* index in the stripe's ring */
    uint8_t ref;            /* CLOCK reference bit */
    uint8_t evicted;        /* unlinked while lent: the last return frees it */
    uint32_t pins;          /* loans not yet returned */
    uint8_t data[];
} entry_t;

typedef struct stripe {
    pthread_mutex_t lock;
    entry_t **buckets;      /* power-of-two count */
    size_t nbuckets;
    entry_t **ring;         /* every entry, in no order: the CLOCK's dial */
    size_t n, cap, hand;
    size_t bytes, budget;
    uint64_t hits, misses, evictions;
} stripe_t;

struct store_cache {
    stripe_t stripes[STRIPES];
};

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t key_of(int64_t segment, uint32_t start)
{
    return (uint64_t)segment << 32 | start;
}

db_err_t store_cache_new(size_t max_bytes, store_cache_t **out)
{
    *out = NULL;
    store_cache_t *c = calloc(1, sizeof *c);
    if (!c) return DB_ERR_NOMEM;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *s = &c->stripes[i];
        pthread_mutex_init(&s->lock, NULL);
        s->budget = max_bytes / STRIPES;
        s->nbuckets = 64;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        if (!s->buckets) {
            store_cache_free(c);
            return DB_ERR_NOMEM;
        }
    }
    *out = c;
    return DB_OK;
}

void store_cache_free(store_cache_t *c)
{
    if (!c) return;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *s = &c->stripes[i];
        for (size_t k = 0; k < s->n; k++) free(s->ring[k]);
        free(s->ring);
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(c);
}

static stripe_t *stripe_of(store_cache_t *c, uint64_t key, uint64_t *h)
{
    *h = mix(key);
    return &c->stripes[*h % STRIPES];
}

static entry_t **slot_of(stripe_t *s, uint64_t h, uint64_t key)
{
    entry_t **p = &s->buckets[(h / STRIPES) & (s->nbuckets - 1)];
    while (*p && (*p)->key != key) p = &(*p)->next;
    return p;
}

int store_cache_get(store_cache_t *c, int64_t segment, uint32_t start, uint8_t **buf,
                    size_t *used, size_t *cap)
{
    const uint8_t *data;
    size_t len;
    store_cache_loan_t *loan;
    if (!store_cache_lend(c, segment, start, &data, &len, &loan)) return 0;
    int rc = 1;
    if (*used + len > *cap) {
        size_t nc = 2 * (*used + len) + 4096;
        uint8_t *x = realloc(*buf, nc);
        if (x) {
            *buf = x;
            *cap = nc;
        } else {
            rc = -1;
        }
    }
    if (rc == 1) {
        memcpy(*buf + *used, data, len);
        *used += len;
    }
    store_cache_return(c, loan);
    return rc;
}

int store_cache_lend(store_cache_t *c, int64_t segment, uint32_t start, const uint8_t **data,
                     size_t *len, store_cache_loan_t **loan)
{
    uint64_t key = key_of(segment, start), h;
    stripe_t *s = stripe_of(c, key, &h);
    pthread_mutex_lock(&s->lock);
    entry_t *e = *slot_of(s, h, key);
    if (e) {
        e->pins++;
        e->ref = 1;
        s->hits++;
        *data = e->data;
        *len = e->len;
        *loan = (store_cache_loan_t *)e;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    return e != NULL;
}

void store_cache_return(store_cache_t *c, store_cache_loan_t *loan)
{
    if (!loan) return;
    entry_t *e = (entry_t *)loan;
    uint64_t h;
    stripe_t *s = stripe_of(c, e->key, &h);
    pthread_mutex_lock(&s->lock);
    int gone = --e->pins == 0 && e->evicted;
    pthread_mutex_unlock(&s->lock);
    if (gone) free(e);
}

/* Unlink e from its chain and the ring, and free it unless it is lent
 * (lock held). */
static void evict(stripe_t *s, entry_t *e)
{
    entry_t **p = slot_of(s, mix(e->key), e->key);
    *p = e->next;
    size_t last = --s->n;
    if (e->ring != last) {
        s->ring[e->ring] = s->ring[last];
        s->ring[e->ring]->ring = e->ring;
    }
    s->bytes -= sizeof *e + e->len;
    s->evictions++;
    if (e->pins) e->evicted = 1;
    else free(e);
}

/* Double the buckets when entries outnumber them (lock held). */
static void grow_buckets(stripe_t *s)
{
    size_t nb = s->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t k = 0; k < s->n; k++) {
        entry_t *e = s->ring[k];
        entry_t **p = &b[(mix(e->key) / STRIPES) & (nb - 1)];
        e->next = *p;
        *p = e;
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

void store_cache_put(store_cache_t *c, int64_t segment, uint32_t start, const uint8_t *data,
                     size_t len)
{
    uint64_t key = key_of(segment, start), h;
    stripe_t *s = stripe_of(c, key, &h);
    size_t need = sizeof(entry_t) + len;
    if (len > UINT32_MAX || need > s->budget) return;
    pthread_mutex_lock(&s->lock);
    if (*slot_of(s, h, key)) goto out;  /* another thread was first */
    while (s->bytes + need > s->budget && s->n) {
        if (s->hand >= s->n) s->hand = 0;
        entry_t *e = s->ring[s->hand];
        if (e->ref) {
            e->ref = 0;
            s->hand++;
        } else {
            evict(s, e); /* the last entry moved to the hand: look at it next */
        }
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 256;
        entry_t **r = realloc(s->ring, nc * sizeof *r);
        if (!r) goto out;
        s->ring = r;
        s->cap = nc;
    }
    entry_t *e = malloc(need);
    if (!e) goto out;
    e->key = key;
    e->len = (uint32_t)len;
    e->ref = 0;
    e->evicted = 0;
    e->pins = 0;
    memcpy(e->data, data, len);
    e->ring = (uint32_t)s->n;
    s->ring[s->n++] = e;
    entry_t **p = &s->buckets[(h / STRIPES) & (s->nbuckets - 1)];
    e->next = *p;
    *p = e;
    s->bytes += need;
    if (s->n > s->nbuckets) grow_buckets(s);
out:
    pthread_mutex_unlock(&s->lock);
}

void store_cache_stats(store_cache_t *c, store_cache_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *s = &c->stripes[i];
        pthread_mutex_lock(&s->lock);
        st->hits += s->hits;
        st->misses += s->misses;
        st->evictions += s->evictions;
        st->rows += s->n;
        st->bytes += s->bytes;
        pthread_mutex_unlock(&s->lock);
    }
}
