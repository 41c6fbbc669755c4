#!/bin/sh
# The analytics core reads released outputs only: analytics/*.c includes no
# header of the store, ingest, export, audit, keys or tokens, and the objects
# it links (its own, plus the CSV reader, the error module, the text escaper and the safe file
# writer it uses) need no
# symbol from any other crossgate module.
. tests/e2e/lib.sh
OBJ=$(dirname "$CROSSGATE")/obj
LIB=$(dirname "$CROSSGATE")/libcrossgate.a

# The headers analytics may include: its own, errors, the CSV reader, the text escaper (for HTML),
# the safe file writer, system and library headers.
grep -h '^[[:space:]]*#[[:space:]]*include' analytics/*.c analytics/*.h >"$E2E_TMP/includes"
check "analytics has #include lines to check" [ -s "$E2E_TMP/includes" ]
grep -v -E '#[[:space:]]*include[[:space:]]+(<[a-z0-9_/.]+>|"analytics/[a-z_]+\.h"|"base/err\.h"|"base/csvfile\.h"|"base/escape\.h"|"base/outfile\.h")' \
	"$E2E_TMP/includes" >"$E2E_TMP/bad_includes"
if [ -s "$E2E_TMP/bad_includes" ]; then bad "analytics includes another module:"; cat "$E2E_TMP/bad_includes"
else ok "analytics includes only its own headers, base/err.h, base/csvfile.h, base/escape.h and base/outfile.h"; fi
check "no sqlite, sodium key or OpenSSL header" sh -c "! grep -Eq '<(sqlite3|openssl/|sodium)' '$E2E_TMP/includes'"

# Link closure: every symbol the closure needs and does not define must not be
# defined anywhere in libcrossgate.a (it then comes from libc, libm, jansson,
# libcsv or libsodium's memory wiping).
CLOSURE="$OBJ/analytics/*.o $OBJ/base/csvfile.o $OBJ/base/err.o $OBJ/base/escape.o $OBJ/base/utf8.o $OBJ/base/outfile.o"
# shellcheck disable=SC2086
check "the analytics objects are built" ls $CLOSURE >/dev/null
# shellcheck disable=SC2086
nm -u $CLOSURE 2>/dev/null | awk 'NF==2 {print $2}' | sort -u >"$E2E_TMP/undef"
# shellcheck disable=SC2086
nm --defined-only $CLOSURE 2>/dev/null | awk 'NF==3 && $2 ~ /[TDBR]/ {print $3}' | sort -u >"$E2E_TMP/own"
nm --defined-only "$LIB" 2>/dev/null | awk 'NF==3 && $2 ~ /[TDBR]/ {print $3}' | sort -u >"$E2E_TMP/lib"
comm -23 "$E2E_TMP/undef" "$E2E_TMP/own" | comm -12 - "$E2E_TMP/lib" >"$E2E_TMP/reach"
if [ -s "$E2E_TMP/reach" ]; then bad "analytics links other crossgate modules:"; head "$E2E_TMP/reach"
else ok "analytics links no other crossgate module"; fi
check "the libraries it does need are external" sh -c "grep -q '^json_' '$E2E_TMP/undef' && grep -q '^csv_' '$E2E_TMP/undef'"
for p in store_ ingest_ export_ keyfile_ seal_ token_ audit_ sqlite3_ crypto_ EVP_ policy_; do
	check "no $p symbol needed" sh -c "! grep -q '^$p' '$E2E_TMP/undef'"
done
# The check is able to fail: the CLI front end, which does reach the policy module, is caught.
nm -u "$OBJ/cli/cli_analytics.o" | awk 'NF==2 {print $2}' | sort -u | comm -12 - "$E2E_TMP/lib" \
	>"$E2E_TMP/cli_reach"
check "the same check catches the front end's use of the policy module" grep -q "^policy_free$" "$E2E_TMP/cli_reach"
e2e_done
