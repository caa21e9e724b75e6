/*
 * eval.c -- the accuracy evaluation of the fingerprint core on real music.
 *
 *   eval --catalog catalog.tsv --manifest manifest.tsv [--threads N]
 *        [--min-frames N] [--min-count N] [--min-ratio R] [--max-postings N] [--check]
 *        [--out FILE] [--dump FILE] [--title TEXT] [--hashes all|pair|triplet]
 *        [--unscaled]
 *
 * Fingerprints every catalog track (fp_extract_path, a work queue over N
 * threads), builds an in-memory inverted index hash -> postings (track,
 * frame), then identifies every query clip of the manifest (written by
 * queries.sh): its prints are looked up, every posting of a print's hash
 * becomes a hit, fp_score_hits() votes over time offsets, and the best
 * candidate is a match when the decision rule accepts it:
 *
 *   best.frames >= min_frames  and  best.count >= min_count  and
 *   best.frames >= min_ratio * second.frames
 *
 * where `second` is the best candidate of any other track.  A match's offset
 * is right when it is within 0.5 s of the truth, or when the reference holds
 * the same audio at both places (looped music: see same_audio()).
 * Prints a markdown table of recall, offset accuracy and false positives per
 * transform and clip length, and the index's size and speed.  See README.md.
 *
 * Exit status: 0 done (and, with --check, the gates passed), 1 a gate failed
 * or an input could not be read, 2 bad command line.
 */
#include "earmark_fp.h"
#include "em_match.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Index keys: pair hashes as they are, triplet hashes (FP_HASH_TRIPLET and
 * a payload below 1 << FP_HASH_BITS) after them. */
#define HASH_SPACE ((size_t)1 << FP_HASH_BITS)
#define KEY_SPACE (2 * HASH_SPACE)
#define OFFSET_TOLERANCE_S 0.5
#define SCALE_TOLERANCE 0.01   /* speed and pitch estimates within 1% */
#define REPEAT_SHARE 0.3       /* same_audio() above this: a repeat */
#define CHECK_MIN_RECALL 95.0

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) die("out of memory");
    return d;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Split a line in place at tabs; returns the number of fields (<= max). */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    while (n < max) {
        f[n++] = line;
        char *tab = strchr(line, '\t');
        if (!tab) break;
        *tab = '\0';
        line = tab + 1;
    }
    return n;
}

static double parse_double(const char *s, const char *what, const char *file, long lineno)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) die("%s:%ld: bad %s '%s'", file, lineno, what, s);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct track {
    char *id;
    char *path;
    double duration;
    /* filled by indexing */
    uint32_t *keys;
    uint32_t *times;
    uint16_t *freqs;
    size_t nprints;
    double seconds;
    int rc;
    char err[256];
} track_t;

typedef struct query {
    char *path;
    char *transform;
    int length;
    char *truth_id;        /* "-" for a negative */
    int truth;             /* catalog index, -1 for a negative */
    double truth_off;
    double query_off;
    double truth_speed;    /* reference seconds per query second */
    double truth_pitch;    /* query frequency per reference frequency */
    int negative;
    int robust;
    /* results */
    int rc;
    char err[256];
    int pred;              /* best candidate's catalog index, -1 when none */
    int accepted;
    uint32_t count;
    uint32_t frames;       /* distinct query frames of the best alignment */
    uint32_t second;       /* best count of any other track */
    uint32_t second_frames; /* and its frames */
    int second_track;      /* that track, -1 when none */
    double repeat_share;   /* offset off: share of the truth's prints at the
                              predicted place too (-1: not computed) */
    double pred_off;
    double speed;
    double pitch;
    double q_start, q_end;  /* best candidate's aligned span in the query, s */
    double r_start, r_end;  /* ... and in the reference, s */
    size_t ncand;
    double latency_ms;
    size_t nprints, nhits, skipped;
    int narrowed;         /* the lookup in two parts was narrowed */
    int copies_ok;        /* the match lists every other copy (--copies) */
    double qspan;         /* seconds from the first print to the last */
    double chance_best;   /* match_chance() of the best candidate */
    char *chance;         /* --dump-chance: a negative clip's candidates, as lines */
    size_t chance_hits;   /* hits of the emulated tracks the corpus lacks */
} query_t;

static track_t *tracks;
static size_t ntracks;
static query_t *queries;
static size_t nqueries;

static void read_catalog(const char *file)
{
    FILE *fp = fopen(file, "r");
    if (!fp) die("cannot open catalog %s: %s", file, strerror(errno));
    char *line = NULL;
    size_t cap = 0, room = 0;
    long lineno = 0;
    while (getline(&line, &cap, fp) >= 0) {
        char *f[4];
        lineno++;
        if (line[0] == '\n' || line[0] == '#') continue;
        int n = split_tabs(line, f, 4);
        if (lineno == 1 && strcmp(f[0], "id") == 0) continue;
        if (n < 2) die("%s:%ld: expected id, path, duration_seconds", file, lineno);
        if (ntracks == room) {
            room = room ? 2 * room : 64;
            tracks = xrealloc(tracks, room * sizeof *tracks);
        }
        track_t *t = &tracks[ntracks++];
        memset(t, 0, sizeof *t);
        t->id = xstrdup(f[0]);
        t->path = xstrdup(f[1]);
        t->duration = n > 2 ? parse_double(f[2], "duration", file, lineno) : 0;
    }
    free(line);
    fclose(fp);
    if (ntracks == 0) die("catalog %s lists no track", file);
    for (size_t i = 0; i < ntracks; i++)
        for (size_t j = i + 1; j < ntracks; j++)
            if (strcmp(tracks[i].id, tracks[j].id) == 0)
                die("catalog %s: id '%s' appears twice", file, tracks[i].id);
}

static int find_track(const char *id)
{
    for (size_t i = 0; i < ntracks; i++)
        if (strcmp(tracks[i].id, id) == 0) return (int)i;
    return -1;
}

static int is_robust_name(const char *set)
{
    return strcmp(set, "robust") == 0;
}

