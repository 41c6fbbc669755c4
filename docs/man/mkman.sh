#!/bin/sh
# mkman.sh CROSSGATE OUTDIR VERSION - write crossgate.1 and one
# crossgate-FAMILY.1 per command family into OUTDIR, from the very text
# `--help` prints (help2man), so the pages and --help cannot disagree.
# Each family's page carries its subcommands' --help as a SUBCOMMANDS section.
set -eu
bin=$1; out=$2; version=${3:-0}
command -v help2man >/dev/null || { echo "mkman.sh: help2man is missing (sh setup.sh)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../../tests/e2e/subcommands.sh"
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac

# roff-safe copy of plain text: backslashes, and lines starting with . or '
roff() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }

"$bin" --help >"$tmp/top"
families=$(sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' "$tmp/top")
{
	echo "[SEE ALSO]"
	for f in $families; do printf '.BR crossgate-%s (1),\n' "$f"; done
	echo ".PP"
	echo "docs/DESIGN.md and docs/PROTOCOL.md in the source tree."
} >"$tmp/top.inc"
help2man -N --no-discard-stderr --version-string="$version" \
	-n "privacy-preserving data-integration gateway" -i "$tmp/top.inc" -o "$out/crossgate.1" "$bin"

for f in $families; do
	printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$bin" "$f" >"$tmp/crossgate-$f"
	chmod +x "$tmp/crossgate-$f"
	"$bin" "$f" --help >"$tmp/h"
	what=$(sed -n "s/^  $f  *\(.*\)/\1/p" "$tmp/top")
	subcommands "$f" "$tmp/h" >"$tmp/subs"
	: >"$tmp/inc"
	for s in $(cat "$tmp/subs"); do
		"$bin" "$f" "$s" --help >"$tmp/sh" 2>/dev/null || continue
		# A family whose subcommands share one help text gets it once.
		cmp -s "$tmp/sh" "$tmp/h" && continue
		[ -s "$tmp/inc" ] || echo "[SUBCOMMANDS]" >"$tmp/inc"
		printf '.SS "crossgate %s %s"\n.nf\n' "$f" "$s" >>"$tmp/inc"
		roff <"$tmp/sh" >>"$tmp/inc"
		printf '.fi\n' >>"$tmp/inc"
	done
	printf '[SEE ALSO]\n.BR crossgate (1)\n' >>"$tmp/inc"
	help2man -N --no-discard-stderr --version-string="$version" -n "$what" -i "$tmp/inc" \
		-o "$out/crossgate-$f.1" "$tmp/crossgate-$f"
done
