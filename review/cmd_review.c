/*
 * cmd_review.c -- `earmark review`: people decide what the service flagged.
 *
 *   earmark review list [FILTERS] [--sort newest|strongest] [--limit N] [--json|--csv]
 *   earmark review show ID [--json] [--plot FILE.svg]
 *   earmark review confirm|dismiss|reopen ID... [--all-copies] [--note TEXT]
 *   earmark review confirm|dismiss|reopen --all-matching FILTERS [--note TEXT] [--yes]
 *   earmark review export [FILTERS] [--format csv|json] [--output FILE]
 *   earmark review stats [FILTERS] [--json]
 *
 * FILTERS: --tenant NAME (or $EARMARK_TENANT: a reviewer working for one
 * rights holder sets it once and sees nothing else), --status, --flag,
 * --min-score N, --since TIME, --until TIME, --track ID.
 *
 * Decisions need the reviewer's name: --reviewer NAME or $EARMARK_REVIEWER.
 * --json output is JSON Lines: one object per line.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "earmark_fp.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_review.h"

static const char *USAGE =
    "earmark review list [FILTERS] [--sort newest|strongest] [--limit N] [--json|--csv]\n"
    "       earmark review show ID [--json] [--plot FILE.svg]\n"
    "       earmark review confirm|dismiss|reopen ID... [--all-copies] [--note TEXT] [--reviewer NAME]\n"
    "       earmark review confirm|dismiss|reopen --all-matching FILTERS [--note TEXT] [--yes]\n"
    "       earmark review export [FILTERS] [--format csv|json] [--output FILE]\n"
    "       earmark review stats [FILTERS] [--json]\n"
    "       earmark review reviewers [add NAME [--tenant NAME] | disable NAME]\n"
    "FILTERS: --tenant NAME --status pending|confirmed|dismissed\n"
    "         --flag likely_infringement|possible_reuse|none --min-score N\n"
    "         --since TIME --until TIME --track ID";

static const char *HELP =
    "\n"
    "Review the matches the HTTP service stored: the queue, each match's evidence,\n"
    "and decisions, kept in an append-only audit log.\n"
    "\n"
    "  list      the queue, newest first (--sort strongest: highest score first);\n"
    "            50 rows on a terminal unless --limit N (0: all)\n"
    "  show      one match: the upload, each segment, the recording, the decisions;\n"
    "            --plot FILE.svg draws the aligned prints and the spectral peaks\n"
    "  confirm   mark matches as real; dismiss: as not real; reopen: back to pending.\n"
    "            Changing a decision needs --note with the reason.  --all-matching\n"
    "            decides every match the filters select, after a prompt (--yes skips it).\n"
    "            A recording the catalog holds more than once is found as one match\n"
    "            with copies (one stored match each, for each holder's claim):\n"
    "            --all-copies decides the given match and every copy found with it\n"
    "  export    decisions and evidence for other systems (CSV, or JSON Lines with the\n"
    "            full evidence and history)\n"
    "  stats     matches by tenant, flag and decision; the dismissal rate of each flag\n"
    "  reviewers the registry of reviewers: add one (confined to a tenant with --tenant),\n"
    "            disable one.  Once anyone is registered, decisions need a registered\n"
    "            reviewer, and a reviewer confined to a tenant sees only its matches\n"
    "\n"
    "  --tenant NAME     only this tenant's matches ($EARMARK_TENANT)\n"
    "  --reviewer NAME   who decides ($EARMARK_REVIEWER); decisions need one, and a\n"
    "                    registered reviewer's tenant scope applies to every action\n"
    "  --since, --until  a date (2026-11-01) or a time (2026-11-01T12:00:00Z)\n"
    "\n"
    "Exit status: 0 done, 1 failed (database, no such match, ...), 2 bad command line.\n";

typedef struct opts {
    review_filter_t f;
    review_order_t order;
    long limit;
    int json, csv, yes, all_matching, all_copies, limit_set;
    const char *reviewer, *note, *plot, *format, *output;
} opts_t;

/* ------------------------------------------------------------------------ */
/* Output of result rows                                                    */
/* ------------------------------------------------------------------------ */

enum { K_STR, K_NUM, K_JSON };

typedef struct col {
    const char *name;
    int kind;
} col_t;

/* The names and kinds of REVIEW_COL_* in --json and --csv output. */
static const col_t LIST_COLS[REVIEW_NCOLS] = {
    {"id", K_NUM},          {"created_at", K_STR},    {"tenant", K_STR},
    {"upload_id", K_STR},   {"client_ref", K_STR},    {"upload_seconds", K_NUM},
    {"track_id", K_NUM},    {"external_id", K_STR},   {"title", K_STR},
    {"artist", K_STR},      {"source", K_STR},        {"score", K_NUM},         {"confidence", K_NUM},
    {"query_start", K_NUM}, {"query_end", K_NUM},     {"ref_start", K_NUM},
    {"ref_end", K_NUM},     {"matched_seconds", K_NUM}, {"coverage", K_NUM},
    {"speed", K_NUM},       {"tempo", K_NUM},         {"pitch_semitones", K_NUM},
    {"change", K_STR},        {"flag", K_STR},
    {"status", K_STR},      {"decided_by", K_STR},    {"decided_at", K_STR},
    {"note", K_STR},        {"decisions", K_NUM},     {"copies", K_JSON},
    {"evidence", K_JSON},
};

static const col_t HIST_COLS[REVIEW_HNCOLS] = {
    {"id", K_NUM},       {"match_id", K_NUM}, {"from", K_STR},       {"to", K_STR},
    {"reviewer", K_STR}, {"note", K_STR},     {"decided_at", K_STR},
};

static const col_t STAT_COLS[REVIEW_SNCOLS] = {
    {"tenant", K_STR},    {"flag", K_STR},      {"total", K_NUM},          {"pending", K_NUM},
    {"confirmed", K_NUM}, {"dismissed", K_NUM}, {"dismissal_rate", K_NUM},
};

/* Row i of res as the members of a JSON object (no braces), cols [0, n). */
static void json_members(FILE *f, const PGresult *res, int i, const col_t *cols, int n)
{
    for (int c = 0; c < n; c++) {
        if (c) fputc(',', f);
        cli_json_string(f, cols[c].name);
        fputc(':', f);
        if (PQgetisnull(res, i, c)) fputs("null", f);
        else if (cols[c].kind == K_STR) cli_json_string(f, PQgetvalue(res, i, c));
        else fputs(PQgetvalue(res, i, c), f);
    }
}

