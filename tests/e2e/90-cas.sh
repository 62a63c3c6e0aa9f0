#!/usr/bin/env bash
# The CAS (docs/CAS.md) end to end: a real `fshield cas serve` on 127.0.0.1 (a free port it picks, kept
# across restarts), certificates made here with openssl, volumes mounted through cas:// with the key
# released by the CAS. Checked:
#   - sessions: create, the creator alone reads it (a listed client sees only its creator), bad YAML and unknown fields refused (4xx, exit 6);
#   - the counter (read, print, write + 1) across remounts; init of a registered volume refused;
#   - an old snapshot of the backing directory put back: the mount is refused as a rollback (exit 2);
#   - a second writer (a copy of the backing directory mounted as well): refused (7) while the first holds
#     its writer lease, a rollback (2) once the first has committed; the first writer's data is intact;
#   - refused, and no key released: a client the session does not list, a session that does not exist,
#     a measurement the session does not list; a client without a certificate, or with one from another
#     CA, fails the TLS handshake and gets no HTTP answer;
#   - a writer killed between its local prepare and the CAS answer (FSHIELD_CRASH_AT=prepared), and a CAS
#     that commits but drops its answer (--drop-replies-after): the next mount, or the next fsync of the
#     running daemon, completes the commit at the right version, without a false alarm;
#   - the CAS killed and restarted under an fsync load: fsync fails with EIO while it is away, the load
#     goes on when it is back, no acknowledged commit is lost, the volume never turns read-only;
#   - a CAS that accepts connections but does not answer (stopped): fsync fails with EIO after the
#     configured time (FSHIELD_CAS_TIMEOUT), and succeeds once it answers; a mount while it is down: 6;
#   - bad input: malformed JSON, unknown fields, oversized bodies, bad YAML, a replayed nonce, a stale
#     time: 4xx each, and the server keeps serving;
#   - update_policy no_rollback_protection: an old snapshot mounts (with the warning), as documented.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

expect_eq "$(openssl x509 -in "$PKI/client.crt" -outform DER | sha256sum | cut -d' ' -f1)" "$(fp client)" \
	"fingerprint = SHA-256 of the DER certificate"

# ---- the server ----
cas_start main "sqlite:$T/cas.db"
CAS=127.0.0.1:${CPORT[main]}
echo "CAS on $CAS"

URI=cas://$CAS/e2e/app/V1

# ---- requests of our own (python's ssl): for bad input and TLS failures ----
cat >"$T/req.py" <<'EOF'
import http.client, json, os, socket, ssl, sys
# req.py CERT|- KEY|- METHOD PATH [BODYFILE|-] [CTYPE]: prints "STATUS BODY", or "TLSFAIL reason" when the
# connection ends without any HTTP answer.
cert, key, method, path = sys.argv[1:5]
body = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 and sys.argv[5] != "-" else None
ctype = sys.argv[6] if len(sys.argv) > 6 else "application/json"
ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.environ["CA"])
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
if cert != "-":
    ctx.load_cert_chain(cert, key)
c = http.client.HTTPSConnection("127.0.0.1", int(os.environ["PORT"]), context=ctx, timeout=10)
try:
    c.request(method, path, body=body, headers={"Content-Type": ctype} if body is not None else {})
    r = c.getresponse()
    print(r.status, r.read().decode(errors="replace"))
except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, socket.timeout, OSError) as e:
    print("TLSFAIL", type(e).__name__, e)
EOF
req() { CA=$PKI/ca.crt PORT=${CPORT[main]} python3 "$T/req.py" "$@"; }
req_client() { req "$PKI/client.crt" "$PKI/client.key" "$@"; }
expect_status_line() { # expect_status_line STATUS OUTPUT WHAT
	[ "${2%% *}" = "$1" ] || fail "$3: expected HTTP $1, got: $2"
}

