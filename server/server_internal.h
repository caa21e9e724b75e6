/*
 * server_internal.h -- what the server's files share (srv_ names); not
 * installed.
 */
#ifndef EARMARK_SERVER_INTERNAL_H
#define EARMARK_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "earmark_fp.h"
#include "em_match.h"
#include "em_server.h"

struct store_cache; /* em_store.h; only pointed to here */

/* ---- routes ------------------------------------------------------------- */

typedef enum srv_route {
    ROUTE_MATCH_POST = 0,  /* POST /v1/matches */
    ROUTE_MATCH_GET,       /* GET /v1/matches/{id} */
    ROUTE_TRACK_GET,       /* GET /v1/tracks/{id} */
    ROUTE_STATS,           /* GET /v1/catalog/stats */
    ROUTE_HEALTH,          /* GET /healthz */
    ROUTE_READY,           /* GET /readyz */
    ROUTE_METRICS,         /* GET /metrics */
    ROUTE_OTHER,           /* anything else: 404 / 405 */
    ROUTE_COUNT
} srv_route_t;

const char *srv_route_name(srv_route_t r);

/* What the body of a POST /v1/matches is. */
typedef enum srv_body_kind { BODY_AUDIO, BODY_MULTIPART, BODY_PRINTS } srv_body_kind_t;

/* ---- a request ------------------------------------------------------------ */

typedef enum srv_state {
    ST_HEADERS = 0,   /* first call seen, body may follow */
    ST_RESPOND,       /* a response is ready (error at the headers, or done) */
    ST_QUEUED,        /* suspended, with a worker */
} srv_state_t;

typedef struct srv_req {
    struct srv_req *next;          /* job queue link */
    struct server *srv;
    struct MHD_Connection *conn;
    srv_route_t route;
    srv_state_t state;
    double t0;                     /* monotonic seconds at the headers */
    int close;                     /* answer with Connection: close (the
                                      request's framing cannot be trusted) */
    size_t discarded;              /* body bytes read and dropped after an
                                      answer given at the headers */
    char id[80];                   /* {id} of the route */
    char remote[64];

    /* the caller */
    int have_key;
    uint8_t key_digest[32];
    char key_prefix[16];

    /* POST /v1/matches */
    srv_body_kind_t kind;
    char content_type[128];
    char client_ref[256];
    int have_client_ref;
    uint32_t min_score;
    size_t max_results;
    uint8_t *body;
    size_t len, cap;
    size_t declared;               /* Content-Length (0: none): the body's
                                      room is made once */
    int too_big;
    int oom;                       /* the body could not be stored */
    int second_file;               /* multipart: a second part "file" */
    struct MHD_PostProcessor *pp;
    char file_type[128];           /* Content-Type of the multipart file part */
    int got_file;

    /* the response, made by whoever answers */
    unsigned status;
    char *resp;                    /* malloc'd body */
    size_t resp_len;
    const char *resp_type;
    unsigned retry_after;          /* seconds, 0: none */
    int64_t tenant;                /* for the log line */
    char upload_id[40];
} srv_req_t;

