/* sema_ops.c - every op of LANGUAGE.md: parameters, shape inference, nodes.
 *
 * Input: an op call in tensor position with its input tensor(s) (from '->'
 * or the first positional argument). Output: one IR node with its resolved
 * attributes, output shape and parameters (init, fans, penalties), or the
 * error value after one located message.
 *
 * Shapes exclude the batch dimension: [D] or [C, H, W]. Spatial output
 * sizes use floor((in + 2 pad - k) / stride) + 1 (PyTorch's floor mode); a
 * result below 1 is an error that shows the formula and notes where the
 * input shape came from. Every product of sizes is overflow-checked; the
 * memory cap (IR_MAX_BYTES) is applied by sema.c as nodes are created.
 */
#include <stdint.h>
#include <string.h>

#include "sema_int.h"

struct OpDef {
    const char *name;
    IrOp op;
    const ArgSpec *specs;
    int nspecs;
};

enum { P_UNITS = 0 };   /* dense: units, bias, init, bias_init, l1, l2, dropconnect */
enum { C_FILTERS, C_KERNEL, C_STRIDE, C_PAD, C_BIAS, C_INIT, C_BIAS_INIT, C_L1, C_L2, C_DC };

static const ArgSpec dense_specs[] = {
    {"units", AK_INT, RG_GE1, true, NULL},
    {"bias", AK_BOOL, RG_ANY, false, NULL},
    {"init", AK_INIT, RG_ANY, false, NULL},
    {"bias_init", AK_INIT, RG_ANY, false, NULL},
    {"l1", AK_NUM, RG_GE0, false, NULL},
    {"l2", AK_NUM, RG_GE0, false, NULL},
    {"dropconnect", AK_NUM, RG_PROB, false, NULL},
};
static const ArgSpec conv_specs[] = {
    {"filters", AK_INT, RG_GE1, true, NULL},
    {"kernel", AK_INT, RG_GE1, true, NULL},
    {"stride", AK_INT, RG_GE1, false, NULL},
    {"pad", AK_PAD, RG_GE0, false, NULL},
    {"bias", AK_BOOL, RG_ANY, false, NULL},
    {"init", AK_INIT, RG_ANY, false, NULL},
    {"bias_init", AK_INIT, RG_ANY, false, NULL},
    {"l1", AK_NUM, RG_GE0, false, NULL},
    {"l2", AK_NUM, RG_GE0, false, NULL},
    {"dropconnect", AK_NUM, RG_PROB, false, NULL},
};
static const ArgSpec pool_specs[] = {
    {"size", AK_INT, RG_GE1, true, NULL},
    {"stride", AK_INT, RG_GE1, false, NULL},
    {"pad", AK_INT, RG_GE0, false, NULL},
};
static const ArgSpec frac_specs[] = {
    {"ratio", AK_NUM, RG_RATIO, true, NULL},
    {"overlap", AK_BOOL, RG_ANY, false, NULL},
};
static const ArgSpec leaky_specs[] = {{"slope", AK_NUM, RG_PROB, false, NULL}};
static const ArgSpec bn_specs[] = {
    {"momentum", AK_NUM, RG_PROB, false, NULL},
    {"eps", AK_NUM, RG_GT0, false, NULL},
    {"gamma", AK_INIT, RG_ANY, false, NULL},
};
static const ArgSpec drop_specs[] = {{"p", AK_NUM, RG_PROB, true, NULL}};
static const ArgSpec noise_specs[] = {{"std", AK_NUM, RG_GT0, true, NULL}};
static const ArgSpec ce_specs[] = {{"smoothing", AK_NUM, RG_PROB, false, NULL}};

