#!/usr/bin/env bash
# long_negatives.sh OUTDIR SPLIT SEED -- long uploads of music that is not in
# the catalog: 60-second and 10-minute negatives.
#
# Chance alignments grow with the length of an upload, so a decision tuned
# on 5 and 10 s clips must also be measured on long ones.  The negative
# tracks of the split (OUTDIR/negatives_SPLIT.tsv) are joined, in their
# list's order, into one stream (mono, 22.05 kHz); each 60 s negative starts
# at a pseudo-random place within one negative track's stretch of it (one
# per negative track), each 10-minute negative at a pseudo-random place of
# the stream, wrapping round at its end (a stream shorter than 10 minutes
# then repeats) (LONG_COUNT of them: 4 in the full
# split, 1 in the small).  Written to OUTDIR/queries/SPLIT/long/, described
# by OUTDIR/queries/SPLIT/long.tsv in the columns of manifest.tsv
# (transform "long", truth "-", is_negative 1), paths relative to
# OUTDIR/queries/SPLIT.  Nothing is done when the stamp matches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

VERSION=1
OUT_RATE=22050

[ $# -eq 3 ] || die "usage: long_negatives.sh OUTDIR small|full SEED"
outdir=$1 split=$2 seed=$3
negatives=$outdir/negatives_$split.tsv
[ -s "$negatives" ] || die "$negatives missing: run corpus.sh first"
case $split in small) count=1 ;; full) count=4 ;; *) die "SPLIT must be small or full" ;; esac
count=${LONG_COUNT:-$count}
dir=$outdir/queries/$split
out=$dir/long
stamp="version=$VERSION seed=$seed count=$count negatives=$(sha256sum <"$negatives" | cut -c1-16)"
if [ -s "$dir/long.tsv" ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
    note "$out is up to date"
    exit 0
fi
ensure_tools
rm -rf "$out" "$dir/long.tsv"
mkdir -p "$out"
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# the stream, and where each track starts in it
files=() starts=() ids=()
pos=0
while IFS=$'\t' read -r id path _; do
    [ "$id" = id ] && continue
    sox -R -V1 "$path" -r "$OUT_RATE" -c 1 -b 16 "$tmp/$id.wav"
    files+=("$tmp/$id.wav") starts+=("$pos") ids+=("$id")
    pos=$(awk -v p="$pos" -v d="$(soxi -D "$tmp/$id.wav")" 'BEGIN { printf "%.3f", p + d }')
done <"$negatives"
total=$pos
sox -R -V1 "${files[@]}" "$tmp/stream.wav"
sox -R -V1 "$tmp/stream.wav" "$tmp/stream.wav" "$tmp/twice.wav"

# positions: Park-Miller seeded from the seed and the clip's name
pick() { # NAME RANGE -> a position in [0, RANGE)
    awk -v key="$1|$seed" -v range="$2" 'BEGIN {
        M = 2147483647; h = 7
        for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
        for (i = 1; i <= length(key); i++) h = (h * 131 + ord[substr(key, i, 1)]) % M
        if (h == 0) h = 1
        for (i = 0; i < 4; i++) h = (h * 16807) % M
        printf "%.3f", (h / M) * range }'
}
cut() { # NAME START LENGTH
    sox -R -V1 "$tmp/twice.wav" "$out/$1.wav" trim "$2" "$3"
    printf 'long/%s.wav\tlong\t%d\t-\t-\t0\t1\tcore\t1.0000\t1.000000\tstream\t%s\t-\t-\n' \
        "$1" "$3" "$2" >>"$dir/long.tsv.tmp"
}
: >"$dir/long.tsv.tmp"
n=${#ids[@]}
for ((i = 0; i < n; i++)); do
    name="neg60_${ids[$i]}"
    cut "$name" "$(awk -v s="${starts[$i]}" -v p="$(pick "$name" 60)" 'BEGIN { printf "%.3f", s + p }')" 60
done
# a 10-minute negative starts where the stream, twice over, still holds it
range=$(awk -v t="$total" 'BEGIN { r = 2 * t - 600; if (r > t) r = t; printf "%.3f", r }')
if awk -v r="$range" 'BEGIN { exit !(r > 0) }'; then
    for ((k = 1; k <= count; k++)); do
        name="neg600_$k"
        cut "$name" "$(pick "$name" "$range")" 600
    done
else
    note "the negatives are only $total s long: no 10-minute negative"
fi
mv "$dir/long.tsv.tmp" "$dir/long.tsv"
printf '%s\n' "$stamp" >"$out/stamp"
note "$split: $(wc -l <"$dir/long.tsv") long negatives in $out"
