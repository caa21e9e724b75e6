/*
 * bench_http.c -- a load client for the matching service: POSTs one audio
 * file again and again on N keep-alive connections and reports throughput,
 * client-side latency, the server's own processing time and, with --pid,
 * whether the server's memory stays flat.
 *
 *   build/bench_http --url http://127.0.0.1:PORT/v1/matches --key TOKEN --file clip.wav
 *                    [--content-type audio/wav] [--connections 32]
 *                    [--seconds 30 | --requests N] [--warmup-seconds 2]
 *                    [--pid SERVER_PID] [--timeout 30] [--json]
 *
 *   make bench-http     (bench/bench_http.sh: cluster, catalog, key, server, this)
 *
 * Plain sockets, no libcurl: one thread per connection, blocking I/O, one
 * TCP connection each, kept alive.  A request is the file as the body with
 * Content-Length and `Authorization: Bearer TOKEN`; the response is read
 * whole (Content-Length, chunked, or up to the close), and its latency runs
 * from the first byte sent to the last byte received.  When the server
 * closes the connection (Connection: close, a body delimited by the close,
 * an error) the next request opens a new one and counts a reconnect.  A
 * request that fails on a connection that already served responses, before
 * a single byte of the answer came (the server closed it while idle), is
 * sent once more on a new connection: that is the keep-alive race every
 * HTTP client has, not an error of the server.
 *
 * The window.  Requests sent in the first --warmup-seconds are left out of
 * every figure (caches, the first database connections, the allocator's
 * first growth, the first connects).  Then, with --seconds S, a request
 * counts when it is sent inside the next S seconds; the ones still in
 * flight at the end are waited for and counted, so that a server that
 * stops answering shows as timeouts rather than as silence.  Throughput is
 * counted / S: in a steady state the requests sent in a window of S
 * seconds are those completed in one, without a bias from either edge.
 * With --requests N, the first N requests sent after the warm-up count,
 * and the window ends when the last of them completes.  SIGINT or SIGTERM
 * ends the window early (requests in flight are finished) and reports
 * what was measured.
 *
 * Figures: requests (responses + transport errors), matches/s (status 200)
 * and responses/s (every status), latency p50/p90/p99/max of the 2xx
 * responses (and of all responses when some were not 2xx), the server's
 * "processing_ms" (the top-level number of a 2xx body) p50/p99, responses
 * per status, transport errors by kind (connect, write, read, timeout: no
 * progress for --timeout seconds, closed: the server closed the connection
 * before the response was complete, protocol: a response that is not HTTP
 * or exceeds a limit), reconnects.  Percentiles come from log-spaced
 * histograms (neighbouring buckets 0.2% apart, so a figure is within 0.1%),
 * which keeps memory constant on runs of any length; max is exact.
 *
 * --pid: the server's VmRSS (/proc/PID/status) once a second; the report
 * gives, inside the window, the first, largest and last sample and the
 * least-squares slope in MB per minute (1 MB = 2^20 bytes).  Flat memory is
 * a slope near 0 over a long run (the soak of bench_http.sh).  If the
 * process disappears, the run fails.
 *
 * Exit status: 0 when every counted request got a 2xx response (and there
 * was at least one), 1 otherwise (transport errors, non-2xx statuses, the
 * server process gone), 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BENCH_OK 0
#define BENCH_FAIL 1
#define BENCH_USAGE 2

#define NS_PER_S 1000000000LL
#define MAX_UPLOAD_BYTES ((size_t)1 << 30) /* --file ceiling */
#define CONN_BUF_BYTES (64 * 1024)         /* receive buffer; bounds a response head */
#define MAX_BODY_BYTES ((size_t)16 << 20)  /* a response body, decoded */
#define MAX_CONNECTIONS 1024
#define MAX_RSS_SAMPLES (1 << 22)          /* 48 days at one a second */
#define CONNECT_BACKOFF_NS (100 * 1000000LL) /* pause after a failed connect */
#define MAIN_TICK_NS (50 * 1000000LL)
#define WORKER_STACK_BYTES (256 * 1024)

static const char *USAGE =
    "bench_http --url http://HOST:PORT/PATH --key TOKEN --file FILE [--content-type TYPE]\n"
    "           [--connections N] [--seconds S | --requests N] [--warmup-seconds S]\n"
    "           [--pid SERVER_PID] [--timeout S] [--json]";

/* ---- time ---------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Set by SIGINT/SIGTERM; the only global, as a signal handler needs one. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    (void)sig;
    g_signal = 1;
}

/* Sleep until the CLOCK_MONOTONIC time t, or until a signal arrives. */
static void sleep_until_ns(int64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        if (g_signal) break;
}

/* ---- histograms ---------------------------------------------------------- */

/*
 * Values in milliseconds, kept in microsecond buckets spaced by a factor
 * e^(1/HIST_SCALE): bucket 0 holds [0, 1 us), bucket i >= 1 holds
 * [e^((i-1)/S), e^(i/S)) us, up to about 1000 s (larger values go to the
 * last bucket; min and max are kept exactly).
 */
#define HIST_SCALE 500.0
#define HIST_BUCKETS 10400

typedef struct hist {
    uint64_t n;
    double sum, min, max; /* ms */
    uint64_t count[HIST_BUCKETS];
} hist_t;

static void hist_add(hist_t *h, double ms)
{
    double us = ms * 1000.0;
    size_t i = 0;
    if (us >= 1.0) {
        double b = floor(log(us) * HIST_SCALE) + 1.0;
        i = b >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (size_t)b;
    }
    h->count[i]++;
    if (!h->n || ms < h->min) h->min = ms;
    if (!h->n || ms > h->max) h->max = ms;
    h->n++;
    h->sum += ms;
}

