/*
 * cmd_fingerprint.c -- `earmark fingerprint`: print the prints of audio files.
 *
 * Files are fingerprinted on N threads (default: every core) and printed in
 * the order given.  A file that cannot be read is reported on stderr, naming
 * the file and the cause, and the others go on; the exit status is 1 when
 * any file failed.
 *
 * Output formats (stdout):
 *   text (default)  "# PATH" line, then one print a line: "T HASH F DT"
 *                   (T, F, DT decimal; HASH 8 hex digits)
 *   --json          one JSON object per file per line (JSON Lines), the
 *                   format documented in docs/fingerprint.md
 *   --summary       only the summary line of each file
 * The summary line (duration, peaks/s, prints/s, speed) goes to stderr,
 * or to stdout with --summary.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "earmark_fp.h"

static const char *USAGE = "earmark fingerprint [--json|--summary] [--threads N] FILE...";

typedef struct job {
    const char *path;
    fp_result_t res;
    fp_err_t rc;
    char err[512];
    int done;
} job_t;

typedef struct pool {
    job_t *jobs;
    size_t n, next;
    fp_config_t cfg;
    fp_limits_t lim;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} pool_t;

static void *worker(void *arg)
{
    pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->n) return NULL;
        job_t *j = &p->jobs[i];
        j->rc = fp_extract_path(j->path, &p->cfg, &p->lim, &j->res, j->err, sizeof j->err);
        pthread_mutex_lock(&p->lock);
        j->done = 1;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

static void print_json(FILE *f, const job_t *j, const fp_config_t *cfg)
{
    const fp_result_t *r = &j->res;
    fputs("{\"file\":", f);
    cli_json_string(f, j->path);
    fprintf(f,
            ",\"format\":\"%s\",\"sample_rate\":%d,\"channels\":%d,\"duration\":%.3f,"
            "\"params_version\":%d,\"config_id\":\"%08x\",\"frame_seconds\":%.9g,"
            "\"count\":%zu,\"prints\":[",
            r->info.format, r->info.sample_rate, r->info.channels, r->stats.seconds,
            cfg->version, fp_config_id(cfg), fp_config_frame_seconds(cfg), r->count);
    for (size_t i = 0; i < r->count; i++) {
        const fp_print_t *p = &r->prints[i];
        fprintf(f, "%s[%u,%u,%u,%u]", i ? "," : "", p->t, p->hash, p->f, p->dt);
    }
    fputs("]}\n", f);
}

static void print_text(FILE *f, const job_t *j, const fp_config_t *cfg)
{
    fprintf(f, "# %s config=%08x frames=%.6fs\n", j->path, fp_config_id(cfg),
            fp_config_frame_seconds(cfg));
    for (size_t i = 0; i < j->res.count; i++) {
        const fp_print_t *p = &j->res.prints[i];
        fprintf(f, "%u %08x %u %u\n", p->t, p->hash, p->f, p->dt);
    }
}

static void print_summary(FILE *f, const job_t *j)
{
    const fp_result_t *r = &j->res;
    double sec = r->stats.seconds > 0 ? r->stats.seconds : 1e-9;
    double wall = r->total_seconds > 0 ? r->total_seconds : 1e-9;
    fprintf(f, "%s: %s %d Hz %d ch, %.1f s, %.1f peaks/s, %.1f prints/s, %zu prints, %.0fx real time\n",
            j->path, r->info.format, r->info.sample_rate, r->info.channels, r->stats.seconds,
            (double)r->stats.peaks / sec, (double)r->count / sec, r->count, sec / wall);
}

static void help(void)
{
    printf("usage: %s\n\n"
           "Decode each FILE (WAV, FLAC, Ogg Vorbis, Opus, MP3, ...) and print its\n"
           "landmark prints.\n\n"
           "  --json         one JSON object per file (JSON Lines)\n"
           "  --summary, -s  only a summary line per file\n"
           "  --threads N    files fingerprinted at once (default: all cores)\n"
           "  --help         this text\n\n"
           "Exit status: 0 all files done, 1 some file failed, 2 usage error.\n",
           USAGE);
}

int cmd_fingerprint(int argc, char **argv)
{
    enum { TEXT, JSON, SUMMARY } mode = TEXT;
    long threads = cli_ncpu();
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"summary", no_argument, NULL, 's'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jst:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': mode = JSON; break;
        case 's': mode = SUMMARY; break;
        case 't':
            if (cli_parse_int(optarg, 1, 256, &threads))
                return cli_usage("fingerprint", USAGE, "--threads wants a number 1..256, not '%s'",
                                 optarg);
            break;
        case 'h': help(); return EXIT_OK;
        default: return cli_usage("fingerprint", USAGE, "unknown option");
        }
    }
    if (optind >= argc) return cli_usage("fingerprint", USAGE, "no file given");

    pool_t p;
    memset(&p, 0, sizeof p);
    p.n = (size_t)(argc - optind);
    p.jobs = calloc(p.n, sizeof *p.jobs);
    if (!p.jobs) {
        cli_error("fingerprint", "out of memory");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < p.n; i++) p.jobs[i].path = argv[optind + (int)i];
    fp_config_default(&p.cfg);
    fp_limits_default(&p.lim);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    if ((size_t)threads > p.n) threads = (long)p.n;
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    long started = 0;
    for (; tids && started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker, &p) != 0) break;
    if (started == 0) worker(&p); /* no thread could start: do it here */

    int failed = 0;
    FILE *out = stdout;
    for (size_t i = 0; i < p.n; i++) {
        job_t *j = &p.jobs[i];
        pthread_mutex_lock(&p.lock);
        while (!j->done) pthread_cond_wait(&p.cond, &p.lock);
        pthread_mutex_unlock(&p.lock);
        if (j->rc != FP_OK) {
            cli_error("fingerprint", "%s (%s)", j->err, fp_errname(j->rc));
            failed++;
        } else {
            if (mode == JSON) print_json(out, j, &p.cfg);
            else if (mode == TEXT) print_text(out, j, &p.cfg);
            print_summary(mode == SUMMARY ? out : stderr, j);
        }
        fflush(out);
        fp_result_clear(&j->res);
    }
    for (long t = 0; t < started; t++) pthread_join(tids[t], NULL);
    free(tids);
    free(p.jobs);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.cond);
    if (failed && p.n > 1) cli_error("fingerprint", "%d of %zu files failed", failed, p.n);
    return failed ? EXIT_FAIL : EXIT_OK;
}
