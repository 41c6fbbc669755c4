#!/bin/sh
# Witness cosigning (C2SP tlog-cosignature): witnesses cosign checkpoints they
# checked for consistency, the gateway stores and serves the cosignatures,
# and verification can require a quorum of named witnesses.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 200 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
PUB=$D/keys/gateway/sign.pub
ingest() {
	"$CROSSGATE" gateway ingest --db "$1" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
		"$D/batches/k.batch" >/dev/null 2>&1
}

"$CROSSGATE" audit witness-keygen --name witness.example/w1 --dir "$E2E_TMP/w1" >"$E2E_TMP/o" 2>&1
check "witness-keygen makes a key" [ -f "$E2E_TMP/w1/witness.key" ] && [ -f "$E2E_TMP/w1/witness.pub" ]
eq "the witness secret key is private" "$(stat -c %a "$E2E_TMP/w1/witness.key")" 600
W1=$(cat "$E2E_TMP/w1/witness.vkey")
check "it prints the verifier key" grep -qF "$W1" "$E2E_TMP/o"
case "$W1" in witness.example/w1+????????+*) ok "the verifier key is NAME+KEYID+KEY" ;; *) bad "verifier key: $W1" ;; esac
"$CROSSGATE" audit witness-keygen --name witness.example/w2 --dir "$E2E_TMP/w2" >/dev/null 2>&1
W2=$(cat "$E2E_TMP/w2/witness.vkey")
expect_fail "witness-keygen refuses to overwrite" "exists" \
	"$CROSSGATE" audit witness-keygen --name witness.example/w1 --dir "$E2E_TMP/w1"
expect_fail "a witness name with a space is refused" "--name must be" \
	"$CROSSGATE" audit witness-keygen --name "bad name" --dir "$E2E_TMP/w3"

cosign() { # cosign WITNESS_DIR NAME
	"$CROSSGATE" audit cosign --db "$DB" --pub "$PUB" --key "$1/witness.key" --name "$2" --state "$1/state"
}
expect_fail "no cosignature yet: a quorum of 1 fails" "no checkpoint is cosigned by any of the named witnesses" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --quorum 1
S1=$(sql "$DB" "SELECT count(*) FROM audit_events")
S2=$((S1 + 2))
cosign "$E2E_TMP/w1" witness.example/w1 >"$E2E_TMP/o" 2>&1
check "w1 cosigns the latest checkpoint" grep -q "cosigned the checkpoint at size $S1 as witness.example/w1" "$E2E_TMP/o"
check "the witness keeps its state" grep -q "^— witness.example/w1 " "$E2E_TMP/w1/state"
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 1 >"$E2E_TMP/o" 2>&1
check "a quorum of 1 of 2 holds" grep -q "witnessed: the checkpoint at size $S1 is cosigned by 1 of the 2 named witnesses" "$E2E_TMP/o"
expect_fail "a quorum of 2 does not hold with one cosignature" "no checkpoint is cosigned by 2 of the named witnesses: at most 1 (checkpoint at size $S1)" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2
cosign "$E2E_TMP/w2" witness.example/w2 >/dev/null 2>&1
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2 >"$E2E_TMP/o" 2>&1
check "a quorum of 2 holds once both cosigned" grep -q "cosigned by 2 of the 2 named witnesses (quorum 2); 0 events since" "$E2E_TMP/o"
# The gateway serves its checkpoint with the cosignatures.
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp" >/dev/null 2>&1
eq "the served checkpoint carries both cosignatures" "$(grep -c '^— witness.example/' "$E2E_TMP/cp")" 2
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/cp" >/dev/null 2>&1
check "a cosigned checkpoint is still a checkpoint for --since" [ $? -eq 0 ]

# The log grows; w1 checks consistency with what it cosigned before.
ingest "$DB"; ingest "$DB"
cosign "$E2E_TMP/w1" witness.example/w1 >"$E2E_TMP/o" 2>&1
check "w1 cosigns the grown log" grep -q "cosigned the checkpoint at size $S2" "$E2E_TMP/o"
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2 >"$E2E_TMP/o" 2>&1
check "the quorum is the latest checkpoint both cosigned" grep -q "checkpoint at size $S1 is cosigned by 2 .* 2 events since are not yet witnessed" "$E2E_TMP/o"

