/* lower.c - graph IR -> kernel program (kernel.h) with a static memory plan.
 *
 * Input: a verified graph (shapes inferred, defaults resolved). Output: the
 * predict and train step lists over two spaces:
 *   parameter block = [trainable parameters][running statistics]
 *                     [preprocessing statistics][gradients][optimizer state]
 *     (trainable parameters, their gradients and each optimizer state are
 *     contiguous in parameter order, so one optimizer step covers them all);
 *   activation arena = a slot per value, per gradient and per saved tensor,
 *     placed by liveness (plan_arena): a buffer is live from the step that
 *     first touches it to the step that last does, and only buffers with
 *     disjoint lifetimes share memory. predict and train_step have buffers
 *     of their own and share the arena.
 * Every op, preprocessing mode and mix of LANGUAGE.md lowers; the one model
 * refused here is one without parameters (nothing to train). Random
 * regularizers get steps of their own (kernel.h: a node's draws are keyed
 * by its id), inference skips the train-only ones.
 */
#include "kernel.h"

#include <ctype.h>
#include <string.h>

const char *k_op_name(KOp op)
{
    static const char *names[] = {
        "preprocess", "augment_geo", "augment_post", "dense_fwd", "dense_bwd", "conv_fwd",
        "conv_bwd", "maxpool_fwd", "maxpool_bwd", "avgpool_fwd", "avgpool_bwd", "act_fwd",
        "act_bwd", "bn_fwd_train", "bn_fwd_infer", "bn_bwd", "dropout_fwd", "dropout_bwd",
        "add_fwd", "grad_copy", "concat_fwd", "concat_bwd", "gap_fwd", "gap_bwd", "softmax",
        "cross_entropy", "mse", "output", "penalty", "opt_sgd", "opt_adam", "dense_dc_fwd",
        "dense_dc_bwd", "dropconnect_mask", "dropconnect_grad", "drop_path_fwd", "drop_path_bwd",
        "noise_fwd", "fracpool_fwd", "fracpool_bwd", "mix", "bn_fold",
    };
    return (size_t)op < sizeof names / sizeof *names ? names[op] : "?";
}

int kp_buf_new(KProgram *kp, const char *name, KSpace space, int64_t per_sample, int64_t fixed)
{
    KBuf b = {(int)kp->bufs.len, name, space, 0, per_sample, fixed};
    int64_t floats = per_sample ? per_sample * kp->batch : fixed;
    /* Keep every buffer 16-float (64-byte) aligned for the SIMD kernels. */
    floats = (floats + 15) / 16 * 16;
    int64_t *top = space == KS_PARAMS ? &kp->block_floats : &kp->arena_floats;
    b.off = *top;
    *top += floats;
    if (!vec_push(kp->g->a, &kp->bufs, b))
        return -1;
    return b.id;
}

KStep *kp_step(KProgram *kp, bool train, KOp op, const IrNode *n, const char *what)
{
    KStep s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < K_MAX_BUFS; i++)
        s.buf[i] = -1;
    s.op = op;
    s.node = n;
    KStepList *list = train ? &kp->train : &kp->predict;
    s.fn = arena_printf(kp->g->a, "%c%02zu_%s", train ? 't' : 'p', list->len, what);
    for (char *c = (char *)s.fn; c && *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            *c = '_';   /* "stage2.conv1" -> "stage2_conv1": a C identifier */
    if (!s.fn || !vec_push(kp->g->a, list, s))
        return NULL;
    return &list->items[list->len - 1];
}

static void step_bufs(KStep *s, int nb, const int *bufs)
{
    for (int i = 0; i < nb; i++)
        s->buf[i] = bufs[i];
    s->nbuf = nb;
}

/* ---- what the model must have ---------------------------------------------- */

static int check_graph(const IrGraph *g, DiagSink *d)
{
    int nerr = 0;
    if (g->params.len == 0) {
        diag_error(d, g->model_sp, "model '%s' has no parameters to train", g->model);
        nerr++;
    }
    return nerr;
}

/* ---- structure hash: what a checkpoint must agree on --------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t hash_shape(uint64_t h, IrShape s)
{
    h = fnv(h, &s.rank, sizeof s.rank);
    for (int i = 0; i < s.rank; i++)
        h = fnv(h, &s.d[i], sizeof s.d[i]);
    return h;
}

/* Op kinds, shapes, parameter names and shapes, the optimizer (its state is
 * in the checkpoint) and the preprocessing kind. Fixed-width fields only, so
 * the hash is the same on every host. */
static uint64_t structure_hash(const IrGraph *g)
{
    uint64_t h = fnv(UINT64_C(0xcbf29ce484222325), g->model, strlen(g->model) + 1);
    h = hash_shape(h, g->input.shape);
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        int32_t op = (int32_t)n->op;
        h = fnv(h, &op, sizeof op);
        h = hash_shape(h, n->out->shape);
    }
    for (size_t i = 0; i < g->params.len; i++) {
        const IrParam *p = g->params.items[i];
        h = fnv(h, p->name, strlen(p->name) + 1);
        h = hash_shape(h, p->shape);
    }
    int32_t opt = (int32_t)g->train.opt.kind, pre = (int32_t)g->pre.kind;
    h = fnv(h, &opt, sizeof opt);
    return fnv(h, &pre, sizeof pre);
}

