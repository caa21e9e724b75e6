/*
 * keys.c -- API keys of the HTTP service (em_keys.h): tokens and their
 * digests, and the rows of api_keys.  Plain parameterized statements; the
 * clear token never reaches the database, a log line or an error message.
 */
#include "em_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "em_catalog.h"

#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define PREFIX_MIN 7        /* "em_" and 4 characters: what keys_revoke() takes */
#define TOKEN_BYTES 32      /* random bytes in a token */
#define TOKEN_CHARS 43      /* their unpadded base64url: ceil(32 * 8 / 6) */

_Static_assert(sizeof KEYS_TOKEN_PREFIX - 1 + TOKEN_CHARS == KEYS_TOKEN_LEN,
               "KEYS_TOKEN_LEN is the prefix and 43 characters");
_Static_assert(KEYS_PREFIX_LEN < sizeof ((keys_key_t *)0)->prefix, "the prefix fits a key");
_Static_assert(KEYS_NAME_MAX < sizeof ((keys_key_t *)0)->name, "a name fits a key");

/* The columns every query returns for a key, in the order key_from_row()
 * reads them: the key k joined with its tenant t. */
#define KEY_COLUMNS                                                                     \
    "k.id, k.tenant_id, t.name, k.name, k.prefix, k.role, k.revoked_at IS NOT NULL, "   \
    "to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "      \
    "coalesce(to_char(k.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
#define KEY_NCOLUMNS 9

/* ------------------------------------------------------------------------ */
/* Roles                                                                    */
/* ------------------------------------------------------------------------ */

const char *keys_role_name(keys_role_t role)
{
    switch (role) {
    case KEYS_ROLE_CLIENT: return "client";
    case KEYS_ROLE_ADMIN: return "admin";
    }
    return "unknown";
}

