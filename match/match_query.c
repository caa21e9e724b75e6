/*
 * match_query.c -- hits from the store, offset voting, the decision rule,
 * and what kind of change separates each match from its reference.
 *
 * The decision rule is the number of distinct query frames an alignment
 * covers.  Counting prints would let one anchor's burst of prints (a
 * sustained note shared by two recordings produces several at the same
 * frame) look like evidence; a real match aligns anchors all along the
 * clip.  On the evaluation corpus no negative clip reached 10 frames while
 * 98.6% of the distorted catalog clips reached 12 (docs/benchmarks.md).
 */
#include "em_match.h"
#include "match_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void match_opts_default(match_opts_t *o)
{
    fp_config_t cfg;
    fp_config_default(&cfg);
    memset(o, 0, sizeof *o);
    o->min_frames = 12;
    o->max_postings = 0;
    o->max_results = 10;
    o->frame_seconds = fp_config_frame_seconds(&cfg);
    o->min_ratio = 2.0;
    o->max_hits = MATCH_DEFAULT_MAX_HITS;
    o->first_hits = MATCH_DEFAULT_FIRST_HITS;
    o->max_chance = MATCH_DEFAULT_MAX_CHANCE;
}

void match_score_opts(const match_opts_t *o, fp_score_opts_t *so)
{
    fp_score_opts_default(so);
    so->min_count = o->min_frames > 1 ? o->min_frames : 1;
    so->max_candidates = o->max_results * 4 + 16;
    if (o->unscaled) so->min_speed = so->max_speed = 1.0;
}

void match_factors(const match_result_t *r, double *speed, double *tempo, double *pitch_st)
{
    *speed = *tempo = 1.0;
    *pitch_st = 0.0;
    switch (r->change) {
    case MATCH_SPEED: *speed = r->speed; break;
    case MATCH_TEMPO: *tempo = r->speed; break;
    case MATCH_PITCH: *pitch_st = r->pitch_semitones; break;
    case MATCH_MIXED:
        *tempo = r->speed;
        *pitch_st = r->pitch_semitones;
        break;
    default: break;
    }
}

void match_results_free(match_result_t *r, size_t n)
{
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].points);
        match_results_free(r[i].copies, r[i].ncopies);
    }
    free(r);
}

/*
 * The hits on a candidate's line (within +-1.5 frames) and span, as
 * (query, reference) frame pairs, at most max of them, ordered by offset
 * (ref - query) and then by position in h: when more than max qualify,
 * the first max in that order are kept, whatever the order of h.
 */
typedef struct point {
    int64_t offset;
    size_t idx;
} point_t;

static int cmp_point(const void *a, const void *b)
{
    const point_t *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static fp_err_t gather_points(const fp_hit_t *h, size_t n, const fp_candidate_t *c, size_t max,
                              match_result_t *r)
{
    point_t *pt = NULL;
    size_t np = 0, cap = 0;
    r->points = malloc(2 * max * sizeof *r->points);
    if (!r->points) return FP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!mi_hit_aligned(&h[i], c)) continue;
        if (np == cap) {
            cap = cap ? 2 * cap : 256;
            point_t *x = realloc(pt, cap * sizeof *x);
            if (!x) {
                free(pt);
                return FP_ERR_NOMEM;
            }
            pt = x;
        }
        pt[np++] = (point_t){(int64_t)h[i].ref_t - (int64_t)h[i].query_t, i};
    }
    if (np > 1) qsort(pt, np, sizeof *pt, cmp_point);
    size_t k = np < max ? np : max;
    for (size_t i = 0; i < k; i++) {
        r->points[2 * i] = h[pt[i].idx].query_t;
        r->points[2 * i + 1] = h[pt[i].idx].ref_t;
    }
    free(pt);
    r->npoints = k;
    /* insertion sort by query frame (stable: ties keep the offset order) */
    for (size_t i = 1; i < k; i++) {
        uint32_t q = r->points[2 * i], f = r->points[2 * i + 1];
        size_t j = i;
        for (; j > 0 && r->points[2 * (j - 1)] > q; j--) {
            r->points[2 * j] = r->points[2 * (j - 1)];
            r->points[2 * j + 1] = r->points[2 * (j - 1) + 1];
        }
        r->points[2 * j] = q;
        r->points[2 * j + 1] = f;
    }
    return FP_OK;
}

