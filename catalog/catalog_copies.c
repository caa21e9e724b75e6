/*
 * catalog_copies.c -- copies known to the catalog (em_catalog.h,
 * sql/009_track_copies.sql): which live tracks hold the same audio as a
 * track, found with the matcher over the whole store, and the links kept
 * in track_copies.
 *
 * Finding them is one match_query of all the track's prints: under the
 * store's budget of hits (the rarest keys first) a whole track costs about
 * what a 10-second clip does on a large catalog, and, unlike a few windows
 * of it, it also sees an excerpt of another track wherever that excerpt
 * lies.  The matcher cuts an alignment where no print aligns for 2.5 s, so
 * one copy comes back as several segments at one offset: they are grouped
 * by track and offset, and the union of their query spans is what the
 * copy covers.
 */
#include "em_catalog.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_match.h"

void catalog_copy_opts_default(catalog_copy_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->min_coverage = 0.5;
    o->min_frames = 48;
    o->same_slack_s = 1.5;
    o->max_hits = MATCH_DEFAULT_MAX_HITS;
    o->max_results = 64;
}

void catalog_copies_free(catalog_copy_t *c, size_t n)
{
    if (!c) return;
    for (size_t i = 0; i < n; i++) {
        free(c[i].tenant);
        free(c[i].external_id);
        free(c[i].title);
    }
    free(c);
}

/* ---- a growing text buffer for array parameters --------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 64;
        while (cap <= b->len + (size_t)k) cap *= 2;
        char *x = realloc(b->s, cap);
        if (!x) {
            b->failed = 1;
            return;
        }
        b->s = x;
        b->cap = cap;
    }
}

/* ---- finding ----------------------------------------------------------------- */

static int cmp_track_offset(const void *a, const void *b)
{
    const match_result_t *x = a, *y = b;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->query_start < y->query_start ? -1 : x->query_start > y->query_start;
}

static int cmp_start(const void *a, const void *b)
{
    const match_result_t *x = a, *y = b;
    return x->query_start < y->query_start ? -1 : x->query_start > y->query_start;
}

/* Offsets (frames) of one copy's segments differ by the scorer's
 * tolerance, and a re-encode's by a frame more. */
#define OFFSET_SLACK 3

/* One offset of one track: r[0 .. n), sorted by offset; the union of the
 * segments' query spans into *aligned, their frames into *frames.  The
 * segments are reordered by query start. */
static void cluster_cover(match_result_t *r, size_t n, double *aligned, uint32_t *frames)
{
    qsort(r, n, sizeof *r, cmp_start);
    double sum = 0, lo = r[0].query_start, hi = r[0].query_end;
    uint32_t f = 0;
    for (size_t i = 0; i < n; i++) {
        f += r[i].frames;
        if (r[i].query_start > hi) {
            sum += hi - lo;
            lo = r[i].query_start;
            hi = r[i].query_end;
        } else if (r[i].query_end > hi) {
            hi = r[i].query_end;
        }
    }
    *aligned = sum + (hi - lo);
    *frames = f;
}

typedef struct best {
    uint32_t track;
    double aligned_s;
    uint32_t frames;
    int64_t offset;       /* frames: the other's frame at this track's frame 0 */
    double speed;
} best_t;

static int cmp_best_frames(const void *a, const void *b)
{
    const catalog_copy_t *x = a, *y = b;
    if (x->frames != y->frames) return x->frames > y->frames ? -1 : 1;
    return x->other < y->other ? -1 : x->other > y->other;
}

/* The durations of the live tracks among b[0 .. n) into dur[] (-1: not live). */
static db_err_t live_durations(db_conn_t *conn, const best_t *b, size_t n, double *dur, char *err,
                               size_t errlen)
{
    sbuf_t ids = {0};
    sb_printf(&ids, "{");
    for (size_t i = 0; i < n; i++) sb_printf(&ids, i ? ",%u" : "%u", b[i].track);
    sb_printf(&ids, "}");
    if (ids.failed) {
        free(ids.s);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    const char *p[1] = {ids.s};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "SELECT id, coalesce(duration_s, 0) FROM tracks "
                           "WHERE id = ANY($1::bigint[]) AND status <> 'deleted'",
                           1, p, 0, &res, err, errlen);
    free(ids.s);
    if (rc != DB_OK) return rc;
    for (size_t i = 0; i < n; i++) dur[i] = -1;
    for (int k = 0; k < PQntuples(res); k++) {
        long long id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
        for (size_t i = 0; i < n; i++)
            if (b[i].track == id) dur[i] = strtod(PQgetvalue(res, k, 1), NULL);
    }
    PQclear(res);
    return DB_OK;
}

