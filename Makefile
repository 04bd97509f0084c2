# fogport build. One build system: GNU make.
#   make            release binary build/fogport
#   make check      sanitizer build (ASan+UBSan), C unit tests, end-to-end tests
#   make unit       sanitizer build and C unit tests only
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make clang      the release build with clang (warnings are errors there too)
#   make format     clang-format every C file; make format-check verifies it
CC      ?= cc
# Debian's python3 (with python3-pytest); a pyenv python earlier on PATH lacks it
PYTHON  ?= /usr/bin/python3
PKGS    := libmicrohttpd jansson sqlite3 libcrypto libcurl gnutls zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libarchive)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lcrypt -lpthread
# fogport itself loads libarchive (libarchive.so.13) only while it unpacks a
# layer (src/agent/unpack.c); the tests and fuzzers that write archives link it
ARCHIVE_LIBS := $(shell pkg-config --libs libarchive)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wno-unused-parameter -Wno-format-truncation
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS)
RELEASE_CFLAGS := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined

LIB_SRC  := $(sort $(wildcard src/core/*.c src/store/*.c src/auth/*.c src/federation/*.c src/agent/*.c src/control/*.c src/registry/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
HDRS     := $(wildcard src/*/*.h)
# The dashboard's files, embedded into the binary (scripts/embed-ui)
UI_FILES := $(sort $(wildcard ui/*.html ui/*.js ui/*.css ui/*.svg))
UI_GEN   := build/gen/ui_assets.c

REL_OBJ  := $(LIB_SRC:%.c=build/obj/%.o) $(CLI_SRC:%.c=build/obj/%.o) $(UI_GEN:%.c=build/obj/%.o)
SAN_LIB  := $(LIB_SRC:%.c=build/san/%.o) $(UI_GEN:%.c=build/san/%.o)
SAN_CLI  := $(CLI_SRC:%.c=build/san/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/san/unit/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.PHONY: all check unit e2e fuzz clang format format-check clean bench
all: build/fogport

build/fogport: $(REL_OBJ)
	$(CC) $(RELEASE_CFLAGS) -o $@ $^ $(PKG_LIBS)

$(UI_GEN): scripts/embed-ui $(UI_FILES)
	@mkdir -p $(dir $@)
	@echo "  EMBED   $(UI_FILES)"
	@scripts/embed-ui $@ $(UI_FILES)

build/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BASE_CFLAGS) $(RELEASE_CFLAGS) -c -o $@ $<

build/san/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -c -o $@ $<

build/san/fogport: $(SAN_LIB) $(SAN_CLI)
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/san/unit/%: tests/unit/%.c $(SAN_LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -o $@ $< $(filter build/san/src/cli/%.o,$^) $(SAN_LIB) \
	    $(PKG_LIBS) $(ARCHIVE_LIBS) -lcmocka

# the image builder belongs to the CLI; its unit test links it
build/san/unit/test_demo_images: build/san/src/cli/demo_images.o

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

e2e: build/san/fogport build/fogport
	FOGPORT_BIN=$(CURDIR)/build/san/fogport $(PYTHON) -m pytest -q tests/e2e

check: unit e2e

# libFuzzer targets: clang, ASan+UBSan, linked with the library sources.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)
build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(LIB_SRC) $(UI_GEN) $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(UI_GEN) $(PKG_LIBS) $(ARCHIVE_LIBS)
fuzz: $(FUZZ_BIN)

# The same release build with clang, in its own tree (warnings are errors).
CLANG_OBJ := $(LIB_SRC:%.c=build/clang/%.o) $(CLI_SRC:%.c=build/clang/%.o) \
             $(UI_GEN:%.c=build/clang/%.o)
build/clang/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@clang $(filter-out -Wno-format-truncation,$(BASE_CFLAGS)) $(RELEASE_CFLAGS) -c -o $@ $<
build/clang/fogport: $(CLANG_OBJ)
	clang $(RELEASE_CFLAGS) -o $@ $^ $(PKG_LIBS)
clang: build/clang/fogport

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c fuzz/*.h)
format-check:
	clang-format --dry-run --Werror $(wildcard src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c fuzz/*.h)

bench: build/fogport
	bench/run

clean:
	rm -rf build
