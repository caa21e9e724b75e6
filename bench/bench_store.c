/*
 * bench_store.c -- the PostgreSQL print store at catalog scale, without
 * decoding a catalog: load rate, bytes per print on disk, lookup latency.
 *
 *   build/bench_store [--tracks N[,N...]] [--queries N] [--var DIR] [--keep]
 *                     [--reuse] [--conninfo STR] [--out FILE] [--seed N]
 *                     [--batch PRINTS] [--max-postings N] [--max-hits N]
 *                     [--first-hits N] [--unknown] [--cache-mb N] [--threads N] [--fanin N] [--alpha A] [--theta T] [FILE.ogg ...]
 *
 *   make bench-store BENCH_STORE_ARGS='--tracks 1000,10000 --out var/bench-store.md'
 *
 * What it does:
 *
 *   1. Calibration.  A handful of real recordings (the FILEs, default 6
 *      supertuxkart and 2 planetblupi pieces) are fingerprinted with the
 *      default config.  From their prints it measures what the store's
 *      behaviour depends on: prints per second of audio, the share of
 *      triplets, the distribution of store keys, the anchor frequency f of
 *      each kind of key, and two collision rates:
 *        cross   P(a print of track A and a print of track B have the same
 *                key), the mean over pairs of files: how many postings of
 *                other tracks a query print fetches (hits ~ cross * prints);
 *        within  the same for two prints of one track: songs repeat their
 *                notes, which makes a key's postings come in runs of one
 *                track (cheaper to encode, and self-hits at wrong offsets).
 *
 *   2. The generator: synthetic prints with those statistics.  A fresh
 *      key is drawn from G = alpha POOL + (1 - alpha) MODEL, where POOL
 *      picks a whole real print (hash, f) (a file uniformly, then one of
 *      its prints) and MODEL draws the hash's fields independently from
 *      their real marginals (pairs: anchor bin, then (df, dt) jointly;
 *      triplets: ratio, (dl12, dl13) jointly, loudness bits, band; f from
 *      the anchor bin's sub-bin offsets, or from a real triplet of the same
 *      band).  Sampling real prints alone (alpha = 1, --alpha 1) would make
 *      the catalog reuse the pool's ~10^5 keys forever, with no long tail,
 *      and collide three times more across tracks than real music does (a
 *      pool of few files is dominated by their own repeated notes).  So
 *      sum G_k^2, the synthetic catalog's cross-track collision rate, is
 *      solved to equal the measured one: by alpha when MODEL collides less,
 *      else (as with the default files) with alpha = 0 and MODEL's
 *      marginals flattened by a common exponent beta < 1.
 *      Within a track, keys follow a Pitman-Yor process: a print repeats an
 *      earlier print's (hash, f) or draws a fresh one from G; its two
 *      parameters are solved so that both the within-track collision rate
 *      and the share of repeated keys (at the calibration files' lengths)
 *      are the real ones.  Tracks last uniformly 150..300 s (typical songs),
 *      at the print rate of a calibration file chosen at random; frames t
 *      are uniform over the track, sorted.  Everything comes from --seed:
 *      track i can be generated again for the queries.  The report puts the
 *      statistics of 32 generated tracks, as long as the calibration files,
 *      next to the real ones.
 *
 *   3. Loading, step by step up to each --tracks size: batches of about
 *      --batch prints (2M), each one store_batch_begin, a catalog row per
 *      track (catalog_track_insert), store_batch_add, store_batch_commit,
 *      then store_merge with the default (tiered) options.  Generating the
 *      prints is not timed; the catalog rows are.
 *
 *   4. At each size: a lookup pass over the store as the merges left it
 *      (50 clips), the final compaction (store_merge with all = 1), the
 *      size on disk (store_stats, pg_database_size), and the lookup pass
 *      again (--queries clips, 200).  The clips: the prints of 10 s of a
 *      random catalog track shifted to frame 0, 30% of them replaced by
 *      draws from G.  A pass: a warm-up (store_hits of every clip, 5 whole
 *      queries), then per clip store_hits alone (fetch) and match_query
 *      through store_match_new (total), timed with CLOCK_MONOTONIC.  A
 *      clip is recalled when the best match is its track at its offset
 *      (within 50 ms).
 *
 * Options: --tracks the sizes (default 1000,10000; 100000 is ~2.5 billion
 * prints, ~15 GB of segments); --queries clips per lookup pass (200);
 * --batch prints per batch (2M); --max-postings the matcher's cap of
 * postings per key (default the matcher's, 2000); --max-hits its budget of
 * hits; --first-hits the first part of its lookups in two (default the
 * matcher's; 0: one part; the report says how many were narrowed);
 * --unknown makes the clips of generated tracks that are not in the
 * catalog (recall is then the share of clips that match nothing: what a
 * clip costs that is not in the catalog); --cache-mb a row cache of that size for the lookup passes (as
 * `earmark serve --cache-mb`: the warm-up fills it); --threads N splits
 * each lookup over N threads (store_set_threads; default 1); --fanin N
 * the tiered merges' fanin after each batch (default the store's; 0: no
 * merges, every batch stays a segment until the compaction, and the pass
 * before it is skipped: the fastest way to a large compacted store);
 * --seed; --out FILE
 * writes the report as a Markdown section; --alpha / --theta force the
 * generator's mixture (--alpha 1: real prints only) or a one-parameter
 * within-track process (--theta inf: no repeats); --reuse measures the
 * lookups again on the store a --keep run left (same --seed), without
 * loading: for trying changes to the lookup.
 *
 * The cluster: --var DIR (default ./var/bench-store) holds a private
 * cluster of its own, never ./var/pg; the folder is marked as the
 * benchmark's and its store is emptied at start.  At exit the cluster is
 * stopped and its data removed unless --keep (a guard process does it
 * too when the benchmark dies).  --conninfo uses a given server instead,
 * whose store must be empty; without --keep the benchmark's tracks and
 * segments are removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "em_catalog.h"
#include "em_db.h"
#include "em_match.h"
#include "em_store.h"
#include "earmark_fp.h"

#define MAX_STEPS 16
#define CLIP_SECONDS 10.0
#define CLIP_NOISE 0.30
#define SONG_MIN_S 150.0
#define SONG_MAX_S 300.0
#define VALIDATE_TRACKS 32
#define OFFSET_TOLERANCE_S 0.05
#define BEFORE_QUERIES 50  /* clips of the pass before compaction */

static const char *const default_files[] = {
    "/usr/share/games/supertuxkart/data/music/Boom_boom_boom.ogg",
    "/usr/share/games/supertuxkart/data/music/Lava.ogg",
    "/usr/share/games/supertuxkart/data/music/Penguin_Party.ogg",
    "/usr/share/games/supertuxkart/data/music/Snowy.ogg",
    "/usr/share/games/supertuxkart/data/music/bay.ogg",
    "/usr/share/games/supertuxkart/data/music/celtic.ogg",
    "/usr/share/planetblupi/music/music004.ogg",
    "/usr/share/planetblupi/music/music005.ogg",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */
/* Random numbers: splitmix64, one stream per track and per query set       */
/* ------------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A stream of its own for (seed, stream, index). */
static rng_t rng_stream(uint64_t seed, uint64_t stream, uint64_t index)
{
    rng_t r = {seed ^ (stream * 0xD1B54A32D192ED03ull)};
    r.s = rng_next(&r) ^ (index * 0x8CB92BA72F3D8DD7ull);
    rng_next(&r);
    return r;
}

/* Uniform in [0, n) (Lemire's multiply, the bias is below 2^-32 n). */
static uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------------------ */
/* Discrete distributions: Walker's alias method                            */
/* ------------------------------------------------------------------------ */

typedef struct alias {
    uint32_t n;
    double *prob;
    uint32_t *alias;
    double *p;        /* the normalized weights, for the model's key probabilities */
} alias_t;

/*
 * Build the alias table of the weights w[0 .. n) (not all zero; copied and
 * normalized).  Vose's variant: small and large work lists, so every cell
 * ends with one alias.  Returns 0, or -1 when out of memory or all zero.
 */
static int alias_build(alias_t *a, const double *w, uint32_t n)
{
    memset(a, 0, sizeof *a);
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += w[i];
    if (!(sum > 0)) return -1;
    a->n = n;
    a->prob = malloc(n * sizeof *a->prob);
    a->alias = malloc(n * sizeof *a->alias);
    a->p = malloc(n * sizeof *a->p);
    uint32_t *small = malloc(n * sizeof *small), *large = malloc(n * sizeof *large);
    double *scaled = malloc(n * sizeof *scaled);
    int rc = -1;
    if (!a->prob || !a->alias || !a->p || !small || !large || !scaled) goto done;
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        a->p[i] = w[i] / sum;
        scaled[i] = a->p[i] * n;
        if (scaled[i] < 1.0) small[ns++] = i;
        else large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        a->prob[s] = scaled[s];
        a->alias[s] = l;
        scaled[l] -= 1.0 - scaled[s];
        if (scaled[l] < 1.0) small[ns++] = l;
        else large[nl++] = l;
    }
    while (nl) {
        uint32_t l = large[--nl];
        a->prob[l] = 1.0;
        a->alias[l] = l;
    }
    while (ns) {
        uint32_t s = small[--ns];
        a->prob[s] = 1.0;
        a->alias[s] = s;
    }
    rc = 0;
done:
    free(small);
    free(large);
    free(scaled);
    return rc;
}

static uint32_t alias_draw(const alias_t *a, rng_t *r)
{
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)a->n) >> 32);
    return (double)(uint32_t)x * 0x1.0p-32 < a->prob[i] ? i : a->alias[i];
}

