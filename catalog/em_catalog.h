/*
 * em_catalog.h -- the catalog: tenants and their tracks, in PostgreSQL
 * (sql/001_catalog.sql, sql/002_store.sql).  The prints of the tracks are
 * in the store (em_store.h); this is who owns what.
 *
 *   catalog.c       tenants, tracks, index runs and their failures
 *   catalog_copies.c  copies known to the catalog (sql/009_track_copies.sql):
 *                   finding the tracks that hold the same audio as a new
 *                   one, recording and reading the links
 *   cmd_catalog.c   `earmark catalog ls|show|rm|stats|compact|copies` (not
 *                   part of the library)
 *
 * Errors are db_err_t with a message in `err`.  A db_conn_t is used by one
 * thread at a time.  Ownership: strings inside a catalog_track_t filled by
 * this library are owned by it until catalog_track_clear(); strings passed
 * in are borrowed for the call.
 */
#ifndef EARMARK_CATALOG_H
#define EARMARK_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "earmark_fp.h"
#include "em_db.h"
#include "em_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The tenant named `name`, created when missing; *id its id. */
db_err_t catalog_tenant_ensure(db_conn_t *conn, const char *name, int64_t *id, char *err,
                               size_t errlen);

typedef struct catalog_track {
    int64_t id;
    int64_t tenant_id;
    char *tenant;          /* name (filled by catalog_track_get) */
    char *external_id;     /* NULL when absent */
    char *title;
    char *artist;
    char *source;          /* the path it was indexed from */
    double duration_s;
    uint8_t sha256[32];
    int params_version;
    uint32_t config_id;
    char status[16];       /* indexed, deleted, ... */
    int64_t prints;
    int64_t segment_id;
    char created_at[40];   /* ISO 8601 */
} catalog_track_t;

/* Free the strings of *t and zero it. */
void catalog_track_clear(catalog_track_t *t);

/*
 * Insert a track with status 'indexed' (t->id, t->status, t->created_at
 * ignored).  When the tenant already has a live track with the same
 * SHA-256, nothing is inserted and *id is that track's id with *existed 1.
 */
db_err_t catalog_track_insert(db_conn_t *conn, const catalog_track_t *t, int64_t *id,
                              int *existed, char *err, size_t errlen);

/*
 * Mark deleted the tenant's live tracks from `source` (or, when external_id
 * is not NULL, with that external id) whose SHA-256 differs from sha256:
 * the older versions of a file indexed again with --replace.  *n (may be
 * NULL) gets how many.
 */
db_err_t catalog_track_supersede(db_conn_t *conn, int64_t tenant_id, const char *source,
                                 const char *external_id, const uint8_t sha256[32], int64_t *n,
                                 char *err, size_t errlen);

/* One track by id; DB_ERR_INVALID with a message when there is none. */
db_err_t catalog_track_get(db_conn_t *conn, int64_t id, catalog_track_t *out, char *err,
                           size_t errlen);

/* Mark a track deleted (its prints stop matching at once, and are dropped
 * by the next merge).  DB_ERR_INVALID when there is no such live track. */
db_err_t catalog_track_delete(db_conn_t *conn, int64_t id, char *err, size_t errlen);

/*
 * Mark deleted the tenant's live track with this SHA-256 when its prints
 * were made with another fingerprint configuration than config_id
 * (fp_config_id()): prints of two configurations never match, so after an
 * upgrade of the parameters a re-run fingerprints the file again in its
 * place.  *n (may be NULL) gets how many (0 or 1).
 */
db_err_t catalog_track_supersede_config(db_conn_t *conn, int64_t tenant_id,
                                        const uint8_t sha256[32], uint32_t config_id, int64_t *n,
                                        char *err, size_t errlen);

/*
 * The SHA-256 of every live track of a tenant fingerprinted with config_id,
 * sorted (32 bytes each, in *out, malloc'd, owned by the caller): what a
 * re-run may skip.
 */
db_err_t catalog_tenant_shas(db_conn_t *conn, int64_t tenant_id, uint32_t config_id,
                             uint8_t **out, size_t *n, char *err, size_t errlen);

/* Is sha in the sorted list from catalog_tenant_shas()? */
int catalog_sha_in(const uint8_t *shas, size_t n, const uint8_t sha[32]);

/* ---- index runs ---------------------------------------------------------- */

/* Open a run (status 'running'); *id its id. */
db_err_t catalog_run_begin(db_conn_t *conn, int64_t tenant_id, const char *source, int threads,
                           int64_t files_total, int64_t *id, char *err, size_t errlen);

/* Add to a run's counters (in the caller's transaction, if any). */
db_err_t catalog_run_progress(db_conn_t *conn, int64_t run, int64_t files_done,
                              int64_t files_failed, double seconds, int64_t prints, char *err,
                              size_t errlen);

/* Record a file that could not be indexed. */
db_err_t catalog_run_failure(db_conn_t *conn, int64_t run, const char *path, const char *reason,
                             char *err, size_t errlen);

/* Close a run: status 'finished', 'failed' or 'cancelled', and a message. */
db_err_t catalog_run_end(db_conn_t *conn, int64_t run, const char *status, const char *message,
                         char *err, size_t errlen);

