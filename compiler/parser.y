/* parser.y - the grammar of a .net file: tokens (lexer.l) to AST (ast.h).
 *
 * Input: a Source of exactly src->len bytes (NUL bytes allowed). Output: an
 * AstFile holding every statement that parsed, each node with its SrcSpan;
 * syntax errors go to the DiagSink, at most one per token position, and the
 * parse stops when the sink is full.
 *
 * Shape: a pure (reentrant) LALR parser over a reentrant flex scanner; the
 * shared ParseState travels as %parse-param. Chains (a -> f -> g) and sums
 * (a + b + c) are left-recursive rules that append to a growable vector, so
 * a 100,000-link chain costs neither recursion nor quadratic time. The only
 * nesting is through ( and [, which the scanner caps at AST_MAX_DEPTH: bison's
 * stack and every recursive walk over the AST stay bounded.
 *
 * Error recovery, in the order bison tries it:
 *  - a statement that is complete but not followed by ';' ends at a "line
 *    boundary" (next token on a new line, a statement keyword, '}' or end of
 *    file): the rule `semi: error` stands in for the ';', the error reads
 *    "expected ';' after statement" and the statement is kept;
 *  - otherwise the statement is dropped and tokens are skipped to the next
 *    ';' or '}' (rules `error ';'` and `error '}'` at each statement level);
 *  - an error in a block header skips to the block's '{' and parses its body.
 * Bison reports nothing more until three tokens were shifted, so one mistake
 * gives one message.
 */

%define api.pure full
%define api.prefix {nc}
%define api.location.type {SrcSpan}
%define parse.error custom
%locations
%expect 0
%parse-param {ParseState *ps}
%lex-param {ParseState *ps}

%code requires {
#include <setjmp.h>

#include "ast.h"

typedef Vec(AstNode *) NodeVec;
typedef Vec(AstArg) ArgVec;
typedef Vec(AstStmt *) StmtVec;
typedef Vec(AstDim) DimVec;
typedef struct ParamName { const char *name; SrcSpan sp; } ParamName;
typedef Vec(ParamName) ParamVec;

/* A chain while it is being built: head -> calls[0] -> calls[1] ... */
typedef struct ChainBuild { AstNode *head; NodeVec calls; } ChainBuild;

/* State shared by the scanner (lexer.l) and the parser for one parse_file(). */
typedef struct ParseState {
    const Source *src;
    Arena *a;
    DiagSink *d;
    void *scanner;            /* the flex scanner (yyscan_t) */
    void *flex_blocks;        /* every block flex allocated (lexer.l) */
    jmp_buf fatal;            /* flex's fatal errors (out of memory) land here */
    int line, col;            /* scanner position, 1-based */
    size_t off;               /* byte offset of the scanner position */
    size_t tok_off, tok_len;  /* the last token returned, for messages */
    int tok;                  /* its token kind */
    SrcSpan prev_sp, cur_sp;  /* the token before the lookahead, the lookahead */
    SrcSpan last_err_sp;      /* where the last error was reported */
    size_t bad_end;           /* byte offset just past the last run of bad characters */
    bool bad_seen;            /* bad_end is valid */
    int depth;                /* open ( and [ */
    bool at_eof;
    bool stopped;             /* a fatal error ends the parse: report nothing more */
    bool oom;                 /* "out of memory" was reported */
    bool semi_boundary;       /* the last syntax error was a ';' missing at a boundary */
    StmtVec stmts;
} ParseState;
}

