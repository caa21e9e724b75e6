/*
 * em_review.h -- the review of stored matches: the queue, the decisions and
 * their audit log, the evidence and its picture.
 *
 * The HTTP service stores every match it reports (sql/003_service.sql) with
 * its evidence; people then decide whether each one is real:
 *
 *   pending --confirm--> confirmed      confirmed --dismiss--> dismissed
 *   pending --dismiss--> dismissed      dismissed --confirm--> confirmed
 *   confirmed | dismissed --reopen--> pending
 *
 * Every decision is a row of the append-only review_log (sql/005_review.sql):
 * from, to, reviewer, note, time.  Leaving a decided state (reopening or
 * changing one's mind) needs a note: the reason.  matches.status follows the
 * latest row.
 *
 *   review.c        the queue's queries, decisions, history, statistics
 *   review_plot.c   the SVG picture of a match's evidence (no database)
 *   cmd_review.c    `earmark review ...` (not part of the library)
 *
 * Scope: every function takes a review_filter_t whose `tenant` (when not
 * NULL) confines it to that tenant's matches: a match of another tenant is
 * "not found", exactly like a match that does not exist.
 *
 * Errors are db_err_t with a message in err (em_db.h's manner); DB_ERR_INVALID
 * is a request that cannot be done (no such match, a decision it already
 * has, a reopening without a note).  A db_conn_t is used by one thread at a
 * time.  Ownership: strings passed in are borrowed for the call; PGresult
 * results belong to the caller (PQclear()).
 */
#ifndef EARMARK_REVIEW_H
#define EARMARK_REVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "em_db.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which matches: every field left 0 / NULL matches everything. */
typedef struct review_filter {
    const char *tenant;   /* tenant name */
    const char *status;   /* pending, confirmed or dismissed */
    const char *flag;     /* likely_infringement, possible_reuse or none */
    int64_t match_id;     /* one match */
    int64_t copies_of;    /* this match and the other copies of its audio
                             stored with it (matches of one upload with one
                             rank: sql/008_match_copies.sql) */
    int64_t track_id;     /* matches of one catalog recording */
    int min_score;        /* score (aligned frames) at least this */
    const char *since;    /* found at or after this time (a date or an ISO 8601
                             time as PostgreSQL reads timestamptz) */
    const char *until;    /* found before this time */
} review_filter_t;

/* 1 when s is a review state (pending, confirmed, dismissed). */
int review_status_valid(const char *s);
/* 1 when s is a flag (likely_infringement, possible_reuse, none). */
int review_flag_valid(const char *s);

/* Order of review_list(). */
typedef enum review_order {
    REVIEW_NEWEST = 0,    /* most recently found first */
    REVIEW_STRONGEST = 1  /* highest score first */
} review_order_t;

/*
 * The columns of review_list()'s result, in this order, all as text.  Times
 * are ISO 8601 in UTC; NULL (PQgetisnull) where noted.
 */
