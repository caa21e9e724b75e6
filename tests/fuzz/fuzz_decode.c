/*
 * fuzz_decode.c -- libFuzzer harness for decoding untrusted bytes.
 *
 * Each input goes through the two ways an upload is handled: the one-call
 * fp_extract_memory(), and fp_decoder_open_memory() followed by
 * fp_decoder_read() to the end.  The limits are tight so that one input
 * costs little time and memory whatever its header claims.
 *
 * Besides crashes and sanitizer reports, a broken promise of the API is
 * turned into a crash (abort) so the fuzzer keeps the input:
 *   - a failure must come with a non-empty, one-line message naming the
 *     input, and with an empty result;
 *   - a success must hold prints sorted by time, within the limits;
 *   - the decoder must stay within its buffer and the duration limit.
 *
 * Built and run by tests/fuzz/run.sh.
 */
#include "earmark_fp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz-input.bin"
#define BLOCK 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * libsndfile 1.2.0 (Debian 12) leaks the vorbis_info it set up (5784 bytes)
 * each time it fails to open a malformed Ogg Vorbis stream (its
 * vorbis_read_header() returns early without vorbis_info_clear()).  It is not
 * ours and would stop every run within seconds, so LeakSanitizer ignores
 * exactly that allocation.  tests/fuzz/crashes/leak-vorbis-open.ogg shows it
 * when run through a harness built without this function.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:vorbis_info_init\n";
}

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_decode: broken promise: %s [%s]\n", what, detail ? detail : "");
    abort();
}

static void check_message(fp_err_t rc, const char *err)
{
    if (err[0] == '\0') broken("error without a message", fp_errname(rc));
    if (!strstr(err, NAME)) broken("error message does not name the input", err);
    if (strchr(err, '\n')) broken("error message is not one line", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fp_limits_t lim;
    fp_limits_default(&lim);
    lim.max_duration_s = 30;
    lim.max_channels = 8;
    lim.max_sample_rate = 192000;

    char err[512];
    fp_result_t res;

    /* One call. */
    err[0] = '\0';
    fp_err_t rc = fp_extract_memory(data, size, NAME, NULL, &lim, &res, err, sizeof err);
    if (rc != FP_OK) {
        check_message(rc, err);
        if (res.prints || res.count) broken("failed extraction left prints", err);
    } else {
        if (res.count && !res.prints) broken("count without prints", NULL);
        for (size_t i = 1; i < res.count; i++)
            if (res.prints[i - 1].t > res.prints[i].t) broken("prints not sorted by time", NULL);
        if (res.info.channels < 1 || res.info.channels > lim.max_channels)
            broken("channels outside the limit", res.info.format);
        if (res.info.sample_rate < 1000 || res.info.sample_rate > lim.max_sample_rate)
            broken("sample rate outside the limit", res.info.format);
        if (res.stats.seconds > lim.max_duration_s + 1.0)
            broken("more audio than the duration limit", res.info.format);
    }
    fp_result_clear(&res);

    /* Block by block. */
    fp_decoder_t *dec = NULL;
    err[0] = '\0';
    rc = fp_decoder_open_memory(data, size, NAME, &lim, &dec, err, sizeof err);
    if (rc != FP_OK) {
        check_message(rc, err);
        if (dec) broken("failed open returned a decoder", err);
        return 0;
    }
    const fp_audio_info_t *info = fp_decoder_info(dec);
    if (info->channels < 1 || info->channels > lim.max_channels)
        broken("decoder channels outside the limit", info->format);
    if (info->sample_rate < 1000 || info->sample_rate > lim.max_sample_rate)
        broken("decoder sample rate outside the limit", info->format);
    size_t ch = (size_t)info->channels;
    /* One guard float past the end catches a decoder writing beyond
     * max_frames * channels (ASan would too, but only past the allocation). */
    float *buf = malloc((BLOCK * ch + 1) * sizeof *buf);
    if (!buf) abort();
    const float guard = 12345.678f;
    buf[BLOCK * ch] = guard;
    uint64_t total = 0;
    uint64_t cap = (uint64_t)(lim.max_duration_s * info->sample_rate) + BLOCK;
    for (;;) {
        size_t got = 0;
        err[0] = '\0';
        rc = fp_decoder_read(dec, buf, BLOCK, &got, err, sizeof err);
        if (buf[BLOCK * ch] != guard) broken("decoder wrote past its buffer", info->format);
        if (rc != FP_OK) {
            check_message(rc, err);
            break;
        }
        if (got == 0) break;
        if (got > BLOCK) broken("decoder returned more frames than asked", info->format);
        total += got;
        if (total > cap) broken("decoder read past the duration limit", info->format);
    }
    free(buf);
    fp_decoder_free(dec);
    return 0;
}
