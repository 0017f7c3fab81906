/* batchnorm.c - batch normalization (Ioffe & Szegedy 2015), PyTorch semantics.
 *
 * x and y are (n, c, spatial); channel ch owns the n planes
 * x[(i*c + ch)*spatial ...], M = n*spatial values. Training normalizes with
 * the batch mean and biased variance, saves mean and invstd for the
 * backward and moves the running statistics towards the batch ones (the
 * variance unbiased); inference uses the running statistics. An optional
 * ReLU is fused into the output (conv -> batchnorm -> relu in one pass).
 * nrt_batchnorm_fold folds the inference form into the weights and bias
 * of the conv/dense layer before it (the compiler's bnfold pass).
 *
 * Statistics: one pass of shifted sums, s1 = sum(x - K), s2 = sum((x - K)^2)
 * with K the channel's first value (so no cancellation: K lies within a
 * few deviations of the mean), mean = K + s1/M, var = s2/M - (s1/M)^2. A
 * plane is summed in float vectors of BN_VL lanes over chunks of at most
 * BN_CHUNK values, each chunk's lanes then added in lane order in double;
 * planes, then channel totals, in double. Backward sums alike.
 *
 * Determinism: every channel is reduced by one thread, plane by plane in
 * sample order, always in the same lanes and chunks; channels are split
 * over threads. The result does not depend on the thread count.
 * For spatial == 1 (N x D), features are reduced in blocks of BN_BLOCK,
 * rows in order in double, so the loads stay contiguous.
 */
#include <math.h>
#include <string.h>

#include "isa_kernels.h"
#include "netrt.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define BN_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define BN_PARALLEL_FOR(cond) BN_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define BN_PARALLEL_FOR(cond)
#endif

enum { BN_PAR_MIN = 1 << 15, BN_BLOCK = 64 };

/* GNU vectors (gcc and clang) of 4 floats, native on any x86-64 (SSE2) and
 * ARM (NEON); four of them in flight give BN_VL = 16 lanes. Unaligned loads
 * go through memcpy. */
typedef float BnVec __attribute__((vector_size(16)));
typedef int32_t BnMask __attribute__((vector_size(16)));
enum { BN_VL = 16, BN_CHUNK = 1024 };

