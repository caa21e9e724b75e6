/*
 * server_work.c -- the workers: everything that needs the database or the
 * CPU.  Each worker owns one database connection and one store handle and
 * takes suspended requests from the queue: it authenticates the key,
 * decodes and matches the upload, stores the result with its evidence, or
 * reads what a GET asks for, writes the response and resumes the
 * connection.
 *
 * The database may go away at any time: a worker that finds its
 * connection broken answers 503 and reconnects on its next request, so the
 * service recovers by itself when the database is back.
 */
#include "server_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <time.h>

#include "em_db.h"
#include "em_keys.h"
#include "em_store.h"

struct srv_worker {
    struct server *srv;
    pthread_t tid;
    db_conn_t *conn;
    store_t *store;
    char err[2048];
};

/* ---- the key cache ------------------------------------------------------------ */

/*
 * Keys seen recently, by digest, for 5 seconds (a revocation takes effect
 * within that time), unknown keys included so that a stream of bad keys
 * does not reach the database.  Direct-mapped: a collision only costs a
 * lookup.
 */
#define KEY_SLOTS 1024
#define KEY_TTL_S 5.0

typedef struct key_slot {
    uint8_t digest[32];
    double expires;
    int found;
    keys_key_t key;
} key_slot_t;

struct srv_key_cache {
    pthread_mutex_t lock;
    key_slot_t slot[KEY_SLOTS];
};

srv_key_cache_t *srv_key_cache_new(void)
{
    srv_key_cache_t *c = calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->lock, NULL);
    return c;
}

