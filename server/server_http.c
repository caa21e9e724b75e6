/*
 * server_http.c -- the HTTP side: libmicrohttpd, routes, what is decided at
 * the headers, bodies, responses, start and graceful stop.
 *
 * libmicrohttpd runs a small pool of threads polling with epoll.  The
 * access handler does only cheap things: it routes, checks the size, the
 * content type, the query parameters, the presence and form of the API key
 * and the key's rate, and collects the body.  Everything that needs the
 * database or real CPU (authentication against the key table, decoding,
 * matching, reading results) goes to the worker pool: the connection is
 * suspended, a worker fills in the response and resumes it.  So a slow
 * match or an unreachable database never holds up another client.
 *
 * Limits decided here, each configurable (em_server.h):
 *   - Content-Length above max_upload_bytes: 413 before the body is read;
 *     a body without Content-Length that grows past it: the connection is
 *     closed;
 *   - a body still arriving after request_timeout_s: the connection is
 *     closed then, the rest unread (logged and counted as a 408);
 *   - idle connections: closed after idle_timeout_s;
 *   - connections in all and per client address: libmicrohttpd refuses
 *     more;
 *   - requests per key: 429 with Retry-After (token bucket).
 */
#include "server_internal.h"

#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "em_keys.h"
#include "em_store.h"

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *srv_route_name(srv_route_t r)
{
    static const char *names[] = {"post_matches", "get_match", "get_track", "catalog_stats",
                                  "healthz",      "readyz",    "metrics",   "other"};
    return (unsigned)r < ROUTE_COUNT ? names[r] : "other";
}

/* ---- responses ------------------------------------------------------------- */

void srv_respond_json(srv_req_t *r, unsigned status, json_t *body)
{
    free(r->resp);
    r->resp = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    r->resp_type = "application/json";
    r->status = r->resp ? status : 500;
    json_decref(body);
}

/*
 * A problem-details body (RFC 9457, application/problem+json): type (a
 * stable URI-like name), title, status, code (the machine code), detail.
 */
/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the
 * bytes there are not one.
 */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4
                                                                                        : 0;
    }
    return 0;
}

/* Is the NUL-terminated s well-formed UTF-8? */
static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

/* Replace, in place, each byte of s that is not part of a well-formed UTF-8
 * sequence with '?': text from a request (a path, a header) quoted in a
 * problem's detail, which JSON must carry. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n) p += n;
        else *p++ = '?';
    }
}

void srv_problem(srv_req_t *r, unsigned status, const char *code, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    utf8_scrub(detail);
    char type[160];
    snprintf(type, sizeof type, "https://earmark.dev/problems/%s", code);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title",
                          MHD_get_reason_phrase_for(status), "status", (int)status, "code", code,
                          "detail", detail);
    free(r->resp);
    r->resp = o ? json_dumps(o, JSON_COMPACT) : NULL;
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    r->resp_type = "application/problem+json";
    r->status = status;
    json_decref(o);
}

static enum MHD_Result send_response(srv_req_t *r)
{
    struct MHD_Response *resp;
    if (r->resp) {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        r->resp = NULL;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (r->resp_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                r->route == ROUTE_MATCH_POST ? "POST" : "GET, HEAD");
    if (r->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ---- at the headers ------------------------------------------------------------ */

static srv_route_t route_of(const char *method, const char *url, char *id, size_t idlen,
                            int *bad_method)
{
    *bad_method = 0;
    id[0] = '\0';
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/v1/matches")) {
        *bad_method = strcmp(method, "POST") != 0;
        return ROUTE_MATCH_POST;
    }
    const char *rest = NULL;
    srv_route_t r = ROUTE_OTHER;
    if (!strncmp(url, "/v1/matches/", 12)) rest = url + 12, r = ROUTE_MATCH_GET;
    else if (!strncmp(url, "/v1/tracks/", 11)) rest = url + 11, r = ROUTE_TRACK_GET;
    else if (!strcmp(url, "/v1/catalog/stats")) r = ROUTE_STATS;
    else if (!strcmp(url, "/healthz")) r = ROUTE_HEALTH;
    else if (!strcmp(url, "/readyz")) r = ROUTE_READY;
    else if (!strcmp(url, "/metrics")) r = ROUTE_METRICS;
    if (r == ROUTE_OTHER) return r;
    if (rest) {
        if (!*rest || strlen(rest) >= idlen || strchr(rest, '/')) return ROUTE_OTHER;
        snprintf(id, idlen, "%s", rest);
    }
    *bad_method = !get;
    return r;
}

