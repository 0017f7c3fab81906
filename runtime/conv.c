/* conv.c - 2-D convolution, NCHW: forward, backward data, backward weights,
 * backward bias, each next to its plain reference (*_ref).
 *
 * Shapes: x (n, c, h, w), weights (f, c, k, k), bias (f), y (n, f, oh, ow),
 * oh = (h + 2*pad - k) / stride + 1; zero padding.
 *
 * Method: per sample, im2col turns x into col (K = c*k*k rows, P = oh*ow
 * columns), and the layer is one SGEMM: y_s (f, P) = w (f, K) col (K, P)
 * with bias and activation in the GEMM epilogue. Backward data of a stride-1
 * convolution is itself a forward convolution: dx_s = conv(dy_s, w flipped
 * and transposed, pad k-1-pad), one SGEMM of depth f*k*k, used from 8
 * input channels on (resnet8 s1: 1.8x faster than the depth-f GEMM
 * dcol = w^T dy_s + col2im scatter, which few-channel convolutions, and
 * strided ones without the direct path below, still use). Backward weights
 * is dw += dy_s col^T.
 * A 1x1, stride 1, pad 0 convolution uses x itself as col. On AVX-512
 * CPUs im2col rows of up to 32 columns are masked vector moves
 * (conv_avx512.c; 1.3-1.5x on whole training steps); the portable rows
 * are plain loops (short rows made memset/memcpy calls cost more than the
 * copy).
 *
 * Direct path (AVX-512, chosen per shape by use_direct and
 * use_direct_weights from bench_kernels figures): each sample is copied
 * once into a zero-padded, stride-phase-split buffer; the forward and the
 * flipped backward data then run the SGEMM micro-kernel with B vectors
 * loaded from that copy at fixed tap offsets (conv_direct_avx512.c; the
 * same bits as im2col + SGEMM), and the weight gradient is an implicit
 * GEMM whose B panels are transposed straight out of the copy
 * (nrt_sgemm_packer; summed over padded positions, another fixed order).
 * Backward data of a stride-2 convolution is four direct convolutions of
 * dy, one per phase of dx's pixels (PhasePlan), interleaved back into dx
 * (instead of the depth-f GEMM + col2im scatter).
 *
 * Threads and determinism: samples are split into g = min(n, NRT_CONV_SLOTS)
 * contiguous groups (a function of n only); group j uses workspace slot j.
 * Groups run in parallel; the weight gradient is summed per group in sample
 * order into the slot's partial buffer, then the partials are added in
 * group order. No result depends on how many threads run. With n == 1 the
 * sample is done inline and the GEMM splits its own tiles.
 */
#include "netrt.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "isa_kernels.h"
#include "par_team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_PAR_MIN ((int64_t)1 << 21)   /* flops below this: one thread */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static size_t r16(size_t x) { return (x + 15) / 16 * 16; }

int64_t nrt_conv_out_h(const NrtConvShape *s) { return (s->h + 2 * s->pad - s->k) / s->stride + 1; }
int64_t nrt_conv_out_w(const NrtConvShape *s) { return (s->w + 2 * s->pad - s->k) / s->stride + 1; }

/* The direct path (conv_direct_avx512.c) for one convolution shape: the
 * phase planes of the padded copy (hq x wq, stride^2 per channel), the
 * padded positions q of the output, and the copy's floats (with 32 floats
 * of slack: the last tile's thrown-away lanes read up to 31 past the end). */
typedef struct DirectPlan {
    int64_t hq, wq, q, floats;
} DirectPlan;

static DirectPlan direct_plan(const NrtConvShape *s, int64_t oh, int64_t ow)
{
    DirectPlan p;
    int64_t st = s->stride;
    p.hq = (s->h + 2 * s->pad + st - 1) / st;
    p.wq = (s->w + 2 * s->pad + st - 1) / st;
    p.q = (oh - 1) * p.wq + ow;
    p.floats = s->c * st * st * p.hq * p.wq + 32;
    return p;
}

/* Backward data of a stride-2 convolution as four stride-1 direct ones,
 * one per phase (a, b) of dx's padded pixel (iy + pad, ix + pad): phase
 * output (u, v) is pixel (2u + a - pad, 2v + b - pad) and sums the taps
 * ki = a + 2m, kj = b + 2n over dy (o, u - m, v - n). One copy of dy per
 * sample, zero-padded by pad = ceil(k / 2) - 1 (hq x wq planes) serves all
 * four; the outputs (c, u, v each) go through a scratch, then into dx. */
typedef struct PhasePlan {
    int64_t pad, hq, wq, u, v, floats;
} PhasePlan;

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static PhasePlan phase_plan(const NrtConvShape *s, int64_t oh, int64_t ow)
{
    PhasePlan p;
    p.pad = (s->k + 1) / 2 - 1;
    p.u = (s->h + s->pad + 1) / 2;
    p.v = (s->w + s->pad + 1) / 2;
    p.hq = max64(p.pad + p.u, 2 * p.pad + oh);
    p.wq = max64(p.pad + p.v, 2 * p.pad + ow);
    p.floats = s->f * p.hq * p.wq + 32;
    return p;
}

static _Atomic int conv_algo = NRT_CONV_AUTO;

void nrt_conv_set_algo(NrtConvAlgo algo) { atomic_store(&conv_algo, (int)algo); }

/* The direct kernels run only on AVX-512 CPUs; nrt_conv_set_algo can force
 * either path; otherwise the shape decides (auto_pick). */
static bool direct_allowed(bool auto_pick)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() != NRT_ISA_AVX512)
        return false;
    int algo = atomic_load(&conv_algo);
    return algo == NRT_CONV_AUTO ? auto_pick : algo == NRT_CONV_DIRECT;
#else
    (void)auto_pick;
    return false;
#endif
}

/* Whether a convolution of shape s (a forward one, or the transposed one
 * of a flipped backward data) runs direct. By measurement (bench_kernels,
 * CPU time, bench/RESULTS.md "Issue #6, fourth session"): direct won on
 * every model shape with at least 24 taps (c*k*k; lenet conv1 25 taps 38
 * -> 49 GFLOP/s, resnet8 s1 81 -> 118, the strided 3x3 ones 62-80 ->
 * 78-91) and lost below, where each 8 x 32 tile is mostly epilogue (3x3 on
 * one channel, 9 taps: 40 -> 38 and 48 -> 42), and on 1x1 stride-2
 * convolutions, whose padded copy holds 4x the pixels they read (35 -> 25). */
static bool use_direct(const NrtConvShape *s)
{
    return direct_allowed(s->k > 1 && s->c * s->k * s->k >= 24);
}

/* Whether backward data of a stride-2 convolution runs as four direct
 * phase convolutions: from 24 taps per phase (f * ceil(k/2)^2). Measured
 * against the depth-f GEMM + col2im: resnet8 16->32 3x3 s2 52 -> 81
 * GFLOP/s, 32->64 s2 58-60 -> 67-68, the 1x1 s2 shortcut 29-31 -> 31-34. */
