/* pool.c - max, average, global average and fractional max pooling.
 *
 * x is (n, c, h, w), y is (n, c, oh, ow); every plane (sample, channel) is
 * independent, so work is split over planes and each plane is computed by
 * one thread in a fixed order: results are the same for any thread count.
 * Max pooling follows PyTorch: padded positions never win, a NaN does, the
 * first maximum wins ties, and argmax holds the winner's index ih*w + iw
 * within its plane (int32) for the backward scatter. 2x2 stride-2 windows
 * (LeNet's) take a branch-free path, with AVX-512 (pool_avx512.c) when the
 * CPU has it: the general loop's data-dependent branches made max pooling
 * 10% of a lenet_bn training step. Average pooling counts
 * the zero padding (count_include_pad=True, PyTorch's default): with
 * floor-mode sizes and pad <= k/2 every window lies inside the padded
 * image, so the divisor is k*k everywhere.
 * Fractional max pooling (Graham 2014, "Fractional Max-Pooling") takes its
 * regions as data (nrt_fracpool_regions draws them from a uniform sample),
 * so the same kernels serve random training regions and fixed inference
 * ones.
 */
#include <math.h>
#include <string.h>

#include "isa_kernels.h"
#include "netrt.h"

#define POOL_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define POOL_PARALLEL_FOR(cond) POOL_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define POOL_PARALLEL_FOR(cond)
#endif

enum { POOL_PAR_MIN = 1 << 15, POOL_LANES = 8 };

int64_t nrt_pool_out_h(const NrtPoolShape *s)
{
    return (s->h + 2 * s->pad - s->k) / s->stride + 1;
}

int64_t nrt_pool_out_w(const NrtPoolShape *s)
{
    return (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

/* The window [*lo, *hi) of output position o along one axis, clipped to
 * the input [0, in). */
static void pool_window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in,
                        int64_t *lo, int64_t *hi)
{
    int64_t a = o * stride - pad, b = a + k;
    *lo = a > 0 ? a : 0;
    *hi = b < in ? b : in;
}

/* Max over the rectangle [r0, r1) x [c0, c1) of a plane (PyTorch's rule:
 * v > best or v is NaN). */
static float plane_max(const float *xp, int64_t w, int64_t r0, int64_t r1, int64_t c0,
                       int64_t c1, int32_t *where)
{
    float best = -INFINITY;
    int64_t arg = r0 * w + c0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t q = c0; q < c1; q++) {
            float v = xp[r * w + q];
            if (v > best || isnan(v)) {
                best = v;
                arg = r * w + q;
            }
        }
    *where = (int32_t)arg;
    return best;
}

/* The winner of (best, arg) and (v, at) under plane_max's rule, as selects:
 * data-dependent branches mispredicted about half the time here. */
static inline void max_step(float *best, int32_t *arg, float v, int32_t at)
{
    bool take = v > *best || isnan(v);
    *best = take ? v : *best;
    *arg = take ? at : *arg;
}

/* 2x2 windows, stride 2, no padding (lenet's pools): every window lies
 * inside the plane; same visiting order and rule as plane_max. */
static void maxpool_2x2_plane(const float *xp, int64_t w, int64_t oh, int64_t ow, float *y,
                              int32_t *argmax)
{
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
        int32_t base = (int32_t)(2 * oy * w);
        for (int64_t ox = 0; ox < ow; ox++) {
            int32_t c = (int32_t)(2 * ox);
            float best = r0[c];   /* plane_max takes the first value whatever it is */
            int32_t arg = base + c;
            max_step(&best, &arg, r0[c + 1], base + c + 1);
            max_step(&best, &arg, r1[c], base + (int32_t)w + c);
            max_step(&best, &arg, r1[c + 1], base + (int32_t)w + c + 1);
            y[oy * ow + ox] = best;
            if (argmax)
                argmax[oy * ow + ox] = arg;
        }
    }
}