%code provides {
/* lexer.l */
bool lex_open(ParseState *ps);
void lex_close(ParseState *ps);
int lex_next(NCSTYPE *lv, NCLTYPE *lloc, ParseState *ps);

/* Reports an error unless one was already reported at sp's position. */
void parse_error(ParseState *ps, SrcSpan sp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports "out of memory" once and stops the parse. */
void parse_oom(ParseState *ps, SrcSpan sp);
}

%code {
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

/* Bison's own stack goes through the fault-injection door as well. */
#define YYMALLOC netc_malloc
#define YYFREE free

/* Spans join the first and last symbol; an empty rule gets an empty span
 * at the end of what precedes it. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                        \
    do {                                                                   \
        if (N)                                                             \
            (Cur) = span_join(YYRHSLOC(Rhs, 1), YYRHSLOC(Rhs, N));         \
        else                                                               \
            (Cur) = span_end(YYRHSLOC(Rhs, 0));                            \
    } while (0)

/* In actions: allocation failed -> report once, stop. */
#define OK(x)                                                              \
    do {                                                                   \
        if (!(x)) {                                                        \
            parse_oom(ps, ps->cur_sp);                                     \
            YYABORT;                                                       \
        }                                                                  \
    } while (0)

static int nclex(NCSTYPE *lv, NCLTYPE *lloc, ParseState *ps)
{
    return lex_next(lv, lloc, ps);
}

static void ncerror(NCLTYPE *lloc, ParseState *ps, const char *msg)
{
    /* Only bison's "memory exhausted" comes here (parse.error custom). */
    (void)msg;
    parse_oom(ps, *lloc);
}

static SrcSpan span_end(SrcSpan sp)
{
    sp.line = sp.end_line;
    sp.col = sp.end_col;
    return sp;
}

static AstNode *node_new(ParseState *ps, AstKind kind, SrcSpan sp)
{
    AstNode *n = arena_alloc(ps->a, sizeof *n);
    if (n) {
        n->kind = kind;
        n->sp = sp;
    }
    return n;
}

static AstStmt *stmt_new(ParseState *ps, AstStmtKind kind, SrcSpan sp,
                         const char *name, SrcSpan name_sp)
{
    AstStmt *s = arena_alloc(ps->a, sizeof *s);
    if (s) {
        s->kind = kind;
        s->sp = sp;
        s->name = name;
        s->name_sp = name_sp;
    }
    return s;
}

/* A setting or statement whose payload is one call. */
static AstStmt *stmt_call(ParseState *ps, AstStmtKind kind, SrcSpan sp, AstNode *call)
{
    AstStmt *s = stmt_new(ps, kind, sp, NULL, (SrcSpan){0});
    if (s)
        s->setting.call = call;
    return s;
}

static AstStmt *stmt_int(ParseState *ps, AstStmtKind kind, SrcSpan sp, const AstNode *num)
{
    AstStmt *s = stmt_new(ps, kind, sp, NULL, (SrcSpan){0});
    if (s) {
        s->int_setting.value = num->num.ival;
        s->int_setting.value_sp = num->sp;
    }
    return s;
}

/* chain = primary { "->" call }: a bare primary stays itself. */
static AstNode *chain_finish(ParseState *ps, const ChainBuild *c)
{
    if (c->calls.len == 0)
        return c->head;
    AstNode *last = c->calls.items[c->calls.len - 1];
    AstNode *n = node_new(ps, AST_CHAIN, span_join(c->head->sp, last->sp));
    if (n) {
        n->chain.head = c->head;
        n->chain.calls = c->calls.items;
        n->chain.ncalls = (int)c->calls.len;
    }
    return n;
}

/* expr = chain { "+" chain }: a single term stays itself. */
static AstNode *sum_finish(ParseState *ps, const NodeVec *terms)
{
    if (terms->len == 1)
        return terms->items[0];
    SrcSpan sp = span_join(terms->items[0]->sp, terms->items[terms->len - 1]->sp);
    AstNode *n = node_new(ps, AST_SUM, sp);
    if (n) {
        n->sum.terms = terms->items;
        n->sum.nterms = (int)terms->len;
    }
    return n;
}

static AstNode *call_new(ParseState *ps, SrcSpan sp, const char *name, SrcSpan name_sp,
                         bool parens, const ArgVec *args)
{
    AstNode *n = node_new(ps, AST_CALL, sp);
    if (n) {
        n->call.name = name;
        n->call.name_sp = name_sp;
        n->call.has_parens = parens;
        n->call.args = args ? args->items : NULL;
        n->call.nargs = args ? (int)args->len : 0;
    }
    return n;
}

/* number = "-" ( INT | FLOAT ): negates the scanner's node in place. */
static bool number_negate(ParseState *ps, AstNode *n, SrcSpan minus_sp)
{
    n->num.value = -n->num.value;
    n->num.ival = -n->num.ival;   /* ival <= INT64_MAX: cannot overflow */
    n->sp = span_join(minus_sp, n->sp);
    n->num.text = arena_printf(ps->a, "-%s", n->num.text);
    return n->num.text != NULL;
}

static AstStmt *block_new(ParseState *ps, SrcSpan sp, const char *name, SrcSpan name_sp,
                          const ParamVec *params, const StmtVec *body)
{
    AstStmt *s = stmt_new(ps, STMT_BLOCK, sp, name, name_sp);
    if (!s)
        return NULL;
    size_t np = params->len;
    s->block.params = arena_array(ps->a, np ? np : 1, sizeof *s->block.params);
    s->block.param_sps = arena_array(ps->a, np ? np : 1, sizeof *s->block.param_sps);
    if (!s->block.params || !s->block.param_sps)
        return NULL;
    for (size_t i = 0; i < np; i++) {
        s->block.params[i] = params->items[i].name;
        s->block.param_sps[i] = params->items[i].sp;
    }
    s->block.nparams = (int)np;
    s->block.body = body->items;
    s->block.nbody = (int)body->len;
    return s;
}

}

%union {
    const char *str;
    AstNode *node;
    AstStmt *stmt;
    AstArg arg;
    NodeVec nodes;
    ArgVec args;
    StmtVec stmts;
    DimVec dims;
    ParamVec params;
    ChainBuild chain;
    bool ok;
}

%token <str> IDENT "identifier"
%token <node> INT "integer" FLOAT "number" STRING "string"
%token ARROW "'->'"
%token <str> MODEL "'model'" INPUT "'input'" TARGET "'target'" PREPROCESS "'preprocess'"
%token <str> DEFAULT "'default'" BLOCK "'block'" LOSS "'loss'" WEIGHT "'weight'"
%token <str> OUTPUT "'output'" TRAIN "'train'" DATA "'data'" BATCH "'batch'"
%token <str> EPOCHS "'epochs'" SEED "'seed'" OPTIMIZER "'optimizer'"
%token <str> SCHEDULE "'schedule'" REGULARIZE "'regularize'" AUGMENT "'augment'" MIX "'mix'"

%type <str> name
%type <node> expr primary call operand number
%type <nodes> sum operands calls
%type <chain> chain
%type <args> args
%type <arg> arg
%type <stmt> stmt bind setting
%type <stmts> bind_list block_body settings
%type <dims> dims
%type <params> params
%type <ok> semi

%%

/* file = { item } */
file: %empty
    | file item
    ;

item: stmt              { if ($1) OK(vec_push(ps->a, &ps->stmts, $1)); }
    | error ';'         { yyerrok; }
    | error '}'         { yyerrok; }
    ;

/* The ';' ending a statement; `error` stands in for a missing one. */
semi: ';'               { $$ = true; }
    | error             { $$ = ps->semi_boundary; ps->semi_boundary = false;
                          @$ = span_end(ps->prev_sp); @$.end_col = @$.col;
                          /* Only a ';' was missing: report the next error too. */
                          if ($$) yyerrok; }
    ;

stmt
    /* "model" IDENT ";" */
    : MODEL name semi
        { $$ = NULL; if ($3) OK($$ = stmt_new(ps, STMT_MODEL, span_join(@1, @3), $2, @2)); }
    /* "input" IDENT "[" INT { "," INT } "]" ";" */
    | INPUT name '[' dims ']' semi
        { $$ = NULL;
          if ($6) {
              OK($$ = stmt_new(ps, STMT_INPUT, span_join(@1, @6), $2, @2));
              $$->input.dims = $4.items;
              $$->input.ndims = (int)$4.len;
          } }
    /* "target" IDENT call [ "=" call ] ";" */
    | TARGET name call semi
        { $$ = NULL;
          if ($4) {
              OK($$ = stmt_new(ps, STMT_TARGET, span_join(@1, @4), $2, @2));
              $$->target.kind = $3;
          } }
    | TARGET name call '=' call semi
        { $$ = NULL;
          if ($6) {
              OK($$ = stmt_new(ps, STMT_TARGET, span_join(@1, @6), $2, @2));
              $$->target.kind = $3;
              $$->target.derive = $5;
          } }
    /* "preprocess" call ";" */
    | PREPROCESS call semi
        { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_PREPROCESS, span_join(@1, @3), $2)); }
    /* "default" IDENT call ";" */
    | DEFAULT name call semi
        { $$ = NULL;
          if ($4) {
              OK($$ = stmt_new(ps, STMT_DEFAULT, span_join(@1, @4), $2, @2));
              $$->deflt.call = $3;
          } }
    /* "block" IDENT "(" [ IDENT { "," IDENT } ] ")" "{" { bind } "}" */
    | BLOCK name '(' ')' block_body
        { OK($$ = block_new(ps, @$, $2, @2, &(ParamVec){0}, &$5)); }
    | BLOCK name '(' params ')' block_body
        { OK($$ = block_new(ps, @$, $2, @2, &$4, &$6)); }
    | BLOCK error block_body        { $$ = NULL; }
    | BLOCK error ';'               { $$ = NULL; }
    | bind
    /* "loss" call [ "weight" number ] ";" */
    | LOSS call semi
        { $$ = NULL;
          if ($3) {
              OK($$ = stmt_new(ps, STMT_LOSS, span_join(@1, @3), NULL, (SrcSpan){0}));
              $$->loss.call = $2;
          } }
    | LOSS call WEIGHT number semi
        { $$ = NULL;
          if ($5) {
              OK($$ = stmt_new(ps, STMT_LOSS, span_join(@1, @5), NULL, (SrcSpan){0}));
              $$->loss.call = $2;
              $$->loss.weight = $4;
          } }
    /* "output" IDENT "=" expr ";" */
    | OUTPUT name '=' expr semi
        { $$ = NULL;
          if ($5) {
              OK($$ = stmt_new(ps, STMT_OUTPUT, span_join(@1, @5), $2, @2));
              $$->output.expr = $4;
          } }
    /* "train" "{" { setting } "}" */
    | TRAIN '{' settings '}'
        { OK($$ = stmt_new(ps, STMT_TRAIN, @$, NULL, (SrcSpan){0}));
          $$->train.settings = $3.items;
          $$->train.nsettings = (int)$3.len; }
    | TRAIN '{' settings error '}'  /* keeps the settings that parsed, as blocks do */
        { yyerrok;
          OK($$ = stmt_new(ps, STMT_TRAIN, @$, NULL, (SrcSpan){0}));
          $$->train.settings = $3.items;
          $$->train.nsettings = (int)$3.len; }
    ;

