#!/usr/bin/env bash
# How a key reaches fshield, as a user gives it: a passphrase typed on the terminal without echo (asked
# twice at init), an external password program (--extpass), standard input (--passphrase-file -, read
# once), a change of passphrase or key file (passwd) without re-encryption, and secret files that group
# or others may read refused with the fix.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
PTY=(python3 "$(dirname "$0")/pty-answer.py")
# Cheap Argon2id for the test's many opens is not settable from the command line; the default is used.
P1='first secret words'
P2='second secret words'
printf '%s\n' "$P1" >"$T/p1"
printf '%s\n' "$P2" >"$T/p2"
chmod 600 "$T/p1" "$T/p2"

check "init on a terminal asks twice without echo, and again when the two differ"
mkdir "$T/v"
st=0
"${PTY[@]}" "$T/init.tty" "$P1" "not the same" "$P1" "$P1" -- "$FSHIELD" init --trust "$TRUST" "$T/v" || st=$?
[ "$st" -eq 0 ] || soft_fail "init on a terminal exited $st" "$T/init.tty"
[ "$(grep -c 'New passphrase for' "$T/init.tty")" -eq 2 ] && grep -q 'differ; try again' "$T/init.tty" &&
	grep -q '^created volume' "$T/init.tty" || soft_fail "init did not ask twice, retry and report" "$T/init.tty"
! grep -qF "$P1" "$T/init.tty" || soft_fail "the typed passphrase was echoed" "$T/init.tty"

check "three mismatches: a clear error, and no volume"
mkdir "$T/w"
st=0
"${PTY[@]}" "$T/mis.tty" a b c d e f -- "$FSHIELD" init --trust "$TRUST" "$T/w" || st=$?
[ "$st" -eq 64 ] && grep -q 'differ' "$T/mis.tty" && [ -z "$(ls -A "$T/w")" ] ||
	soft_fail "three mismatches: status $st, $(ls -A "$T/w")" "$T/mis.tty"

check "the prompt opens the volume; a wrong typed passphrase is a wrong key"
st=0
"${PTY[@]}" "$T/ver.tty" "$P1" -- "$FSHIELD" verify --trust "$TRUST" "$T/v" || st=$?
# the progress line on the terminal is cleared (CR, erase line) before the result
[ "$st" -eq 0 ] && grep -q '^verify: ok' <(sed 's/\r\x1b\[K/\n/g' "$T/ver.tty") || soft_fail "verify with the prompt exited $st" "$T/ver.tty"
st=0
"${PTY[@]}" "$T/bad.tty" "wrong words" -- "$FSHIELD" verify --trust "$TRUST" "$T/v" || st=$?
[ "$st" -eq 5 ] || soft_fail "a wrong typed passphrase exited $st, expected 5" "$T/bad.tty"

check "without a terminal and without a key option: an error naming the ways to give one"
expect_cmd 64 nokey "$FSHIELD" verify --trust "$TRUST" "$T/v" </dev/null
grep -q -- '--extpass' "$T/nokey.err" || soft_fail "no hint at the key options" "$T/nokey.err"

check "--passphrase-file - is read once: init prints what it made, mount and verify work from a pipe"
mkdir "$T/s"
printf '%s\n' "$P1" | "$FSHIELD" init --passphrase-file - --trust "$TRUST" "$T/s" >"$T/s.out" 2>&1 ||
	soft_fail "init --passphrase-file - failed" "$T/s.out"
grep -q '^created volume' "$T/s.out" || soft_fail "init --passphrase-file - printed nothing" "$T/s.out"
printf '%s\n' "$P1" | "$FSHIELD" mount --passphrase-file - --trust "$TRUST" "$T/s" "$MNT" 2>"$T/m.err" ||
	fail "mount --passphrase-file -: $(cat "$T/m.err")"
echo "kept content" >"$MNT/file"
"$FSHIELD" umount "$MNT"
printf '%s\n' "$P1" | "$FSHIELD" verify --passphrase-file - --trust "$TRUST" "$T/s" >"$T/sv.out" 2>&1 ||
	soft_fail "verify --passphrase-file -" "$T/sv.out"
grep -q '1 files' "$T/sv.out" || soft_fail "the written file is not in the volume" "$T/sv.out"

check "--extpass runs a program without a shell and takes its output; a failing or silent one is refused"
expect_cmd 0 ext "$FSHIELD" verify --extpass "cat $T/p1" --trust "$TRUST" "$T/s"
expect_cmd 64 ext-fail "$FSHIELD" verify --extpass "false" --trust "$TRUST" "$T/s"
grep -q 'exited with status 1' "$T/ext-fail.err" || soft_fail "no exit status named" "$T/ext-fail.err"
expect_cmd 64 ext-silent "$FSHIELD" verify --extpass "true" --trust "$TRUST" "$T/s"
grep -q 'printed no passphrase' "$T/ext-silent.err" || soft_fail "an empty answer not named" "$T/ext-silent.err"
expect_cmd 64 ext-missing "$FSHIELD" verify --extpass "$T/no-such-program" --trust "$TRUST" "$T/s"

