#!/bin/sh
# A/B lift end to end (issue 14, item 3): an audience, an experiment, a simulated
# campaign with a planted lift (tests/e2e/campaign_sim.py, from the generator's
# truth and the partner's own treatment list), the campaign partner's outcome
# batch, and `crossgate experiment lift`: the interval covers the planted lift,
# the charge is exactly the rho, the audit event holds noisy figures only and the
# log verifies; the other partner's outcomes are refused; refusals charge
# nothing.  (That control users never reach the campaign partner is
# test_audience.sh's.)
. tests/e2e/lib.sh

T=$E2E_TMP
D=$T/demo
W=$T/w
GW=$D/keys/gateway
mkdir -p "$W"
"$CROSSGATE" demo --offline --dir "$D" --users 30000 >/dev/null 2>"$T/demo.err"
check "demo data for 30000 users" [ -s "$D/data/k_users.csv" ]
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 200\n  receivers: [k]\n  sources: [k, g]\n'; } >"$W/p.yaml"
P=$W/p.yaml
for p in k g; do
	f=k_users; [ $p = g ] && f=g_viewers
	"$CROSSGATE" agent pack --policy "$P" --partner $p --input "$D/data/$f.csv" --out "$W/$p.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" \
		--state "$W/$p.state" >/dev/null 2>&1
done
"$CROSSGATE" gateway ingest --db "$W/gw.db" --policy "$P" --keys "$GW" "$W/k.batch" "$W/g.batch" >/dev/null 2>&1
check "both partners' batches ingested" [ -s "$W/gw.db" ]
A="--db $W/gw.db --policy $P --keys $GW"
spent() { "$CROSSGATE" budget --db "$W/gw.db" --policy "$P" --json | python3 -c \
	'import json,sys; print("%.9f" % sum(r["rho_spent"] for r in json.load(sys.stdin)))'; }
outcomes() { # PARTNER EXPERIMENT CSV BATCH
	"$CROSSGATE" agent outcomes --policy "$P" --partner "$1" --experiment "$2" --input "$3" --out "$4" \
		--state "$W/$1.state" --match-key "$D/keys/match.key" --sign-key "$D/keys/$1/sign.key" \
		--gateway-pub "$GW/enc.pub" >/dev/null 2>&1
}
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }
covers() { python3 -c 'import sys; lo,hi,x=map(float,sys.argv[1:]); sys.exit(0 if lo<=x<=hi else 1)' "$@"; }

# An audience of every matched user with marketing consent at both partners, an experiment on it for k.
setup() { # AUDIENCE EXPERIMENT
	"$CROSSGATE" audience create $A --name "$1" --rule "g_watch_minutes >= 0" --out "$W/$1.json" \
		>/dev/null 2>"$T/err.$1" &&
	"$CROSSGATE" experiment create $A --audience "$1" --name "$2" --partner k >/dev/null 2>>"$T/err.$1" &&
	"$CROSSGATE" audience take $A --partner k --out-dir "$W/kd.$2" >/dev/null 2>&1 &&
	"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" \
		--out-dir "$W/kout" --in "$W/kd.$2/$2"-*.sealed >/dev/null 2>&1
}
setup all spring
check "audience and experiment 'spring'; k opens its treatment list" [ -s "$W/kout/spring.csv" ]
python3 tests/e2e/audience_truth.py "$D/data" "$P" k watch0 "$T/aud.k"
check "  audience create --out writes the noisy size (within 20 of the truth: sigma 3.2) and the charge" python3 -c "
import json, sys; d = json.load(open('$W/all.json')); n = $(wc -l <"$T/aud.k")
sys.exit(0 if abs(d['noisy_size'] - n) <= 20 and abs(d['charged_rho'] - 0.0502) < 1e-9 and d['recipients'] == ['k'] else 1)"
check "  the audience holds at least 2000 of k's users (the generator's truth)" [ "$(wc -l <"$T/aud.k")" -ge 2000 ]