void srv_key_cache_free(srv_key_cache_t *c)
{
    if (!c) return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static unsigned key_slot_of(const uint8_t *d)
{
    return ((unsigned)d[0] | (unsigned)d[1] << 8) % KEY_SLOTS;
}

/* 1 found (live or revoked: see key->revoked), 0 unknown, -1 database error. */
static int authenticate(srv_worker_t *w, const srv_req_t *r, keys_key_t *key)
{
    srv_key_cache_t *c = w->srv->keys;
    unsigned i = key_slot_of(r->key_digest);
    double now = srv_now();
    pthread_mutex_lock(&c->lock);
    key_slot_t *sl = &c->slot[i];
    if (sl->expires > now && CRYPTO_memcmp(sl->digest, r->key_digest, 32) == 0) {
        int found = sl->found;
        *key = sl->key;
        pthread_mutex_unlock(&c->lock);
        return found;
    }
    pthread_mutex_unlock(&c->lock);
    int found = 0;
    if (keys_lookup(w->conn, r->key_digest, key, &found, w->err, sizeof w->err) != DB_OK) return -1;
    pthread_mutex_lock(&c->lock);
    memcpy(sl->digest, r->key_digest, 32);
    sl->expires = now + KEY_TTL_S;
    sl->found = found;
    sl->key = *key;
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* ---- the database connection ----------------------------------------------------- */

static void set_db_up(struct server *s, int up)
{
    pthread_mutex_lock(&s->lock);
    s->db_up = up;
    pthread_mutex_unlock(&s->lock);
}

static void drop_db(srv_worker_t *w)
{
    store_free(w->store);
    w->store = NULL;
    db_close(w->conn);
    w->conn = NULL;
}

/*
 * A working connection and store handle, connecting (one attempt, a short
 * timeout) when there is none or the one there broke.  0, or -1 with
 * w->err.
 */
static int ensure_db(srv_worker_t *w)
{
    /* a connection the server closed (a restart) still looks fine until it
     * is used: one empty round trip finds out, and reconnects in place */
    if (w->conn && (PQstatus(db_pg(w->conn)) != CONNECTION_OK ||
                    db_ping(w->conn, w->err, sizeof w->err) != DB_OK))
        drop_db(w);
    if (w->conn) return 0;
    db_connect_opts_t o;
    db_connect_opts_default(&o);
    o.max_wait_s = 0;
    o.connect_timeout_s = 2;
    if (db_connect_opts(w->srv->conninfo, &o, &w->conn, w->err, sizeof w->err) != DB_OK ||
        store_open(w->conn, &w->store, w->err, sizeof w->err) != DB_OK) {
        drop_db(w);
        set_db_up(w->srv, 0);
        return -1;
    }
    store_set_cache(w->store, w->srv->cache);
    set_db_up(w->srv, 1);
    return 0;
}

/* After a failed statement: 503 when the connection is gone, else 500. */
static void db_failed(srv_worker_t *w, srv_req_t *r, const char *what)
{
    srv_metrics_db_error(w->srv->metrics);
    if (!w->conn || PQstatus(db_pg(w->conn)) != CONNECTION_OK) {
        drop_db(w);
        set_db_up(w->srv, 0);
        r->retry_after = 5;
        srv_problem(r, 503, "database_unavailable", "the database is unreachable; retry later");
        return;
    }
    fprintf(stderr, "earmark serve: %s: %s\n", what, w->err);
    srv_problem(r, 500, "internal", "%s failed", what);
}

/* ---- POST /v1/matches -------------------------------------------------------------- */

/* A copy of a match's audio in another track: its segments (copies of the
 * match's segments). */
typedef struct copy {
    uint32_t track;
    size_t n;
    const match_result_t *seg[16];
} copy_t;

typedef struct group {
    uint32_t track;
    size_t first;        /* results of this track: indexes into res[] */
    size_t n;
    size_t idx[16];
    size_t ncopies;      /* the other tracks holding the same audio */
    copy_t copies[16];
} group_t;

/* Track metadata for the matches' JSON: fills objects in meta[track_id]
 * for the tracks ids[0 .. n). */
static int track_meta(srv_worker_t *w, const uint32_t *ids, size_t n, json_t *meta)
{
    size_t cap = n * 12 + 4, l = 0;
    char *arr = malloc(cap);
    if (!arr) return -1;
    arr[l++] = '{';
    for (size_t i = 0; i < n; i++)
        l += (size_t)snprintf(arr + l, cap - l, i ? ",%u" : "%u", ids[i]);
    arr[l++] = '}';
    arr[l] = '\0';
    const char *p[1] = {arr};
    PGresult *res;
    int rc = (int)db_query_prepared(w->conn, "em_track_meta",
                 "SELECT t.id, t.external_id, t.title, t.artist, n.name, "
                 "coalesce(t.duration_s, 0) FROM tracks t JOIN tenants n ON n.id = t.tenant_id "
                 "WHERE t.id = ANY($1::bigint[])",
                 1, p, 0, &res, w->err, sizeof w->err);
    free(arr);
    if (rc != DB_OK) return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *o = json_object();
        for (int c = 1; c <= 4; c++) {
            static const char *names[] = {"", "external_id", "title", "artist", "owner"};
            json_object_set_new(o, names[c], PQgetisnull(res, i, c)
                                                 ? json_null()
                                                 : json_string(PQgetvalue(res, i, c)));
        }
        json_object_set_new(o, "track_duration", json_real(strtod(PQgetvalue(res, i, 5), NULL)));
        json_object_set_new(meta, PQgetvalue(res, i, 0), o);
    }
    PQclear(res);
    return 0;
}

static double round3(double x)
{
    return round(x * 1000.0) / 1000.0;
}

static double round4(double x)
{
    return round(x * 10000.0) / 10000.0;
}

static json_t *segment_json(const match_result_t *m)
{
    double sp, te, st;
    match_factors(m, &sp, &te, &st);
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:f, s:f, s:f, s:s}", "query_start",
                     round3(m->query_start), "query_end", round3(m->query_end), "ref_start",
                     round3(m->ref_start), "ref_end", round3(m->ref_end), "matched_seconds",
                     round3(m->matched_seconds), "score", (int)m->frames, "prints",
                     (int)m->prints, "speed", round4(sp), "tempo", round4(te),
                     "pitch_semitones", round3(st), "change",
                     match_change_name(m->change));
}

/*
 * Note r's copies (match_result_t.copies) in g, a copy track's segments
 * together; returns how many copy tracks are new to g (stored rows).
 * At most 16 copy tracks, 16 segments each.
 */
