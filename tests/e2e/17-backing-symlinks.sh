#!/usr/bin/env bash
# Symbolic links planted in the backing directory. The daemon runs as root and the backing directory is
# the attacker's: a link for d/, for a d/XX directory, for meta.db or one of its -wal, -shm and -journal
# files, for volume.hdr or for volume.lock must never make fshield create, write or delete anything
# outside the backing directory. Each case plants the link on a copy, points it at a directory outside
# holding a victim, and checks that mount and verify refuse with a clear tamper message (or, for the
# data directories, that the write fails with EIO and the log names it) while the outside stays exactly
# as it was. Also: everything the volume creates in the backing directory is mode 0600 (files) or 0700
# (directories). And a file: trust store inside the backing directory is refused.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

vol_init 4096
fs_mount
head -c 9000 /dev/urandom >"$MNT/a"
echo hello >"$MNT/b"
mkdir "$MNT/sub"
echo deep >"$MNT/sub/c"
sync "$MNT/a"
fs_umount

check "every file the volume made is mode 0600 and every directory 0700"
loose=$(cd "$BACK" && find . -mindepth 1 \( -type f ! -perm 0600 -o -type d ! -perm 0700 -o ! -type f ! -type d \) -printf '%m %p\n')
[ -z "$loose" ] || soft_fail "entries with other modes in the backing directory: $loose"

# outside NAME: a directory outside the backing directory with a victim file in it; printed.
outside() {
	local o=$T/outside-$1
	rm -rf "$o"
	mkdir -p "$o"
	echo "not fshield's" >"$o/victim"
	echo "$o"
}

# expect_outside_unchanged LABEL DIR BEFORE: DIR (outside the backing directory) is as it was.
expect_outside_unchanged() {
	check "$1: nothing outside the backing directory was created, changed or removed"
	[ "$(manifest "$2")" = "$3" ] || soft_fail "$1: $2 changed: $(diff <(echo "$3") <(manifest "$2") | head -n 20)"
}

# refused LABEL DIR TRUST ERE: mount of DIR is refused as tamper (exit 1) with one line matching ERE,
# nothing is mounted.
refused() {
	local label=$1 dir=$2 trust=$3 ere=$4
	expect_cmd 1 "$label-mount" "$FSHIELD" mount --key-file "$KEY" --trust "$trust" "$dir" "$MNT"
	expect_one_line "$T/$label-mount.err" "^fshield mount: .*($ere)"
	check "$label: nothing mounted"
	! is_mounted "$MNT" || { soft_fail "$label: mounted"; fusermount3 -u -z "$MNT"; }
}

# plant_store_link LABEL NAME: a copy whose NAME (meta.db or a companion) is a link to a file outside
# (for meta.db, a genuine copy of the store, which SQLite would happily rewrite); mount, read-only mount
# and verify refuse it, naming NAME.
plant_store_link() {
	local label=$1 name=$2 d o tr before
	d=$(fresh "$label")
	tr=$(copy_trust "trust-$label")
	o=$(outside "$label")
	if [ "$name" = meta.db ]; then
		mv "$d/meta.db" "$o/meta.db"
		ln -s "$o/meta.db" "$d/meta.db"
	else
		ln -s "$o/victim" "$d/$name"
	fi
	before=$(manifest "$o")
	refused "$label" "$d" "$tr" "tamper detected: $name is a symbolic link"
	expect_cmd 1 "$label-mount-ro" "$FSHIELD" mount -o ro --key-file "$KEY" --trust "$tr" "$d" "$MNT"
	! is_mounted "$MNT" || fusermount3 -u -z "$MNT"
	VTRUST=$tr run_verify "$label" "$d"
	expect_vstatus 1
	expect_text "tamper detected: .*$name is a symbolic link"
	expect_outside_unchanged "$label" "$o" "$before"
}

echo "== meta.db is a link to a copy of the store outside"
plant_store_link store-link meta.db
echo "== meta.db-wal is a link"
plant_store_link wal-link meta.db-wal
echo "== meta.db-shm is a link"
plant_store_link shm-link meta.db-shm
echo "== meta.db-journal is a link"
plant_store_link journal-link meta.db-journal

