#!/usr/bin/env bash
# Model checking through the mount: fsmodel (tests/tools/fsmodel.c) performs the same random operations
# on a directory of the volume and on a plain directory of the host (pwrite/pread across 4 KiB chunks and
# beyond 4 GiB, ftruncate, O_APPEND, rename with RENAME_NOREPLACE/RENAME_EXCHANGE, link, unlink,
# mkdir/rmdir, fsync, MAP_SHARED writes and msync, fallocate and hole punching, fresh descriptors) and
# compares every result, errno and read, and every few hundred operations both whole trees. Each seed runs
# in its own directory of one volume with 4 KiB chunks; the volume is unmounted and mounted again every
# $FSMODEL_SEGMENT operations, and the trees are compared whole after each mount. The unmounted volume
# must pass `fshield verify` at every remount (which names the segment that broke it) and at the end.
# The model lives in $T, on the host's file system, which must support hole punching (ext4, xfs, tmpfs).
#
# Seeds: FSMODEL_SEEDS="S1 S2 ..." (default: three new random seeds, printed first); FSMODEL_OPS
# operations per seed (default 12000); FSMODEL_SEGMENT operations between remounts (default 3000, a
# multiple of 500). A failure prints the line that replays it.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

: "${BUILD:?set BUILD to the build directory}"
MODEL=$BUILD/tests/tools/fsmodel
[ -x "$MODEL" ] || fail "$MODEL missing (make BUILD=...)"

read -r -a seed_list <<<"${FSMODEL_SEEDS:-$(od -An -N12 -tu4 /dev/urandom)}"
seeds="${seed_list[*]}"
ops=${FSMODEL_OPS:-12000}
segment=${FSMODEL_SEGMENT:-3000}
if [ "$segment" -le 0 ] || [ $((segment % 500)) -ne 0 ]; then
	fail "FSMODEL_SEGMENT must be a positive multiple of 500"
fi
replay="FSMODEL_SEEDS=\"$seeds\" FSMODEL_OPS=$ops FSMODEL_SEGMENT=$segment FSHIELD=$FSHIELD BUILD=$BUILD bash $0"
echo "seeds: $seeds ($ops operations each, remount every $segment)"
echo "replay: $replay"

# Mismatches and errors of fsmodel end the test with the replay line.
model() {
	"$MODEL" "$@" || fail "fsmodel $* exited $? (replay: $replay)"
}

verify() {
	local st=0
	"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK" >"$T/verify.out" 2>&1 || st=$?
	if [ "$st" -ne 0 ]; then
		head -n 20 "$T/verify.out" >&2
		[ "$(wc -l <"$T/verify.out")" -le 20 ] || { echo "..." && tail -n 1 "$T/verify.out"; } >&2
		fail "fshield verify after $1 exited $st, expected 0 (replay: $replay)"
	fi
}
remount() {
	fs_umount
	verify "$1"
	# every other mount commits each second, so that timed commits fall between other operations too
	if [ $((mounts % 2)) -eq 1 ]; then fs_mount -o commit_interval=1; else fs_mount; fi
	mounts=$((mounts + 1))
	model compare "$MNT" "$T/model"
}

"$FSHIELD" keygen -o "$KEY"
mkdir -p "$BACK" "$T/model"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size 4096 "$BACK" >/dev/null
fs_mount
mounts=1

for seed in "${seed_list[@]}"; do
	mkdir "$MNT/seed-$seed" "$T/model/seed-$seed"
	from=0
	while [ "$from" -lt "$ops" ]; do
		n=$((ops - from < segment ? ops - from : segment))
		echo "== seed $seed: operations $from-$((from + n - 1))"
		model run "$seed" "$MNT/seed-$seed" "$T/model/seed-$seed" --ops "$n" --from "$from"
		from=$((from + n))
		remount "operations $((from - n))-$((from - 1)) of seed $seed"
	done
done

fs_umount
verify "the last seed"
tail -n 1 "$T/verify.out"
echo ok
