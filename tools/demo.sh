#!/usr/bin/env bash
# The stateful-service demo: a counter kept in a protected volume at V1 over a backing directory
# test-pvc, run three times, then attacked from the backing store (an old copy of the counter's data,
# an old snapshot of the whole volume, a deleted file). Every attack is detected. Cleans up after itself.
# usage: tools/demo.sh [FSHIELD_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
F=${1:-$here/build/fshield}
[ -x "$F" ] || { echo "demo: build fshield first (make)" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fshield-demo.XXXXXX")
PVC=$T/test-pvc V1=$T/V1 KEY=$T/v1.key TRUST=file:$T/trust.db LOG=$T/daemon.log DPID=
export FSHIELD_RUN_DIR=$T/run
cleanup() {
	set +e
	if mountpoint -q "$V1"; then "$F" umount "$V1" >/dev/null 2>&1 || fusermount3 -u -z "$V1"; fi
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s|$T/||g; s|$F|fshield|"; "$@" 2>&1 | sed "s|$T/||g"; return "${PIPESTATUS[0]}"; }
mounted() { awk -v m="$V1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# The service: read the counter (0 if missing), print it, write it back plus one.
cat >"$T/counter.py" <<'PY'
import os, sys
path = sys.argv[1]
if not os.path.exists(path):
    print(f"{path} does not exist, creating ... and writing 0 to it ...")
    with open(path, "w") as f:
        f.write("0")
with open(path) as f:
    num = int(f.read())
print(f"The number of executions is {num}")
with open(path, "w") as f:
    f.write(str(num + 1))
    f.flush()
    os.fsync(f.fileno())
PY
run_service() { python3 "$T/counter.py" "$V1/num" 2>&1 | sed "s|$T/||g"; }

# Mount in the foreground, in the background, so the daemon's log lines can be shown.
mount_fg() {
	"$F" mount -f --key-file "$KEY" --trust "$TRUST" "$PVC" "$V1" 2>>"$LOG" &
	DPID=$!
	for _ in $(seq 200); do mounted && return 0; kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
	wait "$DPID" 2>/dev/null; DPID=
	return 1
}
unmount() { local st=0; "$F" umount "$V1" || st=$?; wait "$DPID" 2>/dev/null || true; DPID=; return $st; }

mkdir -p "$PVC" "$V1"
say "A key, and a volume over the backing directory test-pvc, bound to a local trust store"
show "$F" keygen -o "$KEY"
show "$F" init --key-file "$KEY" --trust "$TRUST" "$PVC"

say "The service runs three times, each time on a fresh mount of V1"
for run in 1 2 3; do
	mount_fg
	run_service
	unmount
	[ "$run" = 1 ] && cp -a "$PVC" "$T/snapshot-after-run-1"
done
show "$F" info --key-file "$KEY" --trust "$TRUST" "$PVC"
echo "What the backing store holds (only ciphertext and authenticated metadata):"
(cd "$PVC" && find . -type f | sort | sed 's/^/  /')
pack=$(cd "$PVC" && find d -type f | head -1)

cp -a "$PVC" "$T/current"
restore_current() { rm -rf "$PVC" && cp -a "$T/current" "$PVC"; }

say "Attack 1: the counter's data in the backing store replaced by its copy from after run 1"
cp "$T/snapshot-after-run-1/$pack" "$PVC/$pack"
: >"$LOG"
mount_fg
echo "$ python3 counter.py V1/num"
run_service || true
echo "daemon log:"; grep 'integrity violation' "$LOG" | sed 's/^/  /' || { echo "demo: no log line" >&2; exit 1; }
unmount || true
show "$F" verify --key-file "$KEY" --trust "$TRUST" "$PVC" || true
restore_current

say "Attack 2: the whole backing store replaced by the snapshot taken after run 1"
rm -rf "$PVC" && cp -a "$T/snapshot-after-run-1" "$PVC"
st=0; show "$F" mount --key-file "$KEY" --trust "$TRUST" "$PVC" "$V1" || st=$?
echo "(mount exit status $st)"
[ "$st" = 2 ] || { echo "demo: rollback not refused" >&2; exit 1; }
restore_current

say "Attack 3: the counter's data deleted from the backing store"
show rm "$PVC/$pack"
: >"$LOG"
mount_fg
echo "$ cat V1/num"
cat "$V1/num" 2>&1 | sed "s|$T/||g" || true
echo "daemon log:"; grep 'integrity violation' "$LOG" | sed 's/^/  /' || { echo "demo: no log line" >&2; exit 1; }
unmount || true
show "$F" verify --key-file "$KEY" --trust "$TRUST" "$PVC" || true
restore_current

say "The untouched volume still verifies, and the service goes on from where it was"
show "$F" verify --key-file "$KEY" --trust "$TRUST" "$PVC"
mount_fg; run_service; unmount

say "Every attack was detected; nothing stale or forged was served."
