#!/bin/sh
# Segment audiences (issue 14, item 1): an audience defined by a DP segment,
# the subjects whose nearest released k-means centre is cluster N, after the
# model's own transform.  The released centres are public DP output; the
# audience's size release is charged as for a rule.  The delivered list, mapped
# back through the partner's state, is checked against the generator's truth
# (tests/e2e/audience_truth.py segment:FILE:N recomputes the assignment).
. tests/e2e/lib.sh

T=$E2E_TMP
D=$T/demo
W=$T/w
GW=$D/keys/gateway
TRUTH=tests/e2e/audience_truth.py
mkdir -p "$W"
"$CROSSGATE" demo --offline --dir "$D" --users 3000 >/dev/null 2>"$T/demo.err"
check "demo data for 3000 users" [ -s "$D/data/k_users.csv" ]
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 20\n  refusal_noise: 2\n  receivers: [k]\n  sources: [k, g]\n'; } >"$W/k.yaml"
for p in k g; do
	f=k_users; [ $p = g ] && f=g_viewers
	"$CROSSGATE" agent pack --policy "$W/k.yaml" --partner $p --input "$D/data/$f.csv" --out "$W/$p.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" \
		--state "$W/$p.state" >/dev/null 2>&1
done
"$CROSSGATE" gateway ingest --db "$W/gw.db" --policy "$W/k.yaml" --keys "$GW" "$W/k.batch" "$W/g.batch" >/dev/null 2>&1
check "both partners' batches ingested" [ -s "$W/gw.db" ]
A="--db $W/gw.db --keys $GW --policy $W/k.yaml"
spent() { "$CROSSGATE" budget --db "$W/gw.db" --policy "$W/k.yaml" --json | python3 -c \
	'import json,sys; print("%.9f" % sum(r["rho_spent"] for r in json.load(sys.stdin)))'; }

# The analyst releases k-means (analytics), the released centres are the segments.
COLS=k_learning_minutes,g_watch_minutes,g_streams_followed
"$CROSSGATE" query $A --model kmeans --cols $COLS --k 3 --steps 5 --log1p --rho 1 --out "$W/km.csv" >/dev/null 2>"$T/km.err"
check "k-means released with its sidecar" sh -c "[ -s '$W/km.csv' ] && [ -s '$W/km.csv.meta.json' ]"
# the released cluster with the largest noisy count
C=$(python3 -c "import csv; r=list(csv.DictReader(open('$W/km.csv'))); print(max(r, key=lambda x: float(x['count']))['cluster'])")
check "  a cluster was released" [ -n "$C" ]

# Binding errors: each clear, none charged.
expect_fail "a cluster beyond k" "--cluster 9: the model has clusters 1..3" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/km.csv" --cluster 9
expect_fail "--segment without --cluster" "--cluster" "$CROSSGATE" audience create $A --name s1 --segment "$W/km.csv"
expect_fail "--rule and --segment together" "--rule and --segment exclude each other" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/km.csv" --cluster 1 --rule "g_watch_minutes >= 0"
python3 - "$W/km.csv" "$W/withheld.csv" <<'PY'
import json, sys, shutil
src, dst = sys.argv[1:]
lines = open(src).read().splitlines(True)
gone = lines[1].split(",")[0]
open(dst, "w").write(lines[0] + "".join(lines[2:]))
m = json.load(open(src + ".meta.json"))
m["clusters_released"] -= 1
json.dump(m, open(dst + ".meta.json", "w"))
open(dst + ".gone", "w").write(gone)
PY
G=$(cat "$W/withheld.csv.gone")
expect_fail "a cluster that was not released" "cluster $G was not released" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/withheld.csv" --cluster "$G"
cp "$W/km.csv" "$W/nometa.csv"
expect_fail "a CSV without its sidecar" "no readable sidecar" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/nometa.csv" --cluster "$C"
"$CROSSGATE" query $A --model ridge --x k_learning_minutes --y g_watch_minutes --rho 0.1 --out "$W/ridge.csv" >/dev/null 2>&1
expect_fail "a ridge release is not a segment" "not a k-means release's" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/ridge.csv" --cluster 1
S1=$(spent)
sed 's/k_learning_minutes/k_course_spend_cents/' "$W/km.csv" >"$W/mixed.csv"
cp "$W/km.csv.meta.json" "$W/mixed.csv.meta.json"
expect_fail "a CSV whose columns its sidecar does not name" "the CSV and its sidecar do not belong together" \
	"$CROSSGATE" audience create $A --name s1 --segment "$W/mixed.csv" --cluster "$C"
