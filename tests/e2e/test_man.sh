#!/bin/sh
# `make man` makes (and `make install` installs) crossgate(1) and one crossgate-FAMILY(1) per command
# family, made by docs/man/mkman.sh from the --help texts: every family of the
# command table has its page, named and described as in the table, and every
# subcommand with a help text of its own has a section in its family's page.
. tests/e2e/lib.sh
. tests/e2e/subcommands.sh

check "the pages are made" sh docs/man/mkman.sh "$CROSSGATE" "$E2E_TMP/man" test
"$CROSSGATE" --help >"$E2E_TMP/top"
check "crossgate(1) is made" grep -q '^\.TH CROSSGATE "1"' "$E2E_TMP/man/crossgate.1"
n=0
for f in $(sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' "$E2E_TMP/top"); do
	page="$E2E_TMP/man/crossgate-$f.1"
	F=$(printf '%s' "$f" | tr a-z A-Z)
	if grep -q "^\.TH CROSSGATE-$F " "$page" 2>/dev/null && grep -q "usage: crossgate $f" "$page" &&
		grep -q "crossgate-$f" "$E2E_TMP/man/crossgate.1"; then n=$((n + 1))
	else bad "crossgate-$f.1 is missing, or lacks its usage, or crossgate(1) does not name it"; fi
	"$CROSSGATE" "$f" --help >"$E2E_TMP/h"
	for s in $(subcommands "$f" "$E2E_TMP/h"); do
		"$CROSSGATE" "$f" "$s" --help >"$E2E_TMP/sh" 2>/dev/null || continue
		cmp -s "$E2E_TMP/sh" "$E2E_TMP/h" && continue
		grep -q "^\.SS \"crossgate $f $s\"" "$page" || bad "crossgate-$f.1 has no section for $s"
	done
done
check "a page for each of the $n families" [ "$n" -ge 11 ]
check "the audit page has a section per subcommand" [ "$(grep -c '^\.SS' "$E2E_TMP/man/crossgate-audit.1")" -ge 9 ]

# `make install` puts the binary and every page under DESTDIR/PREFIX (the binary is taken as built: -o).
B=$(cd "$(dirname "$CROSSGATE")" && pwd)
R=$E2E_TMP/root
check "make install DESTDIR PREFIX=/usr runs" env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory \
	-o "$B/crossgate" install BUILD="$B" DESTDIR="$R" PREFIX=/usr
check "it installs the binary" [ -x "$R/usr/bin/crossgate" ]
eq "and crossgate(1) with a page per family" "$(find "$R/usr/share/man/man1" -name 'crossgate*.1' | wc -l)" "$((n + 1))"
# The same text as the page made above from --help, but for the .TH line (version, date).
grep -v '^\.TH' "$R/usr/share/man/man1/crossgate-audit.1" >"$E2E_TMP/inst.1"
grep -v '^\.TH' "$E2E_TMP/man/crossgate-audit.1" >"$E2E_TMP/made.1"
check "the installed audit page is the one made from --help" cmp -s "$E2E_TMP/inst.1" "$E2E_TMP/made.1"

e2e_done
