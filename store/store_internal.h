/*
 * store_internal.h -- what the store's files share (stri_ names); not
 * installed.
 */
#ifndef EARMARK_STORE_INTERNAL_H
#define EARMARK_STORE_INTERNAL_H

#include "em_store.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <string.h>

/* The first keys of a segment's rows, ascending: which row holds a key. */
typedef struct stri_dir {
    int64_t segment;
    uint32_t *starts;
    size_t n;
} stri_dir_t;

/* A tenant's catalog size, as store_hours read it. */
typedef struct stri_hours {
    int64_t tenant;         /* 0: every tenant's */
    int64_t generation;     /* the store's generation when read; -2: empty slot */
    double at;              /* when read (CLOCK_MONOTONIC seconds) */
    double hours;
} stri_hours_t;

#define STRI_HOURS_SLOTS 8
#define STRI_HOURS_TTL 60.0 /* seconds a catalog size is trusted */

struct store {
    int64_t generation;     /* of the cached lists; -1: never loaded */
    int64_t *segments;      /* ids of the live segments, ascending */
    size_t nsegments;
    stri_dir_t *dirs;       /* row directories of segments read so far
                               (segments are immutable: kept while live) */
    size_t ndirs;
    uint32_t *dead;         /* deleted tracks not yet purged, ascending */
    size_t ndead;
    uint16_t *counts;       /* postings per key over the live segments
                               (saturating); NULL until first loaded */
    uint32_t *track_tenant; /* tenant of each track id (0: none); tracks
                               never change tenant, so only new ids are read */
    size_t ntracks;         /* entries: ids below this are known */
    uint32_t sole_tenant;   /* the tenant of every known track; 0: none
                               known, UINT32_MAX: several */
    store_cache_t *cache;   /* borrowed; NULL: none */
    int threads;            /* a lookup's threads at most, and the postings */
    size_t thread_postings; /* that take one more (store_set_threads) */
    struct stri_pool *pool; /* the helper threads of lookups; NULL: none yet */
    stri_hours_t hours[STRI_HOURS_SLOTS]; /* catalog sizes (store_hours) */
    unsigned hours_next;    /* the slot to reuse next */
};

/* One group of a lookup: a key's postings in one row, encoded (a row from
 * PostgreSQL) or decoded already (a row from the cache). */
typedef struct stri_group {
    uint32_t key;           /* index into the lookup's distinct keys */
    uint32_t count;         /* postings; once decoded, those left (live
                               tracks of the tenant) */
    const uint8_t *data;    /* borrowed from the row, when encoded */
    size_t len;
    const fp_ref_t *decoded; /* borrowed from the cache, or NULL ... */
    const uint16_t *decoded_f; /* ... and their frequencies */
    size_t at;              /* where its decoded postings go in refs */
    const fp_ref_t *refs;   /* once decoded: its postings (at refs + at, or
                               the cache's own when nothing is left out) */
    const uint16_t *fs;     /* and their packed frequencies */
    int part;               /* the part of the lookup its key is in: 1, or
                               2 for the keys a two-part lookup leaves for
                               later (stri_gather_count) */
} stri_group_t;

/*
 * A row as the row cache keeps it: decoded, so that a warm lookup copies
 * postings instead of decoding them (10 bytes a posting against ~5.7
 * encoded: the cache holds 1.75 times fewer rows for its bytes, and a
 * lookup's decoding, a third of its work, is gone).  The header, then
 * ngroups groups (key ascending), then npostings postings (fp_ref_t),
 * then their frequencies (uint16_t, packed as stored: store_f_unpack), a
 * group's from index `first` on in both.
 */
typedef struct stri_drow {
    uint32_t ngroups, npostings;
} stri_drow_t;

typedef struct stri_drow_group {
    uint32_t key, count, first;
} stri_drow_group_t;

static inline const stri_drow_group_t *stri_drow_groups(const uint8_t *blob)
{
    return (const stri_drow_group_t *)(blob + sizeof(stri_drow_t));
}

