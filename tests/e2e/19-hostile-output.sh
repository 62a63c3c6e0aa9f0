#!/usr/bin/env bash
# Hostile names in every document fshield writes: file names with quotes, backslashes, a newline, YAML
# and JSON syntax, control characters, bytes that are not UTF-8 and a long one reach `verify --json`,
# `fspf verify --json`, `fspf encrypt --json`, `info --json` and `image --json`; a session name and
# protected paths with `: "`, quotes and a newline reach the session snippet and the Dockerfile of
# `fshield image`. Each document must parse (strict JSON, YAML) and give back the exact input (names that
# are not UTF-8 by the documented KEY_b64 rule); values the YAML or the Dockerfile cannot carry are
# refused before anything is written.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
H=(python3 "$(dirname "$0")/hostile-output.py")
python3 -c 'import yaml' || fail "python3 has no yaml module (python3-yaml): the YAML cannot be checked"
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

CS=4096
echo "== verify --json: a finding about each hostile file name"
vol_init "$CS"
fs_mount
mkdir "$MNT/d"
"${H[@]}" create "$MNT/d" 5000
mapfile -t INOS < <("${H[@]}" inodes "$MNT/d")
fs_umount
d=$(fresh tampered)
for ino in "${INOS[@]}"; do
	p=$(pack_of "$d" "$ino")
	flip_byte "$p" $(($(slot_of "$d" "$ino" 0) * CS + 10))
done
check "verify --json parses and names every file exactly"
st=0
"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" --json "$d" >"$T/v.json" 2>"$T/v.err" || st=$?
[ "$st" -eq 1 ] || soft_fail "verify exited $st, expected 1 (tamper)" "$T/v.err"
"${H[@]}" findings "$T/v.json" "$(hex /d/)" modified || soft_fail "verify --json" "$T/v.json"
check "fshield-verify (the small program) writes the same document"
if [ -x "${BUILD:-}/fshield-verify" ]; then
	"$BUILD/fshield-verify" --key-file "$KEY" --trust "$TRUST" --json "$d" >"$T/sv.json" 2>&1 || true
	"${H[@]}" findings "$T/sv.json" "$(hex /d/)" modified || soft_fail "fshield-verify --json" "$T/sv.json"
fi

echo "== info --json: a trust store whose path is hostile"
# Printable: anchor.uri is an unauthenticated hint, shown with anything else replaced by '?'.
ODD=$T/'tr"ust: "\ {a: [b]} #x'.db
mkdir -p "$T/b2"
"$FSHIELD" init --key-file "$KEY" --trust "file:$ODD" --chunk-size "$CS" "$T/b2" >/dev/null
check "info --json parses and gives back the anchor URI"
"$FSHIELD" info --json "$T/b2" >"$T/info.json" 2>"$T/info.err" || soft_fail "info exited $?" "$T/info.err"
"${H[@]}" field "$T/info.json" anchor_uri "$(hex "file:$ODD")" || soft_fail "info --json anchor_uri" "$T/info.json"
if [ -x "${BUILD:-}/fshield-info" ]; then
	"$BUILD/fshield-info" --json "$T/b2" >"$T/sinfo.json" 2>&1 || true
	"${H[@]}" field "$T/sinfo.json" anchor_uri "$(hex "file:$ODD")" || soft_fail "fshield-info --json" "$T/sinfo.json"
fi

echo "== fspf: encrypt --json with a hostile manifest name, verify --json with hostile file names"
SRC=$T/src
mkdir -p "$SRC/app"
"${H[@]}" create "$SRC/app" 5000
W=$T/$'w"\n\xff'.fspf
"$FSHIELD" fspf create "$W" >/dev/null
"$FSHIELD" fspf addr "$W" / --not-protected >/dev/null
"$FSHIELD" fspf addr "$W" /app --encrypted --chunk-size 4096 >/dev/null
"$FSHIELD" fspf addf "$W" /app "$SRC/app" "$T/root/app" >/dev/null
check "fspf encrypt --json parses and gives back the manifest's name"
(umask 077 && "$FSHIELD" fspf encrypt --json "$W" >"$T/enc.json")
"${H[@]}" field "$T/enc.json" fspf "$(hex "$W")" || soft_fail "fspf encrypt --json" "$T/enc.json"
python3 -c 'import json, sys; o = json.load(open(sys.argv[1])); open(sys.argv[2], "w").write(o["key"]); open(sys.argv[3], "w").write(o["tag"])' \
	"$T/enc.json" "$T/fspf.key" "$T/fspf.tag"
