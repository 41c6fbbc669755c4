#!/bin/sh
# Tampering with the audit log must be caught, naming the first bad event.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 300 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
# a few more events so there is a middle to tamper with
for i in 1 2 3; do
	"$CROSSGATE" gateway ingest --db "$D/gateway.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
		"$D/batches/k.batch" >/dev/null 2>&1
done
PUB=$D/keys/gateway/sign.pub
n=$(sql "$D/gateway.db" "SELECT count(*) FROM audit_events")
check "the log has events to tamper with" [ "$n" -ge 8 ]
"$CROSSGATE" audit verify --db "$D/gateway.db" --pub "$PUB" >"$E2E_TMP/v.out" 2>&1
check "an untouched log verifies" [ $? -eq 0 ]
check "verify prints the event count" grep -q "audit log ok: $n events, $n signed checkpoints" "$E2E_TMP/v.out"

tamper() {
	what=$1; msg=$2; script=$3
	cp "$D/gateway.db" "$E2E_TMP/t.db"
	python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
exec(sys.argv[2])
db.commit()
" "$E2E_TMP/t.db" "$script"
	expect_fail "$what" "$msg" "$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB"
}

tamper "one changed byte in event 3 is caught" "event 3 does not match the signed checkpoint at size 4" '
b = bytearray(db.execute("SELECT event FROM audit_events WHERE seq=3").fetchone()[0])
b[-1] ^= 1
db.execute("UPDATE audit_events SET event=? WHERE seq=3", (bytes(b),))'
tamper "a removed event is caught" "event 2 is missing" '
db.execute("DELETE FROM audit_events WHERE seq=2")'
tamper "two swapped events are caught" "event 1 says it is event 2 (moved)" '
a = db.execute("SELECT event FROM audit_events WHERE seq=1").fetchone()[0]
b = db.execute("SELECT event FROM audit_events WHERE seq=2").fetchone()[0]
db.execute("UPDATE audit_events SET event=? WHERE seq=1", (b,))
db.execute("UPDATE audit_events SET event=? WHERE seq=2", (a,))'
# An appended copy of the last event, its seq field (protobuf field 1, a
# one-byte varint here) rewritten so that it claims its new place.
tamper "an inserted event is caught" "no signed checkpoint for size" '
n = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
e, l = db.execute("SELECT event, leaf FROM audit_events WHERE seq=?", (n - 1,)).fetchone()
assert e[0] == 0x08 and e[1] == n - 1 < 127
e = bytes([0x08, n]) + e[2:]
db.execute("INSERT INTO audit_events(seq, event, leaf) VALUES (?, ?, ?)", (n, e, l))'
tamper "events removed from the end are caught" "events were removed from the end" '
n = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
db.execute("DELETE FROM audit_events WHERE seq=?", (n - 1,))'
tamper "an altered checkpoint signature is caught" "checkpoint at size 2" '
t = db.execute("SELECT note FROM audit_checkpoints WHERE size=2").fetchone()[0]
i = t.rindex(" ") + 5
t = t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:]
db.execute("UPDATE audit_checkpoints SET note=? WHERE size=2", (t,))'
tamper "a checkpoint with another root is caught" "checkpoint at size 3" '
t = db.execute("SELECT note FROM audit_checkpoints WHERE size=3").fetchone()[0]
lines = t.split("\n")
lines[2] = "A" * 43 + "="
db.execute("UPDATE audit_checkpoints SET note=? WHERE size=3", ("\n".join(lines),))'
tamper "a deleted checkpoint is caught" "no signed checkpoint for size 5" '
db.execute("DELETE FROM audit_checkpoints WHERE size=5")'
tamper "a checkpoint re-signed with another key is caught" "checkpoint at size 1" '
t = db.execute("SELECT note FROM audit_checkpoints WHERE size=1").fetchone()[0]
db.execute("UPDATE audit_checkpoints SET note=? WHERE size=1", (t.replace("crossgate/gateway/", "crossgate/gateway/0"),))'

# Verification needs only the public key, and refuses the wrong one.
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/other" >/dev/null 2>&1
expect_fail "verification with another gateway's key fails" "checkpoint at size 1" \
	"$CROSSGATE" audit verify --db "$D/gateway.db" --pub "$E2E_TMP/other/sign.pub"
expect_fail "verification of a missing database fails" "cannot open database" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/nope.db" --pub "$PUB"

# Audit events hold no identifier, token or feature value.
sql "$D/gateway.db" "SELECT hex(email_token) FROM records WHERE email_token IS NOT NULL LIMIT 200" >"$E2E_TMP/tok"
python3 - "$D/gateway.db" "$E2E_TMP/tok" <<'PY' && ok "audit events carry no token, email or category" || bad "audit events leak data"
import re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
blob = b"".join(r[0] for r in db.execute("SELECT event FROM audit_events"))
for h in open(sys.argv[2]).read().split():
    assert bytes.fromhex(h) not in blob
# (digests and signatures are random bytes: look for whole addresses and words, not single bytes)
assert not re.search(rb"[a-z0-9._+-]{2,}@[a-z0-9-]+\.[a-z]{2,}", blob)
for word in (b"programming", b"strategy", b"moba", b"CN-BJ", b"CN-SH", b"CN-GD"):
    assert word not in blob
PY
e2e_done