static inline BnVec bn_load(const float *p)
{
    BnVec v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Lanes of a0..a3 added in a fixed order, in double. */
static double bn_hsum4(BnVec a0, BnVec a1, BnVec a2, BnVec a3)
{
    double s = 0.0;
    for (int l = 0; l < 4; l++)
        s += (double)a0[l] + (double)a1[l] + (double)a2[l] + (double)a3[l];
    return s;
}

/* s1 += sum(p - K), s2 += sum((p - K)^2) over one plane. */
static void bn_plane_moments(const float *p, int64_t len, float K, double *s1, double *s2)
{
    for (int64_t c0 = 0; c0 < len; c0 += BN_CHUNK) {
        int64_t c1 = c0 + BN_CHUNK < len ? c0 + BN_CHUNK : len, j = c0;
        BnVec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (; j + BN_VL <= c1; j += BN_VL) {
            BnVec d0 = bn_load(p + j) - K, d1 = bn_load(p + j + 4) - K;
            BnVec d2 = bn_load(p + j + 8) - K, d3 = bn_load(p + j + 12) - K;
            a0 += d0, a1 += d1, a2 += d2, a3 += d3;
            b0 += d0 * d0, b1 += d1 * d1, b2 += d2 * d2, b3 += d3 * d3;
        }
        double ta = bn_hsum4(a0, a1, a2, a3), tb = bn_hsum4(b0, b1, b2, b3);
        for (; j < c1; j++) {
            double d = (double)p[j] - K;
            ta += d;
            tb += d * d;
        }
        *s1 += ta;
        *s2 += tb;
    }
}

/* Saves the statistics of one channel and updates its running ones;
 * returns invstd. */
static double bn_finish_stats(int64_t ch, int64_t M, double mean, double var, double eps,
                              double momentum, float *running_mean, float *running_var,
                              float *save_mean, float *save_invstd)
{
    double invstd = 1.0 / sqrt(var + eps);
    save_mean[ch] = (float)mean;
    save_invstd[ch] = (float)invstd;
    if (running_mean && running_var) {
        double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
    return invstd;
}

/* The activation fused into the output: none, relu, or leaky_relu with
 * its slope (activation.c's expressions, so the same bits as its kernel). */
typedef struct BnAct {
    NrtFusedAct kind;
    float slope;
} BnAct;

static inline float bn_act1(float v, BnAct a)
{
    if (a.kind == NRT_FUSED_RELU)
        return v > 0.0f ? v : 0.0f;
    if (a.kind == NRT_FUSED_LEAKY_RELU)
        return v > 0.0f ? v : v * a.slope;
    return v;
}

static inline BnVec bn_act4(BnVec v, BnAct a)
{
    BnMask pos = v > 0.0f;
    if (a.kind == NRT_FUSED_RELU)
        return (BnVec)((BnMask)v & pos);
    if (a.kind == NRT_FUSED_LEAKY_RELU)
        return (BnVec)(((BnMask)v & pos) | ((BnMask)(v * a.slope) & ~pos));
    return v;
}

/* y = act(x*scale + shift) over one plane. */
static void bn_affine(const float *x, float *y, int64_t len, float scale, float shift, BnAct act)
{
    int64_t j = 0;
    for (; j + 4 <= len; j += 4) {
        BnVec v = bn_act4(bn_load(x + j) * scale + shift, act);
        memcpy(y + j, &v, sizeof v);
    }
    for (; j < len; j++)
        y[j] = bn_act1(x[j] * scale + shift, act);
}

/* Channels [c0, c1) (at most BN_BLOCK) of the training forward, spatial > 1.
 * Samples outer, channels inner: the group's planes of a sample are
 * contiguous, so the loads stream (a channel alone is a 3 KB plane every
 * c planes). Each channel still sums its planes in sample order (the same
 * bits as channel by channel); the affine pass walks the samples
 * backwards, starting on the planes the sums read last (still in cache). */
static void bn_train_group(int64_t n, int64_t c, int64_t spatial, int64_t c0, int64_t c1, const float *x,
                           const float *gamma, const float *beta, double eps, double momentum,
                           float *running_mean, float *running_var, BnAct act, float *y,
                           float *save_mean, float *save_invstd, float *save_affine)
{
    int64_t M = n * spatial, nc = c1 - c0;
    float K[BN_BLOCK], fscale[BN_BLOCK], fshift[BN_BLOCK];
    double s1[BN_BLOCK] = {0}, s2[BN_BLOCK] = {0};
    for (int64_t k = 0; k < nc; k++)
        K[k] = x[(c0 + k) * spatial];
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < nc; k++)
            bn_plane_moments(x + (i * c + c0 + k) * spatial, spatial, K[k], &s1[k], &s2[k]);
    for (int64_t k = 0; k < nc; k++) {
        int64_t ch = c0 + k;
        double d = s1[k] / (double)M, mean = K[k] + d, var = s2[k] / (double)M - d * d;
        double invstd = bn_finish_stats(ch, M, mean, var > 0.0 ? var : 0.0, eps, momentum,
                                        running_mean, running_var, save_mean, save_invstd);
        double scale = gamma[ch] * invstd;
        fscale[k] = (float)scale, fshift[k] = (float)(beta[ch] - mean * scale);
        if (save_affine)
            save_affine[ch] = fscale[k], save_affine[c + ch] = fshift[k];
    }
    for (int64_t i = n - 1; i >= 0; i--)
        for (int64_t k = nc - 1; k >= 0; k--) {
            int64_t off = (i * c + c0 + k) * spatial;
            bn_affine(x + off, y + off, spatial, fscale[k], fshift[k], act);
        }
}

/* Channels per group for spatial > 1: the channels split evenly over the
 * threads (contiguous ranges, as schedule(static) over channels gave),
 * at most BN_BLOCK per group. */
static int64_t bn_group_size(int64_t c, bool par)
{
    int64_t t = 1;
    (void)par;   /* unused without OpenMP */
#ifdef _OPENMP
    if (par)
        t = omp_get_max_threads();
#endif
    int64_t g = (c + t - 1) / t;
    return g < BN_BLOCK ? g : BN_BLOCK;
}

/* A block of features [f0, f1) of the training forward, spatial == 1. */
static void bn_train_rows(int64_t n, int64_t c, int64_t f0, int64_t f1, const float *x,
                          const float *gamma, const float *beta, double eps, double momentum,
                          float *running_mean, float *running_var, BnAct act, float *y,
                          float *save_mean, float *save_invstd, float *save_affine)
{
    double mean[BN_BLOCK] = {0}, sq[BN_BLOCK] = {0};
    float scale[BN_BLOCK], shift[BN_BLOCK];
    int64_t nf = f1 - f0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++)
            mean[f] += x[i * c + f0 + f];
    for (int64_t f = 0; f < nf; f++)
        mean[f] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++) {
            double d = x[i * c + f0 + f] - mean[f];
            sq[f] += d * d;
        }
    for (int64_t f = 0; f < nf; f++) {
        double invstd = bn_finish_stats(f0 + f, n, mean[f], sq[f] / (double)n, eps, momentum,
                                        running_mean, running_var, save_mean, save_invstd);
        double sc = gamma[f0 + f] * invstd;
        scale[f] = (float)sc;
        shift[f] = (float)(beta[f0 + f] - mean[f] * sc);
        if (save_affine)
            save_affine[f0 + f] = scale[f], save_affine[c + f0 + f] = shift[f];
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++) {
            y[i * c + f0 + f] = bn_act1(x[i * c + f0 + f] * scale[f] + shift[f], act);
        }
}

