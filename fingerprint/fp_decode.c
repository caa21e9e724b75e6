/*
 * fp_decode.c -- audio decoding with libsndfile, from a path or from memory.
 *
 * The decoder hands out interleaved float blocks; nothing is ever sized from
 * what a header claims.  Channels, rate and claimed length are checked
 * against the limits at open time, and the decoded length is counted again
 * while reading, so a header that lies cannot make us allocate or loop more
 * than the limits allow.
 *
 * The container is recognised from its first bytes before any decoder sees
 * it.  WAV, AIFF, AU, CAF, W64, FLAC and Ogg (Vorbis, Opus) go to
 * libsndfile; MPEG audio (MP3, with or without an ID3v2 tag) goes straight
 * to libmpg123 in feed mode, quiet, because libsndfile's MP3 path lets
 * libmpg123 print on stderr and tries MPEG on anything it cannot place,
 * which turns random bytes into resync noise and misleading messages.
 * Anything else is refused as "not a recognised audio format".
 *
 * libsndfile keeps the reason for a failed open in a process-wide variable;
 * under heavy concurrency the text of such an error may describe another
 * thread's failure.  The error code is always right; libmpg123's messages are
 * per handle.
 */
#include "fp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <mpg123.h>
#include <sndfile.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MPEG_CHUNK 16384          /* bytes fed to libmpg123 at a time */
#define MPEG_MAX_PROBE (1 << 20)  /* bytes after the ID3v2 tag to find a frame in */

struct fp_decoder {
    SNDFILE *sf;             /* libsndfile input, or ... */
    mpg123_handle *mh;       /* ... libmpg123 input */
    int fd;                  /* path input for libmpg123; -1 otherwise */
    unsigned char *chunk;    /* MPEG_CHUNK bytes of feed buffer (path input) */
    int eof;                 /* all input fed to libmpg123 */
    size_t tag_len;          /* bytes of ID3v2 tag before the first frame */
    fp_audio_info_t info;
    fp_limits_t lim;
    int64_t frames_read;
    int64_t max_frames;
    char name[4096];         /* for messages: a path, in full */
    /* memory input (virtual I/O) */
    const unsigned char *data;
    size_t size;
    size_t pos;
};

/* ---- virtual I/O over a borrowed buffer ---- */

static sf_count_t vio_len(void *user)
{
    return (sf_count_t)((fp_decoder_t *)user)->size;
}

static sf_count_t vio_seek(sf_count_t off, int whence, void *user)
{
    fp_decoder_t *d = user;
    sf_count_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (sf_count_t)d->pos; break;
    case SEEK_END: base = (sf_count_t)d->size; break;
    default: return -1;
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return -1;
    sf_count_t np = base + off;
    if (np > (sf_count_t)d->size) np = (sf_count_t)d->size;
    d->pos = (size_t)np;
    return np;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *user)
{
    fp_decoder_t *d = user;
    if (count <= 0) return 0;
    size_t left = d->size - d->pos;
    size_t n = (size_t)count < left ? (size_t)count : left;
    memcpy(ptr, d->data + d->pos, n);
    d->pos += n;
    return (sf_count_t)n;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *user)
{
    (void)ptr, (void)count, (void)user;
    return 0;
}

static sf_count_t vio_tell(void *user)
{
    return (sf_count_t)((fp_decoder_t *)user)->pos;
}

/* ---- recognising the container ---- */

typedef enum { KIND_UNKNOWN, KIND_SNDFILE, KIND_MPEG } kind_t;

