#!/usr/bin/env bash
# Installation, as an operator does it:
#   - `make install DESTDIR=D PREFIX=/usr` puts exactly the expected files under D (programs, the mount
#     helpers in /sbin pointing at the program, man pages that pass man's and mandoc's lint, the systemd
#     unit template naming the installed program); the default prefix is /usr/local; `make uninstall`
#     with the same variables leaves no file behind;
#   - installed for real (the Debian package when FSHIELD_DEB names it, else `make install` with the
#     prefix in this test's directory; the mount helpers go to /sbin either way), a volume mounts through an
#     fstab line with `mount MOUNTPOINT` (a scratch fstab: `mount -T`), served by the installed program, and
#     unmounts with `fshield umount` and with umount(8); the unit template's command mounts the volume
#     and a SIGTERM (systemctl stop) commits and unmounts it;
#   - everything is removed again (dpkg --purge, or make uninstall), also when the test fails.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
: "${BUILD:?set BUILD to the build directory of FSHIELD}"
REPO=$(cd "$(dirname "$0")/../.." && pwd)

# make in the repository, installing the programs of $BUILD as they are (never rebuilding them).
mk() {
	make -C "$REPO" --no-print-directory BUILD="$BUILD" -o "$BUILD/fshield" -o "$BUILD/fshield-verify" \
		-o "$BUILD/fshield-info" "$@"
}

files_under() {
	(cd "$1" && find . ! -type d | LC_ALL=C sort)
}

# man_lint PAGE: nothing from man's warnings, nor from mandoc's lint (when mandoc is installed).
man_lint() {
	local out
	out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2>&1 >/dev/null)
	[ -z "$out" ] || fail "man --warnings on $1: $out"
	if command -v mandoc >/dev/null; then
		out=$(mandoc -Tlint -W warning "$1" 2>&1) || fail "mandoc -Tlint on $1: $out"
	fi
}

echo "check: make install DESTDIR=... PREFIX=/usr installs exactly the expected files"
DEST=$T/dest
mk install DESTDIR="$DEST" PREFIX=/usr >"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
want="./sbin/mount.fshield
./sbin/mount.fuse.fshield
./usr/bin/fshield
./usr/bin/fshield-info
./usr/bin/fshield-verify
./usr/lib/systemd/system/fshield@.service
./usr/share/man/man1/fshield-info.1
./usr/share/man/man1/fshield-verify.1
./usr/share/man/man1/fshield.1
./usr/share/man/man8/mount.fshield.8
./usr/share/man/man8/mount.fuse.fshield.8"
expect_eq "$want" "$(files_under "$DEST")" "files installed"
for h in mount.fshield mount.fuse.fshield; do
	expect_eq /usr/bin/fshield "$(readlink "$DEST/sbin/$h")" "target of /sbin/$h"
done
cmp -s "$FSHIELD" "$DEST/usr/bin/fshield" || fail "the installed program is not $FSHIELD"
[ -x "$DEST/usr/bin/fshield-verify" ] || fail "fshield-verify not executable"
for p in man1/fshield.1 man8/mount.fshield.8; do
	man_lint "$DEST/usr/share/man/$p"
done
echo "check: the man pages cover every command and every mount option, as docs/CLI.md does"
for c in $(sed -n 's/^CMD(\([a-z]*\),.*/\1/p' "$REPO/tools/commands.def") help; do
	grep -q "^\.SS $c\( \|$\)" "$DEST/usr/share/man/man1/fshield.1" || fail "fshield(1) has no section for $c"
	grep -q "^### $c\( \|$\)" "$REPO/docs/CLI.md" || fail "docs/CLI.md has no section for $c"
