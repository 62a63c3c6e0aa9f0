#!/usr/bin/env bash
# Volume keys at rest in the CAS (docs/CAS.md, "Keys at rest"), with a real `fshield cas serve` on
# 127.0.0.1. Checked:
#   - after init through the CAS, neither the SQLite store (file, log, index) nor the data directory of
#     an etcd member holds the volume key, raw or as hex;
#   - the CAS refuses a master key file its group can read, and a master key that is not the store's;
#   - rotate-master-key re-seals the store: the old key file no longer opens it, the new one serves the
#     same volume keys (the volume mounts and reads back), and no key is left in the files;
#   - a store keeping its keys in clear is refused with the command that seals it; seal-store seals it;
#   - the etcd store over TLS with a client certificate: an etcd that requires client certificates
#     serves the CAS given --etcd-ca/--etcd-cert/--etcd-key, and refuses it without its certificate.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"
command -v etcd >/dev/null || fail "etcd is not installed (make deps)"

cat >"$T/find.py" <<'EOF'
import os, sys
# find.py KEYHEX PATH...: prints every file under PATH that holds the key, raw or as hex (either case)
key = bytes.fromhex(sys.argv[1])
needles = [key, sys.argv[1].lower().encode(), sys.argv[1].upper().encode()]
for top in sys.argv[2:]:
    walk = [(top, [], [""])] if os.path.isfile(top) else os.walk(top)
    for d, _, files in walk:
        for f in files:
            p = os.path.join(d, f) if f else d
            with open(p, "rb") as fh:
                data = fh.read()
            if any(n in data for n in needles):
                print(p)
EOF
no_key_in() { # no_key_in KEYHEX PATH...
	local found
	found=$(python3 "$T/find.py" "$@")
	[ -z "$found" ] || fail "the volume key is in: $found"
}

# The key the CAS releases to the client for a volume (the "key" operation, as the anchor asks it).
cas_key() { # cas_key HOST:PORT NS/SESSION/VOLUME
	curl -sS --fail --cert "$PKI/client.crt" --key "$PKI/client.key" --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' \
		-d "{\"nonce\": \"$(openssl rand -hex 32)\", \"time\": $(date +%s)}" \
		"https://$1/v1/volumes/$2/key" | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])'
}

# cas serve that must not start: its exit status and message in $T/refused.
serve_refused() { # serve_refused STORE [serve options]
	local store=$1 st=0
	shift
	timeout 30 "$FSHIELD" cas serve --listen 127.0.0.1:0 --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" \
		--client-ca "$PKI/ca.crt" --store "$store" --audit-key-file "$T/cas.audit-key" \
		--master-key-file "$T/cas.master-key" "$@" >"$T/refused" 2>&1 || st=$?
	[ "$st" -ne 0 ] && [ "$st" -ne 124 ] || fail "cas serve started (exit $st): $(cat "$T/refused")"
}

session() { # session NAME: a session with volume V1 for the client
	cat >"$T/$1.yaml" <<EOF
name: e2e/$1
volumes:
  - {name: V1, update_policy: rollback_protected, clients: [$(fp client)]}
EOF
}

# ---- SQLite ----
DB=$T/cas.db
cas_start A "sqlite:$DB"
CAS=127.0.0.1:${CPORT[A]}
session keys
as_owner "$FSHIELD" cas session create "$T/keys.yaml" --cas "$CAS" >/dev/null
URI=cas://$CAS/e2e/keys/V1
mkdir -p "$BACK"
"$FSHIELD" init --trust "$URI" "$BACK" >"$T/out" || fail "init through the CAS: $(cat "$T/out")"
cmount "$BACK" "$MNT" "$URI"
expect_eq ok "$(wfs "$MNT/f" "kept")" "write"
cumount "$MNT"
K=$(cas_key "$CAS" e2e/keys/V1)
[ "${#K}" -eq 64 ] || fail "no volume key from the CAS: '$K'"
cas_stop A
no_key_in "$K" "$DB" "$DB-wal" "$DB-shm"
echo "sqlite: no volume key in the store"

