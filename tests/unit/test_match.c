/*
 * test_match.c -- the matcher over the in-memory store, on real music:
 * a clean clip, a sped-up, a time-stretched and a pitch-shifted one are
 * found at the right place with the right kind of change and factor; a clip
 * of a recording not in the store finds nothing; a lookup in two parts
 * reports what one part does; copies of one recording in the store are
 * one match that lists them all; and the CLI says the same.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "earmark_fp.h"
#include "em_match.h"
#include "testlib.h"

static match_store_t *store;

static void build_store(void)
{
    char err[256];
    REQUIRE(match_memstore_new(&store) == FP_OK);
    for (int i = 0; i < 3; i++) {
        fp_result_t r;
        REQUIRE(fp_extract_path(test_corpus_file(i), NULL, NULL, &r, err, sizeof err) == FP_OK,
                "%s", err);
        CHECK(match_memstore_add(store, (uint32_t)i, r.prints, r.count) == FP_OK);
        fp_result_clear(&r);
    }
    CHECK(match_memstore_seal(store) == FP_OK);
    CHECK(match_memstore_size(store) > 10000);
    fp_print_t p = {0};
    CHECK(match_memstore_add(store, 9, &p, 1) == FP_ERR_INVALID, "no adding after sealing");
}

/* Make a clip of corpus file `src` with the sox effect, match it. */
static int run(int src, double start, const char *effect, match_result_t **m, size_t *n)
{
    const char *d = test_tmpdir();
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/clip.wav", d);
    if (test_sh("sox '%s' %s trim %.3f 10 %s 2>/dev/null", test_corpus_file(src), path, start,
                effect) != 0)
        return -1;
    fp_result_t r;
    if (fp_extract_path(path, NULL, NULL, &r, err, sizeof err) != FP_OK) return -1;
    fp_err_t rc = match_query(store, r.prints, r.count, NULL, m, n, NULL, err, sizeof err);
    fp_result_clear(&r);
    return rc == FP_OK ? 0 : -1;
}

static void test_clean(void)
{
    match_result_t *m;
    size_t n;
    REQUIRE(run(1, 40.0, "", &m, &n) == 0);
    REQUIRE(n >= 1);
    CHECK(m[0].track == 1 && m[0].change == MATCH_SAME, "track %u change %s", m[0].track,
          match_change_name(m[0].change));
    CHECK(fabs(m[0].ref_start - m[0].query_start - 40.0) < 0.1, "ref %.2f query %.2f",
          m[0].ref_start, m[0].query_start);
    CHECK(m[0].matched_seconds > 9.0 && m[0].frames > 100, "%.1f s, %u frames",
          m[0].matched_seconds, m[0].frames);
    CHECK(m[0].speed == 1.0);
    match_results_free(m, n);
}

static void test_speed(void)
{
    match_result_t *m;
    size_t n;
    REQUIRE(run(0, 25.0, "speed 1.08", &m, &n) == 0);
    REQUIRE(n >= 1);
    CHECK(m[0].track == 0 && m[0].change == MATCH_SPEED, "track %u change %s", m[0].track,
          match_change_name(m[0].change));
    CHECK(fabs(m[0].speed - 1.08) < 0.01 && fabs(m[0].pitch - 1.08) < 0.01, "speed %.4f pitch %.4f",
          m[0].speed, m[0].pitch);
    /* the reference position of query time 0 */
    CHECK(fabs(m[0].ref_start - m[0].speed * m[0].query_start - 25.0) < 0.3, "ref start %.2f",
          m[0].ref_start);
    match_results_free(m, n);
}

static void test_tempo(void)
{
    match_result_t *m;
    size_t n;
    REQUIRE(run(2, 30.0, "tempo 0.9", &m, &n) == 0);
    REQUIRE(n >= 1);
    CHECK(m[0].track == 2 && m[0].change == MATCH_TEMPO, "track %u change %s speed %.3f pitch %.3f",
          m[0].track, match_change_name(m[0].change), m[0].speed, m[0].pitch);
    CHECK(fabs(m[0].speed - 0.9) < 0.01, "speed %.4f", m[0].speed);
    match_results_free(m, n);
}

