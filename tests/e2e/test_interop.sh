#!/bin/sh
# Second implementations written from docs/PROTOCOL.md alone (tests/interop/):
# a Python packer whose batches the C gateway accepts and joins with the C
# agent's, and a Python auditor that verifies the C gateway's log, its
# inclusion proofs and its key rotations, and rejects tampered copies.  Both
# use Debian's python3-nacl, python3-protobuf and python3-yaml (setup.sh) under
# /usr/bin/python3; the .proto files are compiled here with protoc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net_lib.sh"
PY=/usr/bin/python3
I=$(cd "$(dirname "$0")/../interop" && pwd)
PROTO=$(cd "$(dirname "$0")/../../proto" && pwd)

if ! $PY -c 'import nacl, google.protobuf, yaml' 2>/dev/null || ! command -v protoc >/dev/null; then
	bad "python3-nacl, python3-protobuf, python3-yaml or protobuf-compiler is missing: run 'sh setup.sh'"
	e2e_done; exit
fi
export CG_PB_DIR="$E2E_TMP/pb"
export PYTHONDONTWRITEBYTECODE=1   # nothing written into the source tree
mkdir -p "$CG_PB_DIR"
check "the .proto files compile for Python" protoc --python_out="$CG_PB_DIR" -I "$PROTO" \
	"$PROTO/crossgate.proto" "$PROTO/audit.proto"

D=$E2E_TMP/d
net_setup "$D" 300 || { bad "demo setup"; cat "$E2E_TMP/demo.err"; e2e_done; exit; }
POL=$D/policy.yaml
# The demo's C-to-C join: subjects matched, and those left out for lack of 'analytics' consent.
CONSENTING=$($PY -c 'import json,sys; d = json.load(open(sys.argv[1])); print(d["matched_subjects"] - d["left_out_for_consent"])' \
	"$E2E_TMP/demo.json")
# A budget no deployment would grant, so that a count query is exact for all practical purposes
# (rho 10000: the discrete Gaussian's sigma is 0.007), to compare joins; batches are packed under it.
sed -i -e 's/budget_rho: 1.0$/budget_rho: 1000000/' -e 's/budget_rho: 2.0,/budget_rho: 1000000,/' "$POL"
# quiet CMD...: run it, showing its output only when it fails
quiet() { "$@" >"$E2E_TMP/quiet" 2>&1 || { sed 's/^/    /' "$E2E_TMP/quiet" | head -5; return 1; }; }
keys() { echo "--match-key $D/keys/match.key --sign-key $D/keys/$1/sign.key --gateway-pub $D/keys/gateway/enc.pub"; }

# ---- the worked example of PROTOCOL.md §6, and the C agent on its row -------------------
DOC=$(cd "$(dirname "$0")/../.." && pwd)/docs/PROTOCOL.md
if $PY "$I/example.py" "$DOC" >"$E2E_TMP/ex.tokens" 2>"$E2E_TMP/ex.err"; then
	ok "every value of the worked example is what the spec's code computes"
else
	bad "the worked example: $(tail -1 "$E2E_TMP/ex.err")"
fi
sed -n 's/^    \(match-key [0-9a-f]* [^ ]*\)$/\1/p' "$DOC" >"$E2E_TMP/ex.match"
chmod 600 "$E2E_TMP/ex.match"
{ head -1 "$D/data/k_users.csv"
  echo 'u1,"  Alice.Smith+news@GoogleMail.com ",+86 (0)138-1234-5678,30,CN-BJ,match;analytics,2024-05-01T12:00:00Z,1,2,3,finance,4'
} >"$E2E_TMP/ex.csv"
"$CROSSGATE" agent pack --policy "$POL" --partner k --input "$E2E_TMP/ex.csv" --out "$E2E_TMP/ex.batch" \
	--match-key "$E2E_TMP/ex.match" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" \
	>/dev/null 2>&1 || bad "the C agent packs the example row"
$PY "$I/packer.py" read "$E2E_TMP/ex.batch" --policy "$POL" --sign-pub "$D/keys/k/sign.pub" |
	$PY -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["tokens"]["1"]); print(r["tokens"]["2"]); print(r["consent_bits"], r["consent_at"])' \
	>"$E2E_TMP/ex.c" 2>&1
