#!/bin/sh
# The audit log at BENCH_AUDIT_EVENTS events (default 10,000,000; about 3
# minutes and 3 GB of disk on 2 cores): bulk append, per-event append,
# proofs and full verification, against SHA-256 of the same bytes.
set -eu
build=${1:-build}
events=${BENCH_AUDIT_EVENTS:-10000000}
dir=$build/bench-audit
mkdir -p "$dir"
echo "crossgate audit bench: $events events, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
"$build/bench/bench_audit" "$dir" "$events"
rm -f "$dir"/audit.db "$dir"/audit.db-wal "$dir"/audit.db-shm