# a master key file its group may read, and another master key: refused
cp "$T/cas.master-key" "$T/group.key"
chmod 640 "$T/group.key"
serve_refused "sqlite:$DB" --master-key-file "$T/group.key"
grep -q 'chmod 600' "$T/refused" || fail "group-readable master key: $(cat "$T/refused")"
"$FSHIELD" keygen -o "$T/other.key"
serve_refused "sqlite:$DB" --master-key-file "$T/other.key"
grep -q "master key is not this store's" "$T/refused" || fail "another master key: $(cat "$T/refused")"
echo "wrong master keys refused"

# rotation: the old key file no longer opens the store, the new one serves the same key
"$FSHIELD" keygen -o "$T/new.key"
expect_status 64 "$FSHIELD" cas rotate-master-key --store "sqlite:$DB" --master-key-file "$T/other.key" \
	--new-master-key-file "$T/new.key" 2>/dev/null
"$FSHIELD" cas rotate-master-key --store "sqlite:$DB" --master-key-file "$T/cas.master-key" \
	--new-master-key-file "$T/new.key" >"$T/out" || fail "rotate-master-key: $(cat "$T/out")"
grep -q '1 volume key sealed' "$T/out" || fail "rotate-master-key said: $(cat "$T/out")"
serve_refused "sqlite:$DB"
grep -q "master key is not this store's" "$T/refused" || fail "the old master key after rotation: $(cat "$T/refused")"
no_key_in "$K" "$DB" "$DB-wal" "$DB-shm"
cas_start A "sqlite:$DB" --master-key-file "$T/new.key"
expect_eq "$K" "$(cas_key "$CAS" e2e/keys/V1)" "the volume key after rotation"
cmount "$BACK" "$MNT" "$URI"
expect_eq kept "$(cat "$MNT/f")" "the file after rotation"
cumount "$MNT"
cas_stop A
echo "rotation: the old master key no longer opens the store"

# a store keeping its key in clear (as an older fshield wrote it): refused, then sealed
python3 - "$DB" "$K" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM cas_meta WHERE k = 'master_check'")
db.execute("UPDATE volumes SET key = ?", (bytes.fromhex(sys.argv[2]),))
db.commit()
db.close()
EOF
[ -n "$(python3 "$T/find.py" "$K" "$DB" "$DB-wal")" ] || fail "the search does not find a key in clear"
serve_refused "sqlite:$DB" --master-key-file "$T/new.key"
grep -q 'fshield cas seal-store' "$T/refused" || fail "a clear store: $(cat "$T/refused")"
"$FSHIELD" cas seal-store --store "sqlite:$DB" --master-key-file "$T/new.key" >"$T/out" ||
	fail "seal-store: $(cat "$T/out")"
no_key_in "$K" "$DB" "$DB-wal" "$DB-shm"
cas_start A "sqlite:$DB" --master-key-file "$T/new.key"
expect_eq "$K" "$(cas_key "$CAS" e2e/keys/V1)" "the volume key after seal-store"
cas_stop A
echo "a clear store refused, then sealed"

# ---- etcd over TLS with client certificates ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/etcdca.key" \
	-out "$PKI/etcdca.crt" -days 2 -subj "/CN=etcdca" 2>/dev/null
mkcert etcd etcdca serverAuth,clientAuth # its gateway dials its own gRPC port with it
mkcert casetcd etcdca clientAuth
read -r P Q <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"
etcd --name m0 --data-dir "$T/etcd" --listen-client-urls "https://127.0.0.1:$P" \
	--advertise-client-urls "https://127.0.0.1:$P" --listen-peer-urls "http://127.0.0.1:$Q" \
	--initial-advertise-peer-urls "http://127.0.0.1:$Q" --initial-cluster "m0=http://127.0.0.1:$Q" \
	--initial-cluster-state new --initial-cluster-token "fshield-e2e-$$" \
	--cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" --client-cert-auth --trusted-ca-file "$PKI/etcdca.crt" \
	>>"$T/etcd.log" 2>&1 &