printf '3 1714564800\n' >>"$E2E_TMP/ex.tokens"
check "the C agent's tokens and consent for the example row are §6's" cmp -s "$E2E_TMP/ex.tokens" "$E2E_TMP/ex.c"
sed -n 's/^    key line *\(ed25519-public .*\)$/\1/p' "$DOC" >"$E2E_TMP/ex.pub"
eq "audit vkey prints §6's verifier key" "$("$CROSSGATE" audit vkey --pub "$E2E_TMP/ex.pub" 2>&1)" \
	"$(sed -n 's/^    verifier key *\([^ ]*\)$/\1/p' "$DOC")"

# ---- the packer -------------------------------------------------------------------
# shellcheck disable=SC2046
check "the Python packer packs K's CSV" quiet $PY "$I/packer.py" pack --policy "$POL" --partner k \
	--input "$D/data/k_users.csv" --out "$E2E_TMP/k_py.batch" $(keys k)
cp "$E2E_TMP/quiet" "$E2E_TMP/quiet.pack"
# shellcheck disable=SC2046
"$CROSSGATE" agent pack --policy "$POL" --partner k --input "$D/data/k_users.csv" --out "$E2E_TMP/k_c.batch" \
	$(keys k) >/dev/null 2>&1 || bad "the C agent packs K's CSV"
# shellcheck disable=SC2046
"$CROSSGATE" agent pack --policy "$POL" --partner g --input "$D/data/g_viewers.csv" --out "$E2E_TMP/g_c.batch" \
	$(keys g) >/dev/null 2>&1 || bad "the C agent packs G's CSV"
for x in py c; do
	$PY "$I/packer.py" read "$E2E_TMP/k_$x.batch" --policy "$POL" --sign-pub "$D/keys/k/sign.pub" \
		--gateway-key "$D/keys/gateway/enc.key" | sort >"$E2E_TMP/k_$x.jsonl" || bad "the spec reader reads the $x batch"
done
N=$(grep -vc '"withdrawal": true' "$E2E_TMP/k_c.jsonl")       # data records; the rest are withdrawals (§5.10)
NW=$(grep -c '"withdrawal": true' "$E2E_TMP/k_c.jsonl")
check "the C batch holds records" [ "$N" -gt 100 ]
check "and withdrawals of the users without match consent" [ "$NW" -gt 0 ]
check "both packers give the same records: tokens, consent and fields ($N), withdrawals ($NW)" \
	cmp -s "$E2E_TMP/k_py.jsonl" "$E2E_TMP/k_c.jsonl"

# Rows of one key (§5.9): a phone shared by two emails, phone-only rows, a newer row of an email.
$PY - "$D/data/k_users.csv" "$E2E_TMP/k_keys.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig")))
h = rows[0]
E, P, C, T = h.index("email"), h.index("phone"), h.index("consent"), h.index("consent_at")
both = [r for r in rows[1:] if r[E].strip() and r[P].strip() and "match" in r[C]][:3]
extra = []
for i, r in enumerate(both):
    x = list(r); x[E] = "shared.phone.%d@example.org" % i; extra.append(x)       # another person, same phone
    y = list(r); y[E] = ""; extra.append(y)                                       # a phone-only row of it
    z = list(r); z[T] = "2030-01-01T00:00:00Z"; z[C] = "match"; extra.append(z)   # a newer row of the email
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows + extra)
PY
# shellcheck disable=SC2046
"$CROSSGATE" agent pack --policy "$POL" --partner k --input "$E2E_TMP/k_keys.csv" --out "$E2E_TMP/kk_c.batch" \
	$(keys k) >/dev/null 2>&1 || bad "the C agent packs the rows of shared keys"
# shellcheck disable=SC2046
$PY "$I/packer.py" pack --policy "$POL" --partner k --input "$E2E_TMP/k_keys.csv" --out "$E2E_TMP/kk_py.batch" \
	$(keys k) >/dev/null || bad "the Python packer packs the rows of shared keys"