static BnAct bn_act_of(NrtFusedAct act, float slope)
{
    /* tanh and sigmoid are not fused here (netrt.h): none */
    bool ok = act == NRT_FUSED_RELU || act == NRT_FUSED_LEAKY_RELU;
    return (BnAct){ok ? act : NRT_FUSED_NONE, slope};
}

void nrt_batchnorm_forward_train(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 bool relu, float *y, float *save_mean, float *save_invstd)
{
    nrt_batchnorm_forward_train_act(n, c, spatial, x, gamma, beta, eps, momentum, running_mean,
                                    running_var, relu ? NRT_FUSED_RELU : NRT_FUSED_NONE, 0.0f, y,
                                    save_mean, save_invstd);
}

void nrt_batchnorm_forward_train_act(int64_t n, int64_t c, int64_t spatial, const float *x,
                                     const float *gamma, const float *beta, double eps,
                                     double momentum, float *running_mean, float *running_var,
                                     NrtFusedAct fused, float slope, float *y, float *save_mean,
                                     float *save_invstd)
{
    nrt_batchnorm_forward_train_affine(n, c, spatial, x, gamma, beta, eps, momentum, running_mean,
                                       running_var, fused, slope, y, save_mean, save_invstd, NULL);
}

void nrt_batchnorm_forward_train_affine(int64_t n, int64_t c, int64_t spatial, const float *x,
                                        const float *gamma, const float *beta, double eps,
                                        double momentum, float *running_mean, float *running_var,
                                        NrtFusedAct fused, float slope, float *y,
                                        float *save_mean, float *save_invstd, float *save_affine)
{
    BnAct act = bn_act_of(fused, slope);
    bool par = n * c * spatial >= BN_PAR_MIN;
    (void)par;   /* unused without OpenMP */
    if (spatial == 1) {
        int64_t nblocks = (c + BN_BLOCK - 1) / BN_BLOCK;
        BN_PARALLEL_FOR(par && nblocks > 1)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t f1 = (b + 1) * BN_BLOCK < c ? (b + 1) * BN_BLOCK : c;
            bn_train_rows(n, c, b * BN_BLOCK, f1, x, gamma, beta, eps, momentum, running_mean,
                          running_var, act, y, save_mean, save_invstd, save_affine);
        }
        return;
    }
    int64_t gs = bn_group_size(c, par), ngroups = (c + gs - 1) / gs;
    BN_PARALLEL_FOR(par && ngroups > 1)
    for (int64_t gi = 0; gi < ngroups; gi++) {
        int64_t c1 = (gi + 1) * gs < c ? (gi + 1) * gs : c;
        bn_train_group(n, c, spatial, gi * gs, c1, x, gamma, beta, eps, momentum, running_mean,
                       running_var, act, y, save_mean, save_invstd, save_affine);
    }
}

