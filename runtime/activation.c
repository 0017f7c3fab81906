/* activation.c - elementwise activations and row-wise softmax.
 *
 * relu, leaky_relu, tanh, sigmoid: forward y = f(x) and backward
 * dx = f'(.) * dy over numel floats (PyTorch's definitions; relu'(0) = 0).
 * Backward kernels read whatever form is natural: the output for relu
 * (y > 0 iff x > 0), tanh (1 - y^2) and sigmoid (y (1 - y)), so the
 * input need not be kept; the input for leaky_relu (its slope may be 0).
 * softmax / log_softmax subtract the row maximum and sum in double.
 * Elementwise work is split into static chunks, rows over threads: every
 * output is computed the same way for any thread count.
 */
#include <math.h>

#include "netrt.h"

#define ACT_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define ACT_PARALLEL_FOR(cond) ACT_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define ACT_PARALLEL_FOR(cond)
#endif

enum { ACT_PAR_MIN = 1 << 16 };

/* dx = v, or dx += v. */
static inline void act_store(float *dx, int64_t i, float v, bool accumulate)
{
    dx[i] = accumulate ? dx[i] + v : v;
}

void nrt_relu_forward(int64_t numel, const float *x, float *y)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

void nrt_relu_backward(int64_t numel, const float *dy, const float *y, float *dx,
                       bool accumulate)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++) {
        float g = dy[i];   /* loaded unconditionally, so the choice is a select */
        act_store(dx, i, y[i] > 0.0f ? g : 0.0f, accumulate);
    }
}

void nrt_leaky_relu_forward(int64_t numel, float slope, const float *x, float *y)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

void nrt_leaky_relu_backward(int64_t numel, float slope, const float *dy, const float *x,
                             float *dx, bool accumulate)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        act_store(dx, i, x[i] > 0.0f ? dy[i] : dy[i] * slope, accumulate);
}

void nrt_tanh_forward(int64_t numel, const float *x, float *y)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN / 8)
    for (int64_t i = 0; i < numel; i++)
        y[i] = tanhf(x[i]);
}

void nrt_tanh_backward(int64_t numel, const float *dy, const float *y, float *dx,
                       bool accumulate)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        act_store(dx, i, dy[i] * (1.0f - y[i] * y[i]), accumulate);
}

/* 1 / (1 + e^-x): e^-x overflows to inf for x < -88 and gives 0, as it should. */
void nrt_sigmoid_forward(int64_t numel, const float *x, float *y)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN / 8)
    for (int64_t i = 0; i < numel; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void nrt_sigmoid_backward(int64_t numel, const float *dy, const float *y, float *dx,
                          bool accumulate)
{
    ACT_PARALLEL_FOR(numel >= ACT_PAR_MIN)
    for (int64_t i = 0; i < numel; i++)
        act_store(dx, i, dy[i] * y[i] * (1.0f - y[i]), accumulate);
}

/* ---- softmax ------------------------------------------------------------- */

/* The row maximum and log(sum exp(x - max)), in double. */
static void row_logsumexp(const float *x, int64_t k, double *max, double *lse)
{
    double m = x[0];
    for (int64_t j = 1; j < k; j++)
        if (x[j] > m)
            m = x[j];
    double s = 0.0;
    for (int64_t j = 0; j < k; j++)
        s += exp(x[j] - m);
    *max = m;
    *lse = log(s);
}

void nrt_softmax_forward(int64_t n, int64_t k, const float *x, float *y)
{
    ACT_PARALLEL_FOR(n * k >= ACT_PAR_MIN / 8 && n > 1)
    for (int64_t i = 0; i < n; i++) {
        double m, lse;
        row_logsumexp(x + i * k, k, &m, &lse);
        for (int64_t j = 0; j < k; j++)
            y[i * k + j] = (float)exp(x[i * k + j] - m - lse);
    }
}

void nrt_log_softmax_forward(int64_t n, int64_t k, const float *x, float *y)
{
    ACT_PARALLEL_FOR(n * k >= ACT_PAR_MIN / 8 && n > 1)
    for (int64_t i = 0; i < n; i++) {
        double m, lse;
        row_logsumexp(x + i * k, k, &m, &lse);
        for (int64_t j = 0; j < k; j++)
            y[i * k + j] = (float)(x[i * k + j] - m - lse);
    }
}

void nrt_softmax_backward(int64_t n, int64_t k, const float *dy, const float *y, float *dx,
                          bool accumulate)
{
    ACT_PARALLEL_FOR(n * k >= ACT_PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        const float *yr = y + i * k, *gr = dy + i * k;
        double dot = 0.0;
        for (int64_t j = 0; j < k; j++)
            dot += (double)gr[j] * yr[j];
        for (int64_t j = 0; j < k; j++)
            act_store(dx, i * k + j, (float)(yr[j] * (gr[j] - dot)), accumulate);
    }
}