static void test_pitch(void)
{
    match_result_t *m;
    size_t n;
    REQUIRE(run(1, 60.0, "pitch 200", &m, &n) == 0);
    REQUIRE(n >= 1);
    CHECK(m[0].track == 1 && m[0].change == MATCH_PITCH, "track %u change %s speed %.3f pitch %.3f",
          m[0].track, match_change_name(m[0].change), m[0].speed, m[0].pitch);
    CHECK(fabs(m[0].pitch_semitones - 2.0) < 0.15, "%.2f semitones", m[0].pitch_semitones);
    match_results_free(m, n);
}

static void test_unknown(void)
{
    match_result_t *m;
    size_t n;
    REQUIRE(run(3, 20.0, "", &m, &n) == 0);
    CHECK(n == 0, "a recording not in the store matched %zu times (track %u, %u frames)", n,
          n ? m[0].track : 0, n ? m[0].frames : 0);
    match_results_free(m, n);
}

static void test_cli(void)
{
    const char *bin = getenv("EARMARK_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "  (earmark binary not found: CLI checks skipped)\n");
        return;
    }
    const char *d = test_tmpdir();
    REQUIRE(test_sh("sox '%s' %s/c.wav trim 25 10 speed 1.08 2>/dev/null", test_corpus_file(0),
                    d) == 0);
    CHECK(test_sh("'%s' match --json --ref '%s' --ref '%s' %s/c.wav > %s/m.json", bin,
                  test_corpus_file(1), test_corpus_file(0), d, d) == 0);
    CHECK(test_sh("grep -q '\"change\":\"speed\",\"speed\":1.0[78]' %s/m.json", d) == 0,
          "JSON reports the speed change");
    CHECK(test_sh("grep -q '\"confidence\":0.99[0-9]*\\|\"confidence\":1.0' %s/m.json", d) == 0,
          "JSON reports the match's confidence");
    CHECK(test_sh("'%s' match --json --max-chance 1e-300 --ref '%s' %s/c.wav | grep -q '\"matches\":\\[\\]'",
                  bin, test_corpus_file(0), d) == 0,
          "--max-chance 1e-300: no alignment is that rare by chance, nothing claimed");
    CHECK(test_sh("'%s' match --max-chance -1 %s/c.wav 2>/dev/null", bin, d) == 2,
          "a negative --max-chance is a usage error");
    CHECK(test_sh("'%s' match 2>/dev/null", bin) == 2, "no clip is a usage error");
    /* without --ref the clip goes to the catalog: with no database there,
     * a clear error and exit 1 */
    CHECK(test_sh("EARMARK_DB='host=%s/nodb connect_timeout=2' '%s' match %s/c.wav 2>%s/e.txt; "
                  "test $? -eq 1 && grep -q 'catalog' %s/e.txt", d, bin, d, d, d) == 0,
          "no database: exit 1 with a message");
    CHECK(test_sh("'%s' match --ref /nonexistent.ogg --ref '%s' %s/c.wav >/dev/null 2>&1", bin,
                  test_corpus_file(0), d) == 1,
          "a bad reference is reported, exit 1");
}

/* The prints of a clip made with sox (a shell command writing clip.wav
 * in the test directory, %s being its path). */
static int clip_prints(const char *cmd, fp_result_t *r)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/clip.wav", test_tmpdir());
    if (test_sh(cmd, path) != 0) return -1;
    return fp_extract_path(path, NULL, NULL, r, err, sizeof err) == FP_OK ? 0 : -1;
}

static int same_results(const match_result_t *a, size_t na, const match_result_t *b, size_t nb)
{
    if (!na && !nb) return 1;
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].track != b[i].track || a[i].frames != b[i].frames || a[i].prints != b[i].prints ||
            a[i].query_start != b[i].query_start || a[i].query_end != b[i].query_end ||
            a[i].ref_start != b[i].ref_start || a[i].offset != b[i].offset ||
            a[i].speed != b[i].speed || a[i].change != b[i].change ||
            !same_results(a[i].copies, a[i].ncopies, b[i].copies, b[i].ncopies))
            return 0;
    return 1;
}

/*
 * Match r in one part and in two (the first part a quarter of the clip's
 * hits): the results must be the same; *narrowed says whether the second
 * part was cut to the first part's matches, *kept1 and *kept2 how many
 * hits each lookup scored.
 */