/* bind = IDENT "=" expr ";" */
bind: IDENT '=' expr semi
        { $$ = NULL;
          if ($4) {
              OK($$ = stmt_new(ps, STMT_BIND, span_join(@1, @4), $1, @1));
              $$->bind.expr = $3;
          } }
    ;

dims: INT               { $$ = (DimVec){0};
                          OK(vec_push(ps->a, &$$, ((AstDim){$1->num.ival, @1}))); }
    | dims ',' INT      { $$ = $1; OK(vec_push(ps->a, &$$, ((AstDim){$3->num.ival, @3}))); }
    ;

params: name            { $$ = (ParamVec){0}; OK(vec_push(ps->a, &$$, ((ParamName){$1, @1}))); }
    | params ',' name   { $$ = $1; OK(vec_push(ps->a, &$$, ((ParamName){$3, @3}))); }
    ;

/* "{" { bind } "}" */
block_body: '{' bind_list '}'           { $$ = $2; }
    | '{' bind_list error '}'           { $$ = $2; yyerrok; }
    ;

bind_list: %empty                       { $$ = (StmtVec){0}; }
    | bind_list bind                    { $$ = $1; if ($2) OK(vec_push(ps->a, &$$, $2)); }
    | bind_list error ';'               { $$ = $1; yyerrok; }
    ;

