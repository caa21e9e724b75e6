/*
 * cmd_keys.c -- `earmark keys`: the API keys of the HTTP service.
 *
 *   earmark keys create --tenant NAME --name TEXT [--role client|admin]
 *   earmark keys list [--tenant NAME] [--all] [--json]
 *   earmark keys revoke ID|PREFIX
 *
 * create prints the new token alone on stdout (so that `TOKEN=$(earmark
 * keys create ...)` works) and says on stderr that it is shown once; list
 * prints aligned columns or, with --json, one JSON object a line; revoke
 * takes an id or a prefix as list shows them.  Exit status: 0 done, 1 failed
 * (the database, no such key), 2 the command line is wrong.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "em_db.h"
#include "em_keys.h"

static const char *USAGE =
    "earmark keys create --tenant NAME --name TEXT [--role client|admin] |\n"
    "             list [--tenant NAME] [--all] [--json] | revoke ID|PREFIX";

static const char *HELP_CREATE =
    "usage: earmark keys create --tenant NAME --name TEXT [--role client|admin]\n"
    "\n"
    "Make an API key for a tenant (created when missing).  The token is printed\n"
    "on stdout, alone on its line, this once: the database keeps only its SHA-256\n"
    "and its prefix, so a lost token cannot be shown again, only revoked and\n"
    "replaced.\n"
    "\n"
    "  --tenant NAME   the tenant the key acts for\n"
    "  --name TEXT     what the key is for (\"ingest server\", \"alice's laptop\")\n"
    "  --role ROLE     client (default): match clips, read the tenant's results\n"
    "                  and tracks; admin: the same and the operational routes\n";

static const char *HELP_LIST =
    "usage: earmark keys list [--tenant NAME] [--all] [--json]\n"
    "\n"
    "The live keys, oldest first: id, tenant, name, prefix, role, when created and\n"
    "when revoked.  No token is ever shown again.\n"
    "\n"
    "  --tenant NAME   only this tenant's keys\n"
    "  --all           revoked keys too\n"
    "  --json          one JSON object a line\n";

static const char *HELP_REVOKE =
    "usage: earmark keys revoke ID|PREFIX\n"
    "\n"
    "Revoke one key, named by its id or by its prefix (em_ and 4 to 8 more\n"
    "characters), as `earmark keys list` shows them.  Exactly one live key must\n"
    "match.  A revoked key is refused from then on; its row stays for the audit\n"
    "trail.\n";

static const char *HELP_FOOTER =
    "\n"
    "The database is $EARMARK_DB (a libpq connection string), else the PG*\n"
    "variables, else the private cluster of `earmark db start`.\n";

static void print_help(void)
{
    printf("usage: %s\n\nAPI keys of the HTTP service.  A key is a bearer token (em_ and 43\n"
           "characters) that belongs to a tenant and has a role, client or admin.\n\n"
           "  create   make a key; its token is shown once\n"
           "  list     the keys (never their tokens)\n"
           "  revoke   revoke a key by id or prefix\n\n"
           "'earmark keys ACTION --help' describes each action.\n%s",
           USAGE, HELP_FOOTER);
}

/*
 * getopt_long over the action's own arguments: argv[0] is the action, and
 * optind = 0 makes glibc start afresh.  Returns the option, or -2 after a
 * usage error was printed (an unknown option, a missing value).
 */
static int next_opt(int argc, char **argv, const struct option *opts)
{
    int c = getopt_long(argc, argv, ":h", opts, NULL);
    if (c == '?') {
        if (optopt) cli_usage("keys", USAGE, "unknown option -%c", optopt);
        else cli_usage("keys", USAGE, "unknown option %s", argv[optind - 1]);
        return -2;
    }
    if (c == ':') {
        cli_usage("keys", USAGE, "%s wants a value", argv[optind - 1]);
        return -2;
    }
    return c;
}

/* ---- create ------------------------------------------------------------- */

/*
 * The token goes to stdout and nowhere else.  When it cannot be written
 * (stdout closed, a full disk), nobody will ever have it: the key is
 * revoked again rather than left live and unknown.
 */
