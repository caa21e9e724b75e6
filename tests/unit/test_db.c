/*
 * test_db.c -- the PostgreSQL plumbing against a real private cluster in a
 * scratch var folder (never ./var): creating and starting it, idempotent
 * start and stop, migrations (once only, checksums, concurrent migrators, a
 * failing file, a schema newer than the build), the catalog's constraints,
 * connecting with retry while the server is down or coming up, and a
 * connection that survives a server restart through db_ping().
 *
 * The tests run in order and share the cluster.  It is stopped at exit, and
 * also by a guard process should this one die without running its exit
 * handlers (a crash, a sanitizer report, the alarm).
 *
 * Works as root (the cluster then runs as the user earmark, which must be
 * able to enter the scratch folder: it is made 0711) and as any other user.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "em_db.h"
#include "testlib.h"

static char var_dir[1024];   /* the scratch cluster's var folder */
static char conninfo[2048];  /* its database "earmark" */
static char scratch[2100];   /* its database "earmark_scratch" */
static char sql_dir[1024];   /* the project's migrations */
static int n_sql;            /* how many there are */
static db_conn_t *kept;      /* a connection that lives across a restart */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void stop_at_exit(void)
{
    db_close(kept);
    kept = NULL;
    char err[1024];
    if (db_cluster_stop(var_dir, err, sizeof err) != DB_OK)
        fprintf(stderr, "test_db: cannot stop the scratch cluster: %s\n", err);
}

/* ------------------------------------------------------------------------ */

static void test_errors(void)
{
    for (int e = 0; e <= DB_ERR_CORRUPT; e++) {
        CHECK(db_strerror((db_err_t)e) && *db_strerror((db_err_t)e));
        CHECK(db_errname((db_err_t)e) && *db_errname((db_err_t)e));
    }
    CHECK(!strcmp(db_errname(DB_ERR_CONNECT), "connect"));
    CHECK(!strcmp(db_errname(DB_ERR_SCHEMA), "schema"));
    CHECK(!strcmp(db_strerror((db_err_t)999), "unknown error"));
    db_close(NULL);
    CHECK(db_pg(NULL) == NULL);
}

