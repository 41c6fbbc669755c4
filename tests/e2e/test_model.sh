#!/bin/sh
# DP model statistics end to end: `crossgate query --model ridge|kmeans`
# locally and over mutual TLS, charged to the same ledger as every query;
# refusals (unknown column, no bounds, a budget that does not fit) before
# anything is charged, with their messages; the report built from the DP
# releases alone (the row export deleted first); and, on two full 50,000-user
# seeds, the content mix, segments and lift against what was planted.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
net_setup "$D" 3000
check "network demo exits 0" [ -s "$D/policy.yaml" ]
DB=$E2E_TMP/m.db
cp "$D/gateway.db" "$DB"
KEYS="--db $DB --policy $D/policy.yaml --keys $D/keys/gateway"
spent() { "$CROSSGATE" budget --db "$DB" --policy "$D/policy.yaml" --json | python3 -c \
	'import json,sys; print("%.9f" % [r for r in json.load(sys.stdin) if r["analyst"] == "analyst"][0]["rho_spent"])'; }
eq "the demo's releases spent rho 0.9 in all (no marketing loop below 4,000 users)" "$(spent)" "0.900000000"
python3 - "$D/out/ridge.csv" "$D/out/kmeans.csv" <<'PY' && ok "the demo's ridge and k-means releases have the published shape and noise scales" || bad "demo releases"
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
meta = json.load(open(sys.argv[1] + ".meta.json"))
assert len(rows) == 15 and rows[0]["row"] == "1" and rows[0]["col"] == "1", rows[:2]
assert meta["model"] == "ridge" and meta["rho"] == "0.600000000" and meta["fixed_point"] == 4096
assert abs(meta["sensitivity_l2"] - math.sqrt(15) * 4096 ** 2 / 4) < 1e-3
assert abs(meta["noise_sd"] / (meta["sensitivity_l2"] / math.sqrt(2 * 0.6)) - 1) < 1e-3, meta["noise_sd"]
assert meta["bounds"]["k_conversion_value_cents"] == [0, 300000]
k = list(csv.DictReader(open(sys.argv[2])))
km = json.load(open(sys.argv[2] + ".meta.json"))
assert km["model"] == "kmeans" and km["k"] == 3 and km["steps"] == 5 and km["log1p"] is True, km
assert 1 <= len(k) <= 3 and all(float(r["count"]) >= km["threshold"] for r in k)
assert km["count_noise_sd"] > 0 and km["rho_per_release"] == "0.025000000"
PY

# Refusals: before the charge, with the reason.
expect_fail "an unknown column is refused" "no column 'k_nope' is shared" \
	"$CROSSGATE" query $KEYS --out "$E2E_TMP/r.csv" --model ridge --x k_nope --y k_conversion_value_cents
expect_fail "a column without bounds is refused" "column 'age' has no bounds in the policy" \
	"$CROSSGATE" query $KEYS --out "$E2E_TMP/r.csv" --model kmeans --cols age --k 2 --steps 2
expect_fail "a budget that does not fit is refused" "the query needs rho 1.500000000, 1.100000000 of 2.000000000 remains" \
	"$CROSSGATE" query $KEYS --out "$E2E_TMP/r.csv" --model ridge --x k_learning_minutes --y k_conversion_value_cents \
	--rho 1.5
expect_fail "ridge needs --y" "missing required option --y" \
	"$CROSSGATE" query $KEYS --out "$E2E_TMP/r.csv" --model ridge --x k_learning_minutes
expect_fail "k-means needs --steps" "missing required option --steps" \
	"$CROSSGATE" query $KEYS --out "$E2E_TMP/r.csv" --model kmeans --cols k_learning_minutes --k 2
check "nothing is written for a refused model" [ ! -e "$E2E_TMP/r.csv" ]
eq "nothing was charged for the refusals" "$(spent)" "0.900000000"

# Over mutual TLS: the same refusals, then a release.
net_start "$DB" "$D/policy.yaml" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]
expect_fail "the gateway refuses a column without bounds" "column 'age' has no bounds" \
	"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/g.csv" --model ridge --x age --y k_conversion_value_cents
expect_fail "the gateway refuses an overspend" "1.100000000 of 2.000000000 remains" \
	"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/g.csv" --model kmeans --cols k_learning_minutes --k 2 \
	--steps 3 --rho 1.2
expect_fail "a partner may not ask for model statistics" "may not query" \
	"$CROSSGATE" query $(net_client k) --out "$E2E_TMP/g.csv" --model ridge --x k_learning_minutes \
	--y k_conversion_value_cents
