/*
 * db_cluster.c -- the private PostgreSQL cluster under VAR/pg: create it
 * (initdb), start and stop it (pg_ctl), describe it.  See em_db.h.
 *
 * Programs run with fork + exec, never through a shell, so paths need no
 * quoting.  Each child gets /dev/null as input, the PG* variables removed
 * from its environment (the cluster's settings come from its own files
 * only), umask 077 and no descriptor but 0-2; its output is appended to a
 * log under VAR/pg/log, and its error output is also kept to quote in the
 * error message.
 *
 * As root, children run as the system user "earmark" (setgid + setgroups +
 * setuid in the child between fork and exec).  That needs no PAM session
 * and no shell, which `runuser` or `su` would bring in.
 */
#include "db_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PATHLEN 4096

/* Every path of one cluster. */
typedef struct paths {
    char var[PATHLEN];       /* VAR */
    char pg[PATHLEN];        /* VAR/pg: cluster root and socket folder */
    char data[PATHLEN];      /* VAR/pg/data */
    char log_dir[PATHLEN];   /* VAR/pg/log */
    char log_file[PATHLEN];  /* VAR/pg/log/postgres.log */
    char socket[PATHLEN];    /* VAR/pg/.s.PGSQL.5432 */
    char lock[PATHLEN];      /* VAR/pg/cluster.lock */
    char initdb_log[PATHLEN];/* VAR/pg/log/initdb.log */
    char pg_ctl_log[PATHLEN];/* VAR/pg/log/pg_ctl.log */
    char conf[PATHLEN];      /* VAR/pg/data/earmark.conf */
    char pgconf[PATHLEN];    /* VAR/pg/data/postgresql.conf */
} paths_t;

/* Who the cluster's programs run as. */
typedef struct runas {
    int other;               /* 1: switch to uid/gid in the child */
    uid_t uid;
    gid_t gid;
} runas_t;

/* One program to run. */
typedef struct cmd {
    const char *const *argv; /* argv[0]: a path, or a name when search_path */
    int search_path;
    const runas_t *runas;    /* NULL: as the caller */
    const char *cwd;         /* NULL: unchanged */
    const char *log_path;    /* all output also appended here (NULL: none) */
    int capture_stdout;      /* keep stdout rather than stderr */
    char out[2048];          /* the first bytes of what was kept */
    int status;              /* exit status, 128 + signal number if killed */
} cmd_t;

static db_err_t paths_init(const char *var_dir, paths_t *p, char *err, size_t errlen)
{
    db_err_t rc = var_dir ? dbi_abspath(var_dir, p->var, sizeof p->var)
                          : db_var_dir_resolve(p->var, sizeof p->var);
    if (rc != DB_OK)
        return db_errorf(DB_ERR_INVALID, err, errlen, "var folder path is too long or invalid: %s",
                         var_dir ? var_dir : "$EARMARK_VAR");
    const char *v = strcmp(p->var, "/") ? p->var : "";
    int bad = snprintf(p->pg, sizeof p->pg, "%s/pg", v) >= PATHLEN;
    bad |= snprintf(p->data, sizeof p->data, "%s/pg/data", v) >= PATHLEN;
    bad |= snprintf(p->log_dir, sizeof p->log_dir, "%s/pg/log", v) >= PATHLEN;
    bad |= snprintf(p->log_file, sizeof p->log_file, "%s/pg/log/postgres.log", v) >= PATHLEN;
    bad |= snprintf(p->socket, sizeof p->socket, "%s/pg/.s.PGSQL.%d", v, DBI_CLUSTER_PORT) >=
           PATHLEN;
    bad |= snprintf(p->lock, sizeof p->lock, "%s/pg/cluster.lock", v) >= PATHLEN;
    bad |= snprintf(p->initdb_log, sizeof p->initdb_log, "%s/pg/log/initdb.log", v) >= PATHLEN;
    bad |= snprintf(p->pg_ctl_log, sizeof p->pg_ctl_log, "%s/pg/log/pg_ctl.log", v) >= PATHLEN;
    bad |= snprintf(p->conf, sizeof p->conf, "%s/pg/data/earmark.conf", v) >= PATHLEN;
    bad |= snprintf(p->pgconf, sizeof p->pgconf, "%s/pg/data/postgresql.conf", v) >= PATHLEN;
    if (bad) return db_errorf(DB_ERR_INVALID, err, errlen, "var folder path is too long: %s", p->var);
    return DB_OK;
}

