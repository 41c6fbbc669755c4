# subcommands FAMILY HELPFILE: the subcommands a family's --help names, one a
# line: the words after "crossgate FAMILY" in its usage lines ("a|b" gives
# both), and, when the usage reads "crossgate FAMILY COMMAND", the names of
# its command list ("  name   what it does").  Shared by tests/e2e/test_help.sh
# and docs/man/mkman.sh, so the pages and the test walk the same commands.
subcommands() {
	{ sed -n "s/^.*crossgate $1 \([a-z][a-z|-]*\).*/\1/p" "$2" | tr '|' '\n'
	  if grep -q "crossgate $1 COMMAND" "$2"; then
		sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' "$2"
	  fi; } | grep -v '^$' | sort -u
}
