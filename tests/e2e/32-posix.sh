#!/usr/bin/env bash
# POSIX behaviour through the mount: regular files, directories, symlinks, hard links, rename with
# RENAME_NOREPLACE / RENAME_EXCHANGE, truncate, sparse and > 4 GiB files, long names, deep trees,
# chmod/chown/utimens, user xattrs, statfs, fsync, O_APPEND, O_DIRECT, fallocate, unlinked open files,
# FIFOs and set-group-ID directories. Then the whole tree (metadata, xattrs, contents) must come back
# identical after unmount and mount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/posix.py" <<'EOF'
import ctypes, errno, hashlib, json, mmap, os, stat, sys, time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
GiB = 1 << 30
checks = 0

def check(cond, what):
    global checks
    checks += 1
    if not cond:
        sys.exit("FAIL: " + what)

def expect_errno(err, fn, *args, what=""):
    try:
        fn(*args)
    except OSError as e:
        check(e.errno == err, "%s: errno %s, expected %s" % (what or fn.__name__, errno.errorcode.get(e.errno), errno.errorcode[err]))
        return
    check(False, "%s: succeeded, expected %s" % (what or fn.__name__, errno.errorcode[err]))

def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

def utimensat(path, at, mt, follow=True):
    ts = (timespec * 2)(timespec(*at), timespec(*mt))
    if libc.utimensat(AT_FDCWD, path.encode(), ts, 0 if follow else 0x100) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def fallocate(fd, mode, off, length):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def rd(p, off=0, n=-1):
    with open(p, "rb") as f:
        f.seek(off)
        return f.read(n)

def wr(p, data, mode="wb"):
    with open(p, mode) as f:
        f.write(data)

