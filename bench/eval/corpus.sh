#!/usr/bin/env bash
# corpus.sh OUTDIR -- the real-music corpus of the accuracy evaluation.
#
# Installs the Debian music packages when missing, lists their tracks of at
# least MIN_SECONDS, drops duplicates (same sha256, or SAME_MUSIC) and the
# sped-up "_fast" variants, and splits the rest deterministically into a
# catalog (~70% of the tracks) and a negative set (~30%): whole sources or
# pairs that share material (SOURCE_SIDE, RELATED) and the originals of the
# speed variants are placed explicitly, the other tracks by a hash of their
# path (CATALOG_PERMILLE).
#
# Writes, in OUTDIR:
#   catalog_full.tsv  negatives_full.tsv    id, path, duration_seconds
#   catalog_small.tsv negatives_small.tsv   a few short tracks of each, for CI
#   speed_variants.tsv                      fast_path, orig_path (excluded)
#   duplicates.tsv                          dup_path, kept_path, reason (excluded)
#   related.tsv                             path, partner, note (kept together)
#   corpus.log                              what was skipped and why
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || die "usage: corpus.sh OUTDIR"
out=$1
mkdir -p "$out"

PACKAGES="planetblupi-music-ogg drascula-music asc-music freedink-data supertuxkart-data"
# source name (the id prefix) and folder, one per line
SOURCES="blupi /usr/share/planetblupi/music
drascula /usr/share/scummvm/drascula/audio
asc /usr/share/games/asc/music
dink /usr/share/games/dink
stk /usr/share/games/supertuxkart/data/music"
MIN_SECONDS=30
CATALOG_PERMILLE=600      # share of the (ungrouped) tracks that go to the catalog
SMALL_CATALOG=12
SMALL_NEGATIVES=5
SMALL_MAX_SECONDS=360     # beyond a source's first pick, small tracks only

# Same music in another file with other bytes (another mix or encoding), as
# found by matching whole tracks against each other (run.sh overlap):
# "path<TAB>kept path<TAB>note"; the first is excluded like an exact duplicate.
SAME_MUSIC="/usr/share/scummvm/drascula/audio/track30.ogg	/usr/share/scummvm/drascula/audio/track1.ogg	same composition and timing as track1, another mix"
# Tracks that share some material (a phrase, a section) with another:
# "path<TAB>partner<TAB>note".  The path goes to its partner's side of the
# split, so that a negative never contains catalog material.
RELATED="/usr/share/scummvm/drascula/audio/track9.ogg	/usr/share/scummvm/drascula/audio/track19.ogg	a 3 s phrase of track19 (40 s) is in track9 (47 s)"
# Sources whose tracks are built from the same loops and samples (planetblupi:
# sections of music000, music001, music003 recur in each other; asc: shared
# drum loops) go to one side as a whole: "source=catalog|negatives".
SOURCE_SIDE="blupi=catalog asc=catalog"

ensure_packages $PACKAGES sox libsox-fmt-all

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/corpus.log
: >"$log"

# 1. every audio file: source, path, duration, sha256
while read -r src dir; do
    [ -d "$dir" ] || die "$dir is missing (package of source $src not installed?)"
    find -L "$dir" -type f \( -iname '*.ogg' -o -iname '*.mp3' -o -iname '*.flac' \) \
        | LC_ALL=C sort | while IFS= read -r f; do
        d=$(soxi -D "$f" 2>/dev/null) || { printf 'unreadable\t%s\n' "$f" >>"$log"; continue; }
        h=$(sha256sum <"$f" | cut -c1-64)
        printf '%s\t%s\t%s\t%s\n' "$src" "$f" "$d" "$h"
    done
done <<<"$SOURCES" >"$tmp/all.tsv"