/* Sum of the squared probabilities: the chance two draws agree. */
static double alias_sum_sq(const alias_t *a)
{
    double s = 0;
    for (uint32_t i = 0; i < a->n; i++) s += a->p[i] * a->p[i];
    return s;
}

static void alias_free(alias_t *a)
{
    free(a->prob);
    free(a->alias);
    free(a->p);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------ */
/* Key statistics of a set of prints                                        */
/* ------------------------------------------------------------------------ */

typedef struct key_run {
    uint32_t key;
    uint32_t count;
} key_run_t;

typedef struct key_runs {
    key_run_t *r;
    size_t n;
    size_t prints;
} key_runs_t;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct store keys of p[0 .. n) with their counts, by key. */
static int key_runs_make(const fp_print_t *p, size_t n, key_runs_t *out)
{
    memset(out, 0, sizeof *out);
    uint32_t *k = malloc((n + 1) * sizeof *k);
    out->r = malloc((n + 1) * sizeof *out->r);
    if (!k || !out->r) {
        free(k);
        free(out->r);
        out->r = NULL;
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!store_key(p[i].hash, &k[m])) m++;
    qsort(k, m, sizeof *k, cmp_u32);
    for (size_t i = 0; i < m; i++) {
        if (out->n && out->r[out->n - 1].key == k[i]) out->r[out->n - 1].count++;
        else out->r[out->n++] = (key_run_t){k[i], 1};
    }
    out->prints = m;
    free(k);
    return 0;
}

/* P(two distinct prints of the set have the same key). */
static double key_runs_within(const key_runs_t *a)
{
    double s = 0, n = (double)a->prints;
    for (size_t i = 0; i < a->n; i++) s += (double)a->r[i].count * (a->r[i].count - 1.0);
    return n > 1 ? s / (n * (n - 1)) : 0;
}

/* P(a print of a and a print of b have the same key). */
static double key_runs_cross(const key_runs_t *a, const key_runs_t *b)
{
    double s = 0;
    size_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        if (a->r[i].key < b->r[j].key) i++;
        else if (a->r[i].key > b->r[j].key) j++;
        else s += (double)a->r[i++].count * b->r[j++].count;
    }
    return a->prints && b->prints ? s / ((double)a->prints * (double)b->prints) : 0;
}

/* What the report shows of a set of tracks, real or synthetic. */
typedef struct track_stats {
    size_t tracks;
    double seconds, prints;
    double triplets;       /* share */
    double within;         /* mean over tracks */
    double cross;          /* mean over pairs of tracks */
    double repeat;         /* share of prints whose key came earlier in the track */
} track_stats_t;

/*
 * The statistics of tracks p[i][0 .. n[i]) (seconds[i] long): means over
 * tracks and over pairs of tracks, so that one long file weighs as much
 * as a short one.
 */
static int track_stats_measure(fp_print_t *const *p, const size_t *n, const double *seconds,
                               size_t tracks, track_stats_t *st)
{
    memset(st, 0, sizeof *st);
    key_runs_t *runs = calloc(tracks ? tracks : 1, sizeof *runs);
    if (!runs) return -1;
    int rc = -1;
    double within = 0, cross = 0, trip = 0, rep = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < tracks; i++) {
        if (key_runs_make(p[i], n[i], &runs[i])) goto done;
        st->seconds += seconds[i];
        st->prints += (double)n[i];
        size_t t = 0;
        for (size_t j = 0; j < n[i]; j++) t += (p[i][j].hash & FP_HASH_TRIPLET) != 0;
        trip += n[i] ? (double)t / (double)n[i] : 0;
        within += key_runs_within(&runs[i]);
        rep += n[i] ? (double)(n[i] - runs[i].n) / (double)n[i] : 0;
    }
    for (size_t i = 0; i < tracks; i++)
        for (size_t j = i + 1; j < tracks; j++, pairs++) cross += key_runs_cross(&runs[i], &runs[j]);
    st->tracks = tracks;
    st->triplets = tracks ? trip / (double)tracks : 0;
    st->within = tracks ? within / (double)tracks : 0;
    st->repeat = tracks ? rep / (double)tracks : 0;
    st->cross = pairs ? cross / (double)pairs : 0;
    rc = 0;
done:
    for (size_t i = 0; i < tracks; i++) free(runs[i].r);
    free(runs);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The model: calibration from real prints, and the generator               */
/* ------------------------------------------------------------------------ */

#define F1_N 512
#define DF_N 128
#define DT_N 64
#define FOFF_MAX 16       /* f - 16 * anchor bin, clamped to +-this */
#define DL_N 25           /* semitones -12 .. 12 */

/* The real counts of each field (pairs, then triplets). */
enum { W_F1, W_DFDT, W_RATIO, W_DL, W_LOUDER, W_BAND, W_N };
#define BAND_N 8 /* triplet anchor bands */
static const uint32_t w_len[W_N] = {F1_N, DF_N * DT_N, 16, DL_N * DL_N, 8, BAND_N};

typedef struct model {
    fp_config_t cfg;
    double frame_s;
    /* the real prints */
    size_t nfiles;
    char **paths;
    fp_print_t **files;
    size_t *nprints;
    double *seconds;
    double *rates;           /* prints per second of each file */
    track_stats_t real;
    /* MODEL: the fields' marginals, flattened by the exponent beta */
    double p_pair;
    double *w[W_N];          /* real counts */
    alias_t a[W_N];          /* w^beta */
    alias_t foff;            /* f - 16 * anchor bin of the real pairs */
    uint16_t *trip_f[BAND_N]; /* f of the real triplets of each band */
    size_t ntrip_f[BAND_N];
    /* G and the within-track process */
    double alpha, beta;      /* G = alpha POOL + (1 - alpha) MODEL_beta */
    double theta, discount;  /* Pitman-Yor; theta infinite: no repeats */
    double sum_pool, sum_model, sum_g; /* sums of squared key probabilities */
} model_t;

static void triplet_fields(uint32_t h, int *ratio, int *dl12, int *dl13, int *louder, int *band)
{
    *ratio = (int)(h & 15u);
    *dl12 = (int)((h >> 4) & 31u) - 12;
    *dl13 = (int)((h >> 9) & 31u) - 12;
    *louder = (int)((h >> 14) & 7u);
    *band = (int)((h >> 17) & (BAND_N - 1));
}

/* MODEL's probability of a store key. */
static double model_key_prob(const model_t *m, uint32_t key)
{
    uint32_t h = store_key_hash(key);
    if (!(h & FP_HASH_TRIPLET)) {
        int f1, df, dt;
        fp_hash_unpack(h, &f1, &df, &dt);
        if (f1 < 0 || f1 >= F1_N || df < -64 || df > 63 || dt < 1 || dt > DT_N) return 0;
        return m->p_pair * m->a[W_F1].p[f1] * m->a[W_DFDT].p[(df + 64) * DT_N + dt - 1];
    }
    int ratio, dl12, dl13, louder, band;
    triplet_fields(h, &ratio, &dl12, &dl13, &louder, &band);
    if (dl12 > 12 || dl13 > 12) return 0;
    return (1.0 - m->p_pair) * m->a[W_RATIO].p[ratio] *
           m->a[W_DL].p[(dl12 + 12) * DL_N + dl13 + 12] * m->a[W_LOUDER].p[louder] *
           m->a[W_BAND].p[band];
}

/* The fields' alias tables from the real counts raised to beta, and
 * sum MODEL_k^2 of the result (a product of the fields' sums). */
static int model_set_beta(model_t *m, double beta)
{
    double s[W_N];
    for (int i = 0; i < W_N; i++) {
        double *w = malloc(w_len[i] * sizeof *w);
        if (!w) return -1;
        for (uint32_t j = 0; j < w_len[i]; j++) w[j] = m->w[i][j] > 0 ? pow(m->w[i][j], beta) : 0;
        alias_free(&m->a[i]);
        int rc = alias_build(&m->a[i], w, w_len[i]);
        free(w);
        if (rc) return -1;
        s[i] = alias_sum_sq(&m->a[i]);
    }
    m->beta = beta;
    m->sum_model = m->p_pair * m->p_pair * s[W_F1] * s[W_DFDT] +
                   (1 - m->p_pair) * (1 - m->p_pair) * s[W_RATIO] * s[W_DL] * s[W_LOUDER] *
                       s[W_BAND];
    return 0;
}

/*
 * The marginals of MODEL from all real prints (each file weighted by its
 * share of prints: the marginals are smooth enough that this does not
 * matter, unlike the collision rates).
 */
static int model_fit_marginals(model_t *m)
{
    double w_foff[2 * FOFF_MAX + 1] = {0}, pairs = 0, all = 0;
    for (int i = 0; i < W_N; i++)
        if (!(m->w[i] = calloc(w_len[i], sizeof(double)))) return -1;
    size_t cap = 0;
    for (size_t i = 0; i < m->nfiles; i++) cap += m->nprints[i];
    for (int b = 0; b < BAND_N; b++)
        if (!(m->trip_f[b] = malloc((cap + 1) * sizeof(uint16_t)))) return -1;
    for (size_t i = 0; i < m->nfiles; i++)
        for (size_t j = 0; j < m->nprints[i]; j++) {
            const fp_print_t *p = &m->files[i][j];
            all++;
            if (!(p->hash & FP_HASH_TRIPLET)) {
                int f1, df, dt;
                fp_hash_unpack(p->hash, &f1, &df, &dt);
                if (f1 < 0 || f1 >= F1_N || df < -64 || df > 63 || dt < 1 || dt > DT_N) continue;
                pairs++;
                m->w[W_F1][f1]++;
                m->w[W_DFDT][(df + 64) * DT_N + dt - 1]++;
                int off = (int)p->f - 16 * f1;
                if (off < -FOFF_MAX) off = -FOFF_MAX;
                if (off > FOFF_MAX) off = FOFF_MAX;
                w_foff[off + FOFF_MAX]++;
                continue;
            }
            int ratio, dl12, dl13, louder, band;
            triplet_fields(p->hash, &ratio, &dl12, &dl13, &louder, &band);
            if (dl12 > 12 || dl13 > 12) continue;
            m->w[W_RATIO][ratio]++;
            m->w[W_DL][(dl12 + 12) * DL_N + dl13 + 12]++;
            m->w[W_LOUDER][louder]++;
            m->w[W_BAND][band]++;
            m->trip_f[band][m->ntrip_f[band]++] = p->f;
        }
    m->p_pair = all > 0 ? pairs / all : 1.0;
    /* a band without real triplets is never drawn (its weight is 0): a
     * placeholder frequency keeps its list non-empty */
    for (int b = 0; b < BAND_N; b++)
        if (!m->ntrip_f[b]) {
            m->trip_f[b][0] = 16 * 100;
            m->ntrip_f[b] = 1;
        }
    if (alias_build(&m->foff, w_foff, 2 * FOFF_MAX + 1)) return -1;
    return model_set_beta(m, 1.0);
}

