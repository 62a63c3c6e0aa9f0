#!/usr/bin/env bash
# The CAS on an etcd store (docs/CAS.md, "Store"): a 3-member etcd cluster on loopback ports and two CAS
# instances (A and B) sharing it. A session created through A is seen by B; a volume registered through A
# is known to B (registering it again through B is refused); a second writer on a copy of a volume is
# refused at mount by the writer lease kept in etcd.
# Then, with an fsync load on a volume of each instance: one etcd member is killed (the cluster keeps its
# quorum) and CAS A is killed and replaced by a new instance on its address. Both loads finish, no
# acknowledged write is lost, neither volume turns read-only, and after a remount each holds its last
# acknowledged write; verify finds both volumes ok. The audit log both wrote is one intact chain; a
# record rewritten or deleted in etcd is found by `cas audit`.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"
command -v etcd >/dev/null || fail "etcd is not installed (make deps)"

# ---- etcd: 3 members, client and peer ports picked free by the kernel ----
read -r -a PORTS <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(6)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"
CLUSTER=
for i in 0 1 2; do CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:${PORTS[$((3 + i))]}"; done
declare -A EPID
etcd_start() { # etcd_start I
	local i=$1
	etcd --name "m$i" --data-dir "$T/etcd/m$i" \
		--listen-client-urls "http://127.0.0.1:${PORTS[$i]}" --advertise-client-urls "http://127.0.0.1:${PORTS[$i]}" \
		--listen-peer-urls "http://127.0.0.1:${PORTS[$((3 + i))]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${PORTS[$((3 + i))]}" \
		--initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token "fshield-e2e-$$" \
		>>"$T/etcd.m$i.log" 2>&1 &
	EPID[$i]=$!
	EXTRA_CLEANUP_PIDS+=("${EPID[$i]}")
}
etcd_healthy() { # etcd_healthy I: the member answers and the cluster has a leader
	python3 -c '
import json, sys, urllib.request
try:
    h = json.load(urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=2))
    sys.exit(0 if h.get("health") == "true" else 1)
except Exception:
    sys.exit(1)' "${PORTS[$1]}"
}
mkdir -p "$T/etcd"
for i in 0 1 2; do etcd_start "$i"; done
for i in 0 1 2; do wait_until 60 etcd_healthy "$i" || fail "etcd member m$i is not healthy: $(tail -n 5 "$T/etcd.m$i.log")"; done
STORE=etcd://127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}
echo "etcd members on ${PORTS[*]:0:3}"

# ---- two CAS instances on one store ----
cas_start A "$STORE"
cas_start B "$STORE"
CA_=127.0.0.1:${CPORT[A]}
CB_=127.0.0.1:${CPORT[B]}
cat >"$T/session.yaml" <<EOF
name: e2e/etcd
volumes:
  - {name: V1, update_policy: rollback_protected, clients: [$(fp client)]}
  - {name: V2, update_policy: rollback_protected, clients: [$(fp client)]}
EOF
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CA_" >/dev/null
as_owner "$FSHIELD" cas session show e2e/etcd --cas "$CB_" >"$T/out" || fail "B does not see A's session"
grep -q '"name": "V2"' "$T/out" || fail "B's view of the session: $(cat "$T/out")"
expect_status 6 as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CB_" 2>/dev/null

U1=cas://$CA_/e2e/etcd/V1
U2=cas://$CB_/e2e/etcd/V2
B1=$T/b1 B2=$T/b2 M1=$T/m1 M2=$T/m2
mkdir -p "$B1" "$B2" "$M1" "$M2" "$T/b1x"
"$FSHIELD" init --trust "$U1" "$B1" >/dev/null
"$FSHIELD" init --trust "$U2" "$B2" >/dev/null
# V1 is registered in the shared store: B refuses to register it again
expect_status 6 "$FSHIELD" init --trust "cas://$CB_/e2e/etcd/V1" "$T/b1x" 2>/dev/null

# ---- a second writer on a copy of V2 ----
cp -a "$B2" "$T/b2copy"
mkdir -p "$T/m2copy"
cmount "$B2" "$M2" "$U2"
st=0
"$FSHIELD" mount --trust "$U2" --tls-cert "$PKI/client.crt" --tls-key "$PKI/client.key" --ca "$PKI/ca.crt" \
	"$T/b2copy" "$T/m2copy" 2>"$T/err" || st=$?
expect_eq 7 "$st" "a second writer of V2 while the first holds its writer lease (in etcd)"
grep -q "volume e2e/etcd/V2 is open read-write by another holder" "$T/err" || fail "second writer: $(cat "$T/err")"
expect_eq ok "$(wfs "$M2/num" 1)" "first writer of V2"
rm -rf "$T/b2copy"

# ---- load on both, one etcd member killed, CAS A replaced ----
cmount "$B1" "$M1" "$U1"
: >"$T/load1.log"
: >"$T/load2.log"
# Long enough that both loads still run when CAS A goes away, however fast the machine is.
N=300
python3 "$T/load.py" "$M1/load" "$N" "$T/load1.log" &
L1=$!
python3 "$T/load.py" "$M2/load" "$N" "$T/load2.log" &
L2=$!
EXTRA_CLEANUP_PIDS+=("$L1" "$L2")
wait_until 60 bash -c "[ \$(grep -c '^ack' '$T/load1.log') -ge 20 ] && [ \$(grep -c '^ack' '$T/load2.log') -ge 20 ]" ||
	fail "the loads made no progress: $(tail -n 2 "$T/load1.log" "$T/load2.log")"
