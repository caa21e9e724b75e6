#!/bin/sh
# tests/cli/index.sh -- `earmark index`, `catalog` and `match` against a real
# private PostgreSQL cluster and real recordings:
#
#   - a corrupt file and a text file among good ones: reported, skipped, the
#     good ones indexed; a re-run is a no-op;
#   - kill -9 in the middle of a run, run again: the same catalog (tracks,
#     print counts, match results) as an uninterrupted run;
#   - the database restarted in the middle of a run: the run retries and
#     finishes with the same catalog;
#   - the database gone for longer than the retry time: the run stops with a
#     message, and the next run completes the catalog;
#   - deleting a track, compaction, and --replace of a changed file;
#   - copies: a re-encode of a track is linked to it as the same recording,
#     an excerpt as contained in it, an unrelated track not at all; the
#     links are listed by `catalog copies` and `catalog show`, hidden when
#     a track is deleted, and `catalog copies --scan` links tracks indexed
#     with --no-copies.
set -u
EM=${EARMARK_BIN:-$PWD/build/earmark}
tmp=$(mktemp -d /tmp/earmark-index-XXXXXX)
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

fresh_db() {
    "$EM" db stop >/dev/null 2>&1
    rm -rf "$EARMARK_VAR"
    "$EM" db start >/dev/null && "$EM" db migrate >/dev/null
}
sql() { "$EM" db psql -qAt -c "$1"; }
tracks() { sql "SELECT count(*) FROM tracks WHERE status <> 'deleted'" 2>/dev/null || echo 0; }
snapshot() {
    sql "SELECT encode(sha256, 'hex'), prints, round(duration_s) FROM tracks
         WHERE status <> 'deleted' ORDER BY 1"
}
# the match of the clip, as the catalog row of the track and the alignment
match_line() {
    "$EM" match --json "$tmp/clip.wav" | sed -n 's/.*"track_id":\([0-9]*\).*"frames":\([0-9]*\),"prints":\([0-9]*\),.*"ref_start":\([0-9.]*\).*/\1 \2 \3 \4/p' |
        while read -r id frames prints ref; do
            echo "$(sql "SELECT encode(sha256, 'hex') FROM tracks WHERE id = $id") $frames $prints $ref"
        done
}
# wait until at least $1 tracks are in, at most $2 seconds
wait_tracks() {
    n=0
    while [ "$n" -lt $(($2 * 20)) ]; do
        [ "$(tracks)" -ge "$1" ] && return 0
        sleep 0.05
        n=$((n + 1))
    done
    return 1
}

# -- the catalog: short and long real recordings, and two bad files --------
mkdir "$tmp/cat"
for f in /usr/share/scummvm/drascula/audio/track25.ogg \
         /usr/share/scummvm/drascula/audio/track29.ogg \
         /usr/share/games/supertuxkart/data/music/Boom_boom_boom.ogg \
         /usr/share/games/supertuxkart/data/music/Snowy.ogg \
         /usr/share/games/dink/dink/Sound/5.ogg \
         /usr/share/games/dink/dink/Sound/denube.ogg \
         /usr/share/games/dink/dink/Sound/1.ogg \
         /usr/share/games/asc/music/machine_wars.mp3 \
         /usr/share/planetblupi/music/music004.ogg; do
    [ -f "$f" ] || { no "corpus file $f is installed (scripts/deps)"; exit 1; }
    cp "$f" "$tmp/cat/"
done
ngood=9
head -c 40000 /dev/urandom >"$tmp/cat/random_bytes.ogg"
echo "these are liner notes, not audio" >"$tmp/cat/notes.mp3"
sox /usr/share/games/supertuxkart/data/music/Snowy.ogg -r 22050 "$tmp/clip.wav" trim 20 10 speed 1.05 2>/dev/null ||
    { no "sox makes the clip"; exit 1; }