/* ---- the parameter block -------------------------------------------------- */

static const char *suffixed(Arena *a, const char *name, const char *sfx)
{
    return arena_printf(a, "%s.%s", name, sfx);
}

/* Trainable data, then state, then preprocessing statistics, then gradients
 * and optimizer state in the same order as the trainable data. */
static bool plan_params(KProgram *kp)
{
    const IrGraph *g = kp->g;
    Arena *a = g->a;
    for (size_t i = 0; i < g->params.len; i++) {
        KParam kpar = {g->params.items[i], -1, -1, {-1, -1}};
        if (!vec_push(a, &kp->params, kpar))
            return false;
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < kp->params.len; i++) {
            KParam *q = &kp->params.items[i];
            if (q->p->trainable == (pass == 0))
                q->buf = kp_buf_new(kp, q->p->name, KS_PARAMS, 0, q->p->numel);
        }
    kp->pre_mean = kp->pre_std = -1;
    IrPreKind pk = g->pre.kind;
    IrShape in = g->input.shape;
    kp->pre_channels = pk == IR_PRE_MEAN_IMAGE || pk == IR_PRE_ZCA ? ir_shape_numel(in)
                     : in.rank == 3 ? in.d[0] : 1;
    if (pk == IR_PRE_MEAN_IMAGE || pk == IR_PRE_MEAN_CHANNEL || pk == IR_PRE_STANDARDIZE
        || pk == IR_PRE_ZCA)
        kp->pre_mean = kp_buf_new(kp, "preprocess.mean", KS_PARAMS, 0, kp->pre_channels);
    if (pk == IR_PRE_STANDARDIZE)
        kp->pre_std = kp_buf_new(kp, "preprocess.std", KS_PARAMS, 0, kp->pre_channels);
    if (pk == IR_PRE_ZCA)
        kp->pre_std = kp_buf_new(kp, "preprocess.zca", KS_PARAMS, 0,
                                 kp->pre_channels * kp->pre_channels);
    const char *state_names[2][2] = {{"momentum", NULL}, {"adam_m", "adam_v"}};
    int nstate = g->train.opt.kind == IR_OPT_SGD ? (g->train.opt.momentum > 0 ? 1 : 0) : 2;
    int sk = g->train.opt.kind == IR_OPT_SGD ? 0 : 1;
    for (int s = -1; s < nstate; s++)
        for (size_t i = 0; i < kp->params.len; i++) {
            KParam *q = &kp->params.items[i];
            if (!q->p->trainable)
                continue;
            const char *nm = suffixed(a, q->p->name, s < 0 ? "grad" : state_names[sk][s]);
            int b = kp_buf_new(kp, nm, KS_PARAMS, 0, q->p->numel);
            if (s < 0)
                q->grad = b;
            else
                q->state[s] = b;
        }
    return !a->failed;
}

/* The buffer spanning a run of trainable tensors, first to last. */
static int span_buf(KProgram *kp, const char *name, int first, int last)
{
    KBuf b0 = kp->bufs.items[first], b1 = kp->bufs.items[last];
    KBuf s = {(int)kp->bufs.len, name, KS_PARAMS, b0.off, 0, b1.off + b1.fixed - b0.off};
    if (!vec_push(kp->g->a, &kp->bufs, s))
        return -1;
    return s.id;
}

static const KParam *kparam(const KProgram *kp, const IrParam *p)
{
    return p ? &kp->params.items[p->id] : NULL;
}

static int pbuf(const KProgram *kp, const IrParam *p)
{
    return p ? kparam(kp, p)->buf : -1;
}

/* ---- fusion (docs/architecture.md, "Fusion") ------------------------------ */

static bool is_act(IrOp op)
{
    return op == IR_OP_RELU || op == IR_OP_LEAKY_RELU || op == IR_OP_TANH || op == IR_OP_SIGMOID;
}

/* The activation host n's epilogue may take: relu after dense/conv (the
 * GEMM epilogue), relu or leaky_relu after batchnorm, any activation after
 * add. tanh and sigmoid cost 7.5 and 2.6 ns a value against 0.27 for the
 * memory pass a fusion saves (bench/RESULTS.md, "Fusion"): not worth a
 * batchnorm variant. */
static bool epilogue_takes(const IrGraph *g, const IrNode *n, const IrNode *r)
{
    if (n->op == IR_OP_ADD)
        return (g->fuse & IR_FUSE_ELEMENTWISE) && is_act(r->op);
    if (!(g->fuse & IR_FUSE_EPILOGUE))
        return false;
    if (n->op == IR_OP_BATCHNORM)
        return r->op == IR_OP_RELU || r->op == IR_OP_LEAKY_RELU;
    return (n->op == IR_OP_DENSE || n->op == IR_OP_CONV) && r->op == IR_OP_RELU;
}

