/* parser.y: the bison grammar of the .lmn language. Builds the AST (ast.h); reports syntax errors in
 * gcc style (`expected '=' before 'llama'`, with a note at an unclosed bracket and a hint for common
 * slips), and recovers at the end of the statement so one run reports several. */
%define api.pure full
%define api.prefix {lmn_yy}
%define parse.error custom
%define parse.lac full
%locations
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "parse.h"
typedef void *yyscan_t;
typedef struct Num { long i; double f; int is_int; } Num;

/* What the scanner knows beyond ParseCtx (it is the scanner's extra data; lexer.l fills it). */
#define SCAN_MAX_OPEN 32
typedef struct ScanState {
  ParseCtx pc;
  Loc prev, cur;               /* the last two tokens returned to the parser */
  int cur_kind, prev_kind;     /* the token kinds of `cur` and `prev` (0 before the first token) */
  int stmt_kind;               /* the first token of the current statement */
  char cur_text[40];           /* the text of `cur`, truncated */
  char prev_text[40];          /* the text of `prev`, truncated */
  Loc open[SCAN_MAX_OPEN];     /* the open brackets, innermost last */
  char open_ch[SCAN_MAX_OPEN];
  int unclosed;                /* brackets left open where the scanner cut a statement short */
  int newline_in_brackets;     /* a newline was skipped inside brackets since the last token */
  int pending;                 /* a keyword held back by the scanner, returned next */
  Loc pending_loc;
  int err_line;                /* the line of the last syntax error (one per line) */
  int stop;                    /* a NUL byte was seen: the input ends */
} ScanState;
}

%code {
#define YYSTYPE LMN_YYSTYPE
#define YYLTYPE LMN_YYLTYPE
#include "lexer.h"

static void lmn_yyerror(YYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);
static Loc L(YYLTYPE l) {
  int len = l.first_line == l.last_line ? l.last_column - l.first_column + 1 : 1;
  return loc_make(l.first_line, l.first_column, len);
}
#define A (&ctx->prog->arena)
static NameRef name_ref(const char *s, YYLTYPE l) { NameRef n = {s, L(l), NULL}; return n; }
static NameRef *name_new(ParseCtx *ctx, const char *s, YYLTYPE l) {
  NameRef *n = arena_alloc(A, sizeof *n);
  *n = name_ref(s, l);
  return n;
}
static Value num_value(Num n, YYLTYPE l) {
  Value v = {.kind = n.is_int ? VAL_INT : VAL_FLOAT, .at = L(l), .i = n.i, .f = n.f};
  return v;
}
static Call *call_new(ParseCtx *ctx, const char *name, YYLTYPE l, int parens) {
  Call *c = arena_alloc(A, sizeof *c);
  c->name = name;
  c->at = L(l);
  c->has_parens = parens;
  return c;
}
/* The model statement of a file (or NULL), a block (or NULL: its architecture, settings and has_block are
 * copied) and options (or NULL). */
static Stmt *model_new(ParseCtx *ctx, YYLTYPE l, Call *file, const Stmt *block, const PtrList *opts) {
  Stmt *st = stmt_new(ctx->prog, ST_MODEL, L(l));
  st->source = file;
  if (block) {
    st->arch = block->arch;
    st->settings = block->settings;
    st->has_block = 1;
  }
  if (opts) st->model_opts = *opts;
  return st;
}
}

%union {
  char *s;
  Num num;
  Value val;
  Arg *arg;
  Call *call;
  EdgeExpr *edge;
  PtrList list;
  Setting *set;
  Stmt *stmt;
}

%token <s> IDENT "identifier"
%token <s> STRING "string"
%token <num> NUMBER "number"
%token ARROW "'->'" SHR "'>>'" NEWLINE "end of line"
%token NETWORK "'network'" MODEL "'model'" EDGE "'edge'" VERTEX "'vertex'" LAYERS "'layers'" OF "'of'"
%token EDGES "'edges'" AGGREGATE "'aggregate'" LOSS "'loss'"

