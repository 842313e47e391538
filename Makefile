# Roost build. `make` builds build/roost; `make run` and `make test` are the two commands a
# newcomer needs (both install missing Debian packages first). Objects go to build/ (normal)
# or build-asan/ (AddressSanitizer + UBSan); sources are every .c under src/.

CC      ?= cc
PKGS    := libevent libevent_openssl libevent_pthreads openssl sqlite3 inih libcares zlib libpsl
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread -lm
OPT     ?= -O2 -g
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
PYTEST   := /usr/bin/python3 -m pytest

BUILD ?= build
OBJ   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))
LIBOBJ:= $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps run test unit integration asan asan-test clean check-layers fuzz fuzz-smoke bench

all: $(BUILD)/roost

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libroost.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/roost: $(BUILD)/obj/cli/main.o $(BUILD)/libroost.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libroost.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libroost.a $(PKG_LIBS) -lcmocka

-include $(OBJ:.o=.d)

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-dev.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The integration tests spend most of their time waiting on timers and sockets, so they run
# in TEST_JOBS processes (pytest-xdist); each takes its own slice of the port range
# (conftest.free_port). TEST_JOBS=0 runs them in one process.
TEST_JOBS ?= 3

integration: $(BUILD)/roost
	ROOST_BIN=$(abspath $(BUILD)/roost) $(PYTEST) -q -n $(TEST_JOBS) tests/integration \
		--ignore=tests/integration/test_packaging.py $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory durability
	@$(MAKE) --no-print-directory packaging-test

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="$(ASAN_FLAGS)" all

asan-test: asan
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="$(ASAN_FLAGS)" unit integration

check-layers:
	@scripts/check-layers.sh

clean:
	rm -rf build build-asan build-fuzz

# ---- fuzzing (libFuzzer, clang): every tests/fuzz/fuzz_NAME.c is a target whose seed corpus is
# tests/fuzz/corpus/NAME/. `make fuzz` builds them; `make fuzz-smoke` runs each FUZZ_SECONDS. ----
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
		OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
		build-fuzz/libroost.a $(FUZZ_BIN)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libroost.a
	clang $(CSTD) $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		$(PKG_CFLAGS) -Isrc \
		-o $@ $< build-fuzz/libroost.a $(PKG_LIBS)

# The targets run FUZZ_JOBS at a time (each is one process on one core).
FUZZ_JOBS ?= 2

fuzz-smoke: fuzz
	@printf '%s\n' $(FUZZ_BIN) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
		t={}; name=$${t#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus/$$name; \
		if ! $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			build-fuzz/corpus/$$name tests/fuzz/corpus/$$name > build-fuzz/$$name.log 2>&1; then \
			tail -60 build-fuzz/$$name.log; echo "fuzz $$name: FAILED"; exit 255; fi; \
		echo "== fuzz $$name for $(FUZZ_SECONDS)s: $$(grep -E "stat::number_of_executed_units|stat::peak_rss" build-fuzz/$$name.log | tr -s " " | tr "\n" " ")"'

# ---- store durability tests and store benchmark (tests/durability/, bench/store/) ----
# `make durability` builds the append driver and the fsync-failure shim, then runs the kill -9
# loop (bounded by KILL9_SECONDS), the fsync-failure injection and the ENOSPC test (root only,
# skipped with a message otherwise). `make bench-store` runs the store micro-benchmark.
KILL9_SECONDS ?= 120
DUR_DIR := $(BUILD)/durability

$(DUR_DIR)/append_child: tests/durability/append_child.c $(BUILD)/libroost.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libroost.a $(PKG_LIBS)

$(DUR_DIR)/fsync_fail.so: tests/durability/fsync_fail.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

durability: $(DUR_DIR)/append_child $(DUR_DIR)/fsync_fail.so
	/usr/bin/python3 tests/durability/kill9.py $(DUR_DIR)/append_child $(KILL9_SECONDS)
	/usr/bin/python3 tests/durability/fsync_fail.py $(DUR_DIR)/append_child $(DUR_DIR)/fsync_fail.so
	/usr/bin/python3 tests/durability/enospc.py $(DUR_DIR)/append_child

$(BUILD)/bench/store_bench: bench/store/store_bench.c $(BUILD)/libroost.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libroost.a $(PKG_LIBS)

bench-store: $(BUILD)/bench/store_bench
	$(BUILD)/bench/store_bench $(BENCH_ARGS)

.PHONY: durability bench-store

# ---- benchmarks ----
# `make bench-tools` builds the load generator (bench/loadgen/, linked with libroost.a for the
# core helpers); `make bench` runs bench/compare.sh: Roost against Dovecot and Postfix on
# loopback, results in bench/RESULTS.md. Needs root (it installs and starts the peers).
LOADGEN_SRC := $(sort $(wildcard bench/loadgen/*.c))
LOADGEN_OBJ := $(patsubst bench/loadgen/%.c,$(BUILD)/bench/obj/%.o,$(LOADGEN_SRC))

.PHONY: bench-tools

bench-tools: $(BUILD)/bench/loadgen

$(BUILD)/bench/obj/%.o: bench/loadgen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/bench/loadgen: $(LOADGEN_OBJ) $(BUILD)/libroost.a
	$(CC) $(CFLAGS_ALL) -o $@ $(LOADGEN_OBJ) $(BUILD)/libroost.a $(PKG_LIBS) -lm

-include $(LOADGEN_OBJ:.o=.d)

bench: bench-tools
	-@$(MAKE) --no-print-directory all
	bench/compare.sh

# ---- installation and the Debian package (packaging/) ----
# `make install` puts the binary in $(SBINDIR), the systemd unit in $(UNITDIR) and, unless one is
# there already, the config in $(SYSCONFDIR)/roost/roost.conf; DESTDIR stages it elsewhere. The
# config directory is /etc whatever PREFIX is, because that is where roost looks. It creates no
# user and no data directory (the package's postinst does; see README "Production").
# `make deb` builds $(DEB_DIR)/roost_VERSION-1_ARCH.deb; `make packaging-test` builds it and
# runs tests/integration/test_packaging.py against it (as root it installs it for real).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/roost
DEB_DIR    ?= $(BUILD)/deb
ROOST_BINARY ?= $(BUILD)/roost

.PHONY: install install-files deb packaging-test

install: $(BUILD)/roost
	@$(MAKE) --no-print-directory install-files ROOST_BINARY=$(BUILD)/roost

install-files:
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(SYSCONFDIR)/roost
	install -m 0755 $(ROOST_BINARY) $(DESTDIR)$(SBINDIR)/roost
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		-e 's|@DOCDIR@|$(DOCDIR)|g' packaging/roost.service.in > $(DESTDIR)$(UNITDIR)/roost.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/roost.service
	test -e $(DESTDIR)$(SYSCONFDIR)/roost/roost.conf || \
		install -m 0640 packaging/roost.conf $(DESTDIR)$(SYSCONFDIR)/roost/roost.conf
	install -m 0644 README.md docs/ARCHITECTURE.md $(DESTDIR)$(DOCDIR)/

deb: $(BUILD)/roost
	@mkdir -p $(DEB_DIR)
	packaging/build-deb.sh $(BUILD)/roost $(DEB_DIR)

packaging-test: deb
	ROOST_DEB=$$(ls -t $(abspath $(DEB_DIR))/roost_*.deb | head -1) \
		$(PYTEST) -q tests/integration/test_packaging.py $(PYTEST_ARGS)
