#!/bin/sh
# The DP samplers: draws/s against libsodium's uniform draws, and the median
# time per draw for small and for large drawn values.
set -eu
build=${1:-build}
"$build/bench/bench_noise"
