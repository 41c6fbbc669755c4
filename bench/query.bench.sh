#!/bin/sh
# DP aggregates: a grouped sum over BENCH_QUERY_SUBJECTS joined subjects
# (default 1,000,000) against a plain C group-by of the same stored data.
# Uses the keys and policy of the pipeline bench's
# demo directory (made here if missing).
set -eu
build=${1:-build}
dir=$build/bench-demo
[ -s "$dir/policy.yaml" ] || "$build/crossgate" demo --offline --dir "$dir" --users 1000 --json >/dev/null
"$build/bench/bench_query" "$dir"
