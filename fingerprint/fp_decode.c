/*
 * fp_decode.c -- audio decoding with libsndfile, from a path or from memory.
 *
 * The decoder hands out interleaved float blocks; nothing is ever sized from
 * what a header claims.  Channels, rate and claimed length are checked
 * against the limits at open time, and the decoded length is counted again
 * while reading, so a header that lies cannot make us allocate or loop more
 * than the limits allow.
 *
 * libsndfile keeps the reason for a failed open in a process-wide variable;
 * under heavy concurrency the text of an open error may therefore describe
 * another thread's failure.  The error code is always right.
 */
#include "fp_internal.h"

#include <errno.h>
#include <sndfile.h>
#include <string.h>
#include <sys/stat.h>

struct fp_decoder {
    SNDFILE *sf;
    fp_audio_info_t info;
    fp_limits_t lim;
    int64_t frames_read;
    int64_t max_frames;
    char name[256];
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
        return fpi_error(FP_ERR_FORMAT, err, errlen,
                         "cannot decode \"%s\": sample rate %d Hz is not audio", d->name,
                         si->samplerate);
    if (si->samplerate > L->max_sample_rate)
        return fpi_error(FP_ERR_LIMIT, err, errlen,
                         "refusing \"%s\": sample rate %d Hz (limit %d Hz)", d->name,
                         si->samplerate, L->max_sample_rate);
    d->max_frames = (int64_t)(L->max_duration_s * (double)si->samplerate);
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
    if (lim) d->lim = *lim;
    else fp_limits_default(&d->lim);
    snprintf(d->name, sizeof d->name, "%s", name ? name : "upload");
    return d;
}

static fp_err_t open_failed(fp_decoder_t *d, char *err, size_t errlen)
{
    const char *why = sf_strerror(NULL);
    return fpi_error(FP_ERR_FORMAT, err, errlen, "cannot decode \"%s\": %s", d->name,
                     why && *why ? why : "unknown format");
}

fp_err_t fp_decoder_open_path(const char *path, const fp_limits_t *lim, fp_decoder_t **out,
                              char *err, size_t errlen)
{
    fp_err_t rc = FP_OK;
    fp_decoder_t *d = NULL;
    struct stat st;
    SF_INFO si;

    *out = NULL;
    if (!path) return fpi_error(FP_ERR_INVALID, err, errlen, "no path given");
    d = decoder_alloc(path, lim);
    if (!d) return fpi_error(FP_ERR_NOMEM, err, errlen, "out of memory opening \"%s\"", path);
    if (stat(path, &st) != 0) {
        rc = fpi_error(FP_ERR_IO, err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = fpi_error(FP_ERR_IO, err, errlen, "cannot open \"%s\": is a directory", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        rc = fpi_error(FP_ERR_EMPTY, err, errlen, "cannot decode \"%s\": the file is empty", path);
        goto out;
    }
    memset(&si, 0, sizeof si);
    d->sf = sf_open(path, SFM_READ, &si);
    if (!d->sf) {
        rc = open_failed(d, err, errlen);
        goto out;
    }
    rc = check_opened(d, &si, err, errlen);
out:
    if (rc != FP_OK) fp_decoder_free(d);
    else *out = d;
    return rc;
}

fp_err_t fp_decoder_open_memory(const void *data, size_t size, const char *name,
                                const fp_limits_t *lim, fp_decoder_t **out, char *err,
                                size_t errlen)
{
    static SF_VIRTUAL_IO vio = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    fp_err_t rc = FP_OK;
    fp_decoder_t *d;
    SF_INFO si;

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
    memset(&si, 0, sizeof si);
    d->sf = sf_open_virtual(&vio, SFM_READ, &si, d);
    if (!d->sf) {
        rc = open_failed(d, err, errlen);
        goto out;
    }
    rc = check_opened(d, &si, err, errlen);
out:
    if (rc != FP_OK) fp_decoder_free(d);
    else *out = d;
    return rc;
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
    free(d);
}
