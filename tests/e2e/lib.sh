# Shared helpers for the end-to-end tests (sourced).  Each test prints
# "ok ..." or "FAIL ..." per check and ends with "<name>: N passed, N failed".
: "${CROSSGATE:?set CROSSGATE to the crossgate binary}"
E2E_PASS=0
E2E_FAIL=0
E2E_TMP=$(mktemp -d)
trap 'rm -rf "$E2E_TMP"' EXIT

ok() { E2E_PASS=$((E2E_PASS + 1)); echo "ok $*"; }
bad() { E2E_FAIL=$((E2E_FAIL + 1)); echo "FAIL $*"; }

# check "what" command...: passes when the command succeeds
check() {
	what=$1; shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# expect_fail "what" "message substring" command...: the command must exit
# non-zero and its stderr must contain the message.
expect_fail() {
	what=$1; msg=$2; shift 2
	if "$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err"; then
		bad "$what: exited 0"
		return
	fi
	if grep -qF -- "$msg" "$E2E_TMP/err"; then
		ok "$what"
	else
		bad "$what: stderr lacks '$msg':"; sed 's/^/    /' "$E2E_TMP/err" | head -5
	fi
}

# eq "what" actual expected
eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}

sql() { sqlite3 -batch -noheader "$@"; }

e2e_done() {
	echo "$(basename "$0" .sh): $E2E_PASS passed, $E2E_FAIL failed"
	[ "$E2E_FAIL" -eq 0 ]
}

# lax_privacy IN OUT: the policy with row exports for every purpose and a
# budget so large (rho 1,000,000) that a release of rho 100,000 has no noise
# to speak of (a 1-way cell's sigma ~ 0.01: its row count is the exact number
# of subjects), for tests about consent and erasure rather than privacy.
lax_privacy() {
	sed -e 's/^  l: 3$/  l: 1/' -e 's/^  suppression_limit: 0.05$/  suppression_limit: 1/' \
	    -e 's/row_exports: \[analytics\]/row_exports: [analytics, marketing]/' \
	    -e 's/budget_rho: 2.0,/budget_rho: 1000000,/' "$1" >"$2"
}
# released_rows ARGS...: a near-noiseless synthetic release (lax_privacy's budget) and its row count
released_rows() {
	"$CROSSGATE" export --rho 100000 "$@" | sed -n 's/.*: \([0-9]*\) synthetic rows for .*/\1/p'
}
