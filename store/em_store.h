/*
 * em_store.h -- the fingerprint store: every catalog print, in PostgreSQL,
 * at about 6 bytes a print, found by hash in a few milliseconds.
 *
 *   store_codec.c   keys and posting rows: the byte format (pure, no I/O)
 *   store_write.c   segments: a batch of prints becomes one immutable table
 *   store_merge.c   merging segments into bigger ones (and purging deleted
 *                   tracks), the way a search engine merges its segments
 *   store_lookup.c  the postings of a clip's hashes, as fp_hit_t for the
 *                   matcher (match_store_t), and store statistics
 *   store_cache.c   rows kept in memory, shared by threads
 *
 * The layout (docs/architecture.md has the reasons and the measurements):
 *
 *   key        a print's hash mapped onto a dense 23-bit space
 *              (store_key()): pair hashes are 0 .. 2^22-1, triplet hashes
 *              follow.  Keys, not hashes, are what rows are sorted and
 *              partitioned by.
 *   posting    (key, track, t, f): a print of a catalog track.  f is the
 *              anchor frequency on a 10-bit log scale (store_f_pack()).
 *   group      the postings of one key in a row, sorted by (track, t):
 *              varint key delta, varint count, varint byte length, then per
 *              posting varint track delta, varint t (or t delta within the
 *              same track), 2 bytes f.
 *   row        consecutive groups, about STORE_ROW_POSTINGS postings (a
 *              common key has a row to itself), stored as (start, data):
 *              start is the row's first key.  The row holding key k is the
 *              one with the greatest start <= k.
 *   segment    one table postings_<id> (start int4 primary key, data bytea)
 *              with its row in print_segments.  A batch of the indexer
 *              writes one segment in its own transaction, with its tracks;
 *              merges replace several segments by one.  A segment covers the
 *              key range [key_lo, key_hi) of its shard; a store spread over
 *              several servers gives each server some shards.
 *
 * Deleting a track marks it deleted in `tracks`; lookups skip its postings
 * from then on and the next merge that reads them drops them.
 *
 * Errors are db_err_t (em_db.h) with a message in `err`; a row that does
 * not decode is DB_ERR_CORRUPT.  Threads: a store_t is used by one thread
 * at a time (it owns no connection: it borrows the caller's db_conn_t for
 * every call).  Ownership: pointers passed in are borrowed for the call;
 * out-arrays are the caller's to free(); *_free(NULL) is a no-op.
 */
#ifndef EARMARK_STORE_H
#define EARMARK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "earmark_fp.h"
#include "em_db.h"
#include "em_match.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Keys and the posting codec (pure)                                        */
/* ------------------------------------------------------------------------ */

#define STORE_TRIPLET_BITS 20u                 /* low bits a triplet hash uses */
#define STORE_KEY_SPACE ((1u << FP_HASH_BITS) + (1u << STORE_TRIPLET_BITS))
#define STORE_ROW_POSTINGS 64                  /* a row closes at this many */
#define STORE_ROW_BYTES 1800                   /* ... or this many bytes, so
                                                  rows stay under PostgreSQL's
                                                  2 kB TOAST threshold */

/*
 * The key of a hash: pair hashes map to themselves, triplet hashes to
 * 2^22 + their low 20 bits.  Returns 0, or -1 for a value outside both
 * layouts (which the fingerprint core never makes).
 */
int store_key(uint32_t hash, uint32_t *key);

/* The hash of a key (the inverse of store_key()). */
uint32_t store_key_hash(uint32_t key);

/* Anchor frequency (1/16 bin) to the stored 10-bit log scale and back;
 * 0 stays 0 (unknown).  The round trip is within 0.4%. */
uint16_t store_f_pack(uint16_t f16);
uint16_t store_f_unpack(uint16_t q);

typedef struct store_posting {
    uint32_t key;
    uint32_t track;
    uint32_t t;
    uint16_t f;   /* store_f_pack() scale */
    uint16_t pad;
} store_posting_t;

