/*
 * test_review.c -- the SVG picture of a match's evidence (review_plot.c),
 * without a database: names that need escaping, empty evidence, and the
 * geometry of the aligned points.  The review queue, decisions and their
 * log are tested end to end in tests/cli/review_test.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_review.h"
#include "testlib.h"

/* The SVG review_plot_svg() writes for p, as a malloc'd string. */
static char *plot(const review_plot_t *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int rc = review_plot_svg(f, p);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_escaping(void)
{
    review_plot_t p = {.title = "match 1: Simon & Garfunkel - <Live> \"1981\"",
                       .subtitle = "ref o'brien\x01",
                       .frame_seconds = 0.0232,
                       .bin_hz = 10.77};
    char *svg = plot(&p);
    REQUIRE(svg, "review_plot_svg failed");
    CHECK(strstr(svg, "Simon &amp; Garfunkel - &lt;Live&gt; &quot;1981&quot;"), "title not escaped");
    CHECK(strstr(svg, "o&apos;brien?"), "subtitle not escaped (control character kept?)");
    CHECK(!strstr(svg, "<Live>"), "a raw tag from the title");
    CHECK(strstr(svg, "</svg>\n"), "the document is not closed");
    free(svg);
}

static void test_empty(void)
{
    review_plot_t p = {.frame_seconds = 0.0232, .bin_hz = 10.77,
                       .query_note = "no query peaks here", .ref_note = "no reference file"};
    char *svg = plot(&p);
    REQUIRE(svg, "review_plot_svg failed on empty evidence");
    CHECK(count(svg, "class=\"aligned\"") == 0, "points from nowhere");
    CHECK(strstr(svg, "no query peaks here") && strstr(svg, "no reference file"),
          "the notes that say why the panels are empty");
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"), "non-finite coordinates");
    free(svg);
}

/* Points on ref = 1.1 * query + 40 s come out on one straight line, with
 * the slope -1.1 in pixels (equal scales, y growing downwards). */
static void test_diagonal(void)
{
    enum { N = 60 };
    uint32_t pts[2 * N], peaks[2 * N];
    double fs = 0.0232;
    for (int i = 0; i < N; i++) {
        uint32_t q = (uint32_t)(10 + 7 * i);
        pts[2 * i] = q;
        pts[2 * i + 1] = (uint32_t)lround(1.1 * q + 40.0 / fs);
        peaks[2 * i] = q;
        peaks[2 * i + 1] = (uint32_t)(16 * (20 + i));
    }
    review_segment_t seg = {10 * fs, (10 + 7 * (N - 1)) * fs, 1.1 * 10 * fs + 40,
                            1.1 * (10 + 7 * (N - 1)) * fs + 40, N};
    review_plot_t p = {.title = "t", .frame_seconds = fs, .points = pts, .npoints = N,
                       .segs = &seg, .nsegs = 1, .bin_hz = 10.77, .query_peaks = peaks,
                       .nquery = N, .ref_peaks = peaks, .nref = N};
    char *svg = plot(&p);
    REQUIRE(svg, "review_plot_svg failed");
    CHECK(count(svg, "class=\"aligned\"") == N, "%zu aligned points", count(svg, "class=\"aligned\""));
    CHECK(count(svg, "class=\"segment\"") == 1, "the segment");
    CHECK(count(svg, "class=\"qpeak\"") == N, "%zu query peaks", count(svg, "class=\"qpeak\""));
    double x[N], y[N];
    size_t k = 0;
    for (const char *s = svg; k < N && (s = strstr(s, "class=\"aligned\" cx=\"")); s++) {
        if (sscanf(s, "class=\"aligned\" cx=\"%lf\" cy=\"%lf\"", &x[k], &y[k]) == 2) k++;
    }
    REQUIRE(k == N, "read %zu of %d points", k, N);
    /* least squares, then the largest distance from the line */
    double mx = 0, my = 0, sxx = 0, sxy = 0, worst = 0;
    for (size_t i = 0; i < k; i++) mx += x[i] / N, my += y[i] / N;
    for (size_t i = 0; i < k; i++) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
    double a = sxy / sxx, b = my - a * mx;
    for (size_t i = 0; i < k; i++) {
        double d = fabs(y[i] - (a * x[i] + b)) / sqrt(1 + a * a);
        if (d > worst) worst = d;
    }
    CHECK(fabs(a + 1.1) < 0.01, "slope %.4f, want -1.1", a);
    CHECK(worst < 1.0, "a point %.2f px off the line", worst);
    /* every point inside the scatter's frame */
    for (size_t i = 0; i < k; i++)
        CHECK(x[i] >= 80 && x[i] <= 520 && y[i] >= 80 && y[i] <= 520, "point %zu at (%g, %g)", i,
              x[i], y[i]);
    free(svg);
}

int main(void)
{
    RUN(test_escaping);
    RUN(test_empty);
    RUN(test_diagonal);
    return test_main_end();
}
