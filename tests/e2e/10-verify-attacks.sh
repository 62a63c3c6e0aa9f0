#!/usr/bin/env bash
# `fshield verify` against an adversary who edits the backing directory offline: every attack of the
# threat model on a fresh copy of a real volume (built through a mount), each checked as text and as
# --json for the exit status, the kind of finding, and where the contract asks for it the file's path in
# the volume and the chunk with its byte range. Every run also checks that verify changed nothing: not
# the backing directory, not the trust store, and no private copy left behind.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
vol_init "$CS"
fs_mount
mkdir -p "$MNT/V1/docs" "$MNT/V2/deep"
echo 0 >"$MNT/V1/num"
head -c 20000 /dev/urandom >"$MNT/V1/docs/a" # chunks 0-4, the last 3616 bytes
head -c 30000 /dev/urandom >"$MNT/V2/b"      # chunks 0-7, the last 1328 bytes
head -c 10000 /dev/urandom >"$MNT/V2/deep/c" # chunks 0-2, the last 1808 bytes
INUM=$(stat -c %i "$MNT/V1/num")
IA=$(stat -c %i "$MNT/V1/docs/a")
IB=$(stat -c %i "$MNT/V2/b")
IC=$(stat -c %i "$MNT/V2/deep/c")
IDEEP=$(stat -c %i "$MNT/V2/deep")
IV1=$(stat -c %i "$MNT/V1")
IV2=$(stat -c %i "$MNT/V2")
fs_umount
# Pack files relative to the backing directory: the same in every copy.
PA=$(pack_of "$BACK" "$IA")
PB=$(pack_of "$BACK" "$IB")
PC=$(pack_of "$BACK" "$IC")
PA=${PA#"$BACK"/} PB=${PB#"$BACK"/} PC=${PC#"$BACK"/}
echo "volume: num=$INUM a=$IA ($PA) b=$IB ($PB) c=$IC ($PC)"

echo "== clean volume"
run_verify clean "$BACK"
expect_vstatus 0
expect_text '^verify: ok: volume [0-9a-f]{32} version [0-9]+ root [0-9a-f]{64} \(4 files, 5 directories, 17 chunks, 60002 bytes\)$'
check "clean: --json has no findings and counts 17 chunks"
[ "$(json_field findings)" = "[]" ] && [ "$(json_field chunks)" = 17 ] || soft_fail "clean: unexpected JSON" "$VJSON"
V0=$(json_field version)

echo "== a byte flipped in chunk 3 of /V2/b"
d=$(fresh flip)
flip_byte "$d/$PB" $(($(slot_of "$BACK" "$IB" 3) * CS + 100))
run_verify flip "$d"
expect_vstatus 1
expect_finding modified /V2/b 3 12288 16383
expect_text '^integrity violation: /V2/b chunk 3 \(bytes 12288-16383\): chunk fails authentication'
expect_text '^verify: 1 finding: tamper \(1\)$'
expect_no_finding_about /V1/docs/a

echo "== the pack file of /V2/deep/c truncated inside its last chunk"
d=$(fresh truncated)
truncate -s $(($(slot_of "$BACK" "$IC" 2) * CS + 1000)) "$d/$PC"
run_verify truncated "$d"
expect_vstatus 1
expect_finding truncated /V2/deep/c 2 8192 9999
expect_text '^integrity violation: /V2/deep/c chunk 2 \(bytes 8192-9999\): chunk data truncated'

echo "== chunk 1 of /V1/docs/a zeroed"
d=$(fresh zeroed)
zero_range "$d/$PA" $(($(slot_of "$BACK" "$IA" 1) * CS)) "$CS"
run_verify zeroed "$d"
expect_vstatus 1
expect_finding modified /V1/docs/a 1 4096 8191
expect_text '^integrity violation: /V1/docs/a chunk 1 \(bytes 4096-8191\): '

echo "== chunks 0 and 5 of /V2/b swapped within its pack file"
d=$(fresh swap-within)
swap_ranges "$d/$PB" $(($(slot_of "$BACK" "$IB" 0) * CS)) $(($(slot_of "$BACK" "$IB" 5) * CS)) "$CS"
run_verify swap-within "$d"
expect_vstatus 1
expect_finding modified /V2/b 0 0 4095
expect_finding modified /V2/b 5 20480 24575
expect_text '^verify: 2 findings: tamper \(1\)$'

echo "== chunk 2 of /V1/docs/a copied over chunk 2 of /V2/b"
d=$(fresh swap-across)
copy_range "$d/$PA" $(($(slot_of "$BACK" "$IA" 2) * CS)) "$d/$PB" $(($(slot_of "$BACK" "$IB" 2) * CS)) "$CS"
run_verify swap-across "$d"
expect_vstatus 1
expect_finding modified /V2/b 2 8192 12287
expect_no_finding_about /V1/docs/a

# A newer state of the volume: /V2/b rewritten through a mount, on a copy with its own trust store.
NEW=$(fresh new)
NEWTRUST=$(copy_trust new-trust.db)
"$FSHIELD" mount --key-file "$KEY" --trust "$NEWTRUST" "$NEW" "$MNT"
is_mounted "$MNT" || fail "the copy did not mount"
echo "== verify while a daemon has the volume open"
run_verify busy "$NEW" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 7
expect_finding busy - -
head -c 30000 /dev/urandom >"$MNT/V2/b"
expect_eq "$IB" "$(stat -c %i "$MNT/V2/b")" "inode of /V2/b after the rewrite"
"$FSHIELD" umount "$MNT" || fail "umount of the copy exited $?"
run_verify new "$NEW" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 0
V1=$(json_field version)
check "the rewrite made a new version ($V0 -> $V1) and a new pack file content"
[ "$V1" -gt "$V0" ] && ! cmp -s "$BACK/$PB" "$NEW/$PB" || soft_fail "no new version or pack content ($V0 -> $V1)"

echo "== /V2/b's pack file and its rows in inodes and chunks replaced by the older copies"
d=$(fresh replay-file "$NEW")
cp "$BACK/$PB" "$d/$PB"
sqlite3 "$d/meta.db" "ATTACH 'file:$BACK/meta.db?mode=ro&immutable=1' AS old;
	BEGIN;
	DELETE FROM main.inodes WHERE ino=$IB; INSERT INTO main.inodes SELECT * FROM old.inodes WHERE ino=$IB;
	DELETE FROM main.chunks WHERE ino=$IB; INSERT INTO main.chunks SELECT * FROM old.chunks WHERE ino=$IB;
	COMMIT;"
check "the replayed rows differ from the current ones"
[ "$(sqlite3 "file:$d/meta.db?mode=ro" "SELECT hex(row) FROM inodes WHERE ino=$IB")" != \
	"$(sqlite3 "file:$NEW/meta.db?mode=ro&immutable=1" "SELECT hex(row) FROM inodes WHERE ino=$IB")" ] ||
	soft_fail "replay-file: the old and the new inode rows of /V2/b are the same"
run_verify replay-file "$d" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 1
expect_finding_ino metadata "$IB"
# Its directory entry is intact, so a path leads to the inode: the finding names it by that path
# ("[inode N]" is only for rows no path leads to).
expect_finding metadata /V2/b -
expect_text '^integrity violation: /V2/b: '
expect_no_finding_about /V1/docs/a

echo "== one chunk of /V2/b replaced by its older version"
d=$(fresh replay-chunk "$NEW")
copy_range "$BACK/$PB" $(($(slot_of "$BACK" "$IB" 3) * CS)) "$d/$PB" $(($(slot_of "$NEW" "$IB" 3) * CS)) "$CS"
run_verify replay-chunk "$d" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 1
expect_finding modified /V2/b 3 12288 16383

echo "== meta.db alone replaced by the older copy"
d=$(fresh replay-meta "$NEW")
cp "$BACK/meta.db" "$d/meta.db"
run_verify replay-meta "$d" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 2
expect_text "^rollback detected: volume version $V0 < trusted version $V1\$"
expect_finding modified /V2/b '*'

echo "== the whole backing directory restored from the older snapshot"
d=$(fresh rollback)
run_verify rollback "$d" --key-file "$KEY" --trust "$NEWTRUST"
expect_vstatus 2
expect_text "^rollback detected: volume version $V0 < trusted version $V1\$"
expect_finding rollback - -
expect_text '^verify: 1 finding: rollback \(2\)$'

echo "== the pack file of /V2/deep/c deleted"
d=$(fresh missing)
rm "$d/$PC"
run_verify missing "$d"
expect_vstatus 1
expect_finding missing /V2/deep/c 0 0 4095
expect_text '^integrity violation: /V2/deep/c chunk 0 \(bytes 0-4095\): chunk data missing'

echo "== meta.db: the len of chunk 7 of /V2/b changed"
d=$(fresh row-len)
sqlite3 "$d/meta.db" "UPDATE chunks SET len=len-1 WHERE ino=$IB AND idx=7"
run_verify row-len "$d"
expect_vstatus 1
expect_finding metadata /V2/b -
expect_no_finding_about /V2/deep/c

echo "== meta.db: one byte of the inode row of /V1/docs/a changed"
d=$(fresh row-inode)
flip_row_byte "$d/meta.db" inodes ino "$IA" 40
run_verify row-inode "$d"
expect_vstatus 1
expect_finding_ino metadata "$IA"
expect_finding metadata /V1/docs/a - # named by its path, as above
expect_text '^integrity violation: /V1/docs/a: inode row fails authentication'

echo "== meta.db: the inode row of /V2/deep/c deleted"
d=$(fresh row-inode-deleted)
expect_eq 1 "$(sqlite3 "$d/meta.db" "DELETE FROM inodes WHERE ino=$IC; SELECT changes()")" "deleted inode rows"
run_verify row-inode-deleted "$d"
expect_vstatus 1
expect_finding metadata /V2/deep -
expect_text "^integrity violation: /V2/deep: entry 'c' names inode $IC, which does not exist"

echo "== meta.db: the directory entry of /V2/deep/c deleted"
d=$(fresh row-dirent)
check "row-dirent: exactly one entry deleted"
expect_eq 1 "$(sqlite3 "$d/meta.db" "DELETE FROM dirents WHERE parent=$IDEEP; SELECT changes()")" "deleted dirents"
run_verify row-dirent "$d"
expect_vstatus 1
expect_finding metadata /V2/deep -
expect_finding metadata "[inode $IC]" -

echo "== meta.db: the rows of the entries /V2/b and /V2/deep swapped"
d=$(fresh dirent-swap)
python3 - "$d/meta.db" "$IV2" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT name_mac, row FROM dirents WHERE parent=?", (int(sys.argv[2]),)).fetchall()
assert len(rows) == 2, len(rows)
(m0, r0), (m1, r1) = rows
c.execute("UPDATE dirents SET row=? WHERE parent=? AND name_mac=?", (r1, int(sys.argv[2]), m0))
c.execute("UPDATE dirents SET row=? WHERE parent=? AND name_mac=?", (r0, int(sys.argv[2]), m1))
c.commit()
EOF
run_verify dirent-swap "$d"
expect_vstatus 1
expect_finding metadata /V2 -

echo "== meta.db: the entry of /V2/deep/c moved into /V1"
d=$(fresh dirent-move)
expect_eq 1 "$(sqlite3 "$d/meta.db" "UPDATE dirents SET parent=$IV1 WHERE parent=$IDEEP; SELECT changes()")" "moved dirents"
run_verify dirent-move "$d"
expect_vstatus 1
expect_finding_ino metadata "$IV1"
expect_finding metadata /V1 - # named by its path, as above
expect_finding metadata /V2/deep -

echo "== meta.db: the row of chunk 4 of /V2/b deleted"
d=$(fresh row-chunk)
expect_eq 1 "$(sqlite3 "$d/meta.db" "DELETE FROM chunks WHERE ino=$IB AND idx=4; SELECT changes()")" "deleted chunk rows"
run_verify row-chunk "$d"
expect_vstatus 1
expect_finding metadata /V2/b -
expect_text '^integrity violation: /V2/b: chunk map does not match'

echo "== meta.db-wal deleted"
# A clean unmount checkpoints the store and leaves no -wal; a daemon killed right after an fsync leaves
# the committed transactions in meta.db-wal only.
echo "  meta.db-wal after the clean unmount: $([ -e "$BACK/meta.db-wal" ] && echo present || echo absent)"
W=$(fresh wal)
WTRUST=$(copy_trust wal-trust.db)
mkdir -p "$T/mnt-wal"
"$FSHIELD" mount --key-file "$KEY" --trust "$WTRUST" "$W" "$T/mnt-wal"
is_mounted "$T/mnt-wal" || fail "the WAL copy did not mount"
pid=$(daemon_pids)
[ "$(wc -w <<<"$pid")" -eq 1 ] || fail "expected one daemon, got: $pid"
# Write, fsync, and kill the daemon the moment fsync has returned.
python3 - "$T/mnt-wal/V1/num" "$pid" <<'EOF'
import os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"1\n")
os.fsync(fd)
os.kill(int(sys.argv[2]), signal.SIGKILL)
EOF
gone() { ! pid_alive "$1"; }
wait_until 10 gone "$pid" || fail "daemon $pid survived SIGKILL"
fusermount3 -u -z "$T/mnt-wal"
check "the killed daemon left a non-empty meta.db-wal"
[ -s "$W/meta.db-wal" ] || fail "no meta.db-wal after killing the daemon: $(ls -la "$W")"
run_verify wal-kept "$W" --key-file "$KEY" --trust "$WTRUST"
expect_vstatus 0
V2=$(json_field version)
check "the fsync'ed write is committed in the WAL (version $V0 -> $V2)"
[ "$V2" -gt "$V0" ] || soft_fail "wal-kept: version $V2 not above $V0" "$VJSON"
d=$(fresh wal-deleted "$W")
rm "$d/meta.db-wal"
run_verify wal-deleted "$d" --key-file "$KEY" --trust "$WTRUST"
expect_vstatus 2
expect_text "^rollback detected: volume version $V0 < trusted version $V2\$"

