#!/bin/sh
# The gateway over mutual TLS refuses what it must, each refusal with its
# error and its audit event, while a good client's push still succeeds.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
PY="python3 tests/e2e/net_client.py"

net_setup "$D" 400
check "network demo exits 0" [ $? -eq 0 ]
eq "the demo ran over the network" "$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['mode'], d['gateway_exit'], d['audit_verified'], d['pushed_records'] == d['k_packed'] + d['g_packed'])" "$E2E_TMP/demo.json")" "network 0 True True"

# short timeouts and a heartbeat every second, so that the slow cases finish quickly; no
# retention, whose purges (with every heartbeat) would erase some of the demo's older records.
# Every client here shares 127.0.0.1, and this test makes it fail on purpose: no per-source limit
# and no penalties, and room for the 21 silent connections below (test_net_flood.sh tests those).
P=$D/net.yaml
net_policy "$D/policy.yaml" "$P" 's/handshake_timeout: 5/handshake_timeout: 2/' 's/read_timeout: 30/read_timeout: 2/' \
	's/max_startups: "16:30:32"/max_startups: "40:30:48"/' 's/per_source_max: 8 /per_source_max: 0 /' \
	's/penalty_max: 600 /penalty_max: 0 /' \
	's/idle_timeout: 60/idle_timeout: 3/' 's/heartbeat_interval: 300/heartbeat_interval: 1/' \
	's/retention_days: 1095/retention_days: 36500/'
mkdir -p "$E2E_TMP/b"
for p in k g; do
	"$CROSSGATE" agent pack --policy "$P" --partner "$p" --input "$D/data/$( [ $p = k ] && echo k_users || echo g_viewers).csv" \
		--out "$E2E_TMP/b/$p.batch" --match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" \
		--gateway-pub "$D/keys/gateway/enc.pub" >/dev/null 2>&1
done
check "batches packed under the test policy" [ -s "$E2E_TMP/b/k.batch" -a -s "$E2E_TMP/b/g.batch" ]
DB=$E2E_TMP/net.db
LOG=$E2E_TMP/gateway.log
net_start "$DB" "$P" "$LOG"
check "gateway listens" [ -n "$NET_PORT" ]

# --- certificates ---------------------------------------------------------------
"$CROSSGATE" pki init --dir "$E2E_TMP/other" --client partner:k >/dev/null
cp "$E2E_TMP/other/k.pem" "$D/pki/otherca.pem"; cp "$E2E_TMP/other/k.key" "$D/pki/otherca.key"
"$CROSSGATE" pki issue --dir "$D/pki" --name kexpired --client crossgate:partner:k --expired >/dev/null
"$CROSSGATE" pki issue --dir "$D/pki" --name stranger --client crossgate:partner:x >/dev/null

$PY nocert "$NET_PORT" "$D/pki/ca.pem" >"$E2E_TMP/o" 2>&1
check "no client certificate: the client is told" grep -q "certificate required" "$E2E_TMP/o"
audit_has "no client certificate" "peer did not return a certificate" "$DB"

expect_fail "a certificate from another CA" "unknown ca" \
	"$CROSSGATE" agent push $(net_client otherca) --retries 0 "$E2E_TMP/b/k.batch"
audit_has "a certificate from another CA" "client certificate rejected: unable to get local issuer certificate" "$DB"

expect_fail "an expired certificate" "certificate expired" \
	"$CROSSGATE" agent push $(net_client kexpired) --retries 0 "$E2E_TMP/b/k.batch"
audit_has "an expired certificate" "client certificate rejected: certificate has expired" "$DB"

expect_fail "a certificate of the CA naming no principal" "the client certificate names no principal of the policy" \
	"$CROSSGATE" agent push $(net_client stranger) --retries 0 "$E2E_TMP/b/k.batch"
audit_has "a certificate naming no principal" "names no principal" "$DB"

# --- roles ------------------------------------------------------------------------
expect_fail "a partner asking for an export" "export refused: principal 'k-agent' has role partner, which may not export" \
	"$CROSSGATE" export $(net_client k) --out "$E2E_TMP/x.csv"
audit_has "a partner asking for an export" "export refused: principal 'k-agent'" "$DB"
check "the refused export wrote nothing" [ ! -e "$E2E_TMP/x.csv" ]

expect_fail "an analyst pushing" "push refused: principal 'analyst' has role analyst, which may not push" \
	"$CROSSGATE" agent push $(net_client analyst) --retries 0 "$E2E_TMP/b/k.batch"
audit_has "an analyst pushing" "push refused: principal 'analyst'" "$DB"

expect_fail "an auditor pushing" "push refused: principal 'auditor' has role auditor" \
	"$CROSSGATE" agent push $(net_client auditor) --retries 0 "$E2E_TMP/b/k.batch"

expect_fail "partner K's certificate pushing G's batch" "principal 'k-agent' (partner 'k') may not push a batch of partner 'g'" \
	"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/b/g.batch"
audit_has "partner K pushing G's batch" "may not push a batch of partner 'g'" "$DB"
eq "G's batch left nothing in the store" "$(sql "$DB" "SELECT count(*) FROM batches WHERE partner = 'g'")" 0

expect_fail "an analyst exporting for a purpose it is not granted" "principal 'analyst' may not export for purpose 'match'" \
	"$CROSSGATE" export $(net_client analyst) --purpose match --out "$E2E_TMP/x.csv"
audit_has "an analyst exporting for a purpose it is not granted" "may not export for purpose 'match'" "$DB"

