/*
 * store_gather.c -- the second half of a lookup: the groups its rows hold,
 * decoded, sieved and made into hits, on one thread or several.
 *
 * store_lookup.c finds the groups of the clip's keys in the rows (a
 * stri_group_t each, its bytes still encoded).  Here, in two phases:
 *
 *   1. decode every group once into fp_ref_t (8 bytes a posting, its
 *      packed frequency beside it in another array) at its
 *      place in one array, leaving out deleted tracks and other tenants',
 *      and count each posting, for each query print of its key, in the
 *      sieve while it is in the cache;
 *   2. for each group and query print, select what the sieve keeps and
 *      write those hits.
 *
 * Phase 2 needs every count of phase 1 (a band's hits come from many
 * keys).  With several threads, in phase 1 thread r decodes the blocks of
 * GATHER_BLOCK groups numbered r, r + threads, ... (pair keys come before
 * triplet keys, whose postings cost two counters: dealt out this way each
 * thread gets its share of both) and counts them in a sieve of its own;
 * the sieves are merged (counters add) and sealed; in phase 2 the groups
 * are cut into runs of about as many postings, and each thread selects
 * from its run with the merged sieve, read only, into hits of its own,
 * which are then appended in run order, so the hits come out in the same
 * order as with one thread.
 */
#include "store_internal.h"

#include <pthread.h>
#include <stdlib.h>

#define GATHER_MAX_THREADS 16
#define GATHER_BLOCK 16       /* groups dealt out at a time in phase 1 */

typedef struct run {
    const stri_gather_t *g;
    size_t from, to;        /* phase 2: the groups g->groups[from .. to) */
    int nth, nruns;         /* phase 1: blocks nth, nth + nruns, ... */
    fp_sieve_t *sieve;      /* phase 1: its own; phase 2: the merged one */
    int phase;
    db_err_t rc;            /* DB_OK, DB_ERR_CORRUPT or DB_ERR_NOMEM */
    fp_hit_t **out;         /* run 0: the caller's hits; others: their own */
    size_t *n, *cap;
    fp_hit_t *own;
    size_t own_n, own_cap;
    uint32_t *idx;          /* room for the largest group */
    int filter;             /* some postings are left out: deleted tracks,
                               or tracks of other tenants */
} run_t;

/* Is the track's posting one the lookup sees: not deleted, and the
 * tenant's when tenant is not 0? */
static inline int live(const store_t *s, int64_t tenant, uint32_t track)
{
    return !(s->ndead && stri_is_dead(s->dead, s->ndead, track)) &&
           !(tenant && stri_tenant_of(s, track) != (uint32_t)tenant);
}

/*
 * The postings of one group, leaving out deleted tracks and, when tenant
 * is not 0, other tenants': copied from a cached row (decoded already) or
 * decoded with a cursor.  Writes to o and of (room for g->count each), the
 * frequencies beside the postings, still packed (store_f_pack): the sieve
 * reads only the 8-byte postings, and unpacking (a table lookup) was a
 * fifth of the decoding, for the ~2% of postings that become hits
 * (refs_hits unpacks those).  Returns the number written, or -1 when the
 * bytes are malformed.
 */
static long group_refs(const store_t *s, int64_t tenant, const stri_group_t *grp, fp_ref_t *o,
                       uint16_t *of)
{
    size_t k = 0;
    if (grp->decoded) { /* (read in place instead when nothing is left out) */
        const fp_ref_t *in = grp->decoded;
        const uint16_t *inf = grp->decoded_f;
        for (uint32_t i = 0; i < grp->count; i++) {
            o[k] = in[i];
            of[k] = inf[i];
            k += live(s, tenant, in[i].track);
        }
        return (long)k;
    }
    store_group_t g = {0, grp->count, grp->data, grp->len};
    stri_cursor_t c;
    stri_cursor_init(&c, &g);
    uint32_t track, t;
    uint16_t f;
    int st;
    while ((st = stri_cursor_next(&c, &track, &t, &f)) == 1)
        if (live(s, tenant, track)) {
            of[k] = f;
            o[k++] = (fp_ref_t){track, t};
        }
    return st == 0 ? (long)k : -1;
}

/* The hits of query print qi with the postings r[idx[i]] (r[i] when idx is
 * NULL), i < n, their packed frequencies in rf, written to o. */
static void refs_hits(const fp_ref_t *r, const uint16_t *rf, const uint32_t *idx, size_t n,
                      const fp_print_t *q, uint32_t qi, fp_hit_t *o)
{
    fp_hit_t h = {.query_t = q[qi].t, .query_idx = qi, .query_f = q[qi].f,
                  .flags = (q[qi].hash & FP_HASH_TRIPLET) ? FP_HIT_INVARIANT : 0};
    for (size_t i = 0; i < n; i++) {
        size_t j = idx ? idx[i] : i;
        h.track = r[j].track;
        h.ref_t = r[j].t;
        h.ref_f = store_f_unpack(rf[j]);
        o[i] = h;
    }
}

