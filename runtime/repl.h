/* repl.h: the conversation loop of `NAME chat`: one user turn per line (a line ending in a backslash goes
 * on), the reply printed as it comes, and the commands /reset, /save FILE, /help and /quit. */
#ifndef LMN_REPL_H
#define LMN_REPL_H

#include <stdio.h>

#include "lmn.h"

/* Runs the conversation chat on the lines of in until its end or /quit; prompts with "> " when interactive.
 * Replies go to out, notes and each turn's figures to stderr. SIGINT during a reply stops that reply; at
 * the prompt it ends the loop. */
int lmn_chat_repl(lmn_chat *chat, FILE *in, int interactive, const char *system, const lmn_chat_opts *opts,
                  FILE *out, lmn_err *err);

#endif
