#!/usr/bin/env bash
# Forensics: every finding of `fshield verify` names the backing files it is about (a pack file and slot,
# rows of a table of meta.db, volume.hdr), in text and in --json. For each attack on a copy of a volume,
# the files and rows named are exactly the ones changed, and restoring exactly those from the untouched
# copy (the auditor's workflow: a slot's bytes, the rows the SQL condition selects, a whole file) makes
# verify clean again. Also: fspf show --tag without the key, and a mount over a non-empty directory.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
vol_init "$CS"
fs_mount
mkdir -p "$MNT/dir"
head -c 20000 /dev/urandom >"$MNT/a"     # chunks 0-4
head -c 10000 /dev/urandom >"$MNT/dir/b" # chunks 0-2
head -c 9000 /dev/urandom >"$MNT/dir/c"  # chunks 0-2
IA=$(stat -c %i "$MNT/a")
IB=$(stat -c %i "$MNT/dir/b")
IC=$(stat -c %i "$MNT/dir/c")
IDIR=$(stat -c %i "$MNT/dir")
fs_umount
PA=$(pack_of "$BACK" "$IA") PB=$(pack_of "$BACK" "$IB") PC=$(pack_of "$BACK" "$IC")
PA=${PA#"$BACK"/} PB=${PB#"$BACK"/} PC=${PC#"$BACK"/}
NB=4096
bucket_of() { echo $(($1 & (NB - 1))); }
# shares_bucket INO: another inode row is filed in INO's bucket (then its bucket's finding names the bucket).
shares_bucket() {
	[ "$(sqlite3 "file:$BACK/meta.db?mode=ro&immutable=1" "SELECT count(*) FROM inodes WHERE bkt=$(bucket_of "$1")")" -gt 1 ]
}
echo "volume: a=$IA ($PA) b=$IB ($PB) c=$IC ($PC) dir=$IDIR"

run_verify clean "$BACK"
expect_vstatus 0

# expect_backing SPEC...: the backing entries of the last --json output's violations (notes aside) are
# exactly SPEC, each FILE, FILE#SLOT or FILE:TABLE:ROW (ROW "*" for all rows); and the text output names
# the same, one "  backing:" line after each violation.
expect_backing() {
	check "verify ($(basename "$VJSON" .json)) names exactly: $*"
	python3 - "$VJSON" "$VOUT" "$CS" "$@" <<'EOF' || soft_fail "$(basename "$VJSON" .json): not exactly the backing $*" "$VJSON" "$VOUT"
import json, sys
o = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
cs = int(sys.argv[3])
want = set(sys.argv[4:])
got = set()
for f in o["findings"]:
    if f["status"] == 0:
        continue
    assert f["backing"], "a violation names no backing: %r" % f
    for b in f["backing"]:
        if "slot" in b:
            assert b["offset"] == b["slot"] * cs, b
            got.add("%s#%d" % (b["file"], b["slot"]))
        elif "table" in b:
            got.add("%s:%s:%s" % (b["file"], b["table"], b["row"] if b["row"] is not None else "*"))
        else:
            got.add(b["file"])
if got != want:
    print("named: %s\nwanted: %s" % (sorted(got), sorted(want)), file=sys.stderr)
    sys.exit(1)
# Text: each violation's line is followed by its backing line.
def as_text(b):
    if "slot" in b:
        return "%s slot %d (byte %d)" % (b["file"], b["slot"], b["offset"])
    if "table" in b:
        return "%s table %s %s" % (b["file"], b["table"], "rows " + b["row"] if b["row"] is not None else "all rows")
    return b["file"]
for f in o["findings"]:
    i = text.index(f["message"])
    line = "  backing: " + "; ".join(as_text(b) for b in f["backing"])
    assert text[i + 1] == line, (text[i + 1], line)
EOF
}

# restore_named DIR: restores from $BACK exactly what the last --json output names: a slot's bytes, the
# rows an SQL condition selects (deleted, then copied from the backup's store), or a whole file.
restore_named() {
	python3 - "$VJSON" "$BACK" "$1" "$CS" <<'EOF'
import json, os, shutil, sqlite3, sys
o = json.load(open(sys.argv[1]))
src, dst, cs = sys.argv[2], sys.argv[3], int(sys.argv[4])
done = set()
for f in o["findings"]:
    for b in f["backing"]:
        key = json.dumps(b, sort_keys=True)
        if key in done:
            continue
        done.add(key)
        s, d = os.path.join(src, b["file"]), os.path.join(dst, b["file"])
        if "slot" in b and os.path.exists(d):
            with open(s, "rb") as fi:
                fi.seek(b["offset"]); data = fi.read(cs)
            with open(d, "r+b") as fo:
                fo.seek(b["offset"]); fo.write(data)
            print("  restored %s slot %d" % (b["file"], b["slot"]))
        elif "table" in b:
            c = sqlite3.connect(d)
            c.execute("ATTACH ? AS bak", ("file:%s?mode=ro&immutable=1" % s,))
            where = b["row"] or "1"
            t = b["table"]
            c.execute("DELETE FROM main.%s WHERE %s" % (t, where))
            c.execute("INSERT INTO main.%s SELECT * FROM bak.%s WHERE %s" % (t, t, where))
            c.commit()
            c.close()
            print("  restored %s table %s rows %s" % (b["file"], t, where))
        elif f["status"] != 0:
            if os.path.exists(s):
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copy2(s, d)
            else:
                os.unlink(d)
            print("  restored %s" % b["file"])
EOF
}

# restored LABEL DIR: restore what was named, then verify is clean.
restored() {
	restore_named "$2"
	run_verify "$1-restored" "$2"
	expect_vstatus 0
}

echo "== a byte of chunk 2 of /a changed in its pack file"
d=$(fresh flip)
flip_byte "$d/$PA" $(($(slot_of "$BACK" "$IA" 2) * CS + 7))
run_verify flip "$d"
expect_vstatus 1
expect_backing "$PA#$(slot_of "$BACK" "$IA" 2)"
restored flip "$d"

echo "== the inode row of /dir/b deleted"
d=$(fresh del-inode)
sql "$d/meta.db" "DELETE FROM inodes WHERE ino=$IB"
run_verify del-inode "$d"
expect_vstatus 1
# the bucket of the row now disagrees with its digest (its rows, all of them), and the entry and the
# chunk rows of /dir/b point at the row that is missing
expect_backing "meta.db:inodes:bkt=$(bucket_of "$IB")" "meta.db:inodes:ino=$IB"
restored del-inode "$d"

echo "== one byte of the inode row of /a changed"
d=$(fresh row-inode)
flip_row_byte "$d/meta.db" inodes ino "$IA" 40
run_verify row-inode "$d"
expect_vstatus 1
if shares_bucket "$IA"; then
	expect_backing "meta.db:inodes:ino=$IA" "meta.db:inodes:bkt=$(bucket_of "$IA")"
else
	expect_backing "meta.db:inodes:ino=$IA"
fi
restored row-inode "$d"

echo "== the bucket row of /a's bucket changed (another bucket's digest)"
d=$(fresh bucket)
BA=$(bucket_of "$IA")
sql "$d/meta.db" "UPDATE buckets SET digest=(SELECT digest FROM buckets WHERE b=$(((BA + 1) % NB))) WHERE b=$BA"
run_verify bucket "$d"
expect_vstatus 1
expect_backing "meta.db:buckets:b=$BA"
restored bucket "$d"

echo "== the row of chunk 1 of /a deleted"
d=$(fresh del-chunk)
sql "$d/meta.db" "DELETE FROM chunks WHERE ino=$IA AND idx=1"
run_verify del-chunk "$d"
expect_vstatus 1
expect_backing "meta.db:chunks:ino=$IA"
restored del-chunk "$d"

echo "== the entry rows of /dir deleted"
d=$(fresh del-dirents)
sql "$d/meta.db" "DELETE FROM dirents WHERE parent=$IDIR"
run_verify del-dirents "$d"
expect_vstatus 1
expect_backing "meta.db:dirents:parent=$IDIR"
restored del-dirents "$d"

echo "== the entry row of /dir/c changed"
d=$(fresh dirent-byte)
MACC=$(python3 - "$d/meta.db" "$IDIR" "$IC" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT name_mac, row FROM dirents WHERE parent=?", (int(sys.argv[2]),)).fetchall()
# the entry of c is the one whose row changes: any, they are sealed; take the first, by name_mac
m, r = sorted(rows)[0]
r = bytearray(r); r[-1] ^= 1
c.execute("UPDATE dirents SET row=? WHERE parent=? AND name_mac=?", (bytes(r), int(sys.argv[2]), m))
c.commit()
print(m.hex())
EOF
)
run_verify dirent-byte "$d"
expect_vstatus 1
# the changed entry names its row; the inode it named is then reachable no more: its entry is in /dir
expect_backing "meta.db:dirents:parent=$IDIR AND name_mac=X'$MACC'" "meta.db:dirents:parent=$IDIR"
restored dirent-byte "$d"

echo "== the pack files of /dir/b and /dir/c swapped"
d=$(fresh swap-packs)
mv "$d/$PB" "$d/swap.tmp" && mv "$d/$PC" "$d/$PB" && mv "$d/swap.tmp" "$d/$PC"
run_verify swap-packs "$d"
expect_vstatus 1
expect_backing "$PB#$(slot_of "$BACK" "$IB" 0)" "$PB#$(slot_of "$BACK" "$IB" 1)" "$PB#$(slot_of "$BACK" "$IB" 2)" \
	"$PC#$(slot_of "$BACK" "$IC" 0)" "$PC#$(slot_of "$BACK" "$IC" 1)" "$PC#$(slot_of "$BACK" "$IC" 2)"
restored swap-packs "$d"

echo "== the pack file of /dir/c deleted"
d=$(fresh missing)
rm "$d/$PC"
run_verify missing "$d"
expect_vstatus 1
expect_backing "$PC"
restored missing "$d"

echo "== a byte of volume.hdr's MAC changed"
d=$(fresh hdr)
flip_byte "$d/volume.hdr" 230
run_verify hdr "$d"
expect_vstatus 1
expect_backing volume.hdr
restored hdr "$d"

echo "== meta.db replaced by an older copy (a rollback)"
OLD=$(fresh old)
fs_mount
echo more >"$MNT/dir/new"
fs_umount
d=$(fresh rollback)
cp "$OLD/meta.db" "$d/meta.db"
run_verify rollback "$d"
expect_vstatus 2
expect_backing meta.db
check "rollback: the rollback finding names meta.db as a whole"
python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
assert any(f["kind"] == "rollback" and f["backing"] == [{"file": "meta.db"}] for f in o["findings"]), o' "$VJSON" ||
	soft_fail "rollback: no rollback finding naming meta.db" "$VJSON"
restored rollback "$d"

echo "== fspf show --tag without the key"
mkdir -p "$T/fsrc/app"
echo 'print(1)' >"$T/fsrc/app/x.py"
W=$T/app.fspf
"$FSHIELD" fspf create "$W" >/dev/null
"$FSHIELD" fspf addr "$W" / --encrypted >/dev/null
"$FSHIELD" fspf addf "$W" /app "$T/fsrc/app" "$T/froot/app" >/dev/null
"$FSHIELD" fspf encrypt "$W" >"$T/encrypt.out"
FKEY=$(sed -n 's/.* key: \([0-9a-f]*\) tag: .*/\1/p' "$T/encrypt.out")
FTAG=$(sed -n 's/.* tag: \([0-9a-f]*\)$/\1/p' "$T/encrypt.out")
expect_eq "$FTAG" "$("$FSHIELD" fspf show --tag --key-fd 3 "$W" 3<<<"$FKEY")" "show --tag with the key"
expect_cmd 64 show-tag-nokey "$FSHIELD" fspf show --tag "$W"
check "show --tag without the key prints nothing on standard output and says why"
[ ! -s "$T/show-tag-nokey.out" ] && grep -q 'the tag is a hash of the whole file keyed with the fspf.s key' "$T/show-tag-nokey.err" ||
	soft_fail "show --tag without the key" "$T/show-tag-nokey.out" "$T/show-tag-nokey.err"
expect_cmd 0 show-nokey "$FSHIELD" fspf show "$W"
ID=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[16:32].hex())' "$W")
H=$(b2sum -l 256 "$W" | cut -d' ' -f1)
head -n 1 "$T/show-nokey.out" >"$T/show-nokey.first"
expect_one_line "$T/show-nokey.first" \
	"^fspf $W: encrypted, id $ID, body cipher xchacha20-poly1305, $(stat -c %s "$W") bytes, blake2b-256 $H\$"