static void read_manifest(const char *file)
{
    enum { C_PATH, C_TRANSFORM, C_LENGTH, C_TRUTH, C_TRUTH_OFF, C_QUERY_OFF, C_NEG,
           C_SET, C_SPEED, C_PITCH, NCOL, C_OPTIONAL = C_SET };
    static const char *names[NCOL] = {"query_path", "transform", "length_s", "truth_id",
                                      "truth_offset_s", "query_offset_s", "is_negative", "set",
                                      "speed", "pitch"};
    int col[NCOL];
    FILE *fp = fopen(file, "r");
    if (!fp) die("cannot open manifest %s: %s", file, strerror(errno));

    /* clip paths are relative to the manifest's folder */
    char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0';
    else dir[0] = '\0';

    char *line = NULL;
    size_t cap = 0, room = 0;
    long lineno = 0;
    char *f[64];
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        int n = split_tabs(line, f, 64);
        if (lineno == 1) {
            for (int c = 0; c < NCOL; c++) {
                col[c] = -1;
                for (int k = 0; k < n; k++)
                    if (strcmp(f[k], names[c]) == 0) col[c] = k;
                if (col[c] < 0 && c < C_OPTIONAL)
                    die("%s: no column '%s' in the header line", file, names[c]);
            }
            continue;
        }
        if (n == 1 && f[0][0] == '\0') continue;
        for (int c = 0; c < NCOL; c++)
            if (col[c] >= n && (c < C_OPTIONAL || col[c] >= 0)) die("%s:%ld: %d fields, too few", file, lineno, n);
        if (nqueries == room) {
            room = room ? 2 * room : 256;
            queries = xrealloc(queries, room * sizeof *queries);
        }
        query_t *q = &queries[nqueries++];
        memset(q, 0, sizeof *q);
        const char *p = f[col[C_PATH]];
        if (p[0] == '/') {
            q->path = xstrdup(p);
        } else {
            q->path = xmalloc(strlen(dir) + strlen(p) + 1);
            strcpy(q->path, dir);
            strcat(q->path, p);
        }
        q->transform = xstrdup(f[col[C_TRANSFORM]]);
        q->length = (int)lround(parse_double(f[col[C_LENGTH]], "length_s", file, lineno));
        q->negative = strcmp(f[col[C_NEG]], "1") == 0;
        q->truth_id = xstrdup(f[col[C_TRUTH]]);
        q->truth = -1;
        q->pred = -1;
        q->second_track = -1;
        q->repeat_share = -1;
        q->robust = col[C_SET] >= 0 && is_robust_name(f[col[C_SET]]);
        if (!q->negative) {
            q->truth = find_track(q->truth_id);
            if (q->truth < 0)
                die("%s:%ld: truth_id '%s' is not in the catalog", file, lineno, q->truth_id);
            q->truth_off = parse_double(f[col[C_TRUTH_OFF]], "truth_offset_s", file, lineno);
        }
        q->query_off = parse_double(f[col[C_QUERY_OFF]], "query_offset_s", file, lineno);
        q->truth_speed = col[C_SPEED] >= 0 ? parse_double(f[col[C_SPEED]], "speed", file, lineno) : 0;
        q->truth_pitch = col[C_PITCH] >= 0 ? parse_double(f[col[C_PITCH]], "pitch", file, lineno) : 0;
    }
    free(line);
    free(dir);
    fclose(fp);
    if (nqueries == 0) die("manifest %s lists no query", file);
}

/* ------------------------------------------------------------------------ */
/* A work queue over threads                                                */
/* ------------------------------------------------------------------------ */

typedef void (*job_fn)(size_t item, int worker);

typedef struct pool {
    job_fn fn;
    size_t n;
    atomic_size_t next;
    atomic_size_t done;
    int progress;          /* print progress on stderr */
    const char *what;
} pool_t;

typedef struct worker_arg {
    pool_t *pool;
    int id;
} worker_arg_t;

static void *pool_main(void *arg)
{
    worker_arg_t *w = arg;
    pool_t *p = w->pool;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        p->fn(i, w->id);
        size_t d = atomic_fetch_add(&p->done, 1) + 1;
        if (p->progress && (d % 100 == 0 || d == p->n))
            fprintf(stderr, "\r%s %zu/%zu", p->what, d, p->n);
    }
    return NULL;
}

static void run_pool(job_fn fn, size_t n, int nthreads, const char *what, int progress)
{
    pool_t p = {.fn = fn, .n = n, .progress = progress, .what = what};
    atomic_init(&p.next, 0);
    atomic_init(&p.done, 0);
    pthread_t *th = xmalloc((size_t)nthreads * sizeof *th);
    worker_arg_t *args = xmalloc((size_t)nthreads * sizeof *args);
    for (int i = 0; i < nthreads; i++) {
        args[i] = (worker_arg_t){.pool = &p, .id = i};
        int rc = pthread_create(&th[i], NULL, pool_main, &args[i]);
        if (rc) die("pthread_create: %s", strerror(rc));
    }
    for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    if (progress) fputc('\n', stderr);
    free(th);
    free(args);
}

/* ------------------------------------------------------------------------ */
/* Indexing                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct posting {
    uint32_t track;
    uint32_t t;
    uint16_t f;    /* anchor frequency, for the pitch estimate */
} posting_t;

static fp_config_t cfg;
static double frame_s;         /* seconds per analysis frame */
static uint32_t *index_off;    /* KEY_SPACE + 1 offsets into index_post */
static posting_t *index_post;
static size_t index_n;
static atomic_size_t hash_unknown;
static int opt_family = 0;     /* 0: every hash, 1: pair hashes only, 2: triplets only */
static size_t opt_copies = 1;  /* --copies: each catalog track indexed this many times */
static size_t index_tracks;    /* tracks in the index: ntracks * opt_copies */
static int opt_unscaled = 0;   /* search unscaled alignments only */

/* The index key of a hash, or UINT32_MAX for a hash of no known family. */
static uint32_t hash_key(uint32_t h)
{
    if (h < HASH_SPACE) return h;
    if ((h & FP_HASH_TRIPLET) && (h & ~FP_HASH_TRIPLET) < HASH_SPACE)
        return (uint32_t)HASH_SPACE + (h & ~FP_HASH_TRIPLET);
    return UINT32_MAX;
}

/* Whether a key's family is used (--hashes). */
static int key_wanted(uint32_t key)
{
    if (opt_family == 1) return key < HASH_SPACE;
    if (opt_family == 2) return key >= HASH_SPACE;
    return 1;
}

static void index_track(size_t i, int worker)
{
    (void)worker;
    track_t *t = &tracks[i];
    fp_result_t res;
    t->rc = fp_extract_path(t->path, &cfg, NULL, &res, t->err, sizeof t->err);
    if (t->rc != FP_OK) return;
    t->nprints = res.count;
    t->seconds = res.stats.seconds;
    t->keys = xmalloc(res.count * sizeof *t->keys);
    t->times = xmalloc(res.count * sizeof *t->times);
    t->freqs = xmalloc(res.count * sizeof *t->freqs);
    size_t n = 0;
    for (size_t k = 0; k < res.count; k++) {
        uint32_t key = hash_key(res.prints[k].hash);
        if (key == UINT32_MAX) {
            atomic_fetch_add(&hash_unknown, 1);
            continue;
        }
        if (!key_wanted(key)) continue;
        t->keys[n] = key;
        t->times[n] = res.prints[k].t;
        t->freqs[n++] = res.prints[k].f;
    }
    t->nprints = n;
    fp_result_clear(&res);
}

/* Counting sort of every (hash, track, t) by hash: postings of one hash are
 * contiguous, in track then time order. */
static void build_index(void)
{
    index_off = calloc(KEY_SPACE + 1, sizeof *index_off);
    if (!index_off) die("out of memory");
    index_n = 0;
    index_tracks = ntracks * opt_copies;
    for (size_t i = 0; i < ntracks; i++) {
        for (size_t k = 0; k < tracks[i].nprints; k++)
            index_off[tracks[i].keys[k] + 1] += (uint32_t)opt_copies;
        index_n += tracks[i].nprints * opt_copies;
    }
    if (index_n > UINT32_MAX) die("%zu prints do not fit the 32-bit index", index_n);
    for (size_t h = 0; h < KEY_SPACE; h++) index_off[h + 1] += index_off[h];
    index_post = xmalloc(index_n * sizeof *index_post);
    uint32_t *fill = xmalloc(KEY_SPACE * sizeof *fill);
    memcpy(fill, index_off, KEY_SPACE * sizeof *fill);
    /* copy c of track i is index track c * ntracks + i: postings stay in
     * track order within a key */
    for (size_t c = 0; c < opt_copies; c++)
        for (size_t i = 0; i < ntracks; i++)
            for (size_t k = 0; k < tracks[i].nprints; k++) {
                uint32_t h = tracks[i].keys[k];
                index_post[fill[h]++] = (posting_t){.track = (uint32_t)(c * ntracks + i),
                                                    .t = tracks[i].times[k],
                                                    .f = tracks[i].freqs[k]};
            }
    for (size_t i = 0; i < ntracks; i++) {
        free(tracks[i].freqs);   /* keys and times stay, for same_audio() */
        tracks[i].freqs = NULL;
    }
    free(fill);
}

