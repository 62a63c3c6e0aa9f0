#!/usr/bin/env bash
# Recovery of the anchor binding: a volume whose trust store is lost is refused, with a message naming
# the anchor it is bound to and the way back; `fshield trust adopt` binds the verified current state to a
# new anchor on an operator's confirmation, and refuses a tampered volume, a missing confirmation and an
# anchor that still knows the volume.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
PTY=(python3 "$(dirname "$0")/pty-answer.py")
NEW=file:$T/new-trust.db

vol_init
fs_mount
echo "content that must survive" >"$MNT/keep"
mkdir "$MNT/dir"
echo more >"$MNT/dir/other"
fs_umount
pristine=$(fresh pristine)

check "info names the anchor by URI"
expect_cmd 0 info0 "$FSHIELD" info "$BACK"
grep -qF "bound to      $TRUST (anchor id " "$T/info0.out" || soft_fail "info does not name $TRUST" "$T/info0.out"
"$FSHIELD" info --json "$BACK" | grep -qF "\"anchor_uri\": \"$TRUST\"" || soft_fail "info --json has no anchor_uri"

check "the trust store is deleted: mount is refused, naming the bound anchor and trust adopt"
rm -f "$T"/trust.db*
st=0
"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>"$T/m0.err" || st=$?
[ "$st" -eq 6 ] && grep -qF "bound to $TRUST" "$T/m0.err" && grep -q "trust adopt" "$T/m0.err" ||
	soft_fail "mount without the trust store: status $st" "$T/m0.err"
! is_mounted "$MNT" || fail "mounted without its trust store"

check "no confirmation: refused, nothing changed"
before=$(dir_state "$BACK")
expect_cmd 64 noconfirm "$FSHIELD" trust adopt --key-file "$KEY" --trust "$NEW" "$BACK"
grep -q "not confirmed" "$T/noconfirm.err" || soft_fail "no reason given" "$T/noconfirm.err"
st=0
"${PTY[@]}" "$T/no.tty" "no" -- "$FSHIELD" trust adopt --key-file "$KEY" --trust "$NEW" "$BACK" || st=$?
[ "$st" -eq 64 ] || soft_fail "answering 'no' exited $st" "$T/no.tty"
expect_eq "$before" "$(dir_state "$BACK")" "a refused adopt changed the backing directory"
expect_cmd 6 not-registered "$FSHIELD" verify --key-file "$KEY" --trust "$NEW" "$BACK"

check "a tampered volume is not adopted"
bad=$(fresh bad "$pristine")
flip_byte "$(ls "$bad"/d/*/* | head -n 1)" 0
expect_cmd 1 tampered "$FSHIELD" trust adopt --key-file "$KEY" --trust "file:$T/bad-trust.db" --yes-i-know "$bad"
grep -q "refused: verify found" "$T/tampered.err" || soft_fail "no refusal named" "$T/tampered.err"
[ ! -e "$T/bad-trust.db" ] || soft_fail "a refused adopt made the new trust store"

check "adopt confirmed on the terminal: prints what it did; the volume mounts with its content"
st=0
"${PTY[@]}" "$T/yes.tty" "yes" -- "$FSHIELD" trust adopt --key-file "$KEY" --trust "$NEW" "$BACK" || st=$?
[ "$st" -eq 0 ] || soft_fail "adopt exited $st" "$T/yes.tty"
for want in "WARNING" "old anchor  $TRUST" "new anchor  $NEW" "version     " "root        " "anchor binding rewritten"; do
	grep -qF "$want" "$T/yes.tty" || soft_fail "adopt did not print '$want'" "$T/yes.tty"
done
"$FSHIELD" mount --key-file "$KEY" --trust "$NEW" "$BACK" "$MNT"
expect_eq "content that must survive" "$(cat "$MNT/keep")" "content after adopt"
expect_eq "more" "$(cat "$MNT/dir/other")" "content after adopt"
echo "written after adopt" >"$MNT/after"
fs_umount
expect_cmd 0 verify-new "$FSHIELD" verify --key-file "$KEY" --trust "$NEW" "$BACK"
expect_cmd 0 info-new "$FSHIELD" info "$BACK"
grep -qF "bound to      $NEW (anchor id " "$T/info-new.out" || soft_fail "info does not name $NEW" "$T/info-new.out"

check "the wrong-anchor error names the bound anchor and the given one"
mkdir "$T/other"
"$FSHIELD" init --key-file "$KEY" --trust "file:$T/other-trust.db" "$T/other" >/dev/null
st=0
"$FSHIELD" mount --key-file "$KEY" --trust "file:$T/other-trust.db" "$BACK" "$MNT" 2>"$T/wrong.err" || st=$?
[ "$st" -eq 6 ] && grep -qF "bound to $NEW (anchor id" "$T/wrong.err" &&
	grep -qF "not to the given file:$T/other-trust.db (anchor id" "$T/wrong.err" ||
	soft_fail "wrong anchor: status $st" "$T/wrong.err"

check "an anchor that still knows the volume: adopting an older copy is refused"
expect_cmd 6 old-copy-at-new "$FSHIELD" trust adopt --key-file "$KEY" --trust "$NEW" --yes-i-know "$pristine"
[ "$CSTATUS" -ne 0 ] && grep -q "already holds version" "$T/old-copy-at-new.err" ||
	soft_fail "an old copy adopted where the anchor knows a newer state" "$T/old-copy-at-new.err"

check "adopt again where the anchor holds exactly this state: nothing to register, no rewrite"
expect_cmd 0 again "$FSHIELD" trust adopt --key-file "$KEY" --trust "$NEW" --yes-i-know "$BACK"
grep -q "held this state already" "$T/again.out" && grep -q "unchanged" "$T/again.out" ||
	soft_fail "adopt again" "$T/again.out"

check "a volume mounted read-write is not adopted"
"$FSHIELD" mount --key-file "$KEY" --trust "$NEW" "$BACK" "$MNT"
expect_cmd 7 busy "$FSHIELD" trust adopt --key-file "$KEY" --trust "file:$T/third.db" --yes-i-know "$BACK"
fs_umount
finish
