#!/usr/bin/env bash
# A trust store deleted while a volume is mounted: the next commit fails with a message that says so and
# how to put it back (its last state is saved to PATH.saved), the changes are kept, and once the store is
# back a commit succeeds; at unmount the held commit stays pending and completes at the next mount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

STORE=$T/trust.db
fs_init
"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -f -o commit_interval=0 "$BACK" "$MNT" 2>"$T/log" &
daemon=$!
wait_until 20 is_mounted "$MNT" || fail "not mounted"

fsync_write() { # FILE TEXT: writes TEXT and fsyncs; exits with the errno of a failure (0 if none)
	python3 - "$1" "$2" <<'PY'
import os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, sys.argv[2].encode())
    os.fsync(fd)
except OSError as e:
    sys.exit(e.errno)
PY
}
fsync_write "$MNT/a" one || fail "fsync before the deletion failed"
v1=$(trusted_version)

rm -f "$STORE" "$STORE-wal" "$STORE-shm"
got=0; fsync_write "$MNT/b" two || got=$?
expect_eq 5 "$got" "errno of an fsync with the trust store deleted (EIO)"
wait_until 10 grep -q "trust store $STORE was deleted while in use.*move $STORE.saved back" "$T/log" ||
	fail "no log line naming the deleted store and how to put it back: $(cat "$T/log")"
[ -s "$STORE.saved" ] || fail "the store's last state was not saved"
expect_eq "$v1" "$(trusted_version "file:$STORE.saved")" "version in the saved store"
expect_eq two "$(cat "$MNT/b")" "the change is kept while the store is gone"

# Put back: the next commit goes through.
mv "$STORE.saved" "$STORE"
fsync_write "$MNT/b" two || fail "fsync after the store was put back failed"
[ "$(trusted_version)" -gt "$v1" ] || fail "the trust store did not move after it was put back"

# Deleted again, then unmounted: umount fails with the trust anchor's status (6, as a mount without the
# store does) and says so; the commit stays pending in the volume.
rm -f "$STORE" "$STORE-wal" "$STORE-shm"
echo three >"$MNT/c"
expect_status 6 "$FSHIELD" umount "$MNT"
got=0; wait "$daemon" || got=$?
expect_eq 6 "$got" "exit status of the daemon"
grep -q "final commit failed" "$T/log" || fail "umount did not say the final commit failed: $(cat "$T/log")"
# Without the store the volume does not mount; with its saved state back it does, with everything.
expect_status 6 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>/dev/null
mv "$STORE.saved" "$STORE"
fs_mount
expect_eq one "$(cat "$MNT/a")" "a after remount"
expect_eq two "$(cat "$MNT/b")" "b after remount"
expect_eq three "$(cat "$MNT/c")" "c after remount"
fs_umount
echo "73-trust-store-deleted: ok"
