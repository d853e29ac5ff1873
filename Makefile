# JAiRouter: one GNU Makefile for the agent, its unit tests and its fuzz targets.
#
#   make                 release build   -> build/release/jairouter-spoa
#   make MODE=debug      no optimisation -> build/debug/...
#   make MODE=asan       ASan + UBSan, no recovery -> build/asan/...
#   make check           unit tests under ASan + UBSan
#   make fuzz            libFuzzer targets (clang) -> build/fuzz/
#   make fuzz-replay     replay the committed corpus through every fuzz target
#   make WERROR=0 ...    do not turn warnings into errors
#   make adapter         the sidecar only -> build/$(MODE)/jairouter-adapter (part of "all")
#
# Every object gets a .d file (-MMD -MP), so header changes rebuild what depends on them.

MODE    ?= release
WERROR  ?= 1
CC      ?= cc
FUZZCC  ?= clang
PKG     ?= pkg-config

PKGS      := libevent libevent_pthreads libpq openssl jansson hiredis libcurl
PKG_CFLAGS := $(shell $(PKG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG) --libs $(PKGS))

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif

BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Ispoa/src $(PKG_CFLAGS)

ifeq ($(MODE),release)
MODE_CFLAGS := -O2 -g -DNDEBUG
else ifeq ($(MODE),debug)
MODE_CFLAGS := -O0 -g3
else ifeq ($(MODE),asan)
MODE_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
MODE_LDFLAGS := -fsanitize=address,undefined
else
$(error MODE must be release, debug or asan)
endif

CFLAGS  := $(BASE_CFLAGS) $(MODE_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(MODE_LDFLAGS) $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -lm

B := build/$(MODE)

LIB_SRCS  := $(sort $(wildcard spoa/src/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o)
LIB       := $(B)/libjrspoa.a
SPOA      := $(B)/jairouter-spoa
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)

.PHONY: all check unit fuzz fuzz-replay clean adapter
all: $(SPOA)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(SPOA): $(B)/spoa/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- jairouter-adapter (adapters/): the sidecar, its translators and their tests ----
# It needs jansson and libcurl besides the agent's libraries; it links the agent's
# library for util/log only. Its unit tests are tests/unit/test_adapter_*.c (the
# shorter stem makes make pick this rule over the generic one above).
AD_PKGS       := jansson libcurl libevent_openssl
AD_PKG_CFLAGS := $(shell $(PKG) --cflags $(AD_PKGS))
AD_PKG_LIBS   := $(shell $(PKG) --libs $(AD_PKGS))
AD_SRCS  := $(sort $(wildcard adapters/src/*.c))
AD_OBJS  := $(AD_SRCS:%.c=$(B)/%.o)
ADLIB    := $(B)/libjradapter.a
ADAPTER  := $(B)/jairouter-adapter

$(B)/adapters/%.o: CFLAGS += $(AD_PKG_CFLAGS)
$(B)/tests/unit/test_adapter_%.o: CFLAGS += $(AD_PKG_CFLAGS) -Iadapters/src

$(ADLIB): $(AD_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(ADAPTER): $(B)/adapters/main.o $(ADLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(AD_PKG_LIBS) $(LDLIBS)

adapter: $(ADAPTER)
all: $(ADAPTER)

$(B)/tests/test_adapter_%: $(B)/tests/unit/test_adapter_%.o $(ADLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(AD_PKG_LIBS) $(LDLIBS)

unit: $(TEST_BINS)

# Benchmarks (tests/bench/*.c) link like the tests: build/<mode>/bench/<name>.
$(B)/bench/%: $(B)/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests always run under the sanitizers. Each binary prints "N passed, N failed"
# and exits non-zero on failure; scripts/test sums the lines.
check:
	$(MAKE) MODE=asan unit
	@rc=0; for t in $(TEST_SRCS:tests/unit/%.c=build/asan/tests/%); do \
		echo "== $$t"; $$t || rc=1; done; exit $$rc

# libFuzzer targets: the agent's sources are rebuilt with clang and the fuzzer runtime.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -Ispoa/src $(PKG_CFLAGS) -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZCC) $(FUZZ_CFLAGS) -MMD -MP -MF $@.d -o $@ $< $(LIB_SRCS) $(PKG_LIBS) -lm

# The adapter's parsers (SSE, AWS event-stream), translators (requests, answers,
# streams through the provider table) and masking engine are fuzzed with its own sources.
AD_FUZZ := $(addprefix build/fuzz/,fuzz_sse fuzz_eventstream fuzz_xlate_request fuzz_xlate_stream fuzz_mask \
	fuzz_cache_key fuzz_wsframe)
AD_FUZZ_UTIL := spoa/src/util/log.c spoa/src/util/json.c spoa/src/util/xalloc.c spoa/src/util/pct.c spoa/src/util/addr.c
$(AD_FUZZ): build/fuzz/%: tests/fuzz/%.c $(AD_SRCS) $(AD_FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZCC) $(FUZZ_CFLAGS) $(AD_PKG_CFLAGS) -Iadapters/src -MMD -MP -MF $@.d -o $@ $< $(AD_SRCS) \
		$(AD_FUZZ_UTIL) $(AD_PKG_LIBS) $(PKG_LIBS) -lm

fuzz: $(FUZZ_BINS)

# Replays tests/fuzz/corpus/<target>/ through build/fuzz/<target> (no mutation).
fuzz-replay: $(FUZZ_BINS)
	@rc=0; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		echo "== $$n"; $$f -runs=0 tests/fuzz/corpus/$$n/ || rc=1; done; exit $$rc

clean:
	rm -rf build

# build/image holds the image suite's container storage (tests/image/run.sh): not scanned.
-include $(shell find build -path build/image -prune -o -name '*.d' -type f -print 2>/dev/null)
