#!/bin/sh
# make bench: runs every bench/*.bench.sh; each prints its figures as ratios
# against a baseline measured in the same run.
# usage: run.sh BUILD_DIR
set -eu
build=${1:-build}
for b in bench/*.bench.sh; do
	echo "== $(basename "$b" .bench.sh)"
	sh "$b" "$build"
done
