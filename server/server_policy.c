/*
 * server_policy.c -- what a match means: its flag and its confidence.
 *
 * The flag is a policy, set by the operator (server_policy_t, flags and
 * environment of `earmark serve`): likely_infringement when a match is
 * long or covers most of the upload and is strong; possible_reuse when it
 * is shorter but clear; none otherwise (a match that is reported but too
 * slight to act on).  An upload takes the strongest flag of its matches.
 *
 * Confidence maps the score (aligned query frames) onto [0, 1] by what
 * chance reaches: on the evaluation corpus no clip of music outside the
 * catalog aligned more than 10 frames with any catalog recording, while
 * real matches of 10 s clips align 30 to 300.  So confidence is 0 up to
 * 10 frames and approaches 1 with a scale of 10 frames beyond:
 * 1 - exp(-(score - 10) / 10): 0.18 at 12 (the default minimum score),
 * 0.86 at 30, 0.98 at 50.
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

double srv_confidence(uint32_t score)
{
    if (score <= 10) return 0.0;
    return 1.0 - exp(-((double)score - 10.0) / 10.0);
}
