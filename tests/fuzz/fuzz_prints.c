/*
 * fuzz_prints.c -- libFuzzer harness for prints uploaded as JSON
 * (srv_parse_prints(), server/server_json.c).
 *
 * The input is the body of a POST /v1/matches with prints, in the form
 * `earmark fingerprint --json` writes; it is parsed with the default
 * fp_config_t twice: without a duration limit (max_duration_s 0) and with
 * the server's default limit (600 s).
 *
 * Besides crashes and sanitizer reports, a broken promise of the function
 * is turned into a crash (abort) so the fuzzer keeps the input:
 *   - a success (0) gives prints (not NULL) and *n equal to the length of
 *     the "prints" array, each print the four integers of its element with
 *     t < 2^31, and a duration that is finite, >= 0 and not less than the
 *     prints' span (greatest t times the frame length), a span within the
 *     limit when there is one;
 *   - a failure is 400, 413, 422 or 503, with a non-NULL, non-empty code, a
 *     non-empty one-line (no CR or LF) message that fits msglen, and
 *     *prints NULL;
 *   - the message is valid UTF-8: the server puts it into its problem
 *     response with json_pack() (srv_problem(), server_http.c), which fails
 *     on anything else and leaves the response without a body.
 *
 * With FUZZ_PRINTS_CONFIG set in the environment the program only prints
 * "VERSION CONFIG_ID" of the default parameters and exits (run.sh writes
 * its hand-made seeds with them).
 *
 * Built and run by tests/fuzz/run.sh.
 */
#include "server_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fp_config_t cfg;

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_prints: broken promise: %s [%s]\n", what, detail ? detail : "");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fp_config_default(&cfg);
    if (getenv("FUZZ_PRINTS_CONFIG")) {
        printf("%d %08x\n", cfg.version, fp_config_id(&cfg));
        exit(0);
    }
    return 0;
}

/* The "prints" array of the body as jansson reads it (NULL if none). */
static json_t *reference(const uint8_t *data, size_t size, json_t **root)
{
    *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *arr = json_object_get(*root, "prints");
    return json_is_array(arr) ? arr : NULL;
}

static void check(const uint8_t *data, size_t size, double max_duration_s)
{
    fp_print_t *prints = (fp_print_t *)(uintptr_t)1;  /* must be overwritten */
    size_t n = (size_t)-1;
    double duration = -1;
    const char *code = NULL;
    char msg[512];
    memset(msg, 'x', sizeof msg);

    unsigned st = srv_parse_prints(data, size, &cfg, max_duration_s, &prints, &n, &duration,
                                   &code, msg, sizeof msg);
    if (st == 0) {
        if (!prints) broken("success without prints", NULL);
        json_t *root;
        json_t *arr = reference(data, size, &root);
        if (!arr) broken("success on a body without a prints array", NULL);
        if (n != json_array_size(arr)) broken("*n is not the length of the prints array", NULL);
        uint32_t tmax = 0;
        for (size_t i = 0; i < n; i++) {
            const fp_print_t *p = &prints[i];
            if (p->t >= (uint32_t)1 << 31) broken("a print with t >= 2^31", NULL);
            json_t *e = json_array_get(arr, i);
            if (json_array_size(e) != 4 ||
                json_integer_value(json_array_get(e, 0)) != (json_int_t)p->t ||
                json_integer_value(json_array_get(e, 1)) != (json_int_t)p->hash ||
                json_integer_value(json_array_get(e, 2)) != (json_int_t)p->f ||
                json_integer_value(json_array_get(e, 3)) != (json_int_t)p->dt)
                broken("a print is not its [t, hash, f, dt]", NULL);
            if (p->t > tmax) tmax = p->t;
        }
        json_decref(root);
        if (!isfinite(duration) || duration < 0) broken("duration not finite and >= 0", NULL);
        double span = (double)tmax * fp_config_frame_seconds(&cfg);
        if (duration < span) broken("duration less than the prints' span", NULL);
        if (max_duration_s > 0 && span > max_duration_s) broken("span over the limit", NULL);
        free(prints);
        return;
    }

    char sst[16];
    snprintf(sst, sizeof sst, "%u", st);
    if (st != 400 && st != 413 && st != 422 && st != 503) broken("unexpected status", sst);
    if (!code || !code[0]) broken("failure without a code", sst);
    if (memchr(msg, '\0', sizeof msg) == NULL) broken("message not terminated within msglen", sst);
    if (!msg[0]) broken("failure without a message", code);
    if (strpbrk(msg, "\r\n")) broken("message is not one line", msg);
    json_t *js = json_string(msg);
    if (!js) broken("message is not valid UTF-8", msg);
    json_decref(js);
    if (prints) broken("failure left *prints set", code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, 0);      /* no limit */
    check(data, size, 600.0);  /* the server's default --max-duration */
    return 0;
}