# -- bad files, re-run ----------------------------------------------------------
fresh_db || { no "private cluster starts"; exit 1; }
"$EM" index --failures "$tmp/failures.tsv" "$tmp/cat" >"$tmp/out" 2>&1
rc=$?
check "index exits 1 when files failed (got $rc)" '[ $rc -eq 1 ]'
check "the good files are indexed ($(tracks) of $ngood)" '[ "$(tracks)" -eq $ngood ]'
check "both bad files are in the failures report" \
    '[ "$(wc -l <"$tmp/failures.tsv")" -eq 2 ] && grep -q random_bytes "$tmp/failures.tsv" && grep -q notes.mp3 "$tmp/failures.tsv"'
check "each failure names its file on stderr" 'grep -q "failed:.*random_bytes" "$tmp/out" && grep -q "failed:.*notes.mp3" "$tmp/out"'
check "the failures are in the run's records" '[ "$(sql "SELECT count(*) FROM index_failures")" -eq 2 ]'
snapshot >"$tmp/ref"
match_line >"$tmp/ref_match"
cut -d" " -f1 "$tmp/ref_match" >"$tmp/ref_match_track"
check "the clip (10 s, 5% faster) matches Snowy.ogg" \
    '[ -s "$tmp/ref_match" ] && [ "$(cut -d" " -f1 "$tmp/ref_match" | head -1)" = "$(sha256sum /usr/share/games/supertuxkart/data/music/Snowy.ogg | cut -d" " -f1)" ]'
"$EM" index "$tmp/cat" >"$tmp/out" 2>&1
check "a re-run indexes nothing again" 'grep -q "0 indexed, $ngood already indexed" "$tmp/out"'
check "a re-run leaves the catalog as it was" 'snapshot | cmp -s - "$tmp/ref"'
# two tracks as if fingerprinted by an older configuration: a re-run makes
# their prints again, in place of the old ones
snowy=$(sha256sum /usr/share/games/supertuxkart/data/music/Snowy.ogg | cut -d" " -f1)
sql "UPDATE tracks SET config_id = 1 WHERE id IN (SELECT id FROM tracks
     WHERE sha256 = '\\x$snowy'::bytea UNION SELECT min(id) FROM tracks)" >/dev/null
"$EM" index "$tmp/cat" >"$tmp/out" 2>&1
check "tracks of another configuration are fingerprinted again" \
    'grep -q "2 indexed, $((ngood - 2)) already indexed" "$tmp/out"'
check "... and replace the old ones" \
    '[ "$(sql "SELECT count(*) FROM tracks WHERE config_id = 1 AND status = '"'deleted'"'")" -eq 2 ] &&
     [ "$(sql "SELECT count(*) FROM tracks WHERE config_id = 1 AND status <> '"'deleted'"'")" -eq 0 ]'
check "... leaving the same live catalog" 'snapshot | cmp -s - "$tmp/ref"'
check "... which matches the clip as before" 'match_line | cut -d" " -f1 | cmp -s - "$tmp/ref_match_track"'
check "catalog ls lists the tracks" '[ "$("$EM" catalog ls --json | wc -l)" -eq $ngood ]'
id=$("$EM" catalog ls --json | head -1 | sed 's/{"id":\([0-9]*\).*/\1/')
check "catalog show gives the digest" '"$EM" catalog show "$id" | grep -q "sha256 *[0-9a-f]\{64\}"'
check "catalog stats counts the prints" \
    '[ "$("$EM" catalog stats --json | sed "s/.*\"prints\":\([0-9]*\).*/\1/")" -eq "$(sql "SELECT sum(prints) FROM tracks")" ]'

# -- kill -9 in the middle, then resume ---------------------------------------------
fresh_db
"$EM" index --threads 1 --batch-prints 1000 --quiet "$tmp/cat" >/dev/null 2>&1 &
pid=$!
if wait_tracks 2 60; then
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    n=$(tracks)
    check "the run was killed part way ($n of $ngood tracks in)" '[ "$n" -ge 2 ] && [ "$n" -lt $ngood ]'
else
    kill -9 $pid 2>/dev/null
    no "the killed run wrote its first batches"
