# Shared by the end-to-end tests of the FUSE daemon (30-49). Source it after `set -euo pipefail`.
# Gives each test a scratch directory $T with a key, a trust store and an initialised volume in $BACK,
# a mount point $MNT, helpers to mount, unmount and check, and a cleanup that runs on every exit: it
# unmounts whatever is still mounted under $T, stops the daemons the test started and removes $T.
: "${FSHIELD:?set FSHIELD to the fshield binary}"

T=$(mktemp -d "${TMPDIR:-/tmp}/fshield-e2e.XXXXXX")
BACK=$T/backing
MNT=$T/mnt
KEY=$T/key
TRUST=file:$T/trust.db
# The daemons' state files go here, so that cleanup finds every daemon this test started.
export FSHIELD_RUN_DIR=$T/run
mkdir -p "$MNT" "$FSHIELD_RUN_DIR"
EXTRA_PIDS=()

# Mount points under $T, deepest first.
mounts_under_t() {
	awk -v t="$T/" 'substr($2, 1, length(t)) == t { print $2 }' /proc/mounts | sort -r
}

daemon_pids() {
	local f
	for f in "$FSHIELD_RUN_DIR"/*.pid; do
		[ -e "$f" ] && sed -n 's/^pid //p' "$f"
	done
	return 0
}

cleanup() {
	local rc=$? m p
	set +e
	for m in $(mounts_under_t); do fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	for p in $(daemon_pids) "${EXTRA_PIDS[@]}"; do
		# only our own daemons: the pid must still run the fshield binary
		if [ -n "$p" ] && [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$FSHIELD")" ]; then
			kill -KILL "$p" 2>/dev/null
		fi
	done
	rm -rf "$T"
	if [ "$rc" -ne 0 ]; then echo "FAILED (status $rc)" >&2; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_eq EXPECTED ACTUAL WHAT
expect_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# expect_status STATUS COMMAND...: runs the command, which must exit with STATUS.
expect_status() {
	local want=$1 got=0
	shift
	"$@" || got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}

# wait_until SECONDS COMMAND...: polls the command every 0.05 s until it succeeds, at most SECONDS.
wait_until() {
	local limit=$(( $1 * 20 )) i=0
	shift
	until "$@"; do
		i=$((i + 1))
		[ "$i" -le "$limit" ] || return 1
		sleep 0.05
	done
}

is_mounted() {
	awk -v m="$1" '$2 == m && $3 == "fuse.fshield" { found = 1 } END { exit !found }' /proc/mounts
}

pid_alive() {
	kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# Daemons run in the foreground (`fshield mount -f`) in the background of a test: DPID is the daemon.
DPID=
# start_daemon LOG MOUNTPOINT COMMAND...: runs COMMAND in the background with its standard error in LOG.
# Returns 0 once MOUNTPOINT is mounted, or the daemon's exit status (255 for 0) if it exits first.
start_daemon() {
	local log=$1 mnt=$2 st=0
	shift 2
	"$@" 2>"$log" &
	DPID=$!
	EXTRA_PIDS+=("$DPID")
	wait_until 30 sh -c "awk -v m='$mnt' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts || ! kill -0 $DPID 2>/dev/null" ||
		fail "neither mounted nor refused after 30 s: $*"
	is_mounted "$mnt" && return 0
	wait "$DPID" || st=$?
	return $((st ? st : 255))
}

# start_labelled LABEL DIR TRUST MOUNTPOINT: start_daemon of `fshield mount -f` of DIR at MOUNTPOINT (made
# if missing) with the key $KEY, the anchor TRUST and no commit timer, its log in $T/LABEL.log; fails
# unless it mounts.
start_labelled() {
	local label=$1 dir=$2 trust=$3 mnt=$4
	mkdir -p "$mnt"
	start_daemon "$T/$label.log" "$mnt" "$FSHIELD" mount -f --key-file "$KEY" --trust "$trust" -o commit_interval=0 \
		"$dir" "$mnt" || fail "$label: the daemon exited before mounting: $(cat "$T/$label.log")"
}

# stop_daemon MOUNTPOINT: unmounts and waits for the daemon started by start_daemon; its exit status is
# left in DAEMON_STATUS. Fails if the mount point is still mounted.
DAEMON_STATUS=
stop_daemon() {
	DAEMON_STATUS=0
	"$FSHIELD" umount "$1" >/dev/null 2>&1 || true
	wait "$DPID" || DAEMON_STATUS=$?
	! is_mounted "$1" || fail "$1 is still mounted"
}

# expect_mount_refused LABEL STATUS ERE ARGS...: `bg_mount LABEL ARGS...` (defined by the test, logging to
# $T/LABEL.log) must be refused with STATUS and a log line matching ERE.
expect_mount_refused() {
	local label=$1 want=$2 re=$3 st=0
	shift 3
	bg_mount "$label" "$@" || st=$?
	[ "$st" -ne 0 ] || fail "$label: mounted, expected a refusal with status $want"
	[ "$st" -eq "$want" ] || fail "$label: refused with status $st, expected $want: $(cat "$T/$label.log")"
	grep -Eq -- "$re" "$T/$label.log" || fail "$label: no line matching '$re' in: $(cat "$T/$label.log")"
}

fs_init() {
	"$FSHIELD" keygen -o "$KEY"
	mkdir -p "$BACK"
	"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" "$BACK" >/dev/null
}

# fs_mount [OPTIONS...]: mounts $BACK at $MNT; the mount is ready when this returns.
fs_mount() {
	"$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$@" "$BACK" "$MNT"
	is_mounted "$MNT" || fail "mount returned but $MNT is not mounted"
}

# fs_umount: unmounts and waits for the daemon's final commit; fails unless it exited cleanly.
fs_umount() {
	"$FSHIELD" umount "$MNT" || fail "umount $MNT exited $?"
	! is_mounted "$MNT" || fail "$MNT is still mounted after umount"
}

fs_remount() {
	fs_umount
	fs_mount "$@"
}

# trusted_version [URI]: the version the trust store at URI (file:PATH; default this test's $T/trust.db)
# holds for its only volume (0 after init).
trusted_version() {
	local uri=${1:-file:$T/trust.db}
	python3 - "${uri#file:}" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(db.execute("SELECT max(version) FROM volumes").fetchone()[0])
EOF
}

# manifest DIR: one line per entry below DIR: type, mode, size, link target and content hash.
manifest() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %s %l %p\n' | LC_ALL=C sort -k5 &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