/* The socket path must fit in sockaddr_un, or the server cannot listen. */
static db_err_t check_socket_len(const paths_t *p, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    if (strlen(p->socket) < sizeof sun.sun_path) return DB_OK;
    return db_errorf(DB_ERR_INVALID, err, errlen,
                     "the database socket path is too long: %s\n"
                     "detail: Unix socket paths are limited to %zu bytes.\n"
                     "hint: set EARMARK_VAR to a shorter folder",
                     p->socket, sizeof sun.sun_path - 1);
}

/* ------------------------------------------------------------------------ */
/* Running programs                                                         */
/* ------------------------------------------------------------------------ */

/* environ without the PG* variables, in a new array (free() only it). */
static char **child_env(void)
{
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PG", 2)) env[k++] = environ[i];
    env[k] = NULL;
    return env;
}

/* In the child: write a fixed message and leave (only async-signal-safe
 * calls after fork). */
static void child_fail(const char *what)
{
    ssize_t w = write(2, what, strlen(what));
    (void)w;
    _exit(127);
}

/*
 * Run c->argv and wait for it.  Returns DB_OK when it ran (c->status says how
 * it ended), DB_ERR_IO / DB_ERR_NOMEM when it could not be started.
 */
static db_err_t cmd_run(cmd_t *c, char *err, size_t errlen)
{
    db_err_t rc = DB_OK;
    int pipefd[2] = {-1, -1}, logfd = -1, nullfd = -1;
    char **env = NULL;
    pid_t pid = -1;
    c->out[0] = '\0';
    c->status = -1;

    env = child_env();
    if (!env) {
        rc = db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd < 0) {
        rc = db_errorf(DB_ERR_IO, err, errlen, "cannot open /dev/null: %s", strerror(errno));
        goto out;
    }
    if (c->log_path) {
        logfd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0) {
            rc = db_errorf(DB_ERR_IO, err, errlen, "cannot open %s: %s", c->log_path,
                           strerror(errno));
            goto out;
        }
        if (c->runas && c->runas->other && fchown(logfd, c->runas->uid, c->runas->gid)) {
            rc = db_errorf(DB_ERR_IO, err, errlen, "cannot change the owner of %s: %s",
                           c->log_path, strerror(errno));
            goto out;
        }
    }
    if (pipe2(pipefd, O_CLOEXEC)) {
        rc = db_errorf(DB_ERR_IO, err, errlen, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }

    pid = fork();
    if (pid < 0) {
        rc = db_errorf(DB_ERR_IO, err, errlen, "cannot start %s: fork: %s", c->argv[0],
                       strerror(errno));
        goto out;
    }
    if (pid == 0) {
        int other_out = logfd >= 0 ? logfd : nullfd;
        if (dup2(nullfd, 0) < 0 || dup2(c->capture_stdout ? pipefd[1] : other_out, 1) < 0 ||
            dup2(c->capture_stdout ? other_out : pipefd[1], 2) < 0)
            child_fail("cannot redirect output\n");
        closefrom(3);
        umask(077);
        if (c->runas && c->runas->other) {
            gid_t g = c->runas->gid;
            if (setgroups(1, &g) || setgid(g) || setuid(c->runas->uid))
                child_fail("cannot switch to the user earmark\n");
        }
        if (c->cwd && chdir(c->cwd)) child_fail("cannot change to the working folder\n");
        if (c->search_path) execvpe(c->argv[0], (char *const *)c->argv, env);
        else execve(c->argv[0], (char *const *)c->argv, env);
        child_fail("cannot execute the program\n");
    }

    close(pipefd[1]);
    pipefd[1] = -1;
    size_t kept = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (kept + 1 < sizeof c->out) {
            size_t take = (size_t)n < sizeof c->out - 1 - kept ? (size_t)n : sizeof c->out - 1 - kept;
            memcpy(c->out + kept, buf, take);
            kept += take;
            c->out[kept] = '\0';
        }
        if (logfd >= 0 && write(logfd, buf, (size_t)n) < 0) {
            /* the log is a convenience; the message is kept above */
        }
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0) {
        if (errno != EINTR) {
            rc = db_errorf(DB_ERR_IO, err, errlen, "cannot wait for %s: %s", c->argv[0],
                           strerror(errno));
            goto out;
        }
    }
    c->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
