#!/bin/sh
# Faults at scale: kill -9 the gateway KILLS times at random moments while
# partners push, an analyst queries and an analyst exports, restarting it on
# the same port each time.  After every restart the audit log must verify;
# at the end every acknowledged batch is stored exactly once and whole, no
# batch is half there, the budget ledger holds one charge per budget-charge
# audit event (no double charge, none unlogged), and every answer an analyst
# received was charged.
#
#   tests/faults.sh BUILD_DIR [KILLS]      (make faults KILLS=100)
#
# Loopback only, bounded in time: each round lasts at most a few seconds.
set -u
build=${1:-build}
KILLS=${2:-100}
CROSSGATE=$(cd "$build" && pwd)/crossgate
export CROSSGATE
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo

net_setup "$D" 3000
check "network demo" [ -s "$D/policy.yaml" ]
# A budget no round can exhaust, so that every query is charged and answered.
net_policy "$D/policy.yaml" "$D/faults.yaml" 's/budget_rho: 2.0/budget_rho: 100000.0/' \
	's/max_exports: 100}/max_exports: 100000}/'
pack_chunks k "$D/data/k_users.csv" 60 "$D/faults.yaml" "$E2E_TMP/b" &&
	pack_chunks g "$D/data/g_viewers.csv" 60 "$D/faults.yaml" "$E2E_TMP/b"
check "batches packed" [ $? -eq 0 ]
ls "$E2E_TMP/b"/*.batch >"$E2E_TMP/all"
nb=$(wc -l <"$E2E_TMP/all")
DB=$E2E_TMP/faults.db
LOG=$E2E_TMP/gateway.log
POL=$D/faults.yaml
PORT=""
answers=0; verify_fail=0; start_fail=0; killed=0
: >"$E2E_TMP/acked"

rand_ms() { od -An -N2 -tu2 /dev/urandom | awk -v m="$1" '{print $1 % m}'; }

round=0
while [ $round -lt "$KILLS" ]; do
	round=$((round + 1))
	if ! net_start "$DB" "$POL" "$LOG" "${PORT:-0}"; then start_fail=$((start_fail + 1)); sleep 0.5; continue; fi
	PORT=$NET_PORT
	# Clients: two pushes of 4 random batches each, one query, one export.
	for p in 1 2; do
		shuf -n 4 "$E2E_TMP/all" >"$E2E_TMP/pick$p"
		for f in $(cat "$E2E_TMP/pick$p"); do
			case $(basename "$f") in k-*) who=k ;; *) who=g ;; esac
			"$CROSSGATE" agent push $(net_client $who) --retries 0 "$f" >>"$E2E_TMP/push.out" 2>/dev/null
		done &
	done
	"$CROSSGATE" query $(net_client analyst) --out "$E2E_TMP/q$round.csv" --metric count \
		--group-by region --rho 0.01 >/dev/null 2>&1 &
	qpid=$!
	"$CROSSGATE" export $(net_client analyst) --purpose analytics --out "$E2E_TMP/x$round.csv" >/dev/null 2>&1 &
	sleep "0.$(printf '%03d' "$(rand_ms 900)")"
	kill -9 "$NET_PID" 2>/dev/null && killed=$((killed + 1))
	wait 2>/dev/null
	[ -s "$E2E_TMP/q$round.csv" ] && answers=$((answers + 1))
	"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >"$E2E_TMP/v" 2>&1 ||
		{ verify_fail=$((verify_fail + 1)); sed 's/^/    /' "$E2E_TMP/v" | head -3; }
done
sed -n 's/^\(.*\.batch\): \(committed\|duplicate\).*/\1/p' "$E2E_TMP/push.out" | sort -u >"$E2E_TMP/acked"

check "$killed kills of $KILLS rounds" [ "$killed" -ge $((KILLS * 9 / 10)) ]
eq "the gateway always restarted" "$start_fail" 0
eq "audit verify passed after every kill" "$verify_fail" 0

# Every batch once more, with the gateway left running: all must be committed or duplicate.
net_start "$DB" "$POL" "$LOG" "$PORT"
for who in k g; do
	"$CROSSGATE" agent push $(net_client $who) --retries 3 "$E2E_TMP/b/$who"-*.batch >>"$E2E_TMP/final.out" 2>&1
done
net_stop
eq "every batch is acknowledged in the end" "$(grep -c 'committed\|duplicate' "$E2E_TMP/final.out")" "$nb"
acked=$(wc -l <"$E2E_TMP/acked")
dups=$(grep -c 'duplicate' "$E2E_TMP/final.out")
check "every batch acknowledged before a kill ($acked) is a duplicate now ($dups)" [ "$dups" -ge "$acked" ]
for f in $(cat "$E2E_TMP/acked"); do
	grep -q "^$f: duplicate" "$E2E_TMP/final.out" || bad "acknowledged batch $f was lost"
done
eq "each batch is stored once" "$(sql "$DB" "SELECT count(*) - count(DISTINCT batch_id) FROM batches")" 0
# A user whose newer row (in a later chunk) lost match is withdrawn: the
# gateway erases the older record another batch stored, and the ingest event
# of the withdrawing batch counts it (erased).
erased=$("$CROSSGATE" audit show --db "$DB" --format jsonl | python3 -c 'import json, sys
print(sum(e.get("counts", {}).get("erased", 0) for e in map(json.loads, sys.stdin)
          if e.get("action") == "ingest" and e.get("outcome") == "ok"))')
eq "no batch holds more than it stored" \
	"$(sql "$DB" "SELECT count(*) FROM batches b WHERE records < (SELECT count(*) FROM records r WHERE r.batch = b.id)")" 0
eq "no batch is half there: what batches lack is what withdrawals erased ($erased)" \
	"$(sql "$DB" "SELECT sum(records) - (SELECT count(*) FROM records) FROM batches")" "$erased"
charges=$(sql "$DB" "SELECT count(*) FROM budget_ledger")
events=$(sql "$DB" "SELECT count(*) FROM audit_events WHERE instr(event, 'budget-charge') > 0")
eq "one budget-charge event per charge ($charges)" "$events" "$charges"
check "every answer received was charged ($answers answers, $charges charges)" [ "$charges" -ge "$answers" ]
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1
check "audit verify passes at the end" [ $? -eq 0 ]
echo "faults: $killed kills; $nb batches, $acked acknowledged before a kill; $answers query answers, $charges charges"
e2e_done
