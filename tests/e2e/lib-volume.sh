# Helpers for the end-to-end tests that attack a backing directory offline (10-19). Source it after
# `set -euo pipefail`. It sources lib-mount.sh, so the test gets $T, $BACK, $MNT, $KEY, $TRUST, the
# mount helpers and the cleanup that runs on every exit (unmounts everything under $T, FUSE or tmpfs,
# stops this test's daemons, removes $T). On top of that:
#   - TMPDIR points into $T, so the private copies `verify` makes stay inside the test's directory and
#     can be checked for leftovers;
#   - checks are announced (`check`), and a failed expectation prints the actual output, is counted,
#     and the test goes on with the next case; `finish` exits non-zero if any expectation failed.
. "$(dirname "${BASH_SOURCE[0]}")/lib-mount.sh"

export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
FAILED=()
CHECKS=0

check() {
	CHECKS=$((CHECKS + 1))
	echo "check: $*"
}

# soft_fail MESSAGE [FILE...]: records a failed expectation, printing MESSAGE and the files' contents.
soft_fail() {
	local msg=$1 f
	shift
	echo "FAIL: $msg" >&2
	for f in "$@"; do
		[ -e "$f" ] || continue
		echo "---- $(basename "$f"):" >&2
		sed 's/^/    /' "$f" | head -n 40 >&2
	done
	FAILED+=("$msg")
}

finish() {
	if [ "${#FAILED[@]}" -ne 0 ]; then
		echo "${#FAILED[@]} of $CHECKS checks failed:" >&2
		printf '  - %s\n' "${FAILED[@]}" >&2
		exit 1
	fi
	echo "ok: $CHECKS checks"
}

# vol_init [CHUNK_SIZE]: a key and a volume in $BACK bound to $TRUST.
vol_init() {
	"$FSHIELD" keygen -o "$KEY"
	mkdir -p "$BACK"
	"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size "${1:-4096}" "$BACK" >/dev/null
}

# pack_of DIR INO: the pack file of inode INO in the backing directory DIR (exactly one must exist).
pack_of() {
	local hex files
	hex=$(printf '%016x' "$2")
	files=("$1"/d/"${hex:14:2}"/"$hex".*)
	[ "${#files[@]}" -eq 1 ] && [ -f "${files[0]}" ] || fail "no single pack file for inode $2 in $1: ${files[*]}"
	echo "${files[0]}"
}

# fresh NAME [SRC]: a new copy (cp -a) of the backing directory $BACK, or of SRC, as $T/NAME; printed.
fresh() {
	rm -rf "${T:?}/$1"
	cp -a "${2:-$BACK}" "$T/$1"
	echo "$T/$1"
}

# copy_trust NAME: a copy of the trust store $T/trust.db (with its -wal and -shm, if any) as $T/NAME;
# printed as its URI.
copy_trust() {
	local f
	for f in "$T"/trust.db*; do cp -a "$f" "$T/$1${f#"$T"/trust.db}"; done
	echo "file:$T/$1"
}

# dir_state DIR: every entry below DIR (type, mode, size, name) and every regular file's hash.
dir_state() {
	(cd "$1" && find . -printf '%y %m %s %p\n' | LC_ALL=C sort -k4 &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# trust_state FILE: the logical content of a trust store (the file itself may be rewritten by SQLite): its
# identity and the volumes' states, not the writer leases a mounted volume renews.
trust_state() {
	sqlite3 "file:$1?mode=ro" '.dump store volumes' 2>&1
}

# Byte surgery on files (offsets and lengths in bytes).
flip_byte() { # FILE OFFSET
	python3 - "$1" "$2" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    assert len(b) == 1, "offset beyond the end"
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5a]))
EOF
}
put_u32le() { # FILE OFFSET VALUE
	python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(struct.pack("<I", int(sys.argv[3])))' "$1" "$2" "$3"
}
zero_range() { # FILE OFFSET LEN
	dd if=/dev/zero of="$1" bs=1 seek="$2" count="$3" conv=notrunc status=none
}
copy_range() { # SRC SRC_OFFSET DST DST_OFFSET LEN
	python3 -c 'import sys
s, so, d, do, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(s, "rb") as f:
    f.seek(so); data = f.read(n)
assert len(data) == n, "source too short"
with open(d, "r+b") as f:
    f.seek(do); f.write(data)' "$@"
}
swap_ranges() { # FILE OFFSET_A OFFSET_B LEN
	python3 -c 'import sys
p, a, b, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(p, "r+b") as f:
    f.seek(a); x = f.read(n); f.seek(b); y = f.read(n)
    assert len(x) == n and len(y) == n and x != y
    f.seek(a); f.write(y); f.seek(b); f.write(x)' "$@"
}

