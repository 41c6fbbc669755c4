#!/bin/sh
# Privacy-protected outputs (issues 6 and 11), end to end through the real
# binary: DP synthetic row releases checked by an independent checker
# (tests/e2e/check_outputs.py, written from the specification, not from
# gateway/export.c or gateway/synthrel.c), who may take one and how often,
# the one zCDP ledger they share with queries, and refusals before any
# charge; queries and the budget that cannot be overspent, not even by a
# crash or a race; a differencing attempt; and every refusal and charge in
# the audit log.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
T=$E2E_TMP
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKER=$HERE/check_outputs.py
DOCTOR=$HERE/privacy/doctor.py

"$CROSSGATE" demo --offline --dir "$D" --users 3000 --json >"$T/summary.json" 2>"$T/demo.err"
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
GW=$D/keys/gateway
P=$D/policy.yaml
truth() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$D/data/truth.json" "$1"; }
SUBJECTS=$(truth exported_before_suppression)   # joined subjects consenting to analytics: an exact count
MATCHED=$(truth matched)

# The policy's figures (policy/example.yaml) and hierarchies, as the checker is told them.
POLICY_ARGS="--threshold 20"
HIER_ARGS="--band age=10,20,40 --map region=North,East,South,Southwest,Central,Other"
INPUTS="--input $D/data/k_users.csv --input $D/data/g_viewers.csv"
# shellcheck disable=SC2086  # (the *_ARGS lists are split on purpose)
checker() { python3 "$CHECKER" $POLICY_ARGS $HIER_ARGS $INPUTS --exact "$SUBJECTS" --exact "$MATCHED" "$@"; }
export_() { "$CROSSGATE" export --db "$DB" --keys "$GW" "$@"; }
query() { "$CROSSGATE" query --db "$DB" --keys "$GW" "$@"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# nothing PATH: no file PATH, PATH.meta.json nor any temporary PATH* was left behind
nothing() { [ -z "$(find "$(dirname "$1")" -maxdepth 1 -name "$(basename "$1")*" | head -1)" ]; }
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)" "$@"; }
# events TYPE [ACTOR]: the audit events of that action (and actor), as JSON lines
events() {
	if [ $# -gt 1 ]; then "$CROSSGATE" audit show --db "$DB" --type "$1" --actor "$2" --format jsonl
	else "$CROSSGATE" audit show --db "$DB" --type "$1" --format jsonl; fi
}
# spent ANALYST: the rho it has spent on g+k, from `crossgate budget --json`
spent() {
	"$CROSSGATE" budget --db "$DB" --policy "$T/p.yaml" --json |
		python3 -c "import json,sys; print(sum(r['rho_spent'] for r in json.load(sys.stdin) if r['analyst'] == sys.argv[1]))" "$1"
}

# Policy copies for export and query (batches were packed against $P's hash;
# export and query do not check it).  More analysts, each for one check.
python3 - "$P" "$T/p.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
anchor = '  - {name: auditor, role: auditor,'
assert anchor in text
extra = "".join('  - {name: %s, role: analyst, identity: "crossgate:analyst:%s", purposes: [analytics]%s}\n' % (n, n, rest)
    for n, rest in (("aggonly", ""), ("capped", ", row_exports: [analytics], max_exports: 2"),
                    ("spender", ", budget_rho: 1.0"), ("racer", ", budget_rho: 1.0"),
                    ("crasher", ", budget_rho: 1.0"), ("differ", ", budget_rho: 10.0"),
                    ("synth", ", row_exports: [analytics], budget_rho: 1.0"),
                    ("releaser", ", row_exports: [analytics], budget_rho: 2.0")))
open(sys.argv[2], "w").write(text.replace(anchor, extra + anchor, 1))
PY
"$CROSSGATE" policy check "$T/p.yaml" >/dev/null 2>&1
check "policy copy with more analysts is valid" [ $? -eq 0 ]

# --- two synthetic releases: the checker passes both and the demo's ---------------
export_ --policy "$T/p.yaml" --analyst releaser --out "$T/x1.csv" >/dev/null 2>"$T/err"
check "first synthetic release exits 0" [ $? -eq 0 ]
export_ --policy "$T/p.yaml" --analyst releaser --out "$T/x2.csv" >"$T/x2.out" 2>"$T/err"
check "second synthetic release exits 0" [ $? -eq 0 ]
check "... its summary tells the rho charged, not a count of subjects" \
	grep -Eq "synthetic rows for 'analytics' \(DP, MST\); charged rho 0.100000000, [0-9.]+ remains" "$T/x2.out"
check "independent checker passes both releases and the demo's" \
	checker --export "$T/x1.csv" --export "$T/x2.csv" --export "$D/out/export.csv"
# What the old k-anonymous export failed (issue 11): a partner pins rows with its own exact values, two
# exports link, the meta gives the exact count.  Here no cell is an exact value (the checker: every cell is
# a bin), no row carries an identifier, and the two releases are independent draws, not the same rows.
python3 - "$T/x1.csv" "$T/x2.csv" "$D/data/k_users.csv" <<'PY' && ok "two releases are independent draws; no K spend is released exactly" || bad "releases repeat rows or K's exact spends"
import collections, csv, sys
a, b = (collections.Counter(tuple(r) for r in list(csv.reader(open(f)))[1:]) for f in sys.argv[1:3])
assert sum(a.values()) > 100 and sum(b.values()) > 100
assert a != b, "the same multiset of rows twice"
spends = {r["course_spend_cents"] for r in csv.DictReader(open(sys.argv[3])) if r["course_spend_cents"]}
cells = {r["k_course_spend_cents"] for r in csv.DictReader(open(sys.argv[1]))}
assert not (cells & spends - {"*"}), sorted(cells & spends)[:5]
PY
eq "the releases' meta tell the noisy estimate or nothing: no exact figure" \
	"$(jget "$T/x1.csv.meta.json" 'sorted(k for k in d if k in ("rows", "candidates", "suppressed", "matched", "subjects"))')" "[]"

# --- the checker itself catches what it must (doctored files) --------------------
doctor() { python3 "$DOCTOR" "$@"; }
caught() { # caught "what" "message" CHECKER-ARGS...: the checker must fail with that message
	what=$1 msg=$2; shift 2
	expect_fail "checker catches $what" "$msg" checker "$@"
}
doctor raw-value "$T/x1.csv" "$T/bad-raw-value.csv" k_course_spend_cents=12345
caught "an exact value in a binned column" "(k_course_spend_cents): '12345' is not one of the column's bins" \
	--export "$T/bad-raw-value.csv"
doctor add-pseudonym "$T/x1.csv" "$T/bad-pseudonym.csv"
caught "a pseudonym column (rows linkable across releases)" "is not the meta's columns" --export "$T/bad-pseudonym.csv"
doctor meta-count "$T/x1.csv" "$T/bad-count.csv" "$SUBJECTS"
caught "an undocumented meta field" "meta key 'rows' is not a documented provenance field" --export "$T/bad-count.csv"
caught "an exact count in the meta" "meta field 'rows' = $SUBJECTS is an exact count of the data" --export "$T/bad-count.csv"
doctor laxer-noise "$T/x1.csv" "$T/bad-noise.csv"
caught "a meta stating less noise than rho allows" "1-way noise sigma" --export "$T/bad-noise.csv"
doctor broken-tree "$T/x1.csv" "$T/bad-tree.csv"
caught "a tree missing an edge" "the tree has 9 edges, not d - 1 = 10" --export "$T/bad-tree.csv"
doctor overlap-bins "$T/x1.csv" "$T/bad-overlap.csv" k_course_spend_cents
caught "overlapping bins" "column 'k_course_spend_cents' bins" --export "$T/bad-overlap.csv"
doctor row-count "$T/x1.csv" "$T/bad-rows.csv"
caught "rows and meta that disagree" "but the CSV has" --export "$T/bad-rows.csv"
doctor raw-qi "$T/x1.csv" "$T/bad-raw.csv" region=CN-BJ
caught "a quasi-identifier left ungeneralized" "'region' bin 'CN-BJ' is not one of the map's groups" --export "$T/bad-raw.csv"
doctor plant "$T/x1.csv" "$T/bad-email.csv" "jane.doe@example.com"
caught "an email planted in a cell" "holds an email address" --export "$T/bad-email.csv"
# the input's own identifiers, written another way than any generic pattern knows
uid=$(python3 -c "import csv,sys; print(next(csv.DictReader(open(sys.argv[1])))['user_id'])" "$D/data/k_users.csv")
doctor plant "$T/x1.csv" "$T/bad-uid.csv" "id $uid"
caught "an input user id planted in a cell" "holds a user id of the input" --export "$T/bad-uid.csv"
phone=$(python3 -c "
import csv, re, sys
for r in csv.DictReader(open(sys.argv[1])):
    d = re.sub(r'\D', '', r['phone'])[-11:]
    if len(d) == 11:
        print(d[:3] + '-' + d[3:7] + '-' + d[7:]); break" "$D/data/g_viewers.csv")
doctor plant "$T/x1.csv" "$T/bad-phone.csv" "$phone"
caught "an input phone planted in a cell" "holds a phone number of the input" --export "$T/bad-phone.csv"
doctor plant "$T/x1.csv" "$T/bad-token.csv" "$(python3 -c 'print("ab" * 32)')"
caught "a 64-hex token planted in a cell" "holds a 64-hex-digit token" --export "$T/bad-token.csv"
check "the checker passes the original release again (the doctoring wrote copies)" checker --export "$T/x1.csv"

# --- who may take a synthetic release -------------------------------------------
export_ --policy "$T/p.yaml" --analyst aggonly --out "$T/agg.csv" >/dev/null 2>"$T/err"
check "an analyst without row_exports is refused" [ $? -ne 0 ]
check "... saying it may not take row exports" grep -q "analyst 'aggonly' may not take row exports for purpose 'analytics'" "$T/err"
check "... and nothing is written" nothing "$T/agg.csv"
eq "... and the refusal is an audit event" \
	"$(events export aggonly | python3 -c "import json,sys; print([json.loads(l)['outcome'] for l in sys.stdin])")" "['refused']"
expect_fail "row exports for a purpose not under row_exports are refused" "may not take row exports for purpose 'marketing'" \
	export_ --policy "$P" --purpose marketing --out "$T/mkt.csv"
check "... nothing written" nothing "$T/mkt.csv"

# --- the export cap, beside the budget ---------------------------------------------
export_ --policy "$T/p.yaml" --analyst capped --out "$T/cap1.csv" >/dev/null 2>&1 &&
	export_ --policy "$T/p.yaml" --analyst capped --out "$T/cap2.csv" >/dev/null 2>&1
check "max_exports 2: two releases made" [ $? -eq 0 ]
expect_fail "max_exports 2: the third is refused" "analyst 'capped' has taken all 2 row exports the policy allows (max_exports)" \
	export_ --policy "$T/p.yaml" --analyst capped --out "$T/cap3.csv"
check "... nothing written" nothing "$T/cap3.csv"
eq "... and the refused third charged no rho (two releases of 0.1)" "$(spent capped)" "0.2"
"$CROSSGATE" budget --db "$DB" --policy "$T/p.yaml" >"$T/budget.txt" 2>&1
check "budget shows capped at 2/2 exports" grep -Eq '^capped .* 2/2$' "$T/budget.txt"
eq "budget --json: 2 of 2 row exports" \
	"$("$CROSSGATE" budget --db "$DB" --policy "$T/p.yaml" --json |
	python3 -c "import json,sys; print([(r['row_exports'], r['max_exports']) for r in json.load(sys.stdin) if r['analyst'] == 'capped'])")" \
	"[(2, 2)]"
eq "two export-charge events and one export-refused for capped" \
	"$(events export-charge capped | wc -l) $(events export-refused capped | wc -l)" "2 1"

# --- one ledger: releases and queries spend the same budget; refusals charge nothing ---
export_ --policy "$T/p.yaml" --analyst synth --rho 0.6 --rows 2000 --out "$T/syn1.csv" >/dev/null 2>"$T/err"
check "synth: a release of rho 0.6 and 2000 rows" [ $? -eq 0 ]
eq "... 2000 rows as asked" "$(sed 1d "$T/syn1.csv" | wc -l | tr -d ' ')" "2000"
check "... passes the checker" checker --export "$T/syn1.csv"
expect_fail "synth: a query of rho 0.5 no longer fits" "privacy budget of 'synth' on 'g+k' exhausted: the query needs rho 0.500000000, 0.400000000 of 1.000000000 remains" \
	query --policy "$T/p.yaml" --analyst synth --rho 0.5 --out "$T/sq.csv" --group-by region --metric count
query --policy "$T/p.yaml" --analyst synth --rho 0.3 --out "$T/sq.csv" --group-by region --metric count >/dev/null 2>&1
check "synth: a query of rho 0.3 fits" [ $? -eq 0 ]
expect_fail "synth: a release of rho 0.2 no longer fits" \
	"synthetic release refused: nothing is released once the budget is spent; it needs rho 0.200000000 and 'synth' has 0.100000000 of 1.000000000 left on 'g+k'" \
	export_ --policy "$T/p.yaml" --analyst synth --rho 0.2 --out "$T/syn2.csv"
check "... nothing written" nothing "$T/syn2.csv"
export_ --policy "$T/p.yaml" --analyst synth --out "$T/syn3.csv" >/dev/null 2>&1
check "synth: the policy's export_rho 0.1 spends the rest" [ $? -eq 0 ]
expect_fail "synth: once the budget is spent nothing is released" "has 0.000000000 of 1.000000000 left" \
	export_ --policy "$T/p.yaml" --analyst synth --rho 0.000000001 --out "$T/syn4.csv"
check "... nothing written" nothing "$T/syn4.csv"
eq "synth spent exactly its budget: 0.6 + 0.3 + 0.1" "$(spent synth)" "1.0"

# --- a column the policy gives no bounds: refused before any charge --------------------
python3 - "$T/p.yaml" "$T/nobounds.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
new, n = re.subn(r"(name: course_spend_cents, [^}]*role: feature),\s*bounds: \[0, 200000\]\}", r"\1}", text)
assert n == 1, n
open(sys.argv[2], "w").write(new)
PY
check "a policy copy without course_spend_cents bounds" sh -c "! grep -A1 'course_spend_cents' '$T/nobounds.yaml' | grep -q bounds"
before=$(spent releaser)
expect_fail "a release over a column without bounds is refused" \
	"synthetic release: column 'k_course_spend_cents' has no bounds in the policy" \
	export_ --policy "$T/nobounds.yaml" --analyst releaser --out "$T/nb.csv"
check "... nothing written" nothing "$T/nb.csv"
eq "... and nothing charged" "$(spent releaser)" "$before"
check "... the refusal is an audit event" sh -c "'$CROSSGATE' audit show --db '$DB' --type export --format jsonl |
	grep '\"outcome\":\"refused\"' | grep -q 'no domain'"
expect_fail "--bins out of range is a usage error" "--bins wants 2 to 100" \
	export_ --policy "$T/p.yaml" --analyst releaser --bins 1 --out "$T/b1.csv"
export_ --policy "$T/p.yaml" --analyst releaser --bins 4 --out "$T/b4.csv" >/dev/null 2>&1
eq "--bins 4: course spend in 4 bins of 50000 (and '*')" \
	"$(jget "$T/b4.csv.meta.json" '[c["bins"] for c in d["columns"] if c["name"] == "k_course_spend_cents"][0]')" \
	"['0-49999', '50000-99999', '100000-149999', '150000-200000', '*']"

# --- every release made here, together ----------------------------------------------
ALL=""
for f in "$T"/x1.csv "$T"/x2.csv "$D"/out/export.csv "$T"/cap1.csv "$T"/cap2.csv "$T"/syn1.csv "$T"/syn3.csv "$T"/b4.csv; do
	ALL="$ALL --export $f"
done
# shellcheck disable=SC2086
check "checker passes every release of this test together" checker $ALL --quiet

# --- queries: released counts, provenance, the budget --------------------------------
query --policy "$P" --out "$T/q1.csv" --group-by region,k_top_course_category \
	--metric count --metric sum:k_course_spend_cents >"$T/q1.out" 2>"$T/err"
check "query exits 0" [ $? -eq 0 ]
check "checker passes the query: counts >= threshold, no exact count in the meta" \
	checker --query "$T/q1.csv" --min-sigma 1
doctor below-threshold "$T/q1.csv" "$T/bad-q-threshold.csv"
caught "a released count below the threshold" "released count 19 is below the threshold 20" --query "$T/bad-q-threshold.csv"
doctor exact-count "$T/q1.csv" "$T/bad-q-exact.csv" "$SUBJECTS"
caught "an exact subject count in a query meta" "meta field 'subjects' = $SUBJECTS is an exact count of the data" \
	--query "$T/bad-q-exact.csv"
doctor plant "$T/q1.csv" "$T/bad-q-email.csv" "$(python3 -c "import csv,sys; print(next(csv.DictReader(open(sys.argv[1])))['email'].strip())" "$D/data/k_users.csv")"
caught "an input email planted in a query answer" "holds an email address" --query "$T/bad-q-email.csv"
check "query meta has rho, remaining_rho and threshold" \
	jtrue "$T/q1.csv.meta.json" 'float(d["rho"]) == 0.05 and float(d["remaining_rho"]) == 1.05 and d["threshold"] == 20'
eq "budget shows the spend" "$("$CROSSGATE" budget --db "$DB" --policy "$P" --json |
	python3 -c "import json,sys; print([(r['rho_spent'], r['rho_remaining']) for r in json.load(sys.stdin) if r['analyst'] == 'analyst'])")" \
	"[(0.95, 1.05)]"   # the demo's own DP releases (affinity, ridge, k-means, synthetic rows) spent 0.9
