/*
 * idx.h -- the bulk indexing job `earmark index`: what to index.
 *
 * This header is the whole public interface of libearmark-idx.  So far it
 * holds the input side of the job: the list of files to index, read from a
 * manifest (CSV or JSON Lines) or found by walking folders.
 *
 *   idx_error.c      error codes and their texts
 *   idx_list.c       the list of items: add, free, remove duplicate paths
 *   idx_manifest.c   manifests: CSV (RFC 4180) and JSON Lines (jansson)
 *   idx_walk.c       folders: the audio files under a folder, sorted
 *
 * No database, no network, no global state, no printing, no exit().
 *
 * Threads: every function may be called from several threads at once as
 * long as each idx_list_t is used by one thread at a time.
 *
 * Errors: functions return idx_err_t (0 = success).  Functions that can
 * fail for a reason a person should read take `char *err, size_t errlen`
 * (err may be NULL): on failure a one-line message is written there, naming
 * the input (and for manifests the line) and saying what is wrong.  On
 * success err is left as it was.
 *
 * Ownership: pointers passed in are borrowed for the duration of the call.
 * An idx_list_t owns its items and every string in them; they stay valid
 * until the next call that changes the list (add, parse, load, walk,
 * dedupe, free).
 */
#ifndef EARMARK_IDX_H
#define EARMARK_IDX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The error codes of the indexer.  Values are stable: they are logged and
 * mapped to the machine-readable codes of the HTTP API.  New codes are only
 * ever appended.
 */
typedef enum idx_err {
    IDX_OK = 0,
    IDX_ERR_NOMEM = 1,    /* an allocation failed */
    IDX_ERR_INVALID = 2,  /* a bad argument, or an input over a size limit
                             (a manifest over IDX_MAX_MANIFEST bytes) */
    IDX_ERR_IO = 3,       /* a file or folder cannot be opened or read */
    IDX_ERR_PARSE = 4     /* a manifest is malformed (the message names the
                             line and the fault) */
} idx_err_t;

/* Static English text for an error code; never NULL. */
const char *idx_strerror(idx_err_t code);

/* A stable short machine name ("parse", "io", ...); never NULL. */
const char *idx_errname(idx_err_t code);

/* ------------------------------------------------------------------------ */
/* Items and lists                                                          */
/* ------------------------------------------------------------------------ */

/*
 * One file to index and what the catalog should record about it.  In a
 * list, every string is owned by the list.  path is never NULL or empty;
 * the other fields are NULL when absent (an empty manifest value counts as
 * absent).
 */
typedef struct idx_item {
    char *path;         /* the audio file, as it will be opened */
    char *external_id;  /* the rights holder's id (ISRC, catalog number) */
    char *title;
    char *artist;
    char *tenant;       /* whose catalog the recording belongs to */
} idx_item_t;

/*
 * A growable array of items.  Initialize with idx_list_init() (or = {0}),
 * release with idx_list_free().  items[0 .. count-1] are the items; cap is
 * the allocated length (for the library; do not change it).
 */
typedef struct idx_list {
    idx_item_t *items;
    size_t count;
    size_t cap;
} idx_list_t;

/* Make *list an empty list.  Allocates nothing. */
void idx_list_init(idx_list_t *list);

/*
 * Free every item and string and the array; *list is left an empty list,
 * ready for reuse.  list == NULL is a no-op.
 */
void idx_list_free(idx_list_t *list);

/*
 * Append a copy of *src (every non-NULL string is duplicated; src is not
 * kept).  Returns IDX_OK, IDX_ERR_INVALID when list or src is NULL or
 * src->path is NULL or empty, IDX_ERR_NOMEM (the list is then unchanged).
 */
idx_err_t idx_list_add(idx_list_t *list, const idx_item_t *src);

/*
 * Remove every item whose path (compared byte for byte) equals the path of
 * an earlier item, keeping the first of each and the order of those kept.
 * *removed (may be NULL) receives how many were removed.  O(n log n).
 * Returns IDX_OK, IDX_ERR_INVALID (list NULL) or IDX_ERR_NOMEM (the list is
 * then unchanged and *removed is 0).
 */
idx_err_t idx_list_dedupe(idx_list_t *list, size_t *removed);

/* ------------------------------------------------------------------------ */
/* Manifests                                                                */
/* ------------------------------------------------------------------------ */

/* Ceilings on a manifest; exceeding one is an ordinary error. */
#define IDX_MAX_MANIFEST ((size_t)1 << 30) /* bytes in a manifest
                                              (IDX_ERR_INVALID) */
#define IDX_MAX_FIELD 65536        /* bytes in one CSV field or one JSON
                                      string value we keep (IDX_ERR_PARSE) */
#define IDX_MAX_COLUMNS 1024       /* columns of a CSV header (IDX_ERR_PARSE) */
#define IDX_MAX_JSONL_LINE (1 << 20) /* bytes in one JSON Lines line
                                        (IDX_ERR_PARSE) */

/* The format of a manifest. */
typedef enum idx_format {
    IDX_FORMAT_AUTO = 0,  /* JSONL when the first non-blank byte (after an
                             optional UTF-8 BOM) is '{', else CSV; for a
                             file, also JSONL when its name ends in .jsonl,
                             .ndjson or .json (any case) */
    IDX_FORMAT_CSV = 1,
    IDX_FORMAT_JSONL = 2
} idx_format_t;

