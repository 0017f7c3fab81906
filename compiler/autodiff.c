/* autodiff.c - the backward pass: per-op gradient rules, as kernel steps.
 *
 * Input: the kernel program with the training-mode forward pass already
 * lowered (val[v] = the buffer of value v, aux[node] = its saved buffers).
 * Output: appended to kp->train, in this order: every loss's value and the
 * gradient of its prediction (weighted, averaged over the batch), then one
 * backward step per node in reverse topological order.
 *
 * Rules (dy = the gradient of the node's output):
 *   dense      dx = dy W, dW = dy^T x, db = sum_n dy
 *   conv       the transposed convolution / correlation with x / sum over n,h,w
 *   maxpool    dy goes to the first maximum of each window (saved argmax)
 *   avgpool    dy / (size*size) to every window position (padding counted)
 *   global_avgpool, flatten, add, concat: spread / copy / slice dy
 *   relu, leaky_relu, tanh, sigmoid: dy * f'(x) (from x or y)
 *   batchnorm  the batch-statistics rule with the saved mean and 1/std
 *   dropout    dy * mask (the mask already holds 0 or 1/(1-p))
 *   drop_path  dy * scale of the sample; gaussian_noise: dy (a copy)
 *   fractional_maxpool: as maxpool, through the saved argmax of the step's regions
 *   dropconnect dense: through the forward's per-sample masks (bits);
 *              conv: dx through the masked weights, then dW *= the batch's mask
 *   relu fused into batchnorm: no step; batchnorm's rule masks dy itself
 *              (from x and the forward's saved scale and shift)
 * A value's gradient buffer is overwritten by the first rule that reaches
 * it and accumulated into by the others (fan-out). Values that depend on no
 * trainable parameter get no gradient at all (the input, constant
 * branches), so no work is spent on them.
 */
#include <string.h>

#include "kernel.h"

typedef struct Ad {
    KProgram *kp;
    const int *val;
    int (*aux)[2];
    int *grad;          /* value id -> gradient buffer, -1 until first needed */
    bool *written;      /* value id -> its gradient has been written once */
    bool *dep;          /* value id -> depends on a trainable parameter */
    int *fwd;           /* node id -> index of its forward step in kp->train, -1 */
    int *uses;          /* value id -> scratch count (alias_input), all 0 between uses */
    int *nuse;          /* value id -> consumer slots in the graph (+1 if an output) */
    int (*last)[2];     /* value id -> the two highest node ids among its consumer slots, -1 */
} Ad;

static bool has_trainable(const IrNode *n)
{
    const IrParam *ps[] = {n->weight, n->bias, n->gamma, n->beta};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        if (ps[i] && ps[i]->trainable)
            return true;
    return false;
}

static void mark_dependence(Ad *A)
{
    const IrGraph *g = A->kp->g;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        bool d = has_trainable(n);
        for (int k = 0; k < n->nin; k++)
            d |= A->dep[n->in[k]->id];
        A->dep[n->out->id] = d;
    }
}

/* The gradient buffer of v for one more writer; *acc says whether that
 * writer must add (someone wrote it before) or may overwrite. */
static int take(Ad *A, const IrValue *v, bool *acc)
{
    if (A->grad[v->id] < 0) {
        const char *nm = arena_printf(A->kp->g->a, "%s.grad", v->name ? v->name : "value");
        A->grad[v->id] = kp_buf_new(A->kp, nm, KS_ARENA, ir_shape_numel(v->shape), 0);
    }
    *acc = A->written[v->id];
    A->written[v->id] = true;
    return A->grad[v->id];
}

/* dx of input k, or -1 when it needs no gradient. */
static int take_in(Ad *A, const IrNode *n, int k, bool *acc)
{
    *acc = false;
    return A->dep[n->in[k]->id] ? take(A, n->in[k], acc) : -1;
}

static int pgrad(const Ad *A, const IrParam *p)
{
    return p ? A->kp->params.items[p->id].grad : -1;
}

static int pdata(const Ad *A, const IrParam *p)
{
    return p ? A->kp->params.items[p->id].buf : -1;
}

