#!/usr/bin/env bash
# The attacks of the threat model done to the backing directory WHILE the volume is mounted, each on its
# own copy of a volume with content (chunk size 4096) and its own copy of the trust store: a byte flipped
# in a chunk, a truncated chunk, a zeroed chunk, chunks swapped within and across files, a chunk and a
# whole pack file replaced by their copies from before a committed rewrite, a pack file deleted, renamed,
# or swapped with another file's pack file. For each:
#   - reads go past the kernel's page cache, so they reach the daemon: O_DIRECT for read(2), and
#     POSIX_FADV_DONTNEED on the file before mmap and buffered reads (both work through FUSE, as does
#     writing 3 to /proc/sys/vm/drop_caches, which would empty the page cache of the whole machine);
#     every chunk of the attacked file is read on its own: exactly the attacked chunks fail with EIO,
#     every other chunk is served with its genuine bytes, and no byte is ever forged or stale;
#   - the daemon's log has `integrity violation: <path in the volume> chunk N (bytes A-B): <kind>`;
#   - every later change fails with EROFS (a new file, a write to an existing file, mkdir, rm, mv, chmod,
#     truncate), while intact files stay readable;
#   - the trust anchor did not move, `fshield umount` unmounts and reports status 1 (tamper);
#   - an untouched copy of the volume, as it was just before the attack, mounts and serves everything.
# Also through mmap: touching a tampered chunk raises SIGBUS, an intact chunk of the same file is served;
# and a buffered read stops with EIO, having returned only genuine bytes.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
PLAIN=$T/plain # the genuine content of every file, by its path in the volume

# Live reads of meta.db while a daemon has it open: through its WAL, never immutable.
live_slot() { # DIR INO IDX
	local s
	s=$(sqlite3 "file:$1/meta.db?mode=ro" "SELECT slot FROM chunks WHERE ino=$2 AND idx=$3")
	[ -n "$s" ] || fail "no chunk $3 of inode $2 in $1/meta.db"
	echo "$s"
}

# expect_reads LABEL VOLPATH WORDS: the per-chunk reads of VOLPATH at $M are WORDS.
expect_reads() {
	local label=$1 p=$2 want=$3 got
	check "$label: per-chunk O_DIRECT reads of $p: $want"
	got=$(chunk_reads "$M$p" "$PLAIN$p" 2>&1) || true
	[ "$got" = "$want" ] || soft_fail "$label: reads of $p gave '$got', expected '$want'"
}

# expect_log LABEL VOLPATH CHUNK KIND_ERE: the daemon's log has the violation line for that chunk, with its
# byte range (inclusive, ending at the file's size).
expect_log() {
	local label=$1 p=$2 n=$3 kind=$4 size a b re
	size=$(stat -c %s "$PLAIN$p")
	a=$((n * CS)) b=$(((n + 1) * CS - 1))
	[ "$b" -lt "$size" ] || b=$((size - 1))
	re="integrity violation: ${p//./\\.} chunk $n \\(bytes $a-$b\\): $kind"
	check "$label: the log has: $re"
	grep -Eq -- "$re" "$T/$label.log" || soft_fail "$label: no log line matching '$re'" "$T/$label.log"
}

# expect_erofs LABEL: every change through $M fails with EROFS; the file written to is unchanged.
expect_erofs() {
	local label=$1 out what
	check "$label: a new file cannot be created (EROFS)"
	if out=$( (echo x >"$M/newfile") 2>&1); then
		soft_fail "$label: created a file after the violation"
	elif ! grep -q 'Read-only file system' <<<"$out"; then
		soft_fail "$label: creating a file failed with '$out', expected EROFS"
	fi
	check "$label: a write to an existing file fails with EROFS (at open, write or fsync)"
	out=$(python3 - "$M/V1/num" 2>&1 <<'EOF'
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"more\n")
    os.fsync(fd)
    print("open, write and fsync succeeded")
except OSError as e:
    print("EROFS" if e.errno == errno.EROFS else "error: %s" % e)
EOF
	)
	[ "$out" = EROFS ] || soft_fail "$label: a write to /V1/num after the violation: $out"
	for what in "echo more >>$M/V1/num" "mkdir $M/V1/newdir" "rm $M/V1/num" "mv $M/V1/num $M/V1/num2" \
		"chmod 600 $M/V1/num" "truncate -s 0 $M/V1/num" "ln -s x $M/V1/link"; do
		check "$label: '${what//$M/}' fails with EROFS"
		if out=$( (eval "$what") 2>&1); then
			soft_fail "$label: '${what//$M/}' succeeded after the violation"
		elif ! grep -q 'Read-only file system' <<<"$out"; then
			soft_fail "$label: '${what//$M/}' failed with '$out', expected EROFS"
		fi
	done
	check "$label: /V1/num is intact and still readable"
	out=$(chunk_reads "$M/V1/num" "$PLAIN/V1/num" 2>&1) || true
	[ "$out" = ok ] || soft_fail "$label: reading the intact /V1/num after the violation: $out"
}

