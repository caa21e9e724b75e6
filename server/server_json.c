/*
 * server_json.c -- prints uploaded instead of audio: the object that
 * `earmark fingerprint --json` writes for one file (docs/api.md):
 *
 *   {"params_version": 3, "config_id": "a58393ce", "frame_seconds": ...,
 *    "duration": 32.091, "prints": [[t, hash, f, dt], ...], ...}
 *
 * params_version and config_id must be the server's: prints made with
 * other parameters cannot be compared (422 params_mismatch).  Other fields
 * (file, format, ...) are ignored.  Parsed with jansson; every print is
 * checked (four integers in range) so that nothing unchecked reaches the
 * matcher.
 */
#include "server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PRINTS (50u * 1000u * 1000u)
#define SHOWN_ID 16  /* characters of the client's config_id in a message */

/*
 * What a message quotes of the body is made printable ASCII (anything else
 * as '?'): the message must stay one line of valid UTF-8 whatever was sent,
 * since srv_problem() puts it into JSON and json_pack() fails on invalid
 * UTF-8, leaving the response without a body.  Both jansson's error text
 * (its "near '...'" can end in half a UTF-8 character) and the client's
 * config_id (any string, cut anywhere by the message's length) can be.
 */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) *s = '?';
}

/* The client's config_id as a message shows it: at most SHOWN_ID
 * characters then "...", printable. */
static void shown_id(const char *s, char out[SHOWN_ID + 4])
{
    size_t i = 0;
    for (; s[i] && i < SHOWN_ID; i++) out[i] = s[i];
    strcpy(out + i, s[i] ? "..." : "");
    printable(out);
}

unsigned srv_parse_prints(const uint8_t *body, size_t len, const fp_config_t *cfg,
                          double max_duration_s, fp_print_t **prints, size_t *n,
                          double *duration_s, const char **code, char *msg, size_t msglen)
{
    *prints = NULL;
    *n = 0;
    *duration_s = 0;
    json_error_t je;
    json_t *o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        *code = "bad_json";
        printable(je.text);
        snprintf(msg, msglen, "the body is not JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        return 400;
    }
    unsigned status = 400;
    *code = "bad_prints";
    json_t *pv = json_object_get(o, "params_version"), *ci = json_object_get(o, "config_id"),
           *arr = json_object_get(o, "prints"), *dur = json_object_get(o, "duration");
    if (!json_is_object(o) || !json_is_integer(pv) || !json_is_string(ci) || !json_is_array(arr)) {
        snprintf(msg, msglen, "expected an object with params_version, config_id and prints, as "
                              "`earmark fingerprint --json` writes");
        goto out;
    }
    char want[16];
    snprintf(want, sizeof want, "%08x", fp_config_id(cfg));
    if (json_integer_value(pv) != cfg->version || strcmp(json_string_value(ci), want)) {
        status = 422;
        *code = "params_mismatch";
        char theirs[SHOWN_ID + 4];
        shown_id(json_string_value(ci), theirs);
        snprintf(msg, msglen, "the prints were made with parameters v%lld/%s; this server uses v%d/%s",
                 (long long)json_integer_value(pv), theirs, cfg->version, want);
        goto out;
    }
    size_t count = json_array_size(arr);
    if (count > MAX_PRINTS) {
        status = 413;
        *code = "too_long";
        snprintf(msg, msglen, "%zu prints; at most %u", count, MAX_PRINTS);
        goto out;
    }
    fp_print_t *p = malloc((count ? count : 1) * sizeof *p);
    if (!p) {
        status = 503;
        *code = "out_of_memory";
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    uint32_t tmax = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(arr, i);
        json_int_t v[4];
        int ok = json_is_array(e) && json_array_size(e) == 4;
        for (int k = 0; ok && k < 4; k++) {
            json_t *x = json_array_get(e, (size_t)k);
            ok = json_is_integer(x);
            v[k] = ok ? json_integer_value(x) : 0;
        }
        if (!ok || v[0] < 0 || v[0] >= (json_int_t)1 << 31 || v[1] < 0 || v[1] > 0xffffffffLL ||
            v[2] < 0 || v[2] > 0xffff || v[3] < 0 || v[3] > 0xffff) {
            free(p);
            snprintf(msg, msglen, "print %zu is not [t, hash, f, dt] with t < 2^31, a 32-bit hash "
                                  "and 16-bit f and dt", i);
            goto out;
        }
        p[i] = (fp_print_t){(uint32_t)v[1], (uint32_t)v[0], (uint16_t)v[2], (uint16_t)v[3]};
        if (p[i].t > tmax) tmax = p[i].t;
    }
    /* the duration is at least the prints' own span: a smaller claim
     * would inflate a match's coverage of the upload */
    double span = (double)tmax * fp_config_frame_seconds(cfg);
    double claimed = json_is_number(dur) ? json_number_value(dur) : 0;
    *duration_s = claimed > span && claimed < 1e9 ? claimed : span;
    if (max_duration_s > 0 && span > max_duration_s) {
        free(p);
        status = 413;
        *code = "too_long";
        snprintf(msg, msglen, "the prints span %.1f s; the limit is %.0f s", span, max_duration_s);
        *duration_s = 0;
        goto out;
    }
    *prints = p;
    *n = count;
    status = 0;
out:
    json_decref(o);
    return status;
}
