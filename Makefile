# fshield build: one static archive per product folder, each compiled against only the packages it
# uses; every program links only the archives and packages it needs (checked by tests/layout/).
#   meta/common  status codes, logging, vectors        (no package)
#   crypto       generic primitives                     libsodium openssl
#   meta         the volume's on-disk format and checks libsodium sqlite3
#   meta/cas     the CAS: protocol, sessions, store, server
#   meta/anchor  trust anchors: file, none, cas
#   meta/fspf    image protection files
#   fs/volume    the volume library
#   fs/fuse      the FUSE daemon and its front ends
#   tools        the fshield command (one file per subcommand)
# Sources are picked up by folder, so adding a file to a folder needs no edit here.
# Test hooks (crash points, the test clock, reply dropping) exist only in the test build (FS_TEST_HOOKS),
# which make check builds in build-test/; make all builds the release in build/ without them.
CC      ?= cc
CFLAGS  ?= -O2 -g
BASE_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -I.
ifeq ($(TEST_HOOKS),1)
BASE_CFLAGS += -DFS_TEST_HOOKS
endif
override CFLAGS += $(BASE_CFLAGS)
BUILD   ?= build
# The version has one source, the Debian changelog's first entry (without a Debian revision): fshield
# --version and the package cannot disagree. tests/e2e/22-cli.sh checks the built program against it.
VERSION := $(shell awk -F'[()]' 'NR == 1 { sub(/-[^-]*$$/, "", $$2); print $$2 }' tools/debian/changelog)
ifeq ($(VERSION),)
$(error no version in the first line of tools/debian/changelog)
endif
pc_cflags = $(if $(strip $(1)),$(shell pkg-config --cflags $(1)))
pc_libs   = $(if $(strip $(1)),$(shell pkg-config --libs $(1))) -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

# archive  folder                 packages its sources are compiled against
ARCHIVES := common crypto format cas anchor fspf volume fuse tools
dir_common := meta/common
dir_crypto := crypto
pkg_crypto := libsodium openssl
dir_format := meta
pkg_format := libsodium sqlite3
dir_cas    := meta/cas
pkg_cas    := libsodium openssl sqlite3 jansson yaml-0.1 libcurl libmicrohttpd gnutls
dir_anchor := meta/anchor
pkg_anchor := libsodium openssl sqlite3 libcurl
dir_fspf   := meta/fspf
pkg_fspf   := libsodium openssl
dir_volume := fs/volume
pkg_volume := libsodium openssl sqlite3
dir_fuse   := fs/fuse
pkg_fuse   := fuse3 libsodium openssl
dir_tools  := tools
pkg_tools  := libsodium openssl sqlite3 jansson yaml-0.1 libcurl libmicrohttpd gnutls libarchive fuse3
ALL_PKGS   := $(pkg_tools)

src_of = $(filter-out tools/solo.c,$(sort $(wildcard $(dir_$(1))/*.c)))
lib_of = $(BUILD)/lib/$(1).a
$(foreach a,$(ARCHIVES),$(eval $(call lib_of,$(a)): $(patsubst %.c,$(BUILD)/%.o,$(call src_of,$(a)))))
$(foreach a,$(ARCHIVES),$(foreach s,$(call src_of,$(a)),$(eval $(BUILD)/$(s:.c=.o): PKG_CFLAGS := $(call pc_cflags,$(pkg_$(a))))))

# What each program links, highest layer first (archives are searched in this order).
LINK_LIB   := volume anchor cas format fspf crypto common
LINK_ALL   := fuse $(LINK_LIB)
link_archives = $(foreach a,$(1),$(call lib_of,$(a)))

TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TTOOL_SRC := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TTOOLS   := $(TTOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
BIN      := $(BUILD)/fshield
# verify and info also come as small programs for auditors: no FUSE, no HTTP server, no archive reader.
SOLO     := $(BUILD)/fshield-verify $(BUILD)/fshield-info
SOLO_ARCHIVES := $(LINK_LIB)
SOLO_PKGS := libsodium openssl sqlite3 libcurl jansson

.PHONY: all check test-build unit e2e layout asan valgrind fuzz fuzz-check deps clean bench install uninstall deb deb-check demo
# The release: the command, the small programs and the benchmarks (tests are built by make check).
all: $(BIN) $(SOLO) $(BENCHES)

$(BUILD)/%.o: %.c $(wildcard */*.h */*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/tools/version.o: override CFLAGS += -DFSHIELD_VERSION='"$(VERSION)"'
$(BUILD)/tools/version.o: tools/debian/changelog

$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(call link_archives,tools $(LINK_ALL))
	$(CC) $(CFLAGS) -o $@ $(BUILD)/tools/fshield.o $^ $(call pc_libs,$(ALL_PKGS))
	ln -sf fshield $(BUILD)/mount.fshield
	ln -sf fshield $(BUILD)/mount.fuse.fshield

$(BUILD)/fshield-%: tools/solo.c $(BUILD)/tools/%.o $(BUILD)/tools/keyopts.o $(BUILD)/tools/json_out.o $(call link_archives,$(SOLO_ARCHIVES)) $(wildcard */*.h)
	$(CC) $(CFLAGS) $(call pc_cflags,$(SOLO_PKGS)) -DSOLO_CMD=$* -o $@ tools/solo.c $(BUILD)/tools/$*.o $(BUILD)/tools/keyopts.o $(BUILD)/tools/usage.o $(BUILD)/tools/json_out.o \
	  $(call link_archives,$(SOLO_ARCHIVES)) $(call pc_libs,$(SOLO_PKGS))

$(BUILD)/tests/%: tests/unit/%.c $(call link_archives,$(LINK_ALL)) tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call pc_cflags,$(ALL_PKGS)) -o $@ $< $(call link_archives,$(LINK_ALL)) $(call pc_libs,$(ALL_PKGS)) $(CHECK_LIBS)

$(BUILD)/bench/%: bench/%.c $(call link_archives,$(LINK_ALL))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call pc_cflags,$(ALL_PKGS)) -o $@ $< $(call link_archives,$(LINK_ALL)) $(call pc_libs,$(ALL_PKGS))

