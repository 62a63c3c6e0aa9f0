#!/usr/bin/env bash
# Every fshield process turns itself non-dumpable before it reads an argument, so that another local
# user can neither ptrace it nor read its memory through /proc, and no core dump holds its keys. Linux
# shows it in the owner of the files in /proc/PID: a non-dumpable process's belong to root, whatever user
# it runs as (the directory itself keeps the process's user). So fshield runs here as nobody, held waiting
# on a pipe for its passphrase, and /proc/PID/environ is looked at.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

# nobody must reach the binary: a copy in a directory it may traverse ($T only lets it pass through).
chmod 0711 "$T"
mkdir -m 0755 "$T/pub"
cp "$FSHIELD" "$T/pub/fshield"
mkdir -m 0777 "$T/pub/vol"
mkfifo -m 0666 "$T/keypipe" # reopened by nobody as /dev/stdin

check "a subcommand running as another user is not dumpable while it waits for its key"
setpriv --reuid=65534 --regid=65534 --clear-groups "$T/pub/fshield" init --trust none \
	--passphrase-file /dev/stdin "$T/pub/vol" <"$T/keypipe" >"$T/out" 2>&1 &
PID=$!
EXTRA_PIDS+=("$PID")
exec 7>"$T/keypipe" # the writer: the process starts and blocks on its read
# Started once it runs as nobody and waits in its read of the pipe.
wait_until 10 grep -qs '^Uid:[[:space:]]*65534' "/proc/$PID/status" ||
	fail "the process did not start as nobody: $(cat "$T/out")"
wait_until 10 grep -qs pipe "/proc/$PID/wchan" || fail "the process does not wait for its passphrase: $(cat "$T/out")"
owner=$(stat -c %u "/proc/$PID/environ")
[ "$owner" = 0 ] || soft_fail "/proc/$PID/environ belongs to uid $owner: the process is dumpable"
check "closing the pipe ends it: an empty passphrase is refused"
exec 7>&-
st=0
wait "$PID" || st=$?
[ "$st" -ne 0 ] && grep -q "empty passphrase" "$T/out" || soft_fail "exit $st" "$T/out"
finish