query --policy "$P" --out "$T/q-eps.csv" --group-by region --metric count --epsilon 0.5 >"$T/q-eps.out" 2>&1
check "a pure-epsilon query is charged rho = eps^2/2" grep -q "charged rho 0.125000000" "$T/q-eps.out"
check "... with discrete Laplace noise, and passes the checker" sh -c \
	"python3 -c \"import json; assert json.load(open('$T/q-eps.csv.meta.json'))['mechanism'] == 'discrete-laplace'\""
check "... checker on the epsilon query" checker --query "$T/q-eps.csv"

# Spend until refused: 0.3 + 0.3 + 0.3 fit a cap of 1.0, a fourth does not, 0.1 still does.
n=0 refused=0
while [ $n -lt 10 ]; do
	if query --policy "$T/p.yaml" --analyst spender --rho 0.3 --out "$T/s$n.csv" --group-by region \
		--metric count >/dev/null 2>"$T/err"; then n=$((n + 1)); else refused=1; break; fi
done
eq "spender: three queries of rho 0.3 fit a budget of 1.0" "$n $refused" "3 1"
check "the refusal says the budget is exhausted and what remains" \
	grep -q "privacy budget of 'spender' on 'g+k' exhausted: the query needs rho 0.300000000, 0.100000000 of 1.000000000 remains" "$T/err"
