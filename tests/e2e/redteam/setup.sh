# Shared set-up of the red-team tests (sourced after tests/e2e/lib.sh).
# shellcheck disable=SC2034  # W0, W1, W2, TARGET, H, RP are used by the scripts that source this file
#
# Builds, through the real binary only:
#   $D  the demo's data and gateway (crossgate demo --offline, seed 1, $RT_USERS users)
#   $H  a holdout population: the same generator with seed 2, in no release
#   $RP a policy copy with analysts for the attacks: 'redteam' (a budget large
#       enough for hundreds of releases, row exports), 'poor' (a tiny budget),
#       'aggonly' (no row exports)
# and, with rt_worlds, two gateways that differ by one person:
#   $W0 a copy of the demo's gateway.db, $W1 the same plus the person of
#   rt.py target (a matched K+G user consenting to analytics), $TARGET their tuple.
# and, with rt_revoked, $W2: $W1 after partner K revoked that person (a
# signed revocation batch ingested), to attack releases before and after.
# rt_attack ARGS... runs tests/e2e/redteam/rt.py and turns its PASS/FAIL lines
# into ok/bad, printing its "redteam:" figures.
RT_USERS=${RT_USERS:-3000}
RT_DIR=$(cd "$(dirname "$0")" && pwd)/redteam
RT_PY=$RT_DIR/rt.py
T=$E2E_TMP
D=$T/demo
H=$T/holdout
GW=$D/keys/gateway
P=$D/policy.yaml
RP=$T/redteam-policy.yaml

rt_attack() {
	if ! python3 "$RT_PY" "$@" >"$T/rt.out" 2>"$T/rt.err"; then
		cat "$T/rt.out"
		bad "rt.py $1 crashed: $(tail -3 "$T/rt.err")"
		return
	fi
	while IFS= read -r line; do
		case $line in
		"PASS "*) ok "${line#PASS }" ;;
		"FAIL "*) bad "${line#FAIL }" ;;
		*) echo "$line" ;;
		esac
	done <"$T/rt.out"
}

rt_setup() {
	"$CROSSGATE" demo --offline --dir "$D" --users "$RT_USERS" --json >"$T/demo.json" 2>"$T/demo.err"
	check "red team: demo data and gateway for $RT_USERS users" [ $? -eq 0 ]
	"$CROSSGATE" demo --offline --dir "$H" --users "$RT_USERS" --seed 2 --json >/dev/null 2>&1
	check "red team: holdout population (seed 2)" [ -s "$H/data/k_users.csv" ]
	python3 - "$P" "$RP" <<'PY'
import sys
text = open(sys.argv[1]).read()
anchor = '  - {name: auditor, role: auditor,'
assert anchor in text
extra = "".join('  - {name: %s, role: analyst, identity: "crossgate:analyst:%s", purposes: [analytics]%s}\n' % (n, n, rest)
    for n, rest in (("redteam", ", row_exports: [analytics], budget_rho: 1000000, max_exports: 1000000"),
                    ("poor", ", budget_rho: 0.01"), ("aggonly", "")))
open(sys.argv[2], "w").write(text.replace(anchor, extra + anchor, 1))
PY
	"$CROSSGATE" policy check "$RP" >/dev/null 2>"$T/pc.err"
	check "red team: policy copy with the attackers' analysts is valid" [ $? -eq 0 ]
}

rt_worlds() {
	W0=$T/world0.db
	W1=$T/world1.db
	TARGET=$T/target.json
	sql "$D/gateway.db" ".backup '$W0'" && sql "$D/gateway.db" ".backup '$W1'"
	python3 "$RT_PY" target --dir "$T" --policy "$P"
	for p in k g; do
		"$CROSSGATE" agent pack --policy "$P" --partner $p --input "$T/$p-one.csv" --out "$T/$p-one.batch" \
			--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null 2>&1
	done
	"$CROSSGATE" gateway ingest --db "$W1" --policy "$P" --keys "$GW" "$T/k-one.batch" "$T/g-one.batch" >"$T/ingest.out" 2>&1
	eq "red team: world 1 = world 0 plus one matched person (one record per side)" \
		"$(grep -c "committed 1 records" "$T/ingest.out")" 2
}

rt_revoked() {
	W2=$T/world2.db
	sql "$W1" ".backup '$W2'"
	printf 'email\nred.team.target@example.org\n' >"$T/k-revoke.csv"
	"$CROSSGATE" agent revoke --policy "$P" --partner k --input "$T/k-revoke.csv" --out "$T/k-revoke.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" >/dev/null 2>"$T/revoke.err"
	check "red team: partner K's revocation batch for the added person" [ -s "$T/k-revoke.batch" ]
	"$CROSSGATE" gateway ingest --db "$W2" --policy "$P" --keys "$GW" "$T/k-revoke.batch" >"$T/revoke.out" 2>&1
	check "red team: world 2 = world 1 after the revocation is ingested" [ $? -eq 0 ]
}

# rt_worlds_releases DIR DB0 DB1 N CMD...: N releases in each world, alternating,
# CMD --db DB --out DIR/w<world>-<i>.csv (messages beside them); prints failures.
rt_worlds_releases() {
	dir=$1 db0=$2 db1=$3 n=$4
	shift 4
	mkdir -p "$dir"
	i=0 failed=0
	while [ "$i" -lt "$n" ]; do
		for w in 0 1; do
			db=$db0; [ "$w" -eq 1 ] && db=$db1
			"$@" --db "$db" --out "$dir/w$w-$i.csv" >"$dir/w$w-$i.stdout" 2>"$dir/w$w-$i.stderr" ||
				failed=$((failed + 1))
		done
		i=$((i + 1))
	done
	echo "$failed"
}