settings: %empty                        { $$ = (StmtVec){0}; }
    | settings setting                  { $$ = $1; if ($2) OK(vec_push(ps->a, &$$, $2)); }
    | settings error ';'                { $$ = $1; yyerrok; }
    ;

/* setting = ( "data" | "optimizer" | "schedule" | "regularize" | "mix" ) call ";"
 *         | ( "batch" | "epochs" | "seed" ) INT ";"
 *         | "augment" call { "," call } ";" */
setting
    : DATA call semi        { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_SET_DATA, span_join(@1, @3), $2)); }
    | OPTIMIZER call semi   { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_SET_OPTIMIZER, span_join(@1, @3), $2)); }
    | SCHEDULE call semi    { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_SET_SCHEDULE, span_join(@1, @3), $2)); }
    | REGULARIZE call semi  { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_SET_REGULARIZE, span_join(@1, @3), $2)); }
    | MIX call semi         { $$ = NULL; if ($3) OK($$ = stmt_call(ps, STMT_SET_MIX, span_join(@1, @3), $2)); }
    | BATCH INT semi        { $$ = NULL; if ($3) OK($$ = stmt_int(ps, STMT_SET_BATCH, span_join(@1, @3), $2)); }
    | EPOCHS INT semi       { $$ = NULL; if ($3) OK($$ = stmt_int(ps, STMT_SET_EPOCHS, span_join(@1, @3), $2)); }
    | SEED INT semi         { $$ = NULL; if ($3) OK($$ = stmt_int(ps, STMT_SET_SEED, span_join(@1, @3), $2)); }
    | AUGMENT calls semi
        { $$ = NULL;
          if ($3) {
              OK($$ = stmt_new(ps, STMT_SET_AUGMENT, span_join(@1, @3), NULL, (SrcSpan){0}));
              $$->augment.calls = $2.items;
              $$->augment.ncalls = (int)$2.len;
          } }
    ;

