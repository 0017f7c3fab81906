/* test_reg_stats.c - the regularizers do, in distribution, what their
 * formulas promise, drawn exactly as the generated train step draws them
 * (emit_c.c: purposes, samples and element streams).
 *
 *   dropout          keep rate 1 - p, kept values 1/(1-p), E[y] = E[x]
 *   dropconnect      conv: one mask per batch (sample 0): keep rate,
 *                    mean of w * mask = mean of w
 *   drop_path        per-sample survival 1 - p; a row is all zero or x/(1-p)
 *   gaussian_noise   y - x ~ N(0, std^2): mean, variance, kurtosis 3
 *   mixup            lambda ~ Beta(a, a): Kolmogorov-Smirnov against the
 *                    exact CDF (regularized incomplete beta)
 *   cutmix           lambda = the kept area; KS against the distribution of
 *                    the kept area of a floor()-sized box with a uniform
 *                    center, clipped, for l ~ Beta(a, a)
 *   augmentation     flip and translate keep pixel mass exactly (content
 *                    inside the margin); translate moves 80/81 of the samples
 *                    (rotation's mass and centroid: test_augment.c)
 *
 * Tolerances are not tuned: each estimate must lie within Z = 5 standard
 * errors of its expectation (two-sided false alarm 6e-7 per check), the
 * standard error derived from the distribution (binomial, the normal's
 * fourth moment, ...). KS: P(sqrt(n) D > t) <= 2 exp(-2 t^2) (the
 * Dvoretzky-Kiefer-Wolfowitz bound), t = 2.69 for 1e-6. Seeds are fixed,
 * so each run is the same run.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netrt.h"

#define Z 5.0
#define KS_T 2.69

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* |est - want| <= Z * se, with a message when it fails. */
static void near(const char *what, double est, double want, double se)
{
    if (fabs(est - want) > Z * se)
        print_error("%s: %.6g, expected %.6g (se %.3g, %.1f se away)\n", what, est, want, se,
                    fabs(est - want) / se);
    assert_true(fabs(est - want) <= Z * se);
}

/* ---- dropout, dropconnect, drop_path ----------------------------------------- */

/* The dropout layer of the generated code: per sample i a mask at (seed,
 * DROPOUT, step, sample i, stream + j), then y = x * mask. */
static void test_dropout_keep_and_mean(void **state)
{
    (void)state;
    const double ps[] = {0.1, 0.5, 0.8};
    enum { NS = 64, DIM = 4096 };
    const int64_t n = (int64_t)NS * DIM;
    float *x = xmalloc((size_t)n * sizeof *x), *mask = xmalloc((size_t)n * sizeof *mask);
    float *y = xmalloc((size_t)n * sizeof *y);
    nrt_rng_fill_uniform(5, NRT_RNG_AUGMENT, 0, 0, 0, n, x);    /* x ~ U[0, 1) */
    for (int k = 0; k < 3; k++) {
        double p = ps[k], keep = 1.0 - p, scale = (double)(float)(1.0 / keep);
        for (int i = 0; i < NS; i++)
            nrt_rng_fill_dropout_mask(9, NRT_RNG_DROPOUT, 3, (uint64_t)i, (uint64_t)7 << 32, DIM,
                                      p, mask + (int64_t)i * DIM);
        nrt_dropout_forward(n, x, mask, y);
        double kept = 0, diff = 0, x2 = 0;
        for (int64_t j = 0; j < n; j++) {
            assert_true(mask[j] == 0.0f || mask[j] == (float)scale);
            assert_true(y[j] == x[j] * mask[j]);
            kept += mask[j] != 0.0f;
            diff += (double)y[j] - x[j];
            x2 += (double)x[j] * x[j];
        }
        near("dropout keep rate", kept / n, keep, sqrt(p * keep / n));
        /* y - x = x (m - 1), m = scale w.p. keep: Var = E[x^2] * (scale^2 keep - 1) */
        double var = x2 / n * (scale * scale * keep - 1.0);
        near("dropout E[y] - E[x]", diff / n, 0.0, sqrt(var / n));
    }
    free(x), free(mask), free(y);
}

/* Conv dropconnect: one mask for the whole weight tensor per step (sample
 * 0, purpose DROPCONNECT); over steps each weight is kept w.p. 1 - p and
 * E[w * mask] = w. */