/*
 * Cross-track collisions of each family: the mean number of other tracks'
 * postings that a catalog print's key holds (sum over keys of n_k^2 minus
 * the within-track sum of squares, over the family's prints).
 */
static void collisions(double coll[2], double nfam[2])
{
    for (size_t k = 0; k < KEY_SPACE; k++) {
        size_t a = index_off[k], b = index_off[k + 1];
        if (a == b) continue;
        double n = (double)(b - a), within = 0;
        for (size_t j = a; j < b;) {
            size_t e = j;
            while (e < b && index_post[e].track == index_post[j].track) e++;
            /* a track's copies are the same recording: not other tracks */
            within += (double)(e - j) * (double)(e - j) * (double)opt_copies;
            j = e;
        }
        int fam = k >= HASH_SPACE;
        coll[fam] += n * n - within;
        nfam[fam] += n;
    }
    for (int f = 0; f < 2; f++) coll[f] = nfam[f] > 0 ? coll[f] / nfam[f] : 0;
}

/* ------------------------------------------------------------------------ */
/* Repeats                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct kt {
    uint32_t key;
    int32_t t;     /* frames from the window's start */
} kt_t;

static int cmp_kt(const void *a, const void *b)
{
    const kt_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

/* Index of the first print of *t at or after frame `f` (times ascend). */
static size_t first_at(const track_t *t, double f)
{
    size_t lo = 0, hi = t->nprints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((double)t->times[mid] < f) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Gather the prints of `len_s` seconds from `start_s`, times relative. */
static size_t window(const track_t *t, double start_s, double len_s, kt_t **out)
{
    double f0 = start_s / frame_s, f1 = (start_s + len_s) / frame_s;
    size_t a = first_at(t, f0), b = first_at(t, f1);
    *out = xmalloc((b - a) * sizeof **out);
    for (size_t i = a; i < b; i++)
        (*out)[i - a] = (kt_t){.key = t->keys[i], .t = (int32_t)((double)t->times[i] - f0)};
    return b - a;
}

/*
 * The share of the prints of `len_s` seconds of *t from `a_s` that recur,
 * same hash within +-2 frames, in the same stretch from `b_s`.  Music that
 * loops gives most of them: the clip is then found at a right place, only
 * not at the one it was cut from.
 */
static double same_audio(const track_t *t, double a_s, double b_s, double len_s)
{
    if (a_s < 0 || b_s < 0 || len_s <= 0) return 0;
    kt_t *wa, *wb;
    size_t na = window(t, a_s, len_s, &wa), nb = window(t, b_s, len_s, &wb);
    qsort(wb, nb, sizeof *wb, cmp_kt);
    size_t hit = 0;
    for (size_t i = 0; i < na; i++) {
        kt_t lo = {.key = wa[i].key, .t = wa[i].t - 2};
        size_t l = 0, h = nb;   /* first element >= lo */
        while (l < h) {
            size_t m = l + (h - l) / 2;
            if (cmp_kt(&wb[m], &lo) < 0) l = m + 1;
            else h = m;
        }
        if (l < nb && wb[l].key == wa[i].key && wb[l].t <= wa[i].t + 2) hit++;
    }
    free(wa);
    free(wb);
    return na ? (double)hit / (double)na : 0;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct scratch {
    fp_hit_t *hits;
    size_t cap;
} scratch_t;

static scratch_t *scratch;     /* one per worker */
static uint32_t opt_min_count = 0;
static uint32_t opt_min_frames = 12;
static size_t opt_scaled_tracks = 0; /* 0: the core's default */
static double opt_min_ratio = 2.0;
static size_t opt_max_postings = 0;  /* 0: none (the matcher's default) */
static size_t opt_emulate = 0;     /* --emulate-tracks: 0 off */
static size_t cap_postings = SIZE_MAX; /* the cap in force (scaled when emulating) */
static uint64_t budget_hits = 0;   /* the budget in force (scaled when emulating; 0: none) */
static uint64_t first_budget = 0;  /* a lookup's first part, scaled alike (0: one part) */
static long opt_max_hits = -1; /* -1: the matcher's default (match_opts_t) */
static long opt_first_hits = -1; /* -1: the matcher's default; 0: one part */

static int opt_dump_chance = 0;    /* --dump-chance FILE given */
static double opt_max_chance = -1; /* --max-chance; -1: the matcher's default */
static double catalog_hours = 0;   /* the catalog's size for the chance test:
                                      the index's hours, times the emulated
                                      size's factor */
static int opt_chance = 1;         /* emulated tracks add chance hits (--no-chance-hits) */
static double chance_factor = 0;   /* emulated postings per corpus posting of a key */
static uint32_t chance_frames = 1; /* an emulated track's length in frames */

/* splitmix64: the emulated hits of a query print are drawn from a stream
 * seeded by the query and the print, the same in both parts of a lookup
 * and on any thread. */
static uint64_t mix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
    return (double)(mix64(x) >> 11) * (1.0 / 9007199254740992.0);
}

/* A Poisson count of mean m (Knuth's method below 30, a rounded normal
 * above). */
static size_t poisson(uint64_t *x, double m)
{
    if (m <= 0) return 0;
    if (m < 30) {
        double l = exp(-m), p = 1.0;
        size_t k = 0;
        do {
            k++;
            p *= unit(x);
        } while (p > l);
        return k - 1;
    }
    double u1 = unit(x), u2 = unit(x);
    double z = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * cos(2.0 * M_PI * u2);
    double v = m + sqrt(m) * z;
    return v > 0 ? (size_t)llround(v) : 0;
}

/*
 * The chance hits of query print k (of query qi) with a key that holds
 * `corpus` postings in the corpus: at N emulated tracks the key holds
 * chance_factor times as many more, of the N - n tracks the corpus lacks,
 * at random places in them.  Appended at s->hits[nh ..); the new count.
 */
static size_t chance_hits(scratch_t *s, size_t nh, size_t qi, size_t k, const fp_print_t *p,
                          size_t corpus)
{
    uint64_t x = ((uint64_t)qi << 32) ^ (uint64_t)k ^ 0x5eed5eedULL;
    size_t extra = poisson(&x, (double)corpus * chance_factor);
    if (!extra) return nh;
    if (nh + extra > s->cap) {
        s->cap = 2 * (nh + extra) + 1024;
        s->hits = xrealloc(s->hits, s->cap * sizeof *s->hits);
    }
    uint64_t others = opt_emulate > index_tracks ? opt_emulate - index_tracks : 1;
    for (size_t j = 0; j < extra; j++) {
        uint64_t r = mix64(&x);
        s->hits[nh++] = (fp_hit_t){.track = (uint32_t)(index_tracks + (r >> 32) % others),
                                   .ref_t = (uint32_t)((r & 0xffffffffu) % chance_frames),
                                   .query_t = p->t, .query_idx = (uint32_t)k,
                                   .ref_f = (uint16_t)(p->f ^ (r >> 48)), .query_f = p->f,
                                   .flags = (p->hash & FP_HASH_TRIPLET) ? FP_HIT_INVARIANT : 0};
    }
    return nh;
}

/*
 * Append to s->hits the postings of the query's prints; the new count.
 * Within the budget of hits the matcher uses (match_budget_select(): the
 * rarest hashes first), so that the evaluation measures what earmark does.
 */
static size_t gather_hits(query_t *q, scratch_t *s, const fp_result_t *r, size_t nh,
                          uint64_t budget, int count_skipped)
{
    size_t qi = (size_t)(q - queries);
    uint64_t *cost = xrealloc(NULL, (r->count + 1) * sizeof *cost);
    uint8_t *chosen = xrealloc(NULL, r->count + 1);
    for (size_t k = 0; k < r->count; k++) {
        uint32_t h = hash_key(r->prints[k].hash);
        cost[k] = h == UINT32_MAX || !key_wanted(h) ? 0 : index_off[h + 1] - index_off[h];
        if (cost[k] > cap_postings) cost[k] = UINT64_MAX / 2;
    }
    match_budget_select(cost, r->count, budget, chosen);
    for (size_t k = 0; k < r->count; k++) {
        uint32_t hash = r->prints[k].hash;
        uint32_t h = hash_key(hash);
        if (h == UINT32_MAX || !key_wanted(h)) continue;
        size_t a = index_off[h], b = index_off[h + 1];
        if (b - a > cap_postings || !chosen[k]) {
            if (b > a && count_skipped) q->skipped++;
            continue;
        }
        if (nh + (b - a) > s->cap) {
            s->cap = 2 * (nh + (b - a)) + 1024;
            s->hits = xrealloc(s->hits, s->cap * sizeof *s->hits);
        }
        for (size_t j = a; j < b; j++)
            s->hits[nh++] = (fp_hit_t){.track = index_post[j].track, .ref_t = index_post[j].t,
                                       .query_t = r->prints[k].t, .query_idx = (uint32_t)k,
                                       .ref_f = index_post[j].f, .query_f = r->prints[k].f,
                                       .flags = (r->prints[k].hash & FP_HASH_TRIPLET)
                                                    ? FP_HIT_INVARIANT : 0};
        if (chance_factor > 0) {
            size_t before = nh;
            nh = chance_hits(s, nh, qi, k, &r->prints[k], b - a);
            if (count_skipped) q->chance_hits += nh - before;
        }
    }
    free(cost);
    free(chosen);
    return nh;
}

/* The matcher's options for its decision, as the command line sets them. */
static void decision_opts(match_opts_t *mo)
{
    match_opts_default(mo);
    mo->min_frames = opt_min_frames;
    mo->min_ratio = opt_min_ratio;
    mo->unscaled = opt_unscaled;
    mo->frame_seconds = frame_s;
    if (opt_max_chance >= 0) mo->max_chance = opt_max_chance;
}

static void run_query(size_t i, int worker)
{
    query_t *q = &queries[i];
    scratch_t *s = &scratch[worker];
    fp_result_t res;
    double t0 = now_s();

    q->rc = fp_extract_path(q->path, &cfg, NULL, &res, q->err, sizeof q->err);
    if (q->rc != FP_OK) {
        q->latency_ms = (now_s() - t0) * 1e3;
        return;
    }
    size_t nh = gather_hits(q, s, &res, 0, budget_hits, 1);
    q->nprints = res.count;
    {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t k = 0; k < res.count; k++) {
            if (res.prints[k].t < lo) lo = res.prints[k].t;
            if (res.prints[k].t > hi) hi = res.prints[k].t;
        }
        q->qspan = res.count ? (double)(hi - lo + 1) * frame_s : 0;
    }
    q->nhits = nh;
    /* the matcher's lookup in two parts (match_plan_t): the first part's
     * hits after the full budget's, scored as match_query scores them;
     * when match_clear_tracks finds clear matches that cover the clip,
     * only those tracks' hits are scored below */
    if (first_budget && (!budget_hits || first_budget < budget_hits)) {
        size_t n1 = gather_hits(q, s, &res, nh, first_budget, 0) - nh;
        if (n1 < nh) { /* a second part exists */
            match_opts_t mo;
            decision_opts(&mo);
            fp_score_opts_t mso;
            match_score_opts(&mo, &mso);
            if (opt_scaled_tracks) mso.scaled_tracks = opt_scaled_tracks;
            fp_candidate_t *c1 = NULL;
            size_t nc1 = 0;
            uint32_t clear[16], qlo = UINT32_MAX, qhi = 0;
            for (size_t k = 0; k < res.count; k++) {
                if (res.prints[k].t < qlo) qlo = res.prints[k].t;
                if (res.prints[k].t > qhi) qhi = res.prints[k].t;
            }
            size_t nt = 0;
            if (fp_score_hits(s->hits + nh, n1, &mso, &c1, &nc1) == FP_OK) {
                match_evidence_t ev = {c1, nc1, s->hits + nh, n1, q->qspan, catalog_hours, 1.0};
                nt = match_clear_tracks(&ev, &mo, qlo, qhi, clear, 16);
            }
            free(c1);
            if (nt) {
                nh = match_keep_tracks(s->hits, nh, clear, nt);
                q->narrowed = 1;
            }
        }
    }

    fp_score_opts_t so;
    fp_score_opts_default(&so);
    /* runners-up matter to the ratio rule only above min_frames / min_ratio
     * frames; anything weaker would only slow the scoring down */
    so.min_count = (uint32_t)ceil((double)opt_min_frames / (opt_min_ratio > 1.0 ? opt_min_ratio : 1.0));
    if (so.min_count < 2) so.min_count = 2;
    so.max_candidates = 64 * opt_copies; /* room for every copy of as many candidates */
    if (opt_scaled_tracks) so.scaled_tracks = opt_scaled_tracks;
    if (opt_unscaled) so.min_speed = so.max_speed = 1.0;
    fp_candidate_t *cand = NULL;
    size_t nc = 0;
    fp_err_t rc = fp_score_hits(s->hits, nh, &so, &cand, &nc);
    if (rc != FP_OK) {
        q->rc = rc;
        snprintf(q->err, sizeof q->err, "fp_score_hits: %s", fp_strerror(rc));
    } else if (nc > 0) {
        if (q->negative && opt_dump_chance) {
            /* every candidate of a clip that holds no catalog audio is a
             * chance alignment: frames, prints, speed, query span */
            size_t len = 0, room = 64 * nc + 1;
            q->chance = xmalloc(room);
            q->chance[0] = '\0';
            for (size_t k = 0; k < nc; k++)
                len += (size_t)snprintf(q->chance + len, room - len, "%u\t%u\t%.4f\t%u\t%d\n",
                                        cand[k].frames, cand[k].count, cand[k].speed,
                                        cand[k].query_end - cand[k].query_start,
                                        cand[k].track < index_tracks);
        }
        /* the matcher's decision: the best match, and its copies */
        match_opts_t mo;
        decision_opts(&mo);
        mo.max_results = 1;
        match_pick_t *pick = NULL;
        size_t np = 0;
        double share = res.count ? 1.0 - (double)q->skipped / (double)res.count : 1.0;
        match_evidence_t ev = {cand, nc, s->hits, nh, q->qspan, catalog_hours, share};
        if (match_decide(&ev, &mo, &pick, &np) != FP_OK) die("out of memory");
        /* the chance of the best candidate, claimed or not (the
         * reliability table) */
        const fp_candidate_t *top = np ? &cand[pick[0].cand] : &cand[0];
        q->chance_best = np ? pick[0].chance
                                 : match_chance(top->frames, top->speed != 1.0, q->qspan,
                                           catalog_hours, share);
        const fp_candidate_t *best = np ? &cand[pick[0].cand] : &cand[0];
        /* a recording of the corpus (any copy), or -2: an emulated track */
        q->pred = best->track < index_tracks ? (int)(best->track % ntracks) : -2;
        q->count = best->count;
        q->frames = best->frames;
        q->speed = best->speed;
        q->pitch = best->pitch;
        /* the runner-up: the best candidate of another recording */
        for (size_t k = 0; k < nc; k++)
            if (cand[k].track % ntracks != best->track % ntracks) {
                q->second = cand[k].count;
                q->second_frames = cand[k].frames;
                q->second_track = cand[k].track < index_tracks ? (int)(cand[k].track % ntracks) : -2;
                break;
            }
        /* every other copy of the recording listed, and nothing else */
        size_t listed = 0, wrong = 0;
        for (size_t p = 1; p < np; p++)
            if (cand[pick[p].cand].track % ntracks == best->track % ntracks &&
                cand[pick[p].cand].track < index_tracks)
                listed++;
            else
                wrong++;
        q->copies_ok = np && listed == opt_copies - 1 && !wrong;
        free(pick);
        /* ref_t = speed * query_t + offset: where the query's catalog audio
         * (from query_off) starts in the reference */
        q->pred_off = best->speed * q->query_off + (double)best->offset * frame_s;
        q->q_start = best->query_start * frame_s;
        q->q_end = best->query_end * frame_s;
        q->r_start = best->ref_start * frame_s;
        q->r_end = best->ref_end * frame_s;
        q->ncand = nc;
        q->accepted = np > 0 && best->count >= opt_min_count;
        if (q->accepted && q->pred == q->truth &&
            fabs(q->pred_off - q->truth_off) > OFFSET_TOLERANCE_S) {
            double len = q->length * (q->truth_speed > 0 ? q->truth_speed : 1.0);
            q->repeat_share = same_audio(&tracks[q->pred], q->truth_off, q->pred_off, len);
        }
    }
    free(cand);
    fp_result_clear(&res);
    q->latency_ms = (now_s() - t0) * 1e3;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                   */
/* ------------------------------------------------------------------------ */

/* A predicted track's name: a corpus track's id, "emulated" (-2), "-" (-1). */
static const char *track_name(int t)
{
    return t >= 0 ? tracks[t].id : t == -2 ? "emulated" : "-";
}

static int q_correct(const query_t *q)
{
    return !q->negative && q->rc == FP_OK && q->accepted && q->pred == q->truth;
}

static int q_offset_ok(const query_t *q)
{
    return q_correct(q) && (fabs(q->pred_off - q->truth_off) <= OFFSET_TOLERANCE_S ||
                            q->repeat_share >= REPEAT_SHARE);
}

static int near_ratio(double est, double truth)
{
    return truth > 0 && fabs(est / truth - 1.0) <= SCALE_TOLERANCE;
}

typedef struct row {
    const char *transform;
    int length;
    int robust;
    size_t n, correct, offset_ok, wrong, errors;
    size_t speed_n, speed_ok, pitch_n, pitch_ok;   /* among correct matches */
    size_t neg, fp;
} row_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0) return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    if (r < 1) r = 1;
    return v[r - 1];
}

