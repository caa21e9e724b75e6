/*
 * match_decide.c -- which scored candidates are reported, and which of them
 * are copies of one another.
 *
 * A catalog holds the same recording more than once: the single, the album
 * and the compilation, a label's and its distributor's delivery of one
 * master, two tenants who both hold it.  A clip of that recording aligns
 * with every copy, and each alignment is made of the same query prints:
 * the copies explain the same audio.  Two recordings mixed into one clip,
 * or a chance alignment, are made of other prints.  So candidates are told
 * apart by the query prints they align, not by their track ids:
 *
 *   - candidate k is a copy of a reported match m when most of k's aligned
 *     query prints (COPY_SHARE) are m's too; it is reported with m, as one
 *     of its copies, when it passes min_frames itself;
 *   - the runner-up of a candidate, which it must beat min_ratio times over
 *     the same part of the query, is the strongest alignment of another
 *     track that is not such a copy: different audio.
 *
 * A chance alignment of a track aligns query prints at random, so it shares
 * with a real match about the share of the query that match aligns; it is
 * then weak, and min_frames keeps it out whichever side it falls on.
 *
 * The aligned prints of a candidate are found from the hits (those of its
 * track on its line inside its query span, mi_hit_aligned: the same as its
 * evidence points) only when a rule needs them: for candidates strong enough to decide something.
 *
 * Chance.  Music that is not in the catalog still aligns with it: a
 * sustained chord, a drum loop, a scale shared by two pieces line up a few
 * prints at one offset.  The evaluation's negative clips (bench/eval: 1 134
 * clips of 5, 10 and 60 s of music outside the catalog) aligned, per second
 * of query, this many candidates of k frames or more with the evaluation's
 * catalog (52 tracks, 4.15 hours; `eval --dump-chance`):
 *
 *   k                      6        8        10       11       12
 *   unscaled (speed 1)     2.1e-1   2.1e-2   1.4e-3   3.7e-4   9.3e-5
 *   time-scaled search     4.6e-2   8.8e-3   1.2e-3   1.9e-4   -
 *
 * falling by a factor of 3-4.5 a frame unscaled, 2.2-2.9 scaled (whose
 * speed search tries more lines).  In proportion to the query's length
 * (5, 10 and 60 s clips alike), and growing with the catalog's size as its
 * hours to the power 0.66-0.75: against catalogs of 13, 26 and 52 of the
 * tracks (0.85, 2.0 and 4.15 hours) a 10 s clip met 0.08, 0.17 and 0.27
 * chance candidates of 8 frames, a 60 s one 0.8, 1.3 and 2.5.
 * match_chance() is that model with its tail taken heavier than measured
 * (e^-1.1 a frame unscaled, e^-0.9 scaled, from 10 frames on), since rarer
 * alignments were too few to measure, and the catalog's growth at the
 * power 0.75.
 *
 * A large catalog's lookup fetches only the rarest keys of a query within
 * its budget of hits (em_match.h, max_hits): of a chance alignment's
 * prints, only that share is found, and of its K frames a binomial share
 * remains, whose tail falls faster (match_chance()).  A real match loses
 * the same share, but from far more frames.  So the bar for a claim rises
 * with the length of the query and the hours of the catalog, and falls
 * where the budget thins both: at the default max_chance of 0.01 a 10 s
 * clip against the 4 hours of the evaluation needs the default min_frames
 * of 12, as does a 60 s upload, a 10-minute one 15; a 10 s clip against
 * 100 000 tracks (8 000 hours) with every print fetched 16 (17 for a
 * time-scaled alignment), with a third of them fetched the floor of 12.
 */
#include "em_match.h"
#include "match_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A candidate shares this share of its aligned query prints with a match:
 * a copy of it. */
#define COPY_SHARE 0.5

/* The chance model (above): per query second, against a catalog of
 * CHANCE_HOURS hours, the candidates of CHANCE_K0 frames or more; the fall
 * per frame beyond; the power of the catalog's hours. */
#define CHANCE_K0 10.0
#define CHANCE_HOURS 4.15
#define CHANCE_RATE_UNSCALED 1.4e-3
#define CHANCE_RATE_SCALED 1.2e-3
#define CHANCE_FALL_UNSCALED 1.1
#define CHANCE_FALL_SCALED 0.9
#define CHANCE_HOURS_POWER 0.75
#define CHANCE_MIN_SHARE 0.05 /* the share of fetched prints taken at least */

double match_chance(uint32_t frames, int scaled, double query_seconds, double catalog_hours,
                    double share)
{
    double rate = scaled ? CHANCE_RATE_SCALED : CHANCE_RATE_UNSCALED;
    double fall = scaled ? CHANCE_FALL_SCALED : CHANCE_FALL_UNSCALED;
    double q = query_seconds > 1.0 ? query_seconds : 1.0;
    double h = catalog_hours > 0 ? pow(catalog_hours / CHANCE_HOURS, CHANCE_HOURS_POWER) : 0;
    /* a chance alignment of K frames, its prints kept with probability
     * share, keeps Binomial(K, share): a tail falling by p a frame falls by
     * p * share / (1 - p * (1 - share)) */
    double f = share > CHANCE_MIN_SHARE ? (share < 1.0 ? share : 1.0) : CHANCE_MIN_SHARE;
    double p = exp(-fall), pf = p * f / (1.0 - p * (1.0 - f));
    return q * h * rate * exp(fall * CHANCE_K0) * pow(pf, (double)frames);
}