# sql DB STATEMENTS: runs SQL on a metadata store with the sqlite3 CLI (which checkpoints and removes
# its -wal when it closes).
sql() {
	sqlite3 "$1" "$2"
}

# slot_of DIR INO IDX: the pack file slot of chunk IDX of inode INO (read without touching DIR).
slot_of() {
	local s
	s=$(sqlite3 "file:$1/meta.db?mode=ro&immutable=1" "SELECT slot FROM chunks WHERE ino=$2 AND idx=$3")
	[ -n "$s" ] || fail "no chunk $3 of inode $2 in $1/meta.db"
	echo "$s"
}

# flip_row_byte DB TABLE KEYCOL KEY OFFSET: flips one byte of the blob column `row` of one row.
flip_row_byte() {
	python3 - "$@" <<'EOF'
import sqlite3, sys
db, table, keycol, key, off = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
c = sqlite3.connect(db)
row = bytearray(c.execute("SELECT row FROM %s WHERE %s=?" % (table, keycol), (key,)).fetchone()[0])
row[off] ^= 0x01
n = c.execute("UPDATE %s SET row=? WHERE %s=?" % (table, keycol), (bytes(row), key)).rowcount
assert n == 1, n
c.commit()
c.close()
EOF
}

# chunk_reads FILE GENUINE: reads FILE chunk by chunk ($CS bytes) with O_DIRECT, past the page cache;
# prints one word per chunk: ok (the genuine bytes, as in the file GENUINE), an errno name (EIO...),
# FORGED (bytes other than the genuine ones) or SHORT; or "open:" and the errno name of a failed open.
chunk_reads() {
	python3 - "$1" "$2" "$CS" <<'EOF'
import errno, mmap, os, sys
path, genuine, cs = sys.argv[1], sys.argv[2], int(sys.argv[3])
g = open(genuine, "rb").read()
try:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
except OSError as e:
    print("open:" + errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit()
buf = mmap.mmap(-1, cs)  # page-aligned, as O_DIRECT wants
out = []
for i in range(max(1, (len(g) + cs - 1) // cs)):
    want = g[i * cs:(i + 1) * cs]
    try:
        n = os.preadv(fd, [buf], i * cs)
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    out.append("ok" if buf[:n] == want else "SHORT" if want.startswith(buf[:n]) else "FORGED")
print(" ".join(out))
EOF
}

# run_verify LABEL DIR [OPTIONS...]: runs `fshield verify` as text and as --json on DIR, with --key-file
# $VKEY (default $KEY) and --trust $VTRUST (default $TRUST) unless OPTIONS give their own. Leaves the
# outputs in $T/LABEL.txt and $T/LABEL.json, the status in VSTATUS (text) and VJSTATUS (json). Checks on
# every run: both forms agree on the status and the JSON parses and states it; DIR and the trust store
# are unchanged; verify left nothing in TMPDIR.
VOUT= VJSON= VSTATUS= VJSTATUS=
run_verify() {
	local label=$1 dir=$2 before tbefore= trustfile= a
	shift 2
	local args=("$@")
	if [ "${#args[@]}" -eq 0 ]; then args=(--key-file "${VKEY:-$KEY}" --trust "${VTRUST:-$TRUST}"); fi
	for a in "${args[@]}"; do case $a in file:*) trustfile=${a#file:} ;; esac; done
	before=$(dir_state "$dir")
	[ -z "$trustfile" ] || [ ! -e "$trustfile" ] || tbefore=$(trust_state "$trustfile")
	VOUT=$T/$label.txt VJSON=$T/$label.json
	VSTATUS=0 VJSTATUS=0
	"$FSHIELD" verify "${args[@]}" "$dir" >"$VOUT" 2>"$T/$label.err" || VSTATUS=$?
	cat "$T/$label.err" >>"$VOUT"
	"$FSHIELD" verify --json "${args[@]}" "$dir" >"$VJSON" 2>"$T/$label.jerr" || VJSTATUS=$?
	[ "$VSTATUS" -eq "$VJSTATUS" ] ||
		soft_fail "$label: verify exited $VSTATUS as text but $VJSTATUS with --json" "$VOUT" "$VJSON"
	python3 - "$VJSON" "$VJSTATUS" <<'EOF' || soft_fail "$label: --json output is not one object stating status $VJSTATUS" "$VJSON" "$T/$label.jerr"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["status"] == int(sys.argv[2]), o["status"]
assert isinstance(o["findings"], list)
EOF
	[ "$(dir_state "$dir")" = "$before" ] || soft_fail "$label: verify changed the backing directory $dir"
	[ -z "$trustfile" ] || [ -z "${tbefore:-}" ] || [ "$(trust_state "$trustfile")" = "$tbefore" ] ||
		soft_fail "$label: verify changed the trust store"
	[ -z "$(ls -A "$TMPDIR")" ] || soft_fail "$label: verify left files behind in TMPDIR: $(ls -A "$TMPDIR")"
	rm -rf "${TMPDIR:?}"/* 2>/dev/null || true
	echo "  verify $label: exit $VSTATUS"
	sed -n '1,20s/^/  | /p' "$VOUT" # no pipe: a long report must not end the test with SIGPIPE
}

# expect_vstatus N: the last run_verify exited N.
expect_vstatus() {
	check "verify ($(basename "$VOUT" .txt)) exits $1"
	[ "$VSTATUS" -eq "$1" ] || soft_fail "$(basename "$VOUT" .txt): verify exited $VSTATUS, expected $1" "$VOUT"
}

# expect_text ERE: a line of the last text output matches ERE.
expect_text() {
	check "verify ($(basename "$VOUT" .txt)) prints a line matching: $1"
	grep -Eq -- "$1" "$VOUT" || soft_fail "$(basename "$VOUT" .txt): no line matches '$1'" "$VOUT"
}

# expect_finding KIND PATH CHUNK [BYTE_A BYTE_B]: the last --json output has a finding of KIND about
# PATH (- for the volume as a whole: path null; * for any) and CHUNK (- for none, * for any).
expect_finding() {
	local kind=$1 path=$2 chunk=$3 a=${4:-} b=${5:-}
	check "verify --json ($(basename "$VJSON" .json)) has a finding kind=$kind path=$path chunk=$chunk${a:+ bytes=$a-$b}"
	python3 - "$VJSON" "$kind" "$path" "$chunk" "$a" "$b" <<'EOF' || soft_fail "$(basename "$VJSON" .json): no finding kind=$kind path=$path chunk=$chunk${a:+ bytes $a-$b}" "$VJSON"
import json, sys
o = json.load(open(sys.argv[1]))
kind, path, chunk, a, b = sys.argv[2:7]
def ok(f):
    if f["kind"] != kind:
        return False
    if path == "-" and f["path"] is not None:
        return False
    if path not in ("-", "*") and f["path"] != path:
        return False
    if chunk == "-" and f["chunk"] is not None:
        return False
    if chunk not in ("-", "*") and f["chunk"] != int(chunk):
        return False
    if a and f["bytes"] != [int(a), int(b)]:
        return False
    return True
sys.exit(0 if any(ok(f) for f in o["findings"]) else 1)
EOF
}

# expect_finding_ino KIND INO: the last --json output has a finding of KIND about inode INO.
expect_finding_ino() {
	check "verify --json ($(basename "$VJSON" .json)) has a finding kind=$1 inode=$2"
	python3 - "$VJSON" "$1" "$2" <<'EOF' || soft_fail "$(basename "$VJSON" .json): no finding kind=$1 inode=$2" "$VJSON"
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if any(f["kind"] == sys.argv[2] and f["inode"] == int(sys.argv[3]) for f in o["findings"]) else 1)
EOF
}

# expect_no_finding_about PATH: no finding of the last --json output names PATH.
expect_no_finding_about() {
	check "verify --json ($(basename "$VJSON" .json)) says nothing about $1"
	python3 - "$VJSON" "$1" <<'EOF' || soft_fail "$(basename "$VJSON" .json): a finding names $1" "$VJSON"
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(1 if any(f["path"] == sys.argv[2] for f in o["findings"]) else 0)
EOF
}

# json_field NAME: a top-level field of the last --json output.
json_field() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$VJSON" "$1"
}

# expect_cmd STATUS LABEL COMMAND...: runs COMMAND (output in $T/LABEL.out, stderr in $T/LABEL.err) and
# expects STATUS (a number, or "nonzero").
CSTATUS=
expect_cmd() {
	local want=$1 label=$2
	shift 2
	check "$label: '$(basename "$1") ${*:2}' exits $want"
	CSTATUS=0
	"$@" >"$T/$label.out" 2>"$T/$label.err" </dev/null || CSTATUS=$?
	if [ "$want" = nonzero ]; then
		[ "$CSTATUS" -ne 0 ] || soft_fail "$label: exited 0, expected a failure" "$T/$label.out" "$T/$label.err"
	else
		[ "$CSTATUS" -eq "$want" ] ||
			soft_fail "$label: exited $CSTATUS, expected $want" "$T/$label.out" "$T/$label.err"
	fi
}

# expect_one_line FILE ERE: FILE holds exactly one line, and it matches ERE.
expect_one_line() {
	check "$(basename "$1"): one line matching: $2"
	[ "$(grep -c '' "$1")" -eq 1 ] && grep -Eq -- "$2" "$1" ||
		soft_fail "$(basename "$1"): expected one line matching '$2'" "$1"
}
