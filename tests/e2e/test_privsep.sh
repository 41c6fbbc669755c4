#!/bin/sh
# Privilege separation (gateway/monitor.h, gateway/sandbox.h): the network
# worker holds no gateway key, its sandbox stops it from opening the key
# files or reading the monitor's memory, and a worker killed mid-push is
# restarted by the monitor without losing an acknowledged batch.  The
# demo's gateway (`crossgate demo`, network mode) is the same: a monitor and
# a sandboxed worker, as `gateway serve` runs.
#
# The probe: CROSSGATE_TEST_SANDBOX_PROBE=1 makes the worker, once set up,
# try to open the three key files and process_vm_readv() the monitor, and
# log each outcome; CROSSGATE_TEST_NO_SANDBOX=1 runs it without the sandbox,
# to show the same probe succeeds then (the test could fail).
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo

# worker_pid LOG N: the pid in the Nth "listening" line (the worker's)
worker_pid() {
	grep '"event":"listening"' "$1" | sed -n "${2}p" | sed 's/.*"pid":\([0-9]*\).*/\1/'
}
# alive PID: the process exists and is not a zombie
alive() {
	s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
	[ -n "$s" ] && [ "$s" != Z ]
}
# status PID FIELD: a field of /proc/PID/status (PPid, Seccomp: 2 is a seccomp filter)
status() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null
}
# children PID: the pids whose parent is PID
children() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$1" '$4 == p { print $1 }' | tr '\n' ' ' | sed 's/ $//'
}

# keysearch.py KEYDIR LABEL=PID... -- KEYFILE...: for each process, "LABEL" and the key files (paths under
# KEYDIR) whose secret is somewhere in its readable memory, or "none"; "skip" when an address space is
# too large to read (needs root: /proc/PID/mem)
cat >"$E2E_TMP/keysearch.py" <<'EOF'
import base64, sys
keydir, args = sys.argv[1], sys.argv[2:]
procs = [(a.split("=")[0], int(a.split("=")[1])) for a in args[:args.index("--")]]
secrets = []
for name in args[args.index("--") + 1:]:
    for line in open(f"{keydir}/{name}"):
        if line.startswith("#") or not line.strip():
            continue
        raw = base64.b64decode(line.split()[2])
        secrets.append((name, raw[:32]))   # Ed25519: the seed half is secret
def regions(pid):
    for m in open(f"/proc/{pid}/maps"):
        a, b = (int(x, 16) for x in m.split()[0].split("-"))
        if "r" in m.split()[1] and "[vvar" not in m and "[vsyscall" not in m:
            yield a, b
def found(pid):
    hits = set()
    with open(f"/proc/{pid}/mem", "rb", 0) as f:
        for a, b in regions(pid):
            try:
                f.seek(a)
                data = f.read(b - a)
            except OSError:
                continue
            for name, s in secrets:
                if s in data:
                    hits.add(name)
    return sorted(hits)
# A sanitizer build reserves terabytes of shadow memory: too much to read.
if any(b - a > 64 << 30 for _, pid in procs for a, b in regions(pid)):
    print("skip")
else:
    for label, pid in procs:
        print(label, " ".join(found(pid)) or "none")
EOF

# ---- the demo's gateway is `gateway serve`'s: a monitor and a sandboxed worker ----
# The network demo (the keys, certificates and policy used below) runs in the background.  Once its
# gateway's worker has logged its sandbox, the demo is frozen (SIGSTOP; its gateway goes on alone)
# while the processes are looked at, then let go to finish.
"$CROSSGATE" demo --dir "$D" --users 9000 --json >"$E2E_TMP/demo.json" 2>"$E2E_TMP/demo.err" &
DEMO=$!
NET_PIDS="$NET_PIDS $DEMO"
i=0
while alive "$DEMO" && ! grep -q '"event":"sandbox"' "$D/gateway.log" 2>/dev/null && [ $i -lt 6000 ]; do
	sleep 0.01; i=$((i + 1))
done
kill -STOP "$DEMO" 2>/dev/null
check "during the demo, its gateway's worker logs its sandbox as gateway serve's does" \
	grep -q '"event":"sandbox","process":"worker","state":"seccomp' "$D/gateway.log"
DMON=$(cat "$D/gateway.pid" 2>/dev/null)
DW=$(worker_pid "$D/gateway.log" 1)
check "the demo's gateway has a monitor, the demo's child, whose pid is in gateway.pid ($DMON)" \
	[ -n "$DMON" -a "$(status "$DMON" PPid)" = "$DEMO" ]
check "and a worker, the monitor's only child, that serves ($DW)" \
	[ -n "$DW" -a "$DW" != "$DMON" -a "$(children "$DMON")" = "$DW" ]
