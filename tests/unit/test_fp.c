/*
 * test_fp.c -- the fingerprint core on real audio: configuration, hash
 * layout, determinism across runs, block sizes and threads, decoding from
 * memory and from every supported container, robustness of the prints to a
 * low-bitrate MP3 plus noise, and the offset voting.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "earmark_fp.h"
#include "testlib.h"

static void test_config(void)
{
    fp_config_t c, d;
    char err[256];
    fp_config_default(&c);
    CHECK(fp_config_check(&c, err, sizeof err) == FP_OK, "%s", err);
    d = c;
    CHECK(fp_config_id(&c) == fp_config_id(&d));
    d.fanout++;
    CHECK(fp_config_id(&c) != fp_config_id(&d), "a changed parameter must change the id");
    d = c;
    d.max_bin = 600;
    CHECK(fp_config_check(&d, err, sizeof err) == FP_ERR_INVALID);
    CHECK(strstr(err, "bins 9..600") != NULL, "message names the values: %s", err);
    d = c;
    d.fft_size = 1000;
    CHECK(fp_config_check(&d, err, sizeof err) == FP_ERR_INVALID);
    d = c;
    d.version = 99;
    CHECK(fp_config_check(&d, err, sizeof err) == FP_ERR_INVALID);
    CHECK(fabs(fp_config_frame_seconds(&c) - 256.0 / 11025.0) < 1e-12);
    for (int e = 0; e <= FP_ERR_INTERNAL; e++) {
        CHECK(fp_strerror((fp_err_t)e) && *fp_strerror((fp_err_t)e));
        CHECK(fp_errname((fp_err_t)e) && *fp_errname((fp_err_t)e));
    }
    CHECK(!strcmp(fp_errname(FP_ERR_FORMAT), "format"));
    CHECK(!strcmp(fp_strerror((fp_err_t)1234), "unknown error"));
}

static void test_hash_layout(void)
{
    for (int f1 = 0; f1 < 512; f1 += 37)
        for (int df = -64; df <= 63; df += 9)
            for (int dt = 1; dt <= 64; dt += 7) {
                uint32_t h = fp_hash_pack(f1, df, dt);
                int a, b, c;
                fp_hash_unpack(h, &a, &b, &c);
                CHECK(a == f1 && b == df && c == dt, "%d %d %d -> %d %d %d", f1, df, dt, a, b, c);
                CHECK(h < (1u << FP_HASH_BITS));
            }
}

/* Fingerprint the first `seconds` of a corpus file with the given block size. */
static int extract_blocks(const char *path, size_t block, double seconds, fp_print_t **out,
                          size_t *n)
{
    fp_decoder_t *dec;
    fp_extractor_t *ex;
    char err[256];
    if (fp_decoder_open_path(path, NULL, &dec, err, sizeof err) != FP_OK) return -1;
    const fp_audio_info_t *in = fp_decoder_info(dec);
    if (fp_extractor_new(NULL, NULL, in->sample_rate, in->channels, &ex, err, sizeof err)) {
        fp_decoder_free(dec);
        return -1;
    }
    size_t cap = 1 << 16, len = 0, got;
    fp_print_t *p = malloc(cap * sizeof *p);
    float *buf = malloc(block * (size_t)in->channels * sizeof(float));
    double fed = 0;
    while (fed < seconds && fp_decoder_read(dec, buf, block, &got, err, sizeof err) == FP_OK && got) {
        fp_extractor_feed(ex, buf, got, err, sizeof err);
        fed += (double)got / in->sample_rate;
        size_t k;
        while ((k = fp_extractor_take(ex, p + len, cap - len)) > 0) {
            len += k;
            if (len == cap) p = realloc(p, (cap *= 2) * sizeof *p);
        }
    }
    fp_extractor_finish(ex, err, sizeof err);
    size_t k;
    while ((k = fp_extractor_take(ex, p + len, cap - len)) > 0) {
        len += k;
        if (len == cap) p = realloc(p, (cap *= 2) * sizeof *p);
    }
    free(buf);
    fp_extractor_free(ex);
    fp_decoder_free(dec);
    *out = p;
    *n = len;
    return 0;
}