/* y = (x - rm) / sqrt(rv + eps) * gamma + beta, as one scale and shift per
 * channel; parallel over the n*c planes. */
void nrt_batchnorm_forward_infer(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 double eps, bool relu, float *y)
{
    nrt_batchnorm_forward_infer_act(n, c, spatial, x, gamma, beta, running_mean, running_var, eps,
                                    relu ? NRT_FUSED_RELU : NRT_FUSED_NONE, 0.0f, y);
}

void nrt_batchnorm_forward_infer_act(int64_t n, int64_t c, int64_t spatial, const float *x,
                                     const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var,
                                     double eps, NrtFusedAct fused, float slope, float *y)
{
    BnAct act = bn_act_of(fused, slope);
    int64_t planes = n * c;
    BN_PARALLEL_FOR(planes * spatial >= BN_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        int64_t ch = p % c;
        double scale = gamma[ch] / sqrt((double)running_var[ch] + eps);
        float fshift = (float)(beta[ch] - running_mean[ch] * scale);
        bn_affine(x + p * spatial, y + p * spatial, spatial, (float)scale, fshift, act);
    }
}

/* Inference folding (netrt.h): one scale and shift per output channel,
 * computed in double; the weights are scaled in float (vector lanes: the
 * fold runs on every predict call, so it must cost little next to the
 * layer even at batch 1), the bias in double. */
/* dst = src * s, n floats; the AVX-512 copy has the same bits (4x fewer
 * instructions than this loop as built, SSE2). */
static void scale_floats(const float *src, int64_t n, float s, float *dst, bool avx512)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (avx512) {
        nrt_scale_avx512(src, n, s, dst);
        return;
    }
#endif
    (void)avx512;
    for (int64_t k = 0; k < n; k++)
        dst[k] = src[k] * s;
}

void nrt_batchnorm_fold_scales(int64_t f, const float *b, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, double eps,
                               float *scale_out, float *b_out)
{
    for (int64_t o = 0; o < f; o++) {
        double scale = gamma[o] / sqrt((double)running_var[o] + eps);
        scale_out[o] = (float)scale;
        b_out[o] = (float)(((b ? (double)b[o] : 0.0) - running_mean[o]) * scale + beta[o]);
    }
}

void nrt_batchnorm_fold(int64_t f, int64_t per, const float *w, const float *b,
                        const float *gamma, const float *beta, const float *running_mean,
                        const float *running_var, double eps, float *w_out, float *b_out)
{
    bool avx512 = nrt_sgemm_isa() == NRT_ISA_AVX512;
    for (int64_t o = 0; o < f; o++) {
        float fs;
        nrt_batchnorm_fold_scales(1, b ? b + o : NULL, gamma + o, beta + o, running_mean + o,
                                  running_var + o, eps, &fs, b_out + o);
        scale_floats(w + o * per, per, fs, w_out + o * per, avx512);
    }
}

/* ---- backward ------------------------------------------------------------ */

/* Where the backward finds the fused activation's mask (kind NONE: no
 * mask): the forward's output y (y > 0), or, when y is NULL, x through the
 * forward's float scale and shift of the channel (x*scale + shift > 0:
 * the very value bn_affine tested, so the same mask bit for bit; this
 * reads one stream less, x being read anyway). dy becomes the
 * activation's gradient g: dy where positive, else 0 (relu) or dy * slope
 * (leaky_relu; x > 0 iff y > 0 for a slope in [0, 1]), activation.c's
 * expressions, so the same bits as its backward kernel. */
typedef struct BnGate {
    const float *y;
    float scale, shift;
    BnAct act;
} BnGate;

/* The effective upstream gradient g at j. */
static inline float bn_grad(const float *dy, const float *x, BnGate gt, int64_t j)
{
    float d = dy[j];
    if (gt.act.kind == NRT_FUSED_NONE)
        return d;
    if (gt.y ? gt.y[j] > 0.0f : x[j] * gt.scale + gt.shift > 0.0f)
        return d;
    return gt.act.kind == NRT_FUSED_LEAKY_RELU ? d * gt.act.slope : 0.0f;
}

