#!/usr/bin/env bash
# Several processes at once: writers of their own files, writers of disjoint stripes of one file,
# overwriters of the same blocks, O_APPEND writers of one log, readers of a file that must stay intact
# meanwhile, and creators / renamers / removers in one directory; all content checked at the end and
# again after unmount and mount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/conc.py" <<'EOF'
import hashlib, os, random, sys

BLOCK = 65536

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)

def data(seed, n):
    out, h = bytearray(), hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])

def spawn(fn, *args):
    pid = os.fork()
    if pid == 0:
        try:
            fn(*args)
            os._exit(0)
        except SystemExit as e:
            print(e, file=sys.stderr)
            os._exit(1)
        except Exception as e:
            print("%s%s: %r" % (fn.__name__, args, e), file=sys.stderr)
            os._exit(1)
    return pid

def own_file(i):
    n = 200000 + i * 77777
    buf = data("own%d" % i, n)
    rnd = random.Random(i)
    with open("own/%d" % i, "wb") as f:
        pos = 0
        while pos < n:
            k = rnd.choice((1, 100, 4096, 5000, 65536, 300000))
            f.write(buf[pos:pos + k])
            pos += k
    with open("own/%d" % i, "rb") as f:
        check(f.read() == buf, "own file %d read back" % i)

def stripe(i, writers, blocks):
    fd = os.open("striped", os.O_WRONLY)
    for b in range(i, blocks, writers):
        os.pwrite(fd, data("stripe%d" % b, BLOCK), b * BLOCK)
    os.close(fd)

def overwrite(i, rounds):
    fd = os.open("contended", os.O_WRONLY)
    for r in range(rounds):
        for b in range(8):
            os.pwrite(fd, bytes([65 + i]) * BLOCK, b * BLOCK)
    os.close(fd)

def appender(i, n):
    fd = os.open("log", os.O_WRONLY | os.O_APPEND)
    for k in range(n):
        os.write(fd, ("writer %d record %05d %s\n" % (i, k, "x" * (k % 50))).encode())
    os.close(fd)

def reader(rounds, want):
    for _ in range(rounds):
        with open("stable", "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == want, "stable file changed while others wrote")

def churn(i, n):
    for k in range(n):
        a = "churn/p%d-%d" % (i, k)
        with open(a, "w") as f:
            f.write(a)
        os.rename(a, a + ".renamed")
        if k % 3 == 0:
            os.unlink(a + ".renamed")
        if k % 10 == 0:
            os.mkdir("churn/d%d-%d" % (i, k))

def run(root):
    os.chdir(root)
    os.mkdir("own")
    os.mkdir("churn")
    writers, blocks = 6, 96
    with open("striped", "wb") as f:
        f.truncate(blocks * BLOCK)
    with open("contended", "wb") as f:
        f.write(b"\0" * 8 * BLOCK)
    open("log", "w").close()
    stable = data("stable", 3 << 20)
    with open("stable", "wb") as f:
        f.write(stable)
    want = hashlib.sha256(stable).hexdigest()
    pids = [spawn(own_file, i) for i in range(8)]
    pids += [spawn(stripe, i, writers, blocks) for i in range(writers)]
    pids += [spawn(overwrite, i, 20) for i in range(3)]
    pids += [spawn(appender, i, 400) for i in range(4)]
    pids += [spawn(reader, 10, want) for i in range(3)]
    pids += [spawn(churn, i, 60) for i in range(4)]
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    check(not failed, "%d of %d processes failed" % (len(failed), len(pids)))
    verify(root)

def verify(root):
    os.chdir(root)
    for i in range(8):
        with open("own/%d" % i, "rb") as f:
            check(f.read() == data("own%d" % i, 200000 + i * 77777), "own file %d" % i)
    with open("striped", "rb") as f:
        for b in range(96):
            check(f.read(BLOCK) == data("stripe%d" % b, BLOCK), "stripe block %d" % b)
    with open("contended", "rb") as f:
        for b in range(8):
            blk = f.read(BLOCK)
            check(len(blk) == BLOCK and blk[0] in b"ABC" and blk == blk[:1] * BLOCK, "contended block %d is torn" % b)
    lines = open("log").read().splitlines()
    expect = sorted("writer %d record %05d %s" % (i, k, "x" * (k % 50)) for i in range(4) for k in range(400))
    check(sorted(lines) == expect, "O_APPEND log: %d lines, expected %d, or records mixed" % (len(lines), len(expect)))
    for i in range(4):
        mine = [l for l in lines if l.startswith("writer %d " % i)]
        check(mine == sorted(mine), "records of writer %d out of order" % i)
    with open("stable", "rb") as f:
        check(f.read() == data("stable", 3 << 20), "stable file")
    names = set(os.listdir("churn"))
    expect = set()
    for i in range(4):
        for k in range(60):
            if k % 3:
                expect.add("p%d-%d.renamed" % (i, k))
            if k % 10 == 0:
                expect.add("d%d-%d" % (i, k))
    check(names == expect, "churn directory: %d entries, expected %d" % (len(names), len(expect)))
    for n in names:
        if n.endswith(".renamed"):
            check(open("churn/" + n).read() == "churn/" + n[:-len(".renamed")], "content of churn/" + n)

{"run": run, "verify": verify}[sys.argv[1]](sys.argv[2])
EOF

fs_init
fs_mount
python3 "$T/conc.py" run "$MNT"
manifest "$MNT" >"$T/before"
fs_umount
fs_mount
python3 "$T/conc.py" verify "$MNT"
manifest "$MNT" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "content changed across the remount"
fs_umount
echo ok
