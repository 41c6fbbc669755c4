#!/bin/sh
# Rotation of the gateway's signing key: the rotation is an audit event with
# both public keys and ids, signed into a checkpoint by the old key; later
# checkpoints are signed by the new key; an auditor holding only the first
# public key still verifies everything (verify, --since, proofs, witnesses);
# the old key can no longer append; a checkpoint by a key that no verified
# rotation announced is refused, with a message saying so.
. tests/e2e/lib.sh
D=$E2E_TMP/demo
"$CROSSGATE" demo --dir "$D" --users 200 --json >/dev/null 2>&1
check "demo exits 0" [ $? -eq 0 ]
DB=$D/gateway.db
K=$D/keys/gateway
FIRST=$E2E_TMP/first.pub
cp "$K/sign.pub" "$FIRST"
OLD_ID=$(awk '!/^#/ {print $2}' "$K/sign.pub")
ingest() { # ingest KEYDIR
	"$CROSSGATE" gateway ingest --db "$DB" --policy "$D/policy.yaml" --keys "$1" "$D/batches/k.batch"
}
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp0" >/dev/null 2>&1
"$CROSSGATE" audit prove --db "$DB" --event 1 --out "$E2E_TMP/p-before" >/dev/null 2>&1
N0=$(sql "$DB" "SELECT count(*) FROM audit_events")

expect_fail "--rotate needs the database" "missing required option --db" "$CROSSGATE" keygen gateway --rotate --dir "$K"
"$CROSSGATE" keygen gateway --rotate --dir "$K" --db "$DB" >"$E2E_TMP/o" 2>&1
check "keygen --rotate succeeds" [ $? -eq 0 ]
NEW_ID=$(awk '!/^#/ {print $2}' "$K/sign.pub")
check "the signing key changed" [ -n "$NEW_ID" ] && [ "$NEW_ID" != "$OLD_ID" ]
check "it names both keys" grep -q "rotated from $OLD_ID to $NEW_ID (audit event $N0" "$E2E_TMP/o"
eq "the old secret key is kept, private" "$(stat -c %a "$K/sign-$OLD_ID.key")" 600
check "the old public key is kept" cmp -s "$K/sign-$OLD_ID.pub" "$FIRST"
eq "the new secret key is private" "$(stat -c %a "$K/sign.key")" 600
check "no staged key file is left" [ ! -e "$K/sign-$NEW_ID.key" ]
# The event: both ids and public key lines, nothing secret.
"$CROSSGATE" audit show --db "$DB" --type key-rotate --format jsonl >"$E2E_TMP/rot.jsonl" 2>&1
eq "one key-rotate event" "$(wc -l <"$E2E_TMP/rot.jsonl")" 1
check "it carries both key ids" grep -q "\"key_ids\":\[\"$OLD_ID\",\"$NEW_ID\"\]" "$E2E_TMP/rot.jsonl"
check "it carries the new public key line" grep -qF "$(awk '!/^#/' "$K/sign.pub")" "$E2E_TMP/rot.jsonl"
check "no secret key material in it" sh -c "! grep -q secret '$E2E_TMP/rot.jsonl'"
R=$(sql "$DB" "SELECT seq FROM audit_keys")
eq "the rotation is event $N0" "$R" "$N0"
NOTE=$(sql "$DB" "SELECT note FROM audit_checkpoints WHERE size = $((R + 1))")
# Both keys sign under the log's origin (C2SP: key name = origin); their key ids tell them apart.
sigids() { # sigids NOTE_FILE KEY.pub...: for each key with a signature line in the note, its id and the line's name
	python3 - "$OLD_ID" "$@" <<'EOF'
import base64, hashlib, sys
note = open(sys.argv[2], encoding="utf-8").read()
sigs = [l.split(" ") for l in note[note.index("\n\n") + 2:].split("\n") if l]
for path in sys.argv[3:]:
    _, kid, b64 = [l for l in open(path) if not l.startswith("#")][0].split()
    for name in ("crossgate/gateway/" + sys.argv[1], "crossgate/gateway/" + kid):
        want = hashlib.sha256(name.encode() + b"\n\x01" + base64.b64decode(b64)).digest()[:4]
        if any(s[1] == name and base64.b64decode(s[2])[:4] == want for s in sigs):
            print(kid, name)
            break
EOF
}
printf '%s\n' "$NOTE" >"$E2E_TMP/rot.note"
eq "its checkpoint is signed by the old and the new key, both under the origin" \
	"$(sigids "$E2E_TMP/rot.note" "$FIRST" "$K/sign.pub" | tr '\n' ' ')" \
	"$OLD_ID crossgate/gateway/$OLD_ID $NEW_ID crossgate/gateway/$OLD_ID "

