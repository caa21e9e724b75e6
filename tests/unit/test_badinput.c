/*
 * test_badinput.c -- inputs that are not audio, lie about themselves or
 * exceed the limits.
 *
 * Every input is generated here, in the test's scratch folder, and fed to the
 * four entry points that take untrusted bytes: fp_extract_path,
 * fp_extract_memory, and fp_decoder_open_path / fp_decoder_open_memory
 * followed by fp_decoder_read until the end.  Each must give one specific
 * error code, with a one-line message that names the input, and must neither
 * crash, nor allocate what a header claims, nor read forever: every test runs
 * under a 60 s alarm.
 *
 * The expected codes:
 *   FP_ERR_EMPTY   a zero-byte file; a WAV whose data chunk is empty
 *   FP_ERR_FORMAT  random bytes, prose, cut-off headers, impossible headers
 *                  (0 Hz, a rate that does not fit the format's decoder, more
 *                  channels than any decoder supports), samples that are not
 *                  numbers (NaN, infinities), an MP3 that changes its rate
 *   FP_ERR_LIMIT   well-formed headers beyond fp_limits_t: too many channels,
 *                  a rate above the maximum or below 1000 Hz, a length above
 *                  max_duration_s (checked at open, before any sample is read,
 *                  when the container states it; while reading otherwise)
 *   FP_ERR_IO      a path that does not exist
 * A file cut short after valid audio may decode partially: then it succeeds
 * with fewer prints than the whole file (or fails with FP_ERR_FORMAT).  So
 * does a WAV whose data chunk claims more bytes than the file holds: what is
 * there is decoded, sized by the file, never by the claim.  Valid files with
 * unusual but legitimate parts (a 2.5 MB cover picture in an MP3's ID3 tag)
 * must decode like the bare audio.
 *
 * MP3 and FLAC inputs are encoded from generated audio with lame and flac
 * (both installed by scripts/deps); those checks are skipped, saying so,
 * when the encoder is missing.
 *
 * The CLI part runs "$BUILD/earmark fingerprint BAD GOOD" (EARMARK_BIN
 * overrides the program) and is skipped, saying so, when it is not built.
 * TEST_VERBOSE=1 prints the code and message each entry point gave.
 */
#include "earmark_fp.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_TIMEOUT_S 60
#define READ_BLOCK 4096
/* No input here holds more than this many frames that a decoder may read
 * before it must have stopped (the limits tests stay far below it). */
#define READ_CAP ((uint64_t)60 * 384000)

/*
 * libsndfile 1.2.0 (Debian 12) leaks the vorbis_info it set up (5784 bytes)
 * each time it fails to open a malformed Ogg Vorbis stream: its
 * vorbis_read_header() returns early without vorbis_info_clear().  That is
 * outside this project, so LeakSanitizer is told to ignore exactly that
 * allocation; any leak of ours still shows (e.g. a missing sf_close() also
 * leaks libsndfile's own state, which is not suppressed).
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:vorbis_info_init\n";
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static const char *volatile current_test = "?";
static int verbose; /* TEST_VERBOSE=1: print what each entry point gave */

static void on_alarm(int sig)
{
    (void)sig;
    static const char a[] = "  FAIL: timeout after 60 s in ";
    const char *name = (const char *)current_test;
    ssize_t r = write(2, a, sizeof a - 1);
    r = write(2, name, strlen(name));
    r = write(2, "\n", 1);
    (void)r;
    _exit(1);
}

#define RUN_BOUNDED(fn)                                                     \
    do {                                                                    \
        current_test = #fn;                                                 \
        alarm(TEST_TIMEOUT_S);                                              \
        RUN(fn);                                                            \
        alarm(0);                                                           \
    } while (0)

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t rng_state;

static void rng_seed(uint32_t seed)
{
    rng_state = seed ? seed : 1;
}

static uint32_t rng_next(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static void fill_random(unsigned char *p, size_t n, uint32_t seed)
{
    rng_seed(seed);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(rng_next() >> 24);
}

static char *tmp_path(const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", test_tmpdir(), name);
    return p;
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    if (fclose(f) != 0 || w != n) return -1;
    return 0;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        if (r == 0) break;
        len += r;
    }
    fclose(f);
    *n = len;
    return buf;
}

/* A canonical 44-byte PCM WAV header. */
static size_t wav_header(unsigned char *h, unsigned channels, uint32_t rate, unsigned bits,
                         uint32_t data_size, uint32_t riff_size)
{
    unsigned block = channels * bits / 8;
    memcpy(h, "RIFF", 4);
    put32(h + 4, riff_size);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, channels);
    put32(h + 24, rate);
    put32(h + 28, (uint32_t)((uint64_t)rate * block));
    put16(h + 32, block);
    put16(h + 34, bits);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_size);
    return 44;
}

/* A header for a WAV file whose header claims `data_size` bytes of 16-bit
 * PCM and that really holds `actual` bytes of a quiet tone. */
static unsigned char *make_wav_claim(unsigned channels, uint32_t rate, uint32_t data_size,
                                     uint32_t riff_size, size_t actual, size_t *n)
{
    unsigned char *b = calloc(1, 44 + actual);
    if (!b) return NULL;
    wav_header(b, channels, rate, 16, data_size, riff_size);
    for (size_t i = 0; i + 1 < actual; i += 2) {
        int v = (int)(3000.0 * sin((double)(i / 2) * 0.05));
        put16(b + 44 + i, (unsigned)(v & 0xffff));
    }
    *n = 44 + actual;
    return b;
}

/*
 * `seconds` of a melody of sines: a two-tone note every 125 ms over a faint
 * deterministic hiss, 16-bit PCM, the channels at slightly different gains.
 * (A single steady sine has no onsets, so it would give few landmarks.)
 */