eq "the worker runs under a seccomp filter" "$(status "$DW" Seccomp)" "2"
eq "the monitor, which holds the keys, does not" "$(status "$DMON" Seccomp)" "0"
if [ "$(id -u)" -eq 0 ]; then
	ls -l "/proc/$DW/fd" "/proc/$DMON/fd" >"$E2E_TMP/dfds" 2>&1
	check "neither process has any of the demo's files open (steps.sh, its output), only the log as stderr" \
		sh -c "[ \$(grep -c ' 2 -> $D/gateway.log\$' '$E2E_TMP/dfds') -eq 2 ] &&
			! grep -q -e steps.sh -e demo.json -e demo.err '$E2E_TMP/dfds'"
	python3 "$E2E_TMP/keysearch.py" "$D/keys" worker="$DW" monitor="$DMON" -- gateway/enc.key gateway/sign.key \
		gateway/storage.key match.key k/sign.key g/sign.key >"$E2E_TMP/dmem.out" 2>&1
	if grep -qx skip "$E2E_TMP/dmem.out"; then
		echo "skip: a sanitizer build's address space (terabytes of shadow) is too large to search for the keys"
	else
		check "the demo's monitor holds the three gateway keys (the search finds them)" \
			grep -q '^monitor .*gateway/enc.key gateway/sign.key gateway/storage.key' "$E2E_TMP/dmem.out"
		eq "the demo's worker holds none of them, nor the partners' match or signing keys" \
			"$(sed -n 's/^worker //p' "$E2E_TMP/dmem.out")" "none"
	fi
else
	echo "skip: reading the demo gateway's descriptors and memory needs root"
fi
kill -CONT "$DEMO" 2>/dev/null
wait "$DEMO"
check "network demo exits 0" [ $? -eq 0 ]
python3 - "$E2E_TMP/demo.json" >"$E2E_TMP/demo.check" 2>&1 <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["mode"] == "network" and d["gateway_exit"] == 0, d
assert os.path.getsize(d["report"]) > 0 and os.path.getsize(d["report_json"]) > 0, d
PY
check "the demo ends with its report, its gateway stopped with exit status 0" [ $? -eq 0 ]
check "the demo's monitor and worker are gone, and gateway.pid with them" \
	[ -n "$DMON" -a ! -d "/proc/$DMON" -a -n "$DW" -a ! -d "/proc/$DW" -a ! -e "$D/gateway.pid" ]
# probe LOG WHAT: the outcomes of the probe's WHAT lines, one word each
probe() {
	grep '"event":"sandbox-probe"' "$1" | grep "\"what\":\"$2\"" | sed 's/.*"outcome":"\([a-z]*\)".*/\1/' |
		tr '\n' ' ' | sed 's/ $//'
}

# ---- without the sandbox the probe succeeds: it is a real attempt ----
LOG0=$E2E_TMP/nosandbox.log
export CROSSGATE_TEST_NO_SANDBOX=1 CROSSGATE_TEST_SANDBOX_PROBE=1
net_start "$E2E_TMP/nosandbox.db" "$D/policy.yaml" "$LOG0"
unset CROSSGATE_TEST_NO_SANDBOX
check "gateway without sandbox listens" [ -n "$NET_PORT" ]
check "the unsandboxed worker says so" grep -q '"state":"off (CROSSGATE_TEST_NO_SANDBOX)"' "$LOG0"
eq "without the sandbox the worker can open the key files" "$(probe "$LOG0" open-key-file)" "allowed allowed allowed"
if [ "$(id -u)" -eq 0 ]; then
	eq "without the sandbox the worker (root) can read the monitor's memory" "$(probe "$LOG0" read-monitor-memory)" \
		"allowed"
	eq "without the sandbox the worker (root) can read /proc/MONITOR/mem" "$(probe "$LOG0" open-monitor-mem)" "allowed"
else
	echo "skip: not root, the kernel refuses process_vm_readv of the non-dumpable monitor without the sandbox too"
fi
check "unsandboxed gateway stops cleanly" net_stop

# ---- with the sandbox ----
LOG=$E2E_TMP/gateway.log
DB=$E2E_TMP/privsep.db
net_start "$DB" "$D/policy.yaml" "$LOG"
unset CROSSGATE_TEST_SANDBOX_PROBE
check "sandboxed gateway listens" [ -n "$NET_PORT" ]
MON=$NET_PID
PORT=$NET_PORT
check "the worker runs under seccomp" grep -q '"event":"sandbox".*"state":"seccomp' "$LOG"
if grep -q '"event":"sandbox".*"state":"seccomp and landlock"' "$LOG"; then
	ok "the worker runs under Landlock"
	eq "the sandboxed worker cannot open a key file" "$(probe "$LOG" open-key-file)" "denied denied denied"
	check "each refusal names the errno" [ "$(grep '"what":"open-key-file"' "$LOG" | grep -c 'Permission denied')" -eq 3 ]
else
	echo "skip: this kernel has no Landlock ($(grep '"landlock":' "$LOG" | head -1)); key files are not refused by path"
