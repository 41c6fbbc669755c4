#!/bin/sh
# Auditors over the network: erased events are fetched as their leaf hashes
# and verify offline; witnesses fetch, cosign and submit over mutual TLS; the
# gateway checks and stores cosignatures and serves them with the log, so a
# fetched copy passes 'verify --witness ... --quorum N' offline; an erasure
# after a copy was made leaves the copy verifiable.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
net_setup "$D" 200
check "network demo exits 0" [ -s "$D/policy.yaml" ]
DB=$E2E_TMP/gw.db
cp "$D/gateway.db" "$DB"
PUB=$D/keys/gateway/sign.pub
"$CROSSGATE" audit erase --db "$DB" --key "$D/keys/gateway/sign.key" --seq 1-3 >/dev/null 2>&1
check "three events erased at the gateway" [ "$(sql "$DB" "SELECT count(*) FROM audit_erased")" = 3 ]
net_start "$DB" "$D/policy.yaml" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]

# Erased events travel as leaf hashes and verify offline.
"$CROSSGATE" audit fetch $(net_client auditor) --out "$E2E_TMP/copy.db" >"$E2E_TMP/o" 2>&1
check "fetch of a log with erased events succeeds" [ $? -eq 0 ]
eq "the copy holds the three erasures" "$(sql "$E2E_TMP/copy.db" "SELECT count(*) FROM audit_erased")" 3
eq "without their payloads" "$(sql "$E2E_TMP/copy.db" "SELECT count(*) FROM audit_events WHERE length(event) = 0")" 3
"$CROSSGATE" audit verify --db "$E2E_TMP/copy.db" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "the copy verifies offline" [ $? -eq 0 ]
check "and counts the erased events" grep -q "erased: 3 events" "$E2E_TMP/o"
eq "the copy's root is the gateway's" "$(sql "$E2E_TMP/copy.db" "SELECT hex(leaf) FROM audit_events WHERE seq = 2")" \
	"$(sql "$DB" "SELECT hex(leaf) FROM audit_events WHERE seq = 2")"
"$CROSSGATE" audit prove --db "$E2E_TMP/copy.db" --event 2 --out "$E2E_TMP/p2" >/dev/null 2>&1 &&
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p2" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "an erased event is proven from the copy" grep -q "proven by its leaf hash" "$E2E_TMP/o"
# A copy whose erased leaf hash is changed fails verification.
cp "$E2E_TMP/copy.db" "$E2E_TMP/bad.db"
sql "$E2E_TMP/bad.db" "UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 2"
expect_fail "a changed erased leaf hash is caught" "event 2 (erased) does not match the signed checkpoint" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/bad.db" --pub "$PUB"

# Two witnesses cosign over the network.
for w in 1 2; do
	"$CROSSGATE" audit witness-keygen --name "witness.example/w$w" --dir "$E2E_TMP/w$w" >/dev/null 2>&1
	"$CROSSGATE" audit witness $(net_client auditor) --copy "$E2E_TMP/w$w/copy.db" --pub "$PUB" \
		--witness-key "$E2E_TMP/w$w/witness.key" --name "witness.example/w$w" --state "$E2E_TMP/w$w/state" \
		>"$E2E_TMP/o$w" 2>&1
	check "witness $w fetches, verifies, cosigns and submits" grep -q "the gateway stored it" "$E2E_TMP/o$w"
done
W1=$(cat "$E2E_TMP/w1/witness.vkey"); W2=$(cat "$E2E_TMP/w2/witness.vkey")
eq "the gateway stores both cosignatures" "$(sql "$DB" "SELECT count(DISTINCT witness) FROM audit_cosignatures")" 2
check "each submission is an audit event" [ "$(sql "$DB" "SELECT count(*) FROM audit_events WHERE instr(event, 'audit-cosign') > 0")" -ge 2 ]
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 1 >/dev/null 2>&1
check "the gateway's own log verifies with the cosignatures" [ $? -eq 0 ]

# The auditor's copy gets the cosignatures with the next fetch and checks the quorum offline.
"$CROSSGATE" audit fetch $(net_client auditor) --out "$E2E_TMP/copy.db" >/dev/null 2>&1
eq "cosignatures arrive with the fetch" "$(sql "$E2E_TMP/copy.db" "SELECT count(*) FROM audit_cosignatures")" \
	"$(sql "$DB" "SELECT count(*) FROM audit_cosignatures")"