# The campaign: treatment converts at 30%, control at 10% (planted: +0.20, +350 cents per subject).
python3 tests/e2e/campaign_sim.py "$T/aud.k" "$W/kout/spring.csv" "$W/spring.csv" 7 0.10 0.30 \
	"$D/data/k_users.csv" >"$T/planted"
RD=$(sed -n 's/^rate_diff //p' "$T/planted"); VD=$(sed -n 's/^value_diff //p' "$T/planted")
outcomes k spring "$W/spring.csv" "$W/spring.batch"
"$CROSSGATE" gateway ingest $A "$W/spring.batch" >/dev/null 2>&1
check "k's outcomes for 'spring' are ingested" [ "$(sql "$W/gw.db" "SELECT count(*) FROM outcomes WHERE experiment = 'spring'")" -gt 2000 ]

# The other partner's outcomes for k's experiment: refused whole, audited, nothing stored.
n0=$(sql "$W/gw.db" "SELECT count(*) FROM outcomes")
{ echo "user_id,converted,value_cents,at"; tail -n +2 "$D/data/g_viewers.csv" | head -300 | cut -d, -f1 |
	sed 's/$/,1,900,2026-01-01T00:00:00Z/'; } >"$W/g.csv"
outcomes g spring "$W/g.csv" "$W/g-out.batch"
check "g packs outcomes naming 'spring'" [ -s "$W/g-out.batch" ]
expect_fail "g's outcomes for k's experiment are refused" \
	"experiment 'spring' is run by partner 'k'; partner 'g' may not send its outcomes" \
	"$CROSSGATE" gateway ingest $A "$W/g-out.batch"
eq "  nothing stored" "$(sql "$W/gw.db" "SELECT count(*) FROM outcomes")" "$n0"
"$CROSSGATE" audit show --db "$W/gw.db" --type ingest --format jsonl | tail -1 >"$T/rej.jsonl"
check "  the rejection is audited with the reason" grep -q '"rejected".*is run by partner' "$T/rej.jsonl"

# The lift, at rho 0.1 and 99.9% intervals.
S0=$(spent)
"$CROSSGATE" experiment lift $A --name spring --rho 0.1 --confidence 0.999 --out "$W/lift.json" >"$T/lift.out" 2>"$T/lift.err"
check "experiment lift writes the release" [ -s "$W/lift.json" ]
check "  and a summary" grep -q "experiment 'spring' (campaign partner k): noisy arms control" "$T/lift.out"
check "  the file is private (0600)" [ "$(stat -c %a "$W/lift.json")" = 600 ]
eq "  the budget is charged exactly rho 0.1" "$(python3 -c "print('%.9f' % ($(spent) - $S0))")" "0.100000000"
eq "  the release says so" "$(field "$W/lift.json" '["rho_nano"]')" "100000000"
RLO=$(field "$W/lift.json" '["lift"]["rate"]["lo"]'); RHI=$(field "$W/lift.json" '["lift"]["rate"]["hi"]')
VLO=$(field "$W/lift.json" '["lift"]["value_per_subject"]["lo"]'); VHI=$(field "$W/lift.json" '["lift"]["value_per_subject"]["hi"]')
check "  the rate lift's interval [$RLO, $RHI] covers the planted $RD" covers "$RLO" "$RHI" "$RD"
check "  the value lift's interval [$VLO, $VHI] covers the planted $VD" covers "$VLO" "$VHI" "$VD"
check "  and excludes 0 (outcomes before the window ignored, else control would convert at 100%)" covers 0.05 1 "$RLO"
"$CROSSGATE" audit show --db "$W/gw.db" --type experiment-lift --format jsonl >"$T/lift.jsonl"
ID=$(sql "$W/gw.db" "SELECT id FROM experiments WHERE name = 'spring'")
check "audit: the lift event names the experiment's id and rho" sh -c \
	"grep '\"ok\"' '$T/lift.jsonl' | grep -qi '$ID' && grep -q '\"rho_nano\": *100000000' '$T/lift.jsonl'"
