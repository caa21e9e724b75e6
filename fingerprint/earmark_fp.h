/*
 * earmark_fp.h -- the earmark fingerprint core.
 *
 * This header is the whole public interface of libearmark-fp: decoding,
 * streaming extraction of landmark prints, and the pure scoring of candidate
 * hits by time-offset voting.  No database, no network, no global state:
 * every object is an opaque handle created with *_new / *_open and released
 * with *_free, and *_free(NULL) is a no-op.
 *
 * Signal chain (one file per stage, in this order):
 *
 *   fp_decode.c      libsndfile, from a path or a memory buffer, in blocks
 *   fp_resample.c    downmix to mono, libsoxr to the analysis rate
 *   fp_spectrum.c    Hann window + FFTW r2c, log power per frame
 *   fp_peaks.c       2-D local maxima, contrast test, ranked density cap
 *   fp_hash.c        anchor + target-zone pairing into 32-bit hashes
 *   fp_extract.c     the streaming extractor that chains the stages
 *   fp_score.c       offset-histogram voting over candidate hits
 *   fp_sieve.c       the cheap filter ahead of the voting, for stores too
 *
 * Threads: every function is safe to call from many threads at once as long
 * as each handle is used by one thread at a time.  FFTW planning, which is not
 * thread-safe, is serialized inside the library.
 *
 * Errors: functions return fp_err_t (0 = success).  Functions that can fail
 * for a reason a person should read take `char *err, size_t errlen`: on
 * failure a one-line message naming the input and the cause is written there
 * (err may be NULL).  The library never prints and never exits.
 *
 * Ownership: pointers passed in are borrowed for the duration of the call
 * unless a function says otherwise; memory returned through an out-parameter
 * belongs to the caller and is released with free() unless a *_free function
 * is named.
 */
#ifndef EARMARK_FP_H
#define EARMARK_FP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The error codes of the fingerprint core.  Values are stable: they are
 * stored, logged and mapped to the machine-readable codes of the HTTP API.
 * New codes are only ever appended.
 */
typedef enum fp_err {
    FP_OK = 0,
    FP_ERR_NOMEM = 1,       /* an allocation failed */
    FP_ERR_INVALID = 2,     /* a bad argument from the caller */
    FP_ERR_IO = 3,          /* the file cannot be opened or read */
    FP_ERR_FORMAT = 4,      /* not audio, unsupported or corrupt */
    FP_ERR_EMPTY = 5,       /* decodes, but holds no audio */
    FP_ERR_LIMIT = 6,       /* exceeds a configured limit (see fp_limits_t) */
    FP_ERR_VERSION = 7,     /* prints made with incompatible parameters */
    FP_ERR_INTERNAL = 8     /* a library (FFTW, soxr) failed unexpectedly */
} fp_err_t;

/* Static English text for an error code; never NULL. */
const char *fp_strerror(fp_err_t code);

/* A stable short machine name ("format", "limit", ...) for an error code. */
const char *fp_errname(fp_err_t code);

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/* Layout version of fp_config_t and of the hash bits; bumped on any change
 * that makes old prints incomparable with new ones. */
#define FP_PARAMS_VERSION 3

/*
 * Every algorithm parameter, in one struct.  fp_config_default() fills in the
 * tuned values documented (with the reason for each) in docs/fingerprint.md.
 * fp_config_id() digests all of them with the version: two configs with the
 * same id produce comparable prints, and prints with different ids must never
 * be compared (stores keep the id beside every print).
 */
typedef struct fp_config {
    int version;          /* FP_PARAMS_VERSION */
    /* analysis */
    int sample_rate;      /* analysis rate in Hz after resampling */
    int fft_size;         /* STFT window length in samples (power of two) */
    int hop;              /* STFT hop in samples; one "frame" is one hop */
    int min_bin;          /* lowest FFT bin considered for peaks */
    int max_bin;          /* highest FFT bin considered (< fft_size/2) */
    /* peaks */
    int peak_df;          /* a peak is the maximum within +-peak_df bins ... */
    int peak_dt;          /* ... and +-peak_dt frames */
    int contrast_bins;    /* half-width of the band whose mean log power ... */
    float min_contrast_db; /* ... a peak must exceed by this many dB */
    float tilt_db_per_octave; /* peaks rank by power plus this much per octave
                             above min_bin */
    float floor_db;       /* frames quieter than this (dBFS power) give none */
    int density;          /* at most this many peaks in any window of
                             density_window frames centred on a peak */
    int density_window;   /* frames */
    /* landmark pairing */
    int fanout;           /* targets paired with each anchor */
    int target_dt_min;    /* target zone: frames after the anchor, from ... */
    int target_dt_max;    /* ... to (<= 64) */
    int target_df;        /* |f2 - f1| at most this many bins (<= 63) */
    /* speed-, tempo- and pitch-invariant triplets */
    int triplet_targets;  /* the first N zone peaks form N*(N-1)/2 triplets
                             per anchor (0 or 1: no triplets; <= 8) */
    int triplet_dl;       /* triplet zone: within +-this many semitones */
    /* stationary sound */
    int repeat_frames;    /* a print whose hash was printed within this many
                             frames before is dropped (0: keep all) */
} fp_config_t;