/* Set or (value NULL) unset an environment variable. */
static void env(const char *name, const char *value)
{
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

static void test_conninfo_resolve(void)
{
    static const char *const names[] = {"EARMARK_DB", "EARMARK_VAR", "PGHOST", "PGHOSTADDR",
                                        "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"};
    enum { N = sizeof names / sizeof names[0] };
    char *saved[N];
    for (int i = 0; i < N; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    char buf[2048], cwd[1024], want[2048];
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);

    CHECK(db_conninfo_resolve(buf, sizeof buf) == DB_OK);
    snprintf(want, sizeof want, "host='%s/var/pg' port=5432 dbname=earmark user=earmark", cwd);
    CHECK(!strcmp(buf, want), "default: got %s, want %s", buf, want);

    env("EARMARK_VAR", "./x/./y//");
    CHECK(db_var_dir_resolve(buf, sizeof buf) == DB_OK);
    snprintf(want, sizeof want, "%s/x/y", cwd);
    CHECK(!strcmp(buf, want), "relative EARMARK_VAR: got %s, want %s", buf, want);

    env("EARMARK_VAR", "/srv/it's");
    CHECK(db_conninfo_resolve(buf, sizeof buf) == DB_OK);
    CHECK(!strcmp(buf, "host='/srv/it\\'s/pg' port=5432 dbname=earmark user=earmark"),
          "quoting: %s", buf);
    CHECK(db_conninfo_resolve(buf, 20) == DB_ERR_INVALID, "a short buffer is an error");

    env("PGHOST", "");
    CHECK(db_conninfo_resolve(buf, sizeof buf) == DB_OK && buf[0] == 'h',
          "an empty PGHOST counts as unset: %s", buf);
    env("PGDATABASE", "other");
    CHECK(db_conninfo_resolve(buf, sizeof buf) == DB_OK && buf[0] == '\0',
          "PG* set: libpq's own defaults, got '%s'", buf);

    env("EARMARK_DB", "postgresql://db.example/earmark");
    CHECK(db_conninfo_resolve(buf, sizeof buf) == DB_OK &&
          !strcmp(buf, "postgresql://db.example/earmark"), "EARMARK_DB wins: %s", buf);

    for (int i = 0; i < N; i++) {
        env(names[i], saved[i]);
        free(saved[i]);
    }
}

static void test_bad_conninfo(void)
{
    db_conn_t *c = (db_conn_t *)1;
    char err[1024] = "";
    CHECK(db_connect("host=/nowhere port=notanumber bogus_keyword=1", &c, err, sizeof err) ==
          DB_ERR_INVALID, "%s", err);
    CHECK(c == NULL);
    CHECK(strstr(err, "bogus_keyword") != NULL, "names the bad keyword: %s", err);
}

static void test_start_fresh(void)
{
    db_cluster_status_t st;
    char err[2048];
    REQUIRE(db_cluster_status(var_dir, &st, err, sizeof err) == DB_OK, "%s", err);
    CHECK(!st.initialized && !st.running && st.pid == 0);

    double t0 = now();
    db_err_t rc = db_cluster_start(var_dir, err, sizeof err);
    double t = now() - t0;
    REQUIRE(rc == DB_OK, "%s: %s", db_errname(rc), err);
    fprintf(stderr, "# initdb + start: %.2f s\n", t);

    REQUIRE(db_cluster_status(var_dir, &st, err, sizeof err) == DB_OK, "%s", err);
    CHECK(st.initialized && st.running && st.pid > 0);
    struct stat sb;
    CHECK(stat(st.socket, &sb) == 0 && S_ISSOCK(sb.st_mode), "no socket at %s", st.socket);
    CHECK(strstr(st.socket, var_dir) == st.socket && strstr(st.socket, "/pg/.s.PGSQL.5432"),
          "%s", st.socket);
    CHECK(stat(st.log_file, &sb) == 0, "no server log at %s", st.log_file);
    CHECK(stat(st.pg_dir, &sb) == 0 && (sb.st_mode & 077) == 0,
          "%s must be private (0700), is %04o", st.pg_dir, (unsigned)(sb.st_mode & 07777));
}

static void test_start_again_is_noop(void)
{
    db_cluster_status_t before, after;
    char err[2048];
    REQUIRE(db_cluster_status(var_dir, &before, err, sizeof err) == DB_OK, "%s", err);
    double t0 = now();
    CHECK(db_cluster_start(var_dir, err, sizeof err) == DB_OK, "%s", err);
    double t = now() - t0;
    REQUIRE(db_cluster_status(var_dir, &after, err, sizeof err) == DB_OK, "%s", err);
    CHECK(after.running && after.pid == before.pid, "pid %ld -> %ld", before.pid, after.pid);
    CHECK(t < 2.0, "starting a running cluster took %.2f s", t);
}

/* A server that answers and refuses (no such database) is not waited for. */
static void test_connect_refused(void)
{
    char ci[2200], err[2048];
    snprintf(ci, sizeof ci, "%s dbname=no_such_database", conninfo);
    db_conn_t *c = NULL;
    double t0 = now();
    db_err_t rc = db_connect(ci, &c, err, sizeof err);
    CHECK(rc == DB_ERR_CONNECT && c == NULL, "%s", db_errname(rc));
    CHECK(now() - t0 < 2.0, "took %.2f s: a refusal must not be retried for long", now() - t0);
    CHECK(strstr(err, "no_such_database") && strstr(err, "refused the session"), "%s", err);
}

static void test_migrate(void)
{
    char err[2048];
    db_err_t rc = db_connect(conninfo, &kept, err, sizeof err);
    REQUIRE(rc == DB_OK, "%s: %s", db_errname(rc), err);
    int version = -1, applied = -1;
    CHECK(db_schema_version(kept, &version, err, sizeof err) == DB_OK && version == 0,
          "fresh database: version %d %s", version, err);
    CHECK(db_schema_check(kept, DB_SCHEMA_VERSION, err, sizeof err) == DB_ERR_SCHEMA);
    CHECK(strstr(err, "earmark db migrate") != NULL, "hint to migrate: %s", err);

    rc = db_migrate(kept, sql_dir, &applied, err, sizeof err);
    CHECK(rc == DB_OK && applied == n_sql, "%s: applied %d of %d: %s", db_errname(rc), applied,
          n_sql, err);
    rc = db_migrate(kept, sql_dir, &applied, err, sizeof err);
    CHECK(rc == DB_OK && applied == 0, "again: %s, applied %d: %s", db_errname(rc), applied, err);
    CHECK(db_schema_version(kept, &version, err, sizeof err) == DB_OK && version == n_sql,
          "version %d, want %d", version, n_sql);
    CHECK(version == DB_SCHEMA_VERSION,
          "sql/ ends at %d but DB_SCHEMA_VERSION is %d: bump it with each migration", version,
          DB_SCHEMA_VERSION);
    CHECK(db_schema_check(kept, DB_SCHEMA_VERSION, err, sizeof err) == DB_OK, "%s", err);
    CHECK(db_schema_check(kept, DB_SCHEMA_VERSION + 1, err, sizeof err) == DB_ERR_SCHEMA);
    CHECK(db_schema_check(kept, DB_SCHEMA_VERSION - 1, err, sizeof err) == DB_ERR_SCHEMA);
    CHECK(strstr(err, "newer than this build") != NULL, "%s", err);
}

static void test_catalog(void)
{
    char err[2048];
    REQUIRE(kept);
    CHECK(db_exec(kept,
                  "BEGIN;"
                  "INSERT INTO tenants (name) VALUES ('label');"
                  "INSERT INTO tracks (tenant_id, title, sha256, params_version, config_id)"
                  " SELECT id, 'a', sha256('a'), 1, 4294967295 FROM tenants;"
                  "COMMIT",
                  err, sizeof err) == DB_OK,
          "%s", err);
    /* A digest that is not 32 bytes, an unknown status, the same file twice. */
    CHECK(db_exec(kept,
                  "INSERT INTO tracks (tenant_id, sha256, params_version, config_id)"
                  " SELECT id, '\\x00', 1, 1 FROM tenants",
                  err, sizeof err) == DB_ERR_QUERY);
    CHECK(strstr(err, "23514") != NULL, "check_violation: %s", err);
    CHECK(db_exec(kept, "UPDATE tracks SET status = 'lost'", err, sizeof err) == DB_ERR_QUERY);
    CHECK(db_exec(kept,
                  "INSERT INTO tracks (tenant_id, sha256, params_version, config_id)"
                  " SELECT id, sha256('a'), 1, 1 FROM tenants",
                  err, sizeof err) == DB_ERR_QUERY);
    CHECK(strstr(err, "23505") != NULL, "unique_violation: %s", err);
    CHECK(db_exec(kept, "INSERT INTO index_runs (tenant_id) SELECT id FROM tenants;"
                        "INSERT INTO index_failures (run_id, path, reason)"
                        " SELECT id, '/x.ogg', 'unsupported' FROM index_runs;"
                        "DELETE FROM index_runs",
                  err, sizeof err) == DB_OK,
          "failures go with their run: %s", err);

    PGresult *res = PQexec(db_pg(kept), "UPDATE tracks SET status = 'indexed' "
                                        "RETURNING updated_at > created_at");
    CHECK(res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
          !strcmp(PQgetvalue(res, 0, 0), "t"), "updated_at follows updates");
    PQclear(res);
}

static void test_exec_errors(void)
{
    char err[2048];
    REQUIRE(kept);
    CHECK(db_exec(kept, "SELEC 1", err, sizeof err) == DB_ERR_QUERY);
    CHECK(strstr(err, "syntax error") && strstr(err, "42601"), "%s", err);
    /* A failed transaction: the connection is still alive. */
    CHECK(db_exec(kept, "BEGIN; SELECT 1/0", err, sizeof err) == DB_ERR_QUERY);
    CHECK(db_ping(kept, err, sizeof err) == DB_OK, "ping in a failed transaction: %s", err);
    CHECK(PQtransactionStatus(db_pg(kept)) == PQTRANS_INERROR, "the transaction was kept");
    CHECK(db_exec(kept, "ROLLBACK", err, sizeof err) == DB_OK, "%s", err);
    CHECK(db_migrate(kept, "/nonexistent/sql", NULL, err, sizeof err) == DB_ERR_IO);
}

/* "SELECT $1::int + 1", prepared as "t_add": the value, or -1 on error. */
static int add_one(db_conn_t *c, const char *v, char *err, size_t errlen)
{
    const char *p[1] = {v};
    PGresult *res = NULL;
    if (db_query_prepared(c, "t_add", "SELECT $1::int + 1", 1, p, 0, &res, err, errlen) != DB_OK)
        return -1;
    int x = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return x;
}

/* Prepared statements: run by name again and again; prepared anew when
 * the session forgot them; a statement that does not parse is an error. */
static void test_prepared(void)
{
    char err[2048];
    REQUIRE(kept);
    CHECK(add_one(kept, "41", err, sizeof err) == 42, "%s", err);
    CHECK(add_one(kept, "1", err, sizeof err) == 2, "%s", err);
    CHECK(db_exec(kept, "DEALLOCATE ALL", err, sizeof err) == DB_OK, "%s", err);
    CHECK(add_one(kept, "2", err, sizeof err) == 3, "after DEALLOCATE ALL: %s", err);
    PGresult *res = NULL;
    CHECK(db_query_prepared(kept, "t_bad", "SELEC 1", 0, NULL, 0, &res, err, sizeof err) ==
              DB_ERR_QUERY && !res && strstr(err, "syntax error"),
          "%s", err);
    CHECK(add_one(kept, "x", err, sizeof err) == -1 && strstr(err, "22P02"), "%s", err);
}

typedef struct migrator {
    int applied;
    db_err_t rc;
    char err[1024];
} migrator_t;

static void *migrate_thread(void *arg)
{
    migrator_t *m = arg;
    db_conn_t *c = NULL;
    m->rc = db_connect(scratch, &c, m->err, sizeof m->err);
    if (m->rc == DB_OK) m->rc = db_migrate(c, sql_dir, &m->applied, m->err, sizeof m->err);
    db_close(c);
    return NULL;
}

static void test_migrate_concurrent(void)
{
    char err[2048];
    REQUIRE(kept);
    REQUIRE(db_exec(kept, "CREATE DATABASE earmark_scratch", err, sizeof err) == DB_OK, "%s", err);
    migrator_t m[3];
    pthread_t t[3];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) REQUIRE(pthread_create(&t[i], NULL, migrate_thread, &m[i]) == 0);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        CHECK(m[i].rc == DB_OK, "migrator %d: %s: %s", i, db_errname(m[i].rc), m[i].err);
        total += m[i].applied;
    }
    CHECK(total == n_sql, "three migrators at once applied %d migrations, want %d", total,
          n_sql);
}