static void hist_merge(hist_t *into, const hist_t *h)
{
    if (!h->n) return;
    if (!into->n || h->min < into->min) into->min = h->min;
    if (!into->n || h->max > into->max) into->max = h->max;
    into->n += h->n;
    into->sum += h->sum;
    for (size_t i = 0; i < HIST_BUCKETS; i++) into->count[i] += h->count[i];
}

/*
 * The p-th percentile (0 < p <= 100) by nearest rank: the value of the
 * ceil(p/100 n)-th smallest sample, as its bucket's geometric middle clamped
 * to [min, max].  NAN when the histogram is empty.
 */
static double hist_pct(const hist_t *h, double p)
{
    if (!h->n) return NAN;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen < rank) continue;
        double v = i == 0 ? 0.0 : exp(((double)i - 0.5) / HIST_SCALE) / 1000.0;
        if (v < h->min) v = h->min;
        if (v > h->max) v = h->max;
        return v;
    }
    return h->max;
}

/* ---- the run's shared state ---------------------------------------------- */

enum { ERR_CONNECT, ERR_WRITE, ERR_READ, ERR_TIMEOUT, ERR_CLOSED, ERR_PROTOCOL, ERR_KINDS };
static const char *const ERR_NAMES[ERR_KINDS] = {"connect", "write", "read",
                                                 "timeout", "closed", "protocol"};

/* What one connection thread counted inside the window. */
typedef struct stats {
    uint64_t status[600];        /* responses by status code, 100..599 */
    uint64_t errors[ERR_KINDS];  /* transport errors by kind */
    uint64_t reconnects;
    long retry_after_max;        /* largest Retry-After seconds seen, -1: none */
    int64_t last_done_ns;        /* completion of the last counted request */
    hist_t lat_ok;               /* latency of 2xx responses, ms */
    hist_t lat_all;              /* latency of every response, ms */
    hist_t proc;                 /* processing_ms of 2xx bodies */
} stats_t;

/* Options, the target and the request, shared read-only by the threads
 * (except the atomics). */
typedef struct bench {
    const char *url, *key, *file, *content_type;
    int connections;
    double seconds;              /* window length (when requests == 0) */
    uint64_t requests;           /* --requests, 0: timed run */
    double warmup, timeout;
    long pid;                    /* 0: no RSS sampling */
    int json;

    char *host, *port, *authority, *path;
    struct addrinfo *ai;

    char *head;                  /* request line and headers */
    size_t head_len;
    char *body;                  /* the file */
    size_t body_len;

    int64_t t0, t_start;         /* start, end of the warm-up */
    _Atomic int64_t end_ns;      /* end of the window (INT64_MAX: not known yet) */
    atomic_bool stop;            /* threads start no new request */
    atomic_uint_fast64_t tickets;/* --requests: requests taken so far */
    atomic_int done;             /* threads that have finished */
} bench_t;

/* ---- small buffers ------------------------------------------------------- */

/* A growing byte buffer, always NUL-terminated at len. */
typedef struct dbuf {
    char *p;
    size_t len, cap;
} dbuf_t;

/* Append n bytes; -1 when the result would exceed limit or memory runs out. */
static int dbuf_append(dbuf_t *b, const char *s, size_t n, size_t limit)
{
    if (n > limit || b->len > limit - n) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* ---- one connection ------------------------------------------------------ */

typedef struct conn {
    int fd;                      /* -1: not connected */
    int ever_connected;
    uint64_t served;             /* responses on this connection */
    uint64_t rx;                 /* bytes received, all time */
    char *buf;                   /* CONN_BUF_BYTES; buf[pos..len) not yet parsed */
    size_t pos, len;
} conn_t;

static void conn_close(conn_t *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->pos = c->len = 0;
    c->served = 0;
}

/*
 * Connect to the first address of b->ai that accepts within the timeout.
 * Non-blocking connect + poll, so that the timeout holds and a signal does
 * not abort it; the socket is blocking afterwards, with SO_RCVTIMEO and
 * SO_SNDTIMEO set to the timeout and TCP_NODELAY (the head and the tail of
 * the body must not wait for an ACK).  Returns 0, or -1 with *kind.
 */
static int conn_open(conn_t *c, const bench_t *b, int *kind)
{
    int timed_out = 0;
    for (const struct addrinfo *ai = b->ai; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS && errno != EINTR) {
                close(fd);
                continue;
            }
            int64_t deadline = now_ns() + (int64_t)(b->timeout * NS_PER_S);
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            for (;;) {
                int64_t left = deadline - now_ns();
                if (left <= 0) {
                    r = 0;
                    break;
                }
                r = poll(&p, 1, (int)((left + 999999) / 1000000));
                if (r > 0 || (r < 0 && errno != EINTR)) break;
            }
            if (r == 0) timed_out = 1;
            socklen_t len = sizeof err;
            if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                close(fd);
                continue;
            }
        }
        int flags = fcntl(fd, F_GETFL);
        int one = 1;
        struct timeval tv = {.tv_sec = (time_t)b->timeout,
                             .tv_usec = (suseconds_t)((b->timeout - floor(b->timeout)) * 1e6)};
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->pos = c->len = 0;
        c->served = 0;
        return 0;
    }
    *kind = timed_out ? ERR_TIMEOUT : ERR_CONNECT;
    return -1;
}

/* Send the head and the body whole, whatever sendmsg() takes at a time. */
static int send_request(conn_t *c, const bench_t *b, int *kind)
{
    struct iovec iov[2] = {{.iov_base = b->head, .iov_len = b->head_len},
                           {.iov_base = b->body, .iov_len = b->body_len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = b->body_len ? 2 : 1};
    while (m.msg_iovlen > 0) {
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            *kind = errno == EAGAIN || errno == EWOULDBLOCK ? ERR_TIMEOUT : ERR_WRITE;
            return -1;
        }
        size_t done = (size_t)w;
        while (m.msg_iovlen > 0 && done >= m.msg_iov[0].iov_len) {
            done -= m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen > 0) {
            m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + done;
            m.msg_iov[0].iov_len -= done;
        }
    }
    return 0;
}