int keys_role_parse(const char *s, keys_role_t *out)
{
    if (!s) return -1;
    if (!strcmp(s, "client")) *out = KEYS_ROLE_CLIENT;
    else if (!strcmp(s, "admin")) *out = KEYS_ROLE_ADMIN;
    else return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tokens and digests                                                       */
/* ------------------------------------------------------------------------ */

/* The value (0..63) of a base64url character, -1 for any other byte. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/*
 * EVP_Digest allocates inside OpenSSL and so can fail, but keys_digest()
 * has no error to return and any made-up digest could be another key's:
 * stop the process, as an assertion that also holds in release builds.
 */
void keys_digest(const char *token, size_t len, uint8_t out[KEYS_DIGEST_LEN])
{
    static const char empty[1] = "";
    unsigned int n = 0;
    if (!EVP_Digest(token ? token : empty, len, out, &n, EVP_sha256(), NULL) ||
        n != KEYS_DIGEST_LEN) {
        fprintf(stderr, "earmark: assertion failed: OpenSSL cannot compute a SHA-256 "
                        "(keys_digest, %s:%d)\n", __FILE__, __LINE__);
        abort();
    }
}

/*
 * The last of the 43 characters carries the final 4 bits of the 32 bytes
 * in its high bits; the encoder leaves the low 2 bits zero.  Requiring that
 * makes the encoding of a token unique: no second spelling of a key that
 * differs only in unused bits.
 */
int keys_token_wellformed(const char *token, size_t len)
{
    static const size_t plen = sizeof KEYS_TOKEN_PREFIX - 1;
    if (!token || len != KEYS_TOKEN_LEN || memcmp(token, KEYS_TOKEN_PREFIX, plen) != 0) return 0;
    int v = 0;
    for (size_t i = plen; i < len; i++)
        if ((v = b64url_value((unsigned char)token[i])) < 0) return 0;
    return (v & 3) == 0;
}

/* The unpadded base64url of 32 bytes: 43 characters and a NUL into out. */
static void b64url_encode32(const uint8_t in[TOKEN_BYTES], char out[TOKEN_CHARS + 1])
{
    static const char a[] = B64URL;
    size_t o = 0, i = 0;
    for (; i + 3 <= TOKEN_BYTES; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[w >> 18 & 63];
        out[o++] = a[w >> 12 & 63];
        out[o++] = a[w >> 6 & 63];
        out[o++] = a[w & 63];
    }
    /* 32 = 3 * 10 + 2: two bytes left, 16 bits in three characters */
    uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = a[w >> 18 & 63];
    out[o++] = a[w >> 12 & 63];
    out[o++] = a[w >> 6 & 63];
    out[o] = '\0';
}

db_err_t keys_token_new(char *out, size_t len, char *err, size_t errlen)
{
    if (!out || len < KEYS_TOKEN_SIZE) {
        if (out && len) out[0] = '\0';
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "a token needs a buffer of %d bytes", KEYS_TOKEN_SIZE);
    }
    uint8_t raw[TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        out[0] = '\0';
        return db_errorf(DB_ERR_IO, err, errlen,
                         "cannot make a key: the random number generator failed\n"
                         "detail: %s\nhint: OpenSSL could not seed itself; check that "
                         "/dev/urandom or getrandom() is available",
                         why);
    }
    memcpy(out, KEYS_TOKEN_PREFIX, sizeof KEYS_TOKEN_PREFIX - 1);
    b64url_encode32(raw, out + sizeof KEYS_TOKEN_PREFIX - 1);
    OPENSSL_cleanse(raw, sizeof raw);
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Rows                                                                     */
/* ------------------------------------------------------------------------ */

/* A digest as a bytea literal in hex ("\x" and 64 digits) into out[67]. */
static void digest_hex(const uint8_t d[KEYS_DIGEST_LEN], char out[2 * KEYS_DIGEST_LEN + 3])
{
    static const char x[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < KEYS_DIGEST_LEN; i++) {
        out[2 + 2 * i] = x[d[i] >> 4];
        out[3 + 2 * i] = x[d[i] & 15];
    }
    out[2 + 2 * KEYS_DIGEST_LEN] = '\0';
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A bytea in the server's hex output back to 32 bytes; -1 when it is not. */
static int digest_parse(const char *s, uint8_t out[KEYS_DIGEST_LEN])
{
    if (strlen(s) != 2 + 2 * KEYS_DIGEST_LEN || s[0] != '\\' || s[1] != 'x') return -1;
    for (int i = 0; i < KEYS_DIGEST_LEN; i++) {
        int a = unhex(s[2 + 2 * i]), b = unhex(s[3 + 2 * i]);
        if (a < 0 || b < 0) return -1;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

/* Row `row` of res (KEY_COLUMNS first) into *k.  DB_ERR_CORRUPT when the
 * role is not one this build knows. */
static db_err_t key_from_row(const PGresult *res, int row, keys_key_t *k, char *err,
                             size_t errlen)
{
    memset(k, 0, sizeof *k);
    k->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    k->tenant_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    snprintf(k->tenant, sizeof k->tenant, "%s", PQgetvalue(res, row, 2));
    snprintf(k->name, sizeof k->name, "%s", PQgetvalue(res, row, 3));
    snprintf(k->prefix, sizeof k->prefix, "%s", PQgetvalue(res, row, 4));
    if (keys_role_parse(PQgetvalue(res, row, 5), &k->role) != 0)
        return db_errorf(DB_ERR_CORRUPT, err, errlen,
                         "API key %lld has the unknown role '%s'\n"
                         "hint: this build knows client and admin; is the database newer?",
                         (long long)k->id, PQgetvalue(res, row, 5));
    k->revoked = PQgetvalue(res, row, 6)[0] == 't';
    snprintf(k->created_at, sizeof k->created_at, "%s", PQgetvalue(res, row, 7));
    snprintf(k->revoked_at, sizeof k->revoked_at, "%s", PQgetvalue(res, row, 8));
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Create                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The token is made and hashed here and copied to token_out only once the
 * row is in: a failed call leaves no usable token anywhere, and the local
 * copy is wiped (OPENSSL_cleanse) on every path.
 */
db_err_t keys_create(db_conn_t *conn, const char *tenant, const char *name, keys_role_t role,
                     char *token_out, size_t token_len, keys_key_t *out, char *err,
                     size_t errlen)
{
    char token[KEYS_TOKEN_SIZE] = "", hex[2 * KEYS_DIGEST_LEN + 3], prefix[KEYS_PREFIX_LEN + 1];
    char tid[24];
    uint8_t digest[KEYS_DIGEST_LEN];
    int64_t tenant_id;
    PGresult *res = NULL;
    db_err_t rc;
    if (out) memset(out, 0, sizeof *out);
    if (token_out && token_len) token_out[0] = '\0';
    if (!token_out || token_len < KEYS_TOKEN_SIZE) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "a token needs a buffer of %d bytes",
                       KEYS_TOKEN_SIZE);
        goto out;
    }
    if (!tenant || !*tenant || strlen(tenant) > KEYS_NAME_MAX) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "a key needs the name of its tenant, of 1 to %d bytes", KEYS_NAME_MAX);
        goto out;
    }
    if (!name || !*name || strlen(name) > KEYS_NAME_MAX) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "a key needs a name of 1 to %d bytes, saying what it is for\n"
                       "hint: such as \"ingest server\" or \"alice's laptop\"",
                       KEYS_NAME_MAX);
        goto out;
    }
    if (role != KEYS_ROLE_CLIENT && role != KEYS_ROLE_ADMIN) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "unknown key role %d", (int)role);
        goto out;
    }
    if ((rc = keys_token_new(token, sizeof token, err, errlen)) != DB_OK) goto out;

    keys_digest(token, KEYS_TOKEN_LEN, digest);
    digest_hex(digest, hex);
    memcpy(prefix, token, KEYS_PREFIX_LEN);
    prefix[KEYS_PREFIX_LEN] = '\0';

    if ((rc = catalog_tenant_ensure(conn, tenant, &tenant_id, err, errlen)) != DB_OK) goto out;
    snprintf(tid, sizeof tid, "%lld", (long long)tenant_id);
    const char *p[5] = {tid, name, prefix, hex, keys_role_name(role)};
    rc = db_query(conn,
                  "WITH k AS (INSERT INTO api_keys (tenant_id, name, prefix, digest, role) "
                  "VALUES ($1, $2, $3, $4::bytea, $5) RETURNING *) "
                  "SELECT " KEY_COLUMNS " FROM k JOIN tenants t ON t.id = k.tenant_id",
                  5, p, 0, &res, err, errlen);
    if (rc != DB_OK) goto out;
    if (PQntuples(res) != 1 || PQnfields(res) != KEY_NCOLUMNS) {
        rc = db_errorf(DB_ERR_QUERY, err, errlen, "the new key of tenant '%s' did not come back",
                       tenant);
        goto out;
    }
    if (out && (rc = key_from_row(res, 0, out, err, errlen)) != DB_OK) goto out;
    memcpy(token_out, token, KEYS_TOKEN_SIZE);