/* A copy of the migrations in a new folder of the scratch area. */
static void copy_sql(const char *name, char *dir, size_t len)
{
    snprintf(dir, len, "%s/%s", test_tmpdir(), name);
    CHECK(test_sh("rm -rf '%s' && cp -r '%s' '%s'", dir, sql_dir, dir) == 0);
}

static void test_migrate_failing_file(void)
{
    char dir[1024], err[2048];
    db_conn_t *c = NULL;
    REQUIRE(db_connect(scratch, &c, err, sizeof err) == DB_OK, "%s", err);
    copy_sql("sql-bad", dir, sizeof dir);
    test_sh("printf 'CREATE TABLE kept_if_broken (x int);\\n\\nSELECT nope FROM;\\n' "
            "> '%s/900_broken.sql'", dir);
    int applied = -1;
    CHECK(db_migrate(c, dir, &applied, err, sizeof err) == DB_ERR_QUERY && applied == 0,
          "applied %d: %s", applied, err);
    CHECK(strstr(err, "900_broken.sql failed at line 3"), "names the file and line: %s", err);
    int version = 0;
    CHECK(db_schema_version(c, &version, err, sizeof err) == DB_OK && version == n_sql,
          "a failed migration is not recorded: version %d", version);
    PGresult *res = PQexec(db_pg(c), "SELECT to_regclass('kept_if_broken') IS NULL");
    CHECK(res && PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t"),
          "nothing of a failed migration is kept");
    PQclear(res);

    test_sh("rm -f '%s/900_broken.sql' && echo 'SELECT 1;' > '%s/02-dash.sql'", dir, dir);
    CHECK(db_migrate(c, dir, &applied, err, sizeof err) == DB_ERR_INVALID, "bad name: %s", err);
    test_sh("rm -f '%s/02-dash.sql' && echo 'COMMIT;' > '%s/900_commit.sql'", dir, dir);
    CHECK(db_migrate(c, dir, &applied, err, sizeof err) == DB_ERR_INVALID &&
          strstr(err, "ends the transaction"), "%s", err);
    db_close(c);
}

