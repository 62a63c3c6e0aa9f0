#!/usr/bin/env bash
# The command line, as a user meets it: --help and -h on every command and subcommand (the commands are
# taken from tools/commands.def and the subcommands from each command's own usage, so a new one without
# --help fails here), fshield --version and fshield version (the Debian changelog's version), help help,
# and each exit status of the table in docs/CLI.md that a command line can provoke, with its message.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
: "${BUILD:?set BUILD to the build directory}"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CW=$BUILD/tests/tools/crashwriter
[ -x "$CW" ] || { echo "FAIL: $CW missing (make BUILD=... test-build)" >&2; exit 1; }

# expect_help LABEL WANT_PREFIX COMMAND...: exits 0, stdout starts with WANT_PREFIX, nothing on stderr.
expect_help() {
	local label=$1 want=$2
	shift 2
	expect_cmd 0 "$label" "$@"
	check "$label: usage on stdout, nothing on stderr"
	[ "$(head -c ${#want} "$T/$label.out")" = "$want" ] && [ ! -s "$T/$label.err" ] ||
		soft_fail "$label: expected '$want...' on stdout and an empty stderr" "$T/$label.out" "$T/$label.err"
}

# expect_err LABEL ERE: the command's message matches ERE (on stderr; verify lists findings on stdout).
expect_err() {
	check "$1: its message matches: $2"
	cat "$T/$1.err" "$T/$1.out" | grep -Eq -- "$2" || soft_fail "$1: no message matches '$2'" "$T/$1.err" "$T/$1.out"
}

echo "== --help and -h on every command and subcommand"
mapfile -t CMDS < <(sed -n 's/^CMD(\([a-z_-]*\),.*/\1/p' "$SRC/tools/commands.def")
check "commands.def lists the commands"
[ "${#CMDS[@]}" -ge 10 ] || soft_fail "only ${#CMDS[@]} commands found in tools/commands.def"
SUBS=()
for c in "${CMDS[@]}"; do
	for h in --help -h; do
		expect_help "help-$c$h" "usage: fshield $c" "$FSHIELD" "$c" "$h"
	done
	expect_help "help-cmd-$c" "usage: fshield $c" "$FSHIELD" help "$c"
	check "help $c and $c --help print the same"
	cmp -s "$T/help-cmd-$c.out" "$T/help-$c--help.out" || soft_fail "help $c differs from $c --help"
	# Its subcommands, as its usage names them: "  c SUB [SUB2] ..." with lowercase words.
	while read -r sub; do
		SUBS+=("$c $sub")
	done < <(sed -E 's/^usage: fshield //' "$T/help-$c--help.out" |
		sed -nE "s/^ *$c (([a-z][a-z-]*)( (create|update|show))?)( .*)?\$/\\1/p" | sort -u)
done
check "the subcommands named in the issue are all found"
for want in "cas serve" "cas session create" "cas session update" "cas session show" "cas audit" \
	"cas rotate-master-key" "cas seal-store" "cas fingerprint" "fspf create" "fspf addr" "fspf addf" \
	"fspf encrypt" "fspf show" "fspf verify" "trust adopt" "bench crypto"; do
	printf '%s\n' "${SUBS[@]}" | grep -qx -- "$want" || soft_fail "subcommand '$want' not found in the usage texts"