/* Bytes of a valid MPEG-1/2/2.5 layer I-III frame starting at h, or 0. */
static size_t mpeg_frame_len(const unsigned char *h)
{
    static const int br[2][3][16] = {
        {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
         {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
         {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}},
        {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
         {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
         {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}}};
    static const int sr[3] = {44100, 48000, 32000};
    if (h[0] != 0xff || (h[1] & 0xe0) != 0xe0) return 0;
    int ver = (h[1] >> 3) & 3, layer = (h[1] >> 1) & 3;
    int bri = h[2] >> 4, sri = (h[2] >> 2) & 3, pad = (h[2] >> 1) & 1;
    if (ver == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3) return 0;
    int lsf = ver != 3, l = 3 - layer; /* l: 0 = layer I */
    int rate = sr[sri] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    long bitrate = br[lsf][l][bri] * 1000L;
    if (l == 0) return (size_t)((12 * bitrate / rate + pad) * 4);
    if (l == 2 && lsf) return (size_t)(72 * bitrate / rate + pad);
    return (size_t)(144 * bitrate / rate + pad);
}

/*
 * Which decoder gets the input whose first bytes are head[0..n).  MPEG needs
 * two consecutive valid frame headers after an optional ID3v2 tag, so text
 * or random bytes are not mistaken for it.  `peek` reads more at an offset
 * when the tag is longer than the head.
 */
typedef size_t (*peek_fn)(void *ctx, size_t off, unsigned char *buf, size_t n);

static kind_t sniff(const unsigned char *head, size_t n, peek_fn peek, void *ctx,
                    size_t *tag_len)
{
    if (n >= 4) {
        static const char *magic[] = {"RIFF", "RIFX", "RF64", "FORM", ".snd", "caff",
                                      "fLaC", "OggS", "riff", "wvpk"};
        for (size_t i = 0; i < sizeof magic / sizeof magic[0]; i++)
            if (!memcmp(head, magic[i], 4)) return KIND_SNDFILE;
    }
    size_t off = 0;
    if (n >= 10 && !memcmp(head, "ID3", 3)) {
        off = 10 + ((size_t)(head[6] & 0x7f) << 21 | (size_t)(head[7] & 0x7f) << 14 |
                    (size_t)(head[8] & 0x7f) << 7 | (size_t)(head[9] & 0x7f));
        if (head[5] & 0x10) off += 10; /* footer */
    }
    *tag_len = off;
    unsigned char h[4];
    for (int frames = 0; frames < 2; frames++) {
        if (peek(ctx, off, h, 4) != 4) return KIND_UNKNOWN;
        size_t len = mpeg_frame_len(h);
        if (len < 4) return KIND_UNKNOWN;
        off += len;
    }
    return KIND_MPEG;
}

static size_t peek_memory(void *ctx, size_t off, unsigned char *buf, size_t n)
{
    fp_decoder_t *d = ctx;
    if (off >= d->size) return 0;
    if (n > d->size - off) n = d->size - off;
    memcpy(buf, d->data + off, n);
    return n;
}

static size_t peek_fd(void *ctx, size_t off, unsigned char *buf, size_t n)
{
    ssize_t r = pread(*(int *)ctx, buf, n, (off_t)off);
    return r < 0 ? 0 : (size_t)r;
}

/* ---- MPEG audio through libmpg123 (feed mode) ---- */

/* Give libmpg123 the next piece of input; sets d->eof at the end. */
static int mpeg_feed(fp_decoder_t *d)
{
    const unsigned char *p;
    size_t n;
    if (d->fd >= 0) {
        ssize_t r;
        do r = read(d->fd, d->chunk, MPEG_CHUNK);
        while (r < 0 && errno == EINTR);
        if (r < 0) return -1;
        p = d->chunk;
        n = (size_t)r;
    } else {
        p = d->data + d->pos;
        n = d->size - d->pos < MPEG_CHUNK ? d->size - d->pos : MPEG_CHUNK;
        d->pos += n;
    }
    if (n == 0) {
        d->eof = 1;
        return 0;
    }
    return mpg123_feed(d->mh, p, n) == MPG123_OK ? 0 : -1;
}

/* Set up libmpg123 and feed it until the first frame's format is known. */
static fp_err_t mpeg_open(fp_decoder_t *d, SF_INFO *si, char *err, size_t errlen)
{
    int e = MPG123_OK;
    d->mh = mpg123_new(NULL, &e);
    if (!d->mh)
        return fpi_error(FP_ERR_NOMEM, err, errlen, "cannot decode \"%s\": %s", d->name,
                         mpg123_plain_strerror(e));
    mpg123_param(d->mh, MPG123_ADD_FLAGS, MPG123_QUIET | MPG123_GAPLESS | MPG123_FORCE_FLOAT, 0.0);
    mpg123_format_none(d->mh);
    static const long rates[] = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
        mpg123_format(d->mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_FLOAT_32);
    if (mpg123_open_feed(d->mh) != MPG123_OK)
        return fpi_error(FP_ERR_INTERNAL, err, errlen, "cannot decode \"%s\": %s", d->name,
                         mpg123_strerror(d->mh));
    size_t fed = 0;
    for (;;) {
        size_t done = 0;
        unsigned char dummy[4];
        int r = mpg123_read(d->mh, dummy, 0, &done);
        if (r == MPG123_NEW_FORMAT) break;
        if (r == MPG123_NEED_MORE || r == MPG123_OK) {
            if (d->eof || fed > d->tag_len + MPEG_MAX_PROBE)
                return fpi_error(FP_ERR_FORMAT, err, errlen,
                                 "cannot decode \"%s\": no MPEG audio frame found", d->name);
            if (mpeg_feed(d) != 0)
                return fpi_error(FP_ERR_IO, err, errlen, "cannot read \"%s\": %s", d->name,
                                 d->fd >= 0 ? strerror(errno) : mpg123_strerror(d->mh));
            fed += MPEG_CHUNK;
            continue;
        }
        return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %s", d->name,
                         mpg123_strerror(d->mh));
    }
    long rate = 0;
    int channels = 0, enc = 0;
    if (mpg123_getformat(d->mh, &rate, &channels, &enc) != MPG123_OK || enc != MPG123_ENC_FLOAT_32)
        return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": unsupported MPEG format",
                         d->name);
    memset(si, 0, sizeof *si);
    si->samplerate = (int)rate;
    si->channels = channels;
    si->frames = -1;
    si->format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    return FP_OK;
}

