/* optim_kernels.c - the per-element loops of the parameter update: the
 * guard's scan with the penalty fused in, and the SGD step.
 *
 * Inputs: float arrays of n elements (block pieces: data, gradient,
 * velocity). Built twice (runtime/meson.build): portable, and with
 * AVX-512 (NRT_OPTK_SFX=avx512) which optim.c picks when the runtime's ISA
 * is AVX-512. Both with -ffp-contract=off: every element sees the same
 * IEEE multiplies and adds in the same order as the scalar loops of
 * optim.c (built without FMA), so the bits do not depend on the copy.
 * Why: the library's default flags target plain x86-64 (SSE2), where the
 * SGD step was bound by its 16-byte stores (2.1 MB of parameters: 230 us)
 * and the guard scan by its 4-lane ORs, not by memory.
 */
#include <string.h>

#include "optim_kernels.h"

#ifndef NRT_OPTK_SFX
#define NRT_OPTK_SFX portable
#endif
#define OPTK_CAT2(a, b) a##_##b
#define OPTK_CAT(a, b) OPTK_CAT2(a, b)
#define OPTK(name) OPTK_CAT(name, NRT_OPTK_SFX)

enum { LANES = 16 };

/* OR of (|bits| + 2^23) over x: the sign bit is set iff some element's
 * exponent is all ones (NaN or Inf). LANES independent lanes vectorize. */
static uint32_t scan_bits(int64_t n, const float *x)
{
    uint32_t lane[LANES] = {0}, bad = 0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            uint32_t u;
            memcpy(&u, x + i + l, sizeof u);
            lane[l] |= (u & 0x7fffffffu) + 0x00800000u;
        }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7fffffffu) + 0x00800000u;
    }
    for (int l = 0; l < LANES; l++)
        bad |= lane[l];
    return bad & 0x80000000u;
}

/* g += l2*w + l1*sign(w) (sign(0) = 0), nrt_penalty_grad's statement. */
static void penalty_add(int64_t n, const float *restrict w, float *restrict g, float l1, float l2)
{
    for (int64_t i = 0; i < n; i++) {
        float sign = w[i] > 0.0f ? l1 : w[i] < 0.0f ? -l1 : 0.0f;
        g[i] += l2 * w[i] + sign;
    }
}

unsigned OPTK(nrt_optk_guard)(int64_t n, const float *w, float *g, float l1, float l2, bool penalty)
{
    unsigned bad = scan_bits(n, w) ? NRT_OPTK_BAD_W : 0;
    if (!g)
        return bad;
    if (penalty)
        penalty_add(n, w, g, l1, l2);
    return bad | (scan_bits(n, g) ? NRT_OPTK_BAD_G : 0);
}

void OPTK(nrt_optk_penalty)(int64_t n, const float *w, float *g, float l1, float l2)
{
    penalty_add(n, w, g, l1, l2);
}

void OPTK(nrt_optk_sgd)(int64_t n, float *restrict w, const float *restrict g, float *restrict v, float lr,
                        float mu, NrtSgdMode mode)
{
    if (mode == NRT_SGD_PLAIN) {
        for (int64_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
    } else if (mode == NRT_SGD_MOMENTUM) {
        for (int64_t i = 0; i < n; i++) {
            float vi = mu * v[i] + g[i];
            v[i] = vi;
            w[i] -= lr * vi;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float vi = mu * v[i] + g[i];
            v[i] = vi;
            w[i] -= lr * (g[i] + mu * vi);
        }
    }
}
