#!/bin/sh
# Load test of the gateway over mutual TLS on loopback: 8 concurrent agents
# (4 with K's certificate, 4 with G's) push TOTAL records in batches of about
# BATCH records; the gateway must then hold exactly the records acknowledged
# (less those that withdrawals in later batches erased), which must be every
# record packed (but those a withdrawal already ingested kept out).  Prints p50/p99 push latency (one push =
# connect, handshake, stream, commit, answer) and records/s.
#
# usage: CROSSGATE=build/crossgate sh tests/net_load.sh TOTAL [BATCH] [WORKDIR]
# Exit 0 when the counts agree.  Everything runs on 127.0.0.1 and is bounded in
# time (each agent gets at most LOAD_TIMEOUT seconds, default 900).
set -u
: "${CROSSGATE:?set CROSSGATE to the crossgate binary}"
total=${1:?TOTAL records}
batch=${2:-$((total / 80))}
keep=${3:+1}
work=${3:-$(mktemp -d)}
agents=8
limit=${LOAD_TIMEOUT:-900}
SRV=""
cleanup() { [ -n "$SRV" ] && kill -9 "$SRV" 2>/dev/null; [ -z "$keep" ] && rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work"
D=$work/demo
# About 88% of the generator's users are packed (the rest lack consent or are malformed).
users=$(( (total / 2) * 100 / 88 + 200 ))
"$CROSSGATE" demo --dir "$D" --users "$users" --json >"$work/demo.json" 2>"$work/demo.err" || {
	echo "net_load: demo failed"; tail -5 "$work/demo.err"; exit 1; }

# Each agent gets a quarter of one partner's rows, packed into batches of `batch` rows.
mkdir -p "$work/b"
i=0
for p in k g; do
	csv=$D/data/$([ $p = k ] && echo k_users || echo g_viewers).csv
	rows=$(($(wc -l <"$csv") - 1))
	share=$(((rows + 3) / 4))
	tail -n +2 "$csv" | split -l "$share" -d -a 1 - "$work/b/$p-share-"
	for s in 0 1 2 3; do
		dir=$work/b/agent$i; mkdir -p "$dir"
		split -l "$batch" -d -a 4 "$work/b/$p-share-$s" "$dir/part-"
		for f in "$dir"/part-*; do
			{ head -1 "$csv"; cat "$f"; } >"$f.csv" && rm -f "$f"
		done
		echo "$p" >"$dir/partner"
		i=$((i + 1))
	done
done
# pack in parallel (2 at a time), the CSV of each batch into its batch file
ls "$work"/b/agent*/part-*.csv | while read -r f; do
	p=$(cat "$(dirname "$f")/partner")
	echo "$p $f"
done | xargs -P 2 -n 2 sh -c '"$0" agent pack --policy "$1/policy.yaml" --partner "$2" --input "$3" --out "${3%.csv}.batch" \
	--match-key "$1/keys/match.key" --sign-key "$1/keys/$2/sign.key" --gateway-pub "$1/keys/gateway/enc.pub" \
	>"${3%.csv}.pack" 2>&1' "$CROSSGATE" "$D"
packed=$(cat "$work"/b/agent*/part-*.pack | sed -n 's/.* \([0-9]*\) records packed into.*/\1/p' | awk '{s+=$1} END {print s+0}')
nbatch=$(ls "$work"/b/agent*/*.batch | wc -l)
bytes=$(cat "$work"/b/agent*/*.batch | wc -c)

DB=$work/load.db
rm -f "$DB" "$DB-wal" "$DB-shm" "$work/port"
"$CROSSGATE" gateway serve --db "$DB" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
	--key "$D/pki/gateway.key" --listen 127.0.0.1:0 --port-file "$work/port" --foreground 2>"$work/gateway.log" &
SRV=$!
n=0; while [ ! -s "$work/port" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
port=$(cat "$work/port")

t0=$(date +%s.%N)
pids=""
for i in $(seq 0 $((agents - 1))); do
	dir=$work/b/agent$i; p=$(cat "$dir/partner")
	timeout "$limit" "$CROSSGATE" agent push --gateway "localhost:$port" --ca "$D/pki/ca.pem" --cert "$D/pki/$p.pem" \
		--key "$D/pki/$p.key" --timeout 120 "$dir"/*.batch >"$dir/push.out" 2>"$dir/push.err" &
	pids="$pids $!"
done
fail=0
for pid in $pids; do wait "$pid" || fail=1; done
t1=$(date +%s.%N)
acked=$(cat "$work"/b/agent*/push.out | sed -n 's/.*: committed: \([0-9]*\) records.*/\1/p' | awk '{s+=$1} END {print s+0}')
stored=$(sqlite3 -batch -noheader "$DB" "SELECT count(*) FROM records")
kill -TERM "$SRV"; wait "$SRV"; srv_rc=$?; SRV=""
# A user whose rows the split put in two batches, the newer without match, is
# withdrawn: the batch that says so erases the record the other one stored
# (its ingest event counts it: erased), or, arriving first, keeps the other
# one from being stored (skipped_revoked).
set -- $("$CROSSGATE" audit show --db "$DB" --format jsonl | python3 -c 'import json, sys
ev = [e for e in map(json.loads, sys.stdin) if e.get("action") == "ingest" and e.get("outcome") == "ok"]
print(sum(e.get("counts", {}).get("erased", 0) for e in ev), sum(e.get("counts", {}).get("skipped_revoked", 0) for e in ev))')
erased=$1 skipped=$2
python3 - "$t0" "$t1" "$packed" "$acked" "$stored" "$nbatch" "$bytes" "$agents" "$work"/b/agent*/push.out <<'PY'
import re, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
packed, acked, stored, nbatch, size, agents = map(int, sys.argv[3:9])
lat = []
for f in sys.argv[9:]:
    for line in open(f):
        m = re.search(r"attempts?, ([0-9.]+) s$", line.strip())
        if m:
            lat.append(float(m.group(1)))
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
secs = t1 - t0
print(f"net_load: {agents} agents, {nbatch} batches, {packed} records packed, {acked} acknowledged, {stored} stored")
print(f"net_load: push latency p50 {pct(0.50) * 1000:.0f} ms, p99 {pct(0.99) * 1000:.0f} ms; "
      f"{stored / secs:,.0f} records/s, {size / secs / 1e6:.1f} MB/s over {secs:.2f} s")
PY
[ $fail -eq 0 ] || { echo "net_load: an agent failed"; tail -3 "$work"/b/agent*/push.err; exit 1; }
[ "$srv_rc" -eq 0 ] || { echo "net_load: the gateway exited $srv_rc"; exit 1; }
[ "$packed" -eq "$((acked + skipped))" ] && [ "$acked" -eq "$((stored + erased))" ] || {
	echo "net_load: counts differ ($packed packed, $acked acknowledged, $stored stored; withdrawals in other" \
		"batches: $skipped kept out, $erased erased)"; exit 1; }
echo "net_load: ok: the gateway holds exactly the records sent ($stored), but for the users withdrawn in other" \
	"batches ($skipped kept out, $erased erased)"
