#!/bin/sh
# The gateway's push receive path (gateway/server_push.c server_push): batches are
# read straight into a memory spool that the next push reuses.  Pushes cut
# short, announced too short or too long, with a frame over the limit or a
# tampered byte are refused or rejected and leave nothing behind; the spool
# they leave is reused by good pushes of other sizes, which commit exactly
# what was sent.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
PUSH="python3 tests/e2e/net_push.py"

net_setup "$D" 300
check "network demo exits 0" [ $? -eq 0 ]
P=$D/net.yaml
net_policy "$D/policy.yaml" "$P" 's/read_timeout: 30/read_timeout: 2/' 's/retention_days: 1095/retention_days: 36500/'
mkdir -p "$E2E_TMP/b"
for p in k g; do
	"$CROSSGATE" agent pack --policy "$P" --partner "$p" --input "$D/data/$( [ $p = k ] && echo k_users || echo g_viewers).csv" \
		--out "$E2E_TMP/b/$p.batch" --match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" \
		--gateway-pub "$D/keys/gateway/enc.pub" >/dev/null 2>&1
done
check "batches packed under the test policy" [ -s "$E2E_TMP/b/k.batch" -a -s "$E2E_TMP/b/g.batch" ]
K=$E2E_TMP/b/k.batch
KSIZE=$(wc -c <"$K")
DB=$E2E_TMP/net.db
LOG=$E2E_TMP/gateway.log
net_start "$DB" "$P" "$LOG"
check "gateway listens" [ -n "$NET_PORT" ]
KC="$NET_PORT $D/pki/ca.pem $D/pki/k.pem $D/pki/k.key $K"

# --- pushes that must not commit -------------------------------------------------------------
$PUSH $KC $((KSIZE - 10)) $KSIZE >"$E2E_TMP/o" 2>&1
check "announced 10 bytes short: the batch's last frame runs past it" \
	grep -q "batch frames run past the announced $((KSIZE - 10)) bytes" "$E2E_TMP/o"
audit_has "announced too short" "batch frames run past the announced" "$DB"

$PUSH $KC $((KSIZE + 100)) $KSIZE >"$E2E_TMP/o" 2>&1
check "announced 100 bytes too long: the read times out" grep -q "read timed out" "$E2E_TMP/o"

$PUSH $KC $KSIZE $((KSIZE / 2)) close >"$E2E_TMP/o" 2>&1
i=0
while ! grep -q '"event":"push-aborted"' "$LOG" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "cut off half way: the gateway logs the push aborted" grep -q '"event":"push-aborted".*"reason":"connection closed by the peer"' "$LOG"

# A push that trickles tiny frames is dropped after read_timeout (2 s here) like a silent one.
$PUSH $KC 1048576 0 trickle >"$E2E_TMP/o" 2>&1
check "a push trickling tiny frames is dropped" grep -q "^dropped after" "$E2E_TMP/o"

$PUSH $KC 0 0 bigframe >"$E2E_TMP/o" 2>&1
check "a record frame over the limit: an error frame says so" \
	grep -q "frame of 15728640 bytes is over the limit of 65536 bytes" "$E2E_TMP/o"
audit_has "a record frame over the limit" "push: frame of 15728640 bytes is over the limit" "$DB"

cp "$K" "$E2E_TMP/tampered.batch"
printf 'X' | dd of="$E2E_TMP/tampered.batch" bs=1 seek=$((KSIZE / 2)) conv=notrunc 2>/dev/null
expect_fail "a byte changed in the middle: rejected" "rejected" \
	"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/tampered.batch"
eq "nothing is stored yet" "$(sql "$DB" "SELECT count(*) FROM batches")" 0

# --- good pushes of other sizes reuse the spool: each commits exactly what was sent -----------------
"$CROSSGATE" agent push $(net_client k) --retries 0 "$K" >"$E2E_TMP/k.out" 2>&1
check "K's batch commits after the refusals" grep -q "committed: [0-9]* records of partner k" "$E2E_TMP/k.out"
"$CROSSGATE" agent push $(net_client g) --retries 0 "$E2E_TMP/b/g.batch" >"$E2E_TMP/g.out" 2>&1
check "G's batch (another size) commits" grep -q "committed: [0-9]* records of partner g" "$E2E_TMP/g.out"
"$CROSSGATE" agent push $(net_client k) --retries 0 "$K" >"$E2E_TMP/o" 2>&1
check "K's batch again is a duplicate" grep -q "duplicate: already committed" "$E2E_TMP/o"
for p in k g; do
	n=$(sed -n 's/.*committed: \([0-9]*\) records.*/\1/p' "$E2E_TMP/$p.out")
	check "partner $p: records were sent" [ "${n:-0}" -gt 0 ]
	eq "partner $p: the store holds the records sent" "$(sql "$DB" "SELECT count(*) FROM records WHERE partner = '$p'")" "$n"
done
eq "two batches, each once" "$(sql "$DB" "SELECT count(*) || ' ' || count(DISTINCT batch_id) FROM batches")" "2 2"

net_stop
check "SIGTERM: the gateway exits 0" [ $? -eq 0 ]
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the audit log verifies" [ $? -eq 0 ]
e2e_done