/* A node whose output has one use (no other consumer, not an output) may
 * absorb that consumer: an activation goes into its epilogue (which saves a
 * pass over the tensor and its buffer); a batchnorm after dense/conv is
 * folded into the weights of the predict list. */
static bool plan_fusion(KProgram *kp)
{
    const IrGraph *g = kp->g;
    Arena *a = g->a;
    size_t nn = g->nodes.len ? g->nodes.len : 1, nv = g->values.len ? g->values.len : 1;
    int *uses = arena_array(a, nv, sizeof *uses);
    const IrNode **consumer = arena_array(a, nv, sizeof *consumer);
    kp->act_of = arena_array(a, nn, sizeof *kp->act_of);
    kp->fused_into = arena_array(a, nn, sizeof *kp->fused_into);
    kp->bn_of = arena_array(a, nn, sizeof *kp->bn_of);
    kp->folded = arena_array(a, nn, sizeof *kp->folded);
    if (!uses || !consumer || !kp->act_of || !kp->fused_into || !kp->bn_of || !kp->folded)
        return false;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        for (int k = 0; k < n->nin; k++) {
            uses[n->in[k]->id]++;
            consumer[n->in[k]->id] = n;
        }
    }
    for (size_t k = 0; k < g->outputs.len; k++)
        uses[g->outputs.items[k].value->id]++;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        const IrNode *r = uses[n->out->id] == 1 ? consumer[n->out->id] : NULL;
        if (r && epilogue_takes(g, n, r)) {
            kp->act_of[n->id] = r;
            kp->fused_into[r->id] = true;
        }
        if (r && (g->fuse & IR_FUSE_BN_FOLD) && r->op == IR_OP_BATCHNORM
            && (n->op == IR_OP_DENSE || n->op == IR_OP_CONV)) {
            kp->bn_of[n->id] = r;
            kp->folded[r->id] = true;
        }
    }
    return true;
}

/* ---- forward ------------------------------------------------------------- */

typedef struct Lower {
    KProgram *kp;
    int *train_val;     /* value id -> buffer in training mode */
    int *pred_val;      /* value id -> buffer in inference mode */
    int (*aux)[2];      /* node id -> saved buffers (train) */
} Lower;

static void conv_ints(KStep *s, const IrNode *n)
{
    IrShape in = n->in[0]->shape;
    s->i[0] = in.d[0], s->i[1] = in.d[1], s->i[2] = in.d[2];
    s->i[3] = n->conv.filters, s->i[4] = n->conv.kernel;
    s->i[5] = n->conv.stride, s->i[6] = n->conv.pad;
}

static void pool_ints(KStep *s, const IrNode *n)
{
    IrShape in = n->in[0]->shape, out = n->out->shape;
    s->i[0] = in.d[0], s->i[1] = in.d[1], s->i[2] = in.d[2];
    s->i[3] = n->pool.size, s->i[4] = n->pool.stride, s->i[5] = n->pool.pad;
    s->i[6] = out.d[1], s->i[7] = out.d[2];
}

static void bn_ints(KStep *s, const IrNode *n)
{
    IrShape sh = n->out->shape;
    s->i[0] = sh.d[0];
    s->i[1] = sh.rank == 3 ? sh.d[1] * sh.d[2] : 1;
    s->f[0] = n->bn.momentum, s->f[1] = n->bn.eps;
}

KAct k_act(IrOp op)
{
    return op == IR_OP_RELU ? KACT_RELU : op == IR_OP_LEAKY_RELU ? KACT_LEAKY_RELU
         : op == IR_OP_TANH ? KACT_TANH : KACT_SIGMOID;
}

/* Conv dropconnect: one mask per batch and the masked weights the
 * convolution then uses (aux: mask, masked weights). Returns the masked
 * weights' buffer, 0 when out of memory (buffer 0 is always a parameter). */
static int lower_conv_mask(Lower *L, const IrNode *n)
{
    KProgram *kp = L->kp;
    Arena *a = kp->g->a;
    KStep *s = kp_step(kp, true, K_DROPCONNECT_MASK, n, arena_printf(a, "%s_dropconnect", n->name));
    if (!s)
        return 0;
    int64_t numel = n->weight->numel;
    L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "dropconnect_mask"), KS_ARENA, 0, numel);
    L->aux[n->id][1] = kp_buf_new(kp, suffixed(a, n->name, "masked_weight"), KS_ARENA, 0, numel);
    step_bufs(s, 3, (int[]){pbuf(kp, n->weight), L->aux[n->id][0], L->aux[n->id][1]});
    s->i[0] = numel, s->i[1] = n->id;
    s->f[0] = n->conv.dropconnect;
    return L->aux[n->id][1] > 0 ? L->aux[n->id][1] : 0;
}

/* Fractional max pooling: region sets (int32) drawn per sample each
 * training step, one fixed set at inference; argmax saved in training. */