$(BUILD)/tests/tools/%: tests/tools/%.c $(call link_archives,$(LINK_ALL))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call pc_cflags,$(ALL_PKGS)) -o $@ $< $(call link_archives,$(LINK_ALL)) $(call pc_libs,$(ALL_PKGS))

# make check runs the test build (with its hooks) from build-test/: every unit runner, the layout checks,
# every end-to-end script, then each fuzzer briefly on its corpus, then builds the Debian package and
# installs it (deb-check). The release build is checked to carry no test hook.
TEST_BUILD ?= build-test
check:
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=$(TEST_BUILD) TEST_HOOKS=1 test-build
	@$(MAKE) --no-print-directory BUILD=$(TEST_BUILD) TEST_HOOKS=1 RELEASE_BUILD=$(BUILD) layout unit e2e fuzz-check
	@$(MAKE) --no-print-directory deb-check

test-build: $(BIN) $(SOLO) $(TESTS) $(TTOOLS)

RELEASE_BUILD ?= build
layout: $(SOLO)
	@FSHIELD=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) RELEASE_BUILD=$(abspath $(RELEASE_BUILD)) tests/layout/run.sh

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; CK_FORK=yes $$t; done

e2e: $(BIN) $(TTOOLS)
	@FSHIELD=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) tests/e2e/run-all.sh

asan:
	$(MAKE) BUILD=build-asan TEST_BUILD=build-asan-test CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# The unit runners under valgrind (no fork, so every test runs in the checked process).
valgrind:
	@$(MAKE) --no-print-directory BUILD=$(TEST_BUILD) TEST_HOOKS=1 test-build
	@set -e; for t in $(TEST_SRC:tests/unit/%.c=$(TEST_BUILD)/tests/%); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite $$t; done