void nrt_maxpool_forward(const NrtPoolShape *s, const float *x, float *y, int32_t *argmax)
{
    int64_t oh = nrt_pool_out_h(s), ow = nrt_pool_out_w(s), planes = s->n * s->c;
    if (s->k == 2 && s->stride == 2 && s->pad == 0) {
        POOL_PARALLEL_FOR(planes * oh * ow * 4 >= POOL_PAR_MIN && planes > 1)
        for (int64_t p = 0; p < planes; p++)
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
            if (nrt_sgemm_isa() != NRT_ISA_AVX512 ||
                !nrt_maxpool2_avx512(1, s->h, s->w, oh, ow, x + p * s->h * s->w,
                                     y + p * oh * ow, argmax ? argmax + p * oh * ow : NULL))
#endif
            maxpool_2x2_plane(x + p * s->h * s->w, s->w, oh, ow, y + p * oh * ow,
                              argmax ? argmax + p * oh * ow : NULL);
        return;
    }
    POOL_PARALLEL_FOR(planes * oh * ow * s->k * s->k >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * s->h * s->w;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t r0, r1;
            pool_window(oy, s->stride, s->pad, s->k, s->h, &r0, &r1);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t c0, c1, o = (p * oh + oy) * ow + ox;
                int32_t arg;
                pool_window(ox, s->stride, s->pad, s->k, s->w, &c0, &c1);
                y[o] = plane_max(xp, s->w, r0, r1, c0, c1, &arg);
                if (argmax)
                    argmax[o] = arg;
            }
        }
    }
}

/* dx[plane][argmax] += dy over `planes` planes, each in output order. */
static void scatter_argmax(int64_t planes, int64_t in_size, int64_t out_size, const float *dy,
                           const int32_t *argmax, float *dx, bool accumulate)
{
    POOL_PARALLEL_FOR(planes * (in_size + out_size) >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        float *dxp = dx + p * in_size;
        if (!accumulate)
            memset(dxp, 0, (size_t)in_size * sizeof *dxp);
        for (int64_t o = p * out_size; o < (p + 1) * out_size; o++)
            dxp[argmax[o]] += dy[o];
    }
}

void nrt_maxpool_backward(const NrtPoolShape *s, const float *dy, const int32_t *argmax,
                          float *dx, bool accumulate)
{
    scatter_argmax(s->n * s->c, s->h * s->w, nrt_pool_out_h(s) * nrt_pool_out_w(s), dy, argmax,
                   dx, accumulate);
}

void nrt_avgpool_forward(const NrtPoolShape *s, const float *x, float *y)
{
    int64_t oh = nrt_pool_out_h(s), ow = nrt_pool_out_w(s), planes = s->n * s->c;
    float inv = 1.0f / (float)(s->k * s->k);
    POOL_PARALLEL_FOR(planes * oh * ow * s->k * s->k >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * s->h * s->w;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t r0, r1;
            pool_window(oy, s->stride, s->pad, s->k, s->h, &r0, &r1);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t c0, c1;
                pool_window(ox, s->stride, s->pad, s->k, s->w, &c0, &c1);
                float sum = 0.0f;
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t q = c0; q < c1; q++)
                        sum += xp[r * s->w + q];
                y[(p * oh + oy) * ow + ox] = sum * inv;
            }
        }
    }
}

void nrt_avgpool_backward(const NrtPoolShape *s, const float *dy, float *dx, bool accumulate)
{
    int64_t oh = nrt_pool_out_h(s), ow = nrt_pool_out_w(s), planes = s->n * s->c;
    float inv = 1.0f / (float)(s->k * s->k);
    POOL_PARALLEL_FOR(planes * oh * ow * s->k * s->k >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        float *dxp = dx + p * s->h * s->w;
        if (!accumulate)
            memset(dxp, 0, (size_t)(s->h * s->w) * sizeof *dxp);
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t r0, r1;
            pool_window(oy, s->stride, s->pad, s->k, s->h, &r0, &r1);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t c0, c1;
                pool_window(ox, s->stride, s->pad, s->k, s->w, &c0, &c1);
                float g = dy[(p * oh + oy) * ow + ox] * inv;
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t q = c0; q < c1; q++)
                        dxp[r * s->w + q] += g;
            }
        }
    }
}

/* ---- global average pooling --------------------------------------------- */

void nrt_global_avgpool_forward(int64_t n, int64_t c, int64_t spatial, const float *x, float *y)
{
    int64_t planes = n * c;
    POOL_PARALLEL_FOR(planes * spatial >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * spatial;
        double acc[POOL_LANES] = {0}, sum = 0.0;
        int64_t j = 0;
        for (; j + POOL_LANES <= spatial; j += POOL_LANES)
            for (int l = 0; l < POOL_LANES; l++)
                acc[l] += xp[j + l];
        for (int l = 0; j < spatial; j++, l++)
            acc[l] += xp[j];
        for (int l = 0; l < POOL_LANES; l++)
            sum += acc[l];
        y[p] = (float)(sum / (double)spatial);
    }
}

void nrt_global_avgpool_backward(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                 float *dx, bool accumulate)
{
    int64_t planes = n * c;
    float inv = 1.0f / (float)spatial;
    POOL_PARALLEL_FOR(planes * spatial >= POOL_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        float g = dy[p] * inv, *dxp = dx + p * spatial;
        for (int64_t j = 0; j < spatial; j++)
            dxp[j] = accumulate ? dxp[j] + g : g;
    }
}

