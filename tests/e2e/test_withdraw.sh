#!/bin/sh
# Withdrawal propagates (issue 12): a user the partner sent before whose newer
# row lost `match` is erased at the gateway, in every arrival order of the
# batches, with and without the agent's state file; a user who lost another
# purpose is narrowed to the purposes left; an older batch arriving later
# never brings a withdrawn user back nor widens a narrowed one; a newer
# consent is welcome back.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
lax_privacy "$D/policy.yaml" "$E2E_TMP/lax.yaml" && cp "$E2E_TMP/lax.yaml" "$D/policy.yaml"
GW=$D/keys/gateway
P=$D/policy.yaml

pack() { # pack PARTNER CSV OUT [more]: prints the agent's summary
	p=$1 in=$2 out=$3; shift 3
	"$CROSSGATE" agent pack --policy "$P" --partner "$p" --input "$in" --out "$out" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" "$@"
}
fresh() { # fresh NAME: a new store and log whose encryption key the batches are sealed to
	DB=$E2E_TMP/$1.db
	"$CROSSGATE" keygen gateway --dir "$E2E_TMP/$1.keys" --db "$DB" >/dev/null 2>&1
	cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/$1.keys/"
	KEYS=$E2E_TMP/$1.keys
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$KEYS" "$@"; }
exported() { # exported PURPOSE: the joined subjects released for it (near-noiseless: lax_privacy)
	released_rows --db "$DB" --policy "$P" --keys "$KEYS" --purpose "$1" --out "$E2E_TMP/x.csv"
}
krecords() { sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k'"; }

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
GH="user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,streams_followed,top_game_category"
{
	echo "$KH"
	for i in $(seq 1 12); do echo "k$i,user$i@example.com,1390000$(printf %04d "$i"),25,CN-BJ,match;analytics;marketing,2024-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/k1.csv"
{
	echo "$GH"
	for i in $(seq 1 12); do echo "g$i,user$i@example.com,,25,CN-BJ,match;analytics;marketing,2024-01-01,100,5,3,moba"; done
} >"$E2E_TMP/g1.csv"
# Newer: users 1-3 withdraw every purpose (an empty consent cell), and user 13,
# never sent, has no match consent either.
{
	echo "$KH"
	for i in 1 2 3; do echo "k$i,user$i@example.com,1390000$(printf %04d "$i"),25,CN-BJ,,2024-06-01,100,10,1,music,500"; done
	echo "k13,user13@example.com,,25,CN-BJ,analytics,2024-06-01,100,10,1,music,500"
} >"$E2E_TMP/k2.csv"
# Newer still: user 2 consents again.
{
	echo "$KH"
	echo "k2,user2@example.com,13900000002,25,CN-BJ,match;analytics;marketing,2024-09-01,100,10,1,music,500"
} >"$E2E_TMP/k3.csv"

# --- without the state file: identifiers in the row -------------------------
pack k "$E2E_TMP/k1.csv" "$E2E_TMP/k1.batch" >/dev/null
pack g "$E2E_TMP/g1.csv" "$E2E_TMP/g1.batch" >/dev/null
pack k "$E2E_TMP/k2.csv" "$E2E_TMP/k2.batch" >"$E2E_TMP/o"
check "without state: every user without match gets a withdrawal (the agent cannot know who was sent)" \
	grep -q "0 users without match consent never sent, 4 withdrawals sent (4 lost match, 0 narrowed), 0 records packed" "$E2E_TMP/o"
pack k "$E2E_TMP/k3.csv" "$E2E_TMP/k3.batch" >/dev/null

# Every arrival order of the three batches: 9 in the analytics release, 9 K records.
for order in "k1 g1 k2" "k1 k2 g1" "g1 k1 k2" "g1 k2 k1" "k2 k1 g1" "k2 g1 k1"; do
	fresh "o$(echo "$order" | tr -d ' ')"
	for b in $order; do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b ($order)"; done
	eq "order $order: the 3 who withdrew are gone from the analytics release" "$(exported analytics)" 9
	eq "order $order: 9 K records stored" "$(krecords)" 9
done
# With user 2's newer consent (k3) too: every order of the four batches gives 10.
for order in $(python3 -c "import itertools
for p in itertools.permutations(['k1', 'g1', 'k2', 'k3']): print('-'.join(p))"); do
	fresh "p$order"
	for b in $(echo "$order" | tr '-' ' '); do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b ($order)"; done
	got="$(exported analytics) $(krecords)"
	[ "$got" = "10 10" ] || bad "order $order: got '$got', expected 10 released, 10 K records"
	n24=$((${n24:-0} + 1))
done
eq "all 24 orders of the four batches tried" "$n24" 24
# The last store got k2 first: k1 came later and its 3 withdrawn users were refused.
ingest "$E2E_TMP/k1.batch" >"$E2E_TMP/o"
check "an older batch again is a duplicate" grep -q "duplicate" "$E2E_TMP/o"
fresh late
ingest "$E2E_TMP/k2.batch" "$E2E_TMP/g1.batch" >/dev/null
ingest "$E2E_TMP/k1.batch" >"$E2E_TMP/o"
check "the older batch arriving late: its 3 withdrawn users are left out" \
	grep -q "committed 9 records from partner k (users it revoked earlier left out)" "$E2E_TMP/o"
eq "still 9 after the late older batch" "$(exported analytics)" 9
# A newer consent is welcome back, whatever came before; the older batch again cannot undo the withdrawal.
ingest "$E2E_TMP/k3.batch" >/dev/null
eq "user 2 consents again (newer): 10" "$(exported analytics)" 10
fresh back
ingest "$E2E_TMP/k3.batch" "$E2E_TMP/k2.batch" "$E2E_TMP/k1.batch" "$E2E_TMP/g1.batch" >/dev/null
eq "the newer consent ingested before the withdrawal stays: 10" "$(exported analytics)" 10
eq "10 K records (9 old, user 2's newer one)" "$(krecords)" 10

# The audit log counts, never names.
"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/audit"
check "the withdrawal batch's audit event counts the withdrawals" \
	grep -q '"withdrawn": *4' "$E2E_TMP/audit"
check "the audit log still verifies" sh -c "'$CROSSGATE' audit verify --db '$DB' --pub '$KEYS/sign.pub' >/dev/null 2>&1"

# --- with the state file: user ids -------------------------------------------
STATE=$E2E_TMP/state.db
pack k "$E2E_TMP/k1.csv" "$E2E_TMP/s1.batch" --state "$STATE" >/dev/null
pack k "$E2E_TMP/k2.csv" "$E2E_TMP/s2.batch" --state "$STATE" >"$E2E_TMP/o"
check "with state: user 13 was never sent and is never tokenized; 3 withdrawals" \
	grep -q "1 users without match consent never sent, 3 withdrawals sent (3 lost match, 0 narrowed), 0 records packed" "$E2E_TMP/o"
pack k "$E2E_TMP/k2.csv" "$E2E_TMP/s2again.batch" --state "$STATE" >"$E2E_TMP/o"
check "with state: a user withdrawn already is withdrawn again (that batch may never have been pushed)" \
	grep -q "1 users without match consent never sent, 3 withdrawals sent (3 lost match, 0 narrowed)" "$E2E_TMP/o"
# The withdrawn users' phone tokens exist only in K's records: after the
# withdrawal neither the database nor its WAL holds them (the tombstone is a
# keyed hash).  Before it, both orders' stores would hold them.
sql "$STATE" "SELECT hex(token) FROM sent WHERE user_id IN ('k1','k2','k3') AND kind = 2" >"$E2E_TMP/gone.tok"
eq "three phone tokens remembered" "$(wc -l <"$E2E_TMP/gone.tok")" 3
held() { # held DB: exit 0 iff every token in gone.tok is in the database or its WAL
	python3 - "$1" "$E2E_TMP/gone.tok" <<'PY'
import os, sys
blob = b"".join(open(p, "rb").read() for p in (sys.argv[1], sys.argv[1] + "-wal") if os.path.exists(p))
toks = [bytes.fromhex(l.strip()) for l in open(sys.argv[2]) if l.strip()]
sys.exit(0 if toks and all(t in blob for t in toks) else 1 if not any(t in blob for t in toks) else 2)
PY
}
fresh before
ingest "$E2E_TMP/s1.batch" >/dev/null
held "$DB"
eq "before the withdrawal the store holds their phone tokens" "$?" 0
for order in "s1 s2" "s2 s1"; do
	fresh "st$(echo "$order" | tr -d ' ')"
	for b in $order g1 s2again; do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b"; done
	eq "with state, order $order, the repeated withdrawal too: 9" "$(exported analytics)" 9
	held "$DB"
	eq "with state, order $order: none of their phone tokens is left in the database or WAL" "$?" 1
done

# --- narrowing: users 1-3 keep match and marketing, lose analytics -----------
{
	echo "$KH"
	for i in 1 2 3; do echo "k$i,user$i@example.com,1390000$(printf %04d "$i"),25,CN-BJ,match;marketing,2024-06-01,100,10,1,music,500"; done
} >"$E2E_TMP/n2.csv"
NSTATE=$E2E_TMP/nstate.db
pack k "$E2E_TMP/k1.csv" "$E2E_TMP/n1.batch" --state "$NSTATE" >/dev/null
pack k "$E2E_TMP/n2.csv" "$E2E_TMP/n2.batch" --state "$NSTATE" >"$E2E_TMP/o"
check "with state: a lost purpose is a narrowing withdrawal next to the data record" \
	grep -q "3 withdrawals sent (0 lost match, 3 narrowed), 3 records packed" "$E2E_TMP/o"
for order in "n1 n2" "n2 n1"; do
	fresh "n$(echo "$order" | tr -d ' ')"
	for b in $order g1; do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b"; done
	eq "narrowed, order $order: analytics loses the 3" "$(exported analytics)" 9
	eq "narrowed, order $order: marketing keeps all 12" "$(exported marketing)" 12
	eq "narrowed, order $order: the older, wider records are gone" \
		"$(sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k' AND consent_at < 1704067201")" 9
	eq "narrowed, order $order: 12 K records" "$(krecords)" 12
done
"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/audit"
check "the narrowing batch's audit event counts the narrowed" grep -q '"narrowed": *3' "$E2E_TMP/audit"
# Without the state file the agent cannot know what it sent: the narrower
# record alone, newest consent_at, narrows the user in the join; the older,
# wider record stays stored (until retention), as the README says.
pack k "$E2E_TMP/k1.csv" "$E2E_TMP/m1.batch" >/dev/null
pack k "$E2E_TMP/n2.csv" "$E2E_TMP/m2.batch" >"$E2E_TMP/o"
check "without state: no narrowing withdrawal" grep -q "0 withdrawals sent (0 lost match, 0 narrowed), 3 records packed" "$E2E_TMP/o"
for order in "m1 m2" "m2 m1"; do
	fresh "m$(echo "$order" | tr -d ' ')"
	for b in $order g1; do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b"; done
	eq "without state, order $order: analytics loses the 3" "$(exported analytics)" 9
	eq "without state, order $order: marketing keeps all 12" "$(exported marketing)" 12
	eq "without state, order $order: the older records stay stored" "$(krecords)" 15
done
# A user known by phone only: the withdrawal carries the phone token.
{
	echo "$KH"
	echo "k20,,13900000020,25,CN-BJ,match;analytics,2024-01-01,100,10,1,music,500"
} >"$E2E_TMP/p1.csv"
{
	echo "$KH"
	echo "k20,,+86 139-0000-0020,25,CN-BJ,,2024-06-01,100,10,1,music,500"
} >"$E2E_TMP/p2.csv"
pack k "$E2E_TMP/p1.csv" "$E2E_TMP/p1.batch" >/dev/null
pack k "$E2E_TMP/p2.csv" "$E2E_TMP/p2.batch" >/dev/null
fresh phone
ingest "$E2E_TMP/p1.batch" "$E2E_TMP/p2.batch" >/dev/null
eq "a phone-only user written another way is withdrawn" "$(krecords)" 0
# Two people give the same phone: one withdrawing never erases the other
# (erasure goes by the user's key, as the join groups records: the email).
{
	echo "$KH"
	echo "k30,a30@example.com,13900000030,25,CN-BJ,match;analytics,2024-01-01,100,10,1,music,500"
	echo "k31,b31@example.com,13900000030,25,CN-BJ,match;analytics,2024-01-01,100,10,1,music,500"
} >"$E2E_TMP/s30.csv"
{
	echo "$KH"
	echo "k31,b31@example.com,13900000030,25,CN-BJ,,2024-06-01,100,10,1,music,500"
} >"$E2E_TMP/s31.csv"
pack k "$E2E_TMP/s30.csv" "$E2E_TMP/s30.batch" >/dev/null
pack k "$E2E_TMP/s31.csv" "$E2E_TMP/s31.batch" >/dev/null
for order in "s30 s31" "s31 s30"; do
	fresh "shared$(echo "$order" | tr -d ' ')"
	for b in $order; do ingest "$E2E_TMP/$b.batch" >/dev/null || bad "ingest $b"; done
	eq "a shared phone, order $order: the other person's record stays" \
		"$(sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k'")" 1
done
e2e_done