/* 4 lanes of g. */
static inline BnVec bn_load_grad(const float *dy, const float *x, BnGate gt, int64_t j)
{
    BnVec g = bn_load(dy + j);
    if (gt.act.kind == NRT_FUSED_NONE)
        return g;
    BnMask pos = gt.y ? bn_load(gt.y + j) > 0.0f : bn_load(x + j) * gt.scale + gt.shift > 0.0f;
    if (gt.act.kind == NRT_FUSED_LEAKY_RELU)
        return (BnVec)(((BnMask)g & pos) | ((BnMask)(g * gt.act.slope) & ~pos));
    return (BnVec)((BnMask)g & pos);
}

/* sg += sum g, sgx += sum g*(x - mean) over one plane. */
static void bn_plane_grad_sums(const float *dy, const float *x, BnGate gt, int64_t len,
                               float mean, double *sg, double *sgx)
{
    for (int64_t c0 = 0; c0 < len; c0 += BN_CHUNK) {
        int64_t c1 = c0 + BN_CHUNK < len ? c0 + BN_CHUNK : len, j = c0;
        BnVec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (; j + BN_VL <= c1; j += BN_VL) {
            BnVec g0 = bn_load_grad(dy, x, gt, j), g1 = bn_load_grad(dy, x, gt, j + 4);
            BnVec g2 = bn_load_grad(dy, x, gt, j + 8), g3 = bn_load_grad(dy, x, gt, j + 12);
            a0 += g0, a1 += g1, a2 += g2, a3 += g3;
            b0 += g0 * (bn_load(x + j) - mean), b1 += g1 * (bn_load(x + j + 4) - mean);
            b2 += g2 * (bn_load(x + j + 8) - mean), b3 += g3 * (bn_load(x + j + 12) - mean);
        }
        double ta = bn_hsum4(a0, a1, a2, a3), tb = bn_hsum4(b0, b1, b2, b3);
        for (; j < c1; j++) {
            double g = bn_grad(dy, x, gt, j);
            ta += g;
            tb += g * ((double)x[j] - mean);
        }
        *sg += ta;
        *sgx += tb;
    }
}

/* dx = (g - mean_g - (x - mean)*k) * (invstd*gamma) over one plane. */
static void bn_plane_dx(const float *dy, const float *x, BnGate gt, int64_t len,
                        float mean, float mean_g, float k, float coef, float *dx, bool acc)
{
    int64_t j = 0;
    for (; j + 4 <= len; j += 4) {
        BnVec v = (bn_load_grad(dy, x, gt, j) - mean_g - (bn_load(x + j) - mean) * k) * coef;
        if (acc)
            v += bn_load(dx + j);
        memcpy(dx + j, &v, sizeof v);
    }
    for (; j < len; j++) {
        float v = (bn_grad(dy, x, gt, j) - mean_g - (x[j] - mean) * k) * coef;
        dx[j] = acc ? dx[j] + v : v;
    }
}

/* The inputs of one backward call, as given. */
typedef struct BnBwd {
    int64_t n, c, spatial;
    const float *dy, *x, *y_act, *affine, *gamma, *save_mean, *save_invstd;
    BnAct act;
    float *dx, *dgamma, *dbeta;
    bool acc_dx, acc_params;
} BnBwd;

/* Channel ch's gate at plane offset off. */
static BnGate bn_gate(const BnBwd *B, int64_t ch, int64_t off)
{
    BnGate gt = {B->y_act ? B->y_act + off : NULL, 0.0f, 0.0f, B->act};
    if (!B->y_act && B->affine)
        gt.scale = B->affine[ch], gt.shift = B->affine[B->c + ch];
    return gt;
}

/* dbeta, dgamma of channel ch from its sums; mean_g, k, coef for dx. */
static void bn_finish_grads(const BnBwd *B, int64_t ch, int64_t M, double sg, double sgx,
                            float *mean_g, float *k, float *coef)
{
    double invstd = B->save_invstd[ch];
    float db = (float)sg, dg = (float)(sgx * invstd);
    B->dbeta[ch] = B->acc_params ? B->dbeta[ch] + db : db;
    B->dgamma[ch] = B->acc_params ? B->dgamma[ch] + dg : dg;
    *mean_g = (float)(sg / (double)M);
    *k = (float)(sgx * invstd * invstd / (double)M);
    *coef = (float)(invstd * B->gamma[ch]);
}