out:
    if (rc != DB_OK && out) memset(out, 0, sizeof *out);
    OPENSSL_cleanse(token, sizeof token);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* List                                                                     */
/* ------------------------------------------------------------------------ */

db_err_t keys_list(db_conn_t *conn, const char *tenant, int include_revoked, keys_key_t **out,
                   size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    const char *p[2] = {tenant, include_revoked ? "true" : "false"};
    PGresult *res = NULL;
    keys_key_t *keys = NULL;
    db_err_t rc = db_query(conn,
                           "SELECT " KEY_COLUMNS " FROM api_keys k "
                           "JOIN tenants t ON t.id = k.tenant_id "
                           "WHERE ($1::text IS NULL OR t.name = $1) "
                           "AND ($2::boolean OR k.revoked_at IS NULL) ORDER BY k.id",
                           2, p, 0, &res, err, errlen);
    if (rc != DB_OK) goto out;
    int rows = PQntuples(res);
    if (rows == 0) goto out;
    if (!(keys = calloc((size_t)rows, sizeof *keys))) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory for %d API keys", rows);
        goto out;
    }
    for (int i = 0; i < rows; i++)
        if ((rc = key_from_row(res, i, &keys[i], err, errlen)) != DB_OK) goto out;
    *out = keys;
    *n = (size_t)rows;
    keys = NULL;