%type <val> value
%type <arg> arg
%type <call> term call model_file
%type <edge> edge_expr
%type <list> args opt_args names options sizes sources hops settings model_opts
%type <set> setting model_opt
%type <s> key
%type <stmt> stmt model_spec block

%%

program: %empty | program line ;

line: NEWLINE
    | stmt end
    | error end { yyerrok; }
    ;

end: NEWLINE | ';' ;

stmt: NETWORK IDENT {
        $$ = stmt_new(ctx->prog, ST_NETWORK, L(@1));
        $$->name = name_ref($2, @2);
      }
    | MODEL IDENT '=' model_spec {
        $$ = $4;
        $$->at = L(@1);
        $$->name = name_ref($2, @2);
      }
    | EDGE IDENT '=' edge_expr {
        $$ = stmt_new(ctx->prog, ST_EDGE, L(@1));
        $$->name = name_ref($2, @2);
        $$->edge = $4;
      }
    | VERTEX names '=' IDENT options {
        $$ = stmt_new(ctx->prog, ST_VERTEX, L(@1));
        $$->names = $2;
        $$->model = name_ref($4, @4);
        $$->options = $5;
      }
    | LAYERS IDENT '=' '[' sizes ']' OF IDENT options opt_comma EDGES edge_expr {
        $$ = stmt_new(ctx->prog, ST_LAYERS, L(@1));
        $$->name = name_ref($2, @2);
        $$->sizes = $5;
        $$->model = name_ref($8, @8);
        $$->options = $9;
        $$->edge = $12;
      }
    | AGGREGATE IDENT {
        $$ = stmt_new(ctx->prog, ST_AGGREGATE, L(@1));
        $$->name = name_ref($2, @2);
      }
    | LOSS IDENT '=' call {
        $$ = stmt_new(ctx->prog, ST_LOSS, L(@1));
        $$->name = name_ref($2, @2);
        $$->loss = $4;
      }
    | LOSS IDENT '=' NUMBER '*' call {
        $$ = stmt_new(ctx->prog, ST_LOSS, L(@1));
        $$->name = name_ref($2, @2);
        $$->weight = $4.f;
        $$->has_weight = 1;
        $$->weight_at = L(@4);
        $$->loss = $6;
      }
    | sources ARROW hops {
        $$ = stmt_new(ctx->prog, ST_CHAIN, L(@1));
        $$->sources = $1;
        $$->hops = $3;
      }
    ;

/* A model: a file, a file with an architecture block, or a block alone, each optionally followed by options
 * `KEY VALUE` (`weights q8_0`, `tokenizer "FILE"`). The key is a plain name, so `weights` and `tokenizer`
 * stay usable as names elsewhere; sema checks the keys, the values and which models take which option. Each
 * form is spelt out with and without options: after the file, a name may start either the block or an option,
 * and only the token after it tells which, so nothing may be reduced before it. */
model_spec: model_file { $$ = model_new(ctx, @1, $1, NULL, NULL); }
    | model_file model_opts { $$ = model_new(ctx, @1, $1, NULL, &$2); }
    | model_file block { $$ = model_new(ctx, @1, $1, $2, NULL); }
    | model_file block model_opts { $$ = model_new(ctx, @1, $1, $2, &$3); }
    | block { $$ = model_new(ctx, @1, NULL, $1, NULL); }
    | block model_opts { $$ = model_new(ctx, @1, NULL, $1, &$2); }
    ;

/* `llama { settings }`: a statement that only holds the architecture and the settings until model_new(). */
block: IDENT '{' settings '}' {
        $$ = arena_alloc(A, sizeof *$$);
        $$->arch = name_ref($1, @1);
        $$->settings = $3;
        $$->has_block = 1;
      }
    ;

