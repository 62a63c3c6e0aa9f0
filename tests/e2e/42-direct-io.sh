#!/usr/bin/env bash
# Direct I/O coherence: synchronous and asynchronous O_DIRECT writers race buffered and mmap readers;
# every byte read is checked against the writers' log (tests/tools/dioracer.c). After a direct write
# returns, no read may return the data it replaced, also not after close and reopen.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
: "${BUILD:?set BUILD to the build directory}"

fs_init
touch "$T/daemon.log" && chmod 600 "$T/daemon.log"
fs_mount -o log_file="$T/daemon.log"
"$BUILD/tests/tools/dioracer" "$MNT/racefile" 96 6 ||
	fail "direct writes and cached reads disagree; the daemon's log: $(cat "$T/daemon.log")"
# The data the volume holds is the last written, and a fresh mount reads the same.
sum=$(sha256sum <"$MNT/racefile")
fs_remount
expect_eq "$sum" "$(sha256sum <"$MNT/racefile")" "content after remount"

# A buffered read that starts after a direct write has completed returns the new data, while the old
# pages had been cached by an earlier read of another descriptor that stays open.
python3 - "$MNT/f" <<'PY'
import mmap, os, sys
p = sys.argv[1]
with open(p, "wb") as f:
    f.write(b"A" * 65536)
    f.flush()
    os.fsync(f.fileno())
keep = os.open(p, os.O_RDONLY)
m = mmap.mmap(keep, 65536, mmap.MAP_SHARED, mmap.PROT_READ)
assert os.pread(keep, 65536, 0) == b"A" * 65536 and m[:4] == b"AAAA"
fd = os.open(p, os.O_WRONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 8192)
buf.write(b"B" * 8192)
assert os.pwritev(fd, [buf], 4096) == 8192
os.close(fd)
got = os.pread(keep, 65536, 0)
if got != b"A" * 4096 + b"B" * 8192 + b"A" * (65536 - 12288):
    sys.exit("FAIL: buffered read after a direct write returned stale data")
if m[4096:4100] != b"BBBB":
    sys.exit("FAIL: a shared mapping kept stale data after a direct write")
PY
fs_umount
echo "42-direct-io: ok"
