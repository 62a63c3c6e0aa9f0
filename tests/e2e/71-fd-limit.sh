#!/usr/bin/env bash
# A low descriptor limit: under `ulimit -n 64` the daemon sizes its pack-file cache from RLIMIT_NOFILE,
# closes cached descriptors and retries when the limit is reached anyway, and every fsync commits: with
# many files written and synced, some of them held open at once, nothing is lost across a remount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

fs_init
# Only the daemon runs under the low limit; mount waits until it serves.
(ulimit -n 64 && fs_mount)
pid=$(daemon_pids)
expect_eq 64 "$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")" "the daemon's descriptor limit"

python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
# 200 files, written and fsynced one after another ...
for i in range(200):
    with open(os.path.join(mnt, "seq%03d" % i), "wb") as f:
        f.write(("sequential %d\n" % i).encode() * 100)
        f.flush()
        os.fsync(f.fileno())
# ... and 100 held open at once (more than the limit), each written and fsynced while the others are open.
held = [open(os.path.join(mnt, "open%03d" % i), "wb") for i in range(100)]
for rnd in range(2):
    for i, f in enumerate(held):
        f.write(("held %d round %d\n" % (i, rnd)).encode() * 50)
        f.flush()
        os.fsync(f.fileno())
for f in held:
    f.close()
PY
want=$(manifest "$MNT")
fs_umount
fs_mount
expect_eq "$want" "$(manifest "$MNT")" "content after remount"
fs_umount
echo "71-fd-limit: ok"
