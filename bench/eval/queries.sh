#!/usr/bin/env bash
# queries.sh OUTDIR SPLIT SEED -- the query clips of the accuracy evaluation.
#
# Reads OUTDIR/catalog_SPLIT.tsv and OUTDIR/negatives_SPLIT.tsv (corpus.sh)
# and writes clips cut from both at pseudo-random positions, each under one
# transform, into OUTDIR/queries/SPLIT/TRANSFORM/, with
# OUTDIR/queries/SPLIT/manifest.tsv describing them (see README.md).
#
# Deterministic: every clip's positions come from a Park-Miller generator
# seeded with a hash of (SEED, track, transform, length, repetition), so a
# clip does not change when tracks or transforms are added.  Nothing is done
# when the stamp file says the clips were made with the same seed, version,
# transforms and track lists.
#
# A transform is one name in CORE_TRANSFORMS or ROBUST_TRANSFORMS and one
# branch of the case statements in transform_factor() and make_clip().
# Environment: EVAL_JOBS (parallel jobs, default: the number of cores),
# EVAL_TRANSFORMS (a subset of the transforms, for experiments).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

VERSION=5
CORE_TRANSFORMS="clean mp3_64 opus_24 white_snr10 pink_snr0 mix_music phone reverb
    quiet_compand speed_p5 speed_m5 speed_p10 tempo_p5 pitch_p1 embed"
# the "robust set": reported in a table section of their own
ROBUST_TRANSFORMS="speed_m10 speed_p15 speed_m15 speed_p20 speed_m20
    tempo_p10 tempo_m10 tempo_p20 tempo_m20 pitch_m1 pitch_p2 pitch_m2"
LENGTHS="5 10"
EMBED_LENGTH=10           # embed: this long an excerpt ...
EMBED_TOTAL=60            # ... inside a query this long
MARGIN=0.1                # seconds kept clear of a track's end
# stored clips: mono 16-bit WAV at this rate (the fingerprinter resamples);
# codec transforms keep their own format, phone keeps 8 kHz
OUT_RATE=22050
WORK_RATE=44100           # transforms work on stereo clips at this rate

# transform_factor NAME: seconds of source audio per second of query (the
# speed), the set, and query frequency per source frequency (the pitch).
# Prints "SPEED SET PITCH".
transform_factor() {
    local set=core robust
    robust=" $(echo $ROBUST_TRANSFORMS) "
    case $robust in *" $1 "*) set=robust ;; esac
    awk -v t="$1" -v s=$set 'BEGIN {
        speed = 1; pitch = 1; n = t; sub(/^[a-z]+_[pm]/, "", n)
        sign = (t ~ /_m[0-9]+$/) ? -1 : 1
        if (t ~ /^speed_[pm][0-9]+$/) { speed = 1 + sign * n / 100; pitch = speed }
        else if (t ~ /^tempo_[pm][0-9]+$/) speed = 1 + sign * n / 100
        else if (t ~ /^pitch_[pm][0-9]+$/) pitch = exp(sign * n / 12 * log(2))
        printf "%.4f %s %.6f\n", speed, s, pitch }'
}

