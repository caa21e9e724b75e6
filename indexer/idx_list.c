/*
 * idx_list.c -- the list of files to index: init, add (copying), push
 * (taking ownership, for the parsers), roll back, free, and removal of
 * duplicate paths.  See idx.h.
 */
#include "idx_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void idx_list_init(idx_list_t *list)
{
    if (!list) return;
    list->items = NULL;
    list->count = 0;
    list->cap = 0;
}

void idxi_item_clear(idx_item_t *item)
{
    free(item->path);
    free(item->external_id);
    free(item->title);
    free(item->artist);
    free(item->tenant);
    memset(item, 0, sizeof *item);
}

void idxi_list_truncate(idx_list_t *list, size_t count)
{
    idxi_assert(count <= list->count);
    for (size_t i = count; i < list->count; i++) idxi_item_clear(&list->items[i]);
    list->count = count;
}

void idx_list_free(idx_list_t *list)
{
    if (!list) return;
    idxi_list_truncate(list, 0);
    free(list->items);
    idx_list_init(list);
}

/* Make room for one more item: the capacity doubles (from 64), with the
 * byte count checked for overflow before the multiplication. */
static idx_err_t list_reserve_one(idx_list_t *list)
{
    if (list->count < list->cap) return IDX_OK;
    size_t ncap = list->cap ? list->cap : 64;
    while (ncap <= list->count) {
        if (ncap > SIZE_MAX / 2) return IDX_ERR_NOMEM;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / sizeof *list->items) return IDX_ERR_NOMEM;
    idx_item_t *p = realloc(list->items, ncap * sizeof *p);
    if (!p) return IDX_ERR_NOMEM;
    list->items = p;
    list->cap = ncap;
    return IDX_OK;
}

idx_err_t idxi_list_push(idx_list_t *list, idx_item_t *item)
{
    idxi_assert(item->path && item->path[0]);
    idx_err_t rc = list_reserve_one(list);
    if (rc != IDX_OK) return rc;
    list->items[list->count++] = *item;
    memset(item, 0, sizeof *item);
    return IDX_OK;
}

/* strdup(s), or NULL for NULL; *fail is set when a copy fails. */
static char *dup_or_null(const char *s, int *fail)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

idx_err_t idx_list_add(idx_list_t *list, const idx_item_t *src)
{
    if (!list || !src || !src->path || !src->path[0]) return IDX_ERR_INVALID;
    int fail = 0;
    idx_item_t it = {
        .path = dup_or_null(src->path, &fail),
        .external_id = dup_or_null(src->external_id, &fail),
        .title = dup_or_null(src->title, &fail),
        .artist = dup_or_null(src->artist, &fail),
        .tenant = dup_or_null(src->tenant, &fail),
    };
    idx_err_t rc = fail ? IDX_ERR_NOMEM : idxi_list_push(list, &it);
    idxi_item_clear(&it); /* a no-op after a successful push */
    return rc;
}

char *idxi_path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int sep = dl > 0 && dir[dl - 1] != '/';
    if (dl > SIZE_MAX - nl - 2) return NULL;
    char *p = malloc(dl + (size_t)sep + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    if (sep) p[dl] = '/';
    memcpy(p + dl + (size_t)sep, name, nl + 1);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Duplicates                                                               */
/* ------------------------------------------------------------------------ */

typedef struct path_ref {
    const char *path;
    size_t index;
} path_ref_t;

/* By path, then by position, so the first of equal paths sorts first. */
static int path_ref_cmp(const void *a, const void *b)
{
    const path_ref_t *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c) return c;
    return (x->index > y->index) - (x->index < y->index);
}

/*
 * Sort (path, position) pairs, mark every pair whose path equals the one
 * before it, then compact the array in its original order, freeing the
 * marked items.  The only allocations come before the list is touched, so
 * a failure leaves it unchanged.
 */
idx_err_t idx_list_dedupe(idx_list_t *list, size_t *removed)
{
    if (removed) *removed = 0;
    if (!list) return IDX_ERR_INVALID;
    size_t n = list->count;
    if (n < 2) return IDX_OK;
    idx_err_t rc = IDX_OK;
    path_ref_t *refs = NULL;
    unsigned char *drop = NULL;
    if (n > SIZE_MAX / sizeof *refs) return IDX_ERR_NOMEM;
    refs = malloc(n * sizeof *refs);
    drop = calloc(n, 1);
    if (!refs || !drop) {
        rc = IDX_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) refs[i] = (path_ref_t){list->items[i].path, i};
    qsort(refs, n, sizeof *refs, path_ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].path, refs[i].path) == 0) drop[refs[i].index] = 1;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            idxi_item_clear(&list->items[i]);
        else
            list->items[w++] = list->items[i];
    }
    list->count = w;
    if (removed) *removed = n - w;
out:
    free(refs);
    free(drop);
    return rc;
}
