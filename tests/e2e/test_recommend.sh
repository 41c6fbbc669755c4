#!/bin/sh
# Next-best offers at the partner (crossgate agent recommend) from a DP
# affinity answer alone: on the demo data, whose generator plants
# programming -> strategy, K's programming learners are offered strategy
# games and G's strategy players programming courses; the offers name only
# the partner's own users; bad input is refused with nothing written.
. tests/e2e/lib.sh
D=$E2E_TMP/d
"$CROSSGATE" demo --offline --dir "$D" --users 20000 >/dev/null 2>&1
check "demo" [ -f "$D/gateway.db" ]
"$CROSSGATE" query --db "$D/gateway.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" --out "$E2E_TMP/aff.csv" \
	--group-by k_top_course_category,g_top_game_category --metric count --rho 0.3 >/dev/null 2>&1
check "the analyst's DP affinity answer" [ -s "$E2E_TMP/aff.csv" ]
for p in k g; do
	case $p in k) in=$D/data/k_users.csv ;; g) in=$D/data/g_viewers.csv ;; esac
	"$CROSSGATE" agent recommend --policy "$D/policy.yaml" --partner $p --input "$in" \
		--aggregates "$E2E_TMP/aff.csv" --out "$E2E_TMP/$p.offers.csv" --weight 5 >"$E2E_TMP/$p.out" 2>&1
	check "partner $p's offers are written" grep -q "offers to" "$E2E_TMP/$p.out"
done
python3 - "$D/data/k_users.csv" "$E2E_TMP/k.offers.csv" "$D/data/g_viewers.csv" "$E2E_TMP/g.offers.csv" <<'PY' \
	&& ok "programming learners get strategy first, strategy players programming; only own users" \
	|| bad "the planted affinity is not what the offers follow"
import csv, sys
def check(users, offers, mine, want):
    cat = {r["user_id"]: r[users[1]] for r in csv.DictReader(open(users[0], encoding="utf-8-sig"))}
    rows = list(csv.DictReader(open(offers)))
    assert rows and all(r["user_id"] in cat for r in rows), "an offer for a user the partner does not have"
    got = [r["offer"] for r in rows if cat[r["user_id"]] == mine]
    share = sum(1 for o in got if o == want) / len(got)
    print(f"  {mine} -> {want}: {share:.1%} of {len(got)} users")
    assert share >= 0.9, share
    assert all(float(r["score"]) == round(5 * float(r["lift"]), 4) or abs(float(r["score"]) - 5 * float(r["lift"])) < 1e-3 for r in rows)
check((sys.argv[1], "top_course_category"), sys.argv[2], "programming", "strategy")
check((sys.argv[3], "top_game_category"), sys.argv[4], "strategy", "programming")
PY
check "offers are private to the partner (0600)" [ "$(stat -c %a "$E2E_TMP/k.offers.csv")" = 600 ]
printf 'region,count\nCN,40\n' >"$E2E_TMP/bad.csv"
expect_fail "an answer without the two category columns" "names no category column of partner k" \
	"$CROSSGATE" agent recommend --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--aggregates "$E2E_TMP/bad.csv" --out "$E2E_TMP/none.csv"
check "nothing is written then" [ ! -e "$E2E_TMP/none.csv" ]
expect_fail "a negative weight" "--weight must be" \
	"$CROSSGATE" agent recommend --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--aggregates "$E2E_TMP/aff.csv" --out "$E2E_TMP/none.csv" --weight -1
e2e_done
