/* test_preprocess_stats.c - preprocessing statistics (runtime/preprocess_stats.c):
 * channel mean/std and the mean image against direct double formulas, the
 * Jacobi eigensolver (A V = V diag(l), V orthonormal), ZCA whitening
 * (the whitened data's own covariance ~ identity), thread independence,
 * and Fashion-MNIST's known statistics (0.2860, 0.3530).
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

#ifdef _OPENMP
#include <omp.h>
#endif

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* Images whose values are correlated mixtures of latent normals. */
static uint8_t *make_images(int64_t count, int64_t d, uint64_t seed)
{
    uint8_t *img = xmalloc((size_t)(count * d));
    for (int64_t n = 0; n < count; n++) {
        double z[3];
        for (int k = 0; k < 3; k++)
            z[k] = nrt_rng_normal(seed, 1, 0, (uint64_t)n, (uint64_t)k);
        for (int64_t k = 0; k < d; k++) {
            double e = nrt_rng_normal(seed, 2, 0, (uint64_t)n, (uint64_t)k);
            double v = 120 + 30 * z[k % 3] + 15 * z[(k + 1) % 3] * (k % 2 ? 1 : -1) + 8 * e + 3 * (double)k;
            img[n * d + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
        }
    }
    return img;
}

static void test_stats_channels_and_mean(void **state)
{
    (void)state;
    const int64_t count = 300, c = 3, hw = 10, d = c * hw;
    uint8_t *img = make_images(count, d, 1);
    double mean[3], std[3], mimg[30];
    NrtError err = {0};
    assert_int_equal(nrt_stats_channels(img, count, c, hw, mean, std, &err), NRT_OK);
    assert_int_equal(nrt_stats_mean_image(img, count, d, mimg, &err), NRT_OK);
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0, m;
        for (int64_t n = 0; n < count; n++)
            for (int64_t k = 0; k < hw; k++)
                s += img[n * d + ch * hw + k] / 255.0;
        m = s / (double)(count * hw);
        for (int64_t n = 0; n < count; n++)
            for (int64_t k = 0; k < hw; k++) {
                double x = img[n * d + ch * hw + k] / 255.0 - m;
                s2 += x * x;
            }
        assert_true(fabs(mean[ch] - m) < 1e-12);
        assert_true(fabs(std[ch] - sqrt(s2 / (double)(count * hw))) < 1e-12);
    }
    for (int64_t k = 0; k < d; k++) {
        double s = 0;
        for (int64_t n = 0; n < count; n++)
            s += img[n * d + k] / 255.0;
        assert_true(fabs(mimg[k] - s / (double)count) < 1e-12);
    }
    free(img);
}

static void test_stats_eigen(void **state)
{
    (void)state;
    enum { N = 12 };
    double a[N * N], a0[N * N], v[N * N], l[N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++)
            a[i * N + j] = a[j * N + i] = nrt_rng_normal(3, 1, 0, (uint64_t)i, (uint64_t)j);
    memcpy(a0, a, sizeof a);
    assert_true(nrt_eigen_sym(N, a, l, v) >= 1);
    for (int k = 0; k + 1 < N; k++)
        assert_true(l[k] <= l[k + 1]);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            double av = 0, vv = 0;
            for (int j = 0; j < N; j++) {
                av += a0[i * N + j] * v[j * N + k];
                vv += v[j * N + i] * v[j * N + k];
            }
            assert_true(fabs(av - l[k] * v[i * N + k]) < 1e-10);   /* A v_k = l_k v_k */
            assert_true(fabs(vv - (i == k)) < 1e-12);              /* V^T V = I */
        }
    double z[4] = {0}, lz[2], vz[4];
    assert_int_equal(nrt_eigen_sym(2, z, lz, vz), 0);
    assert_true(lz[0] == 0 && lz[1] == 0 && vz[0] == 1 && vz[3] == 1);
}

/* A v_k = l_k v_k, V^T V = I, ascending, within tol of a's scale. */
static void check_eigen(int64_t n, const double *a, const double *l, const double *v, double tol)
{
    for (int64_t k = 0; k + 1 < n; k++)
        assert_true(l[k] <= l[k + 1]);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) {
            double av = 0, vv = 0;
            for (int64_t j = 0; j < n; j++) {
                av += a[i * n + j] * v[j * n + k];
                vv += v[j * n + i] * v[j * n + k];
            }
            if (fabs(av - l[k] * v[i * n + k]) > tol || fabs(vv - (double)(i == k)) > tol)
                fail_msg("n %lld: A v or V^T V off at (%lld, %lld)", (long long)n, (long long)i,
                         (long long)k);
        }
}

/* The QL solver (what ZCA uses) against the definition and against the
 * Jacobi solver's eigenvalues: a random symmetric matrix, a rank-deficient
 * covariance with repeated zero eigenvalues, 1 x 1 and zero matrices. */
