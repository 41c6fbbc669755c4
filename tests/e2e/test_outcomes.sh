#!/bin/sh
# Outcome batches through the command line: `crossgate agent outcomes` packs a
# campaign's conversions by the user ids of the agent's state, the gateway
# ingests them into the outcomes table (never the records), and a malformed
# CSV fails whole with file, line, column and reason, writing nothing.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --offline --json >/dev/null 2>&1
check "demo exits 0" [ -s "$D/policy.yaml" ]
GW=$D/keys/gateway
DB=$E2E_TMP/o.db
STATE=$E2E_TMP/agent-state.db
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gwkeys" --db "$DB" >/dev/null 2>&1
cp "$GW/enc.key" "$GW/enc.pub" "$E2E_TMP/gwkeys/"
P=$D/policy.yaml

agent() { # agent pack|outcomes CSV OUT [more]
	sub=$1 in=$2 out=$3; shift 3
	"$CROSSGATE" agent "$sub" --policy "$P" --partner k --input "$in" --out "$out" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" "$@"
}
ingest() { "$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$E2E_TMP/gwkeys" "$@"; }

KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
{
	echo "$KH"
	for i in $(seq 1 10); do
		echo "k$i,user$i@example.com,,25,CN-BJ,match;analytics;marketing,2024-01-01,100,10,1,music,500"
	done
	echo "k11,user11@example.com,,25,CN-BJ,analytics,2024-01-01,100,10,1,music,500"
} >"$E2E_TMP/k.csv"
agent pack "$E2E_TMP/k.csv" "$E2E_TMP/k.batch" --state "$STATE" >/dev/null
ingest "$E2E_TMP/k.batch" >/dev/null
{
	echo "user_id,converted,value_cents,at"
	for i in $(seq 1 10); do
		if [ $((i % 3)) -eq 0 ]; then echo "k$i,1,$((i * 100)),2024-06-0$((i % 9 + 1))"; else echo "k$i,0,0,2024-06-01"; fi
	done
	echo "k11,1,700,2024-06-01"
	echo "stranger,1,5,2024-06-01"
} >"$E2E_TMP/out.csv"
agent outcomes "$E2E_TMP/out.csv" "$E2E_TMP/out.batch" --state "$STATE" --experiment spring-a >"$E2E_TMP/msg"
check "outcomes packs and says how many were skipped" grep -q "12 rows, 10 outcomes packed (2 skipped" "$E2E_TMP/msg"
check "the batch is private (0600)" [ "$(stat -c %a "$E2E_TMP/out.batch")" = 600 ]
expect_fail "outcomes for an experiment the gateway does not have are refused" \
	"an outcome for experiment 'spring-a', which this gateway does not have" ingest "$E2E_TMP/out.batch"
eq "  nothing stored" "$(sql "$DB" "SELECT count(*) FROM outcomes")" 0
expect_fail "a lift of an unknown experiment is refused" "no experiment named 'spring-a'" \
	"$CROSSGATE" experiment lift --db "$DB" --policy "$P" --keys "$E2E_TMP/gwkeys" --name spring-a --out "$E2E_TMP/l.json"
# A stand-in for `experiment create` (it needs an audience of min_audience; test_experiment.sh makes real ones).
sql "$DB" "INSERT INTO experiments VALUES ('spring-a', '00', 'a', 'k', 'analyst', 500000000, x'00', 0)"
ingest "$E2E_TMP/out.batch" >/dev/null
eq "the gateway stored 10 outcomes for the experiment" \
	"$(sql "$DB" "SELECT count(*) FROM outcomes WHERE experiment = 'spring-a' AND partner = 'k'")" 10
eq "and no outcome is a record" "$(sql "$DB" "SELECT count(*) FROM records")" 10
eq "kept sealed: no value in clear" "$(sql "$DB" "SELECT count(*) FROM outcomes WHERE instr(payload, 'spring-a') > 0")" 0
"$CROSSGATE" audit show --db "$DB" --type ingest --format jsonl >"$E2E_TMP/ingest.jsonl"
check "the ingest event counts the outcomes" sh -c "tail -1 \"$E2E_TMP/ingest.jsonl\" | grep -q '\"outcomes\": *10'"

# A malformed CSV: file, line, column and reason, and nothing written.
printf 'user_id,converted,value_cents,at\nk1,1,100,2024-06-01\nk2,2,0,2024-06-01\n' >"$E2E_TMP/bad.csv"
expect_fail "a bad converted cell fails the file" "bad.csv:3:2 (converted): must be 0 or 1" \
	agent outcomes "$E2E_TMP/bad.csv" "$E2E_TMP/bad.batch" --state "$STATE" --experiment spring-a
check "nothing written" [ ! -e "$E2E_TMP/bad.batch" ]
printf 'user_id,converted,value_cents,at\nk1,0,250,2024-06-01\n' >"$E2E_TMP/bad2.csv"
expect_fail "a value without a conversion fails the file" "bad2.csv:2:3 (value_cents): must be 0 when converted is 0" \
	agent outcomes "$E2E_TMP/bad2.csv" "$E2E_TMP/bad.batch" --state "$STATE" --experiment spring-a
expect_fail "outcomes need the state" "--state" agent outcomes "$E2E_TMP/out.csv" "$E2E_TMP/bad.batch" --experiment x
expect_fail "and an experiment" "--experiment" agent outcomes "$E2E_TMP/out.csv" "$E2E_TMP/bad.batch" --state "$STATE"
expect_fail "a bad experiment id" "an experiment id is letters, digits" \
	agent outcomes "$E2E_TMP/out.csv" "$E2E_TMP/bad.batch" --state "$STATE" --experiment "a b"
e2e_done
