#!/bin/sh
# Withdrawal over the network: a partner pushes users, then a newer batch in
# which some lost `match`, with receipts; the running gateway erases them
# (its own count for the partner drops by exactly those), and the receipts,
# once the gateway's proof is attached, verify offline.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
net_setup "$D" 300
check "network demo exits 0" [ -s "$D/policy.yaml" ]
DB=$E2E_TMP/w.db
cp "$D/gateway.db" "$DB"
P=$D/policy.yaml
R=$E2E_TMP/receipts
pack() { # pack CSV OUT [more]
	in=$1 out=$2; shift 2
	"$CROSSGATE" agent pack --policy "$P" --partner k --input "$in" --out "$out" --match-key "$D/keys/match.key" \
		--sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" "$@"
}
krecords() { "$CROSSGATE" agent stats $(net_client k) | sed -n 's/^partner k: \([0-9]*\) records stored.*/\1/p'; }

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
{
	echo "$KH"
	for i in $(seq 1 12); do echo "wd$i,wd-user$i@example.org,,25,CN-BJ,match;analytics,2024-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/k1.csv"
{
	echo "$KH"
	for i in 1 2 3; do echo "wd$i,wd-user$i@example.org,,25,CN-BJ,,2024-06-01,100,10,1,music,500"; done
} >"$E2E_TMP/k2.csv"
pack "$E2E_TMP/k1.csv" "$E2E_TMP/k1.batch" --state "$E2E_TMP/state.db" >/dev/null
pack "$E2E_TMP/k2.csv" "$E2E_TMP/k2.batch" --state "$E2E_TMP/state.db" --receipts "$R" >"$E2E_TMP/o"
check "three withdrawals with receipts" grep -q "3 withdrawals sent (3 lost match, 0 narrowed)" "$E2E_TMP/o"
B=$(sed -n 's/.*(batch \([0-9a-f]*\)).*/\1/p' "$E2E_TMP/o")

net_start "$DB" "$P" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]
before=$(krecords)
"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/k1.batch" >/dev/null 2>&1
eq "the 12 users are stored" "$(krecords)" "$((before + 12))"
"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/k2.batch" >"$E2E_TMP/o" 2>&1
check "the withdrawal batch is committed" grep -q "committed" "$E2E_TMP/o"
eq "the running gateway erased exactly the 3" "$(krecords)" "$((before + 9))"
"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/k1.batch" >"$E2E_TMP/o" 2>&1
check "pushing the older batch again is a duplicate" grep -q "duplicate" "$E2E_TMP/o"
eq "still 9" "$(krecords)" "$((before + 9))"
net_stop
check "the server stops cleanly" [ $? -eq 0 ]

"$CROSSGATE" receipt prove --db "$DB" --batch "$B" --out "$E2E_TMP/b.proof" >/dev/null
"$CROSSGATE" receipt attach --proof "$E2E_TMP/b.proof" "$R/$B"-*.receipt >/dev/null
"$CROSSGATE" receipt verify "$R/$B-wd2.receipt" --pub "$D/keys/gateway/sign.pub" --identifier wd-user2@example.org \
	>"$E2E_TMP/o" 2>&1
check "the pushed withdrawal's receipt verifies" grep -q "receipt ok: the withdrawal of match,analytics" "$E2E_TMP/o"
expect_fail "and not for another user" "is not in the batch's receipt tree" \
	"$CROSSGATE" receipt verify "$R/$B-wd2.receipt" --pub "$D/keys/gateway/sign.pub" --identifier wd-user1@example.org
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the audit log verifies" [ $? -eq 0 ]
e2e_done