static void test_dropconnect_conv_mask(void **state)
{
    (void)state;
    enum { DIM = 16 * 8 * 9, STEPS = 200 };
    const double p = 0.3, keep = 0.7;
    float w[DIM], mask[DIM], wm[DIM];
    for (int j = 0; j < DIM; j++)
        w[j] = (float)nrt_rng_normal(2, NRT_RNG_INIT, 0, 0, (uint64_t)j);
    double kept = 0, diff = 0, w2 = 0;
    for (int s = 0; s < STEPS; s++) {
        nrt_rng_fill_dropout_mask(4, NRT_RNG_DROPCONNECT, (uint64_t)s, 0, (uint64_t)3 << 32, DIM,
                                  p, mask);
        nrt_dropout_forward(DIM, w, mask, wm);
        for (int j = 0; j < DIM; j++) {
            kept += mask[j] != 0.0f;
            diff += (double)wm[j] - w[j];
            w2 += (double)w[j] * w[j];
        }
    }
    double n = (double)DIM * STEPS, scale = (double)(float)(1.0 / keep);
    near("dropconnect keep rate", kept / n, keep, sqrt(p * keep / n));
    near("dropconnect E[w m] - w", diff / n, 0.0, sqrt(w2 / n * (scale * scale * keep - 1) / n));
}

/* drop_path: one draw per sample at (seed, DROP_PATH, step, sample i,
 * stream); the row survives whole, scaled, or is zero. */
static void test_drop_path_survival(void **state)
{
    (void)state;
    enum { NS = 64, DIM = 50, STEPS = 400 };
    const double ps[] = {0.1, 0.5};
    float x[NS * DIM], y[NS * DIM], scale[NS];
    for (int j = 0; j < NS * DIM; j++)
        x[j] = 1.0f + (float)(j % 7);
    for (int k = 0; k < 2; k++) {
        double p = ps[k], keep = 1.0 - p, alive = 0;
        for (int s = 0; s < STEPS; s++) {
            for (int i = 0; i < NS; i++)
                nrt_rng_fill_dropout_mask(6, NRT_RNG_DROP_PATH, (uint64_t)s, (uint64_t)i,
                                          (uint64_t)11 << 32, 1, p, scale + i);
            nrt_drop_path_forward(NS, DIM, x, scale, y);
            for (int i = 0; i < NS; i++) {
                bool live = scale[i] != 0.0f;
                assert_true(!live || scale[i] == (float)(1.0 / keep));
                for (int j = 0; j < DIM; j++)
                    assert_true(y[i * DIM + j] == (live ? x[i * DIM + j] * scale[i] : 0.0f));
                alive += live;
            }
        }
        double n = (double)NS * STEPS;
        near("drop_path survival", alive / n, keep, sqrt(p * keep / n));
    }
}

/* ---- gaussian noise ------------------------------------------------------------- */

/* The layer: normals at (seed, NOISE, step, sample i, stream + j), then
 * y = x + std * normal. y - x has mean 0, variance std^2 and kurtosis 3:
 * se of the mean std/sqrt(n), of the variance std^2 sqrt(2/n), of the
 * kurtosis sqrt(24/n). */
static void test_gaussian_noise(void **state)
{
    (void)state;
    enum { NS = 32, DIM = 8192 };
    const int64_t n = (int64_t)NS * DIM;
    const float sd = 0.3f;
    float *x = xmalloc((size_t)n * sizeof *x), *y = xmalloc((size_t)n * sizeof *y);
    nrt_rng_fill_uniform(1, NRT_RNG_AUGMENT, 0, 0, 0, n, x);
    for (int i = 0; i < NS; i++)
        nrt_rng_fill_normal(8, NRT_RNG_NOISE, 2, (uint64_t)i, (uint64_t)5 << 32, DIM, 0.0f, 1.0f,
                            y + (int64_t)i * DIM);
    nrt_gaussian_noise_forward(n, x, y, sd, y);
    double s1 = 0, s2 = 0, s4 = 0;
    for (int64_t j = 0; j < n; j++) {
        double e = (double)y[j] - x[j];
        s1 += e, s2 += e * e, s4 += e * e * e * e;
    }
    double v = (double)sd * sd, mean = s1 / n, var = s2 / n - mean * mean;
    near("noise mean", mean, 0.0, sd / sqrt((double)n));
    /* float rounding of x + e adds at most 2^-24 relative noise: negligible */
    near("noise variance", var, v, v * sqrt(2.0 / n));
    near("noise kurtosis", s4 / n / (var * var), 3.0, sqrt(24.0 / n));
    free(x), free(y);
}

/* ---- mixing ----------------------------------------------------------------------- */