# A witness refuses a log that was rolled back or rewritten (here: a log rebuilt by the real gateway).
cp "$E2E_TMP/w1/state" "$E2E_TMP/w1/state.keep"
"$CROSSGATE" demo --dir "$E2E_TMP/demo2" --users 200 --json >/dev/null 2>&1
expect_fail "a witness state of another log is refused" "witness state: checkpoint" \
	"$CROSSGATE" audit cosign --db "$E2E_TMP/demo2/gateway.db" --pub "$E2E_TMP/demo2/keys/gateway/sign.pub" \
	--key "$E2E_TMP/w1/witness.key" --name witness.example/w1 --state "$E2E_TMP/w1/state"
rm -f "$E2E_TMP/demo2/gateway.db" "$E2E_TMP/demo2/gateway.db-wal" "$E2E_TMP/demo2/gateway.db-shm"
cp "$DB" "$E2E_TMP/demo2/gateway.db"
sql "$E2E_TMP/demo2/gateway.db" "DELETE FROM audit_events WHERE seq >= $((S2 - 1)); DELETE FROM audit_checkpoints WHERE size > $((S2 - 1))"
expect_fail "a rolled-back log is not cosigned" "smaller than the one this witness last cosigned (size $S2): the log was rolled back; refusing to cosign" \
	"$CROSSGATE" audit cosign --db "$E2E_TMP/demo2/gateway.db" --pub "$PUB" --key "$E2E_TMP/w1/witness.key" \
	--name witness.example/w1 --state "$E2E_TMP/w1/state"
for i in 1 2; do
	"$CROSSGATE" audit verify --db "$E2E_TMP/demo2/gateway.db" --pub "$PUB" --record-key "$D/keys/gateway/sign.key" >/dev/null 2>&1
done
expect_fail "a rewritten log is not cosigned" "not consistent with the checkpoint this witness last cosigned (size $S2): refusing to cosign" \
	"$CROSSGATE" audit cosign --db "$E2E_TMP/demo2/gateway.db" --pub "$PUB" --key "$E2E_TMP/w1/witness.key" \
	--name witness.example/w1 --state "$E2E_TMP/w1/state"
check "a refused cosign leaves the witness state alone" cmp -s "$E2E_TMP/w1/state" "$E2E_TMP/w1/state.keep"

# Once both cosigned the grown log, an older cosignature is still verified: a change to it is caught.
cosign "$E2E_TMP/w2" witness.example/w2 >/dev/null 2>&1
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2 >"$E2E_TMP/o" 2>&1
check "both cosigned the grown log" grep -q "checkpoint at size $S2 is cosigned by 2" "$E2E_TMP/o"
old_line=$(sql "$DB" "SELECT line FROM audit_cosignatures WHERE witness = 'witness.example/w1' AND size = $S1")
sql "$DB" "UPDATE audit_cosignatures SET line = replace(line, substr(line, -12, 4), 'AAAA') WHERE witness = 'witness.example/w1' AND size = $S1"
expect_fail "a changed older cosignature is caught behind a newer quorum" \
	"cosignature of the checkpoint at size $S1: cosignature by witness.example/w1 does not verify" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2
sql "$DB" "UPDATE audit_cosignatures SET line = '$old_line' WHERE witness = 'witness.example/w1' AND size = $S1"
sql "$DB" "DELETE FROM audit_cosignatures WHERE witness = 'witness.example/w2' AND size = $S2"

# A changed stored cosignature is an error, not a missing vote.
sql "$DB" "UPDATE audit_cosignatures SET line = replace(line, substr(line, -12, 4), 'AAAA') WHERE witness = 'witness.example/w2'"
expect_fail "a changed cosignature is caught" "cosignature of the checkpoint at size $S1: cosignature by witness.example/w2 does not verify" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --witness "$W2" --quorum 2
expect_fail "--quorum without --witness is a usage error" "--witness and --quorum go together" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --quorum 1
expect_fail "a quorum above the witness count is a usage error" "--quorum exceeds" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$W1" --quorum 2
expect_fail "a note key is not a witness key" "not an Ed25519 cosignature/v1 key" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --witness "$(echo "$W1" | python3 -c '
import base64, hashlib, sys
n, _, k = sys.stdin.read().strip().split("+", 2)
raw = base64.b64decode(k); raw = b"\x01" + raw[1:]
kid = hashlib.sha256(n.encode() + b"\n" + raw).digest()[:4].hex()
print(n + "+" + kid + "+" + base64.b64encode(raw).decode())')" --quorum 1
e2e_done