#define OP(name, e, specs) {name, IR_OP_##e, specs, (int)(sizeof specs / sizeof *specs)}
#define OP0(name, e) {name, IR_OP_##e, NULL, 0}
static const OpDef ops[] = {
    OP("dense", DENSE, dense_specs),
    OP("conv", CONV, conv_specs),
    OP("maxpool", MAXPOOL, pool_specs),
    OP("avgpool", AVGPOOL, pool_specs),
    OP0("global_avgpool", GLOBAL_AVGPOOL),
    OP("fractional_maxpool", FRACTIONAL_MAXPOOL, frac_specs),
    OP0("flatten", FLATTEN),
    OP0("relu", RELU),
    OP("leaky_relu", LEAKY_RELU, leaky_specs),
    OP0("tanh", TANH),
    OP0("sigmoid", SIGMOID),
    OP0("softmax", SOFTMAX),
    OP("batchnorm", BATCHNORM, bn_specs),
    OP("dropout", DROPOUT, drop_specs),
    OP("drop_path", DROP_PATH, drop_specs),
    OP("gaussian_noise", GAUSSIAN_NOISE, noise_specs),
    OP0("concat", CONCAT),
    OP("cross_entropy", CROSS_ENTROPY, ce_specs),
    OP0("mse", MSE),
};
enum { NOPS = (int)(sizeof ops / sizeof *ops) };

const OpDef *sema_find_op(const char *name)
{
    for (int i = 0; i < NOPS; i++)
        if (!strcmp(ops[i].name, name))
            return &ops[i];
    return NULL;
}

IrOp sema_op_ir(const OpDef *op) { return op->op; }
bool sema_op_is_loss(const OpDef *op) { return (ir_op_flags(op->op) & IR_F_LOSS) != 0; }
const char *sema_op_name_at(int i) { return i >= 0 && i < NOPS ? ops[i].name : NULL; }

/* ---- helpers --------------------------------------------------------- */

void sema_note_shape(Sema *s, Diag *dg, const IrValue *v)
{
    char buf[96];
    if (v && span_valid(v->sp))
        diag_note(s->d, dg, v->sp, "'%s' has shape %s, from here", v->name,
                  ir_shape_str(v->shape, buf, sizeof buf));
}

static IrShape shape1(int64_t d)
{
    return (IrShape){1, {d}};
}

static IrShape shape3(int64_t c, int64_t h, int64_t w)
{
    return (IrShape){3, {c, h, w}};
}

static bool need_image(Sema *s, const char *what, const AstNode *call, const IrValue *v)
{
    char buf[96];
    if (v->shape.rank == 3)
        return true;
    Diag *dg = sema_error(s, call->sp, "%s needs a [C, H, W] input, got %s", what,
                          ir_shape_str(v->shape, buf, sizeof buf));
    sema_note_shape(s, dg, v);
    return false;
}

/* Refuses shapes whose element count does not fit in 63 bits. */
static bool fits(Sema *s, const AstNode *call, const char *what, const char *which, IrShape sh)
{
    if (ir_shape_numel(sh) < INT64_MAX)
        return true;
    char buf[128];
    sema_error(s, call->sp, "%s: %s %s has more than 2^63 elements", what, which,
               ir_shape_str(sh, buf, sizeof buf));
    return false;
}

/* out = floor((in + 2 pad - k) / stride) + 1, or an error naming the dimension. */
static bool window_out(Sema *s, const AstNode *call, const char *what, const IrValue *v,
                       const char *dim, int64_t in, int64_t k, int64_t stride, int64_t pad,
                       int64_t *out)
{
    int64_t span = in + 2 * pad - k;
    if (span >= 0) {
        *out = span / stride + 1;
        return true;
    }
    char buf[96];
    Diag *dg = sema_error(s, call->sp,
                          "%s: output would be empty: input %s, kernel %lld, stride %lld, pad %lld "
                          "give %s (%lld + 2*%lld - %lld) / %lld + 1 < 1",
                          what, ir_shape_str(v->shape, buf, sizeof buf), (long long)k,
                          (long long)stride, (long long)pad, dim, (long long)in, (long long)pad,
                          (long long)k, (long long)stride);
    sema_note_shape(s, dg, v);
    return false;
}

static IrValue *finish(Sema *s, IrNode *n)
{
    return n ? n->out : &s->errv;
}

/* ---- parameterized layers -------------------------------------------- */

typedef struct Layer {
    IrInit init, bias_init;
    bool bias;
    double l1, l2;
} Layer;

