#!/bin/sh
# Audiences over mutual TLS (docs/PROTOCOL.md §8.8): the analyst defines one
# and gets the noisy size and the charge (a partner may not); each partner's
# agent pulls only its own deliveries, authenticated by its certificate, and
# maps them back to its own user ids; an analyst may not pull; a pulled
# delivery is not sent again unless asked for with --all.
. tests/e2e/lib.sh
. tests/e2e/net_lib.sh
D=$E2E_TMP/demo
W=$E2E_TMP/w
GW=$D/keys/gateway
mkdir -p "$W"
net_setup "$D" 3000
check "network demo exits 0" [ -s "$D/policy.yaml" ]
P=$D/audience-policy.yaml
{ cat "$D/policy.yaml"; printf 'marketing:\n  min_audience: 20\n  refusal_noise: 2\n  receivers: [k, g]\n  sources: [k, g]\n'; } >"$P"
for p in k g; do
	f=k_users; [ $p = g ] && f=g_viewers
	"$CROSSGATE" agent pack --policy "$P" --partner $p --input "$D/data/$f.csv" --out "$W/$p.batch" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/$p/sign.key" --gateway-pub "$GW/enc.pub" \
		--state "$W/$p.state" >/dev/null 2>&1
done
DB=$W/gw.db
"$CROSSGATE" gateway ingest --db "$DB" --policy "$P" --keys "$GW" "$W/k.batch" "$W/g.batch" >/dev/null 2>&1
net_start "$DB" "$P" "$E2E_TMP/log"
check "the server starts" [ -n "$NET_PORT" ]
"$CROSSGATE" audience create $(net_client analyst) --name prog --rule "k_top_course_category = programming" \
	>"$W/create.out" 2>&1
check "the analyst defines an audience for k and g over the network" grep -q "delivered to k, g" "$W/create.out"
check "  and is told the noisy size and the charge (0.05 + (1/2)^2/2)" grep -q \
	"audience 'prog': noisy size -\{0,1\}[0-9]* (rule sha256 [0-9a-f]\{16\}...); charged rho 0.175000000" "$W/create.out"
expect_fail "a partner may not define audiences" "role partner, which may not audience_create" \
	"$CROSSGATE" audience create $(net_client k) --name kk --rule "g_watch_minutes >= 0"
expect_fail "a bad rule comes back with its offset" "rule: offset 9: expected a value, found the end of the rule (rejected)" \
	"$CROSSGATE" audience create $(net_client analyst) --name bad --rule "g_watch >"

pull() { # pull PARTNER CERT OUTDIR [--all]
	"$CROSSGATE" agent audience --partner "$1" --sign-key "$D/keys/$1/sign.key" --state "$W/$1.state" \
		--out-dir "$3" $(net_client "$2") $4
}
pull g g "$W/g" >"$W/g.out" 2>&1
check "g pulls its delivery" grep -q "prog.csv: audience 'prog'" "$W/g.out"
tail -n +2 "$W/g/prog.csv" | sort >"$W/got.g"
python3 tests/e2e/audience_truth.py "$D/data" "$P" g programming "$W/want.g"
check "  it maps back exactly to g's users the rule selects" sh -c "[ -s '$W/want.g' ] && cmp -s '$W/got.g' '$W/want.g'"
pull g g "$W/g2" >"$W/g2.out" 2>&1
check "  pulled again: nothing new" grep -q "no delivery waiting for partner g" "$W/g2.out"
pull g g "$W/g3" --all >/dev/null 2>&1
check "  with --all: the same list again" cmp -s "$W/g/prog.csv" "$W/g3/prog.csv"
expect_fail "g's certificate cannot pull as k" "the certificate is partner 'g''s, not 'k''s" \
	"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" \
	--out-dir "$W/x" $(net_client g)
check "  and k's delivery is still waiting: k pulls it" sh -c \
	"\"\$0\" agent audience --partner k --sign-key '$D/keys/k/sign.key' --state '$W/k.state' --out-dir '$W/k' $(net_client k) >/dev/null 2>&1 && [ -s '$W/k/prog.csv' ]" "$CROSSGATE"
tail -n +2 "$W/k/prog.csv" | sort >"$W/got.k"
python3 tests/e2e/audience_truth.py "$D/data" "$P" k programming "$W/want.k"
check "  k's list is exactly k's users the rule selects" cmp -s "$W/got.k" "$W/want.k"
expect_fail "an analyst may not pull deliveries" "role analyst, which may not audience_fetch" \
	"$CROSSGATE" agent audience --partner k --sign-key "$D/keys/k/sign.key" --state "$W/k.state" \
	--out-dir "$W/y" $(net_client analyst)
audit_has "an analyst may not pull deliveries" "may not audience_fetch" "$DB"

# A segment audience over the network: the analyst's released k-means files are sent as they are.
"$CROSSGATE" query $(net_client analyst) --model kmeans --cols k_learning_minutes,g_watch_minutes --k 3 --steps 5 --log1p \
	--rho 1 --out "$W/km.csv" >/dev/null 2>&1
C=$(python3 -c "import csv; r=list(csv.DictReader(open('$W/km.csv'))); print(max(r, key=lambda x: float(x['count']))['cluster'])")
check "the analyst releases k-means over the network (with its sidecar)" [ -s "$W/km.csv.meta.json" ]
expect_fail "a cluster out of range comes back refused" "segment (request): --cluster 9: the model has clusters 1..3 (rejected)" \
	"$CROSSGATE" audience create $(net_client analyst) --name segbad --segment "$W/km.csv" --cluster 9
"$CROSSGATE" audience create $(net_client analyst) --name seg --segment "$W/km.csv" --cluster "$C" >"$W/seg.out" 2>&1
check "a segment audience is defined over the network" grep -q \
	"audience 'seg': noisy size -\{0,1\}[0-9]* (segment sha256 $(sha256sum "$W/km.csv" | cut -c1-16)... cluster $C); charged rho 0.175000000" "$W/seg.out"
pull g g "$W/gs" >/dev/null 2>&1
tail -n +2 "$W/gs/seg.csv" | sort >"$W/got.gs"
python3 tests/e2e/audience_truth.py "$D/data" "$P" g "segment:$W/km.csv:$C" "$W/want.gs"
check "  g's list is exactly g's users nearest that centre" sh -c "[ -s '$W/want.gs' ] && cmp -s '$W/got.gs' '$W/want.gs'"
net_stop
n=$(sql "$DB" "SELECT count(*) FROM audit_events WHERE instr(event, 'audience-fetch') > 0")
check "every pull of a delivery is an audit event (4)" [ "$n" -eq 4 ]
e2e_done
