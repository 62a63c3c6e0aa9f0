#!/usr/bin/env bash
# The attacks of the threat model done to the backing directory BETWEEN mounts, each on a fresh copy of a
# volume with content and history (chunk size 4096) and its own copy of the trust store:
#   - refused at mount, with the exact exit status and one line on standard error, nothing mounted, and
#     the backing directory and the trust store left as they were (nothing "repaired"): the whole backing
#     store or meta.db alone replaced by an older copy (2), meta.db deleted (1), meta.db-wal deleted while
#     it held committed transactions (2), volume.hdr downgraded or changed (1, or 5 for the volume id),
#     a wrong key (5), another trust anchor (6), another volume's backing directory (5), a second writer
#     on the same backing directory (7), a copy of it while the original serves (7: the writer lease);
#   - served, with EIO and a log line on what was attacked and every other file intact: a pack file
#     deleted; rows of meta.db edited, deleted or replaced by older ones; directory entries renamed,
#     swapped or moved. In no case is a stale or forged byte served.
#   - a copy of the volume mounted while the original serves: refused (the writer lease); the original
#     commits unaffected, and the copy is a rollback once it has.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
PLAIN=$T/plain # the genuine (latest) content of every file, by its path in the volume
OLDPLAIN=$T/oldplain # the content in the older snapshot: must never be served
DPID=

# try_mount LABEL DIR MOUNTPOINT [OPTIONS...]: `fshield mount -f` in the background (stderr to
# $T/LABEL.log), with --key-file $KEY --trust $CTRUST unless OPTIONS give a key or trust option. Returns
# 0 once mounted (DPID is the daemon), or the daemon's exit status if it exits first.
try_mount() {
	local label=$1 dir=$2 mnt=$3 i st=0
	shift 3
	local opts=("$@")
	[[ " ${opts[*]} " == *" --key-file "* ]] || opts+=(--key-file "$KEY")
	[[ " ${opts[*]} " == *" --trust "* ]] || opts+=(--trust "$CTRUST")
	mkdir -p "$mnt"
	"$FSHIELD" mount -f "${opts[@]}" -o commit_interval=0 "$dir" "$mnt" 2>"$T/$label.log" &
	DPID=$!
	EXTRA_PIDS+=("$DPID")
	for ((i = 0; i < 600; i++)); do
		is_mounted "$mnt" && return 0
		if ! pid_alive "$DPID"; then
			wait "$DPID" || st=$?
			[ "$st" -ne 0 ] || st=255
			return "$st"
		fi
		sleep 0.05
	done
	fail "$label: neither mounted nor refused after 30 s"
}

# served_ok VOLPATH: every chunk of VOLPATH at $M is served with its genuine bytes.
served_ok() {
	[ -z "$(chunk_reads "$M$1" "$PLAIN$1" 2>&1 | tr ' ' '\n' | grep -vx ok)" ]
}

# expect_reads LABEL VOLPATH WORDS
expect_reads() {
	local got
	check "$1: O_DIRECT reads of $2: $3"
	got=$(chunk_reads "$M$2" "$PLAIN$2" 2>&1) || true
	[ "$got" = "$3" ] || soft_fail "$1: reads of $2 gave '$got', expected '$3'"
}

# expect_log LABEL ERE: the daemon's log has a line matching ERE.
expect_log() {
	check "$1: the log has: $2"
	grep -Eq -- "$2" "$T/$1.log" || soft_fail "$1: no log line matching '$2'" "$T/$1.log"
}

# expect_fails LABEL ERRNO_TEXT COMMAND...: COMMAND fails with the error text (e.g. 'Input/output error')
# and prints nothing on standard output.
expect_fails() {
	local label=$1 want=$2 out err
	shift 2
	check "$label: '${*//$M/}' fails with $want"
	if out=$("$@" 2>"$T/$label.cmd.err"); then
		soft_fail "$label: '${*//$M/}' succeeded: $(head -c 200 <<<"$out")"
	else
		err=$(cat "$T/$label.cmd.err")
		grep -q "$want" <<<"$err" || soft_fail "$label: '${*//$M/}' failed with '$err', expected '$want'"
		[ -z "$out" ] || soft_fail "$label: '${*//$M/}' printed something: $(head -c 200 <<<"$out")"
	fi
}