static int do_create(int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = NULL, *name = NULL;
    keys_role_t role = KEYS_ROLE_CLIENT;
    int c;
    while ((c = next_opt(argc, argv, opts)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'n': name = optarg; break;
        case 'r':
            if (keys_role_parse(optarg, &role) != 0)
                return cli_usage("keys", USAGE, "--role is client or admin, not '%s'", optarg);
            break;
        case 'h': printf("%s%s", HELP_CREATE, HELP_FOOTER); return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage("keys", USAGE, "create takes no argument '%s'", argv[optind]);
    if (!tenant || !*tenant) return cli_usage("keys", USAGE, "create needs --tenant NAME");
    if (!name || !*name)
        return cli_usage("keys", USAGE, "create needs --name TEXT, saying what the key is for");
    if (strlen(tenant) > KEYS_NAME_MAX || strlen(name) > KEYS_NAME_MAX)
        return cli_usage("keys", USAGE, "--tenant and --name take at most %d bytes",
                         KEYS_NAME_MAX);

    db_conn_t *conn = cli_db_open("keys");
    if (!conn) return EXIT_FAIL;
    int status = EXIT_OK;
    char token[KEYS_TOKEN_SIZE], err[2048];
    keys_key_t k;
    if (keys_create(conn, tenant, name, role, token, sizeof token, &k, err, sizeof err) !=
        DB_OK) {
        cli_error("keys", "%s", err);
        status = EXIT_FAIL;
        goto out;
    }
    if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)k.id);
        if (keys_revoke(conn, id, NULL, err, sizeof err) == DB_OK)
            cli_error("keys", "cannot write the token to standard output: key %s was revoked "
                              "again\nhint: run create again with stdout open", id);
        else
            cli_error("keys", "cannot write the token to standard output, nor revoke key %s "
                              "again: %s\nhint: run `earmark keys revoke %s`", id, err, id);
        status = EXIT_FAIL;
        goto out;
    }
    fprintf(stderr,
            "earmark keys: key %lld (prefix %s) of tenant '%s', role %s: the token above is "
            "shown this once\nhint: keep it secret and store it now; a lost token cannot be "
            "shown again, only revoked and replaced\n",
            (long long)k.id, k.prefix, k.tenant, keys_role_name(k.role));
out:
    memset(token, 0, sizeof token);
    db_close(conn);
    return status;
}

/* ---- list --------------------------------------------------------------- */

/* The width of s on a terminal: its UTF-8 characters (continuation bytes do
 * not count).  Wide characters are counted as one. */
static int text_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xC0) != 0x80;
    return w;
}

/* s, control characters shown as '?', padded with spaces to width (the
 * last column passes 0: no padding). */
static void print_cell(const char *s, int width)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
    for (int w = text_width(s); w < width; w++) putchar(' ');
}

static void print_json(const keys_key_t *k)
{
    printf("{\"id\":%lld,\"tenant_id\":%lld,\"tenant\":", (long long)k->id,
           (long long)k->tenant_id);
    cli_json_string(stdout, k->tenant);
    fputs(",\"name\":", stdout);
    cli_json_string(stdout, k->name);
    printf(",\"prefix\":\"%s\",\"role\":\"%s\",\"created_at\":\"%s\",\"revoked_at\":", k->prefix,
           keys_role_name(k->role), k->created_at);
    if (k->revoked) printf("\"%s\"}\n", k->revoked_at);
    else fputs("null}\n", stdout);
}

