/*
 * cmd_db.c -- `earmark db`: the private PostgreSQL cluster, migrations and a
 * psql shell on earmark's database.
 *
 *   earmark db start     create (first time) and start the private cluster
 *   earmark db stop      stop it
 *   earmark db status    the cluster's state, the database used, its schema
 *   earmark db migrate   apply the missing sql/NNN_name.sql migrations
 *   earmark db psql      psql on earmark's database
 *
 * The private cluster lives in ${EARMARK_VAR:-./var}/pg.  The database used
 * by migrate, status and psql is the one db_conninfo_resolve() names:
 * $EARMARK_DB, else the PG* variables, else the private cluster.
 */
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "em_db.h"

static const char *USAGE = "earmark db start|stop|status|migrate|psql [--help]";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* getopt for subcommands that take only --help: 1 = help shown, 0 = go on,
 * -1 = usage error shown (*rc set). */
static int only_help(int argc, char **argv, const char *cmd, const char *usage,
                     void (*help)(void), int *rc)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help();
            *rc = EXIT_OK;
            return 1;
        }
        *rc = cli_usage(cmd, usage, "unknown option");
        return -1;
    }
    if (optind < argc) {
        *rc = cli_usage(cmd, usage, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

/* Which setting chose the database, for messages. */
static const char *conninfo_source(void)
{
    static const char *const pgvars[] = {"PGHOST",     "PGHOSTADDR", "PGPORT",
                                         "PGDATABASE", "PGUSER",     "PGSERVICE"};
    const char *db = getenv("EARMARK_DB");
    if (db && *db) return "EARMARK_DB";
    for (size_t i = 0; i < sizeof pgvars / sizeof pgvars[0]; i++) {
        const char *v = getenv(pgvars[i]);
        if (v && *v) return pgvars[i];
    }
    return NULL;
}

/* Print conninfo without its password. */
static void print_conninfo(FILE *f, const char *conninfo)
{
    if (!*conninfo) {
        fputs("(libpq defaults and PG* variables)", f);
        return;
    }
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts) {
        fputs("(invalid connection string)", f);
        return;
    }
    int first = 1;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) continue;
        int secret = !strcmp(o->keyword, "password");
        fprintf(f, "%s%s=%s", first ? "" : " ", o->keyword, secret ? "****" : o->val);
        first = 0;
    }
    PQconninfoFree(opts);
}

/* ------------------------------------------------------------------------ */

static void help_start(void)
{
    printf("usage: earmark db start\n\n"
           "Start the private PostgreSQL cluster in ${EARMARK_VAR:-./var}/pg, creating it\n"
           "(initdb) the first time, and create the database \"earmark\" in it.  It listens\n"
           "on a Unix socket in that folder only.  Doing nothing when it already runs.\n"
           "As root, the cluster runs as the system user earmark (created when missing).\n\n"
           "Exit status: 0 running, 1 failure, 2 usage error.\n");
}

static int db_start(int argc, char **argv)
{
    int rc;
    if (only_help(argc, argv, "db start", "earmark db start", help_start, &rc)) return rc;
    char var[4096], err[2048];
    db_cluster_status_t st;
    if (db_var_dir_resolve(var, sizeof var) != DB_OK ||
        db_cluster_status(var, &st, err, sizeof err) != DB_OK) {
        cli_error("db start", "the var folder path is too long or invalid");
        return EXIT_FAIL;
    }
    if (st.running) {
        printf("the private database is already running (pid %ld)\nsocket: %s\n", st.pid,
               st.socket);
    } else {
        double t0 = now_s();
        db_err_t e = db_cluster_start(var, err, sizeof err);
        if (e != DB_OK) {
            cli_error("db start", "%s", err);
            return EXIT_FAIL;
        }
        printf("%s the private database in %.1f s\nsocket: %s\n",
               st.initialized ? "started" : "created and started", now_s() - t0, st.socket);
    }
    const char *src = conninfo_source();
    if (src) printf("note: %s is set, so earmark uses that database, not this one\n", src);
    return EXIT_OK;
}

static void help_stop(void)
{
    printf("usage: earmark db stop\n\n"
           "Stop the private PostgreSQL cluster in ${EARMARK_VAR:-./var}/pg (open sessions\n"
           "are ended).  Doing nothing when it does not run.\n\n"
           "Exit status: 0 stopped, 1 failure, 2 usage error.\n");
}