static size_t group_add_copies(group_t *g, const match_result_t *r)
{
    size_t added = 0;
    for (size_t k = 0; k < r->ncopies; k++) {
        const match_result_t *c = &r->copies[k];
        size_t j = 0;
        while (j < g->ncopies && g->copies[j].track != c->track) j++;
        if (j == g->ncopies) {
            if (j == 16) continue;
            g->copies[g->ncopies++] = (copy_t){.track = c->track};
            added++;
        }
        if (g->copies[j].n < 16) g->copies[j].seg[g->copies[j].n++] = c;
    }
    return added;
}

/* A copy as the response shows it: the track, its metadata (md, may be
 * NULL) and where the audio is in it; takes segs. */
static json_t *copy_json(const copy_t *cp, json_t *md, json_t *segs)
{
    const match_result_t *best = cp->seg[0];
    double sp, te, st;
    uint32_t score = 0;
    for (size_t k = 0; k < cp->n; k++) score += cp->seg[k]->frames;
    match_factors(best, &sp, &te, &st);
    return json_pack("{s:I, s:O?, s:O?, s:O?, s:O?, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:s, s:o}",
                     "track_id", (json_int_t)cp->track, "external_id",
                     json_object_get(md, "external_id"), "title", json_object_get(md, "title"),
                     "artist", json_object_get(md, "artist"), "owner",
                     json_object_get(md, "owner"), "score", (int)score, "prints",
                     (int)best->prints, "ref_start", round3(best->ref_start), "ref_end",
                     round3(best->ref_end), "speed", round4(sp), "tempo", round4(te),
                     "pitch_semitones", round3(st), "change", match_change_name(best->change),
                     "segments", segs);
}

/*
 * A new upload's public id (a version 4 UUID from OpenSSL's generator) in
 * r->upload_id, and the time it is stored, UTC to the millisecond, in
 * created: both are made here so that the result, which shows them, is
 * written with its row in one statement.  -1 when the generator fails.
 */
