#!/bin/sh
# The file pipeline: builds a demo directory at BENCH_USERS people per platform
# (default 1,000,000), then times each stage against its baseline.
set -eu
build=${1:-build}
users=${BENCH_USERS:-1000000}
dir=$build/bench-demo
echo "crossgate bench: $users users per platform, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
t0=$(date +%s.%N)
"$build/crossgate" demo --dir "$dir" --users "$users" --json >"$build/bench-demo.json"
t1=$(date +%s.%N)
echo "demo    $(echo "$t1 - $t0" | bc) s for the whole demo (generate, keys, pack x2, ingest, export, verify)"
"$build/bench/bench_pipeline" "$dir"