/*
 * Receive more bytes after buf[len], moving the unparsed part to the front
 * when the buffer's end is reached.  Returns the count (> 0), 0 at the end
 * of the stream, -1 with *kind on error or when buf[pos..] fills the whole
 * buffer (a head or a line longer than CONN_BUF_BYTES: ERR_PROTOCOL).
 */
static ssize_t conn_fill(conn_t *c, int *kind)
{
    if (c->pos == c->len) c->pos = c->len = 0;
    if (c->len == CONN_BUF_BYTES && c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == CONN_BUF_BYTES) {
        *kind = ERR_PROTOCOL;
        return -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, CONN_BUF_BYTES - c->len, 0);
        if (r >= 0) {
            c->len += (size_t)r;
            c->rx += (uint64_t)r;
            return r;
        }
        if (errno == EINTR) continue;
        *kind = errno == EAGAIN || errno == EWOULDBLOCK ? ERR_TIMEOUT : ERR_READ;
        return -1;
    }
}

/* As conn_fill(), but the end of the stream is an error (ERR_CLOSED). */
static int conn_more(conn_t *c, int *kind)
{
    ssize_t r = conn_fill(c, kind);
    if (r == 0) *kind = ERR_CLOSED;
    return r > 0 ? 0 : -1;
}

/* ---- HTTP responses ------------------------------------------------------ */

typedef struct resp {
    int status;
    int close;                   /* the connection ends with this response */
    int chunked;
    int has_length;
    uint64_t length;
    long retry_after;            /* seconds, -1: none or an HTTP date */
} resp_t;

/* Does the comma-separated list v[0..n) hold token tok (any case)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl)) return 1;
    }
    return 0;
}

/* Decimal digits v[0..n) to *out; -1 when empty, not digits, or overflowing. */
static int parse_u64(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (!n) return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/*
 * Parse a response head h[0..n): the status line and the header lines, each
 * ending in CRLF (the blank line excluded).  Fills *r; -1 when the head is
 * not HTTP/1.x or a framing header is malformed.
 */
static int parse_head(const char *h, size_t n, resp_t *r)
{
    const char *end = h + n;
    const char *eol = memmem(h, n, "\r\n", 2);
    if (!eol || eol - h < 12 || memcmp(h, "HTTP/1.", 7) || (h[7] != '0' && h[7] != '1') ||
        h[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9') return -1;
        status = status * 10 + (h[i] - '0');
    }
    if (status < 100 || status > 599 || (eol - h > 12 && h[12] != ' ')) return -1;
    int minor = h[7] - '0', keep_alive = 0, conn_close = 0;
    memset(r, 0, sizeof *r);
    r->status = status;
    r->retry_after = -1;

    for (const char *p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) return -1;
        if (*p == ' ' || *p == '\t') continue; /* obsolete line folding: ignored */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon) return -1;
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        size_t vl = (size_t)(ve - v);
        if (nl == 14 && !strncasecmp(p, "Content-Length", nl)) {
            uint64_t len;
            if (parse_u64(v, vl, &len) < 0 || (r->has_length && len != r->length)) return -1;
            r->has_length = 1;
            r->length = len;
        } else if (nl == 17 && !strncasecmp(p, "Transfer-Encoding", nl)) {
            if (has_token(v, vl, "chunked")) r->chunked = 1;
        } else if (nl == 10 && !strncasecmp(p, "Connection", nl)) {
            if (has_token(v, vl, "close")) conn_close = 1;
            if (has_token(v, vl, "keep-alive")) keep_alive = 1;
        } else if (nl == 11 && !strncasecmp(p, "Retry-After", nl)) {
            uint64_t s;
            if (parse_u64(v, vl, &s) == 0) r->retry_after = s > LONG_MAX ? LONG_MAX : (long)s;
        }
    }
    r->close = conn_close || (minor == 0 && !keep_alive);
    return 0;
}

/* Read a CRLF-terminated line; *line, *n exclude the CRLF. */
static int read_line(conn_t *c, const char **line, size_t *n, int *kind)
{
    size_t scanned = 0;
    for (;;) {
        size_t from = scanned ? scanned - 1 : 0;
        const char *eol = memmem(c->buf + c->pos + from, c->len - c->pos - from, "\r\n", 2);
        if (eol) {
            *line = c->buf + c->pos;
            *n = (size_t)(eol - *line);
            c->pos += *n + 2;
            return 0;
        }
        scanned = c->len - c->pos;
        if (conn_more(c, kind) < 0) return -1;
    }
}

/* Append the next n bytes of the stream to body. */
static int read_n(conn_t *c, uint64_t n, dbuf_t *body, int *kind)
{
    while (n > 0) {
        if (c->pos == c->len && conn_more(c, kind) < 0) return -1;
        size_t take = c->len - c->pos;
        if (take > n) take = (size_t)n;
        if (dbuf_append(body, c->buf + c->pos, take, MAX_BODY_BYTES) < 0) {
            *kind = ERR_PROTOCOL;
            return -1;
        }
        c->pos += take;
        n -= take;
    }
    return 0;
}

/* A chunked body: size lines (extensions ignored), data, trailers. */
static int read_chunked(conn_t *c, dbuf_t *body, int *kind)
{
    const char *line;
    size_t n;
    for (;;) {
        if (read_line(c, &line, &n, kind) < 0) return -1;
        uint64_t size = 0;
        size_t i = 0;
        for (; i < n; i++) {
            char ch = line[i];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0) break;
            if (size > (UINT64_MAX >> 4)) goto bad;
            size = size << 4 | (uint64_t)d;
        }
        if (i == 0 || (i < n && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) goto bad;
        if (size == 0) break;
        if (read_n(c, size, body, kind) < 0) return -1;
        if (read_line(c, &line, &n, kind) < 0) return -1;
        if (n) goto bad;
    }
    do { /* trailers, up to the blank line */
        if (read_line(c, &line, &n, kind) < 0) return -1;
    } while (n);
    return 0;
bad:
    *kind = ERR_PROTOCOL;
    return -1;
}

