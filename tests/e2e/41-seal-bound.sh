#!/usr/bin/env bash
# The bound on chunk seals per file key (docs/FORMAT.md section 5: 2^32 for AES-256-GCM's random 96-bit
# IVs) is counted and enforced. The test build lowers it (FSHIELD_SEAL_LIMIT) so that a test reaches it:
# a file whose key has made that many seals takes no more writes (the program gets an error, the log names
# the file and says what to do), nothing of the refused write is stored, the count survives a remount,
# other files and the volume go on working, and a copy of the file (a new file, a new key) is writable.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

"$FSHIELD" keygen -o "$KEY"
mkdir -p "$BACK"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size 4096 --cipher aes-256-gcm "$BACK" >/dev/null
LIMIT=8

LOG=
# mount_limited: mounts in the foreground (log on stderr, in $LOG), in the background, with the lower bound.
mount_limited() {
	LOG=$T/daemon.$RANDOM.log
	start_daemon "$LOG" "$MNT" env FSHIELD_SEAL_LIMIT=$LIMIT "$FSHIELD" mount -f --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" ||
		{ cat "$LOG" >&2; fail "the volume did not mount"; }
}
# unmount_limited: unmounts; the daemon must exit 0 (its last commit succeeded).
unmount_limited() {
	stop_daemon "$MNT"
	check "the daemon exits 0 at unmount"
	[ "$DAEMON_STATUS" = 0 ] || soft_fail "the daemon exited $DAEMON_STATUS" "$LOG"
}
# write_at PATH OFFSET BYTES SEED: writes BYTES pseudo-random bytes at OFFSET and fsyncs; prints "ok" or
# the errno name of the write, fsync or close that failed.
write_at() {
	python3 - "$@" <<'EOF'
import errno, os, random, sys
path, off, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = random.Random(seed).randbytes(n)
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, off)
        os.fsync(fd)
    finally:
        os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
}
expect_refused() { # WHAT RESULT
	echo "  $1: $2"
	check "$1 is refused with an error"
	[ "$2" = EFBIG ] || soft_fail "$1: got '$2', expected EFBIG"
}
expect_log() { # ERE
	check "the log says: $1"
	grep -Eq -- "$1" "$LOG" || soft_fail "no log line matching: $1" "$LOG"
}
REFUSAL="/f: writes refused: its key has sealed $LIMIT chunks, the most one aes-256-gcm key may seal with random nonces; copy the file to a new one"

mount_limited
check "$LIMIT chunk seals under one file key are allowed"
expect_eq ok "$(write_at "$MNT/f" 0 $((LIMIT * 4096)) 1)" "writing $LIMIT chunks"
SUM1=$(sha256sum <"$MNT/f")
expect_refused "a rewrite of chunk 0 (seal $((LIMIT + 1)))" "$(write_at "$MNT/f" 0 4096 2)"
expect_log "$REFUSAL"
expect_refused "an append (a new chunk)" "$(write_at "$MNT/f" $((LIMIT * 4096)) 100 3)"
check "the refusal is logged once for the file"
[ "$(grep -c 'writes refused' "$LOG")" = 1 ] || soft_fail "logged $(grep -c 'writes refused' "$LOG") times" "$LOG"
check "another file has its own key and count"
expect_eq ok "$(write_at "$MNT/g" 0 $((LIMIT * 4096)) 4)" "writing $LIMIT chunks to /g"
unmount_limited
run_verify after-refusal "$BACK"
expect_vstatus 0

mount_limited
check "nothing of the refused writes was stored"
expect_eq "$SUM1" "$(sha256sum <"$MNT/f")" "/f after remount"
expect_eq $((LIMIT * 4096)) "$(stat -c %s "$MNT/f")" "/f size"
expect_refused "a write after remount (the count is stored with the file)" "$(write_at "$MNT/f" 0 10 5)"
expect_log "$REFUSAL"
check "a copy of the file gets a new key and takes writes"
cp "$MNT/f" "$MNT/f.new" && mv "$MNT/f.new" "$MNT/f" || soft_fail "copying /f"
expect_eq ok "$(write_at "$MNT/f" 0 4096 2)" "rewriting chunk 0 of the copy"
SUM2=$(sha256sum <"$MNT/f")
unmount_limited
run_verify after-copy "$BACK"
expect_vstatus 0
fs_mount
expect_eq "$SUM2" "$(sha256sum <"$MNT/f")" "/f after the copy, mounted with the cipher's own bound"
fs_umount
finish
