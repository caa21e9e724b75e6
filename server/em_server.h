/*
 * em_server.h -- the HTTP matching service behind `earmark serve`.
 *
 *   server_http.c     libmicrohttpd: routes, limits checked at the headers,
 *                     bodies, responses; connection threads never wait on
 *                     the database or on CPU work: requests that need either
 *                     are suspended and handed to the workers
 *   server_work.c     the worker pool: one database connection and store
 *                     handle each; authentication, matching, the stored
 *                     results, the read routes
 *   server_policy.c   the flag of a match and of an upload, and confidence
 *   server_limits.c   per-key rate limiting (token buckets)
 *   server_metrics.c  counters and histograms in the Prometheus text format
 *   server_json.c     JSON bodies: results, problem details, prints uploaded
 *                     as `earmark fingerprint --json`
 *   cmd_serve.c       `earmark serve`: options, environment, signals
 *
 * docs/api.md and docs/openapi.yaml describe the routes.  Ownership: the
 * server copies what it needs from the config; server_free() releases all.
 */
#ifndef EARMARK_SERVER_H
#define EARMARK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* When a match, and an upload, is flagged. */
typedef struct server_policy {
    double infringement_seconds;   /* likely_infringement: at least this many
                                      matched seconds (default 10) ... */
    double infringement_coverage;  /* ... or this share of the upload (0.5) */
    uint32_t infringement_score;   /* ... and at least this score (40) */
    double reuse_seconds;          /* possible_reuse: at least this many
                                      matched seconds (default 3) */
    uint32_t reuse_score;          /* ... and this score (15) */
} server_policy_t;

typedef struct server_config {
    const char *listen;            /* address to bind (default "127.0.0.1") */
    int port;                      /* default 8080; 0 picks a free port */
    int reuse_port;                /* 1: share the port with other servers
                                      (SO_REUSEPORT), which then split the
                                      connections; default 0: a port in use
                                      is an error at start */
    const char *conninfo;          /* libpq conninfo ("" = environment) */
    int workers;                   /* matching threads (default: cores) */
    int lookup_threads;            /* threads one large lookup is split
                                      over at most, its worker's included,
                                      less one for each other lookup under
                                      way (default: cores; 1: no split) */
    int io_threads;                /* libmicrohttpd threads (default 2) */
    size_t max_upload_bytes;       /* 413 above (default 50 MB) */
    double max_duration_s;         /* longer decoded audio: 413 (default 600) */
    unsigned request_timeout_s;    /* a request's body must arrive in this
                                      time (default 60) */
    unsigned idle_timeout_s;       /* idle keep-alive connections closed
                                      after this (default 30) */
    unsigned max_connections;      /* in all (default 512) */
    unsigned max_connections_per_ip; /* (default 64) */
    double rate_per_key;           /* requests per second per key (default 50) */
    double burst_per_key;          /* bucket size (default 100) */
    size_t queue_limit;            /* jobs waiting for a worker before 503
                                      (default 1024) */
    size_t cache_bytes;            /* rows of the print store kept in memory,
                                      shared by the workers (default 1 GiB;
                                      0: none, every lookup asks PostgreSQL) */
    size_t max_hits;               /* hits a lookup fetches at most, the
                                      rarest hashes first (default
                                      MATCH_DEFAULT_MAX_HITS; 0: no limit) */
    size_t first_hits;             /* a lookup's first part (match_opts_t;
                                      default MATCH_DEFAULT_FIRST_HITS; 0:
                                      one part) */
    double max_chance;             /* a claim's bound on the alignments as
                                      strong expected by chance (match_opts_t;
                                      default MATCH_DEFAULT_MAX_CHANCE; 0: no
                                      test) */
    uint32_t default_min_score;    /* a match's minimum score (default 12) */
    size_t default_max_results;    /* (default 10) */
    server_policy_t policy;
    int log_requests;              /* one line a request on stderr (default 1) */
} server_config_t;

/* Fill *c with the defaults above. */
void server_config_default(server_config_t *c);

typedef struct server server_t;

/*
 * Connect the workers to the database (retrying while it is unreachable:
 * the server starts anyway and answers 503 until it is back), bind and
 * start serving.  On success *out runs until server_stop().  The port
 * actually bound is server_port().  Returns 0, or -1 with err.
 */
int server_start(const server_config_t *cfg, server_t **out, char *err, size_t errlen);

/* The TCP port the server listens on. */
int server_port(const server_t *s);

/*
 * Stop accepting connections, let requests in flight finish (at most
 * grace_s seconds), stop the workers.  Then server_free().
 */
void server_stop(server_t *s, double grace_s);
void server_free(server_t *s);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_SERVER_H */