/* init, bias, penalties: the layer's own values, else the file's defaults. */
static Layer layer_common(Sema *s, const ArgVal *bias, const ArgVal *init, const ArgVal *binit,
                          const ArgVal *l1, const ArgVal *l2)
{
    const IrTrain *t = &s->g->train;
    Layer L;
    L.init = init->given ? init->init : s->def_init;
    L.bias_init = binit->given ? binit->init : s->def_bias_init;
    L.bias = bias->given ? bias->b : true;
    L.l1 = l1->given ? l1->x : t->reg.l1;
    L.l2 = l2->given ? l2->x : t->reg.l2;
    return L;
}

static bool layer_params(Sema *s, IrNode *n, const Layer *L, IrShape w, int64_t units,
                         int64_t fan_in, int64_t fan_out)
{
    IrParam *pw = sema_param(s, n, IR_PARAM_WEIGHT, w, L->init, fan_in, fan_out);
    if (!pw)
        return false;
    pw->l1 = L->l1;
    pw->l2 = L->l2;
    if (!L->bias)
        return true;
    IrParam *pb = sema_param(s, n, IR_PARAM_BIAS, shape1(units), L->bias_init, fan_in, fan_out);
    if (!pb)
        return false;
    pb->l2 = s->g->train.reg.biases ? L->l2 : 0;
    return true;
}

static IrValue *build_dense(Sema *s, Env *env, const AstNode *call, IrValue *in, ArgVal *v)
{
    int64_t units = v[P_UNITS].i, inputs = ir_shape_numel(in->shape);
    IrShape w = {2, {units, inputs}};
    if (!fits(s, call, "dense", "weight", w))
        return &s->errv;
    Layer L = layer_common(s, &v[1], &v[2], &v[3], &v[4], &v[5]);
    IrNode *n = sema_node(s, env, IR_OP_DENSE, call->sp, &in, 1, shape1(units));
    if (!n)
        return &s->errv;
    n->dense.units = units;
    n->dense.dropconnect = v[6].given ? v[6].x : 0;
    return layer_params(s, n, &L, w, units, inputs, units) ? n->out : &s->errv;
}

static IrValue *build_conv(Sema *s, Env *env, const AstNode *call, IrValue *in, ArgVal *v)
{
    if (!need_image(s, "conv", call, in))
        return &s->errv;
    int64_t c = in->shape.d[0], f = v[C_FILTERS].i, k = v[C_KERNEL].i;
    int64_t stride = v[C_STRIDE].given ? v[C_STRIDE].i : 1;
    int64_t pad = v[C_PAD].given ? v[C_PAD].i : 0;
    if (pad < 0) {   /* same: keeps H x W at stride 1, ceil(in / stride) otherwise */
        if (k % 2 == 0) {
            sema_error(s, v[C_PAD].sp, "conv: pad=same needs an odd kernel, got %lld",
                       (long long)k);
            return &s->errv;
        }
        pad = (k - 1) / 2;
    }
    int64_t ho, wo;
    if (!window_out(s, call, "conv", in, "height", in->shape.d[1], k, stride, pad, &ho) ||
        !window_out(s, call, "conv", in, "width", in->shape.d[2], k, stride, pad, &wo))
        return &s->errv;
    IrShape w = {4, {f, c, k, k}}, out = shape3(f, ho, wo);
    if (!fits(s, call, "conv", "weight", w) || !fits(s, call, "conv", "output", out))
        return &s->errv;
    Layer L = layer_common(s, &v[C_BIAS], &v[C_INIT], &v[C_BIAS_INIT], &v[C_L1], &v[C_L2]);
    IrNode *n = sema_node(s, env, IR_OP_CONV, call->sp, &in, 1, out);
    if (!n)
        return &s->errv;
    n->conv.filters = f;
    n->conv.kernel = k;
    n->conv.stride = stride;
    n->conv.pad = pad;
    n->conv.dropconnect = v[C_DC].given ? v[C_DC].x : 0;
    return layer_params(s, n, &L, w, f, c * k * k, f * k * k) ? n->out : &s->errv;
}