/* ---- fractional max pooling --------------------------------------------- */

int64_t nrt_fracpool_out(int64_t in, double ratio)
{
    int64_t out = (int64_t)floor((double)in / ratio);
    return out > 0 ? out : 1;
}

/* Graham's pseudo-random increments, u scaled (as TensorFlow does) so every
 * region has K or K+1 elements, the last one included. */
void nrt_fracpool_regions(int64_t in, int64_t out, double u01, bool overlap, int32_t *start,
                          int32_t *end)
{
    double alpha = (double)in / (double)out;
    double K = floor(alpha);
    double umax1 = (K + 2.0) / alpha - 1.0;
    double umax2 = ((double)in + 1.0 - K) / alpha - (double)(out - 1);
    /* u in (0, max_u]: at u = 0 an integer alpha would make region 0 short */
    double u = (1.0 - u01) * (umax1 < umax2 ? umax1 : umax2);
    int64_t a = 0;
    for (int64_t i = 0; i < out; i++) {
        int64_t next = i + 1 < out ? (int64_t)ceil(alpha * ((double)(i + 1) + u)) - 1 : in;
        if (next > in)
            next = in;
        start[i] = (int32_t)a;
        end[i] = (int32_t)(overlap && next < in ? next + 1 : next);
        a = next;
    }
}

/* PyTorch's generate_intervals (aten/src/ATen/native/FractionalMaxPooling.h),
 * in float as torch computes it for float tensors. */
void nrt_fracpool_regions_torch(int64_t in, int64_t out, int64_t k, float u, int32_t *start,
                                int32_t *end)
{
    if (out > 1) {
        float alpha = (float)(in - k) / (float)(out - 1);
        for (int64_t i = 0; i < out - 1; i++)
            start[i] = (int32_t)((int)(((float)i + u) * alpha) - (int)(u * alpha));
    }
    start[out - 1] = (int32_t)(in - k);
    for (int64_t i = 0; i < out; i++)
        end[i] = start[i] + (int32_t)k;
}

static int64_t frac_set(const NrtFracPool *p, int64_t plane)
{
    switch (p->share) {
    case NRT_FRAC_PER_SAMPLE:
        return plane / p->c;
    case NRT_FRAC_PER_PLANE:
        return plane;
    case NRT_FRAC_SHARED:
        break;
    }
    return 0;
}

void nrt_fracpool_forward(const NrtFracPool *p, const float *x, float *y, int32_t *argmax)
{
    int64_t planes = p->n * p->c, hw = p->h * p->w, ohw = p->oh * p->ow;
    POOL_PARALLEL_FOR(planes * (hw + ohw) >= POOL_PAR_MIN && planes > 1)
    for (int64_t q = 0; q < planes; q++) {
        int64_t set = frac_set(p, q);
        const int32_t *rs = p->row_start + set * p->oh, *re = p->row_end + set * p->oh;
        const int32_t *cs = p->col_start + set * p->ow, *ce = p->col_end + set * p->ow;
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) {
                int64_t o = q * ohw + oy * p->ow + ox;
                int32_t arg;
                y[o] = plane_max(x + q * hw, p->w, rs[oy], re[oy], cs[ox], ce[ox], &arg);
                if (argmax)
                    argmax[o] = arg;
            }
    }
}

void nrt_fracpool_backward(const NrtFracPool *p, const float *dy, const int32_t *argmax,
                           float *dx, bool accumulate)
{
    scatter_argmax(p->n * p->c, p->h * p->w, p->oh * p->ow, dy, argmax, dx, accumulate);
}

/* Per set s: the rows' uniform at (seed, NRT_RNG_FRACPOOL, step, sample s,
 * element stream), the columns' at element stream + 1. */
void nrt_fracpool_draw(uint64_t seed, uint64_t step, uint64_t stream, int64_t sets, int64_t h,
                       int64_t w, int64_t oh, int64_t ow, bool overlap, int32_t *regions)
{
    int32_t *rs = regions, *re = rs + sets * oh, *cs = re + sets * oh, *ce = cs + sets * ow;
    for (int64_t s = 0; s < sets; s++) {
        double ur = nrt_rng_uniform(seed, NRT_RNG_FRACPOOL, step, (uint64_t)s, stream);
        double uc = nrt_rng_uniform(seed, NRT_RNG_FRACPOOL, step, (uint64_t)s, stream + 1);
        nrt_fracpool_regions(h, oh, ur, overlap, rs + s * oh, re + s * oh);
        nrt_fracpool_regions(w, ow, uc, overlap, cs + s * ow, ce + s * ow);
    }
}