check "... no answer written" nothing "$T/s3.csv"
query --policy "$T/p.yaml" --analyst spender --rho 0.1 --out "$T/s-last.csv" --group-by region --metric count >/dev/null 2>&1
check "the last 0.1 can still be spent" [ $? -eq 0 ]
expect_fail "then even a tiny query is refused" "exhausted" \
	query --policy "$T/p.yaml" --analyst spender --rho 0.000001 --out "$T/s-tiny.csv" --group-by region --metric count
check "... and the remaining budget (0) is in the message" grep -q "0.000000000 of 1.000000000 remains" "$T/err"
check "checker passes every answer spender got" checker --query "$T/s0.csv" --query "$T/s1.csv" --query "$T/s2.csv" \
	--query "$T/s-last.csv"

# Ten processes at once against a budget for three: never more than the cap.
i=0
while [ $i -lt 10 ]; do
	( query --policy "$T/p.yaml" --analyst racer --rho 0.3 --out "$T/r$i.csv" --group-by region --metric count \
		>"$T/r$i.out" 2>&1; echo $? >"$T/r$i.rc" ) &
	i=$((i + 1))
done
wait
eq "10 concurrent queries, budget for 3: exactly 3 answered" "$(cat "$T"/r?.rc | grep -cx 0)" 3
eq "... the other 7 refused as exhausted (no other failure)" "$(grep -l 'exhausted' "$T"/r?.out | wc -l)" 7

