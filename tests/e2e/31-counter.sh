#!/usr/bin/env bash
# The counter service: a program that reads the number in /V1/num (creating it with 0), prints it and
# writes it back incremented. Run three times with a remount in between, it prints 0, 1, 2; once as a
# shell program and once as a Python program, the latter mounted through mount.fshield as mount(8) runs it.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/counter.py" <<'EOF'
import os, sys
v = sys.argv[1]
if not os.path.exists(v):
    print(f"{v} does not exist, creating ... ")
    with open(v, "w") as f:
        f.write("0")
with open(v) as f:
    num = int(f.read())
print(f"The number of executions is {num}")
with open(v, "w") as f:
    f.write(str(num + 1))
EOF
cat >"$T/counter.sh" <<'EOF'
f=$1
[ -e "$f" ] || echo 0 >"$f"
n=$(cat "$f")
echo "$n"
echo $((n + 1)) >"$f"
EOF

fs_init
got=()
for i in 1 2 3; do
	fs_mount
	got+=("$(bash "$T/counter.sh" "$MNT/num")")
	fs_umount
done
expect_eq "0 1 2" "${got[*]}" "shell counter"
fs_mount
expect_eq 3 "$(cat "$MNT/num")" "shell counter file"
rm "$MNT/num"
fs_umount

# mount(8)'s helper form: mount.fshield DIR MOUNTPOINT -o key_file=...,trust=...
ln -s "$(readlink -f "$FSHIELD")" "$T/mount.fshield"
got=()
for i in 1 2 3; do
	"$T/mount.fshield" "$BACK" "$MNT" -o "rw,key_file=$KEY,trust=$TRUST,nofail,x-systemd.automount"
	is_mounted "$MNT" || fail "mount.fshield did not mount"
	got+=("$(python3 "$T/counter.py" "$MNT/num" | tail -n 1)")
	fs_umount
done
expect_eq "The number of executions is 0|The number of executions is 1|The number of executions is 2" \
	"$(IFS='|'; echo "${got[*]}")" "python counter"
# mount(8)'s fake mode (-f) mounts nothing.
"$T/mount.fshield" "$BACK" "$MNT" -f -o "key_file=$KEY,trust=$TRUST"
! is_mounted "$MNT" || fail "mount.fshield -f mounted"
echo ok
