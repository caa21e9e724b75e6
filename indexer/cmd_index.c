/*
 * cmd_index.c -- `earmark index`: the bulk catalog job.
 *
 *   earmark index [--tenant NAME] [--manifest FILE]... [--threads N]
 *                 [--replace] [--compact] [--failures FILE] [--batch-prints N]
 *                 [--quiet] [PATH...]
 *
 * Worker threads (default: every core) read each file, take its SHA-256
 * and fingerprint it from memory; files whose digest the tenant already has
 * are skipped unread by the fingerprinter, so a re-run is a no-op (unless
 * the fingerprint parameters changed since: a track made with other ones
 * is fingerprinted again and replaces the old one).  The
 * main thread gathers finished files into batches of about --batch-prints
 * prints and writes each batch in one transaction: the tracks' catalog rows
 * and one store segment (COPY), then the run's counters.  A batch is in the
 * catalog entirely or not at all, so a run killed at any moment resumes,
 * when started again, with exactly the files that are missing.
 *
 * After each batch, every track it added is looked up against the whole
 * store (all tenants) for copies: tracks that are the same recording or
 * contain one another are linked (em_catalog.h, catalog_copies_find).  A
 * track whose lookup fails stays unchecked, and `earmark catalog copies
 * --scan` checks it later; --no-copies leaves them all to that.
 *
 * A file that cannot be read or decoded, or whose path or manifest text is
 * not UTF-8, is reported (stderr, the run's index_failures rows, --failures
 * FILE, each with its text escaped) and the run goes on.  When the
 * database goes away the batch is kept in memory and retried, reconnecting
 * with a growing pause for up to --retry-seconds (default 120); after that
 * the run stops with a message, and running the same command again resumes.
 *
 * SIGTERM, SIGINT and SIGHUP stop the run after the batch being gathered
 * and close it as cancelled; a run killed outright is closed as failed by
 * the next run (index_runs_sweep).
 *
 * Exit status: 0 every file indexed or already there, 1 some file failed
 * or the run stopped, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "earmark_fp.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_store.h"
#include "idx.h"

static const char *USAGE =
    "earmark index [--tenant NAME] [--manifest FILE]... [--threads N] [--replace] [--compact]\n"
    "              [--failures FILE] [--batch-prints N] [--retry-seconds S] [--no-copies] [--quiet]\n"
    "              [PATH...]";

static void help(void)
{
    printf("usage: %s\n\n"
           "Fingerprint audio files into the catalog of a tenant.  PATHs are files or\n"
           "folders (searched recursively for audio files); manifests are CSV or JSON\n"
           "Lines with the fields path, external_id, title, artist, tenant.\n\n"
           "  --tenant NAME        tenant of files that do not name one (default \"default\")\n"
           "  --manifest FILE      a manifest (repeatable)\n"
           "  --threads N          fingerprinting threads (default: every core)\n"
           "  --replace            a file whose path (or external id) is in the catalog\n"
           "                       with other content replaces that track\n"
           "  --compact            merge the whole store into one segment at the end\n"
           "  --failures FILE      also write the failures there (path TAB reason)\n"
           "  --batch-prints N     prints per transaction (default 2000000)\n"
           "  --retry-seconds S    how long to wait for a lost database (default 120)\n"
           "  --no-copies          do not look new tracks up for copies of them already in\n"
           "                       the catalog (`earmark catalog copies --scan` does it later)\n"
           "  --quiet              no progress line, no summary\n\n"
           "The database: $EARMARK_DB, else the PG* variables, else the private cluster\n"
           "(earmark db start).  Re-running is a no-op for files already indexed.\n",
           USAGE);
}

/* ---- work ------------------------------------------------------------------- */

typedef struct item_state {
    const idx_item_t *item;
    int64_t tenant_id;
    uint8_t sha[32];
    fp_result_t res;
    fp_err_t rc;
    int skipped;           /* already in the catalog */
    int refused;           /* failed before any work (rc and err set) */
    int existed;           /* its audio was in the catalog when written */
    int64_t track_id;      /* the track it became (0: none, or not yet) */
    char err[512];
} job_t;

typedef struct tenant_shas {
    char *name;
    int64_t id;
    uint8_t *shas;
    size_t n;
} tenant_t;

