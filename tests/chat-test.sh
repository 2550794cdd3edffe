#!/usr/bin/env bash
# chat-test.sh: `NAME chat` and the prompt options of `NAME generate` from the outside.
#   bash tests/chat-test.sh TINY_EXE [SMOL_EXE]
# tiny (byte-level): chat refused with a clear error; generate -p - and -f FILE read the same text as -p TEXT.
# smol (SmolLM2-Instruct, ChatML): a piped conversation prints only the replies (no markup), the first
# equals `generate --chat`'s, the second turn finds the first in the KV caches, /save writes the
# conversation as JSON, /reset starts over (the same first reply again), -f FILE equals standard input,
# --stop ends a reply before its string, --system changes the system message.
set -u
tiny=$1
smol=${2:-}
pass=0
fail=0
ok() {
  if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$tiny" chat < /dev/null > "$dir/o" 2> "$dir/e"
rc=$?
ok "tiny: chat refused with exit 1 and the reason" '[ $rc = 1 ] && grep -q "byte-level network has no chat template" "$dir/e"'
printf 'Hello' | "$tiny" generate -p - -n 8 -t 0 > "$dir/a" 2> /dev/null
"$tiny" generate -p Hello -n 8 -t 0 > "$dir/b" 2> /dev/null
ok "tiny: generate -p - (standard input) == -p TEXT" 'cmp -s "$dir/a" "$dir/b" && [ -s "$dir/a" ]'
printf 'Hello' > "$dir/p.txt"
"$tiny" generate -f "$dir/p.txt" -n 8 -t 0 > "$dir/c" 2> /dev/null
ok "tiny: generate -f FILE == -p TEXT" 'cmp -s "$dir/a" "$dir/c"'
"$tiny" generate -f "$dir/none.txt" -n 8 > /dev/null 2> "$dir/e"
rc=$?
ok "tiny: generate -f MISSING: exit 1, the file named" '[ $rc = 1 ] && grep -q "none.txt" "$dir/e"'

if [ -n "$smol" ]; then
  Q1="What is the capital of France?"
  "$smol" generate --chat -p "$Q1" -t 0 -n 24 > "$dir/gen" 2> /dev/null
  printf '%s\nAnd the capital of Germany?\n/save %s\n/reset\n%s\n' "$Q1" "$dir/conv.json" "$Q1" |
    "$smol" chat -t 0 -n 24 > "$dir/chat" 2> "$dir/err"
  rc=$?
  ok "smol: a piped conversation ends with exit 0" '[ $rc = 0 ]'
  ok "smol: replies only, no template markup" '! grep -q "<|im_" "$dir/chat" && [ -s "$dir/chat" ]'
  ok "smol: generate --chat prints the reply alone, without markup" '! grep -q "<|im_" "$dir/gen" && [ -s "$dir/gen" ]'
  first=$(head -c "$(wc -c < "$dir/gen")" "$dir/chat")
  ok "smol: the first reply == generate --chat's" '[ "$first" = "$(cat "$dir/gen")" ]'
  ok "smol: three turns reported" '[ "$(grep -c "^\[turn" "$dir/err")" = 3 ]'
  reused=$(grep "^\[turn" "$dir/err" | sed -n 2p | sed 's/.*tokens, \([0-9]*\) already in the caches.*/\1/')
  prompt1=$(grep "^\[turn" "$dir/err" | sed -n 1p | sed 's/.*prompt \([0-9]*\) tokens.*/\1/')
  ok "smol: turn 2 finds turn 1 in the caches ($reused >= $prompt1 tokens)" '[ "${reused:-0}" -ge "${prompt1:-1}" ]'
  ok "smol: /save wrote the 4 messages (user, assistant, user, assistant) as JSON" \
    'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (len(d[\"messages\"]) == 4 and d[\"template\"] == \"ChatML\"))" "$dir/conv.json"'
  printf '%s\n' "$Q1" | "$smol" chat -t 0 -n 24 > "$dir/one" 2> /dev/null
  ok "smol: after /reset the same question gets the same reply" '[ "$(tail -n "$(wc -l < "$dir/one")" "$dir/chat")" = "$(cat "$dir/one")" ]'
  printf '%s\nAnd the capital of Germany?\n/save %s\n/reset\n%s\n' "$Q1" "$dir/conv2.json" "$Q1" > "$dir/turns.txt"
  "$smol" chat -t 0 -n 24 -f "$dir/turns.txt" > "$dir/chatf" 2> /dev/null
  ok "smol: chat -f FILE == the same turns on standard input" 'cmp -s "$dir/chat" "$dir/chatf"'
  word=$(awk '{print $2; exit}' "$dir/one")
  printf '%s\n' "$Q1" | "$smol" chat -t 0 -n 24 --stop "$word" > "$dir/stop" 2> /dev/null
  ok "smol: --stop '$word' (the reply's second word) ends the reply before it" \
    '[ -n "$word" ] && ! grep -qF -- "$word" "$dir/stop" && [ "$(cat "$dir/stop")" = "$(awk "{print \$1; exit}" "$dir/one") " ] || [ "$(cat "$dir/stop")" = "$(awk "{print \$1; exit}" "$dir/one")" ]'
  printf '%s\n' "$Q1" | "$smol" chat -t 0 -n 24 --system "Answer in French." > "$dir/sys" 2> /dev/null
  ok "smol: --system changes the reply" '! cmp -s "$dir/sys" "$dir/one"'
  printf 'hi\n/nonsense\n/help\n/quit\nnever sent\n' | "$smol" chat -t 0 -n 4 > /dev/null 2> "$dir/cmd"
  ok "smol: unknown commands are named, /quit ends before the next line" \
    'grep -q "unknown command" "$dir/cmd" && [ "$(grep -c "^\[turn" "$dir/cmd")" = 1 ]'
else
  echo "chat-test: no SmolLM2 executable given: the chat part skipped"
fi
echo "chat: $pass passed, $fail failed"
[ "$fail" = 0 ]