# A crash between charge and answer gives no free answer.
CROSSGATE_FAULT=after-charge query --policy "$T/p.yaml" --analyst crasher --rho 0.4 --out "$T/crash.csv" \
	--group-by region --metric count >/dev/null 2>&1
eq "a crash right after the charge exits 70" "$?" 70
check "... no answer written" nothing "$T/crash.csv"
"$CROSSGATE" budget --db "$DB" --policy "$T/p.yaml" --json >"$T/budget.json"
eq "... the charge stays: crasher spent 0.4" \
	"$(jget "$T/budget.json" '[(r["rho_spent"], r["rho_remaining"]) for r in d if r["analyst"] == "crasher"]')" "[(0.4, 0.6)]"
eq "... and its budget-charge event is logged" "$(events budget-charge crasher | wc -l)" 1
"$CROSSGATE" audit verify --db "$DB" --pub "$GW/sign.pub" >"$T/verify.out" 2>&1
check "audit log verifies after the crash" [ $? -eq 0 ]

# No analyst ever above its cap, and the ledger is exactly the sum of the audited charges.
"$CROSSGATE" audit show --db "$DB" --type budget-charge --format jsonl >"$T/charges.jsonl"
python3 - "$T/budget.json" "$T/charges.jsonl" <<'PY' && ok "no analyst spent beyond its cap; the ledger equals the audited charges" || bad "spending beyond the cap, or a charge without its audit event"
import collections, json, sys
ledger = json.load(open(sys.argv[1]))
audited = collections.Counter()
for line in open(sys.argv[2]):
    e = json.loads(line)
    audited[e["actor"]] += e["counts"]["rho_nano"]