def phase_write(root):
    os.chdir(root)
    # regular files
    data = os.urandom(300000)
    wr("file", data)
    check(rd("file") == data, "file content")
    check(os.stat("file").st_size == 300000, "file size")
    fd = os.open("file", os.O_RDWR)
    os.pwrite(fd, b"X" * 10, 65530)          # across a chunk boundary
    check(os.pread(fd, 20, 65525) == data[65525:65530] + b"X" * 10 + data[65540:65545], "pwrite/pread")
    os.close(fd)
    expect_errno(errno.EEXIST, os.open, "file", os.O_CREAT | os.O_EXCL | os.O_WRONLY, what="O_EXCL")
    expect_errno(errno.ENOENT, os.stat, "nofile")
    expect_errno(errno.EISDIR, os.open, ".", os.O_WRONLY, what="open dir for writing")
    wr("empty", b"")
    check(rd("empty") == b"" and os.stat("empty").st_size == 0, "empty file")
    # directories
    os.mkdir("dir")
    os.mkdir("dir/sub")
    wr("dir/sub/f", b"in sub")
    check(os.stat("dir").st_nlink == 3, "nlink of a directory with one subdirectory: %d" % os.stat("dir").st_nlink)
    expect_errno(errno.ENOTEMPTY, os.rmdir, "dir/sub")
    expect_errno(errno.EEXIST, os.mkdir, "dir")
    expect_errno(errno.ENOTDIR, os.listdir, "file")
    expect_errno(errno.EISDIR, os.unlink, "dir")
    expect_errno(errno.ENOTDIR, os.rmdir, "file")
    os.mkdir("gone")
    os.rmdir("gone")
    check(not os.path.exists("gone"), "rmdir")
    os.mkdir("many")
    names = set("entry-%04d" % i for i in range(1500))
    for n in names:
        wr("many/" + n, n.encode())
    check(set(os.listdir("many")) == names, "listing of 1500 entries")
    for n in sorted(names)[::2]:
        os.unlink("many/" + n)
    check(set(os.listdir("many")) == set(sorted(names)[1::2]), "listing after removing half")
    # symlinks
    os.symlink("file", "link")
    os.symlink("dir/sub", "dirlink")
    os.symlink("nowhere/at/all", "dangling")
    long_target = "t" * 200 + "/" + "u" * 3000
    os.symlink(long_target, "longlink")
    check(os.readlink("link") == "file" and rd("link") == rd("file"), "symlink")
    check(os.readlink("longlink") == long_target, "long symlink target")
    check(stat.S_ISLNK(os.lstat("link").st_mode) and stat.S_ISREG(os.stat("link").st_mode), "lstat/stat of a symlink")
    check(os.listdir("dirlink") == ["f"], "symlink to a directory")
    expect_errno(errno.ENOENT, os.stat, "dangling")
    # hard links
    wr("hard1", b"shared")
    os.link("hard1", "dir/hard2")
    s1, s2 = os.stat("hard1"), os.stat("dir/hard2")
    check(s1.st_ino == s2.st_ino and s1.st_nlink == 2, "hard link")
    wr("dir/hard2", b"changed through the second name")
    check(rd("hard1") == b"changed through the second name", "write through a hard link")
    os.link("hard1", "hard3")
    os.unlink("hard3")
    check(os.stat("hard1").st_nlink == 2, "nlink after unlinking a third name")
    expect_errno(errno.EEXIST, os.link, "hard1", "file")
    # rename
    wr("r1", b"one")
    wr("r2", b"two")
    os.rename("r1", "r1b")
    check(not os.path.exists("r1") and rd("r1b") == b"one", "rename")
    os.rename("r1b", "r2")
    check(rd("r2") == b"one" and not os.path.exists("r1b"), "rename over a file")
    expect_errno(errno.EEXIST, renameat2, "r2", "file", RENAME_NOREPLACE, what="RENAME_NOREPLACE onto a file")
    check(rd("r2") == b"one" and rd("file")[:10] == data[:10], "nothing changed by a refused RENAME_NOREPLACE")
    renameat2("r2", "r3", RENAME_NOREPLACE)
    check(rd("r3") == b"one" and not os.path.exists("r2"), "RENAME_NOREPLACE to a new name")
    os.mkdir("xdir")
    wr("xdir/inside", b"inside")
    wr("xfile", b"xfile")
    renameat2("xdir", "xfile", RENAME_EXCHANGE)
    check(os.path.isdir("xfile") and rd("xfile/inside") == b"inside" and rd("xdir") == b"xfile", "RENAME_EXCHANGE of a file and a directory")
    renameat2("xfile/inside", "r3", RENAME_EXCHANGE)
    check(rd("r3") == b"inside" and rd("xfile/inside") == b"one", "RENAME_EXCHANGE across directories")
    expect_errno(errno.ENOENT, renameat2, "r3", "absent", RENAME_EXCHANGE, what="RENAME_EXCHANGE with a missing name")
    expect_errno(errno.EINVAL, renameat2, "r3", "r4", RENAME_NOREPLACE | RENAME_EXCHANGE, what="both rename flags")
    os.mkdir("rd1")
    os.mkdir("rd2")
    wr("rd1/f", b"f")
    os.rename("rd1", "rd2")
    check(rd("rd2/f") == b"f" and not os.path.exists("rd1"), "rename a directory over an empty one")
    os.mkdir("rd3")
    expect_errno(errno.ENOTEMPTY, os.rename, "rd3", "rd2")
    expect_errno(errno.EINVAL, os.rename, "rd2", "rd2/sub", what="rename a directory into itself")
    os.rename("rd2", "dir/sub/moved")
    check(rd("dir/sub/moved/f") == b"f", "rename into another directory")
    check(os.stat("dir/sub").st_nlink == 3, "nlink of the new parent after moving a directory in")
    # truncate: no stale bytes come back when a file grows again
    wr("trunc", b"A" * 200000)
    os.truncate("trunc", 1000)
    check(os.stat("trunc").st_size == 1000, "truncate down")
    os.truncate("trunc", 150000)
    check(rd("trunc") == b"A" * 1000 + b"\0" * 149000, "truncate up reads zeros")
    fd = os.open("trunc", os.O_RDWR)
    os.ftruncate(fd, 70000)
    os.pwrite(fd, b"B", 90000)
    os.close(fd)
    check(rd("trunc") == b"A" * 1000 + b"\0" * 89000 + b"B", "ftruncate, then write past the end")
    wr("trunc0", b"data")
    fd = os.open("trunc0", os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    check(os.stat("trunc0").st_size == 0, "O_TRUNC")
    # sparse files, also beyond 4 GiB
    fd = os.open("sparse", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"tail", 10 * 1024 * 1024)
    os.close(fd)
    check(rd("sparse", 0, 1 << 20) == b"\0" * (1 << 20), "hole reads zeros")
    check(rd("sparse", 10 * 1024 * 1024 - 4, 100) == b"\0" * 4 + b"tail", "data after a hole")
    check(os.stat("sparse").st_blocks * 512 < 2 * 1024 * 1024, "a hole takes no space (st_blocks %d)" % os.stat("sparse").st_blocks)
    fd = os.open("big", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"low", 100)
    os.pwrite(fd, b"END-OF-BIG", 5 * GiB)
    os.pwrite(fd, b"cross", 4 * GiB - 2)
    os.close(fd)
    check(os.stat("big").st_size == 5 * GiB + 10, "size of a file beyond 4 GiB")
    check(rd("big", 5 * GiB, 100) == b"END-OF-BIG", "read beyond 4 GiB")
    check(rd("big", 4 * GiB - 10, 20) == b"\0" * 8 + b"cross" + b"\0" * 7, "read across 4 GiB")
    check(rd("big", 3 * GiB, 4096) == b"\0" * 4096, "hole in a big file")
    # names and depth
    n255 = "n" * 250 + ".long"
    wr(n255, b"long name")
    check(rd(n255) == b"long name" and n255 in os.listdir("."), "255-byte name")
    expect_errno(errno.ENAMETOOLONG, wr, "n" * 256, b"x", what="256-byte name")
    utf = "ünïcødé-名前-😀"
    wr(utf, b"utf8")
    check(utf in os.listdir("."), "UTF-8 name")
    p = "deep"
    for i in range(120):
        p += "/level%03d" % i
    os.makedirs(p)
    wr(p + "/bottom", b"bottom")
    check(rd(p + "/bottom") == b"bottom", "file at depth 120")
    # chmod, chown, utimens
    wr("meta", b"meta")
    os.chmod("meta", 0o640)
    check(stat.S_IMODE(os.stat("meta").st_mode) == 0o640, "chmod")
    c0 = os.stat("meta").st_ctime_ns
    time.sleep(0.01)
    os.chown("meta", 1234, 5678)
    s = os.stat("meta")
    check((s.st_uid, s.st_gid) == (1234, 5678), "chown")
    check(s.st_ctime_ns > c0, "chown changes ctime")
    os.chmod("meta", 0o4755)
    check(stat.S_IMODE(os.stat("meta").st_mode) == 0o4755, "chmod with set-user-ID")
    os.utime("meta", ns=(1000000000123456789, 1200000000987654321))
    s = os.stat("meta")
    check((s.st_atime_ns, s.st_mtime_ns) == (1000000000123456789, 1200000000987654321), "utimens with nanoseconds")
    utimensat("meta", (0, UTIME_OMIT), (0, UTIME_NOW))
    s = os.stat("meta")
    check(s.st_atime_ns == 1000000000123456789 and abs(s.st_mtime - time.time()) < 5, "UTIME_OMIT and UTIME_NOW")
    os.utime("meta", ns=(1000000000123456789, 1200000000987654321))
    os.symlink("meta", "metalink")
    utimensat("metalink", (1100000000, 0), (1100000000, 0), follow=False)
    check(os.lstat("metalink").st_mtime_ns == 1100000000 * 10**9, "utimens on a symlink itself")
    check(os.stat("meta").st_mtime_ns == 1200000000987654321, "the target of that symlink kept its times")
    os.mkdir("modes")
    for m in (0o700, 0o755, 0o1777, 0o2750, 0o000):
        wr("modes/f%o" % m, b"")
        os.chmod("modes/f%o" % m, m)
        check(stat.S_IMODE(os.stat("modes/f%o" % m).st_mode) == m, "mode %o" % m)
    # set-group-ID directory: new entries take its group, subdirectories the bit
    os.mkdir("sgid")
    os.chown("sgid", 0, 4321)
    os.chmod("sgid", 0o2775)
    wr("sgid/f", b"")
    os.mkdir("sgid/d")
    check(os.stat("sgid/f").st_gid == 4321 and os.stat("sgid/d").st_gid == 4321, "group inherited from a set-group-ID directory")
    check(os.stat("sgid/d").st_mode & stat.S_ISGID, "set-group-ID inherited by a subdirectory")
    # extended attributes
    wr("xa", b"xa")
    os.setxattr("xa", "user.one", b"1")
    os.setxattr("xa", "user.big", b"v" * 65536)
    os.setxattr("xa", "user.empty", b"")
    os.setxattr("dir", "user.ondir", b"dir value")
    check(os.getxattr("xa", "user.one") == b"1", "getxattr")
    check(os.getxattr("xa", "user.big") == b"v" * 65536, "64 KiB xattr value")
    check(os.getxattr("xa", "user.empty") == b"", "empty xattr value")
    check(sorted(os.listxattr("xa")) == ["user.big", "user.empty", "user.one"], "listxattr: %s" % os.listxattr("xa"))
    expect_errno(errno.EEXIST, os.setxattr, "xa", "user.one", b"2", os.XATTR_CREATE, what="XATTR_CREATE on an existing name")
    expect_errno(errno.ENODATA, os.setxattr, "xa", "user.none", b"2", os.XATTR_REPLACE, what="XATTR_REPLACE on a missing name")
    os.setxattr("xa", "user.one", b"one again", os.XATTR_REPLACE)
    check(os.getxattr("xa", "user.one") == b"one again", "XATTR_REPLACE")
    os.removexattr("xa", "user.empty")
    expect_errno(errno.ENODATA, os.getxattr, "xa", "user.empty", what="getxattr of a removed name")
    expect_errno(errno.ENODATA, os.removexattr, "xa", "user.empty", what="removexattr of a missing name")
    buf = ctypes.create_string_buffer(4)
    check(libc.getxattr(b"xa", b"user.one", buf, 4) == -1 and ctypes.get_errno() == errno.ERANGE, "getxattr into a small buffer: ERANGE")
    check(libc.getxattr(b"xa", b"user.one", None, 0) == 9, "getxattr size query")
    # statfs
    st = os.statvfs(".")
    check(st.f_bsize > 0 and st.f_blocks > 0 and st.f_namemax == 255, "statvfs: %s" % (st,))
    # fsync, fdatasync, fsync of a directory
    fd = os.open("synced", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"synced data")
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)
    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    # O_APPEND, also from two descriptors
    wr("app", b"start;")
    a = os.open("app", os.O_WRONLY | os.O_APPEND)
    b = os.open("app", os.O_WRONLY | os.O_APPEND)
    for i in range(50):
        os.write(a, b"a%d;" % i)
        os.write(b, b"b%d;" % i)
    os.close(a)
    os.close(b)
    check(rd("app") == b"start;" + b"".join(b"a%d;b%d;" % (i, i) for i in range(50)), "O_APPEND from two descriptors")
    # O_DIRECT with aligned buffers
    blk = mmap.mmap(-1, 1 << 20)
    blk.write(os.urandom(1 << 20))
    fd = os.open("direct", os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    check(os.pwritev(fd, [blk], 0) == 1 << 20, "O_DIRECT write")
    back = mmap.mmap(-1, 1 << 20)
    check(os.preadv(fd, [back], 0) == 1 << 20 and back[:] == blk[:], "O_DIRECT read")
    os.close(fd)
    check(rd("direct") == blk[:], "O_DIRECT data through the page cache")
    # fallocate and hole punching
    fd = os.open("falloc", os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, 300000)
    check(os.fstat(fd).st_size == 300000, "posix_fallocate grows the file")
    os.pwrite(fd, b"Z" * 300000, 0)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 131072)
    os.close(fd)
    got = rd("falloc")
    check(len(got) == 300000 and got == b"Z" * 65536 + b"\0" * 131072 + b"Z" * (300000 - 196608), "punched hole reads zeros")
    fd = os.open("falloc2", os.O_RDWR | os.O_CREAT, 0o644)
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 100000)
    check(os.fstat(fd).st_size == 0, "FALLOC_FL_KEEP_SIZE keeps the size")
    os.close(fd)
    # an unlinked file stays usable while open
    fd = os.open("unlinked", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"still here")
    os.unlink("unlinked")
    check(not os.path.exists("unlinked"), "unlinked name gone")
    os.pwrite(fd, b"+more", 10)
    check(os.pread(fd, 100, 0) == b"still here+more", "unlinked open file readable and writable")
    check(os.fstat(fd).st_nlink == 0, "nlink of an unlinked open file")
    os.close(fd)
    # special files
    os.mkfifo("fifo", 0o600)
    check(stat.S_ISFIFO(os.stat("fifo").st_mode), "FIFO")
    print("write phase: %d checks" % checks)

