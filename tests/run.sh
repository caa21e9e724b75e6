#!/bin/sh
# tests/run.sh -- run every test program and test script, then print one
# summary line "N passed, N failed".  BUILD names the build folder.
BUILD=${BUILD:-build}
export EARMARK_BIN="$PWD/$BUILD/earmark"
passed=0; failed=0
out=$(mktemp); trap 'rm -f "$out"' EXIT
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    "$t" > "$out"; rc=$?
    cat "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    if [ -z "$line" ]; then echo "$t: crashed or did not finish (exit $rc)"; f=1; p=0; fi
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then echo "$t: exit $rc"; f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    echo "== $t"
    if BUILD="$BUILD" sh "$t"; then passed=$((passed + 1)); else echo "not ok - $t"; failed=$((failed + 1)); fi
done
# the small accuracy evaluation: a gate on recall and false claims
if [ "${EVAL_SMALL:-1}" != 0 ]; then
    echo "== bench/eval/run.sh small"
    if BUILD="$BUILD" bash bench/eval/run.sh small; then passed=$((passed + 1))
    else echo "not ok - small accuracy evaluation"; failed=$((failed + 1)); fi
fi
echo
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
