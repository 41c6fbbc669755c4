#!/bin/sh
# Folders are layers and dependencies point down: each folder's sources
# include headers of the folders below it only (the table), never of a
# folder above or beside it.  Generated protobuf-c headers count as proto/.
# cli/ is the front end and may include everything; tests/ and bench/ too.
. tests/e2e/lib.sh

allowed() {
	case $1 in
	base)      echo "" ;;
	crypto)    echo "base" ;;
	proto)     echo "base crypto" ;;
	net)       echo "base crypto proto" ;;
	policy)    echo "base crypto" ;;
	store)     echo "base crypto" ;;
	audit)     echo "base crypto proto store" ;;
	agent)     echo "base crypto proto net policy" ;;
	gateway)   echo "base crypto proto net policy store audit" ;;
	analytics) echo "base" ;;
	synth)     echo "base" ;;
	*)         echo "?" ;;
	esac
}

# check_tree ROOT: every violation in ROOT's layer folders, as "file: folder/header".
check_tree() {
	for dir in base crypto proto net policy store audit agent gateway analytics synth; do
		[ -d "$1/$dir" ] || continue
		ok_dirs="$dir $(allowed "$dir")"
		for f in "$1/$dir"/*.c "$1/$dir"/*.h; do
			[ -f "$f" ] || continue
			sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\)\/[^"]*".*/\1/p' "$f" | sort -u |
			while read -r dep; do
				case " $ok_dirs " in *" $dep "*) ;; *) echo "${f#"$1"/}: includes $dep/" ;; esac
			done
		done
	done
}

check_tree . >"$E2E_TMP/violations"
if [ -s "$E2E_TMP/violations" ]; then bad "includes that point up or sideways:"; sed 's/^/    /' "$E2E_TMP/violations"
else ok "every layer folder includes only its own and lower layers' headers"; fi
check "no folder outside the table holds library sources" sh -c \
	"! ls -d */ | tr -d / | grep -vxE 'base|crypto|proto|net|policy|store|audit|agent|gateway|analytics|synth|cli|tests|bench|docs|build|build-asan|build-fuzz|build-prof|demo' | grep ."

# The check can fail: a copy of the tree where crypto/ reaches up into gateway/ is caught.
mkdir -p "$E2E_TMP/tree/crypto" "$E2E_TMP/tree/base"
printf '#include "gateway/join.h"\n#include "base/err.h"\n' >"$E2E_TMP/tree/crypto/x.c"
check_tree "$E2E_TMP/tree" >"$E2E_TMP/v2"
check "a header reached upwards is reported" grep -q "crypto/x.c: includes gateway/" "$E2E_TMP/v2"
check "and only that one" [ "$(wc -l <"$E2E_TMP/v2")" -eq 1 ]
e2e_done