/*
 * Read one whole response from c: interim 1xx responses skipped, the final
 * head parsed into *r, the body (decoded) into body.  Returns 0, or -1 with
 * *kind; the connection is unusable after an error.
 */
static int read_response(conn_t *c, resp_t *r, dbuf_t *body, int *kind)
{
    body->len = 0;
    if (body->p) body->p[0] = '\0';
    for (;;) {
        const char *h = c->buf + c->pos, *end;
        size_t scanned = 0;
        for (;;) {
            size_t from = scanned > 3 ? scanned - 3 : 0;
            end = memmem(c->buf + c->pos + from, c->len - c->pos - from, "\r\n\r\n", 4);
            if (end) break;
            scanned = c->len - c->pos;
            if (conn_more(c, kind) < 0) return -1;
            h = c->buf + c->pos; /* conn_fill may move the bytes */
        }
        if (parse_head(h, (size_t)(end + 2 - h), r) < 0) {
            *kind = ERR_PROTOCOL;
            return -1;
        }
        c->pos = (size_t)(end + 4 - c->buf);
        if (r->status >= 200) break;
        if (r->status == 101) { /* switching protocols: not for us */
            *kind = ERR_PROTOCOL;
            return -1;
        }
    }
    if (r->status == 204 || r->status == 304) return 0;
    if (r->chunked) return read_chunked(c, body, kind);
    if (r->has_length) {
        if (r->length > MAX_BODY_BYTES) {
            *kind = ERR_PROTOCOL;
            return -1;
        }
        return read_n(c, r->length, body, kind);
    }
    r->close = 1; /* delimited by the end of the stream */
    for (;;) {
        if (c->pos < c->len) {
            if (dbuf_append(body, c->buf + c->pos, c->len - c->pos, MAX_BODY_BYTES) < 0) {
                *kind = ERR_PROTOCOL;
                return -1;
            }
            c->pos = c->len;
        }
        ssize_t got = conn_fill(c, kind);
        if (got < 0) return -1;
        if (got == 0) return 0;
    }
}

/*
 * The number under the top-level key `key` of the JSON object s[0..n)
 * (NUL-terminated at n), or NAN when it is absent or not a number.  A scan,
 * not a parser: it follows strings and nesting only, which is enough to
 * find a key at depth 1 whatever precedes it; a string followed by ':' is a
 * key.
 */
static double json_top_number(const char *s, size_t n, const char *key)
{
    size_t kl = strlen(key);
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            if (j >= n) return NAN;
            if (depth == 1 && j - i - 1 == kl && !memcmp(s + i + 1, key, kl)) {
                size_t k = j + 1;
                while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n')) k++;
                if (k < n && s[k] == ':') {
                    k++;
                    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n')) k++;
                    if (k >= n || (s[k] != '-' && (s[k] < '0' || s[k] > '9'))) return NAN;
                    char *e;
                    double v = strtod(s + k, &e);
                    return e == s + k || !isfinite(v) ? NAN : v;
                }
            }
            i = j;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return NAN;
}

/* ---- the connection threads ---------------------------------------------- */

/* The outcome of one request. */
typedef struct outcome {
    int status;                  /* 0: transport error, of kind err */
    int err;
    int connect_failed;          /* the error was in connecting */
    int reconnects;
    int64_t t_send, t_done;
    double proc_ms;              /* NAN: not in the body */
    long retry_after;
} outcome_t;

/*
 * One request on c: connect if needed, send, read the response.  A request
 * that fails on a reused connection before any byte of the answer arrived
 * is sent again once on a new connection (see the top of the file).
 */
static void do_request(conn_t *c, const bench_t *b, dbuf_t *body, outcome_t *o)
{
    int kind = ERR_PROTOCOL, retried = 0;
    resp_t r;
    memset(o, 0, sizeof *o);
    o->proc_ms = NAN;
    o->retry_after = -1;
    o->t_send = now_ns();
again:
    if (c->fd < 0) {
        if (conn_open(c, b, &kind) < 0) {
            o->connect_failed = 1;
            goto fail;
        }
        if (c->ever_connected) o->reconnects++;
        c->ever_connected = 1;
    }
    int reused = c->served > 0;
    if (send_request(c, b, &kind) < 0) {
        conn_close(c);
        if (reused && kind == ERR_WRITE && !retried++) goto again;
        goto fail;
    }
    uint64_t rx0 = c->rx;
    if (read_response(c, &r, body, &kind) < 0) {
        conn_close(c);
        if (reused && c->rx == rx0 && (kind == ERR_CLOSED || kind == ERR_READ) && !retried++)
            goto again;
        goto fail;
    }
    c->served++;
    o->status = r.status;
    o->retry_after = r.retry_after;
    if (r.status >= 200 && r.status < 300 && body->len)
        o->proc_ms = json_top_number(body->p, body->len, "processing_ms");
    if (r.close || c->pos != c->len) conn_close(c); /* unasked-for bytes: start afresh */
    goto out;
fail:
    o->err = kind;
out:
    o->t_done = now_ns();
}

static void stats_record(stats_t *st, const outcome_t *o)
{
    st->reconnects += (uint64_t)o->reconnects;
    if (o->t_done > st->last_done_ns) st->last_done_ns = o->t_done;
    if (!o->status) {
        st->errors[o->err]++;
        return;
    }
    double ms = (double)(o->t_done - o->t_send) / 1e6;
    st->status[o->status]++;
    hist_add(&st->lat_all, ms);
    if (o->status >= 200 && o->status < 300) {
        hist_add(&st->lat_ok, ms);
        if (!isnan(o->proc_ms) && o->proc_ms >= 0) hist_add(&st->proc, o->proc_ms);
    }
    if (o->retry_after > st->retry_after_max) st->retry_after_max = o->retry_after;
}