out:
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    if (logfd >= 0) close(logfd);
    if (nullfd >= 0) close(nullfd);
    free(env);
    return rc;
}

/* Length of the first line of s, without a trailing "\r". */
static int first_line(const char *s)
{
    size_t n = strcspn(s, "\n");
    if (n && s[n - 1] == '\r') n--;
    return (int)n;
}

/* ------------------------------------------------------------------------ */
/* Binaries, user, folders                                                  */
/* ------------------------------------------------------------------------ */

static int is_exec(const char *dir, const char *name)
{
    char path[PATHLEN];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    return access(path, X_OK) == 0;
}

/* The folder of initdb and pg_ctl: `pg_config --bindir`, else the newest
 * /usr/lib/postgresql/N/bin. */
static db_err_t find_bindir(char *buf, size_t len, char *err, size_t errlen)
{
    static const char *const argv[] = {"pg_config", "--bindir", NULL};
    cmd_t c = {.argv = argv, .search_path = 1, .capture_stdout = 1};
    if (cmd_run(&c, NULL, 0) == DB_OK && c.status == 0) {
        int n = first_line(c.out);
        if (n > 0 && (size_t)n < len) {
            snprintf(buf, len, "%.*s", n, c.out);
            if (is_exec(buf, "initdb") && is_exec(buf, "pg_ctl")) return DB_OK;
        }
    }
    glob_t g;
    long best = -1;
    if (glob("/usr/lib/postgresql/*/bin", GLOB_ONLYDIR, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *p = g.gl_pathv[i];
            long v = strtol(p + strlen("/usr/lib/postgresql/"), NULL, 10);
            if (v > best && is_exec(p, "initdb") && is_exec(p, "pg_ctl") &&
                strlen(p) < len) {
                best = v;
                snprintf(buf, len, "%s", p);
            }
        }
        globfree(&g);
    }
    if (best >= 0) return DB_OK;
    return db_errorf(DB_ERR_CLUSTER, err, errlen,
                     "cannot find the PostgreSQL server programs (initdb, pg_ctl)\n"
                     "detail: `pg_config --bindir` names no folder holding them, and neither "
                     "does /usr/lib/postgresql/*/bin.\n"
                     "hint: install the server (Debian: apt-get install postgresql), or set "
                     "EARMARK_DB to a running server");
}

static int lookup_user(runas_t *ra)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(DBI_CLUSTER_NAME, &pw, buf, sizeof buf, &res) || !res) return -1;
    ra->uid = pw.pw_uid;
    ra->gid = pw.pw_gid;
    return 0;
}

/* Decide who runs the cluster: the caller, or (as root) the user earmark,
 * created when missing. */
static db_err_t resolve_runas(runas_t *ra, char *err, size_t errlen)
{
    memset(ra, 0, sizeof *ra);
    if (geteuid() != 0) {
        ra->uid = geteuid();
        ra->gid = getegid();
        return DB_OK;
    }
    ra->other = 1;
    if (lookup_user(ra) == 0) return DB_OK;
    const char *useradd = access("/usr/sbin/useradd", X_OK) == 0 ? "/usr/sbin/useradd"
                          : access("/sbin/useradd", X_OK) == 0   ? "/sbin/useradd"
                                                                  : "useradd";
    const char *argv[] = {useradd,   "--system",          "--no-create-home",
                          "--shell", "/usr/sbin/nologin", DBI_CLUSTER_NAME, NULL};
    cmd_t c = {.argv = argv, .search_path = useradd[0] != '/'};
    db_err_t rc = cmd_run(&c, err, errlen);
    if (rc != DB_OK) return rc;
    /* Another process may have created it meanwhile: look again either way. */
    if (lookup_user(ra) == 0) return DB_OK;
    return db_errorf(DB_ERR_CLUSTER, err, errlen,
                     "cannot create the system user %s: %.*s\n"
                     "detail: PostgreSQL does not run as root, so as root the private cluster "
                     "runs as that user.\n"
                     "hint: create it with: useradd --system --no-create-home --shell "
                     "/usr/sbin/nologin %s",
                     DBI_CLUSTER_NAME, first_line(c.out), c.out, DBI_CLUSTER_NAME);
}