db_err_t catalog_copies_find(store_t *s, db_conn_t *conn, int64_t track, double duration_s,
                             const fp_print_t *p, size_t n, const catalog_copy_opts_t *o,
                             catalog_copy_t **out, size_t *nout, char *err, size_t errlen)
{
    if (!s || !conn || (!p && n) || !out || !nout || track <= 0 || duration_s < 0)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to catalog_copies_find");
    *out = NULL;
    *nout = 0;
    catalog_copy_opts_t d;
    if (!o) {
        catalog_copy_opts_default(&d);
        o = &d;
    }
    if (!n) return DB_OK;
    match_store_t *ms = NULL;
    match_result_t *r = NULL, *all = NULL;
    best_t *b = NULL;
    double *dur = NULL;
    catalog_copy_t *c = NULL;
    size_t nr = 0, nb = 0, nc = 0;
    db_err_t rc = store_match_new(s, conn, 0, &ms);
    if (rc != DB_OK) {
        db_errorf(rc, err, errlen, "out of memory");
        goto out;
    }
    match_opts_t mo;
    match_opts_default(&mo);
    mo.min_ratio = 0;      /* copies are not rivals */
    mo.unscaled = 1;
    mo.max_results = o->max_results;
    mo.max_hits = o->max_hits;
    fp_err_t fr = match_query(ms, p, n, &mo, &r, &nr, NULL, err, errlen);
    if (fr != FP_OK) {
        rc = fr == FP_ERR_NOMEM ? DB_ERR_NOMEM
             : PQstatus(db_pg(conn)) != CONNECTION_OK ? DB_ERR_CONNECT
                                                      : DB_ERR_QUERY;
        goto out;
    }
    /* the matcher reports the copies of one audio as one match that lists
     * the others (match_result_t.copies): here every track is one entry */
    size_t nall = nr;
    for (size_t i = 0; i < nr; i++) nall += r[i].ncopies;
    all = calloc(nall + 1, sizeof *all);
    if (!all) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0, k = 0; i < nr; i++)
        for (size_t j = 0; j <= r[i].ncopies; j++, k++) {
            all[k] = j ? r[i].copies[j - 1] : r[i];
            all[k].points = NULL; /* borrowed entries: r owns what they point to */
            all[k].copies = NULL;
            all[k].ncopies = 0;
        }
    match_results_free(r, nr);
    r = all;
    nr = nall;
    all = NULL;
    /* the best offset of each other track */
    qsort(r, nr, sizeof *r, cmp_track_offset);
    b = calloc(nr + 1, sizeof *b);
    if (!b) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nr;) {
        size_t j = i + 1;
        while (j < nr && r[j].track == r[i].track && r[j].offset - r[j - 1].offset <= OFFSET_SLACK)
            j++;
        if ((int64_t)r[i].track != track) {
            double al;
            uint32_t fr_sum;
            int64_t off = r[i].offset;
            double speed = r[i].speed;
            cluster_cover(r + i, j - i, &al, &fr_sum);
            if (!nb || b[nb - 1].track != r[i].track) b[nb++] = (best_t){r[i].track, al, fr_sum, off, speed};
            else if (al > b[nb - 1].aligned_s) b[nb - 1] = (best_t){r[i].track, al, fr_sum, off, speed};
        }
        i = j;
    }
    if (!nb) goto out;
    dur = calloc(nb, sizeof *dur);
    c = calloc(nb, sizeof *c);
    if (!dur || !c) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    rc = live_durations(conn, b, nb, dur, err, errlen);
    if (rc != DB_OK) goto out;
    for (size_t i = 0; i < nb; i++) {
        if (dur[i] < 0 || b[i].frames < o->min_frames) continue;
        double shorter = duration_s < dur[i] ? duration_s : dur[i];
        if (shorter <= 0) continue;
        double cov = b[i].aligned_s / shorter;
        if (cov > 1) cov = 1;
        if (cov < o->min_coverage) continue;
        /* the other's time at this track's time 0, in seconds */
        double at = (double)b[i].offset * mo.frame_seconds;
        catalog_copy_t *x = &c[nc++];
        x->track = track;
        x->other = b[i].track;
        x->aligned_s = b[i].aligned_s < shorter ? b[i].aligned_s : shorter;
        x->coverage = cov;
        x->frames = b[i].frames;
        int this_shorter = duration_s <= dur[i];
        x->offset_s = this_shorter ? at : -at / b[i].speed;
        x->speed = this_shorter ? b[i].speed : 1.0 / b[i].speed;
        if (fabs(duration_s - dur[i]) <= o->same_slack_s && fabs(at) <= o->same_slack_s)
            snprintf(x->relation, sizeof x->relation, "same");
        else
            snprintf(x->relation, sizeof x->relation, this_shorter ? "contained_in" : "contains");
    }
    if (nc) {
        qsort(c, nc, sizeof *c, cmp_best_frames);
        *out = c;
        *nout = nc;
        c = NULL;
    }