/* Phase 1 of a run: decode and count its blocks of groups. */
static void run_decode(run_t *r)
{
    const stri_gather_t *g = r->g;
    for (size_t i = 0; i < g->ngroups; i++) {
        if ((i / GATHER_BLOCK) % (size_t)r->nruns != (size_t)r->nth) continue;
        stri_group_t *grp = &g->groups[i];
        const fp_ref_t *refs;
        long nr;
        if (grp->decoded && !r->filter) { /* read in place */
            refs = grp->decoded;
            grp->fs = grp->decoded_f;
            nr = grp->count;
        } else {
            fp_ref_t *own = g->refs + grp->at;
            nr = group_refs(g->s, r->filter ? g->tenant : 0, grp, own, g->fs + grp->at);
            refs = own;
            grp->fs = g->fs + grp->at;
        }
        grp->refs = refs;
        if (nr < 0) {
            r->rc = DB_ERR_CORRUPT;
            return;
        }
        grp->count = (uint32_t)nr; /* what is left of the group */
        if (r->sieve)
            for (uint32_t j = 0; j < g->qcount[grp->key]; j++)
                fp_sieve_count_refs(r->sieve, &g->q[g->qprint[g->qfirst[grp->key] + j]], refs,
                                    (size_t)nr);
    }
}

/* Phase 2 of a run: the hits the sieve keeps (all of them without one). */
static void run_select(run_t *r)
{
    const stri_gather_t *g = r->g;
    for (size_t i = r->from; i < r->to; i++) {
        const stri_group_t *grp = &g->groups[i];
        const fp_ref_t *refs = grp->refs;
        size_t nr = grp->count;
        for (uint32_t j = 0; j < g->qcount[grp->key] && nr; j++) {
            uint32_t qi = g->qprint[g->qfirst[grp->key] + j];
            size_t kept = r->sieve ? fp_sieve_select_refs(r->sieve, &g->q[qi], refs, nr, r->idx)
                                   : nr;
            if (*r->n + kept > *r->cap) {
                size_t c2 = *r->cap ? 2 * *r->cap : 4096;
                while (c2 < *r->n + kept) c2 *= 2;
                fp_hit_t *x = realloc(*r->out, c2 * sizeof *x);
                if (!x) {
                    r->rc = DB_ERR_NOMEM;
                    return;
                }
                *r->out = x;
                *r->cap = c2;
            }
            refs_hits(refs, grp->fs, r->sieve ? r->idx : NULL, kept, g->q, qi, *r->out + *r->n);
            *r->n += kept;
        }
    }
}

static void *run_main(void *arg)
{
    run_t *r = arg;
    if (r->phase == 1) run_decode(r);
    else run_select(r);
    return NULL;
}

/*
 * The helper threads of a store handle, kept for its life: a thread made
 * for each lookup starts on its maker's core and waits there for the
 * scheduler to move it, which cost more than the split saved; a helper
 * asleep on a condition wakes on a core of its own.  Helper i runs
 * job[i] when it is set, clears it and counts `pending` down.
 */
struct stri_pool {
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    pthread_t tid[GATHER_MAX_THREADS];
    run_t *job[GATHER_MAX_THREADS];
    int nhelpers, pending, quit;
};

typedef struct helper_arg {
    stri_pool_t *pool;
    int i;
} helper_arg_t;

static void *helper_main(void *arg)
{
    helper_arg_t a = *(helper_arg_t *)arg;
    stri_pool_t *p = a.pool;
    free(arg);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && !p->job[a.i]) pthread_cond_wait(&p->go, &p->lock);
        if (p->quit) break;
        run_t *r = p->job[a.i];
        pthread_mutex_unlock(&p->lock);
        run_main(r);
        pthread_mutex_lock(&p->lock);
        p->job[a.i] = NULL;
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* A pool with want helpers if it can (fewer when threads cannot start);
 * how many it has.  *pp is made on first use. */
static int pool_grow(stri_pool_t **pp, int want)
{
    if (!*pp) {
        stri_pool_t *p = calloc(1, sizeof *p);
        if (!p) return 0;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->go, NULL);
        pthread_cond_init(&p->done, NULL);
        *pp = p;
    }
    stri_pool_t *p = *pp;
    while (p->nhelpers < want && p->nhelpers < GATHER_MAX_THREADS - 1) {
        helper_arg_t *a = malloc(sizeof *a);
        if (!a) break;
        *a = (helper_arg_t){p, p->nhelpers};
        if (pthread_create(&p->tid[p->nhelpers], NULL, helper_main, a)) {
            free(a);
            break;
        }
        p->nhelpers++;
    }
    return p->nhelpers;
}

void stri_pool_free(stri_pool_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nhelpers; i++) pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p);
}

