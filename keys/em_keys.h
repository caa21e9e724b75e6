/*
 * em_keys.h -- the API keys of the HTTP matching service, in PostgreSQL
 * (table api_keys, sql/003_service.sql).
 *
 *   keys.c       tokens, digests, and the keys' rows: create, list, revoke,
 *                look up (part of libearmark-store)
 *   cmd_keys.c   `earmark keys create|list|revoke` (not part of the library)
 *
 * A key is a bearer token:
 *
 *   em_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX
 *   "em_" then 43 characters: the unpadded base64url (RFC 4648 section 5,
 *   alphabet A-Z a-z 0-9 - _) of 32 bytes from OpenSSL's RAND_bytes.
 *
 * 46 characters in all, safe in URLs and HTTP headers as they are.  The
 * token exists in clear only once, in the answer of keys_create(); the
 * database keeps its SHA-256 (the digest column) and its first
 * KEYS_PREFIX_LEN characters (the prefix column: "em_" and 8 more, 48
 * random bits), which lists show to tell keys apart.  A person who reads
 * the table can neither use a key nor recover one.
 *
 * Why lookups go by digest: the server hashes the token it was sent and
 * asks for that digest.  Whatever timing the index search leaks is about
 * the digest, and knowing part of a SHA-256 does not tell anyone a token
 * that hashes to it; keys_lookup() then compares the whole digest once more
 * in constant time (CRYPTO_memcmp).
 *
 * Each key belongs to a tenant (tenants.name) and has a role: client (match
 * clips, read its tenant's results and tracks) or admin (the same, plus the
 * service's operational routes).  A revoked key keeps its row, with
 * revoked_at, for the audit trail; it is never accepted again.
 *
 * Errors are db_err_t (em_db.h) with a message in `err` (may be NULL) in the
 * PostgreSQL manner: what failed, then "detail:" and "hint:" lines where
 * useful.  The library never prints and never exits.
 *
 * Threads: keys_role_name(), keys_role_parse(), keys_digest(),
 * keys_token_wellformed() and keys_token_new() are thread-safe.  The
 * functions that take a db_conn_t use it as em_db.h says: one thread at a
 * time per connection.
 *
 * Ownership: pointers passed in are borrowed for the call.  keys_key_t holds
 * its strings in fixed arrays: it owns nothing and needs no clearing.  The
 * array from keys_list() is the caller's, to free().
 */
#ifndef EARMARK_KEYS_H
#define EARMARK_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "em_db.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What every token begins with. */
#define KEYS_TOKEN_PREFIX "em_"
/* The length of a token: "em_" and 43 base64url characters (no NUL). */
#define KEYS_TOKEN_LEN 46
/* The size of a buffer that holds a token and its NUL. */
#define KEYS_TOKEN_SIZE (KEYS_TOKEN_LEN + 1)
/* The length of the stored prefix: "em_" and the next 8 characters. */
#define KEYS_PREFIX_LEN 11
/* The length of a digest (SHA-256). */
#define KEYS_DIGEST_LEN 32
/* The longest tenant or key name keys_create() accepts, in bytes: what a
 * keys_key_t holds. */
#define KEYS_NAME_MAX 127

/* ------------------------------------------------------------------------ */
/* Roles                                                                    */
/* ------------------------------------------------------------------------ */

/* What a key may do.  Values are stable. */
typedef enum keys_role {
    KEYS_ROLE_CLIENT = 0,  /* match clips; read its tenant's results, tracks */
    KEYS_ROLE_ADMIN = 1    /* the same, plus the operational routes */
} keys_role_t;

/* "client" or "admin" (as stored in api_keys.role); "unknown" for any other
 * value.  Static, never NULL. */
const char *keys_role_name(keys_role_t role);

/*
 * Parse "client" or "admin" (exactly, lower case) into *out.  Returns 0, or
 * -1 when s is NULL or anything else (then *out is not changed).
 */
int keys_role_parse(const char *s, keys_role_t *out);

/* ------------------------------------------------------------------------ */
/* Tokens and digests (no database)                                         */
/* ------------------------------------------------------------------------ */

/*
 * The SHA-256 of the len bytes at token (OpenSSL EVP) into out.  token may
 * be NULL when len is 0.  What is stored and looked up for a token.
 * Should OpenSSL fail to compute it (it cannot, short of running out of
 * memory inside OpenSSL), the process aborts with a message on stderr: a
 * wrong digest could name somebody else's key, and there is no error to
 * return.
 */
void keys_digest(const char *token, size_t len, uint8_t out[KEYS_DIGEST_LEN]);

/*
 * 1 when the len bytes at token have the form of a token: exactly
 * KEYS_TOKEN_LEN bytes, "em_", then 43 base64url characters of which the
 * last is canonical (its two unused low bits zero, as the encoder of 32
 * bytes makes it); else 0 (also when token is NULL).  Syntax only: it says
 * nothing about whether the key exists.  The server uses it to refuse
 * garbage before it hashes anything or asks the database.
 */