static void test_migrate_newer_schema(void)
{
    char dir[1024], err[2048];
    db_conn_t *c = NULL;
    REQUIRE(db_connect(scratch, &c, err, sizeof err) == DB_OK, "%s", err);
    copy_sql("sql-newer", dir, sizeof dir);
    test_sh("echo 'CREATE TABLE later (x int);' > '%s/901_later.sql'", dir);
    int applied = -1, version = 0;
    CHECK(db_migrate(c, dir, &applied, err, sizeof err) == DB_OK && applied == 1, "%s", err);
    CHECK(db_schema_version(c, &version, err, sizeof err) == DB_OK && version == 901);
    CHECK(db_schema_check(c, DB_SCHEMA_VERSION, err, sizeof err) == DB_ERR_SCHEMA);
    /* The build's own migrations lack 901: this build is older. */
    CHECK(db_migrate(c, sql_dir, &applied, err, sizeof err) == DB_ERR_SCHEMA && applied == 0,
          "%s", err);
    CHECK(strstr(err, "901") && strstr(err, "not in"), "%s", err);
    db_close(c);
}

static void test_migrate_tampered(void)
{
    char dir[1024], err[2048];
    REQUIRE(kept);
    copy_sql("sql-tampered", dir, sizeof dir);
    CHECK(test_sh("echo '-- a late edit' >> '%s/001_catalog.sql'", dir) == 0);
    int applied = -1;
    db_err_t rc = db_migrate(kept, dir, &applied, err, sizeof err);
    CHECK(rc == DB_ERR_SCHEMA && applied == 0, "%s, applied %d: %s", db_errname(rc), applied,
          err);
    CHECK(strstr(err, "001_catalog.sql") && strstr(err, "checksum"), "%s", err);
    CHECK(strstr(err, "hint: "), "with a hint: %s", err);
}

