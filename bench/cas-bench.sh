#!/usr/bin/env bash
# Commits per second through the CAS with 1, 8 and 64 volumes committing at once, and the commit latency
# (p50, p99) it adds over the local trust store. Starts its own CAS (SQLite store) on 127.0.0.1 with
# certificates made here, runs build/bench/cas_bench against it and against a file: trust store, and
# removes everything afterwards.
#
#   bench/cas-bench.sh [FSHIELD_BINARY] [SECONDS]     (default build/fshield, 5 seconds per run)
#
# Each commit is a 4 KiB write and fsv_commit: chunk data and metadata made durable in the backing
# directory, then the compare-and-swap at the anchor (file: one SQLite transaction; cas: one HTTPS request,
# a nonce and a state transaction in the CAS's store, each fsync'ed), then the mark.
set -euo pipefail
FSHIELD=$(readlink -f "${1:-build/fshield}")
SECS=${2:-5}
BENCH=$(dirname "$FSHIELD")/bench/cas_bench
[ -x "$FSHIELD" ] && [ -x "$BENCH" ] || { echo "cas-bench: build first (make): $FSHIELD, $BENCH" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fshield-casbench.XXXXXX")
CAS_PID=
cleanup() {
	[ -n "$CAS_PID" ] && kill "$CAS_PID" 2>/dev/null && wait "$CAS_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 1 \
	-subj /CN=bench-ca 2>/dev/null
for c in server client; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $c.key -out $c.csr -subj /CN=$c 2>/dev/null
	eku=clientAuth
	[ $c = server ] && eku=serverAuth
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%s\n' $eku >$c.ext
	openssl x509 -req -in $c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out $c.crt -extfile $c.ext 2>/dev/null
done
export FSHIELD_TLS_CERT=$T/client.crt FSHIELD_TLS_KEY=$T/client.key FSHIELD_CA=$T/ca.crt
"$FSHIELD" keygen -o "$T/master.key"

# Every volume of the bench connects from 127.0.0.1: the per-address limit is raised above its 64.
"$FSHIELD" cas serve --listen 127.0.0.1:0 --tls-cert server.crt --tls-key server.key --client-ca ca.crt \
	--store "sqlite:$T/cas.db" --audit-key-file "$T/audit.key" --master-key-file "$T/master.key" \
	--max-connections-per-address 128 >cas.out 2>cas.log &
CAS_PID=$!
for _ in $(seq 200); do grep -q 'listening on' cas.out && break; sleep 0.05; done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' cas.out)
[ -n "$PORT" ] || { echo "cas-bench: the CAS did not start: $(cat cas.log)" >&2; exit 1; }

FP=$("$FSHIELD" cas fingerprint client.crt)
{
	echo "name: bench/s"
	echo "volumes:"
	for i in $(seq 0 63); do echo "  - {name: b$i, update_policy: rollback_protected, clients: [$FP]}"; done
} >session.yaml

echo "commit = 4 KiB write + fsv_commit; $SECS s per run; CAS on 127.0.0.1 (SQLite store, same machine)"
declare -A P50 P99
for n in 1 8 64; do
	for kind in file cas; do
		mkdir -p "$T/$kind$n"
		anchor=file:$T/trust$n.db
		if [ $kind = cas ]; then
			# unregistered CAS volumes b0 .. b{n-1} for every run: a session per run
			sed "s#name: bench/s#name: bench/r$n#" session.yaml >s$n.yaml
			"$FSHIELD" cas session create s$n.yaml --cas "127.0.0.1:$PORT" >/dev/null
			anchor=cas://127.0.0.1:$PORT/bench/r$n/b
		fi
		line=$("$BENCH" "$T/$kind$n" "$anchor" "$n" "$SECS")
		echo "$line"
		P50[$kind$n]=$(sed -n 's/.*p50 *\([0-9.]*\) ms.*/\1/p' <<<"$line")
		P99[$kind$n]=$(sed -n 's/.*p99 *\([0-9.]*\) ms.*/\1/p' <<<"$line")
	done
done
echo "latency the CAS adds over the local trust store (cas - file):"
for n in 1 8 64; do
	awk -v n="$n" -v a="${P50[cas$n]}" -v b="${P50[file$n]}" -v c="${P99[cas$n]}" -v d="${P99[file$n]}" \
		'BEGIN { printf "  volumes %3d  p50 %+7.2f ms  p99 %+7.2f ms\n", n, a - b, c - d }'
done
