#!/bin/sh
# The whole suite: unit tests, end-to-end tests and, when the fuzz build
# directory is given, a short run of every fuzz harness.  The last line is
# the total: "N passed, N failed".
# usage: run_all.sh BUILD_DIR [FUZZ_BUILD_DIR]
set -u
build=${1:-build}
fuzz=${2:-}
log=$(mktemp)
total_p=0; total_f=0; rc=0

tally() {
	line=$(grep -E '^[a-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	p=$(printf '%s' "$line" | sed -n 's/^[^:]*: \([0-9]*\) passed.*/\1/p'); p=${p:-0}
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
	total_p=$((total_p + p)); total_f=$((total_f + f))
}

sh tests/run_unit.sh "$build" >"$log" 2>&1 || rc=1
cat "$log"; tally
sh tests/run_e2e.sh "$build" >"$log" 2>&1 || rc=1
cat "$log"; tally
if [ -n "$fuzz" ]; then
	sh tests/fuzz/run.sh "$fuzz" "${CG_FUZZ_BUDGET:-runs=50000}" >"$log" 2>&1 || rc=1
	cat "$log"; tally
fi
rm -f "$log"
[ "$rc" -eq 0 ] || [ "$total_f" -gt 0 ] || total_f=1
echo "$total_p passed, $total_f failed"
exit $rc