kill -KILL "${EPID[0]}"
wait "${EPID[0]}" 2>/dev/null || true
K1=$(acks "$T/load1.log") K2=$(acks "$T/load2.log")
wait_until 60 bash -c "[ \$(grep -c '^ack' '$T/load1.log') -ge $((K1 + 20)) ] && [ \$(grep -c '^ack' '$T/load2.log') -ge $((K2 + 20)) ]" ||
	fail "the loads stalled after an etcd member died: $(tail -n 2 "$T/load1.log" "$T/load2.log")"
cas_stop A KILL
wait_until 30 grep -q '^eio' "$T/load1.log" || fail "no fsync of V1 failed while CAS A was away"
A1=$(acks "$T/load1.log")
cas_start A "$STORE"
for p in "$L1" "$L2"; do
	wait_until 180 bash -c "! kill -0 $p 2>/dev/null" || fail "a load did not finish"
	wait "$p" || fail "a load failed: $(grep -v '^ack\|^eio' "$T/load1.log" "$T/load2.log" | head -n 3)"
done
expect_eq "$N" "$(acks "$T/load1.log")" "acknowledged writes of V1"
expect_eq "$N" "$(acks "$T/load2.log")" "acknowledged writes of V2"
[ "$A1" -lt "$N" ] || fail "CAS A was away only after the load of V1 ended"
echo "V1: $K1 acknowledged when the etcd member died, $A1 when CAS A died; $(grep -c '^eio' "$T/load1.log") fsyncs failed meanwhile"
cumount "$M1"
cumount "$M2"
cmount "$B1" "$M1" "$U1"
cmount "$B2" "$M2" "$U2"
expect_eq "$N" "$(cat "$M1/load")" "V1 after the restarts"
expect_eq "$N" "$(cat "$M2/load")" "V2 after the restarts"
cumount "$M1"
cumount "$M2"
"$FSHIELD" verify --trust "$U1" "$B1" >"$T/out" || fail "verify V1: $(cat "$T/out")"
"$FSHIELD" verify --trust "$U2" "$B2" >"$T/out" || fail "verify V2: $(cat "$T/out")"
# the audit log in etcd has every compare-and-swap, in order
as_owner "$FSHIELD" cas audit e2e/etcd --cas "$CB_" >"$T/audit.json"
python3 - "$T/audit.json" "$N" <<'EOF' || fail "audit log: $(head -c 600 "$T/audit.json")"
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
seqs = [r["seq"] for r in recs]
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq not increasing"
for vol in ("e2e/etcd/V1", "e2e/etcd/V2"):
    ok = [r for r in recs if r["volume"] == vol and r["op"] == "cas" and r["result"] == "ok"]
    vs = [r["new_version"] for r in ok]
    assert vs == list(range(1, len(vs) + 1)), (vol, vs[:10])
    assert len(vs) >= int(sys.argv[2]), (vol, len(vs))
EOF
# the audit chain in etcd: a record rewritten, then deleted, behind the CAS's back, is found by cas audit
cat >"$T/etcdedit.py" <<'EOF'
import base64, json, sys, urllib.request
# etcdedit.py PORTS SEQ (save FILE | rewrite | restore FILE | delete): audit record SEQ in the store
ports, seq, op = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
key = base64.b64encode(b"/fshield-cas/a/%020d" % seq).decode()
def call(path, body):
    for p in ports:
        try:
            req = urllib.request.Request("http://127.0.0.1:%s/v3/%s" % (p, path), json.dumps(body).encode())
            return json.load(urllib.request.urlopen(req, timeout=3))
        except OSError:
            continue
    sys.exit("no etcd member answered")
if op == "save":
    open(sys.argv[4], "w").write(call("kv/range", {"key": key})["kvs"][0]["value"])
elif op == "rewrite":
    rec = json.loads(base64.b64decode(call("kv/range", {"key": key})["kvs"][0]["value"]))
    rec["client"] = "00" * 32
    call("kv/put", {"key": key, "value": base64.b64encode(json.dumps(rec).encode()).decode()})
elif op == "restore":
    call("kv/put", {"key": key, "value": open(sys.argv[4]).read()})
elif op == "delete":
    assert call("kv/deleterange", {"key": key}).get("deleted") == "1"
EOF
edit() { python3 "$T/etcdedit.py" "${PORTS[0]},${PORTS[1]},${PORTS[2]}" "$@"; }
caudit() { as_owner "$FSHIELD" cas audit e2e/etcd --cas "$CB_" >"$T/audit.json" 2>"$T/audit.err"; }
edit 2 save "$T/rec2"
edit 2 rewrite
st=0 && caudit || st=$?
expect_eq 1 "$st" "cas audit exit after a record was rewritten in etcd"
grep -q "broken at record 2: .*rewritten" "$T/audit.err" || fail "a rewritten record: $(cat "$T/audit.err")"
edit 2 restore "$T/rec2"
caudit || fail "the record put back: $(cat "$T/audit.err")"
edit 2 delete
st=0 && caudit || st=$?
expect_eq 1 "$st" "cas audit exit after a record was deleted from etcd"
grep -q "broken at record 2: .*deleted" "$T/audit.err" || fail "a deleted record: $(cat "$T/audit.err")"
cas_stop A
cas_stop B
echo ok