model_file: IDENT '(' opt_args ')' {
        $$ = call_new(ctx, $1, @1, 1);
        $$->args = $3;
      }
    ;

model_opts: model_opt { memset(&$$, 0, sizeof $$); plist_push(A, &$$, $1); }
    | model_opts model_opt { $$ = $1; plist_push(A, &$$, $2); }
    ;

model_opt: IDENT IDENT {
        $$ = arena_alloc(A, sizeof *$$);
        $$->key = $1;
        $$->at = L(@1);
        $$->has_value = 1;
        $$->value.kind = VAL_IDENT;
        $$->value.s = $2;
        $$->value.at = L(@2);
      }
    | IDENT STRING {
        $$ = arena_alloc(A, sizeof *$$);
        $$->key = $1;
        $$->at = L(@1);
        $$->has_value = 1;
        $$->value.kind = VAL_STRING;
        $$->value.s = $2;
        $$->value.at = L(@2);
      }
    ;

settings: %empty { memset(&$$, 0, sizeof $$); }
    | settings setting { $$ = $1; plist_push(A, &$$, $2); }
    | settings ',' { $$ = $1; }
    ;

setting: key {
        $$ = arena_alloc(A, sizeof *$$);
        $$->key = $1;
        $$->at = L(@1);
      }
    | key NUMBER {
        $$ = arena_alloc(A, sizeof *$$);
        $$->key = $1;
        $$->at = L(@1);
        $$->has_value = 1;
        $$->value = num_value($2, @2);
      }
    | key STRING {
        $$ = arena_alloc(A, sizeof *$$);
        $$->key = $1;
        $$->at = L(@1);
        $$->has_value = 1;
        $$->value.kind = VAL_STRING;
        $$->value.s = $2;
        $$->value.at = L(@2);
      }
    ;

key: IDENT { $$ = $1; } | LAYERS { $$ = "layers"; } ;

edge_expr: term {
        $$ = arena_alloc(A, sizeof *$$);
        $$->at = L(@1);
        plist_push(A, &$$->terms, $1);
      }
    | edge_expr SHR term {
        $$ = $1;
        $$->at.len = @3.last_line == $$->at.line ? @3.last_column - $$->at.col + 1 : $$->at.len;
        plist_push(A, &$$->terms, $3);
      }
    ;

term: IDENT { $$ = call_new(ctx, $1, @1, 0); }
    | call { $$ = $1; }
    ;

call: IDENT '(' opt_args ')' {
        $$ = call_new(ctx, $1, @1, 1);
        $$->args = $3;
      }
    ;

opt_args: %empty { memset(&$$, 0, sizeof $$); } | args { $$ = $1; } ;

args: arg { memset(&$$, 0, sizeof $$); plist_push(A, &$$, $1); }
    | args ',' arg { $$ = $1; plist_push(A, &$$, $3); }
    ;

arg: value {
        $$ = arena_alloc(A, sizeof *$$);
        $$->kind = ARG_VALUE;
        $$->at = L(@1);
        $$->a = $1;
      }
    | IDENT value {
        $$ = arena_alloc(A, sizeof *$$);
        $$->kind = ARG_KEYWORD;
        $$->at = L(@1);
        $$->key = $1;
        $$->a = $2;
      }
    | value ARROW value {
        $$ = arena_alloc(A, sizeof *$$);
        $$->kind = ARG_ARROW;
        $$->at = L(@1);
        $$->at.len = @3.last_line == @1.first_line ? @3.last_column - @1.first_column + 1 : 1;
        $$->a = $1;
        $$->b = $3;
      }
    ;

value: IDENT { memset(&$$, 0, sizeof $$); $$.kind = VAL_IDENT; $$.s = $1; $$.at = L(@1); }
    | NUMBER { $$ = num_value($1, @1); }
    | STRING { memset(&$$, 0, sizeof $$); $$.kind = VAL_STRING; $$.s = $1; $$.at = L(@1); }
    | call { memset(&$$, 0, sizeof $$); $$.kind = VAL_CALL; $$.call = $1; $$.s = $1->name; $$.at = L(@1); }
    ;