static void test_stats_eigen_ql(void **state)
{
    (void)state;
    enum { N = 40, R = 5 };
    static double a[N * N], a0[N * N], v[N * N], l[N], lj[N], vj[N * N], x[R * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++)
            a[i * N + j] = a[j * N + i] = nrt_rng_normal(4, 1, 0, (uint64_t)i, (uint64_t)j);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {     /* X^T X of R samples: rank R, N - R zero eigenvalues */
            for (int k = 0; k < R * N; k++)
                x[k] = nrt_rng_normal(5, 1, 0, 0, (uint64_t)k);
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double acc = 0;
                    for (int r = 0; r < R; r++)
                        acc += x[r * N + i] * x[r * N + j];
                    a[i * N + j] = acc;
                }
        }
        memcpy(a0, a, sizeof a);
        assert_int_equal(nrt_eigen_sym_ql(N, a, l, v), 0);
        assert_memory_equal(a, a0, sizeof a);      /* a is kept */
        check_eigen(N, a0, l, v, 1e-10);
        assert_true(nrt_eigen_sym(N, a, lj, vj) >= 0);
        for (int k = 0; k < N; k++)
            assert_true(fabs(l[k] - lj[k]) < 1e-10 * (1.0 + fabs(lj[k])));
    }
    double one = 2.5, l1, v1;
    assert_int_equal(nrt_eigen_sym_ql(1, &one, &l1, &v1), 0);
    assert_true(l1 == 2.5 && v1 == 1.0);
    double z[9] = {0}, lz[3], vz[9];
    assert_int_equal(nrt_eigen_sym_ql(3, z, lz, vz), 0);
    check_eigen(3, z, lz, vz, 1e-15);
}

/* The whitened data's covariance is the identity (eps tiny). */
static void test_stats_zca_whitens(void **state)
{
    (void)state;
    const int64_t count = 5000, d = 8;
    uint8_t *img = make_images(count, d, 5);
    double mean[8], w[64], cov[64] = {0};
    NrtError err = {0};
    assert_int_equal(nrt_stats_zca(img, count, d, 1e-10, mean, w, &err), NRT_OK);
    double *y = xmalloc((size_t)(count * d) * sizeof *y);
    for (int64_t n = 0; n < count; n++)
        for (int64_t i = 0; i < d; i++) {
            double acc = 0;
            for (int64_t j = 0; j < d; j++)
                acc += w[i * d + j] * (img[n * d + j] / 255.0 - mean[j]);
            y[n * d + i] = acc;
        }
    for (int64_t n = 0; n < count; n++)
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++)
                cov[i * d + j] += y[n * d + i] * y[n * d + j] / (double)count;
    for (int64_t i = 0; i < d; i++) {
        for (int64_t j = 0; j < d; j++)
            assert_true(fabs(cov[i * d + j] - (i == j)) < 1e-6);
        for (int64_t j = 0; j < d; j++)
            assert_true(fabs(w[i * d + j] - w[j * d + i]) < 1e-9);   /* ZCA's W is symmetric */
    }
    free(y);
    free(img);
}

static void test_stats_threads(void **state)
{
    (void)state;
#ifndef _OPENMP
    skip();
#else
    const int64_t count = 600, d = 48;
    uint8_t *img = make_images(count, d, 9);
    double *w[2], m[2][48], cm[2][3], cs[2][3];
    NrtError err = {0};
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        w[t] = xmalloc((size_t)(d * d) * sizeof(double));
        assert_int_equal(nrt_stats_zca(img, count, d, 0.01, m[t], w[t], &err), NRT_OK);
        assert_int_equal(nrt_stats_channels(img, count, 3, 16, cm[t], cs[t], &err), NRT_OK);
    }
    assert_memory_equal(w[0], w[1], (size_t)(d * d) * sizeof(double));
    assert_memory_equal(m[0], m[1], sizeof m[0]);
    assert_memory_equal(cm[0], cm[1], sizeof cm[0]);
    assert_memory_equal(cs[0], cs[1], sizeof cs[0]);
    free(w[0]);
    free(w[1]);
    free(img);
    omp_set_num_threads(2);
#endif
}

static void test_stats_errors(void **state)
{
    (void)state;
    uint8_t img[4] = {0};
    double m[4], s[4], w[16];
    NrtError err = {0};
    assert_int_equal(nrt_stats_channels(img, 0, 1, 4, m, s, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "at least one image"));
    assert_int_equal(nrt_stats_channels(img, 1, 0, 4, m, s, &err), NRT_ERR_ARG);
    assert_int_equal(nrt_stats_mean_image(NULL, 1, 4, m, &err), NRT_ERR_ARG);
    assert_int_equal(nrt_stats_zca(img, 1, 4, 0.0, m, w, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "eps > 0"));
    assert_int_equal(nrt_stats_zca(img, 1, 5000, 0.1, m, w, &err), NRT_ERR_ARG);
    /* a constant channel: std 0, no NaN */
    assert_int_equal(nrt_stats_channels(img, 1, 1, 4, m, s, &err), NRT_OK);
    assert_true(m[0] == 0.0 && s[0] == 0.0);
}

/* The values LANGUAGE.md quotes for standardize on Fashion-MNIST. */
static void test_stats_fashion_mnist(void **state)
{
    (void)state;
    NrtDataset ds;
    NrtError err = {0};
    NrtStatus st = nrt_dataset_load_fashion_mnist(NULL, &ds, &err);
    if (st == NRT_ERR_IO)
        skip();
    assert_int_equal(st, NRT_OK);
    double mean, std;
    assert_int_equal(nrt_stats_channels(ds.train.images, ds.train.count, 1, 784, &mean, &std, &err),
                     NRT_OK);
    assert_true(fabs(mean - 0.2860) < 5e-5);
    assert_true(fabs(std - 0.3530) < 5e-5);
    nrt_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_channels_and_mean),
        cmocka_unit_test(test_stats_eigen),
        cmocka_unit_test(test_stats_eigen_ql),
        cmocka_unit_test(test_stats_zca_whitens),
        cmocka_unit_test(test_stats_threads),
        cmocka_unit_test(test_stats_errors),
        cmocka_unit_test(test_stats_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
