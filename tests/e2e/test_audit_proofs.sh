#!/bin/sh
# Inclusion proofs, saved checkpoints and `verify --since`: an auditor with
# only the gateway's public key and a checkpoint kept earlier catches a log
# that was changed, cut or rewritten, even when every checkpoint was re-signed
# with the gateway's real key.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 200 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
PUB=$D/keys/gateway/sign.pub
KEY=$D/keys/gateway/sign.key
more() {
	for i in 1 2 3; do
		"$CROSSGATE" gateway ingest --db "$1" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
			"$D/batches/k.batch" >/dev/null 2>&1
	done
}
more "$DB"
# (the demo's own events may change: sizes and seqs below are read, not assumed)
N=$(sql "$DB" "SELECT count(*) FROM audit_events")
check "the log has events to tamper with" [ "$N" -ge 8 ]
EX=$("$CROSSGATE" audit show --db "$DB" --type export --format jsonl | head -1 |
	python3 -c "import json,sys; print(json.load(sys.stdin)['seq'])")

# --- saved checkpoints ---
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp8" >"$E2E_TMP/o" 2>&1
check "audit checkpoint saves the latest checkpoint" grep -q "saved the checkpoint at size $N" "$E2E_TMP/o"
eq "the saved checkpoint is the signed note for size $N" "$(sed -n 2p "$E2E_TMP/cp8")" "$N"
more "$DB"
N2=$((N + 3))
"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/cp8" >"$E2E_TMP/o" 2>&1
check "verify --since accepts a log that only grew" [ $? -eq 0 ]
check "verify --since says so" grep -q "consistent: the log extends the saved checkpoint at size $N (3 events since)" "$E2E_TMP/o"
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/other" >/dev/null 2>&1
expect_fail "a saved checkpoint checked with another gateway's key is refused" \
	"checkpoint at size 1: not signed by gateway key" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$E2E_TMP/other/sign.pub" --since "$E2E_TMP/cp8"
cp "$E2E_TMP/cp8" "$E2E_TMP/cp8-bad"
# the root's first character changed, whatever it was
python3 -c "
import sys
l = open(sys.argv[1]).read().split('\\n')
l[2] = ('B' if l[2][0] == 'A' else 'A') + l[2][1:]
open(sys.argv[1], 'w').write('\\n'.join(l))" "$E2E_TMP/cp8-bad"
expect_fail "a saved checkpoint with a changed root is refused" "saved checkpoint $E2E_TMP/cp8-bad: checkpoint at size $N: not signed by gateway key" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/cp8-bad"
expect_fail "a missing saved checkpoint is refused" "cannot read saved checkpoint" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$PUB" --since "$E2E_TMP/nope"
expect_fail "checkpoint needs --out" "missing required option --out" "$CROSSGATE" audit checkpoint --db "$DB"