EPID=$!
EXTRA_CLEANUP_PIDS+=("$EPID")
etcd_healthy() {
	curl -sS --max-time 2 --cacert "$PKI/etcdca.crt" --cert "$PKI/casetcd.crt" --key "$PKI/casetcd.key" \
		"https://127.0.0.1:$P/health" 2>/dev/null | grep -q '"health":"true"'
}
wait_until 60 etcd_healthy || fail "etcd is not healthy: $(tail -n 5 "$T/etcd.log")"
STORE=etcd://127.0.0.1:$P
ETLS=(--etcd-ca "$PKI/etcdca.crt" --etcd-cert "$PKI/casetcd.crt" --etcd-key "$PKI/casetcd.key")
# without its client certificate, or in plain HTTP, the CAS gets nothing from this etcd
serve_refused "$STORE" --etcd-ca "$PKI/etcdca.crt"
serve_refused "$STORE"
cas_start E "$STORE" "${ETLS[@]}"
CE=127.0.0.1:${CPORT[E]}
session etcdkeys
echo "  - {name: V2, update_policy: rollback_protected, clients: [$(fp client)]}" >>"$T/etcdkeys.yaml"
as_owner "$FSHIELD" cas session create "$T/etcdkeys.yaml" --cas "$CE" >/dev/null
URI2=cas://$CE/e2e/etcdkeys/V1
mkdir -p "$T/b2" "$T/m2"
"$FSHIELD" init --trust "$URI2" "$T/b2" >"$T/out" || fail "init through the CAS on etcd: $(cat "$T/out")"
cmount "$T/b2" "$T/m2" "$URI2"
expect_eq ok "$(wfs "$T/m2/f" "on etcd")" "write on etcd"
cumount "$T/m2"
K2=$(cas_key "$CE" e2e/etcdkeys/V1)
[ "${#K2}" -eq 64 ] || fail "no volume key from the CAS on etcd: '$K2'"
cas_stop E
# another master key is refused by the etcd store as well
serve_refused "$STORE" "${ETLS[@]}" --master-key-file "$T/other.key"
grep -q "master key is not this store's" "$T/refused" || fail "etcd, another master key: $(cat "$T/refused")"
# rotation in one etcd transaction: the old key no longer opens the store, the new one serves the key
"$FSHIELD" keygen -o "$T/etcd-new.key"
"$FSHIELD" cas rotate-master-key --store "$STORE" "${ETLS[@]}" --master-key-file "$T/cas.master-key" \
	--new-master-key-file "$T/etcd-new.key" >"$T/out" || fail "rotate-master-key on etcd: $(cat "$T/out")"
grep -q '1 volume key sealed' "$T/out" || fail "rotate-master-key on etcd said: $(cat "$T/out")"
serve_refused "$STORE" "${ETLS[@]}"
grep -q "master key is not this store's" "$T/refused" || fail "etcd, the old master key: $(cat "$T/refused")"
cas_start E "$STORE" "${ETLS[@]}" --master-key-file "$T/etcd-new.key"
expect_eq "$K2" "$(cas_key "$CE" e2e/etcdkeys/V1)" "the volume key after rotation on etcd"
cmount "$T/b2" "$T/m2" "$URI2"
expect_eq "on etcd" "$(cat "$T/m2/f")" "the file after rotation on etcd"
cumount "$T/m2"
# rotated again under the running CAS: it seals no new key under the key it has, and says why
"$FSHIELD" keygen -o "$T/etcd-third.key"
"$FSHIELD" cas rotate-master-key --store "$STORE" "${ETLS[@]}" --master-key-file "$T/etcd-new.key" \
	--new-master-key-file "$T/etcd-third.key" >/dev/null
mkdir -p "$T/b3"
expect_status 6 "$FSHIELD" init --trust "cas://$CE/e2e/etcdkeys/V2" "$T/b3" 2>"$T/out"
grep -q 'restart it with the new master key file' "$T/out" || fail "init through a CAS whose store was rotated: $(cat "$T/out")"
cas_stop E
cas_start E "$STORE" "${ETLS[@]}" --master-key-file "$T/etcd-third.key"
rm -rf "$T/b3" && mkdir -p "$T/b3"
"$FSHIELD" init --trust "cas://$CE/e2e/etcdkeys/V2" "$T/b3" >"$T/out" || fail "init after restart: $(cat "$T/out")"
K3=$(cas_key "$CE" e2e/etcdkeys/V2)
cas_stop E
# the member's disk, once etcd has written everything and stopped
kill -TERM "$EPID"
wait "$EPID" 2>/dev/null || true
no_key_in "$K2" "$T/etcd"
no_key_in "$K3" "$T/etcd"
# what is stored in clear (the session's name) is found there: the search reads what etcd wrote
grep -rqF 'e2e/etcdkeys' "$T/etcd" || fail "the search does not see etcd's data"
echo "etcd over TLS: no volume key on the member's disk"
echo ok
