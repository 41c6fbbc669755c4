#!/bin/sh
# A short run of tests/faults.sh (kill -9 among pushes, queries and exports)
# for every make test; `make faults KILLS=100` runs the long one.
exec sh tests/faults.sh "$(dirname "$CROSSGATE")" 6