typedef struct worker {
    pthread_t tid;
    bench_t *b;
    conn_t conn;
    dbuf_t body;
    stats_t st;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bench_t *b = w->b;
    outcome_t o;
    for (;;) {
        if (atomic_load(&b->stop)) break;
        int64_t t = now_ns();
        if (t >= atomic_load(&b->end_ns)) break;
        int counted = t >= b->t_start;
        if (counted && b->requests && atomic_fetch_add(&b->tickets, 1) >= b->requests) break;
        do_request(&w->conn, b, &w->body, &o);
        if (counted) stats_record(&w->st, &o);
        if (!o.status && o.connect_failed && !atomic_load(&b->stop)) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = CONNECT_BACKOFF_NS};
            nanosleep(&ts, NULL); /* a refused connect would otherwise spin */
        }
    }
    conn_close(&w->conn);
    atomic_fetch_add(&b->done, 1);
    return NULL;
}

/* ---- server memory ------------------------------------------------------- */

typedef struct rss_sample {
    int64_t t;
    long kb;
} rss_sample_t;

/* VmRSS of process pid in kB, -1 when it cannot be read (gone, a zombie). */
static long rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/*
 * The RSS figures inside [t_start, t_end]; slope by least squares.  The
 * sample due at t_end is taken a little after it: RSS_SLACK_NS lets it in.
 */
#define RSS_SLACK_NS (NS_PER_S / 4)
typedef struct rss_report {
    size_t n;
    double first_mb, max_mb, last_mb, slope_mb_min; /* slope NAN below 2 samples */
} rss_report_t;

static void rss_summarize(const rss_sample_t *s, size_t n, int64_t t_start, int64_t t_end,
                          rss_report_t *r)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    memset(r, 0, sizeof *r);
    r->slope_mb_min = NAN;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t < t_start || s[i].t > t_end + RSS_SLACK_NS) continue;
        double x = (double)(s[i].t - t_start) / (60.0 * NS_PER_S), y = (double)s[i].kb / 1024.0;
        if (!r->n) r->first_mb = y;
        if (!r->n || y > r->max_mb) r->max_mb = y;
        r->last_mb = y;
        r->n++;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double d = (double)r->n * sxx - sx * sx;
    if (r->n >= 2 && d > 0) r->slope_mb_min = ((double)r->n * sxy - sx * sy) / d;
}

/* ---- setup --------------------------------------------------------------- */

/*
 * Split an http:// URL into host, port (default 80), authority (for the
 * Host header) and path (default "/"), resolve the host.  IPv6 literals in
 * brackets.  Returns 0, or -1 with a message in err.
 */
static int parse_url(bench_t *b, char *err, size_t errlen)
{
    const char *u = b->url;
    if (strncasecmp(u, "http://", 7)) {
        snprintf(err, errlen, "--url must start with http:// (no TLS here), not '%s'", u);
        return -1;
    }
    u += 7;
    size_t al = strcspn(u, "/?#");
    const char *path = u[al] == '/' ? u + al : "/";
    if (!al) {
        snprintf(err, errlen, "--url has no host");
        return -1;
    }
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, errlen, "--url must not hold spaces or control characters");
            return -1;
        }
    const char *hs = u, *he, *ps = NULL;
    if (*u == '[') {
        const char *rb = memchr(u, ']', al);
        if (!rb) goto bad;
        hs = u + 1;
        he = rb;
        if (rb + 1 < u + al) {
            if (rb[1] != ':') goto bad;
            ps = rb + 2;
        }
    } else {
        const char *colon = memchr(u, ':', al);
        he = colon ? colon : u + al;
        if (colon) ps = colon + 1;
    }
    if (he == hs) goto bad;
    uint64_t port = 80;
    if (ps && (parse_u64(ps, (size_t)(u + al - ps), &port) < 0 || port < 1 || port > 65535))
        goto bad;
    b->host = strndup(hs, (size_t)(he - hs));
    b->authority = strndup(u, al);
    b->path = strndup(path, strcspn(path, "#"));
    if (asprintf(&b->port, "%u", (unsigned)port) < 0) b->port = NULL;
    if (!b->host || !b->authority || !b->path || !b->port) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(b->host, b->port, &hints, &b->ai);
    if (rc) {
        snprintf(err, errlen, "cannot resolve '%s': %s", b->host, gai_strerror(rc));
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "--url '%s' is not http://HOST[:PORT][/PATH]", b->url);
    return -1;
}

/* Read the whole file into b->body (at most MAX_UPLOAD_BYTES). */
static int read_upload(bench_t *b, char *err, size_t errlen)
{
    int rc = -1, fd = open(b->file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", b->file, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_UPLOAD_BYTES) {
        snprintf(err, errlen, "'%s' is not a regular file of at most %zu bytes", b->file,
                 MAX_UPLOAD_BYTES);
        goto out;
    }
    b->body_len = (size_t)sb.st_size;
    b->body = malloc(b->body_len ? b->body_len : 1);
    if (!b->body) {
        snprintf(err, errlen, "out of memory for %zu bytes", b->body_len);
        goto out;
    }
    for (size_t got = 0; got < b->body_len;) {
        ssize_t r = read(fd, b->body + got, b->body_len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, errlen, "cannot read '%s': %s", b->file, r ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)r;
    }
    rc = 0;
out:
    if (fd >= 0) close(fd);
    return rc;
}

/* A header value must not end the header early. */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0') return 0;
    return 1;
}

/* Print "bench_http: MESSAGE" and the usage on stderr; returns BENCH_USAGE. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_http: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", USAGE);
    va_end(ap);
    return BENCH_USAGE;
}

/* Parse a number in [lo, hi]; -1 if s is not one. */
static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* ---- the report ---------------------------------------------------------- */

