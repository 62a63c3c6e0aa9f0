#!/usr/bin/env bash
# fs-bench.sh: the same file workloads on the backing filesystem, a plain FUSE passthrough, fshield,
# gocryptfs, CryFS and securefs, in one run; prints one table of all of them and the ratios of each
# figure to the passthrough and to the best of gocryptfs, CryFS and securefs. See bench/README.md.
#
#   bench/fs-bench.sh [FSHIELD_BINARY] [--quick] [--fs LIST] [--dir DIR] [--tsv FILE]
#
# Needs root (it drops the page cache and installs missing Debian packages with apt-get).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FSHIELD=$HERE/../build/fshield
QUICK=0
FS_LIST="raw,passthrough,fshield,gocryptfs,cryfs,securefs"
BASE=${TMPDIR:-/tmp}
TSV_OUT=""

usage() {
	cat <<'EOF'
usage: bench/fs-bench.sh [FSHIELD_BINARY] [--quick] [--fs LIST] [--dir DIR] [--tsv FILE]

  FSHIELD_BINARY  the fshield command to measure (default: build/fshield)
  --quick         smaller sizes and shorter runs (about 3 minutes instead of 5 to 13)
  --fs LIST       comma-separated subset of: raw,passthrough,fshield,gocryptfs,cryfs,securefs
  --dir DIR       where the temporary directory goes (default: $TMPDIR or /tmp); every backing
                  directory lives there, so it decides the backing filesystem
  --tsv FILE      also write the raw results (filesystem, workload, value) to FILE
EOF
}

first=1
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--fs) FS_LIST=${2:?--fs needs a list}; shift ;;
	--dir) BASE=${2:?--dir needs a directory}; shift ;;
	--tsv) TSV_OUT=${2:?--tsv needs a file}; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 64 ;;
	*)
		if [ $first = 1 ]; then FSHIELD=$1; else usage >&2; exit 64; fi ;;
	esac
	first=0
	shift
done

if [ "$(id -u)" != 0 ]; then
	echo "fs-bench: must run as root (drop_caches, mounts, apt-get)" >&2
	exit 64
fi

if [ $QUICK = 1 ]; then
	SEQ_MB=256 RAND_MB=64 FIO_SECONDS=5 NFILES=2000 NDIRS=10 TAR_ENTRIES=2000 STEP_TIMEOUT=120
else
	SEQ_MB=1024 RAND_MB=256 FIO_SECONDS=20 NFILES=10000 NDIRS=10 TAR_ENTRIES=0 STEP_TIMEOUT=300
fi
SMALL_SIZE=4096

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
# Tools

need_pkgs=()
for p in fio:fio gocryptfs:gocryptfs cryfs:cryfs securefs:securefs python3:python3 fusermount3:fuse3 \
	pkg-config:pkg-config cc:gcc mountpoint:util-linux; do
	cmd=${p%%:*} pkg=${p#*:}
	case ",$FS_LIST," in
	*,gocryptfs,*) ;;
	*) [ "$cmd" = gocryptfs ] && continue ;;
	esac
	case ",$FS_LIST," in
	*,cryfs,*) ;;
	*) [ "$cmd" = cryfs ] && continue ;;
	esac
	case ",$FS_LIST," in
	*,securefs,*) ;;
	*) [ "$cmd" = securefs ] && continue ;;
	esac
	command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
pkg-config --exists fuse3 2>/dev/null || need_pkgs+=(libfuse3-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "fs-bench: installing ${need_pkgs[*]}"
	if ! { apt-get update -qq >/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null; }; then
		log "fs-bench: apt-get install ${need_pkgs[*]} failed"
		exit 74
	fi
fi

case ",$FS_LIST," in
*,fshield,*)
	FSHIELD=$(cd "$(dirname "$FSHIELD")" 2>/dev/null && pwd)/$(basename "$FSHIELD")
	[ -x "$FSHIELD" ] || { log "fs-bench: $FSHIELD: no fshield binary (make first)"; exit 64; } ;;
esac

# ---------------------------------------------------------------------------------------------------
# The temporary directory, and leaving nothing behind

