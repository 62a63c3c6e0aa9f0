#!/usr/bin/env bash
# Crash safety of the commit protocol (docs/THREAT-MODEL.md "Crash safety", fs/volume/commit.c): a writer
# killed at every named step of a commit (FSHIELD_CRASH_AT) leaves a volume that reopens at exactly the
# state of the last round or of the round being committed, never a mix; `fshield verify` tells a pending
# commit (4) from a clean state (0) before the next open and finds nothing after it; several crashes in a
# row, crashes during recovery, and a backing directory restored from a copy (accepted while the anchor
# has not moved on, refused as rollback or fork once it has). Leftovers may only be pack files that verify
# names as unreferenced notes. Drives tests/tools/crashwriter (one commit per round: round N is version N).
set -euo pipefail
: "${FSHIELD:?set FSHIELD to the fshield binary}"
: "${BUILD:?set BUILD to the build directory}"
CW=$BUILD/tests/tools/crashwriter
[ -x "$CW" ] || { echo "FAIL: $CW missing (make BUILD=...)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fshield-crash.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP
export TMPDIR=$T/tmp # verify's private copies of the store
mkdir -p "$TMPDIR"
BACK=$T/backing
KEY=$T/key
TRUST=file:$T/trust.db
SOFT=() # findings that do not stop the run (verify statuses); reported at the end
VST=0 VJST=0 VVER=none VTRUST=none VKINDS='' VNOTES='' NOTES=0 # set by verify_json, no_leftovers

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
soft_fail() {
	echo "FAIL (continuing): $*" >&2
	SOFT+=("$*")
}

# write ROUND [POINT]: commits round ROUND; with POINT the writer must die by SIGKILL at that crash point.
write() {
	local round=$1 point=${2:-} rc=0
	if [ -z "$point" ]; then
		"$CW" write "$BACK" "$KEY" "$TRUST" "$round" >"$T/w.out" 2>"$T/w.err" || rc=$?
		[ "$rc" -eq 0 ] || fail "write round $round exited $rc: $(cat "$T/w.err")"
		[ "$(cat "$T/w.out")" = "round $round version $round" ] || fail "write round $round: $(cat "$T/w.out")"
		return
	fi
	# in a subshell that outlives the writer, so that the shell's "Killed" notice goes to /dev/null
	(FSHIELD_CRASH_AT=$point "$CW" write "$BACK" "$KEY" "$TRUST" "$round" >"$T/w.out" 2>"$T/w.err"; exit $?) 2>/dev/null || rc=$?
	[ "$rc" -eq 137 ] || fail "write round $round with FSHIELD_CRASH_AT=$point exited $rc, not 137: $(cat "$T/w.err")"
	grep -q "crash point $point reached" "$T/w.err" || fail "round $round died, but not at crash point $point"
	[ ! -s "$T/w.out" ] || fail "write round $round reported success before dying at $point"
}

# expect_state ROUND: a read-write open (completing whatever is pending) shows exactly round ROUND.
expect_state() {
	local rc=0
	"$CW" check "$BACK" "$KEY" "$TRUST" >"$T/c.out" 2>"$T/c.err" || rc=$?
	[ "$rc" -eq 0 ] || fail "check exited $rc (expected round $1): $(cat "$T/c.err")"
	[ "$(head -n 1 "$T/c.out")" = "round $1 version $1" ] || fail "expected round $1 version $1, got: $(head -n 1 "$T/c.out")"
}

# expect_refused STATUS WORDS: the open is refused with STATUS and a reason starting with WORDS.
expect_refused() {
	local rc=0
	"$CW" check "$BACK" "$KEY" "$TRUST" >"$T/c.out" 2>"$T/c.err" || rc=$?
	[ "$rc" -eq "$1" ] || fail "check exited $rc, expected $1 ($2): $(cat "$T/c.err")"
	grep -q "$2" "$T/c.err" || fail "check refused the volume without '$2': $(cat "$T/c.err")"
}

cat >"$T/vj.py" <<'EOF'
import json, shlex, sys
j = json.load(open(sys.argv[1]))
notes = [f["message"].split()[1] for f in j["findings"] if f["kind"] == "unreferenced" and f["status"] == 0]
kinds = sorted({f["kind"] for f in j["findings"] if f["status"] != 0})
print("VJST=%d VVER=%s VTRUST=%s VKINDS=%s VNOTES=%s" % (j["status"], j.get("version", "none"),
      j.get("trusted_version", "none"), shlex.quote(",".join(kinds)), shlex.quote(" ".join(sorted(notes)))))
EOF

# verify_json: runs `fshield verify --json`; sets VST (exit), VVER, VTRUST, VKINDS, VNOTES.
verify_json() {
	VST=0
	"$FSHIELD" verify --key-file "$KEY" --trust "$TRUST" --json "$BACK" >"$T/v.json" 2>"$T/v.err" || VST=$?
	eval "$(python3 "$T/vj.py" "$T/v.json")" || fail "verify --json printed no JSON (exit $VST): $(cat "$T/v.err")"
	[ "$VJST" -eq "$VST" ] || fail "verify exited $VST but its JSON says status $VJST"
}

# expect_verify STATUS VERSION TRUSTED WHAT: verify's exit, the volume's and the anchor's versions.
expect_verify() {
	verify_json
	local got="status $VST, version $VVER, trusted $VTRUST"
	[ "$got" = "status $1, version $2, trusted $3" ] ||
		soft_fail "$4: verify: expected status $1, version $2, trusted $3; got $got ($VKINDS): $(grep -o '"message": "[^"]*' "$T/v.json" | grep -v 'note:' | head -n 3 | tr '\n' ' ')"
	case ",$VKINDS," in
	,, | ,pending, | ,rollback, | ,fork,) ;;
	*) fail "$4: verify found $VKINDS: $(cat "$T/v.json")" ;;
	esac
}

