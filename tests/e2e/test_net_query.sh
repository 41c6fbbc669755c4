#!/bin/sh
# DP aggregates over mutual TLS: an analyst queries and is charged; a partner
# may not; an overspend is refused with what remains; the answer and its
# provenance match what a local query would write.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
net_setup "$D" 2000
check "network demo exits 0" [ -s "$D/policy.yaml" ]
DB=$E2E_TMP/q.db
cp "$D/gateway.db" "$DB"
net_start "$DB" "$D/policy.yaml" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]

"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/q.csv" --group-by region,k_top_course_category \
	--metric count --metric mean:k_course_spend_cents --rho 0.5 >"$E2E_TMP/q.out" 2>&1
rc=$?
check "the analyst's query succeeds" [ $rc -eq 0 ] || cat "$E2E_TMP/q.out"
# (the demo's own releases: affinity counts, the ridge and k-means statistics and the synthetic rows
# spent 0.9 of the analyst's 2.0)
check "it reports the charge" grep -q "charged rho 0.500000000, 0.600000000 remains" "$E2E_TMP/q.out"
eq "the CSV header" "$(head -1 "$E2E_TMP/q.csv")" "region,k_top_course_category,count,mean_k_course_spend_cents"
python3 - "$E2E_TMP/q.csv" "$E2E_TMP/q.csv.meta.json" <<'PY' && ok "released counts reach the threshold; the provenance names the analyst and charge" || bad "query answer or provenance"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
meta = json.load(open(sys.argv[2]))
assert rows, "no group released"
assert all(int(r["count"]) >= meta["threshold"] for r in rows)
assert meta["analyst"] == "analyst" and meta["rho"] == "0.500000000" and meta["dataset"] == "g+k", meta
assert meta["released"] == len(rows), (meta["released"], len(rows))
PY
check "no spool file is left behind" sh -c "! ls '$DB.spool' 2>/dev/null | grep -q query"

expect_fail "a partner may not query" "role partner, which may not query" \
	"$CROSSGATE" query $(net_client k) --out "$E2E_TMP/k.csv" --metric count
audit_has "a partner may not query" "may not query" "$DB"
expect_fail "an overspend is refused with what remains" "0.600000000 of 2.000000000 remains" \
	"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/big.csv" --metric count --rho 1.6
check "nothing is written for a refused query" [ ! -e "$E2E_TMP/big.csv" ]
expect_fail "a malformed metric is refused" "bad metric" \
	"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/m.csv" --metric "median:x"
# Exports and queries read on a connection of their own: a push commits while they run.
{
	head -1 "$D/data/k_users.csv"
	for i in $(seq 1 50); do echo "nq$i,nq$i@example.org,,30,CN-BJ,match;analytics,2025-01-01,100,10,1,music,500"; done
} >"$E2E_TMP/new.csv"
"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$E2E_TMP/new.csv" --out "$E2E_TMP/new.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" >/dev/null
before=$(sql "$DB" "SELECT count(*) FROM records")
"$CROSSGATE" export $(net_client analyst) --out "$E2E_TMP/x.csv" >"$E2E_TMP/x.out" 2>&1 &
xp=$!
"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/q2.csv" --metric count --group-by age >"$E2E_TMP/q2.out" 2>&1 &
qp=$!
"$CROSSGATE" agent push $(net_client k) --retries 3 "$E2E_TMP/new.batch" >"$E2E_TMP/push.out" 2>&1
check "a push during an export and a query commits" [ $? -eq 0 ]
wait $xp
check "the concurrent export completes" [ $? -eq 0 ]
check "... a synthetic release charged to the same budget" grep -q "synthetic rows for 'analytics' (DP, MST); charged rho 0.100000000" "$E2E_TMP/x.out"
wait $qp
check "the concurrent query completes" [ $? -eq 0 ]
eq "the pushed records are stored" "$(sql "$DB" "SELECT count(*) FROM records")" "$((before + 50))"
net_stop
check "the server stops cleanly" [ $? -eq 0 ]
"$CROSSGATE" budget --db "$DB" --policy "$D/policy.yaml" >"$E2E_TMP/b" 2>&1
# 0.9 by the demo, 0.5 and 0.05 by the queries here, 0.1 by the concurrent release: one ledger
check "budget shows the spend" grep -qE "^analyst +g\+k +1\.550000000 +2\.000000000 +0\.450000000" "$E2E_TMP/b"
check "the charge is an audit event" sh -c "'$CROSSGATE' audit show --db '$DB' --type budget-charge --format jsonl | grep -q rho_nano"
check "the overspend is an audit event" sh -c "'$CROSSGATE' audit show --db '$DB' --type budget-refused --format jsonl | grep -q remaining_nano"
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the audit log verifies" [ $? -eq 0 ]
e2e_done