static KStep *lower_fracpool(Lower *L, const IrNode *n, bool train, int x, int y, const char *fn)
{
    KProgram *kp = L->kp;
    Arena *a = kp->g->a;
    IrShape in = n->in[0]->shape, out = n->out->shape;
    KStep *s = kp_step(kp, train, K_FRACPOOL_FWD, n, fn);
    if (!s)
        return NULL;
    int64_t regions = 2 * (out.d[1] + out.d[2]);
    int rb = kp_buf_new(kp, suffixed(a, n->name, "regions"), KS_ARENA, train ? regions : 0,
                        train ? 0 : regions);
    int am = -1;
    if (train)
        am = L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "argmax"), KS_ARENA,
                                           ir_shape_numel(out), 0);
    step_bufs(s, 4, (int[]){x, y, am, rb});
    s->i[0] = in.d[0], s->i[1] = in.d[1], s->i[2] = in.d[2];
    s->i[3] = out.d[1], s->i[4] = out.d[2], s->i[5] = n->frac.overlap;
    s->i[6] = n->id, s->i[7] = train;
    return s;
}

/* a + b + ...: groups of up to K_MAX_BUFS - 1 inputs; every group after
 * the first adds to y (its first input is y itself). */
static KStep *lower_add(KProgram *kp, const IrNode *n, bool train, const int *map, int y,
                        const char *fn)
{
    KStep *s = NULL;
    for (int k0 = 0; k0 < n->nin;) {
        s = kp_step(kp, train, K_ADD_FWD, n, fn);
        if (!s)
            return NULL;
        int nb = 0;
        if (k0 > 0)
            s->buf[nb++] = y;
        for (; k0 < n->nin && nb < K_MAX_BUFS - 1; k0++)
            s->buf[nb++] = map[n->in[k0]->id];
        s->buf[nb] = y;
        s->nbuf = nb + 1;
        s->i[0] = ir_shape_numel(n->out->shape);
    }
    return s;
}

/* concat: groups of up to K_CONCAT_GROUP inputs, each writing its channel
 * range of y (K_CONCAT_FWD's i1 offset, i2 channels of y). */
static KStep *lower_concat(KProgram *kp, const IrNode *n, bool train, const int *map, int y,
                           const char *fn)
{
    IrShape sh = n->out->shape;
    KStep *s = NULL;
    int64_t off = 0;
    for (int k0 = 0; k0 < n->nin; k0 += K_CONCAT_GROUP) {
        s = kp_step(kp, train, K_CONCAT_FWD, n, fn);
        if (!s)
            return NULL;
        int g = n->nin - k0 < K_CONCAT_GROUP ? n->nin - k0 : K_CONCAT_GROUP;
        s->i[0] = sh.rank == 3 ? sh.d[1] * sh.d[2] : 1;
        s->i[1] = off, s->i[2] = sh.d[0];
        for (int k = 0; k < g; k++) {
            s->buf[k] = map[n->in[k0 + k]->id];
            s->i[3 + k] = n->in[k0 + k]->shape.d[0];
            off += s->i[3 + k];
        }
        s->buf[g] = y;
        s->nbuf = g + 1;
    }
    return s;
}

/* Inference: batchnorm bn folded into dense/conv n (K_BN_FOLD), every
 * predict call; *w and *b become the folded weights and bias. */
static bool lower_fold(Lower *L, const IrNode *n, const IrNode *bn, int *w, int *b)
{
    KProgram *kp = L->kp;
    Arena *a = kp->g->a;
    int64_t f = bn->out->shape.d[0], wn = n->weight->numel;
    int wf = kp_buf_new(kp, suffixed(a, n->name, "folded_weight"), KS_ARENA, 0, wn);
    int bf = kp_buf_new(kp, suffixed(a, n->name, "folded_bias"), KS_ARENA, 0, f);
    KStep *s = kp_step(kp, false, K_BN_FOLD, bn, arena_printf(a, "%s_%s_fold", n->name, bn->name));
    if (!s)
        return false;
    step_bufs(s, 8, (int[]){*w, *b, pbuf(kp, bn->gamma), pbuf(kp, bn->beta), pbuf(kp, bn->running_mean),
                            pbuf(kp, bn->running_var), wf, bf});
    s->i[0] = f, s->i[1] = wn / f;
    s->f[0] = bn->bn.eps;
    *w = wf, *b = bf;
    return true;
}

/* Inference: the activation of a folded batchnorm that the GEMM epilogue
 * cannot take, in place on the dense/conv output y. */
static KStep *lower_tail_act(KProgram *kp, const IrNode *act, int y, int64_t numel)
{
    KStep *s = kp_step(kp, false, K_ACT_FWD, act, arena_printf(kp->g->a, "%s_infer", act->name));
    if (s) {
        step_bufs(s, 2, (int[]){y, y});
        s->i[0] = k_act(act->op), s->i[1] = numel;
        s->f[0] = act->op == IR_OP_LEAKY_RELU ? act->leaky.slope : 0;
    }
    return s;
}