check "  and holds noisy figures, never a user id" sh -c "grep -q 'noisy control n' '$T/lift.jsonl' && \
	! grep -oE 'k[0-9]{6,}' '$T/lift.jsonl' | grep -qxFf '$T/aud.k'"
check "  the log verifies" "$CROSSGATE" audit verify --db "$W/gw.db" --pub "$GW/sign.pub"

# Refusals, none charged.
S1=$(spent)
expect_fail "an analyst without marketing is refused" "not granted the purpose 'marketing'" \
	"$CROSSGATE" experiment lift $A --name spring --analyst auditor --out "$W/x.json"
expect_fail "an unknown experiment is refused" "no experiment named 'nope'" \
	"$CROSSGATE" experiment lift $A --name nope --out "$W/x.json"
expect_fail "a lift over the budget is refused" "budget" \
	"$CROSSGATE" experiment lift $A --name spring --rho 1.9 --out "$W/x.json"
eq "  none charged anything" "$(spent)" "$S1"
check "  and wrote no file" [ ! -e "$W/x.json" ]

# No lift: both arms convert at 20%.  With 99.9% intervals, each excludes 0 by chance with
# probability about 0.001: the two checks below fail together by chance about 0.2% of the time.
setup all0 flat
python3 tests/e2e/campaign_sim.py "$T/aud.k" "$W/kout/flat.csv" "$W/flat.csv" 11 0.20 0.20 >/dev/null
outcomes k flat "$W/flat.csv" "$W/flat.batch"
"$CROSSGATE" gateway ingest $A "$W/flat.batch" >/dev/null 2>&1
S2=$(spent)
"$CROSSGATE" experiment lift $A --name flat --confidence 0.999 --out "$W/flat.json" >/dev/null 2>"$T/flat.err"
eq "a lift at the policy's rho (query_rho 0.05) charges it" "$(python3 -c "print('%.9f' % ($(spent) - $S2))")" "0.050000000"
check "  no planted lift: the rate interval includes 0" covers "$(field "$W/flat.json" '["lift"]["rate"]["lo"]')" \
	"$(field "$W/flat.json" '["lift"]["rate"]["hi"]')" 0
check "  and the value interval too" covers "$(field "$W/flat.json" '["lift"]["value_per_subject"]["lo"]')" \
	"$(field "$W/flat.json" '["lift"]["value_per_subject"]["hi"]')" 0

# The join, the window and the clamp, exactly: at rho 500 (a policy with a budget for it; last, as
# it spends the ledger far past the demo policy's cap) the noise
# on n and conversions has sd 0.1 and 0.06 (|noise| >= 0.5 with probability < 1e-6), on the value
# sum 100/sqrt(2*200) = 5 cents; the released figures must be the helper's exact aggregates.
sed 's/budget_rho: 2.0/budget_rho: 1000/' "$P" >"$W/big.yaml"
printf '  value_cap: 100\n' >>"$W/big.yaml"
"$CROSSGATE" policy diff "$P" "$W/big.yaml" >"$T/diff.out" 2>&1
check "policy diff shows the lift's value cap" grep -q "marketing: value_cap 10000 -> 100" "$T/diff.out"
setup all1 exact
python3 tests/e2e/campaign_exact.py "$T/aud.k" "$W/kout/exact.csv" "$D/data/k_users.csv" "$W/exact.csv" 5 100 >"$T/exact.want"
outcomes k exact "$W/exact.csv" "$W/exact.batch"
"$CROSSGATE" gateway ingest $A "$W/exact.batch" >/dev/null 2>&1
"$CROSSGATE" experiment lift --db "$W/gw.db" --policy "$W/big.yaml" --keys "$GW" --name exact --rho 500 \
	--out "$W/exact.json" >/dev/null 2>"$T/exact.err"