echo "== volume.hdr: format version downgraded to 0"
d=$(fresh hdr-version)
put_u32le "$d/volume.hdr" 8 0
run_verify hdr-version "$d"
expect_vstatus 1
expect_finding header - -
expect_text 'format version 0'

echo "== volume.hdr: chunk size changed"
d=$(fresh hdr-chunk)
put_u32le "$d/volume.hdr" 36 8192
run_verify hdr-chunk "$d"
expect_vstatus 1
expect_finding header - -
expect_text 'header fails authentication'

echo "== volume.hdr: a byte of its MAC changed"
d=$(fresh hdr-mac)
flip_byte "$d/volume.hdr" 230
run_verify hdr-mac "$d"
expect_vstatus 1
expect_finding header - -
expect_text 'header fails authentication'

echo "== volume.hdr: a byte of the volume id changed (documented as wrong key)"
d=$(fresh hdr-volid)
flip_byte "$d/volume.hdr" 20
run_verify hdr-volid "$d"
expect_vstatus 5
expect_finding wrong-key - -

echo "== wrong key"
d=$(fresh wrong-key)
"$FSHIELD" keygen -o "$T/key2"
run_verify wrong-key "$d" --key-file "$T/key2" --trust "$TRUST"
expect_vstatus 5
expect_finding wrong-key - -
expect_text '^wrong key'