/*
 * A posting count on one byte (print_segments.key_counts): 0 for none,
 * else 1 + floor(16 log2(count)), saturating at 255; and back (the lower
 * edge of the step: within 4.4% below the count).
 */
uint8_t store_count_pack(uint64_t count);
uint32_t store_count_unpack(uint8_t q);

/* Sort postings by (key, track, t) (a radix sort; n may be 0). */
db_err_t store_postings_sort(store_posting_t *p, size_t n);

/*
 * Called for each finished row by store_rows_encode(): start is the row's
 * first key, data/len its bytes (valid during the call).  A non-zero return
 * stops the encoding and is returned.
 */
typedef int (*store_row_fn)(void *ctx, uint32_t start, const uint8_t *data, size_t len);

/*
 * Encode postings sorted by (key, track, t) into rows, in key order.
 * Duplicates (same key, track and t) are written once; *written (may be
 * NULL) gets the number of postings written.  Returns DB_OK, DB_ERR_NOMEM,
 * DB_ERR_INVALID (not sorted, key >= STORE_KEY_SPACE) or the callback's
 * non-zero value as is.
 */
db_err_t store_rows_encode(const store_posting_t *p, size_t n, store_row_fn fn, void *ctx,
                           size_t *written);

/*
 * One group as store_row_next() finds it: the key, the number of postings
 * and the bytes of the postings (pass to store_group_decode()).
 */
typedef struct store_group {
    uint32_t key;
    uint32_t count;
    const uint8_t *data;
    size_t len;
} store_group_t;

/*
 * Walk the groups of a row: *pos starts at 0, *prev_key at the row's start.
 * Returns 1 with *g filled, 0 at the end of the row, -1 when the bytes are
 * malformed.
 */
int store_row_next(const uint8_t *row, size_t len, size_t *pos, uint32_t *prev_key,
                   store_group_t *g);

/*
 * Decode a group's postings into out[0 .. g->count) (the key copied into
 * each).  Returns 0, or -1 when the bytes are malformed.
 */
int store_group_decode(const store_group_t *g, store_posting_t *out);

/* ------------------------------------------------------------------------ */
/* The store                                                                */
/* ------------------------------------------------------------------------ */

typedef struct store store_t;

/*
 * A store handle on the schema of `conn` (migrated to DB_SCHEMA_VERSION).
 * It caches the list of segments and of deleted tracks and reloads them
 * when the store's generation changes.  Errors: DB_ERR_SCHEMA,
 * DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM.
 */
db_err_t store_open(db_conn_t *conn, store_t **out, char *err, size_t errlen);
void store_free(store_t *s);

/* ---- writing ---------------------------------------------------------- */

typedef struct store_batch store_batch_t;

/*
 * Start a batch: BEGIN on conn.  Between store_batch_begin() and
 * store_batch_commit() the caller may run its own statements on conn (the
 * catalog rows of the batch's tracks): they commit or roll back with the
 * prints.  Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_NOMEM.
 */
db_err_t store_batch_begin(store_t *s, db_conn_t *conn, store_batch_t **out, char *err,
                           size_t errlen);

/* Add a track's prints (copied; in memory until commit: 16 bytes each). */
db_err_t store_batch_add(store_batch_t *b, uint32_t track, const fp_print_t *p, size_t n,
                         char *err, size_t errlen);

/* Prints added so far. */
size_t store_batch_prints(const store_batch_t *b);

/*
 * Write the batch's segment (sort, encode, COPY, index) and COMMIT.  The
 * batch is freed whatever happens; on failure the transaction is rolled
 * back and nothing of it stays.  *segment (may be NULL) gets the new
 * segment's id (0 when the batch had no prints: then no segment is made).
 */
db_err_t store_batch_commit(store_batch_t *b, int64_t *segment, char *err, size_t errlen);

