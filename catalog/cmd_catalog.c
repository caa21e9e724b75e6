/*
 * cmd_catalog.c -- `earmark catalog`: look after the catalog's tracks.
 *
 *   earmark catalog ls [--tenant NAME] [--all] [--limit N] [--json]
 *   earmark catalog show ID [--json]
 *   earmark catalog rm ID...
 *   earmark catalog stats [--json]
 *   earmark catalog compact
 *   earmark catalog copies [--tenant NAME] [--json]
 *                          [--scan [--all] [--min-coverage F] [--dry-run]]
 *
 * ls lists live tracks (--all: deleted ones too), newest last; rm marks
 * tracks deleted (they stop matching at once; their prints go with the next
 * merge); stats gives the counts and the store's size; compact merges the
 * store into one segment and drops deleted tracks' prints; copies lists the
 * groups of linked tracks (the same recording, or one inside another), and
 * with --scan first looks up the tracks never checked for copies (indexed
 * before links existed, or by `earmark index --no-copies`), fingerprinting
 * them again from their source files.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "earmark_fp.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_store.h"

static const char *USAGE =
    "earmark catalog ls [--tenant NAME] [--all] [--limit N] [--json] | show ID [--json] |\n"
    "                rm ID... | stats [--json] | compact |\n"
    "                copies [--tenant NAME] [--json] [--scan [--all] [--min-coverage F] [--dry-run]]";

static void help(void)
{
    printf("usage: %s\n\n"
           "  ls        live tracks, newest last (--all: deleted ones too)\n"
           "  show ID   one track, and the tracks linked to it as copies\n"
           "  rm ID...  mark tracks deleted: they stop matching at once, their links\n"
           "            are hidden, their prints go with the next merge\n"
           "  stats     counts and the store's size\n"
           "  compact   merge the store into one segment, dropping deleted tracks' prints\n"
           "  copies    the groups of linked tracks: tracks that are the same recording\n"
           "            ('same') or where one contains the other ('contains': a radio\n"
           "            edit inside the album version, an excerpt on a compilation),\n"
           "            across tenants (--tenant NAME: that tenant's tracks only).\n"
           "            `earmark index` links each new track as it is indexed;\n"
           "            --scan first looks up the live tracks never checked (indexed\n"
           "            before links existed, or with --no-copies), fingerprinting\n"
           "            them again from their source files; --all checks every live\n"
           "            track again; --min-coverage F links tracks aligned over F of\n"
           "            the shorter (default 0.5); --dry-run prints what a scan finds\n"
           "            and records nothing\n",
           USAGE);
}

static void json_or_null(const char *s)
{
    if (s) cli_json_string(stdout, s);
    else fputs("null", stdout);
}

static int do_ls(db_conn_t *conn, const char *tenant, int all, long limit, int json)
{
    char lim[24], err[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[3] = {tenant, all ? "1" : "0", lim};
    PGresult *res;
    db_err_t rc = db_query(
        conn,
        "SELECT t.id, n.name, t.external_id, t.title, t.artist, "
        "coalesce(round(t.duration_s::numeric, 1)::text, ''), t.status, coalesce(t.prints, 0) "
        "FROM tracks t JOIN tenants n ON n.id = t.tenant_id "
        "WHERE ($1::text IS NULL OR n.name = $1) AND ($2 = '1' OR t.status <> 'deleted') "
        "ORDER BY t.id DESC LIMIT $3",
        3, p, 0, &res, err, sizeof err);
    if (rc != DB_OK) {
        cli_error("catalog", "%s", err);
        return EXIT_FAIL;
    }
    int n = PQntuples(res);
    if (!json) printf("%8s  %-12s  %-16s  %8s  %-8s  %s\n", "id", "tenant", "external_id",
                      "seconds", "status", "artist - title");
    for (int i = n - 1; i >= 0; i--) {
        const char *ext = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
        const char *title = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
        const char *artist = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
        if (json) {
            printf("{\"id\":%s,\"tenant\":", PQgetvalue(res, i, 0));
            cli_json_string(stdout, PQgetvalue(res, i, 1));
            fputs(",\"external_id\":", stdout);
            json_or_null(ext);
            fputs(",\"title\":", stdout);
            json_or_null(title);
            fputs(",\"artist\":", stdout);
            json_or_null(artist);
            printf(",\"duration_s\":%s,\"status\":\"%s\",\"prints\":%s}\n",
                   *PQgetvalue(res, i, 5) ? PQgetvalue(res, i, 5) : "null", PQgetvalue(res, i, 6),
                   PQgetvalue(res, i, 7));
        } else {
            /* text from the catalog's manifests, escaped for the terminal */
            cli_texts_t tx = CLI_TEXTS_INIT;
            printf("%8s  %-12s  %-16s  %8s  %-8s  %s%s%s\n", PQgetvalue(res, i, 0),
                   cli_text(&tx, PQgetvalue(res, i, 1)), cli_text(&tx, ext ? ext : "-"),
                   PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), cli_text(&tx, artist),
                   artist && title ? " - " : "", cli_text(&tx, title));
            cli_texts_free(&tx);
        }
    }
    PQclear(res);
    return EXIT_OK;
}