typedef struct pool {
    job_t *jobs;
    size_t n, next, done_upto;
    char *done;            /* per job: finished by a worker */
    size_t pending_prints; /* finished, not yet taken by the writer */
    size_t max_pending;
    int stop;
    fp_config_t cfg;
    fp_limits_t lim;
    tenant_t *tenants;
    size_t ntenants;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} pool_t;

static const tenant_t *tenant_of(const pool_t *p, int64_t id)
{
    for (size_t i = 0; i < p->ntenants; i++)
        if (p->tenants[i].id == id) return &p->tenants[i];
    return NULL;
}

/* The largest file the indexer reads (it holds a file in memory while it
 * fingerprints it): four hours of 48 kHz 24-bit stereo WAV. */
#define INDEX_MAX_FILE_BYTES ((int64_t)4 << 30)

/*
 * Read the regular file `path` whole into memory and take its SHA-256, so
 * that the digest and the prints come from the same bytes: read by path
 * twice, a file replaced in between (a sync tool renaming a new version
 * over the old) was stored with the digest of one and the prints of the
 * other.  One descriptor, opened non-blocking so that a FIFO or a device
 * cannot hold the worker; anything but a regular file is refused.
 *
 * On success returns 0, *data (malloc'd, the caller frees) and *len hold
 * the bytes and out the digest.  On failure returns -1 with a one-line
 * message naming the path in err, and *data is NULL.
 */