out:
    free(c);
    free(dur);
    free(b);
    free(all);
    match_results_free(r, nr);
    match_store_free(ms);
    return rc;
}

/* ---- recording and reading ------------------------------------------------------- */

db_err_t catalog_copies_save(db_conn_t *conn, int64_t track, const catalog_copy_t *c, size_t n,
                             int64_t *added, char *err, size_t errlen)
{
    if (!conn || (!c && n) || track <= 0)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to catalog_copies_save");
    sbuf_t a[7] = {{0}};
    for (int k = 0; k < 7; k++) sb_printf(&a[k], "{");
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        if (c[i].track != track || c[i].other == track || c[i].other <= 0 ||
            (strcmp(c[i].relation, "same") && strcmp(c[i].relation, "contains") &&
             strcmp(c[i].relation, "contained_in"))) {
            for (int k = 0; k < 7; k++) free(a[k].s);
            return db_errorf(DB_ERR_INVALID, err, errlen,
                             "a link of track %lld names track %lld and %lld as '%.15s'",
                             (long long)track, (long long)c[i].track, (long long)c[i].other,
                             c[i].relation);
        }
        sb_printf(&a[0], "%s%lld", sep, (long long)c[i].other);
        sb_printf(&a[1], "%s%s", sep, c[i].relation);
        sb_printf(&a[2], "%s%.3f", sep, c[i].offset_s);
        sb_printf(&a[3], "%s%.3f", sep, c[i].aligned_s);
        sb_printf(&a[4], "%s%.4f", sep, c[i].coverage < 0 ? 0 : c[i].coverage > 1 ? 1 : c[i].coverage);
        sb_printf(&a[5], "%s%.5f", sep, c[i].speed > 0 ? c[i].speed : 1.0);
        sb_printf(&a[6], "%s%u", sep, c[i].frames);
    }
    int failed = 0;
    for (int k = 0; k < 7; k++) {
        sb_printf(&a[k], "}");
        failed |= a[k].failed;
    }
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)track);
    const char *p[8] = {ids, a[0].s, a[1].s, a[2].s, a[3].s, a[4].s, a[5].s, a[6].s};
    PGresult *res = NULL;
    db_err_t rc = failed ? db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory")
                         : db_query(conn,
        "WITH l AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::float8[], $5::float8[], "
        "$6::float8[], $7::float8[], $8::int[]) AS l(other, rel, off, al, cov, sp, fr)), "
        "ins AS (INSERT INTO track_copies (track_a, track_b, relation, longer, offset_s, "
        "aligned_s, coverage, speed, frames) "
        "SELECT least($1::bigint, l.other), greatest($1::bigint, l.other), "
        "CASE WHEN l.rel = 'same' THEN 'same' ELSE 'contains' END, "
        "CASE l.rel WHEN 'contains' THEN $1::bigint WHEN 'contained_in' THEN l.other END, "
        "l.off, l.al, l.cov, l.sp, l.fr FROM l JOIN tracks t ON t.id = l.other "
        "ON CONFLICT (track_a, track_b) DO UPDATE SET relation = EXCLUDED.relation, "
        "longer = EXCLUDED.longer, offset_s = EXCLUDED.offset_s, aligned_s = EXCLUDED.aligned_s, "
        "coverage = EXCLUDED.coverage, speed = EXCLUDED.speed, frames = EXCLUDED.frames "
        "RETURNING (xmax = 0) AS inserted), "
        "upd AS (UPDATE tracks SET copies_checked_at = now() WHERE id = $1 RETURNING id) "
        "SELECT (SELECT count(*) FILTER (WHERE inserted) FROM ins), (SELECT count(*) FROM upd)",
        8, p, 0, &res, err, errlen);
    for (int k = 0; k < 7; k++) free(a[k].s);
    if (rc != DB_OK) return rc;
    if (added) *added = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int marked = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (!marked) return db_errorf(DB_ERR_INVALID, err, errlen, "there is no track %lld", (long long)track);
    return DB_OK;
}

