#!/usr/bin/env bash
# The CAS's audit log and its limits at the trust boundary (docs/CAS.md, "Audit log" and "Limits"), with a
# real `fshield cas serve` on 127.0.0.1 and its sqlite store edited behind its back. Checked:
#   - the chain: `cas audit` passes an untouched log; a record rewritten, one deleted, the tail cut with
#     sqlite3 are each found (exit 1, the broken record named), and the log passes again once put back;
#   - a refused request (a client no session lists) is audited: op, the refusal, its client;
#   - 1000 refused requests add no nonce row, and at most one audit record (aggregated, with a count);
#   - 530 idle TCP connections from 127.0.0.1 (more than the 512 the server takes in all) do not keep a
#     request from 127.0.0.2 from being answered; the idle ones are dropped after the handshake timeout;
#   - a client creates at most --max-sessions-per-client (64 by default) sessions and namespaces.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

DB=$T/cas.db
cas_start main "sqlite:$DB"
CAS=127.0.0.1:${CPORT[main]}
echo "CAS on $CAS"

cat >"$T/session.yaml" <<EOF
name: e2e/audit
version: "0.3"
volumes:
  - name: V1
    update_policy: rollback_protected
    clients: [$(fp client)]
EOF
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" >/dev/null
URI=cas://$CAS/e2e/audit/V1
mkdir -p "$BACK"
"$FSHIELD" init --trust "$URI" "$BACK" >"$T/out" || fail "init through the CAS: $(cat "$T/out")"
cmount "$BACK" "$MNT" "$URI"
for i in 1 2 3; do expect_eq ok "$(wfs "$MNT/f" "$i")" "write $i"; done
cumount "$MNT"

# ---- requests of our own: many on one TLS connection, from a chosen source address ----
cat >"$T/reqs.py" <<'EOF'
import http.client, json, os, ssl, sys, time
# reqs.py CERT KEY SRC N METHOD PATH [BODY|volume|session]: N requests on one connection from source
# address SRC; prints the statuses, counted ("403 x1000"). BODY "volume": a fresh, well-formed volume
# request each time; "session": session I (numbered) as YAML.
cert, key, src, n, method, path = sys.argv[1:7]
kind = sys.argv[7] if len(sys.argv) > 7 else ""
ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.environ["CA"])
ctx.load_cert_chain(cert, key)
c = http.client.HTTPSConnection("127.0.0.1", int(os.environ["PORT"]), context=ctx, timeout=10,
                                source_address=(src, 0))
counts = {}
for i in range(int(n)):
    body, ctype = None, "application/json"
    if kind == "volume":
        body = json.dumps({"nonce": os.urandom(32).hex(), "time": int(time.time())})
    elif kind == "session":
        body = "name: flood/s%d\nvolumes:\n  - name: V\n    update_policy: rollback_protected\n    clients: [%s]\n" % (i, "0" * 64)
        ctype = "application/yaml"
    try:
        c.request(method, path, body=body, headers={"Content-Type": ctype} if body else {})
        r = c.getresponse()
        r.read()
        st = str(r.status)
    except Exception as e:
        st = "FAIL:" + type(e).__name__
        c.close()
    counts[st] = counts.get(st, 0) + 1
print(" ".join("%s x%d" % kv for kv in sorted(counts.items())))
EOF
reqs() { CA=$PKI/ca.crt PORT=${CPORT[main]} python3 "$T/reqs.py" "$@"; }
rows() { sqlite3 "$DB" "SELECT count(*) FROM $1"; }

audit_json() { as_owner "$FSHIELD" cas audit e2e/audit --cas "$CAS" >"$T/audit.json" 2>"$T/audit.err"; }

# ---- the chain, untouched ----
audit_json || fail "cas audit of an untouched log: $(cat "$T/audit.err")"
python3 - "$T/audit.json" <<'EOF' || fail "the untouched log: $(head -c 800 "$T/audit.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["chain"]["intact"] is True, j["chain"]
ops = [(r["op"], r["result"]) for r in j["records"]]
assert ("register", "ok") in ops and ops.count(("cas", "ok")) >= 3, ops
EOF

# ---- a refused request is audited; many refused requests add no nonce and (almost) no audit record ----
echo "refusals: one audited, 1000 more add no nonce row"
out=$(reqs "$PKI/other.crt" "$PKI/other.key" 127.0.0.1 1 POST /v1/volumes/e2e/audit/V1/key volume)
expect_eq "403 x1" "$out" "a key request by a client the session does not list"
audit_json || fail "cas audit: $(cat "$T/audit.err")"
python3 - "$T/audit.json" "$(fp other)" <<'EOF' || fail "the refusal is not audited: $(head -c 1500 "$T/audit.json")"
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
assert any(r["client"] == sys.argv[2] and r["op"] == "key" and r["result"] == "forbidden"
           and r["volume"] == "e2e/audit/V1" for r in recs)
