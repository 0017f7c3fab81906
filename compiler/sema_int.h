/* sema_int.h - what the checker's files share (not part of the core API).
 *
 *   sema.c         statements, names, environments, block expansion, tensors
 *   sema_values.c  typed call arguments: kinds, ranges, defaults, initializers
 *   sema_ops.c     every op: its parameters, shape inference, node and params
 *   sema_train.c   model/input/targets/preprocess/defaults and the train section
 *
 * Evaluation model. A block parameter is bound by name (call by name): the
 * argument's AST and the environment of the call that supplied it form a
 * Closure, evaluated where the parameter is used, in whatever kind that use
 * expects (a number, an init, a tensor, even an op's name). A tensor closure
 * is evaluated once and cached. A failed tensor is the error value
 * (Sema.errv): every op that receives it returns it again without a word,
 * so one mistake gives one message.
 */
#ifndef NETC_SEMA_INT_H
#define NETC_SEMA_INT_H

#include "ast.h"
#include "graph.h"

enum {
    SEMA_MAX_BLOCK_DEPTH = 64,   /* nested block expansions */
    SEMA_MAX_TARGETS = 8,        /* NRT_MAX_TARGETS */
    SEMA_MAX_OUTPUTS = 8,        /* NRT_MAX_OUTPUTS */
    SEMA_CONTEXT_NOTES = 4,      /* "in block ... expanded here" notes per error */
};

/* A string-keyed hash map in the arena (open addressing, never shrinks). */
typedef struct StrMap {
    const char **keys;
    void **vals;
    size_t cap, len;
} StrMap;

void *strmap_get(const StrMap *m, const char *key);
bool strmap_put(Arena *a, StrMap *m, const char *key, void *val);

typedef struct Env Env;

typedef enum NameKind { NAME_TENSOR, NAME_INPUT, NAME_TARGET } NameKind;

typedef struct Name {
    NameKind kind;
    const char *name;
    SrcSpan sp;             /* where it was bound or declared */
    IrValue *value;         /* tensor or input (may be the error value) */
    int target;             /* NAME_TARGET: its index */
    bool used;
} Name;

typedef struct BlockDef {
    const AstStmt *st;
    bool has_out;
    int est_state;          /* 0 not estimated, 1 being estimated, 2 done */
    int64_t est;            /* ops one expansion creates, at most (memoized) */
} BlockDef;

typedef struct Closure {
    const AstNode *node;
    Env *env;               /* where node is evaluated (the caller's env) */
    IrValue *cached;        /* once evaluated as a tensor */
} Closure;

struct Env {
    Env *caller;            /* the env whose call expanded this block; NULL at top */
    const BlockDef *block;  /* NULL at the top level */
    IrScope *scope;         /* NULL at the top level */
    const char *path;       /* "stage1.basic2."; "" at the top level */
    SrcSpan call_sp;
    IrValue *in;
    const char **param_names;
    Closure *params;
    int nparams;
    StrMap names;           /* Name *: tensors bound here (top: also input, targets) */
    StrMap labels;          /* block name -> (intptr_t) instances so far */
    int opcount[IR_OP_COUNT];
    int depth;
};

typedef struct Sema {
    Arena *a;
    DiagSink *d;
    IrGraph *g;
    const AstFile *f;
    IrValue errv;           /* the error value */
    StrMap blocks;          /* BlockDef * */
    StrMap node_names;      /* every node and scope path taken */
    StrMap seen_errors;     /* "line:col:msg" of reported errors (block copies) */
    Env top;
    Env *cur;               /* the env being evaluated, for context notes */
    IrInit def_init, def_bias_init;
    const AstStmt *def_init_st, *def_bias_init_st;
    bool halted;            /* node cap hit or out of memory: stop building */
    int64_t param_bytes, act_bytes;
    const IrNode *over_node;   /* the first node past IR_MAX_BYTES */
    SrcSpan file_sp;        /* line 1, col 1: for "missing ..." errors */
    const AstStmt *input_st;   /* the (first) input statement */
    int nerr_start;         /* d->nerrors when sema began */
    int nmodel, ntarget, nloss;   /* statements of each kind, for "missing ..." */
    struct { const char **strs; int n; bool given; SrcSpan sp; } idx_targets;
} Sema;

