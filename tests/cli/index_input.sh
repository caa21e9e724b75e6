#!/bin/sh
# tests/cli/index_input.sh -- `earmark index` against hostile and careless
# input, with a real private PostgreSQL cluster and real recordings:
#
#   - a FIFO named in a manifest fails alone, at once (it used to block the
#     run forever); a FIFO in a folder is passed over;
#   - a manifest row whose text is not UTF-8 fails alone into the failures
#     report (it used to abort the whole run, every rerun the same);
#   - a file replaced while it is indexed: its digest is that of the
#     bytes fingerprinted;
#   - runs killed by SIGTERM or kill -9 do not stay 'running' forever; the
#     summary counts only what was indexed; sources are stored absolute; a
#     row whose audio the catalog has under another path gets its metadata.
#
# Every run of earmark here is under `timeout`, so that a regression that
# hangs fails the test instead of the suite.
set -u
EM=${EARMARK_BIN:-$PWD/build/earmark}
tmp=$(mktemp -d /tmp/earmark-input-XXXXXX)
chmod 711 "$tmp"
export EARMARK_VAR="$tmp/var"
unset EARMARK_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE
fails=0
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
cleanup() { "$EM" db stop >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

sql() { "$EM" db psql -qAt -c "$1"; }
tracks() { sql "SELECT count(*) FROM tracks WHERE status <> 'deleted'" 2>/dev/null || echo 0; }
# earmark index under a deadline ($DEADLINE seconds, 60 unless set): exit
# 124 when it had to be stopped
index() { timeout -k 5 "${DEADLINE:-60}" "$EM" index "$@"; }

A=/usr/share/scummvm/drascula/audio/track25.ogg
B=/usr/share/scummvm/drascula/audio/track29.ogg
C=/usr/share/games/dink/dink/Sound/5.ogg
for f in "$A" "$B" "$C"; do
    [ -f "$f" ] || { no "corpus file $f is installed (scripts/deps)"; exit 1; }
done
mkdir "$tmp/cat"
cp "$A" "$tmp/cat/a.ogg"
cp "$B" "$tmp/cat/b.ogg"
cp "$C" "$tmp/cat/c.ogg"

"$EM" db start >/dev/null && "$EM" db migrate >/dev/null || { no "private cluster starts"; exit 1; }

# -- a FIFO in a manifest, and in a folder ---------------------------------------
mkfifo "$tmp/cat/pipe.ogg"
printf 'path,title\na.ogg,A\npipe.ogg,the pipe\nb.ogg,B\n' >"$tmp/cat/fifo.csv"
DEADLINE=20 index --tenant fifo --failures "$tmp/fifo.tsv" --manifest "$tmp/cat/fifo.csv" >"$tmp/out" 2>&1
rc=$?
check "a FIFO in a manifest does not block the run (exit $rc, not 124)" '[ $rc -eq 1 ]'
check "... the FIFO fails alone, as not a regular file" \
    '[ "$(wc -l <"$tmp/fifo.tsv")" -eq 1 ] && grep -q "pipe.ogg.*not a regular file" "$tmp/fifo.tsv"'
check "... the other rows are indexed" \
    '[ "$(sql "SELECT count(*) FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = '"'fifo'"'")" -eq 2 ]'
index --tenant fifodir --quiet "$tmp/cat" >"$tmp/out" 2>&1
rc=$?
check "a FIFO in a folder is passed over (exit $rc)" '[ $rc -eq 0 ]'
rm -f "$tmp/cat/pipe.ogg" "$tmp/cat/fifo.csv"

# -- a manifest row that is not UTF-8 ---------------------------------------------
printf 'path,title,artist\na.ogg,Fine,Someone\nb.ogg,Caf\351 Latin-1,Someone\nc.ogg,Also fine,Someone\n' \
    >"$tmp/cat/latin1.csv"
index --tenant utf --failures "$tmp/utf.tsv" --manifest "$tmp/cat/latin1.csv" >"$tmp/out" 2>&1
rc=$?
check "a row that is not UTF-8 does not abort the run (exit $rc)" '[ $rc -eq 1 ] && ! grep -q "run the same command again" "$tmp/out"'
check "... the other rows are indexed" \
    '[ "$(sql "SELECT count(*) FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = '"'utf'"'")" -eq 2 ]'
check "... the row is in the failures report, naming the field" \
    '[ "$(wc -l <"$tmp/utf.tsv")" -eq 1 ] && grep -q "b.ogg.*title.*not valid UTF-8" "$tmp/utf.tsv"'
check "... and in the run's records" \
    '[ "$(sql "SELECT count(*) FROM index_failures WHERE reason LIKE '"'%UTF-8%'"'")" -eq 1 ]'
# a file name that is not UTF-8: the failure record names it escaped
cp "$A" "$(printf '%s/cat/\377name.ogg' "$tmp")"
printf 'path\n\377name.ogg\n' >"$tmp/cat/badname.csv"
index --tenant utfname --failures "$tmp/utfname.tsv" --manifest "$tmp/cat/badname.csv" >"$tmp/out" 2>&1
rc=$?
check "a path that is not UTF-8 fails alone (exit $rc)" \
    '[ $rc -eq 1 ] && ! grep -q "run the same command again" "$tmp/out" && [ "$(wc -l <"$tmp/utfname.tsv")" -eq 1 ]'
check "... and is recorded with its bad byte escaped" \
    '[ "$(sql "SELECT count(*) FROM index_failures WHERE path LIKE '"'%\\\\xff%name.ogg'"'")" -eq 1 ]'
rm -f "$tmp/cat/latin1.csv" "$tmp/cat/badname.csv" "$(printf '%s/cat/\377name.ogg' "$tmp")"

# -- files replaced while they are indexed ----------------------------------------------
# Two recordings take turns under the same names (a new file renamed over
# the old, as a sync tool does) while a run indexes them.  Each track must
# hold the prints of the bytes its digest names: a digest taken from one
# file and prints from the other leave one recording "already indexed"
# forever and the other in twice.
R1=/usr/share/scummvm/drascula/audio/track12.ogg
R2=/usr/share/scummvm/drascula/audio/track13.ogg
want() { sha256sum "$1" | cut -d" " -f1; "$EM" fingerprint --json "$1" 2>/dev/null | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
expect="$(want "$R1" | paste -sd" ") $(want "$R2" | paste -sd" ")"
mkdir "$tmp/swap"
cp "$R1" "$tmp/swap/r1"
cp "$R2" "$tmp/swap/r2"
printf 'path,tenant\n' >"$tmp/swap.csv"
for i in 0 1 2 3; do
    cp "$R1" "$tmp/swap/f$i.ogg"
    echo "$tmp/swap/f$i.ogg,swap$i" >>"$tmp/swap.csv"
done
# the new version is linked in under a temporary name and renamed over the
# old one, as fast as the system allows
python3 -c '
import os, sys
d = sys.argv[1]
while True:
    for src in ("r1", "r2"):
        for i in range(4):
            os.link(d + "/" + src, d + "/.t")
            os.rename(d + "/.t", "%s/f%d.ogg" % (d, i))
' "$tmp/swap" &
swapper=$!
mixed=0 seen=0
for round in 1 2 3 4 5 6 7 8; do
    index --threads 2 --quiet --manifest "$tmp/swap.csv" >/dev/null 2>&1
    sql "SELECT encode(sha256, 'hex'), prints FROM tracks
         WHERE tenant_id IN (SELECT id FROM tenants WHERE name LIKE 'swap%')" | tr '|' ' ' >"$tmp/swap.out"
    while read -r sha prints; do
        seen=$((seen + 1))
        case " $expect " in
            *" $sha $prints "*) ;;
            *) mixed=$((mixed + 1)) ;;
        esac
    done <"$tmp/swap.out"
    swap="SELECT t.id FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name LIKE 'swap%'"
    sql "DELETE FROM track_copies WHERE track_a IN ($swap) OR track_b IN ($swap);
         DELETE FROM tracks WHERE id IN ($swap)" >/dev/null ||
        no "the swapped tracks could not be cleared"
