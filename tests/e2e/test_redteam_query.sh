#!/bin/sh
# Red team, aggregate channel (crossgate query), through the real binary only
# (issue 11, item 3; README "Red-team suite"):
#  - differencing: many releases from two gateways that differ by one person
#    (added; then revoked by its partner);
#    the attacker's accuracy at telling them apart must stay within the DP
#    bound for the rho each release was charged (single and composed);
#  - exact counts: every output, sidecar, refusal and error an analyst can
#    obtain, scanned for an exact count about people.
# The attacks (tests/e2e/redteam/rt.py) are shown to win on doctored outputs by
# test_redteam_canfail.sh.  RT_USERS, RT_QCAL, RT_QTEST scale it (make redteam).
. tests/e2e/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/redteam/setup.sh"
RT_QCAL=${RT_QCAL:-20}      # labelled releases per world the attacker learns from
RT_QTEST=${RT_QTEST:-60}    # releases per world it must tell apart
RT_QRHO=${RT_QRHO:-0.5}     # rho per release: sigma = 1, the attacker has a real chance
rt_setup
rt_worlds
query() { "$CROSSGATE" query --keys "$GW" --policy "$QPOL" "$@"; }
QPOL=$RP

# --- differencing: one person added, then that person revoked -----------------
N=$((RT_QCAL + RT_QTEST))
DQ=$T/dq
eq "query: all $((2 * N)) releases with and without the added person answered" \
	"$(rt_worlds_releases "$DQ" "$W0" "$W1" $N query --analyst redteam --rho "$RT_QRHO" --group-by region --metric count)" 0
rt_attack diff-query --label query --dir "$DQ" --group region=North --calib "$RT_QCAL" --batch 2
rt_revoked
DR=$T/dr
eq "query: all $((2 * N)) releases after and before the revocation answered" \
	"$(rt_worlds_releases "$DR" "$W2" "$W1" $N query --analyst redteam --rho "$RT_QRHO" --group-by region --metric count)" 0
rt_attack diff-query --label query-revoked --dir "$DR" --group region=North --calib "$RT_QCAL" \
	--what "one person revoked by partner K"

# --- exact counts from everything an analyst can obtain -------------------------
S=$T/qscan
mkdir -p "$S"
ask() { # ask NAME ARGS...: one request, its answer, sidecar and messages kept in $S
	name=$1; shift
	query --db "$D/gateway.db" --out "$S/$name.csv" "$@" >"$S/$name.stdout" 2>"$S/$name.stderr"
	echo $? >"$S/$name.rc"
}
ask region --analyst redteam --group-by region --metric count --metric sum:k_course_spend_cents \
	--metric mean:g_watch_minutes
ask fine --analyst redteam --group-by age,region,k_top_course_category --metric count
ask fine2 --analyst redteam --group-by age,region,g_top_game_category --metric count --metric mean:k_learning_minutes
ask total --analyst redteam --metric count
ask partition --analyst redteam --group-by k_courses_bought --metric count
ask partition2 --analyst redteam --group-by g_streams_followed,region --metric count --rho 5
ask hist --analyst redteam --metric histogram:k_course_spend_cents --buckets 50
ask eps --analyst redteam --group-by region --metric count --epsilon 0.5
ask marketing --analyst redteam --purpose marketing --group-by region --metric count
ask overbudget --analyst poor --group-by region --metric count --rho 0.05
ask badsum --analyst redteam --metric sum:k_top_course_category
ask badcol --analyst redteam --group-by nosuch --metric count
ask nopurpose --analyst redteam --purpose match --group-by region --metric count
ask stranger --analyst nobody --group-by region --metric count
# Keys from the data (age and region not public): partition selection, and its
# refusal when one subject's key could show.
sed -e 's/generalize: {band: \[10, 20, 40\]}, public: true}/generalize: {band: [10, 20, 40]}}/' \
	-e '/^        public: true$/d' "$RP" >"$T/np.yaml"
check "query: policy copy with age and region not public" sh -c "! grep -q '40\]}, public' '$T/np.yaml'"
QPOL=$T/np.yaml
ask np-age --analyst redteam --group-by age --metric count
ask np-fine --analyst redteam --group-by age,region --metric count --metric mean:k_course_spend_cents
ask np-refused --analyst redteam --group-by age,region --metric count --rho 0.001
QPOL=$RP
eq "query: partition selection with too small a rho is refused" "$(cat "$S/np-refused.rc")" 1
"$CROSSGATE" budget --db "$D/gateway.db" --policy "$RP" >"$S/budget.txt" 2>&1
"$CROSSGATE" budget --db "$D/gateway.db" --policy "$RP" --json >"$S/budget.json" 2>&1
eq "query: the over-budget request was refused" "$(cat "$S/overbudget.rc")" 1
check "query: ... saying the budget is exhausted" grep -q exhausted "$S/overbudget.stderr"
eq "query: the ordinary requests were answered" "$(cat "$S/region.rc" "$S/fine.rc" "$S/total.rc" | tr -d '\n')" 000
# Answer cells are noisy by design (the differencing attack tests them); the
# scan reads every sidecar, message and ledger view, and the demo's own aggregates.
# shellcheck disable=SC2046
rt_attack exact --data "$D/data" --policy "$P" --channel query $(ls "$S"/*.json "$S"/*.stdout "$S"/*.stderr "$S"/budget.txt) \
	"$D/out/affinity.csv.meta.json" $(ls "$DQ"/w0-*.json "$DQ"/w0-*.stdout "$DQ"/w0-*.stderr)
e2e_done