for x in py c; do
	$PY "$I/packer.py" read "$E2E_TMP/kk_$x.batch" --policy "$POL" --sign-pub "$D/keys/k/sign.pub" \
		--gateway-key "$D/keys/gateway/enc.key" | sort >"$E2E_TMP/kk_$x.jsonl" || bad "read the $x batch of shared keys"
done
eq "shared phones add the users they should" "$(wc -l <"$E2E_TMP/kk_c.jsonl")" "$((N + NW + 6))"
check "both packers merge the same rows: one key, the email, else the phone" cmp -s "$E2E_TMP/kk_py.jsonl" "$E2E_TMP/kk_c.jsonl"

DB=$E2E_TMP/gw.db
GW="--db $DB --policy $POL --keys $D/keys/gateway"
# shellcheck disable=SC2086
check "the gateway ingests the Python batch and the C batch" quiet "$CROSSGATE" gateway ingest $GW \
	"$E2E_TMP/k_py.batch" "$E2E_TMP/g_c.batch"
"$CROSSGATE" gateway stats --db "$DB" --policy "$POL" --partner k >"$E2E_TMP/stats" 2>&1
check "stats count the Python batch's records" grep -q "partner k: $N records stored from 1 batches" "$E2E_TMP/stats"
# shellcheck disable=SC2086
"$CROSSGATE" query $GW --out "$E2E_TMP/q.csv" --metric count --rho 10000 >/dev/null 2>&1 || bad "query"
eq "the join of the Python and the C batch counts the subjects of the C-only demo" \
	"$(sed -n 2p "$E2E_TMP/q.csv")" "$CONSENTING"

# A byte changed in a record: the signed digest fails; the batch changes nothing.
$PY - "$E2E_TMP/k_py.batch" "$E2E_TMP/k_bad.batch" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
n = int.from_bytes(b[0:4], "big")
b[4 + n + 4 + 40] ^= 1          # inside the first record frame
open(sys.argv[2], "wb").write(b)
PY
# shellcheck disable=SC2086
expect_fail "a tampered Python batch is rejected" "content does not match its signed digest" \
	"$CROSSGATE" gateway ingest $GW "$E2E_TMP/k_bad.batch"
expect_fail "the spec reader rejects it too" "the digest or the count does not match the frames" \
	$PY "$I/packer.py" read "$E2E_TMP/k_bad.batch" --policy "$POL" --sign-pub "$D/keys/k/sign.pub"

# A batch id is fresh per batch (§5.2): the same file again is a duplicate, another batch under it is refused.
# shellcheck disable=SC2086
check "the same batch again is a duplicate" sh -c "'$CROSSGATE' gateway ingest $GW '$E2E_TMP/k_py.batch' 2>&1 |
	grep -q 'already committed'"
BID=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["batch_id"])' "$E2E_TMP/quiet.pack" 2>/dev/null)
# shellcheck disable=SC2046
$PY "$I/packer.py" pack --policy "$POL" --partner k --input "$D/data/k_users.csv" --out "$E2E_TMP/k_reuse.batch" \
	$(keys k) --batch-id "$BID" >/dev/null || bad "pack under a reused id"
# shellcheck disable=SC2086
expect_fail "another batch under a committed id is refused, not taken for a retry" \
	"batch id $BID was committed before with other content; every batch needs a fresh random id" \
	"$CROSSGATE" gateway ingest $GW "$E2E_TMP/k_reuse.batch"

# ---- over mutual TLS --------------------------------------------------------------
# shellcheck disable=SC2046
$PY "$I/packer.py" pack --policy "$POL" --partner k --input "$D/data/k_users.csv" --out "$E2E_TMP/k_py2.batch" \
	$(keys k) >/dev/null || bad "pack a second batch"