/* The Bearer token of the request: digest, prefix; 0 absent, -1 malformed. */
static int read_key(struct MHD_Connection *c, srv_req_t *r)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) return 0;
    if (strncasecmp(h, "Bearer ", 7)) return -1;
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    size_t len = strlen(tok);
    while (len && tok[len - 1] == ' ') len--;
    if (!keys_token_wellformed(tok, len)) return -1;
    keys_digest(tok, len, r->key_digest);
    snprintf(r->key_prefix, sizeof r->key_prefix, "%.11s", tok);
    r->have_key = 1;
    return 1;
}

/* A query parameter as an integer in [lo, hi]; 0 absent, 1 set, -1 bad. */
static int int_arg(struct MHD_Connection *c, const char *name, long lo, long hi, long *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) return -1;
    *out = x;
    return 1;
}

/* The media type of a Content-Type value, lower case, without parameters. */
static void media_type(const char *ct, char *out, size_t len)
{
    size_t n = 0;
    for (; ct && *ct && *ct != ';' && n + 1 < len; ct++)
        if (!isspace((unsigned char)*ct)) out[n++] = (char)tolower((unsigned char)*ct);
    out[n] = '\0';
}

static int append_body(srv_req_t *r, const char *data, size_t size)
{
    size_t max = r->srv->cfg.max_upload_bytes;
    if (r->len + size > max) {
        r->too_big = 1;
        return -1;
    }
    if (r->len + size > r->cap) {
        /* a raw body takes its declared length at once (a multipart body
         * holds the file and a little more: doubling from there) */
        size_t cap = r->cap                                   ? r->cap
                     : r->kind != BODY_MULTIPART && r->declared ? r->declared
                                                                 : 65536;
        while (cap < r->len + size) cap *= 2;
        if (cap > max) cap = max;
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            r->oom = 1;
            return -1;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, size);
    r->len += size;
    return 0;
}

/* The multipart parts: only the field "file" is kept. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    srv_req_t *r = cls;
    (void)kind, (void)filename, (void)transfer_encoding;
    if (!key || strcmp(key, "file")) return MHD_YES;
    if (off == 0 && r->got_file && r->len) {
        r->second_file = 1; /* a second part named "file": refused */
        return MHD_NO;
    }
    if (!r->got_file && content_type) media_type(content_type, r->file_type, sizeof r->file_type);
    r->got_file = 1;
    if (size && append_body(r, data, size)) return MHD_NO;
    return MHD_YES;
}

/* Body bytes read and dropped, at most, to answer a request refused at its
 * headers after its body rather than before it. */
#define DISCARD_MAX ((size_t)8 << 20)

/* Is the request's body small enough to read and drop: a Content-Length
 * of at most DISCARD_MAX, or none (then counted as it comes)? */
static int body_small(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) return 1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return !errno && end != cl && !*end && n <= DISCARD_MAX;
}

/* The Content-Length headers of a request: the first, and whether another
 * says something else. */
typedef struct lengths {
    const char *first;
    int conflict;
} lengths_t;

static enum MHD_Result on_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    lengths_t *l = cls;
    (void)kind;
    if (!key || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) return MHD_YES;
    if (!l->first) l->first = value ? value : "";
    else if (strcmp(l->first, value ? value : "")) l->conflict = 1;
    return MHD_YES;
}

/*
 * Everything that can be decided from the request line and headers.
 * Returns 1 when the request continues (body, then a worker), 0 when a
 * response is ready (r->state ST_RESPOND).
 */