WORK=$(mktemp -d "$BASE/fs-bench.XXXXXX") || exit 74
MOUNTS=()     # mount points we mounted
PIDS=()       # daemons we started in the foreground (their pid), one per mount point, or "-"

mounts_under_work() { findmnt -rn -o TARGET | grep -F "$WORK/" || true; }

wait_pid() { # pid seconds: 0 once the process is gone
	local pid=$1 n=$(($2 * 10))
	while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	! kill -0 "$pid" 2>/dev/null
}

unmount_one() { # mountpoint pid|-
	local mnt=$1 pid=$2
	if mountpoint -q "$mnt"; then
		if [ "${FSHIELD_MNT:-}" = "$mnt" ]; then
			timeout 120 "$FSHIELD" umount "$mnt" >/dev/null 2>&1 || umount "$mnt" 2>/dev/null ||
				umount -l "$mnt" 2>/dev/null
		else
			fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
		fi
	fi
	if [ "$pid" != - ] && ! wait_pid "$pid" 60; then
		log "fs-bench: daemon $pid did not exit after unmounting $mnt; killing it"
		kill "$pid" 2>/dev/null
		wait_pid "$pid" 5 || kill -9 "$pid" 2>/dev/null
	fi
	if [ "$pid" != - ]; then wait "$pid" 2>/dev/null; fi
	return 0
}

