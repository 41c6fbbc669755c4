#!/bin/sh
# DP model statistics (ridge, k-means) and the affinity counts over
# BENCH_MODEL_SUBJECTS joined subjects (default 1,000,000), each against the
# same computation without privacy over the same opened data.  Uses the keys
# and policy of the pipeline bench's demo directory (made here if missing).
set -eu
build=${1:-build}
dir=$build/bench-demo
[ -s "$dir/policy.yaml" ] || "$build/crossgate" demo --offline --dir "$dir" --users 1000 --json >/dev/null
"$build/bench/bench_model" "$dir"
