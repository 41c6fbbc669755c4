#!/bin/sh
# Revocation really erases, and retention too: after revoking N users no
# export contains them, the counts drop by exactly N, and neither the
# database file nor its WAL still holds their tokens or ciphertexts.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
# This test is about erasure, not about privacy: a budget that makes releases near-noiseless.
lax_privacy "$D/policy.yaml" "$E2E_TMP/lax.yaml" && cp "$E2E_TMP/lax.yaml" "$D/policy.yaml"
GW=$D/keys/gateway
DB=$E2E_TMP/r.db
STATE=$E2E_TMP/agent-state.db
# A fresh store and log; the batches are sealed to the demo's encryption key.
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys/"
GW2=$E2E_TMP/gwkeys
P=$D/policy.yaml

agent() { # agent pack|revoke PARTNER CSV OUT [more]
	sub=$1 p=$2 in=$3 out=$4; shift 4
	"$CROSSGATE" agent "$sub" --policy "$P" --partner "$p" --input "$in" --out "$out" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" "$@"
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$GW2" "$@"; }
matched() { # the subjects a near-noiseless release counts (lax_privacy's budget; all matched users consent)
	released_rows --db "$DB" --policy "$P" --keys "$GW2" --purpose analytics --out "$E2E_TMP/x.csv"
}
krecords() { sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k'"; }

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
GH="user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,streams_followed,top_game_category"
{
	echo "$KH"
	for i in $(seq 1 15); do
		if [ "$i" -ge 13 ]; then at=2020-01-01; else at=2024-01-01; fi
		echo "k$i,user$i@example.com,1390000$(printf %04d "$i"),25,CN-BJ,match;analytics,$at,100,10,1,music,500"
	done
} >"$E2E_TMP/k.csv"
{
	echo "$GH"
	for i in $(seq 1 15); do echo "g$i,user$i@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,5,3,moba"; done
} >"$E2E_TMP/g.csv"
agent pack k "$E2E_TMP/k.csv" "$E2E_TMP/k.batch" --state "$STATE" >/dev/null
agent pack g "$E2E_TMP/g.csv" "$E2E_TMP/g.batch" >/dev/null
check "the agent state file is private (0600)" [ "$(stat -c %a "$STATE")" = 600 ]
ingest "$E2E_TMP/k.batch" "$E2E_TMP/g.batch" >/dev/null
eq "before: 15 matched" "$(matched)" 15
eq "before: 15 K records" "$(krecords)" 15

# What must disappear: the three users' K records.  Their email tokens stay,
# in G's records (G revoked nothing); their phone tokens exist only in K's.
sql "$STATE" "SELECT hex(token) FROM sent WHERE user_id IN ('k1','k2','k3') AND kind = 2" >"$E2E_TMP/gone.tok"
python3 - "$DB" "$E2E_TMP/gone.tok" "$E2E_TMP/gone.ct" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
toks = [bytes.fromhex(l.strip()) for l in open(sys.argv[2]) if l.strip()]
out = open(sys.argv[3], "w")
for t in toks:
    for (p,) in db.execute("SELECT payload FROM records WHERE partner = 'k' AND phone_token = ?", (t,)):
        out.write(p[4:20].hex() + "\n")
PY
eq "three phone tokens to erase" "$(wc -l <"$E2E_TMP/gone.tok")" 3
eq "their three ciphertexts are stored" "$(wc -l <"$E2E_TMP/gone.ct")" 3

python3 - "$DB" "$E2E_TMP/gone.tok" "$E2E_TMP/gone.ct" <<'PY' && ok "before: the database holds their tokens and ciphertexts" || bad "the search finds nothing even before"
import os, sys
blob = b""
for p in (sys.argv[1], sys.argv[1] + "-wal"):
    if os.path.exists(p):
        blob += open(p, "rb").read()
needles = [bytes.fromhex(l.strip()) for f in sys.argv[2:] for l in open(f) if l.strip()]
assert needles and all(n in blob for n in needles)
PY

# Two by user id (from the agent's state), one by an identifier written another way.
printf 'user_id,email\nk1,\nk2,\n,  USER3@Example.COM \n' >"$E2E_TMP/revoke.csv"
agent revoke k "$E2E_TMP/revoke.csv" "$E2E_TMP/revoke.batch" --state "$STATE" >"$E2E_TMP/o" 2>&1
check "agent revoke writes a batch for 3 users" grep -q "3 users to erase" "$E2E_TMP/o"
ingest "$E2E_TMP/revoke.batch" >"$E2E_TMP/o" 2>&1
check "the gateway erases them" grep -q "revocation from partner k: 3 users, 3 records erased" "$E2E_TMP/o"
eq "after: K records drop by exactly 3" "$(krecords)" 12
eq "after: 3 fewer matched" "$(matched)" 12
python3 - "$DB" "$E2E_TMP/gone.tok" "$E2E_TMP/gone.ct" <<'PY' && ok "neither the database nor its WAL holds their tokens or ciphertexts" || bad "erased data is still on disk"
import os, sys
blob = b""
for p in (sys.argv[1], sys.argv[1] + "-wal"):
    if os.path.exists(p):
        blob += open(p, "rb").read()
needles = [bytes.fromhex(l.strip()) for f in sys.argv[2:] for l in open(f) if l.strip()]
assert needles and not [n for n in needles if n in blob]
PY
check "the WAL is truncated" [ ! -s "$DB-wal" ]
eq "the revocation is one audit event" "$("$CROSSGATE" audit show --db "$DB" --type revoke --format jsonl | wc -l)" 1
# (base64 event bytes and checkpoints are left out of the grep: random base64 can spell "k1")
check "which users is never in it" sh -c "! '$CROSSGATE' audit show --db '$DB' --format jsonl |
	sed -e 's/\"event\":\"[^\"]*\"//' -e 's/\"checkpoint\":\"[^\"]*\"//' -e 's/\"leaf_hash\":\"[^\"]*\"//' | grep -q 'user[0-9]\|k1\b'"

# An old batch arriving again cannot bring them back.
agent pack k "$E2E_TMP/k.csv" "$E2E_TMP/k-again.batch" >/dev/null
ingest "$E2E_TMP/k-again.batch" >"$E2E_TMP/o" 2>&1
check "an old batch again: revoked users left out" grep -q "committed 12 records from partner k (users it revoked earlier left out)" "$E2E_TMP/o"
eq "still 12 matched" "$(matched)" 12

# Refusals.
printf 'user_id\nnobody\n' >"$E2E_TMP/ghost.csv"
expect_fail "revoking an unknown user id fails the whole file" "ghost.csv:2:1 (user_id): this user id was never packed" \
	agent revoke k "$E2E_TMP/ghost.csv" "$E2E_TMP/ghost.batch" --state "$STATE"
check "nothing written" [ ! -e "$E2E_TMP/ghost.batch" ]
printf 'age\n30\n' >"$E2E_TMP/age.csv"
expect_fail "a column that names no user is refused" "column 'age' is not an identifier or the user id column" \
	agent revoke k "$E2E_TMP/age.csv" "$E2E_TMP/age.batch"

# The partner's own view: counts only.
"$CROSSGATE" gateway stats --db "$DB" --policy "$P" --partner k >"$E2E_TMP/o" 2>&1
check "stats: records stored" grep -q "partner k: 24 records stored from 3 batches" "$E2E_TMP/o"
check "stats: per purpose" grep -q "analytics    24 consent, 0 do not" "$E2E_TMP/o"

# Retention (1095 days in the policy): at 2024-06-01 the 2020 consents of k13-15 have expired.
"$CROSSGATE" gateway purge --db "$DB" --policy "$P" --keys "$GW2" --now 2024-06-01 >"$E2E_TMP/o" 2>&1
check "purge erases the expired records" grep -q "6 records past their partner's retention erased" "$E2E_TMP/o"
eq "younger records are untouched" "$(krecords)" 18
eq "none older than the cut remains" "$(sql "$DB" "SELECT count(*) FROM records WHERE consent_at < 1622592000")" 0
eq "purge events (one per partner)" "$("$CROSSGATE" audit show --db "$DB" --type purge --format jsonl | wc -l)" 2
sed 's/retention_days: 1095/retention_days: 0/' "$P" >"$E2E_TMP/bad-retention.yaml"
expect_fail "a retention of 0 days is refused by policy check" "bad-retention.yaml:" \
	"$CROSSGATE" policy check "$E2E_TMP/bad-retention.yaml"
check "... saying why" grep -q "retention_days must be between 1 and 36500" "$E2E_TMP/err"
"$CROSSGATE" audit verify --db "$DB" --pub "$GW2/sign.pub" >/dev/null 2>&1
check "the audit log verifies" [ $? -eq 0 ]
e2e_done
