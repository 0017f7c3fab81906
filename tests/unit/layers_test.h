/* layers_test.h - helpers shared by the layer kernel tests (test_batchnorm.c,
 * test_pool.c, test_activation.c, test_loss.c, test_optim.c).
 *
 * Gradient checks: every backward kernel runs in float; its result is
 * compared with a central difference, in double, of a double-precision
 * reference forward written in the test (the same formula, not the kernel).
 * The float inputs are exact doubles, so both sides see the same point.
 * Criterion: |analytic - numeric| <= GC_ABS + GC_REL * |numeric|, with
 * GC_ABS = 1e-5 and GC_REL = 1e-3: the float kernel is off by a few ulps
 * of its sums, the double difference by about 1e-10 at h = 1e-6.
 */
#ifndef LAYERS_TEST_H
#define LAYERS_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netrt.h"

#define GC_ABS 1e-5
#define GC_REL 1e-3
#define GC_H 1e-6

/* Deterministic test data: a 64-bit LCG, uniform in [lo, hi). */
static inline double lt_uniform(uint64_t *s, double lo, double hi)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(*s >> 11) / 9007199254740992.0;
}

static inline void lt_fill(float *x, int64_t n, uint64_t seed, double lo, double hi)
{
    uint64_t s = seed * 2654435761ULL + 1;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)lt_uniform(&s, lo, hi);
}

/* The same values as gen_layers_ref.py's val(n, a, b). */
static inline void lt_sin(float *x, int64_t n, double a, double b)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)sin(a * (double)i + b);
}

static inline float *lt_alloc(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    assert_non_null(p);
    return p;
}

static inline double *lt_dalloc(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    assert_non_null(p);
    return p;
}

static inline void lt_to_double(const float *x, double *d, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
}

/* Fails with both numbers when analytic and numeric disagree. */
static inline void lt_check_grad(const char *what, int64_t i, double analytic, double numeric)
{
    double err = fabs(analytic - numeric);
    if (!(err <= GC_ABS + GC_REL * fabs(numeric)))
        fail_msg("%s[%lld]: analytic %.9g, numeric %.9g", what, (long long)i, analytic, numeric);
}

/* |a - b| <= abs_tol + rel_tol * |b| elementwise. */
static inline void lt_check_close(const char *what, const float *a, const double *b, int64_t n,
                                  double abs_tol, double rel_tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= abs_tol + rel_tol * fabs(b[i])))
            fail_msg("%s[%lld]: got %.9g, want %.9g", what, (long long)i, (double)a[i], b[i]);
}

/* Numeric gradient of f with respect to v[i] by central differences. */
typedef double (*LtObjective)(void *ctx);
static inline double lt_numeric(double *v, int64_t i, LtObjective f, void *ctx)
{
    double keep = v[i];
    v[i] = keep + GC_H;
    double up = f(ctx);
    v[i] = keep - GC_H;
    double down = f(ctx);
    v[i] = keep;
    return (up - down) / (2.0 * GC_H);
}

#endif
