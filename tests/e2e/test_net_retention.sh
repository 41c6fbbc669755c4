#!/bin/sh
# The server erases records past their partner's retention periodically (with
# its heartbeat), with a "purge" audit event per partner that had any.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
net_setup "$D" 300
check "network demo exits 0" [ -s "$D/policy.yaml" ]
# a heartbeat every second; retention short enough that the demo's 2023-2025 consents expire in part
net_policy "$D/policy.yaml" "$D/short.yaml" 's/heartbeat_interval: [0-9]*/heartbeat_interval: 1/' \
	's/retention_days: 1095/retention_days: 700/'
grep -q "heartbeat_interval: 1" "$D/short.yaml" || sed -i 's/^network:$/network:\n  heartbeat_interval: 1/' "$D/short.yaml"
DB=$E2E_TMP/r.db
cp "$D/gateway.db" "$DB"
before=$(sql "$DB" "SELECT count(*) FROM records")
cut=$(( $(date +%s) - 700 * 86400 ))
old=$(sql "$DB" "SELECT count(*) FROM records WHERE consent_at < $cut")
check "some records are past a 700-day retention" [ "$old" -gt 0 ]
net_start "$DB" "$D/short.yaml" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]
i=0
while [ "$(sql "$DB" "SELECT count(*) FROM records WHERE consent_at < $cut")" != 0 ] && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
eq "the expired records are erased while the server runs" "$(sql "$DB" "SELECT count(*) FROM records WHERE consent_at < $cut")" 0
eq "the others are untouched" "$(sql "$DB" "SELECT count(*) FROM records")" "$((before - old))"
net_stop
check "the server stops cleanly" [ $? -eq 0 ]
check "a purge event is in the log" sh -c "'$CROSSGATE' audit show --db '$DB' --type purge --format jsonl | grep -q erased"
check "heartbeats are in the log" sh -c "'$CROSSGATE' audit show --db '$DB' --type heartbeat --format jsonl | grep -q connections"
n=$("$CROSSGATE" audit show --db "$DB" --type purge --format jsonl | wc -l)
check "no empty purge events from the periodic runs" [ "$n" -le 2 ]
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the audit log verifies" [ $? -eq 0 ]
e2e_done
