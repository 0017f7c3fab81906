/* batchnorm.c - batch normalization (Ioffe & Szegedy 2015), PyTorch semantics.
 *
 * x and y are (n, c, spatial); channel ch owns the n planes
 * x[(i*c + ch)*spatial ...], M = n*spatial values. Training normalizes with
 * the batch mean and biased variance, saves mean and invstd for the
 * backward and moves the running statistics towards the batch ones (the
 * variance unbiased); inference uses the running statistics. An optional
 * ReLU is fused into the output (conv -> batchnorm -> relu in one pass).
 *
 * Determinism: every channel is reduced by one thread, plane by plane in
 * sample order, each plane over 8 fixed lanes in double; channels are
 * split over threads. The result does not depend on the thread count.
 * For spatial == 1 (N x D), features are reduced in blocks of BN_BLOCK,
 * rows in order, so the loads stay contiguous.
 */
#include <math.h>

#include "netrt.h"

#define BN_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define BN_PARALLEL_FOR(cond) BN_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define BN_PARALLEL_FOR(cond)
#endif

enum { BN_PAR_MIN = 1 << 15, BN_LANES = 8, BN_BLOCK = 64 };

/* sum of p[0..len) over BN_LANES lanes, then the lanes in order. */
static double lane_sum(const float *p, int64_t len)
{
    double acc[BN_LANES] = {0};
    int64_t j = 0;
    for (; j + BN_LANES <= len; j += BN_LANES)
        for (int l = 0; l < BN_LANES; l++)
            acc[l] += p[j + l];
    for (int l = 0; j < len; j++, l++)
        acc[l] += p[j];
    double s = 0.0;
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    return s;
}

/* sum of (p - mean)^2 over lanes. */
static double lane_sqdev(const float *p, int64_t len, double mean)
{
    double acc[BN_LANES] = {0};
    int64_t j = 0;
    for (; j + BN_LANES <= len; j += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            double d = p[j + l] - mean;
            acc[l] += d * d;
        }
    for (int l = 0; j < len; j++, l++) {
        double d = p[j] - mean;
        acc[l] += d * d;
    }
    double s = 0.0;
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    return s;
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

/* y = x*scale + shift over one plane, optionally clamped at 0. */
static void bn_affine(const float *x, float *y, int64_t len, float scale, float shift, bool relu)
{
    if (relu) {
        for (int64_t j = 0; j < len; j++) {
            float v = x[j] * scale + shift;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (int64_t j = 0; j < len; j++)
            y[j] = x[j] * scale + shift;
    }
}

/* One channel of the training forward, spatial > 1. */
static void bn_train_channel(int64_t n, int64_t c, int64_t spatial, int64_t ch, const float *x,
                             const float *gamma, const float *beta, double eps, double momentum,
                             float *running_mean, float *running_var, bool relu, float *y,
                             float *save_mean, float *save_invstd)
{
    int64_t M = n * spatial;
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += lane_sum(x + (i * c + ch) * spatial, spatial);
    double mean = sum / (double)M;
    for (int64_t i = 0; i < n; i++)
        sq += lane_sqdev(x + (i * c + ch) * spatial, spatial, mean);
    double invstd = bn_finish_stats(ch, M, mean, sq / (double)M, eps, momentum, running_mean,
                                    running_var, save_mean, save_invstd);
    double scale = gamma[ch] * invstd;
    float fscale = (float)scale, fshift = (float)(beta[ch] - mean * scale);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = (i * c + ch) * spatial;
        bn_affine(x + off, y + off, spatial, fscale, fshift, relu);
    }
}

/* A block of features [f0, f1) of the training forward, spatial == 1. */
static void bn_train_rows(int64_t n, int64_t c, int64_t f0, int64_t f1, const float *x,
                          const float *gamma, const float *beta, double eps, double momentum,
                          float *running_mean, float *running_var, bool relu, float *y,
                          float *save_mean, float *save_invstd)
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
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++) {
            float v = x[i * c + f0 + f] * scale[f] + shift[f];
            y[i * c + f0 + f] = relu && !(v > 0.0f) ? 0.0f : v;
        }
}

