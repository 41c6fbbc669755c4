#!/bin/sh
# Runs every libFuzzer harness for a few seconds on its seed corpus.
# usage: run.sh BUILD_DIR SECONDS
set -u
dir=${1:-build-fuzz}
secs=${2:-5}
pass=0; fail=0
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	corpus="tests/fuzz/corpus/$name"
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	if timeout $((secs + 60)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
		"$work" >"$work.log" 2>&1; then
		pass=$((pass + 1)); echo "fuzz $name: ok (${secs}s)"
	else
		fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$work.log"
	fi
	rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