typedef struct decide {
    const fp_candidate_t *cand;
    size_t nc;
    const fp_hit_t *hits;
    size_t nh;
    uint32_t **set;    /* per candidate: its aligned query prints, sorted, */
    size_t *nset;      /* ... how many; set[k] NULL until needed */
    uint8_t *known;    /* set[k] computed */
} decide_t;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The distinct query prints candidate k aligns, computed once.  0, or -1
 * when out of memory. */
static int aligned_set(decide_t *d, size_t k)
{
    if (d->known[k]) return 0;
    const fp_candidate_t *c = &d->cand[k];
    size_t n = 0, cap = 0;
    uint32_t *s = NULL;
    for (size_t i = 0; i < d->nh; i++) {
        const fp_hit_t *h = &d->hits[i];
        if (!mi_hit_aligned(h, c)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            uint32_t *x = realloc(s, cap * sizeof *x);
            if (!x) {
                free(s);
                return -1;
            }
            s = x;
        }
        s[n++] = h->query_idx;
    }
    if (n > 1) qsort(s, n, sizeof *s, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || s[u - 1] != s[i]) s[u++] = s[i];
    d->set[k] = s;
    d->nset[k] = u;
    d->known[k] = 1;
    return 0;
}

/* Is candidate k a copy of candidate m (most of k's prints are m's)?  1
 * yes, 0 no, -1 out of memory. */
static int is_copy(decide_t *d, size_t k, size_t m)
{
    if (d->cand[k].track == d->cand[m].track) return 0;
    if (aligned_set(d, k) || aligned_set(d, m)) return -1;
    const uint32_t *a = d->set[k], *b = d->set[m];
    size_t na = d->nset[k], nb = d->nset[m], i = 0, j = 0, both = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) i++;
        else if (a[i] > b[j]) j++;
        else {
            both++;
            i++;
            j++;
        }
    }
    return na && (double)both >= COPY_SHARE * (double)na;
}

static int spans_meet(const fp_candidate_t *a, const fp_candidate_t *b)
{
    return !(a->query_end < b->query_start || a->query_start > b->query_end);
}

/*
 * Does candidate i beat every rival min_ratio times: every other track's
 * alignment over part of its query time that is not a copy of it?  1 yes,
 * 0 no, -1 out of memory.  Candidates come strongest first, so the search
 * stops at the first one too weak to matter.
 */
static int beats_rivals(decide_t *d, size_t i, double ratio)
{
    const fp_candidate_t *c = &d->cand[i];
    for (size_t k = 0; k < d->nc; k++) {
        const fp_candidate_t *r = &d->cand[k];
        if (ratio * (double)r->frames <= (double)c->frames) {
            if (k > i) break; /* all that follow are weaker still */
            continue;
        }
        if (k == i || r->track == c->track || !spans_meet(r, c)) continue;
        int cp = is_copy(d, k, i);
        if (cp < 0) return -1;
        if (!cp) return 0;
    }
    return 1;
}

/* The chance of candidate c in this query (0 when the test is off). */
static double chance_of(const match_evidence_t *ev, const fp_candidate_t *c)
{
    if (ev->catalog_hours <= 0) return 0;
    return match_chance(c->frames, c->speed != 1.0, ev->query_seconds, ev->catalog_hours,
                        ev->fetched_share);
}

fp_err_t match_decide(const match_evidence_t *ev, const match_opts_t *o, match_pick_t **out,
                      size_t *n_out)
{
    const fp_candidate_t *cand = ev->cand;
    size_t nc = ev->nc;
    decide_t d = {cand, nc, ev->hits, ev->nh, NULL, NULL, NULL};
    match_pick_t *pick = NULL;
    size_t np = 0, nmatch = 0;
    fp_err_t rc = FP_ERR_NOMEM;
    *out = NULL;
    *n_out = 0;
    if (!nc) return FP_OK;
    d.set = calloc(nc, sizeof *d.set);
    d.nset = calloc(nc, sizeof *d.nset);
    d.known = calloc(nc, 1);
    pick = malloc(nc * sizeof *pick);
    if (!d.set || !d.nset || !d.known || !pick) goto out;
    for (size_t i = 0; i < nc; i++) {
        if (cand[i].frames < o->min_frames) continue;
        double chance = chance_of(ev, &cand[i]);
        if (o->max_chance > 0 && chance > o->max_chance) continue;
        /* a copy of a match already taken? */
        size_t of = SIZE_MAX;
        for (size_t p = 0; p < np && of == SIZE_MAX; p++) {
            if (pick[p].copy_of != SIZE_MAX || !spans_meet(&cand[i], &cand[pick[p].cand]))
                continue;
            int cp = is_copy(&d, i, pick[p].cand);
            if (cp < 0) goto out;
            if (cp) of = p;
        }
        if (of == SIZE_MAX) {
            if (nmatch == o->max_results) continue;
            if (o->min_ratio > 0) {
                int b = beats_rivals(&d, i, o->min_ratio);
                if (b < 0) goto out;
                if (!b) continue;
            }
            nmatch++;
        }
        pick[np++] = (match_pick_t){i, of, chance};
    }
    rc = FP_OK;
    if (np) {
        *out = pick;
        *n_out = np;
        pick = NULL;
    }
out:
    if (d.set)
        for (size_t k = 0; k < nc; k++) free(d.set[k]);
    free(d.set);
    free(d.nset);
    free(d.known);
    free(pick);
    return rc;
}
