/* optim.c - parameter updates (SGD with momentum/Nesterov, Adam, AdamW) and
 * the L1/L2 penalties, with PyTorch 1.13's semantics.
 *
 * Parameters, gradients and optimizer state are float arrays of numel
 * elements; hyperparameters come in as double and are rounded to float
 * once, as torch does for its float tensors, so one step here matches
 * torch.optim.SGD / Adam / AdamW (foreach=False) to a float rounding.
 * Updates are elementwise (any split over threads gives the same bits);
 * the penalty value sums in double over PEN_CHUNKS fixed chunks.
 * nrt_guard_pass is the guard run before every update (with the penalties
 * fused into it: one read of parameters and gradients instead of two).
 *
 * The penalties implement `regularize l1(a)` / `l2(a)` of LANGUAGE.md:
 * J' = J + l1 * sum|w| + l2/2 * sum w^2, gradient l1*sign(w) + l2*w,
 * added to the gradient before the optimizer step (so for SGD, l2 is
 * PyTorch's weight_decay).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "netrt.h"
#include "optim_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define OPT_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define OPT_PARALLEL_FOR(cond) OPT_PRAGMA(omp parallel for schedule(static) if (cond))
#define OPT_PARALLEL(cond) OPT_PRAGMA(omp parallel if (cond))
#define OPT_CRITICAL(name) OPT_PRAGMA(omp critical(name))
#else
#define OPT_PARALLEL_FOR(cond)
#define OPT_PARALLEL(cond)
#define OPT_CRITICAL(name)
#endif

enum { OPT_PAR_MIN = 1 << 16, PEN_CHUNKS = 64, SGD_CHUNK = 4096 };

/* The update loops for this CPU, the ISA choice of the whole runtime
 * (nrt_sgemm_isa; optim_kernels.c: every copy gives the same bits). */
static unsigned optk_guard(int64_t n, const float *w, float *g, float l1, float l2, bool penalty)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() == NRT_ISA_AVX512)
        return nrt_optk_guard_avx512(n, w, g, l1, l2, penalty);
#endif
    return nrt_optk_guard_portable(n, w, g, l1, l2, penalty);
}

static void optk_penalty(int64_t n, const float *w, float *g, float l1, float l2)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() == NRT_ISA_AVX512) {
        nrt_optk_penalty_avx512(n, w, g, l1, l2);
        return;
    }
#endif
    nrt_optk_penalty_portable(n, w, g, l1, l2);
}

static void optk_sgd(int64_t n, float *w, const float *g, float *v, float lr, float mu, NrtSgdMode mode)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() == NRT_ISA_AVX512) {
        nrt_optk_sgd_avx512(n, w, g, v, lr, mu, mode);
        return;
    }
#endif
    nrt_optk_sgd_portable(n, w, g, v, lr, mu, mode);
}

/* This thread's contiguous share [*lo, *hi) of n (omp for schedule(static)'s
 * split; elementwise loops give the same bits for any split). */
static void thread_share(int64_t n, int64_t *lo, int64_t *hi)
{
    int t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
    *lo = n * t / nt, *hi = n * (t + 1) / nt;
}

void nrt_penalty_grad(int64_t numel, const float *w, double l1, double l2, float *g)
{
    float a = (float)l1, b = (float)l2;
    OPT_PARALLEL(numel >= OPT_PAR_MIN)
    {
        int64_t lo, hi;
        thread_share(numel, &lo, &hi);
        optk_penalty(hi - lo, w + lo, g + lo, a, b);
    }
}

double nrt_penalty_value(int64_t numel, const float *w, double l1, double l2)
{
    double abs_part[PEN_CHUNKS], sq_part[PEN_CHUNKS], sa = 0.0, sq = 0.0;
    OPT_PARALLEL_FOR(numel >= OPT_PAR_MIN)
    for (int64_t c = 0; c < PEN_CHUNKS; c++) {
        double a = 0.0, q = 0.0;
        for (int64_t i = numel * c / PEN_CHUNKS; i < numel * (c + 1) / PEN_CHUNKS; i++) {
            a += fabs((double)w[i]);
            q += (double)w[i] * w[i];
        }
        abs_part[c] = a;
        sq_part[c] = q;
    }
    for (int c = 0; c < PEN_CHUNKS; c++) {
        sa += abs_part[c];
        sq += sq_part[c];
    }
    return l1 * sa + 0.5 * l2 * sq;
}

void nrt_sgd_step(int64_t numel, float *w, const float *g, float *v, double lr,
                  double momentum, bool nesterov)
{
    float mu = (float)momentum, rate = (float)lr;
    NrtSgdMode mode = momentum == 0.0 || !v ? NRT_SGD_PLAIN : nesterov ? NRT_SGD_NESTEROV : NRT_SGD_MOMENTUM;
    OPT_PARALLEL(numel >= OPT_PAR_MIN)
    {
        int64_t lo, hi;
        thread_share(numel, &lo, &hi);
        for (int64_t e = hi; e > lo;) {    /* backwards: the guard pass's last blocks are in L2 */
            int64_t s = e - SGD_CHUNK > lo ? e - SGD_CHUNK : lo;
            optk_sgd(e - s, w + s, g + s, mode == NRT_SGD_PLAIN ? NULL : v + s, rate, mu, mode);
            e = s;
        }
    }
}

