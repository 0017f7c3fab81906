/* dropout.c - inverted dropout, drop_path (stochastic depth) and gaussian
 * noise, with the randomness passed in as data.
 *
 * The caller draws the random numbers (Philox4x32-10 keyed by seed,
 * purpose, step, sample and element: rng.c) into a buffer: 32 uniform bits
 * per element for dropout and dropconnect, per sample for drop_path, one
 * N(0,1) value per element for noise. The kernels here are then pure
 * elementwise maps, identical for any thread count.
 * A mask stores the multiplier: 1/(1-p) where the element is kept, 0 where
 * it is dropped (Srivastava et al. 2014, inverted: identity at inference).
 * The same mask gives the backward dx = mask * dy.
 */
#include <math.h>

#include "netrt.h"

#define DROP_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define DROP_PARALLEL_FOR(cond) DROP_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define DROP_PARALLEL_FOR(cond)
#endif

enum { DROP_PAR_MIN = 1 << 16 };

/* round(p * 2^32), clamped to [0, 2^32 - 1]: P(bits >= t) = 1 - t/2^32. */
uint32_t nrt_dropout_threshold(double p)
{
    if (!(p > 0.0))
        return 0;
    double t = floor(p * 4294967296.0 + 0.5);
    return t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t;
}

void nrt_dropout_mask(int64_t numel, const uint32_t *bits, double p, float *mask)
{
    uint32_t t = nrt_dropout_threshold(p);
    float scale = (float)(1.0 / (1.0 - p));
    DROP_PARALLEL_FOR(numel >= DROP_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        mask[i] = bits[i] >= t ? scale : 0.0f;
}

void nrt_dropout_forward(int64_t numel, const float *x, const float *mask, float *y)
{
    DROP_PARALLEL_FOR(numel >= DROP_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        y[i] = x[i] * mask[i];
}

void nrt_dropout_backward(int64_t numel, const float *dy, const float *mask, float *dx,
                          bool accumulate)
{
    DROP_PARALLEL_FOR(numel >= DROP_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float v = dy[i] * mask[i];
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

/* x, y (n, d): each sample's branch scaled by its own scale[i]. */
void nrt_drop_path_forward(int64_t n, int64_t d, const float *x, const float *scale, float *y)
{
    DROP_PARALLEL_FOR(n * d >= DROP_PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        float s = scale[i];
        for (int64_t j = 0; j < d; j++)
            y[i * d + j] = x[i * d + j] * s;
    }
}

void nrt_drop_path_backward(int64_t n, int64_t d, const float *dy, const float *scale,
                            float *dx, bool accumulate)
{
    DROP_PARALLEL_FOR(n * d >= DROP_PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        float s = scale[i];
        for (int64_t j = 0; j < d; j++) {
            float v = dy[i * d + j] * s;
            dx[i * d + j] = accumulate ? dx[i * d + j] + v : v;
        }
    }
}

void nrt_gaussian_noise_forward(int64_t numel, const float *x, const float *normals, float std,
                                float *y)
{
    DROP_PARALLEL_FOR(numel >= DROP_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        y[i] = x[i] + std * normals[i];
}