static void test_stream_blocks(void)
{
    const char *path = test_corpus_file(1);
    fp_print_t *a, *b, *c;
    size_t na, nb, nc;
    REQUIRE(extract_blocks(path, 4096, 40, &a, &na) == 0);
    REQUIRE(extract_blocks(path, 777, 40, &b, &nb) == 0);
    REQUIRE(extract_blocks(path, 1, 40, &c, &nc) == 0 || 1);
    CHECK(na > 1000, "40 s of music gives prints: %zu", na);
    CHECK(na == nb && !memcmp(a, b, na * sizeof *a), "block size 4096 vs 777: %zu vs %zu", na, nb);
    /* 1-frame blocks stop at a slightly different time; compare the prefix */
    size_t m = nc < na ? nc : na;
    CHECK(m > 1000 && !memcmp(a, c, (m - 200) * sizeof *a), "block size 1 differs");
    for (size_t i = 1; i < na; i++) CHECK(a[i].t >= a[i - 1].t, "prints in time order");
    free(a);
    free(b);
    free(c);
}

typedef struct {
    const char *path;
    fp_result_t res;
    fp_err_t rc;
} thr_t;

static void *thr_main(void *arg)
{
    thr_t *t = arg;
    char err[256];
    t->rc = fp_extract_path(t->path, NULL, NULL, &t->res, err, sizeof err);
    return NULL;
}