/* Decode up to max_frames frames from libmpg123. */
static fp_err_t mpeg_read(fp_decoder_t *d, float *buf, size_t max_frames, size_t *got, char *err,
                          size_t errlen)
{
    size_t want = max_frames * (size_t)d->info.channels * sizeof(float), have = 0;
    unsigned char *out = (unsigned char *)buf;
    while (have < want) {
        size_t done = 0;
        int r = mpg123_read(d->mh, out + have, want - have, &done);
        have += done;
        if (r == MPG123_OK) continue;
        if (r == MPG123_NEED_MORE) {
            if (d->eof) break;
            if (mpeg_feed(d) != 0)
                return fpi_error(FP_ERR_IO, err, errlen, "cannot read \"%s\": %s", d->name,
                                 d->fd >= 0 ? strerror(errno) : mpg123_strerror(d->mh));
            continue;
        }
        if (r == MPG123_DONE) break;
        if (r == MPG123_NEW_FORMAT) {
            long rate;
            int ch, enc;
            mpg123_getformat(d->mh, &rate, &ch, &enc);
            if (rate != d->info.sample_rate || ch != d->info.channels)
                return fpi_error(FP_ERR_FORMAT, err, errlen,
                                 "cannot decode \"%s\": the stream changes format at %.1f s",
                                 d->name, (double)d->frames_read / d->info.sample_rate);
            continue;
        }
        return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %s after %.1f s",
                         d->name, mpg123_strerror(d->mh),
                         (double)d->frames_read / d->info.sample_rate);
    }
    *got = have / ((size_t)d->info.channels * sizeof(float));
    return FP_OK;
}

/* ---- format names ---- */

static void format_name(int fmt, char *out, size_t len)
{
    const char *major = "audio";
    switch (fmt & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: case SF_FORMAT_WAVEX: case SF_FORMAT_RF64: major = "wav"; break;
    case SF_FORMAT_AIFF: major = "aiff"; break;
    case SF_FORMAT_AU: major = "au"; break;
    case SF_FORMAT_FLAC: major = "flac"; break;
    case SF_FORMAT_CAF: major = "caf"; break;
    case SF_FORMAT_W64: major = "w64"; break;
    case SF_FORMAT_MPEG: major = "mp3"; break;
    case SF_FORMAT_OGG:
        switch (fmt & SF_FORMAT_SUBMASK) {
        case SF_FORMAT_VORBIS: major = "ogg-vorbis"; break;
        case SF_FORMAT_OPUS: major = "ogg-opus"; break;
        default: major = "ogg"; break;
        }
        break;
    default: break;
    }
    snprintf(out, len, "%s", major);
}

/*
 * Common tail of both open functions: check what the container says against
 * the limits.  Frees nothing; the caller frees `d` on error.
 */
static fp_err_t check_opened(fp_decoder_t *d, const SF_INFO *si, char *err, size_t errlen)
{
    const fp_limits_t *L = &d->lim;
    if (si->channels < 1)
        return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %d channels", d->name,
                         si->channels);
    if (si->channels > L->max_channels)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": %d channels (limit %d)", d->name, si->channels,
                         L->max_channels);
    if (si->samplerate < 1000)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": sample rate %d Hz (below 1000 Hz is not audio)",
                         d->name, si->samplerate);
    if (si->samplerate > L->max_sample_rate)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": sample rate %d Hz (limit %d Hz)", d->name,
                         si->samplerate, L->max_sample_rate);
    /* A huge or infinite max_duration_s means no limit; NaN or <= 0 means
     * nothing may be read.  Converting an out-of-range double is undefined. */
    double max_frames = L->max_duration_s * (double)si->samplerate;
    d->max_frames = max_frames >= 9e18 ? INT64_MAX : max_frames > 0 ? (int64_t)max_frames : 0;
    d->info.sample_rate = si->samplerate;
    d->info.channels = si->channels;
    d->info.frames = (si->frames >= 0 && si->frames < SF_COUNT_MAX) ? si->frames : -1;
    format_name(si->format, d->info.format, sizeof d->info.format);
    if (d->info.frames > d->max_frames)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": %.0f s of audio (limit %.0f s)", d->name,
                         (double)d->info.frames / si->samplerate, L->max_duration_s);
    return FP_OK;
}