static bool use_direct_phases(const NrtConvShape *s)
{
    int64_t half = (s->k + 1) / 2;
    return direct_allowed(s->f * half * half >= 24);
}

/* Whether the weight gradient of shape s packs the GEMM's B panels
 * straight from the padded copy of x (no im2col): where the forward runs
 * direct, and at least 7/8 of the padded positions are real outputs (this
 * GEMM's depth is the padded positions). Measured (bench_kernels, CPU
 * time, im2col -> direct GFLOP/s): resnet8 s1 (28 of 30 columns) 50 ->
 * 61, lenet conv1 24 -> 30, conv2 45 -> 51, resnet8 32->32 (14 of 16) 75
 * -> 82; the 7 x 7 planes (7 of 9) lost 5-9%. From 5 x 5 kernels on
 * the column matrix im2col writes is 25x the image, which costs more than
 * the wasted positions: lenet conv2 (10 of 14 columns) 612 -> 535 us at
 * b64, 2418 -> 2129 at b256 (1 thread, CPU time, fifth session), so k >= 5
 * always runs direct. */
static bool use_direct_weights(const NrtConvShape *s)
{
    if (!use_direct(s))
        return false;
    DirectPlan pl = direct_plan(s, nrt_conv_out_h(s), nrt_conv_out_w(s));
    return atomic_load(&conv_algo) == NRT_CONV_DIRECT || s->k >= 5 ||
           8 * nrt_conv_out_w(s) >= 7 * pl.wq;
}

/* Derived sizes shared by all kernels of one call. */
typedef struct ConvDims {
    int64_t oh, ow, p;        /* output plane */
    int64_t kk;               /* GEMM depth c*k*k */
    int64_t xs, ys;           /* floats per sample of x and y */
    bool direct;              /* 1x1, stride 1, pad 0: col is x itself */
    bool flip;                /* backward data as a forward conv of dy (stride 1) */
    NrtConvShape ts;          /* that transposed convolution, one sample */
    int64_t tkk, hw;          /* its GEMM depth f*k*k and output plane h*w */
    int64_t ngroups;
    DirectPlan fwd, bwd;      /* the direct path's copies of x and (flip) of dy */
    bool dir_fwd, dir_bwd;    /* forward / flipped backward data run direct */
    bool dir_wgt;             /* backward weights packs its B panels from x's copy */
    PhasePlan ph;             /* stride-2 backward data by phases */
    bool dir_phase;
} ConvDims;

static ConvDims conv_dims(const NrtConvShape *s)
{
    ConvDims d;
    d.oh = nrt_conv_out_h(s);
    d.ow = nrt_conv_out_w(s);
    d.p = d.oh * d.ow;
    d.kk = s->c * s->k * s->k;
    d.xs = s->c * s->h * s->w;
    d.ys = s->f * d.p;
    d.direct = s->k == 1 && s->stride == 1 && s->pad == 0;
    /* The flipped GEMM has M = c rows: below one 8-row micro-tile it lost
     * to col2im in bench_kernels (lenet conv1, c = 1: 15.7 -> 5.5 GFLOP/s;
     * conv2, c = 6: 28.5 -> 11.8), from 16 channels it wins (resnet8 s1:
     * 38 -> 67). Run direct (no column matrix), it wins from 4 channels
     * (1 thread, CPU time, b64, col2im -> direct flip: lenet conv2 6 -> 16
     * 5x5 904 -> 678 us, 4 -> 16 3x3 28x28 1239 -> 1017) and still loses
     * below (3 -> 16 5x5 467 -> 631, 2 -> 32 3x3 317 -> 470, 1 -> 6 5x5
     * 623 -> 862). */
    d.ts = (NrtConvShape){ 1, s->f, d.oh, d.ow, s->c, s->k, 1, s->k - 1 - s->pad };
    d.flip = !d.direct && s->stride == 1 && s->pad <= s->k - 1 &&
             (s->c >= 8 || (s->c >= 4 && use_direct(&d.ts)));
    d.tkk = s->f * s->k * s->k;
    d.hw = s->h * s->w;
    d.ngroups = min64(s->n, NRT_CONV_SLOTS);
    d.fwd = direct_plan(s, d.oh, d.ow);
    d.bwd = direct_plan(&d.ts, s->h, s->w);
    d.dir_fwd = !d.direct && use_direct(s);
    d.dir_bwd = d.flip && use_direct(&d.ts);
    d.dir_wgt = !d.direct && use_direct_weights(s);
    d.ph = phase_plan(s, d.oh, d.ow);
    d.dir_phase = s->stride == 2 && use_direct_phases(s);
    return d;
}

/* ---- workspace slots -------------------------------------------------- */

typedef struct ConvSlot {
    float *col;               /* kk x p */
    NrtWorkspace gemm;        /* SGEMM packing */
    float *dw;                /* f x kk partial weight gradient */
} ConvSlot;

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static size_t gemm_floats(const NrtConvShape *s, const ConvDims *d)
{
    size_t g = nrt_sgemm_workspace_floats(s->f, d->p, d->kk);
    g = max_size(g, nrt_sgemm_workspace_floats(d->kk, d->p, s->f));
    g = max_size(g, nrt_sgemm_workspace_floats(s->f, d->kk, d->p));
    g = max_size(g, nrt_sgemm_workspace_floats(s->f, d->kk, d->fwd.q));
    return max_size(g, nrt_sgemm_workspace_floats(s->c, d->hw, d->tkk));
}

/* The column matrix of either GEMM, or the direct path's padded copy (for
 * the weight gradient followed by dy in the padded positions). */
static size_t col_floats(const NrtConvShape *s, const ConvDims *d)
{
    size_t n = max_size((size_t)(d->kk * d->p), (size_t)(d->tkk * d->hw));
    n = max_size(n, r16((size_t)d->fwd.floats) + (size_t)(s->f * d->fwd.q));
    n = max_size(n, r16((size_t)d->ph.floats) + (size_t)(4 * s->c * d->ph.u * d->ph.v));
    return r16(max_size(n, (size_t)d->bwd.floats));
}

static int64_t r8(int64_t x) { return (x + 7) / 8 * 8; }

/* After the slots: the flipped weights (c, f*k*k), then the direct path's
 * packed weights of the forward and the flipped convolution, then the tap
 * offsets of both (int32), the four phases' weights and offsets, and last
 * nrt_conv_forward_bn's folded weights (f, kk), bias (f) and scales (f). */
static size_t fold_floats(const NrtConvShape *s, const ConvDims *d)
{
    return r16((size_t)(s->f * d->kk)) + 2 * r16((size_t)s->f);
}

static size_t shared_floats(const NrtConvShape *s, const ConvDims *d)
{
    return r16((size_t)(s->c * d->tkk)) + r16((size_t)(r8(s->f) * d->kk)) +
           r16((size_t)(r8(s->c) * d->tkk)) + r16((size_t)d->kk) + r16((size_t)d->tkk) +
           4 * (r16((size_t)(r8(s->c) * d->tkk)) + r16((size_t)d->tkk)) + fold_floats(s, d);
}

