#!/usr/bin/env bash
# fshield image: a container root file system (a directory, then a gzip'd tar of it) with an application
# in /app (encrypted) and a copy of python3's json and email packages in /usr/lib/pyapp (authenticated) is
# protected in one step. Checks the output (protected tree without plaintext of /app, sealed fspf, session
# snippet with the key and tag and mode 0600, a Dockerfile without the key), mounts the tree with the key
# and tag from the snippet, runs the application from the mount and compares every protected file. Bad
# input: a special file under a protected path in the tar, a missing path, a non-empty OUT_DIR.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

PYLIB=$(python3 -c 'import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))')
RF=$T/rootfs
mkdir -p "$RF/app" "$RF/usr/lib/pyapp" "$RF/etc" "$RF/usr/bin"
cp -a "$PYLIB/json" "$PYLIB/email" "$RF/usr/lib/pyapp/"
cat >"$RF/app/main.py" <<'PY'
# IMAGE-APP-MARKER
import os, sys
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "usr/lib/pyapp"))
import json, email.utils
assert json.__file__.startswith(root + "/"), json.__file__
print(json.dumps({"ok": True, "addr": email.utils.parseaddr("A <a@b.c>")[1]}))
PY
ln -s main.py "$RF/app/run.py"
echo 'root:x:0:0' >"$RF/etc/passwd"
echo '#!/bin/sh' >"$RF/usr/bin/tool"