/* Set a JSON response from a jansson value (stolen); and the problem form. */
void srv_respond_json(srv_req_t *r, unsigned status, json_t *body);
void srv_problem(srv_req_t *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the server ------------------------------------------------------------ */

typedef struct srv_key_cache srv_key_cache_t;
typedef struct srv_limiter srv_limiter_t;
typedef struct srv_metrics srv_metrics_t;

struct server {
    server_config_t cfg;
    char listen[64];
    char conninfo[4096];
    struct MHD_Daemon *mhd;
    int port;
    fp_config_t fpcfg;
    fp_limits_t fplim;

    /* the job queue and the workers */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    srv_req_t *head, *tail;
    size_t queued;
    int stopping;
    pthread_t *workers;
    struct srv_worker *pool;       /* one per thread */
    int nworkers;
    int in_flight;                 /* requests between headers and completion */
    int matching;                  /* workers in a lookup now (atomic) */

    srv_key_cache_t *keys;
    srv_limiter_t *limiter;
    srv_metrics_t *metrics;
    struct store_cache *cache;     /* NULL when cfg.cache_bytes is 0 */
    int db_up;                     /* last seen state of the database */
};

/* Give a request to the workers; 0, or -1 when the queue is full. */
int srv_enqueue(struct server *s, srv_req_t *r);

/* Start and stop the worker threads. */
int srv_workers_start(struct server *s, char *err, size_t errlen);
void srv_workers_stop(struct server *s);

/* Run one request on a worker (server_work.c). */
typedef struct srv_worker srv_worker_t;
void srv_work(srv_worker_t *w, srv_req_t *r);

/* ---- policy (server_policy.c) ------------------------------------------------ */

typedef enum srv_flag { FLAG_NONE = 0, FLAG_REUSE = 1, FLAG_INFRINGEMENT = 2 } srv_flag_t;
const char *srv_flag_name(srv_flag_t f);
srv_flag_t srv_flag_of(const server_policy_t *p, uint32_t score, double matched_s,
                       double coverage);

/* ---- rate limits (server_limits.c) -------------------------------------------- */

srv_limiter_t *srv_limiter_new(double rate, double burst);
void srv_limiter_free(srv_limiter_t *l);
/* 0 when a request of this key may go now; else the seconds to wait. */
unsigned srv_limiter_take(srv_limiter_t *l, const uint8_t digest[32], double now);

/* ---- key cache (server_work.c) -------------------------------------------------- */

srv_key_cache_t *srv_key_cache_new(void);
void srv_key_cache_free(srv_key_cache_t *c);

/* ---- metrics (server_metrics.c) ---------------------------------------------------- */

srv_metrics_t *srv_metrics_new(void);
void srv_metrics_free(srv_metrics_t *m);
void srv_metrics_request(srv_metrics_t *m, srv_route_t route, unsigned status, double seconds);
void srv_metrics_stage(srv_metrics_t *m, int stage, double seconds); /* 0 decode, 1 match, 2 store */
void srv_metrics_match(srv_metrics_t *m, srv_flag_t flag);
void srv_metrics_upload(srv_metrics_t *m, srv_flag_t flag);
void srv_metrics_decode_failure(srv_metrics_t *m);
void srv_metrics_narrowed(srv_metrics_t *m);
void srv_metrics_db_error(srv_metrics_t *m);
void srv_metrics_in_flight(srv_metrics_t *m, int delta);
/* The Prometheus text exposition; malloc'd. */
/*
 * server_text.c: text built by appending.  Start from {0}; srv_text_add
 * appends n bytes, srv_text_printf a formatted string; once an allocation
 * fails the text ignores appends.  srv_text_take gives the text
 * (NUL-terminated, malloc'd, the caller's; its length in *len when len is
 * not NULL) and empties t, or frees it and returns NULL when an append
 * failed.
 */
typedef struct srv_text {
    char *p;
    size_t len, cap;
    int failed;
} srv_text_t;
void srv_text_add(srv_text_t *t, const char *s, size_t n);
void srv_text_printf(srv_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *srv_text_take(srv_text_t *t, size_t *len);

/*
 * server_evidence.c.  A match's evidence as JSON text: frame_seconds, the
 * segments (a jansson array, borrowed), the aligned points of the matches
 * ms[0 .. nm) and the query's peaks (the distinct anchors of prints within
 * qs .. qe seconds, a second more either side, at most 1 500).  The rows
 * for the result's statement: each match of `matches` with its "rank"
 * (from 1) and "copy_index" 0, then one row for each of its "copies" (the
 * match's fields overlaid with the copy's, copy_index from 1), each row's
 * evidence spliced in from evidence[] in that order, as one JSON array.
 * Both malloc'd, the caller's to free; NULL when out of memory (or an
 * evidence is NULL).
 */
char *srv_evidence_json(double fs, const json_t *segments, const match_result_t *const *ms,
                        size_t nm, const fp_print_t *prints, size_t nprints, double qs, double qe);
char *srv_match_rows_json(const json_t *matches, char *const *evidence);

char *srv_metrics_render(srv_metrics_t *m, size_t queued, int db_up, struct store_cache *cache,
                         size_t *len);

/* ---- JSON (server_json.c) ------------------------------------------------------- */

/*
 * Prints uploaded in the form `earmark fingerprint --json` writes: parse,
 * check the parameters match cfg and the span is within max_duration_s (0:
 * no limit).  On success *prints (malloc'd) and *n, *duration_s (the
 * claimed duration, but never less than the prints' span).  Returns 0, or
 * an HTTP status (400, 413, 422, 503) with code and a message in msg.
 */
unsigned srv_parse_prints(const uint8_t *body, size_t len, const fp_config_t *cfg,
                          double max_duration_s, fp_print_t **prints, size_t *n,
                          double *duration_s, const char **code, char *msg, size_t msglen);

double srv_now(void);

#endif