static KStep *step(Ad *A, KOp op, const IrNode *n, const char *sfx)
{
    const char *fn = arena_printf(A->kp->g->a, "%s_%s", n->name, sfx);
    return fn ? kp_step(A->kp, true, op, n, fn) : NULL;
}

/* loss: value + gradient of the prediction. */
static bool seed_loss(Ad *A, const IrNode *n)
{
    bool acc;
    const IrValue *pred = n->in[0];
    int dp = take(A, pred, &acc);
    bool ce = n->op == IR_OP_CROSS_ENTROPY;
    KStep *s = step(A, ce ? K_CROSS_ENTROPY : K_MSE, n, "loss");
    if (!s)
        return false;
    s->buf[0] = A->val[pred->id], s->buf[1] = dp, s->nbuf = 2;
    s->acc = acc;
    if (A->kp->mix_perm >= 0) {     /* mixup / cutmix: both labels, lambda-weighted */
        const char *nm = arena_printf(A->kp->g->a, "%s.%s", n->name, ce ? "partner_labels" : "mixed_targets");
        int64_t per = ce ? 1 : ir_shape_numel(pred->shape);
        int mb = kp_buf_new(A->kp, nm, KS_ARENA, per, 0);
        s = &A->kp->train.items[A->kp->train.len - 1];     /* kp_buf_new does not move steps */
        s->buf[2] = A->kp->mix_perm, s->buf[3] = A->kp->mix_lambda, s->buf[4] = mb, s->nbuf = 5;
    }
    s->i[0] = ir_shape_numel(pred->shape), s->i[1] = n->loss.target;
    s->f[0] = n->loss.weight, s->f[1] = ce ? n->loss.smoothing : 0;
    return true;
}

static void copy_ints(KStep *dst, const KStep *src)
{
    memcpy(dst->i, src->i, sizeof dst->i);
    memcpy(dst->f, src->f, sizeof dst->f);
}

/* The forward step of n in the train list (for its shape integers). */
static const KStep *forward_step(const Ad *A, const IrNode *n)
{
    if (A->fwd[n->id] < 0)
        NETC_DIE("autodiff: no forward step for %s", n->name);
    return &A->kp->train.items[A->fwd[n->id]];
}

static bool rule_params(Ad *A, const IrNode *n, KOp op, int dy)
{
    bool acc;
    int dx = take_in(A, n, 0, &acc);
    const KStep *f = forward_step(A, n);
    KStep fwd = *f;
    if (fwd.op == K_DENSE_DC_FWD)
        op = K_DENSE_DC_BWD;
    /* conv dropconnect: dx through the masked weights, then dw *= mask */
    bool masked = op == K_CONV_BWD && A->aux[n->id][1] >= 0;
    KStep *s = step(A, op, n, "backward");
    if (!s)
        return false;
    int b[6] = {dy, A->val[n->in[0]->id], masked ? A->aux[n->id][1] : pdata(A, n->weight), dx,
                pgrad(A, n->weight), pgrad(A, n->bias)};
    memcpy(s->buf, b, sizeof b);
    s->nbuf = 6;
    s->acc = acc;
    copy_ints(s, &fwd);
    if (op == K_DENSE_DC_BWD)
        s->buf[6] = A->aux[n->id][0], s->nbuf = 7;     /* the forward's mask bits */
    if (!masked)
        return true;
    s = step(A, K_DROPCONNECT_GRAD, n, "dropconnect_backward");
    if (!s)
        return false;
    s->buf[0] = A->aux[n->id][0], s->buf[1] = pgrad(A, n->weight), s->nbuf = 2;
    s->i[0] = n->weight->numel;
    return true;
}

