# Makefile: the one entry point of lmnet: build (`make`), `make test`, `make demo`, `make fuzz`,
# `make install PREFIX=...`, `make clean`. Sources are found by wildcard: a new runtime/*.c joins liblmn,
# a new compiler/*.c joins lmnc, a new tests/test_*.c becomes a CUnit suite that `make test` runs.
# `make test` builds and runs every suite twice: normally and with -fsanitize=address,undefined.
# Outputs: bin/lmnc, lib/liblmn.a and lib/liblmn.so (the same position-independent objects; the soname is
# liblmn.so.MAJOR). Code that uses liblmn includes <lmn/NAME.h>: -Iruntime/include finds them in the tree
# (runtime/include/lmn is a link to runtime/), -I$(PREFIX)/include once installed.

CC       ?= gcc
BUILD    ?= build
SAN      ?=
PREFIX   ?= /usr/local
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
SAN_ON   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SANFLAGS := $(if $(SAN),$(SAN_ON))
OPT      := $(if $(SAN),-O1,-O2)
# -Iruntime/include: <lmn/net.h> and the other runtime headers, as generated code includes them; -Iruntime:
# the plain "net.h" of code generated before that.
CFLAGS   := -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Iruntime/include \
            -Iruntime -Icompiler -I$(BUILD)/compiler -I$(BLAS_INC) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := $(SANFLAGS)
