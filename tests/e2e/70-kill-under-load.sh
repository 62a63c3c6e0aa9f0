#!/usr/bin/env bash
# Crash safety through a real mount (docs/THREAT-MODEL.md "Crash safety"): the daemon is killed with
# SIGKILL at a random moment while tests/tools/fsyncload writes, truncates, renames, creates and removes
# files and syncs them. After each kill: `fshield verify` on the dead volume finds nothing worse than a
# pending commit, the volume mounts again without a false alarm, and `fsyncload check` finds every file
# as the last acknowledged fsync left it, or with some of the later, unsynced changes (block by block; the
# exact rule is in fsyncload.c). The load then goes on from there on the new mount, for the next round.
# Two volumes (4 KiB chunks, and the default chunk size), each mounted with commit_interval=1 and =0 in
# turn. After the last round of each: a clean unmount, and `fshield verify` exits 0 (notes about
# unreferenced pack files are allowed).
#
# The kill delays come from bash's generator seeded with the printed seed: FSHIELD_KILL_SEED=N replays
# a run's timing (the timing of a kill against the load is still up to the scheduler).
# FSHIELD_KILL_ROUNDS sets the rounds per volume (default 12).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
: "${BUILD:?set BUILD to the build directory}"
LOAD=$BUILD/tests/tools/fsyncload
[ -x "$LOAD" ] || fail "$LOAD missing (make BUILD=...)"
export TMPDIR=$T/tmp # verify's private copies of the store
mkdir -p "$TMPDIR"

# The load is stopped before lib-mount.sh's cleanup unmounts anything, so that it never writes into the
# bare mount point directory; cleanup then runs with the test's exit status.
LPID=
stop_load() {
	if [ -n "$LPID" ]; then
		kill -KILL "$LPID" 2>/dev/null || true
		wait "$LPID" 2>/dev/null || true
		LPID=
	fi
}
on_exit() {
	local st=$?
	stop_load
	if [ "$st" -eq 0 ]; then cleanup; else (exit "$st") || cleanup; fi
}
trap on_exit EXIT

SEED=${FSHIELD_KILL_SEED:-$(($(od -An -N4 -tu4 /dev/urandom) % 1000000000))}
ROUNDS=${FSHIELD_KILL_ROUNDS:-12}
RANDOM=$SEED
echo "seed $SEED (FSHIELD_KILL_SEED=$SEED replays the kill delays), $ROUNDS rounds per volume"

daemon_pid() {
	sed -n 's/^pid //p' "$FSHIELD_RUN_DIR"/*.pid
}
gone() {
	! pid_alive "$1"
}

ROUND_INFO=
# round_fail MESSAGE [FILE...]: stops the load, prints the round and the files, fails.
round_fail() {
	local msg=$1 f
	shift
	stop_load
	echo "FAIL in $ROUND_INFO (seed $SEED): $msg" >&2
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "---- $(basename "$f"):" >&2
		sed 's/^/    /' "$f" | head -n 60 >&2
	done
	fail "$msg"
}

# run_volume NAME ROUND0 [INIT OPTIONS...]: a new volume, ROUNDS kills under load, a clean end.
run_volume() {
	local name=$1 round0=$2 r ci next ms delay lseed lst vst mst
	shift 2
	BACK=$T/backing-$name
	KEY=$T/key-$name
	local state=$T/state-$name
	mkdir -p "$BACK" "$state"
	"$FSHIELD" keygen -o "$KEY"
	"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" "$@" "$BACK" >/dev/null
	ci=1
	fs_mount -o commit_interval=$ci
	for ((r = 1; r <= ROUNDS; r++)); do
		next=$((1 - ci)) # the next mount's commit_interval: 1 and 0 in turn
		ms=$((100 + RANDOM % 2900))
		delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
		lseed=$((SEED * 100 + round0 + r))
		ROUND_INFO="round $((round0 + r)) (volume $name, commit_interval=$ci, kill after ${delay} s, load seed $lseed)"

		"$LOAD" run "$MNT" "$state" "$lseed" >"$T/load.out" 2>"$T/load.err" &
		LPID=$!
		sleep "$delay" # the deliberate random moment of the kill
		pid_alive "$LPID" || round_fail "the load stopped before the kill" "$T/load.out" "$T/load.err"
		local dpid
		dpid=$(daemon_pid || true)
		[ -n "$dpid" ] || round_fail "no daemon pid in $FSHIELD_RUN_DIR"
		pid_alive "$dpid" || round_fail "the daemon died before the kill" "$T/load.out" "$T/load.err"
		kill -KILL "$dpid"
		wait_until 10 gone "$dpid" || round_fail "the daemon survived SIGKILL"
		wait_until 30 gone "$LPID" || round_fail "the load still runs 30 s after the daemon died" "$T/load.out"
		lst=0
		wait "$LPID" || lst=$?
		LPID=
		[ "$lst" -eq 0 ] || round_fail "the load exited $lst (an operation failed while the mount was alive)" \
			"$T/load.out" "$T/load.err"

		fusermount3 -u -z "$MNT" || round_fail "fusermount3 -u -z of the dead mount exited $?"
		! is_mounted "$MNT" || round_fail "the dead mount is still there"

		# Offline, the dead volume is at worst one commit short: never tamper, rollback or fork.
		vst=0
		"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK" >"$T/verify.out" 2>&1 || vst=$?
		case $vst in
		0 | 4) ;;
		*) round_fail "verify of the killed volume exited $vst (0 or 4 expected)" "$T/verify.out" ;;
		esac

		# No false alarm: the volume mounts again.
		mst=0
		"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" -o commit_interval=$next "$BACK" "$MNT" \
			2>"$T/mount.err" || mst=$?
		[ "$mst" -eq 0 ] || round_fail "mount after the kill exited $mst" "$T/mount.err"
		is_mounted "$MNT" || round_fail "mount after the kill returned 0 but nothing is mounted"

		"$LOAD" check "$MNT" "$state" >"$T/check.out" 2>"$T/check.err" ||
			round_fail "fsyncload check exited $? (1: the files are no state the load could have left)" \
				"$T/check.err" "$T/load.out"
		echo "$ROUND_INFO: $(tail -n 1 "$T/load.out" | sed 's/^load: //'); verify after the kill $([ "$vst" -eq 0 ] && echo ok || echo pending);"
		echo "    $(cat "$T/check.out")"
		ci=$next
	done
	ROUND_INFO="the end of volume $name"
	fs_umount
	vst=0
	"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK" >"$T/verify.out" 2>&1 || vst=$?
	[ "$vst" -eq 0 ] || round_fail "verify after the clean unmount exited $vst" "$T/verify.out"
	echo "volume $name: $(tail -n 1 "$T/verify.out"), $(grep -c unreferenced "$T/verify.out" || true) unreferenced-pack notes"
}

start=$(date +%s)
run_volume 4k 0 --chunk-size 4096
run_volume default "$ROUNDS"
echo "ok: $((2 * ROUNDS)) kills under load in $(($(date +%s) - start)) s (seed $SEED)"
