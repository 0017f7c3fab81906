/* ir.c - the graph IR: op tables, builders, cost model, verifier, printer.
 *
 * The op tables come from ir_ops.def so names, arities and flags cannot
 * drift from the enum. Builders keep the invariants of graph.h by
 * construction (ids are indices, values have one producer); ir_verify
 * re-checks all of them after sema, so a later pass that edits the graph can
 * be checked the same way. ir_print is the stable text form behind
 * `netc check --ir`: one fact per line, numbers printed so they round-trip,
 * nothing that depends on pointers or the host.
 */
#include "graph.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int arity;
    unsigned flags;
} op_table[IR_OP_COUNT] = {
#define X(e, name, arity, flags) {name, arity, flags},
#include "ir_ops.def"
#undef X
};

const char *ir_op_name(IrOp op)
{
    return (unsigned)op < IR_OP_COUNT ? op_table[op].name : "?";
}

int ir_op_arity(IrOp op)
{
    return (unsigned)op < IR_OP_COUNT ? op_table[op].arity : 0;
}

unsigned ir_op_flags(IrOp op)
{
    return (unsigned)op < IR_OP_COUNT ? op_table[op].flags : 0;
}

const char *ir_init_name(IrInitKind k)
{
    static const char *names[] = {
        [IR_INIT_ZEROS] = "zeros", [IR_INIT_ONES] = "ones", [IR_INIT_CONSTANT] = "constant",
        [IR_INIT_NORMAL] = "normal", [IR_INIT_UNIFORM] = "uniform", [IR_INIT_XAVIER] = "xavier",
        [IR_INIT_XAVIER_UNIFORM] = "xavier_uniform", [IR_INIT_GLOROT] = "glorot",
        [IR_INIT_KAIMING] = "kaiming", [IR_INIT_KAIMING_UNIFORM] = "kaiming_uniform",
    };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* Saturates at INT64_MAX instead of overflowing; sema reports sizes past
 * IR_MAX_BYTES long before saturation matters. */
int64_t ir_shape_numel(IrShape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank && i < IR_MAX_RANK; i++) {
        if (s.d[i] < 0 || __builtin_mul_overflow(n, s.d[i], &n))
            return INT64_MAX;
    }
    return n;
}

char *ir_shape_str(IrShape s, char *buf, size_t size)
{
    size_t used = 0;
    if (!size)
        return buf;
    buf[0] = '\0';
    int n = snprintf(buf, size, "[");
    used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < s.rank && i < IR_MAX_RANK && used < size; i++) {
        n = snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", s.d[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- builders ---------------------------------------------------------- */

bool ir_fuse_parse(const char *list, unsigned *off)
{
    static const struct {
        const char *name;
        unsigned bit;
    } passes[] = {{"epilogue", IR_FUSE_EPILOGUE}, {"bnfold", IR_FUSE_BN_FOLD},
                  {"elementwise", IR_FUSE_ELEMENTWISE}, {"update", IR_FUSE_UPDATE}};
    *off = 0;
    if (!list || !*list) {
        *off = IR_FUSE_ALL;
        return true;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof passes / sizeof *passes; i++)
            if (strlen(passes[i].name) == len && strncmp(p, passes[i].name, len) == 0) {
                *off |= passes[i].bit;
                known = true;
            }
        if (!known)
            return false;
        p += len + (p[len] == ',');
    }
    return true;
}

IrGraph *ir_graph_new(Arena *a)
{
    IrGraph *g = arena_alloc(a, sizeof *g);
    if (g) {
        g->a = a;
        g->fuse = IR_FUSE_ALL;
    }
    return g;
}

IrValue *ir_value_new(IrGraph *g, IrShape shape, SrcSpan sp)
{
    IrValue *v = arena_alloc(g->a, sizeof *v);
    if (!v)
        return NULL;
    v->id = (int)g->values.len;
    v->shape = shape;
    v->sp = sp;
    if (!vec_push(g->a, &g->values, v))
        return NULL;
    return v;
}