static void test_connect_while_stopped(void)
{
    char err[2048];
    REQUIRE(kept);
    REQUIRE(db_cluster_stop(var_dir, err, sizeof err) == DB_OK, "%s", err);
    db_cluster_status_t st;
    CHECK(db_cluster_status(var_dir, &st, err, sizeof err) == DB_OK && !st.running);

    /* A statement on a connection the server closed is "try again", not a
     * query error. */
    db_err_t rc = db_exec(kept, "SELECT 1", err, sizeof err);
    CHECK(rc == DB_ERR_CONNECT, "%s: %s", db_errname(rc), err);
    CHECK(db_ping(kept, err, sizeof err) == DB_ERR_CONNECT, "ping with the server down");
    db_connect_opts_t opts;
    db_connect_opts_default(&opts);
    opts.max_wait_s = 1.5;
    db_conn_t *c = (db_conn_t *)1;
    double t0 = now();
    rc = db_connect_opts(conninfo, &opts, &c, err, sizeof err);
    double t = now() - t0;
    CHECK(rc == DB_ERR_CONNECT && c == NULL, "%s", db_errname(rc));
    CHECK(t >= 1.4 && t < 3.0, "gave up after %.2f s, configured 1.5 s", t);
    CHECK(strstr(err, "earmark db start"), "hint: %s", err);
    fprintf(stderr, "# while stopped (%.2f s): %s\n", t, err);

    opts.max_attempts = 1;
    opts.max_wait_s = 30;
    t0 = now();
    CHECK(db_connect_opts(conninfo, &opts, &c, err, sizeof err) == DB_ERR_CONNECT);
    CHECK(now() - t0 < 1.0, "one attempt only: %.2f s", now() - t0);
}

static void test_ping_after_restart(void)
{
    char err[2048];
    REQUIRE(kept);
    double t0 = now();
    REQUIRE(db_cluster_start(var_dir, err, sizeof err) == DB_OK, "%s", err);
    fprintf(stderr, "# start of an existing cluster: %.2f s\n", now() - t0);
    db_conn_t *same = kept;
    CHECK(db_ping(kept, err, sizeof err) == DB_OK, "%s", err);
    CHECK(kept == same);
    int version = 0;
    CHECK(db_schema_version(kept, &version, err, sizeof err) == DB_OK && version == n_sql,
          "after reconnecting: version %d %s", version, err);
    CHECK(add_one(kept, "6", err, sizeof err) == 7, "a prepared statement after reconnecting: %s",
          err);
}

static void *start_later(void *arg)
{
    char *err = arg;
    usleep(1000 * 1000);
    if (db_cluster_start(var_dir, err, 1024) != DB_OK) return err;
    return NULL;
}

