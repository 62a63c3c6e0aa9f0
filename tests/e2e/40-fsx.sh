#!/usr/bin/env bash
# A file exerciser: thousands of random writes, truncates, hole punches, mmap writes and reads on a few
# files, checked against a model in memory. Reads alternate between the page cache and O_DIRECT (which
# goes to the volume itself), and everything is compared again after unmount and mount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/fsx.py" <<'EOF'
import ctypes, mmap, os, random, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
MAXSIZE = 3 << 20
PAGE = 4096

def fail(msg):
    sys.exit("FAIL: " + msg)

def direct_read(path, size):
    """The whole file through O_DIRECT, in aligned blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)
    out = bytearray()
    off = 0
    while True:
        n = os.preadv(fd, [buf], off)
        out += buf[:n]
        off += n
        if n < len(buf):
            break
    os.close(fd)
    return bytes(out)

def run(root, seed, ops, checks=True):
    rnd = random.Random(seed)
    files = ["f%d" % i for i in range(4)]
    model = {f: bytearray() for f in files}
    fds = {}
    for f in files:
        fds[f] = os.open(os.path.join(root, f), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(ops):
        f = rnd.choice(files)
        m, fd, path = model[f], fds[f], os.path.join(root, f)
        op = rnd.random()
        if op < 0.35:  # write
            off = rnd.randrange(0, MAXSIZE)
            n = rnd.choice((1, 7, 512, 4096, 65536, 70000, rnd.randrange(1, 200000)))
            n = min(n, MAXSIZE - off)
            data = rnd.randbytes(n)
            os.pwrite(fd, data, off)
            if off > len(m):
                m.extend(b"\0" * (off - len(m)))
            m[off:off + n] = data
        elif op < 0.45:  # truncate
            size = rnd.choice((0, rnd.randrange(0, MAXSIZE), len(m) // 2, len(m) + 5000))
            os.ftruncate(fd, size)
            if size < len(m):
                del m[size:]
            else:
                m.extend(b"\0" * (size - len(m)))
        elif op < 0.50 and len(m) > 0:  # punch a hole
            off = rnd.randrange(0, len(m))
            n = rnd.randrange(1, 300000)
            if libc.fallocate(fd, 3, off, n) != 0:
                fail("punch hole: errno %d" % ctypes.get_errno())
            end = min(len(m), off + n)
            m[off:end] = b"\0" * (end - off)
        elif op < 0.58 and len(m) > PAGE:  # write through a shared mapping
            mm = mmap.mmap(fd, len(m))
            off = rnd.randrange(0, len(m))
            n = min(rnd.randrange(1, 20000), len(m) - off)
            data = rnd.randbytes(n)
            mm[off:off + n] = data
            if rnd.random() < 0.5:
                mm.flush()
            mm.close()
            m[off:off + n] = data
        elif op < 0.63:  # fsync now and then
            os.fsync(fd)
        elif op < 0.68:  # reopen
            os.close(fd)
            fds[f] = os.open(path, os.O_RDWR)
        else:  # read a range through the page cache
            off = rnd.randrange(0, max(1, len(m) + 100))
            n = rnd.randrange(1, 300000)
            got = os.pread(fd, n, off)
            if checks and got != bytes(m[off:off + n]):
                fail("op %d: read %s at %d+%d differs from the model" % (i, f, off, n))
        if checks and i % 500 == 499:
            for g in files:
                os.fsync(fds[g])
                if direct_read(os.path.join(root, g), len(model[g])) != bytes(model[g]):
                    fail("op %d: O_DIRECT read of %s differs from the model" % (i, g))
    for f in files:
        os.close(fds[f])
    return model

def verify(root, model):
    for f, m in model.items():
        p = os.path.join(root, f)
        if os.stat(p).st_size != len(m):
            fail("size of %s: %d, expected %d" % (f, os.stat(p).st_size, len(m)))
        if open(p, "rb").read() != bytes(m):
            fail("%s differs from the model" % f)
        if direct_read(p, len(m)) != bytes(m):
            fail("%s differs from the model through O_DIRECT" % f)

cmd, root, seed, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if cmd == "run":
    model = run(root, seed, ops)
    verify(root, model)
else:
    # replay the same sequence in memory only, to know what the files must hold
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        model = run(d, seed, ops, checks=False)
    verify(root, model)
print("ok: %d operations, seed %d" % (ops, seed))
EOF

seed=${FSX_SEED:-20261122}
fs_init
fs_mount
python3 "$T/fsx.py" run "$MNT" "$seed" 3000
fs_umount
fs_mount
python3 "$T/fsx.py" verify "$MNT" "$seed" 3000
fs_umount
echo ok