eq "binding errors charge nothing" "$(spent)" "$S1"

# Below the minimum (min_audience above the whole population): refused on the noisy count, uncharged, audited.
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 100000\n  refusal_noise: 2\n  receivers: [k]\n  sources: [k, g]\n'; } >"$W/big.yaml"
expect_fail "a segment below min_audience is refused" "is smaller than the policy's minimum of 100000 (decided on a noisy count; nothing was charged" \
	"$CROSSGATE" audience create --db "$W/gw.db" --keys "$GW" --policy "$W/big.yaml" --name small --segment "$W/km.csv" --cluster "$C"
eq "  the refusal charges nothing" "$(spent)" "$S1"

# The segment audience: charged as a rule's, delivered sealed to k, mapped back through k's state.
"$CROSSGATE" audience create $A --name seg --segment "$W/km.csv" --cluster "$C" >"$T/create.out" 2>"$T/create.err"
check "a segment audience is created" grep -q "audience 'seg': noisy size .*(segment sha256 [0-9a-f]\{16\}... cluster $C)" "$T/create.out"
check "  delivered to k" grep -q "delivered to k\$" "$T/create.out"
eq "  charged audience_rho 0.05 + the refusal test's (1/2)^2/2, nothing for the centres" \
	"$(python3 -c "print('%.9f' % ($(spent) - $S1))")" "0.175000000"
"$CROSSGATE" audience take $A --partner k --out-dir "$W/kd" >/dev/null 2>&1
"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" --out-dir "$W/kout" \
	--in "$W"/kd/seg-*.sealed >/dev/null 2>&1
check "k opens it into its own user ids" [ "$(head -1 "$W/kout/seg.csv")" = "user_id" ]
tail -n +2 "$W/kout/seg.csv" | sort >"$T/got.k"
python3 "$TRUTH" "$D/data" "$W/k.yaml" k "segment:$W/km.csv:$C" "$T/want.k"
python3 "$TRUTH" "$D/data" "$W/k.yaml" k noconsent "$T/nc.k"
check "  the truth's segment holds at least 60 users" [ "$(wc -l <"$T/want.k")" -ge 60 ]
check "  the delivered list is exactly the users nearest that centre, with marketing consent on both sides" \
	cmp -s "$T/got.k" "$T/want.k"
check "  no matched user without marketing consent appears" sh -c \
	"[ -s '$T/nc.k' ] && [ -z \"\$(comm -12 '$T/nc.k' '$T/got.k')\" ]"
O=$(( C % 3 + 1 ))
python3 "$TRUTH" "$D/data" "$W/k.yaml" k "segment:$W/km.csv:$O" "$T/other.k"
check "  another cluster's truth is a different set (the check can fail)" sh -c "! cmp -s '$T/other.k' '$T/want.k'"
N=$(sed -n "s/.*noisy size \(-\?[0-9]*\).*/\1/p" "$T/create.out")
check "  the noisy size is near the truth (sigma 3.2: within 20)" python3 -c \
	"import sys; sys.exit(0 if abs($N - $(wc -l <"$T/want.k")) <= 20 else 1)"

# The audit event names the segment file's SHA-256 and the cluster, not a rule.
H=$(sha256sum "$W/km.csv" | cut -d' ' -f1)
"$CROSSGATE" audit show --db "$W/gw.db" --format jsonl >"$T/audit.jsonl"
check "audit: the audience event has the segment's hash and cluster" grep -q \
	"\"action\":\"audience\",\"outcome\":\"ok\",\"purpose\":\"marketing\",\"reason\":\"segment sha256 $H cluster $C; recipients k\"" "$T/audit.jsonl"
check "audit: the refusal names the segment too" grep -q \
	"\"action\":\"audience\",\"outcome\":\"refused\".*\"reason\":\"segment sha256 $H cluster $C; smaller than min_audience 100000" "$T/audit.jsonl"
check "audit: no user id of the delivered list is in the trail" sh -c "! grep -qF -f '$T/got.k' '$T/audit.jsonl'"
check "audit: the log verifies" "$CROSSGATE" audit verify --db "$W/gw.db" --pub "$GW/sign.pub"
e2e_done
