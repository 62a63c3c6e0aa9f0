#!/usr/bin/env bash
# Layout and link checks: the tree's layers (layout.py, itself tested on a planted circle and a planted
# upward include), what the small programs and the fuzzers link, and that test hooks exist only in the
# test build. Needs BUILD (the test build) and RELEASE_BUILD.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
bad() { echo "FAIL: $*"; fail=1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The checker must catch what it claims to: a circle and an upward include in a planted tree.
mkdir -p "$tmp/t/meta/common" "$tmp/t/crypto" "$tmp/t/meta" "$tmp/t/meta/cas" "$tmp/t/meta/fspf" \
	"$tmp/t/meta/anchor" "$tmp/t/fs/volume" "$tmp/t/fs/fuse" "$tmp/t/tools"
printf '#include "meta/b.h"\n' >"$tmp/t/meta/a.c"; printf '#include "meta/a.h"\n' >"$tmp/t/meta/b.h"
printf '\n' >"$tmp/t/meta/a.h"
if "$root/tests/layout/layout.py" "$tmp/t" "$tmp/none" >"$tmp/out" 2>&1 || ! grep -q "include circle" "$tmp/out"; then
	bad "layout.py does not report a planted circle"; cat "$tmp/out"
fi
rm -f "$tmp/t/meta/"*.[ch]; printf '#include "fs/volume/volume.h"\n' >"$tmp/t/meta/c.c"
if "$root/tests/layout/layout.py" "$tmp/t" "$tmp/none" >"$tmp/out" 2>&1 || ! grep -q "arrow up" "$tmp/out"; then
	bad "layout.py does not report a planted upward include"; cat "$tmp/out"
fi

# The real tree.
"$root/tests/layout/layout.py" "$root" "$BUILD" || bad "the source tree has layout problems"

# What each small program may not link.
needed() { readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; }
check_links() { # program, forbidden library pattern
	local libs; libs=$(needed "$1")
	if grep -Eq "$2" <<<"$libs"; then bad "$(basename "$1") links $(grep -E "$2" <<<"$libs" | tr '\n' ' ')"; fi
}
for p in fshield-verify fshield-info; do
	[ -x "$BUILD/$p" ] || { bad "$BUILD/$p was not built"; continue; }
	check_links "$BUILD/$p" 'libfuse|libmicrohttpd|libgnutls|libarchive|libyaml'
done
fz="$root/build-fuzz"
if [ -d "$fz" ]; then
	for f in header rows chunk; do
		[ -x "$fz/fuzz_$f" ] && check_links "$fz/fuzz_$f" 'libfuse|libmicrohttpd|libgnutls|libarchive|libyaml|libcurl|libjansson|libsqlite'
	done
	[ -x "$fz/fuzz_fspf" ] && check_links "$fz/fuzz_fspf" 'libfuse|libmicrohttpd|libgnutls|libarchive|libyaml|libcurl|libjansson|libsqlite'
	[ -x "$fz/fuzz_cas" ] && check_links "$fz/fuzz_cas" 'libfuse|libmicrohttpd|libgnutls|libarchive|libcurl|libsqlite'
	[ -x "$fz/fuzz_metadb" ] && check_links "$fz/fuzz_metadb" 'libfuse|libmicrohttpd|libgnutls|libarchive|libyaml'
fi

# Test hooks: present in the test build (so this check can fail), absent from the release build.
hooks='FSHIELD_CRASH_AT|FSHIELD_FAIL_SYNC|drop-replies-after|fs_test_set_clock|FSHIELD_TEST_NO_OPENAT2'
grep -Eaq "$hooks" "$BUILD/fshield" || bad "the test build has no test hooks: this check would prove nothing"
if grep -Eao "$hooks" "$RELEASE_BUILD/fshield" | sort -u | grep -q .; then
	bad "the release build carries test hooks: $(grep -Eao "$hooks" "$RELEASE_BUILD/fshield" | sort -u | tr '\n' ' ')"
fi
exit $fail