names: IDENT { memset(&$$, 0, sizeof $$); plist_push(A, &$$, name_new(ctx, $1, @1)); }
    | names ',' IDENT { $$ = $1; plist_push(A, &$$, name_new(ctx, $3, @3)); }
    ;

options: %empty { memset(&$$, 0, sizeof $$); }
    | options IDENT { $$ = $1; plist_push(A, &$$, name_new(ctx, $2, @2)); }
    | options IDENT NUMBER {
        $$ = $1;
        NameRef *n = name_new(ctx, $2, @2);
        Value *v = arena_alloc(A, sizeof *v);
        *v = num_value($3, @3);
        n->arg = v;
        plist_push(A, &$$, n);
      }
    ;

opt_comma: %empty | ',' ;

sizes: NUMBER {
        memset(&$$, 0, sizeof $$);
        Value *v = arena_alloc(A, sizeof *v);
        *v = num_value($1, @1);
        plist_push(A, &$$, v);
      }
    | sizes ',' NUMBER {
        $$ = $1;
        Value *v = arena_alloc(A, sizeof *v);
        *v = num_value($3, @3);
        plist_push(A, &$$, v);
      }
    ;

sources: IDENT { memset(&$$, 0, sizeof $$); plist_push(A, &$$, name_new(ctx, $1, @1)); }
    | sources '+' IDENT { $$ = $1; plist_push(A, &$$, name_new(ctx, $3, @3)); }
    ;

hops: edge_expr { memset(&$$, 0, sizeof $$); plist_push(A, &$$, $1); }
    | hops ARROW edge_expr { $$ = $1; plist_push(A, &$$, $3); }
    ;

%%

static void lmn_yyerror(YYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg) {
  (void)scanner;
  diag_error(ctx->diag, L(*loc), "%s", msg);
}

/* ---- syntax errors --------------------------------------------------------------------------- */

/* How a token kind reads in "expected ...". */
static const char *sym_text(yysymbol_kind_t k) {
  switch (k) {
    case YYSYMBOL_IDENT: return "a name";
    case YYSYMBOL_NUMBER: return "a number";
    case YYSYMBOL_STRING: return "a string";
    case YYSYMBOL_NEWLINE: return "end of line";
    case YYSYMBOL_YYEOF: return "end of input";
    default: return yysymbol_name(k);
  }
}

/* The keywords are declared in one %token run, from 'network' to 'loss'. */
static int is_keyword(yysymbol_kind_t k) { return k >= YYSYMBOL_NETWORK && k <= YYSYMBOL_LOSS; }

static int has_sym(const yysymbol_kind_t *exp, int n, yysymbol_kind_t k) {
  for (int i = 0; i < n; i++)
    if (exp[i] == k) return 1;
  return 0;
}

static int has_name(const yysymbol_kind_t *exp, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(yysymbol_name(exp[i]), name)) return 1;
  return 0;
}

/* The tokens worth naming: ';' goes with end of line, keywords accepted as names go with a name. */
static int useful_expected(const yysymbol_kind_t *all, int n, yysymbol_kind_t *out) {
  int m = 0, nl = has_sym(all, n, YYSYMBOL_NEWLINE), id = has_sym(all, n, YYSYMBOL_IDENT);
  for (int i = 0; i < n; i++) {
    if ((nl && !strcmp(yysymbol_name(all[i]), "';'")) || (id && is_keyword(all[i]))) continue;
    if (all[i] == YYSYMBOL_YYEOF && nl) continue;
    out[m++] = all[i];
  }
  return m;
}

/* "a name, '}' or ','" */
static void expected_list(const yysymbol_kind_t *exp, int n, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < n && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                            sym_text(exp[i]));
}