net_start "$DB" "$POL" "$E2E_TMP/serve.log" || bad "the gateway serves"
CL="--gateway localhost:$NET_PORT --ca $D/pki/ca.pem"
# shellcheck disable=SC2086
$PY "$I/packer.py" push "$E2E_TMP/k_py2.batch" $CL --cert "$D/pki/k.pem" --key "$D/pki/k.key" >"$E2E_TMP/push" 2>&1
check "the Python client pushes its batch: committed" grep -q "\"status\": \"PUSH_STATUS_COMMITTED\", \"records\": $N" "$E2E_TMP/push"
# shellcheck disable=SC2086
$PY "$I/packer.py" push "$E2E_TMP/k_py2.batch" $CL --cert "$D/pki/k.pem" --key "$D/pki/k.key" >"$E2E_TMP/push" 2>&1
check "pushing it again is a duplicate" grep -q '"status": "PUSH_STATUS_DUPLICATE"' "$E2E_TMP/push"
# shellcheck disable=SC2086
expect_fail "partner g may not push K's batch" "gateway error refused: principal 'g-agent' (partner 'g') may not push" \
	$PY "$I/packer.py" push "$E2E_TMP/k_py2.batch" $CL --cert "$D/pki/g.pem" --key "$D/pki/g.key"

# A revocation batch (§5.7) from the Python packer erases K's records of the users it names.
$PY - "$D/data/k_users.csv" "$E2E_TMP/revoke.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8-sig"))
        if r["email"].strip() and "match" in r["consent"] and r["email"].isascii() and "@" in r["email"]]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["email"])
    for r in rows[:3]:
        w.writerow([r["email"]])
PY
# shellcheck disable=SC2046
$PY "$I/packer.py" revoke --policy "$POL" --partner k --input "$E2E_TMP/revoke.csv" --out "$E2E_TMP/k_revoke.batch" \
	$(keys k) >/dev/null || bad "the Python packer writes a revocation batch"
BEFORE=$("$CROSSGATE" gateway stats --db "$DB" --policy "$POL" --partner k | sed -n 's/^partner k: \([0-9]*\) records.*/\1/p')
# shellcheck disable=SC2086
"$CROSSGATE" gateway ingest $GW "$E2E_TMP/k_revoke.batch" >"$E2E_TMP/rev.out" 2>&1 || bad "the revocation is ingested"
ERASED=$(sed -n 's/.*revocation from partner k: 3 users, \([0-9]*\) records erased.*/\1/p' "$E2E_TMP/rev.out")
check "the gateway takes the Python revocation of 3 users and erases their records" [ "${ERASED:-0}" -ge 3 ]
AFTER=$("$CROSSGATE" gateway stats --db "$DB" --policy "$POL" --partner k | sed -n 's/^partner k: \([0-9]*\) records.*/\1/p')
eq "stats count exactly those records fewer" "$AFTER" "$((BEFORE - ${ERASED:-0}))"

# ---- the auditor ------------------------------------------------------------------
AUD="--cert $D/pki/auditor.pem --key $D/pki/auditor.key"
# The log's first signing key: an auditor keeps it (a rotation replaces sign.pub).
SPUB=$E2E_TMP/first-sign.pub
cp "$D/keys/gateway/sign.pub" "$SPUB"
# shellcheck disable=SC2086
check "the Python auditor fetches the log" quiet $PY "$I/auditor.py" fetch $CL $AUD --out "$E2E_TMP/log1"
$PY "$I/auditor.py" verify "$E2E_TMP/log1" --pub "$SPUB" >"$E2E_TMP/v1" 2>&1
check "it verifies every checkpoint and the tree head" grep -q '"verified": true' "$E2E_TMP/v1"
SIZE=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' "$E2E_TMP/v1")
net_stop || bad "the gateway stops cleanly"
# The C verifier agrees on the root of the same size.
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp" >/dev/null 2>&1
ROOT=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"])' "$E2E_TMP/v1")
check "the recomputed root is in the gateway's checkpoint of that size" \
	sh -c "[ \"\$(sed -n 2p '$E2E_TMP/cp')\" -ge $SIZE ] && sqlite3 '$DB' \"SELECT note FROM audit_checkpoints WHERE size = $SIZE\" | grep -qF '$ROOT'"
# Tampered copies: an event rewritten, a checkpoint checked against another key.
$PY "$I/auditor.py" tamper "$E2E_TMP/log1" "$E2E_TMP/log1.bad" --seq 2
expect_fail "a rewritten event is caught" "auditor: events up to 2 do not match the checkpoint of size 3" \
	$PY "$I/auditor.py" verify "$E2E_TMP/log1.bad" --pub "$SPUB"