static IrValue *build_batchnorm(Sema *s, Env *env, const AstNode *call, IrValue *in, ArgVal *v)
{
    IrInit gamma = {.kind = IR_INIT_ONES};
    if (v[2].given) {
        gamma = v[2].init;
        if (gamma.kind != IR_INIT_ZEROS && gamma.kind != IR_INIT_ONES &&
            gamma.kind != IR_INIT_CONSTANT) {
            sema_error(s, v[2].sp, "batchnorm: gamma must be zeros, ones or constant(v), got %s",
                       ir_init_name(gamma.kind));
            return &s->errv;
        }
    }
    int64_t c = in->shape.d[0];
    IrNode *n = sema_node(s, env, IR_OP_BATCHNORM, call->sp, &in, 1, in->shape);
    if (!n)
        return &s->errv;
    n->bn.momentum = v[0].given ? v[0].x : 0.1;
    n->bn.eps = v[1].given ? v[1].x : 1e-5;
    IrShape ch = shape1(c);
    IrParam *g = sema_param(s, n, IR_PARAM_GAMMA, ch, gamma, 0, 0);
    IrParam *b = g ? sema_param(s, n, IR_PARAM_BETA, ch, (IrInit){.kind = IR_INIT_ZEROS}, 0, 0) : NULL;
    IrParam *m = b ? sema_param(s, n, IR_PARAM_RUNNING_MEAN, ch, (IrInit){.kind = IR_INIT_ZEROS}, 0, 0) : NULL;
    IrParam *var = m ? sema_param(s, n, IR_PARAM_RUNNING_VAR, ch, (IrInit){.kind = IR_INIT_ONES}, 0, 0) : NULL;
    if (!var)
        return &s->errv;
    b->l2 = s->g->train.reg.biases ? s->g->train.reg.l2 : 0;
    return n->out;
}

/* ---- shape-only ops -------------------------------------------------- */

static IrValue *build_pool(Sema *s, Env *env, const OpDef *op, const AstNode *call, IrValue *in,
                           ArgVal *v)
{
    if (!need_image(s, op->name, call, in))
        return &s->errv;
    int64_t size = v[0].i, stride = v[1].given ? v[1].i : size, pad = v[2].given ? v[2].i : 0;
    if (pad > size / 2) {
        sema_error(s, v[2].sp, "%s: pad must be at most size/2 = %lld, got %lld", op->name,
                   (long long)(size / 2), (long long)pad);
        return &s->errv;
    }
    int64_t ho, wo;
    if (!window_out(s, call, op->name, in, "height", in->shape.d[1], size, stride, pad, &ho) ||
        !window_out(s, call, op->name, in, "width", in->shape.d[2], size, stride, pad, &wo))
        return &s->errv;
    IrNode *n = sema_node(s, env, op->op, call->sp, &in, 1, shape3(in->shape.d[0], ho, wo));
    if (n) {
        n->pool.size = size;
        n->pool.stride = stride;
        n->pool.pad = pad;
    }
    return finish(s, n);
}

static IrValue *build_frac(Sema *s, Env *env, const AstNode *call, IrValue *in, ArgVal *v)
{
    if (!need_image(s, "fractional_maxpool", call, in))
        return &s->errv;
    double r = v[0].x;
    int64_t ho = (int64_t)((double)in->shape.d[1] / r), wo = (int64_t)((double)in->shape.d[2] / r);
    if (ho < 1 || wo < 1) {
        char buf[96];
        Diag *dg = sema_error(s, call->sp, "fractional_maxpool: output would be empty: input %s / %g",
                              ir_shape_str(in->shape, buf, sizeof buf), r);
        sema_note_shape(s, dg, in);
        return &s->errv;
    }
    IrNode *n = sema_node(s, env, IR_OP_FRACTIONAL_MAXPOOL, call->sp, &in, 1,
                          shape3(in->shape.d[0], ho, wo));
    if (n) {
        n->frac.ratio = r;
        n->frac.overlap = v[1].given && v[1].b;
    }
    return finish(s, n);
}