"$CROSSGATE" audit verify --db "$E2E_TMP/copy.db" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 1 >"$E2E_TMP/o" 2>&1
check "a quorum of witnesses verifies offline on fetched data" grep -q "witnessed: the checkpoint at size" "$E2E_TMP/o"
# (w2 cosigned last: the newest cosignature is the one the quorum check reaches first)
sql "$E2E_TMP/copy.db" "UPDATE audit_cosignatures SET line = replace(line, substr(line, -12, 4), 'AAAA') WHERE witness = 'witness.example/w2'"
expect_fail "a changed fetched cosignature is caught" "cosignature by witness.example/w2 does not verify" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/copy.db" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 1

# Submissions that must be refused.
S=$(sql "$DB" "SELECT size FROM audit_cosignatures WHERE witness = 'witness.example/w1' ORDER BY size DESC LIMIT 1")
tail -1 "$E2E_TMP/w1/state" >"$E2E_TMP/line1"
python3 tests/e2e/net_client.py cosign "$NET_PORT" "$D/pki/ca.pem" "$D/pki/k.pem" "$D/pki/k.key" "$S" "$W1" \
	"$E2E_TMP/line1" >"$E2E_TMP/o" 2>&1
check "a partner may not submit a cosignature" grep -aq "principal 'k-agent' has role partner, which may not audit_cosign" "$E2E_TMP/o"
audit_has "a partner's cosignature" "may not audit_cosign" "$DB"
python3 tests/e2e/net_client.py cosign "$NET_PORT" "$D/pki/ca.pem" "$D/pki/auditor.pem" "$D/pki/auditor.key" "$S" "$W2" \
	"$E2E_TMP/line1" >"$E2E_TMP/o" 2>&1
check "a line that is not the named witness's is rejected" grep -aq "the cosignature line is not by witness witness.example/w2" "$E2E_TMP/o"
python3 tests/e2e/net_client.py cosign "$NET_PORT" "$D/pki/ca.pem" "$D/pki/auditor.pem" "$D/pki/auditor.key" "$((S - 1))" "$W1" \
	"$E2E_TMP/line1" >"$E2E_TMP/o" 2>&1
check "a line for another checkpoint is rejected" grep -aq "rejected" "$E2E_TMP/o"
python3 tests/e2e/net_client.py cosign "$NET_PORT" "$D/pki/ca.pem" "$D/pki/auditor.pem" "$D/pki/auditor.key" 999999 "$W1" \
	"$E2E_TMP/line1" >"$E2E_TMP/o" 2>&1
check "a size with no checkpoint is rejected" grep -aq "no checkpoint at size 999999" "$E2E_TMP/o"
audit_has "a rejected cosignature" "no checkpoint at size 999999" "$DB"

# An erasure at the gateway after the copy was made: the copy keeps those payloads and still verifies.
"$CROSSGATE" audit erase --db "$DB" --key "$D/keys/gateway/sign.key" --seq 5-6 >/dev/null 2>&1
"$CROSSGATE" audit fetch $(net_client auditor) --out "$E2E_TMP/copy2.db" >/dev/null 2>&1
cp "$E2E_TMP/copy.db" "$E2E_TMP/copy3.db"
sql "$E2E_TMP/copy3.db" "DELETE FROM audit_cosignatures"
"$CROSSGATE" audit fetch $(net_client auditor) --out "$E2E_TMP/copy3.db" >/dev/null 2>&1
"$CROSSGATE" audit verify --db "$E2E_TMP/copy3.db" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "a copy made before an erasure still verifies" [ $? -eq 0 ]
check "and says what it kept" grep -q "kept: 2 events erased at the gateway after this copy was made" "$E2E_TMP/o"
"$CROSSGATE" audit verify --db "$E2E_TMP/copy2.db" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "a fresh copy holds the new erasures" grep -q "erased: 5 events" "$E2E_TMP/o"
net_stop
check "the server stops cleanly" [ $? -eq 0 ]
e2e_done