/*
 * s as one CSV field (RFC 4180: quoted when it holds a comma, quote or
 * line break).  A text cell (`text` 1: anything from outside, a client's
 * reference, a title, a note) that a spreadsheet would take for a formula,
 * one beginning with = + - @ or a tab or CR (OWASP, "CSV Injection"), is
 * written quoted behind a single quote, so it is shown as the text it is
 * ("=1+2" becomes "'=1+2").  Numbers are never changed: "-0.5" stays.
 */
static void csv_field(FILE *f, const char *s, int text)
{
    int formula = text && *s && strchr("=+-@\t\r", *s);
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (formula) fputc('\'', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_header(FILE *f, const col_t *cols, int n)
{
    for (int c = 0; c < n; c++) {
        if (c) fputc(',', f);
        fputs(cols[c].name, f);
    }
}

static void csv_row(FILE *f, const PGresult *res, int i, const col_t *cols, int n)
{
    for (int c = 0; c < n; c++) {
        if (c) fputc(',', f);
        if (!PQgetisnull(res, i, c)) csv_field(f, PQgetvalue(res, i, c), cols[c].kind != K_NUM);
    }
}

static const char *val(const PGresult *res, int i, int c, const char *dflt)
{
    return PQgetisnull(res, i, c) ? dflt : PQgetvalue(res, i, c);
}

static const char *short_flag(const char *flag)
{
    if (!strcmp(flag, "likely_infringement")) return "infringement";
    if (!strcmp(flag, "possible_reuse")) return "reuse";
    return flag;
}

/* "Artist - Title", or whichever there is, or the external id, or the
 * source file's name, or "-". */
static void recording_name(const PGresult *res, int i, char *buf, size_t len)
{
    const char *a = val(res, i, REVIEW_COL_ARTIST, NULL), *t = val(res, i, REVIEW_COL_TITLE, NULL);
    const char *src = val(res, i, REVIEW_COL_SOURCE, NULL);
    if (a && t) snprintf(buf, len, "%s - %s", a, t);
    else if (a || t) snprintf(buf, len, "%s", a ? a : t);
    else if (!PQgetisnull(res, i, REVIEW_COL_EXTERNAL_ID))
        snprintf(buf, len, "%s", PQgetvalue(res, i, REVIEW_COL_EXTERNAL_ID));
    else if (src && *src) snprintf(buf, len, "%s", strrchr(src, '/') ? strrchr(src, '/') + 1 : src);
    else snprintf(buf, len, "-");
}

/* What changed between the recording and the upload, in words. */
static void change_text(const char *change, double speed, double tempo, double pitch, char *buf,
                        size_t len)
{
    if (!change) snprintf(buf, len, "-");
    else if (!strcmp(change, "speed")) snprintf(buf, len, "speed %+.1f%%", 100 * (speed - 1));
    else if (!strcmp(change, "tempo"))
        snprintf(buf, len, "tempo %+.1f%%, pitch kept", 100 * (tempo - 1));
    else if (!strcmp(change, "pitch")) snprintf(buf, len, "pitch %+.2f semitones", pitch);
    else if (!strcmp(change, "same")) snprintf(buf, len, "same speed and pitch");
    else snprintf(buf, len, "%s", change);
}

/* ------------------------------------------------------------------------ */
/* list, stats, export                                                      */
/* ------------------------------------------------------------------------ */

static int fail(const char *err)
{
    cli_error("review", "%s", err);
    return EXIT_FAIL;
}

static int do_list(db_conn_t *conn, const opts_t *o)
{
    char err[2048];
    PGresult *res;
    long limit = o->limit_set ? o->limit : (cli_isatty(1) && !o->json && !o->csv ? 50 : 0);
    if (review_list(conn, &o->f, o->order, limit, 0, &res, err, sizeof err) != DB_OK)
        return fail(err);
    int n = PQntuples(res), ncols = REVIEW_COL_EVIDENCE; /* no evidence in lists */
    if (o->csv) {
        csv_header(stdout, LIST_COLS, ncols);
        fputc('\n', stdout);
    } else if (!o->json) {
        printf("%6s  %-16s  %-10s  %-12s  %-9s  %5s  %5s  %7s  %-13s  %6s  %s\n", "id",
               "found (UTC)", "tenant", "flag", "status", "score", "conf", "matched", "query s",
               "track", "recording");
    }
    for (int i = 0; i < n; i++) {
        if (o->json) {
            fputc('{', stdout);
            json_members(stdout, res, i, LIST_COLS, ncols);
            fputs("}\n", stdout);
        } else if (o->csv) {
            csv_row(stdout, res, i, LIST_COLS, ncols);
            fputc('\n', stdout);
        } else {
            /* every text from outside (API clients, rights holders,
             * reviewers) is escaped: no byte of it reaches the terminal as a
             * control */
            cli_texts_t tx = CLI_TEXTS_INIT;
            char when[17], rec[256], q[32];
            snprintf(when, sizeof when, "%.10s %.5s", PQgetvalue(res, i, REVIEW_COL_CREATED),
                     PQgetvalue(res, i, REVIEW_COL_CREATED) + 11);
            recording_name(res, i, rec, sizeof rec);
            snprintf(q, sizeof q, "%.1f-%.1f", atof(PQgetvalue(res, i, REVIEW_COL_QUERY_START)),
                     atof(PQgetvalue(res, i, REVIEW_COL_QUERY_END)));
            printf("%6s  %-16s  %-10.10s  %-12s  %-9s  %5s  %5.2f  %6.1fs  %-13s  %6s  %s\n",
                   PQgetvalue(res, i, REVIEW_COL_ID), when,
                   cli_text(&tx, PQgetvalue(res, i, REVIEW_COL_TENANT)),
                   short_flag(PQgetvalue(res, i, REVIEW_COL_FLAG)),
                   PQgetvalue(res, i, REVIEW_COL_STATUS), PQgetvalue(res, i, REVIEW_COL_SCORE),
                   atof(PQgetvalue(res, i, REVIEW_COL_CONFIDENCE)),
                   atof(PQgetvalue(res, i, REVIEW_COL_MATCHED_SECONDS)), q,
                   PQgetvalue(res, i, REVIEW_COL_TRACK), cli_text(&tx, rec));
            cli_texts_free(&tx);
        }
    }
    if (!o->json && !o->csv && n == 0) printf("(no matches)\n");
    if (!o->json && !o->csv && limit && n == limit)
        fprintf(stderr, "(the first %ld; --limit 0 lists all)\n", limit);
    PQclear(res);
    return EXIT_OK;
}

static int do_stats(db_conn_t *conn, const opts_t *o)
{
    char err[2048];
    PGresult *res;
    if (review_stats(conn, &o->f, &res, err, sizeof err) != DB_OK) return fail(err);
    int n = PQntuples(res);
    if (o->json) {
        for (int i = 0; i < n; i++) {
            fputc('{', stdout);
            json_members(stdout, res, i, STAT_COLS, REVIEW_SNCOLS);
            fputs("}\n", stdout);
        }
        PQclear(res);
        return EXIT_OK;
    }
    printf("%-12s  %-20s  %7s  %7s  %9s  %9s  %s\n", "tenant", "flag", "matches", "pending",
           "confirmed", "dismissed", "dismissal rate");
    /* per tenant and flag, then per flag over all tenants */
    static const char *flags[3] = {"likely_infringement", "possible_reuse", "none"};
    long long tot[3][4] = {{0}};
    for (int i = 0; i < n; i++) {
        const char *rate = val(res, i, REVIEW_SCOL_DISMISSAL_RATE, NULL);
        char r[16] = "-";
        if (rate) snprintf(r, sizeof r, "%.1f%%", 100 * atof(rate));
        char tenant[13];
        cli_text_escape(tenant, sizeof tenant, PQgetvalue(res, i, REVIEW_SCOL_TENANT),
                        CLI_ESCAPE_TERMINAL);
        printf("%-12.12s  %-20s  %7s  %7s  %9s  %9s  %s\n", tenant,
               PQgetvalue(res, i, REVIEW_SCOL_FLAG), PQgetvalue(res, i, REVIEW_SCOL_TOTAL),
               PQgetvalue(res, i, REVIEW_SCOL_PENDING), PQgetvalue(res, i, REVIEW_SCOL_CONFIRMED),
               PQgetvalue(res, i, REVIEW_SCOL_DISMISSED), r);
        for (int k = 0; k < 3; k++)
            if (!strcmp(PQgetvalue(res, i, REVIEW_SCOL_FLAG), flags[k]))
                for (int c = 0; c < 4; c++) tot[k][c] += atoll(PQgetvalue(res, i, REVIEW_SCOL_TOTAL + c));
    }
    if (n == 0) printf("(no matches)\n");
    for (int k = 0; k < 3 && n; k++) {
        if (!tot[k][0]) continue;
        char r[16] = "-";
        long long decided = tot[k][2] + tot[k][3];
        if (decided) snprintf(r, sizeof r, "%.1f%%", 100.0 * (double)tot[k][3] / (double)decided);
        printf("%-12s  %-20s  %7lld  %7lld  %9lld  %9lld  %s\n", "(all)", flags[k], tot[k][0],
               tot[k][1], tot[k][2], tot[k][3], r);
    }
    PQclear(res);
    return EXIT_OK;
}

/* The history rows of match `id` in hist (sorted by log id) as a JSON array. */
static void history_json(FILE *f, const PGresult *hist, const char *id)
{
    int first = 1;
    fputc('[', f);
    for (int h = 0; h < PQntuples(hist); h++) {
        if (strcmp(PQgetvalue(hist, h, REVIEW_HCOL_MATCH), id)) continue;
        fputs(first ? "{" : ",{", f);
        first = 0;
        json_members(f, hist, h, HIST_COLS, REVIEW_HNCOLS);
        fputc('}', f);
    }
    fputc(']', f);
}

/* "query_start-query_end@ref_start-ref_end;..." from evidence JSON. */
static void segments_text(const char *evidence, char *buf, size_t len)
{
    json_t *ev = json_loads(evidence ? evidence : "null", 0, NULL), *seg;
    size_t i, o = 0;
    buf[0] = 0;
    json_array_foreach(json_object_get(ev, "segments"), i, seg)
    {
        if (o >= len) break;
        o += (size_t)snprintf(buf + o, len - o, "%s%.2f-%.2f@%.2f-%.2f", i ? ";" : "",
                              json_number_value(json_object_get(seg, "query_start")),
                              json_number_value(json_object_get(seg, "query_end")),
                              json_number_value(json_object_get(seg, "ref_start")),
                              json_number_value(json_object_get(seg, "ref_end")));
    }
    json_decref(ev);
}

static int do_export(db_conn_t *conn, const opts_t *o)
{
    char err[2048];
    PGresult *res = NULL, *hist = NULL;
    FILE *out = stdout;
    int json = o->format && !strcmp(o->format, "json"), status = EXIT_FAIL;
    if (review_list(conn, &o->f, REVIEW_NEWEST, o->limit_set ? o->limit : 0, 1, &res, err,
                    sizeof err) != DB_OK ||
        review_history(conn, &o->f, &hist, err, sizeof err) != DB_OK) {
        fail(err);
        goto out;
    }
    if (o->output && !(out = fopen(o->output, "w"))) {
        cli_error("review", "cannot write %s: %s", o->output, strerror(errno));
        goto out;
    }
    int n = PQntuples(res);
    if (!json) {
        csv_header(out, LIST_COLS, REVIEW_COL_EVIDENCE);
        fputs(",segments,aligned_prints,history\n", out);
    }
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, REVIEW_COL_ID);
        if (json) {
            fputc('{', out);
            json_members(out, res, i, LIST_COLS, REVIEW_NCOLS);
            fputs(",\"history\":", out);
            history_json(out, hist, id);
            fputs("}\n", out);
            continue;
        }
        csv_row(out, res, i, LIST_COLS, REVIEW_COL_EVIDENCE);
        char segs[1024], line[4096];
        const char *ev = val(res, i, REVIEW_COL_EVIDENCE, NULL);
        segments_text(ev, segs, sizeof segs);
        json_t *evj = json_loads(ev ? ev : "null", 0, NULL);
        fputc(',', out);
        csv_field(out, segs, 0);
        fprintf(out, ",%zu,", json_array_size(json_object_get(evj, "points")));
        json_decref(evj);
        /* history: "time reviewer from>to (note); ..." */
        size_t l = 0;
        line[0] = 0;
        for (int h = 0; h < PQntuples(hist) && l < sizeof line; h++) {
            if (strcmp(PQgetvalue(hist, h, REVIEW_HCOL_MATCH), id)) continue;
            l += (size_t)snprintf(line + l, sizeof line - l, "%s%s %s %s>%s%s%s%s", l ? "; " : "",
                                  PQgetvalue(hist, h, REVIEW_HCOL_AT),
                                  PQgetvalue(hist, h, REVIEW_HCOL_REVIEWER),
                                  PQgetvalue(hist, h, REVIEW_HCOL_FROM),
                                  PQgetvalue(hist, h, REVIEW_HCOL_TO),
                                  PQgetisnull(hist, h, REVIEW_HCOL_NOTE) ? "" : " (",
                                  val(hist, h, REVIEW_HCOL_NOTE, ""),
                                  PQgetisnull(hist, h, REVIEW_HCOL_NOTE) ? "" : ")");
        }
        csv_field(out, line, 1);
        fputc('\n', out);
    }
    if (fflush(out) || ferror(out)) {
        cli_error("review", "writing the export failed: %s", strerror(errno));
        goto out;
    }
    if (o->output) fprintf(stderr, "exported %d matches to %s\n", n, o->output);
    status = EXIT_OK;
out:
    if (out && out != stdout && fclose(out) && status == EXIT_OK) {
        cli_error("review", "writing %s failed: %s", o->output, strerror(errno));
        status = EXIT_FAIL;
    }
    PQclear(res);
    PQclear(hist);
    return status;
}