calls: call             { $$ = (NodeVec){0}; OK(vec_push(ps->a, &$$, $1)); }
    | calls ',' call    { $$ = $1; OK(vec_push(ps->a, &$$, $3)); }
    ;

/* expr = chain { "+" chain } */
expr: sum               { OK($$ = sum_finish(ps, &$1)); }
    ;

sum: chain              { AstNode *t; OK(t = chain_finish(ps, &$1));
                          $$ = (NodeVec){0}; OK(vec_push(ps->a, &$$, t)); }
    | sum '+' chain     { AstNode *t; OK(t = chain_finish(ps, &$3));
                          $$ = $1; OK(vec_push(ps->a, &$$, t)); }
    ;

/* chain = primary { "->" call } */
chain: primary          { $$ = (ChainBuild){$1, {0}}; }
    | chain ARROW call  { $$ = $1; OK(vec_push(ps->a, &$$.calls, $3)); }
    ;

/* primary = call | "(" expr ")" */
primary: call
    | '(' expr ')'      { OK($$ = node_new(ps, AST_PAREN, @$)); $$->paren.inner = $2; }
    ;

/* call = IDENT [ "(" [ arg { "," arg } ] ")" ] */
call: name              { OK($$ = call_new(ps, @$, $1, @1, false, NULL)); }
    | name '(' ')'      { OK($$ = call_new(ps, @$, $1, @1, true, NULL)); }
    | name '(' args ')' { OK($$ = call_new(ps, @$, $1, @1, true, &$3)); }
    ;

