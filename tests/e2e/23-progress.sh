#!/usr/bin/env bash
# Progress of `verify`, `fspf addf` and `image`, as a user sees it. Each command runs with standard error
# on a pseudo-terminal (standard output to a file): the progress line shows items and bytes done of their
# totals, a rate and the time left, is redrawn in place no more than four times a second and is cleared
# at the end. Without a terminal nothing is added to standard error; --progress then prints plain lines
# (no carriage return) at most once a second; --quiet prints no progress, even on a terminal, but still
# every finding. What each command prints on standard output and leaves behind is the same either way.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"
PTY=(python3 "$(dirname "$0")/pty-answer.py")

# on_pty NAME COMMAND...: runs COMMAND with standard error on a new terminal and standard output to
# $T/NAME.out; the terminal's bytes go to $T/NAME.tty, the status to PST, the seconds taken to SECS.
on_pty() {
	local name=$1 t0
	shift
	t0=$(date +%s.%N)
	PST=0
	"${PTY[@]}" "$T/$name.tty" -- sh -c 'exec "$@" >"$0"' "$T/$name.out" "$@" || PST=$?
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
}
# plain NAME COMMAND...: no terminal at all; $T/NAME.out, $T/NAME.err, status in PST.
plain() {
	local name=$1 t0
	shift
	t0=$(date +%s.%N)
	PST=0
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || PST=$?
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
}
# One drawn state: "CMD: [STEP ]DONE/TOTAL UNIT, BYTES/TOTAL, RATE/s[, M:SS left]".
SZ='[0-9.]+ (B|KiB|MiB|GiB)'
line_re() { # CMD UNIT
	echo "^$1: ([^ ]+ )?[0-9]+(/[0-9]+)? $2, $SZ(/$SZ)?, $SZ/s(, [0-9]+:[0-9]{2} left)?\$"
}
# draws NAME: the states drawn on the terminal, one a line (each redraw starts with CR, erase line).
draws() {
	python3 - "$T/$1.tty" <<'EOF'
import sys
t = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
for part in t.split("\r\x1b[K"):
    if part:
        print(part)
EOF
}
# expect_tty NAME CMD UNIT FINAL: the terminal shows valid states, the last one FINAL (a regex), at
# most four a second (and one at the start and one at the end), and ends cleared.
expect_tty() {
	local name=$1 re n max
	re=$(line_re "$2" "$3")
	check "$name: progress drawn in place on the terminal"
	draws "$name" >"$T/$name.draws"
	[ -s "$T/$name.draws" ] || soft_fail "$name: no progress on the terminal" "$T/$name.tty"
	if grep -Evq "$re" "$T/$name.draws"; then soft_fail "$name: a drawn state is malformed" "$T/$name.tty"; fi
	tail -n 1 "$T/$name.draws" | grep -Eq "$4" || soft_fail "$name: last state is not '$4'" "$T/$name.tty"
	[ "$(tail -c 4 "$T/$name.tty" | od -An -tx1 | tr -d ' \n')" = 0d1b5b4b ] ||
		soft_fail "$name: the line is not cleared at the end" "$T/$name.tty"
	n=$(wc -l <"$T/$name.draws")
	max=$(awk -v s="$SECS" 'BEGIN { print int(s * 4) + 3 }')
	[ "$n" -le "$max" ] || soft_fail "$name: $n redraws in $SECS s" "$T/$name.tty"
}
# expect_lines NAME CMD UNIT FINAL: --progress without a terminal: plain lines, the last one FINAL, at
# most one a second (and one at the start and one at the end).
expect_lines() {
	local name=$1 re n max
	re=$(line_re "$2" "$3")
	check "$name: --progress without a terminal prints plain lines"
	[ -s "$T/$name.err" ] || soft_fail "$name: no progress lines" "$T/$name.err"
	if grep -q $'\r' "$T/$name.err"; then soft_fail "$name: carriage return in a log" "$T/$name.err"; fi
	if grep -Evq "$re" "$T/$name.err"; then soft_fail "$name: a progress line is malformed" "$T/$name.err"; fi
	tail -n 1 "$T/$name.err" | grep -Eq "$4" || soft_fail "$name: last line is not '$4'" "$T/$name.err"
	n=$(wc -l <"$T/$name.err")
	max=$(awk -v s="$SECS" 'BEGIN { print int(s) + 2 }')
	[ "$n" -le "$max" ] || soft_fail "$name: $n lines in $SECS s" "$T/$name.err"
}
expect_silent() { # NAME: nothing on standard error (or the terminal)
	check "$1: nothing extra on standard error"
	local f=$T/$1.err
	[ -e "$f" ] || f=$T/$1.tty
	[ ! -s "$f" ] || soft_fail "$1: standard error is not empty" "$f"
}
expect_same() { # NAME_A NAME_B [SED]: the same standard output (after SED) and status
	check "$1 and $2: the same output"
	diff <(sed -E "${3:-}" "$T/$1.out") <(sed -E "${3:-}" "$T/$2.out") >/dev/null ||
		soft_fail "$1 and $2 differ" "$T/$1.out" "$T/$2.out"
}

