#!/usr/bin/env bash
# Bad input and hostile surroundings: a corrupt or truncated header, a garbage metadata store, files that
# cannot be read (as root: a directory put where a file belongs), a full disk under the backing directory,
# and bad `init` and `mount` invocations. Each must end with a clear message and the documented exit
# status, and must not damage anything else.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
vol_init "$CS"
fs_mount
head -c 9000 /dev/urandom >"$MNT/x" # chunks 0-2
echo hello >"$MNT/y"
IX=$(stat -c %i "$MNT/x")
SUMX=$(sha256sum <"$MNT/x")
fs_umount
PX=$(pack_of "$BACK" "$IX")
PX=${PX#"$BACK"/}
run_verify clean "$BACK"
expect_vstatus 0


# refused_everywhere LABEL DIR STATUS ERE: verify, info (with and without the key) and mount all fail on
# DIR with STATUS and a one-line reason matching ERE; DIR is unchanged and nothing is mounted.
refused_everywhere() {
	local label=$1 dir=$2 st=$3 ere=$4 before
	before=$(dir_state "$dir")
	run_verify "$label-verify" "$dir"
	expect_vstatus "$st"
	check "$label: verify prints one finding, naming volume.hdr as its backing, and the summary"
	[ "$(grep -c '' "$VOUT")" -eq 3 ] && grep -Eq -- "$ere" "$VOUT" && grep -qx '  backing: volume.hdr' "$VOUT" ||
		soft_fail "$label: verify: expected one finding matching '$ere', its backing volume.hdr and a summary" "$VOUT"
	expect_cmd "$st" "$label-info" "$FSHIELD" info "$dir"
	expect_one_line "$T/$label-info.err" "^fshield info: .*($ere)"
	expect_cmd "$st" "$label-info-key" "$FSHIELD" info --key-file "$KEY" --trust "$TRUST" "$dir"
	expect_one_line "$T/$label-info-key.err" "^fshield info: .*($ere)"
	expect_cmd "$st" "$label-mount" "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$dir" "$MNT"
	expect_one_line "$T/$label-mount.err" "^fshield mount: .*($ere)"
	check "$label: nothing mounted, $dir unchanged"
	! is_mounted "$MNT" || { soft_fail "$label: mounted"; fusermount3 -u -z "$MNT"; }
	[ "$(dir_state "$dir")" = "$before" ] || soft_fail "$label: the backing directory changed"
}

# restored_is_clean DIR: with the original header and store put back, DIR verifies clean again.
restored_is_clean() {
	cp -a "$BACK/volume.hdr" "$1/volume.hdr"
	rm -rf "$1/meta.db"
	cp -a "$BACK/meta.db" "$1/meta.db"
	run_verify "$(basename "$1")-restored" "$1"
	expect_vstatus 0
}

echo "== volume.hdr replaced by 256 random bytes"
d=$(fresh hdr-random)
head -c 256 /dev/urandom >"$d/volume.hdr"
refused_everywhere hdr-random "$d" 1 'bad magic'
expect_finding header - -
restored_is_clean "$d"

echo "== volume.hdr truncated to 10 bytes"
d=$(fresh hdr-short)
truncate -s 10 "$d/volume.hdr"
refused_everywhere hdr-short "$d" 1 'truncated \(10 of 256 bytes\)'
restored_is_clean "$d"

echo "== meta.db replaced by random bytes"
d=$(fresh meta-garbage)
size=$(stat -c %s "$d/meta.db")
head -c "$size" /dev/urandom >"$d/meta.db"
before=$(dir_state "$d")
run_verify meta-garbage "$d"
expect_vstatus 1
expect_finding metadata - -
expect_text '^tamper detected: the metadata store is unreadable: file is not a database$'
expect_cmd 1 meta-garbage-mount "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$d" "$MNT"
expect_one_line "$T/meta-garbage-mount.err" '^fshield mount: .*meta\.db: file is not a database$'
# info checks only the header: it must show the volume and say why its state cannot be read.
"$FSHIELD" info --key-file "$KEY" --trust "$TRUST" "$d" >"$T/meta-garbage-info.out" 2>&1 || true
check "meta-garbage: info names the problem with the store"
grep -q 'meta.db: file is not a database' "$T/meta-garbage-info.out" ||
	soft_fail "meta-garbage: info does not name the problem" "$T/meta-garbage-info.out"
check "meta-garbage: nothing mounted, nothing changed"
! is_mounted "$MNT" || { soft_fail "meta-garbage: mounted"; fusermount3 -u -z "$MNT"; }
[ "$(dir_state "$d")" = "$before" ] || soft_fail "meta-garbage: the backing directory changed"
restored_is_clean "$d"

# Root reads every file whatever its mode, so an unreadable file is made by putting a directory where
# the file belongs: open(2) still succeeds and read(2) fails with EISDIR.
echo "== unreadable: meta.db is a directory"
d=$(fresh meta-dir)
rm "$d/meta.db" && mkdir "$d/meta.db"
before=$(dir_state "$d")
run_verify meta-dir "$d"
expect_vstatus 74
expect_text 'meta\.db.*Is a directory'
expect_cmd 74 meta-dir-mount "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$d" "$MNT"
expect_one_line "$T/meta-dir-mount.err" '^fshield mount: .*meta\.db'
check "meta-dir: nothing mounted, nothing changed"
! is_mounted "$MNT" || { soft_fail "meta-dir: mounted"; fusermount3 -u -z "$MNT"; }
[ "$(dir_state "$d")" = "$before" ] || soft_fail "meta-dir: the backing directory changed"
rmdir "$d/meta.db"
restored_is_clean "$d"

echo "== unreadable: volume.hdr is a directory"
d=$(fresh hdr-dir)
rm "$d/volume.hdr" && mkdir "$d/volume.hdr"
refused_everywhere hdr-dir "$d" 74 'volume\.hdr|header'
rmdir "$d/volume.hdr"
restored_is_clean "$d"

# The Argon2id cost in a passphrase volume's header is read before anything can authenticate it (the MAC
# needs the key it derives). A planted cost is refused at once by every command, not run: 2^32-1 passes
# would hang an open for years.
echo "== a planted header asks for an Argon2id cost beyond the bounds"
PASS=$T/passphrase
echo 'correct horse battery staple' >"$PASS"
chmod 600 "$PASS"
mkdir "$T/pp"
"$FSHIELD" init --passphrase-file "$PASS" --trust "file:$T/pp-trust.db" "$T/pp" >/dev/null
python3 - "$T/pp/volume.hdr" <<'EOF2'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(64)
    f.write(struct.pack("<QQ", 0xffffffff, 8 << 20))  # opslimit, memlimit (8 MiB: slow, not big)
EOF2
before=$(dir_state "$T/pp")
# kdf_refused LABEL SUBCOMMAND ARGS...: exits 1 within 10 s, naming the bounds.
kdf_refused() {
	local label=$1 t0 t1
	shift
	t0=$(date +%s)
	expect_cmd 1 "$label" timeout 10 "$FSHIELD" "$@"
	t1=$(date +%s)
	check "$label: refused within 5 s (took $((t1 - t0)) s)"
	[ $((t1 - t0)) -le 5 ] || soft_fail "$label: took $((t1 - t0)) s"
	expect_one_line "$T/$label.err" "^fshield $1: .*Argon2id cost out of bounds \\(opslimit 4294967295, memlimit 8388608 bytes"
}
kdf_refused kdf-info info "$T/pp"
kdf_refused kdf-info-pass info --passphrase-file "$PASS" --trust "file:$T/pp-trust.db" "$T/pp"
kdf_refused kdf-mount mount --passphrase-file "$PASS" --trust "file:$T/pp-trust.db" "$T/pp" "$MNT"
expect_cmd 1 kdf-verify timeout 10 "$FSHIELD" verify --passphrase-file "$PASS" --trust "file:$T/pp-trust.db" "$T/pp"
check "kdf-verify: names the bounds"
grep -q 'Argon2id cost out of bounds' "$T/kdf-verify.out" "$T/kdf-verify.err" ||
	soft_fail "kdf-verify: no reason given" "$T/kdf-verify.out" "$T/kdf-verify.err"
check "kdf: nothing mounted, nothing changed"
! is_mounted "$MNT" || { soft_fail "kdf: mounted"; fusermount3 -u -z "$MNT"; }
[ "$(dir_state "$T/pp")" = "$before" ] || soft_fail "kdf: the backing directory changed"

echo "== unreadable: the pack file of /x is a directory"
d=$(fresh pack-dir)
ptrust=$(copy_trust pack-dir-trust.db) # it is mounted read-write below: its own trust store
rm "$d/$PX" && mkdir "$d/$PX"
run_verify pack-dir "$d" --key-file "$KEY" --trust "$ptrust"
expect_vstatus 1
check "pack-dir: verify reports chunks 0-2 of /x, and nothing else"
python3 - "$VJSON" <<'EOF' || soft_fail "pack-dir: unexpected findings" "$VJSON"
import json, sys
f = [x for x in json.load(open(sys.argv[1]))["findings"] if x["status"]]
assert f and all(x["path"] == "/x" and x["kind"] in ("missing", "truncated", "modified") for x in f), f
assert 0 in [x["chunk"] for x in f], f
EOF
# The daemon meets the same: a read of /x fails with EIO (not plausible data, not another errno), and
# the volume turns read-only.
"$FSHIELD" mount --key-file "$KEY" --trust "$ptrust" "$d" "$MNT"
is_mounted "$MNT" || fail "pack-dir: not mounted"
expect_eq hello "$(cat "$MNT/y")" "pack-dir: /y through the mount"
check "pack-dir: reading /x through the mount fails with EIO"
if out=$(cat "$MNT/x" 2>&1 >/dev/null); then
	soft_fail "pack-dir: reading /x succeeded"
elif ! grep -q 'Input/output error' <<<"$out"; then
	soft_fail "pack-dir: reading /x failed with '$out', expected EIO"
fi
# With the kernel's writeback cache a write(2) to an existing file may be answered from the page cache:
# the change must fail with EROFS at the latest at fsync. Creating a file fails at once.
check "pack-dir: after that the volume is read-only (EROFS by fsync at the latest; create fails)"
out=$(python3 - "$MNT/y" 2>&1 <<'EOF'
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
[ "$out" = EROFS ] || soft_fail "pack-dir: a change after the violation: $out"
if out=$(touch "$MNT/new" 2>&1); then
	soft_fail "pack-dir: a file was created after the violation"
elif ! grep -q 'Read-only file system' <<<"$out"; then
	soft_fail "pack-dir: creating a file failed with '$out', expected EROFS"
fi
st=0
"$FSHIELD" umount "$MNT" 2>"$T/pack-dir-umount.err" || st=$?
check "pack-dir: umount reports the daemon's status 1 (tamper)"
[ "$st" -eq 1 ] || soft_fail "pack-dir: umount exited $st, expected 1" "$T/pack-dir-umount.err"
! is_mounted "$MNT" || fusermount3 -u -z "$MNT"
rmdir "$d/$PX" && cp -a "$BACK/$PX" "$d/$PX"
run_verify pack-dir-restored "$d" --key-file "$KEY" --trust "$ptrust"
expect_vstatus 0

echo "== a full disk under the backing directory"
mkdir "$T/tmpfs" "$T/mnt-full"
mount -t tmpfs -o size=8m fshield-e2e "$T/tmpfs"
FULL=$T/tmpfs/back
mkdir "$FULL"
"$FSHIELD" init --key-file "$KEY" --trust "file:$T/full-trust.db" --chunk-size "$CS" "$FULL" >/dev/null
"$FSHIELD" mount --key-file "$KEY" --trust "file:$T/full-trust.db" "$FULL" "$T/mnt-full"
synced=() i=0 enospc=
while [ "$i" -lt 64 ]; do
	i=$((i + 1))
	head -c 524288 /dev/urandom >"$T/src"
	if dd if="$T/src" of="$T/mnt-full/f$i" bs=128k conv=fsync status=none 2>"$T/dd.err"; then
		synced+=("f$i $(sha256sum <"$T/src")")
	else
		enospc=f$i
		break
	fi
done
check "full: writing fails with ENOSPC ($enospc) after ${#synced[@]} fsync'ed files"
[ -n "$enospc" ] && grep -q 'No space left on device' "$T/dd.err" ||
	soft_fail "full: no ENOSPC after $i files of 512 KiB on 8 MiB" "$T/dd.err"
[ "${#synced[@]}" -ge 4 ] || soft_fail "full: only ${#synced[@]} files fit"
st=0
"$FSHIELD" umount "$T/mnt-full" 2>"$T/full-umount.err" || st=$?
check "full: umount exits 0, or 74 for a final commit that did not fit (got $st)"
[ "$st" -eq 0 ] || [ "$st" -eq 74 ] || soft_fail "full: umount exited $st" "$T/full-umount.err"
! is_mounted "$T/mnt-full" || fail "full: still mounted"
"$FSHIELD" mount --key-file "$KEY" --trust "file:$T/full-trust.db" "$FULL" "$T/mnt-full" 2>"$T/full-mount.err" ||
	fail "full: remount on the full disk failed: $(cat "$T/full-mount.err")"
check "full: every fsync'ed file is there after the remount"
for s in "${synced[@]}"; do
	name=${s%% *}
	[ "$name $(sha256sum <"$T/mnt-full/$name" 2>&1)" = "$s" ] || soft_fail "full: $name differs after the remount"
done
"$FSHIELD" umount "$T/mnt-full" || soft_fail "full: umount after the remount exited $?"
run_verify full "$FULL" --key-file "$KEY" --trust "file:$T/full-trust.db"
expect_vstatus 0
check "full: the committed volume holds at least the fsync'ed files"
[ "$(json_field files)" -ge "${#synced[@]}" ] || soft_fail "full: $(json_field files) files" "$VJSON"
umount "$T/tmpfs"

echo "== init into a directory that is not empty"
mkdir "$T/busy"
echo keep >"$T/busy/file"
mkdir "$T/busy/sub"
before=$(dir_state "$T/busy")
# docs/CLI.md: init exits 74 for a DIR that is "missing, not a directory, not empty, or not writable".
expect_cmd 74 init-nonempty "$FSHIELD" init --key-file "$KEY" --trust "file:$T/t-nonempty.db" "$T/busy"
expect_one_line "$T/init-nonempty.err" '^fshield init: .*not empty'
check "init-nonempty: the directory's files are untouched, no trust store made"
[ "$(dir_state "$T/busy")" = "$before" ] || soft_fail "init-nonempty: $T/busy changed"
[ ! -e "$T/t-nonempty.db" ] || soft_fail "init-nonempty: a trust store was created"
echo "== init into a directory holding only lost+found (documented as tolerated)"
mkdir -p "$T/lf/lost+found"
expect_cmd 0 init-lost-found "$FSHIELD" init --key-file "$KEY" --trust "file:$T/t-lf.db" "$T/lf"
check "init-lost-found: lost+found is kept"
[ -d "$T/lf/lost+found" ] || soft_fail "init-lost-found: lost+found is gone"

echo "== init usage errors (and a missing key file)"
# Each in its own empty directory with its own trust store path: both must stay as they were.
n=0
init_usage() { # [--status N] LABEL ERE ARGS...
	local want=64
	[ "$1" != --status ] || { want=$2; shift 2; }
	local label=$1 ere=$2
	shift 2
	n=$((n + 1))
	mkdir "$T/empty$n"
	expect_cmd "$want" "$label" "$FSHIELD" init "$@" --trust "file:$T/t-usage$n.db" "$T/empty$n"
	expect_one_line "$T/$label.err" "$ere"
	check "$label: the directory stays empty, no trust store made"
	[ -z "$(ls -A "$T/empty$n")" ] || soft_fail "$label: $T/empty$n is not empty: $(ls -A "$T/empty$n" | tr '\n' ' ')"
	[ ! -e "$T/t-usage$n.db" ] || soft_fail "$label: a trust store was created"
}
# 0 and "" are out of range too: the default applies only when --chunk-size is not given.
for cs in 5000 2048 2097152 0 abc "" -4096; do
	init_usage "init-chunk'$cs'" '^fshield init: .*chunk size' --key-file "$KEY" --chunk-size "$cs"
done
init_usage init-nokey '^fshield init: .*key is needed'
# A key file that cannot be read is an I/O error (74), as documented; nothing is made either.
init_usage --status 74 init-missing-key '^fshield init: key file .*no-such-key: No such file or directory' --key-file "$T/no-such-key"

echo "== mount of a directory that is not a volume"
mkdir "$T/plain"
echo data >"$T/plain/f"
before=$(dir_state "$T/plain")
expect_cmd 74 mount-plain "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$T/plain" "$MNT"
expect_one_line "$T/mount-plain.err" '^fshield mount: .*is not an fshield volume'
mkdir "$T/empty"
expect_cmd 74 mount-empty "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$T/empty" "$MNT"
expect_one_line "$T/mount-empty.err" '^fshield mount: .*is not an fshield volume'
check "mount of a non-volume: nothing mounted, nothing created"
! is_mounted "$MNT" || { soft_fail "mount-plain: mounted"; fusermount3 -u -z "$MNT"; }
[ "$(dir_state "$T/plain")" = "$before" ] || soft_fail "mount-plain: $T/plain changed"
[ -z "$(ls -A "$T/empty")" ] || soft_fail "mount-empty: $T/empty is not empty: $(ls -A "$T/empty" | tr '\n' ' ')"

echo "== the original volume is untouched"
run_verify clean-again "$BACK"
expect_vstatus 0
fs_mount
expect_eq "$SUMX" "$(sha256sum <"$MNT/x")" "/x after everything"
fs_umount
finish