static int at_headers(struct server *s, srv_req_t *r, const char *method, const char *url)
{
    int bad_method;
    /* two Content-Lengths that disagree: where this request ends, and the
     * next begins, is ambiguous (RFC 9112 6.3, request smuggling): 400,
     * and the connection closed rather than read further */
    lengths_t len = {NULL, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, on_length, &len);
    if (len.conflict) {
        r->close = 1;
        srv_problem(r, 400, "bad_request", "the request has Content-Length headers that disagree");
        return 0;
    }
    r->route = route_of(method, url, r->id, sizeof r->id, &bad_method);
    /* an {id} that is not UTF-8 names nothing: found before any query */
    if (r->route == ROUTE_OTHER || !utf8_valid(r->id)) {
        srv_problem(r, 404, "not_found", "no such route: %s %s", method, url);
        return 0;
    }
    if (bad_method) {
        srv_problem(r, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
        return 0;
    }
    if (r->route == ROUTE_HEALTH) {
        srv_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
        return 0;
    }
    if (r->route == ROUTE_METRICS) {
        pthread_mutex_lock(&s->lock);
        size_t q = s->queued;
        int up = s->db_up;
        pthread_mutex_unlock(&s->lock);
        r->resp = srv_metrics_render(s->metrics, q, up, s->cache, &r->resp_len);
        r->resp_type = "text/plain; version=0.0.4";
        r->status = r->resp ? 200 : 500;
        return 0;
    }
    if (r->route == ROUTE_READY) return 1;

    int k = read_key(r->conn, r);
    if (k == 0) {
        srv_problem(r, 401, "unauthorized", "an API key is required: Authorization: Bearer <key>");
        return 0;
    }
    if (k < 0) {
        srv_problem(r, 401, "unauthorized", "the Authorization header is not a well-formed earmark key");
        return 0;
    }
    unsigned wait = srv_limiter_take(s->limiter, r->key_digest, srv_now());
    if (wait) {
        r->retry_after = wait;
        srv_problem(r, 429, "rate_limited", "too many requests for this key; retry in %u s", wait);
        return 0;
    }
    if (r->route != ROUTE_MATCH_POST) return 1;

    /* POST /v1/matches */
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end) {
            srv_problem(r, 400, "bad_request", "Content-Length is not a number");
            return 0;
        }
        if (n > s->cfg.max_upload_bytes) {
            srv_problem(r, 413, "too_large", "the upload is %llu bytes; the limit is %zu", n,
                        s->cfg.max_upload_bytes);
            return 0;
        }
        if (n == 0) {
            srv_problem(r, 400, "empty_body", "the request has no body: send the audio file");
            return 0;
        }
        r->declared = (size_t)n;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    media_type(ct, r->content_type, sizeof r->content_type);
    if (!strncmp(r->content_type, "audio/", 6) || !strcmp(r->content_type, "application/octet-stream") ||
        !strcmp(r->content_type, "application/ogg")) {
        r->kind = BODY_AUDIO;
    } else if (!strcmp(r->content_type, "multipart/form-data")) {
        r->kind = BODY_MULTIPART;
        r->pp = MHD_create_post_processor(r->conn, 65536, on_part, r);
        if (!r->pp) {
            srv_problem(r, 400, "bad_request", "the multipart body has no usable boundary");
            return 0;
        }
    } else if (!strcmp(r->content_type, "application/json") ||
               !strcmp(r->content_type, "application/vnd.earmark.prints+json")) {
        r->kind = BODY_PRINTS;
    } else {
        srv_problem(r, 415, "unsupported_media_type",
                    "Content-Type %s is not accepted: send audio/* (or "
                    "application/octet-stream), multipart/form-data with a field \"file\", "
                    "or application/json prints from `earmark fingerprint --json`",
                    r->content_type[0] ? r->content_type : "(none)");
        return 0;
    }
    long v;
    int got = int_arg(r->conn, "min_score", 1, 100000, &v);
    if (got < 0) {
        srv_problem(r, 400, "bad_parameter", "min_score must be an integer from 1 to 100000");
        return 0;
    }
    r->min_score = got ? (uint32_t)v : s->cfg.default_min_score;
    got = int_arg(r->conn, "max_results", 1, 100, &v);
    if (got < 0) {
        srv_problem(r, 400, "bad_parameter", "max_results must be an integer from 1 to 100");
        return 0;
    }
    r->max_results = got ? (size_t)v : s->cfg.default_max_results;
    const char *ref = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "client_ref");
    if (ref) {
        if (!utf8_valid(ref)) {
            srv_problem(r, 400, "bad_parameter", "client_ref is not UTF-8 text");
            return 0;
        }
        if (strlen(ref) >= sizeof r->client_ref) {
            srv_problem(r, 400, "bad_parameter", "client_ref is longer than %zu bytes",
                        sizeof r->client_ref - 1);
            return 0;
        }
        snprintf(r->client_ref, sizeof r->client_ref, "%s", ref);
        r->have_client_ref = 1;
    }
    return 1;
}

/* ---- the access handler -------------------------------------------------------- */