static fp_decoder_t *decoder_alloc(const char *name, const fp_limits_t *lim)
{
    fp_decoder_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->fd = -1;
    if (lim) d->lim = *lim;
    else fp_limits_default(&d->lim);
    snprintf(d->name, sizeof d->name, "%s", name ? name : "upload");
    return d;
}

/*
 * A RIFF/WAVE file whose data chunk declares more bytes than the file
 * holds was cut short (an interrupted copy or upload).  libsndfile quietly
 * decodes what is there; earmark says so instead, because a cut file in a
 * catalog or an upload is a mistake someone should hear about.  A declared
 * size of 0 or 0xFFFFFFFF (written by streaming recorders that cannot seek
 * back) means "unknown" and passes.  Returns 1 when truncated, with the
 * declared and present byte counts.
 */
static int wav_truncated(peek_fn peek, void *ctx, size_t total, uint64_t *declared,
                         uint64_t *present)
{
    unsigned char h[12];
    if (peek(ctx, 0, h, 12) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) return 0;
    uint64_t off = 12;
    for (int chunks = 0; chunks < 256 && off + 8 <= total; chunks++) {
        if (peek(ctx, (size_t)off, h, 8) != 8) return 0;
        uint64_t size = (uint64_t)h[4] | (uint64_t)h[5] << 8 | (uint64_t)h[6] << 16 |
                        (uint64_t)h[7] << 24;
        if (!memcmp(h, "data", 4)) {
            if (size == 0 || size == 0xFFFFFFFFu) return 0;
            *declared = size;
            *present = total - (off + 8);
            return size > *present;
        }
        off += 8 + size + (size & 1);
    }
    return 0;
}

/*
 * Open the right decoder for d, whose input (a path's fd, or d->data) is
 * ready.  `head` holds the first bytes, `total` is the input's size.
 */
static fp_err_t open_decoder(fp_decoder_t *d, const char *path, const unsigned char *head,
                             size_t nhead, size_t total, char *err, size_t errlen)
{
    static SF_VIRTUAL_IO vio = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO si;
    fp_err_t rc;
    kind_t kind = path ? sniff(head, nhead, peek_fd, &d->fd, &d->tag_len)
                       : sniff(head, nhead, peek_memory, d, &d->tag_len);

    memset(&si, 0, sizeof si);
    uint64_t declared, present;
    if (kind == KIND_SNDFILE &&
        wav_truncated(path ? peek_fd : peek_memory, path ? (void *)&d->fd : (void *)d, total,
                      &declared, &present))
        return fpi_error(FP_ERR_FORMAT, err, errlen,
                         "cannot decode \"%s\": truncated: the WAV header declares %llu bytes "
                         "of audio, the file holds %llu",
                         d->name, (unsigned long long)declared, (unsigned long long)present);
    switch (kind) {
    case KIND_SNDFILE:
        /* the descriptor stays ours (closed in fp_decoder_free) */
        d->sf = path ? sf_open_fd(d->fd, SFM_READ, &si, 0) : sf_open_virtual(&vio, SFM_READ, &si, d);
        if (!d->sf) {
            const char *why = sf_strerror(NULL);
            return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %s", d->name,
                             why && *why ? why : "corrupt or unsupported file");
        }
        break;
    case KIND_MPEG:
        if (path) {
            d->chunk = malloc(MPEG_CHUNK);
            if (!d->chunk) return fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory");
        }
        rc = mpeg_open(d, &si, err, errlen);
        if (rc != FP_OK) return rc;
        break;
    default:
        return fpi_error(FP_ERR_FORMAT, err, errlen,
                         "cannot decode \"%s\": not a recognised audio format (WAV, AIFF, FLAC, "
                         "Ogg Vorbis, Opus or MP3)",
                         d->name);
    }
    return check_opened(d, &si, err, errlen);
}