static size_t slot_floats(const NrtConvShape *s, const ConvDims *d)
{
    return col_floats(s, d) + r16(gemm_floats(s, d)) + r16((size_t)(s->f * d->kk));
}

/* The slots, then the arrays shared by all slots (shared_floats), then
 * the weight gradient's per-sample bias sums (n x f, bias_sums). */
size_t nrt_conv_workspace_floats(const NrtConvShape *s)
{
    ConvDims d = conv_dims(s);
    return NRT_CONV_SLOTS * slot_floats(s, &d) + shared_floats(s, &d) +
           r16((size_t)(s->n > 0 ? s->n * s->f : 0));
}

static float *bias_sums(float *base, const NrtConvShape *s, const ConvDims *d)
{
    return base + NRT_CONV_SLOTS * slot_floats(s, d) + shared_floats(s, d);
}

static float *flipped_weights(float *base, const NrtConvShape *s, const ConvDims *d)
{
    return base + NRT_CONV_SLOTS * slot_floats(s, d);
}

/* A batchnorm folded into the forward (nrt_conv_forward_bn): its
 * parameters, and where the folded weights and bias go (the workspace's
 * last area). */
typedef struct BnFold {
    const float *b, *gamma, *beta, *mean, *var;
    double eps;
    float *wf, *bf, *sc;   /* folded weights and bias, per-filter scales */
} BnFold;

static float *fold_area(float *base, const NrtConvShape *s, const ConvDims *d)
{
    return flipped_weights(base, s, d) + shared_floats(s, d) - fold_floats(s, d);
}

/* Filters [o0, o1) folded by nrt_batchnorm_fold itself, so the bits are the
 * fold step's. */
static void fold_rows(const BnFold *bn, const float *w, int64_t kk, int64_t o0, int64_t o1)
{
    if (o1 > o0)
        nrt_batchnorm_fold(o1 - o0, kk, w + o0 * kk, bn->b ? bn->b + o0 : NULL, bn->gamma + o0,
                           bn->beta + o0, bn->mean + o0, bn->var + o0, bn->eps, bn->wf + o0 * kk,
                           bn->bf + o0);
}

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
/* The direct path's packed weights and offsets: forward (flip = false) or
 * the flipped backward data. */
static float *direct_weights(float *base, const NrtConvShape *s, const ConvDims *d, bool flip)
{
    float *p = flipped_weights(base, s, d) + r16((size_t)(s->c * d->tkk));
    return flip ? p + r16((size_t)(r8(s->f) * d->kk)) : p;
}

static int32_t *direct_offsets(float *base, const NrtConvShape *s, const ConvDims *d, bool flip)
{
    float *p = direct_weights(base, s, d, true) + r16((size_t)(r8(s->c) * d->tkk));
    return (int32_t *)(flip ? p + r16((size_t)d->kk) : p);
}

/* Phase ph's packed weights and tap offsets (after the offsets above). */
static float *phase_area(float *base, const NrtConvShape *s, const ConvDims *d, int ph)
{
    float *p = (float *)direct_offsets(base, s, d, true) + r16((size_t)d->tkk);
    return p + (size_t)ph * (r16((size_t)(r8(s->c) * d->tkk)) + r16((size_t)d->tkk));
}
#endif

static ConvSlot slot_at(float *base, const NrtConvShape *s, const ConvDims *d, int64_t j)
{
    float *p = base + (size_t)j * slot_floats(s, d);
    ConvSlot sl;
    sl.col = p;
    p += col_floats(s, d);
    sl.gemm.buf = p;
    sl.gemm.floats = gemm_floats(s, d);
    sl.dw = p + r16(sl.gemm.floats);
    return sl;
}

/* The caller's workspace, or a temporary one (freed by conv_release). */
static float *conv_acquire(const NrtConvShape *s, NrtWorkspace *ws, float **owned)
{
    size_t need = nrt_conv_workspace_floats(s);
    *owned = NULL;
    if (ws && ws->buf && ws->floats >= need)
        return ws->buf;
    *owned = malloc(need * sizeof(float));
    return *owned;
}

/* ---- im2col / col2im ------------------------------------------------- */

/* Output columns ox whose input column ox*stride - pad + kj lies inside
 * [0, w): the range [*lo, *hi). */
static void valid_cols(const NrtConvShape *s, int64_t ow, int64_t kj, int64_t *lo, int64_t *hi)
{
    int64_t off = kj - s->pad, st = s->stride;   /* ix = ox*st + off */
    int64_t first = off >= 0 ? 0 : (-off + st - 1) / st;
    int64_t last = s->w - 1 - off < 0 ? -1 : (s->w - 1 - off) / st;
    *lo = first < ow ? first : ow;
    *hi = last + 1 < *lo ? *lo : (last + 1 < ow ? last + 1 : ow);
}

/* One output row of im2col: zeros, the valid input columns, zeros. Rows
 * are short (7..28 floats), so plain loops beat memset/memcpy calls; gcc
 * would turn them back into those calls without the attribute. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void im2col_row(float *restrict out, const float *restrict in, int64_t ow, int64_t lo,
                       int64_t hi, int64_t st, int64_t off)
{
    int64_t ox = 0;
    for (; ox < lo; ox++)
        out[ox] = 0.0f;
    if (st == 1)
        for (; ox < hi; ox++)
            out[ox] = in[ox + off];
    else
        for (; ox < hi; ox++)
            out[ox] = in[ox * st + off];
    for (; ox < ow; ox++)
        out[ox] = 0.0f;
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void zero_row(float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = 0.0f;
}

/* col[(ci*k + ki)*k + kj][oy*ow + ox] = x[ci][oy*st - pad + ki][ox*st - pad + kj],
 * for an output plane oh x ow. */
static void im2col(const NrtConvShape *s, int64_t oh, int64_t ow, const float *x, float *col)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() == NRT_ISA_AVX512 && nrt_im2col_avx512(s, oh, ow, x, col))
        return;
#endif
    int64_t k = s->k, st = s->stride, p = oh * ow;
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t ki = 0; ki < k; ki++)
            for (int64_t kj = 0; kj < k; kj++) {
                float *row = col + ((ci * k + ki) * k + kj) * p;
                int64_t lo, hi, off = kj - s->pad;
                valid_cols(s, ow, kj, &lo, &hi);
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * st - s->pad + ki;
                    if (iy < 0 || iy >= s->h)
                        zero_row(row + oy * ow, ow);
                    else
                        im2col_row(row + oy * ow, x + (ci * s->h + iy) * s->w, ow, lo, hi, st,
                                   off);
                }
            }
}

/* out[ox*st + off] += in[ox] for ox in [lo, hi); restrict lets the
 * stride-1 case vectorize (it ran scalar, with spills, before). */
static void col2im_row(float *restrict out, const float *restrict in, int64_t lo, int64_t hi,
                       int64_t st, int64_t off)
{
    if (st == 1) {
        for (int64_t ox = lo; ox < hi; ox++)
            out[ox + off] += in[ox];
        return;
    }
    for (int64_t ox = lo; ox < hi; ox++)
        out[ox * st + off] += in[ox];
}