enum {
    REVIEW_COL_ID,              /* match id */
    REVIEW_COL_CREATED,         /* when the match was found */
    REVIEW_COL_TENANT,          /* tenant name */
    REVIEW_COL_UPLOAD,          /* the upload's public id (uuid) */
    REVIEW_COL_CLIENT_REF,      /* the uploader's own reference; NULL when none */
    REVIEW_COL_UPLOAD_SECONDS,  /* the upload's duration */
    REVIEW_COL_TRACK,           /* catalog track id */
    REVIEW_COL_EXTERNAL_ID,     /* NULL when none */
    REVIEW_COL_TITLE,           /* NULL when none */
    REVIEW_COL_ARTIST,          /* NULL when none */
    REVIEW_COL_SOURCE,          /* the file the recording was indexed from; NULL when none */
    REVIEW_COL_SCORE,
    REVIEW_COL_CONFIDENCE,
    REVIEW_COL_QUERY_START,     /* seconds in the upload */
    REVIEW_COL_QUERY_END,
    REVIEW_COL_REF_START,       /* seconds in the recording */
    REVIEW_COL_REF_END,
    REVIEW_COL_MATCHED_SECONDS,
    REVIEW_COL_COVERAGE,
    REVIEW_COL_SPEED,           /* playback speed factor; NULL when unknown */
    REVIEW_COL_TEMPO,           /* tempo factor; NULL when unknown */
    REVIEW_COL_PITCH,           /* pitch shift in semitones; NULL when unknown */
    REVIEW_COL_CHANGE,          /* none, speed, tempo, pitch; NULL when unknown */
    REVIEW_COL_FLAG,
    REVIEW_COL_STATUS,
    REVIEW_COL_DECIDED_BY,      /* the latest decision's reviewer; NULL when none */
    REVIEW_COL_DECIDED_AT,      /* NULL when none */
    REVIEW_COL_NOTE,            /* the latest decision's note; NULL when none */
    REVIEW_COL_DECISIONS,       /* how many decisions the match has had */
    REVIEW_COL_COPIES,          /* JSON array of the other copies of the same audio
                                   found in the upload: [{"match_id", "track_id",
                                   "copy_index"}, ...]; NULL when none */
    REVIEW_COL_EVIDENCE,        /* JSON; NULL unless asked for */
    REVIEW_NCOLS
};

/*
 * The matches the filter selects, in `order`, at most `limit` (0: all).
 * with_evidence 1 fills REVIEW_COL_EVIDENCE (the stored evidence JSON:
 * {"frame_seconds", "segments": [...], "points": [[query frame, reference
 * frame], ...], "query_peaks": [[frame, frequency in 1/16 bin], ...]}).
 * *out: the caller's, PQclear() it.
 */
db_err_t review_list(db_conn_t *conn, const review_filter_t *f, review_order_t order, long limit,
                     int with_evidence, PGresult **out, char *err, size_t errlen);

/* The columns of review_history()'s result, as text. */
enum {
    REVIEW_HCOL_ID,        /* review_log id */
    REVIEW_HCOL_MATCH,     /* match id */
    REVIEW_HCOL_FROM,
    REVIEW_HCOL_TO,
    REVIEW_HCOL_REVIEWER,
    REVIEW_HCOL_NOTE,      /* NULL when none */
    REVIEW_HCOL_AT,        /* ISO 8601, UTC */
    REVIEW_HNCOLS
};

/* Every decision on the matches the filter selects, oldest first. */
db_err_t review_history(db_conn_t *conn, const review_filter_t *f, PGresult **out, char *err,
                        size_t errlen);

/*
 * Move every match the filter selects that is not already in state `to` to
 * `to`, in one transaction: one review_log row each, then matches.status.
 * reviewer must not be empty and must pass review_reviewer_scope() (which
 * confines f to the reviewer's tenant); note may be NULL, but matches that
 * leave confirmed or dismissed need one (else DB_ERR_INVALID and nothing is
 * changed).  *n (may be NULL) gets how many matches changed.
 *
 * With f->match_id set, the one match must exist within the filter's scope
 * and not already be in state `to`: DB_ERR_INVALID with a message
 * otherwise.  With a filter that selects no match, *n is 0 and DB_OK.
 */
db_err_t review_decide(db_conn_t *conn, const review_filter_t *f, const char *to,
                       const char *reviewer, const char *note, int64_t *n, char *err,
                       size_t errlen);

/* The columns of review_stats()'s result, as text: one row per tenant and
 * flag, by tenant then flag. */
enum {
    REVIEW_SCOL_TENANT,
    REVIEW_SCOL_FLAG,
    REVIEW_SCOL_TOTAL,
    REVIEW_SCOL_PENDING,
    REVIEW_SCOL_CONFIRMED,
    REVIEW_SCOL_DISMISSED,
    REVIEW_SCOL_DISMISSAL_RATE, /* dismissed / (confirmed + dismissed); NULL
                                   when none is decided: how often the policy
                                   flags what people then dismiss */
    REVIEW_SNCOLS
};

db_err_t review_stats(db_conn_t *conn, const review_filter_t *f, PGresult **out, char *err,
                      size_t errlen);

