#!/bin/sh
# The load test, small: 8 concurrent agents push about 80,000 records in
# batches of 1,000 (make bench runs the 1,000,000-record version).
. tests/e2e/lib.sh
sh tests/net_load.sh 80000 1000 "$E2E_TMP/load" >"$E2E_TMP/out" 2>&1
rc=$?
cat "$E2E_TMP/out" | grep '^net_load'
check "8 agents push concurrently; the gateway holds exactly the records sent" [ $rc -eq 0 ]
check "p50/p99 latency and records/s are reported" grep -q "p50 .* p99 .* records/s" "$E2E_TMP/out"
e2e_done