/* The adjoint of im2col: dx[ci][iy][ix] += col[...] for every tap. */
static void col2im(const NrtConvShape *s, int64_t oh, int64_t ow, const float *col, float *dx)
{
    int64_t k = s->k, st = s->stride, p = oh * ow;
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t ki = 0; ki < k; ki++)
            for (int64_t kj = 0; kj < k; kj++) {
                const float *row = col + ((ci * k + ki) * k + kj) * p;
                int64_t lo, hi, off = kj - s->pad;
                valid_cols(s, ow, kj, &lo, &hi);
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * st - s->pad + ki;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    col2im_row(dx + (ci * s->h + iy) * s->w, row + oy * ow, lo, hi, st, off);
                }
            }
}

/* Samples of group j: [first, end). */
static void group_range(const NrtConvShape *s, const ConvDims *d, int64_t j,
                        int64_t *first, int64_t *end)
{
    *first = s->n * j / d->ngroups;
    *end = s->n * (j + 1) / d->ngroups;
}

#ifdef _OPENMP
static bool go_parallel(const NrtConvShape *s, const ConvDims *d)
{
    return d->ngroups > 1 && 2 * s->n * s->f * d->kk * d->p >= CONV_PAR_MIN;
}
#endif

static float plane_sum(const float *plane, int64_t len);

/* ps[o] = the plane sum of dy_i's channel o (the bias gradient's per-sample
 * terms, nrt_conv_backward_bias's order), while dy_i is in cache. */
static void sample_bias_sums(const NrtConvShape *s, const ConvDims *d, const float *dy_i, float *ps)
{
    for (int64_t o = 0; o < s->f; o++)
        ps[o] = plane_sum(dy_i + o * d->p, d->p);
}

/* ---- the direct path (AVX-512) ----------------------------------------- */

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
/* off[(ci*k + ki)*k + kj]: where the tap reads in the padded copy, relative
 * to the output's padded position (conv_direct_avx512.c). */
static void tap_offsets(const NrtConvShape *s, const DirectPlan *pl, int32_t *off)
{
    int64_t k = s->k, st = s->stride, plane = pl->hq * pl->wq;
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t ki = 0; ki < k; ki++) {
            int64_t base = ((ci * st + ki % st) * st) * plane + ki / st * pl->wq;
            for (int64_t kj = 0, a = 0, b = 0; kj < k; kj++) {   /* a = kj % st, b = kj / st */
                *off++ = (int32_t)(base + a * plane + b);
                if (++a == st)
                    a = 0, b++;
            }
        }
}

/* w (m, kk) packed as gemm.c packs A, every K slice (NrtDirectConv.ap). */
static void pack_weights(const float *w, int64_t m, int64_t kk, float *ap)
{
    for (int64_t p0 = 0; p0 < kk; p0 += NRT_GEMM_KC) {
        int64_t kc = min64(NRT_GEMM_KC, kk - p0);
        for (int64_t i0 = 0; i0 < m; i0 += NRT_GEMM_MR)
            nrt_gemm_pack_rows8_avx512(w + i0 * kk + p0, kk, (int)min64(NRT_GEMM_MR, m - i0),
                                       kc, ap + p0 * r8(m) + i0 * kc);
    }
}

/* The convolution of every sample of x into y, direct: the forward one
 * (flip false: x, w, y as given) or the flipped backward data (x = dy,
 * w = the flipped weights, y = dx). Same groups and slots as the GEMM
 * path; each slot's copy is zeroed once, then only its interior changes. */
static bool direct_run(const NrtConvShape *s, const ConvDims *d, bool flip, float *base,
                       const float *w, const float *x, float *y, float beta,
                       const NrtEpilogue *ep)
{
    const NrtConvShape *cs = flip ? &d->ts : s;
    const DirectPlan *pl = flip ? &d->bwd : &d->fwd;
    int64_t kk = cs->c * cs->k * cs->k, oh = nrt_conv_out_h(cs), ow = nrt_conv_out_w(cs);
    int64_t xs = cs->c * cs->h * cs->w, ys = cs->f * oh * ow;
    float *ap = direct_weights(base, s, d, flip);
    int32_t *off = direct_offsets(base, s, d, flip);
    pack_weights(w, cs->f, kk, ap);
    tap_offsets(cs, pl, off);
    NrtDirectConv dc = { .f = cs->f, .kk = kk, .wq = pl->wq, .ow = ow, .q = pl->q,
                         .p = oh * ow, .off = off, .ap = ap };
#pragma omp parallel for schedule(static) if (go_parallel(s, d))
    for (int64_t j = 0; j < d->ngroups; j++) {
        ConvSlot sl = slot_at(base, s, d, j);
        int64_t first, end;
        group_range(s, d, j, &first, &end);
        memset(sl.col, 0, (size_t)pl->floats * sizeof(float));
        for (int64_t i = first; i < end; i++) {
            nrt_conv_pad_avx512(cs, pl->hq, pl->wq, x + i * xs, sl.col);
            nrt_conv_direct_avx512(&dc, sl.col, y + i * ys, beta, ep);
        }
    }
    return true;
}

/* The folded bias and scales of filters [o0, o1), by the fold's own code. */
static void fold_scales(const BnFold *bn, int64_t o0, int64_t o1)
{
    if (o1 > o0)
        nrt_batchnorm_fold_scales(o1 - o0, bn->b ? bn->b + o0 : NULL, bn->gamma + o0,
                                  bn->beta + o0, bn->mean + o0, bn->var + o0, bn->eps,
                                  bn->sc + o0, bn->bf + o0);
}

/* Packed panels [pan0, pan1) of m rows scaled by row (sc): the folded
 * weights in the packed layout, each w * scale rounded once as the fold
 * rounds it. Rows past m are zeros (x 0). */
static void scale_panels(float *ap, int64_t m, int64_t kk, const float *sc, int64_t pan0,
                         int64_t pan1)
{
    for (int64_t i0 = pan0 * NRT_GEMM_MR; i0 < m && i0 < pan1 * NRT_GEMM_MR; i0 += NRT_GEMM_MR) {
        float s8[NRT_GEMM_MR] = {0};
        for (int r = 0; r < NRT_GEMM_MR && i0 + r < m; r++)
            s8[r] = sc[i0 + r];
        for (int64_t p0 = 0; p0 < kk; p0 += NRT_GEMM_KC)
            nrt_scale_panel8_avx512(ap + p0 * r8(m) + i0 * min64(NRT_GEMM_KC, kk - p0),
                                    min64(NRT_GEMM_KC, kk - p0), s8);
    }
}

/* Rows panels [pan0, pan1) of w (m, kk) packed as pack_weights packs them. */
static void pack_weight_panels(const float *w, int64_t m, int64_t kk, float *ap, int64_t pan0,
                               int64_t pan1)
{
    for (int64_t p0 = 0; p0 < kk; p0 += NRT_GEMM_KC) {
        int64_t kc = min64(NRT_GEMM_KC, kk - p0);
        for (int64_t i0 = pan0 * NRT_GEMM_MR; i0 < m && i0 < pan1 * NRT_GEMM_MR;
             i0 += NRT_GEMM_MR)
            nrt_gemm_pack_rows8_avx512(w + i0 * kk + p0, kk, (int)min64(NRT_GEMM_MR, m - i0),
                                       kc, ap + p0 * r8(m) + i0 * kc);
    }
}

