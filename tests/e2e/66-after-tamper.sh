#!/usr/bin/env bash
# The changes programs were told succeeded, when the volume turns read-only: after an integrity violation
# in one file, the verified in-memory state is committed (fsync succeeds, nothing acknowledged is lost,
# the tampered chunk stays detected); after a failure that makes the volume no longer ours to write (the
# anchor refuses a commit), nothing can be committed and the loss is impossible to miss: fsync and close
# fail, the log says how many changes were lost, and the daemon never says everything was committed.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

CS=4096
vol_init "$CS"
fs_mount
head -c 20000 /dev/urandom >"$MNT/a"
echo one >"$MNT/b"
IA=$(stat -c %i "$MNT/a")
fs_umount
PA=$(pack_of "$BACK" "$IA")
PA=${PA#"$BACK"/}

start_at() { # LABEL DIR TRUST: mounts DIR at M=$T/mnt-LABEL
	M=$T/mnt-$1
	start_labelled "$1" "$2" "$3" "$M"
}
stop_labelled() { # LABEL: unmounts; the status in USTATUS
	USTATUS=0
	"$FSHIELD" umount "$M" 2>"$T/$1.umount" || USTATUS=$?
	wait "$DPID" 2>/dev/null || true
}

echo "== a violation in /a: the changes acknowledged before it are committed"
d=$(fresh tamper)
tr=$(copy_trust tamper-trust.db)
flip_byte "$d/$PA" $(($(slot_of "$d" "$IA" 1) * CS + 5))
v0=$(trusted_version "$tr")
start_at tamper "$d" "$tr"
out=$(python3 - "$M" <<'PY'
import errno, os, sys
m = sys.argv[1]
# Written and closed before the violation (so the daemon has it), not yet committed.
with open(m + "/new", "wb") as f:
    f.write(b"kept\n")
with open(m + "/b", "ab") as f:
    f.write(b"two\n")
# Written, still open: write(2) returned, so the daemon has it (no writeback cache).
fk = os.open(m + "/k", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fk, b"cached\n")
try:
    open(m + "/a", "rb").read()
    print("read of /a succeeded")
except OSError as e:
    print("read /a:", errno.errorcode[e.errno])
fb = os.open(m + "/b", os.O_RDONLY)
try:
    os.fsync(fb)
    print("fsync b ok")
except OSError as e:
    print("fsync b:", errno.errorcode[e.errno])
os.close(fb)
for what, call in (("fsync", os.fsync), ("close", os.close)):
    try:
        call(fk)
        print(what, "k ok")
    except OSError as e:
        print(what, "k failed")
PY
)
echo "$out" | sed 's/^/  | /'
check "tamper: the read of /a fails with EIO, fsync of /b succeeds, fsync and close of /k succeed"
[ "$out" = "$(printf 'read /a: EIO\nfsync b ok\nfsync k ok\nclose k ok')" ] || soft_fail "tamper: $out" "$T/tamper.log"
check "tamper: the fsync after the violation committed a new version"
[ "$(trusted_version "$tr")" -gt "$v0" ] || soft_fail "tamper: trusted version still $v0" "$T/tamper.log"
stop_labelled tamper
check "tamper: umount exits 1, the log says the changes were committed and never 'everything committed'"
[ "$USTATUS" -eq 1 ] && grep -q "changes made before the integrity violation were committed" "$T/tamper.log" &&
	! grep -q "everything committed" "$T/tamper.log" || soft_fail "tamper: umount exited $USTATUS" "$T/tamper.log"
VTRUST=$tr run_verify tamper "$d"
expect_vstatus 1
expect_finding modified /a 1 4096 8191
check "tamper: the only finding is the tampered chunk"
[ "$(grep -c 'integrity violation' "$VOUT")" -eq 1 ] || soft_fail "tamper: other findings" "$VOUT"
start_at tamper2 "$d" "$tr"
check "tamper: after a remount /new, /b and /k hold what was written"
[ "$(cat "$M/new")" = kept ] && [ "$(cat "$M/b")" = "$(printf 'one\ntwo')" ] && [ "$(cat "$M/k")" = cached ] ||
	soft_fail "tamper: /new='$(cat "$M/new" 2>&1)' /b='$(cat "$M/b" 2>&1)' /k='$(cat "$M/k" 2>&1)'"
stop_labelled tamper2

echo "== the anchor refuses the commit: nothing can be committed, and that is impossible to miss"
d=$(fresh refused)
tr=$(copy_trust refused-trust.db)
start_at refused "$d" "$tr"
out=$(python3 - "$M" "${tr#file:}" <<'PY'
import errno, os, sqlite3, sys
m, trust = sys.argv[1], sys.argv[2]
fc = os.open(m + "/c", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fc, b"lost\n")
fb = os.open(m + "/b", os.O_WRONLY | os.O_APPEND)
os.write(fb, b"two\n")
# Another writer moves the anchor on.
db = sqlite3.connect(trust, timeout=10)
db.execute("UPDATE volumes SET version = version + 5")
db.commit()
db.close()
for name, fd in (("b", fb), ("c", fc)):
    try:
        os.fsync(fd) if name == "b" else None
        print("fsync %s ok" % name if name == "b" else "no fsync c")
    except OSError as e:
        print("fsync %s: %s" % (name, errno.errorcode[e.errno]))
for name, fd in (("b", fb), ("c", fc)):
    try:
        os.close(fd)
        print("close %s ok" % name)
    except OSError as e:
        print("close %s: %s" % (name, errno.errorcode[e.errno]))
PY
)
echo "$out" | sed 's/^/  | /'
check "refused: fsync of /b fails with EIO, and closing /b and /c fails with EIO"
[ "$out" = "$(printf 'fsync b: EIO\nno fsync c\nclose b: EIO\nclose c: EIO')" ] || soft_fail "refused: $out" "$T/refused.log"
stop_labelled refused
check "refused: umount exits 3 (fork), the log says what was lost, never 'everything committed'"
[ "$USTATUS" -eq 3 ] && grep -Eq "version 2 \(prepared, never acknowledged by the trust anchor\) and changes to [0-9]+ more files and directories, .* were not committed and are lost" "$T/refused.log" &&
	! grep -q "everything committed" "$T/refused.log" || soft_fail "refused: umount exited $USTATUS" "$T/refused.log"
finish
