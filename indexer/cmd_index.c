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
 * A file that cannot be read or decoded is reported (stderr, the run's
 * index_failures rows, --failures FILE) and the run goes on.  When the
 * database goes away the batch is kept in memory and retried, reconnecting
 * with a growing pause for up to --retry-seconds (default 120); after that
 * the run stops with a message, and running the same command again resumes.
 *
 * Exit status: 0 every file indexed or already there, 1 some file failed
 * or the run stopped, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <pthread.h>
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

/*
 * SHA-256 of a file's bytes, read in 1 MiB pieces.  The fingerprinter then
 * reads the file again by path, from the page cache: decoding from a path
 * measured faster than decoding the same bytes from memory.
 */
static int sha256_file(const char *path, uint8_t out[32], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 20);
    int rc = -1;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto done;
    }
    unsigned int n = 32;
    rc = EVP_DigestFinal_ex(ctx, out, &n) ? 0 : -1;
    if (rc) snprintf(err, errlen, "%s: SHA-256 failed", path);
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    fclose(f);
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
        if (sha256_file(j->item->path, j->sha, j->err, sizeof j->err)) {
            j->rc = FP_ERR_IO;
        } else {
            const tenant_t *t = tenant_of(p, j->tenant_id);
            if (t && catalog_sha_in(t->shas, t->n, j->sha)) {
                j->skipped = 1;
                j->rc = FP_OK;
            } else {
                j->rc = fp_extract_path(j->item->path, &p->cfg, &p->lim, &j->res, j->err,
                                        sizeof j->err);
            }
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
            rc = catalog_run_failure(w->conn, w->run, j->item->path, j->err, err, errlen);
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
            if (now_s() - t0 > w->retry_s) return rc;
            struct timespec ts = {(time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9)};
            nanosleep(&ts, NULL);
            if (pause < 4) pause *= 2;
        }
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
    int64_t run_tenant = 0;
    if (catalog_tenant_ensure(conn, tenant_name, &run_tenant, err, sizeof err) != DB_OK ||
        catalog_run_begin(conn, run_tenant, nmanifests ? manifests[0] : argv[optind], (int)threads,
                          (int64_t)list.count, &run, err, sizeof err) != DB_OK) {
        cli_error("index", "%s", err);
        goto out;
    }

    /* the workers */
    p.n = list.count;
    p.max_pending = (size_t)batch_prints * 2;
    fp_limits_default(&p.lim);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    tids = calloc((size_t)threads, sizeof *tids);
    if (!tids) goto out;
    for (; nthreads < threads; nthreads++)
        if (pthread_create(&tids[nthreads], NULL, worker, &p)) break;
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
    int stopped = 0;
    while (a < list.count && !stopped) {
        size_t b = a, prints = 0;
        pthread_mutex_lock(&p.lock);
        for (;;) {
            while (b < list.count && p.done[b] && prints < (size_t)batch_prints) prints += p.jobs[b++].res.count;
            if (b == list.count || prints >= (size_t)batch_prints) break;
            pthread_cond_wait(&p.cond, &p.lock);
        }
        pthread_mutex_unlock(&p.lock);
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
                if (show) fputs("\r\033[K", stderr);
                fprintf(stderr, "earmark index: failed: %s\n", j->err);
                if (failures) fprintf(failures, "%s\t%s\n", j->item->path, j->err);
            } else if (!j->skipped) {
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
    snprintf(msg, sizeof msg, "%zu indexed, %zu already there, %zu failed", tot.indexed,
             tot.skipped, tot.failed);
    if (catalog_run_end(conn, run, stopped ? "failed" : "finished", stopped ? err : msg, err,
                        sizeof err) != DB_OK && !stopped)
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
    free(manifests);
    return status;
}