/* The padded copy of channels [c0, c1) of one sample (zeroed, then the
 * image's positions); the last part also zeroes the slack after the planes.
 * Each channel's stride^2 phase planes are contiguous, so a channel range
 * is a sub-shape at an offset. */
static void pad_channels(const NrtConvShape *s, const DirectPlan *pl, const float *x, float *xp,
                         int64_t c0, int64_t c1, bool last)
{
    int64_t per = s->stride * s->stride * pl->hq * pl->wq;
    float *end = xp + s->c * per;
    memset(xp + c0 * per, 0, (size_t)((c1 - c0) * per) * sizeof(float));
    if (last)
        memset(end, 0, (size_t)(pl->floats - s->c * per) * sizeof(float));
    if (c1 > c0) {
        NrtConvShape part = *s;
        part.c = c1 - c0;
        nrt_conv_pad_avx512(&part, pl->hq, pl->wq, x + c0 * s->h * s->w, xp + c0 * per);
    }
}

/* Batch 1, direct forward, on as many threads as pays (nrt_par_threads with
 * DIRECT_NS_PER_FLOP and DIRECT_SPLIT_SAVES): one region; thread t of T packs its share of the
 * weight panels (and scales them by the folded batchnorm, when given) and
 * copies its share of the channels, then, after one
 * barrier, computes the output units [U*t/T, U*(t+1)/T) (a unit: 32
 * positions x 8 filters, nrt_conv_direct_units_avx512). Every output is
 * computed by one thread exactly as on one, so the bits do not depend on
 * T; each thread reads the same slice of the weights on every call. */
#define DIRECT_NS_PER_FLOP 0.012   /* resnet8 lat1 ran its convolutions at 82-92 GFLOP/s */
/* What the split saves of a layer, measured (idle moments, 2 threads with
 * spinning waits, one layer called 3,500 times, best of 7 x 500): resnet8's
 * 16->16 28x28 33.5 -> 28.4 us (15%), 32->32 14x14 31.7 -> 31.5, 64->64 7x7
 * 39.0 -> 40.8, 16->32 stride 2 19.5 -> 22.0. Each thread's half of the
 * tiles ran at ~60% of one thread's speed (not shared cores: the FMA loop
 * scales 2x and two 1-thread processes both ran at full speed; the cause
 * is open: taking the units filter-major instead moved the gain between
 * shapes, 28.4 -> 39.0 and 40.8 -> 34.0 us), so the split is weighed at
 * 5% of the layer: at batch 1 resnet8's layers stay on one thread, layers
 * of ~10x their size split. */
#define DIRECT_SPLIT_SAVES 0.05

static void direct_one(const NrtConvShape *s, const ConvDims *d, float *base, const float *w,
                       const BnFold *bn, const float *x, float *y, const NrtEpilogue *ep)
{
    const DirectPlan *pl = &d->fwd;
    float *ap = direct_weights(base, s, d, false), *xp = slot_at(base, s, d, 0).col;
    int32_t *off = direct_offsets(base, s, d, false);
    NrtDirectConv dc = { .f = s->f, .kk = d->kk, .wq = pl->wq, .ow = d->ow, .q = pl->q,
                         .p = d->p, .off = off, .ap = ap };
    int64_t units = nrt_conv_direct_units(&dc), npan = (s->f + NRT_GEMM_MR - 1) / NRT_GEMM_MR;
    double work = DIRECT_NS_PER_FLOP * 2.0 * (double)(s->f * d->kk * pl->q);
    /* nrt_par_threads counts (1 - 1/T) of what it is given as saved: on 2
     * threads, half, so twice the saving goes in */
    int nt = nrt_par_threads(2.0 * DIRECT_SPLIT_SAVES * work, (int)min64(units, 64));
    (void)nt;   /* only the omp clauses read it */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        NrtTeam tm = nrt_team();
        int64_t pan0 = nrt_team_lo(tm, npan), pan1 = nrt_team_hi(tm, npan);
        pack_weight_panels(w, s->f, d->kk, ap, pan0, pan1);
        if (bn) {   /* the thread's filters folded straight into its packed panels */
            fold_scales(bn, pan0 * NRT_GEMM_MR, min64(s->f, pan1 * NRT_GEMM_MR));
            scale_panels(ap, s->f, d->kk, bn->sc, pan0, pan1);
        }
        bool last = tm.t == tm.size - 1;
        if (last)
            tap_offsets(s, pl, off);
        pad_channels(s, pl, x, xp, nrt_team_lo(tm, s->c), nrt_team_hi(tm, s->c), last);
#pragma omp barrier
        nrt_conv_direct_units_avx512(&dc, xp, y, 0.0f, ep, nrt_team_lo(tm, units),
                                     nrt_team_hi(tm, units));
    }
}

/* Phase (a, b) of a stride-2 backward data (PhasePlan): its weights
 * A (c, f*km*kn), A[ci][(o*km + m)*kn + n] = w[o][ci][a + 2(km-1-m)][b +
 * 2(kn-1-n)], packed, and its tap offsets into dy's copy. False when the
 * phase has no taps (k = 1). tmp holds c * f * k * k floats. */
static bool phase_setup(const NrtConvShape *s, const ConvDims *d, const float *w, int ph,
                        float *tmp, float *area, NrtDirectConv *dc)
{
    int64_t k = s->k, a = ph / 2, b = ph % 2, c = s->c;
    int64_t km = a < k ? (k - a + 1) / 2 : 0, kn = b < k ? (k - b + 1) / 2 : 0;
    int64_t kk = s->f * km * kn;
    if (kk == 0)
        return false;
    const PhasePlan *pl = &d->ph;
    for (int64_t ci = 0; ci < c; ci++)
        for (int64_t o = 0; o < s->f; o++)
            for (int64_t m = 0; m < km; m++)
                for (int64_t n = 0; n < kn; n++)
                    tmp[ci * kk + (o * km + m) * kn + n] =
                        w[((o * c + ci) * k + a + 2 * (km - 1 - m)) * k + b + 2 * (kn - 1 - n)];
    int32_t *off = (int32_t *)(area + r16((size_t)(r8(c) * d->tkk)));
    for (int64_t o = 0; o < s->f; o++)
        for (int64_t m = 0; m < km; m++)
            for (int64_t n = 0; n < kn; n++)
                off[(o * km + m) * kn + n] = (int32_t)(o * pl->hq * pl->wq +
                                                       (pl->pad - km + 1 + m) * pl->wq +
                                                       pl->pad - kn + 1 + n);
    pack_weights(tmp, c, kk, area);
    *dc = (NrtDirectConv){ .f = c, .kk = kk, .wq = pl->wq, .ow = pl->v,
                           .q = (pl->u - 1) * pl->wq + pl->v, .p = pl->u * pl->v, .off = off,
                           .ap = area };
    return true;
}