/* One forward step of n in the given mode; map is that mode's value map. */
static bool lower_node(Lower *L, const IrNode *n, bool train, int *map)
{
    KProgram *kp = L->kp;
    Arena *a = kp->g->a;
    int x = n->nin > 0 ? map[n->in[0]->id] : -1;
    int64_t numel = ir_shape_numel(n->out->shape);
    IrOp op = n->op;
    /* Identities get no step and no buffer of their own. */
    if (op == IR_OP_FLATTEN || (!train && (ir_op_flags(op) & IR_F_TRAIN_ONLY))) {
        map[n->out->id] = x;
        return true;
    }
    if (op == IR_OP_CROSS_ENTROPY || op == IR_OP_MSE || (train && op == IR_OP_SOFTMAX)
        || kp->fused_into[n->id] || (!train && kp->folded[n->id]))
        return true;    /* losses: autodiff; softmax: outputs only; fused activations and folded
                         * batchnorms: done by their host's step */
    const IrNode *bn = train ? NULL : kp->bn_of[n->id];
    const IrNode *act = kp->act_of[bn ? bn->id : n->id];
    const IrNode *tail = act ? act : bn ? bn : n;
    int y = kp_buf_new(kp, tail->name, KS_ARENA, numel, 0);
    map[n->out->id] = map[tail->out->id] = y;
    if (bn)
        map[bn->out->id] = y;
    const char *fn = arena_printf(a, "%s%s%s%s%s_%s", n->name, bn ? "_" : "", bn ? bn->name : "",
                                  act ? "_" : "", act ? act->name : "", train ? "forward" : "infer");
    int w = pbuf(kp, n->weight), b = pbuf(kp, n->bias);
    /* conv + batchnorm: nrt_conv_forward_bn folds into the packed weights
     * itself (no K_BN_FOLD step); dense: a fold step first */
    if (bn && op != IR_OP_CONV && !lower_fold(L, n, bn, &w, &b))
        return false;
    /* the GEMM epilogue has relu only: a folded batchnorm's leaky_relu is a
     * step of its own after the dense/conv (lower_tail_act) */
    bool gemm_act = act && act->op == IR_OP_RELU;
    KStep *s = NULL;
    switch (op) {
    case IR_OP_DENSE: {
        bool dc = train && n->dense.dropconnect > 0;
        s = kp_step(kp, train, dc ? K_DENSE_DC_FWD : K_DENSE_FWD, n, fn);
        if (s) {
            step_bufs(s, 4, (int[]){x, w, b, y});
            s->i[0] = ir_shape_numel(n->in[0]->shape), s->i[1] = numel;
            s->i[2] = gemm_act;
            s->i[3] = dc ? n->id : 0;
            s->f[0] = dc ? n->dense.dropconnect : 0;
        }
        if (s && dc) {     /* the masks as bits, 32 weights a float slot */
            int64_t in = s->i[0], words = numel * ((in + 31) / 32);
            L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "dropconnect_bits"), KS_ARENA, words, 0);
            s->buf[4] = L->aux[n->id][0], s->nbuf = 5;
        }
        break;
    }
    case IR_OP_CONV: {
        if (train && n->conv.dropconnect > 0 && !(w = lower_conv_mask(L, n)))
            return false;
        s = kp_step(kp, train, K_CONV_FWD, n, fn);
        if (s) {
            step_bufs(s, 4, (int[]){x, w, b, y});
            conv_ints(s, n);
            s->i[7] = gemm_act;
        }
        if (s && bn) {   /* b4 gamma, b5 beta, b6 rmean, b7 rvar, f0 eps */
            step_bufs(s, 8, (int[]){x, w, b, y, pbuf(kp, bn->gamma), pbuf(kp, bn->beta),
                                    pbuf(kp, bn->running_mean), pbuf(kp, bn->running_var)});
            s->f[0] = bn->bn.eps;
        }
        break;
    }
    case IR_OP_FRACTIONAL_MAXPOOL:
        s = lower_fracpool(L, n, train, x, y, fn);
        break;
    case IR_OP_DROP_PATH:
        s = kp_step(kp, true, K_DROP_PATH_FWD, n, fn);
        if (s) {
            L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "scale"), KS_ARENA, 1, 0);
            step_bufs(s, 3, (int[]){x, y, L->aux[n->id][0]});
            s->i[0] = numel, s->i[1] = n->id;
            s->f[0] = n->drop.p;
        }
        break;
    case IR_OP_GAUSSIAN_NOISE:
        s = kp_step(kp, true, K_NOISE_FWD, n, fn);
        if (s) {
            step_bufs(s, 2, (int[]){x, y});
            s->i[0] = numel, s->i[1] = n->id;
            s->f[0] = n->noise.std;
        }
        break;
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
        s = kp_step(kp, train, op == IR_OP_MAXPOOL ? K_MAXPOOL_FWD : K_AVGPOOL_FWD, n, fn);
        if (s) {
            step_bufs(s, 2, (int[]){x, y});
            pool_ints(s, n);
        }
        if (s && train && op == IR_OP_MAXPOOL) {
            /* int32 winners, one per output element, for the backward */
            L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "argmax"), KS_ARENA, numel, 0);
            s->buf[2] = L->aux[n->id][0], s->nbuf = 3;
        }
        break;
    case IR_OP_GLOBAL_AVGPOOL:
        s = kp_step(kp, train, K_GAP_FWD, n, fn);
        if (s) {
            IrShape in = n->in[0]->shape;
            step_bufs(s, 2, (int[]){x, y});
            s->i[0] = in.d[0], s->i[1] = in.d[1] * in.d[2];
        }
        break;
    case IR_OP_RELU:
    case IR_OP_LEAKY_RELU:
    case IR_OP_TANH:
    case IR_OP_SIGMOID:
        s = kp_step(kp, train, K_ACT_FWD, n, fn);
        if (s) {
            step_bufs(s, 2, (int[]){x, y});
            s->i[0] = k_act(op), s->i[1] = numel;
            s->f[0] = op == IR_OP_LEAKY_RELU ? n->leaky.slope : 0;
        }
        break;
    case IR_OP_BATCHNORM: {
        int c = (int)n->out->shape.d[0];
        int common[5] = {x, pbuf(kp, n->gamma), pbuf(kp, n->beta), pbuf(kp, n->running_mean),
                         pbuf(kp, n->running_var)};
        s = kp_step(kp, train, train ? K_BN_FWD_TRAIN : K_BN_FWD_INFER, n, fn);
        if (!s)
            break;
        step_bufs(s, 5, common);
        s->buf[5] = y;
        s->nbuf = 6;
        if (train) {
            L->aux[n->id][0] = s->buf[6] = kp_buf_new(kp, suffixed(a, n->name, "mean"), KS_ARENA, 0, c);
            L->aux[n->id][1] = s->buf[7] = kp_buf_new(kp, suffixed(a, n->name, "invstd"), KS_ARENA, 0, c);
            s->nbuf = 8;
            if (act)    /* the backward masks dy from x through these (K_BN_FWD_TRAIN) */
                s->buf[8] = kp_buf_new(kp, suffixed(a, n->name, "affine"), KS_ARENA, 0, 2 * c),
                s->nbuf = 9;
        }
        bn_ints(s, n);
        s->i[2] = act ? 1 + k_act(act->op) : 0;    /* 1: relu, 2: leaky_relu */
        s->f[2] = act && act->op == IR_OP_LEAKY_RELU ? act->leaky.slope : 0;
        break;
    }
    case IR_OP_DROPOUT:
        s = kp_step(kp, train, K_DROPOUT_FWD, n, fn);
        if (s) {
            L->aux[n->id][0] = kp_buf_new(kp, suffixed(a, n->name, "mask"), KS_ARENA, numel, 0);
            step_bufs(s, 3, (int[]){x, y, L->aux[n->id][0]});
            s->i[0] = numel, s->i[1] = n->id;
            s->f[0] = n->drop.p;
        }
        break;
    case IR_OP_ADD:
        s = lower_add(kp, n, train, map, y, fn);
        if (s && act) {     /* in the last group's loop */
            s->i[1] = 1 + k_act(act->op);
            s->f[0] = act->op == IR_OP_LEAKY_RELU ? act->leaky.slope : 0;
        }
        break;
    case IR_OP_CONCAT:
        s = lower_concat(kp, n, train, map, y, fn);
        break;
    case IR_OP_SOFTMAX:
        s = kp_step(kp, train, K_SOFTMAX, n, fn);
        if (s) {
            step_bufs(s, 2, (int[]){x, y});
            s->i[0] = numel;
        }
        break;
    default:
        NETC_DIE("lower: op %s reached the forward pass", ir_op_name(op));
    }
    if (s && act && !gemm_act && (op == IR_OP_DENSE || op == IR_OP_CONV))
        s = lower_tail_act(kp, act, y, numel);
    return s != NULL;
}

