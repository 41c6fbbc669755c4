#!/bin/sh
# The readable trail (`audit show`, table and JSON lines) and erasure-safe
# retention (`audit erase`): payloads go, leaf hashes, proofs and
# verification stay, and an unlogged erasure is caught.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 200 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
PUB=$D/keys/gateway/sign.pub
KEY=$D/keys/gateway/sign.key

"$CROSSGATE" audit show --db "$DB" >"$E2E_TMP/t" 2>&1
check "show exits 0" [ $? -eq 0 ]
check "show has a header" grep -q "^time  *seq  actor  *action  *outcome  *purpose  *counts  *policy  *partner  *reason" "$E2E_TMP/t"
eq "show prints one line per event" "$(($(wc -l <"$E2E_TMP/t") - 1))" "$(sql "$DB" "SELECT count(*) FROM audit_events")"
check "show prints ISO 8601 UTC times" grep -qE "^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z +0  operator  *keygen" "$E2E_TMP/t"
check "show prints the export's purpose and the mechanism's figures (none about people)" \
	grep -qE " [0-9]+  analyst +export +ok +analytics +rho_nano=[0-9]+,synthetic_rows=[0-9]+,columns=11,edges=10 " "$E2E_TMP/t"
check "show prints the short policy hash and partner" grep -qE " [0-9]+  gateway +ingest +ok +- +records=[0-9]+\S* +[0-9a-f]{12} +k " "$E2E_TMP/t"

"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/j" 2>&1
check "jsonl exits 0" [ $? -eq 0 ]
python3 - "$E2E_TMP/j" "$DB" <<'PY' && ok "jsonl is one JSON object per event with the trail's fields" || bad "jsonl content"
import json, sqlite3, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n = sqlite3.connect(sys.argv[2]).execute("SELECT count(*) FROM audit_events").fetchone()[0]
assert len(rows) == n, (len(rows), n)
assert [r["seq"] for r in rows] == list(range(n))
for r in rows:
    for k in ("time", "time_unix", "actor", "action", "outcome"):
        assert k in r, k
    assert r["time"].endswith("Z") and "T" in r["time"]
ex = [r for r in rows if r["action"] == "export"][0]
assert ex["purpose"] == "analytics" and "rho_nano" in ex["counts"] and len(ex["policy_hash"]) == 64
assert not set(ex["counts"]) & {"matched", "no_consent", "candidates", "exported", "suppressed"}, ex["counts"]
kg = [r for r in rows if r["action"] == "keygen"][0]
assert len(kg["key_ids"]) == 3
PY
"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/all" 2>&1
count() { python3 -c 'import json, sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get(sys.argv[2]) == sys.argv[3]))' "$E2E_TMP/all" "$1" "$2"; }
"$CROSSGATE" audit show --db "$DB" --format jsonl --type ingest >"$E2E_TMP/j" 2>&1
eq "--type filters by action" "$(wc -l <"$E2E_TMP/j")" "$(count action ingest)"
check "there are ingest events" [ "$(count action ingest)" -ge 2 ]
"$CROSSGATE" audit show --db "$DB" --format jsonl --actor analyst >"$E2E_TMP/j" 2>&1
eq "--actor filters by actor" "$(wc -l <"$E2E_TMP/j")" "$(count actor analyst)"
"$CROSSGATE" audit show --db "$DB" --since 2099-01-01 >"$E2E_TMP/t" 2>&1
eq "--since filters by time" "$(wc -l <"$E2E_TMP/t")" 1
"$CROSSGATE" audit show --db "$DB" --since 2000-01-01T00:00:00Z --format jsonl >"$E2E_TMP/j" 2>&1
eq "--since in the past keeps everything" "$(wc -l <"$E2E_TMP/j")" "$(sql "$DB" "SELECT count(*) FROM audit_events")"
expect_fail "a bad --since is a usage error" "time 'yesterday' is not YYYY-MM-DD" \
	"$CROSSGATE" audit show --db "$DB" --since yesterday
expect_fail "a bad --format is a usage error" "--format must be table or jsonl" \
	"$CROSSGATE" audit show --db "$DB" --format xml
expect_fail "show of a missing database fails" "cannot open database" \
	"$CROSSGATE" audit show --db "$E2E_TMP/nope.db"
