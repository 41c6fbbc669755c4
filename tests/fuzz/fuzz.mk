# Builds the libFuzzer harnesses from the production sources with clang.
# Invoked by `make fuzz`; each harness is tests/fuzz/fuzz_<name>.c with a
# seed corpus in tests/fuzz/corpus/<name>/.
FB       := build-fuzz
FCC      := clang
PKGS     := libsodium libprotobuf-c sqlite3 openssl libfyaml jansson libseccomp
FCFLAGS  := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DCG_ASAN=1 -DCG_FUZZ=1 \
	    -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
	    -fsanitize=fuzzer-no-link,address,undefined -I. -I$(FB)/gen \
	    $(shell pkg-config --cflags $(PKGS))
FLIBS    := $(shell pkg-config --libs $(PKGS)) -lcsv -lm -lpthread
LIB_DIRS := base crypto proto net policy store audit agent gateway analytics synth
CLI_SRC  := $(wildcard cli/*.c)
LIB_SRC  := $(filter-out $(CLI_SRC),$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
PROTO    := $(wildcard proto/*.proto)
LIB_OBJ  := $(LIB_SRC:%.c=$(FB)/obj/%.o) $(PROTO:proto/%.proto=$(FB)/obj/gen/%.pb-c.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FB)/%)

all: $(FUZZ_BIN)

$(FB)/gen/proto/%.pb-c.c $(FB)/gen/proto/%.pb-c.h &: proto/%.proto
	@mkdir -p $(FB)/gen
	@protoc-c --c_out=$(FB)/gen $<

$(FB)/obj/gen/%.pb-c.o: $(FB)/gen/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	@$(FCC) $(FCFLAGS) -MMD -MP -c -o $@ $<

$(FB)/obj/%.o: %.c | $(PROTO:proto/%.proto=$(FB)/gen/proto/%.pb-c.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FCC) $(FCFLAGS) -MMD -MP -c -o $@ $<

$(FB)/lib.a: $(LIB_OBJ)
	@rm -f $@ && ar rcs $@ $^

$(FB)/fuzz_%: $(FB)/obj/tests/fuzz/fuzz_%.o $(FB)/lib.a
	@echo "  FUZZLD  $@"
	@$(FCC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(FLIBS)

-include $(shell find $(FB)/obj -name '*.d' 2>/dev/null)