# keys_from_yaml FILE: prints "KEY TAG" from a session snippet
keys_from_yaml() {
	python3 - "$1" <<'EOF'
import re, sys, yaml
f = yaml.safe_load(open(sys.argv[1]))["fspf"]
assert re.fullmatch("[0-9a-f]{64}", f["key"]) and re.fullmatch("[0-9a-f]{64}", f["tag"]), f
print(f["key"], f["tag"])
EOF
}
MT='%T@' # mtime as compared; a plain tar keeps whole seconds only
tree_state() {
	(cd "$1" && find . -mindepth 1 \( -type f -o -type l \) -printf "%y %m %s $MT %l %p\n" | LC_ALL=C sort -k6 &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
check_out() { # OUT_DIR PRINTED_LINE
	local out=$1 line=$2 k g
	for f in protected fshield.fspf session.yml Dockerfile; do [ -e "$out/$f" ] || fail "$out/$f missing"; done
	[ ! -e "$out/.rootfs-extract" ] || fail "scratch directory left in $out"
	expect_eq 600 "$(stat -c %a "$out/session.yml")" "session.yml mode"
	read -r k g < <(keys_from_yaml "$out/session.yml")
	grep -q "key: $k tag: $g\$" <<<"$line" || fail "printed key and tag differ from session.yml: $line"
	! grep -rq IMAGE-APP-MARKER "$out" || fail "plaintext of /app in $out"
	! grep -rlq "$k" "$out/protected" "$out/Dockerfile" "$out/fshield.fspf" || fail "the key outside session.yml"
	[ ! -e "$out/protected/etc" ] && [ ! -e "$out/protected/usr/bin" ] || fail "unprotected paths copied"
	grep -q '^COPY protected/ /fshield/protected/$' "$out/Dockerfile" || fail "Dockerfile: no COPY of the tree"
	grep -q '^COPY fshield.fspf /fshield/fshield.fspf$' "$out/Dockerfile" || fail "Dockerfile: no COPY of the fspf"
	python3 -c 'import sys, yaml; p = yaml.safe_load(open(sys.argv[1]))["volumes"][0]["paths"]
sys.exit(0 if {"path": "/app", "protection": "encrypted"} in p else 1)' "$out/session.yml" ||
		fail "session.yml does not list /app as encrypted"
	"$FSHIELD" fspf verify --key-fd 3 --tag-fd 4 "$out/fshield.fspf" "$out/protected" 3<<<"$k" 4<<<"$g" >/dev/null ||
		fail "fspf verify of $out"
	"$FSHIELD" mount --fspf "$out/fshield.fspf" --fspf-key-fd 3 --fspf-tag-fd 4 "$out/protected" "$MNT" 3<<<"$k" 4<<<"$g"
	is_mounted "$MNT" || fail "not mounted"
	expect_eq '{"ok": true, "addr": "a@b.c"}' "$(python3 "$MNT/app/run.py")" "the application's output"
	[ "$(tree_state "$RF/app")" = "$(tree_state "$MNT/app")" ] || fail "/app differs"
	[ "$(tree_state "$RF/usr/lib/pyapp")" = "$(tree_state "$MNT/usr/lib/pyapp")" ] || fail "/usr/lib/pyapp differs"
	[ ! -e "$MNT/etc" ] || fail "/etc is served"
	"$FSHIELD" umount "$MNT" || fail "umount exited $?"
}

echo "== from a directory"
line=$("$FSHIELD" image --from "$RF" --to "$T/out1" --encrypt /app --authenticate /usr/lib/pyapp --name demo)
echo "  $line"
check_out "$T/out1" "$line"
[ "$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$T/out1/session.yml")" = demo ] ||
	fail "session name"

echo "== from a tar archive (gzip, as made by 'tar' or 'docker export')"
tar -C "$RF" -czf "$T/rootfs.tar.gz" .
MT='%Ts'
line=$("$FSHIELD" image --from "$T/rootfs.tar.gz" --to "$T/out2" --encrypt /app --authenticate /usr/lib/pyapp)
check_out "$T/out2" "$line"
"$FSHIELD" image --json --from "$T/rootfs.tar.gz" --to "$T/out3" --encrypt /app --authenticate /usr/lib/pyapp |
	python3 -c 'import json, sys; o = json.load(sys.stdin); assert len(o["key"]) == 64 and len(o["tag"]) == 64, o'

echo "== bad input: nothing left behind"
python3 - "$T/special.tar" <<'EOF'
import io, tarfile, sys
with tarfile.open(sys.argv[1], "w") as t:
    for d in ("app",):
        i = tarfile.TarInfo(d); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
    data = b"print(1)\n"
    i = tarfile.TarInfo("app/a.py"); i.size = len(data); t.addfile(i, io.BytesIO(data))
    i = tarfile.TarInfo("app/zz-null"); i.type = tarfile.CHRTYPE; i.devmajor, i.devminor = 1, 3; t.addfile(i)
EOF
st=0
"$FSHIELD" image --from "$T/special.tar" --to "$T/bad1" --encrypt /app 2>"$T/bad1.err" || st=$?
expect_eq 64 "$st" "image with a device node under /app"
grep -q '/app/zz-null is a special file (character device)' "$T/bad1.err" || fail "message: $(cat "$T/bad1.err")"
[ ! -e "$T/bad1" ] || fail "output left behind: $(find "$T/bad1" | head)"
echo "  $(cat "$T/bad1.err")"
st=0
"$FSHIELD" image --from "$RF" --to "$T/bad2" --encrypt /app --authenticate /opt/none 2>"$T/bad2.err" || st=$?
expect_eq 64 "$st" "image with a missing path"
grep -q '/opt/none: not found in ROOTFS' "$T/bad2.err" || fail "message: $(cat "$T/bad2.err")"
[ ! -e "$T/bad2" ] || fail "output left behind for a missing path"
mkdir "$T/bad3" && touch "$T/bad3/keep"
expect_status 64 "$FSHIELD" image --from "$RF" --to "$T/bad3" --encrypt /app 2>/dev/null
[ "$(ls -A "$T/bad3")" = keep ] || fail "a non-empty OUT_DIR was changed"
ln -s /etc/passwd "$RF/app/passwd"
st=0
"$FSHIELD" image --from "$RF" --to "$T/bad4" --encrypt /app 2>"$T/bad4.err" || st=$?
expect_eq 64 "$st" "image with a link leaving the protected paths"
grep -q 'points outside the protected tree' "$T/bad4.err" || fail "message: $(cat "$T/bad4.err")"
[ ! -e "$T/bad4" ] || fail "output left behind for a bad link"
echo ok
