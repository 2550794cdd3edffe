/* repl.c: the loop of `NAME chat` around the conversation API (lmn_chat_*): reading turns, the slash
 * commands, printing replies as they come, and Ctrl-C, which stops a reply rather than the program. */
#include "repl.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

typedef struct printer {
  FILE *out;
} printer;

static int print_text(void *ctx, const char *text, size_t len) {
  printer *p = ctx;
  fwrite(text, 1, len, p->out);
  fflush(p->out);
  return interrupted != 0;
}

/* The next turn: lines joined while they end in a backslash; NULL at the end of the input. */
static char *read_turn(FILE *in, int interactive) {
  char *turn = NULL, *line = NULL;
  size_t tlen = 0, cap = 0;
  ssize_t n;
  if (interactive) fputs("> ", stderr);
  while ((n = getline(&line, &cap, in)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    int more = n > 0 && line[n - 1] == '\\';
    if (more) line[--n] = '\0';
    char *t = realloc(turn, tlen + (size_t)n + 2);
    if (!t) break;
    turn = t;
    memcpy(turn + tlen, line, (size_t)n);
    tlen += (size_t)n;
    if (more) turn[tlen++] = '\n';
    turn[tlen] = '\0';
    if (!more) break;
    if (interactive) fputs(". ", stderr);
  }
  free(line);
  if (n < 0 && !turn) return NULL;
  return turn ? turn : calloc(1, 1);
}

static void print_stats(const lmn_chat *chat) {
  lmn_chat_stats st;
  lmn_chat_last_stats(chat, &st);
  double tps = st.decode_s > 0 ? st.reply_tokens / st.decode_s : 0;
  fprintf(stderr,
          "[turn %d | prompt %d tokens, %d already in the caches, %d fed in %.1f ms | %d tokens at %.1f "
          "tok/s%s]\n",
          lmn_chat_messages(chat) / 2, st.prompt_tokens, st.reused_tokens,
          st.prompt_tokens - st.reused_tokens, 1e3 * st.prefill_s, st.reply_tokens, tps,
          st.finish == LMN_CHAT_FINISH_CANCELLED ? " | stopped"
          : st.finish == LMN_CHAT_FINISH_LENGTH  ? " | at the token limit"
          : st.finish == LMN_CHAT_FINISH_CONTEXT ? " | the context is full"
                                                 : "");
}

/* A slash command; 1 when it ends the loop. */
static int command(lmn_chat *chat, const char *line, const char *system) {
  lmn_err err = {{0}};
  if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return 1;
  if (!strcmp(line, "/reset")) {
    if (lmn_chat_reset(chat, system, &err))
      fprintf(stderr, "error: %s\n", err.msg);
    else
      fprintf(stderr, "[a new conversation]\n");
  } else if (!strncmp(line, "/save ", 6) && line[6]) {
    if (lmn_chat_save(chat, line + 6, &err))
      fprintf(stderr, "error: %s\n", err.msg);
    else
      fprintf(stderr, "[saved %d messages to %s]\n", lmn_chat_messages(chat), line + 6);
  } else {
    fprintf(stderr, "%s: /reset (start over), /save FILE (the conversation as JSON), /quit\n",
            strcmp(line, "/help") ? "unknown command; commands are" : "commands");
  }
  return 0;
}

int lmn_chat_repl(lmn_chat *chat, FILE *in, int interactive, const char *system, const lmn_chat_opts *opts,
                  FILE *out, lmn_err *err) {
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old); /* no SA_RESTART: Ctrl-C at the prompt ends the read */
  printer p = {out};
  lmn_chat_opts o = *opts;
  o.on_text = print_text;
  o.ctx = &p;
  if (interactive)
    fprintf(stderr, "[chat with %s's template; /help for commands, Ctrl-D to end]\n",
            lmn_chat_template_name(chat));
  int rc = 0;
  char *turn;
  while (!rc && (interactive || !interrupted) && (turn = read_turn(in, interactive))) {
    interrupted = 0;
    int done = turn[0] == '/' ? command(chat, turn, system) : 0;
    if (turn[0] && turn[0] != '/') {
      rc = lmn_chat_send(chat, turn, &o, NULL, err);
      fputc('\n', out);
      fflush(out);
      if (!rc) print_stats(chat);
      if (rc && interactive) fprintf(stderr, "error: %s\n", err->msg), rc = 0;
    }
    free(turn);
    if (done) break;
  }
  sigaction(SIGINT, &old, NULL);
  return rc;
}
