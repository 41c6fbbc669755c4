#!/bin/sh
# Audiences: audience_create over BENCH_AUDIENCE_SUBJECTS joined subjects
# (default 1,000,000) against a plain C pass over the same stored data.
# Uses the keys and policy of the pipeline bench's demo directory (made here if missing).
set -eu
build=${1:-build}
dir=$build/bench-demo
[ -s "$dir/policy.yaml" ] || "$build/crossgate" demo --offline --dir "$dir" --users 1000 --json >/dev/null
"$build/bench/bench_audience" "$dir"
