/* test_rng_normal.c - the float normal generator (runtime/rng_normal.c)
 * behind nrt_rng_fill_normal and nrt_rng_normalf.
 *
 * It must be (1) the double Box-Muller of nrt_rng_normal on the same words,
 * to float accuracy, including blocks past 2^32 (gaussian_noise's streams);
 * (2) the same bits for any chunking, thread count, ISA copy (portable and
 * AVX-512, linked here from their static libraries) and compiler (a known
 * hash, the same for the gcc and clang builds); (3) normal: a
 * Kolmogorov-Smirnov test and tail frequencies P(|z| > 3, 4, 5) within 6
 * standard errors at 2^24 draws. Seeds are fixed, so the tests are
 * deterministic; the bounds are what a wrong sampler would break.
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
#include "rng_normal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* |float - double| <= 2e-6 (1 + |z|): the measured worst case is 6e-7. */
static void assert_close(float f, double d)
{
    if (!(fabs((double)f - d) <= 2e-6 * (1.0 + fabs(d))))
        fail_msg("float normal %.9g, double %.9g", (double)f, d);
}

static void test_normal_matches_double(void **state)
{
    (void)state;
    const int64_t n = 1 << 20;
    float *z = xmalloc((size_t)n * sizeof *z);
    nrt_rng_fill_normal(7, NRT_RNG_NOISE, 3, 1, 0, n, 0.0f, 1.0f, z);
    for (int64_t i = 0; i < n; i++)
        assert_close(z[i], nrt_rng_normal(7, NRT_RNG_NOISE, 3, 1, (uint64_t)i));
    /* blocks 2^32 - 3 .. 2^32 + 2: the block index's high bits in the counter */
    const uint64_t first = ((uint64_t)1 << 34) - 10;
    nrt_rng_fill_normal(2, NRT_RNG_NOISE, 9, 4, first, 20, 0.0f, 1.0f, z);
    for (int i = 0; i < 20; i++)
        assert_close(z[i], nrt_rng_normal(2, NRT_RNG_NOISE, 9, 4, first + (uint64_t)i));
    free(z);
}

/* One fill, the same range in ragged chunks, the scalar draw: same bits. */
static void test_normal_chunking(void **state)
{
    (void)state;
    enum { N = 5000 };
    static const int64_t sizes[] = {1, 3, 4, 255, 256, 257, 7, 1024, 2};
    const uint64_t first = 4001;
    float *whole = xmalloc(N * sizeof *whole), *parts = xmalloc(N * sizeof *parts);
    nrt_rng_fill_normal(9, NRT_RNG_AUGMENT, 2, 4, first, N, 0.5f, 2.0f, whole);
    for (int64_t at = 0, k = 0; at < N; k++) {
        int64_t m = sizes[k % 9] < N - at ? sizes[k % 9] : N - at;
        nrt_rng_fill_normal(9, NRT_RNG_AUGMENT, 2, 4, first + (uint64_t)at, m, 0.5f, 2.0f,
                            parts + at);
        at += m;
    }
    assert_memory_equal(whole, parts, N * sizeof *whole);
    for (int64_t i = 0; i < N; i++) {
        float s = nrt_rng_normalf(9, NRT_RNG_AUGMENT, 2, 4, first + (uint64_t)i);
        assert_true(whole[i] == 0.5f + 2.0f * s);
    }
    free(whole);
    free(parts);
}

/* The portable and the AVX-512 copy of the kernel, every block count. */
static void test_normal_isa_copies(void **state)
{
    (void)state;
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (!__builtin_cpu_supports("avx512f"))
        skip();
    NrtNormalKey key = {0x12345678u, 0x9abcdef0u, 17, 3, (uint32_t)NRT_RNG_NOISE << 24};
    float a[4 * NRT_NORMAL_BLOCKS], b[4 * NRT_NORMAL_BLOCKS];
    for (int nb = 1; nb <= NRT_NORMAL_BLOCKS; nb++) {
        for (uint64_t b0 = 0; b0 < (uint64_t)1 << 36; b0 += (uint64_t)1 << 31 | 977u) {
            nrt_normal_blocks_portable(&key, b0, nb, 0.25f, 3.0f, a);
            nrt_normal_blocks_avx512(&key, b0, nb, 0.25f, 3.0f, b);
            assert_memory_equal(a, b, (size_t)(4 * nb) * sizeof *a);
        }
    }
#else
    skip();
#endif
}