# --- inclusion proofs ---
"$CROSSGATE" audit prove --db "$DB" --event "$EX" --out "$E2E_TMP/p3" >"$E2E_TMP/o" 2>&1
check "audit prove writes a proof" grep -q "wrote the inclusion proof of event $EX" "$E2E_TMP/o"
"$CROSSGATE" audit verify-proof "$E2E_TMP/p3" --pub "$PUB" >"$E2E_TMP/o" 2>&1
check "verify-proof accepts it with only the public key" [ $? -eq 0 ]
check "verify-proof names the event and the tree" grep -q "proof ok: event $EX is in the log crossgate/gateway/.* of $N2 events" "$E2E_TMP/o"
check "verify-proof shows the event" grep -q " $EX  analyst *export" "$E2E_TMP/o"
expect_fail "another gateway's key refuses the proof" "proof verification FAILED: proof: checkpoint at size $N2: not signed by gateway key" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3" --pub "$E2E_TMP/other/sign.pub"
# Proof files are protobuf: change bytes the way an editor of the file would.
proof_edit() {
	python3 - "$E2E_TMP/p3" "$E2E_TMP/p3x" "$1" "$EX" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
what = sys.argv[3]
def fields(b):
    # (field number, value offset, value length) of each top-level field
    i, out = 0, []
    while i < len(b):
        tag = b[i]; i += 1
        if tag & 7 == 0:
            j = i
            while b[i] & 0x80: i += 1
            i += 1; out.append((tag >> 3, j, i - j))
        else:
            n = s = 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
                if not c & 0x80: break
            out.append((tag >> 3, i, n)); i += n
    return out
f = fields(b)
if what == "event":      # a byte inside the event bytes (field 3)
    o = [x for x in f if x[0] == 3][0]
    b[o[1] + 3] ^= 1
elif what == "hash":     # a byte of the last proof hash (field 6)
    o = [x for x in f if x[0] == 6][-1]
    b[o[1] + 10] ^= 1
elif what == "truncate":
    b = b[: len(b) // 2]
elif what == "index":    # index EX -> EX + 2 (a one-byte varint)
    i = b.index(bytes([0x10, int(sys.argv[4])]))
    b[i + 1] += 2
open(sys.argv[2], "wb").write(bytes(b))
PY
}
proof_edit event
expect_fail "a changed event byte in a proof is caught" "leaf hash does not match the event bytes" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3x" --pub "$PUB"
proof_edit hash
expect_fail "a changed proof hash is caught" "is not in the tree the checkpoint signs" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3x" --pub "$PUB"
proof_edit truncate
expect_fail "a truncated proof file is refused" "proof verification FAILED: proof file" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3x" --pub "$PUB"
proof_edit index
expect_fail "a proof moved to another index is caught" "the event says it is event $EX, not $((EX + 2))" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3x" --pub "$PUB"
expect_fail "prove refuses an event beyond the log" "event 99 is not in the log (it holds $N2 events)" \
	"$CROSSGATE" audit prove --db "$DB" --event 99 --out "$E2E_TMP/p99"
expect_fail "prove needs a number" "--event must be an event number" \
	"$CROSSGATE" audit prove --db "$DB" --event x --out "$E2E_TMP/p99"
expect_fail "verify-proof needs a file" "cannot read proof" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/nope" --pub "$PUB"

# --- tampering, caught by verify --since ---
# Each case edits a copy of the log; with RESIGN=1 the operator then rebuilds
# the leaf hashes, tree nodes and every checkpoint and signs them all with the
# gateway's real key, so that plain `verify` passes and only --since can tell.
cat >"$E2E_TMP/rewrite.py" <<'PY'
import base64, hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); keyfile = sys.argv[2]; op = sys.argv[3]; resign = sys.argv[4] == "1"
evs = [bytes(r[0]) for r in db.execute("SELECT event FROM audit_events ORDER BY seq")]

def varint(x):
    out = b""
    while True:
        if x < 0x80:
            return out + bytes([x])
        out += bytes([(x & 0x7f) | 0x80]); x >>= 7

def reseq(e, seq):
    # protobuf-c writes field 1 (seq) first when it is not 0
    if e and e[0] == 0x08:
        i = 1
        while e[i] & 0x80: i += 1
        e = e[i + 1:]
    return (b"\x08" + varint(seq) if seq else b"") + e

def actor_at(e):
    # offset of the actor string (field 3) in an event: walk the wire format
    i = 0
    while i < len(e):
        tag = e[i]; i += 1
        if tag & 7 == 0:
            while e[i] & 0x80: i += 1
            i += 1
        elif tag & 7 == 2:
            n = e[i]; i += 1
            if tag >> 3 == 3: return i
            i += n
    raise SystemExit("no actor")
if op == "byte":
    e = bytearray(evs[3]); e[actor_at(e)] ^= 0x20; evs[3] = bytes(e)
elif op == "drop":
    del evs[2]
elif op == "swap":
    evs[1], evs[2] = evs[2], evs[1]
elif op == "truncate":
    evs = evs[:5]
