#!/bin/sh
# Audiences (issue 14, item 1): an analyst's rule selects joined subjects that
# consent to `marketing` at both partners; each receiving partner gets only its
# own users, sealed to it; the analyst sees a noisy size, charged; an audience
# below the policy's minimum is refused without a charge; a bad rule is refused
# with the offset.  The delivered lists are checked against the synthetic
# generator's truth (tests/e2e/audience_truth.py reads the demo's own CSVs).
. tests/e2e/lib.sh

T=$E2E_TMP
D=$T/demo
W=$T/w
GW=$D/keys/gateway
TRUTH=tests/e2e/audience_truth.py
mkdir -p "$W"
"$CROSSGATE" demo --offline --dir "$D" --users 3000 >/dev/null 2>"$T/demo.err"
check "demo data for 3000 users" [ -s "$D/data/k_users.csv" ]

# Policies: the demo's (no marketing section), one where only K receives, one where both do.
cp "$D/policy.yaml" "$W/none.yaml"
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 20\n  refusal_noise: 2\n  receivers: [k]\n  sources: [k, g]\n'; } >"$W/k.yaml"
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 20\n  refusal_noise: 2\n  receivers: [k, g]\n  sources: [k, g]\n'; } >"$W/kg.yaml"
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 100\n  receivers: [k, x]\n  sources: [k]\n  holdout: 1\n'; } >"$W/bad.yaml"
check "policy check: a marketing section is valid" "$CROSSGATE" policy check "$W/kg.yaml"
check "policy check: the demo's policy without one stays valid" "$CROSSGATE" policy check "$W/none.yaml"
expect_fail "policy check: an unknown receiver is named" "receivers: 'x' is not a partner of the policy" \
	"$CROSSGATE" policy check "$W/bad.yaml"
"$CROSSGATE" policy diff "$W/none.yaml" "$W/kg.yaml" >"$T/diff.out" 2>&1
check "policy diff: a new receiver is a widening" grep -q "WIDER.*marketing: partner 'g' may now receive audiences" "$T/diff.out"
check "policy diff: a lower min_audience is a widening" grep -q "WIDER.*marketing: min_audience 1000 -> 20" "$T/diff.out"
expect_fail "policy check: holdout 1 is refused" "holdout must be above 0 and below 1" "$CROSSGATE" policy check "$W/bad.yaml"

# The partners pack with --state (their token -> user id memory) and the gateway ingests.
for p in k g; do
	f=k_users; [ $p = g ] && f=g_viewers
	"$CROSSGATE" agent pack --policy "$W/kg.yaml" --partner $p --input "$D/data/$f.csv" --out "$W/$p.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" \
		--state "$W/$p.state" >/dev/null 2>&1
done
"$CROSSGATE" gateway ingest --db "$W/gw.db" --policy "$W/kg.yaml" --keys "$GW" "$W/k.batch" "$W/g.batch" >/dev/null 2>&1
check "both partners' batches ingested" [ -s "$W/gw.db" ]
A="--db $W/gw.db --keys $GW"
spent() { "$CROSSGATE" budget --db "$W/gw.db" --policy "$W/kg.yaml" --json | python3 -c \
	'import json,sys; print("%.9f" % sum(r["rho_spent"] for r in json.load(sys.stdin)))'; }
refusals() { sqlite3 "$W/gw.db" "SELECT count(*) FROM audience_refusals"; }

# Old policy: no receivers, so no audience, with a message that says what to add.
expect_fail "without a marketing section every audience is refused" "names no partner that may receive audiences" \
	"$CROSSGATE" audience create $A --policy "$W/none.yaml" --name a0 --rule "g_watch_minutes >= 0"
eq "  and nothing was charged" "$(spent)" "0.000000000"