/* Runs 1 .. nruns - 1 on the pool's helpers (it has that many), run 0 on
 * this thread; back when all are done. */
static void run_all(stri_pool_t *p, run_t *runs, int nruns, int phase)
{
    for (int i = 0; i < nruns; i++) runs[i].phase = phase;
    if (nruns > 1) {
        pthread_mutex_lock(&p->lock);
        for (int i = 1; i < nruns; i++) p->job[i - 1] = &runs[i];
        p->pending = nruns - 1;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->lock);
    }
    run_main(&runs[0]);
    if (nruns > 1) {
        pthread_mutex_lock(&p->lock);
        while (p->pending) pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

db_err_t stri_gather(const stri_gather_t *g, stri_pool_t **pool, int threads, size_t min_postings,
                     fp_hit_t **out, size_t *n, size_t *cap, char *err, size_t errlen)
{
    db_err_t rc = DB_OK;
    run_t runs[GATHER_MAX_THREADS];
    int nruns = 1;
    size_t postings = 0, most = 0;
    for (size_t i = 0; i < g->ngroups; i++) {
        postings += g->groups[i].count;
        if (g->groups[i].count > most) most = g->groups[i].count;
    }
    if (!g->sieve_opts || threads < 1) threads = 1; /* all hits: one writer */
    if (threads > GATHER_MAX_THREADS) threads = GATHER_MAX_THREADS;
    if (!min_postings) min_postings = 1;
    while (nruns < threads && postings / (size_t)(nruns + 1) >= min_postings) nruns++;
    if (nruns > 1) nruns = 1 + pool_grow(pool, nruns - 1);

    memset(runs, 0, sizeof runs);
    /* a store of one tenant's tracks, none deleted, has nothing to leave
     * out of that tenant's lookups: cached postings are read in place */
    const store_t *s = g->s;
    int filter = s->ndead || (g->tenant && s->sole_tenant != (uint32_t)g->tenant);
    /* cut the groups into runs of about postings / nruns postings */
    size_t from = 0, sum = 0;
    for (int r = 0; r < nruns; r++) {
        size_t to = from, goal = postings * (size_t)(r + 1) / (size_t)nruns;
        while (to < g->ngroups && (r == nruns - 1 || sum < goal)) sum += g->groups[to++].count;
        runs[r] = (run_t){.g = g, .from = from, .to = to, .nth = r, .nruns = nruns, .rc = DB_OK,
                          .filter = filter};
        if (r == 0) {
            runs[r].out = out;
            runs[r].n = n;
            runs[r].cap = cap;
        } else {
            runs[r].out = &runs[r].own;
            runs[r].n = &runs[r].own_n;
            runs[r].cap = &runs[r].own_cap;
        }
        runs[r].idx = malloc((most ? most : 1) * sizeof *runs[r].idx);
        if (!runs[r].idx) goto nomem;
        if (g->sieve_opts &&
            fp_sieve_new(g->sieve_opts, g->q, g->nq, g->need, &runs[r].sieve) != FP_OK)
            goto nomem;
        from = to;
    }

    run_all(*pool, runs, nruns, 1);
    for (int r = 0; r < nruns; r++)
        if (runs[r].rc != DB_OK) {
            rc = runs[r].rc;
            goto fail;
        }
    /* one sieve, sealed before the threads read it */
    fp_sieve_t *merged = runs[0].sieve;
    for (int r = 1; r < nruns; r++) {
        if (fp_sieve_merge(merged, runs[r].sieve) != FP_OK) { /* made alike: cannot */
            rc = DB_ERR_INVALID;
            goto fail;
        }
        fp_sieve_free(runs[r].sieve);
        runs[r].sieve = merged;
    }
    if (merged) fp_sieve_seal(merged);

    run_all(*pool, runs, nruns, 2);
    for (int r = 0; r < nruns; r++)
        if (runs[r].rc != DB_OK) {
            rc = runs[r].rc;
            goto fail;
        }
    for (int r = 1; r < nruns; r++) {
        size_t k = runs[r].own_n;
        if (!k) continue;
        if (*n + k > *cap) {
            fp_hit_t *x = realloc(*out, (*n + k) * sizeof *x);
            if (!x) goto nomem;
            *out = x;
            *cap = *n + k;
        }
        memcpy(*out + *n, runs[r].own, k * sizeof **out);
        *n += k;
    }
    goto done;
nomem:
    rc = DB_ERR_NOMEM;
fail:
    if (rc == DB_ERR_CORRUPT)
        rc = db_errorf(DB_ERR_CORRUPT, err, errlen, "a group of the lookup does not decode");
    else if (rc == DB_ERR_INVALID)
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "the lookup's sieves do not merge");
    else
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
done:
    for (int r = 0; r < nruns; r++) {
        if (r == 0 || runs[r].sieve != runs[0].sieve) fp_sieve_free(runs[r].sieve);
        free(runs[r].own);
        free(runs[r].idx);
    }
    return rc;
}
