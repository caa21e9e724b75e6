/*
 * review.c -- the review queue's queries, decisions and their audit log.
 *
 * Every query is built from one filter (where_build), so that the scope of
 * a tenant applies the same way to listing, history, statistics and
 * decisions.  Values always travel as parameters, never inside the SQL.
 */
#include "em_review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISO_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int review_status_valid(const char *s)
{
    return s && (!strcmp(s, "pending") || !strcmp(s, "confirmed") || !strcmp(s, "dismissed"));
}

int review_flag_valid(const char *s)
{
    return s && (!strcmp(s, "likely_infringement") || !strcmp(s, "possible_reuse") ||
                 !strcmp(s, "none"));
}

/* A WHERE clause over matches m joined with tenants n, and its parameters. */
typedef struct where {
    char sql[1024];
    const char *params[16];
    char num[4][24];
    int n;
} where_t;

static void where_add(where_t *w, const char *fmt, const char *value)
{
    size_t len = strlen(w->sql);
    w->params[w->n] = value;
    w->n++;
    snprintf(w->sql + len, sizeof w->sql - len, fmt, w->n);
}

/*
 * " AND ..." conditions for every field of f that is set, with parameters
 * numbered after the `first` the caller already uses (w->params[0..first)
 * are the caller's to fill).
 */
static void where_build(const review_filter_t *f, int first, where_t *w)
{
    memset(w, 0, sizeof *w);
    w->n = first;
    if (!f) return;
    if (f->tenant) where_add(w, " AND n.name = $%d", f->tenant);
    if (f->status) where_add(w, " AND m.status = $%d", f->status);
    if (f->flag) where_add(w, " AND m.flag = $%d", f->flag);
    if (f->match_id) {
        snprintf(w->num[0], sizeof w->num[0], "%lld", (long long)f->match_id);
        where_add(w, " AND m.id = $%d", w->num[0]);
    }
    if (f->copies_of) {
        snprintf(w->num[3], sizeof w->num[3], "%lld", (long long)f->copies_of);
        where_add(w, " AND (m.upload_id, m.rank) = (SELECT c.upload_id, c.rank FROM matches c "
                     "WHERE c.id = $%d)", w->num[3]);
    }
    if (f->track_id) {
        snprintf(w->num[1], sizeof w->num[1], "%lld", (long long)f->track_id);
        where_add(w, " AND m.track_id = $%d", w->num[1]);
    }
    if (f->min_score > 0) {
        snprintf(w->num[2], sizeof w->num[2], "%d", f->min_score);
        where_add(w, " AND m.score >= $%d", w->num[2]);
    }
    if (f->since) where_add(w, " AND m.created_at >= $%d::timestamptz", f->since);
    if (f->until) where_add(w, " AND m.created_at < $%d::timestamptz", f->until);
}

db_err_t review_list(db_conn_t *conn, const review_filter_t *f, review_order_t order, long limit,
                     int with_evidence, PGresult **out, char *err, size_t errlen)
{
    where_t w;
    char sql[4096], lim[32] = "";
    where_build(f, 0, &w);
    if (limit > 0) snprintf(lim, sizeof lim, " LIMIT %ld", limit);
    snprintf(sql, sizeof sql,
             "SELECT m.id, " ISO_UTC("m.created_at") ", n.name, u.public_id::text, u.client_ref, "
             "round(u.duration_s::numeric, 3)::text, m.track_id, t.external_id, t.title, "
             "t.artist, t.source, m.score, round(m.confidence::numeric, 3)::text, "
             "round(m.query_start::numeric, 3)::text, round(m.query_end::numeric, 3)::text, "
             "round(m.ref_start::numeric, 3)::text, round(m.ref_end::numeric, 3)::text, "
             "round(m.matched_seconds::numeric, 3)::text, round(m.coverage::numeric, 3)::text, "
             "round(m.speed::numeric, 4)::text, round(m.tempo::numeric, 4)::text, "
             "round(m.pitch_semitones::numeric, 3)::text, m.change, m.flag, m.status, d.reviewer, "
             ISO_UTC("d.decided_at") ", d.note, "
             "(SELECT count(*) FROM review_log c WHERE c.match_id = m.id), "
             "(SELECT json_agg(json_build_object('match_id', c.id, 'track_id', c.track_id, "
             "'copy_index', c.copy_index) ORDER BY c.copy_index) FROM matches c "
             "WHERE c.upload_id = m.upload_id AND c.rank = m.rank AND c.id <> m.id)::text, %s "
             "FROM matches m JOIN tenants n ON n.id = m.tenant_id "
             "JOIN uploads u ON u.id = m.upload_id JOIN tracks t ON t.id = m.track_id "
             "LEFT JOIN LATERAL (SELECT l.reviewer, l.note, l.decided_at FROM review_log l "
             "WHERE l.match_id = m.id ORDER BY l.id DESC LIMIT 1) d ON true "
             "WHERE true%s ORDER BY %s%s",
             with_evidence ? "m.evidence::text" : "NULL::text", w.sql,
             order == REVIEW_STRONGEST ? "m.score DESC, m.id DESC" : "m.created_at DESC, m.id DESC",
             lim);
    return db_query(conn, sql, w.n, w.params, 0, out, err, errlen);
}