/* ------------------------------------------------------------------------ */
/* show and its picture                                                     */
/* ------------------------------------------------------------------------ */

/* An array of [a, b] pairs of non-negative integers as 2n uint32 (malloc'd;
 * NULL with *n 0 when there are none). */
static uint32_t *pairs_of(const json_t *a, size_t *n)
{
    size_t i, k = 0;
    json_t *e;
    uint32_t *v = json_array_size(a) ? malloc(2 * json_array_size(a) * sizeof *v) : NULL;
    if (v)
        json_array_foreach(a, i, e)
        {
            json_int_t x = json_integer_value(json_array_get(e, 0)),
                       y = json_integer_value(json_array_get(e, 1));
            if (x < 0 || y < 0 || x > UINT32_MAX || y > UINT32_MAX) continue;
            v[2 * k] = (uint32_t)x;
            v[2 * k + 1] = (uint32_t)y;
            k++;
        }
    *n = k;
    return v;
}

/*
 * The reference's side of the picture: fingerprint the recording's source
 * file again (it must still be readable here, and the catalog's parameters
 * must be this build's) and keep its distinct anchors within [lo, hi]
 * seconds.  NULL with a reason in why when it cannot.
 */
static uint32_t *ref_peaks(const catalog_track_t *t, double lo, double hi, size_t *n, char *why,
                           size_t whylen)
{
    fp_config_t cfg;
    fp_limits_t lim;
    fp_result_t fr;
    char err[512];
    *n = 0;
    fp_config_default(&cfg);
    fp_limits_default(&lim);
    if (!t->source || !*t->source) {
        snprintf(why, whylen, "no reference peaks: the track has no source file");
        return NULL;
    }
    if (t->config_id != fp_config_id(&cfg)) {
        snprintf(why, whylen, "no reference peaks: indexed with other parameters");
        return NULL;
    }
    if (fp_extract_path(t->source, &cfg, &lim, &fr, err, sizeof err) != FP_OK) {
        snprintf(why, whylen, "no reference peaks: %s", err);
        return NULL;
    }
    double fs = fp_config_frame_seconds(&cfg), tlo = ceil(lo / fs), thi = floor(hi / fs);
    uint32_t *out = NULL;
    fp_err_t rc = FP_OK;
    if (thi >= 0 && tlo <= UINT32_MAX)
        rc = fp_prints_anchors(fr.prints, fr.count, tlo > 0 ? (uint32_t)tlo : 0,
                               thi < UINT32_MAX ? (uint32_t)thi : UINT32_MAX, &out, n);
    fp_result_clear(&fr);
    if (rc != FP_OK) {
        snprintf(why, whylen, "no reference peaks: out of memory");
        return NULL;
    }
    if (!out) snprintf(why, whylen, "no reference peaks in the aligned excerpt");
    return out;
}

