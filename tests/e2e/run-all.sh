#!/usr/bin/env bash
# Runs every end-to-end script in tests/e2e (NN-name.sh) in order; each cleans up after itself.
# Prints one line per script and the plain closing line "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${FSHIELD:?set FSHIELD to the fshield binary}"
export FSHIELD
pass=0 fail=0 failed=()
for t in "$here"/[0-9]*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t")
	log=$(mktemp)
	start=$(date +%s)
	if bash "$t" >"$log" 2>&1; then
		pass=$((pass + 1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; sed 's/^/    /' "$log" | tail -n 60
	fi
	rm -f "$log"
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