/*
 * Pitman-Yor: the expected number of distinct keys in a track of n prints,
 * E[K_{i+1}] = E[K_i] + (theta + d E[K_i]) / (theta + i) tables, less the
 * pairs of tables whose fresh draws from G agree (K^2/2 sum G_k^2, to
 * first order).
 */
static double py_distinct(double theta, double d, double sum_g, size_t n)
{
    double k = 0;
    for (size_t i = 0; i < n; i++) k += (theta + d * k) / (theta + (double)i);
    return k - k * k / 2 * sum_g;
}

/* The mean over the calibration files of the share of repeated keys that
 * Pitman-Yor (theta, d) gives tracks of their lengths. */
static double py_repeat(const model_t *m, double theta, double d)
{
    double r = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        r += 1 - py_distinct(theta, d, m->sum_g, m->nprints[i]) / (double)m->nprints[i];
    return r / (double)m->nfiles;
}

/*
 * Solve G and the within-track process from the real statistics.
 *
 * G: POOL's key probabilities are the mean over files of each file's key
 * frequencies.  When MODEL (beta = 1) already collides less than real
 * tracks across each other, alpha mixes POOL in: with A = sum POOL_k^2,
 * B = sum POOL_k MODEL_k, C = sum MODEL_k^2, S(alpha) = alpha^2 A +
 * 2 alpha (1 - alpha) B + (1 - alpha)^2 C is convex, from C at 0 to A at 1,
 * and bisection finds where it meets the measured cross-track rate.  When
 * MODEL collides more, alpha is 0 and the marginals are flattened by a
 * common exponent beta < 1 (a product still, and sum MODEL^2 falls
 * steadily as beta does) until it meets the rate.
 *
 * Within a track: in a Pitman-Yor process (concentration theta, discount
 * d) two prints share a "table" (one is a repeat of the other) with
 * probability c = (1 - d) / (1 + theta), so the within-track collision
 * rate is c + (1 - c) sum G^2; d sets how skewed the repeats are (d = 0,
 * a Chinese restaurant, repeats many keys a few times; larger d repeats
 * fewer keys more often).  Given the within rate, theta follows from d;
 * d is bisected so the share of repeated keys at the calibration files'
 * lengths matches theirs.
 *
 * alpha_set / theta_set: from the command line (NAN when not given); a
 * given theta means d = 0, an infinite one no repeats.
 */
static int model_fit_mixture(model_t *m, double alpha_set, double theta_set)
{
    double *pool = calloc(STORE_KEY_SPACE, sizeof *pool);
    if (!pool) return -1;
    for (size_t i = 0; i < m->nfiles; i++) {
        double w = 1.0 / (double)m->nfiles / (double)m->nprints[i];
        for (size_t j = 0; j < m->nprints[i]; j++) {
            uint32_t k;
            if (!store_key(m->files[i][j].hash, &k)) pool[k] += w;
        }
    }
    double target = m->real.cross, a = 0, b = 0, alpha = 0;
    int flattened = isnan(alpha_set) && m->sum_model > target;
    if (flattened) {
        double lo = 0.05, hi = 1;
        for (int it = 0; it < 40; it++) {
            if (model_set_beta(m, (lo + hi) / 2)) goto nomem;
            if (m->sum_model > target) hi = m->beta;
            else lo = m->beta;
        }
        if (model_set_beta(m, (lo + hi) / 2)) goto nomem;
    }
    for (uint32_t k = 0; k < STORE_KEY_SPACE; k++)
        if (pool[k] > 0) {
            a += pool[k] * pool[k];
            b += pool[k] * model_key_prob(m, k);
        }
    double c = m->sum_model;
    m->sum_pool = a;
    if (!isnan(alpha_set)) alpha = alpha_set;
    else if (flattened) alpha = 0;
    else if (target >= a) alpha = 1;
    else if (target > c) {
        double lo = 0, hi = 1;
        for (int it = 0; it < 60; it++) {
            double x = (lo + hi) / 2, s = x * x * a + 2 * x * (1 - x) * b + (1 - x) * (1 - x) * c;
            if (s < target) lo = x;
            else hi = x;
        }
        alpha = (lo + hi) / 2;
    }
    free(pool);
    pool = NULL;
    m->alpha = alpha;
    m->sum_g = alpha * alpha * a + 2 * alpha * (1 - alpha) * b + (1 - alpha) * (1 - alpha) * c;

    double share = (m->real.within - m->sum_g) / (1 - m->sum_g); /* c above */
    m->discount = 0;
    if (!isnan(theta_set)) m->theta = theta_set;
    else if (share <= 0) m->theta = INFINITY;
    else {
        double lo = 0, hi = 0.95;
        m->theta = 1 / share - 1;
        if (py_repeat(m, m->theta, 0) > m->real.repeat) {
            for (int it = 0; it < 30; it++) {
                double d = (lo + hi) / 2;
                if (py_repeat(m, (1 - d) / share - 1, d) > m->real.repeat) lo = d;
                else hi = d;
            }
            m->discount = (lo + hi) / 2;
            m->theta = (1 - m->discount) / share - 1;
        }
    }
    return 0;
nomem:
    free(pool);
    return -1;
}

/* One print drawn from G (t left 0). */
static fp_print_t model_draw(const model_t *m, rng_t *r)
{
    if (m->alpha >= 1.0 || rng_unit(r) < m->alpha) {
        uint32_t f = rng_below(r, (uint32_t)m->nfiles);
        fp_print_t p = m->files[f][rng_below(r, (uint32_t)m->nprints[f])];
        p.t = 0;
        return p;
    }
    if (rng_unit(r) < m->p_pair) {
        int f1 = (int)alias_draw(&m->a[W_F1], r);
        uint32_t c = alias_draw(&m->a[W_DFDT], r);
        int df = (int)(c / DT_N) - 64, dt = (int)(c % DT_N) + 1;
        int f = 16 * f1 + (int)alias_draw(&m->foff, r) - FOFF_MAX;
        return (fp_print_t){fp_hash_pack(f1, df, dt), 0, (uint16_t)(f > 1 ? f : 1),
                            (uint16_t)(16 * dt)};
    }
    int ratio = (int)alias_draw(&m->a[W_RATIO], r);
    uint32_t c = alias_draw(&m->a[W_DL], r);
    int louder = (int)alias_draw(&m->a[W_LOUDER], r), band = (int)alias_draw(&m->a[W_BAND], r);
    uint16_t f = m->trip_f[band][rng_below(r, (uint32_t)m->ntrip_f[band])];
    return (fp_print_t){fp_hash_pack_triplet(ratio, (int)(c / DL_N) - 12, (int)(c % DL_N) - 12,
                                             band, louder),
                        0, f, 16 * 20};
}

/* Scratch space of the generator. */
typedef struct gen {
    uint32_t *frames;       /* prints per frame (the counting sort of t) */
    size_t frames_cap;
    uint32_t *table;        /* the Pitman-Yor table of each print */
    uint32_t *size;         /* prints at each table */
    uint32_t *first;        /* the print that opened each table */
    size_t cap;
} gen_t;

static int gen_reserve(gen_t *g, size_t n, uint32_t frames)
{
    if (frames > g->frames_cap) {
        uint32_t *x = realloc(g->frames, frames * sizeof *x);
        if (!x) return -1;
        g->frames = x;
        g->frames_cap = frames;
    }
    if (n > g->cap) {
        uint32_t *a = realloc(g->table, n * sizeof *a);
        if (a) g->table = a;
        uint32_t *b = realloc(g->size, n * sizeof *b);
        if (b) g->size = b;
        uint32_t *c = realloc(g->first, n * sizeof *c);
        if (c) g->first = c;
        if (!a || !b || !c) return -1;
        g->cap = n;
    }
    return 0;
}

static void gen_free(gen_t *g)
{
    free(g->frames);
    free(g->table);
    free(g->size);
    free(g->first);
}

/*
 * Append np prints of a track `secs` long to *buf (grown; *n used, *cap
 * allocated), drawn with r.  Keys by the Pitman-Yor process over G: print
 * i opens a new table (a fresh draw from G) with probability
 * (theta + d K) / (theta + i), K tables so far, else joins table j with
 * probability (size_j - d) / (i - d K): a uniformly chosen earlier print's
 * table (probability size_j / i), accepted with (size_j - d) / size_j.
 * Then frames uniform over the track, sorted (the keys' order is
 * exchangeable, so giving the sorted frames in generation order is as good
 * as at random).  Returns 0, -1 when out of memory.
 */