static int write_plot(const PGresult *res, const catalog_track_t *t, const char *path)
{
    const char *evs = val(res, 0, REVIEW_COL_EVIDENCE, "{}");
    json_error_t jerr;
    json_t *ev = json_loads(evs, 0, &jerr), *seg;
    review_segment_t segs[64];
    size_t nsegs = 0, i, npts = 0, nq = 0, nr = 0;
    uint32_t *pts = NULL, *qp = NULL, *rp = NULL;
    char title[512], sub[512], rnote[600] = "", rec[256];
    int status = EXIT_FAIL;
    FILE *out = NULL;
    if (!ev) {
        cli_error("review", "the stored evidence does not parse: %s", jerr.text);
        return EXIT_FAIL;
    }
    json_array_foreach(json_object_get(ev, "segments"), i, seg)
    {
        if (nsegs == 64) break;
        segs[nsegs++] = (review_segment_t){
            json_number_value(json_object_get(seg, "query_start")),
            json_number_value(json_object_get(seg, "query_end")),
            json_number_value(json_object_get(seg, "ref_start")),
            json_number_value(json_object_get(seg, "ref_end")),
            (int)json_integer_value(json_object_get(seg, "score"))};
    }
    pts = pairs_of(json_object_get(ev, "points"), &npts);
    qp = pairs_of(json_object_get(ev, "query_peaks"), &nq);
    double qlo = 1e30, qhi = -1e30;
    for (size_t k = 0; k < nsegs; k++) {
        if (segs[k].query_start < qlo) qlo = segs[k].query_start;
        if (segs[k].query_end > qhi) qhi = segs[k].query_end;
    }
    if (nsegs) {
        /* the reference excerpt facing the whole query span, and a margin */
        /* the reference facing the segments' query span through the first
         * segment's line (as the picture places it), and a second more */
        double slope = segs[0].query_end - segs[0].query_start > 0.5
                           ? (segs[0].ref_end - segs[0].ref_start) /
                                 (segs[0].query_end - segs[0].query_start)
                           : 1;
        double lo = segs[0].ref_start + (qlo - segs[0].query_start) * slope,
               hi = segs[0].ref_start + (qhi - segs[0].query_start) * slope;
        rp = ref_peaks(t, lo - 1, hi + 1, &nr, rnote, sizeof rnote);
    } else {
        snprintf(rnote, sizeof rnote, "no segments in the evidence");
    }
    fp_config_t cfg;
    fp_config_default(&cfg);
    recording_name(res, 0, rec, sizeof rec);
    snprintf(title, sizeof title, "match %s: %s (track %s)", PQgetvalue(res, 0, REVIEW_COL_ID), rec,
             PQgetvalue(res, 0, REVIEW_COL_TRACK));
    snprintf(sub, sizeof sub, "upload %s%s%s, tenant %s, score %s, %s, %s",
             PQgetvalue(res, 0, REVIEW_COL_UPLOAD),
             PQgetisnull(res, 0, REVIEW_COL_CLIENT_REF) ? "" : " ref ",
             val(res, 0, REVIEW_COL_CLIENT_REF, ""), PQgetvalue(res, 0, REVIEW_COL_TENANT),
             PQgetvalue(res, 0, REVIEW_COL_SCORE), PQgetvalue(res, 0, REVIEW_COL_FLAG),
             PQgetvalue(res, 0, REVIEW_COL_STATUS));
    /* controls are not XML: the picture's text is escaped as a terminal's */
    char title_x[512], sub_x[512];
    cli_text_escape(title_x, sizeof title_x, title, CLI_ESCAPE_TERMINAL);
    cli_text_escape(sub_x, sizeof sub_x, sub, CLI_ESCAPE_TERMINAL);
    review_plot_t p = {
        .title = title_x,
        .subtitle = sub_x,
        .frame_seconds = json_number_value(json_object_get(ev, "frame_seconds")),
        .points = pts,
        .npoints = npts,
        .segs = segs,
        .nsegs = nsegs,
        .bin_hz = (double)cfg.sample_rate / cfg.fft_size,
        .query_peaks = qp,
        .nquery = nq,
        .ref_peaks = rp,
        .nref = nr,
        .query_note = "no query peaks stored with this match",
        .ref_note = rnote,
    };
    if (!(p.frame_seconds > 0)) p.frame_seconds = fp_config_frame_seconds(&cfg);
    if (!(out = fopen(path, "w"))) {
        cli_error("review", "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (review_plot_svg(out, &p) || fclose(out)) {
        out = NULL;
        cli_error("review", "writing %s failed: %s", path, strerror(errno));
        goto out;
    }
    out = NULL;
    fprintf(stderr, "wrote %s (%zu aligned prints, %zu query peaks, %zu reference peaks)\n", path,
            npts, nq, nr);
    if (*rnote && !nr) fprintf(stderr, "note: %s\n", rnote);
    status = EXIT_OK;
out:
    if (out) fclose(out);
    json_decref(ev);
    free(pts);
    free(qp);
    free(rp);
    return status;
}

/* The other copies of a match's audio, one line: "same audio  match 12
 * (track 7), ..." (nothing when there are none). */
static void print_copies(const PGresult *res)
{
    json_t *cp = json_loads(val(res, 0, REVIEW_COL_COPIES, "[]"), 0, NULL), *c;
    size_t i;
    json_array_foreach(cp, i, c)
    {
        printf("%s match %lld (track %lld)", i ? "," : "  same audio ",
               (long long)json_integer_value(json_object_get(c, "match_id")),
               (long long)json_integer_value(json_object_get(c, "track_id")));
    }
    if (json_array_size(cp))
        printf("\n              (copies of one recording; --all-copies decides them together)\n");
    json_decref(cp);
}

static int do_show(db_conn_t *conn, const opts_t *o)
{
    char err[2048];
    PGresult *res = NULL, *hist = NULL;
    catalog_track_t t;
    catalog_copy_t *cp = NULL;   /* the recording's known copies, in the scope */
    size_t ncp = 0;
    int status = EXIT_FAIL;
    memset(&t, 0, sizeof t);
    if (review_list(conn, &o->f, REVIEW_NEWEST, 1, 1, &res, err, sizeof err) != DB_OK ||
        review_history(conn, &o->f, &hist, err, sizeof err) != DB_OK) {
        fail(err);
        goto out;
    }
    if (PQntuples(res) == 0) {
        cli_error("review", "no match %lld%s%s", (long long)o->f.match_id,
                  o->f.tenant ? " for tenant " : "", o->f.tenant ? o->f.tenant : "");
        fprintf(stderr, "hint: 'earmark review list' shows the queue\n");
        goto out;
    }
    if (catalog_track_get(conn, atoll(PQgetvalue(res, 0, REVIEW_COL_TRACK)), &t, err,
                          sizeof err) != DB_OK ||
        catalog_copies_of(conn, t.id, o->f.tenant, &cp, &ncp, err, sizeof err) != DB_OK) {
        fail(err);
        goto out;
    }
    if (o->json) {
        fputc('{', stdout);
        json_members(stdout, res, 0, LIST_COLS, REVIEW_NCOLS);
        fputs(",\"recording\":{\"duration_s\":", stdout);
        printf("%.3f,\"source\":", t.duration_s);
        if (t.source) cli_json_string(stdout, t.source);
        else fputs("null", stdout);
        printf(",\"status\":\"%s\",\"copies\":[", t.status);
        for (size_t k = 0; k < ncp; k++) {
            printf("%s{\"track_id\":%lld,\"tenant\":", k ? "," : "", (long long)cp[k].other);
            cli_json_string(stdout, cp[k].tenant);
            printf(",\"relation\":\"%s\"}", cp[k].relation);
        }
        fputs("]},\"history\":", stdout);
        history_json(stdout, hist, PQgetvalue(res, 0, REVIEW_COL_ID));
        fputs("}\n", stdout);
    } else {
        /* every text from outside (the client's reference, the catalog's
         * titles and paths, reviewers' names and notes) is escaped: no byte
         * of it reaches the terminal as a control */
        cli_texts_t tx = CLI_TEXTS_INIT;
        char rec[256];
        recording_name(res, 0, rec, sizeof rec);
        printf("match %s  %s  %s  score %s  confidence %s\n", PQgetvalue(res, 0, REVIEW_COL_ID),
               PQgetvalue(res, 0, REVIEW_COL_STATUS), PQgetvalue(res, 0, REVIEW_COL_FLAG),
               PQgetvalue(res, 0, REVIEW_COL_SCORE), PQgetvalue(res, 0, REVIEW_COL_CONFIDENCE));
        printf("\nupload\n  id          %s\n  client ref  %s\n  tenant      %s\n"
               "  duration    %s s\n  found       %s\n",
               PQgetvalue(res, 0, REVIEW_COL_UPLOAD),
               cli_text(&tx, val(res, 0, REVIEW_COL_CLIENT_REF, "-")),
               cli_text(&tx, PQgetvalue(res, 0, REVIEW_COL_TENANT)),
               PQgetvalue(res, 0, REVIEW_COL_UPLOAD_SECONDS),
               PQgetvalue(res, 0, REVIEW_COL_CREATED));
        printf("\nrecording\n  track       %s (%s)\n  external id %s\n  title       %s\n"
               "  artist      %s\n  duration    %.1f s\n  source      %s\n",
               PQgetvalue(res, 0, REVIEW_COL_TRACK), t.status,
               cli_text(&tx, val(res, 0, REVIEW_COL_EXTERNAL_ID, "-")),
               cli_text(&tx, val(res, 0, REVIEW_COL_TITLE, "-")),
               cli_text(&tx, val(res, 0, REVIEW_COL_ARTIST, "-")), t.duration_s,
               cli_text(&tx, t.source ? t.source : "-"));
        printf("  copies      %s", ncp ? "" : "none known\n");
        for (size_t k = 0; k < ncp; k++)
            printf("%s%lld (%s, %s)%s", k ? ", " : "", (long long)cp[k].other,
                   !strcmp(cp[k].relation, "contained_in") ? "contains it" : cp[k].relation,
                   cli_text(&tx, cp[k].tenant), k + 1 == ncp ? "\n" : "");
        char chg[96];
        change_text(val(res, 0, REVIEW_COL_CHANGE, NULL), atof(val(res, 0, REVIEW_COL_SPEED, "1")),
                    atof(val(res, 0, REVIEW_COL_TEMPO, "1")),
                    atof(val(res, 0, REVIEW_COL_PITCH, "0")), chg, sizeof chg);
        printf("\nmatch\n  matched     %s s of the upload (coverage %s)\n  change      %s\n",
               PQgetvalue(res, 0, REVIEW_COL_MATCHED_SECONDS),
               PQgetvalue(res, 0, REVIEW_COL_COVERAGE), chg);
        print_copies(res);
        printf("\nsegments\n  %-17s  %-17s  %8s  %6s  %7s  %s\n", "query s", "reference s",
               "matched", "score", "speed", "change");
        json_t *ev = json_loads(val(res, 0, REVIEW_COL_EVIDENCE, "{}"), 0, NULL), *seg;
        size_t i;
        json_array_foreach(json_object_get(ev, "segments"), i, seg)
        {
            char qs[40], rs[40];
            snprintf(qs, sizeof qs, "%.2f - %.2f", json_number_value(json_object_get(seg, "query_start")),
                     json_number_value(json_object_get(seg, "query_end")));
            snprintf(rs, sizeof rs, "%.2f - %.2f", json_number_value(json_object_get(seg, "ref_start")),
                     json_number_value(json_object_get(seg, "ref_end")));
            char sc[96];
            change_text(json_string_value(json_object_get(seg, "change")),
                        json_number_value(json_object_get(seg, "speed")),
                        json_number_value(json_object_get(seg, "tempo")),
                        json_number_value(json_object_get(seg, "pitch_semitones")), sc, sizeof sc);
            printf("  %-17s  %-17s  %7.2fs  %6d  %7.4f  %s\n", qs, rs,
                   json_number_value(json_object_get(seg, "matched_seconds")),
                   (int)json_integer_value(json_object_get(seg, "score")),
                   json_number_value(json_object_get(seg, "speed")), cli_text(&tx, sc));
        }
        printf("  aligned prints kept as evidence: %zu\n", json_array_size(json_object_get(ev, "points")));
        json_decref(ev);
        printf("\nhistory\n");
        if (PQntuples(hist) == 0) printf("  no decision yet\n");
        for (int h = 0; h < PQntuples(hist); h++) {
            printf("  %s  %-9s -> %-9s  by %s", PQgetvalue(hist, h, REVIEW_HCOL_AT),
                   PQgetvalue(hist, h, REVIEW_HCOL_FROM), PQgetvalue(hist, h, REVIEW_HCOL_TO),
                   cli_text(&tx, PQgetvalue(hist, h, REVIEW_HCOL_REVIEWER)));
            if (!PQgetisnull(hist, h, REVIEW_HCOL_NOTE))
                printf(": %s", cli_text(&tx, PQgetvalue(hist, h, REVIEW_HCOL_NOTE)));
            putchar('\n');
        }
        cli_texts_free(&tx);
    }
    status = o->plot ? write_plot(res, &t, o->plot) : EXIT_OK;
out:
    catalog_copies_free(cp, ncp);
    catalog_track_clear(&t);
    PQclear(res);
    PQclear(hist);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Decisions                                                                */
/* ------------------------------------------------------------------------ */

static const char *target_of(const char *action)
{
    if (!strcmp(action, "confirm")) return "confirmed";
    if (!strcmp(action, "dismiss")) return "dismissed";
    return "pending";
}

/* Ask on the terminal; 1 for yes. */
static int ask(const char *question)
{
    char line[64];
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    if (!fgets(line, sizeof line, stdin)) return 0;
    return line[0] == 'y' || line[0] == 'Y';
}

static int do_decide_all(db_conn_t *conn, const opts_t *o, const char *action)
{
    char err[2048], q[256];
    const char *to = target_of(action);
    PGresult *res;
    if (review_list(conn, &o->f, REVIEW_NEWEST, 0, 0, &res, err, sizeof err) != DB_OK)
        return fail(err);
    long long n = 0;
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, REVIEW_COL_STATUS), to)) n++;
    PQclear(res);
    if (n == 0) {
        printf("no selected match needs to be %s\n", to);
        return EXIT_OK;
    }
    if (!o->yes) {
        if (!isatty(0))
            return cli_usage("review", USAGE,
                             "%s of %lld matches needs confirming; add --yes when not on a "
                             "terminal",
                             action, n);
        snprintf(q, sizeof q, "%s %lld match%s (mark %s)?", action, n, n == 1 ? "" : "es", to);
        if (!ask(q)) {
            fprintf(stderr, "nothing changed\n");
            return EXIT_FAIL;
        }
    }
    int64_t done = 0;
    if (review_decide(conn, &o->f, to, o->reviewer, o->note, &done, err, sizeof err) != DB_OK)
        return fail(err);
    printf("%lld match%s now %s\n", (long long)done, done == 1 ? " is" : "es are", to);
    return EXIT_OK;
}

