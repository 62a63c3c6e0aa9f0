#!/usr/bin/env bash
# Where the daemon's log goes, and that an operator sees it when something went wrong:
#   - -o log_file=FILE: a detached daemon appends its lines there (created mode 0600); a symbolic link, a
#     file of group or others' access, and a FIFO are refused before anything is mounted;
#   - started by systemd ($JOURNAL_STREAM names its standard error), a detached daemon keeps logging to
#     standard error, with the sd-daemon priority prefix, and not to syslog;
#   - a daemon that ended with an error (an integrity violation while mounted; killed): `fshield umount`
#     quotes its last log lines, the violation among them;
#   - a daemon killed before its mount is ready (test build: a crash point while it completes a prepared
#     commit): `fshield mount` says so and quotes its last log lines;
#   - a mount refused: `fshield mount` prints the reason, and the log file has it too.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

daemon_pid() {
	sed -n 's/^pid //p' "$FSHIELD_RUN_DIR"/*.pid
}

vol_init 4096
LOG=$T/daemon.log

check "log_file: a detached daemon's lines are appended to the file, created mode 0600"
fs_mount -o log_file="$LOG"
printf 'some data\n' >"$MNT/f"
sync "$MNT/f"
fs_umount
[ -f "$LOG" ] || fail "no log file"
expect_eq 600 "$(stat -c %a "$LOG")" "mode of the log file"
grep -Eq "^[0-9T:-]+Z fshield\[[0-9]+\]: info: $MNT: serving $BACK" "$LOG" || soft_fail "no 'serving' line" "$LOG"
grep -q "$MNT: unmounted, everything committed" "$LOG" || soft_fail "no 'unmounted' line" "$LOG"
lines=$(wc -l <"$LOG")
fs_mount -o log_file="$LOG"
fs_umount
[ "$(wc -l <"$LOG")" -gt "$lines" ] || soft_fail "a second mount did not append to the log file" "$LOG"
grep -qF "$(cat "$KEY")" "$LOG" && soft_fail "the key is in the log file"

check "log_file: a symbolic link, a file open to others, a FIFO are refused, nothing mounted"
ln -s "$T/elsewhere" "$T/link.log"
st=0; "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o log_file="$T/link.log" "$BACK" "$MNT" 2>"$T/err" || st=$?
expect_eq 74 "$st" "status of a mount with a symbolic link as log file"
grep -q "symbolic link" "$T/err" || soft_fail "no reason for the refused link" "$T/err"
[ ! -e "$T/elsewhere" ] || soft_fail "the link was followed"
install -m 0644 /dev/null "$T/open.log"
st=0; "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o log_file="$T/open.log" "$BACK" "$MNT" 2>"$T/err" || st=$?
expect_eq 74 "$st" "status of a mount with a log file readable by others"
grep -q "chmod 600" "$T/err" || soft_fail "the refusal does not say how to fix it" "$T/err"
mkfifo -m 0600 "$T/fifo.log"
st=0; timeout 20 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o log_file="$T/fifo.log" "$BACK" "$MNT" 2>"$T/err" || st=$?
expect_eq 74 "$st" "status of a mount with a FIFO as log file"
! is_mounted "$MNT" || fail "mounted despite a refused log file"

check "started by systemd: a detached daemon logs to standard error (the journal) with priorities"
: >"$T/journal"
jstream=$(stat -c '%d:%i' "$T/journal")
JOURNAL_STREAM=$jstream "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>>"$T/journal"
is_mounted "$MNT" || fail "not mounted"
fs_umount
grep -q "^<6>$MNT: serving $BACK" "$T/journal" || soft_fail "the journal has no 'serving' line" "$T/journal"
grep -q "^<6>$MNT: unmounted, everything committed" "$T/journal" ||
	soft_fail "the journal has no line from after the daemon detached" "$T/journal"

check "a daemon that ended with an integrity violation: umount quotes its last log lines"
fs_mount -o log_file="$LOG",commit_interval=0
head -c 8192 /dev/urandom >"$MNT/victim"
sync "$MNT/victim"
ino=$(stat -c %i "$MNT/victim")
flip_byte "$(pack_of "$BACK" "$ino")" 100
dd if="$MNT/victim" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null && fail "a tampered chunk was served"
st=0; "$FSHIELD" umount "$MNT" 2>"$T/umount.err" || st=$?
expect_eq 1 "$st" "umount status after a violation"
grep -q "ended with status 1 (tamper); its last log lines:" "$T/umount.err" || soft_fail "no status line" "$T/umount.err"
grep -Eq "^    integrity violation: /victim chunk 0 \(bytes 0-4095\)" "$T/umount.err" ||
	soft_fail "umount does not quote the violation" "$T/umount.err"
grep -q "^    $MNT: the volume was read-only after a failure" "$T/umount.err" ||
	soft_fail "umount does not quote the daemon's last line" "$T/umount.err"
grep -q "integrity violation: /victim chunk 0" "$LOG" || soft_fail "the log file has no violation line" "$LOG"

check "a daemon killed: umount says so and quotes what it logged last"
rm -rf "$BACK" "$KEY" "$T/trust.db"*
vol_init 4096
fs_mount
pid=$(daemon_pid)
kill -KILL "$pid"
wait_until 20 sh -c "! kill -0 $pid 2>/dev/null" || fail "the daemon survived SIGKILL"
st=0; "$FSHIELD" umount "$MNT" 2>"$T/umount.err" || st=$?
expect_eq 74 "$st" "umount status after the daemon was killed"
grep -q "ended without its final commit; its last log lines:" "$T/umount.err" || soft_fail "no status line" "$T/umount.err"
grep -q "^    $MNT: serving $BACK" "$T/umount.err" || soft_fail "umount does not quote the daemon's lines" "$T/umount.err"
! is_mounted "$MNT" || fail "still mounted"

check "a daemon that dies before its mount is ready: mount says so and quotes its last log lines"
# A writer killed (test build: crash point) once its commit is prepared leaves a commit to roll forward;
# the next mount's daemon is killed while it completes it, before anything is mounted.
FSHIELD_CRASH_AT=prepared "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o commit_interval=0 "$BACK" "$MNT"
pid=$(daemon_pid)
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT); os.write(fd, b"x" * 100)
try: os.fsync(fd)
except OSError: pass' "$MNT/pending" 2>/dev/null || true
wait_until 20 sh -c "! kill -0 $pid 2>/dev/null" || fail "the daemon did not die at its crash point"
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
st=0; FSHIELD_CRASH_AT=anchored "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>"$T/mount.err" || st=$?
expect_eq 74 "$st" "mount status when the daemon died before the mount was ready"
grep -q "^fshield mount: the daemon died (Killed); its last log lines:" "$T/mount.err" ||
	soft_fail "mount does not say that its daemon died" "$T/mount.err"
grep -q "^    rolling forward prepared version" "$T/mount.err" ||
	soft_fail "mount does not quote the daemon's last lines" "$T/mount.err"
! is_mounted "$MNT" || fail "mounted although the daemon died"
fs_mount
[ -e "$MNT/pending" ] || soft_fail "the prepared commit was not rolled forward by the next mount"
fs_umount

check "a mount refused: the reason on standard error and in the log file"
"$FSHIELD" keygen -o "$T/other.key"
st=0; "$FSHIELD" mount --key-file "$T/other.key" --trust "$TRUST" -o log_file="$LOG" "$BACK" "$MNT" 2>"$T/err" || st=$?
expect_eq 5 "$st" "status of a mount with the wrong key"
grep -q "^fshield mount: .*wrong key" "$T/err" || soft_fail "no reason on standard error" "$T/err"
grep -q "fshield\[[0-9]*\]: err: .*wrong key" "$LOG" || soft_fail "the log file has no reason" "$LOG"
! is_mounted "$MNT" || fail "mounted with the wrong key"

finish