typedef struct out {
    FILE *f[2];
    int n;
} out_t;

static void say(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(out_t *o, const char *fmt, ...)
{
    for (int i = 0; i < o->n; i++) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(o->f[i], fmt, ap);
        va_end(ap);
    }
}

static void pct(char *buf, size_t len, size_t a, size_t b)
{
    if (b == 0) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.1f%%", 100.0 * (double)a / (double)b);
}

static void print_row(out_t *o, const row_t *r, const char *label)
{
    char rec[16], off[16], spd[16], pit[16], wrong[16], fp[16], len[16];
    pct(rec, sizeof rec, r->correct, r->n);
    pct(off, sizeof off, r->offset_ok, r->correct);
    pct(spd, sizeof spd, r->speed_ok, r->speed_n);
    pct(pit, sizeof pit, r->pitch_ok, r->pitch_n);
    pct(wrong, sizeof wrong, r->wrong, r->n);
    pct(fp, sizeof fp, r->fp, r->neg);
    if (r->length > 0) snprintf(len, sizeof len, "%d", r->length);
    else snprintf(len, sizeof len, "all");
    say(o, "| %s | %s | %zu | %s | %s | %s | %s | %s | %zu | %s |\n", label ? label : r->transform,
        len, r->n, rec, off, spd, pit, wrong, r->neg, fp);
}