# Each harness links only the archives and packages of the code it drives.
fuzzlink_fuzz_header := format crypto common
fuzzpkg_fuzz_header  := libsodium openssl
fuzzlink_fuzz_rows   := format crypto common
fuzzpkg_fuzz_rows    := libsodium openssl
fuzzlink_fuzz_chunk  := format crypto common
fuzzpkg_fuzz_chunk   := libsodium openssl
fuzzlink_fuzz_fspf   := fspf format crypto common
fuzzpkg_fuzz_fspf    := libsodium openssl
fuzzlink_fuzz_cas    := cas format crypto common
fuzzpkg_fuzz_cas     := libsodium openssl jansson yaml-0.1
fuzzlink_fuzz_metadb := $(SOLO_ARCHIVES)
fuzzpkg_fuzz_metadb  := $(SOLO_PKGS)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
# The layout checks read what the harnesses link.
layout: $(FUZZ_BIN)
FUZZ_ARCHIVES := $(ARCHIVES:%=build-fuzz/lib/%.a)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# One sub-make builds the instrumented archives (so parallel harness builds never race on their objects);
# harnesses are relinked whenever one of them or a header changes.
ifneq ($(BUILD),build-fuzz)
$(FUZZ_ARCHIVES) &: $(foreach a,$(ARCHIVES),$(call src_of,$(a))) $(wildcard */*.h */*/*.h)
	$(MAKE) --no-print-directory BUILD=build-fuzz TEST_HOOKS=1 CC=clang CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_ARCHIVES)
endif
build-fuzz/%: tests/fuzz/%.c $(FUZZ_ARCHIVES) $(wildcard */*.h */*/*.h)
	clang $(BASE_CFLAGS) -DFS_TEST_HOOKS -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(call pc_cflags,$(fuzzpkg_$*)) -o $@ $< \
	  $(foreach a,$(fuzzlink_$*),build-fuzz/lib/$(a).a) $(call pc_libs,$(fuzzpkg_$*))

# New corpus entries go to build-fuzz/ (never into tests/fuzz/corpus), crash inputs to build-fuzz/NAME-crash-*;
# every harness runs even when an earlier one fails, and the target fails if any did.
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BIN)
	@fail=0; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/$$n- build-fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	    || { echo "== $$n FAILED"; fail=1; }; done; exit $$fail

fuzz-check: $(FUZZ_BIN)
	@fail=0; for f in $(FUZZ_BIN); do n=$$(basename $$f); echo "== $$n (corpus + 5s)"; \
	  rm -rf build-fuzz/check-$$n; mkdir -p build-fuzz/check-$$n; \
	  if $$f -max_total_time=5 -print_final_stats=0 -artifact_prefix=build-fuzz/$$n- build-fuzz/check-$$n \
	       tests/fuzz/corpus/$$n >build-fuzz/check-$$n.log 2>&1; then grep -E "^Done [0-9]+ runs" build-fuzz/check-$$n.log; \
	  else tail -n 60 build-fuzz/check-$$n.log; echo "== $$n FAILED (log: build-fuzz/check-$$n.log)"; fail=1; fi; \
	  done; exit $$fail

# The stateful-service demo: a counter in a protected volume, then attacks on its backing store.
demo: $(BIN)
	tools/demo.sh $(abspath $(BIN))

bench: $(BIN) $(BENCHES)
	bench/chunk-crypto.sh $(abspath $(BIN))
	$(BUILD)/bench/meta_bench
	bench/fs-bench.sh $(abspath $(BIN))

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  build-essential pkg-config libfuse3-dev fuse3 libsodium-dev libssl-dev libsqlite3-dev libarchive-dev check \
	  libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libjansson-dev libyaml-dev \
	  clang libclang-rt-14-dev sqlite3 python3 valgrind openssl curl etcd-server \
	  debhelper dpkg-dev fakeroot lintian mandoc man-db

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs, the mount helpers, the man pages and the
# systemd unit template. The mount helpers go to /sbin whatever the prefix: mount(8) looks for
# mount.TYPE only there (and in /sbin/fs.d, /sbin/fs). make uninstall removes exactly these files.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= /sbin
MANDIR  ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALLED := $(BINDIR)/fshield $(BINDIR)/fshield-verify $(BINDIR)/fshield-info \
  $(SBINDIR)/mount.fshield $(SBINDIR)/mount.fuse.fshield \
  $(MANDIR)/man1/fshield.1 $(MANDIR)/man1/fshield-verify.1 $(MANDIR)/man1/fshield-info.1 \
  $(MANDIR)/man8/mount.fshield.8 $(MANDIR)/man8/mount.fuse.fshield.8 \
  $(SYSTEMDUNITDIR)/fshield@.service

install: $(BIN) $(SOLO)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(BIN) $(SOLO) $(DESTDIR)$(BINDIR)/
	ln -sfn $(BINDIR)/fshield $(DESTDIR)$(SBINDIR)/mount.fshield
	ln -sfn $(BINDIR)/fshield $(DESTDIR)$(SBINDIR)/mount.fuse.fshield
	install -m 0644 docs/man/fshield.1 $(DESTDIR)$(MANDIR)/man1/fshield.1
	ln -sfn fshield.1 $(DESTDIR)$(MANDIR)/man1/fshield-verify.1
	ln -sfn fshield.1 $(DESTDIR)$(MANDIR)/man1/fshield-info.1
	install -m 0644 docs/man/mount.fshield.8 $(DESTDIR)$(MANDIR)/man8/mount.fshield.8
	ln -sfn mount.fshield.8 $(DESTDIR)$(MANDIR)/man8/mount.fuse.fshield.8
	sed 's|@BINDIR@|$(BINDIR)|g' tools/systemd/fshield@.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/fshield@.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/fshield@.service

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

# make deb: the Debian package fshield_VERSION_ARCH.deb in $(BUILD)/deb/, built from a copy of the tree
# with tools/debian as its debian/ (the repository keeps its fixed top level). make deb-check also runs
# lintian on it and the install test with it (tests/e2e/25-install.sh, which installs and purges it).
DEB_DIR := $(BUILD)/deb
DEB_VERSION = $(shell dpkg-parsechangelog -l tools/debian/changelog -S Version)
DEB_ARCH = $(shell dpkg-architecture -q DEB_HOST_ARCH)
DEB := $(DEB_DIR)/fshield_$(DEB_VERSION)_$(DEB_ARCH).deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	cp -a Makefile README.md fs crypto meta tools tests bench docs $(DEB_DIR)/src/
	cp -a tools/debian $(DEB_DIR)/src/debian
	@# As a distribution builds it: none of this make's variables (make asan's CC, CFLAGS) reach the package.
	cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u CC -u CFLAGS \
	  dpkg-buildpackage -us -uc -b
	@echo "package: $(DEB)"

deb-check: deb
	lintian --fail-on error $(DEB)
	FSHIELD_DEB=$(abspath $(DEB)) FSHIELD=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) bash tests/e2e/25-install.sh

clean:
	rm -rf build build-test build-asan build-asan-test build-fuzz