# ---- the request log: a client-given URL cannot forge a line or reach the terminal ----
echo "log: a URL with a newline and an escape byte gives one escaped log line"
FORGE='/v1/volumes/x%0a1234567890abcdef%20POST%20/v1/volumes/atk/app/V1/key%20-%3E%20200%1b%5b31m'
out=$(req_client GET "$FORGE")
expect_status_line 404 "$out" "the forged URL"
wait_until 10 grep -q 'x\\x0a1234567890abcdef POST /v1/volumes/atk/app/V1/key -> 200\\x1b\[31m -> 404' \
	"$T/cas.main.log" || fail "the request is not logged escaped on one line: $(tail -n 3 "$T/cas.main.log")"
! grep -q $'\x1b' "$T/cas.main.log" || fail "a raw escape byte reached the CAS log"
! grep -q '^1234567890abcdef POST /v1/volumes/atk' "$T/cas.main.log" || fail "the URL forged a log line"

# ---- sessions ----
MEAS=$(sha256sum "$(readlink -f "$FSHIELD")" | cut -d' ' -f1)
cat >"$T/session.yaml" <<EOF
name: e2e/app
version: "0.3"
volumes:
  - name: V1
    update_policy: rollback_protected
    clients: [$(fp client)]
  - name: M1
    update_policy: rollback_protected
    clients: [$(fp client)]
    measurements: [$MEAS]
  - name: M2
    update_policy: rollback_protected
    clients: [$(fp client)]
    measurements: [$(printf '0%.0s' $(seq 64))]
  - name: N1
    update_policy: no_rollback_protection
    clients: [$(fp client)]
EOF
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" >"$T/out" || fail "session create: $(cat "$T/out")"
grep -q "\"creator\": \"$(fp owner)\"" "$T/out" || fail "session create did not name its creator: $(cat "$T/out")"
expect_status 6 as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" 2>"$T/err"
grep -q "HTTP 409" "$T/err" || fail "second create: $(cat "$T/err")"
as_owner "$FSHIELD" cas session show e2e/app --cas "$CAS" >"$T/out"
grep -q '"update_policy": "no_rollback_protection"' "$T/out" || fail "session show: $(cat "$T/out")"
! grep -qi '"key"' "$T/out" || fail "session show printed a key: $(cat "$T/out")"
"$FSHIELD" cas session show e2e/app --cas "$CAS" >"$T/out" # a listed client: who created it, not the session
grep -q "\"creator\": \"$(fp owner)\"" "$T/out" || fail "show by a listed client: $(cat "$T/out")"
! grep -q '"session"' "$T/out" || fail "a client that is not the creator was shown the session: $(cat "$T/out")"
expect_status 6 env FSHIELD_TLS_CERT="$PKI/other.crt" FSHIELD_TLS_KEY="$PKI/other.key" \
	"$FSHIELD" cas session show e2e/app --cas "$CAS" 2>"$T/err" # neither the creator nor listed
grep -q "HTTP 403" "$T/err" || fail "show by another client: $(cat "$T/err")"
expect_status 6 "$FSHIELD" cas session update "$T/session.yaml" --cas "$CAS" 2>"$T/err"
grep -q "HTTP 403" "$T/err" || fail "update by another client: $(cat "$T/err")"
as_owner "$FSHIELD" cas session update "$T/session.yaml" --cas "$CAS" >/dev/null
printf 'name: e2e/bad\nvolumes: [\n' >"$T/bad.yaml"
out=$(req "$PKI/owner.crt" "$PKI/owner.key" POST /v1/sessions "$T/bad.yaml" application/yaml)
expect_status_line 400 "$out" "bad YAML"
grep -q "bad YAML" <<<"$out" || fail "bad YAML: no reason: $out"
printf 'name: e2e/bad\nadmins: [x]\nvolumes: [{name: V, update_policy: rollback_protected, clients: [%s]}]\n' \
	"$(fp client)" >"$T/bad.yaml"
expect_status 6 as_owner "$FSHIELD" cas session create "$T/bad.yaml" --cas "$CAS" 2>"$T/err"
grep -q "HTTP 400.*unknown field 'admins'" "$T/err" || fail "unknown field: $(cat "$T/err")"

# ---- the counter through the CAS ----
cat >"$T/counter.sh" <<'EOF'
f=$1
[ -e "$f" ] || echo 0 >"$f"
n=$(cat "$f")
echo "$n"
echo $((n + 1)) >"$f"
EOF
# noatime: a read commits no access time at unmount, so the versions counted below are the writes' alone.
vmount() { cmount "$1" "$2" "$URI" -o noatime "${@:3}"; }

