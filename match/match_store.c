/*
 * match_store.c -- the store interface, and the store held in memory: all
 * postings in one array sorted by (hash, track, t), found by binary search.
 * Simple and compact; the PostgreSQL catalog is the store for catalogs that
 * outgrow one process.
 */
#include "em_match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint32_t hash;
    uint32_t track;
    uint32_t t;
    uint16_t f;
    uint16_t pad;
} entry_t;

typedef struct memstore {
    match_store_t base;
    entry_t *e;
    size_t n, cap;
    int sealed;
    double frames;  /* the recordings' lengths, summed: anchor frames from
                       first to last print */
} memstore_t;

void match_store_free(match_store_t *store)
{
    if (store) store->ops->free(store);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* First entry with hash >= h. */
static size_t lower_bound(const memstore_t *m, uint32_t h)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->e[mid].hash < h) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

typedef struct budget_item {
    uint64_t cost;
    size_t idx;
} budget_item_t;

/*
 * Stable LSD radix sort of it[0 .. n) by cost, 11 bits a pass over the
 * bits the largest cost has, through tmp: a clip's ~1 600 hashes sort in a
 * tenth of qsort's time, and stability keeps ties in the order given.
 */
static void sort_by_cost(budget_item_t *it, budget_item_t *tmp, size_t n)
{
    uint64_t most = 0;
    for (size_t i = 0; i < n; i++) most |= it[i].cost;
    budget_item_t *src = it, *dst = tmp;
    size_t count[2048];
    for (int shift = 0; shift < 64 && most >> shift; shift += 11) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++) count[(src[i].cost >> shift) & 2047]++;
        size_t sum = 0;
        for (size_t d = 0; d < 2048; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[count[(src[i].cost >> shift) & 2047]++] = src[i];
        budget_item_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != it) memcpy(it, src, n * sizeof *it);
}

size_t match_budget_select(const uint64_t *cost, size_t n, uint64_t max_hits, uint8_t *chosen)
{
    if (!max_hits) {
        memset(chosen, 1, n);
        return n;
    }
    memset(chosen, 0, n);
    budget_item_t *it = malloc((n ? 2 * n : 1) * sizeof *it);
    size_t taken = 0;
    uint64_t total = 0;
    if (!it) {
        /* without memory to sort: in the order given */
        for (size_t i = 0; i < n; i++)
            if (total + cost[i] <= max_hits) total += cost[i], chosen[i] = 1, taken++;
        return taken;
    }
    for (size_t i = 0; i < n; i++) it[i] = (budget_item_t){cost[i], i};
    sort_by_cost(it, it + n, n);
    for (size_t i = 0; i < n && total + it[i].cost <= max_hits; i++) {
        total += it[i].cost;
        chosen[it[i].idx] = 1;
        taken++;
    }
    free(it);
    return taken;
}

/* Append the postings [a, b) as hits of query print i, only those of
 * tracks[0 .. nt) when nt is not 0; -1 out of memory. */
static int mem_emit(const memstore_t *m, const fp_print_t *q, size_t i, size_t a, size_t b,
                    const uint32_t *tracks, size_t nt, fp_hit_t **out, size_t *n, size_t *cap)
{
    if (*n + (b - a) > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *n + (b - a)) nc *= 2;
        fp_hit_t *p = realloc(*out, nc * sizeof *p);
        if (!p) return -1;
        *out = p;
        *cap = nc;
    }
    uint16_t flags = (q[i].hash & FP_HASH_TRIPLET) ? FP_HIT_INVARIANT : 0;
    for (size_t k = a; k < b; k++) {
        size_t j = 0;
        while (j < nt && tracks[j] != m->e[k].track) j++;
        if (nt && j == nt) continue;
        (*out)[(*n)++] = (fp_hit_t){m->e[k].track, m->e[k].t, q[i].t, (uint32_t)i, m->e[k].f,
                                    q[i].f, flags};
    }
    return 0;
}

/* Sieve the hits h[0 .. *nh) in place. */
static fp_err_t mem_sieve(const fp_score_opts_t *sieve, const fp_print_t *q, size_t nq,
                          fp_hit_t *h, size_t *nh, char *err, size_t errlen)
{
    fp_sieve_t *sv = NULL;
    if (!*nh) return FP_OK;
    fp_err_t rc = fp_sieve_new(sieve, q, nq, *nh, &sv);
    if (rc != FP_OK) {
        if (err) snprintf(err, errlen, "sieve: %s", fp_strerror(rc));
        return rc;
    }
    fp_sieve_count(sv, h, *nh);
    *nh = fp_sieve_filter(sv, h, *nh);
    fp_sieve_free(sv);
    return FP_OK;
}

/*
 * The postings of each query print's hash.  The query's hashes are priced
 * first (postings times the prints sharing the hash) so that the budget
 * takes the rarest, as the PostgreSQL store does; a plan's first part is
 * what a budget of first_hits takes.
 */