done
page8=$(MANWIDTH=200 man -l "$DEST/usr/share/man/man8/mount.fshield.8" 2>/dev/null)
for o in $(grep -o 'strcmp(o, "[a-z_]*")' "$REPO/tools/mount.c" | sed 's/.*"\(.*\)")/\1/' | sort -u); do
	grep -q -- "$o" <<<"$page8" || fail "mount.fshield(8) does not name the option $o"
	grep -Eq -- "[\` ,]$o[=\`,]" "$REPO/docs/CLI.md" || fail "docs/CLI.md does not name the option $o"
done
expect_eq fshield.1 "$(readlink "$DEST/usr/share/man/man1/fshield-verify.1")" "fshield-verify.1 link"
expect_eq mount.fshield.8 "$(readlink "$DEST/usr/share/man/man8/mount.fuse.fshield.8")" "mount.fuse.fshield.8 link"
grep -qx 'ExecStart=/usr/bin/fshield mount -f -o ${OPTIONS} ${DIR} ${MOUNTPOINT}' \
	"$DEST/usr/lib/systemd/system/fshield@.service" || fail "the unit does not run the installed program"

echo "check: make uninstall with the same variables leaves no file"
mk uninstall DESTDIR="$DEST" PREFIX=/usr >"$T/uninstall.log" 2>&1 || fail "make uninstall: $(cat "$T/uninstall.log")"
expect_eq "" "$(files_under "$DEST")" "files left by make uninstall"

echo "check: the default prefix is /usr/local (the mount helpers still go to /sbin)"
mk install DESTDIR="$T/dest2" >"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
[ -x "$T/dest2/usr/local/bin/fshield" ] || fail "no /usr/local/bin/fshield"
expect_eq /usr/local/bin/fshield "$(readlink "$T/dest2/sbin/mount.fshield")" "target of /sbin/mount.fshield"
[ -f "$T/dest2/usr/local/share/man/man8/mount.fshield.8" ] || fail "no man page under /usr/local"
mk uninstall DESTDIR="$T/dest2" >/dev/null 2>&1 || fail "make uninstall (default prefix)"
expect_eq "" "$(files_under "$T/dest2")" "files left by make uninstall (default prefix)"

# The real installation needs root (mount(8), /sbin) and must not replace an installation of the machine.
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: installing into / and mounting through fstab needs root"
	exit 0
fi
if [ -e /sbin/mount.fshield ] || [ -e /sbin/mount.fuse.fshield ] || dpkg -s fshield >/dev/null 2>&1; then
	echo "SKIP: fshield is installed on this machine; this test would replace and remove it"
	exit 0
fi

INSTALLED=
uninstall_all() {
	case $INSTALLED in
	deb) dpkg --purge fshield >"$T/purge.log" 2>&1 || echo "dpkg --purge fshield failed: $(cat "$T/purge.log")" >&2 ;;
	make) mk uninstall PREFIX="$T/prefix" >/dev/null 2>&1 || echo "make uninstall failed" >&2 ;;
	esac
	INSTALLED=
}
trap 'st=$?; set +e; for m in $(mounts_under_t); do umount -l "$m" 2>/dev/null; done; uninstall_all; (exit $st); cleanup' EXIT

if [ -n "${FSHIELD_DEB:-}" ]; then
	echo "check: the package installs with dpkg -i"
	INSTALLED=deb
	dpkg -i "$FSHIELD_DEB" >"$T/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$T/dpkg.log")"
	BIN=/usr/bin/fshield UNIT=/lib/systemd/system/fshield@.service
	for f in /usr/bin/fshield /sbin/mount.fshield /sbin/mount.fuse.fshield "$UNIT" \
		/usr/share/man/man1/fshield.1.gz /usr/share/man/man8/mount.fshield.8.gz; do
		dpkg -L fshield | grep -qx "$f" || fail "the package does not hold $f"
	done
	man -w mount.fshield >/dev/null 2>&1 || fail "man does not find mount.fshield(8)"
else
	echo "check: make install into / with the prefix in this test's directory"
	INSTALLED=make
	mk install PREFIX="$T/prefix" >"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
	BIN=$T/prefix/bin/fshield UNIT=$T/prefix/lib/systemd/system/fshield@.service
