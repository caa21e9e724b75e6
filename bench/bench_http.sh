#!/bin/sh
# bench/bench_http.sh -- the matching service under load, end to end: how
# many matches a second `earmark serve` answers, how fast, and whether its
# memory stays flat.
#
#   sh bench/bench_http.sh          (or: make bench-http)
#
# Steps, all in a private cluster of their own:
#   1. the cluster in $BENCH_VAR/pg: `earmark db start`, `earmark db migrate`;
#   2. a small real catalog indexed for tenant $TENANT ("bench"): the files of
#      var/eval/catalog_full.tsv (column 2) when it exists, else the Ogg
#      files of supertuxkart's music folder (a re-run skips what is there);
#   3. an API key for that tenant (`earmark keys create`);
#   4. the clip: 10 s of a catalog file from 30 s on, as 16-bit 44.1 kHz
#      stereo WAV (sox), a typical upload;
#   5. `earmark serve --port 0 --port-file FILE` in the background, and one
#      request to see that it answers 200 before measuring anything;
#   6. build/bench_http: WARMUP seconds of warm-up, then SECONDS seconds at
#      CONNECTIONS connections, with the server's RSS (--pid);
#   7. with SOAK=1, a long run (SOAK_SECONDS after SOAK_WARMUP) whose
#      figure is the RSS slope: memory is flat when |slope| <= SLOPE_MAX
#      MB/min;
#   8. the mean time of each stage of a match (decode, match, store) from
#      the server's /metrics, and how many lookups were narrowed (their
#      second part fetched for the first part's matches only); SIGTERM to
#      the server, which must exit 0 within its grace period;
#      the cluster is stopped (on any exit of this script, too).
# The reports go to stdout and to $BENCH_VAR/report.txt (soak.txt); the
# server's log (one line a request) to $BENCH_VAR/serve.log.
#
# Environment: BUILD (default build), BENCH_VAR (default ./var/bench-http),
# CONNECTIONS (32), SECONDS (30), WARMUP (5), WORKERS (server matching
# threads, default one per core), SOAK=1, SOAK_SECONDS (300), SOAK_WARMUP
# (30), SLOPE_MAX (1.0), SERVE_ARGS (more `earmark serve` flags; default
# "--rate 0": the per-key rate limit off, as one key sends everything here),
# BENCH_HTTP_ARGS (more bench_http flags, e.g. --json), TENANT (default
# "bench"; with BENCH_VAR=var/bench-store and TENANT=bench-store the real
# files join the 10 000 synthetic tracks `make bench-store` keeps, for the
# service at catalog scale).  Run it with sh:
# bash keeps its own SECONDS (seconds since it started), so under bash set
# BENCH_SECONDS instead.
#
# Exit status: 0 when every request got a 2xx, the server stopped with 0
# and (SOAK=1) its memory was flat; 1 otherwise.
set -eu
# shellcheck disable=SC3028 # SECONDS from the environment, as documented above
duration=${BENCH_SECONDS:-${SECONDS:-30}}
case $duration in '' | 0) duration=30 ;; esac
BUILD=${BUILD:-build}
EM=$PWD/$BUILD/earmark
BH=$PWD/$BUILD/bench_http
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-5}
WORKERS=${WORKERS:-$(nproc)}
SOAK=${SOAK:-0}
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_WARMUP=${SOAK_WARMUP:-30}
SLOPE_MAX=${SLOPE_MAX:-1.0}
if [ -z "${SERVE_ARGS+set}" ]; then SERVE_ARGS="--rate 0"; fi
BENCH_HTTP_ARGS=${BENCH_HTTP_ARGS:-}
TENANT=${TENANT:-bench}
var=${BENCH_VAR:-$PWD/var/bench-http}
case $var in /*) ;; *) var=$PWD/$var ;; esac

say() { printf 'bench_http.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

for bin in "$EM" "$BH"; do
    [ -x "$bin" ] || die "$bin is missing; run make $BUILD/earmark $BUILD/bench_http (or make bench-http)"
done
"$EM" serve --help >/dev/null 2>&1 || die "this earmark has no working 'serve' command yet"
command -v sox >/dev/null || die "sox is missing (apt-get install sox)"

unset EARMARK_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE
export EARMARK_VAR="$var"
mkdir -p "$var"
server_pid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    "$EM" db stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# 1. the cluster
"$EM" db start >/dev/null
"$EM" db migrate >/dev/null

# 2. the catalog
files=$var/files.txt
if [ -f var/eval/catalog_full.tsv ]; then
    awk -F'\t' 'NR > 1 { print $2 }' var/eval/catalog_full.tsv >"$files.all"
else
    find /usr/share/games/supertuxkart/data/music -name '*.ogg' 2>/dev/null | sort >"$files.all"
fi
: >"$files"
while IFS= read -r f; do
    if [ -f "$f" ]; then printf '%s\n' "$f" >>"$files"; fi
done <"$files.all"
rm -f "$files.all"
n=$(wc -l <"$files")
[ "$n" -gt 0 ] || die "no catalog files: neither var/eval/catalog_full.tsv nor supertuxkart's music"
say "indexing $n files for tenant $TENANT (skipped when already there)"
tr '\n' '\0' <"$files" | xargs -0 "$EM" index --tenant "$TENANT" --quiet ||
    say "some files were not indexed (above); going on with the rest"

# 3. the key
token=$("$EM" keys create --tenant "$TENANT" --name bench 2>"$var/keys.err") || {
    cat "$var/keys.err" >&2
    die "earmark keys create failed"
}
[ -n "$token" ] || die "earmark keys create printed no token"

# 4. the clip: the first catalog file that has 40 s to cut from
clip=$var/clip.wav
rm -f "$clip"
while IFS= read -r f; do
    if sox "$f" -r 44100 -b 16 -c 2 "$clip" trim 30 10 2>/dev/null &&
        awk -v d="$(soxi -D "$clip" 2>/dev/null || echo 0)" 'BEGIN { exit !(d >= 9.99) }'; then
        src=$f
        break
    fi
    rm -f "$clip"
done <"$files"
[ -f "$clip" ] || die "no catalog file is long enough for a 10 s clip from 30 s on"
say "clip: 10 s of $src"

# 5. the server
port_file=$var/port
rm -f "$port_file"
# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
"$EM" serve --port 0 --port-file "$port_file" --workers "$WORKERS" $SERVE_ARGS 2>"$var/serve.log" &
server_pid=$!
i=0
while [ ! -s "$port_file" ]; do
    kill -0 "$server_pid" 2>/dev/null || {
        tail -n 20 "$var/serve.log" >&2
        die "earmark serve exited before listening (log above, whole in $var/serve.log)"
    }
    i=$((i + 1))
    [ "$i" -le 600 ] || die "earmark serve wrote no port file in 60 s"
    sleep 0.1
done
port=$(tr -dc '0-9' <"$port_file")
url=http://127.0.0.1:$port/v1/matches
say "earmark serve: pid $server_pid, $url, $WORKERS workers"
if ! "$BH" --url "$url" --key "$token" --file "$clip" --connections 1 --requests 1 \
    --warmup-seconds 0 >"$var/smoke.txt" 2>&1; then
    cat "$var/smoke.txt" >&2
    tail -n 20 "$var/serve.log" >&2
    die "the first request did not get a 2xx (above: bench_http, then the server's log)"
fi

# 6. latency and throughput
status=0
bench_rc=0
# shellcheck disable=SC2086 # BENCH_HTTP_ARGS is a list of flags
"$BH" --url "$url" --key "$token" --file "$clip" --connections "$CONNECTIONS" \
    --seconds "$duration" --warmup-seconds "$WARMUP" --pid "$server_pid" $BENCH_HTTP_ARGS \
    >"$var/report.txt" || bench_rc=$?
echo "== $CONNECTIONS connections, ${WARMUP} s warm-up, $duration s"
cat "$var/report.txt"
[ "$bench_rc" -eq 0 ] || status=1

# 7. the soak
if [ "$SOAK" = 1 ]; then
    soak_rc=0
    # shellcheck disable=SC2086
    "$BH" --url "$url" --key "$token" --file "$clip" --connections "$CONNECTIONS" \
        --seconds "$SOAK_SECONDS" --warmup-seconds "$SOAK_WARMUP" --pid "$server_pid" \
        $BENCH_HTTP_ARGS >"$var/soak.txt" || soak_rc=$?
    echo "== soak: $CONNECTIONS connections, ${SOAK_WARMUP} s warm-up, $SOAK_SECONDS s"
    cat "$var/soak.txt"
    [ "$soak_rc" -eq 0 ] || status=1
    slope=$(sed -n 's/.*slope \([-+0-9.]*\) MB\/min.*/\1/p; s/.*"slope_mb_per_min":\([-0-9.]*\).*/\1/p' \
        "$var/soak.txt")
    if [ -z "$slope" ]; then
        echo "memory      no slope (too few RSS samples)"
        status=1
    elif awk -v s="$slope" -v m="$SLOPE_MAX" 'BEGIN { exit !(s <= m && s >= -m) }'; then
        echo "memory      flat: slope $slope MB/min (bar: within +-$SLOPE_MAX)"
    else
        echo "memory      GROWS: slope $slope MB/min (bar: within +-$SLOPE_MAX)"
        status=1
    fi