static unsigned char *make_melody_wav(double seconds, unsigned channels, uint32_t rate,
                                      size_t *n)
{
    static const double notes[] = {440.0, 523.3, 659.3, 587.3, 784.0, 698.5, 880.0,
                                   493.9, 1046.5, 392.0, 1318.5, 349.2};
    size_t frames = (size_t)(seconds * rate);
    size_t data = frames * channels * 2;
    unsigned char *b = malloc(44 + data);
    if (!b) return NULL;
    wav_header(b, channels, rate, 16, (uint32_t)data, (uint32_t)(36 + data));
    rng_seed(12345);
    size_t note_len = rate / 8;
    for (size_t i = 0; i < frames; i++) {
        size_t k = i / note_len;
        double f1 = notes[k % 12], f2 = notes[(k * 7 + 3) % 12] * 2.0;
        double pos = (double)(i % note_len) / (double)note_len;
        double env = pos < 0.05 ? pos / 0.05 : exp(-3.0 * (pos - 0.05));
        double t = (double)i / rate;
        double s = env * (0.45 * sin(2 * M_PI * f1 * t) + 0.25 * sin(2 * M_PI * f2 * t));
        s += ((double)(rng_next() >> 16) / 65536.0 - 0.5) * 0.004;
        for (unsigned c = 0; c < channels; c++) {
            int v = (int)lrint(s * (1.0 - 0.1 * c) * 32767.0);
            put16(b + 44 + (i * channels + c) * 2, (unsigned)(v & 0xffff));
        }
    }
    *n = 44 + data;
    return b;
}

/*
 * An RF64 (64-bit WAV) file of 16-bit PCM claiming `frames` frames, made
 * sparse: the header and a few KB are written, the rest is a hole, so the
 * claim is true as far as the file system says while using no disk.
 * Returns 0, or -1 when the file system cannot hold such a file.
 */
static int make_sparse_rf64(const char *path, unsigned channels, uint32_t rate,
                            uint64_t frames)
{
    unsigned char h[80];
    uint64_t data = frames * channels * 2;
    memset(h, 0, sizeof h);
    memcpy(h, "RF64", 4);
    put32(h + 4, 0xFFFFFFFFu);
    memcpy(h + 8, "WAVE", 4);
    memcpy(h + 12, "ds64", 4);
    put32(h + 16, 28);
    put64(h + 20, data + 72); /* RIFF size */
    put64(h + 28, data);      /* data size */
    put64(h + 36, frames);    /* sample count */
    put32(h + 44, 0);         /* table length */
    memcpy(h + 48, "fmt ", 4);
    put32(h + 52, 16);
    put16(h + 56, 1);
    put16(h + 58, channels);
    put32(h + 60, rate);
    put32(h + 64, rate * channels * 2);
    put16(h + 68, channels * 2);
    put16(h + 70, 16);
    memcpy(h + 72, "data", 4);
    put32(h + 76, 0xFFFFFFFFu);

    unsigned char tone[8192];
    for (size_t i = 0; i + 1 < sizeof tone; i += 2)
        put16(tone + i, (unsigned)((int)(2000.0 * sin((double)i * 0.03)) & 0xffff));

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, h, sizeof h) == (ssize_t)sizeof h &&
             write(fd, tone, sizeof tone) == (ssize_t)sizeof tone &&
             ftruncate(fd, (off_t)(sizeof h + data)) == 0;
    close(fd);
    if (!ok) unlink(path);
    return ok ? 0 : -1;
}

/* A read-only mapping of a whole file (for the multi-GB sparse files). */
static const void *map_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    *n = (size_t)st.st_size;
    return p;
}

/* ------------------------------------------------------------------------ */
/* The checks                                                               */
/* ------------------------------------------------------------------------ */

/* Outcome of feeding one input to one entry point. */
typedef struct outcome {
    fp_err_t rc;
    char err[1024];
    size_t prints;          /* fp_extract_*: prints on success */
    int64_t info_frames;    /* fp_extract_*: res.info.frames on success */
    uint64_t frames_read;   /* decoder loops: frames decoded before the end */
    int at_open;            /* decoder loops: the error came from the open */
} outcome_t;

static void check_message(const char *what, const char *label, const outcome_t *o,
                          const char *must_name)
{
    CHECK(o->err[0] != '\0', "%s (%s): %s with an empty message", label, what,
          fp_errname(o->rc));
    CHECK(strstr(o->err, must_name) != NULL, "%s (%s): message \"%s\" does not name \"%s\"",
          label, what, o->err, must_name);
    CHECK(strchr(o->err, '\n') == NULL, "%s (%s): message \"%s\" is not one line", label,
          what, o->err);
}

static void run_extract(const char *path, const void *data, size_t size, const char *name,
                        const fp_limits_t *lim, outcome_t *o)
{
    const char *who = path ? path : name ? name : "(unnamed)";
    fp_result_t res;
    memset(&res, 0xAB, sizeof res); /* must be overwritten either way */
    memset(o, 0, sizeof *o);
    if (path)
        o->rc = fp_extract_path(path, NULL, lim, &res, o->err, sizeof o->err);
    else
        o->rc = fp_extract_memory(data, size, name, NULL, lim, &res, o->err, sizeof o->err);
    if (o->rc == FP_OK) {
        o->prints = res.count;
        o->info_frames = res.info.frames;
        CHECK(res.count == 0 || res.prints != NULL, "%s: count %zu without prints",
              who, res.count);
        for (size_t i = 1; i < res.count; i++) {
            if (res.prints[i - 1].t > res.prints[i].t) {
                CHECK(0, "%s: prints not sorted by time at %zu", who, i);
                break;
            }
        }
    } else {
        CHECK(res.prints == NULL && res.count == 0,
              "%s: failed with %s but the result is not empty", who,
              fp_errname(o->rc));
    }
    fp_result_clear(&res);
}