/* Roll back and free.  NULL is a no-op. */
void store_batch_abort(store_batch_t *b);

/* ---- merging ---------------------------------------------------------- */

typedef struct store_merge_opts {
    int fanin;            /* merge when this many segments are of a size
                             class (sizes within 4x of each other); default 4 */
    int all;              /* 1: merge every segment into one (compaction) */
    size_t chunk_postings; /* postings held in memory at once (default 8M,
                             about 100 MB) */
} store_merge_opts_t;

void store_merge_opts_default(store_merge_opts_t *o);

/*
 * Merge segments as the options say; one merge per transaction, repeated
 * until nothing is left to merge.  Postings of deleted tracks are dropped.
 * Merges from several processes serialize on an advisory lock; lookups go
 * on meanwhile (they see the old segments until the merge commits).
 * *merges (may be NULL) gets the number of merges done.
 */
db_err_t store_merge(store_t *s, db_conn_t *conn, const store_merge_opts_t *o, int *merges,
                     char *err, size_t errlen);

/* ---- reading ---------------------------------------------------------- */

/*
 * Append the postings of the query prints q[0 .. nq) to *out as fp_hit_t
 * (the match_store_ops_t contract: *n used, *cap allocated, grown with
 * realloc).  What each key costs is known before fetching it (the
 * segments' key counts): keys the store does not hold are not fetched; a
 * key with more than max_postings postings (0: no such cap) is skipped as
 * too common; of the rest, the rarest keys are fetched first while the
 * hits they bring stay within max_hits (0: no budget), the others skipped
 * (under a budget, so is a key whose count is at the top of the counts'
 * scale, ~60 000 postings or more: it cannot be priced).  Skipped keys are
 * counted in *skipped.  Postings of deleted tracks are left out, and, when
 * tenant is not 0, those of other tenants' tracks: a tenant's clips are
 * matched against its own catalog only.  With sieve_opts (NULL: none),
 * only the hits an fp_sieve_t for those score options keeps are appended:
 * the groups are decoded twice, a group at a time, once to count and once
 * to keep, so the chance hits of a large catalog are never held.  *fetched
 * (when not NULL) grows by the hits before the sieve, of both parts.
 * With plan (NULL: one part; em_match.h has match_plan_t) and a budget the
 * first part does not exhaust, the lookup goes in two parts: the rows of
 * every key the budget takes are found once, the first part's groups
 * counted and selected, and then either the second part's counted into the
 * same sieve and every group selected again (the hits of one part,
 * exactly), or the second part's cut to the tracks plan->decide chose.
 * Errors: DB_ERR_QUERY, DB_ERR_CONNECT, DB_ERR_CORRUPT, DB_ERR_NOMEM
 * (also when plan->decide fails).
 */
/*
 * The hours of distinct audio of the live (indexed) tracks a lookup for
 * `tenant` searches (0: every tenant's), in *hours: the catalog's size for
 * the matcher's test against chance (match_chance()).  A track the catalog
 * knows as a copy of another in scope (the same recording, or contained in
 * one: track_copies) adds nothing: its chance alignments are the other's,
 * and the matcher reports them as one.  Kept for a minute, and read again
 * sooner when the store's generation has moved.  Errors: those of
 * db_query.
 */
db_err_t store_hours(store_t *s, db_conn_t *conn, int64_t tenant, double *hours, char *err,
                     size_t errlen);

db_err_t store_hits(store_t *s, db_conn_t *conn, int64_t tenant, const fp_print_t *q, size_t nq,
                    size_t max_postings, size_t max_hits, const fp_score_opts_t *sieve_opts,
                    match_plan_t *plan, fp_hit_t **out, size_t *n, size_t *cap, size_t *fetched,
                    size_t *skipped, char *err, size_t errlen);

/*
 * The store as a match_store_t for match_query() (em_match.h), limited to
 * one tenant's tracks (0: all): it borrows s and conn, which must outlive
 * it, and is used by one thread at a time.  Free with match_store_free().
 */
