/* kernel.h - the kernel program: what a backend prints, as plain data.
 *
 * lower.c turns the checked graph IR (plus autodiff.c's backward rules) into
 * two ordered step lists over statically planned buffers:
 *   - predict: preprocessing, the forward pass in inference mode, outputs;
 *   - train:   preprocessing (+ augmentation), the forward pass in training
 *              mode, the losses, the backward pass, the penalties and the
 *              optimizer update.
 * Every buffer is an offset (in floats) into one of two memory spaces: the
 * parameter block (parameters, running statistics, preprocessing
 * statistics, gradients, optimizer state) or the activation arena
 * (per-sample tensors sized for the model's batch, saved statistics). An
 * arena buffer belongs to one step list; buffers whose lifetimes (first to
 * last use, inclusive) are disjoint may share memory.
 * Steps hold constant shapes and constant offsets only; the batch size n is
 * the one run-time quantity. The C emitter (emit_c.c) and a later LLVM
 * emitter print the same program, so they cannot drift.
 *
 * Guarantees: steps are in execution order; a step's inputs were written by
 * earlier steps (or are parameters / the caller's input); a gradient buffer
 * is overwritten by its first writer in the train list and accumulated into
 * by later ones (KStep.acc); nothing in a step allocates.
 */
#ifndef NETC_KERNEL_H
#define NETC_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"

typedef enum KSpace {
    KS_PARAMS,      /* the parameter block */
    KS_ARENA,       /* the activation arena */
} KSpace;

/* A planned buffer. Batch-scaled buffers hold n x per_sample floats (room
 * for batch x per_sample); fixed ones hold `fixed` floats. */
typedef struct KBuf {
    int id;
    const char *name;       /* "relu1", "relu1.grad", "conv1.weight" */
    KSpace space;
    int64_t off;            /* in floats from the space's start */
    int64_t per_sample;     /* > 0: batch-scaled */
    int64_t fixed;          /* per_sample == 0: total floats */
} KBuf;