# Bad rules: offset and reason; unknown columns and values against the policy.
expect_fail "a rule with an unclosed '(' names the offset" "rule: offset 39: expected ')' to close the '(' at offset 27" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b1 --rule "g_watch_minutes >= 600 and (age = 20-29"
expect_fail "a rule without an operator" "rule: offset 16: expected a comparison (=, !=, <, <=, >, >=)" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b2 --rule "g_watch_minutes 600"
expect_fail "an unknown column" "rule: offset 0: no column 'k_email' shared for marketing" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b3 --rule "k_email = x"
expect_fail "a category value outside the policy's" "rule: offset 24: 'cooking' is not one of the values of 'k_top_course_category'" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b4 --rule "k_top_course_category = cooking"
expect_fail "a threshold on a quasi-identifier" "'age' is a quasi-identifier: compare it with = or != to one of its groups" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b5 --rule "age >= 30"
expect_fail "an analyst without marketing" "not granted the purpose 'marketing'" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name b6 --rule "g_watch_minutes >= 0" --analyst auditor
eq "bad rules charge nothing" "$(spent)" "0.000000000"
eq "bad rules are not refusals of the size test" "$(refusals)" "0"

# Below the minimum (min_audience 20, refusal noise of scale 2: P(wrong) < 1e-4): refused without a charge, never with the size; asked again, the same answer.
for i in a b; do
	expect_fail "a tiny audience is refused (try $i)" "is smaller than the policy's minimum of 20 (decided on a noisy count; nothing was charged" \
		"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name tiny$i --rule "g_watch_minutes >= 9000000"
	check "  the refusal prints no number but the minimum and the refusals left" sh -c \
		"! grep -oE '[0-9]+' '$T/err' | grep -vxE '20|1[0-9]' | grep -q ."
done
eq "  the budget is unchanged" "$(spent)" "0.000000000"
eq "  both refusals are counted" "$(refusals)" "2"

# A real audience, K receives.  Rule: (age 20-29) or (strategy games and not from the North).
RULE='age = 20-29 or (g_top_game_category = strategy and not region = North)'
"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name young --rule "$RULE" >"$T/create.out" 2>"$T/create.err"
check "an audience is created" grep -q "audience 'young': noisy size" "$T/create.out"
check "  delivered to k only" grep -q "delivered to k\$" "$T/create.out"
eq "  the budget was charged: audience_rho 0.05 + the refusal test's (1/2)^2/2" "$(spent)" "0.175000000"
"$CROSSGATE" audience take $A --policy "$W/k.yaml" --partner g --out-dir "$W/gd" >"$T/take.g" 2>&1
check "the other partner receives nothing" grep -q "no delivery waiting for partner g" "$T/take.g"
"$CROSSGATE" audience take $A --policy "$W/k.yaml" --partner k --out-dir "$W/kd" >/dev/null 2>&1
check "k's delivery is written sealed" sh -c "ls '$W'/kd/young-*.sealed >/dev/null"
expect_fail "g cannot open k's delivery" "not sealed to this partner's key" "$CROSSGATE" agent audience --partner g \
	--sign-key "$D/keys/g/sign.key" --state "$W/g.state" --out-dir "$W/gout" --in "$W"/kd/young-*.sealed
expect_fail "nor can it pass as k without k's key" "not sealed to this partner's key" "$CROSSGATE" agent audience \
	--partner k --sign-key "$D/keys/g/sign.key" --state "$W/k.state" --out-dir "$W/gout" --in "$W"/kd/young-*.sealed
"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" --out-dir "$W/kout" \
	--in "$W"/kd/young-*.sealed >"$T/open.out" 2>&1
check "k opens it into its own user ids" [ "$(head -1 "$W/kout/young.csv")" = "user_id" ]
tail -n +2 "$W/kout/young.csv" | sort >"$T/got.k"
python3 "$TRUTH" "$D/data" "$W/k.yaml" k young_or_strategy "$T/want.k"
python3 "$TRUTH" "$D/data" "$W/k.yaml" k noconsent "$T/nc.k"
check "  the generator's truth selects at least 60 users" [ "$(wc -l <"$T/want.k")" -ge 60 ]
check "  the delivered list maps back exactly to the users the rule selects" cmp -s "$T/got.k" "$T/want.k"
check "  no matched user without marketing consent on either side appears" sh -c \
	"[ -s '$T/nc.k' ] && [ -z \"\$(comm -12 '$T/nc.k' '$T/got.k')\" ]"
N=$(sed -n "s/.*noisy size \(-\?[0-9]*\).*/\1/p" "$T/create.out")
check "  the noisy size is near the truth (sigma 3.2: within 20)" python3 -c \
	"import sys; sys.exit(0 if abs($N - $(wc -l <"$T/want.k")) <= 20 else 1)"
