#!/usr/bin/env bash
# Every answer a client acts on is authenticated (docs/CAS.md, section 3.1), against a real
# `fshield cas serve` on 127.0.0.1 behind a proxy that terminates TLS with the CAS's own certificate and
# key, at the address the volume is bound to. The proxy relays each request to the CAS (as the client it
# stands in front of) and, depending on its mode, changes the answers on the way back:
#   - pass: nothing changed; verify of the volume: 0, of a rolled-back copy: 2 (the proxy is transparent);
#   - policy: info says no_rollback_protection: verify of the rolled-back copy fails authentication (6),
#     it does not pass;
#   - creator: info names another session creator: verify fails authentication (6);
#   - nomac: the MAC is taken off the info and key answers: verify refuses them (6).
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
. "$(dirname "$0")/lib-cas.sh"

cas_start main "sqlite:$T/cas.db"
PORT=${CPORT[main]}
URI=cas://127.0.0.1:$PORT/e2e/mac/V1
printf 'name: e2e/mac\nvolumes:\n  - name: V1\n    update_policy: rollback_protected\n    clients: [%s]\n' \
	"$(fp client)" >"$T/session.yaml"
as_owner "$FSHIELD" cas session create "$T/session.yaml" --cas "127.0.0.1:$PORT" >/dev/null

mkdir -p "$BACK" "$MNT"
"$FSHIELD" init --trust "$URI" "$BACK" >/dev/null
cmount "$BACK" "$MNT" "$URI"
echo one >"$MNT/f"
cumount "$MNT"
cp -a "$BACK" "$T/snap" # version 1
cmount "$BACK" "$MNT" "$URI"
echo two >"$MNT/f"
cumount "$MNT"

# The CAS moves to another port; the proxy takes the volume's address.
cas_stop main
cas_start real "sqlite:$T/cas.db"
cat >"$T/proxy.py" <<'EOF'
import http.client, http.server, json, socketserver, ssl, sys
# proxy.py PORT UPSTREAM_PORT MODEFILE PKI: TLS with the CAS's certificate on 127.0.0.1:PORT, relays every
# request to the CAS on UPSTREAM_PORT with the client's certificate, changes answers as MODEFILE says.
port, up, modefile, pki = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self): self.relay("GET")
    def do_POST(self): self.relay("POST")
    def relay(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
        ctx.load_cert_chain(pki + "/client.crt", pki + "/client.key")
        c = http.client.HTTPSConnection("127.0.0.1", up, context=ctx, timeout=5)
        c.request(method, self.path, body=body,
                  headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
        r = c.getresponse()
        data, status = r.read(), r.status
        c.close()
        mode = open(modefile).read().strip()
        op = self.path.rsplit("/", 1)[-1]
        if status == 200 and op in ("info", "key") and mode != "pass":
            j = json.loads(data)
            if mode == "policy" and op == "info":
                j["policy"] = "no_rollback_protection"
            elif mode == "creator" and op == "info":
                j["creator"] = "00" * 32
            elif mode == "nomac":
                j.pop("mac", None)
            data = json.dumps(j).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(pki + "/server.crt", pki + "/server.key")
ctx.load_verify_locations(pki + "/ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()
EOF
echo pass >"$T/mode"
: >"$T/proxy.out"
python3 "$T/proxy.py" "$PORT" "${CPORT[real]}" "$T/mode" "$PKI" >"$T/proxy.out" 2>"$T/proxy.log" &
EXTRA_CLEANUP_PIDS+=($!)
wait_until 20 grep -q listening "$T/proxy.out" || fail "the proxy did not start: $(cat "$T/proxy.log")"

echo "== pass: the proxy changes nothing"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" 2>&1 || fail "verify through the proxy: $(cat "$T/out")"
expect_status 2 "$FSHIELD" verify --trust "$URI" "$T/snap" >"$T/out" 2>&1

for mode in policy creator nomac; do
	echo "== $mode: an answer changed on the way"
	echo "$mode" >"$T/mode"
	for dir in "$T/snap" "$BACK"; do
		expect_status 6 "$FSHIELD" verify --trust "$URI" "$dir" >"$T/out" 2>&1
		case $mode in
		nomac) grep -q "unreadable answer.*missing field 'mac'" "$T/out" ;;
		*) grep -q "the info answer fails authentication under the volume's answer key" "$T/out" ;;
		esac || fail "verify of $dir with the proxy in mode $mode: $(cat "$T/out")"
	done
done
echo pass >"$T/mode"
"$FSHIELD" verify --trust "$URI" "$BACK" >"$T/out" 2>&1 || fail "verify through the proxy, once it is honest again: $(cat "$T/out")"
echo ok
