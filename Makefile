# promptd: build, test and install. `make` builds build/promptd and
# build/promptctl; `make test` runs every test; `make help` lists targets.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PKGS = libuv libcurl sqlite3 jansson
UNAME_S := $(shell uname -s)

# Dependency check first: installs with apt-get as root, or says what to run.
DEPS_OK := $(shell sh scripts/deps.sh build >&2 && echo ok)
ifneq ($(DEPS_OK),ok)
$(error missing dependencies, see the line above)
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

OPT ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wno-unused-parameter
ifeq ($(UNAME_S),Darwin)
FEATURES = -D_DARWIN_C_SOURCE
else
FEATURES = -D_GNU_SOURCE
endif
SAN ?=
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ifeq ($(SAN),fuzz)
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
endif
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(FEATURES) $(SANFLAGS) -Iinclude -Idaemon \
             -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(SANFLAGS) $(PKG_LIBS) -lpthread -lm $(LDFLAGS)

# Daemon modules (all but main.c are linked into the unit tests too).
DAEMON_MODULES = \
	daemon/daemon.c daemon/log.c daemon/config.c daemon/sockpath.c daemon/conn.c daemon/server.c \
	daemon/rpc.c daemon/methods_core.c daemon/sdnotify.c
# Modules the client links.
CLIENT_SRCS = client/promptctl.c client/ctl_io.c client/ctl_core.c
CLIENT_SHARED = daemon/sockpath.c

# Files embedded into the binary at build time.
EMBED_PROMPTS = $(sort $(wildcard daemon/prompts/*.txt))
EMBED_SCHEMA = $(sort $(wildcard schema/*.sql))

OBJ = $(BUILD)/obj
DAEMON_OBJS = $(DAEMON_MODULES:%.c=$(OBJ)/%.o) $(OBJ)/gen/embedded.o
CLIENT_OBJS = $(CLIENT_SRCS:%.c=$(OBJ)/%.o) $(CLIENT_SHARED:%.c=$(OBJ)/%.o)
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all tests fuzzers fuzz check test test-asan check-format format install uninstall clean demo help
all: $(BUILD)/promptd $(BUILD)/promptctl

$(BUILD)/promptd: $(DAEMON_OBJS) $(OBJ)/daemon/main.o
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/promptctl: $(CLIENT_OBJS)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(OBJ)/%.o: %.c $(BUILD)/gen/embedded.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(OBJ)/gen/embedded.o: $(BUILD)/gen/embedded.c $(BUILD)/gen/embedded.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The embedder is a tiny build tool, compiled without sanitizers.
$(BUILD)/embed: scripts/embed.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/embedded.c: $(BUILD)/embed $(EMBED_PROMPTS) $(EMBED_SCHEMA)
	@mkdir -p $(dir $@)
	$(BUILD)/embed c $@ prompts $(EMBED_PROMPTS) -- migrations $(EMBED_SCHEMA)

$(BUILD)/gen/embedded.h: $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed h $@ prompts migrations

$(BUILD)/tests/%: tests/unit/%.c $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(DAEMON_OBJS) $(LDLIBS_ALL)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(DAEMON_OBJS) $(LDLIBS_ALL)

test: all $(UNIT_BINS)
	@sh scripts/deps.sh test
	@python3 tests/run.py --build $(BUILD)

ASAN_MAKE = $(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" CC=gcc

test-asan:
	$(ASAN_MAKE) test

# The README's test command: the whole suite on the optimised build and
# again under ASan+UBSan, in one run with one closing line.
check: all $(UNIT_BINS)
	@sh scripts/deps.sh test
	$(ASAN_MAKE) all tests
	$(FUZZ_MAKE) fuzzers
	@PROMPTD_FUZZ_BUILD=build-fuzz python3 tests/run.py --build $(BUILD) --build build-asan

tests: $(UNIT_BINS)

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

check-format:
	@clang-format --dry-run --Werror daemon/*.c daemon/*.h client/*.c client/*.h include/*.h tests/unit/*.c tests/unit/*.h

format:
	clang-format -i daemon/*.c daemon/*.h client/*.c client/*.h include/*.h tests/unit/*.c tests/unit/*.h

demo: all
	@sh scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/promptd $(BUILD)/promptctl $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/promptd $(DESTDIR)$(PREFIX)/bin/promptctl

clean:
	rm -rf build build-asan

help:
	@echo "make            build build/promptd and build/promptctl"
	@echo "make demo       build, start a daemon on a private socket, improve an example idea"
	@echo "make test       run every test (unit and integration); ends with 'N passed, N failed'"
	@echo "make test-asan  the same suite under AddressSanitizer + UBSan"
	@echo "make check      both of the above, plus short fuzzing runs, in one run (what CI runs)"
	@echo "make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 60) each"
	@echo "make install    install into PREFIX ($(PREFIX)); DESTDIR is honoured"

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