/*
 * Parse the manifest in data[0 .. len-1] and append one item per record to
 * *list.
 *
 * CSV (RFC 4180): fields separated by commas; a field in double quotes may
 * hold commas, line breaks and doubled quotes ("" for one "); records end
 * with LF or CRLF; an optional UTF-8 BOM at the start is skipped; lines
 * holding only spaces and tabs are skipped.  Values are kept byte for byte
 * (no trimming).  The first record is a header naming the columns, matched
 * case-insensitively with surrounding spaces and tabs trimmed:
 *
 *   path                  the file (required)
 *   external_id, isrc, id the external id
 *   title, artist, tenant
 *
 * Other columns are ignored; one column named twice (also through two
 * aliases) is an error.  Every record must have as many fields as the
 * header.  A field may not hold a NUL byte.  An empty file (no header) is
 * an error; a header without records gives no items.
 *
 * JSON Lines: one JSON object per line (lines of only spaces, tabs and CR
 * are skipped; an optional UTF-8 BOM is skipped).  Keys: "path" (a string,
 * required), "external_id" (a string, an integer, or a number with an
 * integral value below 2^53 in magnitude, written as its decimal text),
 * "title", "artist", "tenant" (strings); every key but path may be null or
 * missing.  Other keys are ignored; a key given twice is an error.  An
 * empty input gives no items.
 *
 * Paths: an empty path is an error.  An absolute path is kept as written; a
 * relative one, after dropping leading "./", is joined to base_dir with one
 * "/" (base_dir NULL or "" keeps it as written).  Paths are not checked
 * against the file system.
 *
 * Limits: IDX_MAX_MANIFEST, IDX_MAX_FIELD, IDX_MAX_COLUMNS,
 * IDX_MAX_JSONL_LINE above.
 *
 * Errors: IDX_ERR_PARSE with "line N: what is wrong" in err, N being the
 * 1-based line where the faulty record starts (for example "line 12: the
 * row has 4 fields, the header has 5"); IDX_ERR_INVALID (list NULL, data
 * NULL with len > 0, an unknown fmt, len over IDX_MAX_MANIFEST);
 * IDX_ERR_NOMEM.  On any error the list is as it was at entry: items added
 * by this call are freed.
 */
idx_err_t idx_manifest_parse(const char *data, size_t len, idx_format_t fmt,
                             const char *base_dir, idx_list_t *list, char *err,
                             size_t errlen);

/*
 * Read the manifest file `file` and parse it as idx_manifest_parse() does,
 * in the format IDX_FORMAT_AUTO finds (by the name, then by the content).
 * Relative paths in it are taken relative to the folder part of `file` as
 * written (not made absolute): in "lists/m.csv" the path "a.wav" becomes
 * "lists/a.wav"; in "m.csv" it stays "a.wav".
 *
 * Messages begin with the file as given: "lists/m.csv:12: the row has 4
 * fields, the header has 5".  Errors: as idx_manifest_parse(), and
 * IDX_ERR_IO (cannot open or read the file, or it is a folder),
 * IDX_ERR_INVALID (over IDX_MAX_MANIFEST bytes).  On any error the list is
 * as it was at entry.
 */
idx_err_t idx_manifest_load(const char *file, idx_list_t *list, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Folders                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The file name extensions idx_walk() takes for audio, lower case, without
 * the dot, NULL-terminated; usable as an initializer:
 *     static const char *const ext[] = IDX_AUDIO_EXTENSIONS;
 */
#define IDX_AUDIO_EXTENSIONS                                                 \
    {                                                                        \
        "wav", "wave", "aif", "aiff", "aifc", "flac", "ogg", "oga", "opus",  \
            "mp3", "caf", "w64", NULL                                        \
    }

/*
 * True when the last component of `path` has a '.' after its first byte
 * and what follows the last '.' is one of IDX_AUDIO_EXTENSIONS, in any
 * case ("Song.FLAC").  NULL gives false.
 */
bool idx_path_is_audio(const char *path);

/*
 * Append the audio files under the folder `dir` to *list, with only the
 * path set.
 *
 *   - Recurses into subfolders.  Symbolic links to folders are not followed
 *     (no loops, no file found twice through a link); symbolic links to
 *     regular files are taken, with the link's path.
 *   - Takes regular files for which idx_path_is_audio() holds.
 *   - Skips entries whose name begins with '.', with all beneath them.
 *   - Paths are dir + "/" + relative path, with no doubled '/' where dir
 *     ends in '/' ("music/" gives "music/a.wav"; "/" gives "/a.wav").
 *   - The items this call adds are sorted by path in byte order (strcmp),
 *     so runs over the same tree give the same list; items already in the
 *     list are not moved.
 *   - Subfolders that cannot be opened or read, and audio-named entries
 *     that cannot be examined (a dangling link, an entry that vanished),
 *     are counted in *skipped (may be NULL) and do not fail the walk.
 *   - When `dir` (followed if it is a link) is a regular file, just that
 *     file is added, whatever its name.
 *
 * Errors: IDX_ERR_INVALID (NULL or empty dir, list NULL, dir neither a
 * folder nor a regular file), IDX_ERR_IO (dir does not exist or cannot be
 * opened), IDX_ERR_NOMEM.  On any error the list is as it was at entry and
 * *skipped is 0.
 */
idx_err_t idx_walk(const char *dir, idx_list_t *list, size_t *skipped, char *err,
                   size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
