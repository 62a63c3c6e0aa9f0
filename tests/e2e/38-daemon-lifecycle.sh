#!/usr/bin/env bash
# The daemon's life: foreground mode, SIGTERM / SIGINT / SIGHUP (commit, unmount, exit 0), a busy mount
# point, the commit timer, kill -9 (fsync'd data survives, umount reports the missing final commit, the
# next mount recovers without alarm), and the exit status after an integrity violation while mounted.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

daemon_pid() {
	sed -n 's/^pid //p' "$FSHIELD_RUN_DIR"/*.pid
}
gone() {
	! pid_alive "$1"
}

fs_init

# Foreground: stays attached, logs to stderr, exits 0 after an unmount by someone else.
"$FSHIELD" mount -f --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>"$T/fg.log" &
fg=$!
EXTRA_PIDS+=("$fg")
wait_until 20 is_mounted "$MNT" || fail "foreground mount did not appear"
echo foreground >"$MNT/fg"
fusermount3 -u "$MNT"
st=0
wait "$fg" || st=$?
expect_eq 0 "$st" "exit status of the foreground daemon"
grep -q "serving $BACK" "$T/fg.log" || fail "no log on stderr: $(cat "$T/fg.log")"
! grep -qi "$(cat "$KEY")" "$T/fg.log" || fail "the key appears in the log"

# Each termination signal: the daemon commits, unmounts and exits; nothing was fsync'd.
for sig in TERM INT HUP; do
	fs_mount
	pid=$(daemon_pid)
	head -c 500000 /dev/urandom >"$T/sig-$sig"
	cp "$T/sig-$sig" "$MNT/sig-$sig"
	kill -s "$sig" "$pid"
	wait_until 30 gone "$pid" || fail "daemon still runs 30 s after SIG$sig"
	! is_mounted "$MNT" || fail "still mounted after SIG$sig"
	[ -z "$(ls -A "$FSHIELD_RUN_DIR")" ] || fail "state file left after SIG$sig"
done
fs_mount
for sig in TERM INT HUP; do
	cmp "$T/sig-$sig" "$MNT/sig-$sig" || fail "data written before SIG$sig"
done
expect_eq foreground "$(cat "$MNT/fg")" "data of the foreground mount"

# A busy mount point: umount refuses (74) and leaves it mounted; -l detaches, and the daemon finishes
# once the last user is gone.
exec 3<"$MNT/fg"
expect_status 74 "$FSHIELD" umount "$MNT" 2>"$T/err"
is_mounted "$MNT" || fail "a refused umount unmounted"
pid=$(daemon_pid)
"$FSHIELD" umount -l -t 60 "$MNT" 3<&- &
lazy=$!
wait_until 20 eval '! is_mounted "$MNT"' || fail "umount -l did not detach"
pid_alive "$pid" || fail "the daemon stopped while a file was still open"
exec 3<&-
st=0
wait "$lazy" || st=$?
expect_eq 0 "$st" "umount -l exit status"
gone "$pid" || fail "daemon still runs after umount -l returned"

# SIGTERM on a busy mount point: the daemon detaches it and exits anyway, committing what it has.
fs_mount
echo "before busy TERM" >"$MNT/busy"
exec 3<"$MNT/busy"
pid=$(daemon_pid)
kill -TERM "$pid"
wait_until 30 gone "$pid" || fail "daemon ignores SIGTERM on a busy mount point"
exec 3<&-
! is_mounted "$MNT" || fail "still mounted after SIGTERM on a busy mount point"
fs_mount
expect_eq "before busy TERM" "$(cat "$MNT/busy")" "data committed on SIGTERM"
fs_umount

# The commit timer commits without fsync; kill -9 afterwards loses nothing.
fs_mount -o commit_interval=1
v0=$(trusted_version)
head -c 200000 /dev/urandom >"$T/timed"
cp "$T/timed" "$MNT/timed"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.close(fd)' "$MNT/timed"
timer_committed() { [ "$(trusted_version)" -gt "$v0" ]; }
wait_until 20 timer_committed || fail "no commit within 20 s with commit_interval=1"
pid=$(daemon_pid)
kill -KILL "$pid"
wait_until 10 gone "$pid" || fail "kill -9"
# umount cleans up the dead mount and says the final commit is missing.
expect_status 74 "$FSHIELD" umount "$MNT" 2>"$T/err"
grep -q 'without its final commit' "$T/err" || fail "umount after kill -9: $(cat "$T/err")"
! is_mounted "$MNT" || fail "dead mount left behind"
[ -z "$(ls -A "$FSHIELD_RUN_DIR")" ] || fail "the dead daemon's state file was left behind"
fs_mount -o commit_interval=0
cmp "$T/timed" "$MNT/timed" || fail "data committed by the timer lost by kill -9"

# fsync commits at once (no timer here), fsync'd data survives kill -9, and the next mount is clean.
v1=$(trusted_version)
head -c 300000 /dev/urandom >"$T/synced"
python3 - "$T/synced" "$MNT/synced" <<'EOF'
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
EOF
[ "$(trusted_version)" -gt "$v1" ] || fail "fsync did not commit"
pid=$(daemon_pid)
kill -KILL "$pid"
wait_until 10 gone "$pid" || fail "kill -9"
fusermount3 -u -z "$MNT"
fs_mount
cmp "$T/synced" "$MNT/synced" || fail "fsync'd data lost by kill -9"
cmp "$T/timed" "$MNT/timed" || fail "older data lost by the second kill -9"

# An integrity violation while mounted: EIO, the volume turns read-only, and the daemon's exit status
# (reported by umount) is 1.
head -c 400000 /dev/urandom >"$MNT/victim"
fs_umount
fs_mount
python3 - "$BACK" <<'EOF'
import os, sys
# flip one byte in the middle of every chunk object of the volume
for d, _, files in os.walk(os.path.join(sys.argv[1], "d")):
    for f in files:
        p = os.path.join(d, f)
        with open(p, "r+b") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(size // 2)
            b = fh.read(1)
            fh.seek(size // 2)
            fh.write(bytes([b[0] ^ 0x40]))
EOF
out=$(cat "$MNT/victim" 2>&1 >/dev/null) && fail "tampered data was served"
grep -q 'Input/output error' <<<"$out" || fail "tampered read: $out"
out=$(echo x 2>&1 >"$MNT/after-tamper") && fail "the volume accepted a change after a violation"
grep -q 'Read-only file system' <<<"$out" || fail "change after a violation: $out"
# Also for an existing file: the writeback cache must not accept what can never be written back.
out=$(echo more 2>&1 >>"$MNT/timed") && fail "appended to a file after a violation"
grep -q 'Read-only file system' <<<"$out" || fail "append after a violation: $out"
expect_status 1 "$FSHIELD" umount "$MNT" 2>"$T/err"
grep -q 'status 1 (tamper)' "$T/err" || fail "umount after a violation: $(cat "$T/err")"
! is_mounted "$MNT" || fail "still mounted"
echo ok