void nrt_batchnorm_forward_train(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 bool relu, float *y, float *save_mean, float *save_invstd)
{
    bool par = n * c * spatial >= BN_PAR_MIN;
    (void)par;   /* unused without OpenMP */
    if (spatial == 1) {
        int64_t nblocks = (c + BN_BLOCK - 1) / BN_BLOCK;
        BN_PARALLEL_FOR(par && nblocks > 1)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t f1 = (b + 1) * BN_BLOCK < c ? (b + 1) * BN_BLOCK : c;
            bn_train_rows(n, c, b * BN_BLOCK, f1, x, gamma, beta, eps, momentum, running_mean,
                          running_var, relu, y, save_mean, save_invstd);
        }
        return;
    }
    BN_PARALLEL_FOR(par && c > 1)
    for (int64_t ch = 0; ch < c; ch++)
        bn_train_channel(n, c, spatial, ch, x, gamma, beta, eps, momentum, running_mean,
                         running_var, relu, y, save_mean, save_invstd);
}

/* y = (x - rm) / sqrt(rv + eps) * gamma + beta, as one scale and shift per
 * channel; parallel over the n*c planes. */
void nrt_batchnorm_forward_infer(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 double eps, bool relu, float *y)
{
    int64_t planes = n * c;
    BN_PARALLEL_FOR(planes * spatial >= BN_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        int64_t ch = p % c;
        double scale = gamma[ch] / sqrt((double)running_var[ch] + eps);
        float fshift = (float)(beta[ch] - running_mean[ch] * scale);
        bn_affine(x + p * spatial, y + p * spatial, spatial, (float)scale, fshift, relu);
    }
}

/* ---- backward ------------------------------------------------------------ */

/* The effective upstream gradient: dy, or 0 where the fused ReLU was off. */
static inline float bn_grad(const float *dy, const float *yr, int64_t j)
{
    return yr && !(yr[j] > 0.0f) ? 0.0f : dy[j];
}

/* sum g and sum g*(x - mean) over one plane, 8 lanes each. */
static void bn_plane_grad_sums(const float *dy, const float *x, const float *yr, int64_t len,
                               double mean, double *sg, double *sgx)
{
    double a[BN_LANES] = {0}, b[BN_LANES] = {0};
    int64_t j = 0;
    for (; j + BN_LANES <= len; j += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            double g = bn_grad(dy, yr, j + l);
            a[l] += g;
            b[l] += g * (x[j + l] - mean);
        }
    for (int l = 0; j < len; j++, l++) {
        double g = bn_grad(dy, yr, j);
        a[l] += g;
        b[l] += g * (x[j] - mean);
    }
    for (int l = 0; l < BN_LANES; l++) {
        *sg += a[l];
        *sgx += b[l];
    }
}

/* dx = (g - mean_g - (x - mean)*k) * (invstd*gamma) over one plane. */
static void bn_plane_dx(const float *dy, const float *x, const float *yr, int64_t len,
                        float mean, float mean_g, float k, float coef, float *dx, bool acc)
{
    for (int64_t j = 0; j < len; j++) {
        float v = (bn_grad(dy, yr, j) - mean_g - (x[j] - mean) * k) * coef;
        dx[j] = acc ? dx[j] + v : v;
    }
}

