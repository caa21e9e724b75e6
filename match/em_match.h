/*
 * em_match.h -- from a clip's prints to verdicts: which catalog recordings
 * it contains, where, how strongly, and whether it was sped up, stretched
 * or pitch-shifted.
 *
 *   match_store.c     the store interface, and a store held in memory
 *   match_query.c     hits from the store, offset voting (fp_score_hits)
 *                     and the factors of each match
 *   match_decide.c    the decision: which candidates are reported, and
 *                     which are copies of one recording in the catalog
 *   cmd_match.c       `earmark match` (not part of the library)
 *
 * A store is anything that can answer "which postings have these hashes":
 * the in-memory store below, the PostgreSQL catalog.  The matcher does not
 * know which one it talks to.
 *
 * Errors are fp_err_t (the fingerprint core's codes) with a message in the
 * caller's buffer.  Threads: a store is read by many threads at once once
 * it is sealed; a query uses no shared state.  Ownership as in
 * earmark_fp.h: *_free(NULL) is a no-op, out-arrays are the caller's to
 * free().
 */
#ifndef EARMARK_MATCH_H
#define EARMARK_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "earmark_fp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Stores                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct match_store match_store_t;

/*
 * A lookup in two parts.  Of the hashes the budget takes, the store first
 * gathers those a budget of first_hits alone would take (the rarest) and
 * passes their hits, sieved as such a lookup would return them, to
 * decide(ctx, hits, n, tracks, max_tracks), tracks being the plan's own
 * (room for max_tracks, the caller's).  Then:
 *   - decide returns 0: the store gathers the other hashes too and writes,
 *     in place of the first part's hits, exactly the hits of the lookup in
 *     one part (the first part's counts are kept, not made again);
 *   - decide writes k tracks to tracks[0 .. k), 1 <= k <= max_tracks, and
 *     returns k: the store keeps the first part's hits (first_n of them,
 *     at the start of the lookup's) and appends the other hashes' hits of
 *     those tracks only, all of them, unsieved (narrowed = 1, ntracks =
 *     k): the rest of the catalog's postings of those hashes are never
 *     sieved or scored;
 *   - decide returns -1: out of memory; the lookup fails (FP_ERR_NOMEM).
 * When first_hits would take every hash the budget takes (a small
 * catalog), or none, the lookup has one part and decide is not called;
 * nor is it when the first part's hits, sieved, are none (it goes on in
 * full).
 * hits is the store's and good only during the call.
 */
typedef struct match_plan {
    size_t first_hits;      /* the first part's budget */
    int (*decide)(void *ctx, const fp_hit_t *hits, size_t n, uint32_t *tracks,
                  size_t max_tracks);
    void *ctx;
    uint32_t *tracks;       /* room for max_tracks: what decide chose */
    size_t max_tracks;
    int narrowed;           /* set by the store: 1 when decide chose tracks, */
    size_t ntracks;         /* ... how many, */
    size_t first_n;         /* ... and the first part's hits */
} match_plan_t;

/*
 * What a store implements.  `hits` appends to *out (grown with realloc;
 * *n used, *cap allocated) one fp_hit_t for every posting of every query
 * print's hash, at most max_postings postings per hash (more mean the hash
 * says nothing: a hash that common is skipped and counted in *skipped).
 * With max_hits (0: none) it keeps to a budget: the rarest hashes first
 * (match_budget_select()), the others skipped and counted; a large catalog
 * then costs what a small one does, and the hashes it drops are the ones
 * that tell recordings apart least.  With `sieve` (NULL: none) it returns
 * only the hits an fp_sieve_t made with those score options keeps (see
 * earmark_fp.h), counting in *fetched (when not NULL) every hit before the
 * sieve: on a large catalog a clip's chance hits are then never held.
 * With `plan` (NULL: one part) the lookup goes in two parts as
 * match_plan_t says.
 */