fi
"$EM" index --quiet "$tmp/cat" >/dev/null 2>&1
check "after kill -9 and a re-run the catalog equals an uninterrupted run's" 'snapshot | cmp -s - "$tmp/ref"'
check "no track is there twice" '[ "$(sql "SELECT count(*) - count(DISTINCT sha256) FROM tracks")" -eq 0 ]'
check "the store holds exactly the tracks' prints" \
    '[ "$(sql "SELECT sum(prints) FROM print_segments")" = "$(sql "SELECT sum(prints) FROM tracks")" ]'
check "the clip matches as before" 'match_line | cmp -s - "$tmp/ref_match"'

# -- the database restarted during a run -------------------------------------------
fresh_db
"$EM" index --threads 1 --batch-prints 1000 --retry-seconds 60 --quiet "$tmp/cat" >"$tmp/out" 2>&1 &
pid=$!
if wait_tracks 1 60 && [ "$(tracks)" -lt $ngood ]; then
    "$EM" db stop >/dev/null
    sleep 1
    "$EM" db start >/dev/null
    wait $pid
    rc=$?
    check "the run went on after the restart (exit $rc)" '[ $rc -eq 1 ] && grep -q "retrying" "$tmp/out"'
    check "after a database restart the catalog equals an uninterrupted run's" 'snapshot | cmp -s - "$tmp/ref"'
else
    wait $pid
    no "the run was still going when the database was restarted"
fi

# -- the database gone for longer than the retry time --------------------------------
fresh_db
"$EM" index --threads 1 --batch-prints 1000 --retry-seconds 1 --quiet "$tmp/cat" >"$tmp/out" 2>&1 &
pid=$!
if wait_tracks 1 60 && [ "$(tracks)" -lt $ngood ]; then
    "$EM" db stop >/dev/null
    wait $pid
    rc=$?
    check "the run stops when the database stays away (exit $rc)" \
        '[ $rc -eq 1 ] && grep -q "run the same command again" "$tmp/out"'
    "$EM" db start >/dev/null
    "$EM" index --quiet "$tmp/cat" >/dev/null 2>&1
    check "the next run completes the catalog" 'snapshot | cmp -s - "$tmp/ref"'
else
    wait $pid
    no "the run was still going when the database was stopped"
fi

# -- deleting a track ------------------------------------------------------------------
sid=$(sql "SELECT id FROM tracks WHERE source LIKE '%Snowy.ogg'")
"$EM" catalog rm "$sid" >/dev/null
check "a deleted track no longer matches" '[ -z "$(match_line)" ]'
"$EM" catalog compact >/dev/null
check "compaction drops its prints" \
    '[ "$(sql "SELECT sum(prints) FROM print_segments")" = "$(sql "SELECT sum(prints) FROM tracks WHERE status <> '"'deleted'"'")" ]'

# -- a changed file, indexed again with --replace ------------------------------------
mkdir "$tmp/rep"
cp /usr/share/scummvm/drascula/audio/track25.ogg "$tmp/rep/song.ogg"
"$EM" index --quiet --tenant rep "$tmp/rep" >/dev/null 2>&1
old=$(sql "SELECT id FROM tracks WHERE source = '$tmp/rep/song.ogg' AND status <> 'deleted'")
cp /usr/share/scummvm/drascula/audio/track29.ogg "$tmp/rep/song.ogg"
"$EM" index --quiet --tenant rep --replace "$tmp/rep" >/dev/null 2>&1
check "--replace deletes the old version of a changed file" \
    '[ "$(sql "SELECT status FROM tracks WHERE id = $old")" = deleted ]'
check "--replace indexes the new version" \
    '[ "$(sql "SELECT encode(sha256, '"'hex'"') FROM tracks WHERE source = '"'$tmp/rep/song.ogg'"' AND status <> '"'deleted'"'")" = "$(sha256sum "$tmp/rep/song.ogg" | cut -d" " -f1)" ]'

