#!/bin/sh
# I/O faults under SQLite during ingest (store/faultvfs.h): the Nth write or
# fsync fails, for every N the ingest reaches.  Each time the batch is
# rejected with the I/O error in the message and an audit event, the store
# holds exactly what it held before, the audit log verifies, and the same
# batch then commits whole.  The sweep goes on until an N the ingest no
# longer reaches, so every write and fsync of an ingest is covered.
. tests/e2e/lib.sh
D=$E2E_TMP/d
"$CROSSGATE" demo --offline --dir "$D" --users 300 >/dev/null 2>&1
check "demo data and batches" [ -f "$D/batches/g.batch" ]
BASE=$E2E_TMP/base.db
"$CROSSGATE" gateway ingest --db "$BASE" --policy "$D/policy.yaml" --keys "$D/keys/gateway" "$D/batches/k.batch" \
	>/dev/null 2>&1
check "the base store holds K's batch" [ "$(sql "$BASE" "SELECT count(*) FROM batches")" = 1 ]
before=$(sql "$BASE" "SELECT count(*) FROM records")
events=$(sql "$BASE" "SELECT count(*) FROM audit_events")

# sweep KIND: inject KIND:N for N = 1, 2, ... until an ingest succeeds with the fault armed.
sweep() {
	kind=$1; n=0; failed=0; bad_runs=0
	while :; do
		n=$((n + 1))
		[ $n -le 400 ] || { bad "$kind: the sweep did not end by 400"; return; }
		db=$E2E_TMP/f.db
		rm -f "$db" "$db-wal" "$db-shm"; cp "$BASE" "$db"
		CROSSGATE_FAULT_IO=$kind:$n "$CROSSGATE" gateway ingest --db "$db" --policy "$D/policy.yaml" \
			--keys "$D/keys/gateway" "$D/batches/g.batch" >"$E2E_TMP/o" 2>"$E2E_TMP/e"
		rc=$?
		if [ $rc -eq 0 ]; then break; fi
		failed=$((failed + 1))
		# The rejection names the I/O error, the store is as it was, with one rejection event more.
		grep -q "rejected: .*disk I/O error" "$E2E_TMP/e" || { bad_runs=$((bad_runs + 1)); echo "  $kind:$n: $(cat "$E2E_TMP/e")"; }
		[ "$(sql "$db" "SELECT count(*) FROM records")" = "$before" ] || { bad_runs=$((bad_runs + 1)); echo "  $kind:$n: records changed"; }
		[ "$(sql "$db" "SELECT count(*) FROM batches")" = 1 ] || { bad_runs=$((bad_runs + 1)); echo "  $kind:$n: batches changed"; }
		[ "$(sql "$db" "SELECT count(*) FROM audit_events WHERE instr(event, 'rejected') > 0")" = 1 ] ||
			{ bad_runs=$((bad_runs + 1)); echo "  $kind:$n: no rejection event"; }
		"$CROSSGATE" audit verify --db "$db" --pub "$D/keys/gateway/sign.pub" >/dev/null 2>&1 ||
			{ bad_runs=$((bad_runs + 1)); echo "  $kind:$n: audit verify fails"; }
		# And nothing is wedged: the same batch commits whole afterwards.
		"$CROSSGATE" gateway ingest --db "$db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
			"$D/batches/g.batch" >/dev/null 2>&1 &&
			[ "$(sql "$db" "SELECT count(*) FROM batches")" = 2 ] ||
			{ bad_runs=$((bad_runs + 1)); echo "  $kind:$n: the batch does not commit afterwards"; }
	done
	check "$kind faults: $failed injected, each a clean rejection with the store unchanged" \
		[ "$failed" -ge 1 -a "$bad_runs" -eq 0 ]
	check "$kind: with the fault past the ingest's last $kind, the batch commits" \
		[ "$(sql "$db" "SELECT count(*) FROM batches")" = 2 ]
}
sweep write
sweep sync

# A disk that keeps failing: not even the rejection can be logged, and the message says so.
db=$E2E_TMP/p.db; cp "$BASE" "$db"
CROSSGATE_FAULT_IO=write:1+ "$CROSSGATE" gateway ingest --db "$db" --policy "$D/policy.yaml" \
	--keys "$D/keys/gateway" "$D/batches/g.batch" >/dev/null 2>"$E2E_TMP/e"
check "a persistent fault is refused" [ $? -ne 0 ]
check "and says the rejection could not be logged" grep -q "could not be logged" "$E2E_TMP/e"
eq "the store is unchanged" "$(sql "$db" "SELECT count(*) FROM records")" "$before"
eq "and so is its log" "$(sql "$db" "SELECT count(*) FROM audit_events")" "$events"

# A mistyped fault is an error, never a run without the fault.
expect_fail "a malformed CROSSGATE_FAULT_IO" "CROSSGATE_FAULT_IO" \
	env CROSSGATE_FAULT_IO=write:x "$CROSSGATE" gateway ingest --db "$db" --policy "$D/policy.yaml" \
	--keys "$D/keys/gateway" "$D/batches/g.batch"
e2e_done