typedef enum KOp {
    K_PREPROCESS,       /* b0 = pre(x): x is the caller's raw input (i0 = 1) or b0 itself (i0 = 0:
                         * augmented); b1 mean, b2 std (or -1); zca: b2 the d x d whitening
                         * matrix W, b3 scratch (d per sample), b0 = (x - mean) W^T */
    K_AUGMENT_GEO,      /* b0 = translate/flip/rotate(x), b1 scratch (train only) */
    K_AUGMENT_POST,     /* in place on b0: cutout, noise (train only) */
    K_DENSE_FWD,        /* b0 x, b1 w, b2 b|-1 -> b3 y; i0 in, i1 out, i2 fused relu */
    K_DENSE_BWD,        /* b0 dy, b1 x, b2 w -> b3 dx|-1 (acc), b4 dw, b5 db|-1 */
    K_CONV_FWD,         /* b0 x, b1 w, b2 b|-1 -> b3 y; conv shape in i0..i6, i7 fused relu;
                         * predict with a folded batchnorm (nbuf 8): b4 gamma, b5 beta, b6 rmean,
                         * b7 rvar, f0 eps (nrt_conv_forward_bn) */
    K_CONV_BWD,         /* b0 dy, b1 x, b2 w -> b3 dx|-1 (acc), b4 dw, b5 db|-1 */
    K_MAXPOOL_FWD,      /* b0 x -> b1 y, b2 argmax (int32, train only); pool shape i0 c, i1 h,
                         * i2 w, i3 size, i4 stride, i5 pad, i6 oh, i7 ow */
    K_MAXPOOL_BWD,      /* b0 dy, b1 argmax -> b2 dx (acc) */
    K_AVGPOOL_FWD,      /* as maxpool; count_include_pad=true (PyTorch default) */
    K_AVGPOOL_BWD,      /* b0 dy -> b1 dx (acc) */
    K_ACT_FWD,          /* b0 x -> b1 y; i0 KAct, i1 numel, f0 slope */
    K_ACT_BWD,          /* b0 dy, b1 x, b2 y -> b3 dx (acc) */
    K_BN_FWD_TRAIN,     /* b0 x, b1 gamma, b2 beta, b3 rmean, b4 rvar -> b5 y, b6 mean, b7 invstd,
                         * with a fused activation b8 the float scale and shift it applied (2c:
                         * nrt_batchnorm_forward_train_affine); i0 c, i1 spatial, i2 fused
                         * activation: 0 none, 1 relu, 2 leaky_relu (1 + KAct); f0 momentum,
                         * f1 eps, f2 the leaky slope */
    K_BN_FWD_INFER,     /* b0 x, b1 gamma, b2 beta, b3 rmean, b4 rvar -> b5 y; ints, f1, f2 as train */
    K_BN_BWD,           /* b0 dy, b1 x, b2 gamma, b3 mean, b4 invstd -> b5 dx (acc), b6 dgamma,
                         * b7 dbeta; b8 the forward's b8 (a fused activation: dy masked where
                         * x*scale + shift <= 0, nrt_batchnorm_backward_affine) or -1; ints and
                         * f as the forward */
    K_DROPOUT_FWD,      /* b0 x -> b1 y, b2 mask; i0 numel, i1 node id (RNG stream); f0 p */
    K_DROPOUT_BWD,      /* b0 dy, b1 mask -> b2 dx (acc) */
    K_ADD_FWD,          /* b0.. inputs (nbuf-1) -> last buf y; i0 numel; i1 fused activation
                         * (0 none, else 1 + KAct), f0 its slope. An add of more than
                         * K_MAX_BUFS - 1 inputs is several steps: later ones have b0 = y,
                         * the activation is in the last */
    K_GRAD_COPY,        /* b0 dy -> b1 dx (acc); i0 numel */
    K_CONCAT_FWD,       /* inputs -> last buf y; i0 spatial, i1 channel offset of the first
                         * input in y, i2 channels of y, i[3+k] channels of input k; a concat
                         * of more than K_CONCAT_GROUP inputs is several steps */
    K_CONCAT_BWD,       /* b0 dy -> b1.. dx_k|-1 (acc per input: accmask bit k); ints as fwd */
    K_GAP_FWD,          /* b0 x -> b1 y; i0 c, i1 spatial */
    K_GAP_BWD,          /* b0 dy -> b1 dx (acc) */
    K_SOFTMAX,          /* b0 x -> b1 y; i0 classes */
    K_CROSS_ENTROPY,    /* b0 logits -> b1 dlogits (acc); i0 classes, i1 target; f0 weight, f1 smoothing;
                         * with mixing: b2 perm, b3 lambda (K_MIX's), b4 partner labels (int32 per
                         * sample): loss = lambda CE(labels) + (1 - lambda) CE(labels[perm]) */
    K_MSE,              /* b0 pred -> b1 dpred (acc); i0 size, i1 target; f0 weight; with mixing:
                         * b2 perm, b3 lambda, b4 mixed targets (size per sample) =
                         * lambda v + (1 - lambda) v[perm], the loss is mse(pred, mixed) */
    K_OUTPUT,           /* b0 -> outs[i0]; i1 numel */
    K_PENALTY,          /* b0 w, b1 dw; i0 numel; f0 l1, f1 l2 */
    K_OPT_SGD,          /* b0 w, b1 dw, b2 velocity; i0 numel; f0 momentum, f1 nesterov */
    K_OPT_ADAM,         /* b0 w, b1 dw, b2 m, b3 v; i0 numel; f0 beta1, f1 beta2, f2 eps, f3 weight_decay (adamw) */
    /* Regularizers (train list only unless said). A "stream" is the node id:
     * the random draws of node k use Philox elements (k << 32) + e, keyed by
     * (m->seed, purpose, m->step, sample), so nodes never share bits. */
    K_DENSE_DC_FWD,     /* dense with per-sample dropconnect masks: b0 x, b1 w, b2 b|-1 -> b3 y,
                         * b4 mask bits (uint32, nrt_dropconnect_words(in, out) per sample);
                         * i0 in, i1 out, i2 fused relu, i3 stream; f0 p.
                         * nrt_dropconnect_dense_forward (NRT_RNG_DROPCONNECT, sample i) */
    K_DENSE_DC_BWD,     /* b0 dy, b1 x, b2 w -> b3 dx|-1 (acc), b4 dw, b5 db|-1; b6 the mask bits;
                         * ints and f0 as K_DENSE_DC_FWD: nrt_dropconnect_dense_backward_{weights,data},
                         * nrt_dense_backward_bias */
    K_DROPCONNECT_MASK, /* one mask per batch (conv): b0 w -> b1 mask, b2 masked w; i0 numel,
                         * i1 stream; f0 p. mask = nrt_rng_fill_dropout_mask(NRT_RNG_DROPCONNECT,
                         * sample 0, first stream << 32), masked w = w * mask */
    K_DROPCONNECT_GRAD, /* b0 mask, b1 dw (in place): dw *= mask; i0 numel */
    K_DROP_PATH_FWD,    /* b0 x -> b1 y, b2 scale (n floats); i0 values per sample, i1 stream;
                         * f0 p. scale[i] = nrt_rng_fill_dropout_mask(NRT_RNG_DROP_PATH, sample i,
                         * element stream << 32), y = nrt_drop_path_forward */
    K_DROP_PATH_BWD,    /* b0 dy, b1 scale -> b2 dx (acc); i0 values per sample */
    K_NOISE_FWD,        /* gaussian_noise: b0 x -> b1 y; i0 values per sample, i1 stream; f0 std.
                         * y first receives N(0,1) from nrt_rng_fill_normal(NRT_RNG_NOISE, sample i,
                         * first stream << 32), then y = x + std * y. Backward: K_GRAD_COPY */
    K_FRACPOOL_FWD,     /* fractional max pooling: b0 x -> b1 y, b2 argmax (int32, train only)|-1,
                         * b3 regions (int32); i0 c, i1 h, i2 w, i3 oh, i4 ow, i5 overlap,
                         * i6 stream, i7 per-sample regions drawn at m->step (train) or 0: one
                         * fixed set from the seed (predict). nrt_fracpool_draw, nrt_fracpool_forward */
    K_FRACPOOL_BWD,     /* b0 dy, b1 argmax -> b2 dx (acc); ints as K_FRACPOOL_FWD */
    K_MIX,              /* mixup/cutmix of the preprocessed, augmented input in place:
                         * b0 x, b1 scratch, b2 perm (int64 per sample), b3 lambda (1 float);
                         * i0 IrMixKind, i1 c, i2 h, i3 w (mixup: i1 = values per sample, i2 = i3 = 1);
                         * f0 alpha. nrt_mixup / nrt_cutmix (NRT_RNG_MIX) */
    K_BN_FOLD,          /* predict: batchnorm folded into the dense/conv before it: b0 w, b1 b|-1,
                         * b2 gamma, b3 beta, b4 rmean, b5 rvar -> b6 folded w, b7 folded b;
                         * i0 output channels, i1 weights per channel; f0 eps. nrt_batchnorm_fold,
                         * every predict call (never stale; it costs 1/(batch x positions) of
                         * the layer) */
} KOp;

