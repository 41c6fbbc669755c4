#!/bin/sh
# Runs every libFuzzer harness on its seed corpus.
# usage: run.sh BUILD_DIR SECONDS     explore for SECONDS each, randomly (make fuzz-run)
#        run.sh BUILD_DIR runs=N      N inputs each from a fixed seed (make test: the same
#                                     inputs every run, so CI does not turn red by chance;
#                                     new findings come from make fuzz-run)
set -u
dir=${1:-build-fuzz}
secs=${2:-5}
case "$secs" in
runs=*) budget="-runs=${secs#runs=} -seed=1"; secs=60; label="${budget%% *}" ;;
*) budget="-max_total_time=$secs"; label="${secs}s" ;;
esac
pass=0; fail=0
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	corpus="tests/fuzz/corpus/$name"
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	# Artifacts (crash-*, leak-*) go to the work directory, never into the repository.
	if LSAN_OPTIONS="suppressions=$(pwd)/tests/fuzz/lsan.supp:print_suppressions=0" \
		timeout $((secs + 60)) "$bin" $budget -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
		-artifact_prefix="$work.artifact-" \
		"$work" >"$work.log" 2>&1; then
		pass=$((pass + 1)); echo "fuzz $name: ok ($label)"
	else
		fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$work.log"
		for a in "$work".artifact-*; do [ -e "$a" ] && echo "input: $(base64 -w0 "$a")"; done
	fi
	rm -rf "$work" "$work.log" "$work".artifact-*
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
