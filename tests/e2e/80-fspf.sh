#!/usr/bin/env bash
# fshield fspf and mount --fspf on a real tree: a copy of python3's json and email packages (authenticated,
# 4 KiB chunks) and a small application (encrypted, with a not-protected subdirectory) are protected, the
# manifest is sealed, the tree is checked offline, mounted read-only, the application is run from the mount
# (it imports the packages from there), and every file is compared byte for byte with its source.
# Then bad input: a path no region covers, an overlapping addf, an unreadable source file, symbolic links
# escaping the tree, special files — each refused with a clear message, the fspf unchanged and no output
# left behind.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

PYLIB=$(python3 -c 'import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))')
SRC=$T/src ROOT=$T/root W=$T/app.fspf
mkdir -p "$SRC/app/static" "$SRC/app/pkg" "$SRC/lib"
cp -a "$PYLIB/json" "$PYLIB/email" "$SRC/lib/"
cat >"$SRC/app/counter.py" <<'PY'
# SECRET-APP-MARKER: this line must never appear in clear in the protected tree
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(here), "lib"))
import json, email.message, email.parser
from pkg import helper
for m in (json, email.message, helper):
    assert m.__file__.startswith(os.path.dirname(here) + "/"), m.__file__
msg = email.message.EmailMessage()
msg["Subject"] = "count"
msg.set_content(json.dumps({"n": helper.count()}))
print(email.parser.Parser().parsestr(msg.as_string())["Subject"], json.loads(msg.get_content())["n"])
PY
printf 'def count():\n    return 41 + 1\n' >"$SRC/app/pkg/helper.py"
touch "$SRC/app/pkg/__init__.py" "$SRC/app/empty"
head -c 200000 /dev/urandom >"$SRC/app/big.bin"
head -c 65536 /dev/urandom >"$SRC/app/one-chunk.bin"
echo 'not protected' >"$SRC/app/static/readme.txt"
chmod 0750 "$SRC/app/pkg"
chmod 0600 "$SRC/app/big.bin"
ln -s pkg/helper.py "$SRC/app/helper-link.py"
ln -s ../lib/json "$SRC/app/json-link"

"$FSHIELD" fspf create "$W" >/dev/null
[ "$(stat -c %a "$W")" = 600 ] || fail "a working fspf holds the key: mode 600 expected"
"$FSHIELD" fspf addr "$W" / --not-protected >/dev/null
"$FSHIELD" fspf addr "$W" /app --encrypted >/dev/null
"$FSHIELD" fspf addr "$W" /app/static --not-protected >/dev/null
"$FSHIELD" fspf addr "$W" /lib --authenticated --chunk-size 4096 >/dev/null
"$FSHIELD" fspf addf "$W" /lib "$SRC/lib" "$ROOT/lib" >/dev/null
# Links must stay inside the tree being added: app/json-link leaves /app, so addf refuses the whole tree.
st=0
"$FSHIELD" fspf addf "$W" /app "$SRC/app" "$ROOT/app" >"$T/addf.out" 2>"$T/addf.err" || st=$?
expect_eq 64 "$st" "addf with a link leaving /app"
grep -q 'json-link -> ../lib/json: the symbolic link points outside the protected tree /app' "$T/addf.err" ||
	fail "no clear message for a link leaving the tree: $(cat "$T/addf.err")"
[ ! -e "$ROOT/app" ] || fail "a refused addf left $ROOT/app behind"
rm "$SRC/app/json-link"
"$FSHIELD" fspf addf "$W" /app "$SRC/app" "$ROOT/app" >"$T/addf.out"
grep -q '^Added /app: 7 files' "$T/addf.out" || fail "addf summary: $(cat "$T/addf.out")"

echo "== the protected tree holds ciphertext for /app, plain copies for /lib and /app/static"
! grep -rq SECRET-APP-MARKER "$ROOT" || fail "plaintext of an encrypted file in the protected tree"
cmp -s "$SRC/app/big.bin" "$ROOT/app/big.bin" && fail "big.bin is not encrypted"
[ "$(stat -c %s "$ROOT/app/big.bin")" = 200000 ] || fail "ciphertext has another length than the plaintext"
cmp "$SRC/lib/json/decoder.py" "$ROOT/lib/json/decoder.py"
cmp "$SRC/app/static/readme.txt" "$ROOT/app/static/readme.txt"