fi

# where a match's time goes: the server's stage histograms (/metrics), as
# means over every request it served (the smoke test and warm-ups too)
if command -v curl >/dev/null &&
    curl -sf "http://127.0.0.1:$port/metrics" -o "$var/metrics.txt" 2>/dev/null; then
    awk '/^earmark_stage_duration_seconds_(sum|count)/ {
            match($0, /stage="[a-z]+"/); s = substr($0, RSTART + 7, RLENGTH - 8)
            if ($0 ~ /_sum/) sum[s] = $2; else cnt[s] = $2 }
         /^earmark_lookups_narrowed_total / { narrowed = $2 }
         END { line = "stages     "
               n = split("decode match store", order, " ")
               for (i = 1; i <= n; i++) { s = order[i]
                   if (cnt[s] > 0) line = line sprintf(" %s %.1f ms,", s, 1000 * sum[s] / cnt[s]) }
               sub(/,$/, " (means, server side)", line); print line
               if (narrowed != "" && cnt["match"] > 0)
                   printf "narrowed    %d of %d lookups (second part cut to the first part'"'"'s matches)\n",
                          narrowed, cnt["match"] }' "$var/metrics.txt"
fi

# 8. stop the server: SIGTERM, at most its grace period (30 s) and 15 s more
kill -TERM "$server_pid" 2>/dev/null || true
i=0
while [ -e "/proc/$server_pid" ] && [ "$(cut -d' ' -f3 "/proc/$server_pid/stat" 2>/dev/null)" != Z ]; do
    i=$((i + 1))
    if [ "$i" -gt 450 ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        say "earmark serve did not exit within 45 s of SIGTERM: killed"
        break
    fi
    sleep 0.1
done
serve_rc=0
wait "$server_pid" || serve_rc=$?
server_pid=
if [ "$serve_rc" -eq 0 ]; then
    echo "shutdown    earmark serve exited 0 on SIGTERM"
else
    echo "shutdown    earmark serve exited $serve_rc on SIGTERM (log: $var/serve.log)"
    status=1
fi
exit "$status"