LDLIBS   := -lopenblas -lyaml -ljansson -lm -lpthread
BINDIR   := $(if $(SAN),$(BUILD)/bin,bin)
LIBDIR   := $(if $(SAN),$(BUILD)/lib,lib)
# liblmn: position-independent (one set of objects for the archive and the shared library), at the -O2 of
# generated code but without -march=native, so that it runs on any x86-64: its hot kernels carry their own
# AVX2 and AVX-512 versions, chosen when the program starts (LMN_CLONES in runtime/k_isa.h). No
# floating-point contraction, so every version computes the same bits (-std=c11 implies it; said again for
# builds that pass -std=gnu11).
RT_CFLAGS := -fPIC -ffp-contract=off
VERSION  := $(shell sed -n 's/^\#define LMN_VERSION "\(.*\)"$$/\1/p' runtime/lmn.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
SONAME   := liblmn.so.$(SOMAJOR)

RT_SRC   := $(wildcard runtime/*.c)
RT_OBJ   := $(RT_SRC:%.c=$(BUILD)/%.o)
FE_SRC   := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
FE_GEN   := $(BUILD)/compiler/lexer.c $(BUILD)/compiler/parser.c
FE_OBJ   := $(FE_SRC:%.c=$(BUILD)/%.o) $(FE_GEN:.c=.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIBLMN   := $(LIBDIR)/liblmn.a
LIBLMN_SO := $(LIBDIR)/liblmn.so
LMNC     := $(BINDIR)/lmnc
# lib/liblmn_mpi.a: the MPI side of data parallelism (runtime/mpi/dist_mpi.c, built with mpicc), linked only by
# a generated Makefile's `make MPI=1`; liblmn itself links no MPI. Built whenever mpicc is installed.
MPICC    := $(shell command -v mpicc 2> /dev/null)
LIBLMN_MPI := $(if $(MPICC),$(LIBDIR)/liblmn_mpi.a)

.PHONY: all deps test unit golden resume backend demo paper paper-smoke paper-check mpi-test fuzz install clean regen check-generated models serve-test serve-test-san serve-test-nets bench-serve
all: $(LMNC) $(LIBLMN) $(LIBLMN_SO) $(LIBLMN_MPI)

deps:
	@bash scripts/install-deps.sh

# bison and flex each write two files in one run: a grouped target (`&:`, GNU make 4.3) runs each once under
# -j; an older make gets the same from a stamp file.
ifneq ($(filter grouped-target,$(.FEATURES)),)
$(BUILD)/compiler/parser.c $(BUILD)/compiler/parser.h &: compiler/parser.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/compiler/parser.h -o $(BUILD)/compiler/parser.c $<

$(BUILD)/compiler/lexer.c $(BUILD)/compiler/lexer.h &: compiler/lexer.l $(BUILD)/compiler/parser.h
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/compiler/lexer.h -o $(BUILD)/compiler/lexer.c $<
else
$(BUILD)/compiler/parser.c $(BUILD)/compiler/parser.h: $(BUILD)/compiler/parser.stamp ;
$(BUILD)/compiler/parser.stamp: compiler/parser.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/compiler/parser.h -o $(BUILD)/compiler/parser.c $<
	@touch $@

$(BUILD)/compiler/lexer.c $(BUILD)/compiler/lexer.h: $(BUILD)/compiler/lexer.stamp ;
$(BUILD)/compiler/lexer.stamp: compiler/lexer.l $(BUILD)/compiler/parser.h
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/compiler/lexer.h -o $(BUILD)/compiler/lexer.c $<
	@touch $@
endif

# Generated scanner/parser code is not ours to lint: keep -Werror but drop the warnings flex/bison trip.
$(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o: CFLAGS += -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter
# parser.c includes lexer.h and lexer.c parser.h: both headers exist before either object compiles.
$(BUILD)/compiler/%.o: $(BUILD)/compiler/%.c $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.c $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(RT_OBJ): CFLAGS += $(RT_CFLAGS)
# AdamW's square roots: without errno a clone's lanes use vsqrtps (correctly rounded, the same bits as sqrtf)
$(BUILD)/runtime/k_adamw.o: CFLAGS += -fno-math-errno

$(LIBLMN): $(RT_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# lib/liblmn.so -> liblmn.so.MAJOR -> liblmn.so.VERSION, the file itself; every symbol resolved at link time.
$(LIBDIR)/liblmn.so.$(VERSION): $(RT_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) $(if $(SAN),,-Wl,--no-undefined) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(LIBDIR)/$(SONAME): $(LIBDIR)/liblmn.so.$(VERSION)
	ln -sf $(<F) $@
$(LIBLMN_SO): $(LIBDIR)/$(SONAME)
	ln -sf $(<F) $@

$(BUILD)/mpi/dist_mpi.o: runtime/mpi/dist_mpi.c runtime/dist.h
	@mkdir -p $(@D)
	OMPI_CC=$(CC) mpicc $(CFLAGS) $(RT_CFLAGS) -c -o $@ $<

$(LIBDIR)/liblmn_mpi.a: $(BUILD)/mpi/dist_mpi.o
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libfront.a: $(FE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(LMNC): $(BUILD)/compiler/main.o $(BUILD)/libfront.a $(LIBLMN)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libfront.a $(LIBLMN) tests/harness.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libfront.a $(LIBLMN) $(LDFLAGS) -lcunit $(LDLIBS)

# Whole-network suites: every tests/networks/NAME.lmn (network NAME) is compiled by lmnc and linked into
# build/tests/test_networks with a registry of their descriptors.
NET_LMN   := $(wildcard tests/networks/*.lmn)
NET_NAMES := $(NET_LMN:tests/networks/%.lmn=%)
NET_OBJ   := $(NET_NAMES:%=$(BUILD)/nets/%.o)

$(BUILD)/nets/%.o: tests/networks/%.lmn $(LMNC)
	@mkdir -p $(BUILD)/nets/$*
	$(LMNC) compile $< -o $(BUILD)/nets/$* > /dev/null
	$(CC) $(CFLAGS) -Wno-unused-function -I$(BUILD)/nets/$* -c -o $@ $(BUILD)/nets/$*/$*.c

$(BUILD)/nets/registry.h: $(NET_LMN)
	@mkdir -p $(@D)
	@{ for n in $(NET_NAMES); do echo "extern const lmn_net_desc $${n}_desc;"; done; \
	   echo "static const lmn_net_desc *const registry[] = {"; \
	   for n in $(NET_NAMES); do echo "    &$${n}_desc,"; done; echo "    NULL};"; } > $@

$(BUILD)/tests/test_networks: tests/test_networks.c $(NET_OBJ) $(BUILD)/nets/registry.h $(LIBLMN) tests/harness.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -I$(BUILD)/nets -o $@ $< $(NET_OBJ) $(LIBLMN) $(LDFLAGS) -lcunit $(LDLIBS)

# tokenizer.json directories made from the SmolLM2 GGUF's vocabulary and merges (tests/test_tokenizer.c reads
# them from $LMN_TOKJSON), when models/ holds the GGUF.
SMOL_GGUF := models/SmolLM2-135M-Instruct.Q4_1.gguf
TOKJSON   := $(BUILD)/tokjson
$(TOKJSON)/stamp: tests/reference/make_tokenizer_json.py $(wildcard $(SMOL_GGUF))
	@mkdir -p $(@D)
	python3 $< $(SMOL_GGUF) $(@D) && touch $@

# unit: build and run every CUnit suite of this BUILD; a failure or a sanitizer report fails the target.
unit: $(LMNC) $(TEST_BIN) $(if $(wildcard $(SMOL_GGUF)),$(TOKJSON)/stamp)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; LMNC=$(LMNC) LMN_TOKJSON=$(TOKJSON) $$t; done

golden: $(LMNC)
	@bash tests/run-golden.sh $(LMNC)

# the back end from outside: `lmnc info` == `NAME info` for every example, identical bytes when compiled twice,
# and [1, 256, 1] vertices trained a step under the sanitizers (tests/backend-test.sh)
backend: $(LMNC) $(LIBLMN)
	@$(MAKE) -s BUILD=build-san SAN=1 build-san/lib/liblmn.a
	@bash tests/backend-test.sh $(LMNC)

# kill -9 during training, then --resume: bit-identical to an uninterrupted run; Ctrl-C (SIGINT/SIGTERM)
# checkpoints and exits 130, --resume starts afresh without a checkpoint and refuses changed settings
resume: $(LMNC) $(LIBLMN)
	@bash tests/resume-test.sh $(LMNC)
	@bash tests/interrupt-test.sh $(LMNC)

test: deps models
	$(MAKE) all
	$(MAKE) unit golden resume backend
	@bash tests/hostile-test.sh $(LMNC) && bash tests/crash-test.sh $(LMNC)
	@bash tests/config-doc-test.sh && bash tests/cli-test.sh $(LMNC) && bash tests/classify-test.sh $(LMNC)
	@bash tests/warmstart-test.sh $(LMNC) && bash tests/export-test.sh $(LMNC) && bash tests/preserve-test.sh $(LMNC)
	@bash tests/tokenizer-test.sh $(LMNC) && bash tests/memory-test.sh $(LMNC) && bash scripts/paper.sh --smoke
	$(MAKE) mpi-test
	$(MAKE) serve-test serve-test-san
	$(MAKE) unit golden BUILD=build-san SAN=1
	$(MAKE) check-generated
	$(MAKE) embed-test install-test
	@echo "make test: all suites passed (normal and sanitizer builds)"

# data-parallel training over OpenMPI ranks (tests/mpi-test.sh): 2 ranks against 1 process, checkpoints
# across rank counts, kill -9 of a rank, mismatched ranks refused
mpi-test: $(LMNC) $(LIBLMN) $(LIBLMN_MPI)
	@bash tests/mpi-test.sh $(LMNC)

# `NAME chat` and `NAME serve` from outside (tests/chat-test.sh, tests/serve-test.sh: curl, the openai client
# from PyPI in build/serve-venv, malformed requests, a load test): tiny, the classifier and, when models/
# holds it, SmolLM2, compiled under $(BUILD)/serve/ with their own Makefiles.
SERVE_DIR := $(BUILD)/serve
SERVE_NETS := tiny classify $(if $(wildcard $(SMOL_GGUF)),smol)
serve-test: serve-test-nets
	@bash tests/chat-test.sh $(SERVE_DIR)/tiny/tiny $(if $(wildcard $(SMOL_GGUF)),$(SERVE_DIR)/smol/smol)
	@bash tests/serve-test.sh $(SERVE_DIR)/tiny/tiny "$(if $(wildcard $(SMOL_GGUF)),$(SERVE_DIR)/smol/smol)" \
	  $(SERVE_DIR)/classify/classify

# the same for tiny under AddressSanitizer and UndefinedBehaviorSanitizer (liblmn of build-san; a report
# aborts the server, which fails the checks after it; leaks fail its exit status)
serve-test-san: $(LMNC)
	@$(MAKE) -s BUILD=build-san SAN=1 build-san/lib/liblmn.a
	@mkdir -p build-san/serve
	@$(LMNC) compile dsl-examples/tiny.lmn -o build-san/serve/tiny > /dev/null
	@$(CC) -std=c11 -O1 -g $(SAN_ON) -Iruntime/include -Iruntime -I$(BLAS_INC) -o build-san/serve/tiny/tiny \
	  build-san/serve/tiny/tiny.c build-san/serve/tiny/main.c build-san/lib/liblmn.a $(LDLIBS)
	@bash tests/chat-test.sh build-san/serve/tiny/tiny
	@bash tests/serve-test.sh build-san/serve/tiny/tiny

serve-test-nets: $(LMNC) $(LIBLMN)
	@mkdir -p $(SERVE_DIR)
	@for n in $(SERVE_NETS); do \
	  $(LMNC) compile dsl-examples/$$n.lmn -o $(SERVE_DIR)/$$n > $(SERVE_DIR)/$$n.log 2>&1 && \
	  $(MAKE) -s -C $(SERVE_DIR)/$$n LMNET=$(CURDIR) >> $(SERVE_DIR)/$$n.log 2>&1 || { cat $(SERVE_DIR)/$$n.log; exit 1; }; \
	done

# generated/: what lmnc emits for every example, kept in the repository.
regen: $(LMNC)
	@bash scripts/regen.sh $(LMNC)

check-generated: $(LMNC) $(LIBLMN)
	@bash scripts/regen.sh $(LMNC) --check
	@for d in generated/*/; do n=$$(basename $$d); \
	  $(MAKE) -s -B -C $$d CFLAGS="-std=c11 -O1 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null || exit 1; \
	  rm -f $$d/$$n $$d/.built-mpi*; done; echo "generated/: every example builds with its own Makefile under -Werror"

# models: pre-trained weights into models/ (git-ignored), SHA-256 checked; cached under ~/.cache/lmnet
models:
	@bash scripts/models.sh

demo: deps
	$(MAKE) all
	@bash scripts/demo.sh

# paper: the LMNet claim in miniature on SmolLM2-135M (scripts/paper.sh): five variants, one budget, one seed;
# writes docs/paper.md, docs/paper.png and docs/paper-losses.tsv (about 90 minutes on a quiet 2-core machine).
# paper-smoke: the same pipeline at a tiny budget into build/paper-smoke/ (part of make test). paper-check:
# retrains every variant to step PAPER_CHECK (40) and compares each step's loss with docs/paper-losses.tsv.
PAPER_CHECK ?= 40
paper: deps models
	$(MAKE) all
	@bash scripts/paper.sh

paper-smoke: deps models
	$(MAKE) all
	@bash scripts/paper.sh --smoke

paper-check: deps models
	$(MAKE) all
	@bash scripts/paper.sh --check $(PAPER_CHECK)

fuzz: deps
	$(MAKE) -f tests/fuzz/fuzz.mk

# install: bin/lmnc; lib/liblmn.a, lib/liblmn.so (-> .so.MAJOR -> .so.VERSION); the runtime headers in
# include/lmn/ (included as <lmn/lmn.h>, <lmn/net.h>, ...: only include/ goes on a user's include path);
# lib/pkgconfig/lmn.pc (`pkg-config --cflags --libs lmn`: the shared library; `--static`: what a static link
# of liblmn.a needs). Run ldconfig after installing into a system directory.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/lmn $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(LMNC) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBLMN) $(LIBLMN_MPI) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBDIR)/liblmn.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf liblmn.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/liblmn.so
	install -m 644 runtime/*.h $(DESTDIR)$(PREFIX)/include/lmn/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@BLAS_INC@|$(BLAS_INC)|' \
	  scripts/lmn.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lmn.pc

clean:
	rm -rf build build-san build-fuzz build-regen bin lib demo

-include $(RT_OBJ:.o=.d) $(FE_OBJ:.o=.d)

# embed-test: two programs of a user embedding compiled networks outside the generator, built against the
# tree's headers and liblmn.a, each run normally and then under valgrind (leaks and memory errors fail it;
# with SAN=1 ASan checks instead):
#   tests/embed/embed.c  tiny.lmn compiled into $(BUILD)/embed/ (not committed); includes its tiny.h and uses
#                        checkpoints and generation (checkpoint.h, generate.h);
#   tests/embed/api.c    only the public API of <lmn/lmn.h>, on tiny.lmn and tests/networks/classify_small.lmn
#                        (compiled into $(BUILD)/embed/classify_small/): forward with and without targets,
#                        logits, backward and update, decoding, checkpoints, and an error (no crash) for every
#                        bad argument. tests/install-test.sh builds it against an installed tree and liblmn.so.
EMBED_DIR    := $(BUILD)/embed
EMBED_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -I$(EMBED_DIR) -Iruntime/include -Iruntime -I$(BLAS_INC) \
                $(SANFLAGS)
EMBED_NETS   := $(EMBED_DIR)/tiny.c $(EMBED_DIR)/classify_small/classify_small.c

$(EMBED_DIR)/tiny.c: dsl-examples/tiny.lmn $(LMNC)
	@mkdir -p $(@D)
	$(LMNC) compile $< -o $(@D)
$(EMBED_DIR)/tiny.h: $(EMBED_DIR)/tiny.c
$(EMBED_DIR)/classify_small/classify_small.c: tests/networks/classify_small.lmn $(LMNC)
	@mkdir -p $(@D)
	$(LMNC) compile $< -o $(@D) > /dev/null

$(EMBED_DIR)/embed: tests/embed/embed.c $(EMBED_DIR)/tiny.c $(EMBED_DIR)/tiny.h $(LIBLMN) $(wildcard runtime/*.h)
	$(CC) $(EMBED_CFLAGS) -o $@ tests/embed/embed.c $(EMBED_DIR)/tiny.c $(LIBLMN) $(LDFLAGS) $(LDLIBS)

$(EMBED_DIR)/api: tests/embed/api.c $(EMBED_NETS) $(LIBLMN) $(wildcard runtime/*.h)
	$(CC) $(EMBED_CFLAGS) -o $@ tests/embed/api.c $(EMBED_NETS) $(LIBLMN) $(LDFLAGS) $(LDLIBS)

.PHONY: embed-test install-test
embed-test: $(EMBED_DIR)/embed $(EMBED_DIR)/api
	@set -e; for p in $^; do \
	  echo "== $$p"; $$p; \
	  echo "== valgrind --leak-check=full $$p$(if $(SAN), (skipped: SAN build, ASan checked it))"; \
	  $(if $(SAN),true,valgrind -q --fair-sched=yes --leak-check=full --error-exitcode=1 $$p > /dev/null); done

# install-test: `make install` into a temporary PREFIX (and a DESTDIR), then lmnc, pkg-config and the
# generated Makefile used from the installed tree only; see tests/install-test.sh.
install-test: all
	@bash tests/install-test.sh

# SmolLM2 parity (tests/test_smol_parity.c): dsl-examples/smol.lmn, the base model as one vertex, compiled
# by lmnc and linked into its own suite, which compares it with llama.cpp's logits and greedy decoding
# (tests/fixtures/smol/) when models/ holds the GGUF file.
$(BUILD)/smolnet/smol.o: dsl-examples/smol.lmn $(LMNC)
	@mkdir -p $(BUILD)/smolnet
	@$(LMNC) compile $< -o $(BUILD)/smolnet > /dev/null 2> $(BUILD)/smolnet/lmnc.log || { cat $(BUILD)/smolnet/lmnc.log; exit 1; }
	$(CC) $(CFLAGS) -Wno-unused-function -I$(BUILD)/smolnet -c -o $@ $(BUILD)/smolnet/smol.c

$(BUILD)/tests/test_smol_parity: tests/test_smol_parity.c $(BUILD)/smolnet/smol.o $(LIBLMN) tests/harness.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -I$(BUILD)/smolnet -o $@ $< $(BUILD)/smolnet/smol.o $(LIBLMN) $(LDFLAGS) -lcunit $(LDLIBS)

# Frozen weights kept in their file's format (tests/test_qnet.c): tests/frozenq/frozenq.lmn and its f32
# reference frozenq_f.lmn, compiled by lmnc and linked into the suite, which writes their model files.
$(BUILD)/frozenq/%.o: tests/frozenq/%.lmn $(LMNC)
	@mkdir -p $(BUILD)/frozenq/$*
	@$(LMNC) compile $< -o $(BUILD)/frozenq/$* > /dev/null 2> $(BUILD)/frozenq/$*.log || { cat $(BUILD)/frozenq/$*.log; exit 1; }
	$(CC) $(CFLAGS) -Wno-unused-function -I$(BUILD)/frozenq/$* -c -o $@ $(BUILD)/frozenq/$*/$*.c

$(BUILD)/tests/test_qnet: tests/test_qnet.c $(BUILD)/frozenq/frozenq.o $(BUILD)/frozenq/frozenq_f.o $(LIBLMN) tests/harness.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/frozenq/frozenq.o $(BUILD)/frozenq/frozenq_f.o $(LIBLMN) $(LDFLAGS) -lcunit $(LDLIBS)

# PyTorch twin parity (tests/test_twin.c, tests/twin/README.md): every tests/twin/NAME.lmn is compiled by lmnc
# into $(BUILD)/twin/NAME/ and linked into $(BUILD)/tests/test_twin with a registry of their descriptors; the
# suite compares them with the committed fixtures tests/twin/NAME.twin.safetensors and needs no torch.
# `make twin-fixtures` remakes those fixtures: for each NAME, with its config tests/twin/NAME.yaml (else
# tests/twin/twin_lm.yaml), `NAME train` for TWIN_PRETRAIN steps (weights away from their initialisation:
# nonzero biases, gains away from 1, activations in the nonlinear range), `NAME dump-state` of that
# checkpoint, then tests/reference/torch_twin.py, run by TWIN_PYTHON, a python with torch (Debian's
# python3-torch; found among python3 and /usr/bin/python3 unless given).
TWIN_LMN    := $(wildcard tests/twin/*.lmn)
TWIN_NAMES  := $(TWIN_LMN:tests/twin/%.lmn=%)
TWIN_OBJ    := $(TWIN_NAMES:%=$(BUILD)/twin/%.o)
TWIN_PRETRAIN := 40
TWIN_PYTHON ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import torch' 2>/dev/null && { echo $$p; break; }; done)

$(BUILD)/twin/%.o: tests/twin/%.lmn $(LMNC)
	@mkdir -p $(BUILD)/twin/$*
	$(LMNC) compile $< -o $(BUILD)/twin/$* > /dev/null
	$(CC) $(CFLAGS) -Wno-unused-function -I$(BUILD)/twin/$* -c -o $@ $(BUILD)/twin/$*/$*.c

$(BUILD)/twin/registry.h: $(TWIN_LMN)
	@mkdir -p $(@D)
	@{ for n in $(TWIN_NAMES); do echo "extern const lmn_net_desc $${n}_desc;"; done; \
	   echo "static const lmn_net_desc *const registry[] = {"; \
	   for n in $(TWIN_NAMES); do echo "    &$${n}_desc,"; done; echo "    NULL};"; } > $@

$(BUILD)/tests/test_twin: tests/test_twin.c $(TWIN_OBJ) $(BUILD)/twin/registry.h $(LIBLMN) tests/harness.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -I$(BUILD)/twin -o $@ $< $(TWIN_OBJ) $(LIBLMN) $(LDFLAGS) -lcunit $(LDLIBS)

.PHONY: twin-fixtures
twin-fixtures: $(TWIN_OBJ) $(LIBLMN) $(LMNC)
	@test -n "$(TWIN_PYTHON)" || { echo "twin-fixtures: no python with torch: apt-get install python3-torch, or set TWIN_PYTHON"; exit 1; }
	@set -e; for n in $(TWIN_NAMES); do \
	  d=$(BUILD)/twin/$$n; cfg=tests/twin/$$n.yaml; test -f $$cfg || cfg=tests/twin/twin_lm.yaml; \
	  echo "== $$n ($$cfg)"; \
	  $(CC) $(CFLAGS) -I$$d -o $$d/$$n $$d/main.c $$d.o $(LIBLMN) $(LDFLAGS) $(LDLIBS); \
	  rm -rf $$d/pretrain; \
	  sed -e 's|^  train: |  train: $(CURDIR)/tests/twin/|' -e 's|^steps: .*|steps: $(TWIN_PRETRAIN)|' $$cfg > $$d/pretrain.yaml; \
	  printf 'checkpoint:\n  dir: pretrain\neval:\n  every: 0\n  batches: 1\nlog:\n  every: $(TWIN_PRETRAIN)\n' >> $$d/pretrain.yaml; \
	  $$d/$$n train -c $$d/pretrain.yaml > $$d/pretrain.log; \
	  $$d/$$n dump-state -c $$cfg --ckpt $$d/pretrain/$$(cat $$d/pretrain/latest) -o $$d.state.safetensors; \
	  $(LMNC) ir --json tests/twin/$$n.lmn > $$d.ir.json; \
	  $(TWIN_PYTHON) tests/reference/torch_twin.py --ir $$d.ir.json --state $$d.state.safetensors \
	    -o tests/twin/$$n.twin.safetensors; \
	done

# bench: training steps of lmnet's compiled networks against PyTorch from PyPI (the newest, installed by the
# script into build/bench/torch-venv): eager f32, torch.compile f32 and bf16 autocast, on bench_tiny (edges,
# all; 4 x 128), GPT-2-124M from scratch (4 x 64) and smol_pair (4 x 128, real SmolLM2 from models/); every
# case and side alternating in one loop for 5 rounds, the load recorded before each process; step time,
# ratios, MFU, peak RSS into bench/results.md and bench/results.png (bench/run.sh). BENCH_THREADS,
# BENCH_ROUNDS (>= 5), BENCH_CASES, BENCH_SIDES override.
# bench-decode: single-stream decoding and prefill of SmolLM2-135M against llama.cpp (llama-cpp-python from
# PyPI, installed into build/bench/venv by the script), 1 and 2 threads, alternating rounds; writes
# bench/decode_results.md (bench/decode_bench.sh).
.PHONY: bench bench-decode bench-1b bench-mpi precision-check
bench-decode: all
	@bash bench/decode_bench.sh

# bench-serve: what `NAME serve` adds to generation with SmolLM2 (bench/serve_bench.py; docs/serve.md)
bench-serve: all
	@test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || $(MAKE) models
	@$(MAKE) -s serve-test-nets
	@python3 bench/serve_bench.py $(SERVE_DIR)/smol/smol

bench: all bench-decode
	@test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || $(MAKE) models
	@bash bench/run.sh
	@bash bench/mpi.sh

# bench-mpi: data parallelism, 2 MPI ranks x 1 thread against 1 rank x 2 threads on bench_tiny and smol_pair
# (bench/mpi.sh -> bench/mpi.md; part of make bench; about 5 minutes)
bench-mpi: all
	@test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || $(MAKE) models
	@bash bench/mpi.sh

# bench-1b: issue 11's run of the paper's shape, LMNet-1B with random frozen Qwen2.5-0.5B-shaped vertices, 2
# optimizer steps of B 8 x T 512 (batch 2, accumulate 4) under a 16 GiB memory budget: peak RSS and s/step into
# bench/lmnet-1b.md (copied into bench/results.md by the next `make bench`); about 20 minutes, alone.
bench-1b: all
	@test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || $(MAKE) models
	@bash bench/lmnet-1b.sh

# precision-check: `precision: bf16` against f32, 500 steps of the demo network and of bench_tiny from the same
# seeds, validation loss per seed and averaged (scripts/precision-curves.sh; bench/precision.md)
precision-check: all deps
	@bash scripts/precision-curves.sh