assert ledger
for r in ledger:
    assert r["rho_spent"] <= r["rho_cap"] + 1e-12, r
    assert abs(audited[r["analyst"]] / 1e9 - r["rho_spent"]) < 1e-9, (r, audited[r["analyst"]])
assert abs(audited["racer"] - 900000000) == 0 and audited["spender"] == 1000000000, audited
PY
eq "every refused query is a budget-refused event (spender 2, racer 7)" \
	"$(events budget-refused spender | wc -l) $(events budget-refused racer | wc -l)" "2 7"

# --- a differencing attempt: two releases that differ by one user ---------------------
# 'differ' asks the same count by region 20 times, one user is added (matched,
# consenting, in North), and it asks 20 times more.  The noise must hide them.
sed 's/generalize: {band: \[10, 20, 40\]}, public: true}/generalize: {band: [10, 20, 40]}}/' "$T/p.yaml" >"$T/np.yaml"
check "policy copy with age not public (its keys then come from the data)" sh -c "! grep -q 'band: \[10, 20, 40\]}, public' '$T/np.yaml'"
releases() { # releases TAG: 20 region counts into $T/TAG.north, one age query into $T/TAG-age.csv
	i=0
	while [ $i -lt 20 ]; do
		query --policy "$T/p.yaml" --analyst differ --rho 0.05 --out "$T/$1-$i.csv" --group-by region --metric count \
			>/dev/null 2>&1 || echo "query failed" >>"$T/$1.north"
		python3 -c "import csv,sys; print([r['count'] for r in csv.DictReader(open(sys.argv[1])) if r['region'] == 'North'][0])" \
			"$T/$1-$i.csv" >>"$T/$1.north"
		i=$((i + 1))
	done
	query --policy "$T/np.yaml" --analyst differ --rho 0.05 --out "$T/$1-age.csv" --group-by age --metric count >/dev/null 2>&1
}
releases before
today=$(date -u +%Y-%m-%d)
KH="user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents"
GH="user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,streams_followed,top_game_category"
# Age 105: no input row is older than 89, so the age band 100-109 is new to the data.
printf '%s\nkdiff0001,one.more.subject@example.org,,105,CN-BJ,match;analytics,%s,1000,10,1,music,500\n' "$KH" "$today" >"$T/k-one.csv"
printf '%s\ngdiff0001,one.more.subject@example.org,,105,CN-BJ,match;analytics,%s,100,5,3,moba\n' "$GH" "$today" >"$T/g-one.csv"
for p in k g; do
	"$CROSSGATE" agent pack --policy "$P" --partner $p --input "$T/$p-one.csv" --out "$T/$p-one.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null 2>&1
