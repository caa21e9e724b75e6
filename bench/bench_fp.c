/*
 * bench_fp.c -- throughput of the fingerprint core on real music.
 *
 *   build/bench_fp [--repeat N] [--threads N] [DIR_OR_FILE...]
 *
 * Takes the 44.1 kHz stereo Ogg Vorbis files found (default: the
 * supertuxkart-data music folder) and measures, side by side in one run:
 *   decode    libsndfile to float only, one thread
 *   extract1  decode + fingerprint, one thread
 *   extractN  decode + fingerprint on N threads (default: all cores)
 * each as x real time (best of --repeat runs, interleaved so that machine
 * noise hits all of them alike), and prints the ratios the project holds
 * itself to: extract1 / decode (>= 0.8: fingerprinting costs at most 25% of
 * decoding) and extractN / extract1 (>= 1.8 on two cores).
 */
#include <dirent.h>
#include <pthread.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "earmark_fp.h"

#ifndef DECODE_BLOCK
#define DECODE_BLOCK 4096 /* frames per read in the decode-only pass */
#endif

typedef struct file {
    char *path;
    double seconds;
} file_t;

static file_t *files;
static size_t nfiles, files_cap;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void add_file(const char *path)
{
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    if (!sf) return;
    sf_close(sf);
    if (si.samplerate != 44100 || si.channels != 2 ||
        (si.format & SF_FORMAT_SUBMASK) != SF_FORMAT_VORBIS)
        return;
    if (nfiles == files_cap) {
        files_cap = files_cap ? files_cap * 2 : 64;
        files = realloc(files, files_cap * sizeof *files);
        if (!files) exit(1);
    }
    files[nfiles].path = strdup(path);
    files[nfiles].seconds = (double)si.frames / si.samplerate;
    nfiles++;
}

static void add_arg(const char *arg)
{
    DIR *d = opendir(arg);
    if (!d) {
        add_file(arg);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".ogg")) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", arg, e->d_name);
            add_file(p);
        }
    }
    closedir(d);
}

/* Longest first, so that the last file to finish is a short one. */
static int cmp_len(const void *a, const void *b)
{
    const file_t *x = a, *y = b;
    if (x->seconds != y->seconds) return x->seconds > y->seconds ? -1 : 1;
    return strcmp(x->path, y->path);
}

typedef struct run {
    int decode_only;
    size_t next;
    pthread_mutex_t lock;
    size_t prints;
    int failed;
} run_t;

static void decode_file(const char *path, run_t *r)
{
    fp_decoder_t *dec;
    char err[256];
    if (fp_decoder_open_path(path, NULL, &dec, err, sizeof err) != FP_OK) {
        fprintf(stderr, "%s\n", err);
        r->failed = 1;
        return;
    }
    float *buf = malloc(sizeof(float) * DECODE_BLOCK * 2);
    size_t got;
    while (buf && fp_decoder_read(dec, buf, DECODE_BLOCK, &got, err, sizeof err) == FP_OK && got) {
    }
    free(buf);
    fp_decoder_free(dec);
}

static void *worker(void *arg)
{
    run_t *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next++;
        pthread_mutex_unlock(&r->lock);
        if (i >= nfiles) return NULL;
        if (r->decode_only) {
            decode_file(files[i].path, r);
            continue;
        }
        fp_result_t res;
        char err[512];
        if (fp_extract_path(files[i].path, NULL, NULL, &res, err, sizeof err) != FP_OK) {
            fprintf(stderr, "%s\n", err);
            r->failed = 1;
            continue;
        }
        pthread_mutex_lock(&r->lock);
        r->prints += res.count;
        pthread_mutex_unlock(&r->lock);
        fp_result_clear(&res);
    }
}

/* Wall seconds for one pass over all files. */
static double pass(int decode_only, int threads, size_t *prints)
{
    run_t r;
    memset(&r, 0, sizeof r);
    r.decode_only = decode_only;
    pthread_mutex_init(&r.lock, NULL);
    pthread_t tid[256];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, &r);
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    double t = now() - t0;
    pthread_mutex_destroy(&r.lock);
    if (r.failed) exit(1);
    if (prints) *prints = r.prints;
    return t;
}

int main(int argc, char **argv)
{
    int repeat = 3;
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else {
            add_arg(argv[i]);
            nargs++;
        }
    }
    if (!nargs) add_arg("/usr/share/games/supertuxkart/data/music");
    if (threads < 1 || threads > 256 || repeat < 1) {
        fprintf(stderr, "usage: bench_fp [--repeat N] [--threads N] [DIR_OR_FILE...]\n");
        return 2;
    }
    if (!nfiles) {
        fprintf(stderr, "bench_fp: no 44.1 kHz stereo Ogg Vorbis files found\n"
                        "hint: scripts/deps installs supertuxkart-data\n");
        return 1;
    }
    qsort(files, nfiles, sizeof *files, cmp_len);
    double audio = 0;
    for (size_t i = 0; i < nfiles; i++) audio += files[i].seconds;
    printf("corpus: %zu files, %.1f min of 44.1 kHz stereo Ogg Vorbis; %d threads; best of %d\n",
           nfiles, audio / 60.0, threads, repeat);
    double best_dec = 1e30, best_x1 = 1e30, best_xn = 1e30;
    size_t prints = 0;
    for (int r = 0; r < repeat; r++) {
        double d = pass(1, 1, NULL), x1 = pass(0, 1, &prints), xn = pass(0, threads, NULL);
        if (d < best_dec) best_dec = d;
        if (x1 < best_x1) best_x1 = x1;
        if (xn < best_xn) best_xn = xn;
    }
    double rt_dec = audio / best_dec, rt_x1 = audio / best_x1, rt_xn = audio / best_xn;
    printf("| measure | x real time |\n|---|---|\n");
    printf("| decode only, 1 thread | %.0f |\n", rt_dec);
    printf("| decode + fingerprint, 1 thread | %.0f |\n", rt_x1);
    printf("| decode + fingerprint, %d threads | %.0f |\n", threads, rt_xn);
    printf("fingerprint cost after decode: %.1f%% of decode time\n",
           100.0 * (best_x1 - best_dec) / best_dec);
    printf("ratio extract1/decode: %.3f (bar >= 0.80)\n", rt_x1 / rt_dec);
    printf("ratio extract%d/extract1: %.3f (bar >= 1.80 on 2 cores)\n", threads, rt_xn / rt_x1);
    printf("prints: %zu (%.1f per second of audio)\n", prints, (double)prints / audio);
    return 0;
}