echo "== volume.hdr is a link to a copy of the header outside"
d=$(fresh hdr-link)
tr=$(copy_trust trust-hdr-link)
o=$(outside hdr-link)
mv "$d/volume.hdr" "$o/volume.hdr"
ln -s "$o/volume.hdr" "$d/volume.hdr"
before=$(manifest "$o")
refused hdr-link "$d" "$tr" "tamper detected: the volume header .* is a symbolic link"
VTRUST=$tr run_verify hdr-link "$d"
expect_vstatus 1
expect_text "volume header .* is a symbolic link"
expect_cmd 1 hdr-link-info "$FSHIELD" info "$d"
expect_one_line "$T/hdr-link-info.err" "^fshield info: tamper detected: the volume header .* is a symbolic link"
expect_outside_unchanged hdr-link "$o" "$before"

echo "== volume.lock is a link"
d=$(fresh lock-link)
tr=$(copy_trust trust-lock-link)
o=$(outside lock-link)
rm -f "$d/volume.lock"
ln -s "$o/victim" "$d/volume.lock"
before=$(manifest "$o")
refused lock-link "$d" "$tr" "volume.lock: tamper detected"
expect_outside_unchanged lock-link "$o" "$before"

# stop_tampered LABEL: unmounts; the daemon must report tamper (status 1), never "everything committed".
stop_tampered() {
	local label=$1 st=0
	"$FSHIELD" umount "$MNT" 2>"$T/$label-umount.err" || st=$?
	! is_mounted "$MNT" || fusermount3 -u -z "$MNT"
	wait "$DPID" || true
	check "$label: umount exits 1 (tamper)"
	[ "$st" -eq 1 ] || soft_fail "$label: umount exited $st, expected 1" "$T/$label-umount.err" "$T/$label.log"
}

# expect_write_refused LABEL: a new file of 4 chunks written with fsync fails, and the daemon's log has
# the violation for it.
expect_write_refused() {
	local label=$1
	check "$label: writing and syncing a new file fails"
	if dd if=/dev/urandom of="$MNT/new" bs=4096 count=4 conv=fsync status=none 2>"$T/$label-dd.err"; then
		soft_fail "$label: the write and fsync succeeded"
	fi
	check "$label: the log names the file and says the data is not a regular file"
	grep -Eq 'integrity violation: /new chunk [0-9]+ .*: chunk data replaced by something not a regular file' "$T/$label.log" ||
		soft_fail "$label: no violation line for /new" "$T/$label.log"
}

# data_link LABEL: d/ is a link to a directory outside, holding the genuine pack files.
data_link() {
	local label=$1 d o tr before
	echo "== $label: d/ is a link to a directory outside (holding the genuine pack files)"
	d=$(fresh "$label")
	tr=$(copy_trust "trust-$label")
	o=$(outside "$label")
	mv "$d/d" "$o/d"
	ln -s "$o/d" "$d/d"
	before=$(manifest "$o")
	start_labelled "$label" "$d" "$tr" "$MNT"
	check "$label: reading a file through the link fails"
	! cat "$MNT/a" >/dev/null 2>&1 || soft_fail "$label: /a was read through the planted link"
	stop_tampered "$label"
	start_labelled "$label-w" "$d" "$tr" "$MNT"
	expect_write_refused "$label-w"
	stop_tampered "$label-w"
	expect_outside_unchanged "$label" "$o" "$before"
	VTRUST=$tr run_verify "$label" "$d"
	expect_vstatus 1
	expect_text "the data directory d is a symbolic link"
}

