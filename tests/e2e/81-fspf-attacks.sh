#!/usr/bin/env bash
# Attacks on a protected image tree and its fspf, each on a fresh copy of the pristine tree: a changed byte
# in an encrypted and in an authenticated file, two files swapped, a file added, a file deleted, a file
# truncated, the fspf replaced by an older one, a changed fspf, a wrong key. Each must be detected: the read
# fails with EIO and the daemon logs a line naming the file (and chunk), or the mount is refused with a
# distinct status and a one-line reason; `fshield fspf verify` reports the same offline. The daemon runs in
# the foreground (in the background of this script) so that its log lines can be checked.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

SRC=$T/src PRISTINE=$T/pristine W=$T/app.fspf OLD=$T/old.fspf
PYLIB=$(python3 -c 'import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))')
mkdir -p "$SRC/app" "$SRC/lib"
cp -a "$PYLIB/json" "$SRC/lib/"
head -c 150000 /dev/urandom >"$SRC/app/big.bin"
head -c 5000 /dev/urandom >"$SRC/app/a.bin"
head -c 5000 /dev/urandom >"$SRC/app/b.bin"
printf 'print("counter", 1)\n' >"$SRC/app/counter.py"
mkdir -p "$SRC/extra"
echo later >"$SRC/extra/later.txt"