out:
    free(keys);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Revoke                                                                   */
/* ------------------------------------------------------------------------ */

/* What keys_revoke() was given. */
typedef enum revoke_by { REVOKE_BY_ID, REVOKE_BY_TOKEN, REVOKE_BY_PREFIX } revoke_by_t;

/* Classify s into *by; -1 when it is no id, token or prefix.  For a token,
 * hex (67 bytes) gets its digest as a bytea literal, the statement's
 * parameter in place of s. */
static int revoke_classify(const char *s, revoke_by_t *by, char *hex)
{
    size_t len = strlen(s), digits = strspn(s, "0123456789");
    if (len > 0 && digits == len) {
        if (len > 18 || strtoll(s, NULL, 10) < 1) return -1; /* fits int64 */
        *by = REVOKE_BY_ID;
        return 0;
    }
    if (keys_token_wellformed(s, len)) {
        uint8_t d[KEYS_DIGEST_LEN];
        keys_digest(s, len, d);
        digest_hex(d, hex);
        *by = REVOKE_BY_TOKEN;
        return 0;
    }
    static const size_t plen = sizeof KEYS_TOKEN_PREFIX - 1;
    if (len < PREFIX_MIN || len > KEYS_PREFIX_LEN || strncmp(s, KEYS_TOKEN_PREFIX, plen) != 0)
        return -1;
    for (size_t i = plen; i < len; i++)
        if (b64url_value((unsigned char)s[i]) < 0) return -1;
    *by = REVOKE_BY_PREFIX;
    return 0;
}

/*
 * One statement finds the live keys that match (m), revokes the one when
 * there is exactly one (u), and reports what it saw: the number of live
 * matches, the id revoked, the first matches for an ambiguity message and
 * the revoked keys that match too, for a "no live key" message.  Two
 * revokers at once: the second's UPDATE finds revoked_at set by the first
 * (it re-checks the row after the wait), revokes nothing, and says so.
 */