void nrt_adam_step(int64_t numel, float *w, const float *g, float *m, float *v, double lr,
                   double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                   int64_t t)
{
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    float b1 = (float)beta1, b2 = (float)beta2;
    float omb1 = (float)(1.0 - beta1), omb2 = (float)(1.0 - beta2);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), e = (float)eps;
    float l2 = decoupled ? 0.0f : (float)weight_decay;
    float shrink = (float)(1.0 - lr * weight_decay);
    OPT_PARALLEL_FOR(numel >= OPT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float gi = g[i], wi = w[i];
        if (decoupled)
            wi *= shrink;
        else if (l2 != 0.0f)
            gi += l2 * wi;
        float mi = m[i] * b1 + omb1 * gi;
        float vi = v[i] * b2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * (mi / (sqrtf(vi) / bc2_sqrt + e));
    }
}

/* The numeric guard before an update reads every weight and gradient, so
 * it costs a memory pass (on the mlp it was 15% of a step as a scalar loop
 * with an early exit). Blocks of SCAN_BLOCK floats are tested branch-free
 * (optim_kernels.c: one add per element, independent OR lanes); only a
 * block that holds a bad value is rescanned for the first one. */
enum { SCAN_BLOCK = 512 };

static bool block_bad(const float *x, int64_t n)
{
    return optk_guard(n, x, NULL, 0.0f, 0.0f, false) != 0;
}

static int64_t first_bad(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

int64_t nrt_find_nonfinite(const float *x, int64_t n)
{
    for (int64_t i0 = 0; i0 < n; i0 += SCAN_BLOCK) {
        int64_t len = n - i0 < SCAN_BLOCK ? n - i0 : SCAN_BLOCK;
        if (block_bad(x + i0, len))
            return i0 + first_bad(x + i0, len);
    }
    return -1;
}

/* ---- the guard pass: penalties + guard in one read of the block -------------- */

/* The first bad element one thread saw, of data (k = 0) and of gradients
 * (k = 1); span == n: none. A thread walks its blocks in order, so its
 * first find is its smallest. */
typedef struct GuardFirst {
    int span;
    int64_t elem;
} GuardFirst;

/* Block b of span s: data scanned, then the penalty added to the gradient
 * (the statement of nrt_penalty_grad, so the same bits) and the gradient
 * scanned while the block is still in L1. */
static void guard_block(float *block, const NrtGuardSpan *sp, int s, int n, int64_t b, GuardFirst *first)
{
    int64_t i0 = b * SCAN_BLOCK, len = sp->numel - i0 < SCAN_BLOCK ? sp->numel - i0 : SCAN_BLOCK;
    const float *w = block + sp->off + i0;
    float *g = sp->grad >= 0 ? block + sp->grad + i0 : NULL;
    unsigned bad = optk_guard(len, w, g, (float)sp->l1, (float)sp->l2, sp->l1 != 0.0 || sp->l2 != 0.0);
    if ((bad & NRT_OPTK_BAD_W) && first[0].span == n)
        first[0] = (GuardFirst){s, i0 + first_bad(w, len)};
    if ((bad & NRT_OPTK_BAD_G) && first[1].span == n)
        first[1] = (GuardFirst){s, i0 + first_bad(g, len)};
}

/* Blocks [lo, hi) of the spans' blocks counted in table order. */
static void guard_range(float *block, int n, const NrtGuardSpan *spans, int64_t lo, int64_t hi,
                        GuardFirst *first)
{
    int64_t base = 0;
    for (int s = 0; s < n && base < hi; s++) {
        int64_t nb = (spans[s].numel + SCAN_BLOCK - 1) / SCAN_BLOCK;
        for (int64_t b = lo > base ? lo - base : 0; b < nb && base + b < hi; b++)
            guard_block(block, &spans[s], s, n, b, first);
        base += nb;
    }
}

static bool guard_before(GuardFirst a, GuardFirst b)
{
    return a.span < b.span || (a.span == b.span && a.elem < b.elem);
}

/* The blocks are split in contiguous ranges, one per thread, in memory
 * order (as nrt_sgd_step's static split of the same parameters, so a
 * thread tends to update what it has just read). */
bool nrt_guard_pass(float *block, int n, const NrtGuardSpan *spans, NrtGuardBad *bad)
{
    int64_t nblocks = 0, floats = 0;
    for (int s = 0; s < n; s++) {
        nblocks += (spans[s].numel + SCAN_BLOCK - 1) / SCAN_BLOCK;
        floats += spans[s].numel * (spans[s].grad >= 0 ? 2 : 1);
    }
    GuardFirst first[2] = {{n, 0}, {n, 0}};
    OPT_PARALLEL(floats >= 2 * OPT_PAR_MIN)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        GuardFirst mine[2] = {{n, 0}, {n, 0}};
        guard_range(block, n, spans, nblocks * t / nt, nblocks * (t + 1) / nt, mine);
        OPT_CRITICAL(nrt_guard_pass)
        for (int k = 0; k < 2; k++)
            if (guard_before(mine[k], first[k]))
                first[k] = mine[k];
    }
    int k = first[0].span < n ? 0 : first[1].span < n ? 1 : -1;
    if (k < 0)
        return true;
    *bad = (NrtGuardBad){first[k].span, k == 1, first[k].elem};
    return false;
}
