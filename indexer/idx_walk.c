/*
 * idx_walk.c -- folders: the audio files under a folder, found with
 * opendir/readdir (no nftw: it has no user pointer, so its state would be
 * global, and it cannot prune hidden folders portably), then sorted by path
 * so that runs over the same tree give the same list.  See idx.h.
 */
#include "idx_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

bool idx_path_is_audio(const char *path)
{
    static const char *const ext[] = IDX_AUDIO_EXTENSIONS;
    if (!path) return false;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return false;
    for (size_t i = 0; ext[i]; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0) return true;
    return false;
}

/* The folders still to read: a stack of owned paths. */
typedef struct dir_stack {
    char **dirs;
    size_t count, cap;
} dir_stack_t;

/* Push path (ownership passes to the stack, also on failure: it is then
 * freed). */
static idx_err_t stack_push(dir_stack_t *s, char *path)
{
    if (s->count == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        char **p = ncap <= SIZE_MAX / sizeof *p ? realloc(s->dirs, ncap * sizeof *p) : NULL;
        if (!p) {
            free(path);
            return IDX_ERR_NOMEM;
        }
        s->dirs = p;
        s->cap = ncap;
    }
    s->dirs[s->count++] = path;
    return IDX_OK;
}

/* Add the file `path` (ownership passes to the list, also on failure). */
static idx_err_t add_path(idx_list_t *list, char *path)
{
    idx_item_t it = {.path = path};
    idx_err_t rc = idxi_list_push(list, &it);
    idxi_item_clear(&it);
    return rc;
}

/*
 * Read one folder: audio files go into the list, subfolders onto the
 * stack.  `top` says whether this is the folder the caller named: failing
 * to open it is an error, while failing to open or read a subfolder only
 * counts in *skipped.  The type of an entry comes from d_type when the file
 * system gives it, else from lstat(); links are examined with stat(), and
 * only links to regular files are taken.
 */
static idx_err_t walk_one(const char *dir, int top, idx_list_t *list, dir_stack_t *stack,
                          size_t *skipped, char *err, size_t errlen)
{
    idx_err_t rc = IDX_OK;
    char eb[128];
    DIR *d = opendir(dir);
    if (!d) {
        if (top)
            return idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot open the folder: %s", dir,
                              strerror_r(errno, eb, sizeof eb));
        (*skipped)++;
        return IDX_OK;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) {
                if (top) {
                    rc = idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot read the folder: %s",
                                    dir, strerror_r(errno, eb, sizeof eb));
                    goto out;
                }
                (*skipped)++;
            }
            break;
        }
        if (e->d_name[0] == '.') continue; /* also "." and ".." */
        unsigned char type = e->d_type;
        int audio = idx_path_is_audio(e->d_name);
        if (type != DT_DIR && type != DT_REG && type != DT_LNK && type != DT_UNKNOWN) continue;
        if ((type == DT_REG || type == DT_LNK) && !audio) continue;
        char *path = idxi_path_join(dir, e->d_name);
        if (!path) {
            rc = idxi_error(IDX_ERR_NOMEM, err, errlen, "%s: out of memory", dir);
            goto out;
        }
        struct stat st;
        if (type == DT_UNKNOWN) {
            if (lstat(path, &st) != 0) {
                if (audio) (*skipped)++;
                free(path);
                continue;
            }
            type = S_ISDIR(st.st_mode) ? DT_DIR
                   : S_ISREG(st.st_mode) ? DT_REG
                   : S_ISLNK(st.st_mode) ? DT_LNK
                                         : DT_UNKNOWN;
            if (type == DT_UNKNOWN || (type != DT_DIR && !audio)) {
                free(path);
                continue;
            }
        }
        if (type == DT_LNK) {
            if (stat(path, &st) != 0) {
                (*skipped)++; /* a dangling link, or one we may not follow */
                free(path);
                continue;
            }
            if (!S_ISREG(st.st_mode)) { /* links to folders are not followed */
                free(path);
                continue;
            }
            type = DT_REG;
        }
        rc = type == DT_DIR ? stack_push(stack, path) : add_path(list, path);
        if (rc != IDX_OK) {
            rc = idxi_error(rc, err, errlen, "%s: out of memory", dir);
            goto out;
        }
    }
out:
    closedir(d);
    return rc;
}

static int item_path_cmp(const void *a, const void *b)
{
    return strcmp(((const idx_item_t *)a)->path, ((const idx_item_t *)b)->path);
}

/*
 * Depth-first over an explicit stack (so no recursion depth limit), then
 * one sort of what was added.  The root is stat()ed, i.e. followed when it
 * is a link: the caller named it.
 */
idx_err_t idx_walk(const char *dir, idx_list_t *list, size_t *skipped, char *err, size_t errlen)
{
    size_t dummy = 0;
    if (!skipped) skipped = &dummy;
    *skipped = 0;
    if (!dir || !dir[0])
        return idxi_error(IDX_ERR_INVALID, err, errlen, "no folder to walk was named");
    if (!list) return idxi_error(IDX_ERR_INVALID, err, errlen, "%s: no list to add to", dir);

    idx_err_t rc = IDX_OK;
    size_t at_entry = list->count;
    dir_stack_t stack = {0};
    char eb[128];
    struct stat st;
    if (stat(dir, &st) != 0) {
        rc = idxi_error(IDX_ERR_IO, err, errlen, "%s: cannot examine: %s", dir,
                        strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    if (S_ISREG(st.st_mode)) {
        char *p = strdup(dir);
        rc = p ? add_path(list, p) : IDX_ERR_NOMEM;
        if (rc != IDX_OK) rc = idxi_error(rc, err, errlen, "%s: out of memory", dir);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = idxi_error(IDX_ERR_INVALID, err, errlen, "%s: is neither a folder nor a regular file",
                        dir);
        goto out;
    }
    /* The root as named, less trailing slashes beyond the first character
     * (so "music//" joins as "music/a.wav" and "/" as "/a.wav"). */
    char *root = strdup(dir);
    if (!root) {
        rc = idxi_error(IDX_ERR_NOMEM, err, errlen, "%s: out of memory", dir);
        goto out;
    }
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = '\0';
    rc = walk_one(root, 1, list, &stack, skipped, err, errlen);
    free(root);
    while (rc == IDX_OK && stack.count) {
        char *sub = stack.dirs[--stack.count];
        rc = walk_one(sub, 0, list, &stack, skipped, err, errlen);
        free(sub);
    }
    if (rc == IDX_OK && list->count > at_entry)
        qsort(list->items + at_entry, list->count - at_entry, sizeof *list->items, item_path_cmp);
out:
    for (size_t i = 0; i < stack.count; i++) free(stack.dirs[i]);
    free(stack.dirs);
    if (rc != IDX_OK) {
        idxi_list_truncate(list, at_entry);
        *skipped = 0;
    }
    return rc;
}
