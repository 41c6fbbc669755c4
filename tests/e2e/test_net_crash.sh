#!/bin/sh
# kill -9 of the gateway in the middle of pushes, then a restart: every
# acknowledged batch is present once, no unacknowledged batch is half there,
# the audit log verifies, and the agents' retries complete.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo

net_setup "$D" 24000
check "network demo exits 0" [ $? -eq 0 ]
# the agents push many batches of ~1500 records, so that the kill lands among them
pack_chunks k "$D/data/k_users.csv" 1500 "$D/policy.yaml" "$E2E_TMP/b" &&
	pack_chunks g "$D/data/g_viewers.csv" 1500 "$D/policy.yaml" "$E2E_TMP/b"
check "batches packed" [ $? -eq 0 ]
nb=$(ls "$E2E_TMP/b"/*.batch | wc -l)
DB=$E2E_TMP/crash.db
LOG=$E2E_TMP/gateway.log
net_start "$DB" "$D/policy.yaml" "$LOG"
check "gateway listens" [ -n "$NET_PORT" ]
PORT=$NET_PORT
FIRST=$NET_PID

for p in k g; do
	"$CROSSGATE" agent push $(net_client $p) --retries 12 "$E2E_TMP/b/$p"-*.batch >"$E2E_TMP/$p.out" 2>"$E2E_TMP/$p.err" &
	eval "AGENT_$p=\$!"
	NET_PIDS="$NET_PIDS $!"
done
# kill -9 once some batches are acknowledged and others are in flight
i=0
while [ "$(grep -c '"event":"push"' "$LOG")" -lt 3 ] && [ $i -lt 500 ]; do
	sleep 0.01; i=$((i + 1))
done
kill -9 "$FIRST"
wait "$FIRST" 2>/dev/null
acked_at_kill=$(cat "$E2E_TMP/k.out" "$E2E_TMP/g.out" | grep -c "committed\|duplicate")
check "the kill came after some acknowledgements and before the last ($acked_at_kill of $nb)" \
	[ "$acked_at_kill" -ge 1 -a "$acked_at_kill" -lt "$nb" ]
sleep 0.5
net_start "$DB" "$D/policy.yaml" "$LOG" "$PORT"
check "the gateway restarts on the same port" [ "$NET_PORT" = "$PORT" ]
wait "$AGENT_k"; rk=$?
wait "$AGENT_g"; rg=$?
check "K's agent completes (retries)" [ $rk -eq 0 ]
check "G's agent completes (retries)" [ $rg -eq 0 ]
for p in k g; do   # when an agent gave up, say why
	eval "rc=\$r$p"
	[ "$rc" -eq 0 ] || { echo "agent $p exited $rc:"; tail -5 "$E2E_TMP/$p.err"; }
done
check "the agents retried after the kill" grep -q "retrying in" "$E2E_TMP/k.err" "$E2E_TMP/g.err"
eq "every batch was acknowledged once by its agent" "$(cat "$E2E_TMP/k.out" "$E2E_TMP/g.out" | grep -c "committed\|duplicate")" "$nb"

# the store: each batch once, each whole
eq "every batch is stored" "$(sql "$DB" "SELECT count(*) FROM batches")" "$nb"
eq "no batch is stored twice" "$(sql "$DB" "SELECT count(DISTINCT batch_id) FROM batches")" "$nb"
# A user whose newer row (in a later chunk) lost match is withdrawn: the
# gateway erases the older record another batch stored, and the ingest event
# of the withdrawing batch counts it (erased).  Every other record stays.
erased=$("$CROSSGATE" audit show --db "$DB" --format jsonl | python3 -c 'import json, sys
print(sum(e.get("counts", {}).get("erased", 0) for e in map(json.loads, sys.stdin)
          if e.get("action") == "ingest" and e.get("outcome") == "ok"))')
eq "no batch holds more than it stored" "$(sql "$DB" "SELECT count(*) FROM batches b WHERE records < (SELECT count(*) FROM records r WHERE r.batch = b.id)")" 0
eq "no batch is half there: what batches lack is what withdrawals erased ($erased)" \
	"$(sql "$DB" "SELECT sum(records) - (SELECT count(*) FROM records) FROM batches")" "$erased"
want=$(cat "$E2E_TMP/k.out" "$E2E_TMP/g.out" | sed -n 's/.*: \(committed\|duplicate: already committed, counted once\): \([0-9]*\) records.*/\2/p' | awk '{s+=$1} END {print s}')
eq "the gateway holds exactly the records acknowledged, less those withdrawn" "$(sql "$DB" "SELECT count(*) FROM records")" "$((want - erased))"
check "no spool file is left behind" [ -z "$(ls "$DB.spool" 2>/dev/null)" ]

net_stop
check "the restarted gateway stops cleanly" [ $? -eq 0 ]
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >"$E2E_TMP/v" 2>&1
check "audit verify passes after the crash" [ $? -eq 0 ]
eq "one ingest event per batch" "$(sql "$DB" "SELECT count(*) FROM audit_events WHERE instr(event, 'ingest') > 0 AND instr(event, 'duplicate') = 0 AND instr(event, 'rejected') = 0")" "$nb"
e2e_done
