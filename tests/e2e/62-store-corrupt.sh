#!/usr/bin/env bash
# A page of meta.db that SQLite cannot read is the attacker's store failing us: at rest or while
# mounted, the program gets EIO (never EBADMSG), the log names the file, the volume turns read-only and
# the daemon ends with status 1 (umount says so, never "everything committed"). `verify` reports the
# unreadable table once and does not turn it into rows "missing" or inodes "not reachable".
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
vol_init "$CS"
fs_mount
mkdir "$MNT/sub"
head -c 20000 /dev/urandom >"$MNT/a"
echo hello >"$MNT/sub/b"
fs_umount

# corrupt_table DB TABLE: overwrites the b-tree page type of TABLE's root page with an invalid one.
corrupt_table() {
	python3 - "$1" "$2" <<'PY'
import sqlite3, sys
db, table = sys.argv[1], sys.argv[2]
c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
ps = c.execute("PRAGMA page_size").fetchone()[0]
root = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
c.close()
with open(db, "r+b") as f:
    f.seek((root - 1) * ps)
    f.write(b"\xff")
PY
}

start_at() { # LABEL DIR: mounts DIR at M=$T/mnt-LABEL
	M=$T/mnt-$1
	start_labelled "$1" "$2" "$TRUST" "$M"
}

# errno_of COMMAND...: the errno name of the failing system call in a Python one-liner's argument.
read_errno() { # PATH
	python3 - "$1" <<'PY'
import errno, os, sys
try:
    if os.path.isdir(sys.argv[1]):
        os.listdir(sys.argv[1])
    else:
        open(sys.argv[1], "rb").read()
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# after_violation LABEL VOLPATH: VOLPATH at $M reads as EIO, the log names it, nothing can be changed,
# and the daemon ends with status 1.
after_violation() {
	local label=$1 p=$2 got s=0 want
	check "$label: reading $p fails with EIO"
	got=$(read_errno "$M$p")
	[ "$got" = EIO ] || soft_fail "$label: reading $p gave $got, expected EIO" "$T/$label.log"
	want="integrity violation: $p: .*the metadata store meta.db cannot be read"
	check "$label: the log has: $want"
	grep -Eq -- "$want" "$T/$label.log" || soft_fail "$label: no log line '$want'" "$T/$label.log"
	# (EIO where the directory itself cannot be read any more)
	check "$label: the volume is read-only (a new file: EROFS, or EIO in an unreadable directory)"
	got=$( (echo x >"$M/new") 2>&1) && soft_fail "$label: created a file after the violation" ||
		grep -Eq 'Read-only file system|Input/output error' <<<"$got" || soft_fail "$label: creating a file: $got"
	check "$label: an existing file that verifies cannot be written (EROFS)"
	got=$( (echo x >>"$M/sub/b") 2>&1) && soft_fail "$label: wrote /sub/b after the violation" ||
		grep -Eq 'Read-only file system|Input/output error' <<<"$got" || soft_fail "$label: writing /sub/b: $got"
	check "$label: umount exits 1 and the log does not say everything was committed"
	"$FSHIELD" umount "$M" 2>"$T/$label.umount" || s=$?
	wait "$DPID" 2>/dev/null || true
	[ "$s" -eq 1 ] || soft_fail "$label: umount exited $s" "$T/$label.umount" "$T/$label.log"
	! grep -q "everything committed" "$T/$label.log" || soft_fail "$label: the log says everything committed" "$T/$label.log"
}

echo "== at rest: the chunk table's page is unreadable"
d=$(fresh rest)
corrupt_table "$d/meta.db" chunks
run_verify rest "$d"
expect_vstatus 1
expect_finding metadata - -
expect_text 'tamper detected: the chunk rows of the metadata store cannot be read'
check "rest: no misleading findings about rows deleted"
! grep -Eq 'chunk rows missing|not reachable|entries missing' "$VOUT" || soft_fail "rest: misleading findings" "$VOUT"
start_at rest "$d"
after_violation rest /a

echo "== while mounted: the directory entry table's page becomes unreadable"
d=$(fresh live)
start_at live "$d"
corrupt_table "$d/meta.db" dirents
after_violation live /
run_verify live "$d"
expect_vstatus 1
expect_text 'tamper detected: the directory entry rows of the metadata store cannot be read'
check "live: no misleading findings about unreachable inodes or wrong link counts"
! grep -Eq 'not reachable|link count|entries missing' "$VOUT" || soft_fail "live: misleading findings" "$VOUT"

echo "== the inode table unreadable: mount refuses, verify reports it once"
d=$(fresh inodes)
corrupt_table "$d/meta.db" inodes
run_verify inodes "$d"
expect_vstatus 1
expect_text 'tamper detected: the inode rows of the metadata store cannot be read'
check "inodes: no finding per pack file (the inodes were not read)"
! grep -q 'unreferenced' "$VOUT" || soft_fail "inodes: misleading unreferenced notes" "$VOUT"
check "inodes: mount refuses with status 1"
s=0
"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$d" "$MNT" 2>"$T/inodes.mount" || s=$?
if is_mounted "$MNT"; then "$FSHIELD" umount "$MNT" || true; fi
[ "$s" -eq 1 ] || soft_fail "inodes: mount exited $s" "$T/inodes.mount"
finish