static int index_file_read(const char *path, uint8_t **data, size_t *len, uint8_t out[32],
                           char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t got = 0;
    int rc = -1;
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((int64_t)st.st_size > INDEX_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: the file holds %lld bytes, over the indexer's limit of %lld",
                 path, (long long)st.st_size, (long long)INDEX_MAX_FILE_BYTES);
        goto out;
    }
    /* the size may change while we read: read to the end, within the limit */
    size_t cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory reading %zu bytes", path, cap);
        goto out;
    }
    for (;;) {
        if (got == cap) {
            if ((int64_t)cap >= INDEX_MAX_FILE_BYTES) {
                snprintf(err, errlen, "%s: the file grew over the indexer's limit of %lld bytes "
                                      "while it was read", path, (long long)INDEX_MAX_FILE_BYTES);
                goto out;
            }
            size_t ncap = cap * 2 > (size_t)INDEX_MAX_FILE_BYTES ? (size_t)INDEX_MAX_FILE_BYTES
                                                                 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory reading %zu bytes", path, ncap);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    unsigned int dn = 32;
    if (EVP_Digest(buf, got, out, &dn, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "%s: SHA-256 failed", path);
        goto out;
    }
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

/*
 * Check that the text of an item can go into the catalog, which keeps text
 * as UTF-8 (a manifest saved as Latin-1, a file name from another system).
 * Returns 0, or -1 with a one-line message in err naming the field, the
 * first bad byte and what to do; such an item fails alone, before any work.
 */
static int index_item_check(const idx_item_t *it, char *err, size_t errlen)
{
    const struct {
        const char *name, *value;
    } f[] = {{"path", it->path},
             {"external id", it->external_id},
             {"title", it->title},
             {"artist", it->artist},
             {"tenant", it->tenant}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        size_t bad;
        if (!f[k].value || cli_utf8_valid(f[k].value, &bad)) continue;
        /* the path as it is: whoever shows or stores the message escapes it */
        snprintf(err, errlen, "%s: the %s is not valid UTF-8 (byte 0x%02x at offset %zu); %s",
                 it->path, f[k].name, (unsigned char)f[k].value[bad], bad,
                 k == 0 ? "give the file a UTF-8 name"
                        : "save the manifest as UTF-8 (iconv -f LATIN1 -t UTF-8)");
        return -1;
    }
    return 0;
}

/*
 * Make every relative path of the list absolute, against the current
 * folder, so that the catalog's source of a track names its file from
 * anywhere (the path is joined, not resolved: a link keeps its name).
 * Returns 0, or -1 with a message in err (the current folder unreadable,
 * out of memory); the paths changed so far stay changed.
 */
static int index_paths_absolute(idx_list_t *list, char *err, size_t errlen)
{
    char *cwd = NULL;
    int rc = -1;
    for (size_t i = 0; i < list->count; i++) {
        char *path = list->items[i].path;
        if (path[0] == '/') continue;
        if (!cwd && !(cwd = getcwd(NULL, 0))) {
            snprintf(err, errlen, "cannot tell the current folder: %s", strerror(errno));
            goto out;
        }
        while (path[0] == '.' && path[1] == '/') path += 2;
        size_t n = strlen(cwd) + 1 + strlen(path) + 1;
        char *abs = malloc(n);
        if (!abs) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(abs, n, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path);
        free(list->items[i].path);
        list->items[i].path = abs;
    }
    rc = 0;
out:
    free(cwd);
    return rc;
}

static void *worker(void *arg)
{
    pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        /* do not run far ahead of the writer: memory holds finished prints */
        while (!p->stop && p->pending_prints > p->max_pending) pthread_cond_wait(&p->cond, &p->lock);
        size_t i = !p->stop && p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->n) return NULL;
        job_t *j = &p->jobs[i];
        uint8_t *data = NULL;
        size_t len = 0;
        if (j->refused) {
            /* rc and err were set when the list was read */
        } else if (index_file_read(j->item->path, &data, &len, j->sha, j->err, sizeof j->err)) {
            j->rc = FP_ERR_IO;
        } else {
            const tenant_t *t = tenant_of(p, j->tenant_id);
            if (t && catalog_sha_in(t->shas, t->n, j->sha)) {
                j->skipped = 1;
                j->rc = FP_OK;
            } else if (len == 0) {
                j->rc = FP_ERR_EMPTY;
                snprintf(j->err, sizeof j->err, "cannot decode \"%s\": the file is empty",
                         j->item->path);
            } else {
                /* the prints of exactly the bytes the digest was taken of */
                j->rc = fp_extract_memory(data, len, j->item->path, &p->cfg, &p->lim, &j->res,
                                          j->err, sizeof j->err);
            }
            free(data);
        }
        pthread_mutex_lock(&p->lock);
        p->done[i] = 1;
        p->pending_prints += j->res.count;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

/* ---- progress ---------------------------------------------------------------- */

typedef struct totals {
    size_t files, done, indexed, skipped, failed;
    size_t links, unchecked;   /* copy links found, tracks whose lookup failed */
    double copies_s;           /* time spent looking up copies */
    double audio_s, t0;
    int64_t prints;
} totals_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(const totals_t *t, int final)
{
    double el = now_s() - t->t0;
    double rt = el > 0 ? t->audio_s / el : 0;
    double eta = t->done ? el * (double)(t->files - t->done) / (double)t->done : 0;
    fprintf(stderr, "\r\033[K%zu/%zu files, %.2f h of audio, %.0fx real time, %lld prints",
            t->done, t->files, t->audio_s / 3600.0, rt, (long long)t->prints);
    if (!final && t->done < t->files) fprintf(stderr, ", ETA %.0f s", eta);
    if (final) fputc('\n', stderr);
}

/* ---- stopping ------------------------------------------------------------------------ */

/*
 * A run holds this advisory lock (the key pair RUN_LOCK_CLASS, run id) on
 * its session for as long as it lives.  A run killed by kill -9 or cut
 * from the database loses it with its session; the next run finds runs
 * still 'running' whose lock it can take and closes them as failed.  So no
 * run stays 'running' forever, and a live run (holding its lock) is never
 * touched.
 */
#define RUN_LOCK_CLASS "1701995057" /* "earm" in ASCII, as an int4 */

/* Take the run's lock on the writer's session (again after a reconnect:
 * a new session holds nothing).  A failure is not fatal: the run goes on,
 * only a sweep could then close it early. */
static void index_run_lock(db_conn_t *conn, int64_t run)
{
    char id[24], err[256];
    snprintf(id, sizeof id, "%lld", (long long)run);
    const char *p[1] = {id};
    PGresult *res = NULL;
    if (db_query(conn,
                 "SELECT pg_advisory_lock(" RUN_LOCK_CLASS ", $1::int) WHERE NOT EXISTS "
                 "(SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                 "AND classid = " RUN_LOCK_CLASS "::oid AND objid = $1::oid AND objsubid = 2)",
                 1, p, 0, &res, err, sizeof err) != DB_OK)
        cli_error("index", "cannot mark run %s as alive: %s", id, err);
    PQclear(res);
}

/* Close as failed the runs left 'running' by processes that are gone (see
 * RUN_LOCK_CLASS).  *n gets how many. */
static db_err_t index_runs_sweep(db_conn_t *conn, int64_t *n, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *n = 0;
    db_err_t rc = db_query(
        conn,
        "UPDATE index_runs SET status = 'failed', finished_at = now(), "
        "message = 'the run ended without closing: its process was killed or lost the database' "
        "WHERE status = 'running' AND id <= 2147483647 "
        "AND pg_try_advisory_xact_lock(" RUN_LOCK_CLASS ", id::int)",
        0, NULL, 0, &res, err, errlen);
    if (rc == DB_OK) *n = atoll(PQcmdTuples(res));
    PQclear(res);
    return rc;
}

/*
 * SIGTERM, SIGINT and SIGHUP ask the run to stop: the batch being gathered
 * is written, the run is closed as 'cancelled', and running the same
 * command again resumes.  The flag is the one global of the command: a
 * signal handler has nowhere else to write.
 */
static volatile sig_atomic_t index_stop_signal;

static void index_on_signal(int sig)
{
    index_stop_signal = sig;
}

/* Install (on 1) or remove (on 0) the handlers of index_on_signal. */
static void index_signals(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? index_on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* ---- writing -------------------------------------------------------------------- */

typedef struct writer {
    db_conn_t *conn;
    store_t *store;
    int64_t run;
    int replace;
    double retry_s;
    FILE *failures;
    totals_t *tot;
    int progress;
} writer_t;

/*
 * Write jobs[a .. b) in one transaction: their tracks, their prints, the
 * failures among them, the run's counters.  Returns DB_OK or the error
 * (the transaction rolled back).
 */
static db_err_t write_batch(writer_t *w, job_t *jobs, size_t a, size_t b, size_t *indexed,
                            size_t *existed, char *err, size_t errlen)
{
    store_batch_t *batch;
    *indexed = *existed = 0;
    db_err_t rc = store_batch_begin(w->store, w->conn, &batch, err, errlen);
    if (rc != DB_OK) return rc;
    int64_t done = 0, failed = 0, prints = 0;
    double secs = 0;
    fp_config_t cfg;
    fp_config_default(&cfg);
    for (size_t i = a; i < b; i++) jobs[i].track_id = 0;
    for (size_t i = a; i < b; i++) {
        job_t *j = &jobs[i];
        done++;
        if (j->rc != FP_OK) {
            failed++;
            /* the catalog keeps text as UTF-8: a path or a message quoting
             * one may not be, and must not fail the batch */
            char *path = cli_text_dup(j->item->path, CLI_ESCAPE_UTF8),
                 *why = cli_text_dup(j->err, CLI_ESCAPE_UTF8);
            if (path && why) {
                rc = catalog_run_failure(w->conn, w->run, path, why, err, errlen);
            } else {
                rc = DB_ERR_NOMEM;
                snprintf(err, errlen, "out of memory");
            }
            free(path);
            free(why);
            if (rc != DB_OK) goto fail;
            continue;
        }
        if (j->skipped) {
            (*existed)++;
            continue;
        }
        catalog_track_t t = {0};
        t.tenant_id = j->tenant_id;
        t.external_id = j->item->external_id;
        t.title = j->item->title;
        t.artist = j->item->artist;
        t.source = j->item->path;
        t.duration_s = j->res.stats.seconds;
        memcpy(t.sha256, j->sha, 32);
        t.params_version = FP_PARAMS_VERSION;
        t.config_id = fp_config_id(&cfg);
        t.prints = (int64_t)j->res.count;
        /* the same file fingerprinted with other parameters: replaced */
        rc = catalog_track_supersede_config(w->conn, j->tenant_id, j->sha, t.config_id, NULL, err,
                                            errlen);
        if (rc != DB_OK) goto fail;
        if (w->replace) {
            rc = catalog_track_supersede(w->conn, j->tenant_id, j->item->path,
                                         j->item->external_id, j->sha, NULL, err, errlen);
            if (rc != DB_OK) goto fail;
        }
        int64_t id;
        int ex;
        rc = catalog_track_insert(w->conn, &t, &id, &ex, err, errlen);
        if (rc != DB_OK) goto fail;
        j->existed = ex;
        if (ex) {
            (*existed)++;
            continue;
        }
        if (id >= (int64_t)UINT32_MAX) {
            rc = DB_ERR_INVALID;
            snprintf(err, errlen, "track id %lld exceeds the store's 32 bits", (long long)id);
            goto fail;
        }
        rc = store_batch_add(batch, (uint32_t)id, j->res.prints, j->res.count, err, errlen);
        if (rc != DB_OK) goto fail;
        j->track_id = id;
        (*indexed)++;
        secs += t.duration_s;
        prints += (int64_t)j->res.count;
    }
    rc = catalog_run_progress(w->conn, w->run, done, failed, secs, prints, err, errlen);
    if (rc != DB_OK) goto fail;
    return store_batch_commit(batch, NULL, err, errlen);
fail:
    store_batch_abort(batch);
    return rc;
}

/*
 * write_batch() until it succeeds, reconnecting while the database is
 * unreachable, for up to w->retry_s seconds.  A statement the server
 * refuses is not retried.
 */
static db_err_t write_batch_retry(writer_t *w, job_t *jobs, size_t a, size_t b, size_t *indexed,
                                  size_t *existed, char *err, size_t errlen)
{
    double t0 = now_s(), pause = 0.25;
    for (;;) {
        db_err_t rc = write_batch(w, jobs, a, b, indexed, existed, err, errlen);
        if (rc == DB_OK) return DB_OK;
        if (rc != DB_ERR_CONNECT && PQstatus(db_pg(w->conn)) == CONNECTION_OK) return rc;
        if (now_s() - t0 > w->retry_s) return rc;
        fprintf(stderr, "\nearmark index: the database is unreachable; retrying: %s\n", err);
        char e2[512];
        while (db_ping(w->conn, e2, sizeof e2) != DB_OK) {
            if (now_s() - t0 > w->retry_s || index_stop_signal) return rc;
            struct timespec ts = {(time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9)};
            nanosleep(&ts, NULL);
            if (pause < 4) pause *= 2;
        }
        index_run_lock(w->conn, w->run);
    }
}

/*
 * Look up the tracks that jobs[a .. b) added (committed) for copies in the
 * whole store and record their links.  A lookup that fails is reported
 * and leaves its track unchecked for `earmark catalog copies --scan`; the
 * run goes on.
 */
static void link_copies(writer_t *w, job_t *jobs, size_t a, size_t b, int show)
{
    double t0 = now_s();
    for (size_t i = a; i < b; i++) {
        job_t *j = &jobs[i];
        if (!j->track_id) continue;
        catalog_copy_t *c = NULL;
        size_t nc = 0;
        int64_t added = 0;
        char err[2048];
        db_err_t rc = catalog_copies_find(w->store, w->conn, j->track_id, j->res.stats.seconds,
                                          j->res.prints, j->res.count, NULL, &c, &nc, err,
                                          sizeof err);
        if (rc == DB_OK) rc = catalog_copies_save(w->conn, j->track_id, c, nc, &added, err, sizeof err);
        catalog_copies_free(c, nc);
        if (rc != DB_OK) {
            if (show) fputs("\r\033[K", stderr);
            fprintf(stderr, "earmark index: track %lld not checked for copies (`earmark catalog "
                            "copies --scan` will): %s\n", (long long)j->track_id, err);
            w->tot->unchecked++;
            continue;
        }
        w->tot->links += (size_t)added;
    }
    w->tot->copies_s += now_s() - t0;
}

/* ---- the command ------------------------------------------------------------------ */

int cmd_index(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'},
        {"manifest", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 'j'},
        {"replace", no_argument, NULL, 'r'},
        {"compact", no_argument, NULL, 'c'},
        {"failures", required_argument, NULL, 'f'},
        {"batch-prints", required_argument, NULL, 'b'},
        {"retry-seconds", required_argument, NULL, 'R'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-copies", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *tenant_name = "default", *failures_path = NULL;
    const char **manifests = calloc((size_t)argc + 1, sizeof *manifests);
    size_t nmanifests = 0;
    long threads = cli_ncpu(), batch_prints = 2000000, retry_s = 120;
    int replace = 0, compact = 0, quiet = 0, copies = 1, c;
    if (!manifests) return EXIT_FAIL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant_name = optarg; break;
        case 'm': manifests[nmanifests++] = optarg; break;
        case 'j':
            if (cli_parse_int(optarg, 1, 256, &threads)) {
                free(manifests);
                return cli_usage("index", USAGE, "--threads wants 1..256, not '%s'", optarg);
            }
            break;
        case 'b':
            if (cli_parse_int(optarg, 1000, 1000000000, &batch_prints)) {
                free(manifests);
                return cli_usage("index", USAGE, "--batch-prints wants 1000..1e9, not '%s'", optarg);
            }
            break;
        case 'R':
            if (cli_parse_int(optarg, 0, 86400, &retry_s)) {
                free(manifests);
                return cli_usage("index", USAGE, "--retry-seconds wants 0..86400, not '%s'", optarg);
            }
            break;
        case 'r': replace = 1; break;
        case 'c': compact = 1; break;
        case 'f': failures_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'C': copies = 0; break;
        case 'h': help(); free(manifests); return EXIT_OK;
        default: free(manifests); return cli_usage("index", USAGE, "unknown option");
        }
    }
    if (optind >= argc && !nmanifests) {
        free(manifests);
        return cli_usage("index", USAGE, "name files, folders or a manifest to index");
    }

    int status = EXIT_FAIL;
    char err[2048], conninfo[4096];
    idx_list_t list;
    idx_list_init(&list);
    db_conn_t *conn = NULL;
    store_t *store = NULL;
    pool_t p;
    memset(&p, 0, sizeof p);
    pthread_t *tids = NULL;
    int nthreads = 0;
    FILE *failures = NULL;
    int64_t run = 0;
    char *run_source = NULL;
    int signals_on = 0;
    totals_t tot = {0};
    tot.t0 = now_s();

    /* the files */
    for (size_t i = 0; i < nmanifests; i++) {
        idx_err_t ie = idx_manifest_load(manifests[i], &list, err, sizeof err);
        if (ie != IDX_OK) {
            cli_error("index", "%s", err);
            goto out;
        }
    }
    for (int i = optind; i < argc; i++) {
        size_t skipped = 0;
        idx_err_t ie = idx_walk(argv[i], &list, &skipped, err, sizeof err);
        if (ie != IDX_OK) {
            cli_error("index", "%s", err);
            goto out;
        }
        if (skipped) cli_error("index", "%s: %zu entries could not be read and were skipped", argv[i], skipped);
    }
    if (index_paths_absolute(&list, err, sizeof err)) {
        cli_error("index", "%s", err);
        goto out;
    }
    idx_list_dedupe(&list, NULL);
    if (failures_path && !(failures = fopen(failures_path, "w"))) {
        cli_error("index", "%s: %s", failures_path, strerror(errno));
        goto out;
    }

    /* the database */
    if (db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK ||
        db_connect(conninfo, &conn, err, sizeof err) != DB_OK ||
        store_open(conn, &store, err, sizeof err) != DB_OK) {
        cli_error("index", "%s", err);
        goto out;
    }
    fp_config_default(&p.cfg);
    p.jobs = calloc(list.count + 1, sizeof *p.jobs);
    p.done = calloc(list.count + 1, 1);
    if (!p.jobs || !p.done) goto out;
    for (size_t i = 0; i < list.count; i++) {
        p.jobs[i].item = &list.items[i];
        if (index_item_check(&list.items[i], p.jobs[i].err, sizeof p.jobs[i].err)) {
            p.jobs[i].refused = 1;
            p.jobs[i].rc = FP_ERR_INVALID;
            continue;
        }
        const char *tn = list.items[i].tenant ? list.items[i].tenant : tenant_name;
        size_t k = 0;
        while (k < p.ntenants && strcmp(p.tenants[k].name, tn)) k++;
        if (k == p.ntenants) {
            tenant_t *x = realloc(p.tenants, (p.ntenants + 1) * sizeof *x);
            if (!x) goto out;
            p.tenants = x;
            memset(&p.tenants[k], 0, sizeof p.tenants[k]);
            p.tenants[k].name = strdup(tn);
            p.ntenants++;
            if (!p.tenants[k].name ||
                catalog_tenant_ensure(conn, tn, &p.tenants[k].id, err, sizeof err) != DB_OK ||
                catalog_tenant_shas(conn, p.tenants[k].id, fp_config_id(&p.cfg),
                                    &p.tenants[k].shas, &p.tenants[k].n, err,
                                    sizeof err) != DB_OK) {
                cli_error("index", "tenant %s: %s", tn, err);
                goto out;
            }
        }
        p.jobs[i].item = &list.items[i];
        p.jobs[i].tenant_id = p.tenants[k].id;
    }
    int64_t run_tenant = 0, swept = 0;
    if (index_runs_sweep(conn, &swept, err, sizeof err) != DB_OK)
        cli_error("index", "closing the runs left open by killed processes: %s", err);
    else if (swept && !quiet)
        cli_error("index", "%lld earlier run%s left 'running' by a killed process marked failed",
                  (long long)swept, swept == 1 ? "" : "s");
    run_source = cli_text_dup(nmanifests ? manifests[0] : argv[optind], CLI_ESCAPE_UTF8);
    if (!run_source) goto out;
    if (catalog_tenant_ensure(conn, tenant_name, &run_tenant, err, sizeof err) != DB_OK ||
        catalog_run_begin(conn, run_tenant, run_source, (int)threads, (int64_t)list.count, &run,
                          err, sizeof err) != DB_OK) {
        cli_error("index", "%s", err);
        goto out;
    }
    index_run_lock(conn, run);

    /* the workers: the stopping signals go to the writer (this thread),
     * never to a worker */
    sigset_t stop_sigs, old_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGHUP);
    index_stop_signal = 0;
    index_signals(1);
    signals_on = 1;
    pthread_sigmask(SIG_BLOCK, &stop_sigs, &old_sigs);
    p.n = list.count;
    p.max_pending = (size_t)batch_prints * 2;
    fp_limits_default(&p.lim);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    tids = calloc((size_t)threads, sizeof *tids);
    if (!tids) {
        pthread_sigmask(SIG_SETMASK, &old_sigs, NULL);
        goto out;
    }
    for (; nthreads < threads; nthreads++)
        if (pthread_create(&tids[nthreads], NULL, worker, &p)) break;
    pthread_sigmask(SIG_SETMASK, &old_sigs, NULL);
    if (!nthreads) {
        cli_error("index", "cannot start threads");
        goto out;
    }

    /* the writer: batches in the order of the list, as files finish */
    writer_t w = {conn, store, run, replace, (double)retry_s, failures, &tot, 0};
    int show = !quiet && cli_isatty(2);
    tot.files = list.count;
    size_t a = 0;
    double last_show = 0;
    int stopped = 0, cancelled = 0;
    while (a < list.count && !stopped) {
        size_t b = a, prints = 0;
        pthread_mutex_lock(&p.lock);
        for (;;) {
            while (b < list.count && p.done[b] && prints < (size_t)batch_prints) prints += p.jobs[b++].res.count;
            if (b == list.count || prints >= (size_t)batch_prints || index_stop_signal) break;
            /* a signal does not wake a condition wait: look every 0.2 s */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 200000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p.cond, &p.lock, &until);
        }
        pthread_mutex_unlock(&p.lock);
        if (index_stop_signal && b == a) {
            cancelled = stopped = 1;
            break;
        }
        size_t indexed, existed;
        db_err_t rc = write_batch_retry(&w, p.jobs, a, b, &indexed, &existed, err, sizeof err);
        if (rc != DB_OK) {
            cli_error("index", "%s\nThe files indexed so far are kept; run the same command again "
                               "to resume.", err);
            stopped = 1;
            break;
        }
        if (copies) link_copies(&w, p.jobs, a, b, show);
        for (size_t i = a; i < b; i++) {
            job_t *j = &p.jobs[i];
            tot.done++;
            if (j->rc != FP_OK) {
                tot.failed++;
                cli_texts_t tx = CLI_TEXTS_INIT;
                if (show) fputs("\r\033[K", stderr);
                fprintf(stderr, "earmark index: failed: %s\n", cli_text(&tx, j->err));
                /* one line a failure, whatever the path holds */
                if (failures)
                    fprintf(failures, "%s\t%s\n", cli_text(&tx, j->item->path),
                            cli_text(&tx, j->err));
                cli_texts_free(&tx);
            } else if (!j->skipped && !j->existed) {
                /* only what was indexed: a copy of a recording already
                 * there (in an earlier batch or run) adds nothing */
                tot.audio_s += j->res.stats.seconds;
                tot.prints += (int64_t)j->res.count;
            }
            fp_result_clear(&j->res);
        }
        tot.indexed += indexed;
        tot.skipped += existed;
        pthread_mutex_lock(&p.lock);
        p.pending_prints = p.pending_prints > prints ? p.pending_prints - prints : 0;
        pthread_cond_broadcast(&p.cond);
        pthread_mutex_unlock(&p.lock);
        a = b;
        rc = store_merge(store, conn, NULL, NULL, err, sizeof err);
        if (rc != DB_OK) cli_error("index", "merging segments (the next run will): %s", err);
        if (show && (now_s() - last_show > 0.2 || a == list.count)) {
            progress(&tot, 0);
            last_show = now_s();
        }
        if (index_stop_signal && a < list.count) cancelled = stopped = 1;
    }
    pthread_mutex_lock(&p.lock);
    p.stop = 1;
    pthread_cond_broadcast(&p.cond);
    pthread_mutex_unlock(&p.lock);
    for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
    nthreads = 0;
    if (show) progress(&tot, 1);

    if (!stopped && compact) {
        store_merge_opts_t mo;
        store_merge_opts_default(&mo);
        mo.all = 1;
        if (store_merge(store, conn, &mo, NULL, err, sizeof err) != DB_OK)
            cli_error("index", "compacting the store: %s", err);
    }
    char msg[256];
    if (cancelled) {
        snprintf(msg, sizeof msg, "stopped by signal %d after %zu of %zu files; run the same "
                 "command again to resume", (int)index_stop_signal, tot.done, tot.files);
        cli_error("index", "%s", msg);
    } else {
        snprintf(msg, sizeof msg, "%zu indexed, %zu already there, %zu failed", tot.indexed,
                 tot.skipped, tot.failed);
    }
    if (catalog_run_end(conn, run, cancelled ? "cancelled" : stopped ? "failed" : "finished",
                        stopped && !cancelled ? err : msg, err, sizeof err) != DB_OK && !stopped)
        cli_error("index", "closing the run: %s", err);
    if (!quiet) {
        double el = now_s() - tot.t0;
        fprintf(stderr,
                "earmark index: run %lld: %zu files: %zu indexed, %zu already indexed, %zu failed; "
                "%.2f h of audio, %lld prints in %.1f s (%.0fx real time)\n",
                (long long)run, tot.files, tot.indexed, tot.skipped, tot.failed,
                tot.audio_s / 3600.0, (long long)tot.prints, el, el > 0 ? tot.audio_s / el : 0);
        if (copies && tot.indexed)
            fprintf(stderr, "earmark index: %zu copy link%s to tracks in the catalog (%.1f s of "
                            "lookups)%s\n", tot.links, tot.links == 1 ? "" : "s", tot.copies_s,
                    tot.unchecked ? "; some tracks not checked: run `earmark catalog copies "
                                    "--scan`" : "");
    }
    status = stopped || tot.failed ? EXIT_FAIL : EXIT_OK;

out:
    if (nthreads) {
        pthread_mutex_lock(&p.lock);
        p.stop = 1;
        pthread_cond_broadcast(&p.cond);
        pthread_mutex_unlock(&p.lock);
        for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
    }
    free(tids);
    if (signals_on) index_signals(0);
    if (p.jobs)
        for (size_t i = 0; i < list.count; i++) fp_result_clear(&p.jobs[i].res);
    free(p.jobs);
    free(p.done);
    for (size_t i = 0; i < p.ntenants; i++) {
        free(p.tenants[i].name);
        free(p.tenants[i].shas);
    }
    free(p.tenants);
    if (failures) fclose(failures);
    store_free(store);
    db_close(conn);
    idx_list_free(&list);
    free(run_source);
    free(manifests);
    return status;
}