mkdir -p "$BACK" "$T/other"
"$FSHIELD" init --trust "$URI" "$BACK" >"$T/out" || fail "init through the CAS: $(cat "$T/out")"
expect_status 6 "$FSHIELD" init --trust "$URI" "$T/other" 2>"$T/err"
grep -q "registered already" "$T/err" || fail "init of a registered volume: $(cat "$T/err")"
got=()
for i in 1 2 3; do
	vmount "$BACK" "$MNT"
	got+=("$(bash "$T/counter.sh" "$MNT/num")")
	cumount "$MNT"
	[ "$i" -eq 1 ] && cp -a "$BACK" "$T/snap1" # version 1: num = 1
done
expect_eq "0 1 2" "${got[*]}" "counter through the CAS"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" || fail "verify: $(cat "$T/out")"
grep -q "version 3 " "$T/out" || fail "verify: not version 3: $(cat "$T/out")"

# ---- rollback: an old snapshot of the whole backing directory ----
mv "$BACK" "$T/current"
cp -a "$T/snap1" "$BACK"
rc=0
"$FSHIELD" mount --trust "$URI" "$BACK" "$MNT" 2>"$T/err" || rc=$?
expect_eq 2 "$rc" "mount of an old snapshot"
grep -q "rollback detected: volume version 1 < trusted version 3" "$T/err" || fail "rollback: $(cat "$T/err")"
! is_mounted "$MNT" || fail "the old snapshot was mounted"
rm -rf "$BACK"
mv "$T/current" "$BACK"

# ---- a second writer: a copy of the backing directory, mounted as well: refused by the writer lease ----
cp -a "$BACK" "$T/back2"
mkdir -p "$T/mnt2"
vmount "$BACK" "$MNT"
st=0
"$FSHIELD" mount --trust "$URI" --tls-cert "$PKI/client.crt" --tls-key "$PKI/client.key" --ca "$PKI/ca.crt" \
	-o commit_interval=0 "$T/back2" "$T/mnt2" 2>"$T/err" || st=$?
expect_eq 7 "$st" "a second writer's mount while the first holds the lease"
grep -q "the volume is open read-write elsewhere: CAS .*: volume e2e/app/V1 is open read-write by another holder" "$T/err" || fail "second writer: $(cat "$T/err")"
! is_mounted "$T/mnt2" || fail "the second writer is mounted"
expect_eq ok "$(wfs "$MNT/num" 100)" "first writer's commit"
cumount "$MNT"
expect_status 2 "$FSHIELD" mount --trust "$URI" --tls-cert "$PKI/client.crt" --tls-key "$PKI/client.key" \
	--ca "$PKI/ca.crt" "$T/back2" "$T/mnt2" 2>/dev/null
vmount "$BACK" "$MNT"
expect_eq 100 "$(cat "$MNT/num")" "first writer's data after the second writer"
cumount "$MNT"
rm -rf "$T/back2"

# ---- refused clients: no key released ----
audit_keys() { # the number of key releases recorded for a client fingerprint
	as_owner "$FSHIELD" cas audit e2e/app --cas "$CAS" >"$T/audit.json"
	python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1]))["records"] if r["op"] == "key" and r["client"] == sys.argv[2]))' \
		"$T/audit.json" "$1"
}
expect_eq 0 "$(audit_keys "$(fp other)")" "key releases to the unlisted client before"
rc=0
FSHIELD_TLS_CERT=$PKI/other.crt FSHIELD_TLS_KEY=$PKI/other.key "$FSHIELD" mount --trust "$URI" "$BACK" "$MNT" \
	2>"$T/err" || rc=$?