/* dx (+)= backward data of a stride-2 convolution, by phases. */
static void phase_run(const NrtConvShape *s, const ConvDims *d, float *base, const float *w,
                      const float *dy, float *dx, bool accumulate)
{
    const PhasePlan *pl = &d->ph;
    NrtDirectConv dc[4];
    bool on[4];
    for (int ph = 0; ph < 4; ph++)
        on[ph] = phase_setup(s, d, w, ph, flipped_weights(base, s, d), phase_area(base, s, d, ph),
                             &dc[ph]);
    NrtConvShape cs = { 1, s->f, d->oh, d->ow, s->c, 1, 1, pl->pad };
#pragma omp parallel for schedule(static) if (go_parallel(s, d))
    for (int64_t j = 0; j < d->ngroups; j++) {
        ConvSlot sl = slot_at(base, s, d, j);
        int64_t first, end;
        group_range(s, d, j, &first, &end);
        float *yt = sl.col + r16((size_t)pl->floats);
        const float *yts[4];
        memset(sl.col, 0, (size_t)pl->floats * sizeof(float));
        for (int ph = 0; ph < 4; ph++)
            yts[ph] = on[ph] ? yt + ph * s->c * pl->u * pl->v : NULL;
        for (int64_t i = first; i < end; i++) {
            nrt_conv_pad_avx512(&cs, pl->hq, pl->wq, dy + i * d->ys, sl.col);
            for (int ph = 0; ph < 4; ph++)
                if (on[ph])
                    nrt_conv_direct_avx512(&dc[ph], sl.col, yt + ph * s->c * pl->u * pl->v,
                                           0.0f, NULL);
            nrt_conv_unphase2_avx512(yts, s->c, pl->u, pl->v, s->h, s->w, s->pad,
                                     dx + i * d->xs, accumulate);
        }
    }
}

/* The weight gradient's B operand, op(B)(q, t) = col[t][q] over the padded
 * positions q: rows of taps read from x's padded copy (implicit GEMM). */
typedef struct TapPacker {
    const float *xp;
    const int32_t *off;
} TapPacker;

static void pack_taps(const void *ctx, int64_t j0, int nr, int64_t p0, int64_t kc, float *dst)
{
    const TapPacker *t = ctx;
    nrt_gemm_pack_offsets32_avx512(t->xp + p0, t->off + j0, nr, kc, dst);
}

/* dwp (f, kk) = (add ? dwp : 0) + sum over the samples [first, end) of
 * dy_i col_i^T, as one implicit GEMM per sample over the padded positions
 * (dy copied to them, zero where ox >= ow: those add exact zeros). Sums in
 * K slices of padded positions, so not the bits of the im2col path (the
 * tests hold both to the reference's bound); still one fixed order. */
static void weights_range(const NrtConvShape *s, const ConvDims *d, ConvSlot *sl,
                          const int32_t *off, const float *x, const float *dy, int64_t first,
                          int64_t end, float *dwp, bool add, float *ps);

static void weights_direct(const NrtConvShape *s, const ConvDims *d, ConvSlot *sl,
                           const int32_t *off, const float *x, const float *dy, int64_t first,
                           int64_t end, float *dwp, bool add, float *ps)
{
    const DirectPlan *pl = &d->fwd;
    float *xp = sl->col, *dyp = sl->col + r16((size_t)pl->floats);
    memset(sl->col, 0, (r16((size_t)pl->floats) + (size_t)(s->f * pl->q)) * sizeof(float));
    TapPacker tp = { xp, off };
    NrtBPacker bp = { pack_taps, &tp };
    for (int64_t i = first; i < end; i++) {
        nrt_conv_pad_avx512(s, pl->hq, pl->wq, x + i * d->xs, xp);
        for (int64_t o = 0; o < s->f; o++)
            for (int64_t oy = 0; oy < d->oh; oy++)
                memcpy(dyp + o * pl->q + oy * pl->wq, dy + i * d->ys + (o * d->oh + oy) * d->ow,
                       (size_t)d->ow * sizeof(float));
        if (ps)
            sample_bias_sums(s, d, dy + i * d->ys, ps + i * s->f);
        float beta = i > first || add ? 1.0f : 0.0f;
        if (!nrt_sgemm_packer(false, s->f, d->kk, pl->q, 1.0f, dyp, pl->q, &bp, beta, dwp,
                              d->kk, &sl->gemm)) {   /* cannot happen: slot_floats sizes it */
            weights_range(s, d, sl, NULL, x, dy, i, end, dwp, beta != 0.0f, ps);
            return;
        }
    }
}
#else
static bool direct_run(const NrtConvShape *s, const ConvDims *d, bool flip, float *base,
                       const float *w, const float *x, float *y, float beta,
                       const NrtEpilogue *ep)
{
    (void)s, (void)d, (void)flip, (void)base, (void)w, (void)x, (void)y, (void)beta, (void)ep;
    return false;   /* use_direct() is false without the AVX-512 kernels */
}
#endif

/* ---- forward ------------------------------------------------------------ */

static void forward_sample(const NrtConvShape *s, const ConvDims *d, ConvSlot *sl,
                           const float *x, const float *w, const NrtEpilogue *ep, float *y)
{
    const float *col = x;
    if (!d->direct) {
        im2col(s, d->oh, d->ow, x, sl->col);
        col = sl->col;
    }
    nrt_sgemm_ex(false, false, s->f, d->p, d->kk, 1.0f, w, d->kk, col, d->p,
                 0.0f, y, d->p, ep, &sl->gemm);
}

/* Without a workspace (no memory for one): the reference, on weights folded
 * into a smaller allocation; NaN outputs when even that fails. */
static void forward_ref_folded(const NrtConvShape *s, const float *x, const float *w,
                               const BnFold *bn, NrtAct act, float *y)
{
    int64_t kk = s->c * s->k * s->k, ny = s->n * s->f * nrt_conv_out_h(s) * nrt_conv_out_w(s);
    float *tmp = malloc((size_t)(s->f * kk + s->f) * sizeof(float));
    if (!tmp) {
        for (int64_t i = 0; i < ny; i++)
            y[i] = NAN;
        return;
    }
    BnFold f = *bn;
    f.wf = tmp, f.bf = tmp + s->f * kk;
    fold_rows(&f, w, kk, 0, s->f);
    nrt_conv_forward_ref(s, x, f.wf, f.bf, act, y);
    free(tmp);
}