# no_leftovers: after a completed open, every file in the backing directory is part of the volume, or a
# pack file that verify names as unreferenced.
no_leftovers() {
	expect_state "$1"
	verify_json
	[ "$VST" -eq 0 ] || fail "verify after a read-write open exited $VST ($VKINDS)"
	local f rel referenced notes=" $VNOTES "
	referenced=" $(sed -n 's/^pack //p' "$T/c.out" | tr '\n' ' ') "
	while IFS= read -r f; do
		rel=${f#"$BACK"/}
		case "$rel" in
		volume.hdr | meta.db | meta.db-wal | meta.db-shm | meta.db.reserve | volume.lock | anchor.uri) ;;
		d/[0-9a-f][0-9a-f]/*)
			case "$referenced" in *" $rel "*) continue ;; esac
			case "$notes" in *" $rel "*) continue ;; esac
			fail "leftover $rel is neither part of the volume nor reported by verify" ;;
		*) fail "unexpected file in the backing directory: $rel" ;;
		esac
	done < <(find "$BACK" -type f)
	for f in $VNOTES; do
		case "$referenced" in *" $f "*) fail "verify calls $f unreferenced, but a file uses it" ;; esac
	done
	while IFS= read -r f; do
		rel=${f#"$BACK"}
		case "$rel" in "" | /d | /d/[0-9a-f][0-9a-f]) ;; *) fail "unexpected directory $rel" ;; esac
	done < <(find "$BACK" -type d)
	NOTES=$(wc -w <<<"$VNOTES")
}

# restore_test COPY ROUND ACCEPTED: with the crashed directory set aside, the copy taken before the crash
# (round ROUND) is accepted as it is, or refused as a rollback; then the crashed directory comes back.
restore_test() {
	mv "$BACK" "$T/crashed"
	cp -a "$1" "$BACK"
	if [ "$3" = accepted ]; then
		expect_verify 0 "$2" "$2" "restored copy of round $2"
		expect_state "$2"
	else
		expect_verify 2 "$2" "$(($2 + 1))" "restored copy of round $2"
		expect_refused 2 "rollback detected: volume version $2 < trusted version $(($2 + 1))"
	fi
	rm -rf "$BACK"
	mv "$T/crashed" "$BACK"
}

"$FSHIELD" keygen -o "$KEY"
mkdir "$BACK"
"$FSHIELD" init --key-file "$KEY" --trust "$TRUST" --chunk-size 4096 "$BACK" >/dev/null
expect_state 0
write 1
no_leftovers 1
expect_verify 0 1 1 "round 1"
notes=$NOTES

# One crash at each step of the commit of round r+1 (version r+1) over round r.
#   point        verify before reopen        anchor   state after reopen   pre-crash copy restored
#   data-synced  0 (nothing prepared)        r        r                    accepted (anchor at r)
#   prepared     4 (pending: anchor has r)   r        r+1 (rolled forward) accepted (anchor at r)
#   anchored     0 (anchor acknowledged r+1; r+1      r+1                  rollback
#                  only the mark is missing)
#   marked       0                           r+1      r+1                  rollback
#   retired      0                           r+1      r+1                  rollback
# Exit 4 means "a prepared commit the anchor has not acknowledged" (docs/CLI.md, meta/common/status.h). At the
# time of writing, fsv_verify also reports the anchored-but-unmarked state as pending ("version N
# prepared on trusted version N") and exits 4; those checks fail (and the run goes on) until it is fixed.
r=1
for point in data-synced prepared anchored marked retired; do
	rm -rf "$T/pre"
	cp -a "$BACK" "$T/pre"
	write $((r + 1)) "$point"
	case $point in
	data-synced) expect_verify 0 $r $r "crash at $point"; next=$r ;;
	prepared) expect_verify 4 $((r + 1)) $r "crash at $point"; next=$((r + 1)) ;;
	*) expect_verify 0 $((r + 1)) $((r + 1)) "crash at $point"; next=$((r + 1)) ;;
	esac
	case $point in
	data-synced | prepared) restore_test "$T/pre" $r accepted ;;
	*) restore_test "$T/pre" $r rollback ;;
	esac
	no_leftovers $next
	expect_verify 0 $next $next "after reopening from a crash at $point"
	[ "$NOTES" -le $((notes + 1)) ] || fail "crash at $point left $((NOTES - notes)) unreferenced pack files"
	notes=$NOTES
	r=$next
	# the volume goes on: a normal round after every crash
	write $((r + 1))
	r=$((r + 1))
	expect_state $r
done

# Several crashes in a row, without a successful open in between; some during recovery at open (the
# roll-forward of a prepared commit passes the steps anchored, marked, retired again).
write $((r + 1)) prepared                 # r+1 prepared
expect_verify 4 $((r + 1)) $r "crashes in a row: prepared"
write $((r + 2)) anchored                 # dies while rolling r+1 forward, after the anchor moved
expect_verify 0 $((r + 1)) $((r + 1)) "crashes in a row: anchored during recovery"
write $((r + 2)) data-synced              # recovery marks r+1; dies before preparing r+2
expect_verify 0 $((r + 1)) $((r + 1)) "crashes in a row: data-synced after recovery"
write $((r + 2)) prepared                 # r+2 prepared
expect_verify 4 $((r + 2)) $((r + 1)) "crashes in a row: prepared again"
write $((r + 3)) marked                   # dies rolling r+2 forward, after marking it
expect_verify 0 $((r + 2)) $((r + 2)) "crashes in a row: marked during recovery"
write $((r + 3)) prepared                 # r+3 prepared
write $((r + 4)) retired                  # dies after rolling r+3 forward completely
expect_verify 0 $((r + 3)) $((r + 3)) "crashes in a row: retired during recovery"
r=$((r + 3))
no_leftovers $r
[ "$NOTES" -le $((notes + 4)) ] || fail "five crashes left $((NOTES - notes)) unreferenced pack files"
notes=$NOTES

# A copy taken after a crash at prepared, restored after recovery completed that commit: the same
# (version, root) as the anchor's, so it is accepted (only the mark is missing).
write $((r + 1)) prepared
rm -rf "$T/prep"
cp -a "$BACK" "$T/prep"
expect_state $((r + 1))
rm -rf "$BACK"
cp -a "$T/prep" "$BACK"
expect_verify 0 $((r + 1)) $((r + 1)) "copy holding the prepared commit, restored after recovery"
expect_state $((r + 1))
r=$((r + 1))

# A prepared commit abandoned by restoring the copy from before it, when the volume then commits another
# version r+1: the abandoned copy is a fork (same version, other root) and is never rolled forward.
rm -rf "$T/pre" "$T/prep"
cp -a "$BACK" "$T/pre"
write $((r + 1)) prepared
cp -a "$BACK" "$T/prep"
rm -rf "$BACK"
cp -a "$T/pre" "$BACK"
expect_verify 0 $r $r "copy from before the abandoned prepared commit"
write $((r + 1))
mv "$BACK" "$T/good"
cp -a "$T/prep" "$BACK"
expect_verify 3 $((r + 1)) $((r + 1)) "abandoned prepared commit restored after another commit"
expect_refused 3 "fork detected"
rm -rf "$BACK"
cp -a "$T/pre" "$BACK"
expect_refused 2 "rollback detected: volume version $r < trusted version $((r + 1))"
rm -rf "$BACK"
mv "$T/good" "$BACK"
r=$((r + 1))
no_leftovers $r
expect_verify 0 $r $r "final state"

if [ ${#SOFT[@]} -gt 0 ]; then
	echo "FAIL: ${#SOFT[@]} verify findings differ from the contract:" >&2
	printf '  %s\n' "${SOFT[@]}" >&2
	exit 1
fi
echo "ok: round $r, $notes unreferenced pack files left by crashes"
