#!/bin/sh
# The privacy unit at the command line: a person Q who gives A's phone adds
# Q's subject and leaves A's alone (the previous rule merged A's and Q's K
# records over the phone, kept Q's newer one, and the export's spends went
# from "111 222..." to "222... 999": two subjects moved while one was
# charged), seen through a near-noiseless count and sum.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1 ||
	"$CROSSGATE" demo --dir "$D" --users 300 --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
# This test is about the join, not about noise: a near-noiseless budget, tight spend bounds, threshold 1.
lax_privacy "$D/policy.yaml" "$E2E_TMP/lax.yaml" &&
	sed -e '/name: course_spend_cents/,/bounds/ s/bounds: \[[0-9, ]*\]/bounds: [0, 1000]/' \
	    -e 's/^  threshold: 20$/  threshold: 1/' \
	"$E2E_TMP/lax.yaml" >"$D/policy.yaml"
check "the test policy has tight spend bounds and threshold 1" sh -c \
	"grep -q 'bounds: \[0, 1000\]' '$D/policy.yaml' && grep -q '^  threshold: 1$' '$D/policy.yaml'"
GW=$D/keys/gateway
DB=$E2E_TMP/unit.db
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys/" 2>/dev/null
GW2=$E2E_TMP/gwkeys

pack() { # pack PARTNER CSV OUT
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner "$1" --input "$2" --out "$3" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$1/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$D/policy.yaml" --keys "$GW2" "$@" >/dev/null; }
# The subjects, through a near-noiseless DP answer (lax_privacy's budget, spend
# bounds [0, 1000], threshold 1): K's subject count and spend sum.  The count's
# noise sigma is below 0.01; the sum's about 3.2 (1000 / sqrt(2 * 50000)).
# subjects WHAT COUNT SUM: the count is COUNT and the sum within 40 (12 sigma)
# of SUM, where every alternative the test tells apart is 110 or more away.
subjects() {
	"$CROSSGATE" query --db "$DB" --policy "$D/policy.yaml" --keys "$GW2" --purpose analytics --rho 100000 \
		--metric count --metric sum:k_course_spend_cents --out "$E2E_TMP/q.csv" >/dev/null
	got=$(awk -F, 'NR == 2 { print $1, $2 }' "$E2E_TMP/q.csv")
	if echo "$got" | awk -v c="$2" -v s="$3" '{ d = $2 - s; exit !($1 == c && d <= 40 && d >= -40) }'
	then ok "$1 ($got)"; else bad "$1: got '$got', expected $2 and about $3"; fi
}
KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
GH="user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,streams_followed,top_game_category"
# A (phone 13800000001) and 10 others (k = 10), all in one class: 25, CN-BJ.
{
	echo "$KH"
	echo "ka,a@example.com,13800000001,25,CN-BJ,match;analytics,2024-01-01,111,10,1,music,500"
	for i in $(seq 1 10); do echo "k$i,user$i@example.com,,25,CN-BJ,match;analytics,2024-01-01,222,10,1,music,500"; done
} >"$E2E_TMP/k1.csv"
{
	echo "$GH"
	echo "ga,a@example.com,13800000001,25,CN-BJ,match;analytics,2024-01-01,100,5,3,moba"
	for i in $(seq 1 10); do echo "g$i,user$i@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,5,3,moba"; done
} >"$E2E_TMP/g1.csv"
# Q: an email of Q's own, A's phone, a newer consent, at both partners.
{
	echo "$KH"
	echo "kq,q@example.com,+86 138 0000 0001,25,CN-BJ,match;analytics,2024-06-01,999,10,1,music,500"
} >"$E2E_TMP/k2.csv"
{
	echo "$GH"
	echo "gq,q@example.com,13800000001,25,CN-BJ,match;analytics,2024-06-01,100,5,3,moba"
} >"$E2E_TMP/g2.csv"
for b in k1 g1 k2 g2; do pack "$(echo $b | cut -c1)" "$E2E_TMP/$b.csv" "$E2E_TMP/$b.batch"; done

ingest "$E2E_TMP/k1.batch" "$E2E_TMP/g1.batch"
subjects "before Q: A and the ten others, spends 111 + 10 x 222" 11 2331
ingest "$E2E_TMP/k2.batch" "$E2E_TMP/g2.batch"
# The old rule gave 11 and 3219: A's subject replaced by Q's (two subjects moved, one charged).
subjects "Q with A's phone adds Q's subject (999) and leaves A's (111)" 12 3330

# The same people in one file each: the agent does not merge A and Q over their phone either.
cat "$E2E_TMP/k1.csv" >"$E2E_TMP/k3.csv"; tail -n 1 "$E2E_TMP/k2.csv" >>"$E2E_TMP/k3.csv"
cat "$E2E_TMP/g1.csv" >"$E2E_TMP/g3.csv"; tail -n 1 "$E2E_TMP/g2.csv" >>"$E2E_TMP/g3.csv"
pack k "$E2E_TMP/k3.csv" "$E2E_TMP/k3.batch"
pack g "$E2E_TMP/g3.csv" "$E2E_TMP/g3.batch"
DB=$E2E_TMP/unit2.db
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys2" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys2/" 2>/dev/null
GW2=$E2E_TMP/gwkeys2
ingest "$E2E_TMP/k3.batch" "$E2E_TMP/g3.batch"
subjects "one batch each: A and Q both counted" 12 3330
e2e_done