/* A JSON string, escaped. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* A JSON number with 3 decimals, null for NAN. */
static void json_num(FILE *f, double v)
{
    if (isnan(v)) fputs("null", f);
    else fprintf(f, "%.3f", v);
}

static void json_hist(FILE *f, const hist_t *h, int full)
{
    fprintf(f, "{\"n\":%llu,\"mean\":", (unsigned long long)h->n);
    json_num(f, h->n ? h->sum / (double)h->n : NAN);
    fputs(",\"p50\":", f);
    json_num(f, hist_pct(h, 50));
    if (full) {
        fputs(",\"p90\":", f);
        json_num(f, hist_pct(h, 90));
    }
    fputs(",\"p99\":", f);
    json_num(f, hist_pct(h, 99));
    fputs(",\"max\":", f);
    json_num(f, h->n ? h->max : NAN);
    fputc('}', f);
}

/* Everything the report needs, gathered from the threads. */
typedef struct totals {
    stats_t st;
    uint64_t responses, ok2xx, non2xx, errors, requests;
    double duration;
    rss_report_t rss;
    int rss_gone;
    int ok;
} totals_t;

static void report_json(const bench_t *b, const totals_t *t)
{
    FILE *f = stdout;
    fputs("{\"url\":", f);
    json_str(f, b->url);
    fputs(",\"file\":", f);
    json_str(f, b->file);
    fprintf(f, ",\"bytes\":%zu,\"content_type\":", b->body_len);
    json_str(f, b->content_type);
    fprintf(f, ",\"connections\":%d,\"warmup_s\":%.3f,\"duration_s\":%.3f", b->connections,
            b->warmup, t->duration);
    fprintf(f, ",\"requests\":%llu,\"responses\":%llu,\"matches\":%llu,\"non_2xx\":%llu",
            (unsigned long long)t->requests, (unsigned long long)t->responses,
            (unsigned long long)t->st.status[200], (unsigned long long)t->non2xx);
    fputs(",\"matches_per_s\":", f);
    json_num(f, t->duration > 0 ? (double)t->st.status[200] / t->duration : NAN);
    fputs(",\"responses_per_s\":", f);
    json_num(f, t->duration > 0 ? (double)t->responses / t->duration : NAN);
    fputs(",\"latency_ms\":", f);
    json_hist(f, &t->st.lat_ok, 1);
    fputs(",\"latency_all_ms\":", f);
    json_hist(f, &t->st.lat_all, 1);
    fputs(",\"processing_ms\":", f);
    json_hist(f, &t->st.proc, 0);
    fputs(",\"status\":{", f);
    int first = 1;
    for (int s = 100; s < 600; s++)
        if (t->st.status[s]) {
            fprintf(f, "%s\"%d\":%llu", first ? "" : ",", s, (unsigned long long)t->st.status[s]);
            first = 0;
        }
    fputs("},\"errors\":{", f);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, "\"%s\":%llu,", ERR_NAMES[k], (unsigned long long)t->st.errors[k]);
    fprintf(f, "\"total\":%llu},\"reconnects\":%llu", (unsigned long long)t->errors,
            (unsigned long long)t->st.reconnects);
    if (t->st.retry_after_max >= 0) fprintf(f, ",\"retry_after_max_s\":%ld", t->st.retry_after_max);
    else fputs(",\"retry_after_max_s\":null", f);
    if (b->pid) {
        fprintf(f, ",\"rss\":{\"pid\":%ld,\"samples\":%zu,\"first_mb\":", b->pid, t->rss.n);
        json_num(f, t->rss.n ? t->rss.first_mb : NAN);
        fputs(",\"max_mb\":", f);
        json_num(f, t->rss.n ? t->rss.max_mb : NAN);
        fputs(",\"last_mb\":", f);
        json_num(f, t->rss.n ? t->rss.last_mb : NAN);
        fputs(",\"slope_mb_per_min\":", f);
        json_num(f, t->rss.slope_mb_min);
        fprintf(f, ",\"server_gone\":%s}", t->rss_gone ? "true" : "false");
    } else {
        fputs(",\"rss\":null", f);
    }
    fprintf(f, ",\"ok\":%s}\n", t->ok ? "true" : "false");
}

static void text_hist(FILE *f, const char *label, const hist_t *h, const char *what)
{
    if (!h->n) {
        fprintf(f, "%-11s none (%s)\n", label, what);
        return;
    }
    fprintf(f, "%-11s p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%s)\n", label,
            hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99), h->max, what);
}