IrNode *ir_node_new(IrGraph *g, IrOp op, SrcSpan sp)
{
    IrNode *n = arena_alloc(g->a, sizeof *n);
    if (!n)
        return NULL;
    n->id = (int)g->nodes.len;
    n->op = op;
    n->sp = sp;
    if (!vec_push(g->a, &g->nodes, n))
        return NULL;
    return n;
}

IrParam *ir_param_new(IrGraph *g, IrNode *owner, IrParamKind kind, IrShape shape)
{
    static const char *suffix[] = {
        [IR_PARAM_WEIGHT] = "weight", [IR_PARAM_BIAS] = "bias", [IR_PARAM_GAMMA] = "gamma",
        [IR_PARAM_BETA] = "beta", [IR_PARAM_RUNNING_MEAN] = "running_mean",
        [IR_PARAM_RUNNING_VAR] = "running_var",
    };
    IrParam *p = arena_alloc(g->a, sizeof *p);
    if (!p)
        return NULL;
    p->id = (int)g->params.len;
    p->kind = kind;
    p->shape = shape;
    p->numel = ir_shape_numel(shape);
    p->owner = owner;
    p->trainable = kind != IR_PARAM_RUNNING_MEAN && kind != IR_PARAM_RUNNING_VAR;
    p->name = arena_printf(g->a, "%s.%s", owner && owner->name ? owner->name : "?", suffix[kind]);
    if (!p->name || !vec_push(g->a, &g->params, p))
        return NULL;
    IrParam **slot[] = {&owner->weight, &owner->bias, &owner->gamma, &owner->beta,
                        &owner->running_mean, &owner->running_var};
    if (owner)
        *slot[kind] = p;
    return p;
}

/* ---- cost model -------------------------------------------------------- */

/* Forward FLOPs per sample. A multiply-add counts 2; a comparison, an add,
 * a mask multiply or a select counts 1; tanh and sigmoid count 4 (an exp, an
 * add, a divide and a multiply, roughly what a vectorized libm costs); a
 * softmax 3 per element (exp, sum, divide). */
int64_t ir_node_flops(const IrNode *n)
{
    if (!n->out)
        return 0;
    int64_t out = ir_shape_numel(n->out->shape);
    int64_t in = n->nin > 0 ? ir_shape_numel(n->in[0]->shape) : 0;
    switch (n->op) {
    case IR_OP_DENSE:
        return 2 * in * n->dense.units + (n->bias ? n->dense.units : 0);
    case IR_OP_CONV: {
        int64_t c = n->in[0]->shape.d[0];
        int64_t k2 = n->conv.kernel * n->conv.kernel;
        return 2 * c * k2 * out + (n->bias ? out : 0);
    }
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
        return n->pool.size * n->pool.size * out;
    case IR_OP_GLOBAL_AVGPOOL:
    case IR_OP_FRACTIONAL_MAXPOOL:
        return in;
    case IR_OP_RELU:
    case IR_OP_LEAKY_RELU:
    case IR_OP_DROPOUT:
    case IR_OP_DROP_PATH:
    case IR_OP_GAUSSIAN_NOISE:
        return out;
    case IR_OP_TANH:
    case IR_OP_SIGMOID:
        return 4 * out;
    case IR_OP_SOFTMAX:
        return 3 * out;
    case IR_OP_BATCHNORM:
        return 2 * out;
    case IR_OP_ADD:
        return (int64_t)(n->nin - 1) * out;
    case IR_OP_CROSS_ENTROPY:
        return 4 * in;
    case IR_OP_MSE:
        return 3 * in;
    case IR_OP_INPUT:
    case IR_OP_FLATTEN:
    case IR_OP_CONCAT:
    case IR_OP_COUNT:
        return 0;
    }
    return 0;
}

int64_t ir_graph_param_count(const IrGraph *g)
{
    int64_t total = 0;
    for (size_t i = 0; i < g->params.len; i++)
        if (g->params.items[i]->trainable)
            total += g->params.items[i]->numel;
    return total;
}