/* Regularized incomplete beta I_x(a, b) by its continued fraction
 * (Lentz's method, as in Numerical Recipes' betacf), symmetric switch. */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    d = 1.0 / (fabs(d) < tiny ? tiny : d);
    double h = d;
    for (int m = 1; m <= 300; m++) {
        double m2 = 2.0 * m, aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        for (int k = 0; k < 2; k++) {
            d = 1.0 + aa * d;
            d = 1.0 / (fabs(d) < tiny ? tiny : d);
            c = 1.0 + aa / c;
            c = fabs(c) < tiny ? tiny : c;
            h *= d * c;
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        }
        if (fabs(d * c - 1.0) < 1e-15)
            break;
    }
    return h;
}

static double beta_cdf(double x, double a, double b)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lf = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lf) * betacf(a, b, x) / a;
    return 1.0 - exp(lf) * betacf(b, a, 1.0 - x) / b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sup |F_n - F| over sorted samples s (n) of a continuous F. */
static double ks_continuous(const double *s, int n, double (*cdf)(double, const void *),
                            const void *ctx)
{
    double d = 0;
    for (int i = 0; i < n; i++) {
        double f = cdf(s[i], ctx);
        d = fmax(d, fmax(fabs(f - (double)i / n), fabs(f - (double)(i + 1) / n)));
    }
    return d;
}

static double beta_sym_cdf(double x, const void *ctx)
{
    double a = *(const double *)ctx;
    return beta_cdf(x, a, a);
}

static void test_beta_cdf_sanity(void **state)
{
    (void)state;
    /* closed forms: Beta(1,1) = x, Beta(2,2) = 3x^2 - 2x^3, Beta(.5,.5) = 2/pi asin sqrt x */
    for (double x = 0.01; x < 1; x += 0.07) {
        assert_true(fabs(beta_cdf(x, 1, 1) - x) < 1e-12);
        assert_true(fabs(beta_cdf(x, 2, 2) - (3 * x * x - 2 * x * x * x)) < 1e-12);
        assert_true(fabs(beta_cdf(x, 0.5, 0.5) - 2 / 3.14159265358979323846 * asin(sqrt(x))) < 1e-10);
    }
}

/* mixup's lambda over many steps against Beta(a, a), the generated code's
 * call (nrt_mixup at (seed, step)). */
static void test_mixup_lambda_ks(void **state)
{
    (void)state;
    enum { STEPS = 5000 };
    const double alphas[] = {0.2, 0.4, 1.0, 2.0};
    double *lam = xmalloc(STEPS * sizeof *lam);
    float x[2 * 3], scratch[2 * 3];
    int64_t perm[2];
    for (int k = 0; k < 4; k++) {
        for (int s = 0; s < STEPS; s++) {
            NrtMixInfo info;
            memset(x, 0, sizeof x);
            nrt_mixup(x, 2, 3, alphas[k], 17, (uint64_t)s, perm, &info, scratch);
            lam[s] = info.lambda;
        }
        qsort(lam, STEPS, sizeof *lam, cmp_double);
        double d = ks_continuous(lam, STEPS, beta_sym_cdf, &alphas[k]);
        if (d * sqrt(STEPS) > KS_T)
            print_error("mixup alpha %g: KS D = %.4f > %.4f\n", alphas[k], d, KS_T / sqrt(STEPS));
        assert_true(d * sqrt(STEPS) <= KS_T);
    }
    free(lam);
}

/* The kept-area distribution of cutmix for l ~ Beta(a, a): atoms (kept
 * pixel count -> probability) from a midpoint rule over the Beta quantile
 * (Q quantiles) and every center, mix.c's box rule written out again. */
static void cutmix_area_pmf(double a, int h, int w, double *pmf)
{
    enum { Q = 2000 };
    memset(pmf, 0, (size_t)(h * w + 1) * sizeof *pmf);
    for (int q = 0; q < Q; q++) {
        /* l = Beta quantile of (q + 0.5)/Q, by bisection on the CDF */
        double lo = 0, hi = 1, u = (q + 0.5) / Q;
        for (int it = 0; it < 60; it++) {
            double mid = 0.5 * (lo + hi);
            *(beta_cdf(mid, a, a) < u ? &lo : &hi) = mid;
        }
        double r = sqrt(1.0 - 0.5 * (lo + hi));
        int bh = (int)floor(h * r), bw = (int)floor(w * r);
        for (int cy = 0; cy < h; cy++)
            for (int cx = 0; cx < w; cx++) {
                int y0 = cy - bh / 2, x0 = cx - bw / 2;
                int ys = (y0 + bh > h ? h : y0 + bh) - (y0 < 0 ? 0 : y0);
                int xs = (x0 + bw > w ? w : x0 + bw) - (x0 < 0 ? 0 : x0);
                pmf[h * w - ys * xs] += 1.0 / ((double)Q * h * w);
            }
    }
}