static void remote_of(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **ctx)
{
    struct server *s = cls;
    srv_req_t *r = *ctx;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *ctx = r;
        r->srv = s;
        r->conn = c;
        r->t0 = srv_now();
        remote_of(c, r->remote, sizeof r->remote);
        srv_metrics_in_flight(s->metrics, 1);
        pthread_mutex_lock(&s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        r->state = at_headers(s, r, method, url) ? ST_HEADERS : ST_RESPOND;
        /* a POST refused at its headers with a body of up to DISCARD_MAX
         * bytes: the body is read and dropped, and the answer sent after
         * it, so that a client that writes its whole body before reading
         * gets its status and problem rather than a reset connection; a
         * larger body, or one whose framing is not to be trusted, is
         * answered now and the connection closed unread.  Other answers go
         * on the next call, which keeps the connection alive */
        if (r->state == ST_RESPOND && (r->close || (!strcmp(method, "POST") && !body_small(c))))
            return send_response(r);
        return MHD_YES;
    }
    if (*size) {
        /* the body, unless the answer is already given: then dropped, up
         * to DISCARD_MAX bytes and the request's deadline */
        if (r->state == ST_RESPOND) {
            r->discarded += *size;
            if (r->discarded > DISCARD_MAX || srv_now() - r->t0 > s->cfg.request_timeout_s)
                return MHD_NO;
        }
        if (r->state == ST_HEADERS) {
            if (srv_now() - r->t0 > s->cfg.request_timeout_s) {
                /* libmicrohttpd can only answer at the headers or after the
                 * whole body: rather than read a trickling body to its end,
                 * close now (logged and counted as a 408) */
                srv_problem(r, 408, "request_timeout", "the body took longer than %u s",
                            s->cfg.request_timeout_s);
                r->state = ST_RESPOND;
                return MHD_NO;
            } else if (r->kind == BODY_MULTIPART) {
                if (MHD_post_process(r->pp, data, *size) != MHD_YES && !r->too_big) {
                    if (r->second_file)
                        srv_problem(r, 400, "bad_multipart", "send one field \"file\" per request");
                    else if (r->oom)
                        srv_problem(r, 503, "out_of_memory", "the server is out of memory; retry later");
                    else
                        srv_problem(r, 400, "bad_multipart", "the multipart body is malformed");
                    r->state = ST_RESPOND;
                }
            } else if (append_body(r, data, *size) && !r->too_big) {
                srv_problem(r, 503, "out_of_memory", "the server is out of memory; retry later");
                r->state = ST_RESPOND;
            }
            /* grown past the limit without a Content-Length: close */
            if (r->too_big) return MHD_NO;
        }
        *size = 0;
        return MHD_YES;
    }
    if (r->state == ST_RESPOND) return send_response(r);
    if (r->state == ST_HEADERS) {
        if (r->route == ROUTE_MATCH_POST) {
            /* the post processor says whether the body ended with its
             * closing boundary: a part cut short is not the upload */
            if (r->kind == BODY_MULTIPART && r->pp) {
                enum MHD_Result whole = MHD_destroy_post_processor(r->pp);
                r->pp = NULL;
                if (whole != MHD_YES) {
                    srv_problem(r, 400, "bad_multipart",
                                "the multipart body ends before its closing boundary");
                    r->state = ST_RESPOND;
                    return send_response(r);
                }
            }
            if (r->kind == BODY_MULTIPART && !r->got_file) {
                srv_problem(r, 400, "missing_file", "the multipart body has no field \"file\"");
                r->state = ST_RESPOND;
                return send_response(r);
            }
            if (!r->len) {
                srv_problem(r, 400, "empty_body", "the request has no body: send the audio file");
                r->state = ST_RESPOND;
                return send_response(r);
            }
        }
        r->state = ST_QUEUED;
        MHD_suspend_connection(c);
        if (srv_enqueue(s, r)) {
            MHD_resume_connection(c);
            r->state = ST_RESPOND;
            r->retry_after = 1;
            srv_problem(r, 503, "overloaded", "the server has too many requests waiting; retry");
        }
        return MHD_YES;
    }
    /* ST_QUEUED after resume: the worker has written the response */
    return send_response(r);
}

/* After the response: metrics, the log line, freeing. */
static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    srv_req_t *r = *ctx;
    (void)c;
    if (!r) return;
    double el = srv_now() - r->t0;
    unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->status : 499;
    if (r->too_big && !r->status) status = 413;
    if (r->status == 408) status = 408; /* closed by us at the body deadline */
    srv_metrics_request(s->metrics, r->route, status, el);
    srv_metrics_in_flight(s->metrics, -1);
    if (s->cfg.log_requests) {
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr,
                "ts=%s route=%s status=%u ms=%.1f bytes=%zu remote=%s key=%s tenant=%lld%s%s\n",
                ts, srv_route_name(r->route), status, el * 1e3, r->len, r->remote,
                r->have_key ? r->key_prefix : "-", (long long)r->tenant,
                r->upload_id[0] ? " upload=" : "", r->upload_id);
    }
    if (r->pp) MHD_destroy_post_processor(r->pp);
    free(r->body);
    free(r->resp);
    free(r);
    *ctx = NULL;
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- start and stop -------------------------------------------------------------- */