static void test_determinism_threads(void)
{
    enum { N = 4 };
    thr_t t[N];
    pthread_t id[N];
    fp_result_t ref;
    char err[256];
    const char *path = test_corpus_file(0);
    REQUIRE(fp_extract_path(path, NULL, NULL, &ref, err, sizeof err) == FP_OK, "%s", err);
    CHECK(ref.count > 1000);
    CHECK(!strcmp(ref.info.format, "ogg-vorbis"), "format %s", ref.info.format);
    for (int i = 0; i < N; i++) {
        t[i].path = path;
        pthread_create(&id[i], NULL, thr_main, &t[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(id[i], NULL);
        CHECK(t[i].rc == FP_OK);
        CHECK(t[i].res.count == ref.count &&
                  !memcmp(t[i].res.prints, ref.prints, ref.count * sizeof *ref.prints),
              "thread %d gives other prints", i);
        fp_result_clear(&t[i].res);
    }
    /* the CLI, with 1 and 2 threads, prints byte-identical output */
    const char *bin = getenv("EARMARK_BIN");
    if (bin && access(bin, X_OK) == 0) {
        const char *d = test_tmpdir();
        CHECK(test_sh("'%s' fingerprint --threads 1 '%s' '%s' > %s/t1.txt 2>/dev/null", bin, path,
                      test_corpus_file(1), d) == 0);
        CHECK(test_sh("'%s' fingerprint --threads 2 '%s' '%s' > %s/t2.txt 2>/dev/null", bin, path,
                      test_corpus_file(1), d) == 0);
        CHECK(test_sh("cmp -s %s/t1.txt %s/t2.txt", d, d) == 0, "thread count changes output");
        CHECK(test_sh("'%s' fingerprint --json '%s' > %s/j.json 2>/dev/null", bin, path, d) == 0);
        CHECK(test_sh("grep -q '\"prints\":\\[\\[' %s/j.json", d) == 0, "json has prints");
    }
    fp_result_clear(&ref);
}

static void test_memory_equals_path(void)
{
    const char *path = test_corpus_file(3);
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)sz);
    REQUIRE(fread(data, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    fp_result_t a, b;
    char err[256];
    REQUIRE(fp_extract_path(path, NULL, NULL, &a, err, sizeof err) == FP_OK, "%s", err);
    REQUIRE(fp_extract_memory(data, (size_t)sz, "snowy", NULL, NULL, &b, err, sizeof err) == FP_OK,
            "%s", err);
    CHECK(a.count == b.count && !memcmp(a.prints, b.prints, a.count * sizeof *a.prints));
    fp_result_clear(&a);
    fp_result_clear(&b);
    free(data);
}

/* Fraction of q's prints found in r at offset `off` frames (+-1). */
static double survival(const fp_result_t *r, const fp_result_t *q, double off)
{
    size_t hit = 0;
    for (size_t i = 0; i < q->count; i++) {
        double want = q->prints[i].t + off;
        for (size_t j = 0; j < r->count; j++) {
            if (r->prints[j].hash == q->prints[i].hash && fabs(r->prints[j].t - want) <= 1.5) {
                hit++;
                break;
            }
        }
    }
    return q->count ? (double)hit / (double)q->count : 0.0;
}

/* Every container decodes, and gives prints that agree with the original. */
static void test_formats(void)
{
    const char *d = test_tmpdir();
    const char *src = test_corpus_file(3);
    REQUIRE(test_sh("sox '%s' %s/ref.wav trim 10 12 2>/dev/null", src, d) == 0, "sox failed");
    REQUIRE(test_sh("sox %s/ref.wav %s/f.flac && sox %s/ref.wav %s/f.ogg && "
                    "sox %s/ref.wav -r 48000 %s/f48.wav && "
                    "lame --quiet -b 128 %s/ref.wav %s/f.mp3 && "
                    "opusenc --quiet --bitrate 96 %s/ref.wav %s/f.opus && "
                    "sox %s/ref.wav -c 1 -r 22050 %s/mono.wav",
                    d, d, d, d, d, d, d, d, d, d, d, d) == 0,
            "encoders failed");
    char p[512], err[256];
    fp_result_t ref, r;
    snprintf(p, sizeof p, "%s/ref.wav", d);
    REQUIRE(fp_extract_path(p, NULL, NULL, &ref, err, sizeof err) == FP_OK, "%s", err);
    struct {
        const char *file, *format;
        double min_survival;
    } cases[] = {{"f.flac", "flac", 0.99}, {"f.ogg", "ogg-vorbis", 0.6}, {"f48.wav", "wav", 0.6},
                 {"f.mp3", "mp3", 0.6},    {"f.opus", "ogg-opus", 0.5},  {"mono.wav", "wav", 0.6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", d, cases[i].file);
        fp_err_t rc = fp_extract_path(p, NULL, NULL, &r, err, sizeof err);
        CHECK(rc == FP_OK, "%s: %s", cases[i].file, err);
        if (rc != FP_OK) continue;
        CHECK(!strcmp(r.info.format, cases[i].format), "%s: format %s", cases[i].file,
              r.info.format);
        double s = survival(&ref, &r, 0.0);
        CHECK(s >= cases[i].min_survival, "%s: only %.0f%% of prints agree", cases[i].file,
              100 * s);
        fprintf(stderr, "  %-9s %5zu prints, %3.0f%% agree with the WAV\n", cases[i].file, r.count,
                100 * s);
        fp_result_clear(&r);
    }
    fp_result_clear(&ref);
}

static fp_hit_t hit(uint32_t track, uint32_t ref_t, uint32_t query_t, uint32_t idx)
{
    return (fp_hit_t){track, ref_t, query_t, idx, 0, 0, 0};
}

/*
 * A clip, MP3 at 64 kbit/s, then white noise at 10 dB SNR: >= 30% of its
 * prints must be identical, at the right time, to the original's.  Measured
 * with the repeat filter off: it drops the later prints of a run of one
 * hash, and where a run starts differs between a clip and its source by
 * construction, which is beside what this measures (the hashes' robustness).
 * With the filter on, the clip must still be found at the right place.
 */
static void test_quality_mp3_noise(void)
{
    const char *d = test_tmpdir();
    for (int k = 0; k < 4; k++) {
        const char *src = test_corpus_file(k);
        double start = 20.0 + 3.3 * k; /* never on the frame grid */
        /* lame --decode honours the encoder delay, as libsndfile does */
        REQUIRE(test_sh("sox '%s' %s/q.wav trim %.3f 10 2>/dev/null && "
                        "lame --quiet -b 64 %s/q.wav %s/q.mp3 && "
                        "lame --quiet --decode %s/q.mp3 %s/qd.wav",
                        src, d, start, d, d, d, d) == 0);
        /* noise RMS = signal RMS / sqrt(10), both halved to stay clear of clipping */
        REQUIRE(test_sh("set -e; cd %s; "
                        "s=$(sox qd.wav -n stat 2>&1 | awk '/RMS.*amplitude/{print $3}'); "
                        "sox -R -n -r $(soxi -r qd.wav) -c $(soxi -c qd.wav) n.wav synth 10 whitenoise; "
                        "n=$(sox n.wav -n stat 2>&1 | awk '/RMS.*amplitude/{print $3}'); "
                        "v=$(awk -v s=$s -v n=$n 'BEGIN{print 0.5*s/n/sqrt(10)}'); "
                        "sox -m -v 0.5 qd.wav -v $v n.wav qn.wav",
                        d) == 0);
        char p[512], err[256];
        fp_result_t ref, q;
        fp_config_t cfg;
        fp_config_default(&cfg);
        cfg.repeat_frames = 0;
        REQUIRE(fp_extract_path(src, &cfg, NULL, &ref, err, sizeof err) == FP_OK, "%s", err);
        snprintf(p, sizeof p, "%s/qn.wav", d);
        REQUIRE(fp_extract_path(p, &cfg, NULL, &q, err, sizeof err) == FP_OK, "%s", err);
        double s = survival(&ref, &q, start / fp_config_frame_seconds(&cfg));
        fprintf(stderr, "  %s @%.1fs: %zu prints, %.1f%% survive MP3 64k + 10 dB noise\n", src,
                start, q.count, 100 * s);
        CHECK(s >= 0.30, "%s: only %.1f%% survive", src, 100 * s);
        fp_result_clear(&ref);
        fp_result_clear(&q);
        /* the default parameters find it, at the right offset */
        REQUIRE(fp_extract_path(src, NULL, NULL, &ref, err, sizeof err) == FP_OK, "%s", err);
        REQUIRE(fp_extract_path(p, NULL, NULL, &q, err, sizeof err) == FP_OK, "%s", err);
        fp_hit_t *h = malloc(sizeof *h * q.count * 8 + 1);
        size_t nh = 0;
        for (size_t i = 0; i < q.count; i++)
            for (size_t j = 0; j < ref.count && nh < q.count * 8; j++)
                if (ref.prints[j].hash == q.prints[i].hash)
                    h[nh++] = hit(0, ref.prints[j].t, q.prints[i].t, (uint32_t)i);
        fp_candidate_t *c = NULL;
        size_t nc = 0;
        CHECK(fp_score_hits(h, nh, NULL, &c, &nc) == FP_OK && nc >= 1);
        if (nc) {
            double off = (double)c[0].offset * fp_config_frame_seconds(&cfg);
            CHECK(fabs(off - start) < 0.1 && c[0].frames >= 20, "offset %.2f s, %u frames", off,
                  c[0].frames);
        }
        free(c);
        free(h);
        fp_result_clear(&ref);
        fp_result_clear(&q);
    }
}

static void test_score(void)
{
    /* track 7 at offset +100 over query frames 0..199, track 3 at offset
     * -5 over frames 300..399, noise everywhere */
    size_t n = 0, cap = 10000;
    fp_candidate_t *c;
    size_t nc;
    fp_hit_t *h = malloc(cap * sizeof *h);
    uint32_t rng = 12345;
    for (uint32_t q = 0; q < 200; q += 2) h[n++] = hit(7, q + 100 + (q % 3 == 0), q, q);
    for (uint32_t q = 300; q < 400; q += 4) h[n++] = hit(3, q - 5, q, q);
    for (int i = 0; i < 2000; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t q = (rng >> 8) % 400;
        rng = rng * 1103515245u + 12345u;
        h[n++] = hit((rng >> 8) % 50, (rng >> 12) % 5000, q, 10000 + (uint32_t)i);
    }
    REQUIRE(fp_score_hits(h, n, NULL, &c, &nc) == FP_OK);
    REQUIRE(nc >= 2, "two alignments expected, got %zu", nc);
    CHECK(c[0].track == 7 && c[0].offset == 100, "best: track %u offset %lld", c[0].track,
          (long long)c[0].offset);
    CHECK(c[0].count >= 95, "count %u", c[0].count);
    CHECK(c[0].query_start <= 2 && c[0].query_end >= 196, "span %u..%u", c[0].query_start,
          c[0].query_end);
    CHECK(c[0].ref_start >= 100 && c[0].ref_start <= 103, "ref start %u", c[0].ref_start);
    CHECK(c[1].track == 3 && c[1].offset == -5 && c[1].count == 25, "second: %u %lld %u",
          c[1].track, (long long)c[1].offset, c[1].count);
    CHECK(c[1].query_start == 300 && c[1].query_end == 396);
    for (size_t i = 2; i < nc; i++) CHECK(c[i].count < 10, "noise candidate %u", c[i].count);
    /* the hits are left as they were, and sparse track ids (a range past
     * 2^16, sorted in two passes) give the same candidates */
    {
        fp_hit_t *copy = malloc(n * sizeof *copy);
        fp_candidate_t *c2 = NULL;
        size_t nc2 = 0;
        REQUIRE(copy);
        memcpy(copy, h, n * sizeof *h);
        for (size_t i = 0; i < n; i++) copy[i].track = h[i].track * 70001u + 5;
        REQUIRE(fp_score_hits(copy, n, NULL, &c2, &nc2) == FP_OK);
        CHECK(nc2 == nc, "%zu candidates with sparse ids, %zu with dense", nc2, nc);
        for (size_t i = 0; i < nc && i < nc2; i++) {
            CHECK(c2[i].track == c[i].track * 70001u + 5, "candidate %zu: track %u", i,
                  c2[i].track);
            CHECK(c2[i].offset == c[i].offset && c2[i].frames == c[i].frames &&
                      c2[i].count == c[i].count && c2[i].query_start == c[i].query_start &&
                      c2[i].query_end == c[i].query_end && c2[i].ref_start == c[i].ref_start &&
                      c2[i].ref_end == c[i].ref_end && c2[i].speed == c[i].speed &&
                      c2[i].pitch == c[i].pitch,
                  "candidate %zu differs", i);
        }
        for (size_t i = 0; i < n; i++)
            if (copy[i].track != h[i].track * 70001u + 5) {
                CHECK(0, "hit %zu was changed", i);
                break;
            }
        free(c2);
        free(copy);
    }
    free(c);

    /* the same recording heard twice, 1000 frames apart: two segments */
    n = 0;
    for (uint32_t q = 0; q < 100; q++) h[n++] = hit(1, q + 50, q, q);
    for (uint32_t q = 1000; q < 1100; q++) h[n++] = hit(1, q + 50, q, q);
    REQUIRE(fp_score_hits(h, n, NULL, &c, &nc) == FP_OK);
    CHECK(nc == 2 && c[0].count == 100 && c[1].count == 100, "%zu segments", nc);
    free(c);

    /* duplicates of one query print count once */
    n = 0;
    for (uint32_t q = 0; q < 10; q++) {
        h[n++] = hit(2, q + 5, q, 0);
        h[n++] = hit(2, q + 6, q, 0);
    }
    REQUIRE(fp_score_hits(h, n, NULL, &c, &nc) == FP_OK);
    CHECK(nc == 0, "one distinct print cannot make an alignment");
    free(c);

    /* a copy 10% faster and a semitone higher: ref_t = 1.1 q + 200 */
    n = 0;
    for (uint32_t q = 0; q < 400; q += 2) {
        h[n] = hit(9, (uint32_t)lrint(1.1 * q + 200 + (q % 3 == 0)), q, q);
        h[n].ref_f = 1600;
        h[n].flags = FP_HIT_INVARIANT;
        h[n++].query_f = (uint16_t)lrint(1600 * 1.0595);
    }
    for (int i = 0; i < 3000; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t q = (rng >> 8) % 400;
        rng = rng * 1103515245u + 12345u;
        h[n] = hit((rng >> 8) % 20, (rng >> 12) % 5000, q, 10000 + (uint32_t)i);
        h[n++].flags = i % 2 ? FP_HIT_INVARIANT : 0;
    }
    REQUIRE(fp_score_hits(h, n, NULL, &c, &nc) == FP_OK);
    REQUIRE(nc >= 1);
    CHECK(c[0].track == 9 && fabs(c[0].speed - 1.1) < 0.003, "track %u speed %.4f", c[0].track,
          c[0].speed);
    CHECK(c[0].count >= 190, "count %u", c[0].count);
    CHECK(llabs(c[0].offset - 200) <= 2, "offset %lld", (long long)c[0].offset);
    CHECK(fabs(c[0].pitch - 1.0595) < 0.002, "pitch %.4f", c[0].pitch);
    CHECK(c[0].ref_start >= 200 && c[0].ref_start <= 203 && c[0].ref_end >= 635);
    for (size_t i = 1; i < nc; i++) CHECK(c[i].count < 12, "noise candidate %u", c[i].count);
    free(c);
    /* with scaled search off, the same hits give no strong alignment */
    fp_score_opts_t so;
    fp_score_opts_default(&so);
    so.min_speed = so.max_speed = 1.0;
    REQUIRE(fp_score_hits(h, n, &so, &c, &nc) == FP_OK);
    CHECK(nc == 0 || c[0].count < 40, "unscaled voting finds %u", nc ? c[0].count : 0);
    free(c);

    /* the same hits not marked invariant: no scaled search */
    for (size_t i = 0; i < n; i++) h[i].flags = 0;
    REQUIRE(fp_score_hits(h, n, NULL, &c, &nc) == FP_OK);
    for (size_t i = 0; i < nc; i++) CHECK(c[i].speed == 1.0, "scaled alignment from pair hits");
    free(c);

    /* frames >= 2^31 are refused, empty input is fine */
    h[0] = hit(1, 0x80000000u, 0, 0);
    for (int i = 1; i < 10; i++) h[i] = h[0];
    CHECK(fp_score_hits(h, 10, NULL, &c, &nc) == FP_ERR_INVALID);
    CHECK(fp_score_hits(NULL, 0, NULL, &c, &nc) == FP_OK && nc == 0 && c == NULL);
    free(h);
}

/* The anchors of prints: distinct (t, f), sorted, within the frame range. */
/*
 * The sieve on a catalog-sized set of hits: 300 000 chance hits over 5 000
 * tracks, an unscaled copy (track 6001, offset +1234) and a copy 15% faster
 * (track 6002: triplet hits and, on the same line, pair hits).  Every hit
 * of both copies is kept, nearly every chance hit dropped; the posting
 * form (count_refs, select_refs) decides as the hit form does; the kept
 * hits score exactly as all of them do; and a sieve that can keep nothing
 * says so.
 */
static void test_sieve(void)
{
    const size_t nchance = 300000;
    size_t n = 0, cap = nchance + 2000;
    fp_hit_t *h = malloc(cap * sizeof *h), *kept = malloc(cap * sizeof *h);
    fp_print_t *q = malloc(431 * sizeof *q);
    REQUIRE(h && kept && q);
    for (uint32_t t = 0; t <= 430; t++) q[t] = (fp_print_t){t % 2 ? FP_HASH_TRIPLET : 1, t, 0, 0};
    uint64_t rng = 777;
#define XS() (rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, (uint32_t)(rng >> 32))
    for (size_t i = 0; i < nchance; i++) {
        uint32_t qt = XS() % 431, track = XS() % 5000;
        h[n] = hit(track, XS() % 12000, qt, qt);
        h[n++].flags = qt % 2 ? FP_HIT_INVARIANT : 0;
    }
#undef XS
    size_t planted = n;
    for (uint32_t qt = 1; qt <= 430; qt += 6) { /* unscaled, +-1 frame */
        h[n] = hit(6001, qt + 1234 + (qt % 4 == 1), qt, qt);
        h[n++].flags = qt % 2 ? FP_HIT_INVARIANT : 0;
    }
    for (uint32_t qt = 1; qt <= 430; qt += 4) { /* 15% faster: triplets and pairs */
        h[n] = hit(6002, (uint32_t)lrint(1.15 * qt + 500), qt, qt);
        h[n++].flags = qt % 2 ? FP_HIT_INVARIANT : 0;
    }
    size_t nplanted = n - planted;
    fp_score_opts_t so;
    fp_score_opts_default(&so);
    so.min_count = 12;
    fp_sieve_t *sv = NULL, *sr = NULL;
    REQUIRE(fp_sieve_new(&so, q, 431, n, &sv) == FP_OK && fp_sieve_new(&so, q, 431, n, &sr) == FP_OK);
    fp_sieve_count(sv, h, n);
    for (size_t i = 0; i < n; i++) { /* the same hits as postings of their query print */
        fp_ref_t r = {h[i].track, h[i].ref_t};
        fp_sieve_count_refs(sr, &q[h[i].query_t], &r, 1);
    }
    memcpy(kept, h, n * sizeof *h);
    size_t nk = fp_sieve_filter(sv, kept, n), differ = 0, planted_kept = 0;
    for (size_t i = 0; i < nk; i++) planted_kept += kept[i].track > 6000;
    for (size_t i = 0, k = 0; i < n; i++) {
        fp_ref_t r = {h[i].track, h[i].ref_t};
        uint32_t idx;
        int by_ref = fp_sieve_select_refs(sr, &q[h[i].query_t], &r, 1, &idx) == 1;
        int by_hit = k < nk && !memcmp(&kept[k], &h[i], sizeof *h);
        k += by_hit;
        differ += by_ref != by_hit;
    }
    fprintf(stderr, "  sieve: %zu of %zu hits kept\n", nk, n);
    CHECK(planted_kept == nplanted, "%zu of %zu planted hits kept", planted_kept, nplanted);
    CHECK(nk < n / 20, "%zu of %zu hits kept", nk, n);
    CHECK(differ == 0, "the posting form decides otherwise for %zu hits", differ);
    fp_candidate_t *ca = NULL, *ck = NULL;
    size_t nca = 0, nck = 0;
    REQUIRE(fp_score_hits(h, n, &so, &ca, &nca) == FP_OK);
    REQUIRE(fp_score_hits(kept, nk, &so, &ck, &nck) == FP_OK);
    REQUIRE(nca >= 2, "%zu candidates", nca);
    CHECK(ca[0].track > 6000 && ca[1].track > 6000, "best: tracks %u, %u", ca[0].track, ca[1].track);
    for (size_t i = 0; i < 2; i++)
        if (ca[i].track == 6002) CHECK(fabs(ca[i].speed - 1.15) < 0.003, "speed %.4f", ca[i].speed);
        else CHECK(ca[i].offset == 1234 && ca[i].speed == 1.0, "offset %lld", (long long)ca[i].offset);
    int same = nca == nck;
    for (size_t i = 0; same && i < nca; i++)
        same = ca[i].track == ck[i].track && ca[i].offset == ck[i].offset &&
               ca[i].frames == ck[i].frames && ca[i].count == ck[i].count &&
               ca[i].query_start == ck[i].query_start && ca[i].query_end == ck[i].query_end &&
               ca[i].ref_start == ck[i].ref_start && ca[i].ref_end == ck[i].ref_end &&
               ca[i].speed == ck[i].speed;
    CHECK(same, "%zu candidates from all hits, %zu from the kept ones", nca, nck);
    /* three sieves counting a third of the hits each, merged, keep the same */
    fp_sieve_t *part[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        REQUIRE(fp_sieve_new(&so, q, 431, n, &part[k]) == FP_OK);
        fp_sieve_count(part[k], h + k * n / 3, (k + 1) * n / 3 - k * n / 3);
    }
    CHECK(fp_sieve_merge(part[0], part[1]) == FP_OK && fp_sieve_merge(part[0], part[2]) == FP_OK);
    fp_sieve_seal(part[0]);
    fp_hit_t *kept3 = malloc(n * sizeof *kept3);
    REQUIRE(kept3);
    memcpy(kept3, h, n * sizeof *h);
    size_t nk3 = fp_sieve_filter(part[0], kept3, n);
    CHECK(nk3 == nk && !memcmp(kept3, kept, nk * sizeof *kept), "merged: %zu kept, one sieve %zu",
          nk3, nk);
    /* a sieve made for another number of hits has other tables */
    fp_sieve_t *other = NULL;
    REQUIRE(fp_sieve_new(&so, q, 431, 64 * n, &other) == FP_OK);
    CHECK(fp_sieve_merge(part[0], other) == FP_ERR_INVALID);
    fp_sieve_free(other);
    for (int k = 0; k < 3; k++) fp_sieve_free(part[k]);
    /* a tenth of the chance hits alone: nothing to keep; with the copies,
     * something */
    fp_sieve_t *few = NULL;
    REQUIRE(fp_sieve_new(&so, q, 431, n, &few) == FP_OK);
    fp_sieve_count(few, h, nchance / 10);
    CHECK(fp_sieve_keeps_none(few) == 1, "chance hits alone: the sieve keeps some");
    fp_sieve_count(few, h + planted, nplanted);
    CHECK(fp_sieve_keeps_none(few) == 0, "with the copies: the sieve keeps none");
    fp_sieve_free(few);
    free(kept3);
    /* bad options are refused */
    fp_sieve_t *bad = NULL;
    so.min_speed = 2.0;
    CHECK(fp_sieve_new(&so, q, 431, n, &bad) == FP_ERR_INVALID && bad == NULL);
    free(ca);
    free(ck);
    fp_sieve_free(sv);
    fp_sieve_free(sr);
    free(h);
    free(kept);
    free(q);
}

static void test_prints_anchors(void)
{
    const fp_print_t p[] = {{1, 9, 300, 0}, {2, 5, 200, 0}, {3, 9, 300, 0}, {4, 9, 100, 0},
                            {5, 2, 50, 0},  {6, 12, 70, 0}, {7, 5, 200, 0}};
    uint32_t *a = NULL;
    size_t n = 0;
    REQUIRE(fp_prints_anchors(p, 7, 3, 11, &a, &n) == FP_OK, "fp_prints_anchors failed");
    const uint32_t want[] = {5, 200, 9, 100, 9, 300};
    CHECK(n == 3 && a && !memcmp(a, want, sizeof want), "got %zu anchors", n);
    free(a);
    CHECK(fp_prints_anchors(p, 7, 20, 30, &a, &n) == FP_OK && a == NULL && n == 0,
          "an empty range gives no array");
}

int main(void)
{
    alarm(600);
    RUN(test_config);
    RUN(test_hash_layout);
    RUN(test_score);
    RUN(test_sieve);
    RUN(test_prints_anchors);
    RUN(test_stream_blocks);
    RUN(test_determinism_threads);
    RUN(test_memory_equals_path);
    RUN(test_formats);
    RUN(test_quality_mp3_noise);
    return test_main_end();
}