/* Channels [c0, c1) (at most BN_BLOCK) of the backward, spatial > 1: as
 * bn_train_group, samples outer for streaming loads, every channel's sums
 * in sample order, dx walking the samples backwards (the planes the sums
 * read last are still in L2; at batch 256 a channel's dy, x and y of
 * lenet_bn's first batchnorm are 2.4 MB). */
static void bn_backward_group(const BnBwd *B, int64_t c0, int64_t c1)
{
    int64_t n = B->n, c = B->c, spatial = B->spatial, M = n * spatial, nc = c1 - c0;
    double sg[BN_BLOCK] = {0}, sgx[BN_BLOCK] = {0};
    float mean_g[BN_BLOCK], k[BN_BLOCK], coef[BN_BLOCK];
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < nc; q++) {
            int64_t off = (i * c + c0 + q) * spatial;
            bn_plane_grad_sums(B->dy + off, B->x + off, bn_gate(B, c0 + q, off), spatial,
                               B->save_mean[c0 + q], &sg[q], &sgx[q]);
        }
    for (int64_t q = 0; q < nc; q++)
        bn_finish_grads(B, c0 + q, M, sg[q], sgx[q], &mean_g[q], &k[q], &coef[q]);
    if (!B->dx)
        return;
    for (int64_t i = n - 1; i >= 0; i--)
        for (int64_t q = nc - 1; q >= 0; q--) {
            int64_t off = (i * c + c0 + q) * spatial;
            bn_plane_dx(B->dy + off, B->x + off, bn_gate(B, c0 + q, off), spatial,
                        B->save_mean[c0 + q], mean_g[q], k[q], coef[q], B->dx + off, B->acc_dx);
        }
}

/* spatial == 1, one row of features [f0, f0 + nf): g at feature f, with
 * the mask from y or from x through the affine (bn_grad's rule). */
static inline float bn_row_grad(const BnBwd *B, int64_t o, int64_t f0, int64_t f)
{
    float d = B->dy[o + f];
    if (B->act.kind == NRT_FUSED_NONE)
        return d;
    bool pos = B->y_act ? B->y_act[o + f] > 0.0f
                        : B->x[o + f] * B->affine[f0 + f] + B->affine[B->c + f0 + f] > 0.0f;
    return pos ? d : B->act.kind == NRT_FUSED_LEAKY_RELU ? d * B->act.slope : 0.0f;
}

/* The sums of row o (= i*c + f0). The activation test is hoisted out of
 * the loops so that they vectorize. */
static void bn_row_sums(const BnBwd *B, int64_t o, int64_t f0, int64_t nf, const double *mean,
                        double *sg, double *sgx)
{
    const float *dy = B->dy + o, *x = B->x + o;
    if (B->act.kind == NRT_FUSED_NONE) {
        for (int64_t f = 0; f < nf; f++) {
            sg[f] += dy[f];
            sgx[f] += dy[f] * ((double)x[f] - mean[f]);
        }
    } else if (B->act.kind == NRT_FUSED_RELU && B->y_act) {
        const float *y = B->y_act + o;
        for (int64_t f = 0; f < nf; f++) {
            float d = dy[f], g = y[f] > 0.0f ? d : 0.0f;   /* unconditional loads: a select */
            sg[f] += g;
            sgx[f] += g * ((double)x[f] - mean[f]);
        }
    } else if (B->act.kind == NRT_FUSED_RELU) {
        const float *sc = B->affine + f0, *sh = B->affine + B->c + f0;
        for (int64_t f = 0; f < nf; f++) {
            float d = dy[f], g = x[f] * sc[f] + sh[f] > 0.0f ? d : 0.0f;
            sg[f] += g;
            sgx[f] += g * ((double)x[f] - mean[f]);
        }
    } else {
        for (int64_t f = 0; f < nf; f++) {
            double g = bn_row_grad(B, o, f0, f);
            sg[f] += g;
            sgx[f] += g * ((double)x[f] - mean[f]);
        }
    }
}