static void add_to_row(row_t *r, const query_t *q)
{
    if (q->negative) {
        r->neg++;
        if (q->rc == FP_OK && q->accepted) r->fp++;
    } else {
        r->n++;
        if (q->rc != FP_OK) r->errors++;
        if (q_correct(q)) r->correct++;
        if (q_offset_ok(q)) r->offset_ok++;
        if (q_correct(q) && q->truth_speed > 0) {
            r->speed_n++;
            r->speed_ok += near_ratio(q->speed, q->truth_speed);
        }
        if (q_correct(q) && q->truth_pitch > 0 && q->pitch > 0) {
            r->pitch_n++;
            r->pitch_ok += near_ratio(q->pitch, q->truth_pitch);
        }
        if (q->rc == FP_OK && q->accepted && q->pred != q->truth) r->wrong++;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void print_section(out_t *o, int robust, const char *heading)
{
    /* transforms in manifest order, then lengths ascending */
    row_t *rows = NULL;
    size_t nrows = 0;
    for (size_t i = 0; i < nqueries; i++) {
        const query_t *q = &queries[i];
        if (q->robust != robust) continue;
        size_t r;
        for (r = 0; r < nrows; r++)
            if (strcmp(rows[r].transform, q->transform) == 0 && rows[r].length == q->length) break;
        if (r == nrows) {
            rows = xrealloc(rows, (nrows + 1) * sizeof *rows);
            rows[nrows++] = (row_t){.transform = q->transform, .length = q->length, .robust = robust};
        }
        add_to_row(&rows[r], q);
    }
    if (nrows == 0) {
        free(rows);
        return;
    }
    say(o, "\n### %s\n\n", heading);
    say(o, "| transform | length (s) | n | recall@1 | offset ok | speed ok | pitch ok "
           "| wrong track | negatives | FP rate |\n");
    say(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const char **names = NULL;
    size_t nnames = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t k;
        for (k = 0; k < nnames; k++)
            if (strcmp(names[k], rows[r].transform) == 0) break;
        if (k == nnames) {
            names = xrealloc(names, (nnames + 1) * sizeof *names);
            names[nnames++] = rows[r].transform;
        }
    }
    for (size_t k = 0; k < nnames; k++) {
        int lens[64];
        size_t nl = 0;
        for (size_t r = 0; r < nrows && nl < 64; r++)
            if (strcmp(rows[r].transform, names[k]) == 0) lens[nl++] = rows[r].length;
        qsort(lens, nl, sizeof *lens, cmp_int);
        for (size_t l = 0; l < nl; l++)
            for (size_t r = 0; r < nrows; r++)
                if (strcmp(rows[r].transform, names[k]) == 0 && rows[r].length == lens[l])
                    print_row(o, &rows[r], NULL);
    }
    row_t all = {.transform = NULL, .length = 0, .robust = robust};
    for (size_t i = 0; i < nqueries; i++)
        if (queries[i].robust == robust) add_to_row(&all, &queries[i]);
    print_row(o, &all, robust ? "**all robust**" : "**all core**");
    free(names);
    free(rows);
}

/*
 * Claimed confidence against observed precision.  A clip's confidence is
 * exp(-E), E the chance of its best candidate (match_chance()); in each
 * bin, the clips whose best candidate has that confidence and, of them,
 * the share whose best candidate is the right recording (for a negative
 * clip, never).  First the claimed clips, then every clip with a
 * candidate, claimed or not: the second shows whether the model's chance
 * is too high or too low where it decides nothing.
 */
static void reliability(out_t *o)
{
    static const double lo[] = {0.0, 0.5, 0.9, 0.99, 0.999, 0.9999};
    enum { NB = sizeof lo / sizeof lo[0] };
    size_t n[2][NB] = {{0}}, ok[2][NB] = {{0}};
    double sum[2][NB] = {{0}};
    for (size_t i = 0; i < nqueries; i++) {
        const query_t *q = &queries[i];
        if (q->rc != FP_OK || q->pred == -1) continue;
        double c = exp(-q->chance_best);
        int b = NB - 1;
        while (b > 0 && c < lo[b]) b--;
        int right = !q->negative && q->pred == q->truth;
        for (int all = 0; all < 2; all++) {
            if (!all && !q->accepted) continue;
            n[all][b]++;
            ok[all][b] += (size_t)right;
            sum[all][b] += c;
        }
    }
    say(o, "\n### Reliability\n\nConfidence is exp(-E), E the alignments as strong expected by "
           "chance (match_chance()).  Precision: of the clips in the bin, the share whose best "
           "candidate is the right recording.\n\n");
    say(o, "| confidence | claimed clips | mean confidence | precision | all clips with a candidate "
           "| mean confidence | precision |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int b = 0; b < NB; b++) {
        char p0[16], p1[16], m0[16] = "-", m1[16] = "-";
        pct(p0, sizeof p0, ok[0][b], n[0][b]);
        pct(p1, sizeof p1, ok[1][b], n[1][b]);
        if (n[0][b]) snprintf(m0, sizeof m0, "%.4f", sum[0][b] / (double)n[0][b]);
        if (n[1][b]) snprintf(m1, sizeof m1, "%.4f", sum[1][b] / (double)n[1][b]);
        say(o, "| %g - %s | %zu | %s | %s | %zu | %s | %s |\n", lo[b],
            b + 1 < NB ? (b == 0 ? "0.5" : b == 1 ? "0.9" : b == 2 ? "0.99" : b == 3 ? "0.999" : "0.9999")
                       : "1", n[0][b], m0, p0, n[1][b], m1, p1);
    }
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static const char usage[] =
    "usage: eval --catalog catalog.tsv --manifest manifest.tsv [--threads N]\n"
    "            [--min-frames N] [--min-count N] [--min-ratio R] [--max-postings N] [--check]\n"
    "            [--out FILE] [--dump FILE] [--title TEXT]\n"
    "            [--hashes all|pair|triplet] [--unscaled] [--scaled-tracks N] [--max-hits N]\n"
    "            [--first-hits N] [--emulate-tracks N]\n";

static long parse_long_opt(const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "eval: %s wants an integer in %ld..%ld, not '%s'\n%s", name, lo, hi, v,
                usage);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    {
        match_opts_t mo;
        match_opts_default(&mo);
        if (opt_max_hits < 0) opt_max_hits = (long)mo.max_hits;
        if (opt_first_hits < 0) opt_first_hits = (long)mo.first_hits;
        opt_max_postings = mo.max_postings; /* 0: none */
    }
    const char *catalog = NULL, *manifest = NULL, *out_file = NULL, *dump_file = NULL;
    const char *chance_file = NULL;
    const char *title = NULL;
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), check = 0;
    if (threads < 1) threads = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strcmp(a, "--check") != 0 && strcmp(a, "--unscaled") != 0 &&
                    strcmp(a, "--no-chance-hits") != 0 && strcmp(a, "--help") != 0 &&
                    strcmp(a, "-h") != 0;
        if (takes && !v) {
            fprintf(stderr, "eval: %s needs a value\n%s", a, usage);
            return 2;
        }
        if (strcmp(a, "--catalog") == 0) catalog = v;
        else if (strcmp(a, "--manifest") == 0) manifest = v;
        else if (strcmp(a, "--threads") == 0) threads = (int)parse_long_opt(a, v, 1, 256);
        else if (strcmp(a, "--min-count") == 0) opt_min_count = (uint32_t)parse_long_opt(a, v, 0, 100000);
        else if (strcmp(a, "--max-hits") == 0) opt_max_hits = parse_long_opt(a, v, 0, 1L << 40);
        else if (strcmp(a, "--first-hits") == 0) opt_first_hits = parse_long_opt(a, v, 0, 1L << 40);
        else if (strcmp(a, "--scaled-tracks") == 0) opt_scaled_tracks = (size_t)parse_long_opt(a, v, 1, 100000);
        else if (strcmp(a, "--min-frames") == 0) opt_min_frames = (uint32_t)parse_long_opt(a, v, 1, 100000);
        else if (strcmp(a, "--emulate-tracks") == 0) opt_emulate = (size_t)parse_long_opt(a, v, 2, 100000000);
        else if (strcmp(a, "--max-postings") == 0) opt_max_postings = (size_t)parse_long_opt(a, v, 0, 1L << 30);
        else if (strcmp(a, "--min-ratio") == 0) {
            char *end;
            opt_min_ratio = strtod(v, &end);
            if (end == v || *end || !(opt_min_ratio >= 0) || opt_min_ratio > 1000) {
                fprintf(stderr, "eval: --min-ratio wants a number in 0..1000, not '%s'\n%s", v, usage);
                return 2;
            }
        }
        else if (strcmp(a, "--out") == 0) out_file = v;
        else if (strcmp(a, "--dump") == 0) dump_file = v;
        else if (strcmp(a, "--dump-chance") == 0) chance_file = v, opt_dump_chance = 1;
        else if (strcmp(a, "--title") == 0) title = v;
        else if (strcmp(a, "--check") == 0) check = 1;
        else if (strcmp(a, "--unscaled") == 0) opt_unscaled = 1;
        else if (strcmp(a, "--no-chance-hits") == 0) opt_chance = 0;
        else if (strcmp(a, "--copies") == 0) opt_copies = (size_t)parse_long_opt(a, v, 1, 16);
        else if (strcmp(a, "--max-chance") == 0) {
            char *end;
            opt_max_chance = strtod(v, &end);
            if (end == v || *end || !(opt_max_chance >= 0) || opt_max_chance > 1e9) {
                fprintf(stderr, "eval: --max-chance wants a number >= 0, not '%s'\n%s", v, usage);
                return 2;
            }
        }
        else if (strcmp(a, "--hashes") == 0) {
            if (strcmp(v, "all") == 0) opt_family = 0;
            else if (strcmp(v, "pair") == 0) opt_family = 1;
            else if (strcmp(v, "triplet") == 0) opt_family = 2;
            else {
                fprintf(stderr, "eval: --hashes wants all, pair or triplet, not '%s'\n%s", v, usage);
                return 2;
            }
        }
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "eval: unknown argument '%s'\n%s", a, usage);
            return 2;
        }
        if (takes) i++;
    }
    if (!catalog || !manifest) {
        fprintf(stderr, "eval: --catalog and --manifest are required\n%s", usage);
        return 2;
    }

    fp_config_default(&cfg);
    frame_s = fp_config_frame_seconds(&cfg);
    read_catalog(catalog);
    read_manifest(manifest);
    int progress = isatty(2);

    /* index */
    fprintf(stderr, "eval: indexing %zu tracks with %d threads\n", ntracks, threads);
    atomic_init(&hash_unknown, 0);
    double t0 = now_s();
    run_pool(index_track, ntracks, threads, "indexing", progress);
    double t_extract = now_s() - t0;
    int failed = 0;
    for (size_t i = 0; i < ntracks; i++)
        if (tracks[i].rc != FP_OK) {
            fprintf(stderr, "eval: catalog track %s: %s\n", tracks[i].id, tracks[i].err);
            failed = 1;
        }
    if (failed) die("the catalog could not be indexed");
    build_index();
    double t_index = now_s() - t0;
    cap_postings = opt_max_postings ? opt_max_postings : SIZE_MAX;
    budget_hits = opt_max_hits > 0 ? (uint64_t)opt_max_hits : 0;
    first_budget = opt_first_hits > 0 ? (uint64_t)opt_first_hits : 0;
    double scale = 1.0;
    if (opt_emulate) {
        /* every key's postings grow by the same factor: the same keys pass
         * the scaled cap, and the budget takes the same rarest keys */
        scale = (double)opt_emulate / (double)index_tracks;
        if (scale < 1) die("--emulate-tracks %zu: the index already holds %zu tracks", opt_emulate,
                           index_tracks);
        if (opt_max_postings) {
            cap_postings = (size_t)llround((double)opt_max_postings / scale);
            if (cap_postings < 1) cap_postings = 1;
        }
        if (budget_hits) {
            budget_hits = (uint64_t)llround((double)budget_hits / scale);
            if (budget_hits < 1) budget_hits = 1;
        }
        if (first_budget) {
            first_budget = (uint64_t)llround((double)first_budget / scale);
            if (first_budget < 1) first_budget = 1;
        }
    }
    double coll[2] = {0, 0}, nfam[2] = {0, 0};
    collisions(coll, nfam);
    double audio_s = 0;
    for (size_t i = 0; i < ntracks; i++) audio_s += tracks[i].seconds;
    /* distinct audio: a track's copies add none (the store counts them
     * out the same way, store_hours) */
    catalog_hours = audio_s / 3600.0 * scale;
    if (opt_emulate && opt_chance) {
        /* the tracks the corpus lacks: as many more postings of each key as
         * the emulated size adds, at random places in tracks of the
         * corpus's mean length */
        chance_factor = scale - 1.0;
        chance_frames = (uint32_t)fmax(1.0, audio_s / (double)ntracks / frame_s);
    }
    size_t index_bytes = (KEY_SPACE + 1) * sizeof *index_off + index_n * sizeof *index_post;
    if (atomic_load(&hash_unknown))
        fprintf(stderr, "eval: warning: %zu prints with hashes of no known layout (skipped)\n",
                (size_t)atomic_load(&hash_unknown));

    /* queries */
    fprintf(stderr, "eval: %zu queries with %d threads\n", nqueries, threads);
    scratch = calloc((size_t)threads, sizeof *scratch);
    if (!scratch) die("out of memory");
    double t1 = now_s();
    run_pool(run_query, nqueries, threads, "queries", progress);
    double t_query = now_s() - t1;
    for (int i = 0; i < threads; i++) free(scratch[i].hits);
    free(scratch);

    size_t qerr = 0, nneg = 0, nfp = 0;
    for (size_t i = 0; i < nqueries; i++) {
        const query_t *q = &queries[i];
        if (q->rc != FP_OK) {
            if (qerr < 20) fprintf(stderr, "eval: query failed: %s\n", q->err);
            qerr++;
        }
        if (q->negative) {
            nneg++;
            if (q->rc == FP_OK && q->accepted) nfp++;
        }
    }

    /* latency percentiles: all queries, and the 10 s clips without embedding */
    double *lat = xmalloc(nqueries * sizeof *lat), *lat10 = xmalloc(nqueries * sizeof *lat10);
    size_t nlat = 0, nlat10 = 0;
    for (size_t i = 0; i < nqueries; i++) {
        if (queries[i].rc != FP_OK) continue;
        lat[nlat++] = queries[i].latency_ms;
        if (queries[i].length == 10 && queries[i].query_off == 0) lat10[nlat10++] = queries[i].latency_ms;
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    qsort(lat10, nlat10, sizeof *lat10, cmp_double);

    /* the report */
    out_t o = {.f = {stdout, NULL}, .n = 1};
    FILE *of = NULL;
    if (out_file) {
        of = fopen(out_file, "w");
        if (!of) die("cannot write %s: %s", out_file, strerror(errno));
        o.f[o.n++] = of;
    }
    say(&o, "## Accuracy: %s\n\n", title ? title : manifest);
    char counts[64] = "", cap[64], budget[96] = "", emulated[48] = "", lookup[224];
    if (opt_min_count > 0) snprintf(counts, sizeof counts, ", and >= %u prints", opt_min_count);
    if (cap_postings == SIZE_MAX) snprintf(cap, sizeof cap, "no cap on postings per hash");
    else snprintf(cap, sizeof cap, "postings per hash capped at %zu", cap_postings);
    if (budget_hits)
        snprintf(budget, sizeof budget, ", a budget of %llu hits a clip (the rarest hashes first)",
                 (unsigned long long)budget_hits);
    if (opt_emulate) snprintf(emulated, sizeof emulated, " (emulating %zu tracks)", opt_emulate);
    snprintf(lookup, sizeof lookup, "%s%s%s", cap, budget, emulated);
    say(&o, "Decision rule: best candidate aligns >= %u distinct query frames and >= %.2f x those "
            "of the best other track%s; "
            "%s%s%s.  Recall and wrong track: of the n catalog "
            "clips.  Offset ok (within %.1f s, or a repeat of the same audio), speed ok and pitch ok (estimate within "
            "%.0f%%): of the correct matches.  FP rate: of the negative clips.\n",
        opt_min_frames, opt_min_ratio, counts, lookup,
        opt_family == 1 ? "; pair hashes only" : opt_family == 2 ? "; triplet hashes only" : "",
        opt_unscaled ? "; unscaled alignments only" : "", OFFSET_TOLERANCE_S,
        100 * SCALE_TOLERANCE);
    print_section(&o, 0, "Core transforms");
    print_section(&o, 1, "Robust set (reported, not gated)");
    say(&o, "\n### Index and speed\n\n| metric | value |\n|---|---:|\n");
    say(&o, "| catalog tracks | %zu |\n", ntracks);
    if (opt_copies > 1) {
        size_t good = 0, listed = 0;
        for (size_t i = 0; i < nqueries; i++)
            if (q_correct(&queries[i])) {
                good++;
                listed += (size_t)queries[i].copies_ok;
            }
        say(&o, "| copies of each catalog track in the index | %zu |\n", opt_copies);
        say(&o, "| correct matches listing every other copy, and no other track | %zu of %zu |\n",
            listed, good);
    }
    if (chance_factor > 0) {
        double *ch = xmalloc((nqueries + 1) * sizeof *ch);
        size_t nch = 0;
        for (size_t i = 0; i < nqueries; i++)
            if (queries[i].length == 10 && queries[i].query_off == 0)
                ch[nch++] = (double)queries[i].chance_hits;
        qsort(ch, nch, sizeof *ch, cmp_double);
        say(&o, "| chance hits of the emulated tracks per 10 s clip, p50 / p99 | %.0f / %.0f |\n",
            percentile(ch, nch, 50), percentile(ch, nch, 99));
        free(ch);
    }
    say(&o, "| hours indexed | %.2f |\n", audio_s / 3600.0);
    say(&o, "| indexing speed (%d threads) | %.0f x real time |\n", threads,
        t_index > 0 ? audio_s / t_index : 0);
    say(&o, "| prints per second of audio | %.1f |\n", audio_s > 0 ? (double)index_n / audio_s : 0);
    say(&o, "| prints indexed | %zu |\n", index_n);
    say(&o, "| bytes per print (in-memory index: postings + hash table) | %.1f + %.1f |\n",
        (double)sizeof *index_post,
        index_n ? (double)(index_bytes - index_n * sizeof *index_post) / (double)index_n : 0);
    say(&o, "| queries (catalog + negative clips) | %zu + %zu |\n", nqueries - nneg, nneg);
    say(&o, "| query latency p50 / p99, all clips (ms) | %.1f / %.1f |\n",
        percentile(lat, nlat, 50), percentile(lat, nlat, 99));
    say(&o, "| query latency p50 / p99, 10 s clips (ms) | %.1f / %.1f |\n",
        percentile(lat10, nlat10, 50), percentile(lat10, nlat10, 99));
    {
        double *hh = xmalloc((nqueries + 1) * sizeof *hh);
        size_t nhh = 0;
        for (size_t i = 0; i < nqueries; i++)
            if (queries[i].length == 10 && queries[i].query_off == 0 && !queries[i].negative &&
                strcmp(queries[i].transform, "clean") == 0)
                hh[nhh++] = chance_factor > 0 ? (double)queries[i].nhits
                                              : (double)queries[i].nhits * scale;
        qsort(hh, nhh, sizeof *hh, cmp_double);
        size_t ptr = opt_emulate ? opt_emulate : index_tracks;
        say(&o, "| other tracks' postings per print, pairs / triplets (at %zu tracks) | %.0f / %.0f |\n",
            ptr, coll[0] * (double)(ptr - 1) / (double)(index_tracks - 1),
            coll[1] * (double)(ptr - 1) / (double)(index_tracks - 1));
        say(&o, "| prints indexed, pairs / triplets | %.0f / %.0f |\n", nfam[0], nfam[1]);
        say(&o, "| hits per clean 10 s clip p50 / p99 (at %zu tracks) | %.0f / %.0f |\n", ptr,
            percentile(hh, nhh, 50), percentile(hh, nhh, 99));
        free(hh);
    }
    say(&o, "| queries that failed to decode | %zu |\n", qerr);
    say(&o, "| negatives claimed (all transforms) | %zu of %zu |\n", nfp, nneg);
    {
        size_t nar = 0, nar_neg = 0, npos = 0;
        for (size_t i = 0; i < nqueries; i++) {
            if (queries[i].negative) nar_neg += (size_t)queries[i].narrowed;
            else nar += (size_t)queries[i].narrowed, npos++;
        }
        say(&o, "| lookups narrowed after their first part (%llu hits): catalog / negative clips "
                "| %zu of %zu / %zu of %zu |\n",
            (unsigned long long)first_budget, nar, npos, nar_neg, nneg);
    }
    reliability(&o);
    fprintf(stderr, "eval: indexing %.1f s (extraction %.1f s), queries %.1f s\n", t_index,
            t_extract, t_query);

    if (dump_file) {
        FILE *d = fopen(dump_file, "w");
        if (!d) die("cannot write %s: %s", dump_file, strerror(errno));
        fprintf(d, "query\ttransform\tlength_s\ttruth\ttruth_offset_s\tpredicted\taccepted\tcount"
                   "\tsecond\tsecond_track\tpred_offset_s\tspeed\tpitch\tquery_span_s\tref_span_s\tcandidates\tprints\thits"
                   "\tskipped_hashes\tlatency_ms\terror\tframes\tsecond_frames\trepeat_share\n");
        for (size_t i = 0; i < nqueries; i++) {
            const query_t *q = &queries[i];
            char toff[32], poff[32];
            if (q->negative) snprintf(toff, sizeof toff, "-");
            else snprintf(toff, sizeof toff, "%.3f", q->truth_off);
            if (q->pred != -1) snprintf(poff, sizeof poff, "%.3f", q->pred_off);
            else snprintf(poff, sizeof poff, "-");
            fprintf(d, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%u\t%u\t%s\t%s\t%.4f\t%.4f\t%.2f-%.2f\t%.2f-%.2f"
                       "\t%zu\t%zu\t%zu\t%zu\t%.2f\t%s\t%u\t%u\t%.2f\n",
                    q->path, q->transform, q->length, q->truth_id, toff,
                    track_name(q->pred), q->accepted, q->count, q->second,
                    track_name(q->second_track), poff, q->speed,
                    q->pitch, q->q_start, q->q_end, q->r_start, q->r_end, q->ncand,
                    q->nprints, q->nhits, q->skipped, q->latency_ms,
                    q->rc == FP_OK ? "" : q->err, q->frames, q->second_frames, q->repeat_share);
        }
        if (fclose(d) != 0) die("cannot write %s: %s", dump_file, strerror(errno));
    }

    if (chance_file) {
        FILE *d = fopen(chance_file, "w");
        if (!d) die("cannot write %s: %s", chance_file, strerror(errno));
        fprintf(d, "query\tlength_s\tquery_seconds\tframes\tprints\tspeed\tspan_frames\tcorpus\n");
        for (size_t i = 0; i < nqueries; i++) {
            const query_t *q = &queries[i];
            char *line = q->chance, *nl;
            for (; line && (nl = strchr(line, '\n')); line = nl + 1)
                fprintf(d, "%s\t%d\t%.1f\t%.*s\n", q->path, q->length, q->nprints ? q->qspan : 0.0,
                        (int)(nl - line), line);
        }
        if (fclose(d) != 0) die("cannot write %s: %s", chance_file, strerror(errno));
    }

    int status = 0;
    if (check) {
        row_t clean10 = {0};
        for (size_t i = 0; i < nqueries; i++)
            if (strcmp(queries[i].transform, "clean") == 0 && queries[i].length == 10)
                add_to_row(&clean10, &queries[i]);
        double rec = clean10.n ? 100.0 * (double)clean10.correct / (double)clean10.n : 0;
        if (clean10.n == 0) {
            say(&o, "\nCHECK FAILED: the manifest has no clean 10 s catalog clip\n");
            status = 1;
        } else if (rec < CHECK_MIN_RECALL) {
            say(&o, "\nCHECK FAILED: recall@1 of clean 10 s clips is %.1f%% (%zu of %zu), below %.0f%%\n",
                rec, clean10.correct, clean10.n, CHECK_MIN_RECALL);
            status = 1;
        }
        if (nfp > 0) {
            say(&o, "\nCHECK FAILED: %zu negative clip(s) claimed as a match:\n", nfp);
            for (size_t i = 0; i < nqueries; i++) {
                const query_t *q = &queries[i];
                if (q->negative && q->rc == FP_OK && q->accepted)
                    say(&o, "  %s -> %s (frames %u, prints %u; other track: frames %u)\n", q->path,
                        track_name(q->pred), q->frames, q->count, q->second_frames);
            }
            status = 1;
        }
        if (qerr > 0) {
            say(&o, "\nCHECK FAILED: %zu query clip(s) could not be fingerprinted\n", qerr);
            status = 1;
        }
        if (status == 0)
            say(&o, "\nCHECK PASSED: clean 10 s recall@1 %.1f%% >= %.0f%%, no negative claimed\n",
                rec, CHECK_MIN_RECALL);
    }
    if (of && fclose(of) != 0) die("cannot write %s: %s", out_file, strerror(errno));

    free(lat);
    free(lat10);
    free(index_off);
    free(index_post);
    for (size_t i = 0; i < ntracks; i++) {
        free(tracks[i].id);
        free(tracks[i].keys);
        free(tracks[i].times);
        free(tracks[i].path);
    }
    free(tracks);
    for (size_t i = 0; i < nqueries; i++) {
        free(queries[i].path);
        free(queries[i].transform);
        free(queries[i].truth_id);
        free(queries[i].chance);
    }
    free(queries);
    return status;
}