/* Fill *cfg with the default, tuned parameters. */
void fp_config_default(fp_config_t *cfg);

/* FP_OK if *cfg is usable, else FP_ERR_INVALID with the reason in err. */
fp_err_t fp_config_check(const fp_config_t *cfg, char *err, size_t errlen);

/* A 32-bit digest of every algorithm parameter and the version. */
uint32_t fp_config_id(const fp_config_t *cfg);

/* Seconds per frame (hop / sample_rate). */
double fp_config_frame_seconds(const fp_config_t *cfg);

/*
 * Ceilings on everything that grows from input.  Exceeding one is an
 * ordinary FP_ERR_LIMIT error.  None is part of the config id.
 */
typedef struct fp_limits {
    double max_duration_s;   /* decoded audio, seconds */
    int max_channels;
    int max_sample_rate;     /* Hz; rates below 1000 Hz are always refused */
    int max_hashes_per_s;    /* prints per second of audio, averaged over
                                each 60 s of input */
} fp_limits_t;

/* Defaults: 4 h, 16 channels, 384 kHz, 2000 prints/s. */
void fp_limits_default(fp_limits_t *lim);

/* ------------------------------------------------------------------------ */
/* Prints                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * One landmark print.  `hash` is a pair or a triplet hash (layouts below);
 * `t` is the anchor's frame from the start of the stream.  `f` is the anchor
 * frequency at sub-bin precision and `dt` the print's time span (anchor to
 * last peak) in 1/16 frame, so that matching can estimate pitch and
 * time-scale factors without recomputing anything.
 *
 * Pair hash (FP_PARAMS_VERSION 3), bit 0 = least significant:
 *   bits  0..5   dt - 1        (frames from anchor to target, 1..64)
 *   bits  6..12  df + 64       (target bin - anchor bin, -64..63)
 *   bits 13..21  f1            (anchor bin, 0..511)
 *   bits 22..31  zero
 *
 * Triplet hash (anchor and two later peaks; unchanged by speed, tempo and
 * pitch changes):
 *   bits  0..3   ratio         (t2 - t1) / (t3 - t1), in sixteenths
 *   bits  4..8   dl12 + 12     (peak 2 - anchor, semitones, -12..12)
 *   bits  9..13  dl13 + 12     (peak 3 - anchor, semitones, -12..12)
 *   bits 14..16  louder        (bit 0: anchor louder than peak 2; bit 1: anchor
 *                               louder than peak 3; bit 2: peak 2 louder than 3)
 *   bits 17..19  band          (the anchor's band above min_bin, in steps of
 *                               FP_TRIPLET_BAND_SEMITONES, 0..7; an octave:
 *                               ~97-194 Hz is band 0, ~3.1-5 kHz band 5)
 *   bits 20..30  zero
 *   bit  31      1             (FP_HASH_TRIPLET)
 */
typedef struct fp_print {
    uint32_t hash;
    uint32_t t;      /* anchor frame */
    uint16_t f;      /* anchor frequency in 1/16 bin */
    uint16_t dt;     /* span of the print in 1/16 frame */
} fp_print_t;

#define FP_HASH_BITS 22            /* pair hashes are below 1 << FP_HASH_BITS */
#define FP_HASH_TRIPLET 0x80000000u /* set in triplet hashes */

/* Pack and unpack the fields of a pair hash (no range checks). */
uint32_t fp_hash_pack(int f1, int df, int dt);
void fp_hash_unpack(uint32_t hash, int *f1, int *df, int *dt);
/* Pack a triplet hash (no range checks). */
uint32_t fp_hash_pack_triplet(int ratio, int dl12, int dl13, int band, int louder);
#define FP_TRIPLET_BAND_SEMITONES 12 /* width of a triplet's anchor band */