static fp_err_t mem_hits(match_store_t *store, const fp_print_t *q, size_t nq,
                         size_t max_postings, size_t max_hits, const fp_score_opts_t *sieve,
                         match_plan_t *plan, fp_hit_t **out, size_t *n, size_t *cap,
                         size_t *fetched, size_t *skipped, char *err, size_t errlen)
{
    memstore_t *m = (memstore_t *)store;
    size_t n0 = *n;
    if (!m->sealed) {
        if (err) snprintf(err, errlen, "the in-memory store is not sealed");
        return FP_ERR_INVALID;
    }
    size_t *first = malloc((nq ? nq : 1) * sizeof *first);
    uint64_t *cost = calloc(nq ? nq : 1, sizeof *cost);
    uint8_t *chosen = malloc(nq ? nq : 1), *part1 = malloc(nq ? nq : 1);
    fp_err_t rc = FP_OK;
    if (!first || !cost || !chosen || !part1) goto nomem;
    for (size_t i = 0; i < nq; i++) {
        size_t a = lower_bound(m, q[i].hash), b = a;
        while (b < m->n && m->e[b].hash == q[i].hash) b++;
        first[i] = a;
        cost[i] = max_postings && b - a > max_postings ? UINT64_MAX / 2 : b - a;
    }
    match_budget_select(cost, nq, max_hits, chosen);
    size_t in1 = 0, in2 = 0;
    if (plan) {
        match_budget_select(cost, nq, plan->first_hits, part1);
        for (size_t i = 0; i < nq; i++) {
            int ok = chosen[i] && cost[i] && !(max_postings && cost[i] > max_postings);
            in1 += ok && part1[i];
            in2 += ok && !part1[i];
        }
    }
    for (size_t i = 0; i < nq; i++)
        if ((!chosen[i] || (max_postings && cost[i] > max_postings)) && skipped && cost[i])
            (*skipped)++;
    if (in1 && in2) { /* two parts */
        size_t all = 0;
        for (size_t i = 0; i < nq; i++) {
            if (!chosen[i] || (max_postings && cost[i] > max_postings)) continue;
            all += (size_t)cost[i];
            if (part1[i] && mem_emit(m, q, i, first[i], first[i] + (size_t)cost[i], NULL, 0, out,
                                     n, cap))
                goto nomem;
        }
        size_t n1 = *n - n0;
        if (sieve && (rc = mem_sieve(sieve, q, nq, *out + n0, &n1, err, errlen)) != FP_OK)
            goto out;
        *n = n0 + n1;
        int k = plan->decide(plan->ctx, *out + n0, n1, plan->tracks, plan->max_tracks);
        if (k < 0) goto nomem;
        if (k > 0) {
            plan->narrowed = 1;
            plan->ntracks = (size_t)k;
            plan->first_n = n1;
            for (size_t i = 0; i < nq; i++) {
                if (!chosen[i] || part1[i] || (max_postings && cost[i] > max_postings)) continue;
                if (mem_emit(m, q, i, first[i], first[i] + (size_t)cost[i], plan->tracks,
                             (size_t)k, out, n, cap))
                    goto nomem;
            }
            if (fetched) *fetched += all;
            goto out;
        }
        *n = n0; /* the whole lookup instead */
    }
    for (size_t i = 0; i < nq; i++) {
        if (!chosen[i] || (max_postings && cost[i] > max_postings)) continue;
        if (mem_emit(m, q, i, first[i], first[i] + (size_t)cost[i], NULL, 0, out, n, cap))
            goto nomem;
    }
    if (fetched) *fetched += *n - n0;
    /* the hits are in memory already: the sieve only spares the scoring */
    if (sieve && *n > n0) {
        size_t nh = *n - n0;
        rc = mem_sieve(sieve, q, nq, *out + n0, &nh, err, errlen);
        *n = n0 + nh;
    }
    goto out;
nomem:
    if (err) snprintf(err, errlen, "out of memory");
    rc = FP_ERR_NOMEM;
out:
    free(first);
    free(cost);
    free(chosen);
    free(part1);
    return rc;
}

static void mem_free(match_store_t *store)
{
    memstore_t *m = (memstore_t *)store;
    free(m->e);
    free(m);
}

/* Hours of audio held: the recordings' print spans at the default
 * parameters' frame rate. */
static double mem_hours(match_store_t *store)
{
    fp_config_t cfg;
    fp_config_default(&cfg);
    return ((memstore_t *)store)->frames * fp_config_frame_seconds(&cfg) / 3600.0;
}

static const match_store_ops_t mem_ops = {mem_hits, mem_free, mem_hours};

fp_err_t match_memstore_new(match_store_t **out)
{
    memstore_t *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) return FP_ERR_NOMEM;
    m->base.ops = &mem_ops;
    *out = &m->base;
    return FP_OK;
}

fp_err_t match_memstore_add(match_store_t *store, uint32_t track, const fp_print_t *prints,
                            size_t n)
{
    memstore_t *m = (memstore_t *)store;
    if (!m || m->base.ops != &mem_ops || m->sealed || (!prints && n)) return FP_ERR_INVALID;
    if (m->n + n > m->cap) {
        size_t nc = m->cap ? m->cap : 65536;
        while (nc < m->n + n) {
            if (nc > SIZE_MAX / 2 / sizeof(entry_t)) return FP_ERR_NOMEM;
            nc *= 2;
        }
        entry_t *p = realloc(m->e, nc * sizeof *p);
        if (!p) return FP_ERR_NOMEM;
        m->e = p;
        m->cap = nc;
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        m->e[m->n++] = (entry_t){prints[i].hash, track, prints[i].t, prints[i].f, 0};
        if (prints[i].t < lo) lo = prints[i].t;
        if (prints[i].t > hi) hi = prints[i].t;
    }
    if (n) m->frames += (double)(hi - lo + 1);
    return FP_OK;
}

fp_err_t match_memstore_seal(match_store_t *store)
{
    memstore_t *m = (memstore_t *)store;
    if (!m || m->base.ops != &mem_ops) return FP_ERR_INVALID;
    if (!m->sealed && m->n) qsort(m->e, m->n, sizeof *m->e, cmp_entry);
    m->sealed = 1;
    return FP_OK;
}

size_t match_memstore_size(const match_store_t *store)
{
    const memstore_t *m = (const memstore_t *)store;
    return m && m->base.ops == &mem_ops ? m->n : 0;
}