expect_fail "an unknown audit command is a usage error" "unknown audit command 'frob'" \
	"$CROSSGATE" audit frob
"$CROSSGATE" audit --help | grep -q "verify-proof" && ok "audit --help lists the commands" || bad "audit --help"
for c in verify checkpoint prove verify-proof show witness-keygen cosign erase; do
	check "crossgate audit $c --help" sh -c "'$CROSSGATE' audit $c --help | grep -q usage"
done

# --- erasure ---
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp" >/dev/null 2>&1
n=$(sql "$DB" "SELECT count(*) FROM audit_events")
"$CROSSGATE" audit erase --db "$DB" --key "$KEY" --seq 1-2 >"$E2E_TMP/o" 2>&1
check "erase by seq" grep -q "erased the payloads of 2 events (leaf hashes kept); logged as event $n" "$E2E_TMP/o"
eq "the payloads are gone" "$(sql "$DB" "SELECT count(*) FROM audit_events WHERE length(event) = 0")" 2
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/cp" >"$E2E_TMP/o" 2>&1
check "the log still verifies, --since included" [ $? -eq 0 ]
check "verify reports the erased events" grep -q "erased: 2 events" "$E2E_TMP/o"
"$CROSSGATE" audit show --db "$DB" >"$E2E_TMP/t" 2>&1
check "show marks erased events" grep -q " 1  (erased" "$E2E_TMP/t"
check "show lists the erasure" grep -qE " $n  operator +audit-erase +ok +- +erased=2,from=1,to=3" "$E2E_TMP/t"
"$CROSSGATE" audit prove --db "$DB" --event 2 --out "$E2E_TMP/p2" >/dev/null 2>&1
"$CROSSGATE" audit verify-proof "$E2E_TMP/p2" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "an erased event is still proven, by its leaf hash" grep -q "payload was erased for retention: proven by its leaf hash" "$E2E_TMP/o"
"$CROSSGATE" audit erase --db "$DB" --key "$KEY" --before 2000-01-01 >"$E2E_TMP/o" 2>&1
check "nothing older than 2000 to erase" grep -q "nothing to erase" "$E2E_TMP/o"
"$CROSSGATE" audit erase --db "$DB" --key "$KEY" --before 2099-01-01 >"$E2E_TMP/o" 2>&1
check "erase by time takes the rest but the erase event" grep -q "erased the payloads of $((n - 2)) events" "$E2E_TMP/o"
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/cp" >"$E2E_TMP/o" 2>&1
check "still verifies after erasing everything erasable" grep -q "erased: $n events" "$E2E_TMP/o"
expect_fail "erase needs one of --before and --seq" "give one of --before or --seq" \
	"$CROSSGATE" audit erase --db "$DB" --key "$KEY"
expect_fail "erase --seq needs a range" "--seq must be FROM-TO with FROM <= TO" \
	"$CROSSGATE" audit erase --db "$DB" --key "$KEY" --seq 5-2
expect_fail "erase needs the signing key" "missing required option --key" \
	"$CROSSGATE" audit erase --db "$DB" --seq 1-2

# Erasure that is not the logged one is caught.
t() {
	what=$1; msg=$2; q=$3
	rm -rf "$E2E_TMP/t.db"*
	cp "$DB" "$E2E_TMP/t.db"
	sql "$E2E_TMP/t.db" "$q"
	expect_fail "$what" "$msg" "$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB"
}
t "an erased event whose leaf hash changed is caught" "event 1 (erased) does not match the signed checkpoint at size 2: its stored leaf hash was changed" \
	"UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 1"
t "an erasure record pointing backwards is caught" "event 0 is erased by event 0, which is not a later one" \
	"UPDATE audit_erased SET erase_event = 0 WHERE seq = 0"
t "an emptied event without its erasure record is caught" "event 3 says it is event 0 (moved)" \
	"DELETE FROM audit_erased WHERE seq = 3"
t "an erasure the erase events do not account for is caught" "audit-erase event $n says it erased 2 events in [1, 3), but 1 events in [2, 3) are marked erased by it" \
	"UPDATE audit_erased SET erase_event = $((n + 1)) WHERE seq = 1"
e2e_done
