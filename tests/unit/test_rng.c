/* test_rng.c - Philox4x32-10 and the draws built on it (runtime/rng.c).
 *
 * Known answers from Random123's tests/kat_vectors; distributions checked
 * against their moments with bounds of about 6 standard errors (the seeds
 * are fixed, so the tests are deterministic; the bounds are what a wrong
 * sampler would break); thread-count independence with 1 and 2 threads.
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

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines: ctr, key, expected. */
static void test_rng_philox_kat(void **state)
{
    (void)state;
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        nrt_philox4x32_10(kat[t], kat[t] + 4, out);
        for (int k = 0; k < 4; k++)
            assert_int_equal(out[k], kat[t][6 + k]);
    }
}

/* The documented counter layout: key = seed halves, ctr = (element/4,
 * sample, step, purpose << 24), word element % 4. */
static void test_rng_counter_layout(void **state)
{
    (void)state;
    uint64_t seed = 0x0123456789abcdefull;
    uint32_t ctr[4] = {3, 9, 7, 5u << 24}, key[2] = {0x89abcdefu, 0x01234567u}, w[4];
    nrt_philox4x32_10(ctr, key, w);
    for (int k = 0; k < 4; k++)
        assert_int_equal(nrt_rng_u32(seed, 5, 7, 9, 12 + (uint64_t)k), w[k]);
    uint32_t b[4];
    nrt_rng_block(seed, 5, 7, 9, 3, b);
    assert_memory_equal(b, w, sizeof w);
    assert_true(nrt_rng_uniform(seed, 5, 7, 9, 14) == w[2] / 4294967296.0);
    assert_true(nrt_rng_uniformf(seed, 5, 7, 9, 14) == (float)(w[2] >> 8) / 16777216.0f);
}

/* Different purposes, steps and samples give unrelated words. */
static void test_rng_streams_differ(void **state)
{
    (void)state;
    int same_p = 0, same_s = 0, same_n = 0;
    for (uint64_t e = 0; e < 1000; e++) {
        uint32_t v = nrt_rng_u32(1, NRT_RNG_DROPOUT, 5, 2, e);
        same_p += v == nrt_rng_u32(1, NRT_RNG_NOISE, 5, 2, e);
        same_s += v == nrt_rng_u32(1, NRT_RNG_DROPOUT, 6, 2, e);
        same_n += v == nrt_rng_u32(1, NRT_RNG_DROPOUT, 5, 3, e);
    }
    assert_true(same_p + same_s + same_n <= 1);
    assert_true(nrt_rng_u32(1, 1, 0, 0, 0) != nrt_rng_u32(2, 1, 0, 0, 0));
}

static void moments(const float *x, int64_t n, double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        s2 += (x[i] - *mean) * (x[i] - *mean);
    *var = s2 / (double)(n - 1);
}

static void test_rng_uniform_moments(void **state)
{
    (void)state;
    const int64_t n = 1 << 20;
    float *u = xmalloc((size_t)n * sizeof *u);
    nrt_rng_fill_uniform(42, NRT_RNG_NOISE, 0, 0, 0, n, u);
    long bins[64] = {0};
    for (int64_t i = 0; i < n; i++) {
        assert_true(u[i] >= 0.0f && u[i] < 1.0f);
        bins[(int)(u[i] * 64)]++;
    }
    double mean, var;
    moments(u, n, &mean, &var);
    assert_true(fabs(mean - 0.5) < 6 * sqrt(1.0 / 12 / n));
    assert_true(fabs(var - 1.0 / 12) < 6 * sqrt((1.0 / 80 - 1.0 / 144) / n));
    double chi2 = 0, expect = (double)n / 64;
    for (int b = 0; b < 64; b++)
        chi2 += (bins[b] - expect) * (bins[b] - expect) / expect;
    assert_true(chi2 < 63 + 6 * sqrt(2 * 63.0));
    free(u);
}

static void test_rng_normal_moments(void **state)
{
    (void)state;
    const int64_t n = 1 << 20;
    float *z = xmalloc((size_t)n * sizeof *z);
    nrt_rng_fill_normal(7, NRT_RNG_NOISE, 3, 1, 0, n, 0.0f, 1.0f, z);
    double mean, var, s4 = 0;
    long inside = 0;
    moments(z, n, &mean, &var);
    for (int64_t i = 0; i < n; i++) {
        s4 += (double)z[i] * z[i] * z[i] * z[i];
        inside += fabsf(z[i]) < 1.0f;
    }
    assert_true(fabs(mean) < 6 / sqrt((double)n));
    assert_true(fabs(var - 1) < 6 * sqrt(2.0 / n));
    assert_true(fabs(s4 / n - 3) < 6 * sqrt(96.0 / n));          /* Var(z^4) = 105 - 9 */
    assert_true(fabs((double)inside / n - 0.682689492) < 6 * sqrt(0.2167 / n));
    free(z);
}