/* Run `sql`, whose one %s is where the filter's conditions go, with the
 * filter's parameters. */
static db_err_t query_filtered(db_conn_t *conn, const review_filter_t *f, const char *sql,
                               PGresult **out, char *err, size_t errlen)
{
    where_t w;
    char full[4096];
    where_build(f, 0, &w);
    snprintf(full, sizeof full, sql, w.sql);
    return db_query(conn, full, w.n, w.params, 0, out, err, errlen);
}

db_err_t review_history(db_conn_t *conn, const review_filter_t *f, PGresult **out, char *err,
                        size_t errlen)
{
    return query_filtered(conn, f,
                          "SELECT l.id, l.match_id, l.from_status, l.to_status, l.reviewer, "
                          "l.note, " ISO_UTC("l.decided_at") " FROM review_log l "
                          "JOIN matches m ON m.id = l.match_id "
                          "JOIN tenants n ON n.id = m.tenant_id WHERE true%s ORDER BY l.id",
                          out, err, errlen);
}

db_err_t review_stats(db_conn_t *conn, const review_filter_t *f, PGresult **out, char *err,
                      size_t errlen)
{
    return query_filtered(conn, f,
                          "SELECT n.name, m.flag, count(*), "
                          "count(*) FILTER (WHERE m.status = 'pending'), "
                          "count(*) FILTER (WHERE m.status = 'confirmed'), "
                          "count(*) FILTER (WHERE m.status = 'dismissed'), "
                          "round((count(*) FILTER (WHERE m.status = 'dismissed'))::numeric / "
                          "nullif(count(*) FILTER (WHERE m.status <> 'pending'), 0), 3)::text "
                          "FROM matches m JOIN tenants n ON n.id = m.tenant_id WHERE true%s "
                          "GROUP BY n.name, m.flag ORDER BY n.name, m.flag",
                          out, err, errlen);
}

/* Why the one match f->match_id cannot move to `to`, or DB_OK when it can. */
static db_err_t check_one(db_conn_t *conn, const review_filter_t *f, const char *to,
                          const char *note, char *err, size_t errlen)
{
    where_t w;
    char sql[2048];
    PGresult *res = NULL;
    /* the scope's other conditions, but not the status: "already confirmed"
     * says more than "not found" */
    review_filter_t one = {.tenant = f->tenant, .match_id = f->match_id};
    where_build(&one, 0, &w);
    snprintf(sql, sizeof sql,
             "SELECT m.status FROM matches m JOIN tenants n ON n.id = m.tenant_id "
             "WHERE true%s FOR UPDATE OF m",
             w.sql);
    db_err_t rc = db_query(conn, sql, w.n, w.params, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    if (PQntuples(res) == 0) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "no match %lld%s%s\nhint: 'earmark review list' shows the queue",
                       (long long)f->match_id, f->tenant ? " for tenant " : "",
                       f->tenant ? f->tenant : "");
    } else {
        const char *cur = PQgetvalue(res, 0, 0);
        if (!strcmp(cur, to))
            rc = db_errorf(DB_ERR_INVALID, err, errlen, "match %lld is already %s",
                           (long long)f->match_id, to);
        else if (f->status && strcmp(cur, f->status))
            rc = db_errorf(DB_ERR_INVALID, err, errlen, "match %lld is %s, not %s",
                           (long long)f->match_id, cur, f->status);
        else if (strcmp(cur, "pending") && (!note || !*note))
            rc = db_errorf(DB_ERR_INVALID, err, errlen,
                           "match %lld is %s: changing a decision needs a reason\n"
                           "hint: add --note \"why\"",
                           (long long)f->match_id, cur);
    }
    PQclear(res);
    return rc;
}