static int new_upload_id(srv_req_t *r, char *created, size_t created_len)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    snprintf(r->upload_id, sizeof r->upload_id,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char sec[24];
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(created, created_len, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
    return 0;
}

/*
 * Store the upload, its result (the response's body) and its matches with
 * their evidence: one statement, so one round trip and its own
 * transaction.  The matches go as one JSON array (the response's match
 * objects with their rank and evidence added) that json_to_recordset
 * spreads into rows.
 */
static int store_result(srv_worker_t *w, srv_req_t *r, const keys_key_t *key, double duration,
                        size_t nprints, double ms, srv_flag_t flag, json_t *matches,
                        char *const *evidence, const char *created, json_t *body)
{
    char tenant[24], keyid[24], bytes[24], dur[32], np[24], pms[32];
    snprintf(tenant, sizeof tenant, "%lld", (long long)key->tenant_id);
    snprintf(keyid, sizeof keyid, "%lld", (long long)key->id);
    snprintf(bytes, sizeof bytes, "%zu", r->len);
    snprintf(dur, sizeof dur, "%.3f", duration);
    snprintf(np, sizeof np, "%zu", nprints);
    snprintf(pms, sizeof pms, "%.3f", ms);
    char *result = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
    char *mrows = srv_match_rows_json(matches, evidence);
    const char *p[13] = {tenant,  keyid, r->have_client_ref ? r->client_ref : NULL,
                         r->content_type, bytes, dur, np, pms, srv_flag_name(flag),
                         r->upload_id, created, result, mrows};
    PGresult *res = NULL;
    int rc = -1;
    if (!result || !mrows)
        snprintf(w->err, sizeof w->err, "out of memory");
    else
        rc = (int)db_query_prepared(
            w->conn, "em_store_result",
            "WITH u AS (INSERT INTO uploads (tenant_id, key_id, client_ref, content_type, bytes, "
            "duration_s, prints, processing_ms, flag, public_id, created_at, result) VALUES ($1, "
            "$2, $3, $4, $5, $6, $7, $8, $9, $10::uuid, $11::timestamptz, $12::jsonb) "
            "RETURNING id, tenant_id) "
            "INSERT INTO matches (upload_id, tenant_id, track_id, rank, score, prints, confidence, "
            "query_start, query_end, ref_start, ref_end, matched_seconds, coverage, speed, tempo, "
            "pitch_semitones, change, flag, evidence, copy_index) "
            "SELECT u.id, u.tenant_id, m.track_id, m.rank, m.score, m.prints, m.confidence, "
            "m.query_start, m.query_end, m.ref_start, m.ref_end, m.matched_seconds, m.coverage, "
            "m.speed, m.tempo, m.pitch_semitones, m.change, m.flag, m.evidence, m.copy_index "
            "FROM u, json_to_recordset($13::json) AS m(track_id bigint, rank integer, score "
            "integer, prints integer, confidence float8, query_start float8, query_end float8, "
            "ref_start float8, ref_end float8, matched_seconds float8, coverage float8, speed "
            "float8, tempo float8, pitch_semitones float8, change text, flag text, evidence json, "
            "copy_index integer)",
            13, p, 0, &res, w->err, sizeof w->err);
    PQclear(res);
    free(result);
    free(mrows);
    return rc;
}

static void do_match(srv_worker_t *w, srv_req_t *r, const keys_key_t *key)
{
    struct server *s = w->srv;
    double t0 = srv_now();
    fp_result_t fr;
    memset(&fr, 0, sizeof fr);
    fp_print_t *prints = NULL;
    size_t nprints = 0;
    double duration = 0;
    match_result_t *res = NULL;
    size_t nres = 0;
    match_store_t *ms = NULL;
    json_t *body = NULL, *matches = NULL, *meta = NULL;
    char **evidence = NULL; /* one JSON text a stored row (server_evidence.c) */
    size_t nevidence = 0;
    group_t *groups = NULL;
    uint32_t *tracks = NULL;

    if (r->kind == BODY_PRINTS) {
        const char *code = NULL;
        char msg[512];
        unsigned st = srv_parse_prints(r->body, r->len, &s->fpcfg, s->cfg.max_duration_s, &prints,
                                       &nprints, &duration, &code, msg, sizeof msg);
        if (st) {
            srv_problem(r, st, code, "%s", msg);
            goto out;
        }
    } else {
        char err[512];
        fp_err_t rc = fp_extract_memory(r->body, r->len, "the upload", &s->fpcfg, &s->fplim, &fr,
                                        err, sizeof err);
        if (rc == FP_ERR_LIMIT) {
            srv_problem(r, 413, "too_long", "%s", err);
            goto out;
        }
        if (rc == FP_ERR_NOMEM) {
            srv_problem(r, 503, "out_of_memory", "the server is out of memory; retry later");
            goto out;
        }
        if (rc != FP_OK) {
            srv_metrics_decode_failure(s->metrics);
            srv_problem(r, 415, "undecodable_audio", "%s", err);
            goto out;
        }
        prints = fr.prints;
        nprints = fr.count;
        duration = fr.stats.seconds;
    }
    double t1 = srv_now();
    srv_metrics_stage(s->metrics, 0, t1 - t0);

    if (store_match_new(w->store, w->conn, key->tenant_id, &ms) != DB_OK) {
        srv_problem(r, 503, "out_of_memory", "the server is out of memory; retry later");
        goto out;
    }
    /* a lookup is split over the cores no other match is using: all of
     * them for a lone request, none when every worker is busy (splitting
     * then only adds switches) */
    int busy = __atomic_add_fetch(&s->matching, 1, __ATOMIC_RELAXED);
    int threads = s->cfg.lookup_threads - busy + 1;
    store_set_threads(w->store, threads < 1 ? 1 : threads, 0);
    match_opts_t mo;
    match_opts_default(&mo);
    mo.min_frames = r->min_score;
    mo.max_results = r->max_results * 4;
    mo.evidence = 500;
    mo.max_hits = w->srv->cfg.max_hits;
    mo.first_hits = w->srv->cfg.first_hits;
    mo.max_chance = w->srv->cfg.max_chance;
    char err[512];
    match_stats_t mst = {0};
    fp_err_t rc = match_query(ms, prints, nprints, &mo, &res, &nres, &mst, err, sizeof err);
    __atomic_sub_fetch(&s->matching, 1, __ATOMIC_RELAXED);
    if (rc == FP_ERR_IO) {
        snprintf(w->err, sizeof w->err, "%s", err);
        db_failed(w, r, "looking up the prints");
        goto out;
    }
    if (rc != FP_OK) {
        srv_problem(r, 500, "internal", "matching failed: %s", err);
        goto out;
    }
    double t2 = srv_now();
    srv_metrics_stage(s->metrics, 1, t2 - t1);
    if (mst.narrowed) srv_metrics_narrowed(s->metrics);

    /* one entry per recording, its segments strongest first, and the
     * tracks that hold the same audio */
    groups = calloc(nres + 1, sizeof *groups);
    size_t ng = 0, nrows = 0;
    for (size_t i = 0; i < nres && groups; i++) {
        size_t g = 0;
        while (g < ng && groups[g].track != res[i].track) g++;
        if (g == ng) {
            if (ng == r->max_results) continue;
            groups[ng++] = (group_t){.track = res[i].track};
            nrows++;
        }
        if (groups[g].n == 16) continue;
        groups[g].idx[groups[g].n++] = i;
        nrows += group_add_copies(&groups[g], &res[i]);
    }
    meta = json_object();
    tracks = groups ? malloc((nrows + 1) * sizeof *tracks) : NULL;
    size_t nt = 0;
    for (size_t g = 0; g < ng && tracks; g++) {
        tracks[nt++] = groups[g].track;
        for (size_t c = 0; c < groups[g].ncopies; c++) tracks[nt++] = groups[g].copies[c].track;
    }
    if (!tracks || !meta || (nt && track_meta(w, tracks, nt, meta))) {
        db_failed(w, r, "reading track metadata");
        goto out;
    }
    matches = json_array();
    /* one evidence text a stored row: a match's, then its copies' */
    evidence = calloc(nrows + 1, sizeof *evidence);
    if (evidence) nevidence = nrows;
    size_t row = 0;
    srv_flag_t upload_flag = FLAG_NONE;
    double fs = fp_config_frame_seconds(&s->fpcfg);
    for (size_t g = 0; g < ng && evidence; g++) {
        const match_result_t *best = &res[groups[g].idx[0]];
        const match_result_t *seg[16];
        json_t *segs = json_array();
        double matched = 0, qs = 1e30, qe = 0;
        uint32_t score = 0;
        for (size_t k = 0; k < groups[g].n; k++) {
            const match_result_t *m = seg[k] = &res[groups[g].idx[k]];
            json_array_append_new(segs, segment_json(m));
            matched += m->matched_seconds;
            score += m->frames;
            if (m->query_start < qs) qs = m->query_start;
            if (m->query_end > qe) qe = m->query_end;
        }
        evidence[row++] = srv_evidence_json(fs, segs, seg, groups[g].n, prints, nprints, qs, qe);
        double coverage = duration > 0 ? matched / duration : 0;
        if (coverage > 1) coverage = 1;
        srv_flag_t flag = srv_flag_of(&s->cfg.policy, score, matched, coverage);
        if (flag > upload_flag) upload_flag = flag;
        srv_metrics_match(s->metrics, flag);
        double sp, te, st;
        match_factors(best, &sp, &te, &st);
        char tid[16];
        snprintf(tid, sizeof tid, "%u", best->track);
        json_t *md = json_object_get(meta, tid);
        json_t *o = json_pack("{s:I, s:O?, s:O?, s:O?, s:O?, s:i, s:f, s:f, s:f, s:f, s:f, s:f, "
                              "s:f, s:f, s:f, s:f, s:s, s:i, s:s, s:o}",
                              "track_id", (json_int_t)best->track, "external_id",
                              json_object_get(md, "external_id"), "title",
                              json_object_get(md, "title"), "artist", json_object_get(md, "artist"),
                              "owner", json_object_get(md, "owner"), "score", (int)score,
                              "confidence", round3(best->confidence), "query_start",
                              round3(qs), "query_end", round3(qe), "ref_start",
                              round3(best->ref_start), "ref_end", round3(best->ref_end),
                              "matched_seconds", round3(matched), "coverage", round3(coverage),
                              "speed", round4(sp), "tempo", round4(te), "pitch_semitones",
                              round3(st), "change", match_change_name(best->change), "prints",
                              (int)best->prints, "flag", srv_flag_name(flag), "segments", segs);
        json_t *copies = json_array();
        for (size_t c = 0; c < groups[g].ncopies; c++) {
            const copy_t *cp = &groups[g].copies[c];
            json_t *csegs = json_array();
            for (size_t k = 0; k < cp->n; k++) json_array_append_new(csegs, segment_json(cp->seg[k]));
            evidence[row++] = srv_evidence_json(fs, csegs, cp->seg, cp->n, prints, nprints, qs, qe);
            snprintf(tid, sizeof tid, "%u", cp->track);
            json_array_append_new(copies, copy_json(cp, json_object_get(meta, tid), csegs));
        }
        json_object_set_new(o, "copies", copies);
        json_array_append_new(matches, o);
    }
    srv_metrics_upload(s->metrics, upload_flag);
    /* the result as stored shows the time up to its storing; the response,
     * the time until it is stored (committed) */
    char created[40] = "";
    if (new_upload_id(r, created, sizeof created)) {
        srv_problem(r, 500, "internal", "no random bytes for the upload's id");
        goto out;
    }
    double took = (srv_now() - t0) * 1e3;
    body = json_pack("{s:s, s:s?, s:s, s:f, s:i, s:f, s:f, s:s, s:O}", "upload_id", r->upload_id,
                     "client_ref", r->have_client_ref ? r->client_ref : NULL, "created_at",
                     created, "duration", round3(duration), "prints", (int)nprints,
                     "processing_ms", round3(took), "decode_ms", round3((t1 - t0) * 1e3), "flag",
                     srv_flag_name(upload_flag), "matches", matches);
    if (!body || !evidence ||
        store_result(w, r, key, duration, nprints, took, upload_flag, matches, evidence, created,
                     body)) {
        db_failed(w, r, "storing the result");
        goto out;
    }
    json_object_set_new(body, "processing_ms", json_real(round3((srv_now() - t0) * 1e3)));
    srv_metrics_stage(s->metrics, 2, srv_now() - t2);
    r->tenant = key->tenant_id;
    srv_respond_json(r, 200, body);
    body = NULL;
out:
    json_decref(body);
    json_decref(matches);
    for (size_t g = 0; g < nevidence; g++) free(evidence[g]);
    free(evidence);
    json_decref(meta);
    free(groups);
    free(tracks);
    match_results_free(res, nres);
    match_store_free(ms);
    if (prints != fr.prints) free(prints);
    fp_result_clear(&fr);
}

/* ---- the read routes --------------------------------------------------------------- */

static void do_get_match(srv_worker_t *w, srv_req_t *r, const keys_key_t *key)
{
    char tenant[24];
    snprintf(tenant, sizeof tenant, "%lld", (long long)key->tenant_id);
    /* a malformed id is simply not found: ids are not guessable either way */
    const char *p[2] = {r->id, tenant};
    PGresult *res;
    if (db_query(w->conn,
                 "SELECT u.result, coalesce((SELECT json_object_agg(m.rank || '.' || "
                 "m.copy_index, m.status) FROM matches m WHERE m.upload_id = u.id), '{}') "
                 "FROM uploads u "
                 "WHERE u.public_id::text = lower($1) AND u.tenant_id = $2",
                 2, p, 0, &res, w->err, sizeof w->err) != DB_OK) {
        db_failed(w, r, "reading the match");
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        srv_problem(r, 404, "not_found", "no upload %s for this key's tenant", r->id);
        return;
    }
    json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    json_t *st = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    PQclear(res);
    if (!o) {
        json_decref(st);
        srv_problem(r, 500, "internal", "the stored result does not parse");
        return;
    }
    /* the review state of each match and of each of its copies, as it
     * stands now (stored as rank.copy_index) */
    size_t i, k;
    json_t *m, *c;
    json_t *arr = json_object_get(o, "matches");
    json_array_foreach(arr, i, m)
    {
        char rk[48];
        snprintf(rk, sizeof rk, "%zu.0", i + 1);
        json_t *s = json_object_get(st, rk);
        json_object_set_new(m, "review_status", s ? json_incref(s) : json_string("pending"));
        json_array_foreach(json_object_get(m, "copies"), k, c)
        {
            snprintf(rk, sizeof rk, "%zu.%zu", i + 1, k + 1);
            s = json_object_get(st, rk);
            json_object_set_new(c, "review_status", s ? json_incref(s) : json_string("pending"));
        }
    }
    json_decref(st);
    r->tenant = key->tenant_id;
    srv_respond_json(r, 200, o);
}

static void do_get_track(srv_worker_t *w, srv_req_t *r, const keys_key_t *key)
{
    char *end;
    long long id = strtoll(r->id, &end, 10);
    if (end == r->id || *end || id <= 0) {
        srv_problem(r, 404, "not_found", "no track %s for this key's tenant", r->id);
        return;
    }
    char ids[24], tenant[24];
    snprintf(ids, sizeof ids, "%lld", id);
    snprintf(tenant, sizeof tenant, "%lld", (long long)key->tenant_id);
    const char *p[2] = {ids, tenant};
    PGresult *res;
    if (db_query(w->conn,
                 "SELECT json_build_object('track_id', t.id, 'external_id', t.external_id, "
                 "'title', t.title, 'artist', t.artist, 'owner', n.name, 'duration', "
                 "round(t.duration_s::numeric, 3), 'status', t.status, 'prints', t.prints, "
                 "'sha256', encode(t.sha256, 'hex'), 'params_version', t.params_version, "
                 "'created_at', to_char(t.created_at AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                 /* the copies the catalog knows of, the tenant's own only */
                 "'copies', (SELECT coalesce(json_agg(json_build_object('track_id', l.other_id, "
                 "'external_id', o.external_id, 'title', o.title, 'relation', l.relation, "
                 "'offset', round(l.offset_s::numeric, 3), 'aligned', "
                 "round(l.aligned_s::numeric, 3), 'coverage', round(l.coverage::numeric, 4), "
                 "'speed', round(l.speed::numeric, 4)) ORDER BY l.frames DESC, l.other_id), "
                 "'[]') FROM track_copy_links l JOIN tracks o ON o.id = l.other_id "
                 "WHERE l.track_id = t.id AND o.tenant_id = t.tenant_id))::text "
                 "FROM tracks t JOIN tenants n ON "
                 "n.id = t.tenant_id WHERE t.id = $1 AND t.tenant_id = $2",
                 2, p, 0, &res, w->err, sizeof w->err) != DB_OK) {
        db_failed(w, r, "reading the track");
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        srv_problem(r, 404, "not_found", "no track %s for this key's tenant", r->id);
        return;
    }
    json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    r->tenant = key->tenant_id;
    if (!o) srv_problem(r, 500, "internal", "the track does not serialize");
    else srv_respond_json(r, 200, o);
}

static void do_stats(srv_worker_t *w, srv_req_t *r, const keys_key_t *key)
{
    char tenant[24];
    snprintf(tenant, sizeof tenant, "%lld", (long long)key->tenant_id);
    const char *p[1] = {tenant};
    PGresult *res;
    if (db_query(w->conn,
                 "SELECT json_build_object("
                 "'tenant', (SELECT name FROM tenants WHERE id = $1), "
                 "'tracks', (SELECT count(*) FROM tracks WHERE tenant_id = $1 AND status <> 'deleted'), "
                 "'hours', (SELECT round(coalesce(sum(duration_s), 0)::numeric / 3600, 3) FROM tracks "
                 "WHERE tenant_id = $1 AND status <> 'deleted'), "
                 "'prints', (SELECT coalesce(sum(prints), 0) FROM tracks WHERE tenant_id = $1 AND "
                 "status <> 'deleted'), "
                 "'uploads', (SELECT count(*) FROM uploads WHERE tenant_id = $1), "
                 "'matches', (SELECT count(*) FROM matches WHERE tenant_id = $1), "
                 "'flags', (SELECT json_build_object("
                 "'likely_infringement', count(*) FILTER (WHERE flag = 'likely_infringement'), "
                 "'possible_reuse', count(*) FILTER (WHERE flag = 'possible_reuse'), "
                 "'none', count(*) FILTER (WHERE flag = 'none')) FROM uploads WHERE tenant_id = $1))::text",
                 1, p, 0, &res, w->err, sizeof w->err) != DB_OK) {
        db_failed(w, r, "reading the statistics");
        return;
    }
    json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (o && key->role == KEYS_ROLE_ADMIN) {
        store_stats_t st;
        if (store_stats(w->conn, &st, w->err, sizeof w->err) == DB_OK)
            json_object_set_new(o, "store",
                                json_pack("{s:I, s:I, s:I, s:f}", "segments", (json_int_t)st.segments,
                                          "prints", (json_int_t)st.prints, "bytes",
                                          (json_int_t)st.bytes,
                                          "bytes_per_print",
                                          st.prints ? (double)st.bytes / (double)st.prints : 0.0));
    }
    r->tenant = key->tenant_id;
    if (!o) srv_problem(r, 500, "internal", "the statistics do not serialize");
    else srv_respond_json(r, 200, o);
}

static void do_ready(srv_worker_t *w, srv_req_t *r)
{
    int v = 0;
    if (db_schema_version(w->conn, &v, w->err, sizeof w->err) != DB_OK) {
        db_failed(w, r, "checking the schema");
        return;
    }
    if (v != DB_SCHEMA_VERSION) {
        srv_problem(r, 503, "schema_mismatch", "the database schema is at version %d, this build needs %d",
                    v, DB_SCHEMA_VERSION);
        return;
    }
    srv_respond_json(r, 200, json_pack("{s:s, s:i}", "status", "ready", "schema", v));
}

/* ---- dispatch ------------------------------------------------------------------------ */

void srv_work(srv_worker_t *w, srv_req_t *r)
{
    if (ensure_db(w)) {
        r->retry_after = 5;
        srv_metrics_db_error(w->srv->metrics);
        srv_problem(r, 503, "database_unavailable", "the database is unreachable; retry later");
        return;
    }
    if (r->route == ROUTE_READY) {
        do_ready(w, r);
        return;
    }
    keys_key_t key;
    int a = authenticate(w, r, &key);
    if (a < 0) {
        db_failed(w, r, "checking the API key");
        return;
    }
    if (!a || key.revoked) {
        srv_problem(r, 401, "unauthorized", a ? "this API key was revoked" : "unknown API key");
        return;
    }
    r->tenant = key.tenant_id;
    switch (r->route) {
    case ROUTE_MATCH_POST: do_match(w, r, &key); break;
    case ROUTE_MATCH_GET: do_get_match(w, r, &key); break;
    case ROUTE_TRACK_GET: do_get_track(w, r, &key); break;
    case ROUTE_STATS: do_stats(w, r, &key); break;
    default: srv_problem(r, 404, "not_found", "no such route"); break;
    }
}

/* ---- the pool ---------------------------------------------------------------------- */

int srv_enqueue(struct server *s, srv_req_t *r)
{
    pthread_mutex_lock(&s->lock);
    if (s->queued >= s->cfg.queue_limit || s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    r->next = NULL;
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->queued++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void *worker_main(void *arg)
{
    srv_worker_t *w = arg;
    struct server *s = w->srv;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->head && !s->stopping) pthread_cond_wait(&s->cond, &s->lock);
        srv_req_t *r = s->head;
        if (r) {
            s->head = r->next;
            if (!s->head) s->tail = NULL;
            s->queued--;
        }
        int stop = s->stopping && !r;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        if (!r) continue;
        srv_work(w, r);
        r->state = ST_QUEUED;
        MHD_resume_connection(r->conn);
    }
    drop_db(w);
    return NULL;
}

int srv_workers_start(struct server *s, char *err, size_t errlen)
{
    s->workers = calloc((size_t)s->cfg.workers, sizeof *s->workers);
    srv_worker_t *ws = calloc((size_t)s->cfg.workers, sizeof *ws);
    if (!s->workers || !ws) {
        free(s->workers);
        free(ws);
        s->workers = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->pool = ws;
    for (int i = 0; i < s->cfg.workers; i++) {
        ws[i].srv = s;
        /* connect now, so that the first requests do not pay for it; a
         * database that is down is tried again per request */
        ensure_db(&ws[i]);
        if (pthread_create(&s->workers[i], NULL, worker_main, &ws[i])) break;
        s->nworkers++;
    }
    if (!s->nworkers) {
        snprintf(err, errlen, "cannot start worker threads");
        return -1;
    }
    return 0;
}

void srv_workers_stop(struct server *s)
{
    if (!s->workers) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i], NULL);
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
    free(s->pool);
    s->pool = NULL;
}