static int do_decide(db_conn_t *conn, const opts_t *o, const char *action, int n, char **ids)
{
    char err[2048];
    const char *to = target_of(action);
    int status = EXIT_OK;
    for (int i = 0; i < n; i++) {
        long id;
        if (cli_parse_int(ids[i], 1, 9223372036854775807L, &id)) {
            cli_error("review", "a match id is a positive integer, not '%s'", ids[i]);
            status = EXIT_FAIL;
            continue;
        }
        review_filter_t f = o->f;
        int64_t done = 0;
        if (o->all_copies) {
            f.copies_of = id;
            if (review_decide(conn, &f, to, o->reviewer, o->note, &done, err, sizeof err) != DB_OK) {
                cli_error("review", "%s", err);
                status = EXIT_FAIL;
            } else if (!done) {
                cli_error("review", "no match %ld, or none of its copies, needs to be %s", id, to);
                status = EXIT_FAIL;
            } else {
                printf("match %ld and its copies: %lld now %s\n", id, (long long)done, to);
            }
            continue;
        }
        f.match_id = id;
        if (review_decide(conn, &f, to, o->reviewer, o->note, &done, err, sizeof err) != DB_OK) {
            cli_error("review", "%s", err);
            status = EXIT_FAIL;
        } else {
            printf("match %ld is now %s\n", id, to);
        }
    }
    return status;
}

