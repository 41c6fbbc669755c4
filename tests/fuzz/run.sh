#!/bin/sh
# Runs every libFuzzer harness on its seed corpus.
# usage: run.sh BUILD_DIR SECONDS     explore for SECONDS each, randomly (make fuzz-run)
#        run.sh BUILD_DIR runs=N      N inputs each from a fixed seed (make test: the same
#                                     inputs every run, so CI does not turn red by chance;
#                                     new findings come from make fuzz-run)
#        run.sh BUILD_DIR SECONDS long  (make fuzz-long) explore for SECONDS each,
#                                     keep the grown corpus in BUILD_DIR/corpus/NAME
#                                     for the next long run, and print each harness's
#                                     executions and coverage
#        run.sh BUILD_DIR runs=N long   (make fuzz-long RUNS=N) the same, N inputs each,
#                                     randomly, however long that takes
# FUZZ_ONLY="name ..." limits a run to those harnesses (names apart by spaces).
# tests/fuzz/NAME.options: the harness's own libFuzzer flags, apart by
# whitespace; lines starting with # are comments.
set -u
dir=${1:-build-fuzz}
secs=${2:-5}
long=${3:-}
case "$secs" in
runs=*)
	if [ -n "$long" ]; then budget="-runs=${secs#runs=}"; secs=604800; else budget="-runs=${secs#runs=} -seed=1"; secs=60; fi
	label="${budget%% *}" ;;
*) budget="-max_total_time=$secs"; label="${secs}s" ;;
esac
pass=0; fail=0
for name in ${FUZZ_ONLY:-}; do
	[ -x "$dir/fuzz_$name" ] || { echo "fuzz: no harness named '$name' in $dir (FUZZ_ONLY)"; exit 1; }
done
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	case " ${FUZZ_ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
	corpus="tests/fuzz/corpus/$name"
	if [ -n "$long" ]; then
		# The grown corpus outlives the run (outside the repository); the seeds join it each time.
		work="$dir/corpus/$name"; mkdir -p "$work"
	else
		work=$(mktemp -d)
	fi
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	# Artifacts (crash-*, leak-*) go to the work directory, never into the repository.
	# A harness's own flags (tests/fuzz/NAME.options, e.g. -max_len), in every mode.
	opts=$(grep -v '^[[:space:]]*#' "tests/fuzz/$name.options" 2>/dev/null || :)
	set -f; set -- $opts; set +f          # words, never globs
	if LSAN_OPTIONS="suppressions=$(pwd)/tests/fuzz/lsan.supp:print_suppressions=0" \
		timeout $((secs + 60)) "$bin" $budget "$@" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work.artifact-" \
		"$work" >"$work.log" 2>&1; then
		pass=$((pass + 1))
		if [ -n "$long" ]; then
			execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log" | awk '{s+=$1} END {print s+0}')
			cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work.log" | tail -1)
			echo "fuzz $name: ok ($label): $execs executions, $cov, corpus $(ls "$work" | wc -l) inputs"
		else
			echo "fuzz $name: ok ($label)"
		fi
	else
		fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$work.log"
		for a in "$work".artifact-*; do [ -e "$a" ] && echo "input: $(base64 -w0 "$a")"; done
	fi
	if [ -n "$long" ]; then rm -f "$work.log"; else rm -rf "$work" "$work.log"; fi
	# A crash input is printed above in base64: add it under tests/fuzz/corpus/NAME/ with the fix.
	rm -f "$work".artifact-*
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