expect_fail "another gateway's key is refused" "auditor: no signature by crossgate/gateway/" \
	$PY "$I/auditor.py" verify "$E2E_TMP/log1" --pub "$D/keys/k/sign.pub"

# Inclusion proofs written by the C gateway.
"$CROSSGATE" audit prove --db "$DB" --event 3 --out "$E2E_TMP/p3" >/dev/null 2>&1 || bad "audit prove"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/p3" --pub "$SPUB" >"$E2E_TMP/vp" 2>&1
check "the Python auditor verifies an inclusion proof" grep -q '"verified": true, "index": 3' "$E2E_TMP/vp"
$PY - "$E2E_TMP/p3" "$E2E_TMP/p3.bad" <<'PY'
import os, sys
sys.path.insert(0, os.environ["CG_PB_DIR"])
import audit_pb2
p = audit_pb2.InclusionProof.FromString(open(sys.argv[1], "rb").read())
h = bytearray(p.hashes[0]); h[0] ^= 1; p.hashes[0] = bytes(h)
open(sys.argv[2], "wb").write(p.SerializeToString())
PY
expect_fail "a proof with a changed path hash is rejected" "auditor: event 3 is not in the tree of size" \
	$PY "$I/auditor.py" verify-proof "$E2E_TMP/p3.bad" --pub "$SPUB"

# A key rotation and an erasure: the first key still verifies everything.
"$CROSSGATE" keygen gateway --rotate --dir "$D/keys/gateway" --db "$DB" >/dev/null 2>&1 || bad "rotate"
"$CROSSGATE" audit erase --db "$DB" --key "$D/keys/gateway/sign.key" --seq 1-2 --reason interop >/dev/null 2>&1 ||
	bad "audit erase"
W=$E2E_TMP/w1
"$CROSSGATE" audit witness-keygen --name witness.example/w1 --dir "$W" >/dev/null 2>&1 || bad "witness-keygen"
"$CROSSGATE" audit cosign --db "$DB" --pub "$SPUB" --key "$W/witness.key" --name witness.example/w1 \
	--state "$W/state" >/dev/null 2>&1 || bad "a witness cosigns"
WSIZE=$(sed -n 2p "$W/state")
net_start "$DB" "$POL" "$E2E_TMP/serve.log" || bad "the gateway serves again"
CL="--gateway localhost:$NET_PORT --ca $D/pki/ca.pem"
# shellcheck disable=SC2086
$PY "$I/auditor.py" fetch $CL $AUD --out "$E2E_TMP/log2" >/dev/null || bad "fetch after the rotation"
# The consistency proof over the wire (§8.5), from the checkpoint saved before the rotation.
CPS=$(sed -n 2p "$E2E_TMP/cp")
# shellcheck disable=SC2086
check "the Python auditor gets a consistency proof over the wire" \
	quiet $PY "$I/auditor.py" consistency $CL $AUD --old "$CPS" --out "$E2E_TMP/cw"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/cw" --pub "$SPUB" --since "$E2E_TMP/cp" >"$E2E_TMP/vcw" 2>&1
check "and checks it from its saved checkpoint" grep -q "\"verified\": true, \"old_size\": $CPS" "$E2E_TMP/vcw"
# shellcheck disable=SC2086
check "the C client fetches one too" quiet "$CROSSGATE" audit fetch $CL $AUD --consistency "$CPS" --out "$E2E_TMP/cw2"
check "which the C verifier checks from the saved checkpoint" \
	quiet "$CROSSGATE" audit verify-proof "$E2E_TMP/cw2" --pub "$SPUB" --since "$E2E_TMP/cp"
# shellcheck disable=SC2086
expect_fail "a size past the log is the auditor's error" "gateway error rejected: " \
	$PY "$I/auditor.py" consistency $CL $AUD --old 1 --new 100000 --out "$E2E_TMP/x"
# shellcheck disable=SC2086
expect_fail "old size 0 is malformed" "gateway error malformed: request: audit_consistency needs 0 < old_size" \
	$PY "$I/auditor.py" consistency $CL $AUD --old 0 --out "$E2E_TMP/x"
