#!/usr/bin/env bash
# A failed sync of chunk data is latched: Linux reports a writeback error once, so a commit that retried
# the sync would acknowledge data that never reached the disk. After the failure every fsync fails, the
# volume turns read-only, umount exits 74 naming what was lost, and the next mount serves the last
# acknowledged version. Needs a test build (FSHIELD_FAIL_SYNC=N fails the Nth sync of chunk data once).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

fs_init
# The first file's fdatasync succeeds; the second file's fails, once.
FSHIELD_FAIL_SYNC=2 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -f -o commit_interval=0 "$BACK" "$MNT" \
	2>"$T/log" &
daemon=$!
wait_until 20 is_mounted "$MNT" || fail "not mounted"

fsync_write() { # FILE TEXT: writes TEXT and fsyncs; exits with the errno of a failure (0 if none)
	python3 - "$1" "$2" <<'PY'
import os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, sys.argv[2].encode())
    os.fsync(fd)
except OSError as e:
    sys.exit(e.errno)
PY
}
fsync_write "$MNT/a" "first" || fail "fsync of a failed"
v1=$(trusted_version)
got=0; fsync_write "$MNT/b" "second" || got=$?
expect_eq 5 "$got" "errno of the fsync whose data sync failed (EIO)"
# The retry must not acknowledge: the kernel would not report the lost write again.
got=0; python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$MNT/b" 2>/dev/null || got=$?
[ "$got" -ne 0 ] || fail "a second fsync acknowledged data whose sync had failed"
expect_eq "$v1" "$(trusted_version)" "trusted version after the failed sync"
got=0; fsync_write "$MNT/c" "third" 2>/dev/null || got=$?
expect_eq 30 "$got" "a change after the failure (EROFS)"
expect_status 74 "$FSHIELD" umount "$MNT"
got=0; wait "$daemon" || got=$?
expect_eq 74 "$got" "exit status of the daemon"
grep -q '/b: fdatasync of its chunk data failed.*nothing after version' "$T/log" ||
	fail "no log line saying what was lost: $(cat "$T/log")"
fs_mount
expect_eq first "$(cat "$MNT/a")" "the acknowledged file after remount"
[ ! -e "$MNT/b" ] || fail "the file whose sync failed is there after remount"
fs_umount
echo "72-sync-fail: ok"
