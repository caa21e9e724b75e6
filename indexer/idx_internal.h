/*
 * idx_internal.h -- declarations shared between the files of libearmark-idx.
 * Not installed, not API.  Names carry the idxi_ prefix so they never
 * collide with the public idx_ names.
 */
#ifndef EARMARK_IDX_INTERNAL_H
#define EARMARK_IDX_INTERNAL_H

#include "idx.h"

/* Write a formatted message into err (when err != NULL) and return code. */
idx_err_t idxi_error(idx_err_t code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Append *item to the list, taking ownership of its strings (no copy).  On
 * IDX_ERR_NOMEM the list is unchanged and the strings still belong to the
 * caller.  item->path must be non-NULL and non-empty (asserted).
 */
idx_err_t idxi_list_push(idx_list_t *list, idx_item_t *item);

/* Free the strings of *item and set them to NULL. */
void idxi_item_clear(idx_item_t *item);

/* Free the items from index `count` on and shrink the list to `count`
 * items (the roll back of a failed call). */
void idxi_list_truncate(idx_list_t *list, size_t count);

/*
 * A new string dir + "/" + name, without the "/" when dir is empty or
 * already ends in '/'.  Caller frees.  NULL when out of memory.
 */
char *idxi_path_join(const char *dir, const char *name);

/* An assertion that stays on in release builds: for impossible states only,
 * never for anything that comes from input. */
#define idxi_assert(cond)                                                   \
    do {                                                                    \
        if (!(cond)) idxi_assert_fail(#cond, __FILE__, __LINE__);           \
    } while (0)
void idxi_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#endif