/* ---- sema.c ---- */
Diag *sema_error(Sema *s, SrcSpan sp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The closest known name within a small edit distance, or NULL. */
const char *sema_suggest(Sema *s, const char *name, Env *env, bool ops, bool tensors);
const char *sema_closest(const char *name, const char *const *cands, int n);
IrValue *sema_eval_tensor(Sema *s, Env *env, const AstNode *e);
/* Creates a node with output shape `out` named after the op in env's scope;
 * NULL when the node cap is hit or memory runs out (already reported). */
IrNode *sema_node(Sema *s, Env *env, IrOp op, SrcSpan sp, IrValue **ins, int nin, IrShape out);
/* Adds parameter and per-sample activation elements to the memory total. */
void sema_account(Sema *s, const IrNode *n, int64_t params, int64_t act);
IrParam *sema_param(Sema *s, IrNode *n, IrParamKind kind, IrShape shape, IrInit init,
                    int64_t fan_in, int64_t fan_out);
Name *sema_lookup(Env *env, const char *name);
bool sema_is_c_keyword(const char *name);
bool sema_valid_c_name(Sema *s, const char *name, SrcSpan sp, const char *what);

/* ---- sema_values.c ---- */
typedef enum ArgKind {
    AK_INT,      /* integer, 32 bits */
    AK_NUM,      /* finite number */
    AK_BOOL,     /* true | false */
    AK_INIT,     /* an initializer */
    AK_PAD,      /* integer or 'same' (i = -1) */
    AK_STR,      /* string */
    AK_WORD,     /* one of spec.words ("in|out"); word = its index */
    AK_NUMS,     /* [number, ...] */
    AK_INTS,     /* [integer, ...] */
    AK_STRS,     /* [string, ...] */
} ArgKind;

typedef enum ArgRange {
    RG_ANY, RG_GE0, RG_GE1, RG_GE2, RG_GT0, RG_PROB /* [0,1) */, RG_UNIT /* (0,1] */,
    RG_RATIO /* (1,2] */, RG_DEG /* (0,180] */,
} ArgRange;

typedef struct ArgSpec {
    const char *key;
    ArgKind kind;
    ArgRange range;
    bool required;
    const char *words;
} ArgSpec;

typedef struct ArgVal {
    bool given;
    SrcSpan sp;             /* the value */
    int64_t i;
    double x;
    bool b;
    int word;
    const char *s;
    IrInit init;
    double *nums;
    int64_t *ints;
    const char **strs;
    int n;
} ArgVal;

/* Binds the call's arguments, after the first `skip` positionals (tensors
 * the caller took), to specs; positionals fill specs in order. Every
 * problem is reported as "<what>: ..."; returns false if there was one. */
bool sema_bind_args(Sema *s, Env *env, const AstNode *call, const char *what,
                    const ArgSpec *specs, int nspecs, int skip, ArgVal *out);
/* Follows block parameters to the node (and env) a value really is. */
const AstNode *sema_resolve(Sema *s, Env **env, const AstNode *n);
bool sema_is_tensor_expr(Sema *s, Env *env, const AstNode *n);
bool sema_eval_init(Sema *s, Env *env, const AstNode *n, const char *what, IrInit *out);
/* "tensor 'x'", "a string", "'same'", "2.5": what a value is, for messages. */
const char *sema_describe(Sema *s, Env *env, const AstNode *n);
int64_t sema_count_positional(const AstNode *call);

/* ---- sema_ops.c ---- */
typedef struct OpDef OpDef;
const OpDef *sema_find_op(const char *name);
IrOp sema_op_ir(const OpDef *op);
bool sema_op_is_loss(const OpDef *op);
const char *sema_op_name_at(int i);   /* iteration for suggestions; NULL past the end */
/* Applies a non-loss op to a call; `chain_in` is the tensor left of '->'
 * (NULL: take inputs from the positional arguments). */
IrValue *sema_apply_op(Sema *s, Env *env, const OpDef *op, const AstNode *call, IrValue *chain_in);
/* loss fn(pred, target, ...) [weight w]. */
void sema_loss(Sema *s, const AstStmt *st);
/* Notes where a value's shape came from. */
void sema_note_shape(Sema *s, Diag *dg, const IrValue *v);

/* ---- sema_train.c ---- */
void sema_declarations(Sema *s);     /* model, input, targets, preprocess, defaults */
void sema_train(Sema *s);            /* the train section (after declarations) */
void sema_make_input(Sema *s);       /* the input node, once the batch is known */
void sema_finish(Sema *s);           /* cross checks once the graph is built */

#endif