/* "'llama'", "number 1.5", "string \"x\"", "end of line": the token the parser choked on. */
static void token_text(const ScanState *st, yysymbol_kind_t tok, char *buf, size_t size) {
  const char *dots = strlen(st->cur_text) + 1 >= sizeof st->cur_text ? "..." : "";
  if (tok == YYSYMBOL_NEWLINE || tok == YYSYMBOL_YYEOF)
    snprintf(buf, size, "end of %s", st->pc.eof_newline || tok == YYSYMBOL_YYEOF ? "input" : "line");
  else if (tok == YYSYMBOL_NUMBER)
    snprintf(buf, size, "number %s%s", st->cur_text, dots);
  else if (tok == YYSYMBOL_STRING)
    snprintf(buf, size, "string %s%s", st->cur_text, dots);
  else
    snprintf(buf, size, "'%s%s'", st->cur_text, dots);
}

static char closer(char open) { return open == '(' ? ')' : open == '[' ? ']' : '}'; }

/* The innermost bracket still open at the error, or -1. */
static int open_bracket_index(const ScanState *st, yysymbol_kind_t tok) {
  const char *name = yysymbol_name(tok);
  int opens = !strcmp(name, "'('") || !strcmp(name, "'['") || !strcmp(name, "'{'"); /* the lookahead itself */
  int depth = tok == YYSYMBOL_NEWLINE && st->unclosed ? st->unclosed : st->pc.depth - opens;
  return depth > 0 && depth <= SCAN_MAX_OPEN ? depth - 1 : -1;
}

/* A model statement: a `weights` without its format, an option written before the block, or the forms. */
static void model_hint(const ScanState *st, Diag *d, yysymbol_kind_t tok) {
  int value = tok == YYSYMBOL_IDENT || tok == YYSYMBOL_STRING;
  if (st->prev_kind == IDENT && !strcmp(st->prev_text, "weights") && !value)
    diag_hint(d, "'weights' takes a format: file, f32, f16, bf16, q8_0, q4_0 or q4_1");
  else if (st->prev_kind == IDENT && !strcmp(st->prev_text, "tokenizer") && !value)
    diag_hint(d, "'tokenizer' takes the path of a GGUF file or a Hugging Face directory: tokenizer \"FILE\"");
  else if (st->prev_kind == IDENT && !strcmp(yysymbol_name(tok), "'{'"))
    diag_hint(d, "options come after the architecture block: gguf(\"FILE\") llama { ... } weights q8_0");
  else
    diag_hint(d, "a model reads 'model NAME = llama { ... }' or 'model NAME = gguf(\"FILE\") [weights FORMAT]'");
}

static void statement_hint(const ScanState *st, Diag *d, yysymbol_kind_t tok) {
  switch (st->stmt_kind) {
    case MODEL: model_hint(st, d, tok); break;
    case EDGE: diag_hint(d, "an edge type reads 'edge NAME = MODULE >> MODULE ...'"); break;
    case VERTEX:
      diag_hint(d, "vertices read 'vertex NAME, NAME = MODEL [shared|unshared] [frozen|trainable]'");
      break;
    case LAYERS: diag_hint(d, "layers read 'layers NAME = [1, 4, 1] of MODEL [OPTIONS], edges EDGE'"); break;
    case LOSS: diag_hint(d, "a loss reads 'loss NAME = cross_entropy(OUTPUT, next(tokens))'"); break;
    case AGGREGATE: diag_hint(d, "aggregation reads 'aggregate mean' or 'aggregate sum'"); break;
    case NETWORK: diag_hint(d, "the first line reads 'network NAME'"); break;
    default: break;
  }
}

/* The keywords that start a statement: a misspelt one ("vertx a, b = m") reads as the start of a chain. */
static const char *const statement_words[] = {"network", "model", "edge", "vertex", "layers", "aggregate", "loss"};
#define N_STATEMENT_WORDS ((int)(sizeof statement_words / sizeof *statement_words))