done
"$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$GW" "$T/k-one.batch" "$T/g-one.batch" >"$T/ingest.out" 2>&1
eq "one more matched user ingested (one record per side)" "$(grep -c "committed 1 records" "$T/ingest.out")" 2
releases after
check "all 40 releases answered" sh -c "! grep -q failed '$T/before.north' '$T/after.north' && [ \$(cat '$T/before.north' '$T/after.north' | wc -l) = 40 ]"
check "the noise scale is at least 1: sigma = sqrt(m / (2 rho)) with m = 1, rho = 0.05" \
	checker --exact "$((SUBJECTS + 1))" --min-sigma 1 --query "$T/before-0.csv" --query "$T/after-0.csv"
python3 - "$T/before.north" "$T/after.north" <<'PY' && ok "repeated releases vary, and their differences are not reliably 1" || bad "releases are deterministic: a difference reveals the user"
import sys
b = [int(x) for x in open(sys.argv[1])]
a = [int(x) for x in open(sys.argv[2])]
assert len(a) == len(b) == 20
assert len(set(b)) > 1 and len(set(a)) > 1, (b, a)
diffs = [y - x for x, y in zip(b, a)]
assert diffs.count(1) < len(diffs), diffs
print("    North before %s, after %s" % (b, a))
PY
# Keys taken from the data (age not public): the release may tell only what the
# noise protects.  The new user brings a key (100-109) nobody else has.
check "partition selection: the answer before passes the checker" \
	checker --exact "$((SUBJECTS + 1))" --query "$T/before-age.csv"
