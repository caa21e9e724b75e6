/*
 * test_keys.c -- API keys (keys/em_keys.h): the token format and digest on
 * their own, then create, look up, list and revoke against a private
 * PostgreSQL cluster, then `earmark keys` run as a program against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "em_catalog.h"
#include "em_db.h"
#include "em_keys.h"
#include "testlib.h"

static db_conn_t *conn;

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The whole of a small file, NUL-terminated, into buf; "" when unreadable. */
static const char *slurp(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return buf;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* One text value from a query with one text parameter (p may be NULL for
 * none); "" after an error, which the test reports. */
static const char *query1(const char *sql, const char *p, char *buf, size_t len)
{
    char err[1024];
    PGresult *res;
    const char *params[1] = {p};
    buf[0] = '\0';
    if (db_query(conn, sql, p ? 1 : 0, p ? params : NULL, 0, &res, err, sizeof err) != DB_OK) {
        fprintf(stderr, "  query failed: %s\n", err);
        return buf;
    }
    if (PQntuples(res) > 0) snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

/* ---- no database ----------------------------------------------------------- */

static void test_roles(void)
{
    keys_role_t r = KEYS_ROLE_ADMIN;
    CHECK(keys_role_parse("client", &r) == 0 && r == KEYS_ROLE_CLIENT);
    CHECK(keys_role_parse("admin", &r) == 0 && r == KEYS_ROLE_ADMIN);
    CHECK(keys_role_parse("Admin", &r) == -1 && r == KEYS_ROLE_ADMIN, "exact, lower case");
    CHECK(keys_role_parse("", &r) == -1 && keys_role_parse(NULL, &r) == -1);
    CHECK(!strcmp(keys_role_name(KEYS_ROLE_CLIENT), "client"));
    CHECK(!strcmp(keys_role_name(KEYS_ROLE_ADMIN), "admin"));
    CHECK(!strcmp(keys_role_name((keys_role_t)7), "unknown"));
}

static void test_digest(void)
{
    uint8_t d[KEYS_DIGEST_LEN];
    char h[2 * KEYS_DIGEST_LEN + 1];
    keys_digest("abc", 3, d);
    hex(d, sizeof d, h);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "sha256(abc) = %s", h);
    keys_digest(NULL, 0, d);
    hex(d, sizeof d, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
          "sha256('') = %s", h);
    /* only the len bytes count */
    uint8_t d2[KEYS_DIGEST_LEN];
    keys_digest("abcdef", 3, d2);
    keys_digest("abc", 3, d);
    CHECK(!memcmp(d, d2, sizeof d));
}

static int cmp_token(const void *a, const void *b)
{
    return strcmp(a, b);
}

/*
 * The encoding is checked against OpenSSL's base64 (EVP_DecodeBlock /
 * EVP_EncodeBlock) with the URL alphabet mapped back and the padding put
 * back: the token carries 32 bytes and nothing else.
 */
static void test_token_format(void)
{
    enum { N = 2000 };
    static char tok[N][KEYS_TOKEN_SIZE];
    char err[256];
    int seen[256] = {0};
    for (int i = 0; i < N; i++) {
        REQUIRE(keys_token_new(tok[i], sizeof tok[i], err, sizeof err) == DB_OK, "%s", err);
        const char *t = tok[i];
        CHECK(strlen(t) == KEYS_TOKEN_LEN && !strncmp(t, "em_", 3), "'%s'", t);
        CHECK(keys_token_wellformed(t, strlen(t)), "'%s'", t);
        CHECK(strspn(t + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              43);
        for (const char *c = t + 3; *c; c++) seen[(unsigned char)*c]++;

        char std[45];
        unsigned char raw[48];
        for (int k = 0; k < 43; k++)
            std[k] = t[3 + k] == '-' ? '+' : t[3 + k] == '_' ? '/' : t[3 + k];
        std[43] = '=';
        std[44] = '\0';
        int n = EVP_DecodeBlock(raw, (const unsigned char *)std, 44);
        CHECK(n == 33, "base64 of 32 bytes (+1 for the padding): %d", n);
        unsigned char again[64];
        CHECK(EVP_EncodeBlock(again, raw, 32) == 44 && !memcmp(again, std, 44),
              "re-encoding gives the same token");
    }
    if (test_failed_current) return;
    int letters = 0;
    for (int c = 0; c < 256; c++) letters += seen[c] > 0;
    CHECK(letters == 64, "all 64 characters occur in %d tokens: %d", N, letters);
    qsort(tok, N, sizeof tok[0], cmp_token);
    int dup = 0;
    for (int i = 1; i < N; i++) dup += !strcmp(tok[i - 1], tok[i]);
    CHECK(dup == 0, "%d tokens alike", dup);

    char small[KEYS_TOKEN_LEN];
    CHECK(keys_token_new(small, sizeof small, err, sizeof err) == DB_ERR_INVALID);
    CHECK(small[0] == '\0');
    CHECK(keys_token_new(NULL, 100, err, sizeof err) == DB_ERR_INVALID);
}

static void test_token_bad(void)
{
    char good[KEYS_TOKEN_SIZE], t[64];
    REQUIRE(keys_token_new(good, sizeof good, NULL, 0) == DB_OK);
    CHECK(keys_token_wellformed(good, KEYS_TOKEN_LEN));
    CHECK(!keys_token_wellformed(NULL, KEYS_TOKEN_LEN));
    CHECK(!keys_token_wellformed("", 0));
    CHECK(!keys_token_wellformed(good, KEYS_TOKEN_LEN - 1), "short");
    snprintf(t, sizeof t, "%sA", good);
    CHECK(!keys_token_wellformed(t, strlen(t)), "long");
    snprintf(t, sizeof t, "%s\n", good);
    CHECK(!keys_token_wellformed(t, strlen(t)), "a trailing newline");
    const char *prefixes[] = {"EM_", "em-", "xx_", "em "};
    for (int i = 0; i < 4; i++) {
        memcpy(t, good, sizeof good);
        memcpy(t, prefixes[i], 3);
        CHECK(!keys_token_wellformed(t, KEYS_TOKEN_LEN), "prefix '%s'", prefixes[i]);
    }
    const char bad[] = {'+', '/', '=', ' ', '.', '\0', '\x80', '~'};
    for (size_t i = 0; i < sizeof bad; i++) {
        memcpy(t, good, sizeof good);
        t[10 + i] = bad[i];
        CHECK(!keys_token_wellformed(t, KEYS_TOKEN_LEN), "character 0x%02x",
              (unsigned char)bad[i]);
    }
    /* the last character holds 4 bits: A, E, I, ... (value divisible by 4) */
    memcpy(t, good, sizeof good);
    t[KEYS_TOKEN_LEN - 1] = 'A';
    CHECK(keys_token_wellformed(t, KEYS_TOKEN_LEN));
    t[KEYS_TOKEN_LEN - 1] = 'E';
    CHECK(keys_token_wellformed(t, KEYS_TOKEN_LEN));
    t[KEYS_TOKEN_LEN - 1] = 'B';
    CHECK(!keys_token_wellformed(t, KEYS_TOKEN_LEN), "non-canonical last character");
    t[KEYS_TOKEN_LEN - 1] = '_';
    CHECK(!keys_token_wellformed(t, KEYS_TOKEN_LEN), "non-canonical last character");
}

/* ---- the database ------------------------------------------------------------ */

static char tok_acme[KEYS_TOKEN_SIZE], tok_beta[KEYS_TOKEN_SIZE];
static keys_key_t key_acme, key_beta;

static void db_open(void)
{
    char err[2048];
    const char *ci = test_db_start();
    REQUIRE(db_connect(ci, &conn, err, sizeof err) == DB_OK, "%s", err);
}

static void test_create_lookup(void)
{
    REQUIRE(conn);
    char err[2048];
    REQUIRE(keys_create(conn, "acme", "ingest server", KEYS_ROLE_CLIENT, tok_acme,
                        sizeof tok_acme, &key_acme, err, sizeof err) == DB_OK,
            "%s", err);
    REQUIRE(keys_create(conn, "beta", "ops", KEYS_ROLE_ADMIN, tok_beta, sizeof tok_beta,
                        &key_beta, err, sizeof err) == DB_OK,
            "%s", err);
    CHECK(keys_token_wellformed(tok_acme, strlen(tok_acme)), "'%s'", tok_acme);
    CHECK(strcmp(tok_acme, tok_beta) != 0);
    int64_t acme_id = 0;
    REQUIRE(catalog_tenant_ensure(conn, "acme", &acme_id, err, sizeof err) == DB_OK, "%s", err);

    const keys_key_t *k = &key_acme;
    CHECK(k->id > 0 && k->tenant_id == acme_id);
    CHECK(!strcmp(k->tenant, "acme") && !strcmp(k->name, "ingest server"));
    CHECK(strlen(k->prefix) == KEYS_PREFIX_LEN && !strncmp(k->prefix, tok_acme, KEYS_PREFIX_LEN),
          "prefix '%s' of '%s'", k->prefix, tok_acme);
    CHECK(k->role == KEYS_ROLE_CLIENT && !k->revoked && k->revoked_at[0] == '\0');
    CHECK(strlen(k->created_at) == 20 && k->created_at[10] == 'T' && k->created_at[19] == 'Z',
          "'%s'", k->created_at);
    CHECK(key_beta.role == KEYS_ROLE_ADMIN && !strcmp(key_beta.tenant, "beta"));

    uint8_t d[KEYS_DIGEST_LEN];
    keys_key_t got;
    int found = -1;
    keys_digest(tok_acme, strlen(tok_acme), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 1 && got.id == k->id && got.tenant_id == acme_id);
    CHECK(!strcmp(got.tenant, "acme") && got.role == KEYS_ROLE_CLIENT && !got.revoked);
    CHECK(!strcmp(got.prefix, k->prefix) && !strcmp(got.created_at, k->created_at));

    keys_digest(tok_beta, strlen(tok_beta), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 1 && got.id == key_beta.id && got.role == KEYS_ROLE_ADMIN &&
          !strcmp(got.tenant, "beta"));

    /* a wrong token: a fresh one, and the right one with one character off */
    char wrong[KEYS_TOKEN_SIZE];
    REQUIRE(keys_token_new(wrong, sizeof wrong, NULL, 0) == DB_OK);
    keys_digest(wrong, strlen(wrong), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 0 && got.id == 0);
    memcpy(wrong, tok_acme, sizeof wrong);
    wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
    keys_digest(wrong, strlen(wrong), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 0);
    CHECK(keys_lookup(conn, NULL, &got, &found, err, sizeof err) == DB_ERR_INVALID);
}

static void test_create_bad(void)
{
    REQUIRE(conn);
    char err[2048], tok[KEYS_TOKEN_SIZE], q[64], before[32];
    keys_key_t k;
    query1("SELECT count(*) FROM api_keys", NULL, before, sizeof before);
    char small[KEYS_TOKEN_LEN];
    CHECK(keys_create(conn, "acme", "x", KEYS_ROLE_CLIENT, small, sizeof small, &k, err,
                      sizeof err) == DB_ERR_INVALID);
    CHECK(small[0] == '\0' && k.id == 0);
    CHECK(keys_create(conn, "", "x", KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err, sizeof err) ==
          DB_ERR_INVALID);
    CHECK(keys_create(conn, NULL, "x", KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err, sizeof err) ==
          DB_ERR_INVALID);
    CHECK(keys_create(conn, "acme", "", KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err, sizeof err) ==
          DB_ERR_INVALID);
    CHECK(strstr(err, "name") != NULL, "%s", err);
    CHECK(keys_create(conn, "acme", "x", (keys_role_t)5, tok, sizeof tok, &k, err, sizeof err) ==
          DB_ERR_INVALID);
    char longname[KEYS_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(keys_create(conn, "acme", longname, KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err,
                      sizeof err) == DB_ERR_INVALID);
    CHECK(tok[0] == '\0', "no token after a failure");
    CHECK(keys_create(conn, longname, "x", KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err,
                      sizeof err) == DB_ERR_INVALID);
    CHECK(!strcmp(query1("SELECT count(*) FROM api_keys", NULL, q, sizeof q), before),
          "no row from a failed create");
    /* the longest name is whole in the key */
    longname[KEYS_NAME_MAX] = '\0';
    CHECK(keys_create(conn, "gamma", longname, KEYS_ROLE_CLIENT, tok, sizeof tok, &k, err,
                      sizeof err) == DB_OK, "%s", err);
    CHECK(!strcmp(k.name, longname));
    CHECK(keys_revoke(conn, k.prefix, NULL, err, sizeof err) == DB_OK, "%s", err);
}

/* Only the digest and the prefix are kept: no column of any key's row holds
 * the token or its secret part past the prefix. */
static void test_token_not_stored(void)
{
    REQUIRE(conn);
    char err[2048];
    PGresult *res;
    REQUIRE(db_query(conn, "SELECT k::text FROM api_keys k", 0, NULL, 0, &res, err,
                     sizeof err) == DB_OK, "%s", err);
    const char *toks[2] = {tok_acme, tok_beta};
    int rows = PQntuples(res);
    CHECK(rows >= 2);
    for (int i = 0; i < rows; i++) {
        const char *row = PQgetvalue(res, i, 0);
        for (int j = 0; j < 2; j++) {
            CHECK(strstr(row, toks[j]) == NULL, "row %s", row);
            char secret[16];
            snprintf(secret, sizeof secret, "%.12s", toks[j] + KEYS_PREFIX_LEN);
            CHECK(strstr(row, secret) == NULL, "row %s holds '%s'", row, secret);
        }
    }
    PQclear(res);
    /* and what is kept is the SHA-256, by the server's own function */
    char q[16];
    CHECK(!strcmp(query1("SELECT (digest = sha256(convert_to($1, 'UTF8')))::text "
                         "FROM api_keys WHERE prefix = left($1, 11)",
                         tok_acme, q, sizeof q),
                  "true"),
          "the stored digest is sha256 of the token");
}

static int count_prefix(const keys_key_t *k, size_t n, const char *prefix)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += !strcmp(k[i].prefix, prefix);
    return c;
}

static void test_list(void)
{
    REQUIRE(conn);
    char err[2048];
    keys_key_t *k = NULL;
    size_t n = 99;
    REQUIRE(keys_list(conn, "acme", 0, &k, &n, err, sizeof err) == DB_OK, "%s", err);
    CHECK(n == 1 && k && k[0].id == key_acme.id && !strcmp(k[0].tenant, "acme"));
    free(k);
    REQUIRE(keys_list(conn, NULL, 0, &k, &n, err, sizeof err) == DB_OK, "%s", err);
    CHECK(count_prefix(k, n, key_acme.prefix) == 1 && count_prefix(k, n, key_beta.prefix) == 1);
    for (size_t i = 1; i < n; i++) CHECK(k[i - 1].id < k[i].id, "oldest first");
    for (size_t i = 0; i < n; i++) CHECK(!k[i].revoked, "live keys only");
    free(k);
    REQUIRE(keys_list(conn, "nobody", 1, &k, &n, err, sizeof err) == DB_OK, "%s", err);
    CHECK(n == 0 && k == NULL, "an unknown tenant has no keys");
}

static void test_revoke(void)
{
    REQUIRE(conn);
    char err[2048];
    int64_t id = -1;
    uint8_t d[KEYS_DIGEST_LEN];
    keys_key_t got, *k;
    size_t n;
    int found;

    /* by prefix, as lists show it */
    REQUIRE(keys_revoke(conn, key_acme.prefix, &id, err, sizeof err) == DB_OK, "%s", err);
    CHECK(id == key_acme.id);
    keys_digest(tok_acme, strlen(tok_acme), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 1 && got.revoked == 1 && strlen(got.revoked_at) == 20, "'%s'",
          got.revoked_at);
    CHECK(keys_revoke(conn, key_acme.prefix, &id, err, sizeof err) == DB_ERR_INVALID);
    CHECK(strstr(err, "already revoked") != NULL, "%s", err);

    /* lists hide it unless asked */
    REQUIRE(keys_list(conn, "acme", 0, &k, &n, err, sizeof err) == DB_OK, "%s", err);
    CHECK(n == 0);
    free(k);
    REQUIRE(keys_list(conn, "acme", 1, &k, &n, err, sizeof err) == DB_OK, "%s", err);
    CHECK(n == 1 && k[0].revoked && !strcmp(k[0].revoked_at, got.revoked_at));
    free(k);

    /* by id */
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)key_beta.id);
    REQUIRE(keys_revoke(conn, ids, &id, err, sizeof err) == DB_OK, "%s", err);
    CHECK(id == key_beta.id);
    keys_digest(tok_beta, strlen(tok_beta), d);
    REQUIRE(keys_lookup(conn, d, &got, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found == 1 && got.revoked == 1 && got.role == KEYS_ROLE_ADMIN);
    CHECK(keys_revoke(conn, ids, &id, err, sizeof err) == DB_ERR_INVALID);
    CHECK(strstr(err, "already revoked") != NULL, "%s", err);

    /* by the whole token */
    char tok[KEYS_TOKEN_SIZE];
    keys_key_t nk;
    REQUIRE(keys_create(conn, "acme", "leaked", KEYS_ROLE_CLIENT, tok, sizeof tok, &nk, err,
                        sizeof err) == DB_OK, "%s", err);
    REQUIRE(keys_revoke(conn, tok, &id, err, sizeof err) == DB_OK, "%s", err);
    CHECK(id == nk.id);
    CHECK(keys_revoke(conn, tok, &id, err, sizeof err) == DB_ERR_INVALID);
    CHECK(strstr(err, tok) == NULL && strstr(err, tok + KEYS_PREFIX_LEN) == NULL,
          "no token in messages: %s", err);

    /* unknown ones */
    CHECK(keys_revoke(conn, "99999999", &id, err, sizeof err) == DB_ERR_INVALID && id == 0);
    CHECK(strstr(err, "no API key") != NULL, "%s", err);
    CHECK(keys_revoke(conn, "em_-_-_-_-", &id, err, sizeof err) == DB_ERR_INVALID);
    const char *bad[] = {"", "0", "-3", "abc", "em_", "em_abc", "em_abcdefghi", "em_ab!d",
                         "12x", "9999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(keys_revoke(conn, bad[i], &id, err, sizeof err) == DB_ERR_INVALID, "'%s'",
              bad[i]);
        CHECK(strstr(err, "names no API key") != NULL, "'%s': %s", bad[i], err);
    }
    CHECK(keys_revoke(conn, NULL, &id, err, sizeof err) == DB_ERR_INVALID);
}