/* How many matches the filter selects that leave a decided state for `to`. */
static db_err_t count_undecided(db_conn_t *conn, const review_filter_t *f, const char *to,
                                long long *n, char *err, size_t errlen)
{
    where_t w;
    char sql[2048];
    PGresult *res = NULL;
    where_build(f, 1, &w);
    w.params[0] = to;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM matches m JOIN tenants n ON n.id = m.tenant_id "
             "WHERE m.status <> 'pending' AND m.status <> $1%s",
             w.sql);
    db_err_t rc = db_query(conn, sql, w.n, w.params, 0, &res, err, errlen);
    if (rc == DB_OK) *n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* "{1,2,3}": the first column of res as a bigint[] literal (malloc'd). */
static char *ids_array(const PGresult *res)
{
    int n = PQntuples(res);
    size_t cap = 3 + (size_t)n * 21, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    s[len++] = '}';
    s[len] = 0;
    return s;
}

/*
 * One transaction: lock the selected matches, write their log rows, then
 * move matches.status (which a trigger allows only to the state of the
 * latest log row).  Any failure rolls everything back.
 */
db_err_t review_decide(db_conn_t *conn, const review_filter_t *f, const char *to,
                       const char *reviewer, const char *note, int64_t *n, char *err,
                       size_t errlen)
{
    where_t w;
    char sql[2048], count[24];
    PGresult *res = NULL, *upd = NULL;
    char *ids = NULL;
    db_err_t rc;
    int64_t done = 0;

    if (n) *n = 0;
    if (!review_status_valid(to))
        return db_errorf(DB_ERR_INVALID, err, errlen, "'%s' is not a review state", to ? to : "");
    if (!reviewer || !*reviewer)
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "a decision needs the reviewer's name\n"
                         "hint: pass --reviewer NAME or set EARMARK_REVIEWER");
    if (note && !*note) note = NULL;
    review_filter_t scoped = f ? *f : (review_filter_t){0};
    char tenant[256];
    rc = review_reviewer_scope(conn, reviewer, &scoped, tenant, sizeof tenant, err, errlen);
    if (rc != DB_OK) return rc;
    f = &scoped;
    rc = db_exec(conn, "BEGIN", err, errlen);
    if (rc != DB_OK) return rc;
    if (f && f->match_id) {
        rc = check_one(conn, f, to, note, err, errlen);
        if (rc != DB_OK) goto out;
    } else if (!note) {
        long long undo = 0;
        rc = count_undecided(conn, f, to, &undo, err, errlen);
        if (rc != DB_OK) goto out;
        if (undo > 0) {
            rc = db_errorf(DB_ERR_INVALID, err, errlen,
                           "%lld of the selected matches already have a decision: changing a "
                           "decision needs a reason\nhint: add --note \"why\", or narrow the "
                           "selection with --status pending",
                           undo);
            goto out;
        }
    }
    where_build(f, 3, &w);
    w.params[0] = to;
    w.params[1] = reviewer;
    w.params[2] = note;
    snprintf(sql, sizeof sql,
             "INSERT INTO review_log (match_id, tenant_id, from_status, to_status, reviewer, note) "
             "SELECT m.id, m.tenant_id, m.status, $1, $2, $3 FROM matches m "
             "JOIN tenants n ON n.id = m.tenant_id WHERE m.status <> $1%s "
             "ORDER BY m.id FOR UPDATE OF m RETURNING match_id",
             w.sql);
    rc = db_query(conn, sql, w.n, w.params, 0, &res, err, errlen);
    if (rc != DB_OK) goto out;
    done = PQntuples(res);
    if (done > 0) {
        ids = ids_array(res);
        if (!ids) {
            rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
            goto out;
        }
        const char *p[2] = {to, ids};
        rc = db_query(conn, "UPDATE matches SET status = $1 WHERE id = ANY($2::bigint[])", 2, p,
                      0, &upd, err, errlen);
        if (rc != DB_OK) goto out;
        snprintf(count, sizeof count, "%lld", (long long)done);
        if (strcmp(PQcmdTuples(upd), count)) {
            rc = db_errorf(DB_ERR_QUERY, err, errlen,
                           "the review state of %s matches changed, of %s logged", PQcmdTuples(upd),
                           count);
            goto out;
        }
    }
    rc = db_exec(conn, "COMMIT", err, errlen);
    if (rc == DB_OK && n) *n = done;
    PQclear(res);
    PQclear(upd);
    free(ids);
    return rc;
out:
    db_exec(conn, "ROLLBACK", NULL, 0);
    PQclear(res);
    PQclear(upd);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reviewers                                                                */
/* ------------------------------------------------------------------------ */

db_err_t review_reviewer_get(db_conn_t *conn, const char *name, review_reviewer_t *out, char *err,
                             size_t errlen)
{
    PGresult *res = NULL;
    const char *p[1] = {name ? name : ""};
    memset(out, 0, sizeof *out);
    db_err_t rc = db_query(conn,
                           "SELECT EXISTS (SELECT 1 FROM reviewers), r.name IS NOT NULL, "
                           "r.disabled_at IS NOT NULL, coalesce(n.name, '') "
                           "FROM (SELECT 1) one LEFT JOIN reviewers r ON r.name = $1 "
                           "LEFT JOIN tenants n ON n.id = r.tenant_id",
                           1, p, 0, &res, err, errlen);
    if (rc != DB_OK) return rc;
    out->registry_used = PQgetvalue(res, 0, 0)[0] == 't';
    out->registered = PQgetvalue(res, 0, 1)[0] == 't';
    out->disabled = PQgetvalue(res, 0, 2)[0] == 't';
    snprintf(out->tenant, sizeof out->tenant, "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    return DB_OK;
}

db_err_t review_reviewer_add(db_conn_t *conn, const char *name, const char *tenant, char *err,
                             size_t errlen)
{
    PGresult *res = NULL;
    if (!name || !*name) return db_errorf(DB_ERR_INVALID, err, errlen, "a reviewer needs a name");
    const char *p[2] = {name, tenant};
    db_err_t rc = db_query(conn,
                           "INSERT INTO reviewers (name, tenant_id) "
                           "SELECT $1, n.id FROM (SELECT 1) one LEFT JOIN tenants n ON n.name = $2 "
                           "WHERE $2::text IS NULL OR n.id IS NOT NULL "
                           "ON CONFLICT (name) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
                           "disabled_at = NULL",
                           2, p, 0, &res, err, errlen);
    if (rc == DB_OK && strcmp(PQcmdTuples(res), "1"))
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "no tenant '%s'\nhint: 'earmark catalog ls' "
                       "shows the tenants with tracks", tenant);
    PQclear(res);
    return rc;
}

db_err_t review_reviewer_disable(db_conn_t *conn, const char *name, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *p[1] = {name ? name : ""};
    db_err_t rc = db_query(conn,
                           "UPDATE reviewers SET disabled_at = now() "
                           "WHERE name = $1 AND disabled_at IS NULL",
                           1, p, 0, &res, err, errlen);
    if (rc == DB_OK && strcmp(PQcmdTuples(res), "1"))
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "no enabled reviewer '%s'", p[0]);
    PQclear(res);
    return rc;
}

