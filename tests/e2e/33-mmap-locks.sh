#!/usr/bin/env bash
# mmap (shared writable mappings, coherent with read/write, surviving a remount) and locks (flock and
# POSIX record locks between processes, and counters incremented under them by several processes).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/mm.py" <<'EOF'
import errno, fcntl, hashlib, mmap, os, struct, sys, time

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)

def sha(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()

def phase_write(root, sums):
    os.chdir(root)
    # A shared writable mapping written at scattered offsets, then msync'd.
    size = (1 << 20) + 100
    with open("mapped", "wb") as f:
        f.truncate(size)
    fd = os.open("mapped", os.O_RDWR)
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for i in range(0, size - 64, 4099):
        m[i:i + 8] = struct.pack("<Q", i * 2654435761 % (1 << 64))
    m[size - 5:size] = b"TAIL!"
    m.flush()
    # Coherent with read(2) through another descriptor, before and after msync.
    check(os.pread(os.open("mapped", os.O_RDONLY), 5, size - 5) == b"TAIL!", "read(2) sees mmap writes")
    m[0:4] = b"HEAD"
    check(os.pread(os.open("mapped", os.O_RDONLY), 4, 0) == b"HEAD", "read(2) sees unsynced mmap writes")
    os.pwrite(fd, b"viawrite", 4096)
    check(m[4096:4104] == b"viawrite", "mmap sees write(2)")
    m.close()
    os.close(fd)
    # A mapping that outlives its descriptor, unmapped without msync: the kernel writes it back.
    fd = os.open("unsynced", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 300000)
    m = mmap.mmap(fd, 300000, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    m[:] = bytes((i * 7) & 0xff for i in range(300000))
    m.close()
    # Growing a mapped file with ftruncate and writing the new part through a new mapping.
    fd = os.open("grown", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"g" * 1000)
    os.ftruncate(fd, 200000)
    m = mmap.mmap(fd, 200000)
    m[150000:150005] = b"grown"
    m.close()
    os.close(fd)
    check(open("grown", "rb").read()[149999:150006] == b"\0grown\0", "write to a grown mapping")
    with open(sums, "w") as f:
        for p in ("mapped", "unsynced", "grown"):
            f.write("%s %s\n" % (p, sha(p)))

def phase_verify(root, sums):
    os.chdir(root)
    for line in open(sums):
        p, h = line.split()
        check(sha(p) == h, "%s differs after remount" % p)
    with open("mapped", "rb") as f:
        data = f.read()
    check(data[:4] == b"HEAD" and data[4096:4104] == b"viawrite" and data[-5:] == b"TAIL!", "mapped content")
    check(data[8198:8206] == struct.pack("<Q", 8198 * 2654435761 % (1 << 64)), "scattered mmap write")

def locks(root):
    os.chdir(root)
    open("lockfile", "w").close()
    # flock: exclusive against another process, shared with shared.
    a = os.open("lockfile", os.O_RDWR)
    fcntl.flock(a, fcntl.LOCK_EX)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        b = os.open("lockfile", os.O_RDWR)
        try:
            fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(1)
        except OSError as e:
            if e.errno != errno.EWOULDBLOCK:
                os._exit(2)
        os.write(w, b"w")
        fcntl.flock(b, fcntl.LOCK_EX)  # blocks until the parent unlocks
        os._exit(0)
    os.read(r, 1)
    fcntl.flock(a, fcntl.LOCK_UN)
    _, st = os.waitpid(pid, 0)
    check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "flock between processes (child status %d)" % st)
    # POSIX record locks: ranges, F_GETLK naming the holder.
    fcntl.lockf(a, fcntl.LOCK_EX, 100, 0)
    pid = os.fork()
    if pid == 0:
        b = os.open("lockfile", os.O_RDWR)
        try:
            fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
            os._exit(1)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                os._exit(2)
        fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 100)  # a free range
        flk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 20, 1, 0)
        got = struct.unpack("hhqqi", fcntl.fcntl(b, fcntl.F_GETLK, flk))
        os._exit(0 if got[0] == fcntl.F_WRLCK and got[4] == os.getppid() else 3)
    _, st = os.waitpid(pid, 0)
    check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "POSIX record locks between processes (child status %d)" % st)
    os.close(a)

def counter(path, kind, n):
    """n increments of the number in path, each under an exclusive lock of the given kind."""
    for _ in range(n):
        fd = os.open(path, os.O_RDWR)
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        v = int(os.pread(fd, 32, 0) or b"0")
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d" % (v + 1), 0)
        os.close(fd)  # releases the lock

def counters(root):
    os.chdir(root)
    pids = []
    for kind in ("flock", "posix"):
        with open("count-" + kind, "w") as f:
            f.write("0")
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                counter("count-" + kind, kind, 150)
                os._exit(0)
            pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "counter process failed")
    for kind in ("flock", "posix"):
        check(open("count-" + kind).read() == "600", "%s counter: %s, expected 600" % (kind, open("count-" + kind).read()))

{"write": lambda: phase_write(sys.argv[2], sys.argv[3]),
 "verify": lambda: phase_verify(sys.argv[2], sys.argv[3]),
 "locks": lambda: locks(sys.argv[2]),
 "counters": lambda: counters(sys.argv[2])}[sys.argv[1]]()
EOF

fs_init
fs_mount
python3 "$T/mm.py" write "$MNT" "$T/sums"
python3 "$T/mm.py" locks "$MNT"
python3 "$T/mm.py" counters "$MNT"
fs_umount
fs_mount
python3 "$T/mm.py" verify "$MNT" "$T/sums"
expect_eq 600 "$(cat "$MNT/count-flock")" "flock counter after remount"
expect_eq 600 "$(cat "$MNT/count-posix")" "posix counter after remount"
fs_umount
echo ok
