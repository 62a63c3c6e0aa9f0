#!/usr/bin/env bash
# Keys and tags never go on a command line: every local user can read /proc/PID/cmdline, and a mount's
# daemon keeps its command line for the life of the mount. The old forms (--fspf-key K, --fspf-tag T,
# -o fspf_key=K,fspf_tag=T, fspf verify --key K --tag T, fspf show FSPF KEY) are refused with a message
# that names the form to use instead, and without echoing the value; the file and descriptor forms work;
# and while an image is mounted (daemon and foreground) no fshield process's command line holds a byte
# of its key or tag.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

SRC=$T/src ROOT=$T/root W=$T/app.fspf
mkdir -p "$SRC/app"
echo 'KEYS-TEST-SECRET' >"$SRC/app/secret.txt"
"$FSHIELD" fspf create "$W" >/dev/null
"$FSHIELD" fspf addr "$W" /app --encrypted >/dev/null
"$FSHIELD" fspf addf "$W" /app "$SRC/app" "$ROOT/app" >/dev/null
line=$("$FSHIELD" fspf encrypt "$W")
K=$(sed -n 's/.* key: \([0-9a-f]*\) tag: .*/\1/p' <<<"$line")
TG=$(sed -n 's/.* tag: \([0-9a-f]*\)$/\1/p' <<<"$line")
[ ${#K} = 64 ] && [ ${#TG} = 64 ] || fail "no key and tag in: $line"
echo "$K" >"$T/fspf.key"
chmod 600 "$T/fspf.key"
echo "$TG" >"$T/fspf.tag"
chmod 600 "$T/fspf.tag"
HELPER=$(dirname "$FSHIELD")/mount.fshield

# refused LABEL INSTEAD COMMAND...: COMMAND exits 64, says the form INSTEAD, echoes neither key nor tag,
# and mounts nothing.
refused() {
	local label=$1 instead=$2
	shift 2
	expect_cmd 64 "$label" "$@"
	check "$label: the message names $instead"
	grep -qF -- "$instead" "$T/$label.err" || soft_fail "$label: no '$instead' in the message" "$T/$label.err"
	check "$label: the message holds neither key nor tag"
	! grep -qiE -- "$K|$TG" "$T/$label.err" "$T/$label.out" || soft_fail "$label: the secret is echoed" "$T/$label.err"
	! is_mounted "$MNT" || { fusermount3 -u "$MNT"; soft_fail "$label: mounted"; }
}

refused mount-key "--fspf-key-file FILE or --fspf-key-fd N" \
	"$FSHIELD" mount --fspf "$W" --fspf-key "$K" --fspf-tag-file "$T/fspf.tag" "$ROOT" "$MNT"
refused mount-tag "--fspf-tag-file FILE or --fspf-tag-fd N" \
	"$FSHIELD" mount --fspf "$W" --fspf-key-file "$T/fspf.key" --fspf-tag "$TG" "$ROOT" "$MNT"
refused mount-o-key "-o fspf_key_file=FILE or -o fspf_key_fd=N" \
	"$FSHIELD" mount -o "fspf=$W,fspf_key=$K,fspf_tag_file=$T/fspf.tag" "$ROOT" "$MNT"
refused mount-o-tag "-o fspf_tag_file=FILE or -o fspf_tag_fd=N" \
	"$FSHIELD" mount -o "fspf=$W,fspf_key_file=$T/fspf.key,fspf_tag=$TG" "$ROOT" "$MNT"
refused helper-o-key "-o fspf_key_file=FILE" \
	"$HELPER" "$ROOT" "$MNT" -o "fspf=$W,fspf_key=$K,fspf_tag=$TG"
refused verify-key "--key-file FILE or --key-fd N" \
	"$FSHIELD" fspf verify --key "$K" --tag-file "$T/fspf.tag" "$W" "$ROOT"
refused verify-tag "--tag-file FILE or --tag-fd N" \
	"$FSHIELD" fspf verify --key-file "$T/fspf.key" --tag "$TG" "$W" "$ROOT"
refused show-key "show --key-file FILE FSPF" "$FSHIELD" fspf show "$W" "$K"
refused show-key-opt "--key-file FILE or --key-fd N" "$FSHIELD" fspf show --key "$K" "$W"

check "the file and descriptor forms work"
"$FSHIELD" fspf verify --key-file "$T/fspf.key" --tag-fd 3 "$W" "$ROOT" 3<"$T/fspf.tag" >"$T/v.out" 2>&1 ||
	soft_fail "fspf verify --key-file --tag-fd" "$T/v.out"
"$FSHIELD" fspf show --key-fd 3 "$W" 3<"$T/fspf.key" >"$T/s.out" 2>&1 && grep -q ' /app/secret.txt$' "$T/s.out" ||
	soft_fail "fspf show --key-fd" "$T/s.out"
check "a descriptor that holds no key is refused with a message naming it"
expect_cmd 64 short-fd "$FSHIELD" fspf show --key-fd 3 "$W" 3<<<abcd
grep -q -- '--key-fd 3: it must hold exactly 64 hex digits' "$T/short-fd.err" ||
	soft_fail "short key on a descriptor: unclear message" "$T/short-fd.err"

# no_secret_in_cmdlines: no process running this test's fshield binary has the key or the tag (hex in
# either case, or raw) in its command line; prints how many it looked at.
no_secret_in_cmdlines() {
	python3 - "$(readlink -f "$FSHIELD")" "$K" "$TG" <<'EOF'
import os, sys
exe, secrets = sys.argv[1], sys.argv[2:]
needles = [s.encode() for s in secrets] + [s.upper().encode() for s in secrets] + [bytes.fromhex(s) for s in secrets]
seen = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.readlink("/proc/%s/exe" % pid) != exe:
            continue
        cmd = open("/proc/%s/cmdline" % pid, "rb").read()
    except OSError:
        continue
    seen += 1
    for n in needles:
        if n in cmd:
            print("pid %s: %r" % (pid, cmd))
            sys.exit(1)
print(seen)
EOF
}

check "a daemon serving an image (key from a file, tag from a descriptor): no key bytes in any command line"
if "$FSHIELD" mount --fspf "$W" --fspf-key-file "$T/fspf.key" --fspf-tag-fd 3 "$ROOT" "$MNT" 3<"$T/fspf.tag" \
	2>"$T/m.err"; then
	expect_eq KEYS-TEST-SECRET "$(cat "$MNT/app/secret.txt")" "the file read through the mount"
	n=$(no_secret_in_cmdlines) || soft_fail "a command line holds the key or tag: $n"
	[ "${n:-0}" -ge 1 ] || soft_fail "no fshield process found to look at"
	echo "  $n fshield process(es) looked at"
	fs_umount
else
	soft_fail "mount with --fspf-key-file and --fspf-tag-fd" "$T/m.err"
fi

check "a foreground mount (key and tag from descriptors, as -o options): no key bytes in any command line"
"$FSHIELD" mount -f -o "fspf=$W,fspf_key_fd=3,fspf_tag_fd=4" "$ROOT" "$MNT" 3<"$T/fspf.key" 4<"$T/fspf.tag" \
	2>"$T/fg.err" &
FG=$!
EXTRA_PIDS+=("$FG")
if wait_until 10 is_mounted "$MNT"; then
	n=$(no_secret_in_cmdlines) || soft_fail "a command line holds the key or tag: $n"
	[ "${n:-0}" -ge 1 ] || soft_fail "no fshield process found to look at"
	"$FSHIELD" umount "$MNT" >/dev/null 2>&1 || true
	st=0
	wait "$FG" || st=$?
	[ "$st" = 0 ] || soft_fail "the foreground daemon exited $st" "$T/fg.err"
else
	soft_fail "the foreground mount with -o fspf_key_fd,fspf_tag_fd did not come up" "$T/fg.err"
fi
finish
