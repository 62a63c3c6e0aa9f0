# Shared by the CAS end-to-end tests (90-99). Source it after lib-mount.sh. Gives:
#   $PKI with a CA and the certificates server (extendedKeyUsage serverAuth), client (used by the
#   volumes), other (signed by the CA, named by no session), owner (creates sessions), rogue (of another
#   CA), all of them clientAuth; mkcert NAME CA PURPOSE makes another (PURPOSE serverAuth, clientAuth or
#   none: no extendedKeyUsage), mkca NAME another CA; fp NAME prints a fingerprint;
#   cas_start NAME STORE [serve options]: a CAS on 127.0.0.1, on a free port the first time and on the
#   same port after a restart (${CPORT[NAME]}, ${CPID[NAME]}), its audit key $T/cas.audit-key and its
#   master key $T/cas.master-key (made here, as an operator makes it: fshield keygen); it serves
#   the certificate $CAS_CERT (default server) and takes clients of the CA $CAS_CLIENT_CA (default ca);
#   cas_stop NAME [SIGNAL];
#   cmount BACK MNT URI [mount options] / cumount MNT: mounts through the CAS with commit_interval=0;
#   wfs FILE TEXT: write and fsync, prints "ok" or the errno of the failing call;
#   $T/load.py FILE N LOG: a load of N fsync'ed writes that retries EIO (see below);
#   EXTRA_CLEANUP_PIDS: processes (loads, etcd members) killed before lib-mount.sh's cleanup.
PKI=$T/pki
mkdir -p "$PKI" "$T/tmp"
export TMPDIR=$T/tmp # verify's private copies of the store
EXTRA_CLEANUP_PIDS=()
declare -A CPID CPORT

cas_on_exit() {
	local st=$? p
	for p in "${EXTRA_CLEANUP_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$st" -eq 0 ]; then cleanup; else (exit "$st") || cleanup; fi
}
trap cas_on_exit EXIT

mkcert() { # mkcert NAME CA_NAME PURPOSE
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.csr" \
		-subj "/CN=$1" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$PKI/$1.ext"
	[ "$3" = none ] || printf 'extendedKeyUsage=%s\n' "$3" >>"$PKI/$1.ext"
	openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" -CAcreateserial -days 2 \
		-out "$PKI/$1.crt" -extfile "$PKI/$1.ext" 2>/dev/null
}
mkca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" \
		-out "$PKI/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null
}
for ca in ca rogueca; do mkca "$ca"; done
mkcert server ca serverAuth
for c in client other owner; do mkcert "$c" ca clientAuth; done
mkcert rogue rogueca clientAuth
fp() { "$FSHIELD" cas fingerprint "$PKI/$1.crt"; }
"$FSHIELD" keygen -o "$T/cas.master-key"

export FSHIELD_TLS_CERT=$PKI/client.crt FSHIELD_TLS_KEY=$PKI/client.key FSHIELD_CA=$PKI/ca.crt
export FSHIELD_CAS_TIMEOUT=${FSHIELD_CAS_TIMEOUT:-3}
as_owner() { FSHIELD_TLS_CERT=$PKI/owner.crt FSHIELD_TLS_KEY=$PKI/owner.key "$@"; }

cas_start() { # cas_start NAME STORE [serve options]
	local name=$1 store=$2 out i
	shift 2
	# One of each per test: CAS processes sharing a store share them. A later --master-key-file wins.
	set -- --audit-key-file "$T/cas.audit-key" --master-key-file "$T/cas.master-key" "$@"
	: "${CPORT[$name]:=0}"
	for i in 1 2 3 4 5; do
		out=$T/cas.$name.$RANDOM.out
		"$FSHIELD" cas serve --listen "127.0.0.1:${CPORT[$name]}" --tls-cert "$PKI/${CAS_CERT:-server}.crt" \
			--tls-key "$PKI/${CAS_CERT:-server}.key" --client-ca "$PKI/${CAS_CLIENT_CA:-ca}.crt" --store "$store" "$@" \
			>"$out" 2>>"$T/cas.$name.log" &
		CPID[$name]=$!
		EXTRA_PIDS+=("${CPID[$name]}")
		if wait_until 20 grep -q 'listening on' "$out"; then
			CPORT[$name]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
			return 0
		fi
		pid_alive "${CPID[$name]}" && fail "CAS $name did not start: $(tail -n 3 "$T/cas.$name.log")"
		wait "${CPID[$name]}" || true
		sleep 0.2 # the port was busy: try again (bounded)
	done
	fail "CAS $name could not start on 127.0.0.1:${CPORT[$name]}: $(tail -n 3 "$T/cas.$name.log")"
}
cas_stop() { # cas_stop NAME [SIGNAL]
	kill -"${2:-TERM}" "${CPID[$1]}"
	wait "${CPID[$1]}" 2>/dev/null || true
	pid_alive "${CPID[$1]}" && fail "CAS $1 did not stop"
	CPID[$1]=
}

cmount() { # cmount BACK MNT URI [mount options]
	local b=$1 m=$2 u=$3
	shift 3
	"$FSHIELD" mount --trust "$u" --tls-cert "$PKI/client.crt" --tls-key "$PKI/client.key" --ca "$FSHIELD_CA" \
		-o commit_interval=0 "$@" "$b" "$m"
	is_mounted "$m" || fail "mount returned but $m is not mounted"
}
cumount() { "$FSHIELD" umount "$1" || fail "umount $1 exited $?"; }

cat >"$T/wfs.py" <<'EOF'
import errno, os, sys
# wfs.py FILE TEXT: writes TEXT and fsyncs; prints "ok" or the errno name of the failing call
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
except OSError as e:
    print("open", errno.errorcode[e.errno]); sys.exit(0)
try:
    os.write(fd, sys.argv[2].encode())
    os.fsync(fd)
    print("ok")
except OSError as e:
    print("write/fsync", errno.errorcode[e.errno])
finally:
    try:
        os.close(fd)
    except OSError:
        pass
EOF
wfs() { python3 "$T/wfs.py" "$@"; }

cat >"$T/load.py" <<'EOF'
import errno, os, sys, time
# load.py FILE N LOG: writes 1..N, each fsync'ed; an EIO is retried (the CAS away) for up to 60 s;
# logs "ack I" after each acknowledged fsync and "eio I" for each failure. Exit 1 on any other error.
path, n, log = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "a", buffering=1)
for i in range(1, n + 1):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"%d" % i)
    deadline = time.monotonic() + 60
    while True:
        try:
            os.fsync(fd)
            break
        except OSError as e:
            if e.errno != errno.EIO or time.monotonic() > deadline:
                log.write("error %d %s\n" % (i, errno.errorcode.get(e.errno, e.errno))); sys.exit(1)
            log.write("eio %d\n" % i)
            time.sleep(0.05)
    os.close(fd)
    log.write("ack %d\n" % i)
EOF
acks() { grep -c '^ack' "$1" || true; }
