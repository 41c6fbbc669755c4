#!/bin/sh
# crossgate analytics as an analyst runs it: on the demo's anonymized export it
# recovers the structure the generator planted, releases no count below the
# threshold, and writes a report that headless Chromium renders with every chart.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
PY=/usr/bin/python3
CHECK="$PY tests/e2e/analytics_check.py"
A() { "$CROSSGATE" analytics "$@"; }

# run_py "what" args...: the helper's ok/FAIL lines count as this script's checks.
run_py() {
	what=$1; shift
	$CHECK "$@" >"$E2E_TMP/py.out" 2>&1
	rc=$?
	grep -E '^(ok|FAIL) ' "$E2E_TMP/py.out"
	E2E_PASS=$((E2E_PASS + $(grep -c '^ok ' "$E2E_TMP/py.out")))
	E2E_FAIL=$((E2E_FAIL + $(grep -c '^FAIL ' "$E2E_TMP/py.out")))
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$E2E_TMP/py.out"; then
		bad "$what: the check crashed"; tail -5 "$E2E_TMP/py.out"
	fi
}

# chrome OUT.html PNG: dump the DOM and take a screenshot; fails on a console or load error.
chrome() {
	for b in chromium chromium-browser; do command -v $b >/dev/null && break; done
	if ! command -v "$b" >/dev/null; then
		bad "chromium is missing: run 'sh setup.sh' (Debian's chromium)"
		return 1
	fi
	flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$E2E_TMP/chrome"
	# shellcheck disable=SC2086
	timeout 120 "$b" $flags --enable-logging=stderr --v=0 --dump-dom "file://$1" \
		>"$1.dom" 2>"$1.err"
	check "chromium renders $(basename "$1")" [ -s "$1.dom" ]
	if grep -E 'CONSOLE|Uncaught|Failed to load|net::ERR' "$1.err" >"$1.bad"; then
		bad "chromium reported errors:"; head -5 "$1.bad"
	else
		ok "no error in the browser console"
	fi
	# shellcheck disable=SC2086
	timeout 120 "$b" $flags --window-size=1200,3400 --screenshot="$2" "file://$1" >/dev/null 2>&1
	check "chromium writes a screenshot" [ -s "$2" ]
}

"$CROSSGATE" demo --offline --dir "$D" --users 20000 --seed 3 >/dev/null 2>"$E2E_TMP/demo.err"
check "demo exits 0" [ $? -eq 0 ]
# crossgate releases no exact rows: the row models are checked on the demo's
# exact joined rows, built from its inputs (tests/e2e/rows_from_demo.py).
X=$E2E_TMP/rows.csv
python3 tests/e2e/rows_from_demo.py "$D/data" "$D/policy.yaml" "$X" >/dev/null
check "the rows have no provenance sidecar (no crossgate release is exact rows)" [ ! -e "$X.meta.json" ]

