/*
 * em_catalog.h -- the catalog: tenants and their tracks, in PostgreSQL
 * (sql/001_catalog.sql, sql/002_store.sql).  The prints of the tracks are
 * in the store (em_store.h); this is who owns what.
 *
 *   catalog.c       tenants, tracks, index runs and their failures
 *   cmd_catalog.c   `earmark catalog ls|show|rm|stats|compact` (not part of
 *                   the library)
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

#include "em_db.h"

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

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_CATALOG_H */