/* nrt_conv_forward (bn NULL) and nrt_conv_forward_bn. */
static void conv_forward(const NrtConvShape *s, const float *x, const float *w, const float *bias,
                         const BnFold *bnp, NrtAct act, float *y, NrtWorkspace *ws)
{
    if (s->n <= 0)
        return;
    ConvDims d = conv_dims(s);
    float *owned, *base = conv_acquire(s, ws, &owned);
    if (!base) {
        if (bnp)
            forward_ref_folded(s, x, w, bnp, act, y);
        else
            nrt_conv_forward_ref(s, x, w, bias, act, y);
        return;
    }
    BnFold fold, *bn = NULL;
    if (bnp) {
        fold = *bnp;
        fold.wf = fold_area(base, s, &d);
        fold.bf = fold.wf + r16((size_t)(s->f * d.kk));
        fold.sc = fold.bf + r16((size_t)s->f);
        bias = fold.bf;
        bn = &fold;
    }
    NrtEpilogue ep = { .bias_kind = bias ? NRT_BIAS_ROW : NRT_BIAS_NONE, .bias = bias, .act = act };
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (d.dir_fwd && s->n == 1) {
        direct_one(s, &d, base, w, bn, x, y, &ep);
        free(owned);
        return;
    }
#endif
    if (bn) {   /* every other path: fold whole, then convolve with the folded weights */
        fold_rows(bn, w, d.kk, 0, s->f);
        w = bn->wf;
    }
    if (d.dir_fwd && direct_run(s, &d, false, base, w, x, y, 0.0f, &ep)) {
        free(owned);
        return;
    }
#pragma omp parallel for schedule(static) if (go_parallel(s, &d))
    for (int64_t j = 0; j < d.ngroups; j++) {
        ConvSlot sl = slot_at(base, s, &d, j);
        int64_t first, end;
        group_range(s, &d, j, &first, &end);
        for (int64_t i = first; i < end; i++)
            forward_sample(s, &d, &sl, x + i * d.xs, w, &ep, y + i * d.ys);
    }
    free(owned);
}

void nrt_conv_forward(const NrtConvShape *s, const float *x, const float *w, const float *bias,
                      NrtAct act, float *y, NrtWorkspace *ws)
{
    conv_forward(s, x, w, bias, NULL, act, y, ws);
}

void nrt_conv_forward_bn(const NrtConvShape *s, const float *x, const float *w,
                         const float *bias, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, double eps,
                         NrtAct act, float *y, NrtWorkspace *ws)
{
    BnFold bn = { bias, gamma, beta, running_mean, running_var, eps, NULL, NULL, NULL };
    conv_forward(s, x, w, NULL, &bn, act, y, ws);
}

/* y[i][o][oy][ox] = act(bias[o] + sum over ci, ki, kj of w * x), in double. */
void nrt_conv_forward_ref(const NrtConvShape *s, const float *x, const float *w,
                          const float *bias, NrtAct act, float *y)
{
    int64_t oh = nrt_conv_out_h(s), ow = nrt_conv_out_w(s), k = s->k;
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t o = 0; o < s->f; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int64_t ci = 0; ci < s->c; ci++)
                        for (int64_t ki = 0; ki < k; ki++)
                            for (int64_t kj = 0; kj < k; kj++) {
                                int64_t iy = oy * s->stride - s->pad + ki;
                                int64_t ix = ox * s->stride - s->pad + kj;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((o * s->c + ci) * k + ki) * k + kj] *
                                       x[((i * s->c + ci) * s->h + iy) * s->w + ix];
                            }
                    if (act == NRT_ACT_RELU && acc < 0.0)
                        acc = 0.0;
                    y[((i * s->f + o) * oh + oy) * ow + ox] = (float)acc;
                }
}

/* ---- backward data -------------------------------------------------------- */

/* wf (c, f*k*k): wf[ci][(o*k + a)*k + b] = w[o][ci][k-1-a][k-1-b], the
 * weights of the transposed convolution d->ts. */
static void flip_weights(const NrtConvShape *s, const float *w, float *wf)
{
    int64_t k = s->k, kk = k * k;
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t o = 0; o < s->f; o++)
            for (int64_t t = 0; t < kk; t++)
                wf[(ci * s->f + o) * kk + t] = w[(o * s->c + ci) * kk + kk - 1 - t];
}

static void backward_data_sample(const NrtConvShape *s, const ConvDims *d, ConvSlot *sl,
                                 const float *dy, const float *w, const float *wf, float *dx,
                                 bool accumulate)
{
    if (d->flip) {
        im2col(&d->ts, s->h, s->w, dy, sl->col);
        nrt_sgemm(false, false, s->c, d->hw, d->tkk, 1.0f, wf, d->tkk, sl->col, d->hw,
                  accumulate ? 1.0f : 0.0f, dx, d->hw, &sl->gemm);
        return;
    }
    if (d->direct) {
        nrt_sgemm(true, false, d->kk, d->p, s->f, 1.0f, w, d->kk, dy, d->p,
                  accumulate ? 1.0f : 0.0f, dx, d->p, &sl->gemm);
        return;
    }
    nrt_sgemm(true, false, d->kk, d->p, s->f, 1.0f, w, d->kk, dy, d->p, 0.0f, sl->col, d->p,
              &sl->gemm);
    if (!accumulate)
        memset(dx, 0, (size_t)d->xs * sizeof(float));
    col2im(s, d->oh, d->ow, sl->col, dx);
}

void nrt_conv_backward_data(const NrtConvShape *s, const float *dy, const float *w, float *dx,
                            bool accumulate, NrtWorkspace *ws)
{
    if (s->n <= 0)
        return;
    ConvDims d = conv_dims(s);
    float *owned, *base = conv_acquire(s, ws, &owned);
    if (!base) {
        nrt_conv_backward_data_ref(s, dy, w, dx, accumulate);
        return;
    }
    float *wf = flipped_weights(base, s, &d);
    if (d.flip)
        flip_weights(s, w, wf);
    if (d.dir_bwd && direct_run(s, &d, true, base, wf, dy, dx, accumulate ? 1.0f : 0.0f, NULL)) {
        free(owned);
        return;
    }
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (d.dir_phase) {
        phase_run(s, &d, base, w, dy, dx, accumulate);
        free(owned);
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (go_parallel(s, &d))
    for (int64_t j = 0; j < d.ngroups; j++) {
        ConvSlot sl = slot_at(base, s, &d, j);
        int64_t first, end;
        group_range(s, &d, j, &first, &end);
        for (int64_t i = first; i < end; i++)
            backward_data_sample(s, &d, &sl, dy + i * d.ys, w, wf, dx + i * d.xs,
                                 accumulate);
    }
    free(owned);
}

/* dx[i][ci][iy][ix] (+)= sum over the outputs that read it of dy * w. */
void nrt_conv_backward_data_ref(const NrtConvShape *s, const float *dy, const float *w,
                                float *dx, bool accumulate)
{
    int64_t oh = nrt_conv_out_h(s), ow = nrt_conv_out_w(s), k = s->k;
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t ci = 0; ci < s->c; ci++)
            for (int64_t iy = 0; iy < s->h; iy++)
                for (int64_t ix = 0; ix < s->w; ix++) {
                    float *out = &dx[((i * s->c + ci) * s->h + iy) * s->w + ix];
                    double acc = accumulate ? *out : 0.0;
                    for (int64_t o = 0; o < s->f; o++)
                        for (int64_t ki = 0; ki < k; ki++)
                            for (int64_t kj = 0; kj < k; kj++) {
                                int64_t ty = iy + s->pad - ki, tx = ix + s->pad - kj;
                                if (ty < 0 || tx < 0 || ty % s->stride || tx % s->stride)
                                    continue;
                                int64_t oy = ty / s->stride, ox = tx / s->stride;
                                if (oy >= oh || ox >= ow)
                                    continue;
                                acc += (double)dy[((i * s->f + o) * oh + oy) * ow + ox] *
                                       w[((o * s->c + ci) * k + ki) * k + kj];
                            }
                    *out = (float)acc;
                }
}

