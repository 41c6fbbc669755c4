#!/bin/sh
# Runs every end-to-end test script in tests/e2e against BUILD/crossgate.
set -u
build=${1:-build}
bin=$(cd "$build" && pwd)/crossgate
pass=0; fail=0
for t in tests/e2e/test_*.sh; do
	out=$(CROSSGATE="$bin" sh "$t" 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p'); p=${p:-0}
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$rc" -ne 0 ]; then printf '%s\n' "$out" | grep -v '^ok ' | tail -40; fi
	echo "$(basename "$t"): $p passed, $f failed"
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