static bool checked_add(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* concat: along channels for [C, H, W] (H and W must match), along
 * features for [D]. */
static IrValue *build_concat(Sema *s, Env *env, const AstNode *call, IrValue **ins, int nin)
{
    IrShape out = ins[0]->shape;
    for (int i = 1; i < nin; i++) {
        IrShape b = ins[i]->shape;
        bool ok = b.rank == out.rank && (b.rank == 1 || (b.d[1] == out.d[1] && b.d[2] == out.d[2]));
        if (ok && checked_add(out.d[0], b.d[0], &out.d[0]))
            continue;
        char sa[96], sb[96];
        Diag *dg = sema_error(s, call->sp,
                              ok ? "concat: the channel count overflows"
                                 : "concat: cannot join %s and %s: %s",
                              ir_shape_str(ins[0]->shape, sa, sizeof sa),
                              ir_shape_str(b, sb, sizeof sb),
                              b.rank != ins[0]->shape.rank ? "ranks differ"
                                                           : "height and width must match");
        sema_note_shape(s, dg, ins[0]);
        sema_note_shape(s, dg, ins[i]);
        return &s->errv;
    }
    return finish(s, sema_node(s, env, IR_OP_CONCAT, call->sp, ins, nin, out));
}

static IrValue *build(Sema *s, Env *env, const OpDef *op, const AstNode *call, IrValue **ins,
                      int nin, ArgVal *v)
{
    IrValue *in = ins[0];
    IrNode *n;
    switch (op->op) {
    case IR_OP_DENSE:
        return build_dense(s, env, call, in, v);
    case IR_OP_CONV:
        return build_conv(s, env, call, in, v);
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
        return build_pool(s, env, op, call, in, v);
    case IR_OP_FRACTIONAL_MAXPOOL:
        return build_frac(s, env, call, in, v);
    case IR_OP_BATCHNORM:
        return build_batchnorm(s, env, call, in, v);
    case IR_OP_CONCAT:
        return build_concat(s, env, call, ins, nin);
    case IR_OP_GLOBAL_AVGPOOL:
        if (!need_image(s, "global_avgpool", call, in))
            return &s->errv;
        return finish(s, sema_node(s, env, op->op, call->sp, &in, 1, shape3(in->shape.d[0], 1, 1)));
    case IR_OP_FLATTEN:
        return finish(s, sema_node(s, env, op->op, call->sp, &in, 1,
                                   shape1(ir_shape_numel(in->shape))));
    default:
        break;
    }
    n = sema_node(s, env, op->op, call->sp, &in, 1, in->shape);
    if (!n)
        return &s->errv;
    if (op->op == IR_OP_LEAKY_RELU)
        n->leaky.slope = v[0].given ? v[0].x : 0.01;
    else if (op->op == IR_OP_DROPOUT || op->op == IR_OP_DROP_PATH)
        n->drop.p = v[0].x;
    else if (op->op == IR_OP_GAUSSIAN_NOISE)
        n->noise.std = v[0].x;
    return n->out;
}

/* ---- inputs ---------------------------------------------------------- */

static bool not_softmax(Sema *s, const char *what, const IrValue *v, SrcSpan sp)
{
    if (!v->producer || v->producer->op != IR_OP_SOFTMAX)
        return true;
    bool ce = !strcmp(what, "cross_entropy");
    Diag *dg = sema_error(s, v->producer->sp, "softmax can only be an output, but here it feeds %s%s",
                          what, ce ? " (cross_entropy applies softmax itself: give it the logits)" : "");
    diag_note(s->d, dg, sp, "%s uses it here", what);
    return false;
}

/* concat's inputs: the chained value and every leading positional. */
static int concat_inputs(Sema *s, Env *env, const AstNode *call, IrValue *chain_in,
                         IrValue ***ins, int *skip)
{
    int n = call->call.nargs + 1, nin = 0;
    *ins = arena_array(s->a, (size_t)n, sizeof **ins);
    if (!*ins)
        return -1;
    if (chain_in)
        (*ins)[nin++] = chain_in;
    for (*skip = 0; *skip < call->call.nargs && !call->call.args[*skip].key; ++*skip)
        (*ins)[nin++] = sema_eval_tensor(s, env, call->call.args[*skip].value);
    return nin;
}

IrValue *sema_apply_op(Sema *s, Env *env, const OpDef *op, const AstNode *call, IrValue *chain_in)
{
    IrValue *one[1] = {chain_in}, **ins = one;
    int nin = chain_in != NULL, skip = 0;
    bool bad = false;
    const AstArg *a0 = call->call.nargs ? &call->call.args[0] : NULL;
    bool a0_tensor = a0 && !a0->key && sema_is_tensor_expr(s, env, a0->value);
    if (a0 && !a0->key && !chain_in && !a0_tensor) {
        /* relu(logitz): an unknown name here is a tensor that is missing */
        Env *e = env;
        const AstNode *r = sema_resolve(s, &e, a0->value);
        a0_tensor = r->kind == AST_CALL && !r->call.has_parens && !sema_find_op(r->call.name) &&
                    !strmap_get(&s->blocks, r->call.name);
    }
    if (op->op == IR_OP_CONCAT) {
        nin = concat_inputs(s, env, call, chain_in, &ins, &skip);
        if (nin < 0)
            return &s->errv;
        if (nin < 2) {
            sema_error(s, call->sp, "concat needs at least 2 inputs, got %d", nin);
            bad = true;
        }
    } else if (chain_in && a0_tensor) {
        sema_error(s, a0->value->sp, "%s takes one input and already has one from '->'", op->name);
        return &s->errv;   /* the arguments are shifted: checking them would mislead */
    } else if (!chain_in && a0_tensor) {
        one[0] = sema_eval_tensor(s, env, a0->value);
        nin = skip = 1;
    } else if (!chain_in) {
        sema_error(s, call->sp, "%s needs an input: write 'x -> %s' or '%s(x, ...)'", op->name,
                   op->name, op->name);
        bad = true;
    }
    ArgVal v[16];
    if (!sema_bind_args(s, env, call, op->name, op->specs, op->nspecs, skip, v) || bad)
        return &s->errv;
    for (int i = 0; i < nin; i++)
        if (ins[i] == &s->errv)
            return &s->errv;
    for (int i = 0; i < nin; i++)
        if (!not_softmax(s, op->name, ins[i], call->sp))
            return &s->errv;
    return build(s, env, op, call, ins, nin, v);
}

/* ---- losses ---------------------------------------------------------- */

/* The target a loss names: its second positional argument. */
static int loss_target(Sema *s, const char *what, const AstNode *n)
{
    Env *env = &s->top;
    const AstNode *r = sema_resolve(s, &env, n);
    Name *nm = r->kind == AST_CALL && !r->call.has_parens ? sema_lookup(&s->top, r->call.name) : NULL;
    if (nm && nm->kind == NAME_TARGET) {
        nm->used = true;
        return nm->target;   /* -1: the declaration had an error, already reported */
    }
    if (r->kind == AST_CALL && !r->call.has_parens && !nm)
        sema_error(s, r->sp, "%s: unknown target '%s'%s%s%s", what, r->call.name,
                   sema_suggest(s, r->call.name, &s->top, false, true) ? "; did you mean '" : "",
                   sema_suggest(s, r->call.name, &s->top, false, true)
                       ? sema_suggest(s, r->call.name, &s->top, false, true) : "",
                   sema_suggest(s, r->call.name, &s->top, false, true) ? "'?" : "");
    else
        sema_error(s, r->sp, "%s: the second argument must be a target, got %s", what,
                   sema_describe(s, &s->top, r));
    return -1;
}

static bool loss_shapes(Sema *s, const OpDef *op, const AstNode *call, const IrValue *pred,
                        const IrTarget *t)
{
    SrcSpan tsp = call->call.args[1].value->sp;
    char buf[96];
    const IrShape sh = pred->shape;
    Diag *dg = NULL;
    if (op->op == IR_OP_CROSS_ENTROPY) {
        if (t->kind != IR_TARGET_CLASSES) {
            sema_error(s, tsp, "cross_entropy needs a classes target; '%s' is values(%lld) "
                       "(use mse)", t->name, (long long)t->n);
            return false;
        }
        bool ok = (sh.rank == 1 && sh.d[0] == t->n) ||
                  (sh.rank == 3 && sh.d[0] == t->n && sh.d[1] == 1 && sh.d[2] == 1);
        if (ok)
            return true;
        dg = sema_error(s, call->sp, "cross_entropy: the logits have shape %s but '%s' has %lld "
                        "classes: expected [%lld] or [%lld, 1, 1]",
                        ir_shape_str(sh, buf, sizeof buf), t->name, (long long)t->n,
                        (long long)t->n, (long long)t->n);
    } else {
        if (t->kind != IR_TARGET_VALUES) {
            sema_error(s, tsp, "mse needs a values target; '%s' is classes(%lld) "
                       "(use cross_entropy)", t->name, (long long)t->n);
            return false;
        }
        if (ir_shape_numel(sh) == t->n)
            return true;
        dg = sema_error(s, call->sp, "mse: the prediction has shape %s (%lld values) but '%s' "
                        "has %lld", ir_shape_str(sh, buf, sizeof buf),
                        (long long)ir_shape_numel(sh), t->name, (long long)t->n);
    }
    sema_note_shape(s, dg, pred);
    return false;
}

static bool loss_weight(Sema *s, const AstNode *w, double *out)
{
    *out = 1;
    if (!w)
        return true;
    if (w->kind != AST_NUMBER) {
        sema_error(s, w->sp, "loss weight must be a number, got %s", sema_describe(s, &s->top, w));
        return false;
    }
    *out = w->num.value;
    if (*out > 0 && *out < 1e300)
        return true;
    sema_error(s, w->sp, "loss weight must be > 0 and finite, got %s", w->num.text);
    return false;
}

static const OpDef *loss_op(Sema *s, const AstNode *call)
{
    const char *name = call->call.name;
    const OpDef *op = sema_find_op(name);
    if (op && sema_op_is_loss(op))
        return op;
    static const char *const losses[] = {"cross_entropy", "mse"};
    const char *best = sema_closest(name, losses, 2);
    if (op)
        sema_error(s, call->call.name_sp, "'%s' is not a loss; a loss is cross_entropy or mse", name);
    else
        sema_error(s, call->call.name_sp, "unknown loss '%s'%s%s%s; a loss is cross_entropy or mse",
                   name, best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
    return NULL;
}

void sema_loss(Sema *s, const AstStmt *st)
{
    const AstNode *call = st->loss.call;
    double weight;
    bool ok = loss_weight(s, st->loss.weight, &weight);
    const OpDef *op = call->kind == AST_CALL ? loss_op(s, call) : NULL;
    if (!op)
        return;
    if (sema_count_positional(call) < 2 || call->call.args[0].key || call->call.args[1].key) {
        sema_error(s, call->sp, "%s needs a prediction and a target: %s(pred, target%s)", op->name,
                   op->name, op->nspecs ? ", ..." : "");
        return;
    }
    IrValue *pred = sema_eval_tensor(s, &s->top, call->call.args[0].value);
    int t = loss_target(s, op->name, call->call.args[1].value);
    ArgVal v[1];
    ok &= sema_bind_args(s, &s->top, call, op->name, op->specs, op->nspecs, 2, v);
    if (!ok || t < 0 || pred == &s->errv)
        return;
    if (!not_softmax(s, op->name, pred, call->call.args[0].value->sp) ||
        !loss_shapes(s, op, call, pred, s->g->targets.items[t]))
        return;
    IrNode *n = sema_node(s, &s->top, op->op, call->sp, &pred, 1, (IrShape){0, {0}});
    if (!n)
        return;
    n->loss.target = t;
    n->loss.weight = weight;
    n->loss.smoothing = op->op == IR_OP_CROSS_ENTROPY && v[0].given ? v[0].x : 0;
    if (!vec_push(s->a, &s->g->losses, n))
        s->halted = true;
}