/* The batch fills are bitwise the scalar draws, from an unaligned start. */
static void test_rng_fill_matches_scalar(void **state)
{
    (void)state;
    enum { N = 37 };
    const uint64_t first = 4001;
    float u[N], z[N], m[N];
    uint8_t b[N];
    nrt_rng_fill_uniform(9, NRT_RNG_AUGMENT, 2, 4, first, N, u);
    nrt_rng_fill_normal(9, NRT_RNG_AUGMENT, 2, 4, first, N, 0.5f, 2.0f, z);
    nrt_rng_fill_bernoulli(9, NRT_RNG_AUGMENT, 2, 4, first, N, 0.3, b);
    nrt_rng_fill_dropout_mask(9, NRT_RNG_AUGMENT, 2, 4, first, N, 0.25, m);
    for (int i = 0; i < N; i++) {
        uint64_t e = first + (uint64_t)i;
        uint32_t w = nrt_rng_u32(9, NRT_RNG_AUGMENT, 2, 4, e);
        assert_true(u[i] == nrt_rng_uniformf(9, NRT_RNG_AUGMENT, 2, 4, e));
        assert_true(z[i] == 0.5f + 2.0f * nrt_rng_normalf(9, NRT_RNG_AUGMENT, 2, 4, e));
        assert_int_equal(b[i], (double)w < 0.3 * 4294967296.0);
        assert_true(m[i] == ((double)w < 0.75 * 4294967296.0 ? (float)(1 / 0.75) : 0.0f));
    }
}

/* The dropout-mask fill (16-block AVX-512 groups where the CPU has it) is
 * bitwise the scalar draw: unaligned starts and ends, group tails, block
 * counters crossing 2^32 (the counter's high word changes inside a group),
 * drop probabilities 0, 1 and ones whose threshold is not an integer. */