expect_eq 6 "$rc" "mount with a client certificate the session does not list"
grep -q "not allowed" "$T/err" || fail "unlisted client: $(cat "$T/err")"
expect_eq 0 "$(audit_keys "$(fp other)")" "key releases to the unlisted client"
rc=0
"$FSHIELD" mount --trust "cas://$CAS/e2e/nosuch/V1" "$BACK" "$MNT" 2>"$T/err" || rc=$?
expect_eq 6 "$rc" "mount with a session that does not exist"
grep -q "no session e2e/nosuch" "$T/err" || fail "wrong session: $(cat "$T/err")"
rc=0
"$FSHIELD" mount --trust "cas://$CAS/e2e/app/V9" "$BACK" "$MNT" 2>"$T/err" || rc=$?
expect_eq 6 "$rc" "mount with a volume the session does not name"
rc=0
FSHIELD_TLS_CERT=$PKI/rogue.crt FSHIELD_TLS_KEY=$PKI/rogue.key "$FSHIELD" mount --trust "$URI" "$BACK" "$MNT" \
	2>"$T/err" || rc=$?
expect_eq 6 "$rc" "mount with a certificate of another CA"
! is_mounted "$MNT" || fail "a refused client mounted"
# measurements: M1 lists this binary's SHA-256, M2 another one
mkdir -p "$T/m1" "$T/m2"
"$FSHIELD" init --trust "cas://$CAS/e2e/app/M1" "$T/m1" >/dev/null || fail "init with the listed measurement"
rc=0
"$FSHIELD" init --trust "cas://$CAS/e2e/app/M2" "$T/m2" 2>"$T/err" || rc=$?
expect_eq 6 "$rc" "init with a measurement the session does not list"
grep -q "measurement" "$T/err" || fail "wrong measurement: $(cat "$T/err")"
as_owner "$FSHIELD" cas audit e2e/app --cas "$CAS" >"$T/audit.json"
! grep -q '"volume": "e2e/app/M2"' "$T/audit.json" || fail "a key of M2 was released: $(cat "$T/audit.json")"
# TLS: no certificate, or one of another CA: no HTTP answer at all
out=$(req - - GET /v1/health)
[ "${out%% *}" = TLSFAIL ] || fail "a client without a certificate got an answer: $out"
out=$(req "$PKI/rogue.crt" "$PKI/rogue.key" GET /v1/health)
[ "${out%% *}" = TLSFAIL ] || fail "a client with a certificate of another CA got an answer: $out"
expect_status_line 200 "$(req_client GET /v1/health)" "health with a valid certificate"

