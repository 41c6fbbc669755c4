#!/bin/sh
# --help on every command and subcommand exits 0 and prints its usage on
# stdout.  The walk starts from `crossgate --help` (the command table) and
# takes each family's subcommands from its own usage lines
# ("crossgate FAMILY SUB ...") and command lists ("  SUB   what it does"),
# so a command added to the table is walked without editing this test.
. tests/e2e/lib.sh
. tests/e2e/subcommands.sh

"$CROSSGATE" --help >"$E2E_TMP/top" 2>&1
check "crossgate --help exits 0" [ $? -eq 0 ]
sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' "$E2E_TMP/top" >"$E2E_TMP/cmds"
check "the command table lists at least 11 commands, analytics among them" sh -c "[ $(wc -l <"$E2E_TMP/cmds") -ge 11 ] && grep -qx analytics \"$E2E_TMP/cmds\""

walked=0
for c in $(cat "$E2E_TMP/cmds"); do
	"$CROSSGATE" "$c" --help >"$E2E_TMP/h" 2>"$E2E_TMP/e"
	rc=$?
	cat "$E2E_TMP/h" >>"$E2E_TMP/all"
	if [ $rc -eq 0 ] && grep -q "usage: crossgate $c" "$E2E_TMP/h"; then walked=$((walked + 1))
	else bad "crossgate $c --help: exit $rc, stdout lacks its usage"; fi
	# Subcommands: "crossgate C SUB" in usage lines, or "  SUB  text" command lists.
	subcommands "$c" "$E2E_TMP/h" >"$E2E_TMP/subs"
	for s in $(cat "$E2E_TMP/subs"); do
		"$CROSSGATE" "$c" "$s" --help >"$E2E_TMP/sh" 2>"$E2E_TMP/se"
		rc=$?
		cat "$E2E_TMP/sh" >>"$E2E_TMP/all"
		if [ $rc -eq 0 ] && [ -s "$E2E_TMP/sh" ] && grep -q "usage" "$E2E_TMP/sh"; then walked=$((walked + 1))
		else bad "crossgate $c $s --help: exit $rc"; sed 's/^/    /' "$E2E_TMP/se" | head -3; fi
	done
done
check "walked every command and subcommand ($walked help texts)" [ "$walked" -ge 25 ]
# The help texts are the man pages too (docs/man/mkman.sh): they speak of commands, not of C files.
check "no help text names a C source file" sh -c "! grep -E '[a-z_]+\.c\b' '$E2E_TMP/all'"

# The walk can fail: a subcommand that does not exist is an error, not help.
check "policy diff --help, the case that used to exit 2, now exits 0" sh -c "\"$CROSSGATE\" policy diff --help >/dev/null"
expect_fail "an unknown command is refused" "unknown command" "$CROSSGATE" nosuchcommand --help
e2e_done
