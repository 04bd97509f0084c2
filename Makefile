# fogport build. One build system: GNU make.
#   make            release binary build/fogport
#   make check      sanitizer build (ASan+UBSan), C unit tests, end-to-end tests
#   make unit       sanitizer build and C unit tests only
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make clang      the release build with clang (warnings are errors there too)
#   make edge       build/edge/fogport: one static file for small edge nodes
#                   (scripts/edge-deps builds its libcurl and libmicrohttpd)
#   make format     clang-format every C file; make format-check verifies it
#   make install    the release binary, manual page, bash completion, systemd
#                   units and example configurations under DESTDIR/PREFIX
#                   (make uninstall removes exactly those)
CC      ?= cc
# Debian's python3 (with python3-pytest); a pyenv python earlier on PATH lacks it
PYTHON  ?= /usr/bin/python3
PKGS    := libmicrohttpd jansson sqlite3 libssl libcrypto libcurl zlib
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

.PHONY: all check unit e2e fuzz clang edge format format-check clean bench man install uninstall
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
# the agent's unpacking in a child runs `fogport unpack-layer`
build/san/unit/test_unpack: build/fogport

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

e2e: build/san/fogport build/fogport build/edge/fogport
	FOGPORT_BIN=$(CURDIR)/build/san/fogport $(PYTHON) -m pytest -q --durations=15 tests/e2e

check: unit e2e

# libFuzzer targets: clang, ASan+UBSan, linked with the library sources.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)
# The library is compiled once for every target (instrumented for the
# fuzzer, without its main) and linked into each: compiling it per target
# cost CI minutes.
FUZZ_LIB_CFLAGS := $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_CFLAGS))
FUZZ_LIB := $(LIB_SRC:%.c=build/fuzz/obj/%.o) $(UI_GEN:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@clang $(FUZZ_LIB_CFLAGS) -c -o $@ $<
build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(FUZZ_LIB) $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) $(ARCHIVE_LIBS)
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

# The edge build: the same program as one static file, for edge nodes with
# little memory (docs/benchmarks.md, "Agent"). Dynamically linked, fogport
# maps 30-odd shared libraries, and the kernel maps each library's code 64
# KiB at a time around every page it touches, so most of every library is
# resident; linked statically with section garbage collection, only the code
# fogport can reach is in the file at all. libcurl and libmicrohttpd are
# built from Debian's sources with only what fogport uses (scripts/edge-deps);
# the rest are Debian's static archives.
EDGE_DEPS   := build/edge/deps/prefix
EDGE_CFLAGS := -I$(EDGE_DEPS)/include $(BASE_CFLAGS) $(RELEASE_CFLAGS) -DFP_STATIC_BUILD \
               -ffunction-sections -fdata-sections
EDGE_LIBS   := -L$(EDGE_DEPS)/lib -lcurl -lmicrohttpd -larchive -lzstd -ljansson -lsqlite3 \
               -lssl -lcrypto -lz -lcrypt -lpthread -lm
EDGE_OBJ    := $(LIB_SRC:%.c=build/edge/obj/%.o) $(CLI_SRC:%.c=build/edge/obj/%.o) \
               $(UI_GEN:%.c=build/edge/obj/%.o)
$(EDGE_DEPS)/lib/libcurl.a: scripts/edge-deps
	@echo "  DEPS    scripts/edge-deps (OpenSSL, libcurl, libmicrohttpd from Debian sources)"
	scripts/edge-deps
build/edge/obj/%.o: %.c $(HDRS) Makefile $(EDGE_DEPS)/lib/libcurl.a
	@mkdir -p $(dir $@)
	@echo "  CC edge $<"
	@$(CC) $(EDGE_CFLAGS) -c -o $@ $<
# ld warns that getaddrinfo and getpwuid in a static program load NSS
# modules at run time: only for sources other than files and dns, which
# glibc 2.34+ has built in (Debian 12's nsswitch.conf asks for just those);
# its output is shown only when the link fails
build/edge/fogport: $(EDGE_OBJ)
	@echo "  LD      $@"
	@$(CC) $(RELEASE_CFLAGS) -static -Wl,--gc-sections -o $@ $^ $(EDGE_LIBS) 2>$@.ld; \
	    rc=$$?; [ $$rc -eq 0 ] || cat $@.ld >&2; rm -f $@.ld; exit $$rc
edge: build/edge/fogport

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c fuzz/*.h)
format-check:
	clang-format --dry-run --Werror $(wildcard src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c fuzz/*.h)

# Installation. Debian's layout with PREFIX=/usr: examples go where Debian
# policy puts them (share/doc/fogport/examples), never into /etc, so an
# install never overwrites a node's configuration; the units read
# SYSCONFDIR/fogport/fogport.conf.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/fogport
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc
UNITS    := fogport.service fogport-registry.service
EXAMPLES := $(sort $(wildcard examples/*))
SUBST    = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
               -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@UNITDIR@|$(SYSTEMDUNITDIR)|g' \
               -e 's|@VERSION@|$(shell sed -n 's/^\#define FP_VERSION "\(.*\)"/\1/p' src/cli/cli.h)|g'
# What install puts, and so what uninstall removes.
INSTALLED := $(BINDIR)/fogport $(MANDIR)/man1/fogport.1 $(MANDIR)/man5/fogport.conf.5 \
             $(BASHCOMPDIR)/fogport \
             $(UNITS:%=$(SYSTEMDUNITDIR)/%) $(EXAMPLES:examples/%=$(DOCDIR)/examples/%)

# The manual page: the hand-written sections around every command's help
# text (fogport help --man), so it cannot fall behind --help. Paths are
# filled in at install (they depend on PREFIX), as in the units.
build/fogport.1.in: man/fogport.1.in build/fogport
	{ sed '/^\.\\" @COMMANDS@$$/,$$d' $< ; build/fogport help --man ; \
	  sed '1,/^\.\\" @COMMANDS@$$/d' $< ; } > $@.tmp && mv $@.tmp $@
# The configuration file's page: its keys are docs/configuration.md's table.
build/fogport.conf.5.in: man/fogport.conf.5.in man/keys.awk docs/configuration.md
	@mkdir -p $(dir $@)
	{ sed '/^\.\\" @KEYS@$$/,$$d' $< ; awk -f man/keys.awk docs/configuration.md ; \
	  sed '1,/^\.\\" @KEYS@$$/d' $< ; } > $@.tmp && mv $@.tmp $@
man: build/fogport.1.in build/fogport.conf.5.in

install: build/fogport build/fogport.1.in build/fogport.conf.5.in
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m755 build/fogport $(DESTDIR)$(BINDIR)/fogport
	$(SUBST) build/fogport.1.in > $(DESTDIR)$(MANDIR)/man1/fogport.1
	$(SUBST) build/fogport.conf.5.in > $(DESTDIR)$(MANDIR)/man5/fogport.conf.5
	install -m644 completion/fogport.bash $(DESTDIR)$(BASHCOMPDIR)/fogport
	for u in $(UNITS); do $(SUBST) systemd/$$u.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done
	chmod 644 $(DESTDIR)$(MANDIR)/man1/fogport.1 $(DESTDIR)$(MANDIR)/man5/fogport.conf.5 \
	    $(UNITS:%=$(DESTDIR)$(SYSTEMDUNITDIR)/%)
	install -m644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true

bench: build/fogport
	bench/run

clean:
	rm -rf build
