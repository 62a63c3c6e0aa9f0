#!/usr/bin/env bash
# Namespace squatting (docs/CAS.md, section 2), against a real `fshield cas serve` on 127.0.0.1:
#   - a namespace belongs to the client that created its first session: another client's session in it is
#     refused (403, the owner named) and not stored; the owner creates more sessions there;
#   - a client sees who created the session it uses: `cas session show` by a listed client gives the
#     creator (not the session), the info answer gives it to `init`, which prints it;
#   - `init --cas-creator F` refuses (6) a session another certificate created (a squatter's session in
#     a namespace of its own that lists the victim), makes nothing, and succeeds for the expected one.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

cas_start main "sqlite:$T/cas.db"
CAS=127.0.0.1:${CPORT[main]}
as_other() { FSHIELD_TLS_CERT=$PKI/other.crt FSHIELD_TLS_KEY=$PKI/other.key "$@"; }
session() { # session NAME CLIENT...
	local name=$1 c list=
	shift
	for c in "$@"; do list+="${list:+, }$(fp "$c")"; done
	printf 'name: %s\nvolumes:\n  - name: V1\n    update_policy: rollback_protected\n    clients: [%s]\n' "$name" "$list"
}

echo "== the owner of prod creates prod/app; another client cannot create prod/db"
session prod/app client >"$T/app.yaml"
as_owner "$FSHIELD" cas session create "$T/app.yaml" --cas "$CAS" >/dev/null
session prod/db client other >"$T/db.yaml"
expect_status 6 as_other "$FSHIELD" cas session create "$T/db.yaml" --cas "$CAS" 2>"$T/err"
grep -q "HTTP 403.*namespace prod belongs to another client ($(fp owner))" "$T/err" ||
	fail "a session in another client's namespace: $(cat "$T/err")"
expect_eq 0 "$(sqlite3 "$T/cas.db" "SELECT count(*) FROM sessions WHERE name = 'prod/db'")" "prod/db stored"
# The refusal left the name free for the owner.
session prod/db client >"$T/db-owner.yaml"
as_owner "$FSHIELD" cas session create "$T/db-owner.yaml" --cas "$CAS" >/dev/null ||
	fail "the owner of prod could not create prod/db"

echo "== a squatter's session in its own namespace: the client sees its creator"
session squat/db client other >"$T/squat.yaml"
as_other "$FSHIELD" cas session create "$T/squat.yaml" --cas "$CAS" >/dev/null
"$FSHIELD" cas session show squat/db --cas "$CAS" >"$T/out"
grep -q "\"creator\": \"$(fp other)\"" "$T/out" || fail "a listed client does not see the creator: $(cat "$T/out")"
! grep -q '"session"' "$T/out" || fail "a listed client was shown the session: $(cat "$T/out")"

echo "== init --cas-creator"
mkdir -p "$T/squat" "$T/app"
expect_status 6 "$FSHIELD" init --trust "cas://$CAS/squat/db/V1" --cas-creator "$(fp owner)" "$T/squat" 2>"$T/err"
grep -q "CAS session of squat/db/V1 was created by $(fp other), not by the expected $(fp owner)" "$T/err" ||
	fail "init in a squatter's session: $(cat "$T/err")"
[ -z "$(ls -A "$T/squat")" ] || fail "init in a squatter's session left files: $(ls -A "$T/squat")"
expect_status 6 "$FSHIELD" init --trust "cas://$CAS/squat/db/V1" --cas-creator not-a-fingerprint "$T/squat" 2>"$T/err"
grep -q -- "--cas-creator takes the SHA-256 fingerprint" "$T/err" || fail "a malformed --cas-creator: $(cat "$T/err")"
"$FSHIELD" init --trust "cas://$CAS/prod/app/V1" --cas-creator "$(fp owner)" "$T/app" >"$T/out" ||
	fail "init in the owner's session: $(cat "$T/out")"
grep -q "session creator $(fp owner)" "$T/out" || fail "init did not print the session's creator: $(cat "$T/out")"
cmount "$T/app" "$MNT" "cas://$CAS/prod/app/V1"
echo data >"$MNT/f"
cumount "$MNT"
FSHIELD_CAS_CREATOR=$(fp other) expect_status 6 "$FSHIELD" verify --trust "cas://$CAS/prod/app/V1" "$T/app" >"$T/err" 2>&1
grep -q "was created by $(fp owner), not by the expected $(fp other)" "$T/err" || fail "verify with another creator: $(cat "$T/err")"
"$FSHIELD" verify --trust "cas://$CAS/prod/app/V1" --cas-creator "$(fp owner)" "$T/app" >/dev/null ||
	fail "verify with the expected creator"
echo ok