typedef struct match_store_ops {
    fp_err_t (*hits)(match_store_t *store, const fp_print_t *q, size_t nq, size_t max_postings,
                     size_t max_hits, const fp_score_opts_t *sieve, match_plan_t *plan,
                     fp_hit_t **out, size_t *n, size_t *cap, size_t *fetched, size_t *skipped,
                     char *err, size_t errlen);
    void (*free)(match_store_t *store);
    /* Hours of audio in the recordings a lookup searches (the size of the
     * catalog, for the chance of an alignment: match_chance()), or a
     * negative number when unknown.  Called after hits; may be NULL. */
    double (*hours)(match_store_t *store);
} match_store_ops_t;

struct match_store {
    const match_store_ops_t *ops;
};

/*
 * Choose, among n hashes with cost[i] hits each (postings times the query
 * prints of the hash), the cheapest first while the total stays within
 * max_hits; chosen[i] = 1 for those taken.  Returns how many were taken.
 * Ties keep the order given.  max_hits 0 takes them all.
 */
size_t match_budget_select(const uint64_t *cost, size_t n, uint64_t max_hits, uint8_t *chosen);

/* Release any store.  NULL is a no-op. */
void match_store_free(match_store_t *store);

/*
 * A store in memory: add recordings, seal, query.  Prints are copied.
 * Adding after sealing is FP_ERR_INVALID.  Memory: 16 bytes per print.
 * Its size for the test against chance is the span of each recording's
 * prints, summed (a recording added in two calls counts twice).
 */
fp_err_t match_memstore_new(match_store_t **out);
fp_err_t match_memstore_add(match_store_t *store, uint32_t track, const fp_print_t *prints,
                            size_t n);
fp_err_t match_memstore_seal(match_store_t *store);
/* Prints held. */
size_t match_memstore_size(const match_store_t *store);

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

/* How a match differs from its reference. */
typedef enum match_change {
    MATCH_SAME = 0,     /* same speed and pitch */
    MATCH_SPEED = 1,    /* played faster or slower: tempo and pitch together */
    MATCH_TEMPO = 2,    /* time-stretched, pitch kept */
    MATCH_PITCH = 3,    /* pitch-shifted, tempo kept */
    MATCH_MIXED = 4     /* tempo and pitch changed by different factors */
} match_change_t;

/* "same", "speed", "tempo", "pitch", "mixed". */
const char *match_change_name(match_change_t c);

typedef struct match_opts {
    uint32_t min_frames;   /* a match aligns at least this many distinct
                              query frames (default 12) */
    size_t max_postings;   /* per hash; more and the hash is skipped
                              (default 0: no such cap; the budget below
                              decides which hashes are too common) */
    size_t max_results;    /* matches returned, best first (default 10) */
    int unscaled;          /* 1: do not search speed, tempo or pitch changes */
    double frame_seconds;  /* seconds per frame of the prints (default: the
                              default fp_config_t's) */
    double min_ratio;      /* ... and at least this many times the frames of
                              any other recording's alignment over the same
                              part of the query (default 2; 0: off).  Chance
                              alignments of music that is not in the catalog
                              reach 15-22 frames under the time-scaled search,
                              but so does the runner-up: the ratio is what
                              keeps them out (docs/benchmarks.md) */
    size_t evidence;       /* keep up to this many aligned points per match
                              (match_result_t.points; default 0: none) */
    size_t max_hits;       /* hits fetched per query, the rarest hashes
                              first (default MATCH_DEFAULT_MAX_HITS; 0: no
                              limit).  The budget bounds a lookup's work at
                              any catalog size; on a small catalog it never
                              binds.  At the same number of hits it keeps
                              more recall than a fixed cap per hash, because
                              it drops each clip's commonest hashes rather
                              than every hash above a threshold:
                              docs/benchmarks.md has the measured trade-off */
    double max_chance;     /* a match is claimed when alignments as strong
                              arise by chance at most this often per query
                              (match_chance(); default
                              MATCH_DEFAULT_MAX_CHANCE; 0: no such test) */
    double catalog_hours;  /* the catalog's size for that test, in hours of
                              audio (default 0: what the store says) */
    size_t first_hits;     /* a lookup in two parts (match_plan_t): the
                              budget of the first, the rarest hashes
                              (default MATCH_DEFAULT_FIRST_HITS; 0: one
                              part).  When the first part's matches are
                              clear (each aligns twice min_frames, and at
                              least 24 frames, and together they cover
                              the query but for gaps shorter than a
                              second) the rest of the
                              budget is fetched for their tracks only, to
                              score them on every hash as one part would;
                              otherwise the lookup goes on as one part */
} match_opts_t;