/* mixup / cutmix after augmentation and preprocessing (K_MIX); the losses
 * read its partners and lambda. */
static bool lower_mix(Lower *L, int xb)
{
    KProgram *kp = L->kp;
    const IrGraph *g = kp->g;
    IrShape in = g->input.shape;
    int64_t d = ir_shape_numel(in);
    KStep *s = kp_step(kp, true, K_MIX, NULL, g->train.mix.kind == IR_MIX_MIXUP ? "mixup" : "cutmix");
    if (!s)
        return false;
    kp->mix_perm = kp_buf_new(kp, "mix.perm", KS_ARENA, 2, 0);    /* int64 per sample */
    kp->mix_lambda = kp_buf_new(kp, "mix.lambda", KS_ARENA, 0, 1);
    step_bufs(s, 4, (int[]){xb, kp_buf_new(kp, "mix.scratch", KS_ARENA, d, 0), kp->mix_perm,
                            kp->mix_lambda});
    s->i[0] = g->train.mix.kind;
    bool cut = g->train.mix.kind == IR_MIX_CUTMIX;     /* sema: an image input */
    s->i[1] = cut ? in.d[0] : d, s->i[2] = cut ? in.d[1] : 1, s->i[3] = cut ? in.d[2] : 1;
    s->f[0] = g->train.mix.alpha;
    return true;
}