static void test_rng_mask_groups(void **state)
{
    (void)state;
    enum { N = 1000 };
    const uint64_t firsts[] = {0, 3, 64, 4001, (((uint64_t)1 << 32) - 20) * 4 + 1};
    const int64_t ns[] = {N, 1, 63, 64, 65, 517};
    const double drops[] = {0.0, 1.0, 0.5, 0.3, 1.0 / 3.0};
    float *m = xmalloc(N * sizeof *m);
    for (size_t f = 0; f < sizeof firsts / sizeof firsts[0]; f++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (size_t d = 0; d < sizeof drops / sizeof drops[0]; d++) {
                double keep = 1.0 - drops[d];
                nrt_rng_fill_dropout_mask(5, NRT_RNG_DROPOUT, 7, 3, firsts[f], ns[k], drops[d], m);
                for (int64_t i = 0; i < ns[k]; i++) {
                    uint32_t w = nrt_rng_u32(5, NRT_RNG_DROPOUT, 7, 3, firsts[f] + (uint64_t)i);
                    float want = (double)w < keep * 4294967296.0 ? (float)(keep > 0 ? 1 / keep : 0)
                                                                 : 0.0f;
                    if (m[i] != want)
                        fail_msg("first %llu n %lld drop %g: element %lld is %g, not %g",
                                 (unsigned long long)firsts[f], (long long)ns[k], drops[d],
                                 (long long)i, (double)m[i], (double)want);
                }
            }
    free(m);
}

static void test_rng_bernoulli_and_mask(void **state)
{
    (void)state;
    const int64_t n = 1 << 18;
    uint8_t *b = xmalloc((size_t)n);
    float *m = xmalloc((size_t)n * sizeof *m);
    nrt_rng_fill_bernoulli(3, NRT_RNG_DROPOUT, 1, 0, 0, n, 0.2, b);
    nrt_rng_fill_dropout_mask(3, NRT_RNG_DROPOUT, 1, 1, 0, n, 0.5, m);
    long ones = 0, kept = 0;
    for (int64_t i = 0; i < n; i++) {
        ones += b[i];
        assert_true(m[i] == 0.0f || m[i] == 2.0f);
        kept += m[i] != 0.0f;
    }
    assert_true(fabs((double)ones / n - 0.2) < 6 * sqrt(0.16 / n));
    assert_true(fabs((double)kept / n - 0.5) < 6 * sqrt(0.25 / n));
    nrt_rng_fill_dropout_mask(3, NRT_RNG_DROPOUT, 1, 1, 0, 1000, 0.0, m);
    for (int i = 0; i < 1000; i++)
        assert_true(m[i] == 1.0f);
    nrt_rng_fill_dropout_mask(3, NRT_RNG_DROPOUT, 1, 1, 0, 1000, 1.0, m);
    nrt_rng_fill_bernoulli(3, NRT_RNG_DROPOUT, 1, 1, 0, 1000, 0.0, b);
    for (int i = 0; i < 1000; i++)
        assert_true(m[i] == 0.0f && b[i] == 0);
    free(b);
    free(m);
}

/* Beta(a, a): mean 1/2, variance 1/(4(2a+1)); gamma: mean = var = shape. */
static void check_beta(double a)
{
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double x = nrt_rng_beta(11, NRT_RNG_MIX, (uint64_t)i, 0, 0, a, a);
        assert_true(x >= 0.0 && x <= 1.0);
        s += x;
        s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean, v = 1.0 / (4 * (2 * a + 1));
    double m4 = 3.0 / (16 * (2 * a + 1) * (2 * a + 3));   /* E (x - 1/2)^4 */
    assert_true(fabs(mean - 0.5) < 6 * sqrt(v / n));
    assert_true(fabs(var - v) < 6 * sqrt((m4 - v * v) / n));
}

static void test_rng_beta_moments(void **state)
{
    (void)state;
    check_beta(0.2);
    check_beta(1.0);
    check_beta(2.0);
}

static void check_gamma(double k)
{
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double x = nrt_rng_gamma(5, NRT_RNG_MIX, 1, 2, (uint64_t)i, k);
        assert_true(x >= 0.0 && isfinite(x));
        s += x;
        s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(fabs(mean - k) < 6 * sqrt(k / n));
    assert_true(fabs(var - k) < 6 * sqrt((2 * k * k + 6 * k) / n));   /* m4 = 3k^2 + 6k */
}

static void test_rng_gamma_moments(void **state)
{
    (void)state;
    check_gamma(0.5);
    check_gamma(3.0);
    assert_true(isnan(nrt_rng_gamma(1, 1, 0, 0, 0, 0.0)));
    assert_true(isnan(nrt_rng_beta(1, 1, 0, 0, 0, 1.0, -1.0)));
    assert_true(isnan(nrt_rng_beta(1, 1, 0, 0, 0, INFINITY, 1.0)));
    /* tiny shapes: no 0/0 */
    for (uint64_t e = 0; e < 100; e++) {
        double x = nrt_rng_beta(1, NRT_RNG_MIX, 0, 0, e, 0.01, 0.01);
        assert_true(x >= 0.0 && x <= 1.0);
    }
}

/* Uniform integers: chi-square for a small bound; no modulo bias for a
 * bound of 3 * 2^62 (x mod bound would put half the mass below 2^62). */
static void test_rng_below(void **state)
{
    (void)state;
    long bins[7] = {0};
    const int n = 70000;
    for (int i = 0; i < n; i++) {
        uint64_t k = nrt_rng_below(8, NRT_RNG_SHUFFLE, 0, 0, (uint64_t)i, 7);
        assert_true(k < 7);
        bins[k]++;
    }
    double chi2 = 0;
    for (int b = 0; b < 7; b++)
        chi2 += (bins[b] - n / 7.0) * (bins[b] - n / 7.0) / (n / 7.0);
    assert_true(chi2 < 6 + 6 * sqrt(12.0));
    uint64_t big = 3ull << 62;
    long low = 0;
    for (int i = 0; i < n; i++) {
        uint64_t k = nrt_rng_below(8, NRT_RNG_SHUFFLE, 1, 0, (uint64_t)i, big);
        assert_true(k < big);
        low += k < (1ull << 62);
    }
    assert_true(fabs((double)low / n - 1.0 / 3) < 6 * sqrt(2.0 / 9 / n));
    assert_true(nrt_rng_below(1, 1, 0, 0, 0, 0) == 0);
    assert_true(nrt_rng_below(1, 1, 0, 0, 0, 1) == 0);
}

static void test_rng_permutation_valid(void **state)
{
    (void)state;
    enum { N = 1000 };
    int64_t p[N], q[N];
    nrt_rng_permutation(1, NRT_RNG_SHUFFLE, 0, N, p);
    nrt_rng_permutation(1, NRT_RNG_SHUFFLE, 1, N, q);
    char seen[N] = {0};
    int fixed = 0, same = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] >= 0 && p[i] < N && !seen[p[i]]);
        seen[p[i]] = 1;
        fixed += p[i] == i;
        same += p[i] == q[i];
    }
    assert_true(fixed < 10 && same < 10);   /* Poisson(1) each */
    int64_t one = 5;
    nrt_rng_permutation(1, NRT_RNG_SHUFFLE, 0, 1, &one);
    assert_int_equal(one, 0);
    nrt_rng_permutation(1, NRT_RNG_SHUFFLE, 0, 0, NULL);
}