/* The default budget of hits a query: at 10 000 tracks it fetches about as
 * many hits as a cap of 2 000 postings per hash did at the median (and far
 * fewer at the 99th percentile), and keeps 95.5% of the evaluation's core
 * clips instead of 92.1% (emulated; docs/benchmarks.md). */
#define MATCH_DEFAULT_MAX_HITS 600000

/* The default test against chance: at most one alignment as strong in a
 * hundred queries of that length against a catalog of that size, from the
 * chance alignments measured on music outside the catalog; the runner-up
 * rule then removes most of those (docs/fingerprint.md "The decision"). */
#define MATCH_DEFAULT_MAX_CHANCE 0.01

/* The default first part of a lookup: a quarter of the default budget,
 * where a clip that is a catalog recording already aligns far more than
 * min_frames; a clip that is not in the catalog then costs the first
 * part's scoring more than one part (docs/benchmarks.md). */
#define MATCH_DEFAULT_FIRST_HITS 150000

void match_opts_default(match_opts_t *o);

/* One recording found in the query. */
typedef struct match_result {
    uint32_t track;        /* the store's track id */
    uint32_t frames;       /* distinct query frames aligned: the score */
    uint32_t prints;       /* distinct query prints aligned */
    double query_start;    /* seconds, in the query */
    double query_end;
    double ref_start;      /* seconds, in the reference */
    double ref_end;
    double matched_seconds; /* query_end - query_start */
    double speed;          /* reference time per query time (1.1: 10% faster) */
    double pitch;          /* query frequency per reference frequency, 0 unknown */
    double pitch_semitones; /* 12 log2(pitch), 0 when unknown */
    match_change_t change;
    int64_t offset;        /* reference frame at query frame 0, on the line
                              ref = speed * query + offset */
    double chance;         /* alignments as strong expected by chance in a
                              query of this length against this catalog
                              (match_chance()) */
    double confidence;     /* exp(-chance): that none arose by chance */
    uint32_t *points;      /* with opts->evidence: npoints pairs (query frame,
                              reference frame) of aligned prints, in query
                              order; owned: match_results_free() */
    size_t npoints;
    struct match_result *copies; /* the other catalog tracks that hold the
                              same audio (match_decide()), each with its own
                              reference times, factors and points, strongest
                              first; owned: match_results_free() */
    size_t ncopies;
} match_result_t;

typedef struct match_stats {
    size_t prints;         /* query prints */
    size_t hits;           /* hits fetched (postings times query prints) */
    size_t kept;           /* of which the sieve kept, and scored */
    size_t skipped;        /* hashes skipped as too common or over the budget */
    size_t candidates;     /* alignments considered */
    int narrowed;          /* 1: the lookup's second part was fetched for
                              the first part's matches only */
} match_stats_t;

/*
 * Match a query's prints against a store.  On success *out holds *n_out
 * results (possibly 0), best first, each passing the decision of
 * match_decide(), with the copies of its audio in the catalog attached;
 * release with match_results_free().  st may be NULL.  Errors: what the
 * store reports, FP_ERR_NOMEM.
 */
fp_err_t match_query(match_store_t *store, const fp_print_t *q, size_t nq,
                     const match_opts_t *opts, match_result_t **out, size_t *n_out,
                     match_stats_t *st, char *err, size_t errlen);