/* ------------------------------------------------------------------------ */
/* The registry of reviewers                                                */
/* ------------------------------------------------------------------------ */

static int do_reviewers(db_conn_t *conn, const opts_t *o, const char *tenant, int n, char **args)
{
    char err[2048];
    review_reviewer_t me;
    if (o->reviewer && *o->reviewer) {
        if (review_reviewer_get(conn, o->reviewer, &me, err, sizeof err) != DB_OK) return fail(err);
        if (me.registered && (me.disabled || me.tenant[0])) {
            cli_error("review", "reviewer '%s' cannot manage reviewers (%s)", o->reviewer,
                      me.disabled ? "disabled" : "confined to one tenant");
            return EXIT_FAIL;
        }
    }
    if (n == 0) {
        PGresult *res;
        if (review_reviewer_list(conn, &res, err, sizeof err) != DB_OK) return fail(err);
        if (!o->json) printf("%-20s  %-16s  %-20s  %s\n", "reviewer", "tenant", "added", "state");
        for (int i = 0; i < PQntuples(res); i++) {
            if (o->json) {
                fputs("{\"name\":", stdout);
                cli_json_string(stdout, PQgetvalue(res, i, 0));
                fputs(",\"tenant\":", stdout);
                if (PQgetisnull(res, i, 1)) fputs("null", stdout);
                else cli_json_string(stdout, PQgetvalue(res, i, 1));
                printf(",\"created_at\":\"%s\",\"disabled\":%s}\n", PQgetvalue(res, i, 2),
                       PQgetisnull(res, i, 3) ? "false" : "true");
            } else {
                printf("%-20s  %-16s  %-20s  %s\n", PQgetvalue(res, i, 0),
                       val(res, i, 1, "(all tenants)"), PQgetvalue(res, i, 2),
                       PQgetisnull(res, i, 3) ? "enabled" : "disabled");
            }
        }
        if (!o->json && PQntuples(res) == 0)
            printf("(none: any name may decide until a reviewer is added)\n");
        PQclear(res);
        return EXIT_OK;
    }
    if (!strcmp(args[0], "add") && n == 2) {
        if (review_reviewer_add(conn, args[1], tenant, err, sizeof err) != DB_OK) return fail(err);
        printf("reviewer %s added, %s%s\n", args[1], tenant ? "for tenant " : "for all tenants",
               tenant ? tenant : "");
        return EXIT_OK;
    }
    if (!strcmp(args[0], "disable") && n == 2) {
        if (review_reviewer_disable(conn, args[1], err, sizeof err) != DB_OK) return fail(err);
        printf("reviewer %s disabled\n", args[1]);
        return EXIT_OK;
    }
    return cli_usage("review", USAGE, "reviewers takes: add NAME [--tenant NAME] | disable NAME");
}

