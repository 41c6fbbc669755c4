#!/bin/sh
# setup.sh - make sure the Debian packages crossgate needs are installed.
#
#   sh setup.sh          install what is missing (as root), or print the apt-get line
#   sh setup.sh --check  the same; used by the Makefile before the first build
#
# Only Debian's own packages: the build needs nothing downloaded from elsewhere.
set -eu

PKGS="gcc make pkg-config libsodium-dev libssl-dev protobuf-c-compiler libprotobuf-c-dev
libsqlite3-dev sqlite3 libfyaml-dev libjansson-dev libcsv-dev clang libclang-rt-14-dev python3 python3-cryptography
python3-numpy python3-sklearn python3-pil chromium help2man python3-nacl python3-protobuf python3-yaml
protobuf-compiler libseccomp-dev time"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "crossgate: these Debian packages are missing:$missing" >&2
	echo "install them with:  sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "crossgate: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
