#!/bin/sh
# Red team, row channel (crossgate export), through the real binary only
# (issue 11, item 3; README "Red-team suite").  The parser reads today's export
# (pseudonym, exact features) and the synthetic channel's bins alike.
#  - partner re-identification: K and G, holding their users' exact values,
#    pin released rows to one user no more often than chance (a holdout
#    population from another seed); rows matching a real subject's tuple no
#    more often than holdout subjects'; membership inference within the DP
#    bound of the release's rho;
#  - linkage: no row of one export uniquely linked to a row of a second that
#    pins a real subject;
#  - differencing: exports from two gateways that differ by one person (added;
#    then revoked by its partner) cannot be told apart beyond the DP bound;
#  - exact counts: none from the rows, the sidecar, the messages or a refusal.
# On a k-anonymous export of exact features every one of these fails, by design
# of the test.  RT_USERS, RT_XCAL, RT_XTEST scale it (make redteam).
. tests/e2e/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/redteam/setup.sh"
RT_XCAL=${RT_XCAL:-10}      # labelled exports per world the attacker learns from
RT_XTEST=${RT_XTEST:-30}    # exports per world it must tell apart
rt_setup
export_() { "$CROSSGATE" export --keys "$GW" --policy "$RP" --analyst redteam "$@"; }
S=$T/xscan
mkdir -p "$S"

# --- re-identification, membership, linkage --------------------------------------
# (re-identification averages over RT_XREID releases: one release's rows share
# its noise, so its pinned rate moves as a whole)
RT_XREID=${RT_XREID:-8}
made=0
rel=""
for i in $(seq 1 "$RT_XREID"); do
	export_ --db "$D/gateway.db" --out "$S/x$i.csv" >"$S/x$i.stdout" 2>"$S/x$i.stderr" && made=$((made + 1))
	rel="$rel --release $S/x$i.csv"
done
eq "export: $RT_XREID releases of the same data made" "$made" "$RT_XREID"
# shellcheck disable=SC2086
rt_attack rows --label export $rel --data "$D/data" --holdout "$H/data" --policy "$P"

# --- differencing: one person added, then that person revoked ------------------
rt_worlds
N=$((RT_XCAL + RT_XTEST))
DX=$T/dx
eq "export: all $((2 * N)) releases with and without the added person made" \
	"$(rt_worlds_releases "$DX" "$W0" "$W1" $N export_)" 0
rt_attack diff-rows --label export --dir "$DX" --target "$TARGET" --policy "$P" --calib "$RT_XCAL"
rt_revoked
DR=$T/dr
eq "export: all $((2 * N)) releases after and before the revocation made" \
	"$(rt_worlds_releases "$DR" "$W2" "$W1" $N export_)" 0
rt_attack diff-rows --label export-revoked --dir "$DR" --target "$TARGET" --policy "$P" --calib "$RT_XCAL" \
	--what "one person revoked by partner K"

# --- exact counts from the sidecars, messages and refusals -------------------------
"$CROSSGATE" export --db "$D/gateway.db" --keys "$GW" --policy "$RP" --analyst aggonly --out "$S/refused.csv" \
	>"$S/refused.stdout" 2>"$S/refused.stderr"
check "export: an analyst without row exports is refused" [ $? -ne 0 ]
sed 's/^k: 10$/k: 100000/' "$RP" >"$T/khuge.yaml"
"$CROSSGATE" export --db "$D/gateway.db" --keys "$GW" --policy "$T/khuge.yaml" --analyst redteam --out "$S/khuge.csv" \
	>"$S/khuge.stdout" 2>"$S/khuge.stderr"
export_ --db "$D/gateway.db" --purpose marketing --out "$S/mkt.csv" >"$S/mkt.stdout" 2>"$S/mkt.stderr"
"$CROSSGATE" budget --db "$D/gateway.db" --policy "$RP" --json >"$S/budget.json" 2>&1
# (world 0's repeated releases too: a noisy figure equals the truth now and
# then, an exact one every time)
# shellcheck disable=SC2046
rt_attack exact --data "$D/data" --policy "$P" --channel export $(ls "$S"/*.json "$S"/*.stdout "$S"/*.stderr) \
	"$D/out/export.csv.meta.json" $(ls "$DX"/w0-*.json "$DX"/w0-*.stdout "$DX"/w0-*.stderr)
e2e_done
