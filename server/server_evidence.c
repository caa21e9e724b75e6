/*
 * server_evidence.c -- a match's evidence as JSON text, and the rows the
 * result's statement spreads with json_to_recordset.
 *
 * The evidence holds up to 500 aligned points and 1 500 of the query's
 * peaks, each a pair of integers: as jansson values that is thousands of
 * small allocations built, dumped and freed per match, about a twentieth
 * of a match's time in the service.  So the two lists are written as text
 * directly, and the small parts (frame_seconds, segments) by jansson, the
 * texts spliced into one object:
 *
 *   {"frame_seconds":F,"segments":[...],"points":[[q,r],...],
 *    "query_peaks":[[t,f],...]}
 *
 * the same text (keys in that order, compact) that dumping the whole
 * object with jansson gave.
 */
#include "server_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_PEAKS_MAX 1500 /* spectral peaks kept per match for review */

static void text_str(srv_text_t *t, const char *s)
{
    srv_text_add(t, s, strlen(s));
}

/* Dump o compactly and append it without its closing brace. */
static void text_open_object(srv_text_t *t, const json_t *o)
{
    char *d = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    size_t n = d ? strlen(d) : 0;
    if (!d || n < 2 || d[n - 1] != '}') t->failed = 1;
    else srv_text_add(t, d, n - 1);
    free(d);
}

char *srv_evidence_json(double fs, const json_t *segments, const match_result_t *const *ms,
                        size_t nm, const fp_print_t *prints, size_t nprints, double qs, double qe)
{
    srv_text_t t = {0};
    json_t *head = json_pack("{s:f, s:O}", "frame_seconds", fs, "segments", segments);
    if (!head) return NULL;
    text_open_object(&t, head);
    json_decref(head);

    text_str(&t, ",\"points\":[");
    int first = 1;
    for (size_t k = 0; k < nm; k++)
        for (size_t p = 0; p < ms[k]->npoints; p++, first = 0)
            srv_text_printf(&t, "%s[%u,%u]", first ? "" : ",", ms[k]->points[2 * p], ms[k]->points[2 * p + 1]);
    text_str(&t, "]");

    /* the distinct anchors (frame, frequency in 1/16 bin) of the query's
     * prints within [qs, qe] seconds, plus a second either side: the
     * query's side of the review picture, since the upload itself is not
     * kept; at most QUERY_PEAKS_MAX, evenly thinned (left out when there
     * is no memory for them) */
    double lo = ceil((qs - 1.0) / fs), hi = floor((qe + 1.0) / fs);
    uint32_t *pk = NULL;
    size_t u = 0;
    if (hi >= 0 && lo <= UINT32_MAX &&
        fp_prints_anchors(prints, nprints, lo > 0 ? (uint32_t)lo : 0,
                          hi < UINT32_MAX ? (uint32_t)hi : UINT32_MAX, &pk, &u) == FP_OK) {
        text_str(&t, ",\"query_peaks\":[");
        double step = u > QUERY_PEAKS_MAX ? (double)u / QUERY_PEAKS_MAX : 1.0;
        first = 1;
        for (double x = 0; (size_t)x < u; x += step, first = 0) {
            size_t i = (size_t)x;
            srv_text_printf(&t, "%s[%u,%u]", first ? "" : ",", pk[2 * i], pk[2 * i + 1]);
        }
        text_str(&t, "]");
    }
    free(pk);
    text_str(&t, "}");
    return srv_text_take(&t, NULL);
}

/* Append one stored row: the match object m, overlaid with the copy's
 * fields when copy is not NULL, its rank, copy index and evidence. */
static void text_row(srv_text_t *t, const json_t *m, const json_t *copy, size_t rank,
                     size_t copy_index, const char *evidence)
{
    json_t *row = json_copy((json_t *)m); /* shallow: the values are shared */
    if (!row || json_object_del(row, "copies") ||
        (copy && json_object_update(row, (json_t *)copy)) ||
        json_object_set_new(row, "rank", json_integer((json_int_t)rank)) ||
        json_object_set_new(row, "copy_index", json_integer((json_int_t)copy_index)) || !evidence)
        t->failed = 1;
    if (row) text_open_object(t, row);
    json_decref(row);
    text_str(t, ",\"evidence\":");
    if (evidence) text_str(t, evidence);
    text_str(t, "}");
}

char *srv_match_rows_json(const json_t *matches, char *const *evidence)
{
    srv_text_t t = {0};
    size_t i, k, row = 0;
    json_t *m, *c;
    text_str(&t, "[");
    json_array_foreach((json_t *)matches, i, m)
    {
        if (row) text_str(&t, ",");
        text_row(&t, m, NULL, i + 1, 0, evidence[row++]);
        json_array_foreach(json_object_get(m, "copies"), k, c)
        {
            text_str(&t, ",");
            text_row(&t, m, c, i + 1, k + 1, evidence[row++]);
        }
    }
    text_str(&t, "]");
    return srv_text_take(&t, NULL);
}
