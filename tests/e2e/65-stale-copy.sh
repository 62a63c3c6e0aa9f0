#!/usr/bin/env bash
# A copy of the backing directory used beside the original, both bound to the same file: trust store
# (docs/THREAT-MODEL.md, "Stale copies"). With a writer lease of 3 s (test builds: the anchor is
# re-checked every second):
#   - a read-write mount of the copy is refused (7, the writer lease) while the original serves;
#   - a read-only mount of the copy serves it while it is current; once the original commits past it, the
#     copy turns stale within the re-check interval: a log line, EIO for everything (also a file held open
#     whose pages the kernel had cached), and its unmount reports a rollback (2);
#   - a killed daemon's lease does not block: its process is gone, so the copy mounts read-write at once;
#   - the lease is given back at unmount: the copy mounts read-write after the original's unmount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

export FSHIELD_TEST_LEASE_SECONDS=3
MNT2=$T/mnt2
mkdir -p "$MNT2"
# bg_mount LABEL DIR MOUNTPOINT [OPTIONS...]: `fshield mount -f` in the background (stderr to $T/LABEL.log).
# Returns 0 once mounted (DPID is the daemon), or the daemon's exit status if it exits first.
bg_mount() {
	local label=$1 dir=$2 mnt=$3
	shift 3
	start_daemon "$T/$label.log" "$mnt" "$FSHIELD" mount -f --key-file "$KEY" --trust "$TRUST" -o commit_interval=0 "$@" "$dir" "$mnt"
}

write_sync() { # FILE TEXT: write and fsync
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode()); os.fsync(fd); os.close(fd)' "$1" "$2"
}

# read_errno FILE: "ok" or the errno name of a failed read.
read_errno() {
	python3 -c 'import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$1"
}

fs_init
fs_mount -o commit_interval=0
echo 1 >"$MNT/num"
mkdir "$MNT/dir"
for i in 1 2 3; do echo "file $i" >"$MNT/dir/f$i"; done
fs_umount
cp -a "$BACK" "$T/copy"

echo "== a read-write mount of a copy, while the original serves: refused"
bg_mount orig "$BACK" "$MNT" || fail "the original did not mount: $(cat "$T/orig.log")"
ORIG=$DPID
expect_mount_refused copy-rw 7 \
	"the volume is open read-write elsewhere: trust store .* holds its writer lease for process $ORIG on this host" \
	"$T/copy" "$MNT2"
! is_mounted "$MNT2" || fail "the refused copy is mounted"

echo "== a read-only mount of the copy turns stale once the original commits past it"
bg_mount copy-ro "$T/copy" "$MNT2" -o ro || fail "the read-only copy did not mount: $(cat "$T/copy-ro.log")"
COPY=$DPID
expect_eq 1 "$(cat "$MNT2/num")" "the copy while it is current"
# A reader that keeps the file open: what the kernel cached of it must stop being served too.
cat >"$T/held.py" <<'EOF'
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
first = os.pread(fd, 100, 0)
open(sys.argv[2] + ".ready", "w").close()
deadline, res = time.monotonic() + 20, "served %r" % first
while time.monotonic() < deadline:
    try:
        os.pread(fd, 100, 0)
    except OSError as e:
        res = errno.errorcode.get(e.errno, str(e.errno))
        break
    time.sleep(0.05)
open(sys.argv[2], "w").write(res)
EOF
python3 "$T/held.py" "$MNT2/num" "$T/held.out" &
HELD=$!
EXTRA_PIDS+=("$HELD")
wait_until 10 test -e "$T/held.out.ready" || fail "the reader did not start"
write_sync "$MNT/num" 2
wait_until 10 grep -q "stale: the trust anchor holds version 2, past version 1 served here" "$T/copy-ro.log" ||
	fail "no stale line within 10 s (re-check every 1 s): $(cat "$T/copy-ro.log")"
expect_eq EIO "$(read_errno "$MNT2/dir/f2")" "a file of the stale copy not read before"
expect_eq EIO "$(read_errno "$MNT2/num")" "a file the copy served before"
wait "$HELD" || true
expect_eq EIO "$(cat "$T/held.out")" "a read of an open file whose pages the kernel had cached"
ls "$MNT2/dir" >/dev/null 2>&1 && fail "the stale copy still lists a directory it had not listed"
st=0
"$FSHIELD" umount "$MNT2" 2>"$T/copy-ro.umount" || st=$?
expect_eq 2 "$st" "umount of the stale copy (rollback)"
wait "$COPY" 2>/dev/null || true
expect_eq 2 "$(cat "$MNT/num")" "the original serves its commit"

echo "== a killed daemon's lease does not block the next read-write mount"
"$FSHIELD" umount "$MNT" || fail "umount of the original exited $?"
wait "$ORIG" 2>/dev/null || true
rm -rf "$T/copy"
cp -a "$BACK" "$T/copy"
bg_mount orig2 "$BACK" "$MNT" || fail "the original did not mount again: $(cat "$T/orig2.log")"
ORIG=$DPID
expect_mount_refused copy-rw2 7 "holds its writer lease for process $ORIG on this host" "$T/copy" "$MNT2"
kill -KILL "$ORIG"
wait "$ORIG" 2>/dev/null || true
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
bg_mount copy-rw3 "$T/copy" "$MNT2" || fail "the copy is refused after the writer was killed: $(cat "$T/copy-rw3.log")"
COPY=$DPID
expect_eq 2 "$(cat "$MNT2/num")" "the copy, now the writer"
"$FSHIELD" umount "$MNT2" || fail "umount of the copy exited $?"
wait "$COPY" 2>/dev/null || true

echo "== the lease is given back at unmount"
bg_mount orig3 "$BACK" "$MNT" || fail "the original did not mount after the copy's unmount: $(cat "$T/orig3.log")"
ORIG=$DPID
"$FSHIELD" umount "$MNT" || fail "umount exited $?"
wait "$ORIG" 2>/dev/null || true
echo ok
