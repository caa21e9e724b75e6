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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "earmark_fp.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_match.h"
#include "em_store.h"

static const char *USAGE =
    "earmark match [--ref FILE]... [--json] [--unscaled] [--min-frames N] [--max-hits N]\n"
    "              [--first-hits N] [--max-chance E] CLIP...";

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
           "  --max-chance E   claim a match only when alignments as strong arise by\n"
           "                   chance at most E times in a query of its length against\n"
           "                   a catalog of this size (default %g; 0: no such test)\n"
           "  --help           this text\n\n"
           "Exit status: 0 all clips read, 1 some file failed, 2 usage error.\n",
           USAGE, MATCH_DEFAULT_MAX_HITS, MATCH_DEFAULT_FIRST_HITS, MATCH_DEFAULT_MAX_CHANCE);
}

/* What a result's track is called: the reference file, or the catalog's
 * track with its metadata (t filled, owned by the caller). */
typedef struct named {
    char *name;
    catalog_track_t t;
    int have_t;
} named_t;

static void name_track(db_conn_t *conn, char **refs, uint32_t track, named_t *nm)
{
    memset(nm, 0, sizeof *nm);
    if (!conn) {
        nm->name = strdup(refs[track]);
        return;
    }
    char derr[512], buf[1024];
    int l = snprintf(buf, sizeof buf, "track %u", track);
    if (catalog_track_get(conn, track, &nm->t, derr, sizeof derr) == DB_OK) {
        nm->have_t = 1;
        const catalog_track_t *t = &nm->t;
        if (t->external_id) l += snprintf(buf + l, sizeof buf - (size_t)l, " [%s]", t->external_id);
        if (t->artist || t->title)
            snprintf(buf + l, sizeof buf - (size_t)l, " %s%s%s", t->artist ? t->artist : "",
                     t->artist && t->title ? " - " : "", t->title ? t->title : "");
    }
    nm->name = strdup(buf);
}

static void named_clear(named_t *nm)
{
    free(nm->name);
    if (nm->have_t) catalog_track_clear(&nm->t);
}

static const char *factors_text(const match_result_t *r, char *buf, size_t len)
{
    double sp, te, st;
    match_factors(r, &sp, &te, &st);
    switch (r->change) {
    case MATCH_SAME: snprintf(buf, len, "same speed and pitch"); break;
    case MATCH_SPEED: snprintf(buf, len, "speed %+.1f%% (pitch follows)", 100 * (sp - 1)); break;
    case MATCH_TEMPO: snprintf(buf, len, "tempo %+.1f%%, pitch kept", 100 * (te - 1)); break;
    case MATCH_PITCH: snprintf(buf, len, "pitch %+.2f semitones, tempo kept", st); break;
    default: snprintf(buf, len, "tempo %+.1f%%, pitch %+.2f semitones", 100 * (te - 1), st); break;
    }
    return buf;
}

static void print_text(const char *clip, double dur, const match_result_t *m, size_t n,
                       db_conn_t *conn, char **refs)
{
    char fx[96];
    cli_texts_t tx = CLI_TEXTS_INIT; /* names from outside, escaped for the terminal */
    printf("%s: %.1f s, %zu match%s\n", cli_text(&tx, clip), dur, n, n == 1 ? "" : "es");
    for (size_t i = 0; i < n; i++) {
        const match_result_t *r = &m[i];
        named_t nm;
        name_track(conn, refs, r->track, &nm);
        printf("  %zu. %s\n     query %.2f-%.2f s = reference %.2f-%.2f s; %u frames, %u prints; %s\n",
               i + 1, cli_text(&tx, nm.name ? nm.name : "?"), r->query_start, r->query_end, r->ref_start,
               r->ref_end, r->frames, r->prints, factors_text(r, fx, sizeof fx));
        named_clear(&nm);
        for (size_t k = 0; k < r->ncopies; k++) {
            const match_result_t *c = &r->copies[k];
            name_track(conn, refs, c->track, &nm);
            printf("     the same audio in %s%s%s: reference %.2f-%.2f s; %u frames; %s\n",
                   cli_text(&tx, nm.name ? nm.name : "?"), nm.have_t && nm.t.tenant ? ", tenant " : "",
                   cli_text(&tx, nm.have_t && nm.t.tenant ? nm.t.tenant : ""), c->ref_start, c->ref_end,
                   c->frames, factors_text(c, fx, sizeof fx));
            named_clear(&nm);
        }
    }
    cli_texts_free(&tx);
}

