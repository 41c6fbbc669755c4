#!/bin/sh
# Runs every end-to-end test script in tests/e2e against BUILD/crossgate.
#
# Two lanes run at once (most scripts wait on sockets, sleeps and child
# processes more than they compute); the scripts that measure latency,
# timeouts or kill timing (SERIAL below) then run alone, so that the other
# lane's load cannot move their figures.  Results are printed in the
# scripts' order, each with its time.  CG_E2E_LANES=1 runs everything in
# sequence.
set -u
build=${1:-build}
bin=$(cd "$build" && pwd)/crossgate
lanes=${CG_E2E_LANES:-2}
SERIAL="test_net_flood.sh test_net_faults.sh test_net_load.sh test_net_crash.sh test_privsep.sh test_store_faults.sh"
res=$(mktemp -d)
trap 'rm -rf "$res"' EXIT

# run_one SCRIPT: its output, exit code and seconds into $res
run_one() {
	n=$(basename "$1")
	t0=$(date +%s)
	CROSSGATE="$bin" sh "$1" >"$res/$n.out" 2>&1
	echo $? >"$res/$n.rc"
	echo $(($(date +%s) - t0)) >"$res/$n.secs"
}

is_serial() {
	case " $SERIAL " in *" $(basename "$1") "*) return 0 ;; esac
	return 1
}

i=0
for t in tests/e2e/test_*.sh; do
	is_serial "$t" && continue
	echo "$t" >>"$res/lane$((i % lanes))"
	i=$((i + 1))
done
l=0
while [ "$l" -lt "$lanes" ]; do
	if [ -s "$res/lane$l" ]; then
		(while IFS= read -r t; do run_one "$t"; done <"$res/lane$l") &
	fi
	l=$((l + 1))
done
wait
for t in tests/e2e/test_*.sh; do
	is_serial "$t" && run_one "$t"
done

pass=0; fail=0
for t in tests/e2e/test_*.sh; do
	n=$(basename "$t")
	rc=$(cat "$res/$n.rc" 2>/dev/null || echo 1)
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$res/$n.out" 2>/dev/null | tail -1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p'); p=${p:-0}
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$rc" -ne 0 ]; then grep -v '^ok ' "$res/$n.out" | tail -40; fi
	echo "$n: $p passed, $f failed ($(cat "$res/$n.secs" 2>/dev/null || echo '?') s)"
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