# --- frames and bytes -----------------------------------------------------------------
$PY bigframe "$NET_PORT" "$D/pki/ca.pem" "$D/pki/k.pem" "$D/pki/k.key" >"$E2E_TMP/o" 2>&1
check "a frame over the limit: an error frame says so" grep -q "frame of 4294967040 bytes is over the limit of 16384 bytes" "$E2E_TMP/o"
audit_has "a frame over the limit" "frame: frame of 4294967040 bytes is over the limit" "$DB"

$PY garbage "$NET_PORT" "$D/pki/ca.pem" >"$E2E_TMP/o" 2>&1
check "garbage before the handshake: the connection is closed" grep -q "b''\|<" "$E2E_TMP/o"
audit_has "garbage before the handshake" "handshake: TLS handshake failed" "$DB"

# --- a slowloris client, while a good push goes through ---------------------------------
$PY slowloris "$NET_PORT" "$D/pki/ca.pem" 20 8 >"$E2E_TMP/slow" 2>&1 &
SLOW=$!
sleep 0.5
t0=$(date +%s.%N)
"$CROSSGATE" agent push $(net_client k) "$E2E_TMP/b/k.batch" >"$E2E_TMP/o" 2>&1
rc=$?
t1=$(date +%s.%N)
check "a good push succeeds while 21 silent connections are open" [ $rc -eq 0 ]
check "the good push was committed" grep -q "committed: [0-9]* records of partner k" "$E2E_TMP/o"
check "the good push did not wait for the silent ones (< 1.5 s)" python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 1.5 else 1)"
"$CROSSGATE" agent push $(net_client g) "$E2E_TMP/b/g.batch" >/dev/null 2>&1
check "G pushes its own batch" [ $? -eq 0 ]
wait $SLOW
check "the server dropped every silent connection after its handshake timeout" grep -q "closed by server: 21 of 21" "$E2E_TMP/slow"
audit_has "slowloris" "handshake: TLS handshake timed out" "$DB"
n=$(grep -c '"event":"refused".*TLS handshake timed out' "$LOG")
check "each silent connection is logged ($n)" [ "$n" -ge 21 ]

# --- the same batch again is a duplicate, counted once ----------------------------------------
"$CROSSGATE" agent push $(net_client k) "$E2E_TMP/b/k.batch" >"$E2E_TMP/o" 2>&1
check "pushing K's batch again is answered duplicate" grep -q "duplicate: already committed" "$E2E_TMP/o"
eq "K's batch is stored once" "$(sql "$DB" "SELECT count(*) FROM batches WHERE partner = 'k'")" 1
eq "the store holds exactly what was pushed" "$(sql "$DB" "SELECT count(*) FROM records")" \
	"$(sql "$DB" "SELECT sum(records) FROM batches")"

# --- a partner's own view: counts only, and only for partners ---------------------------------
"$CROSSGATE" agent stats $(net_client k) >"$E2E_TMP/o" 2>&1
check "partner K asks what the gateway holds for it" \
	grep -q "partner k: $(sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k'") records stored" "$E2E_TMP/o"
check "... per purpose" grep -q "analytics    $(sql "$DB" "SELECT count(*) FROM records WHERE partner = 'k' AND consent_bits & 2") consent" "$E2E_TMP/o"
expect_fail "an analyst asking for a partner's view" "stats refused: principal 'analyst' has role analyst" \
	"$CROSSGATE" agent stats $(net_client analyst)
audit_has "an analyst asking for a partner's view" "stats refused: principal 'analyst'" "$DB"

# --- the analyst and the auditor still work ------------------------------------------------------
"$CROSSGATE" export $(net_client analyst) --purpose analytics --out "$E2E_TMP/export.csv" >"$E2E_TMP/o" 2>&1
check "the analyst pulls the export" [ $? -eq 0 -a -s "$E2E_TMP/export.csv" ]
check "the export is synthetic: the released columns, no pseudonym" grep -q "^age,region,k_" "$E2E_TMP/export.csv"
check "... with its provenance" grep -q '"mechanism": "MST' "$E2E_TMP/export.csv.meta.json"
sleep 1.2
"$CROSSGATE" audit fetch $(net_client auditor) --out "$E2E_TMP/copy.db" >/dev/null 2>&1
check "the auditor fetches the audit log" [ $? -eq 0 ]
"$CROSSGATE" audit verify --db "$E2E_TMP/copy.db" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the fetched copy verifies offline" [ $? -eq 0 ]
check "heartbeats are audit events" [ "$(sql "$E2E_TMP/copy.db" "SELECT count(*) FROM audit_events WHERE instr(event, 'heartbeat') > 0")" -ge 1 ]
check "refusals are in the fetched copy" [ "$(sql "$E2E_TMP/copy.db" "SELECT count(*) FROM audit_events WHERE instr(event, 'refused') > 0")" -ge 10 ]

# --- logs: JSON lines, nothing secret --------------------------------------------------------------
check "every log line is one JSON object" python3 -c "
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line); assert 'time' in o and 'event' in o and 'level' in o
" "$LOG"
check "the log holds no key material, email or token" sh -c "! grep -Eiq 'PRIVATE KEY|@[a-z0-9-]+\\.|[0-9a-f]{64}' '$LOG'"

net_stop
check "SIGTERM: the gateway exits 0" [ $? -eq 0 ]
check "SIGTERM: it said it stopped" grep -q '"event":"stopped"' "$LOG"
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "the gateway's own log verifies" [ $? -eq 0 ]
e2e_done