python3 - "$W/exact.json" $(cat "$T/exact.want") <<'PY' && ok "the released figures are the exact per-arm aggregates: outcomes before the experiment, after the lift or of non-subjects ignored, each subject's value summed and clamped to value_cap" || bad "exact aggregates: $(cat "$T/exact.err")"
import json, sys
d = json.load(open(sys.argv[1]))
w = list(map(int, sys.argv[2:8]))
for i, arm in enumerate(("control", "treatment")):
    a = d[arm]
    assert round(a["n"]) == w[3 * i] and round(a["conversions"]) == w[3 * i + 1], (arm, a, w)
    assert abs(a["value_sum"] - w[3 * i + 2]) <= 30, (arm, a, w)
assert d["value_cap"] == 100 and w[1] > 100 and w[4] > 100
PY

# An arm emptied by erasure (issue 11's attack on the lift): k withdraws match consent from every
# user of an experiment's treatment arm, then the analyst asks for the lift.  Refused before the
# charge, "no one is left" would be an exact answer for free; the lift is charged, noised and
# refused on the arm's noisy size.  (On big.yaml: the ledger is past the demo policy's cap.)
A="--db $W/gw.db --policy $W/big.yaml --keys $GW"
setup all2 gone
check "experiment 'gone' for the erasure; k opens its treatment list" [ -s "$W/kout/gone.csv" ]
python3 - "$D/data/k_users.csv" "$W/kout/gone.csv" "$W/k_gone.csv" <<'PY'
import csv, sys
gone = {r[0] for r in csv.reader(open(sys.argv[2])) if r and r[0] != "user_id"}
src = csv.reader(open(sys.argv[1])); out = csv.writer(open(sys.argv[3], "w", newline=""))
head = next(src); out.writerow(head); c = head.index("consent")
for r in src:
    if r[0] in gone:
        r[c] = "analytics;marketing"
    out.writerow(r)
PY
"$CROSSGATE" agent pack --policy "$W/big.yaml" --partner k --input "$W/k_gone.csv" --out "$W/k_gone.batch" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$GW/enc.pub" \
	--state "$W/k.state" >"$T/gone.pack" 2>&1
check "  k withdraws the whole treatment arm ($(wc -l <"$W/kout/gone.csv") lines)" \
	grep -q "withdrawals sent ($(($(wc -l <"$W/kout/gone.csv") - 1)) lost match" "$T/gone.pack"
# A hang guard, not a timing: this takes well under a second; the erasure's old correlated subquery took
# more than 10 minutes here.
check "  the withdrawal batch is ingested (in under 120 s)" timeout 120 "$CROSSGATE" gateway ingest $A "$W/k_gone.batch"
eq "  the arm is empty at the gateway" "$(sql "$W/gw.db" "SELECT count(*) FROM experiment_subjects WHERE experiment = 'gone' AND arm = 1")" 0
check "  the control arm is not" [ "$(sql "$W/gw.db" "SELECT count(*) FROM experiment_subjects WHERE experiment = 'gone' AND arm = 0")" -gt 1000 ]
S3=$(spent)
expect_fail "the lift of an emptied arm is refused on its noisy size" "treatment arm's noisy size is below 30" \
	"$CROSSGATE" experiment lift $A --name gone --rho 0.1 --out "$W/gone.json"
eq "  after the charge: exactly rho 0.1 spent (a free refusal would have told 'no one is left')" \
	"$(python3 -c "print('%.9f' % ($(spent) - $S3))")" "0.100000000"
check "  no file written" [ ! -e "$W/gone.json" ]
"$CROSSGATE" audit show --db "$W/gw.db" --type experiment-lift --format jsonl >"$T/gone.jsonl"
check "  the refusal is audited as after the charge" grep -q '"refused".*gone: the release failed after the charge (a noisy arm below the minimum)' "$T/gone.jsonl"

e2e_done
