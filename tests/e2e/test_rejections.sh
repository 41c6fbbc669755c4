#!/bin/sh
# Bad input gets one clear line saying what and where, and changes nothing
# (a rejected batch adds only its rejection event to the audit log).
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
GW=$D/keys/gateway

state() { sql "$DB" "SELECT (SELECT count(*) FROM records) || '/' || (SELECT count(*) FROM batches)"; }
events() { sql "$DB" "SELECT count(*) FROM audit_events"; }
last_event_rejected() { sql "$DB" "SELECT instr(event, 'rejected') > 0 FROM audit_events ORDER BY seq DESC LIMIT 1"; }

pack() { # pack PARTNER CSV OUT [extra args...]
	p=$1; csv=$2; out=$3; shift 3
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner "$p" --input "$csv" --out "$out" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" "$@"
}

# ingest_rejected "what" "message" BATCH: rejected with one line, state unchanged, one rejection event
ingest_rejected() {
	what=$1; msg=$2; batch=$3
	s0=$(state); e0=$(events)
	expect_fail "$what" "$msg" "$CROSSGATE" gateway ingest --db "$DB" --policy "$D/policy.yaml" --keys "$GW" "$batch"
	eq "$what: one line on stderr" "$(wc -l <"$E2E_TMP/err")" 1
	eq "$what: store unchanged" "$(state)" "$s0"
	eq "$what: exactly one rejection event added" "$(events)" "$((e0 + 1))"
	eq "$what: the event is a rejection" "$(last_event_rejected)" 1
}

# agent_rejected "what" "message" args...: one line, nothing written
agent_rejected() {
	what=$1; msg=$2; shift 2
	rm -f "$E2E_TMP/x.batch"
	expect_fail "$what" "$msg" "$@"
	eq "$what: one line on stderr" "$(wc -l <"$E2E_TMP/err")" 1
	check "$what: no batch written" [ ! -e "$E2E_TMP/x.batch" ]
}

# --- batches the gateway must refuse -----------------------------------------------
# signed by a key the policy does not know
"$CROSSGATE" keygen partner --id k --dir "$E2E_TMP/rogue" >/dev/null
# K's signing_key (the first) replaced by the rogue key
sed "0,/signing_key: \"[^\"]*\"/s||signing_key: \"$(grep -v '^#' "$E2E_TMP/rogue/sign.pub")\"|" "$D/policy.yaml" >"$E2E_TMP/rogue.yaml"
"$CROSSGATE" agent pack --policy "$E2E_TMP/rogue.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/rogue.batch" --match-key "$D/keys/match.key" --sign-key "$E2E_TMP/rogue/sign.key" \
	--gateway-pub "$GW/enc.pub" >/dev/null 2>&1
check "a rogue batch was made" [ -s "$E2E_TMP/rogue.batch" ]
ingest_rejected "batch signed by an unknown key" "signed with unknown key" "$E2E_TMP/rogue.batch"

# sealed to another gateway's key
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/gw2" >/dev/null
"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/other-gw.batch" --match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" \
	--gateway-pub "$E2E_TMP/gw2/enc.pub" >/dev/null 2>&1
ingest_rejected "batch for another gateway key" "sealed to gateway key" "$E2E_TMP/other-gw.batch"

# a fresh, good batch to damage
pack k "$D/data/k_users.csv" "$E2E_TMP/good.batch" >/dev/null 2>&1
size=$(stat -c %s "$E2E_TMP/good.batch")
head -c $((size - 7)) "$E2E_TMP/good.batch" >"$E2E_TMP/trunc.batch"
ingest_rejected "truncated batch" "cut short" "$E2E_TMP/trunc.batch"
head -c $((size / 2)) "$E2E_TMP/good.batch" >"$E2E_TMP/half.batch"
ingest_rejected "batch cut in half" "cut short" "$E2E_TMP/half.batch"
python3 -c "
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 0x10
open(sys.argv[2], 'wb').write(b)" "$E2E_TMP/good.batch" "$E2E_TMP/flip.batch"
ingest_rejected "bit-flipped batch" "does not match its signed digest" "$E2E_TMP/flip.batch"
: >"$E2E_TMP/empty.batch"
ingest_rejected "empty batch file" "empty file" "$E2E_TMP/empty.batch"
head -c 5000 /dev/urandom >"$E2E_TMP/noise.batch"
ingest_rejected "random bytes" "batch" "$E2E_TMP/noise.batch"
# A batch from a partner missing from the policy is refused:
sed 's/^  - id: g$/  - id: h/' "$D/policy.yaml" >"$E2E_TMP/noh.yaml"
s0=$(state)
expect_fail "batch from a partner not in the policy" "partner 'g' is not in the policy" \
	"$CROSSGATE" gateway ingest --db "$DB" --policy "$E2E_TMP/noh.yaml" --keys "$GW" "$D/batches/g.batch"
