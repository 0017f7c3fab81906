/* mix.c - batch mixing for training: mixup (Zhang et al. 2018,
 * arXiv:1710.09412) and cutmix (Yun et al. 2019, arXiv:1905.04899).
 *
 * Per batch: lambda ~ Beta(alpha, alpha) and the partner perm, a random
 * permutation of 0..n-1, both from Philox keyed by (seed, NRT_RNG_MIX,
 * step). mixup: x[i] = lambda x[i] + (1 - lambda) x[perm[i]]. cutmix: one
 * box per batch, center (cy, cx) uniform over the pixels, sides
 * floor(h sqrt(1 - lambda)) x floor(w sqrt(1 - lambda)), rows
 * [cy - bh/2, cy - bh/2 + bh) (columns alike) clipped to the image; x[i]
 * takes that box from x[perm[i]] in every channel, and lambda becomes the
 * exact kept area fraction. The caller weights the loss lambda * L(y) +
 * (1 - lambda) * L(y[perm]) (the loss kernels take lambda and perm).
 *
 * x is changed in place; the partner's original values come from the
 * caller's scratch (a copy of the batch). Work is split over samples, each
 * written by exactly one iteration: the same bytes for any thread count.
 */
#include "netrt.h"

#include <math.h>
#include <string.h>

/* Element slots of the batch's draws (sample slot 0; beta and below use
 * rng.c's substreams, the permutation its own domain). */
enum { MIX_EL_LAMBDA = 0, MIX_EL_CY = 1, MIX_EL_CX = 2 };

/* Elements below this: one thread. Mixing is one multiply-add or copy per
 * element, memory-bound: a 64 x 28 x 28 batch takes about 15 us on one
 * thread, where a parallel region's start and barrier cost microseconds. */
#define MIX_PAR_MIN ((int64_t)1 << 19)

size_t nrt_mix_scratch_floats(int64_t n, int64_t c, int64_t h, int64_t w)
{
    return (size_t)(n * c * h * w);
}

static bool mix_off(double alpha, int64_t n, int64_t *perm, NrtMixInfo *info)
{
    memset(info, 0, sizeof *info);
    info->lambda = 1.0f;
    if (alpha > 0.0 && isfinite(alpha))
        return false;
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    return true;
}

/* lambda and perm for the batch. */
static double draw_batch(double alpha, int64_t n, uint64_t seed, uint64_t step, int64_t *perm)
{
    nrt_rng_permutation(seed, NRT_RNG_MIX, step, n, perm);
    return nrt_rng_beta(seed, NRT_RNG_MIX, step, 0, MIX_EL_LAMBDA, alpha, alpha);
}

void nrt_mixup(float *x, int64_t n, int64_t d, double alpha, uint64_t seed, uint64_t step,
               int64_t *perm, NrtMixInfo *info, float *scratch)
{
    if (mix_off(alpha, n, perm, info))
        return;
    float lam = (float)draw_batch(alpha, n, seed, step, perm), rest = 1.0f - lam;
    info->lambda = lam;
    memcpy(scratch, x, (size_t)(n * d) * sizeof *x);
#pragma omp parallel for schedule(static) if (n * d >= MIX_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        const float *pi = scratch + perm[i] * d;
        for (int64_t k = 0; k < d; k++)
            xi[k] = lam * xi[k] + rest * pi[k];
    }
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The box for a drawn lambda: sides floor(side * sqrt(1 - lambda)). */
static void cutmix_box(double lam, int64_t h, int64_t w, uint64_t seed, uint64_t step,
                       NrtMixInfo *info)
{
    double r = sqrt(1.0 - lam);
    int64_t bh = (int64_t)floor((double)h * r), bw = (int64_t)floor((double)w * r);
    int64_t cy = (int64_t)nrt_rng_below(seed, NRT_RNG_MIX, step, 0, MIX_EL_CY, (uint64_t)h);
    int64_t cx = (int64_t)nrt_rng_below(seed, NRT_RNG_MIX, step, 0, MIX_EL_CX, (uint64_t)w);
    info->y0 = clamp64(cy - bh / 2, 0, h);
    info->y1 = clamp64(cy - bh / 2 + bh, 0, h);
    info->x0 = clamp64(cx - bw / 2, 0, w);
    info->x1 = clamp64(cx - bw / 2 + bw, 0, w);
}

void nrt_cutmix(float *x, int64_t n, int64_t c, int64_t h, int64_t w, double alpha,
                uint64_t seed, uint64_t step, int64_t *perm, NrtMixInfo *info, float *scratch)
{
    if (mix_off(alpha, n, perm, info))
        return;
    double lam = draw_batch(alpha, n, seed, step, perm);
    cutmix_box(lam, h, w, seed, step, info);
    int64_t bh = info->y1 - info->y0, bw = info->x1 - info->x0;
    info->lambda = (float)(1.0 - (double)(bh * bw) / (double)(h * w));
    if (bh == 0 || bw == 0)
        return;
    /* scratch holds the boxes of all samples, (n, c, bh, bw) */
    int64_t box = c * bh * bw;
#pragma omp parallel for schedule(static) if (n * box >= MIX_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < bh; y++)
                memcpy(scratch + i * box + (ch * bh + y) * bw,
                       x + ((i * c + ch) * h + info->y0 + y) * w + info->x0,
                       (size_t)bw * sizeof *x);
#pragma omp parallel for schedule(static) if (n * box >= MIX_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < bh; y++)
                memcpy(x + ((i * c + ch) * h + info->y0 + y) * w + info->x0,
                       scratch + perm[i] * box + (ch * bh + y) * bw, (size_t)bw * sizeof *x);
}

void nrt_mix_labels(int64_t n, const int32_t *labels, const int64_t *perm, int32_t *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = labels[perm[i]];
}

void nrt_mix_values(int64_t n, int64_t d, const float *values, const int64_t *perm, float lambda,
                    float *out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            out[i * d + j] = lambda * values[i * d + j] + (1.0f - lambda) * values[perm[i] * d + j];
}
