/*
 * server_metrics.c -- the service's counters, in the Prometheus text
 * format (version 0.0.4) at GET /metrics:
 *
 *   earmark_requests_total{route,code}              counter
 *   earmark_request_duration_seconds{route}         histogram
 *   earmark_stage_duration_seconds{stage}           histogram: decode, match, store
 *   earmark_matches_total{flag}                     counter: matches reported
 *   earmark_uploads_total{flag}                     counter: uploads matched
 *   earmark_decode_failures_total                   counter
 *   earmark_lookups_narrowed_total                  counter: lookups whose
 *                                                   second part was cut to
 *                                                   the first part's matches
 *   earmark_database_errors_total                   counter
 *   earmark_requests_in_flight                      gauge
 *   earmark_queue_depth                             gauge: waiting for a worker
 *   earmark_database_up                             gauge: 1 when the last
 *                                                   contact succeeded
 *
 * Updates are atomic additions; rendering reads without a lock (a scrape
 * may see one counter a request ahead of another, which Prometheus
 * tolerates).  Status codes are kept per route for the codes the service
 * uses; others fall in "other".
 */
#include "server_internal.h"

#include "em_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned CODES[] = {200, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 499, 500, 503};
#define NCODES (sizeof CODES / sizeof CODES[0])
static const double BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof BOUNDS / sizeof BOUNDS[0])
#define NSTAGES 3

typedef struct hist {
    uint64_t bucket[NB + 1];
    uint64_t count;
    uint64_t sum_us;
} hist_t;

struct srv_metrics {
    uint64_t requests[ROUTE_COUNT][NCODES + 1];
    hist_t latency[ROUTE_COUNT];
    hist_t stage[NSTAGES];
    uint64_t matches[3], uploads[3];
    uint64_t decode_failures, db_errors, narrowed;
    int64_t in_flight;
};

srv_metrics_t *srv_metrics_new(void)
{
    return calloc(1, sizeof(srv_metrics_t));
}

void srv_metrics_free(srv_metrics_t *m)
{
    free(m);
}

static void observe(hist_t *h, double s)
{
    size_t i = 0;
    while (i < NB && s > BOUNDS[i]) i++;
    __atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_us, (uint64_t)(s * 1e6), __ATOMIC_RELAXED);
}

void srv_metrics_request(srv_metrics_t *m, srv_route_t route, unsigned status, double seconds)
{
    size_t c = 0;
    while (c < NCODES && CODES[c] != status) c++;
    if ((unsigned)route >= ROUTE_COUNT) route = ROUTE_OTHER;
    __atomic_fetch_add(&m->requests[route][c], 1, __ATOMIC_RELAXED);
    observe(&m->latency[route], seconds);
}

void srv_metrics_stage(srv_metrics_t *m, int stage, double seconds)
{
    if (stage >= 0 && stage < NSTAGES) observe(&m->stage[stage], seconds);
}

void srv_metrics_match(srv_metrics_t *m, srv_flag_t flag)
{
    __atomic_fetch_add(&m->matches[flag], 1, __ATOMIC_RELAXED);
}

void srv_metrics_upload(srv_metrics_t *m, srv_flag_t flag)
{
    __atomic_fetch_add(&m->uploads[flag], 1, __ATOMIC_RELAXED);
}

void srv_metrics_decode_failure(srv_metrics_t *m)
{
    __atomic_fetch_add(&m->decode_failures, 1, __ATOMIC_RELAXED);
}

void srv_metrics_narrowed(srv_metrics_t *m)
{
    __atomic_fetch_add(&m->narrowed, 1, __ATOMIC_RELAXED);
}

void srv_metrics_db_error(srv_metrics_t *m)
{
    __atomic_fetch_add(&m->db_errors, 1, __ATOMIC_RELAXED);
}

void srv_metrics_in_flight(srv_metrics_t *m, int delta)
{
    __atomic_fetch_add(&m->in_flight, delta, __ATOMIC_RELAXED);
}

static void put_hist(srv_text_t *b, const char *name, const char *label, const char *value,
                     const hist_t *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NB; i++) {
        cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
        if (i < NB) srv_text_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value, BOUNDS[i],
                        (unsigned long long)cum);
        else srv_text_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
                 (unsigned long long)cum);
    }
    srv_text_printf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
        (double)__atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) / 1e6);
    srv_text_printf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
        (unsigned long long)__atomic_load_n(&h->count, __ATOMIC_RELAXED));
}