# --- the planted structure --------------------------------------------------
A report --input "$X" --policy "$D/policy.yaml" --format json --out "$E2E_TMP/r.json" >/dev/null
check "report --format json exits 0" [ $? -eq 0 ]
run_py planted planted "$E2E_TMP/r.json" "$D/data/truth.json"
eq "the threshold is the policy's" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['threshold'])" "$E2E_TMP/r.json")" 20
python3 - "$E2E_TMP/r.json" <<'PY' && ok "provenance of rows without a sidecar is unknown, and said so" || bad "provenance"
import json, sys
r = json.load(open(sys.argv[1]))["provenance"]
assert not r["known"], r
PY
A summary --input "$X" >"$E2E_TMP/summary.txt"
check "summary exits 0" [ $? -eq 0 ]
check "summary names alpha and beta" grep -q 'alpha (knowledge)' "$E2E_TMP/summary.txt"
A report --input "$X" --format csv --out "$E2E_TMP/csvr" >/dev/null
python3 - "$X" "$E2E_TMP/r.json" "$E2E_TMP/summary.txt" "$E2E_TMP/csvr"/*.csv <<'PY' && ok "no pseudonym in any output" || bad "a pseudonym leaked"
import csv, sys
p = {r["pseudonym"] for r in csv.DictReader(open(sys.argv[1]))}
for f in sys.argv[2:]:
    text = open(f).read()
    assert not any(x in text for x in p), f
PY

# --- the HTML report in a browser ---------------------------------------------
A report --input "$X" --policy "$D/policy.yaml" --out "$E2E_TMP/report.html" >/dev/null
check "report (html) exits 0" [ $? -eq 0 ]
if chrome "$E2E_TMP/report.html" "$E2E_TMP/shot.png"; then
	run_py dom dom "$E2E_TMP/r.json" "$E2E_TMP/report.html.dom"
	run_py png png "$E2E_TMP/shot.png"
fi

# --- no count below the threshold ---------------------------------------------
for t in 20 150 300; do
	A report --input "$X" --threshold $t --format json --out "$E2E_TMP/t$t.json" >/dev/null &&
	A report --input "$X" --threshold $t --format csv --out "$E2E_TMP/csv$t" >/dev/null
	check "threshold $t: json and csv written" [ $? -eq 0 ]
	run_py "threshold $t" threshold "$E2E_TMP/t$t.json" "$E2E_TMP/csv$t" $t
done
# Twelve clusters asked for: those under 300 rows are merged, pairs under 300 withheld.
A report --input "$X" --threshold 300 --segments 12 --format json --out "$E2E_TMP/m.json" >/dev/null &&
A report --input "$X" --threshold 300 --segments 12 --format csv --out "$E2E_TMP/csvm" >/dev/null
check "threshold 300 with 12 clusters: json and csv written" [ $? -eq 0 ]
run_py "merged" threshold "$E2E_TMP/m.json" "$E2E_TMP/csvm" 300
python3 - "$E2E_TMP/m.json" <<'PY' && ok "small clusters are merged and small pairs withheld" || bad "merging"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["segments"]
assert s["k_fit"] == 12 and s["merged"] > 0 and s["k"] == 12 - s["merged"], s["merged"]
assert sum(x["size"] for x in s["segments"]) == s["rows_used"]
assert r["affinity"]["withheld"] > 0 and r["affinity"]["released"] > 0
PY
A report --input "$X" --threshold 300 --segments 12 --out "$E2E_TMP/m.html" >/dev/null
if chrome "$E2E_TMP/m.html" "$E2E_TMP/m.png"; then
	run_py "dom merged" dom "$E2E_TMP/m.json" "$E2E_TMP/m.html.dom"
fi
A report --input "$X" --threshold 1000000 --format json --out "$E2E_TMP/all.json" >/dev/null
python3 - "$E2E_TMP/all.json" <<'PY' && ok "a threshold above the rows releases no model" || bad "threshold above rows"
import json, sys
r = json.load(open(sys.argv[1]))
assert not r["content_mix"]["available"] and not r["segments"]["available"]
assert r["segments"]["segments"] == [] and r["affinity"]["pairs"] == []
PY
expect_fail "--threshold below the policy's is refused" "below the policy's privacy.threshold 20" \
	A report --input "$X" --policy "$D/policy.yaml" --threshold 5 --format json

# --- DP aggregates --------------------------------------------------------------
"$CROSSGATE" query --db "$D/gateway.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
	--out "$E2E_TMP/agg.csv" --group-by k_top_course_category,g_top_game_category --metric count \
	>/dev/null 2>&1
check "crossgate query writes aggregates" [ -s "$E2E_TMP/agg.csv" ]
A report --aggregates "$E2E_TMP/agg.csv" --format json --out "$E2E_TMP/agg.json" >/dev/null
check "a report from aggregates alone" [ $? -eq 0 ]
python3 - "$E2E_TMP/agg.json" <<'PY' && ok "aggregates give the affinity, the query's provenance, and no row model" || bad "aggregates"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["affinity"]["source"] == "aggregates"
assert (r["affinity"]["pairs"][0]["course"], r["affinity"]["pairs"][0]["game"]) == ("programming", "strategy")
assert r["provenance"]["known"] and r["provenance"]["release"] == "query"
assert not r["content_mix"]["available"] and not r["segments"]["available"]
PY

# --- the activation and experiment section (the demo's marketing loop) ------------
R=$D/out/report.html
check "the demo's report has the activation and experiment section" grep -q '<section id="activation"' "$R"
python3 - "$R" "$D/out/audience.json" "$D/out/lift.json" "$D/out/report.json" <<'PY' && ok "it shows the noisy audience size, the lift with its interval and the rho spent, as released" || bad "activation section"
import json, re, sys
html, aud, lift, rep = open(sys.argv[1]).read(), *(json.load(open(p)) for p in sys.argv[2:5])
sec = re.search(r'<section id="activation".*?</section>', html, re.S).group(0)
assert '<b class="audience-size">%d</b>' % aud["noisy_size"] in sec, sec
r = lift["lift"]["rate"]
want = "<b>%+.2f points</b> (95%% interval %+.2f to %+.2f)" % (r["est"] * 100, r["lo"] * 100, r["hi"] * 100)
assert want in sec, (want, sec)
assert '<dd class="act-rho">0.1</dd>' in sec, sec
assert sec.count('class="ci"') == 1 and sec.count('class="zero"') == 1 and 'id="lift-interval"' in sec
act = rep["activation"]
assert act["lift"]["rate_lift"] == {k: r[k] for k in ("est", "lo", "hi")} and act["audience"]["noisy_size"] == aud["noisy_size"]
PY
if chrome "$R" "$E2E_TMP/demo.png"; then
	check "  the browser renders the lift's interval" grep -q 'id="lift-interval"' "$R.dom"
fi
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); del d['lift']; json.dump(d, open(sys.argv[2], 'w'))" \
	"$D/out/lift.json" "$E2E_TMP/nolift.json"
expect_fail "a lift file without its lift is refused, naming the field" "nolift.json: no object 'lift'" \
	A report --aggregates "$D/out/affinity.csv" --lift "$E2E_TMP/nolift.json" --out "$E2E_TMP/x.html"
expect_fail "an unreadable audience file is refused" "nothere.json: cannot read" \
	A report --aggregates "$D/out/affinity.csv" --audience "$E2E_TMP/nothere.json" --out "$E2E_TMP/x.html"

# --- without provenance, and bad input ------------------------------------------
cp "$X" "$E2E_TMP/bare.csv"
A report --input "$E2E_TMP/bare.csv" --out "$E2E_TMP/bare.html" >/dev/null
check "a report without a sidecar" [ $? -eq 0 ]
check "it says provenance is unknown" grep -q 'Provenance unknown' "$E2E_TMP/bare.html"
printf 'pseudonym,k_learning_minutes\nab,12\ncd,1x\n' >"$E2E_TMP/badnum.csv"
expect_fail "a bad number is refused with file:line:column" "badnum.csv:3:2 (k_learning_minutes): not a decimal number" \
	A summary --input "$E2E_TMP/badnum.csv"
check "the message does not quote the value" sh -c "! grep -q 1x '$E2E_TMP/err'"
printf 'user_id,email\nk1,a@b.c\n' >"$E2E_TMP/notexport.csv"
expect_fail "a file that is not an export is refused" "not an export" A summary --input "$E2E_TMP/notexport.csv"
printf '{"export_id": "zz"' >"$E2E_TMP/bare.csv.meta.json"
expect_fail "a malformed sidecar is refused with its position" "bare.csv.meta.json:1:" \
	A summary --input "$E2E_TMP/bare.csv"
expect_fail "an input is required" "missing required option --ridge, --kmeans, --aggregates (or --input)" A report --out x.html
e2e_done