static int can_search(const struct stat *st, const runas_t *ra)
{
    if (st->st_uid == ra->uid) return (st->st_mode & S_IXUSR) != 0;
    if (st->st_gid == ra->gid) return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

/*
 * As root: every folder from / to VAR must let the user earmark through.
 * VAR itself is earmark's and is opened (o+x) when needed; a parent is
 * never changed, only named in the error.
 */
static db_err_t check_reachable(const paths_t *p, const runas_t *ra, int allow_missing,
                                char *err, size_t errlen)
{
    char prefix[PATHLEN];
    size_t n = strlen(p->var);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p->var[i] != '/') continue;
        if (i == 0) snprintf(prefix, sizeof prefix, "/");
        else snprintf(prefix, sizeof prefix, "%.*s", (int)i, p->var);
        struct stat st;
        if (stat(prefix, &st)) {
            if (errno == ENOENT && allow_missing) return DB_OK; /* created later, 0755 */
            return db_errorf(DB_ERR_IO, err, errlen, "cannot examine %s: %s", prefix,
                             strerror(errno));
        }
        if (can_search(&st, ra)) continue;
        if (i == n) {
            if (chmod(prefix, (st.st_mode & 07777) | S_IXOTH))
                return db_errorf(DB_ERR_IO, err, errlen, "cannot open %s to the user %s: %s",
                                 prefix, DBI_CLUSTER_NAME, strerror(errno));
            continue;
        }
        return db_errorf(DB_ERR_CLUSTER, err, errlen,
                         "the database folder %s is out of reach of the user %s\n"
                         "detail: PostgreSQL does not run as root, so the private cluster runs "
                         "as the system user %s, and %s (mode %04o) does not let other users "
                         "through.\n"
                         "hint: set EARMARK_VAR to a folder outside %s (such as "
                         "/var/lib/earmark), or let others through with: chmod o+x %s",
                         p->pg, DBI_CLUSTER_NAME, DBI_CLUSTER_NAME, prefix,
                         (unsigned)(st.st_mode & 07777), prefix, prefix);
    }
    return DB_OK;
}

/* mkdir that accepts an existing folder. */
static db_err_t make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return DB_OK;
        return db_errorf(DB_ERR_IO, err, errlen, "%s exists and is not a folder", path);
    }
    return db_errorf(DB_ERR_IO, err, errlen, "cannot create the folder %s: %s", path,
                     strerror(errno));
}

/* mkdir -p for VAR (which may be several levels deep); the folders it
 * creates are 0755 whatever the umask, so that the cluster's user can pass. */
static db_err_t make_dirs(const char *path, char *err, size_t errlen)
{
    char tmp[PATHLEN];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(tmp, 0755) == 0) {
            if (chmod(tmp, 0755))
                return db_errorf(DB_ERR_IO, err, errlen, "cannot set the mode of %s: %s", tmp,
                                 strerror(errno));
        } else if (errno != EEXIST) {
            return db_errorf(DB_ERR_IO, err, errlen, "cannot create the folder %s: %s", tmp,
                             strerror(errno));
        }
        if (!c) break;
        *s = c;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return DB_OK;
    return db_errorf(DB_ERR_IO, err, errlen, "%s exists and is not a folder", path);
}

/* chown -R without following symbolic links. */
static db_err_t chown_tree(const char *path, const runas_t *ra, int depth, char *err,
                           size_t errlen)
{
    struct stat st;
    if (lstat(path, &st))
        return db_errorf(DB_ERR_IO, err, errlen, "cannot examine %s: %s", path, strerror(errno));
    if ((st.st_uid != ra->uid || st.st_gid != ra->gid) && lchown(path, ra->uid, ra->gid))
        return db_errorf(DB_ERR_IO, err, errlen, "cannot give %s to the user %s: %s", path,
                         DBI_CLUSTER_NAME, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return DB_OK;
    if (depth > 64) return db_errorf(DB_ERR_IO, err, errlen, "folders nested too deep in %s", path);
    DIR *d = opendir(path);
    if (!d)
        return db_errorf(DB_ERR_IO, err, errlen, "cannot read the folder %s: %s", path,
                         strerror(errno));
    db_err_t rc = DB_OK;
    struct dirent *e;
    char child[PATHLEN];
    while (rc == DB_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) {
            rc = db_errorf(DB_ERR_IO, err, errlen, "path too long in %s", path);
            break;
        }
        rc = chown_tree(child, ra, depth + 1, err, errlen);
    }
    closedir(d);
    return rc;
}