echo "== wrong trust anchor"
d=$(fresh wrong-trust)
mkdir "$T/other"
"$FSHIELD" init --key-file "$KEY" --trust "file:$T/other-trust.db" "$T/other" >/dev/null
run_verify wrong-trust "$d" --key-file "$KEY" --trust "file:$T/other-trust.db"
expect_vstatus 6
expect_finding anchor - -
expect_text 'wrong trust anchor'
run_verify no-trust "$d" --key-file "$KEY" --trust "file:$T/absent/trust.db"
expect_vstatus 6
expect_finding anchor - -
check "verify did not create a missing trust store"
[ ! -e "$T/absent" ] || soft_fail "no-trust: verify created $T/absent"
: >"$T/empty-trust.db"
# verify never modifies the trust anchor: not even a file that is not a trust store yet.
run_verify empty-trust "$d" --key-file "$KEY" --trust "file:$T/empty-trust.db"
expect_vstatus 6
check "verify left an empty file named as the trust store empty"
[ ! -s "$T/empty-trust.db" ] ||
	soft_fail "empty-trust: verify wrote $(stat -c %s "$T/empty-trust.db") bytes into the file named as its trust anchor"

echo "== the original volume is still clean"
run_verify clean-again "$BACK"
expect_vstatus 0
finish