static int both_ways(const fp_result_t *r, int *narrowed, size_t *kept1, size_t *kept2,
                     size_t *nres)
{
    char err[256];
    match_opts_t o;
    match_opts_default(&o);
    o.max_hits = 0;
    o.first_hits = 0;
    match_result_t *m1 = NULL, *m2 = NULL;
    size_t n1 = 0, n2 = 0;
    match_stats_t st1, st2;
    if (match_query(store, r->prints, r->count, &o, &m1, &n1, &st1, err, sizeof err) != FP_OK)
        return -1;
    o.first_hits = st1.hits / 4;
    if (match_query(store, r->prints, r->count, &o, &m2, &n2, &st2, err, sizeof err) != FP_OK) {
        match_results_free(m1, n1);
        return -1;
    }
    int same = same_results(m1, n1, m2, n2);
    *narrowed = st2.narrowed;
    *kept1 = st1.kept;
    *kept2 = st2.kept;
    *nres = n2;
    CHECK(!st1.narrowed, "one part is never narrowed");
    CHECK(st2.hits == st1.hits, "both parts fetch the whole budget: %zu, %zu", st2.hits, st1.hits);
    match_results_free(m1, n1);
    match_results_free(m2, n2);
    return same;
}

/*
 * A lookup in two parts (match_opts_t.first_hits): a clip of a catalog
 * recording is found in the first part, its second part fetched for that
 * recording only, with the same result as one part; a clip that is half
 * another recording, or not in the catalog at all, goes on in full.
 */
static void test_two_parts(void)
{
    char cmd[1024];
    fp_result_t r;
    int narrowed;
    size_t k1, k2, nres;

    snprintf(cmd, sizeof cmd, "sox '%s' %%s trim 40 10 2>/dev/null", test_corpus_file(1));
    REQUIRE(clip_prints(cmd, &r) == 0);
    CHECK(both_ways(&r, &narrowed, &k1, &k2, &nres) == 1, "same result in two parts");
    CHECK(narrowed && nres == 1, "a clean clip narrows (%d, %zu results)", narrowed, nres);
    CHECK(k2 < k1, "and scores fewer hits: %zu against %zu", k2, k1);
    fp_result_clear(&r);

    snprintf(cmd, sizeof cmd, "sox '%s' %%s trim 25 10 speed 1.08 2>/dev/null",
             test_corpus_file(0));
    REQUIRE(clip_prints(cmd, &r) == 0);
    CHECK(both_ways(&r, &narrowed, &k1, &k2, &nres) == 1, "same result, sped up");
    fp_result_clear(&r);

    /* 5 s of a catalog recording, then 5 s of one that is not: the first
     * part's match leaves half the clip uncovered */
    const char *d = test_tmpdir();
    snprintf(cmd, sizeof cmd,
             "sox '%s' %s/a.wav trim 40 5 rate 44100 channels 2 2>/dev/null && "
             "sox '%s' %s/b.wav trim 20 5 rate 44100 channels 2 2>/dev/null && "
             "sox %s/a.wav %s/b.wav %%s 2>/dev/null",
             test_corpus_file(1), d, test_corpus_file(3), d, d, d);
    REQUIRE(clip_prints(cmd, &r) == 0);    CHECK(both_ways(&r, &narrowed, &k1, &k2, &nres) == 1, "same result, half a recording");
    CHECK(!narrowed && nres == 1 && k1 == k2,
          "half a recording goes on in full (%d, %zu results, %zu / %zu hits)", narrowed, nres,
          k1, k2);
    fp_result_clear(&r);

    snprintf(cmd, sizeof cmd, "sox '%s' %%s trim 20 10 2>/dev/null", test_corpus_file(3));
    REQUIRE(clip_prints(cmd, &r) == 0);
    CHECK(both_ways(&r, &narrowed, &k1, &k2, &nres) == 1, "same result, unknown recording");
    CHECK(!narrowed && nres == 0 && k1 == k2, "an unknown recording goes on in full");
    fp_result_clear(&r);
}

/* Does result r list track t among its copies? */
static int has_copy(const match_result_t *r, uint32_t t)
{
    for (size_t k = 0; k < r->ncopies; k++)
        if (r->copies[k].track == t) return 1;
    return 0;
}

