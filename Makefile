# crossgate - plain Makefile.  `make help` lists the targets.
#
# V=1 shows the full compiler command lines.

BUILD    ?= build
CC       ?= cc
PKGS     := libsodium libprotobuf-c sqlite3 openssl libfyaml jansson libseccomp
PROTOC_C ?= protoc-c

Q := @
ifeq ($(V),1)
Q :=
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat-security
HARDEN  := -fstack-protector-strong
CFLAGS  ?= -O2 -g
CPPFLAGS_ALL = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
		-I. -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lm -lpthread

ifeq ($(SAN),1)
# ASan replaces sodium_malloc's guard pages (see base/secmem.h).
CFLAGS_ALL := $(WARN) $(HARDEN) -O1 -g -fno-omit-frame-pointer \
	      -fsanitize=address,undefined -fno-sanitize-recover=undefined -DCG_ASAN=1
LDFLAGS_ALL := -fsanitize=address,undefined
else
CFLAGS_ALL := $(WARN) $(HARDEN) -D_FORTIFY_SOURCE=2 $(CFLAGS)
LDFLAGS_ALL :=
endif

# The library: every module of every layer but the command-line front end
# (cli/*.c), which is linked into the binary.
LIB_DIRS := base crypto proto net policy store audit agent gateway analytics synth
CLI_SRC  := $(wildcard cli/*.c)
LIB_SRC  := $(filter-out $(CLI_SRC),$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
PROTO    := $(wildcard proto/*.proto)
GEN_SRC  := $(PROTO:proto/%.proto=$(BUILD)/gen/proto/%.pb-c.c)
GEN_HDR  := $(PROTO:proto/%.proto=$(BUILD)/gen/proto/%.pb-c.h)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(PROTO:proto/%.proto=$(BUILD)/obj/gen/%.pb-c.o)
LIB      := $(BUILD)/libcrossgate.a
BIN      := $(BUILD)/crossgate

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test unit e2e asan fuzz fuzz-run fuzz-long valgrind bench bench-scale demo accuracy redteam clean help deps man install faults
# Keep the objects of test programs: they are intermediate files to make.
.SECONDARY:

all: $(BIN)

help:
	@echo "make            build $(BIN)"
	@echo "make demo       run the whole pipeline on synthetic data (keeps everything under demo/)"
	@echo "make accuracy   the DP analyses of 50 seeded 50,000-user demos against the planted truth"
	@echo "make test       unit tests, end-to-end tests and a short fuzz run"
	@echo "make asan       the whole suite under AddressSanitizer and UBSan"
	@echo "make fuzz       build the libFuzzer harnesses; make fuzz-run runs each briefly"
	@echo "make fuzz-long  every harness for SECONDS=600 each (or RUNS=N inputs each; FUZZ_ONLY=\"names\"):"
	@echo "                executions, coverage, a corpus kept in build-fuzz/"
	@echo "make valgrind   the unit tests under valgrind"
	@echo "make bench      benchmarks, as ratios against baselines measured in the same run"
	@echo "make bench-scale  the file pipeline at USERS=10000000 per platform: each stage's time and peak memory"
	@echo "make faults     kill -9 the gateway KILLS=$(KILLS) times among pushes, queries and exports"
	@echo "make man        man pages crossgate(1) and crossgate-FAMILY(1) from the --help texts"
	@echo "make install    install the binary and the man pages (PREFIX=$(PREFIX), DESTDIR)"
	@echo "make redteam    the red-team attacks on the 50,000-user demo data, with their figures"
	@echo "make deps       install the Debian packages the build needs (as root)"
	@echo "make clean      remove build outputs"

deps:
	$(Q)sh setup.sh

$(BUILD)/.deps-ok: setup.sh
	$(Q)sh setup.sh --check
	$(Q)mkdir -p $(BUILD) && touch $@

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h &: proto/%.proto | $(BUILD)/.deps-ok
	@mkdir -p $(BUILD)/gen
	@echo "  PROTOC  $<"
	$(Q)$(PROTOC_C) --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -Wno-shadow -MMD -MP -c -o $@ $<

# The demo embeds policy/example.yaml as its policy template.
$(BUILD)/gen/example_policy.inc: policy/example.yaml
	@mkdir -p $(dir $@)
	$(Q)od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@
$(BUILD)/obj/cli/cli_demo.o: $(BUILD)/gen/example_policy.inc

$(BUILD)/obj/%.o: %.c | $(GEN_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

MAIN_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC))
$(BIN): $(MAIN_OBJ) $(LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

unit: $(UNIT_BIN) $(BIN)
	$(Q)sh tests/run_unit.sh $(BUILD)

e2e: $(BIN)
	$(Q)sh tests/run_e2e.sh $(BUILD)

# One closing line for the whole suite: "N passed, N failed".  The bench
# programs are built too (not run), so that an API change cannot leave
# `make bench` broken unnoticed.
test: $(UNIT_BIN) $(BIN) $(BENCH_BIN)
	$(Q)$(MAKE) --no-print-directory fuzz
	$(Q)sh tests/run_all.sh $(BUILD) build-fuzz

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 $(UNIT_BIN:$(BUILD)/%=build-asan/%) build-asan/crossgate
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		sh tests/run_all.sh build-asan

valgrind: $(UNIT_BIN)
	$(Q)CG_VALGRIND=1 sh tests/run_unit.sh $(BUILD)

# libFuzzer harnesses, built with clang from the production sources.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
fuzz:
	$(Q)$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_SRC="$(FUZZ_SRC)"

fuzz-run: fuzz
	$(Q)sh tests/fuzz/run.sh build-fuzz 10

# Every harness for SECONDS (default 600) each, printing executions and coverage.
fuzz-long: fuzz
	$(Q)sh tests/fuzz/run.sh build-fuzz $(if $(RUNS),runs=$(RUNS),$(or $(SECONDS),600)) long

KILLS ?= 100
faults: $(BIN)
	$(Q)sh tests/faults.sh $(BUILD) $(KILLS)

bench: $(BIN) $(BENCH_BIN)
	$(Q)sh bench/run.sh $(BUILD)

# The file pipeline end to end at USERS per platform (default 10M here, not
# the accuracy target's 50,000): each stage's time and peak memory.
bench-scale: $(BIN)
	$(Q)USERS=$(if $(filter command line environment,$(origin USERS)),$(USERS),10000000) \
		sh bench/scale.sh $(BUILD)

# Man pages are made from the --help texts themselves (help2man), so they cannot disagree.
VERSION ?= 0.3
PREFIX  ?= /usr/local
man: $(BIN)
	$(Q)rm -rf $(BUILD)/man && sh docs/man/mkman.sh $(BIN) $(BUILD)/man $(VERSION)

install: $(BIN) man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/crossgate
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

demo: $(BIN)
	$(Q)./$(BIN) demo --dir demo

# The DP analyses against the planted truth: 50 seeded demo runs of 50,000
# users each (README, "DP model statistics"); RUNS=N USERS=N to change.
RUNS  ?= 50
USERS ?= 50000
accuracy: $(BIN)
	$(Q)python3 tests/e2e/accuracy.py --crossgate ./$(BIN) --runs $(RUNS) --users $(USERS) --check
# The red-team suite (README "Red-team suite") at the demo's scale: the same
# scripts make test runs on 3,000 users, with more releases for the attacker.
# Prints every figure and failure (not the ok lines); fails if any check does.
RT_ENV := RT_USERS=50000 RT_QCAL=20 RT_QTEST=100 RT_XCAL=10 RT_XTEST=40 RT_MCAL=20 RT_MTEST=60
redteam: $(BIN)
	$(Q)rc=0; log=$$(mktemp); for t in tests/e2e/test_redteam_*.sh; do \
		echo "== $$t"; $(RT_ENV) CROSSGATE=$(CURDIR)/$(BIN) sh $$t >$$log 2>&1 || rc=1; \
		grep -v '^ok ' $$log; done; rm -f $$log; exit $$rc

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
