/* testlib.c -- see testlib.h. */
#include "testlib.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int test_failed_current;
static int n_passed, n_failed;
static const char *current = "?";
static char tmpdir[256];

void test_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  FAIL %s (%s:%d): (%s) ", current, file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test_failed_current = 1;
}

void test_run(const char *name, test_fn_t fn)
{
    current = name;
    test_failed_current = 0;
    fn();
    if (test_failed_current) {
        n_failed++;
        fprintf(stderr, "not ok - %s\n", name);
    } else {
        n_passed++;
        fprintf(stderr, "ok - %s\n", name);
    }
}

int test_main_end(void)
{
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}

static const char *corpus[] = {
    "/usr/share/games/supertuxkart/data/music/Boom_boom_boom.ogg",
    "/usr/share/games/supertuxkart/data/music/Lava.ogg",
    "/usr/share/games/supertuxkart/data/music/Penguin_Party.ogg",
    "/usr/share/games/supertuxkart/data/music/Snowy.ogg",
};

const char *test_corpus_file(int index)
{
    const char *p = corpus[index % (int)(sizeof corpus / sizeof corpus[0])];
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "missing corpus file %s: run scripts/deps\n", p);
        exit(2);
    }
    return p;
}

static void rm_tmpdir(void)
{
    if (tmpdir[0]) test_sh("rm -rf '%s'", tmpdir);
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/earmark-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

int test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WEXITSTATUS(rc);
}

/* ------------------------------------------------------------------------ */
/* A scratch PostgreSQL cluster                                             */
/* ------------------------------------------------------------------------ */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "em_db.h"

static char db_var[1100];
static char db_conninfo[2048];

static void db_stop_at_exit(void)
{
    db_cluster_stop(db_var, NULL, 0);
}

void test_db_guard(const char *var_dir, const char *rm_dir)
{
    int fd[2];
    if (pipe2(fd, O_CLOEXEC)) return;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(fd[1]);
        while (read(fd[0], &c, 1) < 0 && errno == EINTR) {
        }
        db_cluster_stop(var_dir, NULL, 0);
        if (rm_dir) test_sh("rm -rf '%s'", rm_dir);
        _exit(0);
    }
    close(fd[0]); /* fd[1] stays open, unseen by exec'd children, until exit */
}

const char *test_db_start(void)
{
    if (db_conninfo[0]) return db_conninfo;
    char err[2048];
    const char *tmp = test_tmpdir();
    if (chmod(tmp, 0711)) perror("chmod"); /* the cluster's user must pass */
    snprintf(db_var, sizeof db_var, "%s/var", tmp);
    if (db_cluster_conninfo(db_var, db_conninfo, sizeof db_conninfo) != DB_OK) exit(2);
    test_db_guard(db_var, NULL);
    atexit(db_stop_at_exit); /* registered after test_tmpdir(): runs first */
    if (db_cluster_start(db_var, err, sizeof err) != DB_OK) {
        fprintf(stderr, "cannot start a scratch cluster: %s\n", err);
        exit(2);
    }
    db_conn_t *c;
    if (db_connect(db_conninfo, &c, err, sizeof err) != DB_OK ||
        db_migrate(c, NULL, NULL, err, sizeof err) != DB_OK) {
        fprintf(stderr, "cannot prepare the scratch database: %s\n", err);
        exit(2);
    }
    db_close(c);
    return db_conninfo;
}

const char *test_db_var(void)
{
    return db_var[0] ? db_var : NULL;
}
