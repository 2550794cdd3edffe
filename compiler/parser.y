/* parser.y: the bison grammar of the .lmn language. Builds the AST (ast.h); reports syntax errors in
 * gcc style with what was expected, and recovers at the end of the statement so one run reports several. */
%define api.pure full
%define api.prefix {lmn_yy}
%define parse.error detailed
%locations
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "parse.h"
typedef void *yyscan_t;
typedef struct Num { long i; double f; int is_int; } Num;
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
static NameRef name_ref(const char *s, YYLTYPE l) { NameRef n = {s, L(l)}; return n; }
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
%type <call> term call
%type <edge> edge_expr
%type <list> args opt_args names options sizes sources hops settings
%type <set> setting
%type <s> key
%type <stmt> stmt model_spec

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

model_spec: IDENT '(' opt_args ')' {
        $$ = stmt_new(ctx->prog, ST_MODEL, L(@1));
        $$->source = call_new(ctx, $1, @1, 1);
        $$->source->args = $3;
      }
    | IDENT '(' opt_args ')' IDENT '{' settings '}' {
        $$ = stmt_new(ctx->prog, ST_MODEL, L(@1));
        $$->source = call_new(ctx, $1, @1, 1);
        $$->source->args = $3;
        $$->arch = name_ref($5, @5);
        $$->settings = $7;
        $$->has_block = 1;
      }
    | IDENT '{' settings '}' {
        $$ = stmt_new(ctx->prog, ST_MODEL, L(@1));
        $$->arch = name_ref($1, @1);
        $$->settings = $3;
        $$->has_block = 1;
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
  Loc at = L(*loc);
  if (strncmp(msg, "syntax error, ", 14) == 0) msg += 14;
  diag_error(ctx->diag, at, "%s", msg);
}