db_err_t store_match_new(store_t *s, db_conn_t *conn, int64_t tenant, match_store_t **out);
/* (Its hours op is store_hours(); -1 when that fails.) */

/* ---- the row cache ---------------------------------------------------- */

/*
 * Rows of the store kept in memory (store_cache.c), shared by any number of
 * store_t handles and threads: a lookup fetches from PostgreSQL only the
 * rows the cache does not hold, and adds those.  Segments never change, so
 * cached rows never go stale; rows of segments a merge dropped age out.
 * At most max_bytes of rows (and their entries) are kept, evicting the
 * least recently used in CLOCK order.  Errors: DB_ERR_NOMEM.
 */
typedef struct store_cache store_cache_t;

db_err_t store_cache_new(size_t max_bytes, store_cache_t **out);
void store_cache_free(store_cache_t *c);      /* NULL is a no-op */

/* Lookups of s use cache c from now on (borrowed: it must outlive s's
 * lookups; NULL: no cache).  They keep rows in it decoded, 10 bytes a
 * posting (about 1.75 times the bytes on disk), and copy postings out of
 * it instead of decoding them. */
void store_set_cache(store_t *s, store_cache_t *c);

/*
 * Lookups of s with a sieve split their decoding, counting and selecting
 * over at most `threads` threads, the caller's included (1, the default:
 * the caller's alone; at most 16), taking one more thread for each
 * min_postings postings they decode (0: 32 768, ~100 us of work), so
 * small lookups stay on one.  The other threads are made on first use and
 * kept, asleep between lookups, until store_free.  The hits, in their
 * order, and so the results are the same for any number.
 */
void store_set_threads(store_t *s, int threads, size_t min_postings);

/*
 * The row of `segment` starting at key `start`: when cached, its bytes are
 * appended to *buf (*used bytes in use, *cap allocated, grown with realloc)
 * and 1 is returned; 0 when not cached, -1 out of memory.
 */
int store_cache_get(store_cache_t *c, int64_t segment, uint32_t start, uint8_t **buf,
                    size_t *used, size_t *cap);

/*
 * The row of `segment` starting at key `start`, borrowed: when cached,
 * *data and *len are its bytes, valid until store_cache_return(c, *loan),
 * and 1 is returned; 0 when not cached.  A lent row can be evicted (it no
 * longer counts against the budget then) but is freed only when returned.
 * Every loan must be returned, once, before store_cache_free.
 */
typedef struct store_cache_loan store_cache_loan_t;
int store_cache_lend(store_cache_t *c, int64_t segment, uint32_t start, const uint8_t **data,
                     size_t *len, store_cache_loan_t **loan);
void store_cache_return(store_cache_t *c, store_cache_loan_t *loan); /* NULL: a no-op */

/* Keep a copy of a row (a no-op when it is there already or larger than a
 * 64th of the budget). */
void store_cache_put(store_cache_t *c, int64_t segment, uint32_t start, const uint8_t *data,
                     size_t len);

typedef struct store_cache_stats {
    uint64_t hits, misses, evictions;  /* rows, since the cache was made */
    uint64_t rows, bytes;              /* held now */
} store_cache_stats_t;

void store_cache_stats(store_cache_t *c, store_cache_stats_t *st);

typedef struct store_stats {
    int64_t segments;
    int64_t prints;       /* postings stored (deleted tracks' included until
                             merged away) */
    int64_t rows;
    int64_t bytes;        /* on disk: the segments' tables, TOAST and
                             indexes (pg_total_relation_size) */
    int64_t generation;   /* bumped by every change of segments or tracks */
} store_stats_t;

/* Figures of the whole store.  Errors: DB_ERR_QUERY, DB_ERR_CONNECT. */
db_err_t store_stats(db_conn_t *conn, store_stats_t *st, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_STORE_H */