db_err_t review_reviewer_list(db_conn_t *conn, PGresult **out, char *err, size_t errlen)
{
    return db_query(conn,
                    "SELECT r.name, n.name, " ISO_UTC("r.created_at") ", " ISO_UTC("r.disabled_at")
                    " FROM reviewers r LEFT JOIN tenants n ON n.id = r.tenant_id ORDER BY r.name",
                    0, NULL, 0, out, err, errlen);
}

db_err_t review_reviewer_scope(db_conn_t *conn, const char *reviewer, review_filter_t *f,
                               char *tenant_buf, size_t buflen, char *err, size_t errlen)
{
    review_reviewer_t r;
    if (!reviewer || !*reviewer) return DB_OK;
    db_err_t rc = review_reviewer_get(conn, reviewer, &r, err, errlen);
    if (rc != DB_OK) return rc;
    if (!r.registered)
        return r.registry_used
                   ? db_errorf(DB_ERR_INVALID, err, errlen,
                               "'%s' is not a registered reviewer\nhint: an administrator runs "
                               "'earmark review reviewers add %s [--tenant NAME]'",
                               reviewer, reviewer)
                   : DB_OK;
    if (r.disabled)
        return db_errorf(DB_ERR_INVALID, err, errlen, "reviewer '%s' is disabled", reviewer);
    if (!r.tenant[0]) return DB_OK;
    if (f->tenant && strcmp(f->tenant, r.tenant))
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "reviewer '%s' works for tenant '%s' only, not '%s'", reviewer, r.tenant,
                         f->tenant);
    snprintf(tenant_buf, buflen, "%s", r.tenant);
    f->tenant = tenant_buf;
    return DB_OK;
}