static bool rule_unary(Ad *A, const IrNode *n, KOp op, int dy)
{
    bool acc;
    int dx = take_in(A, n, 0, &acc);
    if (dx < 0)
        return true;
    KStep fwd = {0};
    if (A->kp->fused_into[n->id]) {     /* in a dense/conv/add epilogue: no step of its own */
        fwd.i[0] = k_act(n->op);
        fwd.i[1] = ir_shape_numel(n->out->shape);
        fwd.f[0] = n->op == IR_OP_LEAKY_RELU ? n->leaky.slope : 0;
    } else {
        fwd = *forward_step(A, n);
    }
    KStep *s = step(A, op, n, "backward");
    if (!s)
        return false;
    /* fused: x and y are one buffer, and leaky_relu's rule reads y > 0 for
     * x > 0 (the same test: its slope is in [0, 1]) */
    int x = A->val[n->in[0]->id], y = A->val[n->out->id];
    int nb = 0;
    s->buf[nb++] = dy;
    if (op == K_ACT_BWD) {
        s->buf[nb++] = x;
        s->buf[nb++] = y;
    }
    if (op == K_DROPOUT_BWD || op == K_MAXPOOL_BWD || op == K_DROP_PATH_BWD || op == K_FRACPOOL_BWD)
        s->buf[nb++] = A->aux[n->id][0];    /* mask, argmax, scale */
    s->buf[nb++] = dx;
    s->nbuf = nb;
    s->acc = acc;
    copy_ints(s, &fwd);
    return true;
}

/* A fused relu after batchnorm has no step of its own: batchnorm's
 * backward masks dy itself, where x*scale + shift > 0 with the float
 * scale and shift the forward saved (the forward's y > 0 test, without
 * reading y). */
static bool rule_batchnorm(Ad *A, const IrNode *n, int dy)
{
    bool acc;
    int dx = take_in(A, n, 0, &acc);
    const KStep *f = forward_step(A, n);
    KStep fwd = *f;
    const IrNode *r = A->kp->act_of[n->id];
    const char *fn = r ? arena_printf(A->kp->g->a, "%s_backward", r->name) : "backward";
    KStep *s = fn ? step(A, K_BN_BWD, n, fn) : NULL;
    if (!s)
        return false;
    int b[9] = {dy, A->val[n->in[0]->id], pdata(A, n->gamma), A->aux[n->id][0],
                A->aux[n->id][1], dx, pgrad(A, n->gamma), pgrad(A, n->beta),
                r ? fwd.buf[8] : -1};
    memcpy(s->buf, b, sizeof b);
    s->nbuf = 9;
    s->acc = acc;
    copy_ints(s, &fwd);
    return true;
}

/* Counts every value's consumer slots (nuse; a model output counts one
 * more) and keeps the two highest consumer node ids (last). */
static void count_uses(Ad *A)
{
    const IrGraph *g = A->kp->g;
    for (size_t i = 0; i < g->values.len; i++)
        A->last[i][0] = A->last[i][1] = -1;
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k]->id;
            A->nuse[v]++;
            A->last[v][1] = A->last[v][0];   /* node ids rise with i */
            A->last[v][0] = n->id;
        }
    }
    for (size_t k = 0; k < g->outputs.len; k++)
        A->nuse[g->outputs.items[k].value->id]++;
}

/* Whether the rule of p hands its dy buffer on as another value's
 * gradient (the copy rules' alias), which others may then add to. */
static bool hands_on(const IrNode *p)
{
    return p->op == IR_OP_ADD || p->op == IR_OP_FLATTEN || p->op == IR_OP_GAUSSIAN_NOISE;
}

/* Whether input v of n may share dy's buffer with f, the input the first
 * pick gave it to (alias_inputs): v's gradient must be read before
 * anything writes into that buffer again. So v is n's alone (no other
 * consumer, no output: nobody adds to its gradient); the rule that reads
 * it (its producer's, or for a relu fused into batchnorm the batchnorm's)
 * hands it on to no one; and f's later writers -- its other consumers,
 * and whoever f's producer hands the buffer on to -- run after that rule
 * (rules run in reverse graph order, so they come earlier in the graph). */
static bool may_share(const Ad *A, const IrNode *n, const IrValue *v, const IrValue *f)
{
    const IrNode *r = v->producer;
    if (A->nuse[v->id] != 1 || !r || hands_on(r))
        return false;
    if (A->kp->fused_into[r->id] && r->in[0]->producer->op == IR_OP_BATCHNORM)
        r = r->in[0]->producer;
    const int *l = A->last[f->id];
    int other = l[0] == n->id ? l[1] : l[0];   /* f's last consumer but n (n uses f once) */
    const IrNode *pf = f->producer;
    return other < r->id && (!pf || !hands_on(pf) || pf->id < r->id);
}