static char *dup_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) return NULL;
    return strdup(PQgetvalue(res, row, col));
}

db_err_t catalog_copies_of(db_conn_t *conn, int64_t track, const char *tenant,
                           catalog_copy_t **out, size_t *n, char *err, size_t errlen)
{
    if (!conn || !out || !n)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to catalog_copies_of");
    *out = NULL;
    *n = 0;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)track);
    const char *p[2] = {ids, tenant};
    PGresult *res;
    db_err_t rc = db_query(
        conn,
        "SELECT l.other_id, l.relation, l.offset_s, l.aligned_s, l.coverage, l.speed, l.frames, "
        "n.name, t.external_id, t.title FROM track_copy_links l "
        "JOIN tracks t ON t.id = l.other_id JOIN tenants n ON n.id = t.tenant_id "
        "WHERE l.track_id = $1 AND ($2::text IS NULL OR n.name = $2) "
        "ORDER BY l.frames DESC, l.other_id",
        2, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    catalog_copy_t *c = rows ? calloc((size_t)rows, sizeof *c) : NULL;
    if (rows && !c) {
        PQclear(res);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    for (int i = 0; i < rows; i++) {
        catalog_copy_t *x = &c[i];
        x->track = track;
        x->other = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(x->relation, sizeof x->relation, "%s", PQgetvalue(res, i, 1));
        x->offset_s = strtod(PQgetvalue(res, i, 2), NULL);
        x->aligned_s = strtod(PQgetvalue(res, i, 3), NULL);
        x->coverage = strtod(PQgetvalue(res, i, 4), NULL);
        x->speed = strtod(PQgetvalue(res, i, 5), NULL);
        x->frames = (uint32_t)strtoul(PQgetvalue(res, i, 6), NULL, 10);
        x->tenant = dup_or_null(res, i, 7);
        x->external_id = dup_or_null(res, i, 8);
        x->title = dup_or_null(res, i, 9);
        if (!x->tenant || (!x->external_id && !PQgetisnull(res, i, 8)) ||
            (!x->title && !PQgetisnull(res, i, 9))) {
            PQclear(res);
            catalog_copies_free(c, (size_t)rows);
            return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        }
    }
    PQclear(res);
    *out = c;
    *n = (size_t)rows;
    return DB_OK;
}

db_err_t catalog_copies_unchecked(db_conn_t *conn, const char *tenant, int all, int64_t **ids,
                                  size_t *n, char *err, size_t errlen)
{
    if (!conn || !ids || !n)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to catalog_copies_unchecked");
    *ids = NULL;
    *n = 0;
    const char *p[2] = {tenant, all ? "1" : "0"};
    PGresult *res;
    db_err_t rc = db_query(conn,
                           "SELECT t.id FROM tracks t JOIN tenants n ON n.id = t.tenant_id "
                           "WHERE t.status <> 'deleted' AND ($1::text IS NULL OR n.name = $1) "
                           "AND ($2 = '1' OR t.copies_checked_at IS NULL) ORDER BY t.id",
                           2, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    int rows = PQntuples(res);
    int64_t *v = rows ? malloc((size_t)rows * sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(res);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    for (int i = 0; i < rows; i++) v[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    *ids = v;
    *n = (size_t)rows;
    return DB_OK;
}
