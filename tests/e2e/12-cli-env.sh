#!/usr/bin/env bash
# Settings from the environment are read by the command line (the library takes them as options):
# $FSHIELD_TRUST picks the trust anchor when --trust is absent, an explicit --trust wins, and an empty
# $FSHIELD_TRUST means the default.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

"$FSHIELD" keygen -o "$KEY"

check "FSHIELD_TRUST is used when --trust is absent"
mkdir -p "$T/a"
out=$(FSHIELD_TRUST="file:$T/env-trust.db" "$FSHIELD" init --key-file "$KEY" "$T/a")
[ -f "$T/env-trust.db" ] && grep -q "trust file:$T/env-trust.db" <<<"$out" ||
	soft_fail "init did not use \$FSHIELD_TRUST: $out"
FSHIELD_TRUST="file:$T/env-trust.db" "$FSHIELD" verify --key-file "$KEY" "$T/a" >/dev/null ||
	soft_fail "verify did not use \$FSHIELD_TRUST"

check "an explicit --trust wins over FSHIELD_TRUST"
mkdir -p "$T/b"
out=$(FSHIELD_TRUST="file:$T/other.db" "$FSHIELD" init --key-file "$KEY" --trust "file:$T/explicit.db" "$T/b")
[ -f "$T/explicit.db" ] && [ ! -e "$T/other.db" ] && grep -q "trust file:$T/explicit.db" <<<"$out" ||
	soft_fail "the explicit --trust did not win: $out"

check "an empty FSHIELD_TRUST means the default"
mkdir -p "$T/c"
out=$(FSHIELD_TRUST= "$FSHIELD" init --key-file "$KEY" --trust none "$T/c")
grep -q "trust none" <<<"$out" || soft_fail "explicit none with an empty \$FSHIELD_TRUST: $out"
st=0; FSHIELD_TRUST= "$FSHIELD" info "$T/c" >"$T/info.out" 2>&1 || st=$?
[ "$st" -eq 0 ] || soft_fail "info with an empty \$FSHIELD_TRUST exited $st" "$T/info.out"
finish