/* The inputs of n that take dy's buffer as their gradient instead of a
 * copy (IR_FUSE_ELEMENTWISE), marked in take[]: the last one that needs a
 * gradient nobody has written yet and that is no other input of n (x + x
 * must copy: the second write adds to the first), and with it every other
 * such input that may_share allows (resnet8's residual adds: the branch's
 * batchnorm next to the shortcut). Linear in the inputs (a sum may have
 * 100,000): uses[] counts them and is left all zero again. */
static void alias_inputs(const Ad *A, const IrNode *n, bool *take)
{
    for (int k = 0; k < n->nin; k++)
        take[k] = false;
    if (!(A->kp->g->fuse & IR_FUSE_ELEMENTWISE))
        return;
    for (int k = 0; k < n->nin; k++)
        A->uses[n->in[k]->id]++;
    int pick = -1;
    for (int k = n->nin - 1; k >= 0 && pick < 0; k--) {
        const IrValue *v = n->in[k];
        if (A->uses[v->id] == 1 && A->dep[v->id] && A->grad[v->id] < 0)
            pick = k;
    }
    if (pick >= 0) {
        take[pick] = true;
        const IrValue *f = n->in[pick];
        for (int k = 0; k < pick; k++) {
            const IrValue *v = n->in[k];
            take[k] = A->uses[v->id] == 1 && A->dep[v->id] && A->grad[v->id] < 0 &&
                      may_share(A, n, v, f);
        }
    }
    for (int k = 0; k < n->nin; k++)
        A->uses[n->in[k]->id] = 0;
}

/* add: dx_k = dy; flatten, gaussian_noise: dx = dy. A copy, since the
 * input may fan out; some inputs may take dy's buffer itself
 * (alias_inputs) after the copies: later writers add to it as they would
 * to the copy, and dy is dead after this rule (so is every value that
 * shared its buffer: they are downstream, their rules ran). */
static bool rule_copies(Ad *A, const IrNode *n, int dy)
{
    bool *alias = arena_array(A->kp->g->a, (size_t)n->nin + 1, sizeof *alias);
    if (!alias)
        return false;
    alias_inputs(A, n, alias);
    for (int k = 0; k < n->nin; k++) {
        bool acc;
        int dx = alias[k] ? -1 : take_in(A, n, k, &acc);
        if (dx < 0)
            continue;
        const char *sfx = n->nin > 1 ? arena_printf(A->kp->g->a, "backward_in%d", k) : "backward";
        KStep *s = sfx ? step(A, K_GRAD_COPY, n, sfx) : NULL;
        if (!s)
            return false;
        s->buf[0] = dy, s->buf[1] = dx, s->nbuf = 2;
        s->acc = acc;
        s->i[0] = ir_shape_numel(n->out->shape);
    }
    for (int k = 0; k < n->nin; k++)
        if (alias[k]) {
            A->grad[n->in[k]->id] = dy;
            A->written[n->in[k]->id] = true;
        }
    return true;
}

/* One step per group of K_CONCAT_GROUP inputs, as the forward. */
static bool rule_concat(Ad *A, const IrNode *n, int dy)
{
    IrShape sh = n->out->shape;
    int64_t off = 0;
    for (int k0 = 0; k0 < n->nin; k0 += K_CONCAT_GROUP) {
        int g = n->nin - k0 < K_CONCAT_GROUP ? n->nin - k0 : K_CONCAT_GROUP;
        int dx[K_CONCAT_GROUP];
        unsigned accmask = 0;
        bool any = false;
        for (int k = 0; k < g; k++) {
            bool acc;
            dx[k] = take_in(A, n, k0 + k, &acc);
            accmask |= acc ? 1u << k : 0;
            any |= dx[k] >= 0;
        }
        int64_t first = off;
        for (int k = 0; k < g; k++)
            off += n->in[k0 + k]->shape.d[0];
        if (!any)
            continue;
        const char *sfx = n->nin > K_CONCAT_GROUP ? arena_printf(A->kp->g->a, "backward_in%d", k0)
                                                  : "backward";
        KStep *s = sfx ? step(A, K_CONCAT_BWD, n, sfx) : NULL;
        if (!s)
            return false;
        s->buf[0] = dy;
        s->i[0] = sh.rank == 3 ? sh.d[1] * sh.d[2] : 1;
        s->i[1] = first, s->i[2] = sh.d[0];
        for (int k = 0; k < g; k++)
            s->buf[1 + k] = dx[k], s->i[3 + k] = n->in[k0 + k]->shape.d[0];
        s->nbuf = 1 + g;
        s->accmask = accmask;
    }
    return true;
}

