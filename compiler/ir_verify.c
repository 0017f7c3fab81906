/* ir_verify.c - checks the invariants graph.h promises.
 *
 * Runs after sema (and after any pass that rewrites the graph). Every
 * violation is a compiler bug, reported as an "internal:" error at the node
 * it concerns so a test or the fuzzer sees it instead of a later crash. The
 * verifier trusts nothing: it checks pointers before following them.
 */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

typedef struct Verify {
    const IrGraph *g;
    DiagSink *d;
    int nbad;
} Verify;

#define BAD(vf, sp, ...) (bad_((vf), (sp)), diag_error((vf)->d, (sp), "internal: " __VA_ARGS__))

static void bad_(Verify *vf, SrcSpan sp)
{
    (void)sp;
    vf->nbad++;
}

static bool value_ok(const Verify *vf, const IrValue *v)
{
    return v && v->id >= 0 && (size_t)v->id < vf->g->values.len && vf->g->values.items[v->id] == v;
}

static bool shape_ok(IrShape s, bool scalar)
{
    if (scalar)
        return s.rank == 0;
    if (s.rank != 1 && s.rank != 3)
        return false;
    for (int i = 0; i < s.rank; i++)
        if (s.d[i] < 1)
            return false;
    return ir_shape_numel(s) < INT64_MAX;
}

static bool shape_eq(IrShape a, IrShape b)
{
    if (a.rank != b.rank)
        return false;
    for (int i = 0; i < a.rank; i++)
        if (a.d[i] != b.d[i])
            return false;
    return true;
}

static void verify_inputs(Verify *vf, const IrNode *n)
{
    int arity = ir_op_arity(n->op);
    if ((arity >= 0 && n->nin != arity) || (arity < 0 && n->nin < 2))
        BAD(vf, n->sp, "node %d (%s) has %d inputs, op wants %d", n->id, ir_op_name(n->op),
            n->nin, arity);
    for (int k = 0; k < n->nin; k++) {
        const IrValue *v = n->in ? n->in[k] : NULL;
        if (!value_ok(vf, v) || !v->producer) {
            BAD(vf, n->sp, "node %d input %d is not a value of the graph", n->id, k);
            continue;
        }
        if (v->producer->id >= n->id)
            BAD(vf, n->sp, "node %d uses value %d produced later by node %d (not topological)",
                n->id, v->id, v->producer->id);
    }
    if ((ir_op_flags(n->op) & IR_F_ELEMENTWISE) && n->out)
        for (int k = 0; k < n->nin; k++)
            if (n->in && value_ok(vf, n->in[k]) && !shape_eq(n->in[k]->shape, n->out->shape))
                BAD(vf, n->sp, "elementwise node %d changes the shape of input %d", n->id, k);
}

static void verify_node(Verify *vf, size_t i)
{
    const IrNode *n = vf->g->nodes.items[i];
    if (!n) {
        BAD(vf, (SrcSpan){0}, "node slot %zu is empty", i);
        return;
    }
    if ((size_t)n->id != i)
        BAD(vf, n->sp, "node at index %zu has id %d", i, n->id);
    if ((unsigned)n->op >= IR_OP_COUNT) {
        BAD(vf, n->sp, "node %d has an unknown op %d", n->id, (int)n->op);
        return;
    }
    if (!n->name)
        BAD(vf, n->sp, "node %d has no name", n->id);
    verify_inputs(vf, n);
    if (!value_ok(vf, n->out) || n->out->producer != n) {
        BAD(vf, n->sp, "node %d's output is not a value it produces", n->id);
        return;
    }
    if (!shape_ok(n->out->shape, (ir_op_flags(n->op) & IR_F_LOSS) != 0))
        BAD(vf, n->sp, "node %d (%s) has an invalid output shape", n->id, ir_op_name(n->op));
    if ((n->op == IR_OP_INPUT) != (n->nin == 0) && ir_op_arity(n->op) == 0)
        BAD(vf, n->sp, "node %d: only input nodes have no inputs", n->id);
}