# The gateway goes on with the new key; the auditor still has only the first one.
ingest "$K" >/dev/null 2>&1
check "the gateway appends with the new key" [ $? -eq 0 ]
sql "$DB" "SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1" >"$E2E_TMP/last.note"
eq "later checkpoints: the new key alone, named the origin" "$(sigids "$E2E_TMP/last.note" "$FIRST" "$K/sign.pub")" \
	"$NEW_ID crossgate/gateway/$OLD_ID"
"$CROSSGATE" audit verify --db "$DB" --pub "$FIRST" >"$E2E_TMP/o" 2>&1
check "verify with the first public key passes" [ $? -eq 0 ]
check "verify reports the rotation" grep -q "key rotation: event $R hands over to signing key $NEW_ID" "$E2E_TMP/o"
"$CROSSGATE" audit verify --db "$DB" --pub "$FIRST" --since "$E2E_TMP/cp0" >/dev/null 2>&1
check "--since a checkpoint from before the rotation" [ $? -eq 0 ]
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp1" >/dev/null 2>&1
"$CROSSGATE" audit verify --db "$DB" --pub "$FIRST" --since "$E2E_TMP/cp1" >/dev/null 2>&1
check "--since a checkpoint signed by the new key" [ $? -eq 0 ]
"$CROSSGATE" audit verify-proof "$E2E_TMP/p-before" --pub "$FIRST" >/dev/null 2>&1
check "a proof made before the rotation still verifies" [ $? -eq 0 ]
"$CROSSGATE" audit prove --db "$DB" --event 1 --out "$E2E_TMP/p-after" >/dev/null 2>&1
"$CROSSGATE" audit verify-proof "$E2E_TMP/p-after" --pub "$FIRST" >/dev/null 2>&1
check "a proof against a checkpoint of the new key verifies with the first key" [ $? -eq 0 ]
expect_fail "the new key alone does not verify the log's start" "checkpoint at size 1: not signed by gateway key $NEW_ID" \
	"$CROSSGATE" audit verify --db "$DB" --pub "$K/sign.pub"
"$CROSSGATE" audit witness-keygen --name witness.example/w1 --dir "$E2E_TMP/w1" >/dev/null 2>&1
"$CROSSGATE" audit cosign --db "$DB" --pub "$FIRST" --key "$E2E_TMP/w1/witness.key" --name witness.example/w1 \
	--state "$E2E_TMP/w1/state" >/dev/null 2>&1
check "a witness holding the first key cosigns" [ $? -eq 0 ]
"$CROSSGATE" audit verify --db "$DB" --pub "$FIRST" --witness "$(cat "$E2E_TMP/w1/witness.vkey")" --quorum 1 >/dev/null 2>&1
check "and the quorum check follows the rotation" [ $? -eq 0 ]

# The old key is rotated out.
mkdir -p "$E2E_TMP/oldkeys" && chmod 700 "$E2E_TMP/oldkeys"
cp -p "$K/enc.key" "$K/enc.pub" "$K/storage.key" "$E2E_TMP/oldkeys/"
cp -p "$K/sign-$OLD_ID.key" "$E2E_TMP/oldkeys/sign.key"
cp -p "$K/sign-$OLD_ID.pub" "$E2E_TMP/oldkeys/sign.pub"
expect_fail "the old key cannot append" "the signing key $OLD_ID was rotated out (key-rotate event $R hands over to key $NEW_ID)" \
	ingest "$E2E_TMP/oldkeys"

# A second rotation: the chain has two links.
"$CROSSGATE" keygen gateway --rotate --dir "$K" --db "$DB" >/dev/null 2>&1
ingest "$K" >/dev/null 2>&1
"$CROSSGATE" audit verify --db "$DB" --pub "$FIRST" --since "$E2E_TMP/cp1" >"$E2E_TMP/o" 2>&1
eq "two rotations are followed" "$(grep -c '^key rotation:' "$E2E_TMP/o")" 2

