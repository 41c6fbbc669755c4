# Helpers for the network end-to-end tests (sourced after lib.sh).  Every
# server started here is killed when the test exits, whatever happens.
NET_PIDS=""
trap 'for p in $NET_PIDS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$E2E_TMP"' EXIT INT TERM

# net_setup DIR USERS: a network demo (keys, certificates, policy) to build on
net_setup() {
	"$CROSSGATE" demo --dir "$1" --users "$2" --json >"$E2E_TMP/demo.json" 2>"$E2E_TMP/demo.err"
}

# net_policy SRC DST [sed expressions...]: a copy of the policy with limits changed (same directory, so
# that network.ca still resolves)
net_policy() {
	src=$1; dst=$2; shift 2
	cp "$src" "$dst"
	for e in "$@"; do sed -i "$e" "$dst"; done
}

# net_start DB POLICY LOG [PORT]: gateway in the foreground (background job); sets NET_PID and NET_PORT
net_start() {
	db=$1; pol=$2; log=$3; port=${4:-0}
	rm -f "$E2E_TMP/port"
	"$CROSSGATE" gateway serve --db "$db" --policy "$pol" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
		--key "$D/pki/gateway.key" --listen "127.0.0.1:$port" --port-file "$E2E_TMP/port" --foreground \
		2>>"$log" &
	NET_PID=$!
	NET_PIDS="$NET_PIDS $NET_PID"
	i=0
	while [ ! -s "$E2E_TMP/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	NET_PORT=$(cat "$E2E_TMP/port" 2>/dev/null)
	[ -n "$NET_PORT" ]
}

# net_stop: SIGTERM and wait (bounded); returns the server's exit status
net_stop() {
	kill -TERM "$NET_PID" 2>/dev/null
	i=0
	while kill -0 "$NET_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$NET_PID" 2>/dev/null; then kill -9 "$NET_PID"; wait "$NET_PID" 2>/dev/null; return 99; fi
	wait "$NET_PID"
}

# client options for principal NAME (k, g, analyst, auditor, or a file stem under DIR/pki)
net_client() {
	echo "--gateway localhost:$NET_PORT --ca $D/pki/ca.pem --cert $D/pki/$1.pem --key $D/pki/$1.key --timeout 20"
}

# audit_has "what" SUBSTRING DB: a refusal in the audit log carries SUBSTRING
audit_has() {
	q=$(printf '%s' "$2" | sed "s/'/''/g")
	# The server logs a refusal after it has closed the connection: give it a moment (up to 10 s).
	i=0
	while :; do
		n=$(sql "$3" "SELECT count(*) FROM audit_events WHERE instr(event, 'refused') > 0 AND instr(event, '$q') > 0")
		[ "${n:-0}" -ge 1 ] || [ $i -ge 100 ] && break
		sleep 0.1; i=$((i + 1))
	done
	if [ "${n:-0}" -ge 1 ]; then ok "$1: audit event"; else bad "$1: no refused audit event with '$2'"; fi
}

# pack_chunks PARTNER CSV ROWS POLICY OUTDIR: split the CSV into files of ROWS rows and pack each
pack_chunks() {
	p=$1; csv=$2; rows=$3; pol=$4; out=$5
	mkdir -p "$out"
	head -1 "$csv" >"$out/header"
	tail -n +2 "$csv" | split -l "$rows" -d -a 4 - "$out/$p-"
	for f in "$out/$p"-[0-9]*; do
		case "$f" in *.csv|*.batch) continue;; esac
		cat "$out/header" "$f" >"$f.csv" && rm -f "$f"
		"$CROSSGATE" agent pack --policy "$pol" --partner "$p" --input "$f.csv" --out "$f.batch" \
			--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" \
			--gateway-pub "$D/keys/gateway/enc.pub" >/dev/null 2>&1 || return 1
	done
}