done
kill $swapper
wait $swapper 2>/dev/null
check "a file replaced while indexed: every track's digest names the bytes fingerprinted ($mixed of $seen mixed)" \
    '[ $seen -ge 16 ] && [ $mixed -eq 0 ]'

# -- what a run records ------------------------------------------------------------------------
# sources are absolute, whatever the command line said
mkdir "$tmp/rel"
cp "$A" "$tmp/rel/a.ogg"
(cd "$tmp/rel" && index --tenant rel --quiet ./a.ogg) >/dev/null 2>&1
check "a relative path is stored absolute" \
    '[ "$(sql "SELECT source FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = '"'rel'"'")" = "$tmp/rel/a.ogg" ]'
# the summary counts only what was indexed: two copies of one recording in
# one run are one track, its prints and hours once
cp "$A" "$tmp/rel/copy.ogg"
index --tenant dup "$tmp/rel" >"$tmp/out" 2>&1
prints=$(sql "SELECT sum(prints) FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = 'dup'")
check "the summary counts a duplicate's prints once ($prints in the catalog)" \
    'grep -q "1 indexed, 1 already indexed, 0 failed; 0.01 h of audio, $prints prints" "$tmp/out"'
check "... as the run's record does" \
    '[ "$(sql "SELECT prints FROM index_runs ORDER BY id DESC LIMIT 1")" = "$prints" ]'