eq "nothing was charged for them" "$(spent)" "0.900000000"
"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/g.csv" --model ridge \
	--x k_course_spend_cents,k_learning_minutes --y k_conversion_value_cents --rho 0.2 >"$E2E_TMP/g.out" 2>&1
check "a ridge release over the gateway succeeds" [ $? -eq 0 ]
check "it reports the charge" grep -q "charged rho 0.200000000, 0.900000000 remains" "$E2E_TMP/g.out"
eq "10 entries for 2 features" "$(tail -n +2 "$E2E_TMP/g.csv" | wc -l)" "10"
check "its provenance names the analyst and the model" python3 -c "
import json; m = json.load(open('$E2E_TMP/g.csv.meta.json'))
assert m['model'] == 'ridge' and m['analyst'] == 'analyst' and m['rho'] == '0.200000000' and m['noise_sd'] > 0, m"
net_stop
eq "the ledger holds the charge" "$(spent)" "1.100000000"
check "the release is an audit event" sh -c "'$CROSSGATE' audit show --db '$DB' --format jsonl | grep -q model-ridge"

# The report needs no row: the export is removed before it is built.
rm -f "$D/out/export.csv" "$D/out/export.csv.meta.json"
"$CROSSGATE" analytics report --ridge "$D/out/ridge.csv" --kmeans "$D/out/kmeans.csv" \
	--aggregates "$D/out/affinity.csv" --policy "$D/policy.yaml" --format json --out "$E2E_TMP/rep.json" \
	>/dev/null 2>"$E2E_TMP/rep.err"
check "the report is built from the DP releases alone" [ $? -eq 0 ]
# (the interval is the basic bootstrap's, 2 coef - the replicates' quantiles: a
# biased bootstrap distribution can leave coef outside it, as ridge's shrinkage
# under heavy noise did once in CI; only its order is asserted here)
check "it states the rho each figure spent" python3 -c "
import json; r = json.load(open('$E2E_TMP/rep.json'))
assert r['input']['export'] is None
assert r['dp_content_mix']['rho'] == 0.6 and r['dp_segments']['rho'] == 0.15 and r['affinity_rho'] == 0.05, r
c = r['dp_content_mix']['coefficients']
assert [x['feature'] for x in c] == ['k_course_spend_cents', 'k_learning_minutes', 'g_watch_minutes']
assert all(x['ci95_low'] < x['ci95_high'] for x in c)"
"$CROSSGATE" analytics report --ridge "$D/out/ridge.csv" --kmeans "$D/out/kmeans.csv" \
	--aggregates "$D/out/affinity.csv" --policy "$D/policy.yaml" --out "$E2E_TMP/rep.html" >/dev/null 2>&1
check "the HTML report states each figure's rho" sh -c "grep -q 'This figure spent <b>&rho; = 0.6</b>' '$E2E_TMP/rep.html' &&
	grep -q 'This figure spent <b>&rho; = 0.15</b>' '$E2E_TMP/rep.html' && grep -q 'spent <b>&rho; = 0.05</b> (DP counts)' '$E2E_TMP/rep.html'"
check "and its intervals include the DP noise" grep -q "95% interval (with the DP noise)" "$E2E_TMP/rep.html"
printf 'row,col,value\n"1","1",5\n' >"$E2E_TMP/bad.csv"
cp "$D/out/ridge.csv.meta.json" "$E2E_TMP/bad.csv.meta.json"
expect_fail "a truncated ridge release is refused" "the entry 1,k_course_spend_cents is missing" \
	"$CROSSGATE" analytics summary --ridge "$E2E_TMP/bad.csv"

# Two full seeds of the 50,000-user demo: the planted structure is found.
python3 tests/e2e/accuracy.py --crossgate "$CROSSGATE" --runs 2 --first-seed 101 >"$E2E_TMP/acc.out" 2>&1
check "two full demo seeds run" [ $? -eq 0 ]
python3 - "$E2E_TMP/acc.out" <<'PY' && ok "alpha and beta within 10%, segments within 3 points, lift above 2 on both seeds" || { bad "two full seeds"; cat "$E2E_TMP/acc.out"; }
import re, sys
t = open(sys.argv[1]).read()
assert "alpha and beta within 10%         100% of runs" in t, t
assert float(re.search(r"worst error +([0-9.]+) points", t).group(1)) <= 3, t
assert float(re.search(r"lift +min ([0-9.]+)", t).group(1)) > 2, t
PY
e2e_done
