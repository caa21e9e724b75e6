/*
 * match_internal.h -- what the files of the matcher share and nobody else
 * sees (not installed).
 */
#ifndef EARMARK_MATCH_INTERNAL_H
#define EARMARK_MATCH_INTERNAL_H

#include <math.h>

#include "earmark_fp.h"

/*
 * Is hit h one of candidate c's aligned points: its track, inside its
 * query span, within 1.5 frames of its line ref = speed * query + offset?
 * The evidence points of a match (match_query.c) and the prints that tell
 * copies apart (match_decide.c) are both these hits.
 */
static inline int mi_hit_aligned(const fp_hit_t *h, const fp_candidate_t *c)
{
    if (h->track != c->track || h->query_t < c->query_start || h->query_t > c->query_end)
        return 0;
    double d = (double)h->ref_t - c->speed * (double)h->query_t - (double)c->offset;
    return fabs(d) <= 1.5;
}

#endif