static inline const fp_ref_t *stri_drow_refs(const uint8_t *blob)
{
    const stri_drow_t *h = (const stri_drow_t *)blob;
    return (const fp_ref_t *)(blob + sizeof(stri_drow_t) +
                              (size_t)h->ngroups * sizeof(stri_drow_group_t));
}

static inline const uint16_t *stri_drow_fs(const uint8_t *blob)
{
    const stri_drow_t *h = (const stri_drow_t *)blob;
    return (const uint16_t *)(stri_drow_refs(blob) + h->npostings);
}

/*
 * Decode the encoded row (start, row[0 .. len)) into *blob (malloc'd,
 * *bloblen bytes, laid out as stri_drow_t says).  DB_OK; DB_ERR_CORRUPT
 * when the row does not decode; DB_ERR_NOMEM.  store_codec.c.
 */
db_err_t stri_row_decode(uint32_t start, const uint8_t *row, size_t len, uint8_t **blob,
                         size_t *bloblen);

/*
 * What stri_gather reads: the groups (their counts are rewritten), the
 * query, for each distinct key k its query prints qprint[qfirst[k] ..
 * qfirst[k] + qcount[k]), room for every posting in refs (group i at
 * groups[i].at), and the sieve's options (NULL: every hit is kept) and
 * expected hits.  Everything is borrowed.
 */
typedef struct stri_gather {
    const store_t *s;
    int64_t tenant;
    stri_group_t *groups;
    size_t ngroups;
    const fp_print_t *q;
    size_t nq;
    const uint32_t *qprint, *qfirst, *qcount;
    fp_ref_t *refs;         /* room for every group's postings ... */
    uint16_t *fs;           /* ... and their packed frequencies */
    const fp_score_opts_t *sieve_opts;
    size_t need;
} stri_gather_t;

/*
 * Decode, sieve and turn into hits the groups of a lookup (store_gather.c),
 * appending to *out (*n used, *cap allocated, grown with realloc), over at
 * most `threads` threads (the calling one included; more than one only
 * with a sieve and at least min_postings postings a thread), the others
 * helpers of *pool (made on first use, kept: the caller frees it).  The
 * hits come in group order, then query print order, whatever the number of
 * threads.  Errors: DB_ERR_CORRUPT (a group does not decode), DB_ERR_NOMEM,
 * DB_ERR_INVALID (never: the threads' sieves are made alike).
 *
 * stri_gather does it in one go, for groups that are all of part 1.  In
 * steps, for a lookup in two parts:
 *   stri_gather_open    the runs and the sieve (sized for g->need, every
 *                       part's hits); *out is the caller's to close
 *   stri_gather_count   decode and count the groups of one part into the
 *                       sieve, which keeps the counts of the parts before
 *   stri_gather_select  append the hits the sieve keeps from the groups of
 *                       every part counted: after counting part 2, exactly
 *                       the hits of stri_gather over all the groups
 *   stri_gather_keeps_none  1 when selecting now would find nothing
 *   stri_gather_narrow  instead of counting a part: append every hit of
 *                       its groups whose track is in tracks[0 .. nt), no
 *                       sieve (one thread)
 *   stri_gather_close   free it (NULL is a no-op)
 */
typedef struct stri_pool stri_pool_t;
db_err_t stri_gather(const stri_gather_t *g, stri_pool_t **pool, int threads, size_t min_postings,
                     fp_hit_t **out, size_t *n, size_t *cap, char *err, size_t errlen);

typedef struct stri_gatherer stri_gatherer_t;
db_err_t stri_gather_open(const stri_gather_t *g, stri_pool_t **pool, int threads,
                          size_t min_postings, stri_gatherer_t **out, char *err, size_t errlen);
db_err_t stri_gather_count(stri_gatherer_t *G, int part, char *err, size_t errlen);
db_err_t stri_gather_select(stri_gatherer_t *G, fp_hit_t **out, size_t *n, size_t *cap,
                            char *err, size_t errlen);