static void bn_backward_channel(int64_t n, int64_t c, int64_t spatial, int64_t ch,
                                const float *dy, const float *x, const float *yr,
                                const float *gamma, const float *save_mean,
                                const float *save_invstd, float *dx, float *dgamma,
                                float *dbeta, bool acc_dx, bool acc_params)
{
    int64_t M = n * spatial;
    double mean = save_mean[ch], invstd = save_invstd[ch];
    double sg = 0.0, sgx = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = (i * c + ch) * spatial;
        bn_plane_grad_sums(dy + off, x + off, yr ? yr + off : NULL, spatial, mean, &sg, &sgx);
    }
    float db = (float)sg, dg = (float)(sgx * invstd);
    dbeta[ch] = acc_params ? dbeta[ch] + db : db;
    dgamma[ch] = acc_params ? dgamma[ch] + dg : dg;
    if (!dx)
        return;
    float mean_g = (float)(sg / (double)M);
    float k = (float)(sgx * invstd * invstd / (double)M);
    float coef = (float)(invstd * gamma[ch]);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = (i * c + ch) * spatial;
        bn_plane_dx(dy + off, x + off, yr ? yr + off : NULL, spatial, (float)mean, mean_g, k,
                    coef, dx + off, acc_dx);
    }
}

/* spatial == 1: features [f0, f1), rows in order. */
static void bn_backward_rows(int64_t n, int64_t c, int64_t f0, int64_t f1, const float *dy,
                             const float *x, const float *yr, const float *gamma,
                             const float *save_mean, const float *save_invstd, float *dx,
                             float *dgamma, float *dbeta, bool acc_dx, bool acc_params)
{
    double sg[BN_BLOCK] = {0}, sgx[BN_BLOCK] = {0};
    float mean_g[BN_BLOCK], k[BN_BLOCK], coef[BN_BLOCK];
    int64_t nf = f1 - f0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++) {
            int64_t j = i * c + f0 + f;
            double g = bn_grad(dy, yr, j);
            sg[f] += g;
            sgx[f] += g * (x[j] - (double)save_mean[f0 + f]);
        }
    for (int64_t f = 0; f < nf; f++) {
        double invstd = save_invstd[f0 + f];
        float db = (float)sg[f], dg = (float)(sgx[f] * invstd);
        dbeta[f0 + f] = acc_params ? dbeta[f0 + f] + db : db;
        dgamma[f0 + f] = acc_params ? dgamma[f0 + f] + dg : dg;
        mean_g[f] = (float)(sg[f] / (double)n);
        k[f] = (float)(sgx[f] * invstd * invstd / (double)n);
        coef[f] = (float)(invstd * gamma[f0 + f]);
    }
    if (!dx)
        return;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++) {
            int64_t j = i * c + f0 + f;
            float v = (bn_grad(dy, yr, j) - mean_g[f] - (x[j] - save_mean[f0 + f]) * k[f])
                      * coef[f];
            dx[j] = acc_dx ? dx[j] + v : v;
        }
}

void nrt_batchnorm_backward(int64_t n, int64_t c, int64_t spatial, const float *dy,
                            const float *x, const float *y_relu, const float *gamma,
                            const float *save_mean, const float *save_invstd, float *dx,
                            float *dgamma, float *dbeta, bool accumulate_dx,
                            bool accumulate_params)
{
    bool par = n * c * spatial >= BN_PAR_MIN;
    (void)par;   /* unused without OpenMP */
    if (spatial == 1) {
        int64_t nblocks = (c + BN_BLOCK - 1) / BN_BLOCK;
        BN_PARALLEL_FOR(par && nblocks > 1)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t f1 = (b + 1) * BN_BLOCK < c ? (b + 1) * BN_BLOCK : c;
            bn_backward_rows(n, c, b * BN_BLOCK, f1, dy, x, y_relu, gamma, save_mean,
                             save_invstd, dx, dgamma, dbeta, accumulate_dx, accumulate_params);
        }
        return;
    }
    BN_PARALLEL_FOR(par && c > 1)
    for (int64_t ch = 0; ch < c; ch++)
        bn_backward_channel(n, c, spatial, ch, dy, x, y_relu, gamma, save_mean, save_invstd,
                            dx, dgamma, dbeta, accumulate_dx, accumulate_params);
}
