#!/bin/sh
# The DP lift release over 1,000,000 outcomes in memory, against a plain C
# pass computing the same per-arm aggregates and textbook intervals.
set -eu
build=${1:-build}
"$build/bench/bench_lift"