/* ---- backward weights ------------------------------------------------------ */

/* dwp (f, kk) = (add ? dwp : 0) + dy_i col_i^T for the samples [first, end),
 * direct when given the tap offsets (off), else through im2col. */
static void weights_range(const NrtConvShape *s, const ConvDims *d, ConvSlot *sl,
                          const int32_t *off, const float *x, const float *dy, int64_t first,
                          int64_t end, float *dwp, bool add, float *ps)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (off) {
        weights_direct(s, d, sl, off, x, dy, first, end, dwp, add, ps);
        return;
    }
#else
    (void)off;   /* NULL: no direct path without the AVX-512 kernels */
#endif
    for (int64_t i = first; i < end; i++) {
        if (ps)
            sample_bias_sums(s, d, dy + i * d->ys, ps + i * s->f);
        const float *col = x + i * d->xs;
        if (!d->direct) {
            im2col(s, d->oh, d->ow, col, sl->col);
            col = sl->col;
        }
        float beta = i > first || add ? 1.0f : 0.0f;
        nrt_sgemm(false, true, s->f, d->kk, d->p, 1.0f, dy + i * d->ys, d->p, col, d->p,
                  beta, dwp, d->kk, &sl->gemm);
    }
}

/* db[o] (+)= the per-sample plane sums ps (n x f) in sample order: the
 * bits of nrt_conv_backward_bias. */
static void bias_total(const NrtConvShape *s, const float *ps, float *db, bool accumulate)
{
    for (int64_t o = 0; o < s->f; o++) {
        float total = accumulate ? db[o] : 0.0f;
        for (int64_t i = 0; i < s->n; i++)
            total += ps[i * s->f + o];
        db[o] = total;
    }
}

void nrt_conv_backward_weights(const NrtConvShape *s, const float *x, const float *dy,
                               float *dw, bool accumulate, NrtWorkspace *ws)
{
    nrt_conv_backward_weights_bias(s, x, dy, dw, NULL, accumulate, ws);
}

void nrt_conv_backward_weights_bias(const NrtConvShape *s, const float *x, const float *dy,
                                    float *dw, float *db, bool accumulate, NrtWorkspace *ws)
{
    ConvDims d = conv_dims(s);
    int64_t nw = s->f * d.kk;
    if (s->n <= 0) {
        if (!accumulate)
            memset(dw, 0, (size_t)nw * sizeof(float));
        if (db)
            nrt_conv_backward_bias(s, dy, db, accumulate);
        return;
    }
    float *owned, *base = conv_acquire(s, ws, &owned);
    if (!base) {
        nrt_conv_backward_weights_ref(s, x, dy, dw, accumulate);
        if (db)
            nrt_conv_backward_bias(s, dy, db, accumulate);
        return;
    }
    float *ps = db ? bias_sums(base, s, &d) : NULL;
    const int32_t *off = NULL;
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (d.dir_wgt) {
        int32_t *o = direct_offsets(base, s, &d, false);
        tap_offsets(s, &d.fwd, o);
        off = o;
    }
#endif
    if (d.ngroups == 1) {
        ConvSlot sl = slot_at(base, s, &d, 0);
        weights_range(s, &d, &sl, off, x, dy, 0, s->n, dw, accumulate, ps);
        if (db)
            bias_total(s, ps, db, accumulate);
        free(owned);
        return;
    }
    const float *part[NRT_CONV_SLOTS];
    for (int64_t j = 0; j < d.ngroups; j++)
        part[j] = slot_at(base, s, &d, j).dw;
#pragma omp parallel if (go_parallel(s, &d))
    {
#pragma omp for schedule(static)
        for (int64_t j = 0; j < d.ngroups; j++) {
            ConvSlot sl = slot_at(base, s, &d, j);
            int64_t first, end;
            group_range(s, &d, j, &first, &end);
            weights_range(s, &d, &sl, off, x, dy, first, end, sl.dw, false, ps);
        }
#pragma omp for schedule(static)
        for (int64_t e = 0; e < nw; e++) {
            float v = accumulate ? dw[e] : 0.0f;
            for (int64_t j = 0; j < d.ngroups; j++)
                v += part[j][e];
            dw[e] = v;
        }
    }
    if (db)
        bias_total(s, ps, db, accumulate);
    free(owned);
}

/* dw[o][ci][ki][kj] (+)= sum over i, oy, ox of dy * x, in double. */
void nrt_conv_backward_weights_ref(const NrtConvShape *s, const float *x, const float *dy,
                                   float *dw, bool accumulate)
{
    int64_t oh = nrt_conv_out_h(s), ow = nrt_conv_out_w(s), k = s->k;
    for (int64_t o = 0; o < s->f; o++)
        for (int64_t ci = 0; ci < s->c; ci++)
            for (int64_t ki = 0; ki < k; ki++)
                for (int64_t kj = 0; kj < k; kj++) {
                    float *out = &dw[((o * s->c + ci) * k + ki) * k + kj];
                    double acc = accumulate ? *out : 0.0;
                    for (int64_t i = 0; i < s->n; i++)
                        for (int64_t oy = 0; oy < oh; oy++)
                            for (int64_t ox = 0; ox < ow; ox++) {
                                int64_t iy = oy * s->stride - s->pad + ki;
                                int64_t ix = ox * s->stride - s->pad + kj;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)dy[((i * s->f + o) * oh + oy) * ow + ox] *
                                       x[((i * s->c + ci) * s->h + iy) * s->w + ix];
                            }
                    *out = (float)acc;
                }
}

/* ---- backward bias ------------------------------------------------------------ */

/* Sum of one plane in 16 fixed lanes (vectorizable without reassociation;
 * the order depends only on len), then the lanes in order. */
static float plane_sum(const float *plane, int64_t len)
{
    enum { L = 16 };
    float lane[L] = {0};
    int64_t q = 0;
    for (; q + L <= len; q += L)
        for (int l = 0; l < L; l++)
            lane[l] += plane[q + l];
    float sum = 0.0f;
    for (int l = 0; l < L; l++)
        sum += lane[l];
    for (; q < len; q++)
        sum += plane[q];
    return sum;
}

/* db[o] (+)= sum over samples (in order) of the plane sum of dy[i][o]. */
void nrt_conv_backward_bias(const NrtConvShape *s, const float *dy, float *db, bool accumulate)
{
    int64_t p = nrt_conv_out_h(s) * nrt_conv_out_w(s);
    for (int64_t o = 0; o < s->f; o++) {
        float total = accumulate ? db[o] : 0.0f;
        for (int64_t i = 0; i < s->n; i++)
            total += plane_sum(dy + (i * s->f + o) * p, p);
        db[o] = total;
    }
}
