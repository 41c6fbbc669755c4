#!/bin/sh
# Folders are layers and dependencies point down: each folder's sources
# include headers of the folders below it only (the table), never of a
# folder above or beside it.  Generated protobuf-c headers count as proto/.
# cli/ is the front end and may include everything; tests/ and bench/ too.
# The same table is checked on the built objects' symbols, so that a
# function declared by hand instead of included does not slip past.
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

LAYERS="base crypto proto net policy store audit agent gateway analytics synth"

# check_tree ROOT: every violation in ROOT's layer folders, as "file: folder/header".
check_tree() {
	for dir in $LAYERS; do
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

# The same table for what the objects link: a function declared by hand (extern) instead of
# included is still a dependency.  The generated protobuf objects (obj/gen) count as proto/.
# check_links OBJDIR: every "object: symbol folder" a layer needs from a folder it may not use.
check_links() {
	mkdir -p "$E2E_TMP/defs"
	for d in $LAYERS; do
		: >"$E2E_TMP/defs/$d"
		objs=$(ls "$1/$d"/*.o 2>/dev/null; [ "$d" = proto ] && ls "$1"/gen/*.o 2>/dev/null)
		[ -n "$objs" ] || continue
		# shellcheck disable=SC2086
		nm --defined-only $objs 2>/dev/null | awk -v d="$d" 'NF == 3 && $2 ~ /[TDBR]/ {print $3, d}' >"$E2E_TMP/defs/$d"
	done
	for dir in $LAYERS; do
		ls "$1/$dir"/*.o >/dev/null 2>&1 || continue
		ok_dirs="$dir $(allowed "$dir")"
		for d in $LAYERS; do
			case " $ok_dirs " in *" $d "*) ;; *) cat "$E2E_TMP/defs/$d" ;; esac
		done >"$E2E_TMP/banned"
		# nm -A: "OBJDIR/dir/x.o:  U symbol"
		nm -A -u "$1/$dir"/*.o 2>/dev/null | awk -v root="$1/" 'NR == FNR {b[$1] = $2; next}
			($NF in b) {f = $1; sub(/:$/, "", f); if (index(f, root) == 1) f = substr(f, length(root) + 1); print f ": " $NF " " b[$NF]}' "$E2E_TMP/banned" -
	done
}
OBJ=$(dirname "$CROSSGATE")/obj
check "the objects are built" [ -f "$OBJ/gateway/join.o" ]
check_links "$OBJ" >"$E2E_TMP/lviolations"
if [ -s "$E2E_TMP/lviolations" ]; then bad "objects that link up or sideways:"; sed 's/^/    /' "$E2E_TMP/lviolations" | head -20
else ok "every layer's objects link only their own and lower layers' symbols"; fi

# ... and can fail: an object of crypto/ that calls a gateway function it declared itself.
mkdir -p "$E2E_TMP/objs/crypto" "$E2E_TMP/objs/gateway"
cp "$OBJ/gateway/join.o" "$E2E_TMP/objs/gateway/"
printf 'int join_dataset(void);\nint x(void) { return join_dataset(); }\n' >"$E2E_TMP/x.c"
check "an object that calls upwards is built" "${CC:-cc}" -c -o "$E2E_TMP/objs/crypto/x.o" "$E2E_TMP/x.c"
check_links "$E2E_TMP/objs" >"$E2E_TMP/lv2"
eq "it is the one reported" "$(cat "$E2E_TMP/lv2")" "crypto/x.o: join_dataset gateway"
e2e_done