/* The stored prefix of key id. */
static const char *prefix_of(int64_t id, char *buf, size_t len)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    return query1("SELECT prefix FROM api_keys WHERE id = $1::bigint", ids, buf, len);
}

/* Two live keys whose prefixes begin alike (made by hand: random prefixes
 * almost never do): the common part is ambiguous, more of it is not. */
static void test_revoke_ambiguous(void)
{
    REQUIRE(conn);
    char err[2048], q[64];
    int64_t tenant, id = -1;
    REQUIRE(catalog_tenant_ensure(conn, "acme", &tenant, err, sizeof err) == DB_OK, "%s", err);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO api_keys (tenant_id, name, prefix, digest, role) VALUES "
             "(%lld, 'twin a', 'em_Tw1nAAAA', sha256('twin a'), 'client'), "
             "(%lld, 'twin b', 'em_Tw1nBBBB', sha256('twin b'), 'admin')",
             (long long)tenant, (long long)tenant);
    REQUIRE(db_exec(conn, sql, err, sizeof err) == DB_OK, "%s", err);
    CHECK(keys_revoke(conn, "em_Tw1n", &id, err, sizeof err) == DB_ERR_INVALID && id == 0);
    CHECK(strstr(err, "2 live keys") && strstr(err, "em_Tw1nAAAA") && strstr(err, "em_Tw1nBBBB"),
          "%s", err);
    CHECK(!strcmp(query1("SELECT count(*) FROM api_keys WHERE prefix LIKE 'em\\_Tw1n%' "
                         "AND revoked_at IS NULL",
                         NULL, q, sizeof q),
                  "2"),
          "an ambiguous revoke revokes nothing");
    REQUIRE(keys_revoke(conn, "em_Tw1nB", &id, err, sizeof err) == DB_OK, "%s", err);
    CHECK(!strcmp(prefix_of(id, q, sizeof q), "em_Tw1nBBBB"), "revoked %s", q);
    /* with one of the two revoked, the common part names the other */
    REQUIRE(keys_revoke(conn, "em_Tw1n", &id, err, sizeof err) == DB_OK, "%s", err);
    CHECK(!strcmp(prefix_of(id, q, sizeof q), "em_Tw1nAAAA"), "revoked %s", q);
    CHECK(keys_revoke(conn, "em_Tw1n", &id, err, sizeof err) == DB_ERR_INVALID);
    CHECK(strstr(err, "already revoked") != NULL, "%s", err);
    /* '_' and '%' are no wildcards: em_Tw1_ matches nothing */
    CHECK(keys_revoke(conn, "em_Tw1_", &id, err, sizeof err) == DB_ERR_INVALID);
    CHECK(strstr(err, "no API key") != NULL, "%s", err);
}

