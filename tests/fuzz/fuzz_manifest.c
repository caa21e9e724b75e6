/*
 * fuzz_manifest.c -- libFuzzer harness for manifests (indexer/idx.h).
 *
 * The first byte chooses how the rest is read: byte % 3 gives the format
 * (0 CSV, 1 JSON Lines, 2 AUTO) and bit 0x80 a base folder ("/base/dir")
 * for relative paths.  The rest goes to idx_manifest_parse() on a list that
 * already holds one item.
 *
 * Besides crashes and sanitizer reports, a broken promise of the API is
 * turned into a crash (abort) so the fuzzer keeps the input:
 *   - a failure must be IDX_ERR_PARSE (or NOMEM), with a one-line message
 *     that names the line ("line N: ...") unless the CSV has no header at
 *     all, and must leave the list as it was;
 *   - a success must give items with a non-empty path (absolute when the
 *     base folder is absolute and the path was relative), optional fields
 *     NULL or non-empty, every field within IDX_MAX_FIELD;
 *   - without a base folder, the items written back as CSV (every field
 *     quoted) and parsed again must come back identical: the CSV writer's
 *     quoting is the reader's inverse;
 *   - idx_list_dedupe() leaves no two equal paths and keeps the first item.
 *
 * Built and run by tests/fuzz/run.sh.
 */
#include "idx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE "/base/dir"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_manifest: broken promise: %s [%s]\n", what, detail ? detail : "");
    abort();
}

/* Error messages: one line, naming the line of the record. */
static void check_message(idx_err_t rc, const char *err)
{
    if (rc != IDX_ERR_PARSE && rc != IDX_ERR_NOMEM) broken("unexpected error code", idx_errname(rc));
    if (err[0] == '\0') broken("error without a message", idx_errname(rc));
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20) broken("error message is not one line", err);
    if (strncmp(err, "the CSV manifest is empty", 25) == 0) return;
    if (strncmp(err, "line ", 5) != 0 || err[5] < '1' || err[5] > '9')
        broken("error message does not name the line", err);
}

static void check_field(const char *s, const char *what)
{
    if (!s) return;
    if (!s[0]) broken("an empty optional field is not NULL", what);
    if (strlen(s) > IDX_MAX_FIELD) broken("a field over the limit", what);
}

/* Append s as a quoted CSV field ("" for NULL) to the growing buffer. */
static void put_field(char **buf, size_t *len, size_t *cap, const char *s, int last)
{
    size_t n = s ? strlen(s) : 0;
    size_t need = *len + 2 * n + 4;
    if (need > *cap) {
        *cap = need * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf) abort();
    }
    char *o = *buf + *len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') *o++ = '"';
        *o++ = s[i];
    }
    *o++ = '"';
    *o++ = last ? '\n' : ',';
    *len = (size_t)(o - *buf);
}

static int same(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Write items[from..] as CSV, parse it again, compare. */
static void check_roundtrip(const idx_list_t *list, size_t from)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *header = "path,external_id,title,artist,tenant\n";
    cap = strlen(header) + 1;
    buf = malloc(cap);
    if (!buf) abort();
    memcpy(buf, header, cap - 1);
    len = cap - 1;
    for (size_t i = from; i < list->count; i++) {
        const idx_item_t *it = &list->items[i];
        put_field(&buf, &len, &cap, it->path, 0);
        put_field(&buf, &len, &cap, it->external_id, 0);
        put_field(&buf, &len, &cap, it->title, 0);
        put_field(&buf, &len, &cap, it->artist, 0);
        put_field(&buf, &len, &cap, it->tenant, 1);
    }
    idx_list_t again;
    idx_list_init(&again);
    char err[512] = "";
    if (idx_manifest_parse(buf, len, IDX_FORMAT_CSV, NULL, &again, err, sizeof err) != IDX_OK)
        broken("the items written back as CSV do not parse", err);
    if (again.count != list->count - from) broken("round trip: another number of items", NULL);
    for (size_t i = 0; i < again.count; i++) {
        const idx_item_t *a = &list->items[from + i], *b = &again.items[i];
        if (!same(a->path, b->path) || !same(a->external_id, b->external_id) ||
            !same(a->title, b->title) || !same(a->artist, b->artist) ||
            !same(a->tenant, b->tenant))
            broken("round trip: an item changed", a->path);
    }
    idx_list_free(&again);
    free(buf);
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_dedupe(idx_list_t *list)
{
    size_t before = list->count, removed = 0;
    if (idx_list_dedupe(list, &removed) != IDX_OK) broken("dedupe failed", NULL);
    if (list->count + removed != before) broken("dedupe lost count of items", NULL);
    if (list->count < 1 || strcmp(list->items[0].path, "pre.wav") != 0)
        broken("dedupe moved the first item", NULL);
    const char **paths = malloc(list->count * sizeof *paths);
    if (!paths) abort();
    for (size_t i = 0; i < list->count; i++) paths[i] = list->items[i].path;
    qsort(paths, list->count, sizeof *paths, path_cmp);
    for (size_t i = 1; i < list->count; i++)
        if (strcmp(paths[i - 1], paths[i]) == 0) broken("dedupe left a duplicate", paths[i]);
    free(paths);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const idx_format_t formats[3] = {IDX_FORMAT_CSV, IDX_FORMAT_JSONL, IDX_FORMAT_AUTO};
    idx_format_t fmt = formats[data[0] % 3];
    const char *base = (data[0] & 0x80) ? BASE : NULL;

    idx_list_t list;
    idx_list_init(&list);
    idx_item_t pre = {.path = "pre.wav", .title = "kept"};
    if (idx_list_add(&list, &pre) != IDX_OK) abort();

    char err[512];
    err[0] = '\0';
    idx_err_t rc = idx_manifest_parse((const char *)data + 1, size - 1, fmt, base, &list, err,
                                      sizeof err);
    if (rc != IDX_OK) {
        check_message(rc, err);
        if (list.count != 1 || strcmp(list.items[0].path, "pre.wav") != 0 ||
            strcmp(list.items[0].title, "kept") != 0)
            broken("a failed parse changed the list", err);
    } else {
        for (size_t i = 1; i < list.count; i++) {
            const idx_item_t *it = &list.items[i];
            if (!it->path || !it->path[0]) broken("an item without a path", NULL);
            if (base && it->path[0] != '/') broken("a relative path after a base folder", it->path);
            if (strlen(it->path) > IDX_MAX_FIELD + sizeof BASE) broken("a path over the limit", NULL);
            check_field(it->external_id, "external_id");
            check_field(it->title, "title");
            check_field(it->artist, "artist");
            check_field(it->tenant, "tenant");
        }
        if (!base) check_roundtrip(&list, 1);
        check_dedupe(&list);
    }
    idx_list_free(&list);
    return 0;
}
