/*
 * review_plot.c -- the picture of a match's evidence, as a standalone SVG.
 *
 * Left: the aligned prints, query time across, reference time up, on axes
 * of equal scale, so that a copy at the original speed is a 45-degree line
 * and a faster or slower one a steeper or flatter line; chance hits would
 * be scattered dots.  The segments the matcher found are drawn over them.
 * Right: the spectral peaks (print anchors) of the query excerpt, and below
 * them those of the reference excerpt the first segment aligns with it,
 * placed on the same time axis through that segment's line: where the two
 * recordings are the same, the two constellations look alike.
 *
 * Pure formatting: no database, no decoding.  Coordinates are written with
 * two decimals; every element a test may want to find has a class.
 */
#include "em_review.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define SVG_W 1120
#define SVG_H 600
/* the scatter */
#define SC_X 80.0
#define SC_Y 80.0
#define SC_S 440.0
/* the two peak panels */
#define PK_X 620.0
#define PK_W 470.0
#define PK_H 190.0
#define PK_Y1 80.0
#define PK_Y2 330.0

typedef struct range {
    double lo, hi;
} range_t;

/* Write s with the five XML special characters escaped. */
static void put_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n') fputc('?', out);
            else fputc(*s, out);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double tick_step(double span, int n)
{
    if (!(span > 0)) return 1;
    double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static double map(double v, range_t r, double a, double b)
{
    return a + (v - r.lo) / (r.hi - r.lo) * (b - a);
}

/* Ticks and labels of a time axis along x in [x0, x1] at height y; labels
 * are values of `label` mapped to x through `axis` (the same range for a
 * plain axis). */
static void time_ticks(FILE *out, range_t axis, range_t label, double x0, double x1, double y)
{
    double step = tick_step(label.hi - label.lo, 6);
    for (double v = ceil(label.lo / step) * step; v <= label.hi + 1e-9; v += step) {
        double q = axis.lo + (v - label.lo) / (label.hi - label.lo) * (axis.hi - axis.lo);
        double x = map(q, axis, x0, x1);
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>", x,
                y, x, y + 5);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%g</text>\n", x, y + 18,
                fabs(v) < 1e-9 ? 0 : v);
    }
}

/* The range of the values in [lo, hi] padded by pad on both sides. */
static range_t padded(double lo, double hi, double pad)
{
    if (!(hi > lo)) hi = lo + 1;
    return (range_t){lo - pad, hi + pad};
}

static void scatter(FILE *out, const review_plot_t *p)
{
    double fs = p->frame_seconds > 0 ? p->frame_seconds : 1;
    double qlo = INFINITY, qhi = -INFINITY, rlo = INFINITY, rhi = -INFINITY;
    for (size_t i = 0; i < p->npoints; i++) {
        double q = p->points[2 * i] * fs, r = p->points[2 * i + 1] * fs;
        qlo = fmin(qlo, q), qhi = fmax(qhi, q), rlo = fmin(rlo, r), rhi = fmax(rhi, r);
    }
    for (size_t i = 0; i < p->nsegs; i++) {
        qlo = fmin(qlo, p->segs[i].query_start), qhi = fmax(qhi, p->segs[i].query_end);
        rlo = fmin(rlo, p->segs[i].ref_start), rhi = fmax(rhi, p->segs[i].ref_end);
    }
    if (!isfinite(qlo)) qlo = 0, qhi = 1, rlo = 0, rhi = 1;
    /* equal scales: the longer span sets both */
    double span = fmax(qhi - qlo, rhi - rlo);
    if (!(span > 0)) span = 1;
    span *= 1.1;
    range_t qr = {(qlo + qhi - span) / 2, (qlo + qhi + span) / 2};
    range_t rr = {(rlo + rhi - span) / 2, (rlo + rhi + span) / 2};

    fprintf(out, "<g class=\"scatter\">\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                 "height=\"%.2f\" fill=\"#fafafa\" stroke=\"#888\"/>\n",
            SC_X, SC_Y, SC_S, SC_S);
    time_ticks(out, qr, qr, SC_X, SC_X + SC_S, SC_Y + SC_S);
    double step = tick_step(span, 6);
    for (double v = ceil(rr.lo / step) * step; v <= rr.hi + 1e-9; v += step) {
        double y = map(v, rr, SC_Y + SC_S, SC_Y);
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>",
                SC_X - 5, y, SC_X, y);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n", SC_X - 8,
                y + 4, fabs(v) < 1e-9 ? 0 : v);
    }
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">query time (s)</text>\n",
            SC_X + SC_S / 2, SC_Y + SC_S + 38);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 "
                 "%.2f %.2f)\">reference time (s)</text>\n",
            SC_X - 50, SC_Y + SC_S / 2, SC_X - 50, SC_Y + SC_S / 2);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">aligned prints (%zu): a real match is a clean "
                 "diagonal</text>\n",
            SC_X, SC_Y - 10, p->npoints);
    for (size_t i = 0; i < p->nsegs; i++) {
        const review_segment_t *s = &p->segs[i];
        fprintf(out, "<line class=\"segment\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                     "stroke=\"#d62728\" stroke-width=\"6\" stroke-opacity=\"0.25\"/>\n",
                map(s->query_start, qr, SC_X, SC_X + SC_S), map(s->ref_start, rr, SC_Y + SC_S, SC_Y),
                map(s->query_end, qr, SC_X, SC_X + SC_S), map(s->ref_end, rr, SC_Y + SC_S, SC_Y));
    }
    for (size_t i = 0; i < p->npoints; i++)
        fprintf(out, "<circle class=\"aligned\" cx=\"%.2f\" cy=\"%.2f\" r=\"2\" fill=\"#1f77b4\"/>\n",
                map(p->points[2 * i] * fs, qr, SC_X, SC_X + SC_S),
                map(p->points[2 * i + 1] * fs, rr, SC_Y + SC_S, SC_Y));
    fputs("</g>\n", out);
}