char *srv_metrics_render(srv_metrics_t *m, size_t queued, int db_up, struct store_cache *cache,
                         size_t *len)
{
    srv_text_t b = {0};
    static const char *flags[] = {"none", "possible_reuse", "likely_infringement"};
    static const char *stages[] = {"decode", "match", "store"};
    srv_text_printf(&b, "# HELP earmark_requests_total HTTP requests by route and status code.\n"
            "# TYPE earmark_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (size_t c = 0; c <= NCODES; c++) {
            uint64_t v = __atomic_load_n(&m->requests[r][c], __ATOMIC_RELAXED);
            if (!v) continue;
            if (c < NCODES)
                srv_text_printf(&b, "earmark_requests_total{route=\"%s\",code=\"%u\"} %llu\n",
                    srv_route_name((srv_route_t)r), CODES[c], (unsigned long long)v);
            else
                srv_text_printf(&b, "earmark_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                    srv_route_name((srv_route_t)r), (unsigned long long)v);
        }
    srv_text_printf(&b, "# HELP earmark_request_duration_seconds Time from the request's headers to its "
            "response.\n# TYPE earmark_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        put_hist(&b, "earmark_request_duration_seconds", "route", srv_route_name((srv_route_t)r),
                 &m->latency[r]);
    srv_text_printf(&b, "# HELP earmark_stage_duration_seconds Time of the stages of POST /v1/matches.\n"
            "# TYPE earmark_stage_duration_seconds histogram\n");
    for (int s = 0; s < NSTAGES; s++)
        put_hist(&b, "earmark_stage_duration_seconds", "stage", stages[s], &m->stage[s]);
    srv_text_printf(&b, "# HELP earmark_matches_total Catalog recordings reported in uploads, by flag.\n"
            "# TYPE earmark_matches_total counter\n");
    for (int f = 0; f < 3; f++)
        srv_text_printf(&b, "earmark_matches_total{flag=\"%s\"} %llu\n", flags[f],
            (unsigned long long)__atomic_load_n(&m->matches[f], __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_uploads_total Uploads matched, by the upload's flag.\n"
            "# TYPE earmark_uploads_total counter\n");
    for (int f = 0; f < 3; f++)
        srv_text_printf(&b, "earmark_uploads_total{flag=\"%s\"} %llu\n", flags[f],
            (unsigned long long)__atomic_load_n(&m->uploads[f], __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_decode_failures_total Uploads that could not be decoded.\n"
            "# TYPE earmark_decode_failures_total counter\n"
            "earmark_decode_failures_total %llu\n",
        (unsigned long long)__atomic_load_n(&m->decode_failures, __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_lookups_narrowed_total Lookups whose second part was fetched for the "
            "first part's matches only.\n"
            "# TYPE earmark_lookups_narrowed_total counter\n"
            "earmark_lookups_narrowed_total %llu\n",
        (unsigned long long)__atomic_load_n(&m->narrowed, __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_database_errors_total Requests that failed on the database.\n"
            "# TYPE earmark_database_errors_total counter\n"
            "earmark_database_errors_total %llu\n",
        (unsigned long long)__atomic_load_n(&m->db_errors, __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_requests_in_flight Requests being received, queued or worked on.\n"
            "# TYPE earmark_requests_in_flight gauge\nearmark_requests_in_flight %lld\n",
        (long long)__atomic_load_n(&m->in_flight, __ATOMIC_RELAXED));
    srv_text_printf(&b, "# HELP earmark_queue_depth Requests waiting for a worker.\n"
            "# TYPE earmark_queue_depth gauge\nearmark_queue_depth %zu\n", queued);
    srv_text_printf(&b, "# HELP earmark_database_up 1 when the last contact with the database succeeded.\n"
            "# TYPE earmark_database_up gauge\nearmark_database_up %d\n", db_up ? 1 : 0);
    store_cache_stats_t cs = {0};
    if (cache) store_cache_stats(cache, &cs);
    srv_text_printf(&b, "# HELP earmark_store_cache_lookups_total Rows of the print store looked up in the "
            "row cache, by result (a miss is fetched from the database).\n"
            "# TYPE earmark_store_cache_lookups_total counter\n"
            "earmark_store_cache_lookups_total{result=\"hit\"} %llu\n"
            "earmark_store_cache_lookups_total{result=\"miss\"} %llu\n",
        (unsigned long long)cs.hits, (unsigned long long)cs.misses);
    srv_text_printf(&b, "# HELP earmark_store_cache_evictions_total Rows evicted from the row cache.\n"
            "# TYPE earmark_store_cache_evictions_total counter\n"
            "earmark_store_cache_evictions_total %llu\n", (unsigned long long)cs.evictions);
    srv_text_printf(&b, "# HELP earmark_store_cache_bytes Bytes held by the row cache.\n"
            "# TYPE earmark_store_cache_bytes gauge\nearmark_store_cache_bytes %llu\n",
        (unsigned long long)cs.bytes);
    return srv_text_take(&b, len);
}
