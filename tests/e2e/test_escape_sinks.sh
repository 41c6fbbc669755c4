#!/bin/sh
# Untrusted text cannot drive a terminal or forge a line at any sink: a batch
# header's partner_id (unsigned until the trailer is checked) and a CSV field
# name carrying terminal escapes, a newline and a bidi override reach stderr,
# the gateway's JSON log and `audit show` (table and JSON lines) escaped
# (base/escape.h), as one line each.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
EVIL='k\x1b]0;pwned\x07\x1b[2J\nFAKE: committed\xe2\x80\xae'
SHOWN='k\x1b]0;pwned\x07\x1b[2J\nFAKE: committed\u{202e}'

net_setup "$D" 200
check "demo exits 0" [ $? -eq 0 ]
python3 tests/e2e/batch_forge.py "$D/batches/k.batch" "$E2E_TMP/evil.batch" "$EVIL"
check "a batch with a hostile partner_id is made" [ -s "$E2E_TMP/evil.batch" ]

# raw FILE: no ESC, BEL, CR or U+202E byte anywhere in FILE
raw() { ! LC_ALL=C grep -q "$(printf '[\033\007\r]\|\342\200\256')" "$1"; }

# --- stderr: offline ingest ---------------------------------------------------------------
cp "$D/gateway.db" "$E2E_TMP/g.db"
"$CROSSGATE" gateway ingest --db "$E2E_TMP/g.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
	"$E2E_TMP/evil.batch" >"$E2E_TMP/o" 2>"$E2E_TMP/e"
check "the batch is rejected" [ $? -ne 0 ]
check "stderr shows the partner_id escaped" grep -qF "partner '$SHOWN' is not in the policy" "$E2E_TMP/e"
check "stderr holds no control byte or bidi override" raw "$E2E_TMP/e"
eq "stderr is one line" "$(wc -l <"$E2E_TMP/e")" 1

# --- stderr: a field name in a CSV header --------------------------------------------------------
printf 'user_id,email,"age\033[31m\nFAKE\342\200\256"\nu1,a@b.c,3\n' >"$E2E_TMP/evil.csv"
"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$E2E_TMP/evil.csv" --out "$E2E_TMP/x.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" \
	>/dev/null 2>"$E2E_TMP/e"
check "a CSV with a hostile column name is refused" [ $? -ne 0 ]
check "stderr shows the column name escaped" grep -qF "column 'age\\x1b[31m\\nFAKE\\u{202e}'" "$E2E_TMP/e"
check "stderr holds no control byte or bidi override" raw "$E2E_TMP/e"
eq "stderr is one line" "$(wc -l <"$E2E_TMP/e")" 1

# --- the audit trail, shown ------------------------------------------------------------------------
"$CROSSGATE" audit show --db "$E2E_TMP/g.db" >"$E2E_TMP/show" 2>&1
check "audit show (table) shows the rejection escaped" grep -qF "$SHOWN" "$E2E_TMP/show"
check "audit show (table) holds no control byte or bidi override" raw "$E2E_TMP/show"
check "audit show (table): no forged line" sh -c "! grep -q '^FAKE' '$E2E_TMP/show'"
eq "audit show (table): one line per event and the header" "$(wc -l <"$E2E_TMP/show")" \
	"$(($(sql "$E2E_TMP/g.db" "SELECT count(*) FROM audit_events") + 1))"
"$CROSSGATE" audit show --db "$E2E_TMP/g.db" --format jsonl >"$E2E_TMP/show.jsonl" 2>&1
check "audit show (jsonl) holds no control byte or bidi override" raw "$E2E_TMP/show.jsonl"
check "audit show (jsonl): every line is an object; the partner is the escaped text" python3 -c "
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
assert any(e.get('partner') == sys.argv[2] for e in evs), [e.get('partner') for e in evs]
" "$E2E_TMP/show.jsonl" "$SHOWN"

# --- over the network: the client's stderr and the gateway's JSON log ---------------------------------
DB=$E2E_TMP/net.db
LOG=$E2E_TMP/gateway.log
net_start "$DB" "$D/policy.yaml" "$LOG"
check "gateway listens" [ -n "$NET_PORT" ]
"$CROSSGATE" agent push $(net_client k) --retries 0 "$E2E_TMP/evil.batch" >/dev/null 2>"$E2E_TMP/e"
check "the push is refused" [ $? -ne 0 ]
# the gateway does not even quote it: a name from the network that is not a policy name is '?'
check "the client is told, the partner_id not quoted" grep -qF "may not push a batch of partner '?'" "$E2E_TMP/e"
check "the client's stderr holds no control byte or bidi override" raw "$E2E_TMP/e"
net_stop
check "the gateway log: one JSON object a line, no control character or bidi override in any value" python3 -c "
import json, sys
vals = [str(v) for l in open(sys.argv[1]) for v in json.loads(l).values()]
assert vals and not any(c in v for v in vals for c in '\x1b\x07\r\n\u202e')
" "$LOG"
check "the gateway log holds no control byte or bidi override" raw "$LOG"
e2e_done