args: arg               { $$ = (ArgVec){0}; OK(vec_push(ps->a, &$$, $1)); }
    | args ',' arg      { $$ = $1; OK(vec_push(ps->a, &$$, $3)); }
    ;

/* arg = [ IDENT "=" ] operand */
arg: operand            { $$ = (AstArg){NULL, {0}, $1}; }
    | name '=' operand  { $$ = (AstArg){$1, @1, $3}; }
    ;

/* operand = expr | number | STRING | "[" [ operand { "," operand } ] "]" */
operand: expr
    | number
    | STRING
    | '[' ']'           { OK($$ = node_new(ps, AST_LIST, @$)); }
    | '[' operands ']'  { OK($$ = node_new(ps, AST_LIST, @$));
                          $$->list.items = $2.items;
                          $$->list.n = (int)$2.len; }
    ;

operands: operand       { $$ = (NodeVec){0}; OK(vec_push(ps->a, &$$, $1)); }
    | operands ',' operand { $$ = $1; OK(vec_push(ps->a, &$$, $3)); }
    ;

/* number = [ "-" ] ( INT | FLOAT ) */
number: INT
    | FLOAT
    | '-' INT           { $$ = $2; OK(number_negate(ps, $$, @1)); }
    | '-' FLOAT         { $$ = $2; OK(number_negate(ps, $$, @1)); }
    ;

/* Where only a name can stand, statement words are names too
 * (`data=...`, `weight=...`, a block parameter called `seed`). */
name: IDENT | MODEL | INPUT | TARGET | PREPROCESS | DEFAULT | BLOCK | LOSS | WEIGHT
    | OUTPUT | TRAIN | DATA | BATCH | EPOCHS | SEED | OPTIMIZER | SCHEDULE
    | REGULARIZE | AUGMENT | MIX
    ;

%%

void parse_error(ParseState *ps, SrcSpan sp, const char *fmt, ...)
{
    if (ps->stopped)
        return;
    if (span_valid(ps->last_err_sp) && ps->last_err_sp.line == sp.line &&
        ps->last_err_sp.col == sp.col)
        return;
    ps->last_err_sp = sp;
    va_list ap;
    va_start(ap, fmt);
    diag_verror(ps->d, sp, fmt, ap);
    va_end(ap);
}

void parse_oom(ParseState *ps, SrcSpan sp)
{
    if (!ps->oom) {
        ps->oom = true;
        ps->stopped = false;
        ps->last_err_sp = (SrcSpan){0};
        parse_error(ps, sp, "out of memory");
    }
    ps->stopped = true;
}

static bool is_keyword(yysymbol_kind_t k)
{
    return k >= YYSYMBOL_MODEL && k <= YYSYMBOL_MIX;
}

/* A statement may end here: the lookahead starts a new line, a statement
 * or a train setting, closes a body, or is the end of the file. */
static bool at_boundary(const ParseState *ps, yysymbol_kind_t tok)
{
    if (tok == YYSYMBOL_YYEOF || (is_keyword(tok) && tok != YYSYMBOL_WEIGHT))
        return true;
    if (tok == YYTRANSLATE('}'))
        return true;
    return span_valid(ps->prev_sp) && ps->cur_sp.line > ps->prev_sp.end_line;
}

/* The unexpected token as the user wrote it: "identifier 'foo'". */
static const char *describe_token(const ParseState *ps, yysymbol_kind_t tok)
{
    enum { MAX_SHOWN = 32 };
    if (tok != YYSYMBOL_IDENT && tok != YYSYMBOL_INT && tok != YYSYMBOL_FLOAT)
        return yysymbol_name(tok);
    size_t n = ps->tok_len < MAX_SHOWN ? ps->tok_len : MAX_SHOWN;
    const char *what = tok == YYSYMBOL_IDENT ? "identifier" : "number";
    const char *text = ps->src->text + ps->tok_off;
    const char *s = arena_printf(ps->a, "%s '%.*s%s'", what, (int)n, text,
                                 n < ps->tok_len ? "..." : "");
    return s ? s : what;
}

