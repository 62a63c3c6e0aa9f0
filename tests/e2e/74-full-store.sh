#!/usr/bin/env bash
# A full backing store, on a 128 MiB tmpfs: write(2) itself fails with ENOSPC once the data could not be
# kept, close and umount then succeed, and everything acknowledged is there after a remount; deleting
# the file frees its space; and on a store filled by something else, a delete still commits (from the
# reserve file meta.db.reserve) and gives the space back. Needs root (mount -t tmpfs).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

STORE=$T/store
mkdir "$STORE"
mount -t tmpfs -o size=128m,mode=0700 fshield-e2e-store "$STORE" # unmounted by the cleanup (under $T)
BACK=$STORE/backing
free_mib() { echo $(( $(stat -f -c '%a * %S' "$STORE") / 1048576 )); }
fsync_path() { python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }

fs_init
fs_mount
[ -f "$BACK/meta.db.reserve" ] || fail "no reserve file after a read-write mount"

# fallocate of more than the store holds fails at once, and changes nothing.
got=0; fallocate -l 200M "$MNT/fa" 2>/dev/null || got=$?
[ "$got" -ne 0 ] || fail "fallocate of 200 MiB succeeded on a 128 MiB store"
expect_eq 0 "$(stat -c %s "$MNT/fa")" "size after a refused fallocate"
rm "$MNT/fa"

# 400 MiB without fsync: write(2) fails with ENOSPC before the store is full; what it took stays.
python3 - "$MNT/big" "$T/accepted" <<'PY'
import errno, hashlib, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
h, done, err = hashlib.sha256(), 0, None
block = lambda i: (b"%08d" % i) * (131072 // 8)  # 1 MiB blocks that differ
while done < 400 << 20:
    b = block(done >> 20)
    try:
        n = os.write(fd, b)
    except OSError as e:
        err = e.errno
        break
    h.update(b[:n])
    done += n
os.close(fd)  # must not fail: nothing is left that could not be kept
if err != errno.ENOSPC:
    sys.exit("writes ended with %s after %d bytes, expected ENOSPC" % (err, done))
open(sys.argv[2], "w").write("%d %s\n" % (done, h.hexdigest()))
PY
read -r accepted digest <"$T/accepted"
[ "$accepted" -gt $((64 << 20)) ] || fail "only $accepted bytes taken on a 128 MiB store"
[ "$accepted" -lt $((128 << 20)) ] || fail "$accepted bytes taken on a 128 MiB store"
expect_eq "$accepted" "$(stat -c %s "$MNT/big")" "size after ENOSPC"
fs_umount
fs_mount
expect_eq "$accepted" "$(stat -c %s "$MNT/big")" "size after remount"
expect_eq "$digest" "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" "content after remount"

# Deleting it gives the space back.
rm "$MNT/big"
fsync_path "$MNT"
[ "$(free_mib)" -gt 100 ] || fail "deleting the file freed nothing: $(free_mib) MiB free"

# Filled by something else: a delete still commits, from the reserve, and frees the space.
head -c $((8 << 20)) /dev/urandom >"$MNT/f"
fsync_path "$MNT/f"
dd if=/dev/zero of="$STORE/filler" bs=1M 2>/dev/null || true
[ "$(free_mib)" -eq 0 ] || fail "the store is not full: $(free_mib) MiB free"
# A truncate inside a chunk rewrites that chunk: it still commits.
truncate -s $(((4 << 20) + 100)) "$MNT/f"
fsync_path "$MNT/f" || fail "the commit of a truncate failed on a full store"
expect_eq $(((4 << 20) + 100)) "$(stat -c %s "$MNT/f")" "size after the truncate"
rm "$MNT/f"
fsync_path "$MNT" || fail "the commit of a delete failed on a full store"
# 8 MiB freed, less the reserve made again (4 MiB) and what the commit took.
[ "$(free_mib)" -ge 3 ] || fail "the delete freed nothing on a full store: $(free_mib) MiB free"
got=0; head -c $((16 << 20)) /dev/zero >"$MNT/g" 2>/dev/null || got=$?
[ "$got" -ne 0 ] || fail "16 MiB written to a store with $(free_mib) MiB free"
rm -f "$MNT/g" "$STORE/filler"
echo kept >"$MNT/h"
fs_umount
fs_mount
expect_eq kept "$(cat "$MNT/h")" "a file written after the store had room again"
[ ! -e "$MNT/f" ] || fail "the deleted file is back"
[ -f "$BACK/meta.db.reserve" ] || fail "the reserve was not made again"
fs_umount
echo "74-full-store: ok"