done
for s in "${SUBS[@]}"; do
	read -ra words <<<"$s"
	label=help-${s// /-}
	expect_help "$label" "usage: fshield ${words[0]}" "$FSHIELD" "${words[@]}" --help
	expect_help "$label-h" "usage: fshield ${words[0]}" "$FSHIELD" "${words[@]}" -h
done
# --help wins wherever it stands, and nothing else is done.
expect_help help-last "usage: fshield keygen" "$FSHIELD" keygen -o "$T/k-not-made" --help
check "keygen -o F --help writes no key"
[ ! -e "$T/k-not-made" ] || soft_fail "keygen wrote a key although --help was given"
expect_help help-after-args "usage: fshield fspf" "$FSHIELD" fspf create "$T/f-not-made" --help
check "fspf create F --help creates nothing"
[ ! -e "$T/f-not-made" ] || soft_fail "fspf create made a file although --help was given"
for p in verify info; do
	[ -x "$BUILD/fshield-$p" ] || continue
	expect_help "solo-$p" "usage: fshield $p" "$BUILD/fshield-$p" --help
	expect_help "solo-$p-h" "usage: fshield $p" "$BUILD/fshield-$p" -h
	expect_help "solo-$p-late" "usage: fshield $p" "$BUILD/fshield-$p" "$T" --help
done
if [ -e "$(dirname "$FSHIELD")/mount.fshield" ]; then
	expect_help helper-help "usage: fshield mount" "$(dirname "$FSHIELD")/mount.fshield" --help
	expect_help helper-h "usage: fshield mount" "$(dirname "$FSHIELD")/mount.fshield" -h
fi

echo "== help, --version"
expect_help help-help "usage: fshield help" "$FSHIELD" help help
expect_help help-help-h "usage: fshield help" "$FSHIELD" help --help
expect_help help-overview "usage: fshield COMMAND" "$FSHIELD" help
expect_help help-dash "usage: fshield COMMAND" "$FSHIELD" --help
expect_cmd 64 help-unknown "$FSHIELD" help no-such-command
expect_err help-unknown "unknown command 'no-such-command'"
WANT_VERSION=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$SRC/tools/debian/changelog")
WANT_VERSION=${WANT_VERSION%-*}
expect_help version "fshield $WANT_VERSION" "$FSHIELD" --version
check "fshield --version is exactly 'fshield $WANT_VERSION' (tools/debian/changelog)"
[ "$(cat "$T/version.out")" = "fshield $WANT_VERSION" ] || soft_fail "--version: $(cat "$T/version.out")"
expect_help version-cmd "fshield $WANT_VERSION" "$FSHIELD" version
check "fshield version and fshield --version agree"
cmp -s "$T/version.out" "$T/version-cmd.out" || soft_fail "version and --version differ"

echo "== option names: fspf create --cipher, --aead its deprecated alias"
expect_cmd 0 fspf-cipher "$FSHIELD" fspf create --cipher xchacha20-poly1305 "$T/cipher.fspf"
expect_cmd 0 fspf-show-cipher "$FSHIELD" fspf show "$T/cipher.fspf"
check "fspf create --cipher xchacha20-poly1305 is used"
grep -q xchacha20 "$T/fspf-show-cipher.out" || soft_fail "--cipher not applied" "$T/fspf-show-cipher.out"
expect_cmd 0 fspf-aead "$FSHIELD" fspf create --aead aes-256-gcm "$T/aead.fspf"
expect_err fspf-aead "--aead is deprecated; use --cipher"
expect_cmd 64 fspf-cipher-bad "$FSHIELD" fspf create --cipher rot13 "$T/bad.fspf"
expect_err fspf-cipher-bad "--cipher: aes-256-gcm or xchacha20-poly1305"

echo "== exit statuses of docs/CLI.md"
vol_init
OTHER=$T/other.key
"$FSHIELD" keygen -o "$OTHER"

# 64 usage
expect_cmd 64 unknown-cmd "$FSHIELD" no-such-command
expect_err unknown-cmd "unknown command 'no-such-command'"
expect_cmd 64 bad-option "$FSHIELD" info --no-such-option "$BACK"
expect_cmd 64 keygen-exists "$FSHIELD" keygen -o "$KEY"
expect_err keygen-exists "File exists"
expect_cmd 64 file-relative "$FSHIELD" verify --key-file "$KEY" --trust file:relative/trust.db "$BACK"
expect_one_line "$T/file-relative.err" "must be absolute \(file:/ABSOLUTE/PATH\)"
mkdir -p "$T/new"
expect_cmd 64 init-relative "$FSHIELD" init --key-file "$KEY" --trust file:trust.db "$T/new"
expect_err init-relative "must be absolute"
check "init with a relative file: path made nothing"
[ -z "$(ls -A "$T/new")" ] && [ ! -e trust.db ] || soft_fail "init-relative left files behind"
expect_cmd 64 file-host "$FSHIELD" verify --key-file "$KEY" --trust file://host/trust.db "$BACK"
expect_one_line "$T/file-host.err" "file URIs with a host are not supported"
expect_cmd 64 unknown-kind "$FSHIELD" info --key-file "$KEY" --trust http://example.com/a "$BACK"
expect_err unknown-kind "unknown kind"
cp "$KEY" "$T/open.key"
chmod 0644 "$T/open.key"
expect_cmd 64 key-too-open "$FSHIELD" info --key-file "$T/open.key" --trust "$TRUST" "$BACK"
expect_err key-too-open "too open.*chmod 600"
printf 'not hex\n' >"$T/bad.key"
chmod 0600 "$T/bad.key"
expect_cmd 64 key-bad "$FSHIELD" verify --key-file "$T/bad.key" --trust "$TRUST" "$BACK"
expect_err key-bad "64 hex digits"
expect_cmd 64 mount-no-args "$FSHIELD" mount --key-file "$KEY"

# 74 I/O: missing or unreadable files and directories
expect_cmd 74 key-missing-info "$FSHIELD" info --key-file "$T/no-such.key" --trust "$TRUST" "$BACK"
expect_one_line "$T/key-missing-info.err" "key file $T/no-such.key: No such file or directory"
expect_cmd 74 key-missing-verify "$FSHIELD" verify --key-file "$T/no-such.key" --trust "$TRUST" "$BACK"
expect_err key-missing-verify "No such file or directory"
expect_cmd 74 key-missing-mount "$FSHIELD" mount --key-file "$T/no-such.key" --trust "$TRUST" "$BACK" "$MNT"
expect_err key-missing-mount "No such file or directory"
check "nothing mounted"
! is_mounted "$MNT" || { soft_fail "mounted without a key"; fusermount3 -u -z "$MNT"; }
expect_cmd 74 pass-missing "$FSHIELD" info --passphrase-file "$T/no-such.pass" --trust "$TRUST" "$BACK"
expect_err pass-missing "passphrase file .*No such file or directory"
expect_cmd 74 fspf-key-missing "$FSHIELD" fspf show --key-file "$T/no-such.key" "$T/cipher.fspf"
expect_err fspf-key-missing "No such file or directory"
expect_cmd 74 back-missing "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$T/no-such-dir"
expect_cmd 74 not-a-volume "$FSHIELD" info --key-file "$KEY" --trust "$TRUST" "$T/new"
expect_err not-a-volume "not an fshield volume"
echo x >"$T/new/file"
expect_cmd 74 init-not-empty "$FSHIELD" init --key-file "$KEY" --trust "file:$T/t2.db" "$T/new"
# A header that exists but cannot be read is reported as such (as nobody: root reads anything).
d=$(fresh hdr-eacces)
chmod 0755 "$T" "$d"
chmod 0000 "$d/volume.hdr"
cp "$KEY" "$T/nobody.key"
chown 65534 "$T/nobody.key"
for c in info verify; do
	expect_cmd 74 "hdr-eacces-$c" setpriv --reuid=65534 --regid=65534 --clear-groups "$FSHIELD" "$c" \
		--key-file "$T/nobody.key" --trust none "$d"
	expect_err "hdr-eacces-$c" "cannot read the volume header $d/volume.hdr: Permission denied"
	check "hdr-eacces-$c: not called 'not an fshield volume'"
	! grep -q "not an fshield volume" "$T/hdr-eacces-$c.err" || soft_fail "EACCES reported as not a volume"
done
chmod 0700 "$T"

# 5 wrong key
expect_cmd 5 wrong-key "$FSHIELD" info --key-file "$OTHER" --trust "$TRUST" "$BACK"
expect_cmd 5 wrong-key-verify "$FSHIELD" verify --key-file "$OTHER" --trust "$TRUST" "$BACK"

# 6 trust anchor: another trust store (no record of the volume), none for a bound volume
"$FSHIELD" init --key-file "$KEY" --trust "file:$T/other-trust.db" "$(mkdir -p "$T/v2" && echo "$T/v2")" >/dev/null
expect_cmd 6 anchor-other "$FSHIELD" verify --key-file "$KEY" --trust "file:$T/other-trust.db" "$BACK"
expect_cmd 6 anchor-none "$FSHIELD" verify --key-file "$KEY" --trust none "$BACK"
expect_err anchor-none "bound to a trust anchor"
expect_cmd 6 anchor-mount "$FSHIELD" mount --key-file "$KEY" --trust none "$BACK" "$MNT"

# 1 tamper: a header of random bytes
d=$(fresh hdr-random)
head -c 256 /dev/urandom >"$d/volume.hdr"
expect_cmd 1 tamper-info "$FSHIELD" info "$d"
expect_err tamper-info "bad magic"
expect_cmd 1 tamper-verify "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$d"

# 7 busy: verify while a daemon has the volume open read-write
fs_mount
echo hi >"$MNT/f"
expect_cmd 7 busy-verify "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK"
fs_umount

# 2 rollback, 3 fork, 4 pending, on a volume written by rounds of the crash writer ($CV, trust store $CT)
CV=$T/cv
CT=file:$T/cv-trust.db
mkdir -p "$CV"
"$FSHIELD" init --key-file "$KEY" --trust "$CT" "$CV" >/dev/null
"$CW" write "$CV" "$KEY" "$CT" 1 >/dev/null
cp -a "$CV" "$T/old"
cp "$T/cv-trust.db" "$T/cv-trust-old.db"
"$CW" write "$CV" "$KEY" "$CT" 2 >/dev/null
expect_cmd 0 after-write "$FSHIELD" verify --key-file "$KEY" --trust "$CT" "$CV"
# 2: an older copy of the backing directory, after the anchor moved on
expect_cmd 2 rollback "$FSHIELD" verify --key-file "$KEY" --trust "$CT" "$T/old"
expect_cmd 2 rollback-mount "$FSHIELD" mount --key-file "$KEY" --trust "$CT" "$T/old" "$MNT"
# 3: the old copy commits its own round 2 to a copy of the old trust store: the same version as $CV's
# with another root
cp "$T/cv-trust-old.db" "$T/cv-trust-fork.db"
"$CW" write "$T/old" "$KEY" "file:$T/cv-trust-fork.db" 2 >/dev/null
expect_cmd 3 fork "$FSHIELD" verify --key-file "$KEY" --trust "file:$T/cv-trust-fork.db" "$CV"
# 4: a commit prepared but never acknowledged (the writer died just after preparing it)
rc=0
(FSHIELD_CRASH_AT=prepared "$CW" write "$CV" "$KEY" "$CT" 3 >/dev/null 2>&1; exit $?) 2>/dev/null || rc=$?
check "the writer died at 'prepared'"
[ "$rc" -eq 137 ] || soft_fail "crashwriter with FSHIELD_CRASH_AT=prepared exited $rc"
expect_cmd 4 pending "$FSHIELD" verify --key-file "$KEY" --trust "$CT" "$CV"

# 6 trust anchor, from the daemon: a CAS that is down when the last changes are committed at unmount
. "$(dirname "$0")/lib-cas.sh"
cas_start main "sqlite:$T/cas.db"
CAS=127.0.0.1:${CPORT[main]}
URI=cas://$CAS/cli/app/V1
printf 'name: cli/app\nversion: "1"\nvolumes:\n  - name: V1\n    update_policy: rollback_protected\n    clients: [%s]\n' \
	"$(fp client)" >"$T/session.yaml"
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" >/dev/null
mkdir -p "$T/cb"
"$FSHIELD" init --trust "$URI" "$T/cb" >/dev/null
cmount "$T/cb" "$MNT" "$URI"
echo "changed while the CAS is up" >"$MNT/f"
cas_stop main
expect_cmd 6 cas-down-umount "$FSHIELD" umount "$MNT"
check "unmounted"
! is_mounted "$MNT" || soft_fail "still mounted after umount"
cas_start main "sqlite:$T/cas.db"
cmount "$T/cb" "$MNT" "$URI"
check "the prepared commit is completed by the next mount"
[ "$(cat "$MNT/f")" = "changed while the CAS is up" ] || soft_fail "the change was lost: $(cat "$MNT/f")"
cumount "$MNT"

finish
