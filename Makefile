# promptd: build, test and install. `make` builds build/promptd and
# build/promptctl; `make test` runs every test; `make help` lists targets.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BUILD ?= build
CC ?= cc
PKGS = libuv libcurl sqlite3 jansson
UNAME_S := $(shell uname -s)

PKG_CONFIG ?= pkg-config

# The libraries' flags, asked of pkg-config once, when a compile first needs
# them (not at parse time: make help and make clean need no dependencies).
# Before that, deps-check stops the build with one line naming `make deps`.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)

OPT ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wwrite-strings -Wno-unused-parameter
ifeq ($(UNAME_S),Darwin)
FEATURES = -D_DARWIN_C_SOURCE
else
FEATURES = -D_GNU_SOURCE
endif
SAN ?=
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ifeq ($(SAN),thread)
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
endif
ifeq ($(SAN),fuzz)
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
endif
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(FEATURES) $(SANFLAGS) $(SRC_DIRS:%=-I%) \
             -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(SANFLAGS) $(PKG_LIBS) -lpthread -lm $(LDFLAGS)

# Sources are found, not listed: a new module (a provider, a store file, a
# promptctl command) is a new file and nothing else. Every daemon/**/*.c but
# main.c is linked into the daemon and the unit tests; client/cli/*.c into
# promptctl; common/*.c (code both need: the socket path, the allocation
# wrappers) into both.
COMMON_SRCS = $(sort $(wildcard common/*.c))
DAEMON_MODULES = $(sort $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/*/*.c))) $(COMMON_SRCS)
CLIENT_SRCS = $(sort $(wildcard client/cli/*.c))
CLIENT_SHARED = $(COMMON_SRCS)
SRC_DIRS = include common daemon daemon/llm daemon/store client/cli

# Files embedded into the binary at build time.
EMBED_PROMPTS = $(sort $(wildcard daemon/prompts/*.txt))
EMBED_SCHEMA = $(sort $(wildcard schema/*.sql))

OBJ = $(BUILD)/obj
DAEMON_OBJS = $(DAEMON_MODULES:%.c=$(OBJ)/%.o) $(OBJ)/gen/embedded.o
CLIENT_OBJS = $(CLIENT_SRCS:%.c=$(OBJ)/%.o) $(CLIENT_SHARED:%.c=$(OBJ)/%.o) \
              $(OBJ)/gen/client/embedded.o
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all tests fuzzers fuzz check test test-asan test-tsan test-valgrind check-format format install uninstall \
        clean demo help deps deps-test deps-check deps-check-test fresh-test \
        install-bin install-systemd install-launchd install-none \
        uninstall-bin uninstall-systemd uninstall-launchd uninstall-none
all: $(BUILD)/promptd $(BUILD)/promptctl

# Dependencies (scripts/deps.sh): `make deps` installs the build's with
# apt-get as root, else prints the one command to run; `make deps-test` the
# build's and the tests' together. The deps-check* targets only verify.
deps:
	@PKG_CONFIG="$(PKG_CONFIG)" sh scripts/deps.sh build

deps-test:
	@PKG_CONFIG="$(PKG_CONFIG)" sh scripts/deps.sh test

deps-check:
	@PKG_CONFIG="$(PKG_CONFIG)" sh scripts/deps.sh --check build

deps-check-test:
	@PKG_CONFIG="$(PKG_CONFIG)" sh scripts/deps.sh --check test

$(BUILD)/promptd: $(DAEMON_OBJS) $(OBJ)/daemon/main.o
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/promptctl: $(CLIENT_OBJS)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# Every compile needs the libraries' headers: deps-check (order-only) stops
# the build first, with one clear line, when they are missing.
$(OBJ)/%.o: %.c $(BUILD)/gen/embedded.h | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(OBJ)/gen/embedded.o: $(BUILD)/gen/embedded.c $(BUILD)/gen/embedded.h | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The embedder is a tiny build tool, compiled without sanitizers (it is
# built first: deps-check there stops a build without its dependencies
# before anything is compiled).
$(BUILD)/embed: scripts/embed.c | deps-check
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/embedded.c: $(BUILD)/embed $(EMBED_PROMPTS) $(EMBED_SCHEMA)
	@mkdir -p $(dir $@)
	$(BUILD)/embed c $@ prompts $(EMBED_PROMPTS) -- migrations $(EMBED_SCHEMA)

$(BUILD)/gen/embedded.h: $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed h $@ prompts migrations

# promptctl carries the service files for `promptctl service install`, in
# its own table (gen/client/) so it links nothing of the daemon's.
LAUNCHD_LABEL = io.github.promptd.promptd
SERVICE_FILES = systemd/promptd.service systemd/promptd.socket launchd/$(LAUNCHD_LABEL).plist.in

$(BUILD)/gen/client/embedded.c: $(BUILD)/embed $(SERVICE_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/embed c $@ service_files $(SERVICE_FILES)

$(BUILD)/gen/client/embedded.h: $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed h $@ service_files

$(OBJ)/gen/client/embedded.o: $(BUILD)/gen/client/embedded.c $(BUILD)/gen/client/embedded.h | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(CLIENT_SRCS:%.c=$(OBJ)/%.o): $(BUILD)/gen/client/embedded.h

$(BUILD)/tests/%: tests/unit/%.c $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(DAEMON_OBJS) $(LDLIBS_ALL)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(DAEMON_OBJS) $(LDLIBS_ALL)

# History store benchmark (tests/bench/bench_store.c): writer rows/s,
# start-up, search and stats latencies on a 1M-row database (a few
# minutes; BENCH_ROWS=200000 for a quick run).
BENCH_ROWS ?= 1000000
.PHONY: bench-store
$(BUILD)/bench/bench_store: tests/bench/bench_store.c $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(DAEMON_OBJS) $(LDLIBS_ALL)

bench-store: $(BUILD)/bench/bench_store $(BUILD)/promptd
	$(BUILD)/bench/bench_store --rows $(BENCH_ROWS) --promptd $(BUILD)/promptd

# Transport benchmark (tests/bench/bench_rpc.c): ping round trip against a
# bare Unix-socket ping-pong, pipelined requests/s with 1, 8, 32 clients.
.PHONY: bench bench-rpc bench-load soak
$(BUILD)/bench/bench_rpc: tests/bench/bench_rpc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) $(FEATURES) -o $@ $< -lpthread

bench-rpc: $(BUILD)/bench/bench_rpc $(BUILD)/promptd
	$(BUILD)/bench/bench_rpc $(BUILD)/promptd

# 1000 concurrent improves against a 1 s backend; health latency meanwhile,
# unpinned and with the daemon alone on a CPU (3 runs each, ~40 s); the
# daemon's CPU time; RSS idle and loaded, next to the RSS of a bare
# program initialising the same libraries (tests/bench/rss_floor.c).
$(BUILD)/bench/rss_floor: tests/bench/rss_floor.c | deps-check
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) $(FEATURES) $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS)

bench-load: $(BUILD)/promptd $(BUILD)/bench/rss_floor
	python3 tests/bench/bench_load.py --build $(BUILD)

# Every benchmark (tests/bench/report.py): each one's output, then one
# summary table with the machine. Figures are medians and percentiles next
# to a baseline measured in the same run, or to the design's target.
bench: all $(BUILD)/bench/bench_rpc $(BUILD)/bench/bench_store $(BUILD)/bench/rss_floor
	python3 tests/bench/report.py --build $(BUILD) --rows $(BENCH_ROWS)

# 10 minutes of mixed load; RSS and fds every 10 s; a PNG chart in
# $(BUILD)/soak/ when gnuplot is installed; fails on growth.
SOAK_MINUTES ?= 10
soak: all
	PROMPTD_BUILD=$(BUILD) python3 tests/bench/soak.py --minutes $(SOAK_MINUTES) --out $(BUILD)/soak

# improve benchmark (tests/bench/bench_improve.py): latency promptd adds to
# an LLM call (p50/p99, 1 and 64 clients) and requests/s, against a
# zero-latency backend, compared with direct requests in the same run.
.PHONY: bench-improve
bench-improve: $(BUILD)/promptd
	python3 tests/bench/bench_improve.py --build $(BUILD)

test: all $(UNIT_BINS)
	@python3 tests/run.py --build $(BUILD)

ASAN_MAKE = $(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" CC=gcc

test-asan:
	$(ASAN_MAKE) test

# ThreadSanitizer (gcc): a data race in any test is a FAIL (tests/integration/
# harness.py reads each daemon's log; a unit test exits non-zero).
TSAN_MAKE = $(MAKE) BUILD=build-tsan SAN=thread OPT="-O1 -g" CC=gcc

test-tsan:
	$(TSAN_MAKE) test

# The README's test command: the whole suite on the optimised build, again
# under ASan+UBSan and under TSan, and the fuzzers, in one run with one
# closing line. It refuses to start without the test dependencies (make
# deps-test), so that nothing is skipped for want of a tool.
check: deps-check-test
	$(MAKE) all tests
	$(ASAN_MAKE) all tests
	$(TSAN_MAKE) all tests
	$(FUZZ_MAKE) fuzzers
	@PROMPTD_FUZZ_BUILD=build-fuzz python3 tests/run.py --build $(BUILD) --build build-asan \
		--build build-tsan

tests: $(UNIT_BINS)

# The README's two commands on fresh minimal Debian roots (debootstrap
# minbase + git make ca-certificates), bookworm and trixie, as root and as
# a user (scripts/fresh-test.sh; as root; an hour or more; not in make
# check). FRESH_DISTS=bookworm:user runs one distribution and user.
FRESH_DISTS ?=
fresh-test:
	@sh scripts/fresh-test.sh $(FRESH_DISTS)

# The integration suite with every daemon under valgrind's memcheck
# (definite leaks and memory errors fail the test). Slow: minutes.
test-valgrind: all
	@command -v valgrind >/dev/null || { echo "install valgrind: sudo apt-get install valgrind"; exit 1; }
	@PROMPTD_VALGRIND=1 python3 tests/run.py --build $(BUILD) -j 2 integration/

# libFuzzer targets (clang, ASan+UBSan). `make fuzz` runs each for
# FUZZ_SECONDS; make check runs each over its corpus plus a short run.
FUZZ_SECONDS ?= 60
FUZZ_MAKE = $(MAKE) BUILD=build-fuzz SAN=fuzz OPT="-O1 -g" CC=clang
fuzzers: $(FUZZ_BINS)

fuzz:
	$(FUZZ_MAKE) fuzzers
	@for f in build-fuzz/fuzz/fuzz_*; do \
		name=$$(basename $$f); work=$$(mktemp -d); \
		echo "== $$name for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$work tests/fuzz/corpus/$$name \
			|| exit 1; \
		rm -rf $$work; \
	done

FORMAT_FILES = $(wildcard $(SRC_DIRS:%=%/*.[ch]) tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c \
                          scripts/*.c)
check-format:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

format:
	clang-format -i $(FORMAT_FILES)

demo: all
	@BUILD=$(BUILD) sh scripts/demo.sh

# Installation (docs/service.md). The service files go where the OS looks
# for them: systemd user units into SYSTEMD_USER_UNIT_DIR (searched by every
# user's systemd; each user then runs `systemctl --user enable --now
# promptd.socket`), or on macOS the LaunchAgent into the installing user's
# ~/Library/LaunchAgents. SERVICE=systemd|launchd|none overrides the choice.
SYSTEMD_USER_UNIT_DIR ?= $(PREFIX)/lib/systemd/user
LAUNCH_AGENTS_DIR ?= $(HOME)/Library/LaunchAgents
LAUNCHD_LOG_DIR ?= $(HOME)/Library/Logs/promptd
ifeq ($(UNAME_S),Darwin)
SERVICE ?= launchd
else
SERVICE ?= systemd
endif
ifeq ($(filter $(SERVICE),systemd launchd none),)
$(error SERVICE must be systemd, launchd or none, not "$(SERVICE)")
endif

install: install-bin install-$(SERVICE)

install-bin: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/promptd $(BUILD)/promptctl $(DESTDIR)$(BINDIR)/
	install -m 0644 docs/promptd.8 $(DESTDIR)$(MANDIR)/man8/promptd.8
	install -m 0644 docs/promptctl.1 $(DESTDIR)$(MANDIR)/man1/promptctl.1

# The unit names /usr/local/bin/promptd; the installed one names BINDIR's.
install-systemd: install-bin
	install -d $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)
	sed 's|/usr/local/bin/promptd|$(BINDIR)/promptd|g' systemd/promptd.service \
		> $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/promptd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/promptd.service
	install -m 0644 systemd/promptd.socket $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/promptd.socket
	@echo "Each user starts it with: systemctl --user daemon-reload && systemctl --user enable --now promptd.socket"

install-launchd: install-bin
	install -d $(DESTDIR)$(LAUNCH_AGENTS_DIR)
	install -d -m 0700 $(DESTDIR)$(LAUNCHD_LOG_DIR)
	sed -e 's|@PROMPTD@|$(BINDIR)/promptd|g' -e 's|@BINDIR@|$(BINDIR)|g' \
		-e 's|@LOGDIR@|$(LAUNCHD_LOG_DIR)|g' launchd/$(LAUNCHD_LABEL).plist.in \
		> $(DESTDIR)$(LAUNCH_AGENTS_DIR)/$(LAUNCHD_LABEL).plist
	chmod 0644 $(DESTDIR)$(LAUNCH_AGENTS_DIR)/$(LAUNCHD_LABEL).plist
	@echo "Start it with: launchctl bootstrap gui/$$(id -u) $(LAUNCH_AGENTS_DIR)/$(LAUNCHD_LABEL).plist"

install-none: install-bin

uninstall: uninstall-bin uninstall-$(SERVICE)

uninstall-bin:
	rm -f $(DESTDIR)$(BINDIR)/promptd $(DESTDIR)$(BINDIR)/promptctl
	rm -f $(DESTDIR)$(MANDIR)/man8/promptd.8 $(DESTDIR)$(MANDIR)/man1/promptctl.1

uninstall-systemd:
	@echo "Users who enabled it first run: systemctl --user disable --now promptd.socket promptd.service"
	rm -f $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/promptd.service \
		$(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/promptd.socket

uninstall-launchd:
	@echo "If it is loaded, first run: launchctl bootout gui/$$(id -u)/$(LAUNCHD_LABEL)"
	rm -f $(DESTDIR)$(LAUNCH_AGENTS_DIR)/$(LAUNCHD_LABEL).plist

uninstall-none:

clean:
	rm -rf build build-asan build-tsan build-fuzz

help:
	@echo "make deps       install the build dependencies (apt-get as root; else prints the command)"
	@echo "make deps-test  the same for the build and test dependencies together"
	@echo "make            build build/promptd and build/promptctl"
	@echo "make demo       build, start a daemon on a private socket, improve an example idea"
	@echo "make test       run every test (unit and integration); ends with 'N passed, N failed'"
	@echo "make test-asan  the same suite under AddressSanitizer + UBSan"
	@echo "make test-tsan  the same suite under ThreadSanitizer"
	@echo "make check      the three above, plus short fuzzing runs, in one run (what CI runs)"
	@echo "make fresh-test the README's commands on fresh Debian 12 and 13 roots, as root"
	@echo "                and as a user (needs root; an hour or more; FRESH_DISTS=bookworm:user)"
	@echo "make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 60) each"
	@echo "make test-valgrind  the integration suite with promptd under valgrind memcheck"
	@echo "make bench      every benchmark (bench-rpc, bench-improve, bench-load, bench-store)"
	@echo "make soak       SOAK_MINUTES (10) of mixed load; RSS/fd table and PNG chart"
	@echo "make bench-improve  latency promptd adds to an LLM call (p50/p99) and requests/s"
	@echo "make install    install into PREFIX ($(PREFIX)): binaries, man pages and the"
	@echo "                $(SERVICE) service files (docs/service.md); DESTDIR is honoured"
	@echo "make uninstall  remove what make install installed (same PREFIX, DESTDIR, SERVICE)"
	@echo "make clean      remove every build folder (build, build-asan, build-tsan, build-fuzz)"

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
