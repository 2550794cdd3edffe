#!/usr/bin/env bash
# fuzz-formats.sh: builds the libFuzzer targets of the model-file readers (tests/fuzz/fuzz_gguf.c,
# tests/fuzz/fuzz_safetensors.c, tests/fuzz/fuzz_tokjson.c: Hugging Face tokenizer.json) with clang -fsanitize=fuzzer,address,undefined into build-fuzz/ and runs
# each for SECONDS seconds (default 60) on a seed corpus made from tests/fixtures/quant/ plus a few
# hand-made headers (tokjson: the tokenizer.json files of tests/bad/files/ and tests/fixtures/hf/tokenizer/). Corpora grow in tests/fuzz/corpus-*/ and crashes land in tests/fuzz/crash-* (both
# git-ignored). Prints the executions of each run; exits non-zero when a target crashed.
#   usage: tests/fuzz/fuzz-formats.sh [SECONDS] [gguf|safetensors|tokjson|chattpl ...]
# chattpl: chat templates (tests/fuzz/fuzz_chattpl.c), seeded with SmolLM2's, Qwen2.5's, Llama-3's and
# Gemma's.
set -eu
secs=${1:-60}
shift || true
targets=${*:-gguf safetensors tokjson chattpl}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
fix=$root/tests/fixtures/quant
cd "$root"
mkdir -p "$out"

cflags="-std=c11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined"
cflags="$cflags -fno-sanitize-recover=all -fno-omit-frame-pointer -Iruntime"
srcs="runtime/gguf.c runtime/dequant.c runtime/safetensors.c runtime/hparams.c runtime/lmn_error.c runtime/lmn_file.c"
srcs="$srcs runtime/tokenizer.c runtime/tokenizer_bpe.c runtime/tokenizer_hf.c runtime/chat_template.c"

seed_gguf() {
  local d=$1
  cp "$fix"/py_llama.gguf.dat "$d/py_llama"
  cp "$fix"/py_qwen2.gguf.dat "$d/py_qwen2"
  # header only: magic, v3, 0 tensors, 1 kv general.alignment = 64
  printf 'GGUF\003\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000\021\000\000\000\000\000\000\000general.alignment\004\000\000\000\100\000\000\000' >"$d/align"
}

seed_safetensors() {
  local d=$1 h
  cp "$fix"/py_st.safetensors.dat "$d/py_st"
  h='{"__metadata__":{"k":"v\u00e9"},"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]},"i":{"dtype":"I8","shape":[],"data_offsets":[4,5]}}'
  { printf "$(printf '\\%03o' $((${#h} & 255)) $(((${#h} >> 8) & 255)) 0 0 0 0 0 0)"; printf '%s' "$h"; printf 'abcde'; } >"$d/hand"
}

seed_tokjson() {
  local d=$1
  cp "$root"/tests/bad/files/tok/tokenizer.json "$d/tok"
  cp "$root"/tests/bad/files/tok-regex/tokenizer.json "$d/tok-regex"
  cp "$root"/tests/fixtures/hf/tokenizer/tokenizer.json "$d/hf32"
}

seed_chattpl() {
  local d=$1
  printf "{%% for message in messages %%}{%% if loop.first and messages[0]['role'] != 'system' %%}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{%% endif %%}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{%% endfor %%}\0Be brief.\0Hi\0Hello!\0Bye" >"$d/smol"
  printf "{%%- if tools %%}{{- '<|im_start|>system\\\\n' }}{%%- else %%}{{- '<|im_start|>system\\\\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\\\\n' }}{%%- endif %%}\0\0q\0a\0q" >"$d/qwen"
  printf "{{ bos_token }}{%% for m in messages %%}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{%% endfor %%}\0 s \0 u\n\0a\0u" >"$d/llama3"
  printf "{{ bos_token }}<start_of_turn>user\n{{ content }}<end_of_turn>\n<start_of_turn>model\n\0sys\0u\0m\0u" >"$d/gemma"
}

write_dicts() {
  printf '"\\"model\\""\n"\\"vocab\\""\n"\\"merges\\""\n"\\"added_tokens\\""\n"\\"pre_tokenizer\\""\n' >"$out/tokjson.dict"
  printf '"\\"type\\""\n"\\"BPE\\""\n"\\"ByteLevel\\""\n"\\"Sequence\\""\n"\\"Split\\""\n"\\"Digits\\""\n' >>"$out/tokjson.dict"
  printf '"\\"pretokenizers\\""\n"\\"Regex\\""\n"\\"special\\""\n"\\"content\\""\n"\\"id\\""\n"\\\\p{N}"\n' >>"$out/tokjson.dict"
  printf '"GGUF"\n"general.alignment"\n"general.architecture"\n"llama"\n"qwen2"\n"gpt2"\n".block_count"\n' >"$out/gguf.dict"
  printf '"tokenizer.ggml.tokens"\n"token_embd.weight"\n"output.weight"\n"blk.0.attn_q.bias"\n' >>"$out/gguf.dict"
  printf '".embedding_length"\n".attention.head_count"\n".attention.head_count_kv"\n".context_length"\n' >>"$out/gguf.dict"
  printf '"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"\n"\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff"\n' >>"$out/gguf.dict"
  printf '"\\"dtype\\""\n"\\"shape\\""\n"\\"data_offsets\\""\n"\\"__metadata__\\""\n"\\"F32\\""\n"\\"F16\\""\n' >"$out/safetensors.dict"
  printf '"\\"BF16\\""\n"\\"I64\\""\n"\\\\u"\n"\\\\ud83d\\\\ude00"\n"{"\n"}"\n"["\n"]"\n":"\n","\n"18446744073709551615"\n' >>"$out/safetensors.dict"
  printf '"<|im_start|>"\n"<|im_end|>"\n"<|start_header_id|>"\n"<|eot_id|>"\n"<start_of_turn>"\n' >"$out/chattpl.dict"
  printf '"<end_of_turn>"\n"system"\n"\\\\n"\n"bos_token"\n"<|begin_of_text|>"\n"\\x00"\n' >>"$out/chattpl.dict"
}

status=0
write_dicts
for t in $targets; do
  echo "== building fuzz_$t"
  clang $cflags tests/fuzz/fuzz_$t.c $srcs -lm -o "$out/fuzz_$t"
  corpus=$root/tests/fuzz/corpus-$t
  seeds=$out/seeds-$t
  mkdir -p "$corpus" "$seeds"
  "seed_$t" "$seeds"
  bash tests/fuzz/run-target.sh "$t" "$secs" -dict="$out/$t.dict" "$corpus" "$seeds" || status=1
done
exit $status
