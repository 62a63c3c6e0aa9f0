#!/usr/bin/env bash
# Permissions (default_permissions is always on): without allow_other only the mounting user gets in;
# with it, the kernel checks mode and owner for everyone else: reads, writes, creation, sticky
# directories, chmod/chown/utimens by non-owners, and set-user-ID bits cleared by a non-owner's write.
# Needs root and setpriv; skipped otherwise.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "SKIP: needs root and setpriv"
	exit 0
fi
chmod 0711 "$T"
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}
denied() { # COMMAND...: must fail for nobody
	if as_nobody "$@" 2>/dev/null; then fail "nobody may: $*"; fi
}
allowed() {
	as_nobody "$@" || fail "nobody may not: $*"
}

fs_init
fs_mount
echo public >"$MNT/pub"
denied stat "$MNT/pub"
fs_umount

fs_mount -o allow_other
grep -q "allow_other" <<<"$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts)" || fail "allow_other not in the mount options"
echo secret >"$MNT/priv"
chmod 0600 "$MNT/priv"
chmod 0644 "$MNT/pub"
mkdir -m 0777 "$MNT/shared"
mkdir -m 1777 "$MNT/sticky"
echo root >"$MNT/sticky/roots"
chmod 0666 "$MNT/sticky/roots"
echo w >"$MNT/worldw"
chmod 0666 "$MNT/worldw"
echo s >"$MNT/suid"
chmod 04777 "$MNT/suid"

allowed cat "$MNT/pub" >/dev/null
denied cat "$MNT/priv"
denied sh -c "echo x >>'$MNT/pub'"
denied touch "$MNT/newfile"
denied mkdir "$MNT/newdir"
denied chmod 0777 "$MNT/pub"
denied chown 65534 "$MNT/pub"
denied touch -d @1000000000 "$MNT/worldw"   # explicit times need ownership
allowed touch "$MNT/worldw"                 # the current time needs write permission only
allowed sh -c "echo mine >'$MNT/shared/mine'"
expect_eq "65534:65534" "$(stat -c %u:%g "$MNT/shared/mine")" "owner of a file created by nobody"
allowed chmod 0600 "$MNT/shared/mine"
denied chown 0 "$MNT/shared/mine"
denied rm "$MNT/sticky/roots"
allowed sh -c "echo changed >'$MNT/sticky/roots'"
allowed sh -c "echo more >>'$MNT/suid'"
mode=$(stat -c %a "$MNT/suid")
expect_eq 777 "$mode" "mode after a non-owner wrote to a set-user-ID file"
echo s >"$MNT/suid2"
chmod 04755 "$MNT/suid2"
chown 1000 "$MNT/suid2"
expect_eq 755 "$(stat -c %a "$MNT/suid2")" "mode after chown of a set-user-ID file"
fs_umount

fs_mount
expect_eq "600 65534:65534" "$(stat -c '%a %u:%g' "$MNT/shared/mine")" "after remount: mine"
expect_eq "777" "$(stat -c '%a' "$MNT/suid")" "after remount: suid cleared"
expect_eq "755 1000" "$(stat -c '%a %u' "$MNT/suid2")" "after remount: suid2"
expect_eq "changed" "$(cat "$MNT/sticky/roots")" "after remount: sticky/roots"
fs_umount
echo ok
