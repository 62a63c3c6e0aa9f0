#!/usr/bin/env bash
# mount / umount: the mount is ready when the command returns, umount waits for the daemon's final
# commit, data survives byte for byte, and mount refuses what it must with the documented statuses.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

fs_init
fs_mount
# Ready at once: the root is served by the daemon and listed as our file system.
expect_eq "fuse.fshield" "$(awk -v m="$MNT" '$2 == m { print $3 }' /proc/mounts)" "type in /proc/mounts"
expect_eq "$BACK" "$(awk -v m="$MNT" '$2 == m { print $1 }' /proc/mounts)" "source in /proc/mounts"
expect_eq "" "$(ls -A "$MNT")" "a new volume is empty"

state=$(ls "$FSHIELD_RUN_DIR"/*.pid)
pid=$(sed -n 's/^pid //p' "$state")
expect_eq "mountpoint $MNT" "$(grep '^mountpoint ' "$state")" "state file names the mount point"
pid_alive "$pid" || fail "daemon $pid is not running"

head -c 3000000 /dev/urandom >"$T/blob"
cp "$T/blob" "$MNT/blob"
echo hello >"$MNT/hello"
want=$(cd "$T" && sha256sum blob)

fs_umount
# umount returned only after the daemon exited and removed its state file.
! pid_alive "$pid" || fail "daemon $pid still runs after umount returned"
[ ! -e "$state" ] || fail "state file $state left behind"
expect_eq "" "$(ls -A "$MNT")" "the mount point is empty once unmounted"
# Nothing in the backing directory shows the plaintext.
! grep -rq hello "$BACK" || fail "plaintext found in the backing directory"

fs_mount
expect_eq "$want" "$(cd "$MNT" && sha256sum blob)" "blob after remount"
expect_eq hello "$(cat "$MNT/hello")" "hello after remount"

# A second daemon for the same volume, or for the same mount point, is refused (7) and mounts nothing.
mkdir "$T/mnt2"
expect_status 7 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$T/mnt2" 2>"$T/err"
grep -q '^fshield mount: ' "$T/err" || fail "no one-line reason: $(cat "$T/err")"
! is_mounted "$T/mnt2" || fail "second daemon mounted"
mkdir "$T/other"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" "$T/other" >/dev/null
expect_status 7 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$T/other" "$MNT" 2>"$T/err"
grep -q 'already served' "$T/err" || fail "unexpected reason: $(cat "$T/err")"
fs_umount

# Wrong key: 5, one line, nothing mounted.
"$FSHIELD" keygen -o "$T/key2"
expect_status 5 "$FSHIELD" mount --key-file "$T/key2" --trust "$TRUST" "$BACK" "$MNT" 2>"$T/err"
expect_eq 1 "$(wc -l <"$T/err")" "lines of the wrong-key reason"
grep -q '^fshield mount: ' "$T/err" || fail "reason not prefixed: $(cat "$T/err")"
! is_mounted "$MNT" || fail "mounted with a wrong key"
# Another trust store than the one the volume is bound to: 6.
expect_status 6 "$FSHIELD" mount --key-file "$KEY" --trust "file:$T/other-trust.db" "$BACK" "$MNT" 2>/dev/null
! is_mounted "$MNT" || fail "mounted under another trust anchor"
# Missing backing directory or mount point: 74; bad options: 64.
expect_status 74 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$T/nonexistent" "$MNT" 2>/dev/null
expect_status 74 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$T/nonexistent" 2>/dev/null
expect_status 64 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o no_such_option "$BACK" "$MNT" 2>/dev/null
expect_status 64 "$FSHIELD" mount --key-file "$KEY" --passphrase-file "$KEY" "$BACK" "$MNT" 2>/dev/null
expect_status 64 "$FSHIELD" mount --key-file "$KEY" "$BACK" 2>/dev/null
expect_status 64 "$FSHIELD" mount --key-file "$KEY" -o commit_interval=soon "$BACK" "$MNT" 2>/dev/null
! is_mounted "$MNT" || fail "mounted despite bad options"
# umount of something that is not mounted: 64.
expect_status 64 "$FSHIELD" umount "$MNT" 2>/dev/null
"$FSHIELD" help mount | grep -q '^usage: fshield mount' || fail "help mount"
"$FSHIELD" help umount | grep -q '^usage: fshield umount' || fail "help umount"

# Key and trust as -o options (the fstab form), relative paths included.
(cd "$T" && "$FSHIELD" mount -o "key_file=key,trust=file:trust.db,commit_interval=1,noatime" backing mnt)
is_mounted "$MNT" || fail "mount with -o key_file,trust"
expect_eq hello "$(cat "$MNT/hello")" "hello via -o options"
fs_umount

# Read-only: reads work, every change fails with EROFS, and nothing is committed.
v0=$(trusted_version)
fs_mount -o ro
expect_eq hello "$(cat "$MNT/hello")" "read-only read"
out=$(echo x 2>&1 >"$MNT/new") && fail "created a file on a read-only mount"
grep -q 'Read-only file system' <<<"$out" || fail "unexpected error on a read-only mount: $out"
out=$(mkdir "$MNT/d" 2>&1) && fail "mkdir on a read-only mount"
sync "$MNT/hello"
fs_umount
expect_eq "$v0" "$(trusted_version)" "trusted version after a read-only mount"
echo ok