check "passwd: a new passphrase; the old one no longer opens, the content is intact"
before=$(sha256sum "$T/s/meta.db" | cut -d' ' -f1)
expect_cmd 0 pw1 "$FSHIELD" passwd --passphrase-file "$T/p1" --new-passphrase-file "$T/p2" "$T/s"
expect_cmd 5 pw1-old "$FSHIELD" verify --passphrase-file "$T/p1" --trust "$TRUST" "$T/s"
expect_cmd 0 pw1-new "$FSHIELD" verify --passphrase-file "$T/p2" --trust "$TRUST" "$T/s"
grep -q '1 files' "$T/pw1-new.out" || soft_fail "content lost by passwd" "$T/pw1-new.out"
expect_eq "$before" "$(sha256sum "$T/s/meta.db" | cut -d' ' -f1)" "passwd re-encrypted the store"
[ ! -e "$T/s/volume.hdr.tmp" ] || soft_fail "passwd left volume.hdr.tmp behind"

check "passwd: a wrong current passphrase changes nothing"
hdr=$(sha256sum "$T/s/volume.hdr" | cut -d' ' -f1)
expect_cmd 5 pw-wrong "$FSHIELD" passwd --passphrase-file "$T/p1" --new-passphrase-file "$T/p1" "$T/s"
expect_eq "$hdr" "$(sha256sum "$T/s/volume.hdr" | cut -d' ' -f1)" "a refused passwd changed the header"

check "passwd: rewrap under a new key file, and back to a passphrase typed on the terminal"
"$FSHIELD" keygen -o "$T/k1"
expect_cmd 0 pw2 "$FSHIELD" passwd --extpass "cat $T/p2" --new-key-file "$T/k1" "$T/s"
expect_cmd 5 pw2-old "$FSHIELD" verify --passphrase-file "$T/p2" --trust "$TRUST" "$T/s"
expect_cmd 0 pw2-new "$FSHIELD" verify --key-file "$T/k1" --trust "$TRUST" "$T/s"
"$FSHIELD" keygen -o "$T/k2"
expect_cmd 5 pw2-other "$FSHIELD" verify --key-file "$T/k2" --trust "$TRUST" "$T/s"
st=0
"${PTY[@]}" "$T/pw3.tty" "$P1" "$P1" -- "$FSHIELD" passwd --key-file "$T/k1" "$T/s" || st=$?
[ "$st" -eq 0 ] || soft_fail "passwd on a terminal exited $st" "$T/pw3.tty"
expect_cmd 5 pw3-old "$FSHIELD" verify --key-file "$T/k1" --trust "$TRUST" "$T/s"
expect_cmd 0 pw3-new "$FSHIELD" verify --passphrase-file "$T/p1" --trust "$TRUST" "$T/s"

check "a raw-key volume gets a passphrase: the same volume key, now wrapped"
vol_init
expect_cmd 0 pw4 "$FSHIELD" passwd --key-file "$KEY" --new-passphrase-file "$T/p2" "$BACK"
expect_cmd 0 pw4-new "$FSHIELD" verify --passphrase-file "$T/p2" --trust "$TRUST" "$BACK"
expect_cmd 5 pw4-old "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK"

check "passwd refuses while the volume is mounted read-write"
"$FSHIELD" mount --passphrase-file "$T/p2" --trust "$TRUST" "$BACK" "$MNT"
expect_cmd 7 pw-busy "$FSHIELD" passwd --passphrase-file "$T/p2" --new-passphrase-file "$T/p1" "$BACK"
"$FSHIELD" umount "$MNT"

check "secret files that group or others may read are refused with the fix"
cp "$KEY" "$T/open-key"
chmod 644 "$T/open-key"
cp "$T/p2" "$T/open-pass"
chmod 640 "$T/open-pass"
refused() { # LABEL FILE COMMAND...
	local label=$1 file=$2
	shift 2
	local st=0
	"$@" >"$T/$label.out" 2>"$T/$label.err" </dev/null || st=$?
	[ "$st" -ne 0 ] && cat "$T/$label.err" "$T/$label.out" | grep -qF "chmod 600 $file" ||
		soft_fail "$label: status $st, no 'chmod 600 $file'" "$T/$label.err" "$T/$label.out"
}
mkdir "$T/p"
refused init-key "$T/open-key" "$FSHIELD" init --key-file "$T/open-key" --trust "$TRUST" "$T/p"
refused verify-pass "$T/open-pass" "$FSHIELD" verify --passphrase-file "$T/open-pass" --trust "$TRUST" "$BACK"
refused info-pass "$T/open-pass" "$FSHIELD" info --passphrase-file "$T/open-pass" --trust "$TRUST" "$BACK"
refused mount-pass "$T/open-pass" "$FSHIELD" mount --passphrase-file "$T/open-pass" --trust "$TRUST" "$BACK" "$MNT"
refused passwd-new "$T/open-key" "$FSHIELD" passwd --passphrase-file "$T/p2" --new-key-file "$T/open-key" "$BACK"
refused fspf-key "$T/open-key" "$FSHIELD" fspf show --key-file "$T/open-key" "$T/no-such.fspf"
refused tls-client "$T/open-key" "$FSHIELD" verify --trust cas://127.0.0.1:9/ns/s/v --tls-cert "$T/p1" \
	--tls-key "$T/open-key" --ca "$T/p1" "$BACK"
"$FSHIELD" keygen -o "$T/master.key"
refused tls-server "$T/open-key" "$FSHIELD" cas serve --listen 127.0.0.1:0 --tls-cert "$T/p1" \
	--tls-key "$T/open-key" --client-ca "$T/p1" --store "sqlite:$T/cas.db" --audit-key-file "$T/audit.key" \
	--master-key-file "$T/master.key"
[ -z "$(ls -A "$T/p")" ] || soft_fail "a refused init left files behind"
! is_mounted "$MNT" || fail "mounted with an open passphrase file"
finish
