#!/usr/bin/env bash
# File handles (name_to_handle_at / open_by_handle_at, as NFS export uses them): valid for files and
# directories after the kernel has forgotten their inodes and after a remount; stale (ESTALE) once the
# file is gone, also when another file took its name.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
: "${BUILD:?set BUILD to the build directory}"
H=$BUILD/tests/tools/fhandle

# forget: the kernel drops every unused dentry and inode, so a handle must be resolved by the daemon.
forget() {
	sync
	echo 2 >/proc/sys/vm/drop_caches
}

# expect_open HANDLE INO [CONTENT]: the handle opens the inode INO (with CONTENT at its start).
expect_open() {
	local out
	out=$("$H" open "$MNT" "$T/$1") || fail "handle $1: $out"
	expect_eq "ino $2${3:+
$3}" "$out" "handle $1"
}

fs_init
fs_mount
mkdir -p "$MNT/a/b/c"
echo deep >"$MNT/a/b/c/file"
echo top >"$MNT/top"
ln "$MNT/top" "$MNT/a/hardlink"
echo gone >"$MNT/a/gone"
echo old >"$MNT/a/replaced"
for p in a/b/c/file top a/b/c a/gone a/replaced; do "$H" get "$MNT/$p" "$T/h.${p//\//_}"; done
ino_file=$(stat -c %i "$MNT/a/b/c/file")
ino_top=$(stat -c %i "$MNT/top")
ino_dir=$(stat -c %i "$MNT/a/b/c")

expect_open h.a_b_c_file "$ino_file" deep
forget
expect_open h.a_b_c_file "$ino_file" deep
forget
expect_open h.a_b_c "$ino_dir"
forget
expect_open h.top "$ino_top" top
rm "$MNT/top" # still linked as a/hardlink
forget
expect_open h.top "$ino_top" top

# Removed, or replaced by a new file under the same name: stale.
rm "$MNT/a/gone"
rm "$MNT/a/replaced"
echo new >"$MNT/a/replaced"
forget
expect_eq "errno ESTALE" "$("$H" open "$MNT" "$T/h.a_gone" || true)" "handle of a removed file"
expect_eq "errno ESTALE" "$("$H" open "$MNT" "$T/h.a_replaced" || true)" "handle of a replaced file"

# Across a remount the inode numbers and generations are the same: the handles still work.
fs_remount
expect_open h.a_b_c_file "$ino_file" deep
expect_open h.a_b_c "$ino_dir"
expect_open h.top "$ino_top" top
expect_eq "errno ESTALE" "$("$H" open "$MNT" "$T/h.a_gone" || true)" "handle of a removed file after remount"
rm -r "$MNT/a/b"
forget
expect_eq "errno ESTALE" "$("$H" open "$MNT" "$T/h.a_b_c" || true)" "handle of a removed directory"
fs_umount
echo "43-handles: ok"