# rms FILE: RMS amplitude over all channels
rms() { sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ { print $3; exit }'; }

# mix_scaled A B OUT RATIO: A + B scaled to RMS(A)/RMS(B)/RATIO, both halved
# so that the sum does not clip
mix_scaled() {
    local ra rb k
    ra=$(rms "$1"); rb=$(rms "$2")
    k=$(awk -v a="$ra" -v b="$rb" -v r="$4" 'BEGIN { if (b <= 0) exit 1; printf "%.6f", 0.5 * a / b / r }') \
        || { echo "silent mix input" >&2; return 1; }
    sox -R -V1 -m -v 0.5 "$1" -v "$k" "$2" -r "$OUT_RATE" -c 1 -b 16 "$3"
}

# make_clip: one job (a line of jobs.tsv) -> one clip
make_clip() {
    local dir=$1 line=$2 out tr len srclen src start other ostart qoff factor tmp t
    IFS=$'\t' read -r out tr len srclen src start other ostart qoff factor <<<"$line"
    tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
    t=$tmp
    local fmt=(-r "$OUT_RATE" -c 1 -b 16)
    sox -R -V1 "$src" -r "$WORK_RATE" -c 2 -b 16 "$t/base.wav" trim "$start" "$srclen"
    case $tr in
        clean)         sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" ;;
        mp3_64)        lame --quiet -b 64 "$t/base.wav" "$t/c.mp3"
                       lame --quiet --decode "$t/c.mp3" "$t/d.wav"
                       sox -R -V1 "$t/d.wav" "${fmt[@]}" "$dir/$out" ;;
        opus_24)       opusenc --quiet --serial 1 --bitrate 24 "$t/base.wav" "$dir/$out" ;;
        white_snr10)   sox -R -V1 -n -r "$WORK_RATE" -c 2 -b 16 "$t/n.wav" synth "$srclen" whitenoise
                       mix_scaled "$t/base.wav" "$t/n.wav" "$dir/$out" 3.16228 ;;
        pink_snr0)     sox -R -V1 -n -r "$WORK_RATE" -c 2 -b 16 "$t/n.wav" synth "$srclen" pinknoise
                       mix_scaled "$t/base.wav" "$t/n.wav" "$dir/$out" 1 ;;
        mix_music)     sox -R -V1 "$other" -r "$WORK_RATE" -c 2 -b 16 "$t/o.wav" trim "$ostart" "$srclen"
                       mix_scaled "$t/base.wav" "$t/o.wav" "$dir/$out" 1 ;;
        phone)         sox -R -V1 "$t/base.wav" -r 8000 -c 1 -b 16 "$dir/$out" sinc 300-3400 rate 8k ;;
        reverb)        sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" reverb 70 50 100 100 0 0 ;;
        quiet_compand) sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" gain -20 compand 0.3,1 6:-70,-60,-20 -5 -90 0 ;;
        speed_[pm]*)   sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" speed "$factor" ;;
        tempo_[pm]*)   sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" tempo -m "$factor" ;;
        pitch_p*)      sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" pitch "${tr#pitch_p}00" ;;
        pitch_m*)      sox -R -V1 "$t/base.wav" "${fmt[@]}" "$dir/$out" pitch "-${tr#pitch_m}00" ;;
        embed)         # background at the excerpt's loudness, excerpt at qoff
                       local bglen k
                       bglen=$((EMBED_TOTAL - EMBED_LENGTH))
                       sox -R -V1 "$other" -r "$WORK_RATE" -c 2 -b 16 "$t/o.wav" trim "$ostart" "$bglen"
                       k=$(awk -v a="$(rms "$t/base.wav")" -v b="$(rms "$t/o.wav")" \
                           'BEGIN { if (b <= 0) exit 1; printf "%.6f", a / b }') \
                           || { echo "silent background" >&2; return 1; }
                       sox -R -V1 -v "$k" "$t/o.wav" "$t/pre.wav" trim 0 "$qoff"
                       sox -R -V1 -v "$k" "$t/o.wav" "$t/post.wav" trim "$qoff"
                       sox -R -V1 "$t/pre.wav" "$t/base.wav" "$t/post.wav" "${fmt[@]}" "$dir/$out" ;;
        *) echo "unknown transform $tr" >&2; return 1 ;;
    esac
    rm -rf "$tmp"
    # the clip decodes and is as long as it should be
    local d want=$len
    [ "$tr" = embed ] && want=$EMBED_TOTAL
    d=$(clip_seconds "$dir/$out")
    awk -v d="$d" -v w="$want" 'BEGIN { exit !(d >= 0.9 * w) }' \
        || { echo "clip is ${d:-?} s long, wanted $want s" >&2; return 1; }
}

# clip_seconds FILE: duration (sox here has no Opus reader: opusinfo)
clip_seconds() {
    case $1 in
        *.opus) opusinfo "$1" | awk '/Playback length:/ {
                    split($3, a, /[m:s]+/); print a[1] * 60 + a[2]; exit }' ;;
        *) soxi -D "$1" ;;
    esac
}

worker() { # DIR LINE
    local err=$1/.err.$$ rc
    set +e
    ( set -e; make_clip "$1" "$2" ) 2>"$err"
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
        printf 'queries.sh: clip %s failed: %s\n' "${2%%$'\t'*}" "$(tr '\n' ' ' <"$err")" >&2
        rm -f "$err"; exit 1
    fi
    rm -f "$err"
}

if [ "${1:-}" = --worker ]; then
    shift; worker "$@"; exit
fi

[ $# -eq 3 ] || die "usage: queries.sh OUTDIR small|full SEED"
outdir=$1 split=$2 seed=$3
case $split in small|full) ;; *) die "SPLIT must be small or full, not '$split'" ;; esac
case $seed in ''|*[!0-9]*) die "SEED must be a non-negative integer, not '$seed'" ;; esac
catalog=$outdir/catalog_$split.tsv negatives=$outdir/negatives_$split.tsv
[ -s "$catalog" ] && [ -s "$negatives" ] || die "$catalog or $negatives missing: run corpus.sh first"

if [ "$split" = small ]; then
    transforms=$CORE_TRANSFORMS reps_catalog=1 reps_negative=1
else
    transforms="$CORE_TRANSFORMS $ROBUST_TRANSFORMS" reps_catalog=2 reps_negative=1
fi
transforms=$(echo ${EVAL_TRANSFORMS:-$transforms})
jobs=${EVAL_JOBS:-$(nproc 2>/dev/null || echo 2)}