static void report_text(const bench_t *b, const totals_t *t)
{
    FILE *f = stdout;
    fprintf(f, "target      POST %s\n", b->url);
    fprintf(f, "upload      %s, %zu bytes, %s\n", b->file, b->body_len, b->content_type);
    fprintf(f, "load        %d connections, warm-up %.1f s, then %.2f s measured\n",
            b->connections, b->warmup, t->duration);
    fprintf(f, "requests    %llu: %llu responses, %llu transport errors\n",
            (unsigned long long)t->requests, (unsigned long long)t->responses,
            (unsigned long long)t->errors);
    if (t->duration > 0)
        fprintf(f, "throughput  %.2f matches/s (status 200), %.2f responses/s (all statuses)\n",
                (double)t->st.status[200] / t->duration, (double)t->responses / t->duration);
    text_hist(f, "latency", &t->st.lat_ok, "2xx, client side: first byte sent to last received");
    if (t->non2xx) text_hist(f, "latency all", &t->st.lat_all, "every response");
    if (t->st.proc.n)
        fprintf(f, "processing  p50 %.2f ms, p99 %.2f ms (server side, processing_ms of %llu bodies)\n",
                hist_pct(&t->st.proc, 50), hist_pct(&t->st.proc, 99),
                (unsigned long long)t->st.proc.n);
    else
        fprintf(f, "processing  none (no 2xx body had processing_ms)\n");
    fprintf(f, "statuses   ");
    int any = 0;
    for (int s = 100; s < 600; s++)
        if (t->st.status[s]) {
            fprintf(f, "%s %d: %llu", any ? "," : "", s, (unsigned long long)t->st.status[s]);
            any = 1;
        }
    fprintf(f, "%s\n", any ? "" : " none");
    fprintf(f, "errors     ");
    any = 0;
    for (int k = 0; k < ERR_KINDS; k++)
        if (t->st.errors[k]) {
            fprintf(f, "%s %s %llu", any ? "," : "", ERR_NAMES[k],
                    (unsigned long long)t->st.errors[k]);
            any = 1;
        }
    fprintf(f, "%s\n", any ? "" : " none");
    fprintf(f, "reconnects  %llu\n", (unsigned long long)t->st.reconnects);
    if (b->pid) {
        if (t->rss.n)
            fprintf(f, "server RSS  first %.1f MB, max %.1f MB, last %.1f MB, slope %+.3f MB/min "
                       "(%zu samples, pid %ld)\n",
                    t->rss.first_mb, t->rss.max_mb, t->rss.last_mb,
                    isnan(t->rss.slope_mb_min) ? 0.0 : t->rss.slope_mb_min, t->rss.n, b->pid);
        else
            fprintf(f, "server RSS  no sample in the window (pid %ld)\n", b->pid);
        if (t->rss_gone) fprintf(f, "server RSS  process %ld went away during the run\n", b->pid);
    }
    if (t->st.status[429])
        fprintf(f, "note        %llu responses 429: the key's rate limit (largest Retry-After %ld s); "
                   "raise the server's per-key rate for benchmarking\n",
                (unsigned long long)t->st.status[429], t->st.retry_after_max);
    if (t->ok) {
        fprintf(f, "result      ok\n");
    } else {
        fprintf(f, "result      FAILED:");
        if (!t->requests) fprintf(f, " no request completed in the window");
        if (t->errors) fprintf(f, " %llu transport errors", (unsigned long long)t->errors);
        if (t->non2xx) fprintf(f, " %llu non-2xx responses", (unsigned long long)t->non2xx);
        if (t->requests && !t->errors && !t->non2xx && !t->ok2xx) fprintf(f, " no 2xx response");
        if (t->rss_gone) fprintf(f, " the server process went away");
        fprintf(f, "\n");
    }
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_t b = {.content_type = "audio/wav", .connections = 32, .seconds = 30, .warmup = 2,
                 .timeout = 30};
    worker_t *w = NULL;
    totals_t *t = NULL;
    rss_sample_t *rs = NULL;
    size_t nrs = 0, rs_cap = 0;
    int rc = BENCH_FAIL, started = 0, seconds_given = 0;
    char err[512];
    double v;

    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"key", required_argument, NULL, 'k'},
        {"file", required_argument, NULL, 'f'},
        {"content-type", required_argument, NULL, 'T'},
        {"connections", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 's'},
        {"requests", required_argument, NULL, 'n'},
        {"warmup-seconds", required_argument, NULL, 'w'},
        {"pid", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': b.url = optarg; break;
        case 'k': b.key = optarg; break;
        case 'f': b.file = optarg; break;
        case 'T': b.content_type = optarg; break;
        case 'c':
            if (parse_double(optarg, 1, MAX_CONNECTIONS, &v) < 0 || v != floor(v))
                return usage_error("--connections wants 1..1024, not '%s'", optarg);
            b.connections = (int)v;
            break;
        case 's':
            if (parse_double(optarg, 0.001, 1e7, &v) < 0)
                return usage_error("--seconds wants a positive number, not '%s'", optarg);
            b.seconds = v;
            seconds_given = 1;
            break;
        case 'n':
            if (parse_double(optarg, 1, 1e15, &v) < 0 || v != floor(v))
                return usage_error("--requests wants a positive whole number, not '%s'", optarg);
            b.requests = (uint64_t)v;
            break;
        case 'w':
            if (parse_double(optarg, 0, 1e6, &v) < 0)
                return usage_error("--warmup-seconds wants a number >= 0, not '%s'", optarg);
            b.warmup = v;
            break;
        case 'p':
            if (parse_double(optarg, 1, 4194304, &v) < 0 || v != floor(v))
                return usage_error("--pid wants a process id, not '%s'", optarg);
            b.pid = (long)v;
            break;
        case 't':
            if (parse_double(optarg, 0.001, 86400, &v) < 0)
                return usage_error("--timeout wants seconds in (0, 86400], not '%s'", optarg);
            b.timeout = v;
            break;
        case 'j': b.json = 1; break;
        case 'h':
            printf("usage: %s\n\nSee the top of bench/bench_http.c for what is measured.\n", USAGE);
            return BENCH_OK;
        default: fprintf(stderr, "usage: %s\n", USAGE); return BENCH_USAGE;
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (!b.url || !b.key || !b.file) return usage_error("%s", "--url, --key and --file are required");
    if (seconds_given && b.requests) return usage_error("%s", "--seconds and --requests exclude each other");
    if (!header_safe(b.key) || !header_safe(b.content_type))
        return usage_error("%s", "--key and --content-type must not hold line breaks");
    if (parse_url(&b, err, sizeof err) < 0) {
        rc = usage_error("%s", err);
        goto out;
    }
    if (read_upload(&b, err, sizeof err) < 0) {
        rc = usage_error("%s", err);
        goto out;
    }
    if (b.pid && rss_kb(b.pid) < 0) {
        rc = usage_error("--pid %ld: no such process (or no VmRSS in its /proc status)", b.pid);
        goto out;
    }
    int hl = asprintf(&b.head,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: earmark-bench_http/1\r\n"
                      "Accept: application/json\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      b.path, b.authority, b.key, b.content_type, b.body_len);
    if (hl < 0) {
        b.head = NULL;
        fprintf(stderr, "bench_http: out of memory\n");
        goto out;
    }
    b.head_len = (size_t)hl;

    w = calloc((size_t)b.connections, sizeof *w);
    t = calloc(1, sizeof *t);
    if (!w || !t) {
        fprintf(stderr, "bench_http: out of memory\n");
        goto out;
    }
    for (int i = 0; i < b.connections; i++) {
        w[i].b = &b;
        w[i].conn.fd = -1;
        w[i].conn.buf = malloc(CONN_BUF_BYTES);
        w[i].st.retry_after_max = -1;
        if (!w[i].conn.buf || dbuf_append(&w[i].body, "", 0, MAX_BODY_BYTES) < 0) {
            fprintf(stderr, "bench_http: out of memory\n");
            goto out;
        }
    }

    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sa.sa_flags = (int)SA_RESETHAND; /* a second ^C kills */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    b.t0 = now_ns();
    b.t_start = b.t0 + (int64_t)(b.warmup * NS_PER_S);
    int64_t t_end = b.requests ? INT64_MAX : b.t_start + (int64_t)(b.seconds * NS_PER_S);
    atomic_store(&b.end_ns, t_end);
    atomic_store(&b.stop, false);
    atomic_store(&b.tickets, 0);
    atomic_store(&b.done, 0);
    if (b.requests)
        fprintf(stderr, "bench_http: %d connections, warm-up %.1f s, then %llu requests\n",
                b.connections, b.warmup, (unsigned long long)b.requests);
    else
        fprintf(stderr, "bench_http: %d connections, warm-up %.1f s, then %.1f s\n",
                b.connections, b.warmup, b.seconds);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
    for (; started < b.connections; started++) {
        int e = pthread_create(&w[started].tid, &attr, worker_main, &w[started]);
        if (e) {
            fprintf(stderr, "bench_http: cannot start thread %d: %s\n", started, strerror(e));
            atomic_store(&b.stop, true);
            break;
        }
    }
    pthread_attr_destroy(&attr);

    /* Main thread: the clock, the signals and the RSS samples, until the
     * window ends (timed run) or every thread is done (--requests). */
    int rss_gone = 0;
    int64_t next_rss = b.t0;
    while (started == b.connections) {
        int64_t now = now_ns();
        if (b.pid && !rss_gone && now >= next_rss) {
            long kb = rss_kb(b.pid);
            if (kb < 0) {
                rss_gone = 1;
            } else if (nrs < MAX_RSS_SAMPLES) {
                if (nrs == rs_cap) {
                    size_t cap = rs_cap ? rs_cap * 2 : 1024;
                    rss_sample_t *p = realloc(rs, cap * sizeof *p);
                    if (p) {
                        rs = p;
                        rs_cap = cap;
                    }
                }
                if (nrs < rs_cap) rs[nrs++] = (rss_sample_t){.t = now, .kb = kb};
            }
            while (next_rss <= now) next_rss += NS_PER_S;
        }
        if (g_signal) {
            if (now < atomic_load(&b.end_ns)) atomic_store(&b.end_ns, now);
            break;
        }
        if (now >= t_end) break;
        if (atomic_load(&b.done) == b.connections) break;
        int64_t wake = now + MAIN_TICK_NS;
        if (b.pid && !rss_gone && next_rss < wake) wake = next_rss;
        if (t_end < wake) wake = t_end;
        sleep_until_ns(wake);
    }
    atomic_store(&b.stop, true);
    for (int i = 0; i < started; i++) pthread_join(w[i].tid, NULL);
    if (started < b.connections) goto out;

    /* Totals. */
    t->st.retry_after_max = -1;
    for (int i = 0; i < b.connections; i++) {
        const stats_t *s = &w[i].st;
        for (int k = 0; k < 600; k++) t->st.status[k] += s->status[k];
        for (int k = 0; k < ERR_KINDS; k++) t->st.errors[k] += s->errors[k];
        t->st.reconnects += s->reconnects;
        if (s->retry_after_max > t->st.retry_after_max) t->st.retry_after_max = s->retry_after_max;
        if (s->last_done_ns > t->st.last_done_ns) t->st.last_done_ns = s->last_done_ns;
        hist_merge(&t->st.lat_ok, &s->lat_ok);
        hist_merge(&t->st.lat_all, &s->lat_all);
        hist_merge(&t->st.proc, &s->proc);
    }
    for (int s = 100; s < 600; s++) {
        t->responses += t->st.status[s];
        if (s >= 200 && s < 300) t->ok2xx += t->st.status[s];
        else t->non2xx += t->st.status[s];
    }
    for (int k = 0; k < ERR_KINDS; k++) t->errors += t->st.errors[k];
    t->requests = t->responses + t->errors;
    int64_t end = b.requests ? t->st.last_done_ns : atomic_load(&b.end_ns);
    t->duration = end > b.t_start ? (double)(end - b.t_start) / NS_PER_S : 0.0;
    if (b.pid) rss_summarize(rs, nrs, b.t_start, end, &t->rss);
    t->rss_gone = rss_gone;
    t->ok = t->requests && !t->errors && !t->non2xx && t->ok2xx && !rss_gone;
    if (b.json) report_json(&b, t);
    else report_text(&b, t);
    rc = t->ok ? BENCH_OK : BENCH_FAIL;
out:
    if (w)
        for (int i = 0; i < b.connections; i++) {
            free(w[i].conn.buf);
            free(w[i].body.p);
        }
    free(w);
    free(t);
    free(rs);
    free(b.head);
    free(b.body);
    free(b.host);
    free(b.port);
    free(b.authority);
    free(b.path);
    if (b.ai) freeaddrinfo(b.ai);
    return rc;
}
