#!/bin/sh
# Runs every unit test binary in BUILD/tests; prints their lines and a total.
# With CG_VALGRIND=1 each runs under valgrind (errors fail the test).
set -u
build=${1:-build}
pass=0; fail=0; failed=""
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	if [ "${CG_VALGRIND:-0}" = 1 ]; then
		out=$(valgrind -q --error-exitcode=99 --leak-check=full "$t" 2>&1); rc=$?
	else
		out=$("$t" 2>&1); rc=$?
	fi
	line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p'); p=${p:-0}
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$rc" -ne 0 ]; then
		failed="$failed $(basename "$t")"
		printf '%s\n' "$out" | tail -30
	else
		echo "$(basename "$t"): $p checks passed"
	fi
done
echo "unit: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "failing unit tests:$failed"; exit 1; }
