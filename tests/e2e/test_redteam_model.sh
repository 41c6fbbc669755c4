#!/bin/sh
# Red team, model releases (crossgate query --model ridge|kmeans), through the
# real binary only (README "Red-team suite"):
#  - differencing: many releases from two gateways that differ by one person
#    with features at the top of the policy's bounds (the most leverage on
#    X^T X and on a centroid); a linear discriminant over every released
#    number must stay within the DP bound of the rho charged per release;
#  - exact counts: the sidecars, messages and refusals of model requests.
# A binary without model releases has nothing to attack here (said, no check).
# RT_USERS, RT_MCAL, RT_MTEST scale it (make redteam).
. tests/e2e/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/redteam/setup.sh"
if ! "$CROSSGATE" query --help 2>&1 | grep -q -- '--model'; then
	echo "redteam: model releases: this binary has no 'crossgate query --model': nothing to attack"
	e2e_done
	exit $?
fi
RT_MCAL=${RT_MCAL:-10}      # labelled releases per world the attacker learns from
RT_MTEST=${RT_MTEST:-25}    # releases per world it must tell apart
RT_MRHO=${RT_MRHO:-0.5}     # rho per release
rt_setup
rt_worlds
query() { "$CROSSGATE" query --keys "$GW" --policy "$RP" "$@"; }
RIDGE="--model ridge --x k_course_spend_cents,k_learning_minutes,g_watch_minutes --y k_conversion_value_cents"
KMEANS="--model kmeans --cols k_learning_minutes,g_watch_minutes,g_streams_followed --k 3 --steps 5 --log1p"

# --- differencing -------------------------------------------------------------
for m in ridge kmeans; do
	args=$RIDGE; [ $m = kmeans ] && args=$KMEANS
	dir=$T/d$m
	mkdir -p "$dir"
	i=0 failed=0
	while [ $i -lt $((RT_MCAL + RT_MTEST)) ]; do
		for w in 0 1; do
			db=$W0; [ $w -eq 1 ] && db=$W1
			# shellcheck disable=SC2086
			query --db "$db" --analyst redteam --rho "$RT_MRHO" $args --out "$dir/w$w-$i.csv" \
				>"$dir/w$w-$i.stdout" 2>"$dir/w$w-$i.stderr" || failed=$((failed + 1))
		done
		i=$((i + 1))
	done
	eq "model-$m: all $((2 * (RT_MCAL + RT_MTEST))) differencing releases answered" "$failed" 0
	rt_attack diff-numbers --label "model-$m" --dir "$dir" --calib "$RT_MCAL" --what "one person added, every released statistic"
done

# --- exact counts from everything an analyst can obtain -------------------------
S=$T/mscan
mkdir -p "$S"
ask() { # ask NAME ARGS...: one request, its answer, sidecar and messages kept in $S
	name=$1; shift
	query --db "$D/gateway.db" --out "$S/$name.csv" "$@" >"$S/$name.stdout" 2>"$S/$name.stderr"
	echo $? >"$S/$name.rc"
}
# shellcheck disable=SC2086
ask ridge --analyst redteam $RIDGE
# shellcheck disable=SC2086
ask kmeans --analyst redteam $KMEANS
ask kmeans-many --analyst redteam --model kmeans --cols k_course_spend_cents,g_gift_spend_cents --k 8 --steps 3
ask ridge-unbounded --analyst redteam --model ridge --x k_top_course_category --y k_conversion_value_cents
# shellcheck disable=SC2086
ask ridge-poor --analyst poor $RIDGE --rho 0.5
eq "model: a request over a column without bounds is refused" "$(cat "$S/ridge-unbounded.rc")" 1
eq "model: a request over the budget is refused" "$(cat "$S/ridge-poor.rc")" 1
# shellcheck disable=SC2046
rt_attack exact --data "$D/data" --policy "$P" --channel model $(ls "$S"/*.json "$S"/*.stdout "$S"/*.stderr) \
	$(ls "$T"/dridge/w0-*.json "$T"/dridge/w0-*.stdout "$T"/dkmeans/w0-*.json "$T"/dkmeans/w0-*.stdout)
e2e_done