/* Read a whole small file into a new NUL-terminated buffer (free()). */
static char *read_small(const char *path, size_t max, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len_out) *len_out = n;
    return buf;
}

/* Write path with content (replacing it atomically), owned by ra. */
static db_err_t write_file(const char *path, const char *content, const runas_t *ra,
                           char *err, size_t errlen)
{
    char tmp[PATHLEN];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return db_errorf(DB_ERR_IO, err, errlen, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return db_errorf(DB_ERR_IO, err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(content), off = 0;
    int bad = 0;
    while (off < len && !bad) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) bad = 1;
        else off += (size_t)w;
    }
    if (!bad && ra->other && fchown(fd, ra->uid, ra->gid)) bad = 1;
    if (close(fd)) bad = 1;
    if (bad || rename(tmp, path)) {
        db_err_t rc = db_errorf(DB_ERR_IO, err, errlen, "cannot write %s: %s", path,
                                strerror(errno));
        unlink(tmp);
        return rc;
    }
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

/* The pid of the postmaster of data when it is alive, else 0. */
static long running_pid(const char *data)
{
    char path[PATHLEN], *pidtext;
    if (snprintf(path, sizeof path, "%s/postmaster.pid", data) >= (int)sizeof path) return 0;
    pidtext = read_small(path, 64, NULL);
    if (!pidtext) return 0;
    long pid = strtol(pidtext, NULL, 10);
    free(pidtext);
    if (pid <= 0) return 0;
    if (kill((pid_t)pid, 0) && errno != EPERM) return 0;
    /* After a crash the file can name a pid that now belongs to another
     * program. */
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    char *comm = read_small(path, 64, NULL);
    if (comm) {
        int is_pg = !strncmp(comm, "postgres", 8) || !strncmp(comm, "postmaster", 10);
        free(comm);
        if (!is_pg) return 0;
    }
    return pid;
}

static int file_exists(const char *dir, const char *name)
{
    char path[PATHLEN];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    return access(path, F_OK) == 0;
}

db_err_t db_cluster_status(const char *var_dir, db_cluster_status_t *st, char *err,
                           size_t errlen)
{
    paths_t p;
    if (!st) return db_errorf(DB_ERR_INVALID, err, errlen, "invalid arguments to db_cluster_status");
    memset(st, 0, sizeof *st);
    db_err_t rc = paths_init(var_dir, &p, err, errlen);
    if (rc != DB_OK) return rc;
    if (snprintf(st->pg_dir, sizeof st->pg_dir, "%s", p.pg) >= (int)sizeof st->pg_dir ||
        snprintf(st->socket, sizeof st->socket, "%s", p.socket) >= (int)sizeof st->socket ||
        snprintf(st->log_file, sizeof st->log_file, "%s", p.log_file) >= (int)sizeof st->log_file)
        return db_errorf(DB_ERR_INVALID, err, errlen, "var folder path is too long: %s", p.var);
    st->initialized = file_exists(p.data, "PG_VERSION");
    st->pid = st->initialized ? running_pid(p.data) : 0;
    st->running = st->pid > 0;
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                           */
/* ------------------------------------------------------------------------ */

/* Hold VAR/pg/cluster.lock; returns the descriptor (close() releases). */
static int lock_cluster(const paths_t *p, char *err, size_t errlen)
{
    int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        db_errorf(DB_ERR_IO, err, errlen, "cannot open %s: %s", p->lock, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX)) {
        if (errno == EINTR) continue;
        db_errorf(DB_ERR_IO, err, errlen, "cannot lock %s: %s", p->lock, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Copy the last line of the server log that says why it stopped (FATAL or
 * PANIC), or else its last line, into buf. */
static void log_reason(const char *log_file, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(log_file, "rb");
    if (!f) return;
    char tail[8192];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0;
    size_t n = 0;
    if (size >= 0 && fseek(f, from, SEEK_SET) == 0) n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    const char *best = NULL, *last = NULL;
    for (char *line = tail; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (*line) last = line;
        if (strstr(line, "FATAL:") || strstr(line, "PANIC:")) best = line;
        line = nl ? nl + 1 : NULL;
    }
    const char *line = best ? best : last;
    if (!line || !len) return;
    size_t keep = strlen(line) < len ? strlen(line) : len - 1; /* a long line is cut */
    memcpy(buf, line, keep);
    buf[keep] = '\0';
}

static db_err_t run_initdb(const paths_t *p, const runas_t *ra, const char *bindir, char *err,
                           size_t errlen)
{
    char prog[PATHLEN];
    const char *log = p->initdb_log;
    if (snprintf(prog, sizeof prog, "%s/initdb", bindir) >= (int)sizeof prog)
        return db_errorf(DB_ERR_INVALID, err, errlen, "path too long: %s", bindir);
    const char *argv[] = {prog,     "-D",        p->data, "--auth=trust", "-U", DBI_CLUSTER_NAME,
                          "-E",     "UTF8",      "--locale=C", NULL};
    cmd_t c = {.argv = argv, .runas = ra, .cwd = p->pg, .log_path = log};
    db_err_t rc = cmd_run(&c, err, errlen);
    if (rc != DB_OK) return rc;
    if (c.status == 0) return DB_OK;
    return db_errorf(DB_ERR_CLUSTER, err, errlen,
                     "cannot create the database cluster in %s: %.*s\n"
                     "detail: initdb exited with status %d.\n"
                     "hint: see %s",
                     p->data, first_line(c.out), c.out, c.status, log);
}

/* data/earmark.conf, rewritten at every start, included from
 * postgresql.conf. */
static db_err_t write_config(const paths_t *p, const runas_t *ra, char *err, size_t errlen)
{
    char conf[2 * PATHLEN + 1024], quoted[2 * PATHLEN];
    size_t q = 0;
    for (const char *s = p->pg; *s && q + 2 < sizeof quoted; s++) {
        if (*s == '\'') quoted[q++] = '\'';
        quoted[q++] = *s;
    }
    quoted[q] = '\0';
    snprintf(conf, sizeof conf,
             "# earmark.conf -- the private cluster's settings, rewritten by\n"
             "# `earmark db start` at every start: local changes belong in\n"
             "# postgresql.auto.conf (ALTER SYSTEM), which is read after this file.\n"
             "listen_addresses = ''\t\t# Unix socket only\n"
             "port = %d\n"
             "unix_socket_directories = '%s'\n"
             "unix_socket_permissions = 0700\n"
             "max_connections = 100\n"
             "shared_buffers = 256MB\n"
             "fsync = on\n"
             "synchronous_commit = on\n"
             "full_page_writes = on\n"
             "wal_level = minimal\t\t# no replicas of a private cluster: a table made\n"
             "max_wal_senders = 0\t\t# and filled in one transaction skips the WAL\n"
             "max_wal_size = 4GB\t\t# bulk loads checkpoint less often\n"
             "logging_collector = off\t\t# pg_ctl -l writes log/postgres.log\n"
             "log_line_prefix = '%%m [%%p] %%q%%u@%%d '\n"
             "log_min_duration_statement = 1000\t# ms\n",
             DBI_CLUSTER_PORT, quoted);
    db_err_t rc = write_file(p->conf, conf, ra, err, errlen);
    if (rc != DB_OK) return rc;

    static const char INCLUDE[] = "include_if_exists = 'earmark.conf'";
    const char *path = p->pgconf;
    size_t len = 0;
    char *pgconf = read_small(path, 1 << 20, &len);
    if (!pgconf) return db_errorf(DB_ERR_IO, err, errlen, "cannot read %s: %s", path, strerror(errno));
    if (strstr(pgconf, INCLUDE)) {
        free(pgconf);
        return DB_OK;
    }
    size_t need = len + sizeof INCLUDE + 64;
    char *next = malloc(need);
    if (!next) {
        free(pgconf);
        return db_errorf(DB_ERR_NOMEM, err, errlen, "out of memory");
    }
    snprintf(next, need, "%s%s%s\t# earmark's settings\n", pgconf,
             len && pgconf[len - 1] != '\n' ? "\n" : "", INCLUDE);
    free(pgconf);
    rc = write_file(path, next, ra, err, errlen);
    free(next);
    return rc;
}

static db_err_t run_pg_ctl_start(const paths_t *p, const runas_t *ra, const char *bindir,
                                 char *err, size_t errlen)
{
    char prog[PATHLEN];
    const char *log = p->pg_ctl_log;
    if (snprintf(prog, sizeof prog, "%s/pg_ctl", bindir) >= (int)sizeof prog)
        return db_errorf(DB_ERR_INVALID, err, errlen, "path too long: %s", bindir);
    const char *argv[] = {prog, "start", "-w", "-t", "60", "-D", p->data, "-l", p->log_file, NULL};
    cmd_t c = {.argv = argv, .runas = ra, .cwd = p->pg, .log_path = log};
    db_err_t rc = cmd_run(&c, err, errlen);
    if (rc != DB_OK) return rc;
    if (c.status == 0) return DB_OK;
    char reason[512];
    log_reason(p->log_file, reason, sizeof reason);
    return db_errorf(DB_ERR_CLUSTER, err, errlen,
                     "cannot start the database server: %.*s\n"
                     "detail: %s\n"
                     "hint: see %s",
                     first_line(c.out), c.out, reason[0] ? reason : "the server wrote no log",
                     p->log_file);
}

/* Create the database "earmark" when missing. */
static db_err_t ensure_database(const paths_t *p, char *err, size_t errlen)
{
    char conninfo[PATHLEN + 128];
    db_err_t rc = dbi_cluster_conninfo(p->var, "postgres", conninfo, sizeof conninfo);
    if (rc != DB_OK) return db_errorf(rc, err, errlen, "var folder path is too long: %s", p->var);
    PGconn *pg = NULL;
    rc = dbi_connect_pg(conninfo, NULL, &pg, err, errlen);
    if (rc != DB_OK) return rc;
    PGresult *res = PQexec(pg, "SELECT 1 FROM pg_database WHERE datname = '" DBI_CLUSTER_NAME "'");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen, "cannot list the databases");
    } else if (PQntuples(res) == 0) {
        PQclear(res);
        res = PQexec(pg, "CREATE DATABASE " DBI_CLUSTER_NAME);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        /* 42P04: created by another process meanwhile. */
        if ((!res || PQresultStatus(res) != PGRES_COMMAND_OK) && !(state && !strcmp(state, "42P04")))
            rc = dbi_pg_error(DB_ERR_QUERY, pg, res, err, errlen,
                              "cannot create the database " DBI_CLUSTER_NAME);
    }
    PQclear(res);
    PQfinish(pg);
    return rc;
}

/* Folders, user and lock: what start and stop both need.  *lockfd >= 0 on
 * success. */
static db_err_t prepare(const paths_t *p, runas_t *ra, int create, int *lockfd, char *err,
                        size_t errlen)
{
    db_err_t rc;
    *lockfd = -1;
    if ((rc = resolve_runas(ra, err, errlen)) != DB_OK) return rc;
    /* Refuse an unreachable folder before creating anything in it. */
    if (ra->other && (rc = check_reachable(p, ra, 1, err, errlen)) != DB_OK) return rc;
    if (create) {
        if ((rc = make_dirs(p->var, err, errlen)) != DB_OK) return rc;
        if ((rc = make_dir(p->pg, 0700, err, errlen)) != DB_OK) return rc;
        if ((rc = make_dir(p->log_dir, 0700, err, errlen)) != DB_OK) return rc;
    }
    struct stat st;
    if (stat(p->pg, &st))
        return db_errorf(DB_ERR_IO, err, errlen, "cannot examine %s: %s", p->pg, strerror(errno));
    if (ra->other) {
        if ((rc = check_reachable(p, ra, 0, err, errlen)) != DB_OK) return rc;
    } else if (st.st_uid != ra->uid) {
        struct passwd pw, *owner = NULL;
        char buf[4096];
        getpwuid_r(st.st_uid, &pw, buf, sizeof buf, &owner);
        char who[64];
        if (owner) snprintf(who, sizeof who, "%s", owner->pw_name);
        else snprintf(who, sizeof who, "uid %ld", (long)st.st_uid);
        return db_errorf(DB_ERR_CLUSTER, err, errlen,
                         "the database folder %s belongs to the user %s\n"
                         "hint: run this as %s (or as root, which runs the cluster as the user "
                         "%s), or set EARMARK_VAR to a folder of your own",
                         p->pg, who, who, DBI_CLUSTER_NAME);
    }
    *lockfd = lock_cluster(p, err, errlen);
    return *lockfd < 0 ? DB_ERR_IO : DB_OK;
}

db_err_t db_cluster_start(const char *var_dir, char *err, size_t errlen)
{
    paths_t p;
    runas_t ra;
    char bindir[PATHLEN];
    int lockfd = -1;
    db_err_t rc = paths_init(var_dir, &p, err, errlen);
    if (rc != DB_OK) return rc;
    if ((rc = check_socket_len(&p, err, errlen)) != DB_OK) return rc;
    if ((rc = prepare(&p, &ra, 1, &lockfd, err, errlen)) != DB_OK) goto out;

    if (!running_pid(p.data)) {
        if ((rc = find_bindir(bindir, sizeof bindir, err, errlen)) != DB_OK) goto out;
        if (!file_exists(p.data, "PG_VERSION")) {
            DIR *d = opendir(p.data);
            int entries = 0;
            for (struct dirent *e; d && (e = readdir(d));)
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
            if (d) closedir(d);
            if (entries) {
                rc = db_errorf(DB_ERR_CLUSTER, err, errlen,
                               "%s exists but holds no database cluster\n"
                               "hint: move it away; `earmark db start` then creates a new, "
                               "empty cluster",
                               p.data);
                goto out;
            }
            if (ra.other && (rc = chown_tree(p.pg, &ra, 0, err, errlen)) != DB_OK) goto out;
            if ((rc = run_initdb(&p, &ra, bindir, err, errlen)) != DB_OK) goto out;
        }
        if ((rc = write_config(&p, &ra, err, errlen)) != DB_OK) goto out;
        if (ra.other && (rc = chown_tree(p.pg, &ra, 0, err, errlen)) != DB_OK) goto out;
        if ((rc = run_pg_ctl_start(&p, &ra, bindir, err, errlen)) != DB_OK) goto out;
    }
    rc = ensure_database(&p, err, errlen);
out:
    if (lockfd >= 0) close(lockfd);
    return rc;
}

db_err_t db_cluster_stop(const char *var_dir, char *err, size_t errlen)
{
    paths_t p;
    runas_t ra;
    char bindir[PATHLEN], prog[PATHLEN];
    int lockfd = -1;
    db_err_t rc = paths_init(var_dir, &p, err, errlen);
    if (rc != DB_OK) return rc;
    if (!running_pid(p.data)) return DB_OK;
    if ((rc = prepare(&p, &ra, 0, &lockfd, err, errlen)) != DB_OK) goto out;
    if (!running_pid(p.data)) goto out; /* stopped while we waited for the lock */
    if ((rc = find_bindir(bindir, sizeof bindir, err, errlen)) != DB_OK) goto out;
    if (snprintf(prog, sizeof prog, "%s/pg_ctl", bindir) >= (int)sizeof prog) {
        rc = db_errorf(DB_ERR_INVALID, err, errlen, "path too long: %s", bindir);
        goto out;
    }
    const char *argv[] = {prog, "stop", "-w", "-t", "60", "-m", "fast", "-D", p.data, NULL};
    cmd_t c = {.argv = argv, .runas = &ra, .cwd = p.pg, .log_path = p.pg_ctl_log};
    if ((rc = cmd_run(&c, err, errlen)) != DB_OK) goto out;
    if (c.status != 0 && running_pid(p.data))
        rc = db_errorf(DB_ERR_CLUSTER, err, errlen,
                       "cannot stop the database server: %.*s\n"
                       "detail: pg_ctl exited with status %d.\n"
                       "hint: see %s",
                       first_line(c.out), c.out, c.status, p.log_file);
out:
    if (lockfd >= 0) close(lockfd);
    return rc;
}