static int gen_prints(const model_t *m, gen_t *g, rng_t *r, double secs, size_t np,
                      fp_print_t **buf, size_t *n, size_t *cap)
{
    uint32_t frames = (uint32_t)(secs / m->frame_s);
    if (*n + np > *cap) {
        size_t c = *cap ? *cap : 1u << 20;
        while (c < *n + np) c *= 2;
        fp_print_t *x = realloc(*buf, c * sizeof *x);
        if (!x) return -1;
        *buf = x;
        *cap = c;
    }
    if (gen_reserve(g, np, frames)) return -1;
    fp_print_t *p = *buf + *n;
    double d = m->discount;
    uint32_t tables = 0;
    for (size_t i = 0; i < np; i++) {
        double open = isfinite(m->theta) ? (m->theta + d * tables) / (m->theta + (double)i) : 1;
        if (i == 0 || rng_unit(r) < open) {
            p[i] = model_draw(m, r);
            g->table[i] = tables;
            g->size[tables] = 1;
            g->first[tables++] = (uint32_t)i;
            continue;
        }
        uint32_t j;
        do
            j = g->table[rng_below(r, (uint32_t)i)];
        while (d > 0 && rng_unit(r) * g->size[j] >= g->size[j] - d);
        p[i] = p[g->first[j]];
        g->table[i] = j;
        g->size[j]++;
    }
    memset(g->frames, 0, frames * sizeof *g->frames);
    for (size_t i = 0; i < np; i++) g->frames[rng_below(r, frames)]++;
    size_t i = 0;
    for (uint32_t t = 0; t < frames; t++)
        for (uint32_t k = 0; k < g->frames[t]; k++) p[i++].t = t;
    *n += np;
    return 0;
}

/*
 * Synthetic catalog track `index`: its own random stream of (seed,
 * index), a length uniform in SONG_MIN_S .. SONG_MAX_S, the print rate of
 * a calibration file chosen at random.  *seconds gets the length.
 * Returns the number of prints, or (size_t)-1 when out of memory.
 */
static size_t gen_track(const model_t *m, gen_t *g, uint64_t seed, uint32_t index,
                        fp_print_t **buf, size_t *n, size_t *cap, double *seconds)
{
    rng_t r = rng_stream(seed, 1, index);
    double secs = SONG_MIN_S + (SONG_MAX_S - SONG_MIN_S) * rng_unit(&r);
    /* gen_track_seconds() repeats the line above */
    double rate = m->rates[rng_below(&r, (uint32_t)m->nfiles)];
    size_t np = (size_t)lrint(secs * rate);
    if (gen_prints(m, g, &r, secs, np, buf, n, cap)) return (size_t)-1;
    *seconds = secs;
    return np;
}

/* The length of synthetic track `index`, without its prints. */
static double gen_track_seconds(uint64_t seed, uint32_t index)
{
    rng_t r = rng_stream(seed, 1, index);
    return SONG_MIN_S + (SONG_MAX_S - SONG_MIN_S) * rng_unit(&r);
}

static void model_free(model_t *m)
{
    for (size_t i = 0; i < m->nfiles; i++) free(m->files[i]);
    free(m->files);
    free(m->nprints);
    free(m->seconds);
    free(m->rates);
    free(m->paths);
    for (int i = 0; i < W_N; i++) {
        free(m->w[i]);
        alias_free(&m->a[i]);
    }
    alias_free(&m->foff);
    for (int b = 0; b < BAND_N; b++) free(m->trip_f[b]);
}

/*
 * Fingerprint the calibration files and fit the model.  Errors go to
 * stderr; returns 0 or -1.
 */
static int model_calibrate(model_t *m, char **paths, size_t npaths, double alpha_set,
                           double theta_set)
{
    memset(m, 0, sizeof *m);
    fp_config_default(&m->cfg);
    m->frame_s = fp_config_frame_seconds(&m->cfg);
    m->paths = calloc(npaths, sizeof *m->paths);
    m->files = calloc(npaths, sizeof *m->files);
    m->nprints = calloc(npaths, sizeof *m->nprints);
    m->seconds = calloc(npaths, sizeof *m->seconds);
    m->rates = calloc(npaths, sizeof *m->rates);
    if (!m->paths || !m->files || !m->nprints || !m->seconds || !m->rates) goto nomem;
    for (size_t i = 0; i < npaths; i++) {
        fp_result_t res;
        char err[1024];
        if (fp_extract_path(paths[i], &m->cfg, NULL, &res, err, sizeof err) != FP_OK) {
            fprintf(stderr, "bench_store: %s\n", err);
            return -1;
        }
        if (res.count < 1000 || res.stats.seconds < 2 * CLIP_SECONDS) {
            fprintf(stderr, "bench_store: %s is too short for calibration\n", paths[i]);
            fp_result_clear(&res);
            return -1;
        }
        m->paths[i] = paths[i];
        m->files[i] = res.prints;
        m->nprints[i] = res.count;
        m->seconds[i] = res.stats.seconds;
        m->rates[i] = (double)res.count / res.stats.seconds;
        m->nfiles++;
        res.prints = NULL;
        fp_result_clear(&res);
    }
    if (m->nfiles < 2) {
        fprintf(stderr, "bench_store: calibration needs at least 2 files\n");
        return -1;
    }
    if (track_stats_measure(m->files, m->nprints, m->seconds, m->nfiles, &m->real) ||
        model_fit_marginals(m) || model_fit_mixture(m, alpha_set, theta_set)) {
        fprintf(stderr, "bench_store: cannot fit the generator: out of memory, or the files "
                        "give no pair or no triplet prints\n");
        return -1;
    }
    return 0;
nomem:
    fprintf(stderr, "bench_store: out of memory calibrating the generator\n");
    return -1;
}

/*
 * The same statistics over VALIDATE_TRACKS generated tracks, track v as
 * long as calibration file v % nfiles (with its print count), so that the
 * length-dependent share of repeated keys compares.
 */
static int model_validate(const model_t *m, uint64_t seed, track_stats_t *st)
{
    fp_print_t *p[VALIDATE_TRACKS] = {0};
    size_t n[VALIDATE_TRACKS] = {0}, cap[VALIDATE_TRACKS] = {0};
    double secs[VALIDATE_TRACKS];
    gen_t g = {0};
    int rc = -1;
    for (uint32_t v = 0; v < VALIDATE_TRACKS; v++) {
        rng_t r = rng_stream(seed, 4, v);
        size_t f = v % m->nfiles;
        secs[v] = m->seconds[f];
        if (gen_prints(m, &g, &r, secs[v], m->nprints[f], &p[v], &n[v], &cap[v])) goto done;
    }
    rc = track_stats_measure(p, n, secs, VALIDATE_TRACKS, st);
done:
    for (int i = 0; i < VALIDATE_TRACKS; i++) free(p[i]);
    gen_free(&g);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The benchmark's state and figures                                        */
/* ------------------------------------------------------------------------ */

typedef struct lookup_figs {
    size_t queries;
    int64_t segments;
    double fetch_p50, fetch_p99, total_p50, total_p99; /* ms */
    double hits;          /* mean postings fetched per clip */
    double skipped;       /* mean share of a clip's distinct keys skipped as too common */
    double clip_prints;   /* mean prints per clip */
    double recall;        /* share of clips whose best match is right */
} lookup_figs_t;

typedef struct step {
    size_t tracks;
    int64_t prints;            /* in the store (store_stats) */
    double audio_s;
    /* loading this step's tracks */
    int64_t step_prints;
    int batches;
    double batch_s, merge_s;   /* in batches (begin .. commit), in tiered merges */
    double batch_min_rate;     /* the slowest batch, prints/s */
    int merges;
    double compact_s;
    int64_t bytes;             /* segments, after compaction */
    int64_t db_bytes, tracks_bytes;
    lookup_figs_t before, after; /* before and after compaction */
} step_t;

typedef struct bench {
    /* options */
    size_t steps[MAX_STEPS];
    size_t nsteps;
    size_t queries;
    size_t max_postings;    /* match_opts_t.max_postings (0: the matcher's default) */
    long max_hits;          /* match_opts_t.max_hits (-1: the matcher's default) */
    long first_hits;        /* match_opts_t.first_hits (-1: the matcher's default) */
    int unknown;            /* clips of tracks not in the catalog */
    size_t cache_mb;        /* row cache of the lookups, MB (0: none) */
    int threads;            /* threads of one lookup (store_set_threads) */
    int fanin;              /* tiered merges' fanin (-1: the default; 0: none) */
    size_t batch_prints;
    uint64_t seed;
    int keep;
    int reuse;              /* measure lookups on the store a --keep run left */
    const char *var_arg;
    const char *conninfo_arg;
    const char *out;
    char var[1024];
    char conninfo[2048];
    /* state */
    model_t model;
    track_stats_t synth;
    db_conn_t *conn;
    store_t *store;
    int64_t tenant;
    int64_t *ids;           /* catalog id of synthetic track i */
    double *track_s;
    size_t ntracks;
    gen_t gen;
    char wal_level[32], shared_buffers[32], server_version[64];
    step_t step[MAX_STEPS];
    double gen_s;           /* generating prints (not in the rates) */
    double wall0;
} bench_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank quantile q of v[0 .. n) (sorted in place). */
static double quantile(double *v, size_t n, double q)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(q * (double)n);
    return v[i ? i - 1 : 0];
}

/* ------------------------------------------------------------------------ */
/* The database                                                             */
/* ------------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) ? -1 : 0;
}

/* Remove VAR/pg/data (the cluster must be stopped). */
static void cluster_remove_data(const char *var)
{
    char data[1200];
    struct stat st;
    if (snprintf(data, sizeof data, "%s/pg/data", var) >= (int)sizeof data || stat(data, &st))
        return;
    if (nftw(data, remove_entry, 32, FTW_DEPTH | FTW_PHYS))
        fprintf(stderr, "bench_store: cannot remove %s: %s\n", data, strerror(errno));
}