/* FNV-1a of the bits of 2^16 draws: a gcc and a clang build must agree. */
static void test_normal_known_hash(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *z = xmalloc(N * sizeof *z);
    nrt_rng_fill_normal(42, NRT_RNG_AUGMENT, 5, 6, 64, N, 0.0f, 0.1f, z);
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; i < N; i++) {
        uint32_t w;
        memcpy(&w, &z[i], sizeof w);
        for (int k = 0; k < 4; k++)
            h = (h ^ (w >> 8 * k & 0xFFu)) * 0x100000001b3u;
    }
    free(z);
    if (h != 0x3ea8709320b72e0fu)
        fail_msg("hash of the draws %#llx", (unsigned long long)h);
}

static void test_normal_thread_count(void **state)
{
    (void)state;
#ifndef _OPENMP
    skip();
#else
    const int64_t n = 1 << 18;
    float *z[2];
    for (int t = 0; t < 2; t++) {
        z[t] = xmalloc((size_t)n * sizeof(float));
        omp_set_num_threads(t + 1);
        nrt_rng_fill_normal(77, NRT_RNG_NOISE, 4, 1, 3, n, 0.0f, 1.0f, z[t]);
    }
    assert_memory_equal(z[0], z[1], (size_t)n * sizeof(float));
    free(z[0]);
    free(z[1]);
    omp_set_num_threads(2);
#endif
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov against Phi: sqrt(n) D < 2.2 (P = 2 exp(-2 2.2^2) = 1.3e-4). */
static void test_normal_ks(void **state)
{
    (void)state;
    const int64_t n = 1 << 22;
    float *z = xmalloc((size_t)n * sizeof *z);
    nrt_rng_fill_normal(11, NRT_RNG_AUGMENT, 1, 2, 64, n, 0.0f, 1.0f, z);
    qsort(z, (size_t)n, sizeof *z, cmp_float);
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double phi = 0.5 * erfc(-(double)z[i] / sqrt(2.0));
        d = fmax(d, fmax((double)(i + 1) / n - phi, phi - (double)i / n));
    }
    free(z);
    assert_true(sqrt((double)n) * d < 2.2);
}

/* P(|z| > t) for t = 3, 4, 5 within 6 binomial standard errors. */
static void test_normal_tails(void **state)
{
    (void)state;
    const int64_t n = 1 << 24;
    static const double p[3] = {2.6997960632601866e-3, 6.3342483666239957e-5,
                                5.7330314375838474e-7};
    float *z = xmalloc((size_t)n * sizeof *z);
    nrt_rng_fill_normal(13, NRT_RNG_NOISE, 8, 0, 0, n, 0.0f, 1.0f, z);
    int64_t count[3] = {0, 0, 0};
    float top = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(z[i]);
        top = a > top ? a : top;
        for (int t = 0; t < 3; t++)
            count[t] += a > (float)(t + 3);
    }
    free(z);
    for (int t = 0; t < 3; t++) {
        double expect = p[t] * (double)n, se = sqrt(expect * (1 - p[t]));
        if (!(fabs((double)count[t] - expect) < 6 * se))
            fail_msg("P(|z| > %d): %lld of %lld, expected %.1f +- %.1f", t + 3,
                     (long long)count[t], (long long)n, expect, se);
    }
    assert_true(top <= 6.77f);   /* sqrt(-2 ln 2^-33), the largest |z| possible */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_matches_double),
        cmocka_unit_test(test_normal_chunking),
        cmocka_unit_test(test_normal_isa_copies),
        cmocka_unit_test(test_normal_known_hash),
        cmocka_unit_test(test_normal_thread_count),
        cmocka_unit_test(test_normal_ks),
        cmocka_unit_test(test_normal_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
