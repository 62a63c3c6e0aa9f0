#!/usr/bin/env bash
# Access times: relatime (default: the first read after a change updates the access time, later reads
# do not), strictatime (every read), noatime (never); changed on a live mount by remount; none on a
# read-only mount; kept across remounts, committed with the next commit rather than one per read.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

atime() { python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_atime_ns)' "$1"; }
mtime() { python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_mtime_ns)' "$1"; }
readit() { cat "$1" >/dev/null; }
remount_opts() { "$FSHIELD" mount -o "remount,$1" "$MNT" || fail "remount,$1 exited $?"; }
# expect_updated FILE: a read changes FILE's access time, to a time not before its modification.
expect_updated() {
	local before after
	before=$(atime "$1")
	readit "$1"
	after=$(atime "$1")
	[ "$after" -gt "$before" ] || fail "$2: a read left the access time at $before"
	[ "$after" -ge "$(mtime "$1")" ] || fail "$2: access time $after before the modification time"
}
expect_kept() {
	local before
	before=$(atime "$1")
	readit "$1"
	expect_eq "$before" "$(atime "$1")" "$2: access time after a read"
}

fs_init
fs_mount -o commit_interval=0
f=$MNT/file
echo one >"$f" # its pages stay cached: the read must still reach the daemon
expect_updated "$f" "relatime, first read after the write"
expect_kept "$f" "relatime, second read"
echo two >>"$f"
expect_updated "$f" "relatime, first read after a change"
expect_kept "$f" "relatime, read after that"

# No commit per read: the version at the trust anchor stays until the commit at unmount, which keeps it.
echo three >>"$f"
"$FSHIELD" umount "$MNT"
fs_mount -o commit_interval=0
v=$(trusted_version)
expect_updated "$f" "relatime after a remount"
want=$(atime "$f")
expect_eq "$v" "$(trusted_version)" "trusted version after reads"
fs_umount
[ "$(trusted_version)" -gt "$v" ] || fail "the access time was not committed at unmount"
fs_mount
expect_eq "$want" "$(atime "$f")" "access time after a remount"

# Batched: an access time goes with the next commit of a change (here fsync of another file), and is
# there after the daemon is killed without its final commit.
echo six >>"$f"
fs_umount
fs_mount -o commit_interval=0
expect_updated "$f" "relatime before a commit of a change"
want=$(atime "$f")
echo other >"$MNT/other"
sync "$MNT/other"
pid=$(daemon_pids)
kill -KILL "$pid"
wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" || fail "kill -9"
"$FSHIELD" umount "$MNT" 2>/dev/null || true
fs_mount
expect_eq "$want" "$(atime "$f")" "access time committed with the next change"

# noatime, strictatime, and changes on the live mount.
remount_opts noatime
expect_kept "$f" "noatime"
echo four >>"$f"
expect_kept "$f" "noatime after a change"
remount_opts strictatime
expect_updated "$f" "strictatime"
expect_updated "$f" "strictatime, second read"
remount_opts relatime
expect_kept "$f" "relatime after strictatime"
fs_umount
fs_mount -o noatime
echo five >>"$f"
expect_kept "$f" "mounted with noatime"
fs_umount
fs_mount -o strictatime
expect_updated "$f" "mounted with strictatime"

# Read-only: reads change nothing, not even an access time that is due.
remount_opts ro
expect_kept "$f" "remounted read-only"
remount_opts rw
expect_updated "$f" "strictatime again read-write"
fs_umount
echo "44-atime: ok"