db_err_t keys_revoke(db_conn_t *conn, const char *id_or_prefix, int64_t *revoked_id, char *err,
                     size_t errlen)
{
    static const char *const cond[] = {
        [REVOKE_BY_ID] = "id = $1::bigint",
        [REVOKE_BY_TOKEN] = "digest = $1::bytea",
        [REVOKE_BY_PREFIX] = "left(prefix, char_length($1::text)) = $1::text",
    };
    if (revoked_id) *revoked_id = 0;
    const char *s = id_or_prefix ? id_or_prefix : "";
    revoke_by_t by;
    char hex[2 * KEYS_DIGEST_LEN + 3];
    if (revoke_classify(s, &by, hex) != 0)
        return db_errorf(DB_ERR_INVALID, err, errlen,
                         "'%.*s%s' names no API key\n"
                         "hint: give the key's id, or its prefix (em_ and 4 to 8 more "
                         "characters) as `earmark keys list` shows them",
                         KEYS_PREFIX_LEN, s, strlen(s) > KEYS_PREFIX_LEN ? "..." : "");
    /* what messages call the key: never the token itself */
    char what[64];
    if (by == REVOKE_BY_ID) snprintf(what, sizeof what, "id %s", s);
    else if (by == REVOKE_BY_TOKEN) snprintf(what, sizeof what, "the token given");
    else snprintf(what, sizeof what, "a prefix beginning '%s'", s);

    char sql[1536];
    snprintf(sql, sizeof sql,
             "WITH m AS (SELECT id, prefix FROM api_keys WHERE %s AND revoked_at IS NULL), "
             "u AS (UPDATE api_keys SET revoked_at = now() WHERE id IN (SELECT id FROM m) "
             "AND revoked_at IS NULL AND (SELECT count(*) FROM m) = 1 RETURNING id) "
             "SELECT (SELECT count(*) FROM m), (SELECT id FROM u), "
             "(SELECT string_agg(f.id || ' (' || f.prefix || ')', ', ' ORDER BY f.id) "
             " FROM (SELECT id, prefix FROM m ORDER BY id LIMIT 10) f), "
             "(SELECT count(*) FROM api_keys WHERE %s AND revoked_at IS NOT NULL)",
             cond[by], cond[by]);
    const char *p[1] = {by == REVOKE_BY_TOKEN ? hex : s};
    PGresult *res = NULL;
    db_err_t rc = db_query(conn, sql, 1, p, 0, &res, err, errlen);
    if (rc != DB_OK) goto out;
    if (PQntuples(res) != 1) {
        rc = db_errorf(DB_ERR_QUERY, err, errlen, "revoking the key with %s returned no answer",
                       what);
        goto out;
    }
    long long live = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long revoked = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    if (live == 1 && !PQgetisnull(res, 0, 1)) {
        if (revoked_id) *revoked_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    } else if (live == 1) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "the key with %s was revoked by someone else meanwhile", what);
    } else if (live > 1) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "%lld live keys have %s: none was revoked\n"
                       "detail: keys %s%s\nhint: give more of the prefix, or the id",
                       live, what, PQgetvalue(res, 0, 2), live > 10 ? ", ..." : "");
    } else if (revoked > 0) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "the key with %s is already revoked%s", what,
                       revoked > 1 ? " (so are all that match)" : "");
    } else {
        rc = db_errorf(DB_ERR_INVALID, err, errlen,
                       "there is no API key with %s\n"
                       "hint: `earmark keys list --all` shows every key with its id and prefix",
                       what);
    }
out:
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                   */
/* ------------------------------------------------------------------------ */

db_err_t keys_lookup(db_conn_t *conn, const uint8_t digest[KEYS_DIGEST_LEN], keys_key_t *out,
                     int *found, char *err, size_t errlen)
{
    if (!found || !out || !digest)
        return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to keys_lookup");
    *found = 0;
    memset(out, 0, sizeof *out);
    char hex[2 * KEYS_DIGEST_LEN + 3];
    digest_hex(digest, hex);
    const char *p[1] = {hex};
    PGresult *res = NULL;
    db_err_t rc = db_query(conn,
                           "SELECT " KEY_COLUMNS ", k.digest FROM api_keys k "
                           "JOIN tenants t ON t.id = k.tenant_id WHERE k.digest = $1::bytea",
                           1, p, 0, &res, err, errlen);
    if (rc != DB_OK) goto out;
    int rows = PQntuples(res);
    if (rows == 0) goto out;
    if (rows != 1 || PQnfields(res) != KEY_NCOLUMNS + 1) {
        rc = db_errorf(DB_ERR_CORRUPT, err, errlen,
                       "the lookup of an API key by digest returned %d rows\n"
                       "hint: check the api_keys table and its unique index on digest", rows);
        goto out;
    }
    /* belt and braces: the row must carry the very digest asked for; the
     * comparison takes the same time wherever the bytes differ */
    uint8_t back[KEYS_DIGEST_LEN];
    if (digest_parse(PQgetvalue(res, 0, KEY_NCOLUMNS), back) != 0 ||
        CRYPTO_memcmp(back, digest, KEYS_DIGEST_LEN) != 0) {
        rc = db_errorf(DB_ERR_CORRUPT, err, errlen,
                       "the API key found by digest does not have that digest\n"
                       "hint: check the api_keys table and its unique index on digest");
        goto out;
    }
    if ((rc = key_from_row(res, 0, out, err, errlen)) != DB_OK) goto out;
    *found = 1;
out:
    if (rc != DB_OK) memset(out, 0, sizeof *out);
    PQclear(res);
    return rc;
}
