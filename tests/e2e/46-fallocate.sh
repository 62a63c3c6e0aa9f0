#!/usr/bin/env bash
# fallocate as a local file system does it (docs/CLI.md, "fallocate"): an unaligned range, with mode 0 and
# with FALLOC_FL_KEEP_SIZE, allocates every chunk it touches (st_blocks counts them), leaves sizes and
# content exactly as a local file system does, also after a later write inside the range and after a
# remount; a range larger than the backing store's free space fails with ENOSPC and changes nothing; and
# what was preallocated can still be written once the backing store is full. Needs root (mount -t tmpfs).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

CS=4096
"$FSHIELD" keygen -o "$KEY"
mkdir -p "$BACK" "$T/local"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size "$CS" "$BACK" >/dev/null
fs_mount

# Each case: MODE OFF LEN, then a write of WLEN bytes at WOFF, on a fresh file that first holds PRE bytes;
# on the mount and in a local directory, side by side.
cases='0 1000 5000 3000 100 0
keep 1000 10000 5000 300 0
0 5000 9000 6000 10 3000
keep 2000 20000 9000 7 4097
0 4095 2 0 1 0'
python3 - "$MNT" "$T/local" "$CS" "$cases" <<'PY' || fail "fallocate differs from a local file system"
import os, sys
mnt, local, cs, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
KEEP = 0x01  # FALLOC_FL_KEEP_SIZE
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
def falloc(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
bad = 0
for i, line in enumerate(cases.splitlines()):
    mode, off, n, woff, wlen, pre = line.split()
    mode = KEEP if mode == "keep" else 0
    off, n, woff, wlen, pre = map(int, (off, n, woff, wlen, pre))
    seen = []
    for d in (mnt, local):
        p = os.path.join(d, "f%d" % i)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        if pre:
            os.write(fd, b"p" * pre)
        falloc(fd, mode, off, n)
        s1 = os.fstat(fd)
        os.pwrite(fd, b"w" * wlen, woff)
        s2 = os.fstat(fd)
        os.fsync(fd)
        os.close(fd)
        with open(p, "rb") as f:
            data = f.read()
        seen.append((s1.st_size, s2.st_size, data, s1.st_blocks))
    (a1, a2, ad, ablk), (b1, b2, bd, _) = seen
    what = "case %d (%s)" % (i, line)
    if (a1, a2) != (b1, b2):
        print("%s: sizes %d, %d after fallocate and write; a local file system: %d, %d" % (what, a1, a2, b1, b2)); bad = 1
    if ad != bd:
        print("%s: the content differs from a local file system's" % what); bad = 1
    # Every chunk the range touches, up to the size, is allocated: st_blocks covers it.
    need = min(off + n, a1) - (off // cs) * cs
    if need > 0 and ablk * 512 < need:
        print("%s: st_blocks %d (%d bytes) after fallocate; the range needs %d" % (what, ablk, ablk * 512, need)); bad = 1
sys.exit(bad)
PY
want=$(manifest "$MNT")
fs_remount
expect_eq "$want" "$(manifest "$MNT")" "the files after a remount"
fs_umount

echo "check: a range larger than the free space fails with ENOSPC and changes nothing; a preallocated range is written once the store is full"
STORE=$T/store
mkdir -p "$STORE"
mount -t tmpfs -o size=64m,mode=0700 fshield-e2e-store "$STORE" # unmounted by the cleanup (under $T)
BACK=$STORE/backing
mkdir -p "$BACK"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size 65536 "$BACK" >/dev/null
fs_mount -o commit_interval=0
python3 - "$MNT" "$STORE" <<'PY' || fail "fallocate on a small backing store"
import ctypes, errno, os, sys
mnt, store = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
M = 1 << 20
fd = os.open(os.path.join(mnt, "big"), os.O_RDWR | os.O_CREAT, 0o644)
if libc.fallocate(fd, 0, 0, 100 * M) == 0:
    sys.exit("a 100 MiB fallocate on a 64 MiB store succeeded")
if ctypes.get_errno() != errno.ENOSPC:
    sys.exit("a 100 MiB fallocate on a 64 MiB store: %s, not ENOSPC" % os.strerror(ctypes.get_errno()))
if os.fstat(fd).st_size != 0:
    sys.exit("the refused fallocate changed the size to %d" % os.fstat(fd).st_size)
if libc.fallocate(fd, 0, 0, 8 * M) != 0:
    sys.exit("an 8 MiB fallocate on a 64 MiB store: %s" % os.strerror(ctypes.get_errno()))
os.fsync(fd)
# Something else fills the backing store.
with open(os.path.join(store, "filler"), "wb") as f:
    try:
        while True:
            f.write(b"\0" * M)
            f.flush()
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
# The preallocated range is still written and committed.
for i in range(8):
    os.pwrite(fd, bytes([65 + i]) * M, i * M)
os.fsync(fd)
os.close(fd)
with open(os.path.join(mnt, "big"), "rb") as f:
    data = f.read()
if data != b"".join(bytes([65 + i]) * M for i in range(8)):
    sys.exit("the preallocated file does not hold what was written")
PY
rm -f "$STORE/filler"
fs_umount
echo "46-fallocate: ok"
