/*
 * cmd_serve.c -- `earmark serve`: the HTTP matching service.
 *
 * Every setting has a flag and an environment variable (the flag wins);
 * `earmark serve --help` lists them with their defaults.  The database is
 * the one db_conninfo_resolve() names ($EARMARK_DB, the PG* variables, the
 * private cluster).  SIGTERM, SIGINT or SIGHUP: stop accepting connections
 * (new ones are refused), finish the requests in flight (up to --grace
 * seconds), exit 0.  A port another server listens on is an error at start
 * unless --reuse-port 1 asks to share it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "em_db.h"
#include "em_server.h"

/* T_SIZE_MB: above 0; T_SIZE_MB0: 0 allowed (off) */
/* T_COUNT: a size_t, 0..10^9 */
typedef enum { T_STR, T_INT, T_UINT, T_SIZE_MB, T_SIZE_MB0, T_DOUBLE, T_U32, T_COUNT } opt_type_t;

typedef struct opt {
    const char *flag;   /* --flag VALUE */
    const char *env;    /* EARMARK_... */
    opt_type_t type;
    void *ptr;
    const char *help;
} opt_t;

static const char *USAGE = "earmark serve [--listen ADDR] [--port N] [--workers N] [OPTION VALUE]... "
                           "(--help lists them)";

static int parse_value(const opt_t *o, const char *v)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case T_STR: *(const char **)o->ptr = v; return 0;
    case T_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > 1000000) return -1;
        *(int *)o->ptr = (int)x;
        return 0;
    }
    case T_UINT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > 1000000) return -1;
        *(unsigned *)o->ptr = (unsigned)x;
        return 0;
    }
    case T_COUNT: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > 1000000000LL) return -1;
        *(size_t *)o->ptr = (size_t)x;
        return 0;
    }
    case T_U32: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 1 || x > 1000000) return -1;
        *(uint32_t *)o->ptr = (uint32_t)x;
        return 0;
    }
    case T_SIZE_MB:
    case T_SIZE_MB0: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x > 0 || (x == 0 && o->type == T_SIZE_MB0)) || x > 1e6)
            return -1;
        *(size_t *)o->ptr = (size_t)(x * 1024 * 1024);
        return 0;
    }
    case T_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= 0) || x > 1e9) return -1;
        *(double *)o->ptr = x;
        return 0;
    }
    }
    return -1;
}

static void show_default(const opt_t *o, char *buf, size_t len)
{
    switch (o->type) {
    case T_STR: snprintf(buf, len, "%s", *(const char **)o->ptr ? *(const char **)o->ptr : ""); break;
    case T_INT: snprintf(buf, len, "%d", *(int *)o->ptr); break;
    case T_UINT: snprintf(buf, len, "%u", *(unsigned *)o->ptr); break;
    case T_U32: snprintf(buf, len, "%u", *(uint32_t *)o->ptr); break;
    case T_COUNT: snprintf(buf, len, "%zu", *(size_t *)o->ptr); break;
    case T_SIZE_MB:
    case T_SIZE_MB0: snprintf(buf, len, "%g", (double)*(size_t *)o->ptr / (1024 * 1024)); break;
    case T_DOUBLE: snprintf(buf, len, "%g", *(double *)o->ptr); break;
    }
}