int keys_token_wellformed(const char *token, size_t len);

/*
 * Make a new random token (RAND_bytes) into out, NUL-terminated.  out must
 * hold KEYS_TOKEN_SIZE bytes (len at least that).  keys_create() uses this;
 * on its own it touches no database.  Errors: DB_ERR_INVALID (out NULL or
 * too small), DB_ERR_IO (OpenSSL's random generator failed: it could not be
 * seeded).  On error out is "" when it has room.
 */
db_err_t keys_token_new(char *out, size_t len, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Keys in the database                                                     */
/* ------------------------------------------------------------------------ */

/* One row of api_keys, with its tenant's name.  Strings are NUL-terminated. */
typedef struct keys_key {
    int64_t id;
    int64_t tenant_id;
    char tenant[128];       /* the tenant's name (longer names: cut to 127 bytes) */
    char name[128];         /* what the key is for, as given at creation */
    char prefix[16];        /* the first KEYS_PREFIX_LEN characters of the token */
    keys_role_t role;
    int revoked;            /* 1 when revoked_at is set */
    char created_at[40];    /* ISO 8601, UTC: 2024-05-01T12:00:00Z */
    char revoked_at[40];    /* the same, "" when not revoked */
} keys_key_t;

/*
 * Make a key for `tenant` (a tenants.name, created when missing through
 * catalog_tenant_ensure()) named `name` (what it is for: "ingest server",
 * "alice's laptop") with `role`.  The new token is written to token_out
 * (token_len at least KEYS_TOKEN_SIZE): this is the only time it exists in
 * clear, and the caller must hand it over and forget it.  Only its prefix
 * and SHA-256 are stored.  *out (may be NULL) gets the new row.
 *
 * Not one transaction: when the insert fails after the tenant was created,
 * the tenant stays (as after an index run that found nothing).
 * Errors: DB_ERR_INVALID (tenant or name empty or longer than KEYS_NAME_MAX
 * bytes, an unknown role, token_out NULL or too small), DB_ERR_IO (no
 * random bytes), DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM.  On error
 * token_out is "" (when it has room) and *out is zeroed.
 */
db_err_t keys_create(db_conn_t *conn, const char *tenant, const char *name, keys_role_t role,
                     char *token_out, size_t token_len, keys_key_t *out, char *err,
                     size_t errlen);

/*
 * The keys of `tenant` (NULL: of every tenant), oldest first (by id);
 * revoked ones only when include_revoked is not 0.  An unknown tenant has
 * no keys: that is an empty list, not an error.  On success *out is a
 * malloc'd array of *n keys, the caller's to free() (NULL when *n is 0).
 * Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM, DB_ERR_CORRUPT (a row
 * with a role other than client or admin); then *out is NULL and *n 0.
 */
db_err_t keys_list(db_conn_t *conn, const char *tenant, int include_revoked, keys_key_t **out,
                   size_t *n, char *err, size_t errlen);

/*
 * Revoke one key (revoked_at = now()), named by id_or_prefix:
 *
 *   digits           the key's id;
 *   a whole token    the key of that token (by its digest): for a key that
 *                    leaked, when its id is not at hand;
 *   "em_" and 4 to   the live key whose prefix begins so ("em_AbCd" or the
 *   8 characters     whole 11-character prefix, as lists show it).
 *
 * Exactly one live key must match, in one statement (two revokers at once
 * cannot both revoke).  *revoked_id (may be NULL) gets its id.
 * Errors: DB_ERR_INVALID when id_or_prefix is none of the above, when no
 * live key matches (the message says when the match is a key already
 * revoked), or when several do (the message names them: give more of the
 * prefix, or the id); DB_ERR_QUERY, DB_ERR_CONNECT.
 */
db_err_t keys_revoke(db_conn_t *conn, const char *id_or_prefix, int64_t *revoked_id, char *err,
                     size_t errlen);

/*
 * Find the key whose token has the SHA-256 `digest` (from keys_digest()).
 * *found is 1 and *out the key when there is one, revoked ones included
 * (out->revoked 1: the caller refuses them); *found 0 and *out zeroed when
 * there is none.  As a second guard the stored digest that comes back is
 * compared with `digest` by CRYPTO_memcmp (constant time): a row that does
 * not match is never returned.  One indexed statement: what the HTTP
 * server runs to authenticate a request.
 * Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM, DB_ERR_CORRUPT (the
 * row that came back is not the one asked for, or has a bad digest or
 * role); on every error *found is 0.
 */
db_err_t keys_lookup(db_conn_t *conn, const uint8_t digest[KEYS_DIGEST_LEN], keys_key_t *out,
                     int *found, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_KEYS_H */