/*
 * The spectral peaks prints were built from: the distinct anchors (t, f) of
 * the prints p[0..n) with t_lo <= t <= t_hi, sorted by t then f, as pairs
 * (*out)[2i] = t, (*out)[2i + 1] = f.  *out is malloc'd and owned by the
 * caller (free()); NULL with *n_out 0 when there are none.  FP_ERR_NOMEM.
 */
fp_err_t fp_prints_anchors(const fp_print_t *p, size_t n, uint32_t t_lo, uint32_t t_hi,
                           uint32_t **out, size_t *n_out);

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */
/* ------------------------------------------------------------------------ */

/* What a decoder knows about its input. */
typedef struct fp_audio_info {
    int sample_rate;
    int channels;
    int64_t frames;        /* as the container claims; -1 when unknown */
    char format[32];       /* "wav", "flac", "ogg-vorbis", "ogg-opus", "mp3" ... */
} fp_audio_info_t;

typedef struct fp_decoder fp_decoder_t;

/*
 * Open an audio file for block-wise decoding (WAV, AIFF, FLAC, Ogg Vorbis,
 * Ogg Opus, MP3 and whatever else libsndfile reads).  Channels, sample rate
 * and the claimed length are checked against *lim (NULL = defaults) before
 * any sample is read.  On success *out owns the open file.
 * Errors: FP_ERR_IO, FP_ERR_FORMAT, FP_ERR_LIMIT, FP_ERR_NOMEM.
 */
fp_err_t fp_decoder_open_path(const char *path, const fp_limits_t *lim,
                              fp_decoder_t **out, char *err, size_t errlen);

/*
 * The same from a memory buffer (an upload).  `data` is borrowed: it must stay
 * valid and unchanged until fp_decoder_free().  `name` is used in messages
 * only (may be NULL).
 */
fp_err_t fp_decoder_open_memory(const void *data, size_t size,
                                const char *name, const fp_limits_t *lim,
                                fp_decoder_t **out, char *err, size_t errlen);

/* Borrowed pointer, valid until fp_decoder_free(). */
const fp_audio_info_t *fp_decoder_info(const fp_decoder_t *dec);

/*
 * Decode up to max_frames frames of interleaved float samples into buf
 * (room for max_frames * channels floats).  *got = 0 at the end of the
 * input.  Reading past max_duration_s gives FP_ERR_LIMIT; a decoding error in
 * the middle of a file gives FP_ERR_FORMAT.
 */
fp_err_t fp_decoder_read(fp_decoder_t *dec, float *buf, size_t max_frames,
                         size_t *got, char *err, size_t errlen);

void fp_decoder_free(fp_decoder_t *dec);

/* ------------------------------------------------------------------------ */
/* Extraction                                                               */
/* ------------------------------------------------------------------------ */

typedef struct fp_extractor fp_extractor_t;

/*
 * A streaming extractor for one input stream of the given rate and channel
 * count.  Memory stays bounded whatever the stream's length: samples go in
 * with fp_extractor_feed(), prints come out with fp_extractor_take() as soon
 * as they are final (a few seconds behind the input).  The output depends only
 * on the samples, never on how they were split into blocks.
 * `cfg` and `lim` are copied (NULL = defaults).
 * Errors: FP_ERR_INVALID (bad config), FP_ERR_LIMIT, FP_ERR_NOMEM,
 * FP_ERR_INTERNAL.
 */
fp_err_t fp_extractor_new(const fp_config_t *cfg, const fp_limits_t *lim,
                          int sample_rate, int channels,
                          fp_extractor_t **out, char *err, size_t errlen);

/* Add `frames` frames of interleaved float samples (borrowed). */
fp_err_t fp_extractor_feed(fp_extractor_t *ex, const float *samples,
                           size_t frames, char *err, size_t errlen);

/* Mark the end of the stream: the remaining prints become final. */
fp_err_t fp_extractor_finish(fp_extractor_t *ex, char *err, size_t errlen);

/*
 * Move up to `max` final prints into out, in order of anchor frame t (the
 * order within one frame is deterministic).
 * Returns how many were moved; 0 when none is pending.
 */
size_t fp_extractor_take(fp_extractor_t *ex, fp_print_t *out, size_t max);