"$CROSSGATE" audience take $A --policy "$W/k.yaml" --partner k --out-dir "$W/kd2" >"$T/take2" 2>&1
check "a delivery is taken once (then only with --all)" grep -q "no delivery waiting for partner k" "$T/take2"
expect_fail "an audience name is used once" "an audience named 'young' exists already" \
	"$CROSSGATE" audience create $A --policy "$W/k.yaml" --name young --rule "$RULE"

# Both receive: g's list is its own users of the same subjects.
"$CROSSGATE" audience create $A --policy "$W/kg.yaml" --name prog --rule "k_top_course_category = programming" \
	>"$T/c2.out" 2>&1
check "with receivers [k, g] both get a delivery" grep -q "delivered to k, g" "$T/c2.out"
"$CROSSGATE" audience take $A --policy "$W/kg.yaml" --partner g --out-dir "$W/gd" >/dev/null 2>&1
"$CROSSGATE" agent audience --partner g --sign-key "$D/keys/g/sign.key" --state "$W/g.state" --out-dir "$W/gout" \
	--in "$W"/gd/prog-*.sealed >/dev/null 2>&1
tail -n +2 "$W/gout/prog.csv" | sort >"$T/got.g"
python3 "$TRUTH" "$D/data" "$W/kg.yaml" g programming "$T/want.g"
check "  g's list is exactly g's own users the rule selects" sh -c "[ -s '$T/want.g' ] && cmp -s '$T/got.g' '$T/want.g'"
check "  and holds none of k's user ids" sh -c "! grep -q '^k' '$T/got.g'"

# The audit trail: every step, with the rule hash, purpose, noisy size and recipients; no user or token.
"$CROSSGATE" audit show --db "$W/gw.db" --format jsonl >"$T/audit.jsonl"
check "audit: the audience event has the rule hash and recipients" grep -q '"action":"audience","outcome":"ok","purpose":"marketing","reason":"rule sha256 [0-9a-f]\{64\}; recipients k"' "$T/audit.jsonl"
check "audit: refusals are events" grep -q '"action":"audience","outcome":"refused".*smaller than min_audience' "$T/audit.jsonl"
check "audit: deliveries and fetches are events" sh -c "grep -q '\"audience-deliver\"' '$T/audit.jsonl' && grep -q '\"audience-fetch\"' '$T/audit.jsonl'"
check "audit: no user id of the delivered list is in the trail" sh -c \
	"! grep -qF -f '$T/got.k' '$T/audit.jsonl'"
check "audit: the log verifies" "$CROSSGATE" audit verify --db "$W/gw.db" --pub "$GW/sign.pub"

# The refusal as an oracle: with min_audience at the audience's true size and refusal noise of scale 20,
# one decision is a coin flip.  Fresh noise per request would let an analyst average it away (ten
# decisions all alike with probability ~0.002); the noise is fixed per member set, so every request for
# the same members, however the rule is written, gets the same decision.
NY=$(wc -l <"$T/want.k" | tr -d ' ')
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: %s\n  refusal_noise: 20\n  max_refusals: 100\n  receivers: [k]\n  sources: [k, g]\n' "$NY"; } >"$W/coin.yaml"
cp "$W/gw.db" "$W/coin.db"
: >"$T/decisions"
for i in 0 1 2 3 4 5 6 7 8 9; do
	if [ $((i % 2)) -eq 0 ]; then R="$RULE"; else R='(g_top_game_category=strategy and not region=North) or age=20-29'; fi
	if "$CROSSGATE" audience create --db "$W/coin.db" --keys "$GW" --policy "$W/coin.yaml" --name coin$i --rule "$R" \
		>/dev/null 2>&1; then echo accepted >>"$T/decisions"; else echo refused >>"$T/decisions"; fi
done
eq "ten requests for the same members (two spellings of the rule) get one decision" "$(sort -u "$T/decisions" | wc -l | tr -d ' ')" "1"

# Experiments (item 3, first step): a keyed split; only treatment users reach the campaign partner.
E="$CROSSGATE experiment create --db $W/gw.db --keys $GW"
expect_fail "an experiment on an audience the partner already fetched is refused" \
	"partner 'k' has already fetched audience 'young': its control users would reach the campaign" \
	$E --policy "$W/k.yaml" --audience young --name exp0 --partner k