/* ---- copies known to the catalog ------------------------------------------ */

/*
 * Two tracks are linked when the prints of one, looked up against the whole
 * store (every tenant), align with the other over most of the shorter of
 * the two at one offset: the same recording ('same'), or one inside the
 * other ('contains').  Links cross tenants; readers scope them.
 */

/* How copies are found (catalog_copy_opts_default() gives the measured
 * defaults; docs/architecture.md has the measurement). */
typedef struct catalog_copy_opts {
    double min_coverage;   /* a link needs this share of the shorter track
                              aligned at one offset (default 0.5) */
    uint32_t min_frames;   /* ... and this many aligned frames in all
                              (default 48, about 1.1 s of aligned anchors) */
    double same_slack_s;   /* two tracks whose durations differ by at most
                              this, aligned at offsets within it, are the
                              'same' (default 1.5 s); otherwise the longer
                              'contains' the shorter */
    size_t max_hits;       /* the lookup's budget of hits (default
                              MATCH_DEFAULT_MAX_HITS) */
    size_t max_results;    /* alignments examined, the track's own
                              included (default 64) */
} catalog_copy_opts_t;

void catalog_copy_opts_default(catalog_copy_opts_t *o);

/* One link, seen from one of its tracks. */
typedef struct catalog_copy {
    int64_t track;         /* the track it is seen from */
    int64_t other;         /* the linked track */
    char relation[16];     /* from track's side: "same", "contains" (track
                              contains other) or "contained_in" */
    double offset_s;       /* where the shorter begins in the longer, in
                              seconds of the longer */
    double aligned_s;      /* seconds of the shorter aligned */
    double coverage;       /* aligned_s / the shorter's duration, 0 .. 1 */
    double speed;          /* the longer's time per the shorter's */
    uint32_t frames;       /* aligned frames */
    /* filled by catalog_copies_of() only (else NULL), owned by the array:
     * catalog_copies_free() */
    char *tenant;          /* the other track's tenant */
    char *external_id;     /* the other track's; NULL when absent */
    char *title;           /* the other track's; NULL when absent */
} catalog_copy_t;

/* Free an array of n links and their strings.  NULL is a no-op. */
void catalog_copies_free(catalog_copy_t *c, size_t n);

/*
 * The live tracks holding the same audio as track `track` (duration_s long,
 * whose prints are p[0 .. n), in the store already or not): one lookup of
 * all its prints against the whole store through match_query (unscaled,
 * no runner-up rule, the budget o->max_hits), the alignments of each other
 * track grouped by offset, and a link for each track whose best offset
 * covers o->min_coverage of the shorter of the two with o->min_frames.
 * o NULL: the defaults.  Nothing is written.  On success *out (malloc'd,
 * catalog_copies_free(), NULL when none) holds *nout links, strongest
 * first.  s and conn are borrowed; s sees the tracks committed before the
 * call.  Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_CORRUPT,
 * DB_ERR_NOMEM, DB_ERR_INVALID (bad arguments).
 */
db_err_t catalog_copies_find(store_t *s, db_conn_t *conn, int64_t track, double duration_s,
                             const fp_print_t *p, size_t n, const catalog_copy_opts_t *o,
                             catalog_copy_t **out, size_t *nout, char *err, size_t errlen);

/*
 * Record the links c[0 .. n) of one track (each c[i].track the same as
 * `track`) and mark the track checked (tracks.copies_checked_at), in one
 * statement: a link already there, from either side, takes the new
 * figures (a check again after a change of thresholds refreshes them).
 * n may be 0 (the track has no copy: it is only marked).  *added (may be
 * NULL) gets how many links are new.  Errors: DB_ERR_QUERY, DB_ERR_CONNECT,
 * DB_ERR_NOMEM, DB_ERR_INVALID (a link of another track, to itself, or
 * with a relation other than those of catalog_copy_t; no such track).
 */
db_err_t catalog_copies_save(db_conn_t *conn, int64_t track, const catalog_copy_t *c, size_t n,
                             int64_t *added, char *err, size_t errlen);

/*
 * The live links of a live track, within one tenant's tracks when tenant
 * is not NULL (a tenant name: links to other tenants' tracks are left
 * out), strongest first, with the other track's tenant, external id and
 * title.  *out (catalog_copies_free(), NULL when none) holds *n.  A deleted
 * track, or one that does not exist, has none.  Errors: DB_ERR_QUERY,
 * DB_ERR_CONNECT, DB_ERR_NOMEM.
 */
db_err_t catalog_copies_of(db_conn_t *conn, int64_t track, const char *tenant,
                           catalog_copy_t **out, size_t *n, char *err, size_t errlen);

/*
 * The live tracks to look up for copies, by id: those never checked, or
 * with all set every live one, within a tenant when tenant is not NULL
 * (its name).  *ids (malloc'd, the caller's to free(); NULL when none)
 * holds *n.  Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM.
 */
db_err_t catalog_copies_unchecked(db_conn_t *conn, const char *tenant, int all, int64_t **ids,
                                  size_t *n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_CATALOG_H */