echo "== encrypt: key and tag on one line, the working key gone from the file"
"$FSHIELD" fspf encrypt "$W" >"$T/encrypt.out"
read -r KEY_HEX TAG_HEX < <(sed -n 's/^Encrypted file system protection file .* key: \([0-9a-f]\{64\}\) tag: \([0-9a-f]\{64\}\)$/\1 \2/p' "$T/encrypt.out")
[ -n "${TAG_HEX:-}" ] || fail "encrypt did not print key and tag: $(cat "$T/encrypt.out")"
python3 - "$W" "$KEY_HEX" <<'EOF' || fail "the sealed fspf still holds its key"
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(1 if bytes.fromhex(sys.argv[2]) in data else 0)
EOF
echo "$KEY_HEX" >"$T/fspf.key"
echo "$TAG_HEX" >"$T/fspf.tag"
chmod 600 "$T/fspf.key" "$T/fspf.tag"
expect_eq "$TAG_HEX" "$("$FSHIELD" fspf show --tag --key-fd 3 "$W" 3<"$T/fspf.key")" "show --tag"
"$FSHIELD" fspf show --key-file "$T/fspf.key" "$W" >"$T/show.out"
grep -q '^f 0600 0:0 200000 encrypted 4 chunks /app/big.bin$' "$T/show.out" || fail "show: $(head -n 30 "$T/show.out")"
grep -q '^l 0777 .* /app/helper-link.py -> pkg/helper.py$' "$T/show.out" || fail "show lists no link"
grep -q '^f 0644 0:0 [0-9]* not-protected 0 chunks /app/static/readme.txt$' "$T/show.out" || fail "show: static"
expect_status 64 "$FSHIELD" fspf addf "$W" /more "$SRC/app/pkg" 2>/dev/null

echo "== offline check"
"$FSHIELD" fspf verify --key-file "$T/fspf.key" --tag-file "$T/fspf.tag" "$W" "$ROOT" >"$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
grep -q '^fspf verify: ok: ' "$T/verify.out"
"$FSHIELD" fspf verify --json --key-fd 3 --tag-fd 4 "$W" "$ROOT" 3<<<"$KEY_HEX" 4<<<"$TAG_HEX" |
	python3 -c 'import json, sys; o = json.load(sys.stdin); assert o["status"] == 0 and o["findings"] == [] and o["files"] > 50, o'

echo "== mount, run the application from the mount"
"$FSHIELD" mount --fspf "$W" --fspf-key-file "$T/fspf.key" --fspf-tag-file "$T/fspf.tag" "$ROOT" "$MNT"
is_mounted "$MNT" || fail "not mounted"
expect_eq "count 42" "$(python3 "$MNT/app/counter.py")" "the application's output"