expect_fail "with two receivers the campaign partner must be named" "name the campaign partner with --partner" \
	$E --policy "$W/kg.yaml" --audience prog --name exp1
expect_fail "an experiment on no audience" "no audience named 'nope'" $E --policy "$W/kg.yaml" --audience nope --name exp1
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 30\n  refusal_noise: 2\n  receivers: [k, g]\n  sources: [k, g]\n'; } >"$W/m30.yaml"
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 10\n  refusal_noise: 2\n  receivers: [k, g]\n  sources: [k, g]\n'; } >"$W/m10.yaml"
expect_fail "an experiment whose arms would be below min_audience (by the noisy size) is refused" \
	"would give an arm of about" $E --policy "$W/m30.yaml" --audience prog --name exp1 --partner k
$E --policy "$W/m10.yaml" --audience prog --name exp1 --partner k >"$T/exp.out" 2>&1
check "an experiment on 'prog' for partner k" grep -q "experiment 'exp1' on audience 'prog': holdout 0.5; treatment delivered to k" "$T/exp.out"
# K revokes one of the audience's users before the delivery is fetched: the user is in no delivery, no arm.
python3 "$TRUTH" "$D/data" "$W/kg.yaml" k programming "$T/prog.k"
RV=$(head -1 "$T/prog.k")
printf 'user_id\n%s\n' "$RV" >"$W/revoke.csv"
"$CROSSGATE" agent revoke --policy "$W/kg.yaml" --partner k --input "$W/revoke.csv" --out "$W/revoke.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" \
	--state "$W/k.state" >/dev/null 2>&1
"$CROSSGATE" gateway ingest --db "$W/gw.db" --policy "$W/kg.yaml" --keys "$GW" "$W/revoke.batch" >/dev/null 2>&1
check "k revokes one of the audience's users" [ $? -eq 0 ]
grep -vx "$RV" "$T/prog.k" >"$T/prog.k.left"
"$CROSSGATE" audience take $A --policy "$W/kg.yaml" --partner k --out-dir "$W/kd3" >/dev/null 2>&1
check "k's pending full delivery of 'prog' was withdrawn" sh -c "! ls '$W'/kd3/prog-* >/dev/null 2>&1"
"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" --out-dir "$W/kout" \
	--in "$W"/kd3/exp1-*.sealed >/dev/null 2>&1
tail -n +2 "$W/kout/exp1.csv" | sort >"$T/treat.k"
# control: the arm-0 tokens of k, mapped to k's user ids through k's own state file (as the agent maps)
sqlite3 "$W/k.state" "ATTACH '$W/gw.db' AS gw; SELECT DISTINCT s.user_id FROM sent s JOIN gw.experiment_subjects e
	ON e.token = s.token WHERE s.partner = 'k' AND e.partner = 'k' AND e.experiment = 'exp1' AND e.arm = 0 AND
	(s.kind = 1 OR NOT EXISTS (SELECT 1 FROM sent m WHERE m.partner = 'k' AND m.user_id = s.user_id AND m.kind = 1))" |
	sort >"$T/control.k"
check "  both arms are non-empty" sh -c "[ -s '$T/treat.k' ] && [ -s '$T/control.k' ]"
check "  no control user reaches the campaign partner" sh -c "[ -z \"\$(comm -12 '$T/treat.k' '$T/control.k')\" ]"
check "  treatment and control are exactly the audience's users but the revoked one" sh -c \
	"sort -m '$T/treat.k' '$T/control.k' | cmp -s - '$T/prog.k.left'"
check "  the revoked user is in neither" sh -c "! grep -qx '$RV' '$T/treat.k' '$T/control.k'"
n=$(sqlite3 "$W/gw.db" "SELECT count(*) FROM experiment_subjects WHERE experiment = 'exp1' AND partner = 'g'")
eq "  every remaining subject's g token has its arm too" "$n" "$(wc -l <"$T/prog.k.left" | tr -d ' ')"
n=$(sqlite3 "$W/gw.db" "SELECT count(*) FROM (SELECT arm FROM experiment_subjects WHERE experiment = 'exp1'
	GROUP BY arm HAVING count(*) % 2 = 0)")