# ---- crash between the local prepare and the CAS answer ----
daemon_of() { # the daemon serving mount point $1
	local f
	for f in "$FSHIELD_RUN_DIR"/*.pid; do
		grep -qx "mountpoint $1" "$f" && sed -n 's/^pid //p' "$f"
	done
	return 0
}
kill_daemon() { # kill_daemon MNT: SIGKILL, then the dead mount goes away
	local p
	p=$(daemon_of "$1")
	[ -n "$p" ] || fail "no daemon for $1"
	kill -KILL "$p"
	wait_until 10 bash -c "! kill -0 $p 2>/dev/null" || fail "daemon $p did not die"
	fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1"
}
# (a) the writer dies right after the prepared commit is in its store, before asking the CAS
FSHIELD_CRASH_AT=prepared vmount "$BACK" "$MNT"
p=$(daemon_of "$MNT")
wfs "$MNT/num" 101 >/dev/null || true
wait_until 10 bash -c "! kill -0 $p 2>/dev/null" || fail "the writer did not die at the crash point"
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" 2>&1 && fail "verify found no pending commit: $(cat "$T/out")"
grep -q "pending commit" "$T/out" || fail "verify after a crash at prepared: $(cat "$T/out")"
vmount "$BACK" "$MNT"
expect_eq 101 "$(cat "$MNT/num")" "the prepared commit rolled forward"
cumount "$MNT"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" || fail "verify after roll forward: $(cat "$T/out")"
V_BEFORE=$(sed -n 's/.* version \([0-9]*\) .*/\1/p' "$T/out")

# (b) the CAS commits but its answer is lost; the writer dies; the next mount finds the CAS ahead
cas_stop main
cas_start main "sqlite:$T/cas.db" --drop-replies-after 0
vmount "$BACK" "$MNT"
expect_eq "write/fsync EIO" "$(wfs "$MNT/num" 102)" "fsync whose CAS answer was lost"
grep -q "answer dropped" "$T/cas.main.log" || fail "the CAS did not drop an answer"
kill_daemon "$MNT"
cas_stop main
cas_start main "sqlite:$T/cas.db"
vmount "$BACK" "$MNT"
expect_eq 102 "$(cat "$MNT/num")" "a commit the CAS took but never answered"
cumount "$MNT"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" || fail "verify after a lost answer: $(cat "$T/out")"
grep -q "version $((V_BEFORE + 1)) " "$T/out" || fail "lost answer: not version $((V_BEFORE + 1)): $(cat "$T/out")"

# (c) the same, but the daemon lives on: its next fsync retries and finds its own state at the CAS
cas_stop main
cas_start main "sqlite:$T/cas.db" --drop-replies-after 0
vmount "$BACK" "$MNT"
expect_eq "write/fsync EIO" "$(wfs "$MNT/num" 103)" "fsync whose CAS answer was lost (daemon lives)"
cas_stop main
cas_start main "sqlite:$T/cas.db"
expect_eq ok "$(wfs "$MNT/num" 104)" "the next fsync after the CAS is back"
cumount "$MNT"
vmount "$BACK" "$MNT"
expect_eq 104 "$(cat "$MNT/num")" "after the retried commit"
cumount "$MNT"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" || fail "verify after the retry: $(cat "$T/out")"
grep -q "version $((V_BEFORE + 3)) " "$T/out" || fail "retry: not version $((V_BEFORE + 3)): $(cat "$T/out")"

# ---- the CAS killed and restarted under load ----
vmount "$BACK" "$MNT"
LOG=$T/load.log
: >"$LOG"
python3 "$T/load.py" "$MNT/load" 200 "$LOG" &
LPID=$!
EXTRA_CLEANUP_PIDS+=("$LPID")
wait_until 60 bash -c "[ \$(grep -c '^ack' '$LOG') -ge 30 ]" || fail "the load made no progress: $(tail -n 3 "$LOG")"
cas_stop main KILL
wait_until 30 grep -q '^eio' "$LOG" || fail "no fsync failed while the CAS was away"
A=$(acks "$LOG")
cas_start main "sqlite:$T/cas.db"
wait_until 120 bash -c "! kill -0 $LPID 2>/dev/null" || fail "the load did not finish after the CAS came back"
rc=0
wait "$LPID" || rc=$?
expect_eq 0 "$rc" "load exit ($(grep -v '^ack\|^eio' "$LOG" | head -n 3))"
expect_eq 200 "$(acks "$LOG")" "acknowledged fsyncs"
[ "$A" -lt 200 ] || fail "the CAS was away only after the load ended"
cumount "$MNT"
vmount "$BACK" "$MNT"
expect_eq 200 "$(cat "$MNT/load")" "the last acknowledged write after the CAS restart"
cumount "$MNT"
echo "load: $A acknowledged before the CAS was killed, $(grep -c '^eio' "$LOG") fsyncs failed while it was away"

# ---- a CAS that does not answer: requests time out (FSHIELD_CAS_TIMEOUT=3), nothing regresses ----
vmount "$BACK" "$MNT"
kill -STOP "${CPID[main]}"
t0=$(date +%s)
expect_eq "write/fsync EIO" "$(wfs "$MNT/stall" 1)" "fsync while the CAS is stalled"
t1=$(date +%s)
[ $((t1 - t0)) -ge 2 ] && [ $((t1 - t0)) -le 15 ] || fail "fsync failed after $((t1 - t0)) s, not after the 3 s timeout"
kill -CONT "${CPID[main]}"
expect_eq ok "$(wfs "$MNT/stall" 2)" "fsync once the CAS answers again"
cumount "$MNT"
cas_stop main
rc=0
"$FSHIELD" mount --trust "$URI" "$BACK" "$MNT" 2>"$T/err" || rc=$?
expect_eq 6 "$rc" "mount while the CAS is down"
grep -q "trust anchor unavailable" "$T/err" || fail "mount while the CAS is down: $(cat "$T/err")"
cas_start main "sqlite:$T/cas.db"
vmount "$BACK" "$MNT"
expect_eq 2 "$(cat "$MNT/stall")" "the file written across the stall"
cumount "$MNT"

# ---- bad input: 4xx, and the server keeps serving ----
VOLID=$("$FSHIELD" info --json "$BACK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["volume_id"])')
mkreq() { # mkreq FILE [TIME_OFFSET]: a well-formed state request with a fresh nonce
	python3 - "$1" "$VOLID" "${2:-0}" <<'EOF'
import json, os, sys, time
json.dump({"nonce": os.urandom(32).hex(), "time": int(time.time()) + int(sys.argv[3]), "volume_id": sys.argv[2]},
          open(sys.argv[1], "w"))
EOF
}
P=/v1/volumes/e2e/app/V1/state
mkreq "$T/r1.json"
out=$(req_client POST "$P" "$T/r1.json")
expect_status_line 200 "$out" "a well-formed state request"
out=$(req_client POST "$P" "$T/r1.json")
expect_status_line 400 "$out" "the same request again (nonce reused)"
grep -q '"replay"' <<<"$out" || fail "replay: $out"
mkreq "$T/r2.json" -3600
out=$(req_client POST "$P" "$T/r2.json")
expect_status_line 400 "$out" "a request an hour old"
printf '{"nonce": "00", ' >"$T/bad.json"
out=$(req_client POST "$P" "$T/bad.json")
expect_status_line 400 "$out" "malformed JSON"
grep -q "malformed JSON" <<<"$out" || fail "malformed JSON: $out"
python3 -c 'import json,os,sys,time; json.dump({"nonce": os.urandom(32).hex(), "time": int(time.time()), "volume_id": sys.argv[1], "admin": True}, open(sys.argv[2], "w"))' \
	"$VOLID" "$T/bad.json"
out=$(req_client POST "$P" "$T/bad.json")
expect_status_line 400 "$out" "unknown field"
grep -q "unknown field 'admin'" <<<"$out" || fail "unknown field: $out"
head -c 100000 /dev/zero | tr '\0' ' ' >"$T/big.json"
out=$(req_client POST "$P" "$T/big.json")
expect_status_line 413 "$out" "a 100 kB body"
head -c 1000000 /dev/zero | tr '\0' 'a' >"$T/big.yaml"
out=$(req "$PKI/owner.crt" "$PKI/owner.key" POST /v1/sessions "$T/big.yaml" application/yaml)
expect_status_line 413 "$out" "a 1 MB session"
out=$(req_client POST /v1/volumes/e2e/app/V1/launch "$T/r1.json")
expect_status_line 404 "$out" "an unknown operation"
out=$(req_client GET "$P")
expect_status_line 405 "$out" "GET of an operation"
out=$(req_client POST /v1/volumes/e2e/app/../app/V1/state "$T/r1.json")
[ "${out%% *}" -ge 400 ] && [ "${out%% *}" -lt 500 ] || fail "dot-dot path: $out"
pid_alive "${CPID[main]}" || fail "the CAS died on bad input"
expect_status_line 200 "$(req_client GET /v1/health)" "health after bad input"
vmount "$BACK" "$MNT"
expect_eq 104 "$(cat "$MNT/num")" "the volume after bad input"
cumount "$MNT"

# ---- no_rollback_protection: documented as accepting an old snapshot ----
mkdir -p "$T/n1"
NURI=cas://$CAS/e2e/app/N1
"$FSHIELD" init --trust "$NURI" "$T/n1" >/dev/null
cmount "$T/n1" "$MNT" "$NURI"
echo 1 >"$MNT/num"
cumount "$MNT"
cp -a "$T/n1" "$T/n1.snap"
cmount "$T/n1" "$MNT" "$NURI"
echo 2 >"$MNT/num"
cumount "$MNT"
rm -rf "$T/n1"
mv "$T/n1.snap" "$T/n1"
cmount "$T/n1" "$MNT" "$NURI"
expect_eq 1 "$(cat "$MNT/num")" "no_rollback_protection serves the old snapshot"
cumount "$MNT"

cas_stop main
grep -q "stopping on" "$T/cas.main.log" || fail "the CAS did not stop cleanly"
echo ok