static void verify_values(Verify *vf)
{
    for (size_t i = 0; i < vf->g->values.len; i++) {
        const IrValue *v = vf->g->values.items[i];
        if (!v || (size_t)v->id != i)
            BAD(vf, (SrcSpan){0}, "value at index %zu has a wrong id", i);
        else if (!v->producer || v->producer->out != v)
            BAD(vf, v->sp, "value %d has no producer", v->id);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names must be unique: they key checkpoints and generated symbols. */
static void verify_unique(Verify *vf, const char **names, size_t n, const char *what)
{
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            BAD(vf, (SrcSpan){0}, "two %s are named '%s'", what, names[i]);
}

static void verify_names(Verify *vf)
{
    const IrGraph *g = vf->g;
    size_t n = g->nodes.len > g->params.len ? g->nodes.len : g->params.len;
    const char **names = arena_array(g->a, n ? n : 1, sizeof *names);
    if (!names)
        return;
    size_t k = 0;
    for (size_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.items[i] && g->nodes.items[i]->name)
            names[k++] = g->nodes.items[i]->name;
    verify_unique(vf, names, k, "nodes");
    k = 0;
    for (size_t i = 0; i < g->params.len; i++)
        if (g->params.items[i] && g->params.items[i]->name)
            names[k++] = g->params.items[i]->name;
    verify_unique(vf, names, k, "parameters");
}

static void verify_param(Verify *vf, size_t i)
{
    const IrParam *p = vf->g->params.items[i];
    if (!p || (size_t)p->id != i) {
        BAD(vf, (SrcSpan){0}, "parameter at index %zu has a wrong id", i);
        return;
    }
    const IrNode *o = p->owner;
    if (!o || (size_t)o->id >= vf->g->nodes.len || vf->g->nodes.items[o->id] != o) {
        BAD(vf, (SrcSpan){0}, "parameter '%s' has no owner in the graph", p->name);
        return;
    }
    const IrParam *slots[] = {o->weight, o->bias, o->gamma, o->beta, o->running_mean,
                              o->running_var};
    if ((unsigned)p->kind >= sizeof slots / sizeof *slots || slots[p->kind] != p)
        BAD(vf, o->sp, "parameter '%s' is not attached to its owner", p->name);
    if (!(ir_op_flags(o->op) & IR_F_PARAMS))
        BAD(vf, o->sp, "parameter '%s' belongs to %s, which has no parameters", p->name,
            ir_op_name(o->op));
    if (p->numel != ir_shape_numel(p->shape) || p->numel < 1)
        BAD(vf, o->sp, "parameter '%s' has numel %lld for its shape", p->name,
            (long long)p->numel);
    bool state = p->kind == IR_PARAM_RUNNING_MEAN || p->kind == IR_PARAM_RUNNING_VAR;
    if (p->trainable == state)
        BAD(vf, o->sp, "parameter '%s' is %strainable", p->name, p->trainable ? "" : "not ");
    if (!(p->l1 >= 0) || !(p->l2 >= 0))
        BAD(vf, o->sp, "parameter '%s' has a negative penalty", p->name);
}

static void verify_io(Verify *vf)
{
    const IrGraph *g = vf->g;
    if (!g->model)
        BAD(vf, (SrcSpan){0}, "the graph has no model name");
    const IrValue *in = g->input.value;
    if (!value_ok(vf, in) || !in->producer || in->producer->op != IR_OP_INPUT ||
        !shape_eq(in->shape, g->input.shape))
        BAD(vf, g->input.sp, "the input value is missing or inconsistent");
    size_t nloss = 0;
    for (size_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.items[i] && (ir_op_flags(g->nodes.items[i]->op) & IR_F_LOSS))
            nloss++;
    if (nloss != g->losses.len)
        BAD(vf, (SrcSpan){0}, "%zu loss nodes but %zu losses listed", nloss, g->losses.len);
    for (size_t i = 0; i < g->losses.len; i++) {
        const IrNode *n = g->losses.items[i];
        if (!n || !(ir_op_flags(n->op) & IR_F_LOSS))
            BAD(vf, (SrcSpan){0}, "loss %zu is not a loss node", i);
        else if (n->loss.target < 0 || (size_t)n->loss.target >= g->targets.len)
            BAD(vf, n->sp, "loss node %d refers to target %d of %zu", n->id, n->loss.target,
                g->targets.len);
    }
    for (size_t i = 0; i < g->outputs.len; i++)
        if (!value_ok(vf, g->outputs.items[i].value) || !g->outputs.items[i].name)
            BAD(vf, g->outputs.items[i].sp, "output %zu has no value", i);
    for (size_t i = 0; i < g->scopes.len; i++) {
        const IrScope *s = g->scopes.items[i];
        if (!s || (size_t)s->id != i || (s->parent && s->parent->id >= s->id))
            BAD(vf, (SrcSpan){0}, "scope %zu is out of order", i);
    }
}

/* Parameters plus forward activations of one training batch. */
static void verify_size(Verify *vf)
{
    const IrGraph *g = vf->g;
    int64_t total = 0, act = 0;
    for (size_t i = 0; i < g->params.len; i++)
        if (__builtin_add_overflow(total, g->params.items[i]->numel * 4, &total))
            total = INT64_MAX;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        if (n->out && !(ir_op_flags(n->op) & IR_F_LOSS) &&
            __builtin_add_overflow(act, ir_shape_numel(n->out->shape) * 4, &act))
            act = INT64_MAX;
    }
    if (g->train.batch < 1 || __builtin_mul_overflow(act, g->train.batch, &act) ||
        __builtin_add_overflow(total, act, &total) || total > IR_MAX_BYTES)
        BAD(vf, g->model_sp, "the model exceeds IR_MAX_BYTES (or has batch < 1)");
}

int ir_verify(const IrGraph *g, DiagSink *d)
{
    Verify vf = {g, d, 0};
    if (!g) {
        BAD(&vf, (SrcSpan){0}, "no graph");
        return vf.nbad;
    }
    for (size_t i = 0; i < g->nodes.len; i++)
        verify_node(&vf, i);
    verify_values(&vf);
    for (size_t i = 0; i < g->params.len; i++)
        verify_param(&vf, i);
    verify_io(&vf);
    if (vf.nbad == 0) {
        verify_names(&vf);
        verify_size(&vf);
    }
    return vf.nbad;
}