static void run_decoder(const char *path, const void *data, size_t size, const char *name,
                        const fp_limits_t *lim, outcome_t *o)
{
    const char *who = path ? path : name ? name : "(unnamed)";
    fp_decoder_t *dec = NULL;
    memset(o, 0, sizeof *o);
    if (path)
        o->rc = fp_decoder_open_path(path, lim, &dec, o->err, sizeof o->err);
    else
        o->rc = fp_decoder_open_memory(data, size, name, lim, &dec, o->err, sizeof o->err);
    if (o->rc != FP_OK) {
        o->at_open = 1;
        CHECK(dec == NULL, "%s: open failed with %s but returned a decoder",
              who, fp_errname(o->rc));
        return;
    }
    if (dec == NULL) {
        CHECK(0, "%s: open succeeded without a decoder", who);
        o->rc = FP_ERR_INTERNAL;
        return;
    }
    const fp_audio_info_t *info = fp_decoder_info(dec);
    CHECK(info->channels >= 1 && info->channels <= (lim ? lim->max_channels : 16),
          "%s: opened with %d channels", who, info->channels);
    CHECK(info->sample_rate >= 1000, "%s: opened at %d Hz", who,
          info->sample_rate);
    size_t ch = info->channels > 0 ? (size_t)info->channels : 1;
    float *buf = malloc(READ_BLOCK * ch * sizeof *buf);
    if (!buf) {
        fp_decoder_free(dec);
        o->rc = FP_ERR_NOMEM;
        return;
    }
    for (;;) {
        size_t got = 99;
        o->rc = fp_decoder_read(dec, buf, READ_BLOCK, &got, o->err, sizeof o->err);
        if (o->rc != FP_OK) break;
        if (got == 0) break;
        CHECK(got <= READ_BLOCK, "%s: read returned %zu frames for a %d-frame buffer",
              who, got, READ_BLOCK);
        o->frames_read += got;
        if (o->frames_read > READ_CAP) {
            CHECK(0, "%s: decoder still reading after %llu frames", who,
                  (unsigned long long)o->frames_read);
            break;
        }
    }
    free(buf);
    fp_decoder_free(dec);
}

static const char *outcome_text(const outcome_t *o)
{
    static char s[1200];
    if (o->rc == FP_OK)
        snprintf(s, sizeof s, "ok (%zu prints, %llu frames)", o->prints,
                 (unsigned long long)o->frames_read);
    else
        snprintf(s, sizeof s, "%s: %s", fp_errname(o->rc), o->err);
    return s;
}

/* What one input must give. */
enum {
    MAY_DECODE_PART = 1, /* FP_OK with fewer prints is also right */
    OPEN_ONLY = 2        /* the decoder must refuse at open, not while reading */
};

/*
 * Feed one input to the four entry points and check that each gives `want`.
 * The input is `data` (written to the scratch folder as `name`), or, when
 * data is NULL, the existing file `path` (mapped for the memory calls).
 * At the decoder level, FP_ERR_EMPTY is also met by an open that succeeds
 * and reads no frame: emptiness is the extractor's verdict.
 * Outcomes of the path calls are returned through *ext_out (may be NULL).
 */
static void expect_all(const char *name, const void *data, size_t size, const char *path,
                       const fp_limits_t *lim, fp_err_t want, int flags, outcome_t *ext_out)
{
    const void *mem = data;
    size_t mem_size = size;
    int mapped = 0;
    if (data) {
        path = tmp_path(name);
        if (write_file(path, data, size) != 0) {
            CHECK(0, "cannot write %s: %s", path, strerror(errno));
            return;
        }
    } else {
        mem = map_file(path, &mem_size);
        if (!mem) {
            CHECK(0, "cannot map %s: %s", path, strerror(errno));
            return;
        }
        mapped = 1;
    }

    outcome_t o;
    for (int which = 0; which < 4; which++) {
        const char *label = which == 0 ? "fp_extract_path"
                            : which == 1 ? "fp_extract_memory"
                            : which == 2 ? "fp_decoder_open_path+read"
                                         : "fp_decoder_open_memory+read";
        const char *named = which % 2 == 0 ? path : name;
        if (which == 0) run_extract(path, NULL, 0, NULL, lim, &o);
        if (which == 1) run_extract(NULL, mem, mem_size, name, lim, &o);
        if (which == 2) run_decoder(path, NULL, 0, NULL, lim, &o);
        if (which == 3) run_decoder(NULL, mem, mem_size, name, lim, &o);
        if (verbose) printf("# %-28s %-28s %s\n", name, label, outcome_text(&o));
        if (which == 0 && ext_out) *ext_out = o;

        if (o.rc == FP_OK) {
            int fine = (flags & MAY_DECODE_PART) ||
                       (which >= 2 && want == FP_ERR_EMPTY && o.frames_read == 0);
            CHECK(fine, "%s (%s): accepted (%s), want %s", name, label, outcome_text(&o),
                  fp_errname(want));
            continue;
        }
        CHECK(o.rc == want, "%s (%s): got %s, want %s (message: %s)", name, label,
              fp_errname(o.rc), fp_errname(want), o.err);
        if (which >= 2 && (flags & OPEN_ONLY))
            CHECK(o.at_open, "%s (%s): refused only after reading %llu frames, want at open",
                  name, label, (unsigned long long)o.frames_read);
        check_message(label, name, &o, named);
    }
    if (mapped) munmap((void *)mem, mem_size);
}

/* ------------------------------------------------------------------------ */
/* Not audio                                                                */
/* ------------------------------------------------------------------------ */

static void test_zero_length(void)
{
    static const unsigned char nothing[1];
    expect_all("zero.wav", nothing, 0, NULL, NULL, FP_ERR_EMPTY, 0, NULL);
    expect_all("zero.mp3", nothing, 0, NULL, NULL, FP_ERR_EMPTY, 0, NULL);
}

