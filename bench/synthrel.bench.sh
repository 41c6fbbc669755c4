#!/bin/sh
# DP synthetic rows: a release of BENCH_SYNTHREL_ROWS rows (default 1,000,000)
# from as many subjects against the same computation without noise.  Uses the
# policy of the pipeline bench's demo directory (made here if missing).
set -eu
build=${1:-build}
dir=$build/bench-demo
[ -s "$dir/policy.yaml" ] || "$build/crossgate" demo --offline --dir "$dir" --users 1000 --json >/dev/null
"$build/bench/bench_synthrel" "$dir" "${BENCH_SYNTHREL_ROWS:-1000000}"