EOF
nonces0=$(rows nonces) audit0=$(rows audit)
out=$(reqs "$PKI/other.crt" "$PKI/other.key" 127.0.0.1 1000 POST /v1/volumes/e2e/audit/V1/key volume)
expect_eq "403 x1000" "$out" "1000 refused key requests"
out=$(reqs "$PKI/other.crt" "$PKI/other.key" 127.0.0.1 20 POST /v1/volumes/e2e/nosuch/V1/key volume)
expect_eq "404 x20" "$out" "requests for a session that does not exist"
expect_eq "$nonces0" "$(rows nonces)" "nonce rows after 1020 refused requests"
[ "$(rows audit)" -le $((audit0 + 1)) ] || fail "1020 refusals added $(( $(rows audit) - audit0 )) audit records"
audit_json || fail "cas audit after the refusals: $(cat "$T/audit.err")"

# ---- sessions per client ----
echo "sessions per client: 63 and their namespace, then refused"
out=$(reqs "$PKI/other.crt" "$PKI/other.key" 127.0.0.1 70 POST /v1/sessions session)
expect_eq "201 x63 429 x7" "$out" "70 session creations by one client"
expect_eq 63 "$(sqlite3 "$DB" "SELECT count(*) FROM sessions WHERE name LIKE 'flood/%'")" "sessions of the flooding client"
expect_eq "$(fp other)" "$(sqlite3 "$DB" "SELECT hex(creator) FROM sessions WHERE name = 'flood'" | tr A-F a-f)" \
	"the owner of the flooding client's namespace"

# ---- connections: per address, and idle handshakes dropped ----
echo "connections: 530 idle ones from 127.0.0.1, a request from 127.0.0.2"
cat >"$T/idle.py" <<'EOF'
import os, select, socket, sys, time, subprocess
# idle.py N: N idle TCP connections from 127.0.0.1 (no TLS hello); then runs the command in argv[2:] and
# prints its output; then waits up to 20 s for the server to close every idle connection it took, and
# prints "closed after S s" or "open after 20 s: K".
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=5)
    socks.append(s)
t0 = time.monotonic()
print(subprocess.run(sys.argv[2:], capture_output=True, text=True).stdout.strip(), flush=True)
open_ = set(socks)
while open_ and time.monotonic() - t0 < 20:
    r, _, _ = select.select(list(open_), [], [], 0.5)
    for s in r:
        try:
            if s.recv(1) == b"":
                open_.discard(s)
        except OSError:
            open_.discard(s)
print("closed after %d s" % round(time.monotonic() - t0) if not open_ else "open after 20 s: %d" % len(open_))
EOF
out=$(CA=$PKI/ca.crt PORT=${CPORT[main]} python3 "$T/idle.py" 530 \
	env CA="$PKI/ca.crt" PORT="${CPORT[main]}" python3 "$T/reqs.py" "$PKI/owner.crt" "$PKI/owner.key" 127.0.0.2 1 \
	GET /v1/sessions/e2e/audit)
echo "$out"
expect_eq "200 x1" "$(sed -n 1p <<<"$out")" "a request from 127.0.0.2 while 127.0.0.1 holds 530 idle connections"
grep -q '^closed after' <<<"$(sed -n 2p <<<"$out")" || fail "idle connections were not dropped: $out"
[ "$(sed -n 's/^closed after \([0-9]*\) s/\1/p' <<<"$out")" -le 12 ] || fail "idle connections dropped late: $out"
out=$(reqs "$PKI/owner.crt" "$PKI/owner.key" 127.0.0.1 1 GET /v1/sessions/e2e/audit)
expect_eq "200 x1" "$out" "127.0.0.1 once its idle connections are gone"

# ---- the chain, edited with sqlite3 ----
echo "the chain: a rewritten record, a deleted one, a cut tail"
audit_fails() { # audit_fails SEQ WORD WHAT: cas audit exits 1 naming record SEQ, the reason has WORD
	local st=0
	audit_json || st=$?
	expect_eq 1 "$st" "cas audit exit after $3"
	grep -q "broken at record $1: .*$2" "$T/audit.err" || fail "$3: $(cat "$T/audit.err")"
}
seq_of() { sqlite3 "$DB" "SELECT seq FROM audit WHERE op = '$1' AND result = '$2' ORDER BY seq LIMIT 1"; }
S=$(seq_of cas ok)
old=$(sqlite3 "$DB" "SELECT new_version FROM audit WHERE seq = $S")
sqlite3 "$DB" "UPDATE audit SET new_version = 99 WHERE seq = $S"
audit_fails "$S" rewritten "a rewritten version"
sqlite3 "$DB" "UPDATE audit SET new_version = $old WHERE seq = $S"
audit_json || fail "the record put back: $(cat "$T/audit.err")"
cut() { sqlite3 "$DB" "CREATE TABLE cut AS SELECT * FROM audit WHERE $1; DELETE FROM audit WHERE $1"; }
put_back() { sqlite3 "$DB" "INSERT INTO audit SELECT * FROM cut; DROP TABLE cut"; }
S=$(seq_of register ok)
cut "seq = $S"
audit_fails "$S" deleted "a deleted record"
put_back
audit_json || fail "the record put back: $(cat "$T/audit.err")"
LAST=$(sqlite3 "$DB" "SELECT max(seq) FROM audit")
cut "seq >= $((LAST - 1))"
audit_fails $((LAST - 1)) "cut short" "the last two records deleted"
put_back
audit_json || fail "the tail put back: $(cat "$T/audit.err")"

cas_stop main
echo "92-cas-audit: ok"