static int do_list(int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = NULL;
    int all = 0, json = 0, c;
    while ((c = next_opt(argc, argv, opts)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'a': all = 1; break;
        case 'j': json = 1; break;
        case 'h': printf("%s%s", HELP_LIST, HELP_FOOTER); return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage("keys", USAGE, "list takes no argument '%s'", argv[optind]);
    if (tenant && !*tenant) return cli_usage("keys", USAGE, "--tenant wants a name");

    db_conn_t *conn = cli_db_open("keys");
    if (!conn) return EXIT_FAIL;
    keys_key_t *keys = NULL;
    size_t n = 0;
    char err[2048];
    int status = EXIT_OK;
    if (keys_list(conn, tenant, all, &keys, &n, err, sizeof err) != DB_OK) {
        cli_error("keys", "%s", err);
        status = EXIT_FAIL;
        goto out;
    }
    if (json) {
        for (size_t i = 0; i < n; i++) print_json(&keys[i]);
        goto out;
    }
    static const char *head[7] = {"id", "tenant", "name", "prefix", "role", "created",
                                  "revoked"};
    int w[7];
    for (int j = 0; j < 7; j++) w[j] = text_width(head[j]);
    for (size_t i = 0; i < n; i++) {
        char id[24];
        int len = snprintf(id, sizeof id, "%lld", (long long)keys[i].id);
        if (len > w[0]) w[0] = len;
        if (text_width(keys[i].tenant) > w[1]) w[1] = text_width(keys[i].tenant);
        if (text_width(keys[i].name) > w[2]) w[2] = text_width(keys[i].name);
        if (text_width(keys[i].prefix) > w[3]) w[3] = text_width(keys[i].prefix);
        if (text_width(keys[i].created_at) > w[5]) w[5] = text_width(keys[i].created_at);
    }
    w[4] = 6; /* "client" */
    printf("%*s", w[0], head[0]);
    for (int j = 1; j < 7; j++) {
        fputs("  ", stdout);
        print_cell(head[j], j < 6 ? w[j] : 0);
    }
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        const keys_key_t *k = &keys[i];
        printf("%*lld  ", w[0], (long long)k->id);
        print_cell(k->tenant, w[1]);
        fputs("  ", stdout);
        print_cell(k->name, w[2]);
        fputs("  ", stdout);
        print_cell(k->prefix, w[3]);
        fputs("  ", stdout);
        print_cell(keys_role_name(k->role), w[4]);
        fputs("  ", stdout);
        print_cell(k->created_at, w[5]);
        fputs("  ", stdout);
        print_cell(k->revoked ? k->revoked_at : "-", 0);
        putchar('\n');
    }
    if (n == 0)
        fprintf(stderr, "earmark keys: no %skeys%s%s%s\nhint: earmark keys create --tenant NAME "
                        "--name TEXT makes one\n",
                all ? "" : "live ", tenant ? " for tenant '" : "", tenant ? tenant : "",
                tenant ? "'" : "");
out:
    free(keys);
    db_close(conn);
    if (status == EXIT_OK && fflush(stdout) != 0) {
        cli_error("keys", "cannot write to standard output");
        status = EXIT_FAIL;
    }
    return status;
}

/* ---- revoke ------------------------------------------------------------- */

static int do_revoke(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = next_opt(argc, argv, opts)) != -1) {
        if (c == 'h') {
            printf("%s%s", HELP_REVOKE, HELP_FOOTER);
            return EXIT_OK;
        }
        return EXIT_USAGE;
    }
    if (argc - optind != 1)
        return cli_usage("keys", USAGE, "revoke takes one key: its id or its prefix");
    const char *what = argv[optind];
    if (!*what || (strspn(what, "0123456789") != strlen(what) &&
                   strncmp(what, KEYS_TOKEN_PREFIX, strlen(KEYS_TOKEN_PREFIX)) != 0))
        return cli_usage("keys", USAGE,
                         "'%s' is neither a key id nor a prefix (em_...) as list shows them",
                         what);

    db_conn_t *conn = cli_db_open("keys");
    if (!conn) return EXIT_FAIL;
    char err[2048];
    int64_t id;
    int status = EXIT_OK;
    if (keys_revoke(conn, what, &id, err, sizeof err) != DB_OK) {
        cli_error("keys", "%s", err);
        status = EXIT_FAIL;
    } else {
        printf("revoked key %lld\n", (long long)id);
    }
    db_close(conn);
    return status;
}

int cmd_keys(int argc, char **argv)
{
    if (argc < 2) return cli_usage("keys", USAGE, "which action: create, list or revoke?");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h") || !strcmp(action, "help")) {
        print_help();
        return EXIT_OK;
    }
    opterr = 0;
    optind = 0;
    if (!strcmp(action, "create")) return do_create(argc - 1, argv + 1);
    if (!strcmp(action, "list")) return do_list(argc - 1, argv + 1);
    if (!strcmp(action, "revoke")) return do_revoke(argc - 1, argv + 1);
    return cli_usage("keys", USAGE, "unknown action '%s': create, list or revoke", action);
}