db_err_t stri_gather_narrow(stri_gatherer_t *G, int part, const uint32_t *tracks, size_t nt,
                            fp_hit_t **out, size_t *n, size_t *cap, char *err, size_t errlen);
/* 1 when the parts counted so far keep no hit (with a sieve), so that
 * selecting from them would find nothing. */
int stri_gather_keeps_none(stri_gatherer_t *G);
void stri_gather_close(stri_gatherer_t *G);

/* Stop and free a store's helper threads (NULL is a no-op). */
void stri_pool_free(stri_pool_t *p);

/* Reload the cached lists when the store's generation has moved. */
db_err_t stri_refresh(store_t *s, db_conn_t *conn, char *err, size_t errlen);

/* A varint of b[*pos .. len): 0 with *v and *pos advanced, -1 when it runs
 * past len or does not fit 32 bits. */
static inline int stri_get_varint(const uint8_t *b, size_t len, size_t *pos, uint32_t *v)
{
    uint32_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t c = b[(*pos)++];
        if (shift == 28 && c > 0x0f) return -1;
        x |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/*
 * The i-th posting of a group moves the cursor (track, t): a track delta
 * starts a new track at time tv, no delta adds tv to the time.  0, or -1
 * when a value passes 32 bits.
 */
static inline int stri_posting_step(uint32_t i, uint32_t dtrack, uint32_t tv, uint32_t *track,
                                    uint32_t *t)
{
    if (dtrack || i == 0) {
        if (i && (uint64_t)*track + dtrack > UINT32_MAX) return -1;
        *track += dtrack;
        *t = tv;
    } else {
        if ((uint64_t)*t + tv > UINT32_MAX) return -1;
        *t += tv;
    }
    return 0;
}

/*
 * A varint at *p without bounds checks, for when at least 12 bytes remain
 * (two varints of at most 5 bytes and the 2 bytes of f; stri_get_varint()
 * is the checked read).  0, or -1 when it does not fit 32 bits.
 */
static inline int stri_varint_fast(const uint8_t **pp, uint32_t *v)
{
    const uint8_t *p = *pp;
    uint32_t x = p[0];
    if (x < 0x80) {
        *pp = p + 1;
        *v = x;
        return 0;
    }
    x = (x & 0x7f) | (uint32_t)p[1] << 7;
    if (p[1] < 0x80) {
        *pp = p + 2;
        *v = x;
        return 0;
    }
    x = (x & 0x3fff) | (uint32_t)p[2] << 14;
    if (p[2] < 0x80) {
        *pp = p + 3;
        *v = x;
        return 0;
    }
    x = (x & 0x1fffff) | (uint32_t)p[3] << 21;
    if (p[3] < 0x80) {
        *pp = p + 4;
        *v = x;
        return 0;
    }
    if (p[4] > 0x0f) return -1;
    *pp = p + 5;
    *v = (x & 0xfffffff) | (uint32_t)p[4] << 28;
    return 0;
}

/*
 * A cursor over a group's postings, decoded in place: what
 * store_group_decode() (the merges, the fuzzer) and the lookup's hot loop
 * (no array of postings in between) both read with.
 */
typedef struct stri_cursor {
    const uint8_t *p, *data, *end;
    uint32_t i, count, track, t;
} stri_cursor_t;

static inline void stri_cursor_init(stri_cursor_t *c, const store_group_t *g)
{
    *c = (stri_cursor_t){g->data, g->data, g->data + g->len, 0, g->count, 0, 0};
}

/* The next posting: 1 with *track, *t and *f; 0 after the last (every byte
 * used); -1 when the bytes are malformed. */
static inline int stri_cursor_next(stri_cursor_t *c, uint32_t *track, uint32_t *t, uint16_t *f)
{
    if (c->i == c->count) return c->p == c->end ? 0 : -1;
    uint32_t dtrack, tv;
    if (c->end - c->p >= 12) {
        if (stri_varint_fast(&c->p, &dtrack) || stri_varint_fast(&c->p, &tv)) return -1;
    } else {
        size_t pos = (size_t)(c->p - c->data), len = (size_t)(c->end - c->data);
        if (stri_get_varint(c->data, len, &pos, &dtrack) ||
            stri_get_varint(c->data, len, &pos, &tv) || pos + 2 > len)
            return -1;
        c->p = c->data + pos;
    }
    if (stri_posting_step(c->i, dtrack, tv, &c->track, &c->t)) return -1;
    *f = (uint16_t)(c->p[0] | c->p[1] << 8);
    c->p += 2;
    c->i++;
    *track = c->track;
    *t = c->t;
    return 1;
}

/* A binary int4 result field (network order) as a host integer. */
static inline uint32_t stri_int4(const PGresult *res, int row, int col)
{
    uint32_t v;
    memcpy(&v, PQgetvalue(res, row, col), 4);
    return ntohl(v);
}

/* A binary bytea result field: its bytes and length. */
static inline const uint8_t *stri_bytes(const PGresult *res, int row, int col, size_t *len)
{
    *len = (size_t)PQgetlength(res, row, col);
    return (const uint8_t *)PQgetvalue(res, row, col);
}

/* The tenant of a track (0 when unknown). */
static inline uint32_t stri_tenant_of(const store_t *s, uint32_t track)
{
    return track < s->ntracks ? s->track_tenant[track] : 0;
}

/* Is track in the sorted list dead[0 .. n)? */
int stri_is_dead(const uint32_t *dead, size_t n, uint32_t track);

/* Read the ids of deleted, unpurged tracks (ascending) into *out. */
db_err_t stri_load_dead(db_conn_t *conn, uint32_t **out, size_t *n, char *err, size_t errlen);

/*
 * A COPY ... FROM STDIN (FORMAT binary) into postings_<id>: rows are
 * buffered and sent in 1 MiB pieces.
 */
typedef struct stri_copy {
    db_conn_t *conn;
    uint8_t *buf;
    size_t len, cap;
    int64_t rows;
    int failed;             /* a send failed: the rest is dropped */
} stri_copy_t;

db_err_t stri_copy_begin(stri_copy_t *c, db_conn_t *conn, int64_t segment, char *err,
                         size_t errlen);
/* store_row_fn for store_rows_encode(): appends one row. */
int stri_copy_row(void *ctx, uint32_t start, const uint8_t *data, size_t len);
db_err_t stri_copy_end(stri_copy_t *c, char *err, size_t errlen);

/*
 * Store a segment's key counts (counts[key] postings, STORE_KEY_SPACE of
 * them) packed with store_count_pack() into print_segments.key_counts.
 */
db_err_t stri_save_counts(db_conn_t *conn, int64_t segment, const uint32_t *counts, char *err,
                          size_t errlen);

/*
 * A new segment in the caller's transaction: its print_segments row (level,
 * prints and tracks as given; key_lo..key_hi the whole key space) and its
 * empty table; *id its id.
 */
db_err_t stri_new_segment(db_conn_t *conn, int level, size_t prints, size_t tracks, int64_t *id,
                          char *err, size_t errlen);

/* CREATE TABLE postings_<id> (start int4, data bytea) with storage set. */
db_err_t stri_create_segment_table(db_conn_t *conn, int64_t segment, char *err, size_t errlen);

/* Its primary key, built once the rows are in. */
db_err_t stri_index_segment_table(db_conn_t *conn, int64_t segment, char *err, size_t errlen);

/*
 * Write sorted postings p[0 .. n) as a new segment inside the caller's
 * transaction: the print_segments row (for its id), the table, the rows,
 * the index.  Shared by batches and merges.
 */
db_err_t stri_write_segment(db_conn_t *conn, const store_posting_t *p, size_t n, int level,
                            size_t ntracks, int64_t *segment, char *err, size_t errlen);

#endif