static void test_connect_waits_for_start(void)
{
    char err[2048], start_err[1024] = "";
    REQUIRE(db_cluster_stop(var_dir, err, sizeof err) == DB_OK, "%s", err);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, start_later, start_err) == 0);
    db_connect_opts_t opts;
    db_connect_opts_default(&opts);
    opts.max_wait_s = 20;
    db_conn_t *c = NULL;
    double t0 = now();
    db_err_t rc = db_connect_opts(conninfo, &opts, &c, err, sizeof err);
    double waited = now() - t0;
    void *thread_rc = NULL;
    pthread_join(t, &thread_rc);
    CHECK(thread_rc == NULL, "start: %s", start_err);
    CHECK(rc == DB_OK, "%s: %s", db_errname(rc), err);
    CHECK(waited >= 0.9, "connected after %.2f s, before the server started?", waited);
    fprintf(stderr, "# connected %.2f s after the server was asked to start 1 s in\n", waited);
    db_close(c);
}

static void test_stop_twice(void)
{
    char err[2048];
    db_cluster_status_t st;
    CHECK(db_cluster_stop(var_dir, err, sizeof err) == DB_OK, "%s", err);
    CHECK(db_cluster_status(var_dir, &st, err, sizeof err) == DB_OK && st.initialized &&
          !st.running);
    double t0 = now();
    CHECK(db_cluster_stop(var_dir, err, sizeof err) == DB_OK, "%s", err);
    CHECK(now() - t0 < 0.5, "stopping a stopped cluster took %.2f s", now() - t0);
    CHECK(db_cluster_stop("/nonexistent/earmark-var", err, sizeof err) == DB_OK,
          "stopping a cluster that was never created: %s", err);
}

/* As root, a var folder behind a folder closed to others is refused with a
 * message that names it and says what to do. */
static void test_unreachable_as_root(void)
{
    if (geteuid() != 0) return;
    char closed[1024], var[1100], err[2048];
    snprintf(closed, sizeof closed, "%s/closed", test_tmpdir());
    snprintf(var, sizeof var, "%s/var", closed);
    REQUIRE(mkdir(closed, 0700) == 0);
    db_err_t rc = db_cluster_start(var, err, sizeof err);
    CHECK(rc == DB_ERR_CLUSTER, "%s: %s", db_errname(rc), err);
    CHECK(strstr(err, closed) && strstr(err, "hint: ") && strstr(err, "chmod o+x"), "%s", err);
}

static void test_socket_path_too_long(void)
{
    char var[400], err[2048];
    snprintf(var, sizeof var, "%s/%0200d", test_tmpdir(), 0);
    CHECK(db_cluster_start(var, err, sizeof err) == DB_ERR_INVALID, "%s", err);
    CHECK(strstr(err, "too long"), "%s", err);
}

int main(void)
{
    alarm(300);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *tmp = test_tmpdir();
    /* As root the cluster runs as the user earmark, which must pass through
     * the scratch folder (mkdtemp makes it 0700). */
    if (chmod(tmp, 0711)) perror("chmod");
    snprintf(var_dir, sizeof var_dir, "%s/var", tmp);
    if (db_cluster_conninfo(var_dir, conninfo, sizeof conninfo) != DB_OK) return 2;
    /* In a conninfo string a repeated keyword takes the last value. */
    snprintf(scratch, sizeof scratch, "%s dbname=earmark_scratch", conninfo);
    if (db_sql_dir_resolve(sql_dir, sizeof sql_dir) != DB_OK) return 2;
    n_sql = test_sh("exit $(ls '%s'/[0-9]*_*.sql | wc -l)", sql_dir);
    test_db_guard(var_dir, tmp);
    atexit(stop_at_exit); /* after test_tmpdir(): runs before its removal */

    RUN(test_errors);
    RUN(test_conninfo_resolve);
    RUN(test_bad_conninfo);
    RUN(test_socket_path_too_long);
    RUN(test_unreachable_as_root);
    RUN(test_start_fresh);
    RUN(test_start_again_is_noop);
    RUN(test_connect_refused);
    RUN(test_migrate);
    RUN(test_catalog);
    RUN(test_exec_errors);
    RUN(test_prepared);
    RUN(test_migrate_concurrent);
    RUN(test_migrate_failing_file);
    RUN(test_migrate_newer_schema);
    RUN(test_migrate_tampered);
    RUN(test_connect_while_stopped);
    RUN(test_ping_after_restart);
    RUN(test_connect_waits_for_start);
    RUN(test_stop_twice);
    return test_main_end();
}
