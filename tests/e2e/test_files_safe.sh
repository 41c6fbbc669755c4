#!/bin/sh
# Files: every output goes through one safe writer (base/outfile.h), so a
# symlink planted at the old fixed temporary name or at the output itself
# cannot redirect it; databases, spool and outputs are private; key files must
# be this user's; the gateway cannot dump core and keeps its keys in locked pages.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo

net_setup "$D" 300
check "demo exits 0" [ $? -eq 0 ]
mode() { stat -c %a "$1"; }

# --- symlink attacks on outputs --------------------------------------------------------------
echo "precious" >"$E2E_TMP/victim"
ln -s "$E2E_TMP/victim" "$E2E_TMP/out.csv.tmp"
ln -s "$E2E_TMP/victim" "$E2E_TMP/out2.csv"
for o in out out2; do
	"$CROSSGATE" export --db "$D/gateway.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
		--purpose analytics --out "$E2E_TMP/$o.csv" >"$E2E_TMP/o" 2>&1
	check "export to $o.csv with a planted symlink exits 0" [ $? -eq 0 ]
done
eq "the victim of both symlinks is intact" "$(cat "$E2E_TMP/victim")" "precious"
check "the export is a regular file, not the symlink" sh -c "[ -f '$E2E_TMP/out2.csv' ] && [ ! -L '$E2E_TMP/out2.csv' ]"
check "the export has its header" sh -c "head -1 '$E2E_TMP/out.csv' | grep -q 'age,region,'"
eq "an export is private (0600)" "$(mode "$E2E_TMP/out.csv")" 600
eq "its provenance file too" "$(mode "$E2E_TMP/out.csv.meta.json")" 600
check "no temporary file is left" sh -c "! ls -A '$E2E_TMP' | grep -q '^\\..*\\.tmp$'"

ln -s "$E2E_TMP/victim" "$E2E_TMP/k.batch.tmp"
"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" --out "$E2E_TMP/k.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" \
	>/dev/null 2>&1
check "agent pack with a planted k.batch.tmp symlink exits 0" [ $? -eq 0 ]
eq "the victim is intact" "$(cat "$E2E_TMP/victim")" "precious"
eq "the batch is private (0600)" "$(mode "$E2E_TMP/k.batch")" 600

# the analytics report, HTML and CSV (a planted symlink at the report and at one of the CSV files)
ln -s "$E2E_TMP/victim" "$E2E_TMP/rep.html"
mkdir -p "$E2E_TMP/repcsv"
ln -s "$E2E_TMP/victim" "$E2E_TMP/repcsv/content_mix.csv"
rep() { "$CROSSGATE" analytics report --ridge "$D/out/ridge.csv" --kmeans "$D/out/kmeans.csv" \
	--aggregates "$D/out/affinity.csv" --policy "$D/policy.yaml" "$@" >"$E2E_TMP/o" 2>&1; }
rep --out "$E2E_TMP/rep.html"
check "analytics report to a planted rep.html symlink exits 0" [ $? -eq 0 ]
rep --format csv --out "$E2E_TMP/repcsv"
check "analytics report --format csv over a planted content_mix.csv symlink exits 0" [ $? -eq 0 ]
eq "the victim is intact" "$(cat "$E2E_TMP/victim")" "precious"
check "the report and the CSV are regular files, not the symlinks" sh -c "[ -f '$E2E_TMP/rep.html' ] &&
	[ ! -L '$E2E_TMP/rep.html' ] && [ -f '$E2E_TMP/repcsv/content_mix.csv' ] && [ ! -L '$E2E_TMP/repcsv/content_mix.csv' ]"
eq "the report is private (0600)" "$(mode "$E2E_TMP/rep.html")" 600

# --- the gateway's files ------------------------------------------------------------------------
eq "the demo's database is 0600" "$(mode "$D/gateway.db")" 600
DB=$E2E_TMP/gw.db
LOG=$E2E_TMP/gateway.log
ln -s "$E2E_TMP/victim" "$E2E_TMP/port.tmp"
net_start "$DB" "$D/policy.yaml" "$LOG"
check "gateway listens (a symlink at port.tmp does not stop it)" [ -n "$NET_PORT" ]
eq "the victim is intact" "$(cat "$E2E_TMP/victim")" "precious"
"$CROSSGATE" agent push $(net_client k) "$E2E_TMP/k.batch" >/dev/null 2>&1
check "a push is committed" [ $? -eq 0 ]
eq "the gateway database is 0600" "$(mode "$DB")" 600
eq "its WAL is 0600" "$(mode "$DB-wal")" 600
eq "its shared-memory file is 0600" "$(mode "$DB-shm")" 600
eq "the spool directory is 0700" "$(mode "$DB.spool")" 700

# --- no core dumps, keys in locked pages -------------------------------------------------------------
check "the gateway's core limit is 0 (/proc/PID/limits)" grep -Eq "^Max core file size +0 +0 " "/proc/$NET_PID/limits"
check "the gateway reads back: not dumpable, core limit 0" \
	grep -q '"event":"listening".*"dumpable":0,"core_limit":0' "$LOG"
check "the TLS private key is in OpenSSL's locked secure heap" grep -q '"tls_key_locked":true' "$LOG"
locked=$(sed -n 's/^VmLck:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$NET_PID/status")
check "the gateway holds locked pages (VmLck $locked kB)" [ "${locked:-0}" -gt 0 ]
net_stop
check "the gateway stops" [ $? -eq 0 ]

# --- refusals: an open spool, a symlinked spool, another user's keys -------------------------------
chmod 755 "$DB.spool"
expect_fail "a spool directory open to others" "spool directory $DB.spool is open to group or others (mode 0755); run: chmod 700" \
	"$CROSSGATE" gateway serve --db "$DB" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
	--key "$D/pki/gateway.key" --listen 127.0.0.1:0 --foreground
chmod 700 "$DB.spool"
mkdir -m 700 "$E2E_TMP/elsewhere"
expect_fail "a spool directory that is a symlink" "spool directory $E2E_TMP/link.spool: is a symlink" \
	"$CROSSGATE" gateway serve --db "$DB" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
	--key "$D/pki/gateway.key" --listen 127.0.0.1:0 --foreground --spool "$(ln -s "$E2E_TMP/elsewhere" "$E2E_TMP/link.spool"; echo "$E2E_TMP/link.spool")"
if [ "$(id -u)" = 0 ]; then
	chown 4242 "$D/pki/gateway.key"
	expect_fail "a TLS key owned by another user" "private key owned by uid 4242, not by this user" \
		"$CROSSGATE" gateway serve --db "$DB" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
		--key "$D/pki/gateway.key" --listen 127.0.0.1:0 --foreground
	chown 0 "$D/pki/gateway.key"
	chown 4242 "$D/keys/gateway/sign.key"
	expect_fail "a gateway key owned by another user" "is owned by uid 4242, not by the user running crossgate" \
		"$CROSSGATE" gateway serve --db "$DB" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --cert "$D/pki/gateway.pem" \
		--key "$D/pki/gateway.key" --listen 127.0.0.1:0 --foreground
	chown 0 "$D/keys/gateway/sign.key"
else
	echo "(not root: the owner checks need chown and are left to the unit tests' root runs)"
fi
e2e_done