/*
 * A catalog that holds one recording three times (the file, a FLAC and an
 * MP3 re-encode of it) beside two others: a clip of it is one match that
 * lists the two other copies, each at the same place, in one part and in
 * two; the unrelated recordings are never listed; a clip of another
 * recording has no copies.
 */
static void test_copies(void)
{
    const char *d = test_tmpdir();
    char err[256], path[3][512];
    match_store_t *copies = NULL, *saved = store;
    REQUIRE(match_memstore_new(&copies) == FP_OK);
    snprintf(path[0], sizeof path[0], "%s", test_corpus_file(1));
    snprintf(path[1], sizeof path[1], "%s/copy.flac", d);
    snprintf(path[2], sizeof path[2], "%s/copy.mp3", d);
    REQUIRE(test_sh("sox '%s' %s 2>/dev/null && sox '%s' -C 320 %s 2>/dev/null", path[0], path[1],
                    path[0], path[2]) == 0);
    const char *files[5] = {test_corpus_file(0), path[0], path[1], path[2], test_corpus_file(2)};
    for (uint32_t i = 0; i < 5; i++) {
        fp_result_t r;
        REQUIRE(fp_extract_path(files[i], NULL, NULL, &r, err, sizeof err) == FP_OK, "%s", err);
        CHECK(match_memstore_add(copies, 10 + i, r.prints, r.count) == FP_OK);
        fp_result_clear(&r);
    }
    REQUIRE(match_memstore_seal(copies) == FP_OK);
    store = copies;

    const char *clips[2] = {"sox '%s' %%s trim 40 10 2>/dev/null",
                            "sox '%s' %%s trim 30 10 speed 1.05 2>/dev/null"};
    for (int c = 0; c < 2; c++) {
        char cmd[1024];
        fp_result_t r;
        snprintf(cmd, sizeof cmd, clips[c], test_corpus_file(1));
        REQUIRE(clip_prints(cmd, &r) == 0);
        match_result_t *m = NULL;
        size_t n = 0;
        CHECK(match_query(copies, r.prints, r.count, NULL, &m, &n, NULL, err, sizeof err) == FP_OK);
        CHECK(n == 1, "clip %d: one match, not %zu", c, n);
        if (n >= 1) {
            uint32_t t = m[0].track;
            CHECK(t >= 11 && t <= 13, "clip %d: a copy of the recording ranked: %u", c, t);
            CHECK(m[0].ncopies == 2, "clip %d: the two other copies listed: %zu", c, m[0].ncopies);
            for (uint32_t k = 11; k <= 13; k++)
                if (k != t) CHECK(has_copy(&m[0], k), "clip %d: copy %u listed", c, k);
            CHECK(!has_copy(&m[0], 10) && !has_copy(&m[0], 14), "clip %d: no unrelated copy", c);
            for (size_t k = 0; k < m[0].ncopies; k++) {
                const match_result_t *x = &m[0].copies[k];
                CHECK(fabs(x->ref_start - m[0].ref_start) < 0.1 && fabs(x->speed - m[0].speed) < 0.01,
                      "clip %d: copy %u at the same place: %.2f s x%.4f", c, x->track, x->ref_start,
                      x->speed);
                CHECK(x->frames >= m[0].frames / 2, "clip %d: copy %u aligns %u of %u frames", c,
                      x->track, x->frames, m[0].frames);
            }
        }
        match_results_free(m, n);
        int narrowed;
        size_t k1, k2, nres;
        CHECK(both_ways(&r, &narrowed, &k1, &k2, &nres) == 1, "clip %d: same in two parts", c);
        fp_result_clear(&r);
    }

    /* another recording: its own match, no copies */
    char cmd[1024];
    fp_result_t r;
    snprintf(cmd, sizeof cmd, "sox '%s' %%s trim 20 10 2>/dev/null", test_corpus_file(2));
    REQUIRE(clip_prints(cmd, &r) == 0);
    match_result_t *m = NULL;
    size_t n = 0;
    CHECK(match_query(copies, r.prints, r.count, NULL, &m, &n, NULL, err, sizeof err) == FP_OK);
    CHECK(n == 1 && m[0].track == 14 && m[0].ncopies == 0, "another recording: %zu matches", n);
    match_results_free(m, n);
    fp_result_clear(&r);
    store = saved;
    match_store_free(copies);
}