cleanup() {
	local i
	trap - EXIT INT TERM HUP
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		unmount_one "${MOUNTS[$i]}" "${PIDS[$i]}"
	done
	MOUNTS=() PIDS=()
	local left
	left=$(mounts_under_work)
	if [ -n "$left" ]; then
		log "fs-bench: still mounted, $WORK left in place: $left"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'log "fs-bench: interrupted"; exit 130' INT TERM HUP

wait_mounted() { # mountpoint pid|-: 0 once mounted
	local n=600
	while [ $n -gt 0 ]; do
		mountpoint -q "$1" && return 0
		if [ "$2" != - ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

mkdir -p "$WORK/logs"
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# ---------------------------------------------------------------------------------------------------
# Inputs: the passthrough, the tarball, the small-file program

if [[ ",$FS_LIST," == *,passthrough,* ]]; then
	# shellcheck disable=SC2046
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$WORK/passthrough_ll" "$HERE/passthrough_ll.c" \
		$(pkg-config --cflags --libs fuse3) -lpthread || { log "fs-bench: cannot build the passthrough"; exit 74; }
fi

( cd / && find usr/include -mindepth 1 | LC_ALL=C sort ) >"$WORK/tar.list"
if [ "$TAR_ENTRIES" -gt 0 ]; then
	head -n "$TAR_ENTRIES" "$WORK/tar.list" >"$WORK/tar.list2" && mv "$WORK/tar.list2" "$WORK/tar.list"
fi
tar -C / --no-recursion -cf "$WORK/tree.tar" -T "$WORK/tar.list" 2>/dev/null
TAR_N=$(wc -l <"$WORK/tar.list")
TAR_MB=$(du -m "$WORK/tree.tar" | cut -f1)

cat >"$WORK/smallfiles.py" <<'EOF'
# create / stat / read / delete of N small files in D directories; caches dropped before stat and read.
# Create and delete end with an fsync of the directory (fshield commits then; others sync the directory).
import os, sys, time
root, n, ndirs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = os.urandom(size)
dirs = ["%s/d%03d" % (root, d) for d in range(ndirs)]
paths = ["%s/f%05d" % (dirs[i % ndirs], i // ndirs) for i in range(n)]
def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
def fsync_dir(d):
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    os.close(fd)
res = {}
t = time.perf_counter()
for d in dirs:
    os.mkdir(d)
for p in paths:
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    if os.write(fd, data) != size:
        sys.exit("short write: " + p)
    os.close(fd)
fsync_dir(root)
res["create"] = time.perf_counter() - t
drop()
t = time.perf_counter()
for p in paths:
    if os.stat(p).st_size != size:
        sys.exit("wrong size: " + p)
res["stat"] = time.perf_counter() - t
drop()
t = time.perf_counter()
for p in paths:
    fd = os.open(p, os.O_RDONLY)
    if os.read(fd, size + 1) != data:
        sys.exit("wrong content: " + p)
    os.close(fd)
res["read"] = time.perf_counter() - t
t = time.perf_counter()
for p in paths:
    os.unlink(p)
for d in dirs:
    os.rmdir(d)
fsync_dir(root)
res["delete"] = time.perf_counter() - t
for k in ("create", "stat", "read", "delete"):
    print(k, "%.6f" % res[k])
EOF

# ---------------------------------------------------------------------------------------------------
# Measuring

# Before each timed step: what the previous one left pending is finished (an fsync of the mount's root
# directory, which makes fshield commit), written back, and the page cache dropped.
settle() { sync "$1" 2>/dev/null; sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; } # fs workload value ("-" if it failed)
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s; else print "-" }'; }

run_step() { # the command, bounded by STEP_TIMEOUT; its output goes to the fs's log
	timeout "$STEP_TIMEOUT" "$@" >>"$LOG" 2>&1
}

fio_iops() { # json-file rw: total I/Os divided by the job's runtime (fio counts end_fsync in it)
	python3 - "$1" "$2" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
ios, ms = j["total_ios"], j["runtime"]
print("%.1f" % (ios * 1000.0 / ms) if ms > 0 and ios > 0 else "-")
EOF
}

# Each workload is one function, called with the filesystem's name and the directory to work in.
MB_OF_SEQ=$(awk -v m="$SEQ_MB" 'BEGIN { print m * 1048576 / 1e6 }')

w_seqwrite() {
	local t0 t1 v=-
	settle "$2"
	t0=$(now)
	if run_step dd if=/dev/zero of="$2/seq" bs=1M count="$SEQ_MB" conv=fsync; then
		t1=$(now)
		v=$(rate "$MB_OF_SEQ" "$(elapsed "$t0" "$t1")")
	fi
	record "$1" seqwrite "$v"
}

w_seqread() {
	local t0 t1 v=-
	settle "$2"
	t0=$(now)
	if [ -f "$2/seq" ] && run_step dd if="$2/seq" of=/dev/null bs=1M; then
		t1=$(now)
		v=$(rate "$MB_OF_SEQ" "$(elapsed "$t0" "$t1")")
	fi
	record "$1" seqread "$v"
	rm -f "$2/seq"
}

w_randread() {
	local v=-
	run_step dd if=/dev/zero of="$2/rand" bs=1M count="$RAND_MB" conv=fsync
	settle "$2"
	if run_step fio --name=randread --filename="$2/rand" --rw=randread --bs=4k --size="${RAND_MB}m" \
		--ioengine=psync --direct=0 --invalidate=1 --runtime="$FIO_SECONDS" --numjobs=1 \
		--output-format=json --output="$WORK/fio-read-$1.json"; then
		v=$(fio_iops "$WORK/fio-read-$1.json" read)
	fi
	record "$1" randread "$v"
}

w_randwrite() {
	local v=-
	settle "$2"
	if [ -f "$2/rand" ] && run_step fio --name=randwrite --filename="$2/rand" --rw=randwrite --bs=4k \
		--size="${RAND_MB}m" --ioengine=psync --direct=0 --end_fsync=1 --runtime="$FIO_SECONDS" --numjobs=1 \
		--output-format=json --output="$WORK/fio-write-$1.json"; then
		v=$(fio_iops "$WORK/fio-write-$1.json" write)
	fi
	record "$1" randwrite "$v"
	rm -f "$2/rand"
}

w_small() {
	local k s out=$WORK/small-$1.out
	mkdir -p "$2/small"
	settle "$2"
	if timeout "$STEP_TIMEOUT" python3 "$WORK/smallfiles.py" "$2/small" "$NFILES" "$NDIRS" "$SMALL_SIZE" \
		>"$out" 2>>"$LOG" && grep -q '^delete ' "$out"; then
		while read -r k s; do
			record "$1" "small-$k" "$(rate "$NFILES" "$s")"
		done <"$out"
	else
		for k in create stat read delete; do record "$1" "small-$k" -; done
	fi
	rm -rf "$2/small"
}

w_untar() {
	local t0 t1 v=-
	mkdir -p "$2/untar"
	settle "$2"
	t0=$(now)
	if run_step tar -xf "$WORK/tree.tar" -C "$2/untar" && { sync "$2/untar" 2>/dev/null || true; }; then
		t1=$(now)
		v=$(rate "$TAR_N" "$(elapsed "$t0" "$t1")")
	fi
	record "$1" untar "$v"
	rm -rf "$2/untar"
}

# ---------------------------------------------------------------------------------------------------
# Every filesystem is mounted first; then each workload runs on each filesystem in turn, so that a change
# in the machine's load over the run hits the figures of one row alike rather than one column.

PW="fs-bench-password"
printf '%s\n' "$PW" >"$WORK/password"
chmod 600 "$WORK/password"
declare -A DIR_OF # fs -> the directory its workloads run in (unset: it could not be mounted)

mount_fs() {
	local fs=$1 back=$WORK/$1-back mnt=$WORK/$1-mnt pid=- ok=1
	LOG=$WORK/logs/$fs.log
	mkdir -p "$back" "$mnt"
	log "fs-bench: mounting $fs"
	case "$fs" in
	raw)
		DIR_OF[$fs]=$back
		return ;;
	passthrough)
		"$WORK/passthrough_ll" "$back" "$mnt" >>"$LOG" 2>&1 &
		pid=$! ;;
	fshield)
		export FSHIELD_RUN_DIR=$WORK/run
		"$FSHIELD" keygen -o "$WORK/fshield.key" >>"$LOG" 2>&1 &&
			"$FSHIELD" init --key-file "$WORK/fshield.key" --trust "file:$WORK/trust/trust.db" "$back" >>"$LOG" 2>&1 &&
			"$FSHIELD" mount --key-file "$WORK/fshield.key" --trust "file:$WORK/trust/trust.db" "$back" "$mnt" \
				>>"$LOG" 2>&1 || ok=0
		FSHIELD_MNT=$mnt ;;
	gocryptfs)
		gocryptfs -init -q -scryptn 10 -passfile "$WORK/password" "$back" >>"$LOG" 2>&1 || ok=0
		if [ $ok = 1 ]; then
			gocryptfs -fg -q -passfile "$WORK/password" "$back" "$mnt" >>"$LOG" 2>&1 &
			pid=$!
		fi ;;
	cryfs)
		mkdir -p "$WORK/home"
		printf '%s\n%s\n' "$PW" "$PW" | HOME=$WORK/home XDG_DATA_HOME=$WORK/home/.local/share \
			CRYFS_FRONTEND=noninteractive CRYFS_NO_UPDATE_CHECK=true \
			cryfs -f "$back" "$mnt" >>"$LOG" 2>&1 &
		pid=$! ;;
	securefs)
		securefs create --pass "$PW" "$back" >>"$LOG" 2>&1 || ok=0
		if [ $ok = 1 ]; then
			securefs mount --pass "$PW" "$back" "$mnt" >>"$LOG" 2>&1 &
			pid=$!
		fi ;;
	esac
	MOUNTS+=("$mnt")
	PIDS+=("$pid")
	if [ $ok = 1 ] && wait_mounted "$mnt" "$pid"; then
		DIR_OF[$fs]=$mnt
	else
		log "fs-bench: $fs: could not mount; its figures are left empty. The end of its log:"
		tail -n 5 "$LOG" >&2
	fi
}