/* ------------------------------------------------------------------------ */
/* Reviewers                                                                */
/* ------------------------------------------------------------------------ */

/*
 * The registry of reviewers (sql/006_reviewers.sql).  While it is empty,
 * any name may decide (a small install).  Once it holds anyone, decisions
 * need a registered, enabled reviewer, and a reviewer confined to a tenant
 * decides, lists, shows, exports and counts that tenant's matches only.
 */
typedef struct review_reviewer {
    int registry_used;    /* 1 when anyone is registered */
    int registered;       /* 1 when the name is */
    int disabled;         /* 1 when registered and disabled */
    char tenant[256];     /* the tenant it is confined to; "" for all */
} review_reviewer_t;

/* What the registry says of `name` (always DB_OK for an unknown name). */
db_err_t review_reviewer_get(db_conn_t *conn, const char *name, review_reviewer_t *out, char *err,
                             size_t errlen);

/*
 * Register `name`, confined to `tenant` (an existing tenant's name) or to
 * none (NULL: every tenant); a disabled reviewer of that name is enabled
 * again with the new scope.  DB_ERR_INVALID when the tenant does not exist
 * or the name is empty.
 */
db_err_t review_reviewer_add(db_conn_t *conn, const char *name, const char *tenant, char *err,
                             size_t errlen);

/* Disable `name`: its decisions stay in the log, new ones are refused.
 * DB_ERR_INVALID when there is no such enabled reviewer. */
db_err_t review_reviewer_disable(db_conn_t *conn, const char *name, char *err, size_t errlen);

/* The registry, by name: name, tenant (NULL: all), created_at, disabled_at
 * (NULL: enabled), as text. */
db_err_t review_reviewer_list(db_conn_t *conn, PGresult **out, char *err, size_t errlen);

/*
 * Apply the registry to a filter: DB_OK when `reviewer` may work within
 * f's scope, and then f->tenant is set to the tenant the reviewer is
 * confined to (tenant_buf holds it).  DB_ERR_INVALID with the reason when
 * the reviewer is disabled, is unknown while the registry is in use, or is
 * confined to another tenant than f->tenant.  reviewer NULL or "": DB_OK
 * and f unchanged (reading without a name is the administrators').
 */
db_err_t review_reviewer_scope(db_conn_t *conn, const char *reviewer, review_filter_t *f,
                               char *tenant_buf, size_t buflen, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* The picture                                                              */
/* ------------------------------------------------------------------------ */

/* One aligned segment: query and reference times in seconds. */
typedef struct review_segment {
    double query_start, query_end, ref_start, ref_end;
    int score;
} review_segment_t;

/*
 * What review_plot_svg() draws.  Arrays are borrowed.  Frames are in
 * frame_seconds; frequencies in 1/16 FFT bin of bin_hz Hz.
 */
typedef struct review_plot {
    const char *title;             /* first line on top (may be NULL) */
    const char *subtitle;          /* second line (may be NULL) */
    double frame_seconds;
    const uint32_t *points;        /* npoints pairs (query frame, reference frame) */
    size_t npoints;
    const review_segment_t *segs;
    size_t nsegs;
    double bin_hz;
    const uint32_t *query_peaks;   /* nquery pairs (frame, frequency) */
    size_t nquery;
    const uint32_t *ref_peaks;     /* nref pairs (frame, frequency) */
    size_t nref;
    const char *query_note;        /* shown instead of query peaks when there
                                      are none (why), may be NULL */
    const char *ref_note;          /* the same for the reference */
} review_plot_t;

/*
 * Write a standalone SVG document to out: on the left, each aligned point
 * as a circle (class "aligned") at (query time, reference time), the
 * segments as lines (class "segment") -- a real match is a clean diagonal;
 * on the right, the spectral peaks of the query excerpt (class "qpeak") and,
 * below it, of the reference excerpt the first segment aligns with it
 * (class "rpeak"), on a log-frequency axis, on the same time axis.
 * Returns 0, or -1 when writing failed (errno set).
 */
int review_plot_svg(FILE *out, const review_plot_t *p);

#ifdef __cplusplus
}
#endif

#endif