fp_err_t fp_decoder_open_path(const char *path, const fp_limits_t *lim, fp_decoder_t **out,
                              char *err, size_t errlen)
{
    fp_err_t rc = FP_OK;
    fp_decoder_t *d = NULL;
    struct stat st;
    unsigned char head[16];
    ssize_t nhead;

    *out = NULL;
    if (!path) return fpi_error(FP_ERR_INVALID, err, errlen, "no path given");
    d = decoder_alloc(path, lim);
    if (!d) return fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory opening \"%s\"", path);
    /* O_NONBLOCK: a FIFO must not block the open; only regular files pass */
    d->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (d->fd < 0 || fstat(d->fd, &st) != 0) {
        rc = fpi_error(FP_ERR_IO, err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fpi_error(FP_ERR_IO, err, errlen, "cannot open \"%s\": %s", path,
                       S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        goto out;
    }
    fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) & ~O_NONBLOCK);
    if (st.st_size == 0) {
        rc = fpi_error(FP_ERR_EMPTY, err, errlen, "cannot decode \"%s\": the file is empty", path);
        goto out;
    }
    nhead = pread(d->fd, head, sizeof head, 0);
    if (nhead < 0) {
        rc = fpi_error(FP_ERR_IO, err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        goto out;
    }
    rc = open_decoder(d, path, head, (size_t)nhead, (size_t)st.st_size, err, errlen);
out:
    if (rc != FP_OK) fp_decoder_free(d);
    else *out = d;
    return rc;
}

fp_err_t fp_decoder_open_memory(const void *data, size_t size, const char *name,
                                const fp_limits_t *lim, fp_decoder_t **out, char *err,
                                size_t errlen)
{
    fp_err_t rc = FP_OK;
    fp_decoder_t *d;

    *out = NULL;
    if (!data && size) return fpi_error(FP_ERR_INVALID, err, errlen, "no data given");
    d = decoder_alloc(name, lim);
    if (!d) return fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory");
    if (size == 0) {
        rc = fpi_error(FP_ERR_EMPTY, err, errlen, "cannot decode \"%s\": the upload is empty",
                       d->name);
        goto out;
    }
    d->data = data;
    d->size = size;
    rc = open_decoder(d, NULL, data, size < 16 ? size : 16, size, err, errlen);
out:
    if (rc != FP_OK) fp_decoder_free(d);
    else *out = d;
    return rc;
}

/*
 * Samples a decoder hands out must be finite: NaN and infinities (possible
 * in float WAV files) would poison the spectrum.  The test looks at the
 * exponent bits with integer operations and no early exit, which the
 * compiler vectorizes; it costs well under 1% of decoding.
 */
static int samples_sane(const float *buf, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &buf[i], sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return !bad;
}

const fp_audio_info_t *fp_decoder_info(const fp_decoder_t *dec)
{
    return &dec->info;
}

fp_err_t fp_decoder_read(fp_decoder_t *d, float *buf, size_t max_frames, size_t *got,
                         char *err, size_t errlen)
{
    *got = 0;
    if (!d || !buf) return fpi_error(FP_ERR_INVALID, err, errlen, "no decoder or buffer");
    if (max_frames == 0) return FP_OK;
    if (d->mh) {
        size_t n = 0;
        fp_err_t rc = mpeg_read(d, buf, max_frames, &n, err, errlen);
        if (rc != FP_OK) return rc;
        d->frames_read += (int64_t)n;
        if (d->frames_read > d->max_frames)
            return fpi_error(FP_ERR_LIMIT, err, errlen,
                             "refusing \"%s\": longer than %.0f s of audio (the limit)", d->name,
                             d->lim.max_duration_s);
        *got = n;
        return FP_OK;
    }
    sf_count_t n = sf_readf_float(d->sf, buf, (sf_count_t)max_frames);
    if (n < 0) n = 0;
    if ((size_t)n < max_frames) {
        int e = sf_error(d->sf);
        if (e != SF_ERR_NO_ERROR)
            return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %s after %.1f s",
                             d->name, sf_strerror(d->sf),
                             (double)d->frames_read / d->info.sample_rate);
    }
    d->frames_read += n;
    if (!samples_sane(buf, (size_t)n * (size_t)d->info.channels))
        return fpi_error(FP_ERR_FORMAT, err, errlen,
                         "cannot decode \"%s\": invalid sample values (NaN or infinite) near %.1f s",
                         d->name, (double)d->frames_read / d->info.sample_rate);
    if (d->frames_read > d->max_frames)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": longer than %.0f s of audio (the limit)", d->name,
                         d->lim.max_duration_s);
    *got = (size_t)n;
    return FP_OK;
}

void fp_decoder_free(fp_decoder_t *d)
{
    if (!d) return;
    if (d->sf) sf_close(d->sf);
    if (d->mh) mpg123_delete(d->mh);
    if (d->fd >= 0) close(d->fd);
    free(d->chunk);
    free(d);
}