/* Statistics so far. */
typedef struct fp_stats {
    double seconds;      /* input audio fed, seconds */
    uint64_t frames;     /* analysis frames computed */
    uint64_t peaks;      /* spectral peaks kept */
    uint64_t prints;     /* prints produced */
} fp_stats_t;
void fp_extractor_stats(const fp_extractor_t *ex, fp_stats_t *st);

void fp_extractor_free(fp_extractor_t *ex);

/* A whole input's prints, for callers that want them all at once. */
typedef struct fp_result {
    fp_print_t *prints;     /* owned: release with fp_result_clear() */
    size_t count;
    fp_audio_info_t info;   /* of the decoded input */
    fp_stats_t stats;
    double decode_seconds;  /* wall time spent in the decoder */
    double total_seconds;   /* wall time for the whole extraction */
} fp_result_t;

/*
 * Decode and fingerprint a file or a memory buffer in one call, streaming
 * block by block.  On success *res holds the prints (in order of t);
 * on failure *res is empty and err says why, naming `path` or `name`.
 */
fp_err_t fp_extract_path(const char *path, const fp_config_t *cfg,
                         const fp_limits_t *lim, fp_result_t *res,
                         char *err, size_t errlen);
fp_err_t fp_extract_memory(const void *data, size_t size, const char *name,
                           const fp_config_t *cfg, const fp_limits_t *lim,
                           fp_result_t *res, char *err, size_t errlen);

/* Free the prints of *res and zero it.  NULL is a no-op. */
void fp_result_clear(fp_result_t *res);

/* ------------------------------------------------------------------------ */
/* Scoring                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A hit: one query print whose hash was found in a reference recording.
 * The store produces hits by joining the query's hashes with its postings;
 * scoring needs nothing else.
 */
typedef struct fp_hit {
    uint32_t track;      /* the reference recording (the store's id) */
    uint32_t ref_t;      /* the posting's anchor frame in the reference */
    uint32_t query_t;    /* the query print's anchor frame (frames < 2^31) */
    uint32_t query_idx;  /* the query print's index: counted once per alignment */
    uint16_t ref_f;      /* anchor frequencies (fp_print_t.f) of the posting */
    uint16_t query_f;    /* and of the query print; 0 when not known */
    uint16_t flags;      /* FP_HIT_INVARIANT when the print is a triplet */
} fp_hit_t;

/* The hit's print is unchanged by speed, tempo and pitch changes (its hash
 * has FP_HASH_TRIPLET): only such hits are searched for scaled alignments. */
#define FP_HIT_INVARIANT 1u

/*
 * One aligned occurrence of a reference recording inside the query:
 * ref_t = speed * query_t + offset over the aligned prints.
 */
typedef struct fp_candidate {
    uint32_t track;
    int64_t offset;        /* reference frame at query frame 0 */
    uint32_t frames;       /* distinct query frames aligned (the score):
                              chance alignments come in bursts of prints
                              from a few anchors, real ones from many */
    uint32_t count;        /* distinct query prints aligned */
    uint32_t query_start;  /* first and last aligned query frames */
    uint32_t query_end;
    uint32_t ref_start;    /* first and last aligned reference frames */
    uint32_t ref_end;
    double speed;          /* reference time per query time: 1.1 when the
                              query plays 10% faster than the reference */
    double pitch;          /* query frequency per reference frequency: 1.1
                              when the query sounds 10% higher; 0 when the
                              hits carry no frequencies */
} fp_candidate_t;

typedef struct fp_score_opts {
    uint32_t min_count;    /* an alignment needs this many prints (default 5) */
    int tolerance;         /* offsets within +-tolerance frames vote together
                              (default 1) */
    uint32_t max_gap;      /* aligned prints further apart than this many
                              frames start a new segment (default 108, 2.5 s:
                              a real match aligns several prints a second,
                              chance alignments far fewer) */
    size_t max_candidates; /* keep the best N (default 16) */
    double min_speed;      /* time-scaled alignments are searched for speeds
                              in [min_speed, max_speed] (default 0.77..1.3; */
    double max_speed;      /*  both 1.0: only unscaled alignments) */
    size_t scaled_tracks;  /* ... among the N tracks with most invariant hits
                              (default 32) */
} fp_score_opts_t;

void fp_score_opts_default(fp_score_opts_t *opts);