/*
 * The decision.  Of the candidates ev->cand[0 .. nc) (fp_score_hits()
 * order, strongest first) scored from ev->hits, the ones reported: a
 * candidate is a match when it aligns o->min_frames query frames, when
 * alignments as strong arise by chance at most o->max_chance times per
 * query (match_chance() for the query's length and the catalog's size),
 * and when it aligns o->min_ratio times the frames of every rival over its
 * query time; at most o->max_results matches.  A rival is another track's alignment that
 * is not a copy: a candidate most of whose aligned query prints (half or
 * more) a match also aligns is the same audio, another copy of the
 * recording in the catalog, and is reported with that match (when it
 * aligns min_frames itself) instead of competing with it.
 * *out gets *n_out picks in candidate order, owned by the caller (free());
 * a pick's copy_of is SIZE_MAX for a match, or the index in *out of the
 * match it is a copy of.  Errors: FP_ERR_NOMEM.  Thread-safe.
 */
typedef struct match_pick {
    size_t cand;      /* index into cand */
    size_t copy_of;   /* SIZE_MAX, or the pick it is a copy of */
    double chance;    /* match_chance() of the candidate */
} match_pick_t;

/* What the decision weighs: the candidates, the hits they were scored from
 * (borrowed for the call), and the query's and the catalog's size. */
typedef struct match_evidence {
    const fp_candidate_t *cand;
    size_t nc;
    const fp_hit_t *hits;
    size_t nh;
    double query_seconds;  /* from the query's first print to its last */
    double catalog_hours;  /* audio searched; <= 0: unknown (no test) */
    double fetched_share;  /* of the query's prints, the share whose keys
                              were fetched (1: all; a budget leaves the
                              commonest out) */
} match_evidence_t;

fp_err_t match_decide(const match_evidence_t *ev, const match_opts_t *o, match_pick_t **out,
                      size_t *n_out);

/*
 * How many alignments of `frames` distinct query frames or more arise by
 * chance in a query of query_seconds against catalog_hours of audio, when
 * `share` of the query's prints were looked up: the expected number, from
 * a model fitted to the chance alignments of music outside the catalog
 * (match_decide.c gives the figures).  `scaled` 1 for an alignment found
 * by the time-scaled search (speed != 1), whose tail is heavier.  Grows in
 * proportion to the query's length and as the catalog's hours to the power
 * 0.75, and falls by a factor of about 3 for every frame (faster when
 * share < 1).  Thread-safe.
 */
double match_chance(uint32_t frames, int scaled, double query_seconds, double catalog_hours,
                    double share);

/*
 * The judgement that ends a lookup's first part (match_plan_t): of the
 * candidates of ev, scored from its hits, the matches match_query would
 * report (match_decide()).  When every one is clear (at
 * least twice min_frames, and 24 frames) and together they cover the
 * query's frames qlo .. qhi but for gaps under a second (no room for
 * another match of its own), their distinct tracks and their copies'
 * go to tracks[0 .. k) and k is returned (at most max); otherwise 0, the
 * lookup going on in full (also when out of memory).
 */
size_t match_clear_tracks(const match_evidence_t *ev, const match_opts_t *o, uint32_t qlo,
                          uint32_t qhi, uint32_t *tracks, size_t max);

/* Keep, of h[0 .. n), in order, the hits of tracks[0 .. nt) (a few: each
 * hit is compared with each); returns how many (a narrowed lookup's
 * first part is cut so). */
size_t match_keep_tracks(fp_hit_t *h, size_t n, const uint32_t *tracks, size_t nt);

/* The score options match_query votes with (and sieves with) for opts. */
void match_score_opts(const match_opts_t *o, fp_score_opts_t *so);

/*
 * The factors as earmark reports them: speed (tempo and pitch together,
 * 1.1 = 10% faster), tempo (time only) and pitch in semitones (frequency
 * only); those the change does not involve are 1, 1 and 0.
 */
void match_factors(const match_result_t *r, double *speed, double *tempo, double *pitch_st);

/* Free results, their points and their copies.  NULL is a no-op. */
void match_results_free(match_result_t *r, size_t n);

/*
 * The same from candidates already scored: the decision rule and the
 * factors, for callers that score hits themselves.
 */
void match_describe(const fp_candidate_t *c, double frame_seconds, match_result_t *r);

#ifdef __cplusplus
}
#endif
#endif
