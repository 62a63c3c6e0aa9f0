# fshield build. Sources are picked up by directory, so adding a file needs no edit here:
#   crypto/*.c meta/*.c fs/vol_*.c  -> libfshield.a (the volume library)
#   fs/fuse_*.c                     -> the FUSE daemon, linked into fshield
#   tools/*.c                       -> the fshield command (one file per subcommand)
#   tests/unit/test_*.c             -> one Check runner each
#   tests/e2e/*.sh                  -> end-to-end scripts, run in name order
#   tests/tools/*.c                 -> small programs the end-to-end scripts drive (build/tests/tools/)
#   tests/fuzz/fuzz_*.c             -> libFuzzer harnesses (make fuzz)
#   bench/*.c                       -> benchmark programs (build/bench/), run by make bench
CC      ?= cc
PKGS    := fuse3 libsodium openssl sqlite3 libmicrohttpd gnutls libcurl jansson yaml-0.1 libarchive
CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
BUILD   ?= build

LIB_SRC  := $(sort $(wildcard crypto/*.c meta/*.c fs/vol_*.c))
FUSE_SRC := $(sort $(wildcard fs/fuse_*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TTOOL_SRC := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
FUSE_OBJ := $(FUSE_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TTOOLS   := $(TTOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libfshield.a
BIN      := $(BUILD)/fshield

.PHONY: all check unit e2e asan valgrind fuzz fuzz-check deps clean bench install demo
all: $(BIN) $(TESTS) $(TTOOLS) $(BENCHES)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN): $(TOOL_OBJ) $(FUSE_OBJ) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(FUSE_OBJ) $(LIB) $(LDLIBS)
	ln -sf fshield $(BUILD)/mount.fshield
	ln -sf fshield $(BUILD)/mount.fuse.fshield

$(BUILD)/tests/%: tests/unit/%.c $(LIB) tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Every unit runner, then every end-to-end script, then each fuzzer briefly on its corpus.
check: all
	@$(MAKE) --no-print-directory unit e2e fuzz-check

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; CK_FORK=yes $$t; done

e2e: $(BIN) $(TTOOLS)
	@FSHIELD=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) tests/e2e/run-all.sh

asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# The unit runners under valgrind (no fork, so every test runs in the checked process).
valgrind: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite $$t; done

FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB := build-fuzz/libfshield.a
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# One sub-make builds the instrumented library (so parallel harness builds never race on its objects);
# harnesses are relinked whenever it or a header changes.
ifneq ($(BUILD),build-fuzz)
$(FUZZ_LIB): $(LIB_SRC) $(wildcard */*.h)
	$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" $@
endif
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(wildcard */*.h)
	clang -std=gnu11 -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE \
	  -I. $(shell pkg-config --cflags $(PKGS)) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

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
	  clang libclang-rt-14-dev sqlite3 python3 valgrind openssl etcd-server

install: $(BIN)
	install -m 0755 $(BIN) /usr/local/bin/fshield
	ln -sf fshield /usr/local/bin/mount.fshield
	ln -sf /usr/local/bin/fshield /sbin/mount.fshield
	ln -sf /usr/local/bin/fshield /sbin/mount.fuse.fshield

clean:
	rm -rf build build-asan build-fuzz