# Forgeries.  1: the rotation's checkpoint without the old key's signature (the new key announced itself).
cp "$DB" "$E2E_TMP/f1.db"
python3 - "$E2E_TMP/f1.db" "$R" "$OLD_ID" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); size = int(sys.argv[2]) + 1
note = db.execute("SELECT note FROM audit_checkpoints WHERE size = ?", (size,)).fetchone()[0]
lines = note.split("\n")
del lines[lines.index("") + 1]    # the old key's line: the first signature
db.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", ("\n".join(lines), size)); db.commit()
EOF
expect_fail "a rotation not signed by the old key is refused" "checkpoint at size $((R + 1)): not signed by gateway key $OLD_ID, the key in force at that size" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/f1.db" --pub "$FIRST"
# 2: the latest checkpoint re-signed by a key that no rotation announced.
"$CROSSGATE" keygen gateway --dir "$E2E_TMP/k3" >/dev/null 2>&1
LAST_ID=$(awk '!/^#/ {print $2}' "$K/sign.pub")
cp "$DB" "$E2E_TMP/f2.db"
python3 - "$E2E_TMP/f2.db" "$E2E_TMP/k3/sign.key" <<'EOF'
import base64, hashlib, sqlite3, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
typ, kid, b64 = [l for l in open(sys.argv[2]) if not l.startswith("#")][0].split()
sk = Ed25519PrivateKey.from_private_bytes(base64.b64decode(b64)[:32])
pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
name = "crossgate/gateway/" + kid
db = sqlite3.connect(sys.argv[1])
size, note = db.execute("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
body = note[:note.index("\n\n") + 1]
keyid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
sig = sk.sign(body.encode())
forged = body + "\n\u2014 " + name + " " + base64.b64encode(keyid + sig).decode() + "\n"
db.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (forged, size)); db.commit()
print(size)
EOF
SZ=$(sql "$E2E_TMP/f2.db" "SELECT max(size) FROM audit_checkpoints")
expect_fail "a checkpoint by an unannounced key is refused" "checkpoint at size $SZ: not signed by gateway key $LAST_ID, the key in force at that size after the verified key rotations" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/f2.db" --pub "$FIRST"
# Logs rotated by earlier versions sign later checkpoints under the new key's own name: still accepted.
cp "$DB" "$E2E_TMP/c1.db"
python3 - "$E2E_TMP/c1.db" "$K/sign.key" <<'EOF'
import base64, hashlib, sqlite3, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
typ, kid, b64 = [l for l in open(sys.argv[2]) if not l.startswith("#")][0].split()
sk = Ed25519PrivateKey.from_private_bytes(base64.b64decode(b64)[:32])
pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
name = "crossgate/gateway/" + kid
db = sqlite3.connect(sys.argv[1])
size, note = db.execute("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
body = note[:note.index("\n\n") + 1]
keyid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
old = body + "\n\u2014 " + name + " " + base64.b64encode(keyid + sk.sign(body.encode())).decode() + "\n"
db.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (old, size)); db.commit()
EOF
"$CROSSGATE" audit verify --db "$E2E_TMP/c1.db" --pub "$FIRST" >/dev/null 2>&1
check "a checkpoint signed under the new key's own name (earlier versions) verifies" [ $? -eq 0 ]
"$CROSSGATE" gateway ingest --db "$E2E_TMP/c1.db" --policy "$D/policy.yaml" --keys "$K" "$D/batches/k.batch" >/dev/null 2>&1
check "and the gateway appends to such a log" [ $? -eq 0 ]
# 3: the key index edited to name another key.
cp "$DB" "$E2E_TMP/f3.db"
sql "$E2E_TMP/f3.db" "UPDATE audit_keys SET key_id = zeroblob(8) WHERE seq = $R"
expect_fail "an edited key index is caught" "the key index (audit_keys) does not match key-rotate event $R" \
	"$CROSSGATE" audit verify --db "$E2E_TMP/f3.db" --pub "$FIRST"
e2e_done