if resign:
    evs = [reseq(e, i) for i, e in enumerate(evs)]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    line = [l for l in open(keyfile) if l.strip() and not l.startswith("#")][0].split()
    sk = base64.b64decode(line[2]); priv = Ed25519PrivateKey.from_private_bytes(sk[:32]); pub = sk[32:]
    origin = "crossgate/gateway/" + line[1]
    kid = hashlib.sha256(origin.encode() + b"\n\x01" + pub).digest()[:4]
    H = lambda b: hashlib.sha256(b).digest()
    for t in ("audit_events", "audit_checkpoints", "audit_nodes", "audit_spans", "audit_erased", "audit_cosignatures"):
        db.execute("DELETE FROM " + t)
    stack = []  # (level, hash) of the right edge
    for seq, e in enumerate(evs):
        leaf = H(b"\x00" + e)
        db.execute("INSERT INTO audit_events(seq, event, leaf) VALUES (?, ?, ?)", (seq, e, leaf))
        cur, lvl = leaf, 0
        while stack and stack[-1][0] == lvl:
            cur = H(b"\x01" + stack.pop()[1] + cur); lvl += 1
            db.execute("INSERT INTO audit_nodes(id, hash) VALUES (?, ?)", ((seq + 1) * 64 + lvl, cur))
        stack.append((lvl, cur))
        root = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            root = H(b"\x01" + h + root)
        body = "%s\n%d\n%s\n" % (origin, seq + 1, base64.b64encode(root).decode())
        sig = priv.sign(body.encode())
        note = body + "\n\u2014 " + origin + " " + base64.b64encode(kid + sig).decode() + "\n"
        db.execute("INSERT INTO audit_checkpoints(size, note) VALUES (?, ?)", (seq + 1, note))
else:
    n0 = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    if op == "byte":
        db.execute("UPDATE audit_events SET event=? WHERE seq=3", (evs[3],))
    elif op == "drop":
        db.execute("DELETE FROM audit_events WHERE seq=2")
    elif op == "swap":
        db.execute("UPDATE audit_events SET event=? WHERE seq=1", (evs[1],))
        db.execute("UPDATE audit_events SET event=? WHERE seq=2", (evs[2],))
    elif op == "truncate":
        db.execute("DELETE FROM audit_events WHERE seq >= 5")
        db.execute("DELETE FROM audit_checkpoints WHERE size > 5")
db.commit()
PY
python3 -c "import cryptography.hazmat.primitives.asymmetric.ed25519" 2>/dev/null
check "python3 cryptography is there to re-sign a log (Debian python3-cryptography)" [ $? -eq 0 ]
tamper() {
	what=$1; op=$2; resign=$3; msg=$4
	rm -rf "$E2E_TMP/t.db"*
	cp "$DB" "$E2E_TMP/t.db"
	python3 "$E2E_TMP/rewrite.py" "$E2E_TMP/t.db" "$KEY" "$op" "$resign" || { bad "$what: rewrite failed"; return; }
	if [ "$resign" = 1 ]; then
		"$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB" >"$E2E_TMP/o" 2>&1
		check "$what: the re-signed log passes plain verify" [ $? -eq 0 ]
	fi
	expect_fail "$what: caught by verify --since" "$msg" \
		"$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB" --since "$E2E_TMP/cp8"
}
tamper "one changed byte" byte 0 "event 3 does not match the signed checkpoint at size 4"
tamper "a dropped event" drop 0 "event 2 is missing"
tamper "two swapped events" swap 0 "event 1 says it is event 2 (moved)"
tamper "a truncated log" truncate 0 "the log holds 5 events but the saved checkpoint is for $N"
tamper "one changed byte, re-signed with the real key" byte 1 "does not extend the saved checkpoint at size $N"
tamper "a dropped event, re-signed" drop 1 "does not extend the saved checkpoint at size $N"
tamper "two swapped events, re-signed" swap 1 "does not extend the saved checkpoint at size $N"
tamper "a truncated log, re-signed" truncate 1 "the log holds 5 events but the saved checkpoint is for $N: the log was truncated or rolled back"
# Truncated, then regrown past the saved size by the real gateway.
rm -rf "$E2E_TMP/t.db"*
cp "$DB" "$E2E_TMP/t.db"
python3 "$E2E_TMP/rewrite.py" "$E2E_TMP/t.db" "$KEY" truncate 1
# regrow it past the saved size, whatever the demo's own events were
while [ "$(sql "$E2E_TMP/t.db" "SELECT count(*) FROM audit_events")" -lt "$N" ]; do more "$E2E_TMP/t.db"; done
"$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB" >/dev/null 2>&1
check "a truncated and regrown log passes plain verify" [ $? -eq 0 ]
expect_fail "a truncated and regrown log is caught by verify --since" "does not extend the saved checkpoint at size $N" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/t.db" --pub "$PUB" --since "$E2E_TMP/cp8"
# The same offline, from a consistency proof file and the saved checkpoint: no database needed.
"$CROSSGATE" audit prove --db "$E2E_TMP/t.db" --consistency "$N" --out "$E2E_TMP/cons-t" >/dev/null 2>&1 ||
	bad "prove --consistency on the regrown log"
