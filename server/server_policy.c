/*
 * server_policy.c -- what a match means: its flag and its confidence.
 *
 * The flag is a policy, set by the operator (server_policy_t, flags and
 * environment of `earmark serve`): likely_infringement when a match is
 * long or covers most of the upload and is strong; possible_reuse when it
 * is shorter but clear; none otherwise (a match that is reported but too
 * slight to act on).  An upload takes the strongest flag of its matches.
 *
 * The confidence of a match is the matcher's (match_result_t.confidence:
 * how unlikely an alignment as strong is by chance, for the upload's length
 * and the catalog's size; match/match_decide.c).
 */
#include "server_internal.h"

#include <math.h>

const char *srv_flag_name(srv_flag_t f)
{
    switch (f) {
    case FLAG_INFRINGEMENT: return "likely_infringement";
    case FLAG_REUSE: return "possible_reuse";
    default: return "none";
    }
}

srv_flag_t srv_flag_of(const server_policy_t *p, uint32_t score, double matched_s,
                       double coverage)
{
    if (score >= p->infringement_score &&
        (matched_s >= p->infringement_seconds || coverage >= p->infringement_coverage))
        return FLAG_INFRINGEMENT;
    if (score >= p->reuse_score && matched_s >= p->reuse_seconds) return FLAG_REUSE;
    return FLAG_NONE;
}