# Every case runs on $T/LABEL (a copy of $BACK) with the trust store $T/LABEL-trust.db, mounted at $M.
M=
case_start() {
	local label=$1
	echo "== $label"
	fresh "$label" >/dev/null
	CTRUST=$(copy_trust "$label-trust.db")
	M=$T/mnt-$label
	start_labelled "$label" "$T/$label" "$CTRUST" "$M"
	D=$T/$label
}

# case_snapshot LABEL: the untouched copy of the volume as it is now (taken while mounted, idle).
case_snapshot() {
	rm -rf "$T/$1-untouched"
	cp -a "$D" "$T/$1-untouched"
	SNAPV=$(trusted_version "$CTRUST")
}

# case_end LABEL: EROFS, anchor unmoved, umount reports tamper, and the untouched copy mounts and serves
# the genuine content.
case_end() {
	local label=$1 st=0 f
	expect_erofs "$label"
	check "$label: the trust anchor did not move ($SNAPV)"
	[ "$(trusted_version "$CTRUST")" = "$SNAPV" ] ||
		soft_fail "$label: trusted version $(trusted_version "$CTRUST"), expected $SNAPV"
	check "$label: fshield umount unmounts and exits 1 (tamper)"
	"$FSHIELD" umount "$M" 2>"$T/$label-umount.err" || st=$?
	[ "$st" -eq 1 ] && grep -q 'status 1 (tamper)' "$T/$label-umount.err" ||
		soft_fail "$label: umount exited $st, expected 1 (tamper)" "$T/$label-umount.err"
	! is_mounted "$M" || { soft_fail "$label: still mounted after umount"; fusermount3 -u -z "$M"; }
	st=0
	wait "$DPID" || st=$?
	check "$label: the daemon exited with status 1"
	[ "$st" -eq 1 ] || soft_fail "$label: the daemon exited $st, expected 1" "$T/$label.log"
	check "$label: the untouched copy mounts and serves the genuine content"
	st=0
	"$FSHIELD" mount --key-file "$KEY" --trust "$CTRUST" -o commit_interval=0 "$T/$label-untouched" "$M" \
		2>"$T/$label-remount.err" || st=$?
	if [ "$st" -ne 0 ]; then
		soft_fail "$label: the untouched copy was refused with status $st" "$T/$label-remount.err"
		return 0
	fi
	while read -r f; do
		f=${f#.}
		[ -z "$(chunk_reads "$M$f" "$PLAIN$f" 2>&1 | tr ' ' '\n' | grep -vx ok)" ] ||
			soft_fail "$label: the untouched copy does not serve $f: $(chunk_reads "$M$f" "$PLAIN$f" 2>&1)"
	done < <(cd "$PLAIN" && find . -type f)
	st=0
	"$FSHIELD" umount "$M" 2>"$T/$label-umount2.err" || st=$?
	[ "$st" -eq 0 ] || soft_fail "$label: umount of the untouched copy exited $st" "$T/$label-umount2.err"
	rm -rf "$D" "$T/$label-untouched"
}

# The volume: four files, with their genuine content kept in $PLAIN.
vol_init "$CS"
mkdir -p "$PLAIN/V1/docs" "$PLAIN/V2/deep"
echo 0 >"$PLAIN/V1/num"
head -c 20000 /dev/urandom >"$PLAIN/V1/docs/a" # chunks 0-4, the last 3616 bytes
head -c 30000 /dev/urandom >"$PLAIN/V2/b"      # chunks 0-7, the last 1328 bytes
head -c 10000 /dev/urandom >"$PLAIN/V2/deep/c" # chunks 0-2, the last 1808 bytes
start_labelled setup "$BACK" "$TRUST" "$MNT"
cp -a "$PLAIN/." "$MNT/"
IA=$(stat -c %i "$MNT/V1/docs/a")
IB=$(stat -c %i "$MNT/V2/b")
IC=$(stat -c %i "$MNT/V2/deep/c")
"$FSHIELD" umount "$MNT"
wait "$DPID"
PA=$(pack_of "$BACK" "$IA") PB=$(pack_of "$BACK" "$IB") PC=$(pack_of "$BACK" "$IC")
PA=${PA#"$BACK"/} PB=${PB#"$BACK"/} PC=${PC#"$BACK"/}
echo "volume: a=$IA ($PA) b=$IB ($PB) c=$IC ($PC), trusted version $(trusted_version)"
check "the volume verifies clean"
"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK" >"$T/clean.txt" 2>&1 ||
	fail "the fresh volume does not verify: $(cat "$T/clean.txt")"

slot() { # INO IDX: the chunk's slot in the case's volume, as the live metadata says
	live_slot "$D" "$1" "$2"
}

case_start flip
# Read it once before the attack: the daemon has the pack file open and has read every chunk.
expect_reads flip /V2/b "ok ok ok ok ok ok ok ok"
case_snapshot flip
flip_byte "$D/$PB" $(($(slot "$IB" 3) * CS + 100))
expect_reads flip /V2/b "ok ok ok EIO ok ok ok ok"
expect_log flip /V2/b 3 'chunk fails authentication'
check "flip: through mmap, an intact chunk is served and the tampered one raises SIGBUS"
out=$(python3 - "$M/V2/b" "$PLAIN/V2/b" "$CS" 3 0 <<'EOF'
import signal, subprocess, sys
child = r'''
import mmap, os, sys
path, genuine, cs, bad, good = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
g = open(genuine, "rb").read()
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # this file's pages leave the page cache
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
m.madvise(mmap.MADV_RANDOM)  # one page per fault: no read-ahead into the tampered chunk
print("intact", "ok" if m[good * cs:(good + 1) * cs] == g[good * cs:(good + 1) * cs] else "FORGED", flush=True)
x = m[bad * cs:(bad + 1) * cs]
print("tampered", "FORGED" if x != g[bad * cs:(bad + 1) * cs] else "served", flush=True)
'''
r = subprocess.run([sys.executable, "-c", child] + sys.argv[1:], capture_output=True, text=True)
sig = signal.Signals(-r.returncode).name if r.returncode < 0 else "exit %d" % r.returncode
print("%s; %s" % ("; ".join(r.stdout.split("\n")[:-1]), sig))
EOF
)
[ "$out" = "intact ok; SIGBUS" ] || soft_fail "flip: mmap: $out"
check "flip: a buffered read (the file's pages dropped first) fails with EIO and serves only genuine bytes"
out=$(python3 - "$M/V2/b" "$PLAIN/V2/b" <<'EOF'
import errno, os, sys
g = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
got = b""
try:
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        got += b
    print("read %d bytes without an error" % len(got))
except OSError as e:
    print("%s after %d bytes, %s" % (errno.errorcode.get(e.errno, e.errno), len(got),
                                     "genuine" if g.startswith(got) else "FORGED"))
EOF
)
[[ "$out" =~ ^EIO\ after\ [0-9]+\ bytes,\ genuine$ ]] || soft_fail "flip: buffered read: $out"
case_end flip

case_start truncated
case_snapshot truncated
truncate -s $(($(slot "$IA" 4) * CS + 1000)) "$D/$PA"
expect_reads truncated /V1/docs/a "ok ok ok ok EIO"
expect_log truncated /V1/docs/a 4 'chunk data truncated'
case_end truncated

case_start zeroed
case_snapshot zeroed
zero_range "$D/$PA" $(($(slot "$IA" 1) * CS)) "$CS"
expect_reads zeroed /V1/docs/a "ok EIO ok ok ok"
expect_log zeroed /V1/docs/a 1 'chunk fails authentication'
case_end zeroed

case_start swap-within
case_snapshot swap-within
swap_ranges "$D/$PB" $(($(slot "$IB" 0) * CS)) $(($(slot "$IB" 5) * CS)) "$CS"
expect_reads swap-within /V2/b "EIO ok ok ok ok EIO ok ok"
expect_log swap-within /V2/b 0 'chunk fails authentication'
expect_log swap-within /V2/b 5 'chunk fails authentication'
case_end swap-within

case_start swap-across
case_snapshot swap-across
# Chunk 2 of /V1/docs/a and chunk 2 of /V2/b (both full) exchanged between the two pack files.
python3 - "$D/$PA" $(($(slot "$IA" 2) * CS)) "$D/$PB" $(($(slot "$IB" 2) * CS)) "$CS" <<'EOF'
import sys
pa, oa, pb, ob, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(pa, "r+b") as fa, open(pb, "r+b") as fb:
    fa.seek(oa); x = fa.read(n); fb.seek(ob); y = fb.read(n)
    assert len(x) == n and len(y) == n
    fa.seek(oa); fa.write(y); fb.seek(ob); fb.write(x)
EOF
expect_reads swap-across /V1/docs/a "ok ok EIO ok ok"
expect_reads swap-across /V2/b "ok ok EIO ok ok ok ok ok"
expect_log swap-across /V1/docs/a 2 'chunk fails authentication'
expect_log swap-across /V2/b 2 'chunk fails authentication'
case_end swap-across

# Replays: the pack file of /V2/b is copied, then chunk 3 is rewritten through the mount and committed
# (fsync); the old slot of chunk 3 is retired, the new version lives in another slot.
replay_setup() {
	local label=$1 v0
	case_start "$label"
	cp "$D/$PB" "$T/$label-old-pack"
	OLDSLOT=$(slot "$IB" 3)
	v0=$(trusted_version "$CTRUST")
	head -c "$CS" /dev/urandom >"$T/$label-new3"
	python3 - "$M/V2/b" "$T/$label-new3" $((3 * CS)) <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, open(sys.argv[2], "rb").read(), int(sys.argv[3]))
os.fsync(fd)
os.close(fd)
EOF
	dd if="$T/$label-new3" of="$PLAIN/V2/b" bs="$CS" seek=3 conv=notrunc status=none
	check "$label: the rewrite of chunk 3 of /V2/b committed a new version"
	[ "$(trusted_version "$CTRUST")" -gt "$v0" ] || fail "$label: fsync did not commit"
	expect_reads "$label" /V2/b "ok ok ok ok ok ok ok ok"
	NEWSLOT=$(slot "$IB" 3)
	echo "  chunk 3 of /V2/b: slot $OLDSLOT -> $NEWSLOT"
	case_snapshot "$label"
}
cp "$PLAIN/V2/b" "$T/b-original"

replay_setup replay-chunk
# The older version of chunk 3, copied from the old pack file into the slot the current version uses.
copy_range "$T/replay-chunk-old-pack" $((OLDSLOT * CS)) "$D/$PB" $((NEWSLOT * CS)) "$CS"
expect_reads replay-chunk /V2/b "ok ok ok EIO ok ok ok ok"
expect_log replay-chunk /V2/b 3 'chunk fails authentication'
case_end replay-chunk
cp "$T/b-original" "$PLAIN/V2/b"

replay_setup replay-file
# The whole pack file put back as it was before the rewrite, written in place (as cp does) into the file the
# daemon still has open from the rewrite.
cp "$T/replay-file-old-pack" "$D/$PB"
# Chunks 0-2 and 4-7 did not change since: their bytes in the old copy are the committed ones.
expect_reads replay-file /V2/b "ok ok ok EIO ok ok ok ok"
expect_log replay-file /V2/b 3 '(chunk data truncated|chunk data missing|chunk fails authentication)'
case_end replay-file
cp "$T/b-original" "$PLAIN/V2/b"

# Deleting, renaming or swapping pack files: done before the daemon opened them. (It keeps a pack file open
# from its first access until a commit finds the file closed; through that descriptor it would go on
# reading the genuine chunks, and such an attack would only surface once it opens the file again.)
case_start pack-deleted
case_snapshot pack-deleted
rm "$D/$PC"
expect_reads pack-deleted /V2/deep/c "EIO EIO EIO"
expect_log pack-deleted /V2/deep/c 0 'chunk data missing'
expect_log pack-deleted /V2/deep/c 2 'chunk data missing'
case_end pack-deleted

case_start pack-renamed
case_snapshot pack-renamed
# Moved to the name of a later generation of the same inode.
mv "$D/$PC" "$D/${PC%.*}.$((${PC##*.} + 1))"
expect_reads pack-renamed /V2/deep/c "EIO EIO EIO"
expect_log pack-renamed /V2/deep/c 0 'chunk data missing'
case_end pack-renamed

case_start pack-swapped
case_snapshot pack-swapped
mv "$D/$PA" "$D/$PA.tmp" && mv "$D/$PB" "$D/$PA" && mv "$D/$PA.tmp" "$D/$PB"
expect_reads pack-swapped /V1/docs/a "EIO EIO EIO EIO EIO"
# /V2/b now reads /V1/docs/a's pack file: 5 slots of other data, and nothing at slots 5-7.
expect_reads pack-swapped /V2/b "EIO EIO EIO EIO EIO EIO EIO EIO"
expect_log pack-swapped /V1/docs/a 0 'chunk fails authentication'
expect_log pack-swapped /V2/b 0 'chunk fails authentication'
expect_log pack-swapped /V2/b 7 '(chunk data truncated|chunk data missing)'
case_end pack-swapped

check "the original volume still verifies clean"
"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK" >"$T/clean2.txt" 2>&1 ||
	soft_fail "the original volume no longer verifies" "$T/clean2.txt"
finish
