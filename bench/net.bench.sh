#!/bin/sh
# The gateway over mutual TLS on loopback: raw TLS throughput, handshakes/s,
# push throughput and the gateway's receive phase against raw TLS transfers of
# the same sizes, and the same batches ingested locally, all in the same run
# (bench/bench_net.c; BENCH_NET_ROUNDS rounds of duplicate pushes, default 5),
# then the load test: 8 concurrent agents push NET_LOAD_RECORDS records
# (default 1,000,000).
set -eu
build=${1:-build}
users=${BENCH_NET_USERS:-200000}
records=${NET_LOAD_RECORDS:-1000000}
dir=$build/bench-net
echo "crossgate net bench: $users users per platform, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
rm -rf "$dir"
"$build/crossgate" demo --dir "$dir" --users "$users" --json >"$build/bench-net.json"
"$build/bench/bench_net" "$dir" "${BENCH_NET_ROUNDS:-5}"
CROSSGATE=$build/crossgate sh tests/net_load.sh "$records" 5000
