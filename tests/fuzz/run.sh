#!/bin/sh
# run.sh [SECONDS] -- build the fuzz harnesses and run each in turn.
#
# decode    tests/fuzz/fuzz_decode.c, compiled together with the fingerprint
#           core's sources (not the library built by make, so that the core
#           is instrumented too); the corpus is seeded with short snippets of
#           a real track in WAV, FLAC, Ogg Vorbis, Ogg Opus and MP3 (and float
#           WAV, 24-bit AIFF).
# manifest  tests/fuzz/fuzz_manifest.c, compiled together with the indexer's
#           sources (indexer/; jansson as installed); seeded with small CSV
#           and JSON Lines manifests and given a dictionary of their words.
# prints    tests/fuzz/fuzz_prints.c, compiled together with
#           server/server_json.c and the fingerprint core's sources (jansson
#           and libmicrohttpd as installed): the JSON prints a client uploads
#           instead of audio; seeded with the `earmark fingerprint --json`
#           output of a 2 s clip (made at run time with sox and build/earmark,
#           or $EARMARK) and small hand-written variants, and given a
#           dictionary of the keys.
# rows      tests/fuzz/fuzz_rows.c, compiled together with
#           store/store_codec.c (headers only from db/, match/, fingerprint/
#           and libpq): the posting rows read back from PostgreSQL, decoded
#           and encoded again; seeded with rows the harness encodes from
#           random postings at run time (its FUZZ_ROWS_SEEDS=DIR mode).
#
# Each is built with clang's libFuzzer, AddressSanitizer and UBSan and fuzzed
# for SECONDS (default 60, or $FUZZ_SECONDS), one after the other.
#
# Exits 0 when no run found anything, 1 when one found a crash, a sanitizer
# report, a leak, a timeout or an out-of-memory input (kept in
# build/fuzz/artifacts/ for decode, build/fuzz/NAME/artifacts/ for the
# others, with the command to reproduce it), or when the tools are missing.
#
# Environment: CLANG (compiler, default clang), FUZZ_ARGS (extra libFuzzer
# options, e.g. "-jobs=2 -workers=2"), BUILD_FUZZ (output folder, default
# build/fuzz), FUZZ_TARGETS (the harnesses to run, default "decode manifest
# prints rows"), EARMARK (the program that makes the prints seed, default
# build/earmark; without it that seed is left out).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

secs=${1:-${FUZZ_SECONDS:-60}}
case $secs in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
out=${BUILD_FUZZ:-build/fuzz}
CLANG=${CLANG:-clang}
targets=${FUZZ_TARGETS:-decode manifest prints rows}
for t in $targets; do
    case $t in
        decode|manifest|prints|rows) ;;
        *) echo "$0: unknown harness '$t' in FUZZ_TARGETS (decode, manifest, prints, rows)" >&2
           exit 2 ;;
    esac
done
want() { case " $targets " in *" $1 "*) return 0 ;; esac; return 1; }
# The libraries the core links with, as the Makefile says.
pkgs=$(sed -n 's/^PKGS[[:space:]]*:*=[[:space:]]*//p' Makefile | head -n 1)
[ -n "$pkgs" ] || pkgs="sndfile fftw3f soxr"

say() { echo "fuzz: $*"; }
die() { echo "fuzz: $*" >&2; exit 1; }

mkdir -p "$out" || die "cannot create $out"

# ---- tools -----------------------------------------------------------------

libfuzzer_works() {
    command -v "$CLANG" >/dev/null 2>&1 || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$out/probe.c"
    "$CLANG" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" \
        >"$out/probe.log" 2>&1
}

if ! libfuzzer_works; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "clang with libFuzzer is missing: installing clang and libclang-rt-14-dev"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q clang libclang-rt-14-dev >"$out/apt.log" 2>&1 ||
            { apt-get update -q >>"$out/apt.log" 2>&1 &&
              apt-get install -y -q clang libclang-rt-14-dev >>"$out/apt.log" 2>&1; }
    fi
    libfuzzer_works || die "cannot build a libFuzzer program with '$CLANG' \
(need clang and its libFuzzer runtime, Debian: apt-get install clang libclang-rt-14-dev); \
see $out/probe.log"
fi
rm -f "$out/probe" "$out/probe.c"

if want decode; then
    pkg-config --exists $pkgs ||
        die "pkg-config cannot find one of: $pkgs (run scripts/deps)"