dir=$outdir/queries/$split
stamp="version=$VERSION seed=$seed rate=$OUT_RATE lengths=$LENGTHS reps=$reps_catalog/$reps_negative"
stamp="$stamp catalog=$(sha256sum <"$catalog" | cut -c1-16) negatives=$(sha256sum <"$negatives" | cut -c1-16)"
stamp="$stamp transforms=$(echo $transforms | tr ' ' ,)"
if [ -s "$dir/manifest.tsv" ] && [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then
    note "$dir is up to date ($(($(wc -l <"$dir/manifest.tsv") - 1)) clips)"
    exit 0
fi

ensure_tools
rm -rf "$dir"
mkdir -p "$dir"

# the transforms' table: name, source seconds per query second, set
for tr in $transforms; do
    printf '%s %s\n' "$tr" "$(transform_factor "$tr")"
    mkdir -p "$dir/$tr"
done >"$dir/.transforms"

# 1. the jobs and the manifest, in one deterministic pass
awk -F'\t' -v OFS='\t' -v seed="$seed" -v lengths="$LENGTHS" \
    -v rc="$reps_catalog" -v rn="$reps_negative" -v margin="$MARGIN" \
    -v elen="$EMBED_LENGTH" -v etot="$EMBED_TOTAL" \
    -v tfile="$dir/.transforms" -v jobs="$dir/.jobs" -v man="$dir/.manifest" '
BEGIN {
    M = 2147483647
    for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
    while ((getline l < tfile) > 0) {
        split(l, a, " "); nt++; tname[nt] = a[1]; tfac[a[1]] = a[2]; tset[a[1]] = a[3]; tpitch[a[1]] = a[4]
    }
    nl = split(lengths, len, " ")
    print "query_path", "transform", "length_s", "truth_id", "truth_offset_s", "query_offset_s",
          "is_negative", "set", "speed", "pitch",
          "source_id", "source_offset_s", "other_id", "other_offset_s" > man
}
# Park-Miller, seeded by a string hash of the key and the seed
function rseed(key,   h, i) {
    h = seed % M
    for (i = 1; i <= length(key); i++) h = (h * 131 + ord[substr(key, i, 1)]) % M
    if (h == 0) h = 1
    st = h; rnd(); rnd(); rnd()
}
function rnd() { st = (st * 16807) % M; return st / M }
function ms(x) { return sprintf("%.3f", int(x * 1000) / 1000) }
FNR == 1 { kind = (FILENAME ~ /negatives_[a-z]*\.tsv$/) ? "n" : "c"; next }
{ n++; id[n] = $1; path[n] = $2; dur[n] = $3 + 0; neg[n] = (kind == "n")
  if (neg[n]) negs[++nneg] = n }
END {
    for (i = 1; i <= n; i++) for (t = 1; t <= nt; t++) {
        tr = tname[t]; reps = neg[i] ? rn : rc
        for (li = 1; li <= nl; li++) {
            L = len[li]
            if (tr == "embed" && L != elen) continue
            for (r = 1; r <= reps; r++) {
                rseed(tr "|" L "|" r "|" id[i])
                srclen = ms(L * tfac[tr] + 0.0005)
                room = dur[i] - srclen - margin
                if (room < 0) { print "skip (track too short)", id[i], tr, L > "/dev/stderr"; continue }
                start = ms(rnd() * room)
                other = ""; ostart = "-"; qoff = 0
                if (tr == "mix_music" || tr == "embed") {
                    need = (tr == "embed") ? etot - elen : srclen
                    # a negative track other than this one, long enough
                    k = 0
                    for (j = 1; j <= nneg; j++)
                        if (negs[j] != i && dur[negs[j]] >= need + margin) cand[++k] = negs[j]
                    u = rnd()
                    if (k == 0) { print "skip (no background track)", id[i], tr, L > "/dev/stderr"; continue }
                    o = cand[int(u * k) + 1]
                    other = o; ostart = ms(rnd() * (dur[o] - need - margin))
                    if (tr == "embed") qoff = ms(0.5 + rnd() * (etot - elen - 1))
                }
                ext = (tr == "opus_24") ? "opus" : "wav"
                out = tr "/" id[i] "_" L "s_" r "." ext
                print out, tr, L, srclen, path[i], start, (other ? path[other] : "-"), ostart, qoff, tfac[tr] > jobs
                print out, tr, L, (neg[i] ? "-" : id[i]), (neg[i] ? "-" : start), qoff, neg[i],
                      tset[tr], tfac[tr], tpitch[tr], id[i], start, (other ? id[other] : "-"), ostart > man
            }
        }
    }
}' "$catalog" "$negatives"

total=$(wc -l <"$dir/.jobs")
note "$split: $total clips, $jobs jobs in parallel"
t0=$(date +%s)
# 2. the clips
if ! tr '\n' '\0' <"$dir/.jobs" | xargs -0 -P "$jobs" -n 1 bash "$here/queries.sh" --worker "$dir"; then
    die "some clips failed (see above); nothing written"
fi
rm -f "$dir/.jobs" "$dir/.transforms"
rmdir "$dir"/.tmp.* 2>/dev/null || true
mv "$dir/.manifest" "$dir/manifest.tsv"
printf '%s\n' "$stamp" >"$dir/stamp"
note "$split: $total clips in $(( $(date +%s) - t0 )) s ($(du -sh "$dir" | cut -f1))"