# 2. exclusions; ids; the split.  A file "X_fast*.ext" (or "X_f.ext") next to
# an "X.ext" is a sped-up copy of X: excluded, listed in speed_variants.tsv.
printf '%s\n' "$SAME_MUSIC" >"$tmp/same_music.tsv"
LC_ALL=C awk -F'\t' -v OFS='\t' -v min="$MIN_SECONDS" -v tmp="$tmp" '
FILENAME ~ /same_music/ { if ($1 != "") { same[$1] = $2; why[$1] = $3 }; next }
function base(p,   b) { b = p; sub(/.*\//, "", b); sub(/\.[^.]*$/, "", b); return b }
function dirof(p,   d) { d = p; sub(/\/[^\/]*$/, "", d); return d }
function ext(p,   e) { e = p; sub(/.*\./, "", e); return e }
{ n++; src[n] = $1; path[n] = $2; dur[n] = $3; sha[n] = $4; exists[$2] = 1 }
END {
    for (i = 1; i <= n; i++) {
        p = path[i]; b = base(p); orig = ""
        if (match(b, /_fast/)) orig = dirof(p) "/" substr(b, 1, RSTART - 1) "." ext(p)
        else if (b ~ /_f$/) orig = dirof(p) "/" substr(b, 1, length(b) - 2) "." ext(p)
        if (orig != "" && (orig in exists)) {
            print p, orig > (tmp "/speed_variants.tsv")
            print "speed variant", p, orig > (tmp "/corpus.log"); continue
        }
        if (dur[i] + 0 < min) { print "shorter than " min " s", p, dur[i] > (tmp "/corpus.log"); continue }
        if (p in same) {
            print p, same[p], why[p] > (tmp "/duplicates.tsv")
            print "same music", p, same[p] > (tmp "/corpus.log"); continue
        }
        if (sha[i] in kept) {
            print p, kept[sha[i]], "same sha256" > (tmp "/duplicates.tsv")
            print "duplicate", p, kept[sha[i]] > (tmp "/corpus.log"); continue
        }
        kept[sha[i]] = p
        id = src[i] "-" tolower(b); gsub(/[^a-z0-9-]+/, "-", id)
        if (id in used) id = id "-" substr(sha[i], 1, 6)
        used[id] = 1
        print id, p, sprintf("%.3f", dur[i]), src[i] > (tmp "/kept.tsv")
    }
}' "$tmp/same_music.tsv" "$tmp/all.tsv"
touch "$tmp/speed_variants.tsv" "$tmp/duplicates.tsv"

# split key: the first 32 bits of sha256(path), per mille; a related track
# takes its partner's key
splitkey() { local k; k=$(printf '%s' "$1" | sha256sum | cut -c1-8); echo $(( 16#$k % 1000 )); }
printf '%s\n' "$RELATED" >"$tmp/related.tsv"
while IFS=$'\t' read -r id p d src; do
    key=$p
    while IFS=$'\t' read -r a b why; do [ "$a" = "$p" ] && key=$b; done <"$tmp/related.tsv"
    k=$(splitkey "$key")
    # a track with a sped-up variant is catalog, so the variant can be a query
    cut -f2 "$tmp/speed_variants.tsv" | grep -qxF "$p" && k=0
    case " $SOURCE_SIDE " in
        *" $src=catalog "*) k=0 ;;
        *" $src=negatives "*) k=999 ;;
    esac
    printf '%s\t%s\t%s\t%s\t%d\n' "$id" "$p" "$d" "$src" "$k"
done <"$tmp/kept.tsv" >"$tmp/keyed.tsv"

hdr=$'id\tpath\tduration_seconds'
{ echo "$hdr"; awk -F'\t' -v OFS='\t' -v c="$CATALOG_PERMILLE" '$5 <  c { print $1, $2, $3 }' "$tmp/keyed.tsv"; } >"$tmp/catalog_full.tsv"
{ echo "$hdr"; awk -F'\t' -v OFS='\t' -v c="$CATALOG_PERMILLE" '$5 >= c { print $1, $2, $3 }' "$tmp/keyed.tsv"; } >"$tmp/negatives_full.tsv"

# small split: round robin over the sources, shortest tracks first, so that
# every source is represented and CI stays quick (a source's tracks after its
# shortest one qualify only up to SMALL_MAX_SECONDS)
pick_small() { # KEYED_FILTER COUNT
    awk -F'\t' -v OFS='\t' "$1" "$tmp/keyed.tsv" \
        | LC_ALL=C sort -t$'\t' -k4,4 -k3,3g -k1,1 \
        | awk -F'\t' -v OFS='\t' -v want="$2" -v max="$SMALL_MAX_SECONDS" '
            ($4 in seen) && $3 + 0 > max { next }
            { r = ++rank[$4]; line[$4, r] = $1 OFS $2 OFS $3; if (r > maxr) maxr = r
              if (!($4 in seen)) { seen[$4] = 1; srcs[++ns] = $4 } }
            END { got = 0
                  for (r = 1; r <= maxr && got < want; r++)
                      for (s = 1; s <= ns && got < want; s++)
                          if ((srcs[s], r) in line) { print line[srcs[s], r]; got++ } }' \
        | LC_ALL=C sort -t$'\t' -k1,1
}
{ echo "$hdr"; pick_small "\$5 <  $CATALOG_PERMILLE" "$SMALL_CATALOG"; } >"$tmp/catalog_small.tsv"
{ echo "$hdr"; pick_small "\$5 >= $CATALOG_PERMILLE" "$SMALL_NEGATIVES"; } >"$tmp/negatives_small.tsv"

{ printf 'fast_path\torig_path\n'; cat "$tmp/speed_variants.tsv"; } >"$tmp/sv" && mv "$tmp/sv" "$tmp/speed_variants.tsv"
{ printf 'path\tpartner\tnote\n'; cat "$tmp/related.tsv"; } >"$tmp/rel" && mv "$tmp/rel" "$tmp/related.tsv"
{ printf 'dup_path\tkept_path\treason\n'; cat "$tmp/duplicates.tsv"; } >"$tmp/dd" && mv "$tmp/dd" "$tmp/duplicates.tsv"

for f in catalog_full negatives_full catalog_small negatives_small speed_variants duplicates related; do
    mv "$tmp/$f.tsv" "$out/$f.tsv"
done
mv "$log" "$out/corpus.log"

summary() { awk -F'\t' -v name="$2" 'NR > 1 { n++; s += $3 }
    END { printf "%-16s %3d tracks %6.2f h\n", name, n, s / 3600 }' "$1"; }
for f in catalog_full negatives_full catalog_small negatives_small; do
    summary "$out/$f.tsv" "$f"
done
printf '%-16s %3d excluded (%d speed variants, %d duplicates)\n' "" \
    "$(wc -l <"$out/corpus.log")" "$(($(wc -l <"$out/speed_variants.tsv") - 1))" \
    "$(($(wc -l <"$out/duplicates.tsv") - 1))"