# shellcheck disable=SC2086
expect_fail "a partner may not ask" "gateway error refused: audit_consistency refused: principal 'k-agent' has role partner" \
	$PY "$I/auditor.py" consistency $CL --cert "$D/pki/k.pem" --key "$D/pki/k.key" --old 1 --out "$E2E_TMP/x"
net_stop || bad "the gateway stops cleanly again"
$PY "$I/auditor.py" verify "$E2E_TMP/log2" --pub "$SPUB" >"$E2E_TMP/v2" 2>&1
check "after a rotation and an erasure the first key verifies the log" \
	grep -q '"verified": true.*"rotations": 1, "erased": 2' "$E2E_TMP/v2"
$PY "$I/auditor.py" verify "$E2E_TMP/log2" --pub "$SPUB" --witness "$(cat "$W/witness.vkey")" >"$E2E_TMP/v2w" 2>&1
check "the witness's cosignature of size $WSIZE verifies (C2SP cosignature/v1)" \
	grep -q "\"witnessed\": {\"witness.example/w1\": $WSIZE}" "$E2E_TMP/v2w"
$PY - "$E2E_TMP/log2" "$E2E_TMP/log2.badcosig" <<'PY'
import base64, os, struct, sys
sys.path.insert(0, os.environ["CG_PB_DIR"])
import crossgate_pb2
data, out, off = open(sys.argv[1], "rb").read(), b"", 0
while off < len(data):
    (n,) = struct.unpack(">I", data[off:off + 4])
    r = crossgate_pb2.Response.FromString(data[off + 4:off + 4 + n])
    off += 4 + n
    if r.WhichOneof("result") == "audit_cosignature":
        dash, name, b64 = r.audit_cosignature.line.rstrip("\n").split(" ")
        blob = bytearray(base64.b64decode(b64)); blob[20] ^= 1
        r.audit_cosignature.line = " ".join((dash, name, base64.b64encode(bytes(blob)).decode())) + "\n"
    b = r.SerializeToString()
    out += struct.pack(">I", len(b)) + b
open(sys.argv[2], "wb").write(out)
PY
expect_fail "a changed cosignature is refused" "auditor: cosignature by witness.example/w1 of size $WSIZE does not verify" \
	$PY "$I/auditor.py" verify "$E2E_TMP/log2.badcosig" --pub "$SPUB" --witness "$(cat "$W/witness.vkey")"
LAST=$((SIZE + 1))
"$CROSSGATE" audit prove --db "$DB" --event "$LAST" --out "$E2E_TMP/p4" >/dev/null 2>&1 || bad "prove after rotation"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/p4" --pub "$SPUB" >"$E2E_TMP/vp4" 2>&1
check "a proof signed by the new key verifies from the first key" grep -q "\"verified\": true, \"index\": $LAST" "$E2E_TMP/vp4"
"$CROSSGATE" audit prove --db "$DB" --event 1 --out "$E2E_TMP/p1" >/dev/null 2>&1 || bad "prove an erased event"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/p1" --pub "$SPUB" >"$E2E_TMP/vp1" 2>&1
check "an erased event's proof verifies by its leaf hash" grep -q '"index": 1, .*"erased": true' "$E2E_TMP/vp1"

# The C2SP verifier key `audit vkey` prints checks the gateway's checkpoints with a generic note
# verifier: the first key's before the rotation, the new key's (still named the origin) after it.
"$CROSSGATE" audit vkey --pub "$SPUB" >"$E2E_TMP/vkey1" 2>&1 || bad "audit vkey"
"$CROSSGATE" audit vkey --pub "$SPUB" --key "$D/keys/gateway/sign.pub" >"$E2E_TMP/vkey2" 2>&1 || bad "audit vkey --key"
check "a rotated-in key's verifier key is named the origin" \
	[ "$(cut -d+ -f1 "$E2E_TMP/vkey2")" = "$(cut -d+ -f1 "$E2E_TMP/vkey1")" ]
"$CROSSGATE" audit checkpoint --db "$DB" --out "$E2E_TMP/cp2" >/dev/null 2>&1 || bad "audit checkpoint"
check "the first key's vkey verifies a checkpoint from before the rotation" \
	quiet $PY "$I/auditor.py" verify-note "$E2E_TMP/cp" --vkey "$(cat "$E2E_TMP/vkey1")"