/* Preprocessing (and augmentation in training) of the caller's input. */
static bool lower_input(Lower *L, bool train, int *map)
{
    KProgram *kp = L->kp;
    const IrGraph *g = kp->g;
    int xb = kp_buf_new(kp, g->input.name, KS_ARENA, ir_shape_numel(g->input.shape), 0);
    map[g->input.value->id] = xb;
    bool geo = false, post = false;
    for (int i = 0; train && i < g->train.naug; i++) {
        IrAugKind k = g->train.aug[i].kind;
        geo |= k == IR_AUG_TRANSLATE || k == IR_AUG_FLIP || k == IR_AUG_ROTATE;
        post |= k == IR_AUG_CUTOUT || k == IR_AUG_NOISE;
    }
    KStep *s = NULL;
    if (geo && !(s = kp_step(kp, true, K_AUGMENT_GEO, NULL, "augment_geometric")))
        return false;
    if (s) {
        int64_t d = ir_shape_numel(g->input.shape);
        s->buf[0] = xb, s->nbuf = 2;
        s->buf[1] = kp_buf_new(kp, "augment.scratch", KS_ARENA, d, 0);
    }
    KStep *p = kp_step(kp, train, K_PREPROCESS, NULL, "preprocess");
    if (!p)
        return false;
    step_bufs(p, 3, (int[]){xb, kp->pre_mean, kp->pre_std});
    p->i[0] = !geo;     /* 1: read the caller's input, 0: augment left it in b0 */
    if (g->pre.kind == IR_PRE_ZCA) {
        p->buf[3] = kp_buf_new(kp, "preprocess.scratch", KS_ARENA, ir_shape_numel(g->input.shape), 0);
        p->nbuf = 4;
    }
    if (post && !(s = kp_step(kp, true, K_AUGMENT_POST, NULL, "augment_post")))
        return false;
    if (post)
        s->buf[0] = xb, s->nbuf = 1;
    return !train || g->train.mix.kind == IR_MIX_NONE || lower_mix(L, xb);
}

static bool lower_forward(Lower *L, bool train)
{
    const IrGraph *g = L->kp->g;
    int *map = train ? L->train_val : L->pred_val;
    if (!lower_input(L, train, map))
        return false;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        if (n->op != IR_OP_INPUT && !lower_node(L, n, train, map))
            return false;
    }
    return true;
}

static bool lower_outputs(Lower *L)
{
    const IrGraph *g = L->kp->g;
    for (size_t k = 0; k < g->outputs.len; k++) {
        const IrOutput *o = &g->outputs.items[k];
        const char *fn = arena_printf(g->a, "output_%s", o->name);
        KStep *s = fn ? kp_step(L->kp, false, K_OUTPUT, o->value->producer, fn) : NULL;
        if (!s)
            return false;
        s->buf[0] = L->pred_val[o->value->id], s->nbuf = 1;
        s->i[0] = (int64_t)k, s->i[1] = ir_shape_numel(o->value->shape);
    }
    return true;
}

/* ---- penalties and the optimizer ----------------------------------------- */

static bool lower_update(KProgram *kp)
{
    const IrGraph *g = kp->g;
    kp->guard_penalties = (g->fuse & IR_FUSE_UPDATE) != 0;
    for (size_t i = 0; i < kp->params.len; i++) {
        const KParam *q = &kp->params.items[i];
        if (q->grad < 0 || (q->p->l1 == 0 && q->p->l2 == 0) || kp->guard_penalties)
            continue;   /* fused: the numeric guard's pass adds it (kinfo_guard_penalty) */
        const char *fn = arena_printf(g->a, "%s_penalty", q->p->owner->name);
        KStep *s = fn ? kp_step(kp, true, K_PENALTY, q->p->owner, fn) : NULL;
        if (!s)
            return false;
        step_bufs(s, 2, (int[]){q->buf, q->grad});
        s->i[0] = q->p->numel;
        s->f[0] = q->p->l1, s->f[1] = q->p->l2;
    }
    int first = -1, last = -1;
    for (size_t i = 0; i < kp->params.len; i++)
        if (kp->params.items[i].grad >= 0) {
            last = (int)i;
            if (first < 0)
                first = (int)i;
        }
    if (first < 0)
        return true;
    const KParam *p0 = &kp->params.items[first], *p1 = &kp->params.items[last];
    int w = span_buf(kp, "parameters", p0->buf, p1->buf);
    int dw = span_buf(kp, "gradients", p0->grad, p1->grad);
    int s0 = p0->state[0] >= 0 ? span_buf(kp, "optimizer state 0", p0->state[0], p1->state[0]) : -1;
    int s1 = p0->state[1] >= 0 ? span_buf(kp, "optimizer state 1", p0->state[1], p1->state[1]) : -1;
    bool sgd = g->train.opt.kind == IR_OPT_SGD;
    KStep *s = kp_step(kp, true, sgd ? K_OPT_SGD : K_OPT_ADAM, NULL, sgd ? "sgd_update" : "adam_update");
    if (!s)
        return false;
    step_bufs(s, 4, (int[]){w, dw, s0, s1});
    s->i[0] = kp->bufs.items[w].fixed;
    if (sgd) {
        s->f[0] = g->train.opt.momentum, s->f[1] = g->train.opt.nesterov;
    } else {
        s->f[0] = g->train.opt.beta1, s->f[1] = g->train.opt.beta2, s->f[2] = g->train.opt.eps;
        s->f[3] = g->train.opt.kind == IR_OPT_ADAMW ? g->train.opt.weight_decay : 0;
    }
    return true;
}

