#!/bin/sh
# agent pack --threads N: the same batch from 1 thread and from 3 (records,
# order, report, stats), what the gateway stores from each, and a bad N refused.
. tests/e2e/lib.sh
D=$E2E_TMP/demo

"$CROSSGATE" demo --dir "$D" --users 3000 --seed 11 --offline --json >/dev/null 2>"$E2E_TMP/demo.err"
check "demo exits 0" [ $? -eq 0 ]

pack() {
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
		--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" \
		--out "$E2E_TMP/t$1.batch" --threads "$1" >"$E2E_TMP/t$1.out" 2>"$E2E_TMP/t$1.err"
}
check "pack on 1 thread exits 0" pack 1
check "pack on 3 threads exits 0" pack 3
# The summary names the output file and the random batch id: the rest must match.
norm() { sed -e "s#$E2E_TMP/t[0-9]*.batch#BATCH#" -e 's/(batch [0-9a-f]*)/(batch ID)/' "$1"; }
eq "the same summary line" "$(norm "$E2E_TMP/t3.out")" "$(norm "$E2E_TMP/t1.out")"
check "bad rows were reported" grep -q 'k_users.csv:[0-9]*:[0-9]* (' "$E2E_TMP/t1.err"
eq "the same bad-row report, in the same order" "$(cat "$E2E_TMP/t3.err")" "$(cat "$E2E_TMP/t1.err")"
eq "the same batch size" "$(wc -c <"$E2E_TMP/t3.batch")" "$(wc -c <"$E2E_TMP/t1.batch")"

# What the gateway stores from each: the same tokens, consent and record indexes.
for n in 1 3; do
	"$CROSSGATE" gateway ingest --db "$E2E_TMP/g$n.db" --policy "$D/policy.yaml" --keys "$D/keys/gateway" \
		"$E2E_TMP/t$n.batch" >/dev/null 2>"$E2E_TMP/ingest$n.err"
	check "ingest of the $n-thread batch exits 0" [ $? -eq 0 ]
	sql "$E2E_TMP/g$n.db" "SELECT idx, hex(email_token), hex(phone_token), consent_bits, consent_at FROM records
		ORDER BY idx" >"$E2E_TMP/rows$n"
done
check "the gateway stored records" [ "$(wc -l <"$E2E_TMP/rows1")" -gt 1000 ]
check "the gateway stored the same records from both" cmp -s "$E2E_TMP/rows1" "$E2E_TMP/rows3"

expect_fail "--threads must be a number" "--threads must be a number from 0 to 256" \
	"$CROSSGATE" agent pack --policy "$D/policy.yaml" --partner k --input "$D/data/k_users.csv" \
	--match-key "$D/keys/match.key" --sign-key "$D/keys/k/sign.key" --gateway-pub "$D/keys/gateway/enc.pub" \
	--out "$E2E_TMP/bad.batch" --threads many
check "no batch written for a bad --threads" [ ! -e "$E2E_TMP/bad.batch" ]
e2e_done