static void bn_row_dx(const BnBwd *B, int64_t o, int64_t f0, int64_t nf, const float *mean_g,
                      const float *k, const float *coef)
{
    const float *x = B->x + o, *mean = B->save_mean + f0;
    float *dx = B->dx + o;
    for (int64_t f = 0; f < nf; f++) {
        float v = (bn_row_grad(B, o, f0, f) - mean_g[f] - (x[f] - mean[f]) * k[f]) * coef[f];
        dx[f] = B->acc_dx ? dx[f] + v : v;
    }
}

/* spatial == 1: features [f0, f1), rows in order. */
static void bn_backward_rows(const BnBwd *B, int64_t f0, int64_t f1)
{
    int64_t n = B->n, c = B->c, nf = f1 - f0;
    double sg[BN_BLOCK] = {0}, sgx[BN_BLOCK] = {0}, mean[BN_BLOCK];
    float mean_g[BN_BLOCK], k[BN_BLOCK], coef[BN_BLOCK];
    for (int64_t f = 0; f < nf; f++)
        mean[f] = B->save_mean[f0 + f];
    for (int64_t i = 0; i < n; i++)
        bn_row_sums(B, i * c + f0, f0, nf, mean, sg, sgx);
    for (int64_t f = 0; f < nf; f++)
        bn_finish_grads(B, f0 + f, n, sg[f], sgx[f], &mean_g[f], &k[f], &coef[f]);
    if (!B->dx)
        return;
    for (int64_t i = 0; i < n; i++)
        bn_row_dx(B, i * c + f0, f0, nf, mean_g, k, coef);
}

static void bn_backward(const BnBwd *B)
{
    int64_t n = B->n, c = B->c, spatial = B->spatial;
    bool par = n * c * spatial >= BN_PAR_MIN;
    (void)par;   /* unused without OpenMP */
    if (spatial == 1) {
        int64_t nblocks = (c + BN_BLOCK - 1) / BN_BLOCK;
        BN_PARALLEL_FOR(par && nblocks > 1)
        for (int64_t b = 0; b < nblocks; b++)
            bn_backward_rows(B, b * BN_BLOCK, (b + 1) * BN_BLOCK < c ? (b + 1) * BN_BLOCK : c);
        return;
    }
    int64_t gs = bn_group_size(c, par), ngroups = (c + gs - 1) / gs;
    BN_PARALLEL_FOR(par && ngroups > 1)
    for (int64_t gi = 0; gi < ngroups; gi++)
        bn_backward_group(B, gi * gs, (gi + 1) * gs < c ? (gi + 1) * gs : c);
}

void nrt_batchnorm_backward(int64_t n, int64_t c, int64_t spatial, const float *dy,
                            const float *x, const float *y_relu, const float *gamma,
                            const float *save_mean, const float *save_invstd, float *dx,
                            float *dgamma, float *dbeta, bool accumulate_dx,
                            bool accumulate_params)
{
    nrt_batchnorm_backward_act(n, c, spatial, dy, x, y_relu, NRT_FUSED_RELU, 0.0f, gamma, save_mean,
                               save_invstd, dx, dgamma, dbeta, accumulate_dx, accumulate_params);
}

void nrt_batchnorm_backward_act(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                const float *x, const float *y_act, NrtFusedAct fused, float slope,
                                const float *gamma, const float *save_mean,
                                const float *save_invstd, float *dx, float *dgamma, float *dbeta,
                                bool accumulate_dx, bool accumulate_params)
{
    BnBwd B = {n, c, spatial, dy, x, y_act, NULL, gamma, save_mean, save_invstd,
               bn_act_of(fused, slope), dx, dgamma, dbeta, accumulate_dx, accumulate_params};
    if (!y_act)
        B.act.kind = NRT_FUSED_NONE;
    bn_backward(&B);
}

void nrt_batchnorm_backward_affine(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                   const float *x, const float *save_affine, NrtFusedAct fused,
                                   float slope, const float *gamma, const float *save_mean,
                                   const float *save_invstd, float *dx, float *dgamma,
                                   float *dbeta, bool accumulate_dx, bool accumulate_params)
{
    BnBwd B = {n, c, spatial, dy, x, NULL, save_affine, gamma, save_mean, save_invstd,
               bn_act_of(fused, slope), dx, dgamma, dbeta, accumulate_dx, accumulate_params};
    if (!save_affine)
        B.act.kind = NRT_FUSED_NONE;
    bn_backward(&B);
}