echo "== a mount over a non-empty directory"
mkdir -p "$T/full"
echo keep >"$T/full/own-file"
expect_cmd 64 mount-nonempty "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$T/full"
check "mount-nonempty: refused with a message naming the mount point and -o nonempty; nothing mounted"
grep -q "the mount point $T/full is not empty (it holds 'own-file').*-o nonempty" "$T/mount-nonempty.err" &&
	! is_mounted "$T/full" || soft_fail "mount-nonempty: not refused as expected" "$T/mount-nonempty.err"
expect_cmd 64 helper-nonempty "$BUILD/mount.fshield" "$BACK" "$T/full" -o "key_file=$KEY,trust=$TRUST"
! is_mounted "$T/full" || fail "the helper mounted over a non-empty directory"
"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o nonempty "$BACK" "$T/full"
check "-o nonempty: mounted over the directory, its file hidden"
is_mounted "$T/full" && [ -e "$T/full/a" ] && [ ! -e "$T/full/own-file" ] || soft_fail "-o nonempty did not mount over it"
"$FSHIELD" umount "$T/full"
expect_eq keep "$(cat "$T/full/own-file")" "the hidden file after the unmount"
"$BUILD/mount.fshield" "$BACK" "$T/full" -o "key_file=$KEY,trust=$TRUST,nonempty"
is_mounted "$T/full" || fail "the helper with -o nonempty did not mount"
"$FSHIELD" umount "$T/full"
# An empty mount point needs nothing.
fs_mount
is_mounted "$MNT" || fail "the empty mount point was refused"
fs_umount
finish