/* Adds the note or hint that explains the usual cause of this syntax error; `missing` is the bracket the
 * message said was expected, if that is all it said. */
static void syntax_help(const ScanState *st, Diag *d, yysymbol_kind_t tok, const yysymbol_kind_t *exp, int n,
                        const char *missing) {
  int ob = open_bracket_index(st, tok);
  const char *near;
  if (ob >= 0 && missing) {
    diag_note(d, st->open[ob], "to match this '%c'", st->open_ch[ob]);
  } else if (ob >= 0 && st->open_ch[ob] == '{') {
    diag_hint(d, "settings read 'KEY VALUE' or 'FLAG', e.g. { dim 576  layers 30  tied }");
  } else if (is_keyword(tok) && has_sym(exp, n, YYSYMBOL_IDENT)) {
    diag_hint(d, "'%s' is a keyword and cannot be used as a name", st->cur_text);
  } else if (st->stmt_kind == IDENT && tok == YYSYMBOL_IDENT && st->prev_kind == IDENT &&
             (near = closest_name(st->prev_text, statement_words, N_STATEMENT_WORDS))) {
    diag_hint(d, "did you mean '%s'? a statement starting with a name is a chain ('SOURCE -> ... -> TARGET')",
              near);
  } else if (st->stmt_kind == IDENT && has_sym(exp, n, YYSYMBOL_ARROW)) {
    diag_hint(d, "a chain reads 'SOURCE -> MODULE -> ... -> TARGET'; the modules of one edge are joined "
              "with '>>'");
  } else {
    statement_hint(st, d, tok);
  }
}

/* Where a syntax error is shown: at the token, or just past the last token when the line or input ended. */
static Loc error_loc(const yypcontext_t *yyctx, const ScanState *st, int at_end) {
  if (at_end && st->prev.line > 0) return loc_make(st->prev.line, st->prev.col + st->prev.len, 1);
  return L(*yypcontext_location(yyctx));
}

/* Reports a syntax error in gcc style: what was expected, before which token, and why. A missing closing
 * bracket is named alone; a list of more than five choices is left out. */
static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, ParseCtx *ctx) {
  ScanState *st = lmn_yyget_extra(scanner);
  yysymbol_kind_t tok = yypcontext_token(yyctx), all[YYNTOKENS], exp[YYNTOKENS];
  int n_all = yypcontext_expected_tokens(yyctx, all, YYNTOKENS), n = useful_expected(all, n_all, exp);
  int at_end = tok == YYSYMBOL_NEWLINE || tok == YYSYMBOL_YYEOF, ob = open_bracket_index(st, tok);
  Loc at = error_loc(yyctx, st, at_end);
  st->err_line = at.line;
  char what[64], list[256] = "", want[8] = "";
  token_text(st, tok, what, sizeof what);
  if (ob >= 0) snprintf(want, sizeof want, "'%c'", closer(st->open_ch[ob]));
  if (has_sym(all, n_all, YYSYMBOL_NETWORK)) {
    diag_error(ctx->diag, at, "unexpected %s at the start of a statement", what);
    diag_hint(ctx->diag, "a statement starts with network, model, edge, vertex, layers, aggregate, loss or a "
              "chain 'SOURCE -> ...'");
    return 0;
  }
  int bracket = (tok == YYSYMBOL_NEWLINE && st->unclosed && ob >= 0) ||
                ((n > 5 || n == 1) && has_name(exp, n, want));
  if (bracket) snprintf(list, sizeof list, "%s", want);
  else if (n > 0 && n <= 5) expected_list(exp, n, list, sizeof list);
  if (list[0]) diag_error(ctx->diag, at, "expected %s %s %s", list, at_end ? "at" : "before", what);
  else diag_error(ctx->diag, at, "unexpected %s", what);
  syntax_help(st, ctx->diag, tok, exp, n, bracket ? want : NULL);
  return 0;
}