fi
eq "the sandboxed worker cannot read the monitor's memory" "$(probe "$LOG" read-monitor-memory)" "denied"
eq "nor open /proc/MONITOR/mem" "$(probe "$LOG" open-monitor-mem)" "denied"
W1=$(worker_pid "$LOG" 1)
check "the worker is a process of its own, the monitor's child" \
	[ -n "$W1" -a "$W1" != "$MON" -a "$(awk '{print $4}' "/proc/$W1/stat" 2>/dev/null)" = "$MON" ]

# ---- the worker's memory holds no gateway key; the monitor's does (the search works) ----
if [ "$(id -u)" -eq 0 ]; then
	python3 "$E2E_TMP/keysearch.py" "$D/keys" worker="$W1" monitor="$MON" -- gateway/enc.key gateway/sign.key \
		gateway/storage.key >"$E2E_TMP/mem.out" 2>&1
	if grep -qx skip "$E2E_TMP/mem.out"; then
		echo "skip: a sanitizer build's address space (terabytes of shadow) is too large to search for the keys"
	else
		eq "the monitor's memory holds the three keys (the search finds them)" \
			"$(sed -n 's/^monitor //p' "$E2E_TMP/mem.out")" "gateway/enc.key gateway/sign.key gateway/storage.key"
		eq "the worker's memory holds none of them" "$(sed -n 's/^worker //p' "$E2E_TMP/mem.out")" "none"
	fi
else
	echo "skip: reading /proc/PID/mem of the processes needs root"
fi

# ---- kill -9 the worker mid-push: the monitor restarts it, nothing acknowledged is lost ----
pack_chunks k "$D/data/k_users.csv" 1000 "$D/policy.yaml" "$E2E_TMP/b" &&
	pack_chunks g "$D/data/g_viewers.csv" 1000 "$D/policy.yaml" "$E2E_TMP/b"
check "batches packed" [ $? -eq 0 ]
nb=$(ls "$E2E_TMP/b"/*.batch | wc -l)
for p in k g; do
	"$CROSSGATE" agent push $(net_client $p) --retries 12 "$E2E_TMP/b/$p"-*.batch >"$E2E_TMP/$p.out" 2>"$E2E_TMP/$p.err" &
	eval "AGENT_$p=\$!"
	NET_PIDS="$NET_PIDS $!"
done
i=0
while [ "$(grep -c '"event":"push"' "$LOG")" -lt 3 ] && [ $i -lt 500 ]; do
	sleep 0.01; i=$((i + 1))
done
kill -9 "$W1"
acked_at_kill=$(cat "$E2E_TMP/k.out" "$E2E_TMP/g.out" | grep -c "committed\|duplicate")
check "the kill came after some acknowledgements and before the last ($acked_at_kill of $nb)" \
	[ "$acked_at_kill" -ge 1 -a "$acked_at_kill" -lt "$nb" ]
wait "$AGENT_k"; rk=$?
wait "$AGENT_g"; rg=$?
check "the monitor outlives its worker" kill -0 "$MON"
check "the monitor logs the worker's death by SIGKILL" grep -q '"event":"worker-died","process":"monitor","signal":9,' "$LOG"
W2=$(worker_pid "$LOG" 2)
check "a new worker serves ($W2)" [ -n "$W2" -a "$W2" != "$W1" ]
check "K's agent completes (retries)" [ $rk -eq 0 ]
check "G's agent completes (retries)" [ $rg -eq 0 ]
eq "every batch was acknowledged once by its agent" "$(cat "$E2E_TMP/k.out" "$E2E_TMP/g.out" | grep -c "committed\|duplicate")" "$nb"
eq "every batch is stored" "$(sql "$DB" "SELECT count(*) FROM batches")" "$nb"
eq "no batch is stored twice" "$(sql "$DB" "SELECT count(DISTINCT batch_id) FROM batches")" "$nb"
# a push after the restart goes through the new worker and its monitor channel
"$CROSSGATE" agent push $(net_client k) "$E2E_TMP/b/k-0000.batch" >"$E2E_TMP/again.out" 2>&1
check "a batch pushed again after the restart is a duplicate" grep -q "duplicate" "$E2E_TMP/again.out"
"$CROSSGATE" export $(net_client analyst) --purpose analytics --out "$E2E_TMP/x.csv" >"$E2E_TMP/x.out" 2>&1
check "an export through the new worker (batch keys opened by the monitor)" grep -q "synthetic rows" "$E2E_TMP/x.out"
check "the gateway stops cleanly (SIGTERM to the monitor)" net_stop
check "no process is left" [ ! -d "/proc/$W2" ]
"$CROSSGATE" audit verify --db "$DB" --pub "$D/keys/gateway/sign.pub" >"$E2E_TMP/verify.out" 2>&1
check "audit verify passes after the worker's crash" grep -q "audit log ok" "$E2E_TMP/verify.out"

e2e_done