echo "== verify"
vol_init 4096
fs_mount
mkdir -p "$MNT/d"
head -c 3000000 /dev/urandom >"$MNT/d/big"
head -c 5000 /dev/urandom >"$MNT/small"
IBIG=$(stat -c %i "$MNT/d/big")
fs_umount
CH=$(((3000000 + 4095) / 4096 + 2)) # chunks of big and small
V=("$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$BACK")
plain v-plain "${V[@]}"
expect_eq 0 "$PST" "verify without a terminal"
grep -Eq '^verify: ok: .*\(2 files, 2 directories, '"$CH"' chunks, 3005000 bytes\)$' "$T/v-plain.out" ||
	fail "verify: unexpected result: $(cat "$T/v-plain.out")"
expect_silent v-plain
on_pty v-tty "${V[@]}"
expect_eq 0 "$PST" "verify on a terminal"
expect_tty v-tty verify chunks "^verify: $CH/$CH chunks, 2\.9 MiB/2\.9 MiB, $SZ/s, 0:00 left\$"
expect_same v-plain v-tty
plain v-forced "$FSHIELD" verify --progress --key-file "$KEY" --trust "$TRUST" "$BACK"
expect_eq 0 "$PST" "verify --progress"
expect_lines v-forced verify chunks "^verify: $CH/$CH chunks, 2\.9 MiB/2\.9 MiB, $SZ/s, 0:00 left\$"
expect_same v-plain v-forced
on_pty v-quiet "$FSHIELD" verify --quiet --key-file "$KEY" --trust "$TRUST" "$BACK"
expect_eq 0 "$PST" "verify --quiet"
expect_silent v-quiet
check "verify --quiet: no summary when all is well"
[ ! -s "$T/v-quiet.out" ] || soft_fail "verify --quiet printed a summary" "$T/v-quiet.out"
# A finding is never silenced, and is the same with progress on.
d=$(fresh flip)
flip_byte "$d/$(pack_of "$BACK" "$IBIG" | sed "s|^$BACK/||")" 100
plain f-plain "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$d"
expect_eq 1 "$PST" "verify of a flipped byte"
on_pty f-tty "$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" "$d"
expect_eq 1 "$PST" "verify of a flipped byte on a terminal"
expect_same f-plain f-tty
on_pty f-quiet "$FSHIELD" verify -q --key-file "$KEY" --trust "$TRUST" "$d"
expect_eq 1 "$PST" "verify --quiet of a flipped byte"
expect_silent f-quiet
expect_same f-plain f-quiet
check "verify --quiet still prints the finding"
grep -q '^integrity violation: /d/big chunk' "$T/f-quiet.out" || soft_fail "finding silenced" "$T/f-quiet.out"

echo "== fspf addf"
SRC=$T/src
mkdir -p "$SRC/sub"
head -c 2500000 /dev/urandom >"$SRC/big"
echo hi >"$SRC/sub/small"
ln -s big "$SRC/link"
# addf NAME [OPTION...]: a new fspf $T/NAME.fspf, the tree added as /app into $T/NAME.tree
addf() {
	local name=$1
	shift
	"$FSHIELD" fspf create "$T/$name.fspf" >/dev/null
	"$FSHIELD" fspf addr "$T/$name.fspf" /app --encrypted >/dev/null
	A=("$FSHIELD" fspf addf "$@" "$T/$name.fspf" /app "$SRC" "$T/$name.tree")
}
ADDF_FINAL="^fspf addf: 5/5 entries, 2\.4 MiB/2\.4 MiB, $SZ/s, 0:00 left\$"
addf a-plain
plain a-plain "${A[@]}"
expect_eq 0 "$PST" "fspf addf"
grep -Eq '^Added /app: 2 files \(2500003 bytes\), 2 directories, 1 symbolic links$' "$T/a-plain.out" ||
	fail "fspf addf: unexpected result: $(cat "$T/a-plain.out")"
