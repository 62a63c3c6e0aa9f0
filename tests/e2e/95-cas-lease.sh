#!/usr/bin/env bash
# Stale copies and downgrades through a CAS (docs/THREAT-MODEL.md, section 4 and "Stale copies"), against
# a real `fshield cas serve` on 127.0.0.1, with a writer lease of 3 s (test builds: the anchor is
# re-checked every second):
#   - a read-write mount of a copy of the backing directory is refused (7) while the original serves;
#   - a read-only mount of the copy turns stale within the re-check interval once the original commits
#     past it: a log line, EIO, and its unmount reports a rollback (2);
#   - a killed daemon: its own directory mounts again at once (the same holder); a copy waits until the
#     lease lapses (refused first, mounted within the lease time after);
#   - the protection level is fixed at init: a session update that sets the volume to
#     no_rollback_protection refuses its mounts (6, read-write and read-only) and verify (6); set back, it
#     mounts.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

export FSHIELD_TEST_LEASE_SECONDS=3
cas_start main "sqlite:$T/cas.db"
CAS=127.0.0.1:${CPORT[main]}
URI=cas://$CAS/e2e/lease/V1
MNT2=$T/mnt2
mkdir -p "$MNT2"

session() { # session POLICY: the session e2e/lease with volume V1 under POLICY
	cat <<EOF
name: e2e/lease
volumes:
  - name: V1
    update_policy: $1
    clients: [$(fp client)]
EOF
}
session rollback_protected >"$T/session.yaml"
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" >/dev/null

# bg_mount LABEL DIR MOUNTPOINT [OPTIONS...]: `fshield mount -f` through the CAS in the background (stderr
# to $T/LABEL.log). Returns 0 once mounted (DPID is the daemon), or the daemon's exit status.
bg_mount() {
	local label=$1 dir=$2 mnt=$3
	shift 3
	start_daemon "$T/$label.log" "$mnt" "$FSHIELD" mount -f --trust "$URI" --tls-cert "$PKI/client.crt" \
		--tls-key "$PKI/client.key" --ca "$PKI/ca.crt" -o commit_interval=0 "$@" "$dir" "$mnt"
}

read_errno() { # FILE: "ok" or the errno name of a failed read
	python3 -c 'import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$1"
}

mkdir -p "$BACK"
"$FSHIELD" init --trust "$URI" "$BACK" >/dev/null
bg_mount setup "$BACK" "$MNT" || fail "the new volume did not mount: $(cat "$T/setup.log")"
expect_eq ok "$(wfs "$MNT/num" 1)" "the first commit"
mkdir "$MNT/dir"
for i in 1 2 3; do echo "file $i" >"$MNT/dir/f$i"; done
"$FSHIELD" umount "$MNT" || fail "umount exited $?"
cp -a "$BACK" "$T/copy"

echo "== a read-write mount of a copy, while the original serves: refused"
bg_mount orig "$BACK" "$MNT" || fail "the original did not mount: $(cat "$T/orig.log")"
ORIG=$DPID
expect_mount_refused copy-rw 7 "the volume is open read-write elsewhere: CAS .*open read-write by another holder" \
	"$T/copy" "$MNT2"

echo "== a read-only mount of the copy turns stale once the original commits past it"
bg_mount copy-ro "$T/copy" "$MNT2" -o ro || fail "the read-only copy did not mount: $(cat "$T/copy-ro.log")"
COPY=$DPID
expect_eq 1 "$(cat "$MNT2/num")" "the copy while it is current"
expect_eq ok "$(wfs "$MNT/num" 2)" "the original's commit"
wait_until 10 grep -Eq "stale: the trust anchor holds version [0-9]+, past version [0-9]+ served here" "$T/copy-ro.log" ||
	fail "no stale line within 10 s (re-check every 1 s): $(cat "$T/copy-ro.log")"
expect_eq EIO "$(read_errno "$MNT2/dir/f2")" "a file of the stale copy not read before"
st=0
"$FSHIELD" umount "$MNT2" 2>/dev/null || st=$?
expect_eq 2 "$st" "umount of the stale copy (rollback)"
wait "$COPY" 2>/dev/null || true

echo "== a killed daemon: its own directory mounts again at once, a copy once the lease lapsed"
kill -KILL "$ORIG"
wait "$ORIG" 2>/dev/null || true
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
bg_mount orig2 "$BACK" "$MNT" || fail "the original is refused after its daemon was killed: $(cat "$T/orig2.log")"
ORIG=$DPID
rm -rf "$T/copy"
cp -a "$BACK" "$T/copy"
kill -KILL "$ORIG"
wait "$ORIG" 2>/dev/null || true
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
expect_mount_refused copy-rw2 7 "open read-write by another holder; its writer lease lapses in [0-3] s" "$T/copy" "$MNT2"
# noatime: reading num commits nothing at unmount, so the original stays the latest state (for the end).
wait_until 15 bg_mount copy-rw3 "$T/copy" "$MNT2" -o noatime ||
	fail "the copy is still refused well after the killed writer's lease lapsed: $(cat "$T/copy-rw3.log")"
COPY=$DPID
expect_eq 2 "$(cat "$MNT2/num")" "the copy, now the writer"
"$FSHIELD" umount "$MNT2" || fail "umount of the copy exited $?"
wait "$COPY" 2>/dev/null || true

echo "== the protection level is fixed at init: a downgrade refuses the mount"
session no_rollback_protection >"$T/down.yaml"
as_owner "$FSHIELD" cas session update "$T/down.yaml" --cas "$CAS" >/dev/null
expect_mount_refused down-rw 6 "protection downgraded: this volume was created with rollback protection" "$BACK" "$MNT"
expect_mount_refused down-ro 6 "protection downgraded" "$BACK" "$MNT" -o ro
! is_mounted "$MNT" || fail "a downgraded volume is mounted"
st=0
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/verify.out" 2>&1 || st=$?
expect_eq 6 "$st" "verify of a downgraded volume"
grep -q "protection downgraded" "$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
as_owner "$FSHIELD" cas session update "$T/session.yaml" --cas "$CAS" >/dev/null
bg_mount restored "$BACK" "$MNT" || fail "the volume does not mount with its protection back: $(cat "$T/restored.log")"
ORIG=$DPID
expect_eq 2 "$(cat "$MNT/num")" "the volume with its protection back"
"$FSHIELD" umount "$MNT" || fail "umount exited $?"
wait "$ORIG" 2>/dev/null || true

cas_stop main
echo ok
