#!/bin/sh
# bench/bench_index.sh -- is the database ever the indexer's bottleneck?
#
# Fingerprints the same files with `earmark fingerprint --summary` and
# indexes them with `earmark index` into an empty private cluster, with the
# same thread count, alternating, ROUNDS times; reports the best time of
# each and their ratio (index throughput / fingerprint throughput).
#
#   sh bench/bench_index.sh [FILE_LIST]
#
# FILE_LIST: a file with one audio path a line (default: the catalog of the
# full evaluation split, var/eval/catalog_full.tsv, column 2).  Environment:
# BUILD (default build), THREADS (default: every core), ROUNDS (default 3),
# BENCH_VAR (the cluster's var folder, default ./var/bench-index),
# INDEX_FLAGS (more options for earmark index, e.g. --no-copies to leave
# out the lookup of each new track for copies).
set -eu
BUILD=${BUILD:-build}
EM=$PWD/$BUILD/earmark
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
var=${BENCH_VAR:-$PWD/var/bench-index}
list=${1:-}
files=$(mktemp)
trap 'rm -f "$files"; EARMARK_VAR="$var" "$EM" db stop >/dev/null 2>&1 || true' EXIT
if [ -n "$list" ]; then
    cp "$list" "$files"
else
    cat=var/eval/catalog_full.tsv
    [ -f "$cat" ] || bash bench/eval/corpus.sh var/eval >/dev/null
    awk -F'\t' 'NR > 1 { print $2 }' "$cat" >"$files"
fi
n=$(wc -l <"$files")
unset EARMARK_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE
export EARMARK_VAR="$var"
mkdir -p "$var"

now() { date +%s.%N; }
best_fp=999999
best_ix=999999
for r in $(seq "$ROUNDS"); do
    t0=$(now)
    tr '\n' '\0' <"$files" | xargs -0 "$EM" fingerprint --summary --threads "$THREADS" >/dev/null 2>&1
    t1=$(now)
    "$EM" db stop >/dev/null 2>&1 || true
    rm -rf "$var/pg"
    "$EM" db start >/dev/null && "$EM" db migrate >/dev/null
    t2=$(now)
    tr '\n' '\0' <"$files" | xargs -0 "$EM" index --quiet --threads "$THREADS" ${INDEX_FLAGS:-} >/dev/null
    t3=$(now)
    fp=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    ix=$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')
    printf 'round %d: fingerprint %.2f s, index %.2f s\n' "$r" "$fp" "$ix"
    best_fp=$(awk -v a="$fp" -v b="$best_fp" 'BEGIN { print (a < b) ? a : b }')
    best_ix=$(awk -v a="$ix" -v b="$best_ix" 'BEGIN { print (a < b) ? a : b }')
done
prints=$("$EM" catalog stats --json | sed 's/.*"prints":\([0-9]*\).*/\1/')
hours=$("$EM" catalog stats --json | sed 's/.*"hours":\([0-9.]*\).*/\1/')
printf '%d files, %s h of audio, %s prints, %d threads, best of %d\n' "$n" "$hours" "$prints" "$THREADS" "$ROUNDS"
awk -v h="$hours" -v p="$prints" -v f="$best_fp" -v x="$best_ix" 'BEGIN {
    printf "earmark fingerprint: %.2f s (%.0fx real time)\n", f, h * 3600 / f
    printf "earmark index:       %.2f s (%.0fx real time, %.0f prints/s into the store)\n", x, h * 3600 / x, p / x
    printf "index / fingerprint throughput: %.3f (bar >= 0.9)\n", f / x
}'
