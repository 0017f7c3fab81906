/* sema.c - the checker's core: statements in order, names, block expansion.
 *
 * Input: an AstFile as parsed (any statement order, possibly after syntax
 * errors were recovered from). Output: a graph IR (graph.h) with every
 * block expanded, every name resolved, every shape inferred and every
 * default filled in - or errors, as many independent ones as can be found
 * without guessing.
 *
 * Order of work: block definitions are collected first (a block may be used
 * before or after its definition, like a function); then the declarations
 * (model, input, targets, preprocess, defaults) and the train section, which
 * the graph needs (the default penalties, the batch size for the memory
 * cap); then the graph statements (binds, losses, outputs) in source order,
 * where a tensor name must be bound before it is used. Expansion is bounded
 * three ways: recursion is found on the call stack of environments, nesting
 * stops at SEMA_MAX_BLOCK_DEPTH, and a block whose (statically estimated)
 * size would push the graph past IR_MAX_NODES is refused before it is
 * expanded, so "exponential" blocks cost nothing.
 */
#include "sema.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "sema_int.h"

/* ---- string map ------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

void *strmap_get(const StrMap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static bool strmap_grow(Arena *a, StrMap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    const char **keys = arena_array(a, cap, sizeof *keys);
    void **vals = arena_array(a, cap, sizeof *vals);
    if (!keys || !vals)
        return false;
    for (size_t k = 0; k < m->cap; k++) {
        if (!m->keys[k])
            continue;
        size_t i = hash_str(m->keys[k]) & (cap - 1);
        while (keys[i])
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[k];
        vals[i] = m->vals[k];
    }
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

/* Inserts or replaces. */
bool strmap_put(Arena *a, StrMap *m, const char *key, void *val)
{
    if ((m->len + 1) * 2 > m->cap && !strmap_grow(a, m))
        return false;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
    return true;
}

/* ---- diagnostics ----------------------------------------------------- */

static char *vformat(Arena *a, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static char *vformat(Arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *p = len >= 0 ? arena_alloc(a, (size_t)len + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)len + 1, fmt, ap);
    return p;
}

/* Reports an error once per (location, message): a block expanded ten
 * times with the same mistake says so once. Inside a block, notes give the
 * expansion chain, innermost first, as compilers do for templates. */