/*
 * Find the best (track, speed, offset) alignments among `hits`.  Several
 * tracks, and one track at several offsets, can come out.  Unscaled
 * alignments are searched among all hits of every track; scaled ones
 * (speed != 1) among the FP_HIT_INVARIANT hits of the scaled_tracks tracks
 * with most of them, over a grid of speeds refined to 0.1%.  The hits array is
 * only read (at most INT32_MAX hits).  On success *out is a new array of *n_out candidates
 * (owned by the caller, free()), best first: by frames, then count, then
 * track, then offset, so the result is deterministic.  *out is NULL when none qualifies.
 * Errors: FP_ERR_INVALID (a frame >= 2^31, more than INT32_MAX hits, a bad
 * option), FP_ERR_NOMEM.  Thread-safe: no shared state.
 */
fp_err_t fp_score_hits(const fp_hit_t *hits, size_t n, const fp_score_opts_t *opts,
                       fp_candidate_t **out, size_t *n_out);

/*
 * The sieve: a cheap filter ahead of fp_score_hits for large sets of hits,
 * that a store runs while it produces them.  It drops the hits that cannot
 * belong to an alignment fp_score_hits would report with the same options:
 * those whose track has fewer than min_count hits around their offset (see
 * fp_sieve.c).  What it keeps scores as the whole set would, so a store
 * need never hold the chance hits of a large catalog.
 *
 * Create it for the score options, the query's prints (only their frames
 * are read, for the query's span) and about how many hits will come (it
 * sizes its tables: 3 / min_count bytes a hit, 64 kB to 8 MB, and an
 * eighth of that for their bitmaps; twice with scaled search); pass every
 * hit to fp_sieve_count, then every hit to fp_sieve_filter, which moves
 * the kept ones of h[0 .. n) to its front, in order, and returns how many.
 * Hits may come in any order and in chunks of any size; the first
 * fp_sieve_filter after counting seals the counts into bitmaps (a pass
 * over the tables), so count everything first.  Frames must be below
 * 2^31.  Errors: FP_ERR_INVALID (bad options), FP_ERR_NOMEM.  A sieve is
 * used by one thread at a time; the
 * caller owns it and frees it with fp_sieve_free (NULL is a no-op).
 */
typedef struct fp_sieve fp_sieve_t;
fp_err_t fp_sieve_new(const fp_score_opts_t *opts, const fp_print_t *q, size_t nq,
                      size_t expected_hits, fp_sieve_t **out);
void fp_sieve_count(fp_sieve_t *s, const fp_hit_t *h, size_t n);
size_t fp_sieve_filter(fp_sieve_t *s, fp_hit_t *h, size_t n);
void fp_sieve_free(fp_sieve_t *s);

/*
 * Several threads: each counts its share of the hits in a sieve of its own,
 * made with the same arguments; fp_sieve_merge adds src's counts to dst
 * (FP_ERR_INVALID when they were not made alike).  fp_sieve_seal makes the
 * bitmaps now (the first filtering call does it otherwise); after it, and
 * until the next count or merge, fp_sieve_filter and fp_sieve_select_refs
 * only read the sieve and may run in several threads at once.
 */
fp_err_t fp_sieve_merge(fp_sieve_t *dst, const fp_sieve_t *src);
void fp_sieve_seal(fp_sieve_t *s);

/*
 * 1 when the sieve, sealed (it seals it), keeps no hit at all: no track
 * has min_count hits counted in any band or window.  A few microseconds
 * (a pass over the bitmaps): a caller can skip selecting.
 */
int fp_sieve_keeps_none(fp_sieve_t *s);

/*
 * The same for a store that decodes postings: the hits of one query print
 * qp with the postings r[0 .. n) of its hash (a hit per posting), without
 * writing them out.  fp_sieve_select_refs writes the indexes (ascending)
 * of the postings whose hits are kept to idx (room for n) and returns how
 * many; the caller makes fp_hit_t of those alone.
 */
typedef struct fp_ref {
    uint32_t track;       /* the reference recording */
    uint32_t t;           /* the posting's anchor frame */
} fp_ref_t;               /* 8 bytes: the sieve reads hundreds of thousands
                             (a posting's frequency travels beside it) */
void fp_sieve_count_refs(fp_sieve_t *s, const fp_print_t *qp, const fp_ref_t *r, size_t n);
size_t fp_sieve_select_refs(fp_sieve_t *s, const fp_print_t *qp, const fp_ref_t *r,
                            size_t n, uint32_t *idx);

#ifdef __cplusplus
}
#endif
#endif /* EARMARK_FP_H */
