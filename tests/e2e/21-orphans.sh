#!/usr/bin/env bash
# Pack files of a commit killed mid-way (orphans) are reported by `verify` as unreferenced notes that the
# next read-write mount removes, and that mount removes them — only once the volume has verified against
# the trust anchor, only files the verified tree does not own, and only names that are pack file names.
# A read-only mount and a refused mount remove nothing.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
: "${BUILD:?set BUILD to the build directory}"
CW=$BUILD/tests/tools/crashwriter
[ -x "$CW" ] || fail "$CW missing"

"$FSHIELD" keygen -o "$KEY"
mkdir -p "$BACK"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" "$BACK" >/dev/null
"$CW" write "$BACK" "$KEY" "$TRUST" 1 >/dev/null
# A commit killed after its chunk data was written leaves the pack file of the round's new file. (The
# next open of the volume removes it, so a second orphan is planted by hand: a pack file copied under the
# name of a file that does not exist.)
(FSHIELD_CRASH_AT=data-synced "$CW" write "$BACK" "$KEY" "$TRUST" 2 >/dev/null 2>&1; exit $?) 2>/dev/null || true
mkdir -p "$BACK/d/77"
cp "$(ls "$BACK"/d/*/*.* | head -n 1)" "$BACK/d/77/0000000000007777.3"
echo junk >"$BACK/d/77/junk"

# orphans LABEL: the unreferenced notes of the last run_verify, as "PATH WHAT" lines.
orphans() {
	python3 - "$VJSON" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1]))["findings"]:
    if f["kind"] == "unreferenced":
        assert f["status"] == 0, f
        print(f["message"].split()[1], "removed" if "the next read-write mount removes it" in f["message"] else "kept")
PY
}

echo "== verify names the orphans and says what the next mount does"
run_verify before "$BACK"
expect_vstatus 0
orphans >"$T/orphans.txt"
sed 's/^/  orphan: /' "$T/orphans.txt"
check "before: the crash orphan and the planted pack-named file will be removed, the junk is left alone"
[ "$(grep -c ' removed$' "$T/orphans.txt")" -ge 2 ] && grep -q '^d/77/0000000000007777.3 removed$' "$T/orphans.txt" &&
	grep -q '^d/77/junk kept$' "$T/orphans.txt" || soft_fail "before: unexpected notes" "$T/orphans.txt" "$VOUT"
REMOVED=$(awk '$2 == "removed" { print $1 }' "$T/orphans.txt")

echo "== a refused mount removes nothing"
d=$(fresh tampered)
sql "$d/meta.db" "UPDATE buckets SET digest=zeroblob(32) WHERE b=0"
s=0
"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$d" "$MNT" 2>"$T/tampered.err" || s=$?
if is_mounted "$MNT"; then "$FSHIELD" umount "$MNT" || true; fi
check "tampered: mount refused (1) and every orphan is still there"
[ "$s" -eq 1 ] || soft_fail "tampered: mount exited $s" "$T/tampered.err"
for f in $REMOVED; do [ -e "$d/$f" ] || soft_fail "tampered: $f was removed by a refused mount"; done

echo "== a read-only mount removes nothing"
fs_mount -o ro
fs_umount
check "ro: every orphan is still there"
for f in $REMOVED; do [ -e "$BACK/$f" ] || soft_fail "ro: $f was removed by a read-only mount"; done

echo "== the next read-write mount removes them"
"$FSHIELD" mount -f --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT" 2>"$T/rw.log" &
EXTRA_PIDS+=("$!")
wait_until 30 is_mounted "$MNT" || fail "rw: not mounted: $(cat "$T/rw.log")"
fs_umount
check "rw: every orphan is gone, the junk stays, the log says how many were removed"
for f in $REMOVED; do [ ! -e "$BACK/$f" ] || soft_fail "rw: $f is still there" "$T/rw.log"; done
[ -e "$BACK/d/77/junk" ] || soft_fail "rw: the junk file was removed"
grep -Eq "removed $(wc -w <<<"$REMOVED") unreferenced pack files" "$T/rw.log" || soft_fail "rw: no log line" "$T/rw.log"
run_verify after "$BACK"
expect_vstatus 0
check "after: the only unreferenced note is the junk file"
[ "$(orphans)" = "d/77/junk kept" ] || soft_fail "after: notes: $(orphans)" "$VOUT"
check "after: the volume holds its committed round"
"$CW" check "$BACK" "$KEY" "$TRUST" >"$T/check.out" 2>&1 || soft_fail "after: crashwriter check failed" "$T/check.out"
grep -q '^round 1 version' "$T/check.out" || soft_fail "after: not round 1" "$T/check.out"
finish
