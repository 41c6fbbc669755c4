#!/bin/sh
# Every command parses its options through one table (cli/cliopt.c), so every
# command rejects the same mistakes the same way.  The walk takes the commands
# and subcommands from --help, as test_help.sh does, so a command added later
# is checked without editing this test.  `policy` takes no option but --help
# and goes through the same table (an empty one).
. tests/e2e/lib.sh
. tests/e2e/subcommands.sh

"$CROSSGATE" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' >"$E2E_TMP/cmds"
walked=0
for c in $(cat "$E2E_TMP/cmds"); do
	"$CROSSGATE" "$c" --help >"$E2E_TMP/h" 2>/dev/null
	subs=$(subcommands "$c" "$E2E_TMP/h")
	# A family that dispatches on its first word (audit, analytics) is walked by subcommand only.
	grep -q "crossgate $c COMMAND\|crossgate $c summary" "$E2E_TMP/h" || subs="- $subs"
	for s in $subs; do
		[ "$s" = - ] && s=
		"$CROSSGATE" $c $s --no-such-option >"$E2E_TMP/o" 2>"$E2E_TMP/e" </dev/null
		rc=$?
		if [ $rc -eq 2 ] && grep -qF -- "unrecognized option '--no-such-option'" "$E2E_TMP/e" &&
		    grep -q "^usage: crossgate $c" "$E2E_TMP/e" && [ ! -s "$E2E_TMP/o" ]; then
			walked=$((walked + 1))
		else
			bad "crossgate $c $s --no-such-option: exit $rc"; sed 's/^/    /' "$E2E_TMP/e" | head -3
		fi
		"$CROSSGATE" $c $s -h >"$E2E_TMP/o" 2>"$E2E_TMP/e" </dev/null
		rc=$?
		if [ $rc -eq 0 ] && grep -q "^usage: crossgate $c" "$E2E_TMP/o"; then
			walked=$((walked + 1))
		else
			bad "crossgate $c $s -h: exit $rc, no usage on stdout"
		fi
	done
done
check "every command refuses an unknown option with its usage and takes -h as --help ($walked checks)" \
	[ "$walked" -ge 50 ]

# The same message for a number out of range, whichever command, both ends of the range.
expect_fail "--timeout above its maximum" "--timeout must be a number from 0 to 3600" \
	"$CROSSGATE" audit witness --gateway h:1 --ca x --cert x --key x --timeout 3601
expect_fail "--timeout with a sign (strtoul would have read +5 as 5)" "--timeout must be a number from 0 to 3600" \
	"$CROSSGATE" agent push --gateway h:1 --ca x --cert x --key x --timeout +5 b
expect_fail "--timeout negative" "--timeout must be a number from 0 to 3600" \
	"$CROSSGATE" query --gateway h:1 --ca x --cert x --key x --timeout -1 --metric count --out x
expect_fail "a number below the minimum gets the same message" "--buckets must be a number from 1 to" \
	"$CROSSGATE" query --db x --buckets 0
expect_fail "... and not a number at all" "--days must be a number from 0 to" \
	"$CROSSGATE" pki ca --dir "$E2E_TMP/pki" --days 3x
check "... and nothing was made" [ ! -e "$E2E_TMP/pki" ]

# Required options, in the table's order; a stray argument; a repeatable option's cap.
expect_fail "the first missing required option is named" "missing required option --db" \
	"$CROSSGATE" audit cosign --pub x --key x --name n --state s
expect_fail "... then the next" "missing required option --state" \
	"$CROSSGATE" audit cosign --db x --pub x --key x --name n
expect_fail "a client command names the missing client option first" "missing required option --ca" \
	"$CROSSGATE" audit fetch --gateway h:1 --cert x --key x
expect_fail "a stray argument is refused" "unexpected argument" "$CROSSGATE" audit show --db x stray
set --
i=0
while [ $i -lt 9 ]; do set -- "$@" --dns "n$i.example"; i=$((i + 1)); done
expect_fail "a repeatable option has a cap" "at most 8 --dns options" "$CROSSGATE" pki init --dir "$E2E_TMP/p2" "$@"
check "... and nothing was made" [ ! -e "$E2E_TMP/p2" ]
e2e_done
