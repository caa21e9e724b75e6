/*
 * testlib.h -- a very small assertion library for earmark's C tests.
 *
 * Each test program registers its tests with TEST(name) { ... } bodies called
 * from main() through test_run().  CHECK() records a failure with file and
 * line and goes on; REQUIRE() stops the current test.  test_main_end()
 * prints "N passed, N failed" and returns the exit status.
 *
 * Helpers find real audio: test_corpus_file() returns a path to a real music
 * file from the Debian packages the suite installs, and test_tmpdir() a
 * private scratch folder removed at exit.
 */
#ifndef EARMARK_TESTLIB_H
#define EARMARK_TESTLIB_H

#include <stdio.h>
#include <stddef.h>

typedef void (*test_fn_t)(void);

extern int test_failed_current;

void test_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void test_run(const char *name, test_fn_t fn);
int test_main_end(void);

/* A real music file (Ogg Vorbis, 44.1 kHz stereo) from the corpus packages. */
const char *test_corpus_file(int index);
/* A private scratch folder, created once per program, removed at exit. */
const char *test_tmpdir(void);
/*
 * A private PostgreSQL cluster in the scratch folder, started once per
 * program, migrated, stopped at exit (also when the program is killed);
 * returns its conninfo.  Exits with status 2 when it cannot be started.
 */
const char *test_db_start(void);
/*
 * A child that waits for this process to end (the pipe reaches end of file
 * however it ends, kill -9 included), then stops the private cluster of
 * var_dir and removes rm_dir (may be NULL).  After a normal exit both are
 * usually done already and it finds nothing to do.
 */
void test_db_guard(const char *var_dir, const char *rm_dir);
/* Its var folder (NULL before test_db_start()). */
const char *test_db_var(void);
/* Run a shell command; returns its exit status (or -1). */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) test_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__); \
    } while (0)

#define REQUIRE(cond, ...)                                                 \
    do {                                                                   \
        if (!(cond)) {                                                     \
            test_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__); \
            return;                                                        \
        }                                                                  \
    } while (0)

#define RUN(fn) test_run(#fn, fn)

#endif