/*
 * A child that waits for this process to end, however it ends (the pipe
 * reaches end of file, kill -9 included), then stops the cluster and,
 * unless keep, removes its data.  It ignores the terminal's signals, which
 * reach the whole process group.
 */
static void cluster_guard(const char *var, int keep)
{
    int fd[2];
    if (pipe2(fd, O_CLOEXEC)) return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        char c;
        close(fd[1]);
        while (read(fd[0], &c, 1) < 0 && errno == EINTR) {
        }
        if (!keep) {
            db_cluster_stop(var, NULL, 0);
            cluster_remove_data(var);
        }
        _exit(0);
    }
    close(fd[0]);
}

/*
 * The private cluster of --var: a folder marked as the benchmark's (so
 * that its store may be emptied and its data removed), started.
 */
static int cluster_prepare(bench_t *b)
{
    char err[2048], marker[1200], data[1200];
    if (b->var_arg[0] == '/') snprintf(b->var, sizeof b->var, "%s", b->var_arg);
    else {
        char cwd[900];
        if (!getcwd(cwd, sizeof cwd)) return -1;
        snprintf(b->var, sizeof b->var, "%s/%s", cwd, b->var_arg);
    }
    snprintf(marker, sizeof marker, "%s/bench-store.marker", b->var);
    snprintf(data, sizeof data, "%s/pg/data", b->var);
    struct stat st;
    if (!stat(data, &st) && stat(marker, &st)) {
        fprintf(stderr,
                "bench_store: %s holds a cluster that is not the benchmark's\n"
                "hint: give --var a folder of its own (default ./var/bench-store)\n",
                b->var);
        return -1;
    }
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", b->var);
    if (system(cmd) != 0) return -1;
    FILE *f = fopen(marker, "w");
    if (!f) {
        fprintf(stderr, "bench_store: cannot write %s: %s\n", marker, strerror(errno));
        return -1;
    }
    fputs("a private cluster of bench/bench_store.c: emptied at every run\n", f);
    fclose(f);
    if (db_cluster_conninfo(b->var, b->conninfo, sizeof b->conninfo) != DB_OK) return -1;
    cluster_guard(b->var, b->keep);
    fprintf(stderr, "starting the cluster in %s/pg ...\n", b->var);
    if (db_cluster_start(b->var, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        return -1;
    }
    return 0;
}

/* One value of a one-row query, as text, into buf. */
static int db_value(db_conn_t *conn, const char *sql, char *buf, size_t len)
{
    PGresult *res;
    char err[1024];
    if (db_query(conn, sql, 0, NULL, 0, &res, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        return -1;
    }
    snprintf(buf, len, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

/*
 * Connect, empty the store (the private cluster) or check that it is
 * empty (--conninfo), migrate, open the store and the tenant.
 */
static int db_prepare(bench_t *b)
{
    char err[2048], v[64];
    if (db_connect(b->conninfo, &b->conn, err, sizeof err) != DB_OK) goto fail;
    if (b->reuse) {
    } else if (!b->conninfo_arg) {
        if (db_exec(b->conn, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", err, sizeof err) !=
            DB_OK)
            goto fail;
    } else {
        if (db_value(b->conn, "SELECT to_regclass('print_segments') IS NOT NULL", v, sizeof v))
            return -1;
        if (!strcmp(v, "t")) {
            if (db_value(b->conn,
                         "SELECT (SELECT count(*) FROM print_segments) + "
                         "(SELECT count(*) FROM tracks)",
                         v, sizeof v))
                return -1;
            if (strcmp(v, "0")) {
                fprintf(stderr, "bench_store: the database of --conninfo holds a store (%s "
                                "segments and tracks)\nhint: the benchmark needs an empty one\n",
                        v);
                return -1;
            }
        }
    }
    if (db_migrate(b->conn, NULL, NULL, err, sizeof err) != DB_OK) goto fail;
    if (store_open(b->conn, &b->store, err, sizeof err) != DB_OK) goto fail;
    if (catalog_tenant_ensure(b->conn, "bench-store", &b->tenant, err, sizeof err) != DB_OK)
        goto fail;
    if (db_value(b->conn, "SHOW wal_level", b->wal_level, sizeof b->wal_level) ||
        db_value(b->conn, "SHOW shared_buffers", b->shared_buffers, sizeof b->shared_buffers) ||
        db_value(b->conn, "SHOW server_version", b->server_version, sizeof b->server_version))
        return -1;
    return 0;
fail:
    fprintf(stderr, "bench_store: %s\n", err);
    return -1;
}

/* Remove the benchmark's segments and tracks from a server of --conninfo. */
static void db_clear(bench_t *b)
{
    char err[1024];
    PGresult *res;
    if (db_query(b->conn, "SELECT id FROM print_segments", 0, NULL, 0, &res, err, sizeof err) !=
        DB_OK)
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS postings_%s", PQgetvalue(res, i, 0));
        db_exec(b->conn, sql, err, sizeof err);
    }
    PQclear(res);
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM print_segments; DELETE FROM track_copies WHERE track_a IN (SELECT id "
             "FROM tracks WHERE tenant_id = %lld) OR track_b IN (SELECT id FROM tracks WHERE "
             "tenant_id = %lld); DELETE FROM tracks WHERE tenant_id = %lld; "
             "DELETE FROM tenants WHERE id = %lld",
             (long long)b->tenant, (long long)b->tenant, (long long)b->tenant,
             (long long)b->tenant);
    if (db_exec(b->conn, sql, err, sizeof err) != DB_OK)
        fprintf(stderr, "bench_store: cleaning up: %s\n", err);
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */
/* ------------------------------------------------------------------------ */

/* The catalog row of synthetic track i, inside the batch's transaction. */
static int load_catalog_row(bench_t *b, size_t i, double secs, size_t prints, int64_t *id)
{
    char title[64], source[64], err[1024];
    snprintf(title, sizeof title, "synthetic %zu", i);
    snprintf(source, sizeof source, "bench-store:%llu/%zu", (unsigned long long)b->seed, i);
    catalog_track_t t = {0};
    t.tenant_id = b->tenant;
    t.title = title;
    t.source = source;
    t.duration_s = secs;
    t.params_version = FP_PARAMS_VERSION;
    t.config_id = fp_config_id(&b->model.cfg);
    t.prints = (int64_t)prints;
    /* a fake SHA-256: the index, then noise */
    rng_t r = rng_stream(b->seed, 3, i);
    for (int k = 0; k < 32; k++) t.sha256[k] = (uint8_t)rng_next(&r);
    for (int k = 0; k < 8; k++) t.sha256[k] = (uint8_t)((uint64_t)i >> (8 * (7 - k)));
    int existed = 0;
    if (catalog_track_insert(b->conn, &t, id, &existed, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        return -1;
    }
    if (existed || *id <= 0 || *id > (int64_t)UINT32_MAX) {
        fprintf(stderr, "bench_store: track %zu: unexpected catalog id %lld%s\n", i,
                (long long)*id, existed ? " (a duplicate SHA-256)" : "");
        return -1;
    }
    return 0;
}

/*
 * Load synthetic tracks until there are `target`: batches of about
 * batch_prints prints (whole tracks), each followed by the tiered merges.
 * The step's figures accumulate in *st.
 */
static int load_tracks(bench_t *b, size_t target, step_t *st)
{
    fp_print_t *buf = NULL;
    size_t cap = 0, *off = NULL, off_cap = 0;
    char err[2048];
    int rc = -1;
    store_batch_t *batch = NULL;
    st->batch_min_rate = INFINITY;
    double last_report = now_s();
    while (b->ntracks < target) {
        /* generate (not timed) */
        double g0 = now_s();
        size_t n = 0, nt = 0;
        while (b->ntracks + nt < target && n < b->batch_prints) {
            if (nt + 2 > off_cap) {
                off_cap = off_cap ? 2 * off_cap : 256;
                size_t *x = realloc(off, off_cap * sizeof *x);
                if (!x) goto nomem;
                off = x;
            }
            off[nt] = n;
            double secs;
            if (gen_track(&b->model, &b->gen, b->seed, (uint32_t)(b->ntracks + nt), &buf, &n, &cap,
                          &secs) == (size_t)-1)
                goto nomem;
            b->track_s[b->ntracks + nt] = secs;
            nt++;
        }
        off[nt] = n;
        b->gen_s += now_s() - g0;

        /* the batch: catalog rows and prints, one transaction */
        double t0 = now_s();
        if (store_batch_begin(b->store, b->conn, &batch, err, sizeof err) != DB_OK) goto fail;
        for (size_t i = 0; i < nt; i++) {
            size_t k = b->ntracks + i;
            if (load_catalog_row(b, k, b->track_s[k], off[i + 1] - off[i], &b->ids[k])) goto done;
            if (store_batch_add(batch, (uint32_t)b->ids[k], buf + off[i], off[i + 1] - off[i], err,
                                sizeof err) != DB_OK)
                goto fail;
        }
        db_err_t drc = store_batch_commit(batch, NULL, err, sizeof err);
        batch = NULL;
        if (drc != DB_OK) goto fail;
        double t1 = now_s();
        store_merge_opts_t mo;
        store_merge_opts_default(&mo);
        if (b->fanin > 0) mo.fanin = b->fanin;
        int merges = 0;
        if (b->fanin != 0 && store_merge(b->store, b->conn, &mo, &merges, err, sizeof err) != DB_OK)
            goto fail;
        double t2 = now_s();

        b->ntracks += nt;
        st->step_prints += (int64_t)n;
        st->batches++;
        st->batch_s += t1 - t0;
        st->merge_s += t2 - t1;
        st->merges += merges;
        if ((double)n / (t1 - t0) < st->batch_min_rate) st->batch_min_rate = (double)n / (t1 - t0);
        if (t2 - last_report > 20 || b->ntracks == target) {
            fprintf(stderr,
                    "  %zu tracks, %.1fM prints this step: %.2fM prints/s in batches, "
                    "%.2fM/s with %d merges (%.0f s)\n",
                    b->ntracks, (double)st->step_prints / 1e6,
                    (double)st->step_prints / st->batch_s / 1e6,
                    (double)st->step_prints / (st->batch_s + st->merge_s) / 1e6, st->merges,
                    now_s() - b->wall0);
            last_report = t2;
        }
    }
    rc = 0;
    goto done;
nomem:
    fprintf(stderr, "bench_store: out of memory generating prints\n");
    goto done;
fail:
    fprintf(stderr, "bench_store: %s\n", err);
done:
    store_batch_abort(batch);
    free(buf);
    free(off);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct clip {
    fp_print_t *p;
    size_t n;
    size_t track;       /* synthetic index */
    uint32_t t0;        /* the clip's first frame in the track */
} clip_t;

/*
 * `count` clips of CLIP_SECONDS from random catalog tracks (one stream per
 * step, so both passes of a step use the same clips): the prints of the
 * window shifted to frame 0, CLIP_NOISE of them replaced by draws from G.
 */
static int clips_make(bench_t *b, size_t step, size_t count, clip_t *clips)
{
    rng_t r = rng_stream(b->seed, 2, step);
    fp_print_t *buf = NULL;
    size_t cap = 0;
    uint32_t len = (uint32_t)(CLIP_SECONDS / b->model.frame_s);
    for (size_t q = 0; q < count; q++) {
        size_t k = rng_below(&r, (uint32_t)b->ntracks), n = 0;
        if (b->unknown) k += b->ntracks; /* generated, never loaded */
        double secs;
        if (gen_track(&b->model, &b->gen, b->seed, (uint32_t)k, &buf, &n, &cap, &secs) ==
            (size_t)-1)
            goto nomem;
        uint32_t frames = (uint32_t)(secs / b->model.frame_s);
        uint32_t t0 = rng_below(&r, frames - len);
        clip_t *c = &clips[q];
        c->track = k;
        c->t0 = t0;
        c->p = malloc((n + 1) * sizeof *c->p);
        if (!c->p) goto nomem;
        c->n = 0;
        for (size_t i = 0; i < n; i++) {
            if (buf[i].t < t0 || buf[i].t >= t0 + len) continue;
            fp_print_t p = buf[i];
            if (rng_unit(&r) < CLIP_NOISE) p = model_draw(&b->model, &r);
            p.t = buf[i].t - t0;
            c->p[c->n++] = p;
        }
        fp_print_t *x = realloc(c->p, (c->n + 1) * sizeof *x);
        if (x) c->p = x;
    }
    free(buf);
    return 0;
nomem:
    free(buf);
    fprintf(stderr, "bench_store: out of memory making clips\n");
    return -1;
}

/*
 * A lookup pass: a warm-up over every clip, then per clip the fetch
 * (store_hits) and the whole query (match_query), timed.
 */
static int lookup_measure(bench_t *b, const clip_t *clips, size_t count, lookup_figs_t *lf)
{
    char err[2048];
    match_store_t *ms = NULL;
    store_cache_t *cache = NULL;
    fp_hit_t *hits = NULL;
    double *fetch = calloc(count + 1, sizeof *fetch), *total = calloc(count + 1, sizeof *total);
    int rc = -1;
    memset(lf, 0, sizeof *lf);
    if (!fetch || !total) goto done;
    if (b->cache_mb && store_cache_new(b->cache_mb << 20, &cache) != DB_OK) goto done;
    store_set_cache(b->store, cache);
    store_set_threads(b->store, b->threads, 0);
    if (store_match_new(b->store, b->conn, 0, &ms) != DB_OK) goto done;
    match_opts_t mo;
    match_opts_default(&mo);
    if (b->max_postings) mo.max_postings = b->max_postings;
    if (b->max_hits >= 0) mo.max_hits = (size_t)b->max_hits;
    if (b->first_hits >= 0) mo.first_hits = (size_t)b->first_hits;
    fp_score_opts_t so; /* the fetch is sieved as match_query sieves it */
    match_score_opts(&mo, &so);
    /* warm-up: the fetch of every clip (the cache to warm is the
     * database's), and a few whole queries */
    for (size_t q = 0; q < count; q++) {
        size_t n = 0, hcap = 0, sk = 0;
        db_err_t drc = store_hits(b->store, b->conn, 0, clips[q].p, clips[q].n, mo.max_postings,
                                  mo.max_hits, &so, NULL, &hits, &n, &hcap, NULL, &sk, err, sizeof err);
        free(hits);
        hits = NULL;
        if (drc != DB_OK) {
            fprintf(stderr, "bench_store: store_hits: %s\n", err);
            goto done;
        }
        match_result_t *res = NULL;
        size_t nres = 0;
        if (q < 5 && match_query(ms, clips[q].p, clips[q].n, &mo, &res, &nres, NULL, err,
                                 sizeof err) != FP_OK) {
            fprintf(stderr, "bench_store: match_query: %s\n", err);
            goto done;
        }
        match_results_free(res, nres);
    }
    size_t recalled = 0, narrowed = 0;
    double nhits = 0, skipped = 0, prints = 0;
    for (size_t q = 0; q < count; q++) {
        const clip_t *c = &clips[q];
        size_t n = 0, hcap = 0, sk = 0;
        double t0 = now_s();
        size_t fetched = 0;
        db_err_t drc = store_hits(b->store, b->conn, 0, c->p, c->n, mo.max_postings, mo.max_hits,
                                  &so, NULL, &hits, &n, &hcap, &fetched, &sk, err, sizeof err);
        fetch[q] = (now_s() - t0) * 1e3;
        free(hits);
        hits = NULL;
        if (drc != DB_OK) {
            fprintf(stderr, "bench_store: store_hits: %s\n", err);
            goto done;
        }
        key_runs_t kr;
        if (key_runs_make(c->p, c->n, &kr)) goto done;
        skipped += kr.n ? (double)sk / (double)kr.n : 0;
        free(kr.r);
        nhits += (double)fetched;
        prints += (double)c->n;

        match_result_t *res = NULL;
        size_t nres = 0;
        t0 = now_s();
        match_stats_t mst = {0};
        fp_err_t frc = match_query(ms, c->p, c->n, &mo, &res, &nres, &mst, err, sizeof err);
        total[q] = (now_s() - t0) * 1e3;
        if (frc != FP_OK) {
            fprintf(stderr, "bench_store: match_query: %s\n", err);
            goto done;
        }
        narrowed += (size_t)mst.narrowed;
        double want = c->t0 * b->model.frame_s;
        if (b->unknown) recalled += nres == 0;
        else if (nres && res[0].track == (uint32_t)b->ids[c->track] &&
                 fabs(res[0].ref_start - res[0].query_start - want) <= OFFSET_TOLERANCE_S)
            recalled++;
        match_results_free(res, nres);
    }
    printf("  %s clips: %zu of %zu lookups narrowed (first part %zu hits)\n",
           b->unknown ? "unknown" : "catalog", narrowed, count, mo.first_hits);
    lf->queries = count;
    lf->fetch_p50 = quantile(fetch, count, 0.50);
    lf->fetch_p99 = quantile(fetch, count, 0.99);
    lf->total_p50 = quantile(total, count, 0.50);
    lf->total_p99 = quantile(total, count, 0.99);
    lf->hits = nhits / (double)count;
    lf->skipped = skipped / (double)count;
    lf->clip_prints = prints / (double)count;
    lf->recall = (double)recalled / (double)count;
    store_stats_t ss;
    if (store_stats(b->conn, &ss, err, sizeof err) == DB_OK) lf->segments = ss.segments;
    if (cache) {
        store_cache_stats_t cs;
        store_cache_stats(cache, &cs);
        printf("  row cache of %zu MB: %.1f%% of row lookups hit, %.0f MB held\n", b->cache_mb,
               cs.hits + cs.misses ? 100.0 * (double)cs.hits / (double)(cs.hits + cs.misses) : 0.0,
               (double)cs.bytes / 1048576.0);
    }
    rc = 0;
done:
    store_set_cache(b->store, NULL);
    store_set_threads(b->store, 1, 0);
    store_cache_free(cache);
    match_store_free(ms);
    free(fetch);
    free(total);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* A step: load, look up, compact, measure, look up                         */
/* ------------------------------------------------------------------------ */

/*
 * Step k: load up to its size, a lookup pass on the store as the tiered
 * merges left it, the compaction, the sizes, the lookup pass again.  The
 * figures go to b->step[k]; returns 0 or -1 (the error on stderr).
 */
static int run_step(bench_t *b, size_t k)
{
    step_t *st = &b->step[k];
    char err[2048], v[64];
    int rc = -1;
    clip_t *clips = calloc(b->queries, sizeof *clips);
    if (!clips) return -1;
    fprintf(stderr, "step %zu: loading up to %zu tracks\n", k + 1, b->steps[k]);
    if (load_tracks(b, b->steps[k], st)) goto done;
    st->tracks = b->ntracks;
    for (size_t i = 0; i < b->ntracks; i++) st->audio_s += b->track_s[i];
    if (clips_make(b, k, b->queries, clips)) goto done;

    /* with no tiered merges every batch is a segment: not a store to look
     * up in, only to compact */
    if (b->fanin != 0) {
        fprintf(stderr, "  lookups before compaction ...\n");
        if (lookup_measure(b, clips, b->queries < BEFORE_QUERIES ? b->queries : BEFORE_QUERIES,
                           &st->before))
            goto done;
    }

    fprintf(stderr, "  compaction ...\n");
    store_merge_opts_t mo;
    store_merge_opts_default(&mo);
    mo.all = 1;
    double t0 = now_s();
    if (store_merge(b->store, b->conn, &mo, NULL, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: compaction: %s\n", err);
        goto done;
    }
    st->compact_s = now_s() - t0;

    store_stats_t ss;
    if (store_stats(b->conn, &ss, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        goto done;
    }
    st->prints = ss.prints;
    st->bytes = ss.bytes;
    if (db_value(b->conn, "SELECT pg_database_size(current_database())", v, sizeof v)) goto done;
    st->db_bytes = strtoll(v, NULL, 10);
    if (db_value(b->conn, "SELECT pg_total_relation_size('tracks')", v, sizeof v)) goto done;
    st->tracks_bytes = strtoll(v, NULL, 10);

    fprintf(stderr, "  lookups after compaction ...\n");
    if (lookup_measure(b, clips, b->queries, &st->after)) goto done;
    fprintf(stderr,
            "  %zu tracks: %.1f B/print, lookup p50 %.1f ms, p99 %.1f ms, recall %.1f%% "
            "(%.0f s)\n",
            st->tracks, (double)st->bytes / (double)st->prints, st->after.total_p50,
            st->after.total_p99, 100 * st->after.recall, now_s() - b->wall0);
    rc = 0;
done:
    for (size_t q = 0; q < b->queries; q++) free(clips[q].p);
    free(clips);
    return rc;
}

/*
 * --reuse: the catalog ids of the synthetic tracks a kept run loaded (its
 * sources say seed and index; every index from 0 must be there).
 */
static int reuse_load_ids(bench_t *b)
{
    char err[1024], tenant[32];
    snprintf(tenant, sizeof tenant, "%lld", (long long)b->tenant);
    const char *params[1] = {tenant};
    PGresult *res;
    if (db_query(b->conn, "SELECT id, source FROM tracks WHERE tenant_id = $1 AND status = 'indexed'",
                 1, params, 0, &res, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        return -1;
    }
    size_t n = (size_t)PQntuples(res);
    int rc = -1;
    b->ids = calloc(n + 1, sizeof *b->ids);
    b->track_s = calloc(n + 1, sizeof *b->track_s);
    if (!b->ids || !b->track_s) goto done;
    for (size_t i = 0; i < n; i++) {
        unsigned long long seed;
        size_t k;
        if (sscanf(PQgetvalue(res, (int)i, 1), "bench-store:%llu/%zu", &seed, &k) != 2 ||
            seed != b->seed || k >= n || b->ids[k]) {
            fprintf(stderr, "bench_store: the kept store is not one run of seed %llu "
                            "(track source %s)\n",
                    (unsigned long long)b->seed, PQgetvalue(res, (int)i, 1));
            goto done;
        }
        b->ids[k] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        b->track_s[k] = gen_track_seconds(b->seed, (uint32_t)k);
    }
    b->ntracks = n;
    rc = n ? 0 : -1;
    if (!n) fprintf(stderr, "bench_store: --reuse: the store has no benchmark tracks\n");
done:
    PQclear(res);
    return rc;
}

/* --reuse: sizes and one lookup pass over the store as it is. */
static int reuse_measure(bench_t *b)
{
    step_t *st = &b->step[0];
    char err[1024], v[64];
    int rc = -1;
    clip_t *clips = calloc(b->queries, sizeof *clips);
    if (!clips) return -1;
    b->nsteps = 1;
    st->tracks = b->ntracks;
    for (size_t i = 0; i < b->ntracks; i++) st->audio_s += b->track_s[i];
    store_stats_t ss;
    if (store_stats(b->conn, &ss, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_store: %s\n", err);
        goto done;
    }
    st->prints = ss.prints;
    st->bytes = ss.bytes;
    if (db_value(b->conn, "SELECT pg_database_size(current_database())", v, sizeof v)) goto done;
    st->db_bytes = strtoll(v, NULL, 10);
    if (db_value(b->conn, "SELECT pg_total_relation_size('tracks')", v, sizeof v)) goto done;
    st->tracks_bytes = strtoll(v, NULL, 10);
    if (clips_make(b, 0, b->queries, clips)) goto done;
    fprintf(stderr, "lookups on the kept store (%zu tracks, %lld segments) ...\n", b->ntracks,
            (long long)ss.segments);
    if (lookup_measure(b, clips, b->queries, &st->after)) goto done;
    st->before = st->after;
    rc = 0;
done:
    for (size_t q = 0; q < b->queries; q++) free(clips[q].p);
    free(clips);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The report                                                               */
/* ------------------------------------------------------------------------ */

/* A size in kB, MB or GB, as a person reads it. */
static void mb(char *buf, size_t len, int64_t bytes)
{
    if (bytes >= (int64_t)10 << 30) snprintf(buf, len, "%.1f GB", (double)bytes / (1 << 30));
    else if (bytes >= (int64_t)10 << 20) snprintf(buf, len, "%.0f MB", (double)bytes / (1 << 20));
    else snprintf(buf, len, "%.0f kB", (double)bytes / (1 << 10));
}

/* Everything, to f: Markdown when md, else plain columns. */
static void report(const bench_t *b, FILE *f, int md, const char *cmdline, double wall)
{
    const model_t *m = &b->model;
    const char *li = md ? "- " : "";
    int64_t all_prints = 0;
    double all_batch = 0, all_merge = 0, min_rate = INFINITY;
    for (size_t k = 0; k < b->nsteps; k++) {
        all_prints += b->step[k].step_prints;
        all_batch += b->step[k].batch_s;
        all_merge += b->step[k].merge_s;
        if (b->step[k].batches && b->step[k].batch_min_rate < min_rate)
            min_rate = b->step[k].batch_min_rate;
    }
    if (md) fprintf(f, "### The store at catalog scale (`make bench-store`)\n\n");
    fprintf(f, "%s`%s`\n%sPostgreSQL %s; wal_level %s, shared_buffers %s; wall time %.0f s, of "
               "which %.0f s generating prints (not in the rates)\n\n",
            md ? "- " : "\n", cmdline, li, b->server_version, b->wal_level, b->shared_buffers,
            wall, b->gen_s);
    if (md)
        fprintf(f, "| tracks | prints | audio | load (prints/s) | with tiered merges | "
                   "compaction | B/print (segments) | database | fetch p50 / p99 | "
                   "total p50 / p99 | hits/clip | keys skipped | recall |\n"
                   "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    else
        fprintf(f, "%7s %8s %7s %8s %8s %8s %6s %9s %15s %15s %8s %5s %7s\n", "tracks", "prints",
                "audio h", "load M/s", "+merges", "compact", "B/prt", "db size",
                "fetch p50/p99ms", "total p50/p99ms", "hits", "skip", "recall");
    for (size_t k = 0; k < b->nsteps; k++) {
        const step_t *st = &b->step[k];
        if (!st->tracks || !st->after.queries) continue;
        char db[32], load[32], loadm[32], comp[32];
        mb(db, sizeof db, st->db_bytes);
        snprintf(load, sizeof load, "-");
        snprintf(loadm, sizeof loadm, "-");
        snprintf(comp, sizeof comp, "-");
        if (st->batches) {
            snprintf(load, sizeof load, "%.2fM", (double)st->step_prints / st->batch_s / 1e6);
            snprintf(loadm, sizeof loadm, "%.2fM",
                     (double)st->step_prints / (st->batch_s + st->merge_s) / 1e6);
            snprintf(comp, sizeof comp, "%.0f s", st->compact_s);
        }
        const lookup_figs_t *a = &st->after;
        fprintf(f,
                md ? "| %zu | %.1fM | %.0f h | %s | %s | %s | %.2f | %s | %.1f / %.1f ms | "
                     "%.1f / %.1f ms | %.0fk | %.1f%% | %.1f%% |\n"
                   : "%7zu %7.1fM %7.0f %8s %8s %8s %6.2f %9s %7.1f/%-7.1f %7.1f/%-7.1f %7.0fk "
                     "%4.1f%% %6.1f%%\n",
                st->tracks, (double)st->prints / 1e6, st->audio_s / 3600, load, loadm, comp,
                (double)st->bytes / (double)st->prints, db, a->fetch_p50, a->fetch_p99,
                a->total_p50, a->total_p99, a->hits / 1e3, 100 * a->skipped, 100 * a->recall);
    }
    fprintf(f, "\n");
    if (md)
        fprintf(f, "Load figures are for the tracks added in each step; lookups (%zu clips of "
                   "10 s, 30%% of their prints replaced by noise, after a warm-up pass) are "
                   "on the compacted store, one segment.\n\n",
                b->queries);
    if (all_batch > 0)
        fprintf(f, "%swhole run: %.1fM prints, %.2fM prints/s in batches (slowest batch "
                   "%.2fM/s), %.2fM prints/s with the tiered merges after each batch\n",
                li, (double)all_prints / 1e6, (double)all_prints / all_batch / 1e6, min_rate / 1e6,
                (double)all_prints / (all_batch + all_merge) / 1e6);
    for (size_t k = 0; k < b->nsteps; k++) {
        const step_t *st = &b->step[k];
        if (!st->tracks || !st->after.queries) continue;
        char tb[32];
        mb(tb, sizeof tb, st->tracks_bytes);
        if (st->batches && !st->before.queries)
            fprintf(f, "%s%zu tracks: %d batches, no tiered merges (--fanin 0; %.0f s in batches)\n",
                    li, st->tracks, st->batches, st->batch_s);
        else if (st->batches)
            fprintf(f,
                    "%s%zu tracks: %d batches and %d tiered merges (%.0f s in batches, %.0f s "
                    "merging); before compaction (%lld segments, %zu clips) fetch p50/p99 "
                    "%.1f/%.1f ms, total %.1f/%.1f ms, recall %.1f%%\n",
                    li, st->tracks, st->batches, st->merges, st->batch_s, st->merge_s,
                    (long long)st->before.segments, st->before.queries, st->before.fetch_p50,
                    st->before.fetch_p99, st->before.total_p50, st->before.total_p99,
                    100 * st->before.recall);
        fprintf(f,
                "%s%zu tracks: segments %.2f GB (%lld prints), tracks table %s, whole database "
                "%.2f GB; %.0f prints a clip\n",
                li, st->tracks, (double)st->bytes / (1 << 30), (long long)st->prints, tb,
                (double)st->db_bytes / (1 << 30), st->after.clip_prints);
    }

    /* the generator */
    const track_stats_t *two[2] = {&m->real, &b->synth};
    const char *names[2] = {"real", "synthetic"};
    if (md)
        fprintf(f, "\nThe generator: real = the %zu calibration files; synthetic = %d generated "
                   "tracks of the same lengths.  Collision = the chance that two prints have "
                   "the same store key (means over tracks and over pairs of tracks).\n\n"
                   "| | prints/s | triplets | within-track collision | cross-track collision | "
                   "repeated keys in a track |\n|---|---:|---:|---:|---:|---:|\n",
                m->real.tracks, VALIDATE_TRACKS);
    else
        fprintf(f, "\ngenerator      prints/s  triplets  within-track  cross-track  repeated\n");
    for (int i = 0; i < 2; i++)
        fprintf(f,
                md ? "| %s | %.1f | %.1f%% | 1/%.0f | 1/%.0f | %.0f%% |\n"
                   : "%-14s %8.1f %8.1f%%  1/%-10.0f  1/%-9.0f %7.0f%%\n",
                names[i], two[i]->prints / two[i]->seconds, 100 * two[i]->triplets,
                1 / two[i]->within, 1 / two[i]->cross, 100 * two[i]->repeat);
    fprintf(f,
            "%s%skeys: G = %.3f POOL + %.3f MODEL^%.3f (sum p^2: pool 1/%.0f, model 1/%.0f, "
            "G 1/%.0f); within tracks Pitman-Yor theta %.0f, discount %.3f; songs uniform "
            "%.0f..%.0f s; seed %llu\n",
            md ? "\n" : "", li, m->alpha, 1 - m->alpha, m->beta, 1 / m->sum_pool,
            1 / m->sum_model, 1 / m->sum_g, m->theta, m->discount, SONG_MIN_S, SONG_MAX_S,
            (unsigned long long)b->seed);

    /* the bars */
    const step_t *s10k = NULL, *s100k = NULL;
    for (size_t k = 0; k < b->nsteps; k++) {
        if (b->step[k].tracks == 10000 && b->step[k].after.queries) s10k = &b->step[k];
        if (b->step[k].tracks == 100000 && b->step[k].after.queries) s100k = &b->step[k];
    }
    fprintf(f, "%s", md ? "\nBars:\n\n" : "\nbars:\n");
    if (all_batch > 0) {
        double rate = (double)all_prints / all_batch;
        fprintf(f, "%sload >= 1M prints/s: %.2fM/s in batches, %s (with tiered merges %.2fM/s)\n",
                li, rate / 1e6, rate >= 1e6 ? "met" : "NOT met",
                (double)all_prints / (all_batch + all_merge) / 1e6);
    }
    if (s10k) {
        double bpp = (double)s10k->bytes / (double)s10k->prints;
        fprintf(f, "%ssize <= 8 B/print at 10k tracks: %.2f, %s\n", li, bpp,
                bpp <= 8 ? "met" : "NOT met");
        fprintf(f, "%slookup at 10k tracks: p50 %.1f ms (<= 10: %s), p99 %.1f ms (<= 50: %s)\n",
                li, s10k->after.total_p50, s10k->after.total_p50 <= 10 ? "met" : "NOT met",
                s10k->after.total_p99, s10k->after.total_p99 <= 50 ? "met" : "NOT met");
    }
    if (s100k)
        fprintf(f, "%slookup at 100k tracks: p50 %.1f ms (<= 30: %s)\n", li,
                s100k->after.total_p50, s100k->after.total_p50 <= 30 ? "met" : "NOT met");
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_store [--tracks N[,N...]] [--queries N] [--var DIR] [--keep]\n"
            "                   [--reuse] [--conninfo STR] [--out FILE] [--seed N]\n"
            "                   [--batch PRINTS] [--max-postings N] [--max-hits N]\n"
            "                   [--first-hits N] [--unknown] [--cache-mb N] [--threads N] [--fanin N] [--alpha A] [--theta T] [FILE.ogg ...]\n");
    return 2;
}

/* --tracks N[,N...]: increasing sizes, each at most a million. */
static int parse_steps(bench_t *b, const char *s)
{
    b->nsteps = 0;
    while (*s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || !v || v > 1000000 || b->nsteps == MAX_STEPS) return -1;
        if (b->nsteps && v <= b->steps[b->nsteps - 1]) return -1;
        b->steps[b->nsteps++] = (size_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return b->nsteps ? 0 : -1;
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    b->steps[0] = 1000;
    b->steps[1] = 10000;
    b->nsteps = 2;
    b->queries = 200;
    b->batch_prints = 2000000;
    b->seed = 20261122;
    b->max_hits = -1;
    b->first_hits = -1;
    b->fanin = -1;
    b->var_arg = "var/bench-store";
    double alpha = NAN, theta = NAN;
    char **files = calloc((size_t)argc + 8, sizeof *files);
    size_t nfiles = 0;
    char cmdline[4096];
    size_t cl = (size_t)snprintf(cmdline, sizeof cmdline, "%s", argv[0]);
    for (int i = 1; i < argc && cl < sizeof cmdline; i++)
        cl += (size_t)snprintf(cmdline + cl, sizeof cmdline - cl, " %s", argv[i]);
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--tracks") && more) {
            if (parse_steps(b, argv[++i])) return usage();
        } else if (!strcmp(a, "--queries") && more) b->queries = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--var") && more) b->var_arg = argv[++i];
        else if (!strcmp(a, "--conninfo") && more) b->conninfo_arg = argv[++i];
        else if (!strcmp(a, "--out") && more) b->out = argv[++i];
        else if (!strcmp(a, "--seed") && more) b->seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--batch") && more) b->batch_prints = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--max-postings") && more)
            b->max_postings = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--max-hits") && more) b->max_hits = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--first-hits") && more) b->first_hits = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--unknown")) b->unknown = 1;
        else if (!strcmp(a, "--cache-mb") && more) b->cache_mb = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--threads") && more) b->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--fanin") && more) b->fanin = atoi(argv[++i]);
        else if (!strcmp(a, "--alpha") && more) alpha = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--theta") && more) theta = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--keep")) b->keep = 1;
        else if (!strcmp(a, "--reuse")) b->reuse = b->keep = 1;
        else if (a[0] == '-') return usage();
        else files[nfiles++] = argv[i];
    }
    if (!b->queries || b->batch_prints < 1000 || (!isnan(alpha) && !(alpha >= 0 && alpha <= 1)) ||
        (!isnan(theta) && !(theta > 0)))
        return usage();
    if (!nfiles)
        for (size_t i = 0; i < sizeof default_files / sizeof *default_files; i++)
            files[nfiles++] = (char *)default_files[i];
    for (size_t i = 0; i < nfiles; i++)
        if (access(files[i], R_OK)) {
            fprintf(stderr, "bench_store: cannot read %s: %s\nhint: scripts/deps installs the "
                            "game music the default calibration uses\n",
                    files[i], strerror(errno));
            return 1;
        }
    setvbuf(stdout, NULL, _IOLBF, 0);
    b->wall0 = now_s();
    int rc = 1;

    fprintf(stderr, "calibrating the generator on %zu files ...\n", nfiles);
    if (model_calibrate(&b->model, files, nfiles, alpha, theta)) goto done;
    if (model_validate(&b->model, b->seed ^ 0x5bd1e995u, &b->synth)) goto done;
    if (b->conninfo_arg) snprintf(b->conninfo, sizeof b->conninfo, "%s", b->conninfo_arg);
    else if (cluster_prepare(b)) goto done;
    if (db_prepare(b)) goto done;
    if (b->reuse) {
        if (reuse_load_ids(b) || reuse_measure(b)) goto done;
        rc = 0;
        goto done;
    }
    size_t maxt = b->steps[b->nsteps - 1];
    b->ids = calloc(maxt, sizeof *b->ids);
    b->track_s = calloc(maxt, sizeof *b->track_s);
    if (!b->ids || !b->track_s) goto done;
    for (size_t k = 0; k < b->nsteps; k++)
        if (run_step(b, k)) goto done;
    rc = 0;
done:;
    double wall = now_s() - b->wall0;
    if (b->step[0].tracks) {
        report(b, stdout, 0, cmdline, wall);
        if (b->out) {
            FILE *f = fopen(b->out, "w");
            if (!f) fprintf(stderr, "bench_store: cannot write %s: %s\n", b->out, strerror(errno));
            else {
                report(b, f, 1, cmdline, wall);
                fclose(f);
            }
        }
    }
    if (b->conn && b->conninfo_arg && !b->keep) db_clear(b);
    store_free(b->store);
    db_close(b->conn);
    if (!b->conninfo_arg && b->var[0] && !b->keep) {
        char err[1024];
        if (db_cluster_stop(b->var, err, sizeof err) != DB_OK)
            fprintf(stderr, "bench_store: %s\n", err);
        cluster_remove_data(b->var);
    }
    free(b->ids);
    free(b->track_s);
    gen_free(&b->gen);
    model_free(&b->model);
    free(files);
    return rc;
}