"$FSHIELD" fspf create "$W" >/dev/null
"$FSHIELD" fspf addr "$W" /app --encrypted >/dev/null
"$FSHIELD" fspf addr "$W" /lib --authenticated --chunk-size 4096 >/dev/null
"$FSHIELD" fspf addr "$W" /extra --encrypted >/dev/null
"$FSHIELD" fspf addf "$W" /app "$SRC/app" "$PRISTINE/app" >/dev/null
"$FSHIELD" fspf addf "$W" /lib "$SRC/lib" "$PRISTINE/lib" >/dev/null
cp "$W" "$OLD" # an older state of the same manifest, same key
"$FSHIELD" fspf addf "$W" /extra "$SRC/extra" "$PRISTINE/extra" >/dev/null
line=$("$FSHIELD" fspf encrypt "$W")
K=$(sed -n 's/.* key: \([0-9a-f]*\) tag: .*/\1/p' <<<"$line")
TG=$(sed -n 's/.* tag: \([0-9a-f]*\)$/\1/p' <<<"$line")
"$FSHIELD" fspf encrypt "$OLD" >/dev/null
[ ${#K} = 64 ] && [ ${#TG} = 64 ] || fail "no key and tag in: $line"
"$FSHIELD" fspf verify --key-fd 3 --tag-fd 4 "$W" "$PRISTINE" 3<<<"$K" 4<<<"$TG" >/dev/null || fail "the pristine tree does not verify"

LOG=
# mount_fg ROOT [FSPF [KEY [TAG]]]: mounts in the foreground, in the background; log in $LOG.
mount_fg() {
	LOG=$T/daemon.$RANDOM.log
	start_daemon "$LOG" "$MNT" "$FSHIELD" mount -f --fspf "${2:-$W}" --fspf-key-fd 3 --fspf-tag-fd 4 "$1" "$MNT" \
		3<<<"${3:-$K}" 4<<<"${4:-$TG}" || { cat "$LOG" >&2; fail "the image did not mount"; }
}
# unmount_fg STATUS: unmounts, the daemon must exit with STATUS.
unmount_fg() {
	stop_daemon "$MNT"
	expect_eq "$1" "$DAEMON_STATUS" "daemon exit status"
}
# expect_eio PATH: reading PATH through the mount fails with EIO.
expect_eio() {
	python3 - "$MNT$1" <<'EOF' || fail "reading $1 did not fail with EIO"
import errno, sys
try:
    with open(sys.argv[1], "rb") as f:
        f.read()
except OSError as e:
    sys.exit(0 if e.errno == errno.EIO else 1)
sys.exit(1)
EOF
}
expect_log() { # ERE
	grep -Eq -- "$1" "$LOG" || { sed 's/^/  | /' "$LOG" >&2; fail "no log line matching: $1"; }
	echo "  log: $(grep -E -- "$1" "$LOG" | head -n 1)"
}
# expect_verify STATUS ERE [ROOT] [FSPF] [KEY]: the offline check exits STATUS and prints a line matching ERE.
expect_verify() {
	local st=0
	"$FSHIELD" fspf verify --key-fd 3 --tag-fd 4 "${4:-$W}" "${3:-$R}" 3<<<"${5:-$K}" 4<<<"$TG" >"$T/verify.out" 2>&1 || st=$?
	expect_eq "$1" "$st" "fspf verify status"
	grep -Eq -- "$2" "$T/verify.out" || { cat "$T/verify.out" >&2; fail "verify printed no line matching: $2"; }
}
fresh_root() {
	R=$T/r.$RANDOM
	cp -a "$PRISTINE" "$R"
}
flip() { # FILE OFFSET
	python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}

echo "== a changed byte in an encrypted file"
fresh_root
flip "$R/app/big.bin" 70000
mount_fg "$R"
cmp <(head -c 65536 "$SRC/app/big.bin") <(head -c 65536 "$MNT/app/big.bin") # chunk 0 still reads
expect_eio /app/big.bin
expect_log 'integrity violation: /app/big.bin chunk 1 \(bytes 65536-131071\): chunk fails authentication'
unmount_fg 1
expect_verify 1 '^integrity violation: /app/big.bin chunk 1 \(bytes 65536-131071\)'

echo "== a changed byte in an authenticated file"
fresh_root
flip "$R/lib/json/decoder.py" 9000
mount_fg "$R"
expect_eio /lib/json/decoder.py
expect_log 'integrity violation: /lib/json/decoder.py chunk 2 \(bytes 8192-12287\)'
cmp "$SRC/lib/json/encoder.py" "$MNT/lib/json/encoder.py" # the others still read
unmount_fg 1
expect_verify 1 'integrity violation: /lib/json/decoder.py chunk 2 '

echo "== two files of the same size swapped"
fresh_root
mv "$R/app/a.bin" "$R/app/tmp" && mv "$R/app/b.bin" "$R/app/a.bin" && mv "$R/app/tmp" "$R/app/b.bin"
mount_fg "$R"
expect_eio /app/a.bin
expect_eio /app/b.bin
expect_log 'integrity violation: /app/a.bin chunk 0 \(bytes 0-4999\)'
expect_log 'integrity violation: /app/b.bin chunk 0 \(bytes 0-4999\)'
unmount_fg 1
expect_verify 1 '/app/b.bin chunk 0'

echo "== two authenticated files swapped"
fresh_root
cp "$R/lib/json/decoder.py" "$T/x" && cp "$R/lib/json/encoder.py" "$R/lib/json/decoder.py" && cp "$T/x" "$R/lib/json/encoder.py"
mount_fg "$R"
expect_eio /lib/json/decoder.py
expect_eio /lib/json/encoder.py
expect_log 'integrity violation: /lib/json/(de|en)coder.py'
unmount_fg 1

echo "== a file added to the protected tree"
fresh_root
echo 'import os; os.system("id")' >"$R/app/evil.py"
mount_fg "$R"
ls "$MNT/app" >"$T/ls.out"
! grep -q evil "$T/ls.out" || fail "the added file is listed"
expect_eio /app/evil.py
expect_log 'integrity violation: /app/evil.py: not in the fspf'
unmount_fg 1
expect_verify 1 'integrity violation: /app/evil.py: not in the fspf'

echo "== a file deleted"
fresh_root
rm "$R/app/counter.py"
mount_fg "$R"
[ -e "$MNT/app/counter.py" ] || fail "a deleted file vanished from the listing (the manifest names it)"
expect_eio /app/counter.py
expect_log 'integrity violation: /app/counter.py: missing'
unmount_fg 1
expect_verify 1 'integrity violation: /app/counter.py: missing'

echo "== a file truncated, and one replaced by a symbolic link"
fresh_root
truncate -s 100000 "$R/app/big.bin"
rm "$R/app/a.bin" && ln -s b.bin "$R/app/a.bin"
mount_fg "$R"
expect_eio /app/big.bin
expect_eio /app/a.bin
expect_log 'integrity violation: /app/big.bin: 100000 bytes in the protected tree, the fspf says 150000'
expect_log 'integrity violation: /app/a.bin: not a regular file'
unmount_fg 1
expect_verify 1 '/app/big.bin: 100000 bytes, the fspf says 150000'

echo "== the fspf replaced by an older one (same key): refused at mount, tag mismatch"
fresh_root
st=0
"$FSHIELD" mount --fspf "$OLD" --fspf-key-fd 3 --fspf-tag-fd 4 "$R" "$MNT" 3<<<"$K" 4<<<"$TG" 2>"$T/old.err" || st=$?
expect_eq 1 "$st" "mount with an older fspf"
! is_mounted "$MNT" || fail "mounted with an older fspf"
grep -q "^fshield mount: $OLD: fspf tag mismatch" "$T/old.err" || fail "message: $(cat "$T/old.err")"
echo "  $(cat "$T/old.err")"
expect_verify 1 'fspf tag mismatch' "$R" "$OLD"

echo "== a changed byte in the fspf: refused at mount"
cp "$W" "$T/changed.fspf"
flip "$T/changed.fspf" 200
st=0
"$FSHIELD" mount --fspf "$T/changed.fspf" --fspf-key-fd 3 --fspf-tag-fd 4 "$R" "$MNT" 3<<<"$K" 4<<<"$TG" 2>"$T/changed.err" || st=$?
expect_eq 1 "$st" "mount with a changed fspf"
grep -q "fspf tag mismatch" "$T/changed.err" || fail "message: $(cat "$T/changed.err")"
! is_mounted "$MNT" || fail "mounted with a changed fspf"

echo "== a wrong key: refused at mount"
WRONG=$(python3 -c 'import sys; k = bytearray.fromhex(sys.argv[1]); k[0] ^= 1; print(k.hex())' "$K")
st=0
"$FSHIELD" mount --fspf "$W" --fspf-key-fd 3 --fspf-tag-fd 4 "$R" "$MNT" 3<<<"$WRONG" 4<<<"$TG" 2>"$T/wrong.err" || st=$?
expect_eq 5 "$st" "mount with a wrong key"
grep -q "^fshield mount: $W: wrong key" "$T/wrong.err" || fail "message: $(cat "$T/wrong.err")"
! is_mounted "$MNT" || fail "mounted with a wrong key"
echo "  $(cat "$T/wrong.err")"
expect_verify 5 'wrong key' "$R" "$W" "$WRONG"

echo "== a working (unencrypted) fspf is not accepted for a mount"
"$FSHIELD" fspf create "$T/work.fspf" >/dev/null
expect_status 64 "$FSHIELD" mount --fspf "$T/work.fspf" --fspf-key-fd 3 --fspf-tag-fd 4 "$R" "$MNT" 3<<<"$K" 4<<<"$TG" 2>/dev/null

echo "== the untouched tree still mounts and reads clean"
mount_fg "$PRISTINE"
cmp "$SRC/app/big.bin" "$MNT/app/big.bin"
expect_eq "counter 1" "$(python3 "$MNT/app/counter.py")" "counter output"
unmount_fg 0
! grep -q 'integrity violation' "$LOG" || fail "a violation logged for the untouched tree"
echo ok
