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
 *
 * A lookup in two parts (store_lookup.c, match_plan_t) marks each group
 * with the part of its key.  Phase 1 runs on one part at a time, into one
 * sieve that keeps the counts of the parts before; phase 2 selects from
 * the groups of the parts counted so far, so after the second part it
 * writes exactly the hits of a lookup in one part.  Or, once the first
 * part's matches are known, the second part's groups are only decoded and
 * cut to those matches' tracks (stri_gather_narrow): no sieve, no
 * selection, for the few postings of a handful of tracks.
 */
#include "store_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GATHER_MAX_THREADS 16
#define GATHER_BLOCK 16       /* groups dealt out at a time in phase 1 */

typedef struct run {
    const stri_gather_t *g;
    size_t from, to;        /* phase 2: the groups g->groups[from .. to) */
    int nth, nruns;         /* phase 1: blocks nth, nth + nruns, ... */
    fp_sieve_t *sieve;      /* phase 1: its own; phase 2: the merged one */
    int phase;
    int part;               /* phase 1: the groups of this part; phase 2:
                               of the parts up to this one */
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

/* Is track one of tracks[0 .. nt) (any track when nt is 0)? */
static inline int wanted(const uint32_t *tracks, size_t nt, uint32_t track)
{
    if (!nt) return 1;
    for (size_t i = 0; i < nt; i++)
        if (tracks[i] == track) return 1;
    return 0;
}

/*
 * The postings of one group, leaving out deleted tracks, other tenants'
 * (when tenant is not 0) and, when nt is not 0, every track not in
 * tracks[0 .. nt) (ascending): copied from a cached row (decoded already;
 * a group's postings are sorted by track, so a track's run is found by
 * bisection) or decoded with a cursor.  Writes to o and of (room for g->count each), the
 * frequencies beside the postings, still packed (store_f_pack): the sieve
 * reads only the 8-byte postings, and unpacking (a table lookup) was a
 * fifth of the decoding, for the ~2% of postings that become hits
 * (refs_hits unpacks those).  Returns the number written, or -1 when the
 * bytes are malformed.
 */
static long group_refs(const store_t *s, int64_t tenant, const uint32_t *tracks, size_t nt,
                       const stri_group_t *grp, fp_ref_t *o, uint16_t *of)
{
    size_t k = 0;
    if (grp->decoded) { /* (read in place instead when nothing is left out) */
        const fp_ref_t *in = grp->decoded;
        const uint16_t *inf = grp->decoded_f;
        if (nt) { /* a few tracks' runs: found by bisection (tracks ascend) */
            for (size_t w = 0; w < nt; w++) {
                if (!live(s, tenant, tracks[w])) continue;
                uint32_t lo = 0, hi = grp->count;
                while (lo < hi) {
                    uint32_t mid = lo + (hi - lo) / 2;
                    if (in[mid].track < tracks[w]) lo = mid + 1;
                    else hi = mid;
                }
                for (; lo < grp->count && in[lo].track == tracks[w]; lo++) {
                    o[k] = in[lo];
                    of[k++] = inf[lo];
                }
            }
            return (long)k;
        }
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
        if (live(s, tenant, track) && wanted(tracks, nt, track)) {
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
        if (grp->part != r->part) continue;
        const fp_ref_t *refs;
        long nr;
        if (grp->decoded && !r->filter) { /* read in place */
            refs = grp->decoded;
            grp->fs = grp->decoded_f;
            nr = grp->count;
        } else {
            fp_ref_t *own = g->refs + grp->at;
            nr = group_refs(g->s, r->filter ? g->tenant : 0, NULL, 0, grp, own,
                            g->fs + grp->at);
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
        if (grp->part > r->part) continue;
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

struct stri_gatherer {
    const stri_gather_t *g;
    stri_pool_t **pool;
    run_t runs[GATHER_MAX_THREADS];
    int nruns;
    int counted;            /* the parts counted so far */
    fp_sieve_t *sieve;      /* their counts (NULL without sieve options) */
};

static db_err_t gather_error(db_err_t rc, char *err, size_t errlen)
{
    if (rc == DB_ERR_CORRUPT)
        return db_errorf(DB_ERR_CORRUPT, err, errlen, "a group of the lookup does not decode");
    if (rc == DB_ERR_INVALID)
        return db_errorf(DB_ERR_INVALID, err, errlen, "the lookup's sieves do not merge");
    return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
}

void stri_gather_close(stri_gatherer_t *G)
{
    if (!G) return;
    fp_sieve_free(G->sieve);
    for (int r = 0; r < G->nruns; r++) {
        if (G->runs[r].sieve != G->sieve) fp_sieve_free(G->runs[r].sieve);
        free(G->runs[r].own);
        free(G->runs[r].idx);
    }
    free(G);
}

db_err_t stri_gather_open(const stri_gather_t *g, stri_pool_t **pool, int threads,
                          size_t min_postings, stri_gatherer_t **out, char *err, size_t errlen)
{
    *out = NULL;
    stri_gatherer_t *G = calloc(1, sizeof *G);
    if (!G) return gather_error(DB_ERR_NOMEM, err, errlen);
    G->g = g;
    G->pool = pool;
    size_t postings = 0, most = 0;
    for (size_t i = 0; i < g->ngroups; i++) {
        postings += g->groups[i].count;
        if (g->groups[i].count > most) most = g->groups[i].count;
    }
    if (!g->sieve_opts || threads < 1) threads = 1; /* all hits: one writer */
    if (threads > GATHER_MAX_THREADS) threads = GATHER_MAX_THREADS;
    if (!min_postings) min_postings = 1;
    int nruns = 1;
    while (nruns < threads && postings / (size_t)(nruns + 1) >= min_postings) nruns++;
    if (nruns > 1) nruns = 1 + pool_grow(pool, nruns - 1);
    G->nruns = nruns;

    /* a store of one tenant's tracks, none deleted, has nothing to leave
     * out of that tenant's lookups: cached postings are read in place */
    const store_t *s = g->s;
    int filter = s->ndead || (g->tenant && s->sole_tenant != (uint32_t)g->tenant);
    /* cut the groups into runs of about postings / nruns postings */
    size_t from = 0, sum = 0;
    for (int r = 0; r < nruns; r++) {
        size_t to = from, goal = postings * (size_t)(r + 1) / (size_t)nruns;
        while (to < g->ngroups && (r == nruns - 1 || sum < goal)) sum += g->groups[to++].count;
        G->runs[r] = (run_t){.g = g, .from = from, .to = to, .nth = r, .nruns = nruns,
                             .rc = DB_OK, .filter = filter};
        G->runs[r].idx = malloc((most ? most : 1) * sizeof *G->runs[r].idx);
        if (!G->runs[r].idx) goto nomem;
        from = to;
    }
    if (g->sieve_opts && fp_sieve_new(g->sieve_opts, g->q, g->nq, g->need, &G->sieve) != FP_OK)
        goto nomem;
    *out = G;
    return DB_OK;
nomem:
    stri_gather_close(G);
    return gather_error(DB_ERR_NOMEM, err, errlen);
}

/*
 * Phase 1 for the groups of one part: run 0 counts into the gatherer's
 * sieve, the others into sieves of their own, merged into it; sealed.
 */
db_err_t stri_gather_count(stri_gatherer_t *G, int part, char *err, size_t errlen)
{
    const stri_gather_t *g = G->g;
    db_err_t rc = DB_OK;
    for (int r = 0; r < G->nruns; r++) {
        run_t *run = &G->runs[r];
        run->part = part;
        run->rc = DB_OK;
        run->sieve = r == 0 ? G->sieve : NULL;
        if (r && G->sieve && fp_sieve_new(g->sieve_opts, g->q, g->nq, g->need, &run->sieve) != FP_OK)
            rc = DB_ERR_NOMEM;
    }
    if (rc == DB_OK) {
        run_all(*G->pool, G->runs, G->nruns, 1);
        for (int r = 0; r < G->nruns && rc == DB_OK; r++) rc = G->runs[r].rc;
    }
    for (int r = 1; r < G->nruns; r++) {
        /* made alike: merging cannot fail */
        if (rc == DB_OK && G->runs[r].sieve && fp_sieve_merge(G->sieve, G->runs[r].sieve) != FP_OK)
            rc = DB_ERR_INVALID;
        fp_sieve_free(G->runs[r].sieve);
        G->runs[r].sieve = NULL;
    }
    if (rc != DB_OK) return gather_error(rc, err, errlen);
    if (G->sieve) fp_sieve_seal(G->sieve);
    G->counted = part;
    return DB_OK;
}

int stri_gather_keeps_none(stri_gatherer_t *G)
{
    return G->sieve && fp_sieve_keeps_none(G->sieve);
}

/* Phase 2 over the groups of the parts counted so far, appended to *out. */
db_err_t stri_gather_select(stri_gatherer_t *G, fp_hit_t **out, size_t *n, size_t *cap,
                            char *err, size_t errlen)
{
    db_err_t rc = DB_OK;
    for (int r = 0; r < G->nruns; r++) {
        run_t *run = &G->runs[r];
        run->part = G->counted;
        run->rc = DB_OK;
        run->sieve = G->sieve;
        run->own_n = 0;
        if (r == 0) {
            run->out = out;
            run->n = n;
            run->cap = cap;
        } else {
            run->out = &run->own;
            run->n = &run->own_n;
            run->cap = &run->own_cap;
        }
    }
    run_all(*G->pool, G->runs, G->nruns, 2);
    for (int r = 0; r < G->nruns && rc == DB_OK; r++) rc = G->runs[r].rc;
    for (int r = 1; r < G->nruns && rc == DB_OK; r++) {
        size_t k = G->runs[r].own_n;
        if (!k) continue;
        if (*n + k > *cap) {
            fp_hit_t *x = realloc(*out, (*n + k) * sizeof *x);
            if (!x) {
                rc = DB_ERR_NOMEM;
                break;
            }
            *out = x;
            *cap = *n + k;
        }
        memcpy(*out + *n, G->runs[r].own, k * sizeof **out);
        *n += k;
    }
    for (int r = 0; r < G->nruns; r++) G->runs[r].sieve = NULL;
    return rc == DB_OK ? DB_OK : gather_error(rc, err, errlen);
}

/*
 * The groups of one part, decoded and cut to tracks[0 .. nt): every hit
 * of those tracks, no sieve.  One thread: a handful of tracks hold few of
 * the postings, and copying a cached group is what is left to do.
 */
db_err_t stri_gather_narrow(stri_gatherer_t *G, int part, const uint32_t *tracks, size_t nt,
                            fp_hit_t **out, size_t *n, size_t *cap, char *err, size_t errlen)
{
    const stri_gather_t *g = G->g;
    db_err_t rc = DB_OK;
    if (!nt) return DB_OK;
    uint32_t *want = malloc(nt * sizeof *want);
    if (!want) return gather_error(DB_ERR_NOMEM, err, errlen);
    for (size_t i = 0; i < nt; i++) { /* ascending, for the bisection */
        size_t j = i;
        for (; j > 0 && want[j - 1] > tracks[i]; j--) want[j] = want[j - 1];
        want[j] = tracks[i];
    }
    for (size_t i = 0; i < g->ngroups && rc == DB_OK; i++) {
        stri_group_t *grp = &g->groups[i];
        if (grp->part != part) continue;
        fp_ref_t *own = g->refs + grp->at;
        uint16_t *ofs = g->fs + grp->at;
        long nr = group_refs(g->s, G->runs[0].filter ? g->tenant : 0, want, nt, grp, own, ofs);
        if (nr < 0) {
            rc = gather_error(DB_ERR_CORRUPT, err, errlen);
            break;
        }
        grp->refs = own;
        grp->fs = ofs;
        grp->count = (uint32_t)nr;
        if (!nr) continue;
        size_t more = (size_t)g->qcount[grp->key] * (size_t)nr;
        if (*n + more > *cap) {
            size_t c2 = *cap ? 2 * *cap : 4096;
            while (c2 < *n + more) c2 *= 2;
            fp_hit_t *x = realloc(*out, c2 * sizeof *x);
            if (!x) {
                rc = gather_error(DB_ERR_NOMEM, err, errlen);
                break;
            }
            *out = x;
            *cap = c2;
        }
        for (uint32_t j = 0; j < g->qcount[grp->key]; j++) {
            uint32_t qi = g->qprint[g->qfirst[grp->key] + j];
            refs_hits(own, ofs, NULL, (size_t)nr, g->q, qi, *out + *n);
            *n += (size_t)nr;
        }
    }
    free(want);
    return rc;
}

db_err_t stri_gather(const stri_gather_t *g, stri_pool_t **pool, int threads, size_t min_postings,
                     fp_hit_t **out, size_t *n, size_t *cap, char *err, size_t errlen)
{
    stri_gatherer_t *G = NULL;
    db_err_t rc = stri_gather_open(g, pool, threads, min_postings, &G, err, errlen);
    if (rc == DB_OK) rc = stri_gather_count(G, 1, err, errlen);
    if (rc == DB_OK) rc = stri_gather_select(G, out, n, cap, err, errlen);
    stri_gather_close(G);
    return rc;
}
