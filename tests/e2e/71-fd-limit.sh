#!/usr/bin/env bash
# A low descriptor limit: under `ulimit -n 64`, and 16 (near the least the daemon starts with), it sizes
# its pack-file cache from RLIMIT_NOFILE, closes cached descriptors and retries when the limit is reached
# anyway, and every fsync commits: with many files written and synced, some of them held open at once,
# nothing is lost across a remount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

write_many() { # TAG: 200 files written and fsynced one after another, then 100 held open at once
	python3 - "$MNT" "$1" <<'PY'
import os, sys
mnt, tag = sys.argv[1], sys.argv[2]
for i in range(200):
    with open(os.path.join(mnt, "seq%s-%03d" % (tag, i)), "wb") as f:
        f.write(("sequential %d\n" % i).encode() * 100)
        f.flush()
        os.fsync(f.fileno())
# More than the limit, each written and fsynced while the others are open.
held = [open(os.path.join(mnt, "open%s-%03d" % (tag, i)), "wb") for i in range(100)]
for rnd in range(2):
    for i, f in enumerate(held):
        f.write(("held %d round %d\n" % (i, rnd)).encode() * 50)
        f.flush()
        os.fsync(f.fileno())
for f in held:
    f.close()
PY
}

fs_init
for limit in 64 16; do
	# Only the daemon runs under the low limit; mount waits until it serves.
	(ulimit -n "$limit" && fs_mount)
	pid=$(daemon_pids)
	expect_eq "$limit" "$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")" "the daemon's descriptor limit"
	write_many "$limit"
	want=$(manifest "$MNT")
	fs_umount
	fs_mount
	expect_eq "$want" "$(manifest "$MNT")" "content after remount (limit $limit)"
	fs_umount
done
echo "71-fd-limit: ok"
