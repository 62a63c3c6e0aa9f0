#!/usr/bin/env bash
# A low descriptor limit: the daemon sizes its pack-file cache from what RLIMIT_NOFILE leaves once it holds
# everything it keeps open, and refuses to serve (74, naming the limit it needs) where too few are left for
# commits. At 64, and at the least limit it serves at, every fsync commits: with many files written and
# synced, some of them held open at once, nothing is lost across a remount.
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
# Too low: refused before anything is served, with the limit it needs.
st=0
(ulimit -n 16 && "$FSHIELD" mount --key-file "$KEY" --trust "$TRUST" "$BACK" "$MNT") 2>"$T/low.err" || st=$?
expect_eq 74 "$st" "mount under ulimit -n 16"
! is_mounted "$MNT" || fail "mounted under ulimit -n 16"
least=$(sed -n 's/.*descriptor limit (ulimit -n) is 16: .* raise it to at least \([0-9]*\)$/\1/p' "$T/low.err")
[ -n "$least" ] || fail "the refusal names no limit: $(cat "$T/low.err")"
for limit in 64 "$least"; do
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