# -- copies known to the catalog -------------------------------------------------------
fresh_db
mkdir "$tmp/cp"
orig=/usr/share/scummvm/drascula/audio/track25.ogg
sox "$orig" "$tmp/cp/copy.flac" 2>/dev/null &&
    sox "$orig" "$tmp/cp/excerpt.wav" trim 5 40 2>/dev/null &&
    sox "$orig" -r 22050 "$tmp/cp/late.wav" 2>/dev/null ||
    { no "sox makes the re-encode and the excerpt"; exit 1; }
"$EM" index --quiet --tenant acme "$orig" /usr/share/games/dink/dink/Sound/denube.ogg >/dev/null 2>&1
"$EM" index --tenant label "$tmp/cp/copy.flac" "$tmp/cp/excerpt.wav" >"$tmp/out" 2>&1
id_of() { sql "SELECT id FROM tracks WHERE source LIKE '%$1' AND status <> 'deleted'"; }
o=$(id_of track25.ogg) u=$(id_of denube.ogg) c=$(id_of copy.flac) e=$(id_of excerpt.wav)
link() { sql "SELECT relation || coalesce(':' || longer, '') || ':' || round(offset_s::numeric)
              FROM track_copies WHERE track_a = least($1, $2) AND track_b = greatest($1, $2)"; }
check "the index run reports its links" 'grep -q "3 copy links" "$tmp/out"'
check "a re-encode in another tenant is the same recording" '[ "$(link $o $c)" = "same:0" ]'
check "an excerpt is contained in the original, 5 s in" '[ "$(link $o $e)" = "contains:$o:5" ]'
check "... and in its re-encode" '[ "$(link $c $e)" = "contains:$c:5" ]'
check "an unrelated track has no link" \
    '[ "$(sql "SELECT count(*) FROM track_copies WHERE $u IN (track_a, track_b)")" = 0 ]'
check "every new track is marked checked" \
    '[ "$(sql "SELECT count(*) FROM tracks WHERE copies_checked_at IS NULL")" = 0 ]'
"$EM" catalog copies >"$tmp/groups"
check "catalog copies lists one group of the three copies" \
    '[ "$(grep -c "^group" "$tmp/groups")" = 1 ] && grep -q "^group 1: 3 tracks" "$tmp/groups" &&
     ! grep -q "^ *$u " "$tmp/groups"'
check "catalog show lists the links" \
    '"$EM" catalog show $o | grep -q "same as  track $c (label)" &&
     "$EM" catalog show $e | grep -q "inside   track $o (acme), at 5.0 s"'
check "catalog show --json lists them" \
    '"$EM" catalog show --json $o | python3 -c "import json, sys; d = json.load(sys.stdin); \
     sys.exit(sorted((x[\"track_id\"], x[\"relation\"]) for x in d[\"copies\"]) != \
     sorted([($c, \"same\"), ($e, \"contains\")]))"'
check "catalog copies --tenant keeps to the tenant" \
    '"$EM" catalog copies --tenant label --json | grep -q "\"track_a\":$c,\"track_b\":$e" &&
     ! "$EM" catalog copies --tenant label --json | grep -q "\"track_id\":$o"'
"$EM" catalog rm "$c" >/dev/null
check "a deleted track's links are hidden" \
    '! "$EM" catalog show $o | grep -q "track $c " && "$EM" catalog copies | grep -q "^group 1: 2 tracks"'
"$EM" index --quiet --no-copies --tenant late "$tmp/cp/late.wav" >/dev/null 2>&1
l=$(id_of late.wav)
check "--no-copies links nothing" \
    '[ -z "$(link $o $l)" ] && [ "$(sql "SELECT copies_checked_at IS NULL FROM tracks WHERE id = $l")" = t ]'
"$EM" catalog copies --scan >"$tmp/out" 2>&1
check "catalog copies --scan links the unchecked track" \
    '[ "$(link $o $l)" = "same:0" ] && grep -q "checked 1 track for copies" "$tmp/out"'

echo "index.sh: $fails failed"
[ "$fails" -eq 0 ]