def snapshot(root):
    """Everything that must survive a remount, for every entry below root."""
    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            s = os.lstat(p)
            e = {"mode": s.st_mode, "uid": s.st_uid, "gid": s.st_gid, "nlink": s.st_nlink,
                 "mtime": s.st_mtime_ns, "size": s.st_size,
                 "same_as": inodes.setdefault(s.st_ino, rel)}
            if stat.S_ISLNK(s.st_mode):
                e["target"] = os.readlink(p)
            else:
                e["xattrs"] = {k: hashlib.sha256(os.getxattr(p, k)).hexdigest() for k in sorted(os.listxattr(p))}
            if stat.S_ISREG(s.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    if s.st_size > 64 << 20:  # sample big sparse files: every 256 MiB, and the end
                        for off in list(range(0, s.st_size, 256 << 20)) + [s.st_size - 4096]:
                            f.seek(max(off, 0))
                            h.update(f.read(65536))
                    else:
                        h.update(f.read())
                e["sha256"] = h.hexdigest()
            out[rel] = e
    return out

if sys.argv[1] == "write":
    phase_write(sys.argv[2])
elif sys.argv[1] == "snapshot":
    json.dump(snapshot(sys.argv[2]), open(sys.argv[3], "w"), indent=1, sort_keys=True)
elif sys.argv[1] == "compare":
    # Under the kernel's writeback cache the kernel keeps a file's mtime while it is mounted and the volume
    # stamps its own when the data arrives, a few milliseconds later: implicit mtimes of regular files may
    # move by that much. Times set explicitly (utimens, here all before 2020) must come back exactly.
    a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
    check(sorted(a) == sorted(b), "entries differ: %s" % sorted(set(a) ^ set(b)))
    for k in sorted(a):
        x, y = dict(a[k]), dict(b[k])
        if stat.S_ISREG(x["mode"]) and x["mtime"] > 1577836800 * 10**9 and abs(x["mtime"] - y["mtime"]) < 2 * 10**9:
            y["mtime"] = x["mtime"]
        check(x == y, "%s changed across the remount: %s -> %s" % (k, x, y))
    print("compared %d entries" % len(a))
EOF

fs_init
fs_mount
python3 "$T/posix.py" write "$MNT"
python3 "$T/posix.py" snapshot "$MNT" "$T/before.json"
fs_umount
fs_mount
python3 "$T/posix.py" snapshot "$MNT" "$T/after.json"
python3 "$T/posix.py" compare "$T/before.json" "$T/after.json"
entries=$(grep -c '"mode"' "$T/after.json")
[ "$entries" -gt 900 ] || fail "only $entries entries in the snapshot"
# Spot checks of the snapshot's meaning, so that an empty or broken snapshot cannot pass.
expect_eq "END-OF-BIG" "$(dd if="$MNT/big" bs=1 skip=$((5 << 30)) count=10 status=none)" "big file after remount"
expect_eq "$((5 * 1024 * 1024 * 1024 + 10))" "$(stat -c %s "$MNT/big")" "big file size after remount"
expect_eq "1234:5678 4755" "$(stat -c '%u:%g %a' "$MNT/meta")" "owner and mode after remount"
expect_eq "one again" "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.one").decode())' "$MNT/xa")" \
	"xattr after remount"
fs_umount
echo ok