check "the new key's vkey verifies the latest checkpoint" \
	quiet $PY "$I/auditor.py" verify-note "$E2E_TMP/cp2" --vkey "$(cat "$E2E_TMP/vkey2")"
expect_fail "and the first key's does not" "auditor: no signature by crossgate/gateway/" \
	$PY "$I/auditor.py" verify-note "$E2E_TMP/cp2" --vkey "$(cat "$E2E_TMP/vkey1")"

# Consistency proof files across the rotation: the first key checks both checkpoints,
# and the proof must start from the checkpoint the auditor saved before.
"$CROSSGATE" audit prove --db "$DB" --consistency "$CPS" --out "$E2E_TMP/cs" >/dev/null 2>&1 || bad "prove --consistency"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/cs" --pub "$SPUB" --since "$E2E_TMP/cp" >"$E2E_TMP/vcs" 2>&1
check "the Python auditor checks a consistency proof from its saved checkpoint" \
	grep -q "\"verified\": true, \"old_size\": $CPS" "$E2E_TMP/vcs"
check "so does the C verifier" quiet "$CROSSGATE" audit verify-proof "$E2E_TMP/cs" --pub "$SPUB" --since "$E2E_TMP/cp"
"$CROSSGATE" audit prove --db "$DB" --consistency 3 --out "$E2E_TMP/c3" >/dev/null 2>&1 || bad "prove --consistency"
$PY "$I/auditor.py" verify-proof "$E2E_TMP/c3" --pub "$SPUB" >"$E2E_TMP/vc3" 2>&1
check "the Python auditor verifies a consistency proof across the rotation" \
	grep -q '"verified": true, "old_size": 3, "new_size": ' "$E2E_TMP/vc3"
$PY - "$E2E_TMP/c3" "$E2E_TMP/c3.bad" <<'PY'
import os, sys
sys.path.insert(0, os.environ["CG_PB_DIR"])
import audit_pb2
p = audit_pb2.ConsistencyProof.FromString(open(sys.argv[1], "rb").read())
h = bytearray(p.hashes[-1]); h[5] ^= 1; p.hashes[-1] = bytes(h)
open(sys.argv[2], "wb").write(p.SerializeToString())
PY
expect_fail "the Python auditor rejects a changed consistency hash" "auditor: the tree of size" \
	$PY "$I/auditor.py" verify-proof "$E2E_TMP/c3.bad" --pub "$SPUB"
expect_fail "so does the C verifier" "does not extend the tree of size 3" \
	"$CROSSGATE" audit verify-proof "$E2E_TMP/c3.bad" --pub "$SPUB"

# The same log as `audit show --format jsonl` prints it: leaf hashes, event bytes, checkpoints.
"$CROSSGATE" audit show --db "$DB" --format jsonl >"$E2E_TMP/log.jsonl" 2>&1 || bad "audit show jsonl"
$PY "$I/auditor.py" verify-jsonl "$E2E_TMP/log.jsonl" --pub "$SPUB" >"$E2E_TMP/vj" 2>&1
check "the jsonl trail is enough to recompute and verify the tree" \
	grep -q '"verified": true.*"rotations": 1, "erased": 2' "$E2E_TMP/vj"
$PY - "$E2E_TMP/log.jsonl" "$E2E_TMP/log.bad.jsonl" <<'PY'
import base64, hashlib, json, os, sys
sys.path.insert(0, os.environ["CG_PB_DIR"])
import crossgate_pb2
out = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["seq"] == 4:   # rewrite the event and its leaf hash consistently: only the checkpoints can tell
        ev = crossgate_pb2.AuditEvent.FromString(base64.b64decode(o["event"]))
        ev.outcome = "rejected"
        b = ev.SerializeToString()
        o["event"], o["leaf_hash"] = base64.b64encode(b).decode(), hashlib.sha256(b"\0" + b).hexdigest()
    out.append(json.dumps(o))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
expect_fail "a rewritten event in the jsonl trail is caught" "auditor: events up to 4 do not match the checkpoint of size 5" \
	$PY "$I/auditor.py" verify-jsonl "$E2E_TMP/log.bad.jsonl" --pub "$SPUB"

e2e_done