static bool backward_node(Ad *A, const IrNode *n)
{
    if (n->op == IR_OP_INPUT || !A->written[n->out->id])
        return true;
    const IrNode *p = n->in[0]->producer;
    if (A->kp->fused_into[n->id] && p->op == IR_OP_BATCHNORM) {
        /* batchnorm's rule takes the relu's gradient as its own dy */
        A->grad[p->out->id] = A->grad[n->out->id];
        A->written[p->out->id] = true;
        return true;
    }
    int dy = A->grad[n->out->id];
    switch (n->op) {
    case IR_OP_DENSE: return rule_params(A, n, K_DENSE_BWD, dy);
    case IR_OP_CONV: return rule_params(A, n, K_CONV_BWD, dy);
    case IR_OP_MAXPOOL: return rule_unary(A, n, K_MAXPOOL_BWD, dy);
    case IR_OP_AVGPOOL: return rule_unary(A, n, K_AVGPOOL_BWD, dy);
    case IR_OP_GLOBAL_AVGPOOL: return rule_unary(A, n, K_GAP_BWD, dy);
    case IR_OP_RELU:
    case IR_OP_LEAKY_RELU:
    case IR_OP_TANH:
    case IR_OP_SIGMOID: return rule_unary(A, n, K_ACT_BWD, dy);
    case IR_OP_DROPOUT: return rule_unary(A, n, K_DROPOUT_BWD, dy);
    case IR_OP_DROP_PATH: return rule_unary(A, n, K_DROP_PATH_BWD, dy);
    case IR_OP_FRACTIONAL_MAXPOOL: return rule_unary(A, n, K_FRACPOOL_BWD, dy);
    case IR_OP_BATCHNORM: return rule_batchnorm(A, n, dy);
    case IR_OP_FLATTEN:
    case IR_OP_GAUSSIAN_NOISE:
    case IR_OP_ADD: return rule_copies(A, n, dy);
    case IR_OP_CONCAT: return rule_concat(A, n, dy);
    default:
        NETC_DIE("autodiff: no gradient rule for %s", ir_op_name(n->op));
    }
}

int ad_backward(KProgram *kp, const int *val, int (*aux)[2], DiagSink *d)
{
    const IrGraph *g = kp->g;
    Arena *a = g->a;
    size_t nv = g->values.len ? g->values.len : 1;
    Ad A = {kp, val, aux, arena_array(a, nv, sizeof(int)), arena_array(a, nv, sizeof(bool)),
            arena_array(a, nv, sizeof(bool)), arena_array(a, g->nodes.len + 1, sizeof(int)),
            arena_array(a, nv, sizeof(int)), arena_array(a, nv, sizeof(int)),
            arena_array(a, nv, sizeof(int[2]))};
    if (!A.grad || !A.written || !A.dep || !A.fwd || !A.uses || !A.nuse || !A.last)
        return diag_error(d, g->model_sp, "out of memory in autodiff"), 1;
    for (size_t i = 0; i < nv; i++)
        A.grad[i] = -1;
    for (size_t i = 0; i <= g->nodes.len; i++)
        A.fwd[i] = -1;
    /* only forward steps so far; a node's last one is its main step (conv
     * dropconnect draws its mask in an earlier step) */
    for (size_t i = 0; i < kp->train.len; i++)
        if (kp->train.items[i].node)
            A.fwd[kp->train.items[i].node->id] = (int)i;
    mark_dependence(&A);
    count_uses(&A);
    bool ok = true;
    for (size_t i = 0; i < g->losses.len && ok; i++)
        ok = seed_loss(&A, g->losses.items[i]);
    for (size_t i = g->nodes.len; i-- > 0 && ok;)
        ok = backward_node(&A, g->nodes.items[i]);
    if (!ok)
        return diag_error(d, g->model_sp, "out of memory in autodiff"), 1;
    return 0;
}