# sub_link LABEL: every missing d/XX is a link to a directory outside.
sub_link() {
	local label=$1 d o tr before i x
	echo "== $label: every missing d/XX is a link to a directory outside"
	d=$(fresh "$label")
	tr=$(copy_trust "trust-$label")
	o=$(outside "$label")
	for i in $(seq 0 255); do
		x=$(printf '%02x' "$i")
		[ -e "$d/d/$x" ] || ln -s "$o" "$d/d/$x"
	done
	before=$(manifest "$o")
	start_labelled "$label" "$d" "$tr" "$MNT"
	check "$label: the genuine files still read"
	cmp -s "$MNT/b" <(echo hello) || soft_fail "$label: /b does not read back"
	expect_write_refused "$label"
	stop_tampered "$label"
	expect_outside_unchanged "$label" "$o" "$before"
	VTRUST=$tr run_verify "$label" "$d"
	expect_vstatus 1
	expect_text "tamper detected: d/[0-9a-f]{2} is a symbolic link"
}

data_link data-link
sub_link sub-link

echo "== a pack file with a second name outside the backing directory (a hard link)"
d=$(fresh hard-link)
tr=$(copy_trust trust-hard-link)
o=$(outside hard-link)
pa=$(cd "$d" && ls d/*/* | head -n 1)
ln "$d/$pa" "$o/second-name"
before=$(manifest "$o")
start_labelled hard-link "$d" "$tr" "$MNT"
check "hard-link: overwriting every file and syncing fails for the one whose pack file has two names"
bad=0
for f in a b sub/c; do
	dd if=/dev/zero of="$MNT/$f" bs=4096 count=1 conv=notrunc,fsync status=none 2>/dev/null || bad=$((bad + 1))
done
[ "$bad" -ge 1 ] || soft_fail "hard-link: every write succeeded"
stop_tampered hard-link
expect_outside_unchanged hard-link "$o" "$before"

# The same with the resolver's fallback for kernels without openat2 (a test-build switch).
export FSHIELD_TEST_NO_OPENAT2=1
plant_store_link walk-store-link meta.db
plant_store_link walk-wal-link meta.db-wal
data_link walk-data-link
sub_link walk-sub-link
unset FSHIELD_TEST_NO_OPENAT2

echo "== a file: trust store inside the backing directory"
# The adversary owns everything there, the store included: it could roll both back together.
mkdir -p "$T/inner"
expect_cmd 6 inner-init "$FSHIELD" init --key-file "$KEY" --trust "file:$T/inner/trust.db" "$T/inner"
expect_one_line "$T/inner-init.err" "^fshield init: .*trust store .* is inside the backing directory"
check "inner-init: nothing was created"
[ -z "$(ls -A "$T/inner")" ] || soft_fail "inner-init: $T/inner holds $(ls -A "$T/inner")"
d=$(fresh inner-mount)
tr=$(copy_trust trust-inner-mount)
mkdir "$d/.trust"
for f in "${tr#file:}"*; do mv "$f" "$d/.trust/"; done
ln -s "$d/.trust" "$T/trust-link"
refused_anchor() { # LABEL URI
	expect_cmd 6 "$1" "$FSHIELD" mount --key-file "$KEY" --trust "$2" "$d" "$MNT"
	expect_one_line "$T/$1.err" "^fshield mount: .*trust store .* is inside the backing directory"
	! is_mounted "$MNT" || { soft_fail "$1: mounted"; fusermount3 -u -z "$MNT"; }
}
refused_anchor inner-mount "file:$d/.trust/$(basename "${tr#file:}")"
refused_anchor inner-mount-link "file:$T/trust-link/$(basename "${tr#file:}")"
# (Not run_verify: its own look at the trust store would write beside it, inside the directory.)
expect_cmd 6 inner-verify "$FSHIELD" verify --key-file "$KEY" --trust "file:$d/.trust/$(basename "${tr#file:}")" "$d"
check "inner-verify: the finding says the trust store is inside the backing directory"
grep -q 'is inside the backing directory' "$T/inner-verify.out" "$T/inner-verify.err" ||
	soft_fail "inner-verify: no such finding" "$T/inner-verify.out" "$T/inner-verify.err"

check "the genuine volume is untouched and verifies clean"
run_verify clean "$BACK"
expect_vstatus 0

finish