/* ------------------------------------------------------------------------ */
/* The command line                                                         */
/* ------------------------------------------------------------------------ */

/* 1 when s starts like a date YYYY-MM-DD. */
static int looks_like_date(const char *s)
{
    int y, m, d;
    char c;
    return strlen(s) >= 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &c) >= 3 && m >= 1 &&
           m <= 12 && d >= 1 && d <= 31;
}

int cmd_review(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"tenant", required_argument, NULL, 'T'},   {"status", required_argument, NULL, 's'},
        {"flag", required_argument, NULL, 'f'},     {"min-score", required_argument, NULL, 'm'},
        {"since", required_argument, NULL, 'S'},    {"until", required_argument, NULL, 'U'},
        {"track", required_argument, NULL, 't'},    {"sort", required_argument, NULL, 'o'},
        {"limit", required_argument, NULL, 'l'},    {"json", no_argument, NULL, 'j'},
        {"csv", no_argument, NULL, 'c'},            {"reviewer", required_argument, NULL, 'r'},
        {"note", required_argument, NULL, 'n'},     {"all-matching", no_argument, NULL, 'A'},
        {"all-copies", no_argument, NULL, 'C'},
        {"yes", no_argument, NULL, 'y'},            {"plot", required_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'F'},   {"output", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    opts_t o;
    memset(&o, 0, sizeof o);
    const char *env = getenv("EARMARK_TENANT");
    if (env && *env) o.f.tenant = env;
    env = getenv("EARMARK_REVIEWER");
    if (env && *env) o.reviewer = env;

    if (argc < 2) return cli_usage("review", USAGE, "which action?");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h") || !strcmp(action, "help")) {
        printf("usage: %s\n%s", USAGE, HELP);
        return EXIT_OK;
    }
    static const char *actions[] = {"list",   "show",  "confirm",  "dismiss",
                                    "reopen", "export", "stats", "reviewers"};
    int known = 0;
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) known |= !strcmp(action, actions[i]);
    if (!known) return cli_usage("review", USAGE, "unknown action '%s'", action);
    int decision = !strcmp(action, "confirm") || !strcmp(action, "dismiss") ||
                   !strcmp(action, "reopen");
    long v;
    int c;
    const char *tenant_opt = NULL;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case 'h': printf("usage: %s\n%s", USAGE, HELP); return EXIT_OK;
        case 'T': o.f.tenant = tenant_opt = optarg; break;
        case 's':
            if (!review_status_valid(optarg))
                return cli_usage("review", USAGE, "--status is pending, confirmed or dismissed");
            o.f.status = optarg;
            break;
        case 'f':
            if (!review_flag_valid(optarg))
                return cli_usage("review", USAGE,
                                 "--flag is likely_infringement, possible_reuse or none");
            o.f.flag = optarg;
            break;
        case 'm':
            if (cli_parse_int(optarg, 0, 1000000000, &v))
                return cli_usage("review", USAGE, "--min-score wants a number");
            o.f.min_score = (int)v;
            break;
        case 'S':
        case 'U':
            if (!looks_like_date(optarg))
                return cli_usage("review", USAGE, "--%s wants a date such as 2026-11-01, not '%s'",
                                 c == 'S' ? "since" : "until", optarg);
            if (c == 'S') o.f.since = optarg;
            else o.f.until = optarg;
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 9223372036854775807L, &v))
                return cli_usage("review", USAGE, "--track wants a track id");
            o.f.track_id = v;
            break;
        case 'o':
            if (!strcmp(optarg, "newest")) o.order = REVIEW_NEWEST;
            else if (!strcmp(optarg, "strongest")) o.order = REVIEW_STRONGEST;
            else return cli_usage("review", USAGE, "--sort is newest or strongest");
            break;
        case 'l':
            if (cli_parse_int(optarg, 0, 100000000, &o.limit))
                return cli_usage("review", USAGE, "--limit wants a number (0: all)");
            o.limit_set = 1;
            break;
        case 'j': o.json = 1; break;
        case 'c': o.csv = 1; break;
        case 'r': o.reviewer = optarg; break;
        case 'n': o.note = optarg; break;
        case 'A': o.all_matching = 1; break;
        case 'C': o.all_copies = 1; break;
        case 'y': o.yes = 1; break;
        case 'p': o.plot = optarg; break;
        case 'F':
            if (strcmp(optarg, "csv") && strcmp(optarg, "json"))
                return cli_usage("review", USAGE, "--format is csv or json");
            o.format = optarg;
            break;
        case 'O': o.output = optarg; break;
        default:
            return cli_usage("review", USAGE, "unknown or incomplete option '%s'",
                             argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (o.f.tenant && !*o.f.tenant) o.f.tenant = NULL;
    if (o.json && o.csv) return cli_usage("review", USAGE, "--json or --csv, not both");
    if (o.plot && strcmp(action, "show")) return cli_usage("review", USAGE, "--plot goes with show");
    if ((o.format || o.output) && strcmp(action, "export"))
        return cli_usage("review", USAGE, "--format and --output go with export");
    if ((o.note || o.yes || o.all_matching || o.all_copies) && !decision)
        return cli_usage("review", USAGE,
                         "--note, --yes, --all-matching and --all-copies go with decisions");
    if (o.all_copies && o.all_matching)
        return cli_usage("review", USAGE, "--all-copies goes with match ids, not --all-matching");
    if (!strcmp(action, "show")) {
        if (nargs != 1 || cli_parse_int(args[0], 1, 9223372036854775807L, &v))
            return cli_usage("review", USAGE, "show takes one match id");
        o.f.match_id = v;
    } else if (decision) {
        if (!o.reviewer || !*o.reviewer)
            return cli_usage("review", USAGE,
                             "a decision needs the reviewer's name: --reviewer NAME or "
                             "EARMARK_REVIEWER");
        if (o.all_matching && nargs)
            return cli_usage("review", USAGE, "match ids or --all-matching, not both");
        if (!o.all_matching && !nargs)
            return cli_usage("review", USAGE, "%s which match? (ids, or --all-matching FILTERS)",
                             action);
    } else if (nargs && strcmp(action, "reviewers")) {
        return cli_usage("review", USAGE, "%s takes no arguments ('%s')", action, args[0]);
    }

    db_conn_t *conn = cli_db_open("review");
    if (!conn) return EXIT_FAIL;
    int status;
    char err[2048], scope[256];
    if (!strcmp(action, "reviewers")) {
        status = do_reviewers(conn, &o, tenant_opt, nargs, args);
        db_close(conn);
        return status;
    }
    /* a registered reviewer's tenant is the scope of everything below */
    if (review_reviewer_scope(conn, o.reviewer, &o.f, scope, sizeof scope, err, sizeof err) !=
        DB_OK) {
        db_close(conn);
        return fail(err);
    }
    if (!strcmp(action, "list")) status = do_list(conn, &o);
    else if (!strcmp(action, "show")) status = do_show(conn, &o);
    else if (!strcmp(action, "export")) status = do_export(conn, &o);
    else if (!strcmp(action, "stats")) status = do_stats(conn, &o);
    else if (o.all_matching) status = do_decide_all(conn, &o, action);
    else status = do_decide(conn, &o, action, nargs, args);
    db_close(conn);
    return status;
}