const char *match_change_name(match_change_t c)
{
    static const char *names[] = {"same", "speed", "tempo", "pitch", "mixed"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "unknown";
}

/*
 * Name the change.  Time scale and pitch are measured separately (the line
 * of the alignment, and the ratio of anchor frequencies); within 0.6% of
 * each other, or of 1, they count as equal.
 */
static match_change_t classify(double speed, double pitch)
{
    const double eq = 0.006;
    int time_changed = fabs(speed - 1.0) > eq;
    int pitch_known = pitch > 0.0;
    int pitch_changed = pitch_known && fabs(pitch - 1.0) > eq;
    if (!time_changed && !pitch_changed) return MATCH_SAME;
    if (!pitch_known) return MATCH_MIXED;
    if (time_changed && fabs(pitch / speed - 1.0) <= eq) return MATCH_SPEED;
    if (time_changed && !pitch_changed) return MATCH_TEMPO;
    if (!time_changed && pitch_changed) return MATCH_PITCH;
    return MATCH_MIXED;
}

void match_describe(const fp_candidate_t *c, double fs, match_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->track = c->track;
    r->frames = c->frames;
    r->prints = c->count;
    r->query_start = c->query_start * fs;
    r->query_end = c->query_end * fs;
    r->ref_start = c->ref_start * fs;
    r->ref_end = c->ref_end * fs;
    r->matched_seconds = r->query_end - r->query_start;
    r->speed = c->speed;
    r->pitch = c->pitch;
    r->pitch_semitones = c->pitch > 0.0 ? 12.0 * log2(c->pitch) : 0.0;
    r->change = classify(c->speed, c->pitch);
    r->offset = c->offset;
}

/* One pick described, with its evidence when asked for. */
static fp_err_t describe_one(const fp_candidate_t *c, const match_pick_t *p, const fp_hit_t *h,
                             size_t nh, const match_opts_t *o, match_result_t *r)
{
    match_describe(c, o->frame_seconds, r);
    r->chance = p->chance;
    r->confidence = exp(-p->chance);
    return o->evidence ? gather_points(h, nh, c, o->evidence, r) : FP_OK;
}

/*
 * The results of the picks (match_decide()): one a match, its copies
 * attached to it in pick order.  *out gets *n_out results (NULL, 0 when
 * there are none).
 */
static fp_err_t describe_picks(const fp_candidate_t *cand, const match_pick_t *pick, size_t np,
                               const fp_hit_t *h, size_t nh, const match_opts_t *o,
                               match_result_t **out, size_t *n_out)
{
    size_t nm = 0, *slot = NULL;
    match_result_t *res = NULL;
    fp_err_t rc = FP_ERR_NOMEM;
    *out = NULL;
    *n_out = 0;
    if (!np) return FP_OK;
    res = calloc(np, sizeof *res);
    slot = malloc(np * sizeof *slot); /* a match pick's place in res */
    if (!res || !slot) goto out;
    for (size_t p = 0; p < np; p++) {
        const fp_candidate_t *c = &cand[pick[p].cand];
        if (pick[p].copy_of == SIZE_MAX) {
            slot[p] = nm;
            rc = describe_one(c, &pick[p], h, nh, o, &res[nm++]);
            if (rc != FP_OK) goto out;
            continue;
        }
        match_result_t *m = &res[slot[pick[p].copy_of]];
        match_result_t *x = realloc(m->copies, (m->ncopies + 1) * sizeof *x);
        rc = FP_ERR_NOMEM;
        if (!x) goto out;
        m->copies = x;
        rc = describe_one(c, &pick[p], h, nh, o, &m->copies[m->ncopies++]);
        if (rc != FP_OK) goto out;
    }
    rc = FP_OK;
    *out = res;
    *n_out = nm;
    res = NULL;
out:
    match_results_free(res, nm);
    free(slot);
    return rc;
}

/* A lookup in two parts (match_plan_t): what decide() needs. */
typedef struct plan_ctx {
    const match_opts_t *o;
    const fp_score_opts_t *so;
    uint32_t qlo, qhi;      /* the query's first and last print frames */
    double query_seconds;   /* and the seconds between them */
    double hours;           /* the catalog's size (match_evidence_t) */
} plan_ctx_t;

typedef struct span {
    uint32_t start, end;
} span_t;

static int cmp_span(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Do the spans s[0 .. n) cover lo .. hi but for gaps of at most gap frames? */
static int spans_cover(span_t *s, size_t n, uint32_t lo, uint32_t hi, uint32_t gap)
{
    qsort(s, n, sizeof *s, cmp_span);
    uint64_t reached = lo;
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)s[i].start > reached + gap) return 0;
        if (s[i].end > reached) reached = s[i].end;
    }
    return (uint64_t)hi <= reached + gap;
}

/* A first part's match is clear from twice min_frames, and never below
 * twice the default min_frames: a caller that lowers min_frames for weak
 * matches does not lower what ends a lookup early. */
#define CLEAR_FRAMES 24

size_t match_clear_tracks(const match_evidence_t *ev, const match_opts_t *o, uint32_t qlo,
                          uint32_t qhi, uint32_t *tracks, size_t max)
{
    size_t k = 0, ns = 0, np = 0;
    match_pick_t *pick = NULL;
    span_t *spans = NULL;
    const fp_candidate_t *cand = ev->cand;
    if (match_decide(ev, o, &pick, &np) != FP_OK || !np) goto unclear;
    if (!(spans = malloc(np * sizeof *spans))) goto unclear; /* (not clear, which is safe) */
    for (size_t p = 0; p < np; p++) {
        const fp_candidate_t *c = &cand[pick[p].cand];
        if (pick[p].copy_of == SIZE_MAX) {
            if (c->frames < 2 * o->min_frames || c->frames < CLEAR_FRAMES) goto unclear;
            spans[ns++] = (span_t){c->query_start, c->query_end};
        }
        size_t j = 0;
        while (j < k && tracks[j] != c->track) j++;
        if (j == k) {
            if (k == max) goto unclear;
            tracks[k++] = c->track;
        }
    }
    uint32_t gap = (uint32_t)ceil(1.0 / o->frame_seconds);
    if (!spans_cover(spans, ns, qlo, qhi, gap)) goto unclear;
    free(spans);
    free(pick);
    return k;
unclear:
    free(spans);
    free(pick);
    return 0;
}