check "alone, the regrown log's consistency proof holds (it is signed)" \
	sh -c "'$CROSSGATE' audit verify-proof '$E2E_TMP/cons-t' --pub '$PUB' >/dev/null"
expect_fail "with the saved checkpoint it is caught" \
	"the proof starts from a tree of $N events that is not the saved checkpoint's ($N events, $E2E_TMP/cp8): the log was rewritten" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/cons-t" --pub "$PUB" --since "$E2E_TMP/cp8"
"$CROSSGATE" audit prove --db "$DB" --consistency "$N" --out "$E2E_TMP/cons" >"$E2E_TMP/o" 2>&1
check "prove --consistency writes a file" grep -q "wrote the consistency proof from tree size $N to the latest" "$E2E_TMP/o"
"$CROSSGATE" audit verify-proof "$E2E_TMP/cons" --pub "$PUB" --since "$E2E_TMP/cp8" >"$E2E_TMP/o" 2>&1
check "the real log's consistency proof from the saved checkpoint verifies" \
	grep -q "proof ok: the log .* of $N2 events extends its tree of $N events" "$E2E_TMP/o"
expect_fail "another gateway's key refuses it" "the old checkpoint at size $N: not signed by gateway key" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/cons" --pub "$E2E_TMP/other/sign.pub"
python3 - "$E2E_TMP/cons" "$E2E_TMP/cons-bad" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(bytes([0x22, 0x20]))      # field 4 (hashes), 32 bytes: the first proof hash
b[i + 2] ^= 1
open(sys.argv[2], "wb").write(b)
PY
expect_fail "a changed proof hash is caught" "the tree of size $N2 does not extend the tree of size $N" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/cons-bad" --pub "$PUB"
expect_fail "sizes out of order are a usage error" "--consistency and --to must be tree sizes, 0 < OLD <= NEW" \
	"$CROSSGATE" audit prove --db "$DB" --consistency 5 --to 4 --out "$E2E_TMP/x"
expect_fail "a size past the log is refused" "the log has no signed checkpoint of size 99999" \
	"$CROSSGATE" audit prove --db "$DB" --consistency 1 --to 99999 --out "$E2E_TMP/x"
expect_fail "--since does not go with an inclusion proof" "--since goes with a consistency proof file" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/p3" --pub "$PUB" --since "$E2E_TMP/cp8"
# The gateway refuses to grow a log whose stored tree is not the signed one.
rm -rf "$E2E_TMP/t.db"*
cp "$DB" "$E2E_TMP/t.db"
# (the stored interior hashes, which reopening reads instead of rehashing every event)
sql "$E2E_TMP/t.db" "UPDATE audit_nodes SET hash = zeroblob(32)"
expect_fail "appending to a damaged tree is refused" "does not match the signed checkpoint at size $N2; run 'crossgate audit verify'" \
	"$CROSSGATE" gateway ingest --db "$E2E_TMP/t.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" "$D/batches/k.batch"
e2e_done
