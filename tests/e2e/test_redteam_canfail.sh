#!/bin/sh
# The red-team attacks have teeth (README "Red-team suite"): run on doctored
# outputs that leak, each attack of tests/e2e/redteam/rt.py must win (rt.py
# --expect breach: a check passes only when the bound is broken), and on a
# control release that holds no member of the data it must not cry wolf.
#  - rows: members' exact tuples written in the synthetic channel's format
#    (age bands, exact values and narrow "LO-HI" ranges, '*'), claiming rho = 1;
#  - linkage: two such files drawn with different bins;
#  - differencing: noise-free answers (read by the query attacker and by the
#    generic one of the model releases) and exact row files, with and without
#    one person;
#  - exact counts: a sidecar that states the number of subjects;
#  - control: people of another seed, in power-of-two bins: every check holds.
. tests/e2e/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/redteam/setup.sh"
rt_setup
C=$T/control
"$CROSSGATE" demo --offline --dir "$C" --users "$RT_USERS" --seed 3 --json >/dev/null 2>&1
check "red team: control population (seed 3)" [ -s "$C/data/k_users.csv" ]
rt() { python3 "$RT_PY" "$@"; }

# --- rows: exact tuples in bin format -------------------------------------------
rt doctor-rows --data "$D/data" --policy "$P" --out "$T/exact1.csv" --seed 1 &&
	rt doctor-rows --data "$D/data" --policy "$P" --out "$T/exact2.csv" --seed 2
check "doctored: members' exact tuples written as bins" grep -q '^[0-9*]*-*[0-9]*,[A-Za-z]*,[0-9]*-[0-9]*,' "$T/exact1.csv"
rt_attack rows --expect breach --label doctored --release "$T/exact1.csv" --release "$T/exact2.csv" \
	--data "$D/data" --holdout "$H/data" --policy "$P"

# --- the control: no member in it, wide bins -> no alarm --------------------------
rt doctor-rows --data "$C/data" --policy "$P" --out "$T/control.csv" --coarse --seed 3
rt_attack rows --label control --release "$T/control.csv" --release "$T/control.csv" \
	--data "$D/data" --holdout "$H/data" --policy "$P"

# --- differencing: noise-free answers and exact rows, with and without one person --
rt target --dir "$T" --policy "$P"
rt doctor-queries --data "$D/data" --policy "$P" --target "$T/target.json" --dir "$T/dq" --n 80 --rho 0.5
rt_attack diff-query --expect breach --label doctored-query --dir "$T/dq" --group region=North --calib 20 --batch 2
rt_attack diff-numbers --expect breach --label doctored-numbers --dir "$T/dq" --calib 20 --what "one person added, every released number"
rt doctor-worlds --data "$D/data" --policy "$P" --target "$T/target.json" --dir "$T/dx" --n 20 --rho 0.1
rt_attack diff-rows --expect breach --label doctored-rows --dir "$T/dx" --target "$T/target.json" --policy "$P" --calib 5

# --- exact counts: a sidecar stating the number of subjects -------------------------
"$CROSSGATE" query --db "$D/gateway.db" --keys "$GW" --policy "$RP" --analyst redteam --group-by region \
	--metric count --out "$T/q.csv" >"$T/q.stdout" 2>&1
rt doctor-meta --data "$D/data" --policy "$P" --input "$T/q.csv.meta.json" --out "$T/doctored.meta.json"
rt_attack exact --expect breach --channel doctored-meta --data "$D/data" --policy "$P" "$T/doctored.meta.json"
e2e_done