# expect_no_stale LABEL: no file at $M serves the content it had in the older snapshot (where that differs).
expect_no_stale() {
	local f
	check "$1: no file serves its older content"
	while read -r f; do
		f=${f#.}
		cmp -s "$OLDPLAIN$f" "$PLAIN$f" && continue
		! cmp -s "$OLDPLAIN$f" "$M$f" 2>/dev/null || soft_fail "$1: $f serves its older content"
	done < <(cd "$OLDPLAIN" && find . -type f)
}

# case_copy LABEL [SRC]: $T/LABEL, a copy of $BACK (or SRC), with its trust store $T/LABEL-trust.db
# (a copy of $TRUST) as CTRUST; D is the copy, M its mount point.
case_copy() {
	echo "== $1"
	D=$(fresh "$1" "${2:-$BACK}")
	CTRUST=$(copy_trust "$1-trust.db")
	M=$T/mnt-$1
	mkdir -p "$M"
}

# backing_state DIR: dir_state without meta.db-shm, SQLite's shared-memory index, which SQLite itself
# rebuilds or removes whenever it opens and closes the store.
backing_state() {
	dir_state "$1" | grep -v 'meta\.db-shm$'
}

# expect_refused LABEL STATUS ERE [OPTIONS...]: mounting $D is refused with STATUS and exactly one line on
# standard error matching ERE (after "fshield mount: "); nothing is mounted, and neither $D nor the trust
# store changed.
expect_refused() {
	local label=$1 want=$2 re=$3 before tbefore st=0
	shift 3
	before=$(backing_state "$D")
	tbefore=$(trust_state "${CTRUST#file:}")
	check "$label: the mount is refused with status $want and one line: $re"
	try_mount "$label" "$D" "$M" "$@" || st=$?
	if [ "$st" -eq 0 ]; then
		soft_fail "$label: the volume was mounted"
		"$FSHIELD" umount "$M" 2>/dev/null || fusermount3 -u -z "$M"
		return 0
	fi
	[ "$st" -eq "$want" ] || soft_fail "$label: refused with status $st, expected $want" "$T/$label.log"
	[ "$(grep -c '' "$T/$label.log")" -eq 1 ] && grep -Eq -- "^fshield mount: $re\$" "$T/$label.log" ||
		soft_fail "$label: expected one line 'fshield mount: $re'" "$T/$label.log"
	! is_mounted "$M" || soft_fail "$label: something is mounted at $M"
	[ -z "$(ls -A "$M")" ] || soft_fail "$label: the mount point is not empty"
	check "$label: the refused mount changed neither the backing directory nor the trust store"
	[ "$(backing_state "$D")" = "$before" ] || soft_fail "$label: the backing directory changed"
	[ "$(trust_state "${CTRUST#file:}")" = "$tbefore" ] || soft_fail "$label: the trust store changed"
	echo "  refused: $(cat "$T/$label.log")"
}

# end_violated LABEL: after a violation while mounted: every change fails with EROFS, the intact file
# /V1/num is still served, and umount reports status 1 (tamper).
end_violated() {
	local label=$1 st=0
	expect_fails "$label" 'Read-only file system' sh -c "echo x >$M/newfile"
	expect_fails "$label" 'Read-only file system' sh -c "echo x >>$M/V1/num"
	check "$label: the intact /V1/num is served"
	served_ok /V1/num || soft_fail "$label: /V1/num: $(chunk_reads "$M/V1/num" "$PLAIN/V1/num")"
	expect_no_stale "$label"
	check "$label: umount exits 1 (tamper)"
	"$FSHIELD" umount "$M" 2>"$T/$label-umount.err" || st=$?
	[ "$st" -eq 1 ] || soft_fail "$label: umount exited $st, expected 1" "$T/$label-umount.err" "$T/$label.log"
	! is_mounted "$M" || { soft_fail "$label: still mounted"; fusermount3 -u -z "$M"; }
	wait "$DPID" 2>/dev/null || true
}

copy_trust_of() { # SRC_URI NAME: a copy of the trust store SRC (with its -wal and -shm) as $T/NAME
	local src=${1#file:} f
	for f in "$src" "$src-wal" "$src-shm"; do [ ! -e "$f" ] || cp -a "$f" "$T/$2${f#"$src"}"; done
}
write_sync() { # PATH (in the volume at MOUNTPOINT) DATA_FILE: writes the file whole and fsyncs it
	python3 - "$1" "$2" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
os.fsync(fd)
os.close(fd)
EOF
}

# ---- The volume: version O (the older snapshot), then rewrites committed up to version N.
vol_init "$CS"
mkdir -p "$PLAIN/V1/docs" "$PLAIN/V2/deep" "$PLAIN/V3"
echo 0 >"$PLAIN/V1/num"
echo "the file x" >"$PLAIN/V3/x"
echo "the file y, a bit longer" >"$PLAIN/V3/y"
head -c 20000 /dev/urandom >"$PLAIN/V1/docs/a" # chunks 0-4
head -c 30000 /dev/urandom >"$PLAIN/V2/b"      # chunks 0-7
head -c 10000 /dev/urandom >"$PLAIN/V2/deep/c" # chunks 0-2
CTRUST=$TRUST
M=$MNT
try_mount setup "$BACK" "$MNT" || fail "the new volume did not mount: $(cat "$T/setup.log")"
cp -a "$PLAIN/." "$MNT/"
IA=$(stat -c %i "$MNT/V1/docs/a")
IB=$(stat -c %i "$MNT/V2/b")
IC=$(stat -c %i "$MNT/V2/deep/c")
INUM=$(stat -c %i "$MNT/V1/num")
IV1=$(stat -c %i "$MNT/V1")
IDEEP=$(stat -c %i "$MNT/V2/deep")
IV3=$(stat -c %i "$MNT/V3")
"$FSHIELD" umount "$MNT"
wait "$DPID"
VO=$(trusted_version)
cp -a "$BACK" "$T/old"
cp -a "$PLAIN" "$OLDPLAIN"
# Newer versions: /V1/num counts up, chunk 3 of /V2/b is rewritten; each fsync commits.
try_mount setup2 "$BACK" "$MNT" || fail "the volume did not mount again: $(cat "$T/setup2.log")"
for i in 1 2 3; do
	echo "$i" >"$PLAIN/V1/num"
	write_sync "$MNT/V1/num" "$PLAIN/V1/num"
done
head -c "$CS" /dev/urandom | dd of="$PLAIN/V2/b" bs="$CS" seek=3 conv=notrunc status=none
write_sync "$MNT/V2/b" "$PLAIN/V2/b"
"$FSHIELD" umount "$MNT"
wait "$DPID"
VN=$(trusted_version)
PA=$(pack_of "$BACK" "$IA") PB=$(pack_of "$BACK" "$IB") PC=$(pack_of "$BACK" "$IC") PN=$(pack_of "$BACK" "$INUM")
PA=${PA#"$BACK"/} PB=${PB#"$BACK"/} PC=${PC#"$BACK"/} PN=${PN#"$BACK"/}
echo "volume: old version $VO, trusted version $VN; num=$INUM a=$IA b=$IB c=$IC"
[ "$VN" -gt "$VO" ] || fail "no newer version ($VO -> $VN)"
[ ! -e "$BACK/meta.db-wal" ] || [ ! -s "$BACK/meta.db-wal" ] || fail "a clean unmount left a non-empty meta.db-wal"

echo "== the untouched volume mounts and serves the latest content"
case_copy clean
try_mount clean "$D" "$M" || fail "the untouched volume was refused: $(cat "$T/clean.log")"
while read -r f; do
	f=${f#.}
	check "clean: $f is served"
	served_ok "$f" || soft_fail "clean: $f: $(chunk_reads "$M$f" "$PLAIN$f")"
done < <(cd "$PLAIN" && find . -type f)
expect_no_stale clean
"$FSHIELD" umount "$M" || fail "umount of the untouched volume exited $?"

# ---- Refused at mount.
case_copy rollback-volume "$T/old"
expect_refused rollback-volume 2 "rollback detected: volume version $VO < trusted version $VN"

case_copy rollback-meta
cp "$T/old/meta.db" "$D/meta.db"
expect_refused rollback-meta 2 "rollback detected: volume version $VO < trusted version $VN"

case_copy meta-deleted
rm "$D/meta.db"
expect_refused meta-deleted 1 "tamper detected: .*meta\.db.* missing"

# meta.db-wal: copied while mounted right after an fsync, the copy's WAL holds the committed transaction
# (SQLite moves a WAL into the store file only after 1000 pages, or when the daemon closes the store at
# unmount): the store file still holds the state from mount time. The trust store is copied with it.
case_copy wal
try_mount wal "$D" "$M" || fail "wal: the volume did not mount: $(cat "$T/wal.log")"
echo 4 >"$T/num4"
write_sync "$M/V1/num" "$T/num4"
VW=$(trusted_version "$CTRUST")
cp -a "$D" "$T/wal-kept"
copy_trust_of "$CTRUST" wal-kept-trust.db
cp -a "$T/wal-kept" "$T/wal-deleted"
copy_trust_of "$CTRUST" wal-deleted-trust.db
"$FSHIELD" umount "$M" || fail "wal: umount exited $?"
check "wal: the copy taken while mounted has a non-empty meta.db-wal, version $VW > $VN"
[ -s "$T/wal-kept/meta.db-wal" ] && [ "$VW" -gt "$VN" ] || fail "wal: no committed transaction in the WAL"
echo "== wal-kept: the copy with its WAL mounts and serves the fsync'd content"
D=$T/wal-kept CTRUST=file:$T/wal-kept-trust.db
try_mount wal-kept "$D" "$M" || fail "wal-kept: refused: $(cat "$T/wal-kept.log")"
check "wal-kept: /V1/num holds the fsync'd 4"
[ "$(cat "$M/V1/num")" = 4 ] || soft_fail "wal-kept: /V1/num is '$(cat "$M/V1/num")'"
"$FSHIELD" umount "$M" || soft_fail "wal-kept: umount exited $?"
echo "== wal-deleted: the same copy without its WAL"
D=$T/wal-deleted CTRUST=file:$T/wal-deleted-trust.db
rm "$D/meta.db-wal"
# The store file alone is the last checkpointed committed state, version $VN: an older version of the
# volume, so a rollback (2), not a tamper.
expect_refused wal-deleted 2 "rollback detected: volume version $VN < trusted version $VW"

hdr_case() { # LABEL OFFSET VALUE|flip STATUS ERE
	case_copy "$1"
	if [ "$3" = flip ]; then flip_byte "$D/volume.hdr" "$2"; else put_u32le "$D/volume.hdr" "$2" "$3"; fi
	expect_refused "$1" "$4" "$5"
}
hdr_case hdr-downgrade 8 0 1 "tamper detected: .*format version 0.*"
hdr_case hdr-upgrade 8 2 1 "tamper detected: .*format version 2.*"
hdr_case hdr-chunk-size 36 8192 1 "tamper detected: the volume header fails authentication"
hdr_case hdr-mac 230 flip 1 "tamper detected: the volume header fails authentication"
hdr_case hdr-volid 20 flip 5 "wrong key: .*"
hdr_case hdr-protection 35 flip 1 "tamper detected: volume header has unknown protection flags \(0x5a\)"
case_copy hdr-deleted
rm "$D/volume.hdr"
expect_refused hdr-deleted 1 "tamper detected: .*volume\.hdr.* missing"

case_copy wrong-key
"$FSHIELD" keygen -o "$T/key2"
expect_refused wrong-key 5 "wrong key: this key does not open the volume in .*" --key-file "$T/key2"

# Another trust anchor: a fresh trust store (holding another volume), a missing one, none.
mkdir "$T/other"
"$FSHIELD" init --key-file "$T/key2" --trust "file:$T/other-trust.db" "$T/other" >/dev/null
case_copy other-trust
expect_refused other-trust 6 "wrong trust anchor: this volume is bound to file:.*/trust\.db \(anchor id [0-9a-f]{32}\), not to the given file:.*/other-trust\.db \(anchor id [0-9a-f]{32}\); if the bound anchor is lost for good, see fshield trust adopt" \
	--trust "file:$T/other-trust.db"
case_copy absent-trust
expect_refused absent-trust 6 "trust anchor unavailable: .*" --trust "file:$T/absent/trust.db"
check "absent-trust: the missing trust store was not created"
[ ! -e "$T/absent" ] || soft_fail "absent-trust: mount created $T/absent"
case_copy none-trust
expect_refused none-trust 6 ".*bound to a trust anchor.*" --trust none

# The daemon pointed at another volume's backing directory (another key), registered in the same store.
case_copy other-volume
mkdir "$T/other-volume-dir"
"$FSHIELD" init --key-file "$T/key2" --trust "$CTRUST" "$T/other-volume-dir" >/dev/null
D=$T/other-volume-dir
expect_refused other-volume 5 "wrong key: this key does not open the volume in .*"

# A second writer on the same backing directory, while the first one serves it.
case_copy second-writer
try_mount second-writer-1 "$D" "$M" || fail "second-writer: the first mount was refused"
FIRST=$DPID
M1=$M M=$T/mnt-second-writer-2
expect_refused second-writer-2 7 "the volume in .* is open by another writer"
M=$M1
check "second-writer: the first mount still serves and commits"
echo 5 >"$T/num5"
write_sync "$M/V1/num" "$T/num5" || soft_fail "second-writer: write on the first mount failed"
[ "$(cat "$M/V1/num")" = 5 ] || soft_fail "second-writer: the first mount lost its write"
"$FSHIELD" umount "$M" || soft_fail "second-writer: umount of the first mount exited $?"
wait "$FIRST" 2>/dev/null || true

# ---- Served, with EIO on what was attacked.
case_copy pack-deleted
rm "$D/$PC"
try_mount pack-deleted "$D" "$M" || fail "pack-deleted: refused: $(cat "$T/pack-deleted.log")"
expect_reads pack-deleted /V2/deep/c "EIO EIO EIO"
expect_log pack-deleted "integrity violation: /V2/deep/c chunk 0 \(bytes 0-4095\): chunk data missing"
check "pack-deleted: the other files are served"
served_ok /V2/b && served_ok /V1/docs/a || soft_fail "pack-deleted: an intact file is not served"
end_violated pack-deleted

# Row edits. Each could either refuse the mount as tamper with one line, or mount and fail on the rows
# attacked. This product mounts (a mount checks the bucket digests against the volume root; a row is checked
# against its bucket when it is read), so that is asserted: the operations that need the attacked rows fail
# with EIO, the log line names the file by its path in the volume, everything else is served, nothing stale
# or forged is.
# row_case LABEL EXPECTED: EXPECTED is "mounted" or "refused 1".
row_case() {
	local label=$1 want=$2 got st=0
	try_mount "$label" "$D" "$M" || st=$?
	if [ "$st" -eq 0 ]; then got=mounted; else got="refused $st"; fi
	check "$label: $want"
	if [ "$got" != "$want" ]; then
		soft_fail "$label: $got, expected $want" "$T/$label.log"
		[ "$got" != mounted ] || { "$FSHIELD" umount "$M" 2>/dev/null || fusermount3 -u -z "$M"; }
		return 1
	fi
	if [ "$got" != mounted ]; then
		[ "$(grep -c '' "$T/$label.log")" -eq 1 ] && grep -q '^fshield mount: tamper detected: ' "$T/$label.log" ||
			soft_fail "$label: expected one line 'fshield mount: tamper detected: ...'" "$T/$label.log"
		echo "  refused: $(cat "$T/$label.log")"
		return 1
	fi
	return 0
}

case_copy row-inode-flip
flip_row_byte "$D/meta.db" inodes ino "$IA" 40
if row_case row-inode-flip mounted; then
	expect_reads row-inode-flip /V1/docs/a "open:EIO"
	expect_log row-inode-flip "integrity violation: /V1/docs/a: "
	end_violated row-inode-flip
fi

case_copy row-inode-deleted
expect_eq 1 "$(sql "$D/meta.db" "DELETE FROM inodes WHERE ino=$IC; SELECT changes()")" "deleted inode rows"
if row_case row-inode-deleted mounted; then
	expect_fails row-inode-deleted 'Input/output error' cat "$M/V2/deep/c"
	expect_log row-inode-deleted "integrity violation: /V2/deep(/c)?: "
	end_violated row-inode-deleted
fi

case_copy row-chunk-deleted
# Without the check, chunk 4 of /V2/b would read as a hole of zeros.
expect_eq 1 "$(sql "$D/meta.db" "DELETE FROM chunks WHERE ino=$IB AND idx=4; SELECT changes()")" "deleted chunk rows"
if row_case row-chunk-deleted mounted; then
	expect_reads row-chunk-deleted /V2/b "open:EIO"
	expect_log row-chunk-deleted "integrity violation: /V2/b: "
	end_violated row-chunk-deleted
fi

case_copy row-chunk-len
sql "$D/meta.db" "UPDATE chunks SET len=len-1 WHERE ino=$IB AND idx=7"
if row_case row-chunk-len mounted; then
	expect_reads row-chunk-len /V2/b "open:EIO"
	expect_log row-chunk-len "integrity violation: /V2/b: "
	end_violated row-chunk-len
fi

# Chunk 3 of /V2/b replayed with its row: the older chunk row and the older chunk data in its older
# slot, consistent with each other; only the integrity tree can tell.
case_copy row-chunk-replay
OLDSLOT=$(sqlite3 "file:$T/old/meta.db?mode=ro&immutable=1" "SELECT slot FROM chunks WHERE ino=$IB AND idx=3")
copy_range "$T/old/$PB" $((OLDSLOT * CS)) "$D/$PB" $((OLDSLOT * CS)) "$CS"
sql "$D/meta.db" "ATTACH 'file:$T/old/meta.db?mode=ro&immutable=1' AS old;
	DELETE FROM main.chunks WHERE ino=$IB AND idx=3;
	INSERT INTO main.chunks SELECT * FROM old.chunks WHERE ino=$IB AND idx=3;"
if row_case row-chunk-replay mounted; then
	expect_reads row-chunk-replay /V2/b "open:EIO"
	expect_log row-chunk-replay "integrity violation: /V2/b: "
	end_violated row-chunk-replay
fi

# /V1/num replayed whole: its inode row, chunk rows and pack file from the older snapshot ("0").
case_copy row-file-replay
cp "$T/old/$PN" "$D/$PN"
sql "$D/meta.db" "ATTACH 'file:$T/old/meta.db?mode=ro&immutable=1' AS old;
	DELETE FROM main.inodes WHERE ino=$INUM; INSERT INTO main.inodes SELECT * FROM old.inodes WHERE ino=$INUM;
	DELETE FROM main.chunks WHERE ino=$INUM; INSERT INTO main.chunks SELECT * FROM old.chunks WHERE ino=$INUM;"
if row_case row-file-replay mounted; then
	expect_fails row-file-replay 'Input/output error' cat "$M/V1/num"
	expect_log row-file-replay "integrity violation: /V1/num: "
	check "row-file-replay: the other files are served"
	served_ok /V2/b && served_ok /V1/docs/a || soft_fail "row-file-replay: an intact file is not served"
	# (end_violated expects /V1/num to be intact: here it is the attacked file)
	expect_fails row-file-replay 'Read-only file system' sh -c "echo x >$M/newfile"
	expect_no_stale row-file-replay
	st=0
	"$FSHIELD" umount "$M" 2>"$T/row-file-replay-umount.err" || st=$?
	check "row-file-replay: umount exits 1"
	[ "$st" -eq 1 ] || soft_fail "row-file-replay: umount exited $st" "$T/row-file-replay-umount.err"
fi

case_copy row-bucket
python3 - "$D/meta.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
b, d = c.execute("SELECT b, digest FROM buckets ORDER BY b LIMIT 1").fetchone()
c.execute("UPDATE buckets SET digest=? WHERE b=?", (bytes([d[0] ^ 1]) + d[1:], b))
c.commit()
EOF
expect_refused row-bucket 1 "tamper detected: the metadata store does not match its recorded root .*"

case_copy row-volume
sql "$D/meta.db" "UPDATE volume SET version=version+1"
expect_refused row-volume 1 "tamper detected: the metadata store does not match its recorded root .*"

# Directory entries: swapped, renamed (another name MAC), moved to another directory.
case_copy dirent-swap
# The rows of the only two entries of /V3, x and y, exchanged: x must not lead to y, nor y to x.
python3 - "$D/meta.db" "$IV3" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
p = int(sys.argv[2])
rows = c.execute("SELECT name_mac, row FROM dirents WHERE parent=?", (p,)).fetchall()
assert len(rows) == 2, len(rows)
(m0, r0), (m1, r1) = rows[0], rows[1]
c.execute("UPDATE dirents SET row=? WHERE parent=? AND name_mac=?", (r1, p, m0))
c.execute("UPDATE dirents SET row=? WHERE parent=? AND name_mac=?", (r0, p, m1))
c.commit()
EOF
if row_case dirent-swap mounted; then
	expect_fails dirent-swap 'Input/output error' cat "$M/V3/x"
	expect_fails dirent-swap 'Input/output error' cat "$M/V3/y"
	expect_fails dirent-swap 'Input/output error' ls "$M/V3"
	expect_log dirent-swap "integrity violation: /V3: "
	check "dirent-swap: the other directories are served"
	served_ok /V2/b && served_ok /V2/deep/c || soft_fail "dirent-swap: an intact file is not served"
	end_violated dirent-swap
fi

case_copy dirent-rename
python3 - "$D/meta.db" "$IDEEP" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
p = int(sys.argv[2])
(m,) = c.execute("SELECT name_mac FROM dirents WHERE parent=?", (p,)).fetchone()
n = c.execute("UPDATE dirents SET name_mac=? WHERE parent=? AND name_mac=?", (bytes([m[0] ^ 1]) + m[1:], p, m)).rowcount
assert n == 1
c.commit()
EOF
if row_case dirent-rename mounted; then
	expect_fails dirent-rename 'Input/output error' cat "$M/V2/deep/c"
	expect_fails dirent-rename 'Input/output error' ls "$M/V2/deep"
	expect_log dirent-rename "integrity violation: /V2/deep: "
	check "dirent-rename: the other files are served"
	served_ok /V2/b && served_ok /V1/docs/a || soft_fail "dirent-rename: an intact file is not served"
	end_violated dirent-rename
fi

case_copy dirent-move
expect_eq 1 "$(sql "$D/meta.db" "UPDATE dirents SET parent=$IV1 WHERE parent=$IDEEP; SELECT changes()")" "moved dirents"
if row_case dirent-move mounted; then
	expect_fails dirent-move 'Input/output error' cat "$M/V2/deep/c"
	expect_fails dirent-move 'Input/output error' ls "$M/V1"
	expect_log dirent-move "integrity violation: /V2/deep: "
	expect_log dirent-move "integrity violation: /V1: "
	expect_no_stale dirent-move
	expect_fails dirent-move 'Read-only file system' sh -c "echo x >$M/newfile"
	st=0
	"$FSHIELD" umount "$M" 2>"$T/dirent-move-umount.err" || st=$?
	check "dirent-move: umount exits 1"
	[ "$st" -eq 1 ] || soft_fail "dirent-move: umount exited $st" "$T/dirent-move-umount.err"
fi

# ---- A copy of the volume mounted next to the original: each has its own lock file, but both are bound
# to the same trust store, which holds the original's writer lease. The copy is refused (7) while the
# original serves; the original is unaffected; once the original has committed and is unmounted, the
# copy is older than the anchor: a rollback (2).
case_copy fork-a
cp -a "$D" "$T/fork-b"
MA=$M MB=$T/mnt-fork-b
try_mount fork-a "$D" "$MA" || fail "fork: the original was refused: $(cat "$T/fork-a.log")"
PIDA=$DPID
D=$T/fork-b M=$MB
expect_refused fork-b 7 "the volume is open read-write elsewhere: trust store .* holds its writer lease for process $PIDA on this host, for [0-9]+ s more; unmount it there first \(the lease of a stopped daemon lapses within [0-9]+ s\)"
M=$MA
echo A >"$T/numA"
check "fork: the original still serves and commits"
write_sync "$MA/V1/num" "$T/numA" || soft_fail "fork: write and fsync on the original failed"
VF=$(trusted_version "$CTRUST")
[ "$VF" -eq $((VN + 1)) ] || soft_fail "fork: trusted version $VF after the commit, expected $((VN + 1))"
"$FSHIELD" umount "$MA" || soft_fail "fork: umount of the original exited $?"
wait "$PIDA" 2>/dev/null || true
D=$T/fork-b M=$MB
expect_refused fork-b-after 2 "rollback detected: volume version $VN < trusted version $VF"

finish