/*
 * The test against chance: the expected chance alignments fall with the
 * frames aligned and grow with the query's length and the catalog's size;
 * a clip's match is claimed against the store's own few hours, with its
 * confidence exp(-chance), and not against a catalog so large that an
 * alignment as strong is no longer rare.
 */
static void test_chance(void)
{
    CHECK(match_chance(12, 0, 10, 4, 1) < match_chance(11, 0, 10, 4, 1), "falls with frames");
    CHECK(match_chance(12, 0, 60, 4, 1) > match_chance(12, 0, 10, 4, 1), "grows with length");
    CHECK(match_chance(12, 0, 10, 4000, 1) > match_chance(12, 0, 10, 4, 1), "grows with hours");
    CHECK(match_chance(12, 1, 10, 4, 1) > match_chance(12, 0, 10, 4, 1), "scaled: heavier tail");
    CHECK(match_chance(12, 0, 10, 4000, 0.3) < match_chance(12, 0, 10, 4000, 1),
          "fewer prints fetched: a chance alignment keeps fewer frames");
    CHECK(match_chance(12, 0, 10, 0, 1) == 0, "no catalog: no chance");

    char cmd[1024], err[256];
    fp_result_t r;
    snprintf(cmd, sizeof cmd, "sox '%s' %%s trim 40 5 2>/dev/null", test_corpus_file(1));
    REQUIRE(clip_prints(cmd, &r) == 0);
    match_opts_t o;
    match_opts_default(&o);
    match_result_t *m = NULL;
    size_t n = 0;
    CHECK(match_query(store, r.prints, r.count, &o, &m, &n, NULL, err, sizeof err) == FP_OK);
    CHECK(n == 1 && m[0].track == 1, "claimed against the store's own hours: %zu", n);
    if (n == 1) {
        CHECK(m[0].chance > 0 && m[0].chance < o.max_chance, "chance %g", m[0].chance);
        CHECK(fabs(m[0].confidence - exp(-m[0].chance)) < 1e-12 && m[0].confidence > 0.99,
              "confidence %g", m[0].confidence);
        /* a catalog where this many frames come by chance about once a query */
        double hours = 4.0;
        while (match_chance(m[0].frames, m[0].speed != 1.0, 5.0, hours, 1.0) < 1.0) hours *= 2;
        match_results_free(m, n);
        o.catalog_hours = hours;
        CHECK(match_query(store, r.prints, r.count, &o, &m, &n, NULL, err, sizeof err) == FP_OK);
        CHECK(n == 0, "against %.0f hours the same alignment is chance: %zu matches", hours, n);
        match_results_free(m, n);
        o.max_chance = 0;
        CHECK(match_query(store, r.prints, r.count, &o, &m, &n, NULL, err, sizeof err) == FP_OK);
        CHECK(n == 1, "with the test off it is claimed: %zu matches", n);
    }
    match_results_free(m, n);
    fp_result_clear(&r);
}

/* The budget takes the cheapest hashes first, never more than it allows. */
static void test_budget(void)
{
    uint64_t cost[8] = {50, 10, 0, 40, 10, 100, 30, 5};
    uint8_t ch[8];
    CHECK(match_budget_select(cost, 8, 0, ch) == 8, "no budget: all");
    size_t k = match_budget_select(cost, 8, 60, ch);
    uint64_t total = 0;
    for (int i = 0; i < 8; i++) total += ch[i] ? cost[i] : 0;
    CHECK(total <= 60, "within the budget: %llu", (unsigned long long)total);
    CHECK(k == 5 && ch[2] && ch[7] && ch[1] && ch[4] && ch[6] && !ch[3] && !ch[0] && !ch[5],
          "the five cheapest (0, 5, 10, 10, 30): %zu taken", k);
    CHECK(match_budget_select(cost, 8, 4, ch) == 1 && ch[2], "only the free one fits");
}

int main(void)
{
    alarm(300);
    RUN(test_budget);
    RUN(build_store);
    RUN(test_clean);
    RUN(test_speed);
    RUN(test_tempo);
    RUN(test_pitch);
    RUN(test_unknown);
    RUN(test_two_parts);
    RUN(test_copies);
    RUN(test_chance);
    RUN(test_cli);
    match_store_free(store);
    return test_main_end();
}