static void test_random_bytes(void)
{
    size_t n = 64 * 1024;
    unsigned char *b = malloc(n);
    REQUIRE(b != NULL);
    fill_random(b, n, 0x5eed1234u);
    expect_all("random.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    expect_all("random.mp3", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    expect_all("random.ogg", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    /* The same bytes behind a plausible RIFF/WAVE start. */
    memcpy(b, "RIFF\xf8\xff\x00\x00WAVE", 12);
    expect_all("random-riff.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
}

static void test_text_as_mp3(void)
{
    static const char prose[] =
        "This is not a song.\n"
        "It is a few lines of plain prose, saved under a name that ends in .mp3,\n"
        "the way a mislabelled upload would arrive.\n"
        "No decoder should find any audio in it.\n";
    expect_all("notes.mp3", prose, sizeof prose - 1, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
}

static void test_missing_file(void)
{
    outcome_t o;
    const char *path = tmp_path("does-not-exist.wav");
    run_extract(path, NULL, 0, NULL, NULL, &o);
    if (verbose)
        printf("# %-28s %-28s %s\n", "does-not-exist.wav", "fp_extract_path",
               outcome_text(&o));
    CHECK(o.rc == FP_ERR_IO, "missing file: got %s, want io", fp_errname(o.rc));
    if (o.rc != FP_OK) check_message("fp_extract_path", "missing file", &o, path);
    run_decoder(path, NULL, 0, NULL, NULL, &o);
    CHECK(o.rc == FP_ERR_IO && o.at_open, "missing file (decoder): got %s, want io at open",
          fp_errname(o.rc));
    if (o.rc != FP_OK) check_message("fp_decoder_open_path", "missing file", &o, path);

    /* A buffer with no name still gets a message, and no crash. */
    static const char junk[] = "definitely not audio, definitely not audio";
    run_extract(NULL, junk, sizeof junk - 1, NULL, NULL, &o);
    CHECK(o.rc == FP_ERR_FORMAT && o.err[0], "unnamed junk: got %s \"%s\", want format",
          fp_errname(o.rc), o.err);
}

static void test_long_name(void)
{
    /* Messages name the input in full, however long its name: here a
     * 305-byte name in a folder of its own, a path of over 320 bytes. */
    char name[306];
    memset(name, 'd', 150);
    name[150] = '\0';
    REQUIRE(mkdir(tmp_path(name), 0755) == 0, "mkdir: %s", strerror(errno));
    name[150] = '/';
    memset(name + 151, 'n', 150);
    memcpy(name + 301, ".wav", 5);
    static const char junk[] = "RIFF....WAVEjunkjunkjunkjunkjunkjunkjunkjunk";
    expect_all(name, junk, sizeof junk - 1, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
}

/* ------------------------------------------------------------------------ */
/* Real files cut short or continued with garbage                           */
/* ------------------------------------------------------------------------ */

/* Byte offset of the first Ogg page with a non-zero granule position (the
 * first page of audio, after the three Vorbis header packets), or 0. */
static size_t first_audio_page(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i + 27 <= n; i++) {
        if (memcmp(b + i, "OggS", 4) != 0) continue;
        uint64_t g = 0;
        for (int k = 7; k >= 0; k--) g = g << 8 | b[i + 6 + k];
        if (g != 0 && g != UINT64_MAX) return i;
    }
    return 0;
}

/* A WAV cut short: its data chunk declares more than the file holds. */
static void test_truncated_wav(void)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/whole.wav", test_tmpdir());
    REQUIRE(test_sh("sox '%s' -b 16 '%s' trim 10 5 2>/dev/null", test_corpus_file(0), path) == 0);
    size_t n = 0;
    unsigned char *b = read_file(path, &n);
    REQUIRE(b && n > 100000);
    expect_all("whole.wav", b, n, NULL, NULL, FP_OK, MAY_DECODE_PART, NULL);
    outcome_t o;
    expect_all("cut-60pct.wav", b, n * 6 / 10, NULL, NULL, FP_ERR_FORMAT, 0, &o);
    CHECK(strstr(o.err, "truncated") != NULL, "the message says truncated: %s", o.err);
    /* a streaming WAV (data size 0xFFFFFFFF, unknown) is not truncated */
    size_t data_at = 12;
    while (data_at + 8 < n && memcmp(b + data_at, "data", 4))
        data_at += 8 + (b[data_at + 4] | (size_t)b[data_at + 5] << 8 | (size_t)b[data_at + 6] << 16 |
                        (size_t)b[data_at + 7] << 24);
    REQUIRE(data_at + 8 < n);
    memset(b + data_at + 4, 0xff, 4);
    expect_all("streaming-cut.wav", b, n * 6 / 10, NULL, NULL, FP_OK, MAY_DECODE_PART, NULL);
    free(b);
}

static void test_truncated_ogg(void)
{
    const char *orig = test_corpus_file(0);
    size_t n = 0;
    unsigned char *b = read_file(orig, &n);
    REQUIRE(b != NULL && n > 100000, "cannot read %s", orig);

    /* 1000 bytes: the Vorbis setup header is cut. */
    expect_all("cut-1000.ogg", b, 1000, NULL, NULL, FP_ERR_FORMAT, 0, NULL);

    /* 40 %: decodes in part, so fewer prints than the whole, or a clean
     * FP_ERR_FORMAT; never a limit error for the unknowable length. */
    outcome_t whole, part;
    run_extract(orig, NULL, 0, NULL, NULL, &whole);
    REQUIRE(whole.rc == FP_OK && whole.prints > 0, "%s does not fingerprint: %s", orig,
            outcome_text(&whole));
    expect_all("cut-40pct.ogg", b, n * 4 / 10, NULL, NULL, FP_ERR_FORMAT, MAY_DECODE_PART,
               &part);
    if (part.rc == FP_OK) {
        CHECK(part.prints > 0 && part.prints < whole.prints,
              "40%% of the file gave %zu prints, the whole %zu", part.prints, whole.prints);
        CHECK(part.info_frames == -1 ||
                  (part.info_frames >= 0 && part.info_frames <= whole.info_frames),
              "40%% of the file claims %lld frames (whole: %lld); unknown must be -1",
              (long long)part.info_frames, (long long)whole.info_frames);
    }
    free(b);
}

static void test_ogg_then_garbage(void)
{
    const char *orig = test_corpus_file(0);
    size_t n = 0;
    unsigned char *b = read_file(orig, &n);
    REQUIRE(b != NULL && n > 100000, "cannot read %s", orig);
    size_t len = 64 * 1024;

    /* The first 4 KiB (mid-way through the Vorbis headers), then noise. */
    unsigned char *g = malloc(len);
    REQUIRE(g != NULL);
    memcpy(g, b, 4096);
    fill_random(g + 4096, len - 4096, 0xbadc0deu);
    expect_all("head-4k-then-noise.ogg", g, len, NULL, NULL, FP_ERR_FORMAT, 0, NULL);

    /* Complete headers and the first audio page, then noise: the part
     * before the noise may decode. */
    size_t first = first_audio_page(b, n);
    REQUIRE(first > 0 && first < 32768, "no audio page in %s", orig);
    size_t second = first_audio_page(b + first + 1, n - first - 1) + first + 1;
    REQUIRE(second > first && second < len, "no second audio page in %s", orig);
    memcpy(g, b, second);
    fill_random(g + second, len - second, 0xbadc0deu);
    expect_all("headers-then-noise.ogg", g, len, NULL, NULL, FP_ERR_FORMAT, MAY_DECODE_PART,
               NULL);
    free(g);
    free(b);
}

static void test_flac_then_garbage(void)
{
    if (test_sh("command -v flac >/dev/null 2>&1") != 0) {
        printf("# SKIP FLAC checks: flac is not installed (scripts/deps installs it)\n");
        fprintf(stderr, "  skip: FLAC checks, no flac\n");
        return;
    }
    size_t n, nf;
    unsigned char *w = make_melody_wav(3.0, 2, 44100, &n);
    REQUIRE(w != NULL);
    const char *wav = tmp_path("flac-src.wav");
    char flac[512];
    snprintf(flac, sizeof flac, "%s/flac-src.flac", test_tmpdir());
    REQUIRE(write_file(wav, w, n) == 0);
    free(w);
    REQUIRE(test_sh("flac --silent -f -o '%s' '%s' 2>/dev/null", flac, wav) == 0, "flac failed");
    unsigned char *f = read_file(flac, &nf);
    REQUIRE(f != NULL && nf > 8192);
    unsigned char *g = malloc(64 * 1024);
    REQUIRE(g != NULL);

    /* The stream header alone (the first 42 bytes: fLaC and STREAMINFO),
     * then noise where the frames should be. */
    memcpy(g, f, 42);
    fill_random(g + 42, 64 * 1024 - 42, 0xf1acu);
    expect_all("header-then-noise.flac", g, 64 * 1024, NULL, NULL, FP_ERR_FORMAT,
               MAY_DECODE_PART, NULL);
    /* The first 4 KiB (headers and the first frames), then noise. */
    memcpy(g, f, 4096);
    fill_random(g + 4096, 64 * 1024 - 4096, 0xf1acu);
    expect_all("head-4k-then-noise.flac", g, 64 * 1024, NULL, NULL, FP_ERR_FORMAT,
               MAY_DECODE_PART, NULL);
    /* Cut inside the STREAMINFO block. */
    expect_all("cut-30.flac", f, 30, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(g);
    free(f);
}

/* ------------------------------------------------------------------------ */
/* MP3                                                                      */
/* ------------------------------------------------------------------------ */

static void syncsafe32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)((v >> 21) & 0x7f);
    p[1] = (unsigned char)((v >> 14) & 0x7f);
    p[2] = (unsigned char)((v >> 7) & 0x7f);
    p[3] = (unsigned char)(v & 0x7f);
}

/* An ID3v2.3 tag holding one APIC (cover picture) frame of `pic` bytes.
 * With `claim` != 0, the tag header claims that size instead. */
static unsigned char *make_id3(size_t pic, uint32_t claim, size_t *n)
{
    static const char meta[] = "\0image/jpeg\0\3\0"; /* encoding, MIME, type, no text */
    size_t body = sizeof meta - 1 + pic, frame = 10 + body;
    unsigned char *b = malloc(10 + frame);
    if (!b) return NULL;
    memcpy(b, "ID3\3\0\0", 6);
    syncsafe32(b + 6, claim ? claim : (uint32_t)frame);
    memcpy(b + 10, "APIC", 4);
    b[14] = (unsigned char)(body >> 24);
    b[15] = (unsigned char)(body >> 16);
    b[16] = (unsigned char)(body >> 8);
    b[17] = (unsigned char)body;
    b[18] = b[19] = 0;
    memcpy(b + 20, meta, sizeof meta - 1);
    fill_random(b + 20 + sizeof meta - 1, pic, 0xc0ffeeu);
    memcpy(b + 20 + sizeof meta - 1, "\xff\xd8\xff\xe0", pic >= 4 ? 4 : 0);
    *n = 10 + frame;
    return b;
}

static unsigned char *concat(const void *a, size_t na, const void *b, size_t nb, size_t *n)
{
    unsigned char *c = malloc(na + nb + 1);
    if (!c) return NULL;
    memcpy(c, a, na);
    memcpy(c + na, b, nb);
    *n = na + nb;
    return c;
}

/* Encode a generated melody to MP3 with lame; NULL (and a note) without it. */
static unsigned char *make_mp3(double seconds, uint32_t rate, const char *tag, size_t *n)
{
    char wav[512], mp3[512];
    size_t nw;
    snprintf(wav, sizeof wav, "%s/%s.wav", test_tmpdir(), tag);
    snprintf(mp3, sizeof mp3, "%s/%s.mp3", test_tmpdir(), tag);
    unsigned char *w = make_melody_wav(seconds, 2, rate, &nw);
    if (!w) return NULL;
    int ok = write_file(wav, w, nw) == 0;
    free(w);
    if (!ok || test_sh("lame --quiet -b 128 '%s' '%s' 2>/dev/null", wav, mp3) != 0) return NULL;
    return read_file(mp3, n);
}

static void test_mp3(void)
{
    if (test_sh("command -v lame >/dev/null 2>&1") != 0) {
        printf("# SKIP MP3 checks: lame is not installed (scripts/deps installs it)\n");
        fprintf(stderr, "  skip: MP3 checks, no lame\n");
        return;
    }
    size_t n, n22, nt, nc;
    unsigned char *mp3 = make_mp3(3.0, 44100, "melody44", &n);
    unsigned char *mp3_22 = make_mp3(2.0, 22050, "melody22", &n22);
    REQUIRE(mp3 != NULL && mp3_22 != NULL && n > 20000, "lame failed");
    outcome_t whole, o;

    /* The valid file itself. */
    expect_all("melody.mp3", mp3, n, NULL, NULL, FP_OK, MAY_DECODE_PART, &whole);
    REQUIRE(whole.rc == FP_OK && whole.prints > 0, "melody.mp3: %s", outcome_text(&whole));

    /* A valid file with a large cover picture in its ID3v2 tag (2.5 MB:
     * ordinary for album art) decodes exactly like the bare file. */
    unsigned char *tag = make_id3(2500000, 0, &nt);
    REQUIRE(tag != NULL);
    unsigned char *c = concat(tag, nt, mp3, n, &nc);
    REQUIRE(c != NULL);
    expect_all("big-cover-art.mp3", c, nc, NULL, NULL, FP_OK, MAY_DECODE_PART, &o);
    CHECK(o.rc != FP_OK || o.prints == whole.prints,
          "big-cover-art.mp3: %zu prints, the bare file %zu", o.prints, whole.prints);
    free(c);
    free(tag);

    /* An ID3v2 tag claiming 200 MB in a small file: nothing after it. */
    tag = make_id3(1000, 200u << 20, &nt);
    REQUIRE(tag != NULL);
    c = concat(tag, nt, mp3, 4000, &nc);
    REQUIRE(c != NULL);
    expect_all("id3-claims-200mb.mp3", c, nc, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(c);
    free(tag);

    /* Cut short: in part, or a clean format error. */
    expect_all("cut-1000.mp3", mp3, 1000, NULL, NULL, FP_ERR_FORMAT, MAY_DECODE_PART, NULL);
    expect_all("cut-40pct.mp3", mp3, n * 4 / 10, NULL, NULL, FP_ERR_FORMAT, MAY_DECODE_PART, &o);
    CHECK(o.rc != FP_OK || o.prints < whole.prints, "cut-40pct.mp3: %zu prints, whole %zu",
          o.prints, whole.prints);

    /* Valid frames, then noise. */
    unsigned char *noise = malloc(60000);
    REQUIRE(noise != NULL);
    fill_random(noise, 60000, 0xfeedu);
    c = concat(mp3, 3000, noise, 60000, &nc);
    REQUIRE(c != NULL);
    expect_all("frames-then-noise.mp3", c, nc, NULL, NULL, FP_ERR_FORMAT, MAY_DECODE_PART, NULL);
    free(c);
    free(noise);

    /* 44.1 kHz then 22.05 kHz in one stream: no single rate to analyse. */
    c = concat(mp3, n, mp3_22, n22, &nc);
    REQUIRE(c != NULL);
    expect_all("two-rates.mp3", c, nc, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(c);

    /* The duration limit holds for a stream that does not state its length. */
    fp_limits_t lim;
    fp_limits_default(&lim);
    lim.max_duration_s = 1;
    expect_all("melody.mp3", mp3, n, NULL, &lim, FP_ERR_LIMIT, 0, NULL);
    free(mp3);
    free(mp3_22);
}

/* ------------------------------------------------------------------------ */
/* WAV headers that lie or exceed the limits                                */
/* ------------------------------------------------------------------------ */

static void test_wav_length_claims(void)
{
    size_t n;
    unsigned char *b;

    /* A plain WAV claiming 2^31 mono frames (13.5 h) with 4 KiB of data.  The
     * data chunk runs past the end of the file: a truncated file, refused at
     * open with a message that says so, and nothing sized by the claim. */
    b = make_wav_claim(1, 44100, 0xFFFFFFF0u, 0xFFFFFFF8u, 4096, &n);
    REQUIRE(b != NULL);
    outcome_t o;
    expect_all("claims-2e31-frames.wav", b, n, NULL, NULL, FP_ERR_FORMAT, OPEN_ONLY, &o);
    CHECK(strstr(o.err, "truncated") != NULL, "claims-2e31-frames.wav: %s", o.err);
    free(b);

    /* The same with 16 channels at 384 kHz. */
    b = make_wav_claim(16, 384000, 0xFFFFFFE0u, 0xFFFFFFF0u, 4096, &n);
    REQUIRE(b != NULL);
    expect_all("claims-16ch-384k.wav", b, n, NULL, NULL, FP_ERR_FORMAT, OPEN_ONLY, NULL);
    free(b);

    /* The claim made true: a sparse 8 GiB RF64 of 2^31 stereo frames at
     * 44.1 kHz, 13.5 h, over the default 4 h: refused at open. */
    const char *path = tmp_path("rf64-2e31-frames.wav");
    if (make_sparse_rf64(path, 2, 44100, (uint64_t)1 << 31) != 0) {
        printf("# skip rf64-2e31-frames.wav: the scratch file system cannot hold a sparse "
               "8 GiB file (%s)\n", strerror(errno));
    } else {
        expect_all("rf64-2e31-frames.wav", NULL, 0, path, NULL, FP_ERR_LIMIT, OPEN_ONLY,
                   NULL);
        unlink(path);
    }
}

static void test_wav_16ch_384k_2e31_frames(void)
{
    /* 2^31 frames of 16 channels at 384 kHz: 5592 s, 64 GiB (sparse).  With a
     * 60 s duration limit it must be refused, at open or once 60 s have been
     * read, never by reading on, and never by allocating per the claim. */
    const char *path = tmp_path("rf64-16ch-384k.wav");
    if (make_sparse_rf64(path, 16, 384000, (uint64_t)1 << 31) != 0) {
        printf("# skip rf64-16ch-384k.wav: the scratch file system cannot hold a sparse "
               "64 GiB file (%s)\n", strerror(errno));
        return;
    }
    fp_limits_t lim;
    fp_limits_default(&lim);
    lim.max_duration_s = 60;
    expect_all("rf64-16ch-384k.wav", NULL, 0, path, &lim, FP_ERR_LIMIT, 0, NULL);

    /* Within the default limits (16 channels, 384 kHz, 93 min < 4 h) it
     * opens and reads block by block. */
    fp_decoder_t *dec = NULL;
    char err[512] = "";
    fp_err_t rc = fp_decoder_open_path(path, NULL, &dec, err, sizeof err);
    CHECK(rc == FP_OK, "rf64-16ch-384k.wav with default limits: %s %s", fp_errname(rc), err);
    if (rc == FP_OK) {
        const fp_audio_info_t *info = fp_decoder_info(dec);
        CHECK(info->channels == 16 && info->sample_rate == 384000 &&
                  info->frames == (int64_t)1 << 31,
              "rf64-16ch-384k.wav: info %d ch, %d Hz, %lld frames", info->channels,
              info->sample_rate, (long long)info->frames);
        float *buf = malloc(READ_BLOCK * 16 * sizeof *buf);
        REQUIRE(buf != NULL);
        for (int i = 0; i < 8; i++) {
            size_t got = 0;
            rc = fp_decoder_read(dec, buf, READ_BLOCK, &got, err, sizeof err);
            CHECK(rc == FP_OK && got == READ_BLOCK, "rf64-16ch-384k.wav: read %zu: %s %s",
                  got, fp_errname(rc), err);
            if (rc != FP_OK) break;
        }
        free(buf);
        fp_decoder_free(dec);
    }
    unlink(path);
}

static void test_wav_channels(void)
{
    size_t n;
    unsigned char *b;
    /* 10,000 channels: more than any decoder supports -- a corrupt header. */
    b = make_wav_claim(10000, 44100, 20000 * 4, 36 + 20000 * 4, 20000 * 4, &n);
    REQUIRE(b != NULL);
    expect_all("10000-channels.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
    /* 64 channels: a valid file over the 16-channel default limit. */
    b = make_wav_claim(64, 44100, 128 * 100, 36 + 128 * 100, 128 * 100, &n);
    REQUIRE(b != NULL);
    expect_all("64-channels.wav", b, n, NULL, NULL, FP_ERR_LIMIT, OPEN_ONLY, NULL);
    free(b);
}

static void test_wav_rates(void)
{
    size_t n;
    unsigned char *b;
    /* 0 Hz describes no audio at all; 4 GHz does not fit any decoder's rate:
     * both are corrupt headers. */
    b = make_wav_claim(2, 0, 4000, 4036, 4000, &n);
    REQUIRE(b != NULL);
    expect_all("rate-0.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
    b = make_wav_claim(2, 4000000000u, 4000, 4036, 4000, &n);
    REQUIRE(b != NULL);
    expect_all("rate-4ghz.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
    /* Valid headers outside the limits: above max_sample_rate, and below the
     * 1000 Hz that fp_limits_t always refuses. */
    b = make_wav_claim(2, 1000000, 4000, 4036, 4000, &n);
    REQUIRE(b != NULL);
    expect_all("rate-1mhz.wav", b, n, NULL, NULL, FP_ERR_LIMIT, OPEN_ONLY, NULL);
    free(b);
    b = make_wav_claim(2, 500, 4000, 4036, 4000, &n);
    REQUIRE(b != NULL);
    expect_all("rate-500hz.wav", b, n, NULL, NULL, FP_ERR_LIMIT, OPEN_ONLY, NULL);
    free(b);
}

/* 1 s of a mono 32-bit float WAV: a tone, with non-finite samples from
 * frame `from` on (every `step`-th frame) set to `bad`. */
static unsigned char *make_float_wav(float bad, size_t from, size_t step, size_t *n)
{
    size_t frames = 44100, data = frames * 4;
    unsigned char *b = malloc(44 + data);
    if (!b) return NULL;
    wav_header(b, 1, 44100, 32, (uint32_t)data, (uint32_t)(36 + data));
    put16(b + 20, 3); /* WAVE_FORMAT_IEEE_FLOAT */
    for (size_t i = 0; i < frames; i++) {
        float v = (float)(0.5 * sin((double)i * 0.05));
        if (i >= from && (i - from) % step == 0) v = bad;
        uint32_t u;
        memcpy(&u, &v, 4);
        put32(b + 44 + i * 4, u);
    }
    *n = 44 + data;
    return b;
}

static void test_float_nonfinite(void)
{
    /* Samples that are not numbers are corrupt data, not audio: the
     * spectrum would be meaningless from there on. */
    size_t n;
    unsigned char *b = make_float_wav(NAN, 30000, 1000000, &n);
    REQUIRE(b != NULL);
    expect_all("float-one-nan.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
    b = make_float_wav(INFINITY, 20000, 1, &n);
    REQUIRE(b != NULL);
    expect_all("float-inf-tail.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
    b = make_float_wav(-INFINITY, 0, 7, &n);
    REQUIRE(b != NULL);
    expect_all("float-sparse-neg-inf.wav", b, n, NULL, NULL, FP_ERR_FORMAT, 0, NULL);
    free(b);
}

static void test_wav_no_data(void)
{
    size_t n;
    unsigned char *b = make_wav_claim(2, 44100, 0, 36, 0, &n);
    REQUIRE(b != NULL);
    expect_all("no-data.wav", b, n, NULL, NULL, FP_ERR_EMPTY, 0, NULL);
    free(b);
}

/* ------------------------------------------------------------------------ */
/* Limits on a valid file                                                   */
/* ------------------------------------------------------------------------ */

static void test_limits(void)
{
    size_t n;
    unsigned char *b = make_melody_wav(3.0, 2, 44100, &n);
    REQUIRE(b != NULL);
    const char *path = tmp_path("melody-3s.wav");
    REQUIRE(write_file(path, b, n) == 0);
    fp_limits_t lim;

    fp_limits_default(&lim);
    lim.max_duration_s = 1;
    expect_all("melody-3s.wav", b, n, NULL, &lim, FP_ERR_LIMIT, OPEN_ONLY, NULL);

    fp_limits_default(&lim);
    lim.max_channels = 1;
    expect_all("melody-3s.wav", b, n, NULL, &lim, FP_ERR_LIMIT, OPEN_ONLY, NULL);

    fp_limits_default(&lim);
    lim.max_sample_rate = 22050;
    expect_all("melody-3s.wav", b, n, NULL, &lim, FP_ERR_LIMIT, OPEN_ONLY, NULL);

    /* Default limits: prints, the same from a path and from memory. */
    fp_result_t rp, rm;
    char err[512] = "";
    fp_err_t rc = fp_extract_path(path, NULL, NULL, &rp, err, sizeof err);
    REQUIRE(rc == FP_OK, "melody-3s.wav: %s %s", fp_errname(rc), err);
    if (verbose)
        printf("# %-28s %-28s ok (%zu prints)\n", "melody-3s.wav", "fp_extract_path",
               rp.count);
    CHECK(rp.count > 0, "melody-3s.wav: no prints");
    CHECK(rp.info.channels == 2 && rp.info.sample_rate == 44100 &&
              rp.info.frames == 3 * 44100,
          "melody-3s.wav: info %d ch %d Hz %lld frames", rp.info.channels,
          rp.info.sample_rate, (long long)rp.info.frames);
    rc = fp_extract_memory(b, n, "melody-3s.wav", NULL, NULL, &rm, err, sizeof err);
    CHECK(rc == FP_OK, "melody-3s.wav from memory: %s %s", fp_errname(rc), err);
    if (rc == FP_OK) {
        CHECK(rm.count == rp.count &&
                  (rp.count == 0 || memcmp(rm.prints, rp.prints, rp.count * sizeof *rp.prints) == 0),
              "melody-3s.wav: %zu prints from memory, %zu from the path", rm.count, rp.count);
        fp_result_clear(&rm);
    }

    /* A duration limit so large that it is none at all (an easy way to say
     * "unlimited") must not overflow anything. */
    static const double unlimited[] = {1e300, INFINITY};
    for (int i = 0; i < 2; i++) {
        fp_limits_default(&lim);
        lim.max_duration_s = unlimited[i];
        rc = fp_extract_path(path, NULL, &lim, &rm, err, sizeof err);
        CHECK(rc == FP_OK && rm.count == rp.count,
              "melody-3s.wav, max_duration_s = %g: %s %.200s", unlimited[i], fp_errname(rc),
              err);
        fp_result_clear(&rm);
    }
    fp_result_clear(&rp);
    free(b);
}

/* ------------------------------------------------------------------------ */
/* The CLI                                                                  */
/* ------------------------------------------------------------------------ */

static const char *earmark_bin(void)
{
    static char bin[512];
    const char *e = getenv("EARMARK_BIN");
    if (e && *e) return e;
    const char *build = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/earmark", build && *build ? build : "build");
    return bin;
}

static char *slurp_text(const char *path)
{
    size_t n = 0;
    unsigned char *b = read_file(path, &n);
    if (!b) return NULL;
    char *s = realloc(b, n + 1);
    if (!s) {
        free(b);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

static void test_cli(void)
{
    const char *bin = earmark_bin();
    if (access(bin, X_OK) != 0) {
        printf("# SKIP CLI checks: %s is not built (set BUILD or EARMARK_BIN)\n", bin);
        fprintf(stderr, "  skip: CLI checks, %s is not built\n", bin);
        return;
    }
    static const char prose[] = "Not audio at all.\nJust words.\n";
    char bad[512], missing[512], good[512], out[512], errf[512];
    snprintf(bad, sizeof bad, "%s", tmp_path("cli-notes.mp3"));
    snprintf(missing, sizeof missing, "%s", tmp_path("cli-missing.wav"));
    snprintf(good, sizeof good, "%s", tmp_path("cli-good.wav"));
    snprintf(out, sizeof out, "%s", tmp_path("cli.out"));
    snprintf(errf, sizeof errf, "%s", tmp_path("cli.err"));
    REQUIRE(write_file(bad, prose, sizeof prose - 1) == 0);
    size_t n;
    unsigned char *b = make_melody_wav(3.0, 2, 44100, &n);
    REQUIRE(b != NULL && write_file(good, b, n) == 0);
    free(b);

    for (int json = 0; json < 2; json++) {
        const char *opt = json ? " --json" : "";
        int rc = test_sh("'%s' fingerprint '%s' '%s'%s >'%s' 2>'%s'", bin, bad, good, opt, out,
                         errf);
        char *so = slurp_text(out), *se = slurp_text(errf);
        CHECK(rc == 1, "earmark fingerprint BAD GOOD%s exited %d, want 1", opt, rc);
        CHECK(se && strstr(se, bad), "earmark fingerprint BAD GOOD%s: stderr does not name "
              "BAD:\n%s", opt, se ? se : "(none)");
        CHECK(so && strstr(so, "cli-good.wav"),
              "earmark fingerprint BAD GOOD%s: stdout does not show GOOD:\n%.2000s", opt,
              so ? so : "(none)");
        free(so);
        free(se);
    }

    int rc = test_sh("'%s' fingerprint '%s' '%s' '%s' >'%s' 2>'%s'", bin, good, missing, bad,
                     out, errf);
    char *se = slurp_text(errf);
    CHECK(rc == 1, "earmark fingerprint GOOD MISSING BAD exited %d, want 1", rc);
    CHECK(se && strstr(se, missing) && strstr(se, bad),
          "earmark fingerprint GOOD MISSING BAD: stderr does not name both:\n%s",
          se ? se : "(none)");
    free(se);

    rc = test_sh("'%s' fingerprint '%s' >'%s' 2>'%s'", bin, good, out, errf);
    CHECK(rc == 0, "earmark fingerprint GOOD exited %d, want 0", rc);
    rc = test_sh("'%s' fingerprint >'%s' 2>'%s'", bin, out, errf);
    CHECK(rc == 2, "earmark fingerprint (no file) exited %d, want 2", rc);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    verbose = getenv("TEST_VERBOSE") && atoi(getenv("TEST_VERBOSE")) > 0;

    RUN_BOUNDED(test_zero_length);
    RUN_BOUNDED(test_random_bytes);
    RUN_BOUNDED(test_text_as_mp3);
    RUN_BOUNDED(test_missing_file);
    RUN_BOUNDED(test_long_name);
    RUN_BOUNDED(test_truncated_wav);
    RUN_BOUNDED(test_truncated_ogg);
    RUN_BOUNDED(test_ogg_then_garbage);
    RUN_BOUNDED(test_flac_then_garbage);
    RUN_BOUNDED(test_mp3);
    RUN_BOUNDED(test_wav_length_claims);
    RUN_BOUNDED(test_wav_16ch_384k_2e31_frames);
    RUN_BOUNDED(test_wav_channels);
    RUN_BOUNDED(test_wav_rates);
    RUN_BOUNDED(test_wav_no_data);
    RUN_BOUNDED(test_float_nonfinite);
    RUN_BOUNDED(test_limits);
    RUN_BOUNDED(test_cli);
    return test_main_end();
}
