#!/bin/sh
# run.sh [SECONDS] -- build the decoder fuzz harness and run it.
#
# Builds tests/fuzz/fuzz_decode.c with clang's libFuzzer, AddressSanitizer and
# UBSan, compiled together with the fingerprint core's sources (not the
# library built by make, so that the core is instrumented too), seeds a corpus
# with short snippets of a real track in WAV, FLAC, Ogg Vorbis, Ogg Opus and
# MP3 (and float WAV, 24-bit AIFF), and fuzzes for SECONDS (default 60, or $FUZZ_SECONDS).
#
# Exits 0 when the run found nothing, 1 when it found a crash, a sanitizer
# report, a leak, a timeout or an out-of-memory input (kept in
# build/fuzz/artifacts/, with the command to reproduce it), or when the tools
# are missing.
#
# Environment: CLANG (compiler, default clang), FUZZ_ARGS (extra libFuzzer
# options, e.g. "-jobs=2 -workers=2"), BUILD_FUZZ (output folder, default
# build/fuzz).
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

pkg-config --exists $pkgs ||
    die "pkg-config cannot find one of: $pkgs (run scripts/deps)"

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

# Earlier findings are moved aside, not lost.
if ls "$out/artifacts"/* >/dev/null 2>&1; then
    mkdir -p "$out/artifacts/previous"
    for f in "$out/artifacts"/*; do
        [ -f "$f" ] && mv "$f" "$out/artifacts/previous/"
    done
fi

log="$out/fuzz.log"
say "fuzzing for $secs s (log: $log)"
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
"$out/fuzz_decode" "$out/corpus" "$seed" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -max_total_time="$secs" \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} \
    >"$log" 2>&1
rc=$?

# The decoders' own chatter on stderr (libmpg123 resync notes) is noise here.
grep -v -e '^Note: ' -e '^\[src/libmpg123' -e 'Trying to resync' \
    -e 'Hit end of (available) data' "$log" | tail -n 25

found=$(ls "$out/artifacts" 2>/dev/null | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    echo
    say "FOUND A PROBLEM (libFuzzer exit $rc)"
    for f in $found; do
        say "  $out/artifacts/$f"
        say "  reproduce: $out/fuzz_decode $out/artifacts/$f"
    done
    grep -E -m 5 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|broken promise|SUMMARY' "$log"
    exit 1
fi
say "no crash, leak or timeout in $secs s ($(ls "$out/corpus" | wc -l) inputs in $out/corpus)"
exit 0
