#!/bin/sh
# The analytics core against an independent implementation: scikit-learn's
# Ridge (coefficients, intercept, held-out R^2, the lambda search) and KMeans
# (inertia from a fixed initialisation) on the same rows (the demo's exact joined rows), to
# 1e-6 relative.  Debian's python3-sklearn (setup.sh) runs under /usr/bin/python3.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
PY=/usr/bin/python3

if ! $PY -c 'import sklearn, numpy' 2>/dev/null; then
	bad "scikit-learn is missing: run 'sh setup.sh' (Debian's python3-sklearn)"
	e2e_done
	exit 1
fi

"$CROSSGATE" demo --offline --dir "$D" --users 12000 --seed 11 >/dev/null 2>"$E2E_TMP/demo.err"
check "demo exits 0" [ $? -eq 0 ]
# crossgate releases no exact rows: the row models are checked on the demo's
# exact joined rows, built from its inputs (tests/e2e/rows_from_demo.py).
X=$E2E_TMP/rows.csv
python3 tests/e2e/rows_from_demo.py "$D/data" "$D/policy.yaml" "$X" >/dev/null
check "an export with rows" [ "$(wc -l <"$X")" -gt 1000 ]

"$CROSSGATE" analytics report --input "$X" --format json --out "$E2E_TMP/r.json" >/dev/null
check "report --format json exits 0" [ $? -eq 0 ]
"$CROSSGATE" analytics report --input "$X" --format json --segments 4 --kmeans-init first \
	--out "$E2E_TMP/init.json" >/dev/null
check "report with a fixed k-means initialisation exits 0" [ $? -eq 0 ]

$PY tests/e2e/analytics_sklearn.py "$X" "$E2E_TMP/r.json" "$E2E_TMP/init.json" 4 >"$E2E_TMP/py.out" 2>&1
rc=$?
cat "$E2E_TMP/py.out"
E2E_PASS=$((E2E_PASS + $(grep -c '^ok ' "$E2E_TMP/py.out")))
E2E_FAIL=$((E2E_FAIL + $(grep -c '^FAIL ' "$E2E_TMP/py.out")))
check "the scikit-learn check ran to its end" [ "$rc" -eq 0 ] || grep -q 'analytics_sklearn: [0-9]* failed' "$E2E_TMP/py.out"

# A second seed and a different k, so that a lucky match cannot pass for both.
"$CROSSGATE" analytics report --input "$X" --format json --segments 6 --kmeans-init first \
	--seed 5 --out "$E2E_TMP/init6.json" >/dev/null
$PY tests/e2e/analytics_sklearn.py "$X" "$E2E_TMP/r.json" "$E2E_TMP/init6.json" 6 >"$E2E_TMP/py6.out" 2>&1
check "k = 6 from the first rows matches scikit-learn too" [ $? -eq 0 ]
grep '^FAIL' "$E2E_TMP/py6.out"
e2e_done