check "partition selection: the answer after passes the checker" \
	checker --exact "$((SUBJECTS + 1))" --query "$T/after-age.csv"
check "partition selection: rows come in key order, not the store's" python3 -c "
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
keys = [r[0] for r in rows]
sys.exit(0 if keys == sorted(keys) else 1)" "$T/after-age.csv"
eq "partition selection: the provenance tells neither how many keys the data has nor how many were withheld" \
	"$(jget "$T/before-age.csv.meta.json" '"groups" in d or "suppressed" in d') $(jget "$T/after-age.csv.meta.json" '"groups" in d or "suppressed" in d')" "False False"

# --- every refusal and charge is in the audit log, and the log verifies ----------------
for t in budget-charge budget-refused export-charge export-refused export query; do
	check "audit has $t events" sh -c "'$CROSSGATE' audit show --db '$DB' --type $t --format jsonl | grep -q ."
done
eq "differ: 42 budget-charge and 42 query events" "$(events budget-charge differ | wc -l) $(events query differ | wc -l)" "42 42"
check "audit events hold no identifier of the input" sh -c "! '$CROSSGATE' audit show --db '$DB' --format jsonl |
	sed -e 's/\"event\":\"[^\"]*\"//' -e 's/\"checkpoint\":\"[^\"]*\"//' -e 's/\"leaf_hash\":\"[^\"]*\"//' | grep -q 'one.more.subject\|kdiff0001\|$uid'"
"$CROSSGATE" audit verify --db "$DB" --pub "$GW/sign.pub" >"$T/verify.out" 2>&1
check "audit log verifies at the end" [ $? -eq 0 ]
e2e_done