int cmd_serve(int argc, char **argv)
{
    server_config_t c;
    server_config_default(&c);
    const char *port_file = NULL;
    double grace = 30;
    int quiet = 0;
    opt_t opts[] = {
        {"--listen", "EARMARK_LISTEN", T_STR, &c.listen, "IPv4 address to listen on"},
        {"--port", "EARMARK_PORT", T_INT, &c.port, "TCP port (0: any free port)"},
        {"--port-file", "EARMARK_PORT_FILE", T_STR, &port_file, "write the bound port here"},
        {"--reuse-port", "EARMARK_REUSE_PORT", T_INT, &c.reuse_port,
         "1: share the port with other servers (else a port in use is an error)"},
        {"--workers", "EARMARK_WORKERS", T_INT, &c.workers, "matching threads (0: one per core)"},
        {"--lookup-threads", "EARMARK_LOOKUP_THREADS", T_INT, &c.lookup_threads,
         "threads a large lookup is split over (0: one per core)"},
        {"--io-threads", "EARMARK_IO_THREADS", T_INT, &c.io_threads, "HTTP threads"},
        {"--max-upload-mb", "EARMARK_MAX_UPLOAD_MB", T_SIZE_MB, &c.max_upload_bytes,
         "largest upload, MB (413 at the headers)"},
        {"--max-duration", "EARMARK_MAX_DURATION", T_DOUBLE, &c.max_duration_s,
         "longest decoded audio, seconds (413)"},
        {"--request-timeout", "EARMARK_REQUEST_TIMEOUT", T_UINT, &c.request_timeout_s,
         "seconds for a request's body to arrive (408)"},
        {"--idle-timeout", "EARMARK_IDLE_TIMEOUT", T_UINT, &c.idle_timeout_s,
         "seconds before an idle connection is closed"},
        {"--max-connections", "EARMARK_MAX_CONNECTIONS", T_UINT, &c.max_connections,
         "connections in all"},
        {"--max-connections-per-ip", "EARMARK_MAX_CONNECTIONS_PER_IP", T_UINT,
         &c.max_connections_per_ip, "connections per client address"},
        {"--rate", "EARMARK_RATE", T_DOUBLE, &c.rate_per_key, "requests a second per key (0: no limit)"},
        {"--burst", "EARMARK_BURST", T_DOUBLE, &c.burst_per_key, "requests a key may send at once"},
        {"--queue-limit", "EARMARK_QUEUE_LIMIT", T_UINT, &c.queue_limit,
         "requests waiting for a worker before 503"},
        {"--cache-mb", "EARMARK_CACHE_MB", T_SIZE_MB0, &c.cache_bytes,
         "print-store rows kept in memory, MB (0: none)"},
        {"--max-hits", "EARMARK_MAX_HITS", T_COUNT, &c.max_hits,
         "hits a lookup fetches at most, the rarest hashes first (0: no limit)"},
        {"--first-hits", "EARMARK_FIRST_HITS", T_COUNT, &c.first_hits,
         "the first part of a lookup in two, in hits (0: one part)"},
        {"--max-chance", "EARMARK_MAX_CHANCE", T_DOUBLE, &c.max_chance,
         "a claim: alignments as strong expected by chance at most (0: no test)"},
        {"--min-score", "EARMARK_MIN_SCORE", T_U32, &c.default_min_score,
         "default minimum score of a match"},
        {"--infringement-seconds", "EARMARK_INFRINGEMENT_SECONDS", T_DOUBLE,
         &c.policy.infringement_seconds, "likely_infringement: matched seconds at least"},
        {"--infringement-coverage", "EARMARK_INFRINGEMENT_COVERAGE", T_DOUBLE,
         &c.policy.infringement_coverage, "... or this share of the upload"},
        {"--infringement-score", "EARMARK_INFRINGEMENT_SCORE", T_U32, &c.policy.infringement_score,
         "... and a score at least"},
        {"--reuse-seconds", "EARMARK_REUSE_SECONDS", T_DOUBLE, &c.policy.reuse_seconds,
         "possible_reuse: matched seconds at least"},
        {"--reuse-score", "EARMARK_REUSE_SCORE", T_U32, &c.policy.reuse_score,
         "... and a score at least"},
        {"--grace", "EARMARK_GRACE", T_DOUBLE, &grace, "seconds to finish requests on SIGTERM"},
    };
    size_t nopts = sizeof opts / sizeof opts[0];
    /* the queue limit is a size_t in the config: go through an unsigned */
    unsigned queue_limit = (unsigned)c.queue_limit;
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].ptr == &c.queue_limit) opts[i].ptr = &queue_limit, opts[i].type = T_UINT;

    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\nThe HTTP matching service (docs/api.md).  Settings, as flags or "
                   "environment variables:\n\n", USAGE);
            for (size_t k = 0; k < nopts; k++) {
                char d[64];
                show_default(&opts[k], d, sizeof d);
                printf("  %-26s %-32s %s (default %s)\n", opts[k].flag, opts[k].env, opts[k].help,
                       d[0] ? d : "none");
            }
            printf("  %-26s %-32s %s\n", "--quiet", "", "no log line per request");
            printf("\nThe database: $EARMARK_DB, else the PG* variables, else the private cluster.\n"
                   "SIGTERM, SIGINT or SIGHUP stops accepting (new connections are refused),\n"
                   "finishes what is in flight, exits 0.\n");
            return EXIT_OK;
        }
    for (size_t k = 0; k < nopts; k++) {
        const char *v = getenv(opts[k].env);
        if (v && *v && parse_value(&opts[k], v))
            return cli_usage("serve", USAGE, "%s='%s' is not a valid value", opts[k].env, v);
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
            continue;
        }
        size_t k = 0;
        while (k < nopts && strcmp(argv[i], opts[k].flag)) k++;
        if (k == nopts) return cli_usage("serve", USAGE, "unknown option %s", argv[i]);
        if (i + 1 >= argc) return cli_usage("serve", USAGE, "%s needs a value", argv[i]);
        if (parse_value(&opts[k], argv[++i]))
            return cli_usage("serve", USAGE, "%s '%s' is not a valid value", opts[k].flag, argv[i]);
    }
    c.queue_limit = queue_limit;
    if (c.port > 65535) return cli_usage("serve", USAGE, "--port wants 0..65535, not %d", c.port);
    if (quiet) c.log_requests = 0;

    char conninfo[4096], err[2048];
    if (db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK) {
        cli_error("serve", "cannot work out where the database is");
        return EXIT_FAIL;
    }
    c.conninfo = conninfo;

    /* the signals go to this thread only, which waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP); /* a closed terminal or a supervisor's hangup: drain too */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server_t *s;
    if (server_start(&c, &s, err, sizeof err)) {
        cli_error("serve", "%s", err);
        return EXIT_FAIL;
    }
    if (port_file) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", server_port(s)) < 0 || fclose(f) || rename(tmp, port_file)) {
            cli_error("serve", "cannot write %s: %s", port_file, strerror(errno));
            server_stop(s, 0);
            server_free(s);
            return EXIT_FAIL;
        }
    }
    fprintf(stderr, "earmark serve: listening on http://%s:%d/ (%d workers)\n", c.listen,
            server_port(s), c.workers > 0 ? c.workers : (int)sysconf(_SC_NPROCESSORS_ONLN));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "earmark serve: %s: finishing the requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGINT");
    server_stop(s, grace);
    server_free(s);
    fprintf(stderr, "earmark serve: stopped\n");
    return EXIT_OK;
}