static void test_cutmix_lambda_ks(void **state)
{
    (void)state;
    enum { STEPS = 5000, HH = 28, WW = 28, NN = 2 };
    const double alphas[] = {0.5, 1.0, 2.0};
    static float x[NN * HH * WW], scratch[NN * HH * WW];
    static double pmf[HH * WW + 1], hist[HH * WW + 1];
    int64_t perm[NN];
    for (int k = 0; k < 3; k++) {
        cutmix_area_pmf(alphas[k], HH, WW, pmf);
        memset(hist, 0, sizeof hist);
        double mean = 0, want = 0, want2 = 0;
        for (int s = 0; s < STEPS; s++) {
            NrtMixInfo info;
            nrt_cutmix(x, NN, 1, HH, WW, alphas[k], 23, (uint64_t)s, perm, &info, scratch);
            int64_t kept = HH * WW - (info.y1 - info.y0) * (info.x1 - info.x0);
            assert_true(info.lambda == (float)((double)kept / (HH * WW)));
            hist[kept] += 1.0 / STEPS;
            mean += (double)kept / (HH * WW) / STEPS;
        }
        double d = 0, F = 0, Fn = 0;
        for (int v = 0; v <= HH * WW; v++) {
            F += pmf[v], Fn += hist[v];
            d = fmax(d, fabs(F - Fn));
            want += pmf[v] * v / (HH * WW);
            want2 += pmf[v] * v / (HH * WW) * v / (HH * WW);
        }
        /* a discrete F: the bound is conservative */
        if (d * sqrt(STEPS) > KS_T)
            print_error("cutmix alpha %g: KS D = %.4f\n", alphas[k], d);
        assert_true(d * sqrt(STEPS) <= KS_T);
        near("cutmix E[lambda]", mean, want, sqrt((want2 - want * want) / STEPS));
        /* clipping makes the kept area larger than the drawn l on average */
        assert_true(want > 0.5);
    }
}

/* ---- augmentation --------------------------------------------------------------- */

static double mass(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

/* Content inside a margin of `px` zero pixels: translate(px) and flips only
 * move pixels, so every sample's mass is kept exactly (sums of the same
 * floats, in another order: compared in double, exact for these values). */
static void test_mass_translate_flip(void **state)
{
    (void)state;
    enum { NS = 256, HH = 28, WW = 28, M = 4 };
    static float x[NS * HH * WW], scratch[NS * (HH + 2) * (WW + 2)];
    for (int i = 0; i < NS; i++)
        for (int y = 0; y < HH; y++)
            for (int c = 0; c < WW; c++) {
                bool in = y >= M && y < HH - M && c >= M && c < WW - M;
                x[(i * HH + y) * WW + c] = in ? (float)((i * 31 + y * 7 + c * 3) % 256) / 255.0f : 0;
            }
    double before[NS];
    for (int i = 0; i < NS; i++)
        before[i] = mass(x + i * HH * WW, HH * WW);
    NrtAugmentSpec s = {.translate = M, .flip = true, .flip_vertical = true};
    nrt_augment_geometric(x, NS, 1, HH, WW, &s, 3, 9, 0, scratch);
    int moved = 0;
    for (int i = 0; i < NS; i++) {
        assert_true(mass(x + i * HH * WW, HH * WW) == before[i]);
        NrtAugmentDraw d;
        nrt_augment_draw(&s, HH, WW, 3, 9, i, &d);
        moved += d.dx != 0 || d.dy != 0;
    }
    /* translate's shift is uniform in [-M, M]^2: P(no move) = 1/81 */
    near("translate moved fraction", moved / (double)NS, 80.0 / 81, sqrt(80.0 / 81 / 81 / NS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropout_keep_and_mean),
        cmocka_unit_test(test_dropconnect_conv_mask),
        cmocka_unit_test(test_drop_path_survival),
        cmocka_unit_test(test_gaussian_noise),
        cmocka_unit_test(test_beta_cdf_sanity),
        cmocka_unit_test(test_mixup_lambda_ks),
        cmocka_unit_test(test_cutmix_lambda_ks),
        cmocka_unit_test(test_mass_translate_flip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