START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a fss <<<"$FS_LIST"
for fs in "${fss[@]}"; do
	case "$fs" in
	raw | passthrough | fshield | gocryptfs | cryfs | securefs) mount_fs "$fs" ;;
	*) log "fs-bench: unknown filesystem $fs"; exit 64 ;;
	esac
done

for w in "seqwrite:sequential write $SEQ_MB MiB" "seqread:sequential read $SEQ_MB MiB (cold)" \
	"randread:4 KiB random read, $RAND_MB MiB file, $FIO_SECONDS s at most" \
	"randwrite:4 KiB random write + fsync at the end, $FIO_SECONDS s at most" \
	"small:$NFILES small files: create, stat, read, delete" "untar:untar $TAR_N entries ($TAR_MB MB)"; do
	log "fs-bench: ${w#*:}"
	for fs in "${fss[@]}"; do
		LOG=$WORK/logs/$fs.log
		if [ -n "${DIR_OF[$fs]:-}" ]; then
			log "  $fs"
			"w_${w%%:*}" "$fs" "${DIR_OF[$fs]}"
		elif [ "${w%%:*}" = small ]; then
			for k in create stat read delete; do record "$fs" "small-$k" -; done
		else
			record "$fs" "${w%%:*}" -
		fi
	done
done
TOTAL=$(elapsed "$START" "$(now)")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