void server_config_default(server_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1";
    c->port = 8080;
    c->conninfo = "";
    c->workers = 0;
    c->io_threads = 2;
    c->max_upload_bytes = (size_t)50 << 20;
    c->max_duration_s = 600;
    c->request_timeout_s = 60;
    c->idle_timeout_s = 30;
    c->max_connections = 512;
    c->max_connections_per_ip = 64;
    c->rate_per_key = 50;
    c->burst_per_key = 100;
    c->queue_limit = 1024;
    c->cache_bytes = (size_t)1 << 30;
    c->max_hits = MATCH_DEFAULT_MAX_HITS;
    c->first_hits = MATCH_DEFAULT_FIRST_HITS;
    c->max_chance = MATCH_DEFAULT_MAX_CHANCE;
    c->default_min_score = 12;
    c->default_max_results = 10;
    c->policy.infringement_seconds = 10;
    c->policy.infringement_coverage = 0.5;
    c->policy.infringement_score = 40;
    c->policy.reuse_seconds = 3;
    c->policy.reuse_score = 15;
    c->log_requests = 1;
}

int server_port(const server_t *s)
{
    return s->port;
}

int server_start(const server_config_t *cfg, server_t **out, char *err, size_t errlen)
{
    *out = NULL;
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    snprintf(s->listen, sizeof s->listen, "%s", cfg->listen ? cfg->listen : "127.0.0.1");
    snprintf(s->conninfo, sizeof s->conninfo, "%s", cfg->conninfo ? cfg->conninfo : "");
    s->cfg.listen = s->listen;
    s->cfg.conninfo = s->conninfo;
    if (s->cfg.workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.workers = n > 0 ? (int)n : 1;
    }
    if (s->cfg.lookup_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.lookup_threads = n > 0 ? (int)n : 1;
    }
    if (s->cfg.io_threads <= 0) s->cfg.io_threads = 1;
    fp_config_default(&s->fpcfg);
    fp_limits_default(&s->fplim);
    s->fplim.max_duration_s = cfg->max_duration_s;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->keys = srv_key_cache_new();
    s->limiter = srv_limiter_new(cfg->rate_per_key, cfg->burst_per_key);
    s->metrics = srv_metrics_new();
    if (s->cfg.cache_bytes && store_cache_new(s->cfg.cache_bytes, &s->cache) != DB_OK) {
        snprintf(err, errlen, "out of memory");
        server_free(s);
        return -1;
    }
    if (!s->keys || !s->limiter || !s->metrics) {
        snprintf(err, errlen, "out of memory");
        server_free(s);
        return -1;
    }
    if (srv_workers_start(s, err, errlen)) {
        server_free(s);
        return -1;
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, s->listen, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "cannot listen on '%s': not an IPv4 address", s->listen);
        server_free(s);
        return -1;
    }
    s->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.io_threads, MHD_OPTION_CONNECTION_LIMIT,
        s->cfg.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        s->cfg.max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        completed, s,
        /* SO_REUSEPORT only when asked: else the list ends here, and a port
         * another server listens on fails to bind */
        s->cfg.reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1u,
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen,
                 "cannot listen on %s:%d: the port is in use (another earmark serve?) or not "
                 "allowed\nhint: stop the other server, choose another --port, or pass "
                 "--reuse-port 1 to share the port on purpose",
                 s->listen, cfg->port);
        server_free(s);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    *out = s;
    return 0;
}

void server_stop(server_t *s, double grace_s)
{
    if (!s || !s->mhd) return;
    /* no new connections: the listening socket stops listening at once,
     * so that clients are refused (a load balancer fails over) instead of
     * waiting in its backlog; it is closed after the daemon's threads,
     * which may still hold it, are stopped */
    MHD_socket ls = MHD_quiesce_daemon(s->mhd);
    if (ls != MHD_INVALID_SOCKET) shutdown(ls, SHUT_RDWR);
    double t0 = srv_now();
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0 && srv_now() - t0 < grace_s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->mhd);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    s->mhd = NULL;
    srv_workers_stop(s);
}

void server_free(server_t *s)
{
    if (!s) return;
    if (s->mhd) server_stop(s, 0);
    srv_workers_stop(s);
    srv_key_cache_free(s->keys);
    srv_limiter_free(s->limiter);
    srv_metrics_free(s->metrics);
    store_cache_free(s->cache);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