/* All 24 permutations of 4 elements equally often over 24000 steps. */
static void test_rng_permutation_uniform(void **state)
{
    (void)state;
    long count[256] = {0};
    const int n = 24000;
    for (int s = 0; s < n; s++) {
        int64_t p[4];
        nrt_rng_permutation(3, NRT_RNG_MIX, (uint64_t)s, 4, p);
        count[p[0] << 6 | p[1] << 4 | p[2] << 2 | p[3]]++;
    }
    double chi2 = 0;
    int kinds = 0;
    for (int c = 0; c < 256; c++) {
        if (!count[c])
            continue;
        kinds++;
        chi2 += (count[c] - 1000.0) * (count[c] - 1000.0) / 1000.0;
    }
    assert_int_equal(kinds, 24);
    assert_true(chi2 < 23 + 6 * sqrt(46.0));
}

static void test_rng_init(void **state)
{
    (void)state;
    const int64_t n = 100000;
    float *w = xmalloc((size_t)n * sizeof *w), *v = xmalloc(100 * sizeof *v);
    nrt_init_uniform(w, n, 0.5f, 1, 3);
    double mean, var;
    moments(w, n, &mean, &var);
    for (int64_t i = 0; i < n; i++)
        assert_true(w[i] >= -0.5f && w[i] < 0.5f);
    assert_true(fabs(mean) < 6 * sqrt(0.25 / 3 / n));
    assert_true(fabs(var - 0.25 / 3) < 0.02 * 0.25 / 3);
    nrt_init_normal(w, n, 0.01f, 1, 3);
    moments(w, n, &mean, &var);
    assert_true(fabs(mean) < 6 * 0.01 / sqrt((double)n));
    assert_true(fabs(sqrt(var) - 0.01) < 0.0002);
    /* element i depends only on (seed, param_id, i) */
    nrt_init_normal(v, 100, 0.01f, 1, 3);
    assert_memory_equal(v, w, 100 * sizeof *v);
    nrt_init_normal(v, 100, 0.01f, 1, 4);
    assert_true(memcmp(v, w, 100 * sizeof *v) != 0);
    nrt_init_constant(w, n, 0.25f);
    for (int64_t i = 0; i < n; i++)
        assert_true(w[i] == 0.25f);
    free(w);
    free(v);
}

/* The same seed gives the same bytes with 1 and 2 threads. */
static void test_rng_thread_count(void **state)
{
    (void)state;
#ifndef _OPENMP
    skip();
#else
    const int64_t n = 1 << 18;
    float *a[2], *b[2];
    uint8_t *m[2];
    for (int t = 0; t < 2; t++) {
        a[t] = xmalloc((size_t)n * sizeof(float));
        b[t] = xmalloc((size_t)n * sizeof(float));
        m[t] = xmalloc((size_t)n);
        omp_set_num_threads(t + 1);
        nrt_init_normal(a[t], n, 0.1f, 77, 2);
        nrt_init_uniform(b[t], n, 0.3f, 77, 5);
        nrt_rng_fill_bernoulli(77, NRT_RNG_DROPOUT, 4, 1, 3, n, 0.9, m[t]);
    }
    assert_memory_equal(a[0], a[1], (size_t)n * sizeof(float));
    assert_memory_equal(b[0], b[1], (size_t)n * sizeof(float));
    assert_memory_equal(m[0], m[1], (size_t)n);
    for (int t = 0; t < 2; t++) {
        free(a[t]);
        free(b[t]);
        free(m[t]);
    }
    omp_set_num_threads(2);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_philox_kat),
        cmocka_unit_test(test_rng_counter_layout),
        cmocka_unit_test(test_rng_streams_differ),
        cmocka_unit_test(test_rng_uniform_moments),
        cmocka_unit_test(test_rng_normal_moments),
        cmocka_unit_test(test_rng_fill_matches_scalar),
        cmocka_unit_test(test_rng_mask_groups),
        cmocka_unit_test(test_rng_bernoulli_and_mask),
        cmocka_unit_test(test_rng_beta_moments),
        cmocka_unit_test(test_rng_gamma_moments),
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_rng_permutation_valid),
        cmocka_unit_test(test_rng_permutation_uniform),
        cmocka_unit_test(test_rng_init),
        cmocka_unit_test(test_rng_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
