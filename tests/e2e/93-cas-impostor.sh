#!/usr/bin/env bash
# An impostor CAS and the CAS's pinned identity (docs/CAS.md, sections 1 and 4), against real
# `fshield cas serve` processes on 127.0.0.1. One CA signs the clients and the server (the case where a
# client certificate could otherwise answer as the CAS). Checked:
#   - a CAS serving a certificate without extendedKeyUsage serverAuth (a client's certificate of the
#     same CA, with no extendedKeyUsage, or with clientAuth only): init through it is refused (6), with a
#     message that says why, and no volume is made;
#   - the server refuses client certificates that are not a client's: none, or serverAuth only;
#   - separate CAs (the clients' CA and the server's CA): init, mount, write and read work; a client
#     certificate answering as the CAS does not chain to the server's CA;
#   - the server's public key is pinned at init: the same CAS restarted with a renewed certificate of the
#     same key mounts; restarted with another key, the mount is refused (6), the message naming the
#     volume's anchor id, the new one and the new server key.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

mkcert plain ca none          # a client certificate as clients had them before: no extendedKeyUsage
mkcert srvonly ca serverAuth  # a server's certificate, tried as a client's
mkcert server3 ca serverAuth  # another key for the CAS
mkca srvca                    # the server's own CA, for the separate-CA case
mkcert server2 srvca serverAuth
# The CAS's certificate renewed: the same key, a new certificate.
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3 \
	-out "$PKI/server-renewed.crt" -extfile "$PKI/server.ext" 2>/dev/null
cp "$PKI/server.key" "$PKI/server-renewed.key"
[ "$(fp server)" != "$(fp server-renewed)" ] || fail "the renewed certificate is the same certificate"
keyfp() { "$FSHIELD" cas fingerprint --public-key "$PKI/$1.crt"; }
expect_eq "$(keyfp server)" "$(keyfp server-renewed)" "a renewed certificate keeps its public key's fingerprint"
expect_eq "$(openssl x509 -in "$PKI/server3.crt" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" \
	"$(keyfp server3)" "public-key fingerprint = SHA-256 of the DER SubjectPublicKeyInfo"

session() { # session NAME
	cat <<EOF
name: $1
volumes:
  - name: V1
    update_policy: rollback_protected
    clients: [$(fp client), $(fp plain), $(fp srvonly)]
EOF
}
session e2e/imp >"$T/session.yaml"

echo "== an impostor: a client certificate of the same CA answers as the CAS"
for cert in plain other; do
	CAS_CERT=$cert cas_start "imp-$cert" "sqlite:$T/imp-$cert.db"
	ICAS=127.0.0.1:${CPORT[imp-$cert]}
	# The impostor holds a session for the volume, so that only its certificate can stop init.
	FSHIELD_CA=$PKI/ca.crt as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$ICAS" >/dev/null 2>&1 || true
	mkdir -p "$T/imp-$cert"
	expect_status 6 "$FSHIELD" init --trust "cas://$ICAS/e2e/imp/V1" "$T/imp-$cert" 2>"$T/err"
	grep -q "not a TLS server's (its extendedKeyUsage lacks serverAuth)" "$T/err" ||
		fail "init through an impostor ($cert): $(cat "$T/err")"
	[ ! -e "$T/imp-$cert/meta.db" ] || fail "init through an impostor ($cert) made a volume"
	cas_stop "imp-$cert"
done

echo "== the server takes only client certificates (extendedKeyUsage clientAuth)"
cas_start main "sqlite:$T/cas.db"
CAS=127.0.0.1:${CPORT[main]}
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$CAS" >/dev/null
for cert in plain srvonly; do
	expect_status 6 env FSHIELD_TLS_CERT="$PKI/$cert.crt" FSHIELD_TLS_KEY="$PKI/$cert.key" \
		"$FSHIELD" cas session show e2e/imp --cas "$CAS" 2>"$T/err"
	! grep -q "HTTP" "$T/err" || fail "a $cert certificate got an HTTP answer: $(cat "$T/err")"
done
"$FSHIELD" cas session show e2e/imp --cas "$CAS" >/dev/null || fail "a client certificate was refused"

echo "== the CAS's key is pinned at init"
URI=cas://$CAS/e2e/imp/V1
mkdir -p "$BACK" "$MNT"
"$FSHIELD" init --trust "$URI" "$BACK" >"$T/out" || fail "init: $(cat "$T/out")"
grep -q "server key SHA-256 $(keyfp server)" "$T/out" || fail "init did not name the CAS's key: $(cat "$T/out")"
cmount "$BACK" "$MNT" "$URI"
echo one >"$MNT/f"
cumount "$MNT"
cas_stop main
CAS_CERT=server-renewed cas_start main "sqlite:$T/cas.db"
cmount "$BACK" "$MNT" "$URI"
expect_eq one "$(cat "$MNT/f")" "the volume through the CAS with a renewed certificate"
cumount "$MNT"
cas_stop main
CAS_CERT=server3 cas_start main "sqlite:$T/cas.db"
expect_status 6 "$FSHIELD" mount --trust "$URI" -o commit_interval=0 "$BACK" "$MNT" 2>"$T/err"
grep -Eq "wrong trust anchor: .*created with anchor id [0-9a-f]{32}, this one has anchor id [0-9a-f]{32} \(CAS $CAS \(server key SHA-256 $(keyfp server3)" "$T/err" ||
	fail "mount through a CAS with another key: $(cat "$T/err")"
! is_mounted "$MNT" || fail "mounted through a CAS with another key"
expect_status 6 "$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" 2>&1
grep -q "wrong trust anchor" "$T/out" || fail "verify through a CAS with another key: $(cat "$T/out")"
cas_stop main

echo "== separate CAs: the clients' CA for the server, the server's CA for the clients"
export FSHIELD_CA=$PKI/srvca.crt
CAS_CERT=server2 cas_start sep "sqlite:$T/sep.db"
SCAS=127.0.0.1:${CPORT[sep]}
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "$SCAS" >/dev/null
mkdir -p "$T/sep-back"
"$FSHIELD" init --trust "cas://$SCAS/e2e/imp/V1" "$T/sep-back" >/dev/null || fail "init with separate CAs"
cmount "$T/sep-back" "$MNT" "cas://$SCAS/e2e/imp/V1"
echo two >"$MNT/g"
cumount "$MNT"
cmount "$T/sep-back" "$MNT" "cas://$SCAS/e2e/imp/V1"
expect_eq two "$(cat "$MNT/g")" "a file through the CAS with separate CAs"
cumount "$MNT"
# A client certificate (of the clients' CA) answering as the CAS does not chain to the server's CA.
CAS_CERT=other cas_start imp-sep "sqlite:$T/imp-sep.db"
mkdir -p "$T/imp-sep"
expect_status 6 "$FSHIELD" init --trust "cas://127.0.0.1:${CPORT[imp-sep]}/e2e/imp/V1" "$T/imp-sep" 2>"$T/err"
grep -q "SSL" "$T/err" || fail "init through an impostor with separate CAs: $(cat "$T/err")"
echo ok