eq "  each arm holds both partners' tokens of its subjects" "$n" "2"
"$CROSSGATE" audit show --db "$W/gw.db" --format jsonl >"$T/audit2.jsonl"
check "audit: the experiment event names audience, partner and holdout only" grep -q \
	'"action":"experiment","outcome":"ok","purpose":"marketing","partner":"k","reason":"audience prog; campaign partner k","counts":{"holdout_ppm":500000}' "$T/audit2.jsonl"
# Retention: records of k older than a year (as of 2025-06-01; the demo keeps 3 years) are purged; their users leave the audience
# and the experiment at both partners.
sed '0,/retention_days: [0-9]*/s//retention_days: 365/' "$W/kg.yaml" >"$W/ret.yaml"
orph() { sqlite3 "$W/gw.db" "SELECT count(*) FROM audience_members m WHERE m.partner = 'k' AND NOT EXISTS
	(SELECT 1 FROM records r WHERE r.partner = 'k' AND ((m.kind = 1 AND r.email_token = m.token) OR
	(m.kind = 2 AND r.email_token IS NULL AND r.phone_token = m.token)))"; }
before=$(sqlite3 "$W/gw.db" "SELECT count(*) FROM audience_members WHERE partner = 'k'")
"$CROSSGATE" gateway purge --db "$W/gw.db" --policy "$W/ret.yaml" --keys "$GW" --now 2025-06-01 >/dev/null 2>&1
check "retention purges k's old records" [ $? -eq 0 ]
after=$(sqlite3 "$W/gw.db" "SELECT count(*) FROM audience_members WHERE partner = 'k'")
check "  some audience members were among them" [ "$after" -lt "$before" ]
eq "  no member is left whose records are gone" "$(orph)" "0"
eq "  and the audiences lost them at g too" "$(sqlite3 "$W/gw.db" "SELECT count(*) FROM audience_members WHERE partner = 'g'")" "$after"
eq "  and the experiment's arms at both partners" \
	"$(sqlite3 "$W/gw.db" "SELECT count(*) FROM experiment_subjects WHERE experiment = 'exp1' AND partner = 'g'")" \
	"$(sqlite3 "$W/gw.db" "SELECT count(*) FROM experiment_subjects WHERE experiment = 'exp1' AND partner = 'k'")"
expect_fail "an experiment name is used once" "the name 'exp1' is taken" \
	$E --policy "$W/kg.yaml" --audience prog --name exp1 --partner k

# Once the budget cannot pay for an audience, the size test is not run: a large and a tiny audience get
# the same refusal, so being "smaller than the minimum" is not answered for free after the budget is spent.
left=$("$CROSSGATE" budget --db "$W/gw.db" --policy "$W/kg.yaml" --json | python3 -c \
	'import json,sys; print("%.9f" % json.load(sys.stdin)[0]["rho_remaining"])')
"$CROSSGATE" query $A --policy "$W/kg.yaml" --metric count --rho "$left" --out "$T/spend.csv" >/dev/null 2>&1
eq "the rest of the budget is spent by a query" "$(spent)" "$("$CROSSGATE" budget --db "$W/gw.db" --policy "$W/kg.yaml" \
	--json | python3 -c 'import json,sys; print("%.9f" % json.load(sys.stdin)[0]["rho_cap"])')"
r0=$(refusals)
expect_fail "a large audience is then refused: the budget is exhausted" "exhausted: the query needs rho 0.175000000, 0.000000000 of" \
	"$CROSSGATE" audience create $A --policy "$W/kg.yaml" --name late1 --rule "g_watch_minutes >= 0"
cp "$T/err" "$T/late1.err"
expect_fail "a tiny audience gets the same refusal, not 'smaller than the minimum'" "exhausted: the query needs rho 0.175000000" \
	"$CROSSGATE" audience create $A --policy "$W/kg.yaml" --name late2 --rule "g_watch_minutes >= 9000000"
check "  the two messages are the same" cmp -s "$T/late1.err" "$T/err"
eq "  and neither is a refusal of the size test" "$(refusals)" "$r0"
e2e_done