fi
[ "$(readlink -f /sbin/mount.fuse.fshield)" = "$(readlink -f "$BIN")" ] || fail "/sbin/mount.fuse.fshield is not $BIN"

echo "check: an fstab line mounts the volume with mount MOUNTPOINT, served by the installed program"
fs_init
FSTAB=$T/fstab
printf '# a scratch fstab\n%s %s fuse.fshield key_file=%s,trust=%s,commit_interval=1,nofail 0 0\n' \
	"$BACK" "$MNT" "$KEY" "$TRUST" >"$FSTAB"
mount -T "$FSTAB" "$MNT" 2>"$T/mount.err" || fail "mount -T fstab $MNT: $(cat "$T/mount.err")"
is_mounted "$MNT" || fail "$MNT not mounted"
pid=$(sed -n 's/^pid //p' "$FSHIELD_RUN_DIR"/*.pid)
expect_eq "$(readlink -f "$BIN")" "$(readlink "/proc/$pid/exe")" "program serving the mount"
echo "through fstab" >"$MNT/hello"
"$BIN" umount "$MNT" || fail "fshield umount exited $?"
! is_mounted "$MNT" || fail "still mounted after fshield umount"

echo "check: mounted again through fstab, the data is there; umount(8) unmounts and the daemon finishes"
mount -T "$FSTAB" "$MNT" 2>"$T/mount.err" || fail "second mount -T fstab: $(cat "$T/mount.err")"
expect_eq "through fstab" "$(cat "$MNT/hello")" "content after remount"
umount "$MNT"
wait_until 30 sh -c "[ -z \"\$(ls -A '$FSHIELD_RUN_DIR')\" ]" || fail "the daemon did not finish after umount(8)"

if command -v systemd-analyze >/dev/null; then
	echo "check: systemd-analyze verify accepts an instance of the installed unit template"
	sed 's|/etc/fshield/%i.conf|'"$T"'/%i.conf|' "$UNIT" >"$T/fshield@pv1.service"
	printf 'DIR=%s\nMOUNTPOINT=%s\nOPTIONS=key_file=%s\n' "$BACK" "$MNT" "$KEY" >"$T/pv1.conf"
	# man pages installed under a scratch prefix are not on man's path
	out=$(systemd-analyze verify "$T/fshield@pv1.service" 2>&1 | grep -v "Command 'man " || true)
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
fi
echo "check: the unit template's command serves the volume; SIGTERM commits and unmounts"
exec_line=$(sed -n 's/^ExecStart=//p' "$UNIT")
OPTIONS="key_file=$KEY,trust=$TRUST" DIR=$BACK MOUNTPOINT=$MNT
argv=()
for w in $exec_line; do
	case $w in
	'${OPTIONS}') argv+=("$OPTIONS") ;;
	'${DIR}') argv+=("$DIR") ;;
	'${MOUNTPOINT}') argv+=("$MOUNTPOINT") ;;
	*) argv+=("$w") ;;
	esac
done
expect_eq "$BIN" "${argv[0]}" "program of the unit"
start_daemon "$T/unit.log" "$MNT" "${argv[@]}" || fail "the unit's command did not mount: $(cat "$T/unit.log")"
echo "through the unit" >"$MNT/unit"
kill -TERM "$DPID"
st=0; wait "$DPID" || st=$?
expect_eq 0 "$st" "exit status of the unit's daemon after SIGTERM"
! is_mounted "$MNT" || fail "still mounted after SIGTERM"
grep -q "unmounted, everything committed" "$T/unit.log" || fail "no final commit logged: $(cat "$T/unit.log")"

echo "check: everything is removed again"
uninstall_all
for f in /sbin/mount.fshield /sbin/mount.fuse.fshield "$BIN" "$UNIT"; do
	[ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is left after removal"
done
! dpkg -s fshield >/dev/null 2>&1 || fail "the package is still installed"
echo "ok"