/*
 * One panel of peaks at height y0: x is query time over qr; the peaks'
 * own times are mapped to query time by q = q0 + (t - t0) / slope (for the
 * query itself t0 = q0 and slope 1).  Frequencies on a log axis over fr.
 */
static void peaks_panel(FILE *out, const char *cls, const char *label, const char *color,
                        const uint32_t *pk, size_t n, const char *note, double y0,
                        const review_plot_t *p, range_t qr, range_t fr, double q0, double t0,
                        double slope)
{
    double fs = p->frame_seconds > 0 ? p->frame_seconds : 1;
    fprintf(out, "<g class=\"%s-panel\">\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                 "height=\"%.2f\" fill=\"#fafafa\" stroke=\"#888\"/>\n",
            cls, PK_X, y0, PK_W, PK_H);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">", PK_X, y0 - 8);
    put_text(out, label);
    fputs("</text>\n", out);
    range_t own = {t0 + (qr.lo - q0) * slope, t0 + (qr.hi - q0) * slope};
    time_ticks(out, qr, own, PK_X, PK_X + PK_W, y0 + PK_H);
    for (double hz = 62.5; hz <= fr.hi * 1.0001; hz *= 2) {
        if (hz < fr.lo) continue;
        double y = y0 + PK_H - (log(hz) - log(fr.lo)) / (log(fr.hi) - log(fr.lo)) * PK_H;
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>"
                     "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%g Hz</text>\n",
                PK_X, y, PK_X + PK_W, y, PK_X - 6, y + 4, hz);
    }
    if (n == 0) {
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" fill=\"#666\">",
                PK_X + PK_W / 2, y0 + PK_H / 2);
        put_text(out, note ? note : "no peaks");
        fputs("</text>\n", out);
    }
    for (size_t i = 0; i < n; i++) {
        double t = pk[2 * i] * fs, hz = pk[2 * i + 1] / 16.0 * p->bin_hz;
        double q = q0 + (t - t0) / slope;
        if (q < qr.lo || q > qr.hi || hz < fr.lo || hz > fr.hi) continue;
        double y = y0 + PK_H - (log(hz) - log(fr.lo)) / (log(fr.hi) - log(fr.lo)) * PK_H;
        fprintf(out, "<circle class=\"%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"1.8\" fill=\"%s\"/>\n", cls,
                map(q, qr, PK_X, PK_X + PK_W), y, color);
    }
    fputs("</g>\n", out);
}

int review_plot_svg(FILE *out, const review_plot_t *p)
{
    double fs = p->frame_seconds > 0 ? p->frame_seconds : 1;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(out, "<text x=\"20\" y=\"26\" font-size=\"16\" font-weight=\"bold\">");
    put_text(out, p->title);
    fprintf(out, "</text>\n<text x=\"20\" y=\"46\" fill=\"#444\">");
    put_text(out, p->subtitle);
    fputs("</text>\n", out);
    scatter(out, p);

    /* the excerpt: the segments' query time, else the query peaks' */
    double qlo = INFINITY, qhi = -INFINITY;
    for (size_t i = 0; i < p->nsegs; i++)
        qlo = fmin(qlo, p->segs[i].query_start), qhi = fmax(qhi, p->segs[i].query_end);
    for (size_t i = 0; !isfinite(qlo) && i < p->nquery; i++)
        qlo = fmin(qlo, p->query_peaks[2 * i] * fs), qhi = fmax(qhi, p->query_peaks[2 * i] * fs);
    if (!isfinite(qlo)) qlo = 0, qhi = 1;
    range_t qr = padded(qlo, qhi, 0.02 * (qhi - qlo) + 0.1);
    double q0 = 0, t0 = 0, slope = 1;
    if (p->nsegs) {
        const review_segment_t *s = &p->segs[0];
        q0 = s->query_start, t0 = s->ref_start;
        if (s->query_end - s->query_start > 0.5 && s->ref_end > s->ref_start)
            slope = (s->ref_end - s->ref_start) / (s->query_end - s->query_start);
    }
    /* frequencies of both sides */
    double flo = INFINITY, fhi = -INFINITY;
    for (size_t i = 0; i < p->nquery; i++) {
        double hz = p->query_peaks[2 * i + 1] / 16.0 * p->bin_hz;
        if (hz > 0) flo = fmin(flo, hz), fhi = fmax(fhi, hz);
    }
    for (size_t i = 0; i < p->nref; i++) {
        double hz = p->ref_peaks[2 * i + 1] / 16.0 * p->bin_hz;
        if (hz > 0) flo = fmin(flo, hz), fhi = fmax(fhi, hz);
    }
    if (!isfinite(flo) || !(fhi > flo)) flo = 100, fhi = 5000;
    range_t fr = {flo / 1.1, fhi * 1.1};
    peaks_panel(out, "qpeak", "query excerpt: spectral peaks", "#1f77b4", p->query_peaks,
                p->nquery, p->query_note, PK_Y1, p, qr, fr, 0, 0, 1);
    peaks_panel(out, "rpeak", "reference excerpt, aligned by the first segment (reference time, s)",
                "#ff7f0e", p->ref_peaks, p->nref, p->ref_note, PK_Y2, p, qr, fr, q0, t0, slope);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">seconds: of the query "
                 "above, of the reference below</text>\n",
            PK_X + PK_W / 2, PK_Y2 + PK_H + 38);
    fputs("</svg>\n", out);
    fflush(out);
    if (ferror(out)) {
        if (!errno) errno = EIO;
        return -1;
    }
    return 0;
}