Diag *sema_error(Sema *s, SrcSpan sp, const char *fmt, ...)
{
    if (diag_full(s->d)) {
        s->d->nerrors++;   /* counted, not recorded (as diag_error does) */
        s->d->truncated = true;
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(s->a, fmt, ap);
    va_end(ap);
    if (!msg)
        return NULL;
    char *key = arena_printf(s->a, "%d:%d:%s", sp.line, sp.col, msg);
    if (key) {
        if (strmap_get(&s->seen_errors, key))
            return NULL;
        strmap_put(s->a, &s->seen_errors, key, key);
    }
    Diag *dg = diag_error(s->d, sp, "%s", msg);
    int k = 0;
    for (Env *e = s->cur; e && e->block; e = e->caller, k++) {
        if (k == SEMA_CONTEXT_NOTES) {
            diag_note(s->d, dg, e->call_sp, "... and %d more enclosing blocks", e->depth);
            break;
        }
        diag_note(s->d, dg, e->call_sp, "in block '%s' expanded here", e->block->st->name);
    }
    return dg;
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

typedef struct Suggest {
    const char *name, *best;
    int bestd;
} Suggest;

static void suggest_try(Suggest *sg, const char *cand)
{
    if (!cand || strcmp(cand, sg->name) == 0)
        return;
    int d = edit_distance(sg->name, cand);
    int limit = (int)strlen(sg->name) / 3 + 1;
    if (d <= limit && d < sg->bestd && d < (int)strlen(cand)) {
        sg->best = cand;
        sg->bestd = d;
    }
}

static void suggest_map(Suggest *sg, const StrMap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            suggest_try(sg, m->keys[i]);
}

/* The closest known name within a small edit distance, or NULL. */
const char *sema_suggest(Sema *s, const char *name, Env *env, bool ops, bool tensors)
{
    Suggest sg = {name, NULL, 99};
    if (tensors) {
        suggest_map(&sg, &env->names);
        for (int i = 0; i < env->nparams; i++)
            suggest_try(&sg, env->param_names[i]);
        if (env->block)
            suggest_try(&sg, "in");
    }
    if (ops) {
        for (int i = 0; sema_op_name_at(i); i++)
            suggest_try(&sg, sema_op_name_at(i));
        suggest_map(&sg, &s->blocks);
    }
    return sg.best;
}

const char *sema_closest(const char *name, const char *const *cands, int n)
{
    Suggest sg = {name, NULL, 99};
    for (int i = 0; i < n; i++)
        suggest_try(&sg, cands[i]);
    return sg.best;
}

/* "; did you mean 'x'?" or "". */
static const char *did_you_mean(Sema *s, const char *best)
{
    return best ? arena_printf(s->a, "; did you mean '%s'?", best) : "";
}

/* ---- names ----------------------------------------------------------- */

Name *sema_lookup(Env *env, const char *name)
{
    return strmap_get(&env->names, name);
}

bool sema_is_c_keyword(const char *name)
{
    static const char *kw[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
        "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
        "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
        "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
        "_Static_assert", "_Thread_local",
    };
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (strcmp(kw[i], name) == 0)
            return true;
    return false;
}

/* Names that become C identifiers in generated code (the model, outputs):
 * no C keyword, none of C's reserved forms (_X..., __...), not the
 * runtime's prefixes. */
bool sema_valid_c_name(Sema *s, const char *name, SrcSpan sp, const char *what)
{
    const char *why = NULL;
    if (sema_is_c_keyword(name))
        why = "it is a C keyword";
    else if (name[0] == '_' && (name[1] == '_' || (name[1] >= 'A' && name[1] <= 'Z')))
        why = "names starting with '__' or '_' and a capital are reserved in C";
    else if (strncmp(name, "nrt_", 4) == 0 || strncmp(name, "NRT_", 4) == 0 ||
             strncmp(name, "netc_", 5) == 0)
        why = "the prefixes 'nrt_', 'NRT_' and 'netc_' are reserved for the runtime";
    else if (strlen(name) > 63)
        why = "it is longer than 63 characters";
    if (!why)
        return true;
    sema_error(s, sp, "%s name '%s' cannot be used in C: %s", what, name, why);
    return false;
}

/* ---- nodes and params ------------------------------------------------ */

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

void sema_account(Sema *s, const IrNode *n, int64_t params, int64_t act)
{
    s->param_bytes = sat_add(s->param_bytes, sat_mul(params, 4));
    s->act_bytes = sat_add(s->act_bytes, sat_mul(sat_mul(act, 4), s->g->train.batch));
    if (!s->over_node && sat_add(s->param_bytes, s->act_bytes) > IR_MAX_BYTES)
        s->over_node = n;
}

static bool out_of_memory(Sema *s, SrcSpan sp)
{
    if (!s->halted)
        diag_error(s->d, sp, "out of memory while building the graph");
    s->halted = true;
    return false;
}

/* A fresh name "<path><base><k>" not taken yet; k counts up from *counter. */
static const char *fresh_name(Sema *s, const char *path, const char *base, int *counter)
{
    for (;;) {
        ++*counter;
        char *name = arena_printf(s->a, "%s%s%d", path, base, *counter);
        if (!name)
            return NULL;
        if (!strmap_get(&s->node_names, name)) {
            if (!strmap_put(s->a, &s->node_names, name, name))
                return NULL;
            return name;
        }
    }
}

IrNode *sema_node(Sema *s, Env *env, IrOp op, SrcSpan sp, IrValue **ins, int nin, IrShape out)
{
    IrGraph *g = s->g;
    if (s->halted)
        return NULL;
    if (g->nodes.len >= IR_MAX_NODES) {
        sema_error(s, sp, "the model has more than %d ops after expanding blocks", IR_MAX_NODES);
        s->halted = true;
        return NULL;
    }
    IrNode *n = ir_node_new(g, op, sp);
    IrValue *v = n ? ir_value_new(g, out, sp) : NULL;
    IrValue **in = nin ? arena_array(s->a, (size_t)nin, sizeof *in) : NULL;
    n = v && (in || !nin) ? n : NULL;
    const char *name = n ? fresh_name(s, env->path, ir_op_name(op), &env->opcount[op]) : NULL;
    if (!name) {
        out_of_memory(s, sp);
        return NULL;
    }
    if (nin)
        memcpy(in, ins, (size_t)nin * sizeof *in);
    n->name = name;
    n->scope = env->scope;
    n->in = in;
    n->nin = nin;
    n->out = v;
    v->producer = n;
    v->name = name;
    if (!(ir_op_flags(op) & IR_F_LOSS))
        sema_account(s, n, 0, ir_shape_numel(out));
    return n;
}

IrParam *sema_param(Sema *s, IrNode *n, IrParamKind kind, IrShape shape, IrInit init,
                    int64_t fan_in, int64_t fan_out)
{
    IrParam *p = ir_param_new(s->g, n, kind, shape);
    if (!p) {
        out_of_memory(s, n->sp);
        return NULL;
    }
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    sema_account(s, n, p->numel, 0);
    return p;
}

/* ---- tensors --------------------------------------------------------- */

static Closure *env_param(Env *env, const char *name)
{
    for (int i = 0; i < env->nparams; i++)
        if (strcmp(env->param_names[i], name) == 0)
            return &env->params[i];
    return NULL;
}

static IrValue *eval_closure(Sema *s, Closure *c)
{
    if (c->cached)
        return c->cached;
    Env *saved = s->cur;
    s->cur = c->env;
    IrValue *v = sema_eval_tensor(s, c->env, c->node);
    s->cur = saved;
    c->cached = v;
    return v;
}

static bool is_softmax(const IrValue *v)
{
    return v->producer && v->producer->op == IR_OP_SOFTMAX;
}

static IrValue *eval_sum(Sema *s, Env *env, const AstNode *e)
{
    int n = e->sum.nterms;
    IrValue **ins = arena_array(s->a, (size_t)n, sizeof *ins);
    if (!ins) {
        out_of_memory(s, e->sp);
        return &s->errv;
    }
    bool bad = false;
    for (int i = 0; i < n; i++) {
        ins[i] = sema_eval_tensor(s, env, e->sum.terms[i]);
        bad |= ins[i] == &s->errv;
    }
    if (bad)
        return &s->errv;
    for (int i = 0; i < n; i++) {
        char sa[96], sb[96];
        if (is_softmax(ins[i])) {
            Diag *dg = sema_error(s, ins[i]->producer->sp,
                                  "softmax can only be an output, but here it feeds '+'");
            diag_note(s->d, dg, e->sum.terms[i]->sp, "'+' uses it here");
            return &s->errv;
        }
        IrShape a = ins[0]->shape, b = ins[i]->shape;
        if (a.rank == b.rank && memcmp(a.d, b.d, sizeof a.d[0] * (size_t)a.rank) == 0)
            continue;
        Diag *dg = sema_error(s, e->sp, "cannot add %s and %s: the shapes of '+' must match",
                              ir_shape_str(a, sa, sizeof sa), ir_shape_str(b, sb, sizeof sb));
        sema_note_shape(s, dg, ins[0]);
        sema_note_shape(s, dg, ins[i]);
        return &s->errv;
    }
    IrNode *node = sema_node(s, env, IR_OP_ADD, e->sp, ins, n, ins[0]->shape);
    return node ? node->out : &s->errv;
}

static IrValue *expand_block(Sema *s, Env *env, BlockDef *b, const AstNode *call,
                             IrValue *chain_in);

/* The op (or block) name a parameter stands for in `x -> p` / `p(args)`. */
static const char *param_as_op(Sema *s, Closure *c, const AstNode *call)
{
    Env *cenv = c->env;
    const AstNode *w = sema_resolve(s, &cenv, c->node);
    if (w->kind == AST_CALL && !w->call.has_parens &&
        (sema_find_op(w->call.name) || strmap_get(&s->blocks, w->call.name)))
        return w->call.name;
    sema_error(s, call->call.name_sp,
               "parameter '%s' is %s, not an op or block name, so it cannot be applied",
               call->call.name, sema_describe(s, cenv, w));
    return NULL;
}

/* The statement that binds `name` later in env's statement list, if any. */
static const AstStmt *later_bind(Sema *s, Env *env, const char *name)
{
    AstStmt *const *stmts = env->block ? env->block->st->block.body : s->f->stmts;
    int n = env->block ? env->block->st->block.nbody : s->f->nstmts;
    for (int i = 0; i < n; i++)
        if (stmts[i] && stmts[i]->kind == STMT_BIND && !strcmp(stmts[i]->name, name))
            return stmts[i];
    return NULL;
}

static IrValue *unknown_name(Sema *s, Env *env, const AstNode *call, bool as_op)
{
    const char *name = call->call.name;
    SrcSpan sp = call->call.name_sp;
    if (diag_full(s->d))
        return &s->errv;   /* past the error limit: no scans for hints */
    const AstStmt *later = as_op ? NULL : later_bind(s, env, name);
    if (later) {
        Diag *dg = sema_error(s, sp, "'%s' is used before its definition", name);
        diag_note(s->d, dg, later->name_sp, "'%s' is bound here", name);
    } else if (strcmp(name, "in") == 0 && !env->block)
        sema_error(s, sp, "'in' is only defined inside a block (the block's input)");
    else if (env->block && sema_lookup(&s->top, name))
        sema_error(s, sp, "'%s' is not visible inside block '%s'; pass it as a parameter",
                   name, env->block->st->name);
    else if (as_op)
        sema_error(s, sp, "unknown op '%s'%s", name,
                   did_you_mean(s, sema_suggest(s, name, env, true, false)));
    else
        sema_error(s, sp, "unknown name '%s'%s", name,
                   did_you_mean(s, sema_suggest(s, name, env, false, true)));
    return &s->errv;
}

static IrValue *apply_named(Sema *s, Env *env, const char *name, const AstNode *call,
                            IrValue *chain_in)
{
    const OpDef *op = sema_find_op(name);
    if (op) {
        if (sema_op_is_loss(op)) {
            sema_error(s, call->call.name_sp,
                       "'%s' is a loss: use it in a 'loss' statement", name);
            return &s->errv;
        }
        return sema_apply_op(s, env, op, call, chain_in);
    }
    BlockDef *b = strmap_get(&s->blocks, name);
    if (b)
        return expand_block(s, env, b, call, chain_in);
    return unknown_name(s, env, call, true);
}

/* A call in tensor position: a tensor name, `in`, a parameter, an op or a
 * block; chain_in is the value left of '->' (NULL if none). */
static IrValue *eval_call(Sema *s, Env *env, const AstNode *call, IrValue *chain_in)
{
    const char *name = call->call.name;
    bool applied = call->call.has_parens || chain_in;
    Closure *c = env_param(env, name);
    if (c) {
        Env *cenv = c->env;
        const AstNode *r = sema_resolve(s, &cenv, c->node);
        if (!applied && (r->kind == AST_NUMBER || r->kind == AST_STRING || r->kind == AST_LIST)) {
            sema_error(s, call->call.name_sp, "parameter '%s' is %s, not a tensor", name,
                       sema_describe(s, cenv, r));
            return &s->errv;
        }
        if (!applied)
            return eval_closure(s, c);
        const char *op = param_as_op(s, c, call);
        return op ? apply_named(s, env, op, call, chain_in) : &s->errv;
    }
    if (env->block && strcmp(name, "in") == 0) {
        if (!applied)
            return env->in;
        sema_error(s, call->call.name_sp, "'in' is the block's input tensor, not an op");
        return &s->errv;
    }
    Name *nm = sema_lookup(env, name);
    if (nm) {
        nm->used = true;
        if (nm->kind == NAME_TARGET) {
            sema_error(s, call->call.name_sp,
                       "'%s' is a target; targets are only used as the second argument of a loss",
                       name);
            return &s->errv;
        }
        if (!applied)
            return nm->value;
        sema_error(s, call->call.name_sp, "'%s' is a tensor, not an op", name);
        return &s->errv;
    }
    if (!applied && !sema_find_op(name) && !strmap_get(&s->blocks, name))
        return unknown_name(s, env, call, false);
    return apply_named(s, env, name, call, chain_in);
}

IrValue *sema_eval_tensor(Sema *s, Env *env, const AstNode *e)
{
    if (s->halted)
        return &s->errv;
    switch (e->kind) {
    case AST_PAREN:
        return sema_eval_tensor(s, env, e->paren.inner);
    case AST_SUM:
        return eval_sum(s, env, e);
    case AST_CALL:
        return eval_call(s, env, e, NULL);
    case AST_CHAIN: {
        IrValue *v = sema_eval_tensor(s, env, e->chain.head);
        for (int i = 0; i < e->chain.ncalls && !s->halted; i++)
            v = eval_call(s, env, e->chain.calls[i], v);
        return v;
    }
    case AST_NUMBER:
    case AST_STRING:
    case AST_LIST:
        break;
    }
    sema_error(s, e->sp, "expected a tensor, got %s", sema_describe(s, env, e));
    return &s->errv;
}

/* ---- blocks ---------------------------------------------------------- */

/* Ops one expansion of an expression creates, at most (saturating); blocks
 * count their own estimate. Recursion counts 0 here and is reported when
 * expanded. */
static int64_t block_estimate(Sema *s, BlockDef *b, int depth);

static int64_t expr_estimate(Sema *s, const AstNode *e, int depth)
{
    int64_t n = 0;
    switch (e->kind) {
    case AST_PAREN:
        return expr_estimate(s, e->paren.inner, depth);
    case AST_SUM:
        n = 1;
        for (int i = 0; i < e->sum.nterms; i++)
            n = sat_add(n, expr_estimate(s, e->sum.terms[i], depth));
        return n;
    case AST_CHAIN:
        n = expr_estimate(s, e->chain.head, depth);
        for (int i = 0; i < e->chain.ncalls; i++)
            n = sat_add(n, expr_estimate(s, e->chain.calls[i], depth));
        return n;
    case AST_LIST:
        for (int i = 0; i < e->list.n; i++)
            n = sat_add(n, expr_estimate(s, e->list.items[i], depth));
        return n;
    case AST_CALL: {
        BlockDef *b = strmap_get(&s->blocks, e->call.name);
        if (sema_find_op(e->call.name))
            n = 1;
        else if (b)
            n = block_estimate(s, b, depth + 1);
        for (int i = 0; i < e->call.nargs; i++)
            n = sat_add(n, expr_estimate(s, e->call.args[i].value, depth));
        return n;
    }
    default:
        return 0;
    }
}

/* Memoized, so a block used 2^30 times costs one walk of each body. */
static int64_t block_estimate(Sema *s, BlockDef *b, int depth)
{
    if (b->est_state == 2)
        return b->est;
    if (b->est_state == 1 || depth > SEMA_MAX_BLOCK_DEPTH)
        return 0;   /* recursion: reported when expanded */
    b->est_state = 1;
    const AstStmt *st = b->st;
    int64_t n = 0;
    for (int i = 0; i < st->block.nbody; i++)
        if (st->block.body[i]->kind == STMT_BIND)
            n = sat_add(n, expr_estimate(s, st->block.body[i]->bind.expr, depth));
    b->est = n;
    b->est_state = 2;
    return n;
}

static bool block_recursion(Sema *s, Env *env, BlockDef *b, const AstNode *call)
{
    Env *e = env;
    while (e && e->block != b)
        e = e->caller;
    if (!e)
        return false;
    Env *saved = s->cur;
    s->cur = NULL;   /* the chain is written out below */
    Diag *dg = sema_error(s, call->call.name_sp, "block '%s' expands itself (recursion)",
                          b->st->name);
    s->cur = saved;
    for (Env *c = env; c && c->block; c = c->caller) {
        diag_note(s->d, dg, c->call_sp, "inside block '%s', expanded here", c->block->st->name);
        if (c->block == b)
            break;
    }
    return true;
}

/* Binds the block's parameters to closures over the caller's env. */
static bool bind_block_args(Sema *s, Env *env, BlockDef *b, const AstNode *call, int skip,
                            Closure *params)
{
    const AstStmt *st = b->st;
    int np = st->block.nparams, pos = 0;
    bool ok = true;
    for (int i = skip; i < call->call.nargs; i++) {
        const AstArg *arg = &call->call.args[i];
        int k = -1;
        if (!arg->key) {
            k = pos++;
            if (k >= np) {
                sema_error(s, call->sp, "block '%s' takes %d argument%s, got %lld", st->name, np,
                           np == 1 ? "" : "s", (long long)(sema_count_positional(call) - skip));
                return false;
            }
        } else {
            for (int j = 0; j < np; j++)
                if (strcmp(st->block.params[j], arg->key) == 0)
                    k = j;
            if (k < 0) {
                sema_error(s, arg->key_sp, "block '%s' has no parameter '%s'%s", st->name,
                           arg->key,
                           did_you_mean(s, sema_closest(arg->key, st->block.params, np)));
                ok = false;
                continue;
            }
        }
        if (params[k].node) {
            sema_error(s, arg->key ? arg->key_sp : arg->value->sp,
                       "block '%s': parameter '%s' given twice", st->name, st->block.params[k]);
            ok = false;
            continue;
        }
        params[k] = (Closure){arg->value, env, NULL};
    }
    for (int k = 0; k < np; k++)
        if (!params[k].node && ok) {
            sema_error(s, call->sp, "block '%s': missing argument '%s'", st->name,
                       st->block.params[k]);
            ok = false;
        }
    return ok;
}

static void bind_stmt(Sema *s, Env *env, const AstStmt *st);

static Env *block_env(Sema *s, Env *env, BlockDef *b, const AstNode *call, IrValue *in,
                      Closure *params)
{
    Env *ne = arena_alloc(s->a, sizeof *ne);
    IrScope *sc = arena_alloc(s->a, sizeof *sc);
    if (!ne || !sc)
        return NULL;
    intptr_t count = (intptr_t)strmap_get(&env->labels, b->st->name);
    int k = (int)count;
    const char *label = fresh_name(s, env->path, b->st->name, &k);
    if (!label || !strmap_put(s->a, &env->labels, b->st->name, (void *)(intptr_t)k))
        return NULL;
    ne->caller = env;
    ne->block = b;
    ne->scope = sc;
    ne->path = arena_printf(s->a, "%s.", label);
    ne->call_sp = call->sp;
    ne->in = in;
    ne->param_names = b->st->block.params;
    ne->params = params;
    ne->nparams = b->st->block.nparams;
    ne->depth = env->depth + 1;
    sc->id = (int)s->g->scopes.len;
    sc->block = b->st->name;
    sc->label = label + strlen(env->path);
    sc->parent = env->scope;
    sc->call_sp = call->sp;
    if (!ne->path || !vec_push(s->a, &s->g->scopes, sc))
        return NULL;
    return ne;
}

static IrValue *expand_block(Sema *s, Env *env, BlockDef *b, const AstNode *call,
                             IrValue *chain_in)
{
    const AstStmt *st = b->st;
    if (block_recursion(s, env, b, call))
        return &s->errv;
    if (env->depth >= SEMA_MAX_BLOCK_DEPTH) {
        sema_error(s, call->call.name_sp, "blocks are nested more than %d deep",
                   SEMA_MAX_BLOCK_DEPTH);
        return &s->errv;
    }
    IrValue *in = chain_in;
    int skip = 0;
    if (!in) {
        if (call->call.nargs == 0 || call->call.args[0].key ||
            !sema_is_tensor_expr(s, env, call->call.args[0].value)) {
            sema_error(s, call->sp, "block '%s' needs an input: write 'x -> %s(...)'", st->name,
                       st->name);
            return &s->errv;
        }
        in = sema_eval_tensor(s, env, call->call.args[0].value);
        skip = 1;
    }
    Closure *params = st->block.nparams
                          ? arena_array(s->a, (size_t)st->block.nparams, sizeof *params) : NULL;
    if (st->block.nparams && !params)
        return out_of_memory(s, call->sp), &s->errv;
    if (!bind_block_args(s, env, b, call, skip, params) || in == &s->errv || !b->has_out)
        return &s->errv;
    int64_t est = block_estimate(s, b, env->depth + 1);
    if (sat_add((int64_t)s->g->nodes.len, est) > IR_MAX_NODES) {
        sema_error(s, call->call.name_sp,
                   "expanding block '%s' here would create about %lld ops; the limit is %d",
                   st->name, (long long)est, IR_MAX_NODES);
        s->halted = true;
        return &s->errv;
    }
    Env *ne = block_env(s, env, b, call, in, params);
    if (!ne)
        return out_of_memory(s, call->sp), &s->errv;
    Env *saved = s->cur;
    s->cur = ne;
    for (int i = 0; i < st->block.nbody && !s->halted; i++)
        bind_stmt(s, ne, st->block.body[i]);
    s->cur = saved;
    Name *out = sema_lookup(ne, "out");
    return out ? out->value : &s->errv;
}

/* ---- statements ------------------------------------------------------ */

/* Why `name` cannot be bound in env, or NULL. */
static bool check_bind_name(Sema *s, Env *env, const char *name, SrcSpan sp)
{
    if (strcmp(name, "in") == 0) {
        sema_error(s, sp, env->block ? "'in' is the block's input; it cannot be bound"
                                     : "'in' is reserved for a block's input");
        return false;
    }
    if (!env->block && strcmp(name, "out") == 0) {
        sema_error(s, sp, "'out' is reserved for a block's result; choose another name");
        return false;
    }
    if (env_param(env, name)) {
        sema_error(s, sp, "'%s' is a parameter of block '%s'; it cannot be bound", name,
                   env->block->st->name);
        return false;
    }
    if (sema_find_op(name) || strmap_get(&s->blocks, name)) {
        sema_error(s, sp, "'%s' is the name of %s; choose another name", name,
                   sema_find_op(name) ? "an op" : "a block");
        return false;
    }
    Name *old = sema_lookup(env, name);
    if (old) {
        static const char *what[] = {"bound", "declared as the input", "declared as a target"};
        Diag *dg = sema_error(s, sp, "'%s' is already %s; names are bound once", name,
                              what[old->kind]);
        diag_note(s->d, dg, old->sp, "'%s' was %s here", name, what[old->kind]);
        old->value = &s->errv;   /* later uses meant the new one: no follow-up errors */
        old->target = -1;
        return false;
    }
    return true;
}

static void bind_stmt(Sema *s, Env *env, const AstStmt *st)
{
    if (st->kind != STMT_BIND)
        return;
    bool ok = check_bind_name(s, env, st->name, st->name_sp);
    IrValue *v = sema_eval_tensor(s, env, st->bind.expr);
    bool reserved = !env->block && (!strcmp(st->name, "in") || !strcmp(st->name, "out"));
    if (!ok && reserved && !sema_lookup(env, st->name))
        v = &s->errv;   /* bound, but broken: its uses stay quiet */
    else if (!ok)
        return;
    Name *nm = arena_alloc(s->a, sizeof *nm);
    if (!nm || !strmap_put(s->a, &env->names, st->name, nm)) {
        out_of_memory(s, st->sp);
        return;
    }
    *nm = (Name){NAME_TENSOR, st->name, st->name_sp, v, -1, env->block != NULL};
    if (v != &s->errv && v->producer && v->name == v->producer->name)
        v->name = env->block ? arena_printf(s->a, "%s%s", env->path, st->name) : st->name;
}

static void output_stmt(Sema *s, const AstStmt *st)
{
    IrGraph *g = s->g;
    bool ok = sema_valid_c_name(s, st->name, st->name_sp, "output");
    for (size_t i = 0; i < g->outputs.len && ok; i++)
        if (strcmp(g->outputs.items[i].name, st->name) == 0) {
            Diag *dg = sema_error(s, st->name_sp, "output '%s' is defined twice", st->name);
            diag_note(s->d, dg, g->outputs.items[i].sp, "first defined here");
            ok = false;
        }
    if (ok && g->outputs.len >= SEMA_MAX_OUTPUTS) {
        sema_error(s, st->name_sp, "too many outputs: at most %d", SEMA_MAX_OUTPUTS);
        ok = false;
    }
    IrValue *v = sema_eval_tensor(s, &s->top, st->output.expr);
    if (!ok || v == &s->errv)
        return;
    IrOutput o = {st->name, v, st->name_sp};
    if (!vec_push(s->a, &g->outputs, o))
        out_of_memory(s, st->sp);
}

static void collect_block(Sema *s, const AstStmt *st)
{
    BlockDef *old = strmap_get(&s->blocks, st->name);
    if (old) {
        Diag *dg = sema_error(s, st->name_sp, "block '%s' is defined twice", st->name);
        diag_note(s->d, dg, old->st->name_sp, "first defined here");
        return;
    }
    if (sema_find_op(st->name) || !strcmp(st->name, "in") || !strcmp(st->name, "out")) {
        sema_error(s, st->name_sp, "'%s' cannot name a block: it is %s", st->name,
                   sema_find_op(st->name) ? "an op" : "reserved");
        return;
    }
    BlockDef *b = arena_alloc(s->a, sizeof *b);
    if (!b || !strmap_put(s->a, &s->blocks, st->name, b)) {
        out_of_memory(s, st->sp);
        return;
    }
    b->st = st;
    for (int i = 0; i < st->block.nparams; i++) {
        const char *p = st->block.params[i];
        if (!strcmp(p, "in") || !strcmp(p, "out"))
            sema_error(s, st->block.param_sps[i], "'%s' cannot be a parameter name: it is reserved",
                       p);
        for (int j = 0; j < i; j++)
            if (!strcmp(p, st->block.params[j]))
                sema_error(s, st->block.param_sps[i], "block '%s' has two parameters named '%s'",
                           st->name, p);
    }
    for (int i = 0; i < st->block.nbody; i++)
        if (st->block.body[i]->kind == STMT_BIND && !strcmp(st->block.body[i]->name, "out"))
            b->has_out = true;
    if (!b->has_out)
        sema_error(s, st->name_sp, "block '%s' never binds 'out' (its result)", st->name);
}

/* Default outputs: the prediction of every loss, once per value. */
static void default_outputs(Sema *s)
{
    IrGraph *g = s->g;
    for (size_t i = 0; i < g->losses.len; i++) {
        IrValue *v = g->losses.items[i]->in[0];
        bool seen = false;
        for (size_t k = 0; k < g->outputs.len; k++)
            seen |= g->outputs.items[k].value == v;
        if (seen || g->outputs.len >= SEMA_MAX_OUTPUTS)
            continue;
        /* The value's name, made a C identifier: "res1.out" -> "res1_out". */
        char *name = arena_printf(s->a, "%s%s", v->name, sema_is_c_keyword(v->name) ? "_out" : "");
        for (char *p = name; p && *p; p++)
            if (*p == '.')
                *p = '_';
        IrOutput o = {name, v, g->losses.items[i]->sp};
        if (!name || !vec_push(s->a, &g->outputs, o))
            out_of_memory(s, o.sp);
    }
}

static void warn_unused(Sema *s)
{
    const StrMap *m = &s->top.names;
    for (size_t i = 0; i < m->cap; i++) {
        const Name *nm = m->keys[i] ? m->vals[i] : NULL;
        if (nm && nm->kind == NAME_TENSOR && !nm->used && nm->value != &s->errv)
            diag_warning(s->d, nm->sp, "'%s' is computed but never used [-Wunused]", nm->name);
    }
}

static void graph_statements(Sema *s)
{
    const AstFile *f = s->f;
    for (int i = 0; i < f->nstmts && !s->halted; i++) {
        const AstStmt *st = f->stmts[i];
        if (!st)
            continue;
        if (diag_full(s->d))
            break;   /* the error limit: SQLite's nErr */
        if (st->kind == STMT_BIND)
            bind_stmt(s, &s->top, st);
        else if (st->kind == STMT_LOSS)
            s->nloss++, sema_loss(s, st);
        else if (st->kind == STMT_OUTPUT)
            output_stmt(s, st);
    }
}

int sema_run(const AstFile *f, Arena *a, DiagSink *d, IrGraph **out)
{
    *out = NULL;
    Sema *s = arena_alloc(a, sizeof *s);
    IrGraph *g = s ? ir_graph_new(a) : NULL;
    if (!g) {
        diag_error(d, (SrcSpan){0}, "out of memory");
        return 1;
    }
    int start = d->nerrors;
    s->nerr_start = start;
    s->a = a;
    s->d = d;
    s->g = g;
    s->f = f;
    s->cur = &s->top;
    s->top.path = "";
    s->file_sp = (SrcSpan){f->src, 1, 1, 1, 1};
    for (int i = 0; i < f->nstmts; i++)
        if (f->stmts[i]) {   /* "missing ..." errors point at the first statement */
            s->file_sp = f->stmts[i]->sp;
            s->file_sp.end_line = s->file_sp.line;
            s->file_sp.end_col = s->file_sp.col + 1;
            break;
        }
    for (int i = 0; i < f->nstmts; i++)
        if (f->stmts[i] && f->stmts[i]->kind == STMT_BLOCK)
            collect_block(s, f->stmts[i]);
    sema_declarations(s);
    sema_train(s);
    sema_make_input(s);
    graph_statements(s);
    if (!g->outputs.len)
        default_outputs(s);
    sema_finish(s);
    if (d->nerrors == start && !a->failed)
        warn_unused(s);
    if (a->failed && d->nerrors == start)
        diag_error(d, (SrcSpan){0}, "out of memory");
    if (d->nerrors > start)
        return d->nerrors - start;
    *out = g;
    return 0;
}