/* ---- the activation arena: liveness-based reuse ---------------------------- */

static int64_t arena_floats_of(const KProgram *kp, const KBuf *b)
{
    int64_t f = b->per_sample ? b->per_sample * kp->batch : b->fixed;
    return (f + 15) / 16 * 16;
}

static int *int_table_tmp(KProgram *kp, size_t n)
{
    int *t = arena_array(kp->g->a, n ? n : 1, sizeof *t);
    for (size_t i = 0; t && i < n; i++)
        t[i] = -1;
    return t;
}

typedef struct Live {
    int buf;
    int first, last;    /* step indices of the first and last use */
} Live;

/* Each arena buffer is used by one step list only (predict and train get
 * their own), and lives from the step that first touches it to the step
 * that last does, inclusive: a step never sees one of its buffers share
 * memory with another live one. Buffers are placed in order of first use at
 * the lowest offset free for their whole lifetime (first fit), which is
 * deterministic and never worse than one slot each. */
static int64_t plan_list(KProgram *kp, const KStepList *list, Live *live, int64_t *top)
{
    int nlive = 0;
    int *slot = int_table_tmp(kp, kp->bufs.len);
    if (!slot)
        return -1;
    for (size_t i = 0; i < list->len; i++)
        for (int b = 0; b < list->items[i].nbuf; b++) {
            int id = list->items[i].buf[b];
            if (id < 0 || kp->bufs.items[id].space != KS_ARENA)
                continue;
            if (slot[id] < 0) {
                slot[id] = nlive;
                live[nlive++] = (Live){id, (int)i, (int)i};
            }
            live[slot[id]].last = (int)i;
        }
    /* live[] is in order of first use. active[] holds the placed buffers
     * still live, sorted by offset; a buffer dead before the current one
     * starts is dead for every later one too, so it leaves for good. */
    int *active = int_table_tmp(kp, (size_t)nlive), nact = 0;
    if (!active)
        return -1;
    for (int i = 0; i < nlive; i++) {
        int keep = 0;
        for (int j = 0; j < nact; j++)
            if (live[active[j]].last >= live[i].first)
                active[keep++] = active[j];
        nact = keep;
        KBuf *b = &kp->bufs.items[live[i].buf];
        int64_t size = arena_floats_of(kp, b), off = 0;
        int at = 0;     /* first fit: the lowest gap between live buffers */
        for (; at < nact; at++) {
            const KBuf *o = &kp->bufs.items[live[active[at]].buf];
            if (off + size <= o->off)
                break;
            int64_t end = o->off + arena_floats_of(kp, o);
            off = end > off ? end : off;
        }
        b->off = off;
        if (off + size > *top)
            *top = off + size;
        memmove(active + at + 1, active + at, (size_t)(nact - at) * sizeof *active);
        active[at] = i;
        nact++;
    }
    return nlive;
}

static bool plan_arena(KProgram *kp)
{
    Live *live = arena_array(kp->g->a, kp->bufs.len + 1, sizeof *live);
    if (!live)
        return false;
    int64_t top = 0;
    if (plan_list(kp, &kp->train, live, &top) < 0 || plan_list(kp, &kp->predict, live, &top) < 0)
        return false;
    kp->arena_floats = top;
    return true;
}

/* ---- the whole program --------------------------------------------------- */

static int *int_table(Arena *a, size_t n)
{
    int *t = arena_array(a, n ? n : 1, sizeof *t);
    for (size_t i = 0; t && i < n; i++)
        t[i] = -1;
    return t;
}

int lower_program(const IrGraph *g, const char *source_name, DiagSink *d, KProgram **out)
{
    int nerr = check_graph(g, d);
    if (nerr)
        return nerr;
    Arena *a = g->a;
    KProgram *kp = arena_alloc(a, sizeof *kp);
    if (!kp)
        return diag_error(d, g->model_sp, "out of memory"), 1;
    kp->g = g;
    kp->source_name = source_name;
    kp->batch = g->train.batch;
    kp->structure_hash = structure_hash(g);
    kp->mix_perm = kp->mix_lambda = -1;
    Lower L = {kp, int_table(a, g->values.len), int_table(a, g->values.len),
               arena_array(a, g->nodes.len + 1, sizeof *L.aux)};
    for (size_t i = 0; L.aux && i < g->nodes.len; i++)
        L.aux[i][0] = L.aux[i][1] = -1;
    bool ok = L.train_val && L.pred_val && L.aux && plan_params(kp) && plan_fusion(kp);
    if (ok) {
        ok = lower_forward(&L, true);
    }
    if (ok && (nerr = ad_backward(kp, L.train_val, L.aux, d)) != 0)
        return nerr;
    ok = ok && lower_update(kp) && lower_forward(&L, false) && lower_outputs(&L) && plan_arena(kp);
    if (!ok || a->failed)
        return diag_error(d, g->model_sp, "out of memory while generating code"), 1;
    *out = kp;
    return 0;
}
