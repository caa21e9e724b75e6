/*
 * cmd_catalog.c -- `earmark catalog`: look after the catalog's tracks.
 *
 *   earmark catalog ls [--tenant NAME] [--all] [--limit N] [--json]
 *   earmark catalog show ID [--json]
 *   earmark catalog rm ID...
 *   earmark catalog stats [--json]
 *   earmark catalog compact
 *
 * ls lists live tracks (--all: deleted ones too), newest last; rm marks
 * tracks deleted (they stop matching at once; their prints go with the next
 * merge); stats gives the counts and the store's size; compact merges the
 * store into one segment and drops deleted tracks' prints.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "em_catalog.h"
#include "em_db.h"
#include "em_store.h"

static const char *USAGE =
    "earmark catalog ls [--tenant NAME] [--all] [--limit N] [--json] | show ID [--json] |\n"
    "                rm ID... | stats [--json] | compact";

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
               "\"status\":\"%s\",\"prints\":%lld,\"created_at\":\"%s\"}\n",
               t.duration_s, sha, t.params_version, t.config_id, t.status, (long long)t.prints,
               t.created_at);
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
        cli_texts_free(&tx);
    }
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

int cmd_catalog(int argc, char **argv)
{
    if (argc < 2) return cli_usage("catalog", USAGE, "which action?");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "help")) {
        printf("usage: %s\n", USAGE);
        return EXIT_OK;
    }
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = NULL;
    int all = 0, json = 0, c;
    long limit = 1000;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'a': all = 1; break;
        case 'j': json = 1; break;
        case 'h': printf("usage: %s\n", USAGE); return EXIT_OK;
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
        strcmp(action, "stats") && strcmp(action, "compact"))
        return cli_usage("catalog", USAGE, "unknown action '%s'", action);
    db_conn_t *conn = cli_db_open("catalog");
    if (!conn) return EXIT_FAIL;
    int status;
    if (!strcmp(action, "ls")) status = do_ls(conn, tenant, all, limit, json);
    else if (!strcmp(action, "show")) status = do_show(conn, args[0], json);
    else if (!strcmp(action, "rm")) status = do_rm(conn, nargs, args);
    else if (!strcmp(action, "stats")) status = do_stats(conn, json);
    else status = do_compact(conn);
    db_close(conn);
    return status;
}