/* "expecting A, B or C", collapsing the statement words that only stand in
 * for a name. Empty when the list would be too long to help. */
static const char *describe_expected(const ParseState *ps, const yypcontext_t *ctx)
{
    enum { MAX_LISTED = 5 };
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    bool ident = false, model = false, weight = false, batch = false, value = false, flt = false;
    for (int i = 0; i < n; i++) {
        ident |= exp[i] == YYSYMBOL_IDENT;
        model |= exp[i] == YYSYMBOL_MODEL;
        weight |= exp[i] == YYSYMBOL_WEIGHT;
        batch |= exp[i] == YYSYMBOL_BATCH;
        value |= exp[i] == YYSYMBOL_STRING;
        flt |= exp[i] == YYSYMBOL_FLOAT;
    }
    /* Statement words are names too: only a statement start lacks 'weight'. */
    if (model && !weight)
        return ", expecting a statement";
    if (batch && !ident)
        return ", expecting a train setting or '}'";
    if (value)
        return ", expecting a value";
    const char *names[MAX_LISTED];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if ((ident && is_keyword(exp[i])) || (flt && exp[i] == YYSYMBOL_INT))
            continue;
        if (k == MAX_LISTED)
            return "";
        names[k++] = yysymbol_name(exp[i]);
    }
    if (k == 0)
        return "";
    const char *s = arena_printf(ps->a, ", expecting %s", names[0]);
    for (int i = 1; s && i < k; i++)
        s = arena_printf(ps->a, "%s%s%s", s, i == k - 1 ? " or " : ", ", names[i]);
    return s ? s : "";
}

static bool expects(const yypcontext_t *ctx, yysymbol_kind_t want)
{
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    for (int i = 0; i < n; i++)
        if (exp[i] == want)
            return true;
    return false;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, ParseState *ps)
{
    yysymbol_kind_t tok = yypcontext_token(ctx);
    SrcSpan sp = *yypcontext_location(ctx);
    ps->semi_boundary = false;
    if (ps->stopped)
        return 0;
    if (expects(ctx, YYTRANSLATE(';')) && at_boundary(ps, tok)) {
        ps->semi_boundary = true;
        SrcSpan at = span_end(ps->prev_sp);
        at.end_col = at.col + 1;
        parse_error(ps, at, "expected ';' after statement");
        return 0;
    }
    parse_error(ps, sp, "unexpected %s%s", describe_token(ps, tok), describe_expected(ps, ctx));
    return 0;
}

/* Runs the parser; flex's fatal errors (its allocations failing) longjmp
 * back here. Nothing here is modified between setjmp and longjmp. */
static int parse_run(ParseState *ps)
{
    if (setjmp(ps->fatal))
        return -1;
    if (!lex_open(ps))
        return -1;
    return ncparse(ps);
}

int parse_file(const Source *src, Arena *a, DiagSink *d, AstFile *out)
{
    int before = d->nerrors;
    bool failed_before = a->failed;
    out->src = src;
    out->stmts = NULL;
    out->nstmts = 0;
    ParseState *ps = arena_alloc(a, sizeof *ps);
    if (!ps) {
        diag_error(d, (SrcSpan){0}, "out of memory");
        return d->nerrors - before;
    }
    ps->src = src;
    ps->a = a;
    ps->d = d;
    ps->line = ps->col = 1;
    if (src->len > INT_MAX / 2) {
        SrcSpan sp = {src, 1, 1, 1, 1};
        diag_error(d, sp, "file too large (%zu bytes)", src->len);
        return d->nerrors - before;
    }
    parse_run(ps);
    lex_close(ps);
    if (a->failed && !failed_before && !ps->oom)
        parse_oom(ps, ps->cur_sp);
    out->stmts = ps->stmts.items;
    out->nstmts = (int)ps->stmts.len;
    return d->nerrors - before;
}