/* The first part's hits, scored, then judged by match_clear_tracks. */
static int decide_parts(void *arg, const fp_hit_t *h, size_t n, uint32_t *tracks, size_t max)
{
    plan_ctx_t *c = arg;
    fp_candidate_t *cand = NULL;
    size_t nc = 0;
    fp_err_t rc = fp_score_hits(h, n, c->so, &cand, &nc);
    if (rc == FP_ERR_NOMEM) return -1;
    /* (the first part's share of the fetched prints is not known yet:
     * taken as all, which judges it no less strictly than the whole) */
    match_evidence_t ev = {cand, nc, h, n, c->query_seconds, c->hours, 1.0};
    size_t k = rc == FP_OK ? match_clear_tracks(&ev, c->o, c->qlo, c->qhi, tracks, max) : 0;
    free(cand);
    return (int)k;
}

size_t match_keep_tracks(fp_hit_t *h, size_t n, const uint32_t *tracks, size_t nt)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < nt && tracks[j] != h[i].track) j++;
        if (j < nt) h[k++] = h[i];
    }
    return k;
}

fp_err_t match_query(match_store_t *store, const fp_print_t *q, size_t nq,
                     const match_opts_t *opts, match_result_t **out, size_t *n_out,
                     match_stats_t *st, char *err, size_t errlen)
{
    match_opts_t o;
    fp_hit_t *hits = NULL;
    size_t nh = 0, cap = 0, skipped = 0, nc = 0, nr = 0;
    fp_candidate_t *cand = NULL;
    match_result_t *res = NULL;
    uint32_t *tracks = NULL;
    match_pick_t *pick = NULL;
    size_t np = 0;
    fp_err_t rc;

    *out = NULL;
    *n_out = 0;
    if (opts) o = *opts;
    else match_opts_default(&o);
    fp_score_opts_t so;
    match_score_opts(&o, &so);
    /* the store sieves the hits for these options as it makes them */
    size_t fetched = 0;
    plan_ctx_t pc = {&o, &so, UINT32_MAX, 0, 0, o.catalog_hours};
    for (size_t i = 0; i < nq; i++) {
        if (q[i].t < pc.qlo) pc.qlo = q[i].t;
        if (q[i].t > pc.qhi) pc.qhi = q[i].t;
    }
    pc.query_seconds = nq ? (double)(pc.qhi - pc.qlo + 1) * o.frame_seconds : 0;
    /* the catalog's size for the test against chance: the caller's, or
     * the store's (unknown: no test) */
    if (pc.hours <= 0) pc.hours = store->ops->hours ? store->ops->hours(store) : -1;
    /* room for the first part's matches and their copies */
    size_t room = so.max_candidates;
    match_plan_t plan = {o.first_hits, decide_parts, &pc, NULL, room, 0, 0, 0};
    int two = o.first_hits && o.max_results && (!o.max_hits || o.first_hits < o.max_hits);
    if (two) {
        plan.tracks = tracks = malloc(room * sizeof *tracks);
        if (!tracks) {
            rc = FP_ERR_NOMEM;
            if (err) snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    rc = store->ops->hits(store, q, nq, o.max_postings, o.max_hits, &so, two ? &plan : NULL,
                          &hits, &nh, &cap, &fetched, &skipped, err, errlen);
    if (rc != FP_OK) goto done;
    /* narrowed: the first part's hits of the chosen tracks, and the rest's */
    if (two && plan.narrowed) {
        size_t k = match_keep_tracks(hits, plan.first_n, plan.tracks, plan.ntracks);
        memmove(hits + k, hits + plan.first_n, (nh - plan.first_n) * sizeof *hits);
        nh = k + (nh - plan.first_n);
    }
    rc = fp_score_hits(hits, nh, &so, &cand, &nc);
    if (rc != FP_OK) {
        if (err) snprintf(err, errlen, "scoring failed: %s", fp_strerror(rc));
        goto done;
    }
    match_evidence_t ev = {cand, nc, hits, nh, pc.query_seconds, pc.hours,
                           nq ? 1.0 - (double)skipped / (double)nq : 1.0};
    rc = match_decide(&ev, &o, &pick, &np);
    if (rc != FP_OK) {
        if (err) snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = describe_picks(cand, pick, np, hits, nh, &o, &res, &nr);
    if (rc != FP_OK) {
        if (err) snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (st) *st = (match_stats_t){nq, fetched, nh, skipped, nc, two && plan.narrowed};
    if (nr) {
        *out = res;
        *n_out = nr;
        res = NULL;
    }
done:
    match_results_free(res, nr);
    free(pick);
    free(tracks);
    free(cand);
    free(hits);
    return rc;
}