static int db_stop(int argc, char **argv)
{
    int rc;
    if (only_help(argc, argv, "db stop", "earmark db stop", help_stop, &rc)) return rc;
    char var[4096], err[2048];
    db_cluster_status_t st;
    if (db_var_dir_resolve(var, sizeof var) != DB_OK ||
        db_cluster_status(var, &st, err, sizeof err) != DB_OK) {
        cli_error("db stop", "the var folder path is too long or invalid");
        return EXIT_FAIL;
    }
    if (!st.running) {
        printf("the private database is not running\n");
        return EXIT_OK;
    }
    if (db_cluster_stop(var, err, sizeof err) != DB_OK) {
        cli_error("db stop", "%s", err);
        return EXIT_FAIL;
    }
    printf("stopped the private database\n");
    return EXIT_OK;
}

static void help_status(void)
{
    printf("usage: earmark db status\n\n"
           "Say whether the private cluster in ${EARMARK_VAR:-./var}/pg runs, where its\n"
           "socket and log are, which database earmark uses (EARMARK_DB, else the PG*\n"
           "variables, else the private cluster) and its schema version.\n\n"
           "Exit status: 0 the database answers and its schema is the one this build\n"
           "needs, 1 otherwise, 2 usage error.\n");
}

static int db_status(int argc, char **argv)
{
    int rc;
    if (only_help(argc, argv, "db status", "earmark db status", help_status, &rc)) return rc;
    char var[4096], conninfo[4096], err[2048];
    db_cluster_status_t st;
    if (db_var_dir_resolve(var, sizeof var) != DB_OK ||
        db_cluster_status(var, &st, err, sizeof err) != DB_OK ||
        db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK) {
        cli_error("db status", "the var folder path is too long or invalid");
        return EXIT_FAIL;
    }
    if (st.running) printf("private cluster: running (pid %ld)\n", st.pid);
    else printf("private cluster: %s\n", st.initialized ? "stopped" : "not created");
    printf("  socket: %s\n  log:    %s\n", st.socket, st.log_file);
    const char *src = conninfo_source();
    printf("database: ");
    print_conninfo(stdout, conninfo);
    printf("%s%s%s\n", src ? " (from " : "", src ? src : "", src ? ")" : "");

    db_connect_opts_t opts;
    db_connect_opts_default(&opts);
    opts.max_wait_s = 0;
    db_conn_t *conn = NULL;
    int version = 0;
    rc = EXIT_FAIL;
    if (db_connect_opts(conninfo, &opts, &conn, err, sizeof err) != DB_OK) {
        printf("schema: unknown (cannot connect)\n");
        fflush(stdout);
        cli_error("db status", "%s", err);
    } else if (db_schema_version(conn, &version, err, sizeof err) != DB_OK) {
        printf("schema: unknown\n");
        fflush(stdout);
        cli_error("db status", "%s", err);
    } else {
        printf("schema: version %d (this build: %d)\n", version, DB_SCHEMA_VERSION);
        if (version == DB_SCHEMA_VERSION) rc = EXIT_OK;
        else if (version < DB_SCHEMA_VERSION) printf("hint: run `earmark db migrate`\n");
    }
    db_close(conn);
    return rc;
}

static const char *MIGRATE_USAGE = "earmark db migrate [--sql DIR] [--wait SECONDS]";

static void help_migrate(void)
{
    printf("usage: %s\n\n"
           "Apply the migrations (NNN_name.sql, in order) that the database lacks, each in\n"
           "its own transaction, and record them in schema_migrations.  An applied\n"
           "migration whose file has changed since is an error.\n\n"
           "  --sql DIR       the migrations (default: $EARMARK_SQL, else ./sql, else the\n"
           "                  installed share/earmark/sql)\n"
           "  --wait SECONDS  wait this long for the database to come up (default 10)\n"
           "  --help          this text\n\n"
           "The database is $EARMARK_DB, else the one the PG* variables name, else the\n"
           "private cluster in ${EARMARK_VAR:-./var}/pg.\n\n"
           "Exit status: 0 up to date, 1 failure, 2 usage error.\n",
           MIGRATE_USAGE);
}

