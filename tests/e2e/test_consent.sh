#!/bin/sh
# Consent as a lifecycle: the newest consent_at wins whatever order batches
# arrive in, and each purpose releases exactly the subjects that consented to
# it on every side (counted through near-noiseless releases, lax_privacy).
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1 ||
	"$CROSSGATE" demo --dir "$D" --users 300 --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
# This test is about consent, not about privacy: a budget that makes releases near-noiseless.
lax_privacy "$D/policy.yaml" "$E2E_TMP/lax.yaml" && cp "$E2E_TMP/lax.yaml" "$D/policy.yaml"
GW=$D/keys/gateway
DB=$E2E_TMP/consent.db
# A fresh store and audit log for this test; the demo's encryption key, which the batches are sealed to.
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys/" 2>/dev/null
GW2=$E2E_TMP/gwkeys

pack() { # pack PARTNER CSV OUT
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner "$1" --input "$2" --out "$3" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$1/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$D/policy.yaml" --keys "$GW2" "$@" >/dev/null; }
export_rows() { # export_rows PURPOSE: the subjects released for it (near-noiseless)
	released_rows --db "$DB" --policy "$D/policy.yaml" --keys "$GW2" --purpose "$1" --out "$E2E_TMP/x.csv"
}

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
GH="user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,streams_followed,top_game_category"
# 12 shared users, all 25, CN-BJ.
{
	echo "$KH"
	for i in $(seq 1 12); do echo "k$i,user$i@example.com,,25,CN-BJ,match;analytics;marketing,2024-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/k1.csv"
{
	echo "$GH"
	for i in $(seq 1 12); do
		if [ "$i" -le 11 ]; then c="match;analytics;marketing"; else c="match;analytics"; fi
		echo "g$i,User$i@Example.com,,25,CN-BJ,$c,2024-01-01,100,5,3,moba"
	done
} >"$E2E_TMP/g1.csv"
# batch 2 (newer): users 1-3 withdraw analytics on K
{
	echo "$KH"
	for i in 1 2 3; do echo "k$i,user$i@example.com,,25,CN-BJ,match;marketing,2024-06-01,100,10,1,music,500"; done
} >"$E2E_TMP/k2.csv"
pack k "$E2E_TMP/k1.csv" "$E2E_TMP/k1.batch"
pack g "$E2E_TMP/g1.csv" "$E2E_TMP/g1.batch"
pack k "$E2E_TMP/k2.csv" "$E2E_TMP/k2.batch"

# The newer batch first, the older one late: the withdrawal still wins.
ingest "$E2E_TMP/k2.batch" "$E2E_TMP/g1.batch"
ingest "$E2E_TMP/k1.batch"
eq "analytics: 9 of the 12 matched; the 3 who withdrew (in the newer batch, ingested first) are left out" \
	"$(export_rows analytics)" 9
eq "marketing: only the 11 with marketing on both sides (user 12 has none on G)" "$(export_rows marketing)" 11
# 'match' only lets records be joined: no analyst holds it, so nothing is exported for it.
expect_fail "no export for the purpose 'match'" "may not take row exports for purpose 'match'" \
	"$CROSSGATE" export --db "$DB" --policy "$D/policy.yaml" --keys "$GW2" --purpose match --out "$E2E_TMP/m.csv"

# Two more users.
{
	echo "$KH"
	for i in $(seq 13 14); do echo "k$i,user$i@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/k3.csv"
{
	echo "$GH"
	for i in $(seq 13 14); do echo "g$i,user$i@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,5,3,moba"; done
} >"$E2E_TMP/g3.csv"
pack k "$E2E_TMP/k3.csv" "$E2E_TMP/k3.batch"
pack g "$E2E_TMP/g3.csv" "$E2E_TMP/g3.batch"
ingest "$E2E_TMP/k3.batch" "$E2E_TMP/g3.batch"
eq "analytics after two more users: 11; the 3 who withdrew stay out" "$(export_rows analytics)" 11
# A full withdrawal (an empty consent cell: no match either) is not dropped by
# the agent: it reaches the gateway, and the users leave the join.
{
	echo "$KH"
	for i in 4 5 6; do echo "k$i,user$i@example.com,,25,CN-BJ,,2024-09-01,100,10,1,music,500"; done
} >"$E2E_TMP/k4.csv"
"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$E2E_TMP/k4.csv" --out "$E2E_TMP/k4.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" >"$E2E_TMP/o"
check "the agent sends the 3 full withdrawals" grep -q "3 withdrawals sent (3 lost match" "$E2E_TMP/o"
ingest "$E2E_TMP/k4.batch"
eq "after a full withdrawal of 3 more: 8" "$(export_rows analytics)" 8
# Data minimization: a column serves only the purposes the policy lists for it,
# and a column listed for none never leaves the partner.
python3 - "$D/policy.yaml" "$E2E_TMP/min.yaml" <<'PY'
import sys
t = open(sys.argv[1]).read()
t2 = t.replace("{name: conversion_value_cents, type: int, min: 0, max: 100000000, role: feature,",
               "{name: conversion_value_cents, type: int, min: 0, max: 100000000, role: feature, purposes: [marketing],", 1)
t2 = t2.replace("{name: courses_bought, type: int, min: 0, max: 10000, role: feature,",
                "{name: courses_bought, type: int, min: 0, max: 10000, role: feature, purposes: [],", 1)
assert t2.count("purposes: [marketing],") == 1 and t2.count("purposes: [],") == 1
t = t2
open(sys.argv[2], "w").write(t)
PY
check "the minimized policy is valid" sh -c "'$CROSSGATE' policy check '$E2E_TMP/min.yaml' >/dev/null"
"$CROSSGATE" policy diff "$D/policy.yaml" "$E2E_TMP/min.yaml" >"$E2E_TMP/diff" 2>&1
check "policy diff shows the narrowing" grep -q "NARROWER  partner k: column courses_bought: used for fewer purposes" "$E2E_TMP/diff"
DB2=$E2E_TMP/min.db
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gw3" --db "$DB2" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gw3/"
for p in k g; do
	"$CROSSGATE" agent pack --policy "$E2E_TMP/min.yaml" --partner $p --input "$E2E_TMP/${p}1.csv" --out "$E2E_TMP/m$p.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null
done
"$CROSSGATE" gateway ingest --db "$DB2" --policy "$E2E_TMP/min.yaml" --keys "$E2E_TMP/gw3" "$E2E_TMP/mk.batch" "$E2E_TMP/mg.batch" >/dev/null
check "batches without the unshared column are accepted" [ $? -eq 0 ]
for purpose in analytics marketing; do
	"$CROSSGATE" export --db "$DB2" --policy "$E2E_TMP/min.yaml" --keys "$E2E_TMP/gw3" --purpose $purpose \
		--out "$E2E_TMP/min-$purpose.csv" >/dev/null
done
check "analytics export lacks the marketing-only column" sh -c "! head -1 '$E2E_TMP/min-analytics.csv' | grep -q k_conversion_value_cents"
check "marketing export has it" sh -c "head -1 '$E2E_TMP/min-marketing.csv' | grep -q k_conversion_value_cents"
check "no export has the column shared for no purpose" sh -c "! cat '$E2E_TMP'/min-*.csv | head -1 | grep -q courses_bought; ! grep -q courses_bought '$E2E_TMP/min-marketing.csv'"
e2e_done
