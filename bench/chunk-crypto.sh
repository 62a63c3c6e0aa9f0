#!/usr/bin/env bash
# Chunk crypto throughput: runs `fshield bench crypto` and prints its table.
# usage: bench/chunk-crypto.sh [FSHIELD_BINARY] [bench options...]
#   FSHIELD_BINARY defaults to build/fshield in this repository; further arguments (e.g. --seconds 2,
#   --json) go to the bench. See bench/README.md for what is measured and how to read it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/fshield}
[ $# -gt 0 ] && shift
if [ ! -x "$bin" ]; then
	echo "chunk-crypto: no fshield binary at $bin (run make first, or pass its path)" >&2
	exit 2
fi
exec "$bin" bench crypto "$@"
