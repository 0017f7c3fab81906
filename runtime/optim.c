/* optim.c - parameter updates (SGD with momentum/Nesterov, Adam, AdamW) and
 * the L1/L2 penalties, with PyTorch 1.13's semantics.
 *
 * Parameters, gradients and optimizer state are float arrays of numel
 * elements; hyperparameters come in as double and are rounded to float
 * once, as torch does for its float tensors, so one step here matches
 * torch.optim.SGD / Adam / AdamW (foreach=False) to a float rounding.
 * Updates are elementwise (any split over threads gives the same bits);
 * the penalty value sums in double over PEN_CHUNKS fixed chunks.
 * nrt_find_nonfinite is the guard run before every update.
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

#define OPT_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define OPT_PARALLEL_FOR(cond) OPT_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define OPT_PARALLEL_FOR(cond)
#endif

enum { OPT_PAR_MIN = 1 << 16, PEN_CHUNKS = 64 };

void nrt_penalty_grad(int64_t numel, const float *w, double l1, double l2, float *g)
{
    float a = (float)l1, b = (float)l2;
    OPT_PARALLEL_FOR(numel >= OPT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float sign = w[i] > 0.0f ? a : w[i] < 0.0f ? -a : 0.0f;
        g[i] += b * w[i] + sign;
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
    if (momentum == 0.0 || !v) {
        OPT_PARALLEL_FOR(numel >= OPT_PAR_MIN)
        for (int64_t i = 0; i < numel; i++)
            w[i] -= rate * g[i];
        return;
    }
    OPT_PARALLEL_FOR(numel >= OPT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float vi = mu * v[i] + g[i];
        v[i] = vi;
        w[i] -= rate * (nesterov ? g[i] + mu * vi : vi);
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

/* The numeric guard before an update (the generated train step calls it on
 * every parameter and gradient, so it reads every weight twice a step: on
 * the mlp it was 15% of a step as a scalar loop with an early exit). Blocks
 * of SCAN_BLOCK floats are tested branch-free; only a block that holds a
 * bad value is rescanned for the first one. Exponent bits all ones is NaN
 * or Inf: then |bits| + 2^23 carries into the sign bit, so one add per
 * element and an OR over SCAN_LANES independent lanes (they vectorize
 * without a serial dependency) flag the block. */
int64_t nrt_find_nonfinite(const float *x, int64_t n)
{
    enum { SCAN_BLOCK = 512, SCAN_LANES = 16 };
    for (int64_t i0 = 0; i0 < n; i0 += SCAN_BLOCK) {
        int64_t i1 = n - i0 < SCAN_BLOCK ? n : i0 + SCAN_BLOCK, i = i0;
        uint32_t lane[SCAN_LANES] = {0}, bad = 0;
        for (; i + SCAN_LANES <= i1; i += SCAN_LANES)
            for (int l = 0; l < SCAN_LANES; l++) {
                uint32_t u;
                memcpy(&u, x + i + l, sizeof u);
                lane[l] |= (u & 0x7fffffffu) + 0x00800000u;
            }
        for (; i < i1; i++) {
            uint32_t u;
            memcpy(&u, x + i, sizeof u);
            bad |= (u & 0x7fffffffu) + 0x00800000u;
        }
        for (int l = 0; l < SCAN_LANES; l++)
            bad |= lane[l];
        if (!(bad & 0x80000000u))
            continue;
        for (i = i0; i < i1; i++)
            if (!isfinite(x[i]))
                return i;
    }
    return -1;
}
