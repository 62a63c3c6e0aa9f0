#!/usr/bin/env bash
# Thousands of files: a tar of the first 3000 files of /usr/include (or /usr/share/doc) unpacked into
# the mount must equal the same tar unpacked locally, contents and metadata (modes, sizes, mtimes, link
# targets), before and after unmount and mount; then removing the whole tree leaves the volume empty.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

src=/usr/include
[ "$(find "$src" -type f 2>/dev/null | wc -l)" -ge 1000 ] || src=/usr/share/doc
(cd "$src" && find . \( -type f -o -type l \) -print | LC_ALL=C sort | awk 'NR <= 3000') >"$T/list"
[ "$(wc -l <"$T/list")" -ge 1000 ] || fail "not enough files under $src for this test"
tar -C "$src" --format=posix -cf "$T/tree.tar" -T "$T/list"
mkdir "$T/ref"
tar -C "$T/ref" -xf "$T/tree.tar"

# Metadata of every entry; for directories (which tar created implicitly, at unpacking time) neither
# times nor sizes, which differ between file systems.
meta() {
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%P|d|%m|%U:%G\n' \) -o -printf '%P|%y|%m|%U:%G|%T@|%l|%s\n' |
		LC_ALL=C sort)
}

fs_init
fs_mount
mkdir "$MNT/tree"
tar -C "$MNT/tree" -xf "$T/tree.tar"
diff -r --no-dereference "$T/ref" "$MNT/tree" >/dev/null || fail "unpacked tree differs in content"
meta "$T/ref" >"$T/ref.meta"
meta "$MNT/tree" >"$T/mnt.meta"
[ "$(grep -c '|f|' "$T/ref.meta")" -ge 1000 ] || fail "the metadata listing misses files"
diff "$T/ref.meta" "$T/mnt.meta" || fail "unpacked tree differs in metadata"
manifest "$MNT/tree" >"$T/before"
fs_umount

fs_mount
diff -r --no-dereference "$T/ref" "$MNT/tree" >/dev/null || fail "tree differs in content after remount"
meta "$MNT/tree" >"$T/mnt.meta"
diff "$T/ref.meta" "$T/mnt.meta" || fail "tree differs in metadata after remount"
manifest "$MNT/tree" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "manifest changed across the remount"
expect_eq "$(wc -l <"$T/list")" "$(cd "$MNT/tree" && find . \( -type f -o -type l \) | wc -l)" "number of files"
rm -rf "$MNT/tree"
expect_eq "" "$(ls -A "$MNT")" "volume after removing the tree"
fs_umount
fs_mount
expect_eq "" "$(ls -A "$MNT")" "volume after removing the tree and remounting"
fs_umount
echo ok