/* "same as", "contains", "inside": a link read from the track shown. */
static const char *copy_relation_text(const char *relation)
{
    if (!strcmp(relation, "same")) return "same as";
    if (!strcmp(relation, "contains")) return "contains";
    return "inside";
}

/* ", at 30.0 s" into buf when the shorter track lies at an offset in the
 * longer; returns buf. */
static const char *copy_offset_text(const catalog_copy_t *c, char *buf, size_t len)
{
    buf[0] = '\0';
    if (strcmp(c->relation, "same") || fabs(c->offset_s) >= 0.05)
        snprintf(buf, len, ", at %.1f s%s", fabs(c->offset_s) < 0.05 ? 0.0 : c->offset_s,
                 !strcmp(c->relation, "contains") ? " of this track" : "");
    return buf;
}

static int do_show(db_conn_t *conn, const char *id_s, int json)
{
    long id;
    if (cli_parse_int(id_s, 1, 4294967295L, &id))
        return cli_usage("catalog", USAGE, "a track id is a positive integer, not '%s'", id_s);
    catalog_track_t t;
    char err[2048], sha[65];
    if (catalog_track_get(conn, id, &t, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        return EXIT_FAIL;
    }
    for (int i = 0; i < 32; i++) snprintf(sha + 2 * i, 3, "%02x", t.sha256[i]);
    catalog_copy_t *cp = NULL;
    size_t ncp = 0;
    if (catalog_copies_of(conn, t.id, NULL, &cp, &ncp, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        catalog_track_clear(&t);
        return EXIT_FAIL;
    }
    if (json) {
        printf("{\"id\":%lld,\"tenant\":", (long long)t.id);
        cli_json_string(stdout, t.tenant);
        fputs(",\"external_id\":", stdout);
        json_or_null(t.external_id);
        fputs(",\"title\":", stdout);
        json_or_null(t.title);
        fputs(",\"artist\":", stdout);
        json_or_null(t.artist);
        fputs(",\"source\":", stdout);
        json_or_null(t.source);
        printf(",\"duration_s\":%.3f,\"sha256\":\"%s\",\"params_version\":%d,\"config_id\":%u,"
               "\"status\":\"%s\",\"prints\":%lld,\"created_at\":\"%s\",\"copies\":[",
               t.duration_s, sha, t.params_version, t.config_id, t.status, (long long)t.prints,
               t.created_at);
        for (size_t i = 0; i < ncp; i++) {
            printf("%s{\"track_id\":%lld,\"tenant\":", i ? "," : "", (long long)cp[i].other);
            cli_json_string(stdout, cp[i].tenant);
            fputs(",\"external_id\":", stdout);
            json_or_null(cp[i].external_id);
            fputs(",\"title\":", stdout);
            json_or_null(cp[i].title);
            printf(",\"relation\":\"%s\",\"offset_s\":%.3f,\"aligned_s\":%.3f,"
                   "\"coverage\":%.4f,\"speed\":%.4f,\"frames\":%u}",
                   cp[i].relation, cp[i].offset_s, cp[i].aligned_s, cp[i].coverage, cp[i].speed,
                   cp[i].frames);
        }
        fputs("]}\n", stdout);
    } else {
        /* text from the catalog's manifests, escaped for the terminal */
        cli_texts_t tx = CLI_TEXTS_INIT;
        printf("id           %lld\ntenant       %s\nexternal_id  %s\ntitle        %s\n"
               "artist       %s\nsource       %s\nduration     %.1f s\nsha256       %s\n"
               "parameters   v%d, config %08x\nstatus       %s\nprints       %lld\n"
               "created      %s\n",
               (long long)t.id, cli_text(&tx, t.tenant),
               cli_text(&tx, t.external_id ? t.external_id : "-"),
               cli_text(&tx, t.title ? t.title : "-"), cli_text(&tx, t.artist ? t.artist : "-"),
               cli_text(&tx, t.source ? t.source : "-"), t.duration_s, sha, t.params_version,
               t.config_id, t.status, (long long)t.prints, t.created_at);
        printf("copies%s\n", ncp ? "" : "       none known");
        for (size_t i = 0; i < ncp; i++) {
            char at[64];
            printf("  %-8s track %lld (%s%s%s)%s, %.0f%% of the shorter aligned\n",
                   copy_relation_text(cp[i].relation), (long long)cp[i].other, cli_text(&tx, cp[i].tenant),
                   cp[i].title ? ", " : "", cp[i].title ? cli_text(&tx, cp[i].title) : "",
                   copy_offset_text(&cp[i], at, sizeof at), 100 * cp[i].coverage);
        }
        cli_texts_free(&tx);
    }
    catalog_copies_free(cp, ncp);
    catalog_track_clear(&t);
    return EXIT_OK;
}

static int do_rm(db_conn_t *conn, int n, char **ids)
{
    int status = EXIT_OK;
    char err[2048];
    for (int i = 0; i < n; i++) {
        long id;
        if (cli_parse_int(ids[i], 1, 4294967295L, &id)) {
            cli_error("catalog", "a track id is a positive integer, not '%s'", ids[i]);
            status = EXIT_FAIL;
            continue;
        }
        if (catalog_track_delete(conn, id, err, sizeof err) != DB_OK) {
            cli_error("catalog", "%s", err);
            status = EXIT_FAIL;
        } else {
            printf("deleted track %ld\n", id);
        }
    }
    return status;
}

static int do_stats(db_conn_t *conn, int json)
{
    char err[2048];
    store_stats_t st;
    PGresult *res;
    if (store_stats(conn, &st, err, sizeof err) != DB_OK ||
        db_query(conn,
                 "SELECT (SELECT count(*) FROM tenants), "
                 "count(*) FILTER (WHERE status <> 'deleted'), "
                 "count(*) FILTER (WHERE status = 'deleted'), "
                 "coalesce(sum(duration_s) FILTER (WHERE status <> 'deleted'), 0) / 3600.0, "
                 "pg_database_size(current_database()) FROM tracks",
                 0, NULL, 0, &res, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        return EXIT_FAIL;
    }
    double bpp = st.prints ? (double)st.bytes / (double)st.prints : 0;
    if (json)
        printf("{\"tenants\":%s,\"tracks\":%s,\"deleted\":%s,\"hours\":%.3f,\"prints\":%lld,"
               "\"segments\":%lld,\"rows\":%lld,\"store_bytes\":%lld,\"bytes_per_print\":%.2f,"
               "\"database_bytes\":%s}\n",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
               strtod(PQgetvalue(res, 0, 3), NULL), (long long)st.prints, (long long)st.segments,
               (long long)st.rows, (long long)st.bytes, bpp, PQgetvalue(res, 0, 4));
    else
        printf("tenants          %s\ntracks           %s (%s deleted)\naudio            %.2f h\n"
               "prints           %lld in %lld segments, %lld rows\n"
               "store on disk    %lld bytes, %.2f bytes a print\ndatabase         %s bytes\n",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
               strtod(PQgetvalue(res, 0, 3), NULL), (long long)st.prints, (long long)st.segments,
               (long long)st.rows, (long long)st.bytes, bpp, PQgetvalue(res, 0, 4));
    PQclear(res);
    return EXIT_OK;
}

static int do_compact(db_conn_t *conn)
{
    char err[2048];
    store_t *s;
    if (store_open(conn, &s, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        return EXIT_FAIL;
    }
    store_merge_opts_t o;
    store_merge_opts_default(&o);
    o.all = 1;
    int merges = 0;
    db_err_t rc = store_merge(s, conn, &o, &merges, err, sizeof err);
    store_free(s);
    if (rc != DB_OK) {
        cli_error("catalog", "%s", err);
        return EXIT_FAIL;
    }
    printf(merges ? "the store is one segment now\n" : "nothing to compact\n");
    return EXIT_OK;
}

/* ---- copies -------------------------------------------------------------------- */

typedef struct scan_opts {
    const char *tenant;
    int all, dry_run, json;
    double min_coverage;
} scan_opts_t;

/*
 * Look up the tracks never checked for copies (o->all: every live one),
 * fingerprinting each again from its source file, and record their links.
 * A track whose file is gone or was fingerprinted with other parameters is
 * reported and left unchecked.  Returns EXIT_OK, or EXIT_FAIL when the
 * database failed or some track could not be checked.
 */
static int copies_scan(db_conn_t *conn, const scan_opts_t *o)
{
    char err[2048];
    int64_t *ids = NULL;
    size_t n = 0, found = 0, failed = 0;
    store_t *s = NULL;
    fp_config_t cfg;
    fp_limits_t lim;
    fp_config_default(&cfg);
    fp_limits_default(&lim);
    catalog_copy_opts_t co;
    catalog_copy_opts_default(&co);
    co.min_coverage = o->min_coverage;
    int status = EXIT_FAIL;
    if (store_open(conn, &s, err, sizeof err) != DB_OK ||
        catalog_copies_unchecked(conn, o->tenant, o->all, &ids, &n, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        catalog_track_t t;
        fp_result_t fr = {0};
        catalog_copy_t *c = NULL;
        size_t nc = 0;
        db_err_t rc = catalog_track_get(conn, ids[i], &t, err, sizeof err);
        if (rc != DB_OK) {
            cli_error("catalog", "%s", err);
            goto out;
        }
        if (!t.source || t.config_id != fp_config_id(&cfg)) {
            cli_error("catalog", "track %lld not checked for copies: %s", (long long)t.id,
                      t.source ? "its prints were made with other fingerprint parameters "
                                 "(index it again)"
                               : "it has no source file");
            failed++;
        } else if (fp_extract_path(t.source, &cfg, &lim, &fr, err, sizeof err) != FP_OK) {
            cli_error("catalog", "track %lld not checked for copies: %s", (long long)t.id, err);
            failed++;
        } else if ((rc = catalog_copies_find(s, conn, t.id, t.duration_s, fr.prints, fr.count,
                                             &co, &c, &nc, err, sizeof err)) != DB_OK ||
                   (!o->dry_run &&
                    (rc = catalog_copies_save(conn, t.id, c, nc, NULL, err, sizeof err)) != DB_OK)) {
            cli_error("catalog", "track %lld: %s", (long long)t.id, err);
            fp_result_clear(&fr);
            catalog_copies_free(c, nc);
            catalog_track_clear(&t);
            goto out;
        }
        for (size_t k = 0; k < nc && (o->dry_run || !o->json); k++) {
            char at[64];
            printf("track %lld %s track %lld%s: %.1f s aligned, %.0f%% of the shorter, %u frames\n",
                   (long long)t.id, copy_relation_text(c[k].relation), (long long)c[k].other,
                   copy_offset_text(&c[k], at, sizeof at), c[k].aligned_s, 100 * c[k].coverage,
                   c[k].frames);
        }
        found += nc;
        fp_result_clear(&fr);
        catalog_copies_free(c, nc);
        catalog_track_clear(&t);
    }
    if (!o->json)
        printf("checked %zu track%s for copies: %zu link%s%s%s\n", n - failed, n - failed == 1 ? "" : "s",
               found, found == 1 ? "" : "s", o->dry_run ? " (dry run: none recorded)" : "",
               failed ? "; some tracks could not be checked" : "");
    status = failed ? EXIT_FAIL : EXIT_OK;
out:
    store_free(s);
    free(ids);
    return status;
}

/* Union-find over the tracks of the links: the root of i. */
static size_t uf_root(size_t *up, size_t i)
{
    while (up[i] != i) {
        up[i] = up[up[i]];
        i = up[i];
    }
    return i;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t id_index(const int64_t *ids, size_t n, int64_t id)
{
    const int64_t *p = bsearch(&id, ids, n, sizeof *ids, cmp_i64);
    return p ? (size_t)(p - ids) : n;
}

/*
 * The groups of linked live tracks (within a tenant when tenant is not
 * NULL): each group's tracks, then its links.  Text, or one JSON object a
 * group.
 */
static int copies_list(db_conn_t *conn, const char *tenant, int json)
{
    char err[2048];
    const char *p[1] = {tenant};
    PGresult *links = NULL, *tr = NULL;
    int64_t *ids = NULL;
    size_t *up = NULL, *order = NULL;
    int status = EXIT_FAIL;
    if (db_query(conn,
                 "SELECT c.track_a, c.track_b, c.relation, c.longer, c.offset_s, c.coverage "
                 "FROM track_copies c JOIN tracks a ON a.id = c.track_a AND a.status <> 'deleted' "
                 "JOIN tracks b ON b.id = c.track_b AND b.status <> 'deleted' "
                 "WHERE $1::text IS NULL OR (a.tenant_id = (SELECT id FROM tenants WHERE name = $1) "
                 "AND b.tenant_id = a.tenant_id) ORDER BY 1, 2",
                 1, p, 0, &links, err, sizeof err) != DB_OK ||
        db_query(conn,
                 "SELECT t.id, n.name, t.external_id, t.title, coalesce(t.duration_s, 0) "
                 "FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE t.id IN "
                 "(SELECT track_a FROM track_copies UNION SELECT track_b FROM track_copies) "
                 "ORDER BY t.id",
                 0, NULL, 0, &tr, err, sizeof err) != DB_OK) {
        cli_error("catalog", "%s", err);
        goto out;
    }
    size_t nl = (size_t)PQntuples(links), nt = (size_t)PQntuples(tr);
    ids = malloc((nt + 1) * sizeof *ids);
    up = malloc((nt + 1) * sizeof *up);
    order = malloc((nt + 1) * sizeof *order);
    if (!ids || !up || !order) {
        cli_error("catalog", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        ids[i] = strtoll(PQgetvalue(tr, (int)i, 0), NULL, 10);
        up[i] = i;
    }
    for (size_t l = 0; l < nl; l++) {
        size_t a = id_index(ids, nt, strtoll(PQgetvalue(links, (int)l, 0), NULL, 10));
        size_t b = id_index(ids, nt, strtoll(PQgetvalue(links, (int)l, 1), NULL, 10));
        if (a == nt || b == nt) continue;
        a = uf_root(up, a);
        b = uf_root(up, b);
        if (a != b) up[a > b ? a : b] = a < b ? a : b; /* the lowest id is the root */
    }
    /* a group is named by its lowest track; tracks without a live link are in none */
    int *linked = calloc(nt + 1, sizeof *linked);
    if (!linked) {
        cli_error("catalog", "out of memory");
        goto out;
    }
    for (size_t l = 0; l < nl; l++) {
        size_t a = id_index(ids, nt, strtoll(PQgetvalue(links, (int)l, 0), NULL, 10));
        if (a < nt) linked[uf_root(up, a)] = 1;
    }
    size_t groups = 0;
    for (size_t g = 0; g < nt; g++) {
        if (uf_root(up, g) != g || !linked[g]) continue;
        size_t k = 0;
        for (size_t i = 0; i < nt; i++)
            if (uf_root(up, i) == g) order[k++] = i;
        groups++;
        if (json) printf("{\"group\":%zu,\"tracks\":[", groups);
        else printf("%sgroup %zu: %zu tracks\n", groups > 1 ? "\n" : "", groups, k);
        for (size_t i = 0; i < k; i++) {
            int row = (int)order[i];
            const char *ext = PQgetisnull(tr, row, 2) ? NULL : PQgetvalue(tr, row, 2);
            const char *title = PQgetisnull(tr, row, 3) ? NULL : PQgetvalue(tr, row, 3);
            if (json) {
                printf("%s{\"track_id\":%s,\"tenant\":", i ? "," : "", PQgetvalue(tr, row, 0));
                cli_json_string(stdout, PQgetvalue(tr, row, 1));
                fputs(",\"external_id\":", stdout);
                json_or_null(ext);
                fputs(",\"title\":", stdout);
                json_or_null(title);
                printf(",\"duration_s\":%.3f}", strtod(PQgetvalue(tr, row, 4), NULL));
            } else {
                printf("  %8s  %-12s  %-16s  %8.1f s  %s\n", PQgetvalue(tr, row, 0),
                       PQgetvalue(tr, row, 1), ext ? ext : "-", strtod(PQgetvalue(tr, row, 4), NULL),
                       title ? title : "");
            }
        }
        if (json) fputs("],\"links\":[", stdout);
        size_t shown = 0;
        for (size_t l = 0; l < nl; l++) {
            size_t a = id_index(ids, nt, strtoll(PQgetvalue(links, (int)l, 0), NULL, 10));
            if (a == nt || uf_root(up, a) != g) continue;
            const char *ta = PQgetvalue(links, (int)l, 0), *tb = PQgetvalue(links, (int)l, 1);
            const char *rel = PQgetvalue(links, (int)l, 2);
            const char *longer = PQgetisnull(links, (int)l, 3) ? NULL : PQgetvalue(links, (int)l, 3);
            double off = strtod(PQgetvalue(links, (int)l, 4), NULL);
            double cov = strtod(PQgetvalue(links, (int)l, 5), NULL);
            if (json) {
                printf("%s{\"track_a\":%s,\"track_b\":%s,\"relation\":\"%s\",\"longer\":%s,"
                       "\"offset_s\":%.3f,\"coverage\":%.4f}",
                       shown ? "," : "", ta, tb, rel, longer ? longer : "null", off, cov);
            } else if (!longer) {
                printf("    %s same as %s (%.0f%% aligned)\n", ta, tb, 100 * cov);
            } else {
                const char *shorter = !strcmp(longer, ta) ? tb : ta;
                printf("    %s contains %s at %.1f s (%.0f%% of it aligned)\n", longer, shorter,
                       fabs(off) < 0.05 ? 0.0 : off,
                       100 * cov);
            }
            shown++;
        }
        if (json) fputs("]}\n", stdout);
    }
    if (!json && !groups) printf("no copies known%s\n", tenant ? " in this tenant" : "");
    free(linked);
    status = EXIT_OK;
out:
    free(ids);
    free(up);
    free(order);
    PQclear(links);
    PQclear(tr);
    return status;
}

int cmd_catalog(int argc, char **argv)
{
    if (argc < 2) return cli_usage("catalog", USAGE, "which action?");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "help")) {
        help();
        return EXIT_OK;
    }
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"scan", no_argument, NULL, 's'},
                                         {"min-coverage", required_argument, NULL, 'm'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = NULL;
    int all = 0, json = 0, scan = 0, dry_run = 0, c;
    double min_coverage = -1;
    long limit = 1000;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'a': all = 1; break;
        case 'j': json = 1; break;
        case 'h': help(); return EXIT_OK;
        case 's': scan = 1; break;
        case 'n': dry_run = 1; break;
        case 'm': {
            char *end;
            min_coverage = strtod(optarg, &end);
            if (end == optarg || *end || !(min_coverage >= 0 && min_coverage <= 1))
                return cli_usage("catalog", USAGE, "--min-coverage wants 0..1, not '%s'", optarg);
            break;
        }
        case 'l':
            if (cli_parse_int(optarg, 1, 100000000, &limit))
                return cli_usage("catalog", USAGE, "--limit wants a positive number");
            break;
        default: return cli_usage("catalog", USAGE, "unknown option");
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (!strcmp(action, "show") && nargs != 1) return cli_usage("catalog", USAGE, "show takes one id");
    if (!strcmp(action, "rm") && nargs < 1) return cli_usage("catalog", USAGE, "rm takes ids");
    if (strcmp(action, "ls") && strcmp(action, "show") && strcmp(action, "rm") &&
        strcmp(action, "stats") && strcmp(action, "compact") && strcmp(action, "copies"))
        return cli_usage("catalog", USAGE, "unknown action '%s'", action);
    int is_copies = !strcmp(action, "copies");
    if ((scan || dry_run || min_coverage >= 0) && !is_copies)
        return cli_usage("catalog", USAGE, "--scan, --min-coverage and --dry-run are for copies");
    if (is_copies && (dry_run || min_coverage >= 0 || all) && !scan)
        return cli_usage("catalog", USAGE, "--all, --min-coverage and --dry-run go with --scan");
    if (is_copies && nargs) return cli_usage("catalog", USAGE, "copies takes no ids");
    db_conn_t *conn = cli_db_open("catalog");
    if (!conn) return EXIT_FAIL;
    int status;
    if (!strcmp(action, "ls")) status = do_ls(conn, tenant, all, limit, json);
    else if (!strcmp(action, "show")) status = do_show(conn, args[0], json);
    else if (!strcmp(action, "rm")) status = do_rm(conn, nargs, args);
    else if (!strcmp(action, "stats")) status = do_stats(conn, json);
    else if (is_copies) {
        catalog_copy_opts_t co;
        catalog_copy_opts_default(&co);
        scan_opts_t so = {tenant, all, dry_run, json, min_coverage >= 0 ? min_coverage : co.min_coverage};
        status = scan ? copies_scan(conn, &so) : EXIT_OK;
        if (status == EXIT_OK || !dry_run) {
            int st2 = dry_run ? EXIT_OK : copies_list(conn, tenant, json);
            if (status == EXIT_OK) status = st2;
        }
    }
    else status = do_compact(conn);
    db_close(conn);
    return status;
}