eq "unknown partner: store unchanged" "$(state)" "$s0"
{ echo "# an amended agreement"; cat "$D/policy.yaml"; } >"$E2E_TMP/amended.yaml"
"$CROSSGATE" agent pack --policy "$E2E_TMP/amended.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/amended.batch" --match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" \
	--gateway-pub "$GW/enc.pub" >/dev/null 2>&1
ingest_rejected "batch packed under another policy" "packed under a different policy" "$E2E_TMP/amended.batch"

# the good batch still goes in afterwards, whole
s0=$(sql "$DB" "SELECT count(*) FROM records")
"$CROSSGATE" gateway ingest --db "$DB" --policy "$D/policy.yaml" --keys "$GW" "$E2E_TMP/good.batch" >"$E2E_TMP/ok.out" 2>&1
check "the undamaged batch is accepted" [ $? -eq 0 ]
n=$(sed -n 's/.*committed \([0-9]*\) records.*/\1/p' "$E2E_TMP/ok.out")
eq "all of its records are in" "$(sql "$DB" "SELECT count(*) FROM records")" "$((s0 + n))"

# --- CSV and policy problems, caught by the agent ---------------------------------
sed '1s/email/mail/' "$D/data/k_users.csv" >"$E2E_TMP/badhdr.csv"
agent_rejected "CSV header that does not fit the schema" "badhdr.csv:1:2: column 'mail' is not in partner 'k''s schema" \
	pack k "$E2E_TMP/badhdr.csv" "$E2E_TMP/x.batch"
python3 - "$D/policy.yaml" "$E2E_TMP/extra.yaml" <<'PY'
import sys
t = open(sys.argv[1]).read()
t = t.replace("      - {name: conversion_value_cents", "      - {name: loyalty_tier, type: int, role: feature}\n      - {name: conversion_value_cents", 1)
open(sys.argv[2], "w").write(t)
PY
agent_rejected "policy naming a column the CSV lacks" "missing column 'loyalty_tier'" \
	"$CROSSGATE" agent pack --policy "$E2E_TMP/extra.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/x.batch" --match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub"
sed 's/role: feature,/role: featur,/' "$D/policy.yaml" >"$E2E_TMP/typo.yaml"
expect_fail "policy check reports an unknown role with its line" "typo.yaml:" "$CROSSGATE" policy check "$E2E_TMP/typo.yaml"
check "policy check reports every problem" [ "$(grep -c "unknown role" "$E2E_TMP/err")" -ge 2 ]
agent_rejected "missing secret key file" "cannot open key file" \
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/x.batch" --match-key "$E2E_TMP/nope.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub"
cp "$D/keys/match.key" "$E2E_TMP/open.key"; chmod 644 "$E2E_TMP/open.key"
agent_rejected "world-readable secret key file" "chmod 600" \
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/x.batch" --match-key "$E2E_TMP/open.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub"
agent_rejected "signing key not the policy's" "is not the one the policy names" \
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--out "$E2E_TMP/x.batch" --match-key "$D/keys/match.key" --sign-key "$E2E_TMP/rogue/sign.key" --gateway-pub "$GW/enc.pub"
agent_rejected "input file missing" "nope.csv" pack k "$E2E_TMP/nope.csv" "$E2E_TMP/x.batch"

# --strict: one bad row and nothing is written
printf 'user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,courses_bought,top_course_category,conversion_value_cents\r\nk1,a@example.com,,30,CN-BJ,match;analytics,2025-01-01,1,1,1,music,1\r\nk2,b@example.com,,abc,CN-BJ,match,2025-01-01,1,1,1,music,1\r\n' >"$E2E_TMP/one-bad.csv"
agent_rejected "--strict refuses a file with a bad row" "one-bad.csv:3:4 (age): not an integer" \
	pack k "$E2E_TMP/one-bad.csv" "$E2E_TMP/x.batch" --strict
pack k "$E2E_TMP/one-bad.csv" "$E2E_TMP/x.batch" >"$E2E_TMP/o" 2>"$E2E_TMP/e"
check "without --strict the good row is packed" grep -q "2 rows read, 1 bad.* 1 records packed" "$E2E_TMP/o"
check "the bad row is reported with line and column" grep -q "one-bad.csv:3:4 (age): not an integer" "$E2E_TMP/e"
check "the report never quotes the value" sh -c "! grep -q abc '$E2E_TMP/e'"

# --help on every command, usage errors exit 2
for c in keygen policy agent gateway export audit demo; do
	check "crossgate $c --help" sh -c "'$CROSSGATE' $c --help | grep -q usage"
done
"$CROSSGATE" export --db "$DB" >/dev/null 2>&1
eq "a missing option is a usage error (exit 2)" "$?" 2
"$CROSSGATE" frobnicate >/dev/null 2>&1
eq "an unknown command is a usage error (exit 2)" "$?" 2

"$CROSSGATE" audit verify --db "$DB" --pub "$GW/sign.pub" >/dev/null 2>&1
check "the audit log still verifies after all the rejections" [ $? -eq 0 ]
e2e_done