echo "== every file byte for byte, with mode, size, mtime and link targets"
tree_state() { # DIR: files and links with mode, size, mtime, target; every file's hash
	(cd "$1" && find . -mindepth 1 \( -type f -o -type l \) -printf '%y %m %s %T@ %l %p\n' | LC_ALL=C sort -k6 &&
		find . -mindepth 1 -type d -printf '%y %m %p\n' | LC_ALL=C sort -k3 &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
[ "$(tree_state "$SRC/app")" = "$(tree_state "$MNT/app")" ] ||
	{ diff <(tree_state "$SRC/app") <(tree_state "$MNT/app") | head -n 20; fail "/app differs through the mount"; }
[ "$(tree_state "$SRC/lib")" = "$(tree_state "$MNT/lib")" ] ||
	{ diff <(tree_state "$SRC/lib") <(tree_state "$MNT/lib") | head -n 20; fail "/lib differs through the mount"; }
nfiles=$(find "$MNT" -type f | wc -l)
[ "$nfiles" -gt 50 ] || fail "only $nfiles files through the mount"
echo "  $nfiles files identical"
# reads at odd offsets across chunk boundaries
python3 - "$SRC/app/big.bin" "$MNT/app/big.bin" <<'EOF'
import sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
for off, n in ((0, 1), (65535, 2), (65530, 70000), (131071, 68929), (199999, 10), (200000, 5), (3, 199990)):
    a.seek(off); b.seek(off)
    assert a.read(n) == b.read(n), (off, n)
EOF

echo "== read-only: no change goes through"
if (echo x >"$MNT/app/new") 2>/dev/null; then fail "created a file in the image"; fi
if (echo x >>"$MNT/app/empty") 2>/dev/null; then fail "appended to a file of the image"; fi
if touch "$MNT/app/empty" 2>/dev/null; then fail "touched a file of the image"; fi
if mkdir "$MNT/app/d" 2>/dev/null; then fail "made a directory in the image"; fi
if rm "$MNT/app/empty" 2>/dev/null; then fail "removed a file of the image"; fi
[ ! -e "$MNT/app/not-there" ] || fail "a name the fspf does not list exists"
cmp "$SRC/app/empty" "$MNT/app/empty"
"$FSHIELD" umount "$MNT" || fail "umount exited $? after a clean run"

echo "== bad input: clear errors, the fspf unchanged, no output left behind"
B=$T/bad
mkdir -p "$B/src/ok" "$B/src/sub"
echo hello >"$B/src/ok/a.txt"
echo world >"$B/src/sub/b.txt"
"$FSHIELD" fspf create "$B/w.fspf" >/dev/null
"$FSHIELD" fspf addr "$B/w.fspf" /enc --encrypted >/dev/null
"$FSHIELD" fspf addf "$B/w.fspf" /enc/ok "$B/src/ok" "$B/out-ok" >/dev/null
# bad_case LABEL STATUS ERE COMMAND...: refused with STATUS and a message matching ERE; fspf and $B/out unchanged
bad_case() {
	local label=$1 want=$2 ere=$3 before st=0
	shift 3
	before=$(sha256sum "$B/w.fspf")
	"$@" >"$T/$label.out" 2>"$T/$label.err" || st=$?
	[ "$st" -eq "$want" ] || fail "$label: exited $st, expected $want: $(cat "$T/$label.err")"
	grep -Eq -- "$ere" "$T/$label.err" || fail "$label: message does not match '$ere': $(cat "$T/$label.err")"
	[ "$(sha256sum "$B/w.fspf")" = "$before" ] || fail "$label: the fspf changed"
	[ ! -e "$B/out" ] || fail "$label: output left behind: $(find "$B/out" | head)"
	echo "  $label: $(head -n 1 "$T/$label.err")"
}
bad_case no-region 64 'no region covers /other/b.txt .*add one with' \
	"$FSHIELD" fspf addf "$B/w.fspf" /other "$B/src/sub" "$B/out"
bad_case overlap 64 '/enc/ok is already in the fspf|overlaps what was added before' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc "$B/src" "$B/out"
bad_case overlap-again 64 'overlaps what was added before \(/enc/ok/a.txt' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/ok "$B/src/ok" "$B/out"
bad_case encrypted-needs-output 64 'encrypted region /enc: give an OUTPUT_DIR' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/sub "$B/src/sub"
mkdir "$B/esc" && ln -s ../../../etc/passwd "$B/esc/up" && echo x >"$B/esc/a"
bad_case symlink-up 64 'esc/up -> ../../../etc/passwd: the symbolic link points outside the protected tree /enc/esc' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/esc "$B/esc" "$B/out"
rm "$B/esc/up" && ln -s /etc/passwd "$B/esc/abs"
bad_case symlink-absolute 64 'esc/abs -> /etc/passwd: the symbolic link points outside' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/esc "$B/esc" "$B/out"
rm "$B/esc/abs"
mkfifo "$B/esc/fifo"
bad_case fifo 64 'esc/fifo is a FIFO: only directories, regular files and symbolic links' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/esc "$B/esc" "$B/out"
rm "$B/esc/fifo"
if mknod "$B/esc/null" c 1 3 2>/dev/null; then
	bad_case chardev 64 'esc/null is a character device' \
		"$FSHIELD" fspf addf "$B/w.fspf" /enc/esc "$B/esc" "$B/out"
	rm "$B/esc/null"
fi
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$B/esc/sock"
bad_case socket 64 'esc/sock is a socket' "$FSHIELD" fspf addf "$B/w.fspf" /enc/esc "$B/esc" "$B/out"
rm "$B/esc/sock"
# An unreadable source file (as an unprivileged user: root reads everything). Files sort before it, so
# a late failure would have written them: nothing may remain.
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
	U=$T/unpriv
	mkdir -p "$U/src/d"
	for i in 1 2 3; do echo "file $i" >"$U/src/d/a$i"; done
	echo secret >"$U/src/d/z-unreadable"
	chmod 000 "$U/src/d/z-unreadable"
	chmod 755 "$T"
	chown -R 65534:65534 "$U"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
	as_nobody "$FSHIELD" fspf create "$U/w.fspf" >/dev/null
	as_nobody "$FSHIELD" fspf addr "$U/w.fspf" / --encrypted >/dev/null
	before=$(sha256sum "$U/w.fspf")
	st=0
	as_nobody "$FSHIELD" fspf addf "$U/w.fspf" /d "$U/src/d" "$U/out" >"$T/unreadable.out" 2>"$T/unreadable.err" || st=$?
	expect_eq 74 "$st" "addf of an unreadable file"
	grep -q 'src/d/z-unreadable: cannot read it: Permission denied' "$T/unreadable.err" ||
		fail "unreadable: $(cat "$T/unreadable.err")"
	[ ! -e "$U/out" ] || fail "unreadable: output left behind"
	[ "$(sha256sum "$U/w.fspf")" = "$before" ] || fail "unreadable: the fspf changed"
	echo "  unreadable: $(cat "$T/unreadable.err")"
	chmod 700 "$T"
else
	echo "  (unreadable source: skipped, needs root and setpriv)"
fi
bad_case output-not-empty 64 'OUTPUT_DIR must be missing or an empty directory' \
	"$FSHIELD" fspf addf "$B/w.fspf" /enc/sub "$B/src/sub" "$B/out-ok"
bad_case region-change 64 'would change the protection of /enc/ok/a.txt' \
	"$FSHIELD" fspf addr "$B/w.fspf" /enc/ok --authenticated
bad_case bad-path 64 'absolute path without' "$FSHIELD" fspf addf "$B/w.fspf" /enc/../x "$B/src/sub" "$B/out"
echo ok
