#!/usr/bin/env bash
# Image protection costs, each as a ratio to the same work on the plain tree:
#  1. protect: `fspf addf` of a tree of mixed file sizes (encrypted, then authenticated) against `cp -a`
#     of the same tree; both write to the same file system and end with a sync of it.
#  2. cold start: a Python program importing a few hundred modules from a copy of the interpreter's
#     library: from a fresh `mount --fspf` (encrypted region) against the plain copy. Before each run the
#     page cache of the files involved is dropped (posix_fadvise DONTNEED, file by file: nothing else on the
#     machine is touched), so both read from the disk; the FUSE mount is new each run.
# usage: bench/fspf-bench.sh [FSHIELD_BINARY] [--quick | --full | --size MIB] [--runs N]
#   --quick (default): a 64 MiB tree, about a minute; --full: 1 GiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/fshield
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin=$1; shift; fi
size=64 runs=3
while [ $# -gt 0 ]; do
	case $1 in
	--quick) size=64 ;;
	--full) size=1024 ;;
	--size) size=$2; shift ;;
	--runs) runs=$2; shift ;;
	*) echo "usage: $0 [FSHIELD] [--quick | --full | --size MIB] [--runs N]" >&2; exit 64 ;;
	esac
	shift
done
[ -x "$bin" ] || { echo "fspf-bench: no fshield binary at $bin" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/var/tmp}/fspf-bench.XXXXXX")
MNT=$W/mnt
export FSHIELD_RUN_DIR=$W/run
mkdir -p "$MNT" "$FSHIELD_RUN_DIR"
cleanup() {
	set +e
	mountpoint -q "$MNT" && { "$bin" umount "$MNT" >/dev/null 2>&1 || fusermount3 -u -z "$MNT"; }
	rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
evict() { # DIR...: drop the page cache of every file below
	python3 - "$@" <<'EOF'
import os, sys
for top in sys.argv[1:]:
    for d, _, fs in os.walk(top):
        for f in fs:
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
EOF
}

echo "== protect a ${size} MiB tree of mixed file sizes (medians of $runs runs)"
python3 - "$W/tree" "$size" <<'EOF'
import os, random, sys
top, mib = sys.argv[1], int(sys.argv[2])
random.seed(1)
total = mib << 20
plan = [(0.4, 16 << 20, 16 << 20), (0.4, 256 << 10, 1 << 20), (0.2, 1 << 10, 16 << 10)]
n = 0
for share, lo, hi in plan:
    left = int(total * share)
    while left > 0:
        sz = min(left, random.randint(lo, hi))
        d = os.path.join(top, "d%03d" % (n // 200))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%06d" % n), "wb") as f:
            f.write(os.urandom(sz))
        left -= sz
        n += 1
print("  %d files, %d MiB" % (n, mib))
EOF
median() { python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }
t_cp=() t_enc=() t_auth=()
for r in $(seq "$runs"); do
	rm -rf "$W/copy" "$W/enc" "$W/auth" "$W"/*.fspf
	evict "$W/tree"
	s=$(now); cp -a "$W/tree" "$W/copy"; sync -f "$W/copy"; e=$(now)
	t_cp+=("$(python3 -c "print($e - $s)")")
	"$bin" fspf create "$W/e.fspf" >/dev/null
	"$bin" fspf addr "$W/e.fspf" / --encrypted >/dev/null
	evict "$W/tree"
	s=$(now); "$bin" fspf addf "$W/e.fspf" /t "$W/tree" "$W/enc" >/dev/null; "$bin" fspf encrypt "$W/e.fspf" >/dev/null; e=$(now)
	t_enc+=("$(python3 -c "print($e - $s)")")
	"$bin" fspf create "$W/a.fspf" >/dev/null
	"$bin" fspf addr "$W/a.fspf" / --authenticated >/dev/null
	evict "$W/tree"
	s=$(now); "$bin" fspf addf "$W/a.fspf" /t "$W/tree" "$W/auth" >/dev/null; "$bin" fspf encrypt "$W/a.fspf" >/dev/null; e=$(now)
	t_auth+=("$(python3 -c "print($e - $s)")")
done
cp_m=$(median "${t_cp[@]}") enc_m=$(median "${t_enc[@]}") auth_m=$(median "${t_auth[@]}")
printf '  cp -a (plain)      %8.3f s\n' "$cp_m"
printf '  fspf encrypted     %8.3f s   ratio %s\n' "$enc_m" "$(ratio "$enc_m" "$cp_m")"
printf '  fspf authenticated %8.3f s   ratio %s\n' "$auth_m" "$(ratio "$auth_m" "$cp_m")"
rm -rf "$W/tree" "$W/copy" "$W/enc" "$W/auth"

echo "== cold start of a Python program importing the library from the mount"
PYLIB=$(python3 -c 'import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))')
mkdir -p "$W/src"
# the library without tests, GUI and packaging parts; links dereferenced (a protected tree holds no links
# that leave it)
(cd "$PYLIB" && tar --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
	--exclude=./lib2to3 --exclude=./ensurepip --exclude=./site-packages --exclude=./dist-packages \
	--exclude='./config-*' -chf - .) | tar -C "$W/src" -xf - 2>/dev/null || true
find "$W/src" -type l -delete
cat >"$W/imports.py" <<'PY'
import os, sys, time, importlib
lib = sys.argv[1]
sys.path.insert(0, lib)
skip = {"antigravity", "this", "__hello__", "__phello__", "__main__", "idlelib", "tkinter", "turtle",
        "turtledemo", "test", "lib2to3", "ensurepip", "pydoc_data", "venv", "sitecustomize", "site"}
names = [l.strip() for l in open(sys.argv[2]) if l.strip()]
t = time.perf_counter()
ok = 0
for n in names:
    try:
        importlib.import_module(n)
        ok += 1
    except Exception:
        pass
el = time.perf_counter() - t
outside = [m for m, mod in sys.modules.items() if m in names and getattr(mod, "__file__", None) and not mod.__file__.startswith(lib)]
print(ok, "%.4f" % el, len(outside))
PY
python3 - "$W/src" >"$W/modules.txt" <<'PY'
import os, sys
top = sys.argv[1]
skip = {"antigravity", "this", "__hello__", "__phello__", "__main__", "idlelib", "tkinter", "turtle",
        "turtledemo", "test", "tests", "lib2to3", "ensurepip", "pydoc_data", "venv", "sitecustomize", "site"}
out = []
for d, dirs, files in os.walk(top):
    rel = os.path.relpath(d, top)
    parts = [] if rel == "." else rel.split(os.sep)
    if any(p in skip or p == "__pycache__" for p in parts):
        dirs[:] = []
        continue
    if parts and "__init__.py" not in files:
        dirs[:] = []
        continue
    for f in sorted(files):
        if f.endswith(".py"):
            m = f[:-3]
            name = ".".join(parts + ([] if m == "__init__" else [m]))
            if name and not (set(name.split(".")) & skip):
                out.append(name)
print("\n".join(sorted(set(out))))
PY
"$bin" fspf create "$W/lib.fspf" >/dev/null
"$bin" fspf addr "$W/lib.fspf" / --encrypted >/dev/null
"$bin" fspf addf "$W/lib.fspf" /lib "$W/src" "$W/prot/lib" >/dev/null
line=$("$bin" fspf encrypt "$W/lib.fspf")
K=$(sed -n 's/.* key: \([0-9a-f]*\) tag: .*/\1/p' <<<"$line")
TG=$(sed -n 's/.* tag: \([0-9a-f]*\)$/\1/p' <<<"$line")
py() { python3 -S -s "$W/imports.py" "$1" "$W/modules.txt"; }
py "$W/src" >/dev/null # warm Python's own startup files and compile nothing new
p_t=() m_t=()
for r in $(seq "$runs"); do
	evict "$W/src"
	s=$(now); out=$(py "$W/src"); e=$(now)
	p_t+=("$(python3 -c "print($e - $s)")"); p_out=$out
	evict "$W/prot"
	"$bin" mount --fspf "$W/lib.fspf" --fspf-key-fd 3 --fspf-tag-fd 4 "$W/prot" "$MNT" 3<<<"$K" 4<<<"$TG"
	s=$(now); out=$(py "$MNT/lib"); e=$(now)
	m_t+=("$(python3 -c "print($e - $s)")"); m_out=$out
	"$bin" umount "$MNT"
done
read -r p_ok _ p_out_n <<<"$p_out"
read -r m_ok _ m_out_n <<<"$m_out"
[ "$p_ok" = "$m_ok" ] || echo "  warning: $p_ok modules imported from the plain tree, $m_ok from the mount"
pm=$(median "${p_t[@]}") mm=$(median "${m_t[@]}")
printf '  %s modules imported (%s / %s loaded from elsewhere, already in memory at start-up)\n' "$m_ok" "$p_out_n" "$m_out_n"
printf '  plain tree          %8.3f s\n' "$pm"
printf '  mount --fspf (enc)  %8.3f s   ratio %s\n' "$mm" "$(ratio "$mm" "$pm")"