chmod 600 "$T/fspf.key" "$T/fspf.tag"
for f in "$T/root/app"/*; do flip_byte "$f" 100; done
check "fspf verify --json parses and names every file exactly"
st=0
"$FSHIELD" fspf verify --json --key-file "$T/fspf.key" --tag-file "$T/fspf.tag" "$W" "$T/root" >"$T/fv.json" || st=$?
[ "$st" -eq 1 ] || soft_fail "fspf verify exited $st, expected 1" "$T/fv.json"
"${H[@]}" findings "$T/fv.json" "$(hex /app/)" modified || soft_fail "fspf verify --json" "$T/fv.json"

echo "== image: hostile OUT_DIR, session name and protected paths"
RF=$T/rootfs
P1=$'/we"ird: "x'
P2=$'/new\nline \\ \'q\' {a: [b]}'
mkdir -p "$RF/app" "$RF$P1" "$RF$P2"
"${H[@]}" create "$RF/app" 100
echo x >"$RF$P1/f"
echo y >"$RF$P2/g"
NAME=$'my: "sess\' $(touch pwned) `x` #c'"$(printf 'N%.0s' {1..3000})"
OUT=$T/$'img"3\\ \n\xff'
check "image --json parses and gives back OUT_DIR"
"$FSHIELD" image --json --from "$RF" --to "$OUT" --encrypt /app --authenticate "$P1" --encrypt "$P2" \
	--name "$NAME" >"$T/img.json" 2>"$T/img.err" || soft_fail "image exited $?" "$T/img.err"
"${H[@]}" field "$T/img.json" out "$(hex "$OUT")" || soft_fail "image --json out" "$T/img.json"
"${H[@]}" field "$T/img.json" fspf "$(hex "$OUT/fshield.fspf")" || soft_fail "image --json fspf" "$T/img.json"
check "session.yml parses and gives back the session name and the paths"
"${H[@]}" yaml "$OUT/session.yml" "$(hex "$NAME")" "$(hex /app):encrypted" "$(hex "$P1"):authenticated" \
	"$(hex "$P2"):encrypted" || soft_fail "session.yml" "$OUT/session.yml"
check "the Dockerfile has only its own instructions; its comments give back the name and the paths"
"${H[@]}" dockerfile "$OUT/Dockerfile" "$(hex "$NAME")" "$(hex /app):encrypted" "$(hex "$P1"):authenticated" \
	"$(hex "$P2"):encrypted" || soft_fail "Dockerfile" "$OUT/Dockerfile"

# refused NAME ARGS...: image exits 64 with a message and leaves no OUT_DIR.
refused() {
	local label=$1 st=0
	shift
	check "image refuses $label"
	"$FSHIELD" image --from "$RF" --to "$T/refused" --encrypt /app "$@" >"$T/r.out" 2>"$T/r.err" || st=$?
	[ "$st" -eq 64 ] && [ -s "$T/r.err" ] || soft_fail "$label: exit $st" "$T/r.out" "$T/r.err"
	[ ! -e "$T/refused" ] || soft_fail "$label: $T/refused was left behind"
	rm -rf "$T/refused"
}
refused "a session name that is not UTF-8" --name $'a\xffb'
refused "a session name with a newline" --name $'a\nRUN evil'
refused "a base image with a newline" --base $'debian\nRUN evil'
refused "a base image with a space" --base 'debian --privileged'
refused "a base image with a variable" --base '${X}'
mkdir -p "$RF"/$'bad\xff'
refused "a protected path that is not UTF-8" --authenticate /$'bad\xff'
finish
