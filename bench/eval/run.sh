#!/usr/bin/env bash
# run.sh small|full|overlap -- the accuracy evaluation in one command.
#
#   small    the CI split: a dozen short tracks; gates with --check
#   full     the whole corpus; the table is also kept in DIR/last_full.md
#   overlap  matches every negative track, whole, against the full catalog
#            and lists those that share material with it (to curate corpus.sh)
#
# Environment: EARMARK_EVAL_DIR (cache, default ./var/eval), BUILD (folder
# of the eval program, default build), EVAL_SEED (default 1), EVAL_ARGS
# (extra arguments for the eval program), EVAL_JOBS (see queries.sh).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

mode=${1:-}
case $mode in small|full|overlap) ;; *) die "usage: run.sh small|full|overlap" ;; esac
dir=${EARMARK_EVAL_DIR:-$PWD/var/eval}
build=${BUILD:-build}
seed=${EVAL_SEED:-1}
eval_bin=$build/eval
[ -x "$eval_bin" ] || die "$eval_bin is missing: run 'make $build/eval' first"
mkdir -p "$dir"

phase() { # NAME COMMAND...: run, then print how long it took
    local name=$1 t0 rc=0; shift
    t0=$(date +%s.%N)
    "$@" || rc=$?
    awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$name" \
        'BEGIN { printf "run.sh: %-8s %6.1f s\n", n, b - a }' >&2
    return $rc
}

phase corpus bash "$here/corpus.sh" "$dir"

if [ "$mode" = overlap ]; then
    # every negative track as one query (catalog tracks, whole, would match
    # themselves and, where music loops, make too many hits to score)
    m=$dir/overlap_manifest.tsv
    { printf 'query_path\ttransform\tlength_s\ttruth_id\ttruth_offset_s\tquery_offset_s\tis_negative\n'
      awk -F'\t' -v OFS='\t' 'NR > 1 { print $2, "whole", int($3), "-", "-", 0, 1 }' "$dir/negatives_full.tsv"
    } >"$m"
    # shellcheck disable=SC2086
    phase eval "$eval_bin" --catalog "$dir/catalog_full.tsv" --manifest "$m" \
        --hashes pair --unscaled --max-postings 200 --dump "$dir/overlap_dump.tsv" ${EVAL_ARGS:-} >/dev/null
    # a catalog track's best match is itself: report its runner-up; a
    # negative's best match is any catalog track
    # a negative's best match is any catalog track: listed when it has at
    # least OVERLAP_MIN prints and OVERLAP_DENSITY per second of its span.
    # Pair hashes only, unscaled: the same recording, not a similar one
    # (chance alignments of whole tracks reach ~20 prints, thinly spread)
    awk -F'\t' -v min="${OVERLAP_MIN:-25}" -v dens="${OVERLAP_DENSITY:-1}" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { q = $c["query"]; sub(/.*\//, "", q)
          if ($c["truth"] == "-") {
              split($c["query_span_s"], s, "-"); span = s[2] - s[1]; if (span < 1) span = 1
              if ($c["count"] >= min && $c["count"] / span >= dens)
                  printf "negative %-24s shares %5d prints (%.1f/s) with %-24s query %s s, ref %s s\n",
                      q, $c["count"], $c["count"] / span, $c["predicted"], $c["query_span_s"], $c["ref_span_s"]
          } }
    ' "$dir/overlap_dump.tsv"
    exit 0
fi

phase queries bash "$here/queries.sh" "$dir" "$mode" "$seed"
phase long bash "$here/long_negatives.sh" "$dir" "$mode" "$seed"
# the clips and the long negatives, in one manifest
qdir=$dir/queries/$mode
{ cat "$qdir/manifest.tsv"; cat "$qdir/long.tsv"; } >"$qdir/all.tsv"

args=(--catalog "$dir/catalog_$mode.tsv" --manifest "$qdir/all.tsv"
      --dump "$dir/last_${mode}_queries.tsv" --title "$mode split, seed $seed")
if [ "$mode" = small ]; then
    args+=(--check --out "$dir/last_small.md")
else
    args+=(--out "$dir/last_full.md")
fi
# shellcheck disable=SC2086
phase eval "$eval_bin" "${args[@]}" ${EVAL_ARGS:-}