[ -n "$TSV_OUT" ] && cp "$RESULTS" "$TSV_OUT"

# ---------------------------------------------------------------------------------------------------
# The table

BACKING_FS=$(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || echo "?")
python3 - "$RESULTS" "$FS_LIST" <<EOF
import sys
rows = [
    ("seqwrite", "seq write $SEQ_MB MiB, dd conv=fsync", "MB/s"),
    ("seqread", "seq read $SEQ_MB MiB, cold cache", "MB/s"),
    ("randread", "rand read 4 KiB, $RAND_MB MiB file", "IOPS"),
    ("randwrite", "rand write 4 KiB + end fsync", "IOPS"),
    ("small-create", "create $NFILES x 4 KiB + fsync dir", "files/s"),
    ("small-stat", "stat $NFILES files, cold", "files/s"),
    ("small-read", "read $NFILES files, cold", "files/s"),
    ("small-delete", "delete $NFILES files + fsync dir", "files/s"),
    ("untar", "untar $TAR_N entries, $TAR_MB MB + fsync", "entries/s"),
]
fss = sys.argv[2].split(",")
peers = [f for f in ("gocryptfs", "securefs", "cryfs") if f in fss]
val = {}
for line in open(sys.argv[1]):
    f, k, v = line.rstrip("\n").split("\t")
    val[(f, k)] = None if v == "-" else float(v)
def num(x):
    if x is None: return "fail"
    return "%.0f" % x if x >= 100 else "%.1f" % x
def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)
w = 38
def table(title, cell):
    print(title)
    print("%-*s %-9s" % (w, "workload", "unit") + "".join("%12s" % f for f in fss))
    for k, name, unit in rows:
        print("%-*s %-9s" % (w, name, unit) + "".join("%12s" % cell(f, k) for f in fss))
    print()
def best_peer(k):
    vs = [val.get((p, k)) for p in peers]
    vs = [v for v in vs if v is not None]
    return max(vs) if vs else None
print("fs-bench: $(date -u +%Y-%m-%d) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), "
      "kernel $(uname -r), backing filesystem $BACKING_FS, run took ${TOTAL%.*} s$( [ $QUICK = 1 ] && echo ', --quick')")
print("load average (1, 5, 15 min) at the start $LOAD_START, at the end $LOAD_END")
print()
table("Absolute (higher is better)", lambda f, k: num(val.get((f, k))))
if "passthrough" in fss:
    table("Ratio to the plain FUSE passthrough", lambda f, k: ratio(val.get((f, k)), val.get(("passthrough", k))))
if peers:
    table("Ratio to the best of " + "/".join(peers) + " on the row",
          lambda f, k: ratio(val.get((f, k)), best_peer(k)))
if "fshield" in fss and (peers or "passthrough" in fss):
    print("fshield targets:")
    for k, name, unit in rows:
        fv = val.get(("fshield", k))
        notes = []
        if peers:
            b = best_peer(k)
            if fv is None or b is None:
                notes.append(">= best peer: no figure")
            else:
                notes.append(">= best peer (%s): %s" % (ratio(fv, b), "met" if fv >= b else "NOT MET"))
        if k == "seqwrite" and "passthrough" in fss:
            p = val.get(("passthrough", k))
            if fv is None or not p:
                notes.append(">= 80% of passthrough: no figure")
            else:
                notes.append(">= 80%% of passthrough (%s): %s" % (ratio(fv, p), "met" if fv >= 0.8 * p else "NOT MET"))
        print("  %-*s %s" % (w, name, "; ".join(notes)))
EOF