expect_silent a-plain
addf a-tty
on_pty a-tty "${A[@]}"
expect_eq 0 "$PST" "fspf addf on a terminal"
expect_tty a-tty "fspf addf" entries "$ADDF_FINAL"
expect_same a-plain a-tty
addf a-forced --progress
plain a-forced "${A[@]}"
expect_eq 0 "$PST" "fspf addf --progress"
expect_lines a-forced "fspf addf" entries "$ADDF_FINAL"
expect_same a-plain a-forced
addf a-quiet --quiet
on_pty a-quiet "${A[@]}"
expect_eq 0 "$PST" "fspf addf --quiet"
expect_silent a-quiet
check "fspf addf --quiet: no summary, the same manifest entries"
[ ! -s "$T/a-quiet.out" ] || soft_fail "fspf addf --quiet printed a summary" "$T/a-quiet.out"
for n in a-tty a-forced a-quiet; do
	[ "$(find "$T/$n.tree" -printf '%y %s %P\n' | sort)" = "$(find "$T/a-plain.tree" -printf '%y %s %P\n' | sort)" ] ||
		soft_fail "$n: the written tree differs"
	[ "$("$FSHIELD" fspf show "$T/$n.fspf" | grep -c '^[dfl] ')" = 6 ] || soft_fail "$n: the fspf lacks entries"
done

echo "== image"
RF=$T/rootfs
mkdir -p "$RF/app" "$RF/usr/lib/x"
head -c 1500000 /dev/urandom >"$RF/app/blob"
echo 'print(1)' >"$RF/app/main.py"
echo lib >"$RF/usr/lib/x/l.py"
tar -C "$RF" -czf "$T/rootfs.tgz" .
KEYS='s/[0-9a-f]{64}/HEX/g'
for from in dir tar; do
	src=$RF
	[ "$from" = dir ] || src=$T/rootfs.tgz
	I=(--from "$src" --encrypt /app --authenticate /usr/lib)
	plain i-$from-p "$FSHIELD" image "${I[@]}" --to "$T/i-$from-p.img"
	expect_eq 0 "$PST" "image from a $from"
	grep -Eq '^Encrypted file system protection file .*/fshield.fspf key: [0-9a-f]{64} tag: [0-9a-f]{64}$' \
		"$T/i-$from-p.out" || fail "image: unexpected result: $(cat "$T/i-$from-p.out")"
	expect_silent i-$from-p
	on_pty i-$from-t "$FSHIELD" image "${I[@]}" --to "$T/i-$from-t.img"
	expect_eq 0 "$PST" "image from a $from on a terminal"
	expect_tty i-$from-t image entries "^image: /usr/lib 3/3 entries, 4 B/4 B, $SZ/s, 0:00 left\$"
	expect_same i-$from-p i-$from-t "$KEYS; s/i-$from-[pt]/IMG/g"
	plain i-$from-f "$FSHIELD" image --progress "${I[@]}" --to "$T/i-$from-f.img"
	expect_eq 0 "$PST" "image --progress from a $from"
	expect_lines i-$from-f image entries "^image: /usr/lib 3/3 entries, 4 B/4 B, $SZ/s, 0:00 left\$"
	expect_same i-$from-p i-$from-f "$KEYS; s/i-$from-[pf]/IMG/g"
	on_pty i-$from-q "$FSHIELD" image --quiet "${I[@]}" --to "$T/i-$from-q.img"
	expect_eq 0 "$PST" "image --quiet from a $from"
	expect_silent i-$from-q
	expect_same i-$from-p i-$from-q "$KEYS; s/i-$from-[pq]/IMG/g"
	check "image from a $from: the same files written with or without progress"
	for n in t f q; do
		[ "$(cd "$T/i-$from-$n.img" && find . -printf '%y %s %P\n' | sort)" = \
			"$(cd "$T/i-$from-p.img" && find . -printf '%y %s %P\n' | sort)" ] ||
			soft_fail "image $n from a $from: the output differs"
	done
done
check "image from a tar: the extraction is drawn"
draws i-tar-t >"$T/i-tar-t.draws"
grep -Eq "^image: extracting [0-9]+ entries, $SZ, $SZ/s\$" "$T/i-tar-t.draws" ||
	soft_fail "no progress of the extraction" "$T/i-tar-t.tty"
finish
