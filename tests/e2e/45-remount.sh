#!/usr/bin/env bash
# Remount of a live mount (mount -o remount,..., which runs the helper mount.fuse.fshield): read-only
# and back (committed first), nosuid/nodev/noexec; on a read-only mount every change fails with EROFS in
# the order of checks of a local filesystem (compared with a tmpfs remounted read-only). A second
# read-write mount of the same backing directory is refused.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
: "${BUILD:?set BUILD to the build directory}"

# What mount(8) runs for `mount -o remount,OPTS MOUNTPOINT`: the helper, with the source and the mount point.
helper_remount() { "$BUILD/mount.fuse.fshield" "$BACK" "$MNT" -o "remount,$1"; }
mount_opts() { awk -v m="$1" '$2 == m { print $4 }' /proc/mounts; }
has_opt() { mount_opts "$1" | tr , '\n' | grep -qx "$2"; }

cat >"$T/ops.py" <<'PY'
import errno, os, sys
def res(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def run(root):
    p = lambda n: os.path.join(root, n)
    ops = [
        ("open O_WRONLY", lambda: os.close(os.open(p("file"), os.O_WRONLY))),
        ("open O_RDWR|O_TRUNC", lambda: os.close(os.open(p("file"), os.O_RDWR | os.O_TRUNC))),
        ("create new", lambda: os.close(os.open(p("new"), os.O_WRONLY | os.O_CREAT, 0o644))),
        ("create O_EXCL existing", lambda: os.close(os.open(p("file"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))),
        ("create existing", lambda: os.close(os.open(p("file"), os.O_WRONLY | os.O_CREAT))),
        ("open O_RDONLY", lambda: os.close(os.open(p("file"), os.O_RDONLY))),
        ("mkdir new", lambda: os.mkdir(p("newdir"))),
        ("mkdir existing", lambda: os.mkdir(p("dir"))),
        ("mkdir in missing", lambda: os.mkdir(p("missing/x"))),
        ("rmdir", lambda: os.rmdir(p("dir"))),
        ("rmdir missing", lambda: os.rmdir(p("missing"))),
        ("unlink", lambda: os.unlink(p("file"))),
        ("unlink missing", lambda: os.unlink(p("missing"))),
        ("rename", lambda: os.rename(p("file"), p("file2"))),
        ("rename missing", lambda: os.rename(p("missing"), p("file2"))),
        ("link", lambda: os.link(p("file"), p("file2"))),
        ("link onto existing", lambda: os.link(p("file"), p("dir"))),
        ("symlink", lambda: os.symlink("file", p("sl"))),
        ("symlink existing", lambda: os.symlink("file", p("file"))),
        ("mknod fifo", lambda: os.mkfifo(p("fifo"))),
        ("chmod", lambda: os.chmod(p("file"), 0o600)),
        ("chmod missing", lambda: os.chmod(p("missing"), 0o600)),
        ("chown", lambda: os.chown(p("file"), 1, 1)),
        ("utime", lambda: os.utime(p("file"), (1, 1))),
        ("utime now", lambda: os.utime(p("file"))),
        ("truncate", lambda: os.truncate(p("file"), 0)),
        ("truncate missing", lambda: os.truncate(p("missing"), 0)),
        ("setxattr", lambda: os.setxattr(p("file"), "user.x", b"1")),
        ("removexattr", lambda: os.removexattr(p("file"), "user.x")),
        ("access W_OK", lambda: None if os.access(p("file"), os.W_OK) else (_ for _ in ()).throw(OSError(errno.EROFS, "w"))),
    ]
    return [(n, res(f)) for n, f in ops]
a, b = run(sys.argv[1]), run(sys.argv[2])
bad = ["%s: %s, local %s" % (n, x, y) for (n, x), (_, y) in zip(a, b) if x != y]
if bad:
    sys.exit("FAIL: read-only mount differs from a local filesystem:\n  " + "\n  ".join(bad))
PY

fs_init
fs_mount -o commit_interval=0
mkdir "$MNT/dir"
echo data >"$MNT/file"
v=$(trusted_version)

# rw -> ro: committed before the helper returns, then nothing changes.
helper_remount ro || fail "remount,ro exited $?"
has_opt "$MNT" ro || fail "not read-only after remount,ro: $(mount_opts "$MNT")"
[ "$(trusted_version)" -gt "$v" ] || fail "remount,ro did not commit"
v=$(trusted_version)
expect_eq data "$(cat "$MNT/file")" "content on the read-only mount"

# The order of checks: the same calls on a tmpfs with the same tree, remounted read-only.
compare_with_local() {
	mkdir -p "$T/ref"
	mount -t tmpfs -o size=1m tmpfs "$T/ref"
	mkdir "$T/ref/dir"
	echo data >"$T/ref/file"
	mount -o remount,ro "$T/ref"
	python3 "$T/ops.py" "$MNT" "$T/ref" || { umount "$T/ref"; fail "$1"; }
	umount "$T/ref"
}
compare_with_local "remounted read-only"
expect_eq "$v" "$(trusted_version)" "trusted version after the refused changes"

# ro -> rw: changes work again.
helper_remount rw || fail "remount,rw exited $?"
! has_opt "$MNT" ro || fail "still read-only after remount,rw"
echo more >>"$MNT/file"
expect_eq "data
more" "$(cat "$MNT/file")" "content after writing on the remounted mount"

# Flags on the live mount; the others stay as they are.
printf '#!/bin/sh\necho ran\n' >"$MNT/script"
chmod +x "$MNT/script"
expect_eq ran "$("$MNT/script")" "script before noexec"
"$FSHIELD" mount -o remount,noexec "$MNT" || fail "remount,noexec exited $?"
has_opt "$MNT" noexec || fail "noexec not set: $(mount_opts "$MNT")"
has_opt "$MNT" nosuid || fail "nosuid lost by remount,noexec: $(mount_opts "$MNT")"
! "$MNT/script" 2>/dev/null || fail "a program ran from a noexec mount"
"$FSHIELD" mount -o remount,exec,suid,dev "$MNT" || fail "remount,exec,suid,dev exited $?"
! has_opt "$MNT" noexec && ! has_opt "$MNT" nosuid && ! has_opt "$MNT" nodev ||
	fail "flags not cleared: $(mount_opts "$MNT")"
expect_eq ran "$("$MNT/script")" "script after exec"
"$FSHIELD" mount -o remount,nosuid,nodev "$MNT" || fail "remount,nosuid,nodev exited $?"
has_opt "$MNT" nosuid && has_opt "$MNT" nodev || fail "flags not set: $(mount_opts "$MNT")"

# A file open for writing keeps the mount read-write (EBUSY, as for any filesystem).
exec 3>>"$MNT/file"
expect_status 74 "$FSHIELD" mount -o remount,ro "$MNT" 2>"$T/err"
exec 3>&-
grep -q 'open for writing' "$T/err" || fail "unexpected reason: $(cat "$T/err")"
! has_opt "$MNT" ro || fail "read-only although a file was open for writing"
echo still >>"$MNT/file"

# Not an fshield mount: 64.
expect_status 64 "$FSHIELD" mount -o remount,ro "$T" 2>/dev/null

# A second read-write mount of the same backing directory: refused, status 7, one line.
mkdir "$T/mnt2"
expect_status 7 "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$T/mnt2" 2>"$T/err"
expect_eq "fshield mount: the volume in $BACK is open by another writer" "$(cat "$T/err")" "second writer's reason"
! is_mounted "$T/mnt2" || fail "second writer mounted"
fs_umount

# A volume mounted with -o ro was opened read-only: remount,rw is refused and it stays read-only.
fs_mount -o ro
expect_status 74 helper_remount rw 2>"$T/err"
grep -q 'mount it again read-write' "$T/err" || fail "unexpected reason: $(cat "$T/err")"
has_opt "$MNT" ro || fail "a read-only volume became read-write"
compare_with_local "mounted read-only"
expect_eq "data
more
still" "$(cat "$MNT/file")" "content after the remounts"
fs_umount
echo "45-remount: ok"
