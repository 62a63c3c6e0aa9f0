#!/usr/bin/env bash
# An `init.incomplete` marker planted in the backing directory must not hide tamper: it is believed only
# when the trust anchor holds no record of the volume. Otherwise `verify` reports it as one more finding
# beside all the others, `mount` answers as it would without it, and a read-write mount of a volume that
# verifies removes it.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
# A copy of the trust store before the volume is registered: same store, no record of the volume.
mkdir -p "$BACK"
"$FSHIELD" keygen -o "$KEY"
mkdir -p "$T/other"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size "$CS" "$T/other" >/dev/null
BEFORE=$(copy_trust before)
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size "$CS" "$BACK" >/dev/null
fs_mount
head -c 20000 /dev/urandom >"$MNT/a"
IA=$(stat -c %i "$MNT/a")
fs_umount
PA=$(pack_of "$BACK" "$IA")
PA=${PA#"$BACK"/}

# mount_status DIR [TRUST]: the exit status of a read-write mount of DIR (unmounted again at once), its
# messages in $T/mount.err.
mount_status() {
	local s=0
	"$FSHIELD" mount --key-file "$KEY" --trust "${2:-$TRUST}" "$1" "$MNT" 2>"$T/mount.err" || s=$?
	if is_mounted "$MNT"; then "$FSHIELD" umount "$MNT" >/dev/null 2>&1 || s=99; fi
	echo "$s"
}

echo "== tampered store and chunk, with a planted marker"
d=$(fresh tampered)
flip_byte "$d/$PA" $(($(slot_of "$BACK" "$IA" 2) * CS + 7))
sql "$d/meta.db" "UPDATE buckets SET digest=zeroblob(32) WHERE b=0"
touch "$d/init.incomplete"
run_verify tampered "$d"
expect_vstatus 1
expect_finding metadata - -
expect_finding modified /a 2 8192 12287
expect_finding marker - -
check "tampered: verify does not say the creation was interrupted"
! grep -q "interrupted" "$VOUT" || soft_fail "tampered: the planted marker hid the findings" "$VOUT"
check "tampered: mount refuses with the tamper status (1), not 74"
s=$(mount_status "$d")
[ "$s" -eq 1 ] && grep -q "tamper detected" "$T/mount.err" && ! grep -q interrupted "$T/mount.err" ||
	soft_fail "tampered: mount exited $s" "$T/mount.err"
check "tampered: the marker is left as evidence"
[ -e "$d/init.incomplete" ] || soft_fail "tampered: the marker was removed"

echo "== an intact volume with a planted marker"
d=$(fresh intact)
touch "$d/init.incomplete"
run_verify intact "$d"
expect_vstatus 0
expect_finding marker - -
expect_text 'init.incomplete is present, but the trust anchor records this volume'
check "intact: a read-write mount succeeds and removes the marker"
s=$(mount_status "$d")
[ "$s" -eq 0 ] && [ ! -e "$d/init.incomplete" ] || soft_fail "intact: mount exited $s, marker $(ls "$d")" "$T/mount.err"
run_verify intact-after "$d"
expect_vstatus 0

echo "== a real interrupted creation: the anchor has no record"
d=$(fresh norecord)
touch "$d/init.incomplete"
run_verify norecord "$d" --key-file "$KEY" --trust "$BEFORE"
expect_vstatus 74
expect_text 'was interrupted: empty the directory and run init again'
check "norecord: mount says the creation was interrupted (74)"
s=$(mount_status "$d" "$BEFORE")
[ "$s" -eq 74 ] && grep -q interrupted "$T/mount.err" || soft_fail "norecord: mount exited $s" "$T/mount.err"

echo "== interrupted before the header was written"
d=$T/nohdr
mkdir -p "$d/d"
cp "$BACK/meta.db" "$d/"
touch "$d/init.incomplete"
run_verify nohdr "$d"
expect_vstatus 74
expect_text 'was interrupted'
finish