typedef enum KAct { KACT_RELU, KACT_LEAKY_RELU, KACT_TANH, KACT_SIGMOID } KAct;

enum { K_MAX_BUFS = 16, K_MAX_INTS = 16, K_CONCAT_GROUP = K_MAX_INTS - 3 };

typedef struct KStep {
    KOp op;
    const char *fn;             /* the C function name: "k07_conv2_forward" */
    const IrNode *node;         /* the graph node it came from (span, name) or NULL */
    int buf[K_MAX_BUFS];        /* KBuf ids; -1 = absent */
    int nbuf;
    int64_t i[K_MAX_INTS];
    double f[4];
    bool acc;                   /* accumulate into the gradient output */
    unsigned accmask;           /* K_CONCAT_BWD: accumulate into output k */
} KStep;

/* Where each parameter lives in the block. */
typedef struct KParam {
    const IrParam *p;
    int buf;                    /* its data */
    int grad;                   /* its gradient, -1 when not trainable */
    int state[2];               /* optimizer state (sgd: velocity; adam: m, v), -1 when none */
} KParam;

typedef Vec(KStep) KStepList;

typedef struct KProgram {
    const IrGraph *g;
    const char *source_name;    /* the .net file's basename, for comments */
    int64_t batch;
    Vec(KBuf) bufs;
    Vec(KParam) params;         /* in IrParam order */
    KStepList predict;
    KStepList train;
    /* Fusion (node id ->), planned by lower.c from g->fuse:
     * act_of: the activation in a node's epilogue (a relu after dense/conv,
     *   a relu or leaky_relu after batchnorm, any activation after add), or NULL;
     * fused_into: true for such an activation (no forward step of its own;
     *   after a batchnorm no backward step either);
     * bn_of: the batchnorm folded into a dense/conv node's weights in the
     *   predict list (K_BN_FOLD), or NULL; folded: true for that batchnorm. */
    const IrNode **act_of;
    bool *fused_into;
    const IrNode **bn_of;
    bool *folded;
    bool guard_penalties;       /* update fusion: the numeric guard's pass adds the penalties
                                 * (no K_PENALTY steps; kinfo_guard_penalty) */
    int pre_mean, pre_std;      /* preprocessing statistics buffers, -1 when none
                                 * (zca: mean (d) and the d x d matrix in pre_std) */
    int mix_perm, mix_lambda;   /* K_MIX's partners and lambda for the losses, -1: no mixing */
    int64_t pre_channels;       /* entries of pre_mean / pre_std */
    int64_t block_floats;       /* parameter block size */
    int64_t arena_floats;       /* activation arena size (for the batch) */
    uint64_t structure_hash;
} KProgram;

/* Builds the kernel program of g. A model without parameters is reported
 * as a located error into d. Returns the number of errors; on
 * success *out is the program (in g's arena). */
int lower_program(const IrGraph *g, const char *source_name, DiagSink *d, KProgram **out);

/* Builder helpers shared by lower.c and autodiff.c. */
int kp_buf_new(KProgram *kp, const char *name, KSpace space, int64_t per_sample, int64_t fixed);
KStep *kp_step(KProgram *kp, bool train, KOp op, const IrNode *n, const char *what);

/* autodiff.c: appends the backward pass of g to kp->train. val_buf[v] is
 * the forward buffer of value v; aux[n] holds per-node saved buffers
 * (dropout mask, batchnorm mean/invstd: aux[n][0], aux[n][1]); loss nodes
 * seed the gradients. Returns the number of errors reported into d. */
int ad_backward(KProgram *kp, const int *val_buf, int (*aux)[2], DiagSink *d);

const char *k_op_name(KOp op);
/* The KAct of an activation op (relu, leaky_relu, tanh, sigmoid). */
KAct k_act(IrOp op);

#endif