fi
if want manifest; then
    pkg-config --exists jansson ||
        die "pkg-config cannot find jansson (run scripts/deps)"
fi
if want prints; then
    pkg-config --exists $pkgs jansson libmicrohttpd ||
        die "pkg-config cannot find one of: $pkgs jansson libmicrohttpd (run scripts/deps)"
fi
if want rows; then
    pkg-config --exists libpq ||
        die "pkg-config cannot find libpq (run scripts/deps)"
fi

# run_harness NAME BINARY WORKDIR ARTIFACTS SEEDS MAXLEN [LIBFUZZER-ARGS...]
# Fuzzes for $secs s with the corpus in WORKDIR/corpus and the log in
# WORKDIR/fuzz.log.  Earlier findings are moved aside, not lost.  Returns 1
# when the run found something.
run_harness() {
    name=$1 bin=$2 work=$3 art=$4 seeds=$5 maxlen=$6
    shift 6
    mkdir -p "$work/corpus" "$art"
    if ls "$art"/* >/dev/null 2>&1; then
        mkdir -p "$art/previous"
        for f in "$art"/*; do
            [ -f "$f" ] && mv "$f" "$art/previous/"
        done
    fi
    log="$work/fuzz.log"
    say "$name: fuzzing for $secs s (log: $log)"
    # shellcheck disable=SC2086
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" "$work/corpus" "$seeds" \
        -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 -max_total_time="$secs" \
        -artifact_prefix="$art/" -print_final_stats=1 "$@" ${FUZZ_ARGS:-} \
        >"$log" 2>&1
    rc=$?

    # The decoders' own chatter on stderr (libmpg123 resync notes) is noise here.
    grep -v -e '^Note: ' -e '^\[src/libmpg123' -e 'Trying to resync' \
        -e 'Hit end of (available) data' "$log" | tail -n 25

    found=$(ls "$art" 2>/dev/null | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        echo
        say "$name: FOUND A PROBLEM (libFuzzer exit $rc)"
        for f in $found; do
            say "  $art/$f"
            say "  reproduce: $bin $art/$f"
        done
        grep -E -m 5 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|broken promise|SUMMARY' "$log"
        return 1
    fi
    say "$name: no crash, leak or timeout in $secs s ($(ls "$work/corpus" | wc -l) inputs in $work/corpus)"
    return 0
}

status=0

# ===== decode ================================================================

if want decode; then  # (body not indented: it is the script as it was before the manifest harness)

# ---- build -----------------------------------------------------------------

# The decoding and control code gets libFuzzer's full instrumentation; the
# signal-processing stages get edge coverage only: comparison tracing in their
# per-sample loops learns nothing about the input's structure and makes every
# run about six times slower.
obj="$out/obj"
rm -rf "$obj"
mkdir -p "$obj"
common="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Wno-unused-parameter -pthread -Ifingerprint $(pkg-config --cflags $pkgs)"
n=0
say "building $out/fuzz_decode"
for f in fingerprint/*.c; do
    b=$(basename "$f" .c)
    case $b in
        cmd_*) continue ;;
        fp_decode*|fp_extract*|fp_error*|fp_config*) cov="-fsanitize=fuzzer-no-link" ;;
        *) cov="-fsanitize-coverage=inline-8bit-counters,pc-table" ;;
    esac
    # shellcheck disable=SC2086
    "$CLANG" $common $cov -c "$f" -o "$obj/$b.o" || die "cannot compile $f"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || die "no sources in fingerprint/"
# shellcheck disable=SC2046,SC2086
"$CLANG" $common -fsanitize=fuzzer tests/fuzz/fuzz_decode.c "$obj"/*.o \
    -o "$out/fuzz_decode" $(pkg-config --libs $pkgs) -lm \
    || die "build failed"

# ---- seed corpus -------------------------------------------------------------

seed="$out/seed"
rm -rf "$seed"
mkdir -p "$seed" "$out/corpus" "$out/artifacts"
track=/usr/share/games/supertuxkart/data/music/Boom_boom_boom.ogg
tmp="$out/seed-tmp"
mkdir -p "$tmp"

if command -v sox >/dev/null 2>&1; then
    if [ -r "$track" ]; then
        src="$track"
        at="trim 20"
    else
        say "no corpus track ($track): seeding from a synthetic tone"
        sox -n -r 44100 -c 2 "$tmp/tone.wav" synth 3 pluck C4 pluck E5 2>/dev/null
        src="$tmp/tone.wav"
        at="trim 0"
    fi
    sox "$src" -r 8000 -c 1 -b 16 "$seed/mono-8k.wav" $at 1.5 2>/dev/null
    sox "$src" -r 22050 -c 2 -b 16 "$seed/stereo-22k.wav" $at 0.5 2>/dev/null
    sox "$src" -r 11025 -c 1 -e floating-point -b 32 "$seed/float-11k.wav" $at 1 2>/dev/null
    sox "$src" -r 8000 -c 2 -b 24 "$seed/stereo-8k-24bit.aiff" $at 1 2>/dev/null
    sox "$src" -r 16000 -c 1 "$seed/mono-16k.flac" $at 1.5 2>/dev/null
    sox "$src" -r 22050 -c 2 -C -1 "$seed/stereo-22k.ogg" $at 2 2>/dev/null
    sox "$src" -r 48000 -c 2 -b 16 "$tmp/48k.wav" $at 2 2>/dev/null
    sox "$src" -r 22050 -c 1 -b 16 "$tmp/22k.wav" $at 2 2>/dev/null
    if command -v opusenc >/dev/null 2>&1; then
        opusenc --quiet --bitrate 16 "$tmp/48k.wav" "$seed/stereo.opus" 2>/dev/null
    else
        say "no opusenc: no Opus seed"
    fi
    if command -v lame >/dev/null 2>&1; then
        lame --quiet -b 32 "$tmp/22k.wav" "$seed/mono-22k.mp3" 2>/dev/null
        lame --quiet -b 24 -m m --add-id3v2 --tt seed --ta earmark "$tmp/22k.wav" \
            "$seed/mono-22k-id3.mp3" 2>/dev/null
    else
        say "no lame: no MP3 seed"
    fi
else
    say "no sox: fuzzing without seed files"
fi
rm -rf "$tmp"
# libFuzzer truncates inputs to -max_len; keep only seeds that fit.
for f in "$seed"/*; do
    [ -f "$f" ] || continue
    [ "$(wc -c <"$f")" -le 65536 ] || { say "dropping $(basename "$f"): over 64 KiB"; rm -f "$f"; }
done
say "seeds: $(ls "$seed" | tr '\n' ' ')"

# ---- run ---------------------------------------------------------------------

run_harness decode "$out/fuzz_decode" "$out" "$out/artifacts" "$seed" 65536 || status=1

fi

# ===== manifest ==============================================================

if want manifest; then
    mdir="$out/manifest"
    mkdir -p "$mdir/obj"
    rm -f "$mdir/obj"/*.o
    say "building $mdir/fuzz_manifest"
    # The parsers are all control code: full instrumentation for all.
    mcommon="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Wno-unused-parameter -pthread -Iindexer $(pkg-config --cflags jansson)"
    for f in indexer/*.c; do
        # the command (cmd_index.c) needs the CLI and the store: not fuzzed
        case $(basename "$f") in cmd_*) continue ;; esac
        # shellcheck disable=SC2086
        "$CLANG" $mcommon -fsanitize=fuzzer-no-link -c "$f" -o "$mdir/obj/$(basename "$f" .c).o" ||
            die "cannot compile $f"
    done
    # shellcheck disable=SC2046,SC2086
    "$CLANG" $mcommon -fsanitize=fuzzer tests/fuzz/fuzz_manifest.c "$mdir"/obj/*.o \
        -o "$mdir/fuzz_manifest" $(pkg-config --libs jansson) || die "build failed"

    # Seeds: the first byte picks the reading (% 3: CSV, JSON Lines, auto;
    # 0x80: a base folder), the rest is the manifest.
    mseed="$mdir/seed"
    rm -rf "$mseed"
    mkdir -p "$mseed"
    printf '\000path,isrc,title,artist,tenant\r\na.wav,US1,"T, ""x""",A,acme\r\n"b\nc.flac",,,,\r\n' \
        >"$mseed/csv"
    printf '\200\357\273\277 Path ,id,notes\n./x/a.wav,7,"n"\n\n/abs/b.ogg,,\n' >"$mseed/csv-base"
    printf '\001{"path":"a.wav","external_id":12,"title":"T","artist":null,"x":[1,{}]}\n\n{"path":"b.wav","tenant":"t","external_id":"US1"}\r\n' \
        >"$mseed/jsonl"
    printf '\202 {"path":"./a\\u00e9.wav","external_id":3.0}\n' >"$mseed/auto-jsonl"
    printf '\002title,path\n"x",y.wav\n' >"$mseed/auto-csv"
    # A libFuzzer dictionary: the words the parsers look for.
    cat >"$mdir/manifest.dict" <<'EOF'
"path"
"external_id"
"isrc"
"title"
"artist"
"tenant"
"null"
"\""
"\"\""
"\",\""
"\x0d\x0a"
"\xef\xbb\xbf"
"{\"path\":"
"\\u0000"
EOF
    say "seeds: $(ls "$mseed" | tr '\n' ' ')"

    run_harness manifest "$mdir/fuzz_manifest" "$mdir" "$mdir/artifacts" "$mseed" 70000 \
        -dict="$mdir/manifest.dict" || status=1
fi

# ===== prints ================================================================

if want prints; then
    pdir="$out/prints"
    mkdir -p "$pdir/obj"
    rm -f "$pdir/obj"/*.o
    say "building $pdir/fuzz_prints"
    pcommon="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Wno-unused-parameter -pthread -Iserver -Ifingerprint -Imatch \
        $(pkg-config --cflags $pkgs jansson libmicrohttpd)"
    # The parser gets libFuzzer's full instrumentation; of the core, only
    # fp_config_id() and fp_config_frame_seconds() are called: no coverage.
    # shellcheck disable=SC2086
    "$CLANG" $pcommon -fsanitize=fuzzer-no-link -c server/server_json.c \
        -o "$pdir/obj/server_json.o" || die "cannot compile server/server_json.c"
    for f in fingerprint/*.c; do
        b=$(basename "$f" .c)
        case $b in cmd_*) continue ;; esac
        # shellcheck disable=SC2086
        "$CLANG" $pcommon -c "$f" -o "$pdir/obj/$b.o" || die "cannot compile $f"
    done
    # shellcheck disable=SC2046,SC2086
    "$CLANG" $pcommon -fsanitize=fuzzer tests/fuzz/fuzz_prints.c "$pdir"/obj/*.o \
        -o "$pdir/fuzz_prints" $(pkg-config --libs $pkgs jansson libmicrohttpd) -lm \
        || die "build failed"

    # Seeds: a real `earmark fingerprint --json` of a 2 s clip, and small
    # bodies with the server's parameters (the harness prints them).
    pseed="$pdir/seed"
    rm -rf "$pseed"
    mkdir -p "$pseed"
    cfgline=$(FUZZ_PRINTS_CONFIG=1 "$pdir/fuzz_prints" 2>/dev/null) ||
        die "$pdir/fuzz_prints cannot tell the parameters"
    pv=${cfgline%% *}
    ci=${cfgline#* }
    earmark=${EARMARK:-build/earmark}
    clip=/usr/share/games/supertuxkart/data/music/Snowy.ogg
    tmp="$pdir/seed-tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [ ! -x "$earmark" ]; then
        say "no $earmark (run make): no seed of real prints"
    elif ! command -v sox >/dev/null 2>&1; then
        say "no sox: no seed of real prints"
    else
        if [ -r "$clip" ]; then
            sox "$clip" "$tmp/clip.wav" trim 5 2 2>/dev/null
        else
            say "no corpus track ($clip): real prints of a synthetic tone"
            sox -n -r 44100 -c 2 "$tmp/clip.wav" synth 2 pluck C4 pluck E5 2>/dev/null
        fi
        if "$earmark" fingerprint --json "$tmp/clip.wav" >"$pseed/real.json" 2>"$tmp/earmark.log" &&
           [ -s "$pseed/real.json" ]; then
            grep -q "\"config_id\":\"$ci\"" "$pseed/real.json" ||
                say "$earmark was built with other parameters than the sources (not v$pv/$ci): run make"
        else
            say "$earmark fingerprint --json failed: no seed of real prints"
            rm -f "$pseed/real.json"
        fi
    fi
    rm -rf "$tmp"
    head="\"params_version\":$pv,\"config_id\":\"$ci\""
    printf '{%s,"prints":[[0,257345,492,27],[3,2147485267,3327,692],[3,167813,327,102]],"duration":1.5}\n' \
        "$head" >"$pseed/small.json"
    printf '{"file":"a.wav","format":"wav",%s,"frame_seconds":0.0232199546,"count":0,"prints":[]}' \
        "$head" >"$pseed/empty.json"
    printf '{%s,"prints":[[2147483647,4294967295,65535,65535]],"duration":-1}' "$head" >"$pseed/max.json"
    printf '{"params_version":%d,"config_id":"%s","prints":[[0,1,2,3]]}' $((pv + 1)) "$ci" \
        >"$pseed/wrong-version.json"
    printf '{"params_version":%s,"config_id":"00000000","prints":[[0,1,2,3]]}' "$pv" \
        >"$pseed/wrong-config.json"
    printf '{%s,"prints":[[0,1,2]]}' "$head" >"$pseed/short-print.json"
    printf '{%s,"prints":[[0,1,2,3,4]]}' "$head" >"$pseed/long-print.json"
    printf '{%s,"prints":[[0,1,2,"3"]]}' "$head" >"$pseed/string-dt.json"
    printf '{%s,"prints":[[0,1,2,1.5]]}' "$head" >"$pseed/real-dt.json"
    printf '{%s,"prints":[[-1,1,2,3]]}' "$head" >"$pseed/negative-t.json"
    printf '{%s,"prints":[[2147483648,1,2,3]]}' "$head" >"$pseed/big-t.json"
    printf '{%s,"prints":[[0,4294967296,2,3]]}' "$head" >"$pseed/big-hash.json"
    printf '{%s,"prints":[[0,1,65536,3]]}' "$head" >"$pseed/big-f.json"
    printf '{%s,"prints":[5,{}]}' "$head" >"$pseed/not-arrays.json"
    printf '{%s,"prints":{}}' "$head" >"$pseed/prints-object.json"
    printf '{%s,"prints":[],"prints":[]}' "$head" >"$pseed/duplicate-key.json"
    printf '[%s]' "$pv" >"$pseed/array.json"
    printf '{%s,"prints":[[0,1,2' "$head" >"$pseed/cut.json"
    # A libFuzzer dictionary: the keys and the values that matter.
    {
        # shellcheck disable=SC1003
        for w in params_version config_id prints duration frame_seconds count file \
                 "$ci" "\\\"$ci\\\"" "$pv" '[0,1,2,3]' 2147483647 2147483648 4294967295 \
                 4294967296 65535 65536 -1 1e308 0.5 null true false \
                 '\\u' '\\n' '\\\"' '\\\\'; do
            printf '"%s"\n' "$w"
        done
        printf '"\\"%s\\""\n' params_version config_id prints duration
    } >"$pdir/prints.dict"
    for f in "$pseed"/*; do
        [ -f "$f" ] || continue
        [ "$(wc -c <"$f")" -le 16384 ] || { say "dropping $(basename "$f"): over 16 KiB"; rm -f "$f"; }
    done
    say "seeds: $(ls "$pseed" | tr '\n' ' ')"

    run_harness prints "$pdir/fuzz_prints" "$pdir" "$pdir/artifacts" "$pseed" 16384 \
        -dict="$pdir/prints.dict" || status=1
fi

# ===== rows ==================================================================

if want rows; then
    rdir="$out/rows"
    mkdir -p "$rdir/obj"
    rm -f "$rdir/obj"/*.o
    say "building $rdir/fuzz_rows"
    # store_codec.c uses em_store.h and the headers it includes (em_db.h
    # wants libpq-fe.h), but links with nothing of the database code.
    rcommon="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Wno-unused-parameter -pthread -Istore -Idb -Imatch -Ifingerprint \
        $(pkg-config --cflags libpq)"
    # shellcheck disable=SC2086
    "$CLANG" $rcommon -fsanitize=fuzzer-no-link -c store/store_codec.c \
        -o "$rdir/obj/store_codec.o" || die "cannot compile store/store_codec.c"
    # shellcheck disable=SC2086
    "$CLANG" $rcommon -fsanitize=fuzzer tests/fuzz/fuzz_rows.c "$rdir/obj/store_codec.o" \
        -o "$rdir/fuzz_rows" -lm || die "build failed"

    # Seeds: rows store_rows_encode() makes of random postings (the harness
    # writes them), as 4 bytes of start key then the row.
    rseed="$rdir/seed"
    rm -rf "$rseed"
    mkdir -p "$rseed"
    FUZZ_ROWS_SEEDS="$rseed" "$rdir/fuzz_rows" >"$rdir/seed.log" 2>&1 ||
        die "$rdir/fuzz_rows cannot write its seeds (see $rdir/seed.log)"
    say "seeds: $(ls "$rseed" | tr '\n' ' ')"

    run_harness rows "$rdir/fuzz_rows" "$rdir" "$rdir/artifacts" "$rseed" 4096 || status=1
fi

exit $status