static int db_migrate_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"sql", required_argument, NULL, 's'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *sql_dir = NULL;
    long wait = 10;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sql_dir = optarg; break;
        case 'w':
            if (cli_parse_int(optarg, 0, 3600, &wait))
                return cli_usage("db migrate", MIGRATE_USAGE,
                                 "--wait wants a number of seconds 0..3600, not '%s'", optarg);
            break;
        case 'h': help_migrate(); return EXIT_OK;
        default: return cli_usage("db migrate", MIGRATE_USAGE, "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("db migrate", MIGRATE_USAGE, "unexpected argument '%s'", argv[optind]);

    char conninfo[4096], dir[4096], err[2048];
    if (db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK) {
        cli_error("db migrate", "the var folder path is too long or invalid");
        return EXIT_FAIL;
    }
    if (!sql_dir) {
        if (db_sql_dir_resolve(dir, sizeof dir) != DB_OK) {
            cli_error("db migrate", "the migrations folder path is too long");
            return EXIT_FAIL;
        }
        sql_dir = dir;
    }
    db_connect_opts_t copts;
    db_connect_opts_default(&copts);
    copts.max_wait_s = (double)wait;
    db_conn_t *conn = NULL;
    int applied = 0, version = 0, rc = EXIT_FAIL;
    if (db_connect_opts(conninfo, &copts, &conn, err, sizeof err) != DB_OK) {
        cli_error("db migrate", "%s", err);
        goto out;
    }
    db_err_t e = db_migrate(conn, sql_dir, &applied, err, sizeof err);
    if (e != DB_OK) {
        if (applied) printf("applied %d migration%s before the failure\n", applied,
                            applied == 1 ? "" : "s");
        fflush(stdout);
        cli_error("db migrate", "%s", err);
        goto out;
    }
    if (db_schema_version(conn, &version, err, sizeof err) != DB_OK) {
        cli_error("db migrate", "%s", err);
        goto out;
    }
    printf("applied %d migration%s from %s; schema version %d (this build: %d)\n", applied,
           applied == 1 ? "" : "s", sql_dir, version, DB_SCHEMA_VERSION);
    rc = EXIT_OK;
out:
    db_close(conn);
    return rc;
}

static void help_psql(void)
{
    printf("usage: earmark db psql [PSQL-ARGUMENTS...]\n\n"
           "Run psql on earmark's database ($EARMARK_DB, else the PG* variables, else the\n"
           "private cluster in ${EARMARK_VAR:-./var}/pg).  Arguments go to psql, for\n"
           "example: earmark db psql -c 'SELECT * FROM schema_migrations'\n\n"
           "Exit status: psql's; 1 when psql cannot be run.\n");
}

static int db_psql(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help_psql();
        return EXIT_OK;
    }
    int first = argc > 1 && !strcmp(argv[1], "--") ? 2 : 1;
    char conninfo[4096];
    if (db_conninfo_resolve(conninfo, sizeof conninfo) != DB_OK) {
        cli_error("db psql", "the var folder path is too long or invalid");
        return EXIT_FAIL;
    }
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args) {
        cli_error("db psql", "out of memory");
        return EXIT_FAIL;
    }
    int n = 0;
    args[n++] = "psql";
    if (*conninfo) {
        args[n++] = "-d";
        args[n++] = conninfo;
    }
    for (int i = first; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    fflush(stdout);
    execvp("psql", args);
    /* Not on PATH: the server's own copy. */
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/psql", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        args[0] = g.gl_pathv[g.gl_pathc - 1];
        execv(args[0], args);
    }
    cli_error("db psql", "cannot run psql\nhint: install the PostgreSQL client (Debian: "
                         "apt-get install postgresql-client)");
    free(args);
    return EXIT_FAIL;
}

/* ------------------------------------------------------------------------ */

static void help(void)
{
    printf("usage: %s\n\n"
           "  start    create (the first time) and start the private PostgreSQL cluster\n"
           "  stop     stop it\n"
           "  status   the cluster's state, the database earmark uses and its schema\n"
           "  migrate  apply the missing migrations (sql/NNN_name.sql)\n"
           "  psql     run psql on earmark's database\n\n"
           "The private cluster lives in ${EARMARK_VAR:-./var}/pg.  earmark uses the\n"
           "database named by EARMARK_DB (a libpq connection string), else by the PG*\n"
           "variables, else the private cluster.\n"
           "'earmark db COMMAND --help' describes each command.\n",
           USAGE);
}

int cmd_db(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {{"start", db_start},
                {"stop", db_stop},
                {"status", db_status},
                {"migrate", db_migrate_cmd},
                {"psql", db_psql}};
    if (argc < 2) return cli_usage("db", USAGE, "no command given");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        help();
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    return cli_usage("db", USAGE, "unknown command '%s'", argv[1]);
}
