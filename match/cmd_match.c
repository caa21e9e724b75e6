/*
 * cmd_match.c -- `earmark match`: which reference recordings does a clip
 * contain, where, and was it sped up, time-stretched or pitch-shifted?
 *
 *   earmark match [--ref FILE]... [--json] CLIP...
 *
 * Without --ref, each clip is matched against the catalog in PostgreSQL
 * (what `earmark index` filled: $EARMARK_DB, the PG* variables or the
 * private cluster).  With --ref, the references are fingerprinted into an
 * in-memory store instead and each clip is matched against them.  Exit status: 0 when every clip was read (matches or
 * not), 1 when a file failed, 2 on a usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "earmark_fp.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_match.h"
#include "em_store.h"

static const char *USAGE =
    "earmark match [--ref FILE]... [--json] [--unscaled] [--min-frames N] [--max-hits N]\n"
    "              [--first-hits N] CLIP...";

static void help(void)
{
    printf("usage: %s\n\n"
           "Report for each CLIP the catalog recordings (or, with --ref, the given\n"
           "reference files) it contains: where (query and reference seconds), how strongly\n"
           "(aligned frames and prints) and how it differs (speed, tempo, pitch).\n\n"
           "  --ref FILE       match against this file instead of the catalog (repeatable)\n"
           "  --json           one JSON object per clip (JSON Lines)\n"
           "  --unscaled       do not search speed, tempo or pitch changes\n"
           "  --min-frames N   aligned query frames a match needs (default 12)\n"
           "  --max-hits N     hits a lookup fetches at most, the rarest hashes first\n"
           "                   (default %d; 0: no limit)\n"
           "  --first-hits N   a lookup in two parts: the first takes this many hits, and\n"
           "                   when its matches are clear the rest is fetched for them\n"
           "                   only (default %d; 0: one part)\n"
           "  --help           this text\n\n"
           "Exit status: 0 all clips read, 1 some file failed, 2 usage error.\n",
           USAGE, MATCH_DEFAULT_MAX_HITS, MATCH_DEFAULT_FIRST_HITS);
}

static void print_text(const char *clip, double dur, const match_result_t *m, size_t n,
                       char **names)
{
    printf("%s: %.1f s, %zu match%s\n", clip, dur, n, n == 1 ? "" : "es");
    for (size_t i = 0; i < n; i++) {
        const match_result_t *r = &m[i];
        double sp, te, st;
        match_factors(r, &sp, &te, &st);
        printf("  %zu. %s\n     query %.2f-%.2f s = reference %.2f-%.2f s; %u frames, %u prints",
               i + 1, names[i], r->query_start, r->query_end, r->ref_start, r->ref_end,
               r->frames, r->prints);
        switch (r->change) {
        case MATCH_SAME: printf("; same speed and pitch\n"); break;
        case MATCH_SPEED: printf("; speed %+.1f%% (pitch follows)\n", 100 * (sp - 1)); break;
        case MATCH_TEMPO: printf("; tempo %+.1f%%, pitch kept\n", 100 * (te - 1)); break;
        case MATCH_PITCH: printf("; pitch %+.2f semitones, tempo kept\n", st); break;
        default: printf("; tempo %+.1f%%, pitch %+.2f semitones\n", 100 * (te - 1), st); break;
        }
    }
}

static void print_json(const char *clip, double dur, const match_result_t *m, size_t n,
                       char **names, const catalog_track_t *tracks)
{
    fputs("{\"query\":", stdout);
    cli_json_string(stdout, clip);
    printf(",\"duration\":%.3f,\"matches\":[", dur);
    for (size_t i = 0; i < n; i++) {
        const match_result_t *r = &m[i];
        double sp, te, st;
        match_factors(r, &sp, &te, &st);
        printf("%s{\"reference\":", i ? "," : "");
        cli_json_string(stdout, names[i]);
        if (tracks) {
            const catalog_track_t *t = &tracks[i];
            printf(",\"track_id\":%u,\"external_id\":", r->track);
            if (t->external_id) cli_json_string(stdout, t->external_id);
            else fputs("null", stdout);
            fputs(",\"title\":", stdout);
            if (t->title) cli_json_string(stdout, t->title);
            else fputs("null", stdout);
            fputs(",\"artist\":", stdout);
            if (t->artist) cli_json_string(stdout, t->artist);
            else fputs("null", stdout);
            fputs(",\"tenant\":", stdout);
            if (t->tenant) cli_json_string(stdout, t->tenant);
            else fputs("null", stdout);
        }
        printf(",\"frames\":%u,\"prints\":%u,\"query_start\":%.3f,\"query_end\":%.3f,"
               "\"ref_start\":%.3f,\"ref_end\":%.3f,\"matched_seconds\":%.3f,"
               "\"change\":\"%s\",\"speed\":%.4f,\"tempo\":%.4f,\"pitch\":%.3f,"
               "\"time_scale\":%.4f,\"pitch_ratio\":%.4f}",
               r->frames, r->prints, r->query_start, r->query_end, r->ref_start, r->ref_end,
               r->matched_seconds, match_change_name(r->change), sp, te, st, r->speed, r->pitch);
    }
    fputs("]}\n", stdout);
}

int cmd_match(int argc, char **argv)
{
    static const struct option opts[] = {{"ref", required_argument, NULL, 'r'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"unscaled", no_argument, NULL, 'u'},
                                         {"min-frames", required_argument, NULL, 'm'},
                                         {"max-hits", required_argument, NULL, 'x'},
                                         {"first-hits", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char **refs = NULL;
    size_t nrefs = 0;
    int json = 0, c, status = EXIT_OK;
    long v;
    match_opts_t mo;
    match_store_t *store = NULL;
    db_conn_t *conn = NULL;
    store_t *pgs = NULL;
    char err[512];

    match_opts_default(&mo);
    optind = 1;
    refs = calloc((size_t)argc, sizeof *refs);
    if (!refs) {
        cli_error("match", "out of memory");
        return EXIT_FAIL;
    }
    while ((c = getopt_long(argc, argv, "r:jum:x:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': refs[nrefs++] = optarg; break;
        case 'j': json = 1; break;
        case 'u': mo.unscaled = 1; break;
        case 'm':
        case 'x':
        case 'f': {
            /* the numeric options: their name, range and place */
            const char *name = c == 'm' ? "--min-frames" : c == 'x' ? "--max-hits" : "--first-hits";
            if (cli_parse_int(optarg, c == 'm' ? 1 : 0, c == 'm' ? 100000 : 1000000000, &v)) {
                status = cli_usage("match", USAGE, "%s wants a number, not '%s'", name, optarg);
                goto out;
            }
            if (c == 'm') mo.min_frames = (uint32_t)v;
            else if (c == 'x') mo.max_hits = (size_t)v;
            else mo.first_hits = (size_t)v;
            break;
        }
        case 'h': help(); goto out;
        default: status = cli_usage("match", USAGE, "unknown option"); goto out;
        }
    }
    if (optind >= argc) {
        status = cli_usage("match", USAGE, "no clip given");
        goto out;
    }
    if (!nrefs) {
        /* the catalog */
        char conninfo[4096], derr[2048];
        db_err_t drc = db_conninfo_resolve(conninfo, sizeof conninfo);
        if (drc == DB_OK) drc = db_connect(conninfo, &conn, derr, sizeof derr);
        if (drc == DB_OK) drc = store_open(conn, &pgs, derr, sizeof derr);
        if (drc == DB_OK) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN); /* one clip at a time: split it */
            store_set_threads(pgs, cores > 0 ? (int)cores : 1, 0);
            drc = store_match_new(pgs, conn, 0, &store);
        }
        if (drc != DB_OK) {
            cli_error("match", "the catalog: %s", drc == DB_ERR_NOMEM ? "out of memory" : derr);
            status = EXIT_FAIL;
            goto out;
        }
    } else if (match_memstore_new(&store) != FP_OK) {
        cli_error("match", "out of memory");
        status = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < nrefs; i++) {
        fp_result_t res;
        fp_err_t rc = fp_extract_path(refs[i], NULL, NULL, &res, err, sizeof err);
        if (rc == FP_OK) rc = match_memstore_add(store, (uint32_t)i, res.prints, res.count);
        fp_result_clear(&res);
        if (rc != FP_OK) {
            cli_error("match", "%s (%s); reference skipped", err, fp_errname(rc));
            status = EXIT_FAIL;
        }
    }
    if (nrefs) match_memstore_seal(store);
    for (int i = optind; i < argc; i++) {
        fp_result_t res;
        match_result_t *m = NULL;
        size_t n = 0;
        fp_err_t rc = fp_extract_path(argv[i], NULL, NULL, &res, err, sizeof err);
        if (rc == FP_OK) rc = match_query(store, res.prints, res.count, &mo, &m, &n, NULL, err,
                                          sizeof err);
        if (rc != FP_OK) {
            cli_error("match", "%s (%s)", err, fp_errname(rc));
            status = EXIT_FAIL;
        } else {
            char **names = calloc(n + 1, sizeof *names);
            catalog_track_t *tracks = conn ? calloc(n + 1, sizeof *tracks) : NULL;
            for (size_t k = 0; k < n && names; k++) {
                if (!conn) {
                    names[k] = strdup(refs[m[k].track]);
                    continue;
                }
                char derr[512], buf[1024];
                if (tracks && catalog_track_get(conn, m[k].track, &tracks[k], derr, sizeof derr) == DB_OK)
                    snprintf(buf, sizeof buf, "track %u%s%s%s%s%s%s", m[k].track,
                             tracks[k].external_id ? " [" : "",
                             tracks[k].external_id ? tracks[k].external_id : "",
                             tracks[k].external_id ? "]" : "", tracks[k].artist || tracks[k].title ? " " : "",
                             tracks[k].artist ? tracks[k].artist : "",
                             tracks[k].title ? (tracks[k].artist ? " - " : "") : "");
                else
                    snprintf(buf, sizeof buf, "track %u", m[k].track);
                size_t l = strlen(buf);
                if (tracks && tracks[k].title) snprintf(buf + l, sizeof buf - l, "%s", tracks[k].title);
                names[k] = strdup(buf);
            }
            if (!names) cli_error("match", "out of memory");
            else if (json) print_json(argv[i], res.stats.seconds, m, n, names, tracks);
            else print_text(argv[i], res.stats.seconds, m, n, names);
            for (size_t k = 0; k < n && names; k++) {
                free(names[k]);
                if (tracks) catalog_track_clear(&tracks[k]);
            }
            free(names);
            free(tracks);
        }
        fflush(stdout);
        free(m);
        fp_result_clear(&res);
    }
out:
    match_store_free(store);
    store_free(pgs);
    db_close(conn);
    free(refs);
    return status;
}
