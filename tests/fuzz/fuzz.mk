# fuzz.mk: `make fuzz` builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS seconds (default 60), seeded from dsl-examples/, the test fixtures and tests/fuzz/corpus/.
# A crash leaves its input in tests/fuzz/ (git-ignored) and fails the target. Run long:
# make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
CLANG        ?= clang
FZ           := build-fuzz
FFLAGS       := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
                -Iruntime/include -Iruntime -Icompiler -I$(FZ)/compiler -I/usr/include/x86_64-linux-gnu/openblas-pthread
FE_SRC       := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
RT_SRC       := $(wildcard runtime/*.c)  # lmnc links the whole runtime (the planner asks it for block sizes)

.PHONY: run-front
run-front: $(FZ)/fuzz_front
	@mkdir -p $(FZ)/corpus-front && cp dsl-examples/*.lmn tests/bad/*.lmn $(FZ)/corpus-front/ 2>/dev/null || true
	@bash tests/fuzz/run-target.sh front $(FUZZ_SECONDS) -max_len=4096 $(FZ)/corpus-front
	@bash tests/fuzz/fuzz-formats.sh $(FUZZ_SECONDS)
	@bash tests/fuzz/fuzz-tokenizer.sh $(FUZZ_SECONDS)
	@$(MAKE) -f tests/fuzz/fuzz.mk run-runtime

# the runtime's readers: YAML config, corpora and TSV, checkpoints, chunked tokenisation (fuzz-runtime.sh)
.PHONY: run-runtime
run-runtime:
	@bash tests/fuzz/fuzz-runtime.sh $(FUZZ_SECONDS)

$(FZ)/compiler/parser.c: compiler/parser.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(FZ)/compiler/parser.h -o $@ $<

$(FZ)/compiler/lexer.c: compiler/lexer.l $(FZ)/compiler/parser.c
	flex --header-file=$(FZ)/compiler/lexer.h -o $@ $<

$(FZ)/fuzz_front: tests/fuzz/fuzz_front.c $(FE_SRC) $(RT_SRC) $(FZ)/compiler/lexer.c $(FZ)/compiler/parser.c
	$(CLANG) $(FFLAGS) -o $@ $^ -lopenblas -lyaml -ljansson -lm -lpthread