/* x rounded to `places` decimals, as JSON */
static json_t *json_round(double x, int places)
{
    double f = pow(10.0, places);
    return json_real(round(x * f) / f);
}

/* s as a JSON string, valid UTF-8 whatever its bytes (cli_text_dup); null
 * when s is NULL */
static json_t *str_or_null(const char *s)
{
    if (!s) return json_null();
    char *u = cli_text_dup(s, CLI_ESCAPE_UTF8);
    json_t *j = u ? json_string(u) : NULL;
    free(u);
    return j;
}

/* One result as JSON, its copies (when it has any) inside it. */
static json_t *result_json(const match_result_t *r, db_conn_t *conn, char **refs)
{
    named_t nm;
    double sp, te, st;
    match_factors(r, &sp, &te, &st);
    name_track(conn, refs, r->track, &nm);
    json_t *o = json_object();
    json_object_set_new(o, "reference", str_or_null(nm.name));
    if (conn) {
        const catalog_track_t *t = nm.have_t ? &nm.t : NULL;
        json_object_set_new(o, "track_id", json_integer(r->track));
        json_object_set_new(o, "external_id", str_or_null(t ? t->external_id : NULL));
        json_object_set_new(o, "title", str_or_null(t ? t->title : NULL));
        json_object_set_new(o, "artist", str_or_null(t ? t->artist : NULL));
        json_object_set_new(o, "tenant", str_or_null(t ? t->tenant : NULL));
    }
    named_clear(&nm);
    json_object_set_new(o, "frames", json_integer(r->frames));
    json_object_set_new(o, "prints", json_integer(r->prints));
    json_object_set_new(o, "query_start", json_round(r->query_start, 3));
    json_object_set_new(o, "query_end", json_round(r->query_end, 3));
    json_object_set_new(o, "ref_start", json_round(r->ref_start, 3));
    json_object_set_new(o, "ref_end", json_round(r->ref_end, 3));
    json_object_set_new(o, "matched_seconds", json_round(r->matched_seconds, 3));
    json_object_set_new(o, "change", json_string(match_change_name(r->change)));
    json_object_set_new(o, "speed", json_round(sp, 4));
    json_object_set_new(o, "tempo", json_round(te, 4));
    json_object_set_new(o, "pitch", json_round(st, 3));
    json_object_set_new(o, "time_scale", json_round(r->speed, 4));
    json_object_set_new(o, "pitch_ratio", json_round(r->pitch, 4));
    json_object_set_new(o, "confidence", json_round(r->confidence, 4));
    json_object_set_new(o, "chance", json_real(r->chance));
    if (r->ncopies) {
        json_t *c = json_array();
        for (size_t k = 0; k < r->ncopies; k++)
            json_array_append_new(c, result_json(&r->copies[k], conn, refs));
        json_object_set_new(o, "copies", c);
    }
    return o;
}

static void print_json(const char *clip, double dur, const match_result_t *m, size_t n,
                       db_conn_t *conn, char **refs)
{
    json_t *ms = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(ms, result_json(&m[i], conn, refs));
    json_t *o = json_pack("{s:o, s:o, s:o}", "query", str_or_null(clip), "duration", json_round(dur, 3), "matches", ms);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
                   : NULL;
    if (text) puts(text);
    else cli_error("match", "out of memory");
    free(text);
    json_decref(o);
}

int cmd_match(int argc, char **argv)
{
    static const struct option opts[] = {{"ref", required_argument, NULL, 'r'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"unscaled", no_argument, NULL, 'u'},
                                         {"min-frames", required_argument, NULL, 'm'},
                                         {"max-hits", required_argument, NULL, 'x'},
                                         {"first-hits", required_argument, NULL, 'f'},
                                         {"max-chance", required_argument, NULL, 'c'},
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
    while ((c = getopt_long(argc, argv, "r:jum:x:f:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': {
            char *end;
            double e = strtod(optarg, &end);
            if (end == optarg || *end || !(e >= 0) || e > 1e6) {
                status = cli_usage("match", USAGE, "--max-chance wants a number >= 0, not '%s'",
                                   optarg);
                goto out;
            }
            mo.max_chance = e;
            break;
        }
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
            if (json) print_json(argv[i], res.stats.seconds, m, n, conn, refs);
            else print_text(argv[i], res.stats.seconds, m, n, conn, refs);
        }
        fflush(stdout);
        match_results_free(m, n);
        fp_result_clear(&res);
    }
out:
    match_store_free(store);
    store_free(pgs);
    db_close(conn);
    free(refs);
    return status;
}