# runs stopped by a signal or killed do not stay 'running'
mkdir "$tmp/long"
for i in 1 2 3 4 5 6; do cp "$B" "$tmp/long/b$i.ogg"; sox "$B" "$tmp/long/v$i.wav" speed 1.0$i 2>/dev/null; done
running() { sql "SELECT count(*) FROM index_runs WHERE status = 'running'"; }
last_run() { sql "SELECT status FROM index_runs ORDER BY id DESC LIMIT 1"; }
timeout -k 5 60 "$EM" index --tenant sig --threads 1 --batch-prints 1000 --quiet "$tmp/long" >"$tmp/out" 2>&1 &
pid=$!
n=0
while [ "$(sql "SELECT count(*) FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = 'sig'")" -lt 1 ] && [ $n -lt 600 ]; do
    sleep 0.05; n=$((n + 1))
done
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM stops the run (exit $rc) ..." '[ $rc -eq 1 ] && grep -q "stopped by signal 15" "$tmp/out"'
check "... and closes it as cancelled ($(last_run))" '[ "$(last_run)" = cancelled ] && [ "$(running)" -eq 0 ]'
# (not under timeout: kill -9 must reach earmark itself)
"$EM" index --tenant kill --threads 1 --batch-prints 1000 --quiet "$tmp/long" >/dev/null 2>&1 &
pid=$!
n=0
while [ "$(sql "SELECT count(*) FROM tracks t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = 'kill'")" -lt 1 ] && [ $n -lt 600 ]; do
    sleep 0.05; n=$((n + 1))
done
kill -9 $pid
wait $pid 2>/dev/null
killed=$(sql "SELECT max(id) FROM index_runs")
index --tenant kill --quiet "$tmp/long" >/dev/null 2>&1
check "a run killed by kill -9 is closed as failed by the next run ($(sql "SELECT status FROM index_runs WHERE id = $killed"))" \
    '[ "$(sql "SELECT status FROM index_runs WHERE id = $killed")" = failed ] && [ "$(running)" -eq 0 ]'

[ -n "${KEEP:-}" ] && { cat "$tmp"/*.tsv; sql "SELECT path, reason FROM index_failures"; }
echo "index_input.sh: $fails failed"
[ "$fails" -eq 0 ]