/* ---- the command line ------------------------------------------------------ */

static void test_cli(void)
{
    const char *bin = getenv("EARMARK_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "  (earmark binary not found: CLI checks skipped)\n");
        return;
    }
    REQUIRE(conn);
    const char *d = test_tmpdir(), *ci = test_db_start();
    char env[2200], buf[8192], path[1200], tok[256], err[2048];
    snprintf(env, sizeof env, "EARMARK_DB=\"%s\"", ci);

    /* create: the token alone on stdout, the prefix and a warning on stderr */
    int rc = test_sh("%s '%s' keys create --tenant cli --name 'cli key' --role admin "
                     ">%s/tok.txt 2>%s/create.txt",
                     env, bin, d, d);
    snprintf(path, sizeof path, "%s/create.txt", d);
    REQUIRE(rc == 0, "exit %d: %s", rc, slurp(path, buf, sizeof buf));
    snprintf(path, sizeof path, "%s/tok.txt", d);
    slurp(path, tok, sizeof tok);
    size_t len = strlen(tok);
    REQUIRE(len == KEYS_TOKEN_LEN + 1 && tok[len - 1] == '\n', "stdout '%s'", tok);
    tok[--len] = '\0';
    CHECK(keys_token_wellformed(tok, len), "'%s'", tok);
    char prefix[KEYS_PREFIX_LEN + 1];
    snprintf(prefix, sizeof prefix, "%.*s", KEYS_PREFIX_LEN, tok);
    snprintf(path, sizeof path, "%s/create.txt", d);
    slurp(path, buf, sizeof buf);
    CHECK(strstr(buf, prefix) && strstr(buf, "once") && !strstr(buf, tok), "stderr: %s", buf);

    uint8_t dg[KEYS_DIGEST_LEN];
    keys_key_t k;
    int found;
    keys_digest(tok, len, dg);
    REQUIRE(keys_lookup(conn, dg, &k, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found && !strcmp(k.tenant, "cli") && !strcmp(k.name, "cli key") &&
          k.role == KEYS_ROLE_ADMIN && !k.revoked);

    /* list shows the prefix, never the token */
    CHECK(test_sh("%s '%s' keys list --tenant cli > %s/list.txt", env, bin, d) == 0);
    snprintf(path, sizeof path, "%s/list.txt", d);
    slurp(path, buf, sizeof buf);
    CHECK(strstr(buf, "prefix") && strstr(buf, "revoked") && strstr(buf, prefix) &&
          strstr(buf, "cli key") && strstr(buf, "admin") && !strstr(buf, tok),
          "list: %s", buf);
    CHECK(test_sh("%s '%s' keys list --json > %s/list.json", env, bin, d) == 0);
    snprintf(path, sizeof path, "%s/list.json", d);
    slurp(path, buf, sizeof buf);
    char want[64];
    snprintf(want, sizeof want, "\"prefix\":\"%s\"", prefix);
    CHECK(strstr(buf, want) && strstr(buf, "\"revoked_at\":null") && !strstr(buf, tok),
          "json: %s", buf);

    /* revoke by prefix: gone from the list, there with --all, refused twice */
    CHECK(test_sh("%s '%s' keys revoke %s > %s/rev.txt", env, bin, prefix, d) == 0);
    REQUIRE(keys_lookup(conn, dg, &k, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found && k.revoked);
    CHECK(test_sh("%s '%s' keys list --tenant cli 2>/dev/null | grep -q %s", env, bin, prefix) ==
          1, "revoked keys are hidden");
    CHECK(test_sh("%s '%s' keys list --tenant cli --all | grep %s | grep -q 'T.*Z  *[0-9-]*T'",
                  env, bin, prefix) == 0,
          "--all shows it with its revocation time");
    CHECK(test_sh("%s '%s' keys revoke %s 2>%s/rev2.txt", env, bin, prefix, d) == 1);
    snprintf(path, sizeof path, "%s/rev2.txt", d);
    CHECK(strstr(slurp(path, buf, sizeof buf), "already revoked") != NULL, "%s", buf);
    CHECK(test_sh("%s '%s' keys revoke 99999999 2>/dev/null", env, bin) == 1, "no such key");

    /* and by id */
    CHECK(test_sh("%s '%s' keys create --tenant cli --name second >%s/tok2.txt 2>/dev/null", env,
                  bin, d) == 0);
    snprintf(path, sizeof path, "%s/tok2.txt", d);
    slurp(path, tok, sizeof tok);
    tok[strcspn(tok, "\n")] = '\0';
    keys_digest(tok, strlen(tok), dg);
    REQUIRE(keys_lookup(conn, dg, &k, &found, err, sizeof err) == DB_OK && found, "%s", err);
    CHECK(k.role == KEYS_ROLE_CLIENT, "client is the default role");
    CHECK(test_sh("%s '%s' keys revoke %lld >/dev/null", env, bin, (long long)k.id) == 0);
    REQUIRE(keys_lookup(conn, dg, &k, &found, err, sizeof err) == DB_OK, "%s", err);
    CHECK(found && k.revoked);

    /* the command line itself wrong: exit 2, before any database */
    const char *usage[] = {
        "keys",
        "keys frobnicate",
        "keys create --name x",
        "keys create --tenant x",
        "keys create --tenant x --name y --role root",
        "keys create --tenant x --name y extra",
        "keys create --tenant",
        "keys list --bogus",
        "keys list extra",
        "keys revoke",
        "keys revoke 1 2",
        "keys revoke --all 1",
        "keys revoke notakey",
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++)
        CHECK(test_sh("EARMARK_DB='host=/nonexistent' '%s' %s >/dev/null 2>&1", bin, usage[i]) ==
                  2,
              "'%s' is a usage error", usage[i]);
    const char *help[] = {"keys --help", "keys create --help", "keys list --help",
                          "keys revoke --help", "--help"};
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        CHECK(test_sh("'%s' %s 2>&1 | grep -q 'keys'", bin, help[i]) == 0, "'%s'", help[i]);
    CHECK(test_sh("'%s' keys create --help >/dev/null", bin) == 0);
    /* no database: exit 1 and a hint */
    CHECK(test_sh("EARMARK_DB='host=%s/nodb connect_timeout=2' '%s' keys list 2>%s/nodb.txt; "
                  "test $? -eq 1 && grep -q 'hint' %s/nodb.txt",
                  d, bin, d, d) == 0,
          "no database: exit 1 with a hint");
}

int main(void)
{
    alarm(300);
    RUN(test_roles);
    RUN(test_digest);
    RUN(test_token_format);
    RUN(test_token_bad);
    RUN(db_open);
    RUN(test_create_lookup);
    RUN(test_create_bad);
    RUN(test_token_not_stored);
    RUN(test_list);
    RUN(test_revoke);
    RUN(test_revoke_ambiguous);
    RUN(test_cli);
    db_close(conn);
    return test_main_end();
}
