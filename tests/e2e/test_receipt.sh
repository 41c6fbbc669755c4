#!/bin/sh
# Receipts (issue 12): a user whose withdrawal or revocation the partner sent
# checks offline, with the gateway's public key and their own identifier,
# that the gateway's signed log commits to it; another user's identifier, a
# forged nonce, a log rewritten afterwards or a missing witness quorum fail
# with the reason.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
GW=$D/keys/gateway
P=$D/policy.yaml
DB=$E2E_TMP/r.db
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys/"
KEYS=$E2E_TMP/gwkeys
PUB=$KEYS/sign.pub
R=$E2E_TMP/receipts

agent() { # agent pack|revoke CSV OUT [more]
	sub=$1 in=$2 out=$3; shift 3
	"$CROSSGATE" agent "$sub" --policy "$P" --partner k --input "$in" --out "$out" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" "$@"
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$KEYS" "$@" >/dev/null; }
verify() { "$CROSSGATE" receipt verify "$@"; }

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
{
	echo "$KH"
	for i in $(seq 1 12); do echo "k$i,user$i@example.com,,25,CN-BJ,match;analytics;marketing,2024-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/k1.csv"
{
	echo "$KH"
	for i in 1 2 3; do echo "k$i,user$i@example.com,,25,CN-BJ,,2024-06-01,100,10,1,music,500"; done
	echo '"k/../4",user4@example.com,,25,CN-BJ,marketing,2024-06-01,100,10,1,music,500'
	echo "k7,user7@example.com,,25,CN-BJ,analytics,2024-06-02,100,10,1,music,500"
	echo "k8,,13900000008,25,CN-BJ,,2024-06-02,100,10,1,music,500"
} >"$E2E_TMP/k2.csv"
agent pack "$E2E_TMP/k1.csv" "$E2E_TMP/k1.batch" >/dev/null
agent pack "$E2E_TMP/k2.csv" "$E2E_TMP/k2.batch" --receipts "$R" >"$E2E_TMP/o"
check "pack writes one receipt per withdrawal" grep -q "6 receipts written to $R" "$E2E_TMP/o"
B=$(sed -n 's/.*(batch \([0-9a-f]*\)).*/\1/p' "$E2E_TMP/o")
check "receipts are named by batch and user id" [ -f "$R/$B-k1.receipt" ] && [ -f "$R/$B-k3.receipt" ]
check "a user id that is not a plain file name is named by its line" [ -f "$R/$B-line-5.receipt" ]
eq "receipts are private (0600)" "$(stat -c %a "$R/$B-k1.receipt")" 600
check "a receipt is one line that fits a QR code" sh -c "[ \$(wc -l <'$R/$B-k1.receipt') -eq 1 ] && [ \$(wc -c <'$R/$B-k1.receipt') -lt 1500 ] && grep -q '^CGR1:' '$R/$B-k1.receipt'"
python3 - "$R/$B-k1.receipt" <<'PY' && ok "the receipt holds no identifier in clear" || bad "an identifier is in the receipt"
import base64, sys
t = open(sys.argv[1]).read().strip()[5:]
b = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
assert b"example.com" not in b and b"user" not in b
PY

expect_fail "before the gateway ingested the batch, there is no proof" "has no audit proof yet" \
	verify "$R/$B-k1.receipt" --pub "$PUB" --identifier user1@example.com
expect_fail "prove before ingest: the log has no event for the batch" "no committed event of batch $B" \
	"$CROSSGATE" receipt prove --db "$DB" --batch "$B" --out "$E2E_TMP/b.proof"
expect_fail "prove needs a batch id" "--batch must be a batch id: 32 hex digits" \
	"$CROSSGATE" receipt prove --db "$DB" --batch "k2.batch" --out "$E2E_TMP/b.proof"
ingest "$E2E_TMP/k1.batch" "$E2E_TMP/k2.batch"
cp -r "$R" "$E2E_TMP/unattached"
# The gateway proves the batch's event and sends the proof (no identifier in it) to the partner, who attaches it.
"$CROSSGATE" receipt prove --db "$DB" --batch "$B" --out "$E2E_TMP/b.proof" >/dev/null
check "the proof names no user" sh -c "! grep -q 'example.com' '$E2E_TMP/b.proof'"
"$CROSSGATE" receipt attach --proof "$E2E_TMP/b.proof" "$R"/*.receipt >"$E2E_TMP/o" 2>&1
check "attach adds the gateway's proof to every receipt" [ "$(grep -c 'audit proof attached' "$E2E_TMP/o")" -eq 6 ]

verify "$R/$B-k1.receipt" --pub "$PUB" --identifier " User1@Example.COM " >"$E2E_TMP/o" 2>&1
check "a valid receipt verifies (the identifier as the user writes it)" \
	grep -q "receipt ok: the withdrawal of match,analytics,marketing by partner k at 2024-06-01T00:00:00Z (batch $B) is committed in event" "$E2E_TMP/o"
check "the last leaf of a tree of 5 verifies, and says what was withdrawn when" sh -c "'$CROSSGATE' receipt verify '$R/$B-k7.receipt' --pub '$PUB' --identifier user7@example.com | grep -q 'withdrawal of match,analytics,marketing by partner k at 2024-06-02T00:00:00Z'"
for i in 1 2 3 7; do
	for j in 1 2 3 4 7; do
		[ "$i" = "$j" ] && continue
		"$CROSSGATE" receipt verify "$R/$B-k$i.receipt" --pub "$PUB" --identifier "user$j@example.com" >/dev/null 2>&1 &&
			bad "user $i's receipt verifies for user $j"
	done
done
ok "no receipt verifies for any other user of the batch"
check "a phone receipt verifies with the number written another way" sh -c "'$CROSSGATE' receipt verify '$R/$B-k8.receipt' --pub '$PUB' --identifier '+86 139-0000-0008' >/dev/null"
expect_fail "a phone receipt against another number fails" "is not in the batch's receipt tree" \
	verify "$R/$B-k8.receipt" --pub "$PUB" --identifier "13900000007"
check "the never-sent user's receipt verifies too" sh -c "'$CROSSGATE' receipt verify '$R/$B-line-5.receipt' --pub '$PUB' --identifier user4@example.com >/dev/null"
expect_fail "another user's identifier fails" "is not in the batch's receipt tree that the gateway logged" \
	verify "$R/$B-k1.receipt" --pub "$PUB" --identifier user2@example.com
expect_fail "a phone number against an email receipt fails" "the identifier is not a valid email" \
	verify "$R/$B-k1.receipt" --pub "$PUB" --identifier "+8613900000001"
# Forge the receipt: one bit of the nonce (field 8, 32 bytes), or what it says was withdrawn.
forge() { # forge IN OUT WHAT: WHAT is nonce or withdrawn
	python3 - "$@" <<'PY'
import base64, sys
t = open(sys.argv[1]).read().strip()[5:]
b = bytearray(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
def field(b, want):               # offset of the value of length-delimited field `want`
    i = 0
    while i < len(b):
        key, i = b[i], i + 1           # every tag of a Receipt fits one byte
        wt, n = key & 7, 0
        if wt == 0:
            while b[i] & 0x80: i += 1
            i += 1
            continue
        shift = 0
        while True:
            n |= (b[i] & 0x7f) << shift; shift += 7; i += 1
            if not b[i - 1] & 0x80: break
        if key >> 3 == want: return i
        i += n
if sys.argv[3] == "nonce":
    b[field(b, 8)] ^= 0x01
else:
    i = b.index(b"marketing")
    b[i + 8] ^= 0x01                   # "marketinf"
open(sys.argv[2], "w").write("CGR1:" + base64.urlsafe_b64encode(bytes(b)).decode().rstrip("=") + "\n")
PY
}
forge "$R/$B-k1.receipt" "$E2E_TMP/forged-nonce.receipt" nonce
check "the forged receipt differs from the real one" sh -c "! cmp -s '$R/$B-k1.receipt' '$E2E_TMP/forged-nonce.receipt'"
expect_fail "a forged nonce fails" "is not in the batch's receipt tree" \
	verify "$E2E_TMP/forged-nonce.receipt" --pub "$PUB" --identifier user1@example.com
forge "$R/$B-k1.receipt" "$E2E_TMP/forged-what.receipt" withdrawn
expect_fail "a receipt that changes what was withdrawn fails" "is not in the batch's receipt tree" \
	verify "$E2E_TMP/forged-what.receipt" --pub "$PUB" --identifier user1@example.com
expect_fail "another gateway's key fails" "the audit proof does not verify with this gateway key" \
	verify "$R/$B-k1.receipt" --pub "$D/keys/gateway/sign.pub" --identifier user1@example.com
cp "$R/$B-k1.receipt" "$E2E_TMP/k1-before-rewrite.receipt"

# A copy of the gateway's current log: the receipt's checkpoint must still be in it.
check "with the current log, the receipt verifies" sh -c "'$CROSSGATE' receipt verify '$R/$B-k1.receipt' --pub '$PUB' --identifier user1@example.com --log '$DB' | grep -q 'the current log still extends it'"
# The gateway rewrites its log afterwards, signing with its real key: a new
# history under the same key (the older batch again, the withdrawal never
# ingested, and enough events to pass the receipt's checkpoint).
DB2=$E2E_TMP/rewritten.db
for b in k1 k1s; do
	[ -f "$E2E_TMP/$b.batch" ] || agent pack "$E2E_TMP/k1.csv" "$E2E_TMP/$b.batch" >/dev/null
	"$CROSSGATE" gateway ingest --db "$DB2" --policy "$P" --keys "$KEYS" "$E2E_TMP/$b.batch" "$E2E_TMP/k1.batch" >/dev/null
done
check "the rewritten log verifies on its own, under the same key" sh -c "'$CROSSGATE' audit verify --db '$DB2' --pub '$PUB' >/dev/null 2>&1"
expect_fail "a log rewritten after the receipt was issued fails" "does not extend the receipt's checkpoint" \
	verify "$R/$B-k1.receipt" --pub "$PUB" --identifier user1@example.com --log "$DB2"
# Tampering with the stored event (without the key): the proof no longer verifies.
cp "$DB" "$E2E_TMP/tampered.db"
SEQ=$(sed -n 's/.*committed in event \([0-9]*\) .*/\1/p' "$E2E_TMP/o")
python3 - "$E2E_TMP/tampered.db" "$SEQ" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(ev,) = db.execute("SELECT event FROM audit_events WHERE seq = ?", (int(sys.argv[2]),)).fetchone()
assert b"ingest" in ev
db.execute("UPDATE audit_events SET event = ? WHERE seq = ?", (ev.replace(b"ingest", b"ingesx", 1), int(sys.argv[2])))
db.commit()
PY
cp "$E2E_TMP/unattached/$B-k2.receipt" "$E2E_TMP/k2.receipt"
"$CROSSGATE" receipt attach --db "$E2E_TMP/tampered.db" "$E2E_TMP/k2.receipt" >/dev/null 2>&1
check "attach itself does not check the gateway's signature (the user's verify does)" \
	sh -c "! cmp -s '$E2E_TMP/unattached/$B-k2.receipt' '$E2E_TMP/k2.receipt'"
expect_fail "a receipt proven from a tampered log fails" "the audit proof does not verify" \
	verify "$E2E_TMP/k2.receipt" --pub "$PUB" --identifier user2@example.com

# Witnesses: the checkpoint in the receipt is the one they cosigned.
"$CROSSGATE" audit witness-keygen --name witness.example/w1 --dir "$E2E_TMP/w1" >/dev/null 2>&1
"$CROSSGATE" audit witness-keygen --name witness.example/w2 --dir "$E2E_TMP/w2" >/dev/null 2>&1
W1=$(cat "$E2E_TMP/w1/witness.vkey"); W2=$(cat "$E2E_TMP/w2/witness.vkey")
"$CROSSGATE" audit cosign --db "$DB" --pub "$PUB" --key "$E2E_TMP/w1/witness.key" --name witness.example/w1 \
	--state "$E2E_TMP/w1/state" >/dev/null 2>&1
cp "$E2E_TMP/unattached/$B-k3.receipt" "$E2E_TMP/k3.receipt"
"$CROSSGATE" receipt attach --db "$DB" "$E2E_TMP/k3.receipt" >/dev/null
verify "$E2E_TMP/k3.receipt" --pub "$PUB" --identifier user3@example.com --witness "$W1" --quorum 1 >"$E2E_TMP/o" 2>&1
check "with a witness quorum of 1: verifies" grep -q "cosigned by 1 of 1 witnesses" "$E2E_TMP/o"
expect_fail "a quorum of 2 with one cosignature fails" "only 1 of the 2 witnesses cosigned the receipt's checkpoint" \
	verify "$E2E_TMP/k3.receipt" --pub "$PUB" --identifier user3@example.com --witness "$W1" --witness "$W2" --quorum 2
expect_fail "a witness that did not cosign fails" "only 0 of the 1 witnesses" \
	verify "$E2E_TMP/k3.receipt" --pub "$PUB" --identifier user3@example.com --witness "$W2" --quorum 1

# Revocation receipts, and a proof from 'audit prove' instead of the store.
printf 'user_id,email\nk5,USER5@example.com\nk6,\n' >"$E2E_TMP/rev.csv"
agent pack "$E2E_TMP/k1.csv" "$E2E_TMP/k1s2.batch" --state "$E2E_TMP/state.db" >/dev/null
agent revoke "$E2E_TMP/rev.csv" "$E2E_TMP/rev.batch" --state "$E2E_TMP/state.db" --receipts "$E2E_TMP/rr" >"$E2E_TMP/o"
check "revoke: a receipt for the user named by email, none for the one named by user id only" \
	grep -q "1 receipts written to $E2E_TMP/rr (1 users named by user id only" "$E2E_TMP/o"
ingest "$E2E_TMP/rev.batch"
RB=$(sed -n 's/.*revocation batch \([0-9a-f]*\) written.*/\1/p' "$E2E_TMP/o")
"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/audit"
RSEQ=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get('action') == 'revoke': print(e['seq'])" "$E2E_TMP/audit" | tail -1)
"$CROSSGATE" audit prove --db "$DB" --event "$RSEQ" --out "$E2E_TMP/rev.proof" >/dev/null
"$CROSSGATE" receipt attach --proof "$E2E_TMP/rev.proof" "$E2E_TMP/rr/$RB-k5.receipt" >/dev/null
verify "$E2E_TMP/rr/$RB-k5.receipt" --pub "$PUB" --identifier user5@example.com >"$E2E_TMP/o" 2>&1
check "a revocation receipt verifies" grep -q "receipt ok: the revocation of match,analytics,marketing by partner k" "$E2E_TMP/o"
expect_fail "a proof of another batch is refused at attach" "the audit proof is for another batch" \
	"$CROSSGATE" receipt attach --proof "$E2E_TMP/rev.proof" "$E2E_TMP/unattached/$B-k2.receipt"
e2e_done
