/* test_gemm.c - nrt_sgemm and the dense kernels against their references.
 *
 * Every fast result is compared element by element with the double-precision
 * reference, within the classic bound for a K-term float dot product:
 * |err| <= 2 * gamma_K * (|alpha| |A||B| + |beta C|) with gamma_K = K u,
 * u = 2^-24 (plus one rounding of the result). Shapes cover all four
 * transposes, edge tiles, several K slices, more than one packed block in
 * M and N, the model shapes, leading dimensions above the minimum, both
 * kernels (AVX-512 and portable), and bitwise equality across thread counts.
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

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static float frand(void)   /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (float)((rng_state >> 40) * (1.0 / (1u << 23)) - 1.0);
}

static float *rand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

typedef struct Case {
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    int64_t pad;   /* added to every leading dimension */
    const NrtEpilogue *ep;
} Case;

/* Max over C of |fast - ref| / bound; <= 1 passes. */
static double check_case(const Case *t, NrtWorkspace *ws)
{
    int64_t lda = (t->ta ? t->m : t->k) + t->pad, ldb = (t->tb ? t->k : t->n) + t->pad;
    int64_t ldc = t->n + t->pad;
    size_t na = (size_t)((t->ta ? t->k : t->m) * lda), nb = (size_t)((t->tb ? t->n : t->k) * ldb);
    size_t nc = (size_t)(t->m * ldc);
    float *a = rand_buf(na), *b = rand_buf(nb), *c0 = rand_buf(nc);
    float *c = malloc(nc * sizeof(float)), *r = malloc(nc * sizeof(float));
    memcpy(c, c0, nc * sizeof(float));
    memcpy(r, c0, nc * sizeof(float));
    if (t->beta == 0.0f)   /* C must not be read: NaN would show */
        for (size_t i = 0; i < nc; i++)
            c[i] = NAN;
    nrt_sgemm_ex(t->ta, t->tb, t->m, t->n, t->k, t->alpha, a, lda, b, ldb, t->beta, c, ldc, t->ep, ws);
    nrt_sgemm_ref_ex(t->ta, t->tb, t->m, t->n, t->k, t->alpha, a, lda, b, ldb, t->beta, r, ldc, t->ep);
    double worst = 0.0, u = ldexp(1.0, -24);
    for (int64_t i = 0; i < t->m; i++)
        for (int64_t j = 0; j < t->n; j++) {
            double mag = 0.0;
            for (int64_t p = 0; p < t->k; p++) {
                float av = t->ta ? a[p * lda + i] : a[i * lda + p];
                float bv = t->tb ? b[j * ldb + p] : b[p * ldb + j];
                mag += fabs((double)av * bv);
            }
            mag = fabs(t->alpha) * mag + fabs(t->beta * c0[i * ldc + j]);
            if (t->ep && t->ep->bias)
                mag += 1.0;
            double bound = 2.0 * (t->k + 2) * u * mag + 1e-30;
            double e = fabs((double)c[i * ldc + j] - r[i * ldc + j]) / bound;
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    for (int64_t i = 0; i < t->m; i++)   /* padding columns untouched */
        for (int64_t j = t->n; j < ldc; j++)
            assert_true(c[i * ldc + j] == c0[i * ldc + j] || (t->beta == 0.0f && isnan(c[i * ldc + j])));
    free(a), free(b), free(c0), free(c), free(r);
    return worst;
}

static void expect_ok(const Case *t, NrtWorkspace *ws)
{
    double w = check_case(t, ws);
    if (!(w <= 1.0))
        fail_msg("M=%lld N=%lld K=%lld ta=%d tb=%d alpha=%g beta=%g pad=%lld: error %.3g x bound",
                 (long long)t->m, (long long)t->n, (long long)t->k, t->ta, t->tb, t->alpha,
                 t->beta, (long long)t->pad, w);
}

static const int64_t shapes[][3] = {
    {1, 1, 1}, {1, 1, 7}, {2, 3, 5}, {8, 32, 16}, {9, 33, 17}, {17, 33, 65}, {7, 31, 300},
    {1, 512, 784}, {300, 5, 40}, {5, 300, 513}, {1030, 40, 20}, {9, 2100, 7},
    {64, 512, 784}, {64, 256, 512}, {64, 10, 256}, {6, 784, 25}, {16, 100, 150},
    {16, 784, 144}, {32, 196, 144}, {64, 49, 288}, {256, 256, 256}, {130, 129, 257},
    {4, 70, 33}, {3, 65, 17},   /* small M: the no-packing path (gemm.c) */
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

static void run_all_shapes(void)
{
    for (int s = 0; s < NSHAPES; s++)
        for (int tr = 0; tr < 4; tr++) {
            Case t = { tr & 1, tr >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f, 0, NULL };
            expect_ok(&t, NULL);
        }
}

static void test_shapes_all_transposes(void **state)
{
    (void)state;
    nrt_sgemm_set_isa(NRT_ISA_AUTO);
    run_all_shapes();
}

static void test_shapes_portable_kernel(void **state)
{
    (void)state;
    assert_int_equal(nrt_sgemm_set_isa(NRT_ISA_PORTABLE), NRT_ISA_PORTABLE);
    assert_int_equal(nrt_sgemm_isa(), NRT_ISA_PORTABLE);
    run_all_shapes();
    nrt_sgemm_set_isa(NRT_ISA_AUTO);
}

static void test_alpha_beta_and_strides(void **state)
{
    (void)state;
    static const float alphas[] = {1.0f, -0.5f, 2.0f}, betas[] = {0.0f, 1.0f, 0.3f};
    static const int64_t dims[][3] = {{13, 45, 70}, {40, 70, 300}, {3, 7, 2}};
    for (int isa = 0; isa < 2; isa++) {
        nrt_sgemm_set_isa(isa ? NRT_ISA_PORTABLE : NRT_ISA_AUTO);
        for (int d = 0; d < 3; d++)
            for (int ia = 0; ia < 3; ia++)
                for (int ib = 0; ib < 3; ib++)
                    for (int tr = 0; tr < 4; tr++) {
                        Case t = { tr & 1, tr >> 1, dims[d][0], dims[d][1], dims[d][2],
                                   alphas[ia], betas[ib], 3 + d * 2, NULL };
                        expect_ok(&t, NULL);
                    }
    }
    nrt_sgemm_set_isa(NRT_ISA_AUTO);
}

static void test_epilogue(void **state)
{
    (void)state;
    float bias[2200];
    for (int i = 0; i < 2200; i++)
        bias[i] = frand();
    for (int kind = 1; kind <= 2; kind++)
        for (int act = 0; act <= 1; act++) {
            NrtEpilogue ep = { (NrtBiasKind)kind, bias, (NrtAct)act };
            for (int s = 0; s < NSHAPES; s++) {
                Case t = { false, s & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                           1.0f, s % 3 == 0 ? 0.5f : 0.0f, s % 2, &ep };
                expect_ok(&t, NULL);
            }
        }
}

/* K == 0: the product is empty, C = beta*C + bias. */
static void test_k_zero(void **state)
{
    (void)state;
    float c[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {10, 20, 30};
    NrtEpilogue ep = { NRT_BIAS_COL, bias, NRT_ACT_NONE };
    nrt_sgemm_ex(false, false, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, c, 3, &ep, NULL);
    const float want[6] = {12, 24, 36, 18, 30, 42};
    for (int i = 0; i < 6; i++)
        assert_true(c[i] == want[i]);
    assert_int_equal(nrt_sgemm_workspace_floats(2, 3, 0), 0);
}

/* The caller's workspace: exact size, unaligned start, nothing written past
 * its end, and the same bits as the self-allocating call. */
static void test_workspace(void **state)
{
    (void)state;
    int64_t m = 70, n = 90, k = 600;
    size_t need = nrt_sgemm_workspace_floats(m, n, k);
    float *buf = malloc((need + 9) * sizeof(float));
    for (size_t i = 0; i < need + 9; i++)
        buf[i] = -7.0f;
    NrtWorkspace ws = { buf + 1, need };
    float *a = rand_buf((size_t)(m * k)), *b = rand_buf((size_t)(k * n));
    float *c1 = calloc((size_t)(m * n), sizeof(float)), *c2 = calloc((size_t)(m * n), sizeof(float));
    nrt_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c1, n, &ws);
    nrt_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c2, n, NULL);
    assert_memory_equal(c1, c2, (size_t)(m * n) * sizeof(float));
    assert_true(buf[0] == -7.0f);
    for (size_t i = need + 1; i < need + 9; i++)
        assert_true(buf[i] == -7.0f);
    Case t = { true, true, m, n, k, 1.0f, 0.0f, 0, NULL };
    expect_ok(&t, &ws);
    free(buf), free(a), free(b), free(c1), free(c2);
}

/* A row of C has the same bits whether it is computed alone (M <= 4: the
 * no-packing path) or within a large M (packed): generated models promise
 * that predict() of one sample equals its outputs in a full batch. Both
 * B layouts, K over one slice, bias + ReLU epilogue, beta 0 and 0.5. */
static void test_small_m_rows_match(void **state)
{
    (void)state;
    static const int64_t dims[][2] = {{512, 784}, {10, 64}, {37, 300}, {130, 513}};
    for (int d = 0; d < 4; d++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t m = 40, n = dims[d][0], k = dims[d][1];
            float *a = rand_buf((size_t)(m * k)), *b = rand_buf((size_t)(k * n));
            float *bias = rand_buf((size_t)n), *c0 = rand_buf((size_t)(m * n));
            float *big = malloc((size_t)(m * n) * sizeof(float));
            float *small = malloc((size_t)(4 * n) * sizeof(float));
            NrtEpilogue ep = { NRT_BIAS_COL, bias, NRT_ACT_RELU };
            float beta = d % 2 ? 0.5f : 0.0f;
            memcpy(big, c0, (size_t)(m * n) * sizeof(float));
            nrt_sgemm_ex(false, tb, m, n, k, 1.0f, a, k, b, tb ? k : n, beta, big, n, &ep, NULL);
            for (int64_t rows = 1; rows <= 4; rows += 3) {
                memcpy(small, c0, (size_t)(rows * n) * sizeof(float));
                nrt_sgemm_ex(false, tb, rows, n, k, 1.0f, a, k, b, tb ? k : n, beta, small, n, &ep,
                             NULL);
                assert_memory_equal(small, big, (size_t)(rows * n) * sizeof(float));
            }
            free(a), free(b), free(bias), free(c0), free(big), free(small);
        }
}

/* Bitwise identical results with 1 and 2 threads (and 3). */
static void test_thread_count_bitwise(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const int64_t dims[][3] = {{300, 280, 270}, {64, 512, 784}, {1030, 300, 40},
                                      {3, 3000, 400}};
    for (int d = 0; d < 4; d++) {
        int64_t m = dims[d][0], n = dims[d][1], k = dims[d][2];
        float *a = rand_buf((size_t)(m * k)), *b = rand_buf((size_t)(k * n));
        float *c[3];
        for (int th = 1; th <= 3; th++) {
            c[th - 1] = calloc((size_t)(m * n), sizeof(float));
            omp_set_num_threads(th);
            nrt_sgemm(false, d % 2 == 1, m, n, k, 1.0f, a, k, b, d % 2 == 1 ? k : n, 0.0f, c[th - 1],
                      n, NULL);
        }
        omp_set_num_threads(2);
        assert_memory_equal(c[0], c[1], (size_t)(m * n) * sizeof(float));
        assert_memory_equal(c[0], c[2], (size_t)(m * n) * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(c[i]);
        free(a), free(b);
    }
#else
    skip();
#endif
}

/* The small-M path (batch-1 inference) split over threads: with the
 * region cost forced to 0 (every split pays) and to "never", on 1-3
 * threads, M = 1 and 4, both B layouts, bias + ReLU: every result has the
 * bits of the same rows inside a packed M = 40 product, and those are
 * within the reference's bound (run_all_shapes checks the shapes). */
static void test_small_m_threads(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const int64_t dims[][2] = {{512, 784}, {256, 512}, {10, 256}, {1000, 70}};
    for (int d = 0; d < 4; d++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t m = 40, n = dims[d][0], k = dims[d][1];
            float *a = rand_buf((size_t)(m * k)), *b = rand_buf((size_t)(k * n));
            float *bias = rand_buf((size_t)n), *big = malloc((size_t)(m * n) * sizeof(float));
            float *small = malloc((size_t)(4 * n) * sizeof(float));
            NrtEpilogue ep = { NRT_BIAS_COL, bias, NRT_ACT_RELU };
            nrt_sgemm_ex(false, tb, m, n, k, 1.0f, a, k, b, tb ? k : n, 0.0f, big, n, &ep, NULL);
            for (int forced = 0; forced < 2; forced++)
                for (int th = 1; th <= 3; th++)
                    for (int64_t rows = 1; rows <= 4; rows += 3) {
                        nrt_par_set_region_ns(forced ? INT64_MAX : 0);
                        omp_set_num_threads(th);
                        memset(small, 0xff, (size_t)(4 * n) * sizeof(float));   /* NaNs */
                        nrt_sgemm_ex(false, tb, rows, n, k, 1.0f, a, k, b, tb ? k : n, 0.0f,
                                     small, n, &ep, NULL);
                        omp_set_num_threads(2);
                        assert_memory_equal(small, big, (size_t)(rows * n) * sizeof(float));
                    }
            nrt_par_set_region_ns(-1);
            free(a), free(b), free(bias), free(big), free(small);
        }
#else
    skip();
#endif
}

/* nrt_par_threads: a forced cost of 0 gives min(threads, parts), "never"
 * gives 1, so does a call inside a parallel region; the measured cost of a
 * 2-thread region is positive and finite. */
static void test_par_decision(void **state)
{
    (void)state;
#ifdef _OPENMP
    omp_set_num_threads(3);
    nrt_par_set_region_ns(0);
    assert_int_equal(nrt_par_threads(1000.0, 8), 3);
    assert_int_equal(nrt_par_threads(1000.0, 2), 2);
    assert_int_equal(nrt_par_threads(1000.0, 1), 1);
    int inner = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp master
        inner = nrt_par_threads(1e9, 8);
    }
    assert_int_equal(inner, 1);
    nrt_par_set_region_ns(1000);
    assert_int_equal(nrt_par_threads(1e9, 8), 3);
    assert_int_equal(nrt_par_threads(4000.0, 8), 1);   /* saves 2.7 us < 3 x 1 us */
    nrt_par_set_region_ns(INT64_MAX);
    assert_int_equal(nrt_par_threads(1e12, 8), 1);
    nrt_par_set_region_ns(-1);
    int64_t ns = nrt_par_region_ns(2);
    assert_true(ns > 0 && ns < INT64_MAX);
    assert_int_equal(nrt_par_region_ns(2), ns);   /* measured once */
    omp_set_num_threads(2);
#else
    assert_int_equal(nrt_par_threads(1e12, 8), 1);
#endif
}

/* The two drivers agree bit for bit: rows of a product with M <= 512 (the
 * column split, threads packing privately) equal the same rows of a taller
 * product (M > 512: the blocked driver sharing packed panels), with bias +
 * ReLU epilogues, K over several slices, every transpose, 1-3 threads, and
 * a workspace sized for 2 threads (3 must fall back to what fits, never
 * write past it). */
static void test_drivers_agree(void **state)
{
    (void)state;
#ifdef _OPENMP
    int64_t big = 600, m = 512, n = 300, k = 530;
    size_t need = nrt_sgemm_workspace_floats_threads(m, n, k, 2);
    assert_true(need > nrt_sgemm_workspace_floats(m, n, k));
    float *buf = malloc((need + 8) * sizeof(float));
    for (int tr = 0; tr < 4; tr++) {
        bool ta = tr & 1, tb = tr & 2;
        float *a = rand_buf((size_t)(big * k)), *b = rand_buf((size_t)(k * n));
        float *bias = rand_buf((size_t)n), *cb = calloc((size_t)(big * n), sizeof(float));
        NrtEpilogue ep = { NRT_BIAS_COL, bias, NRT_ACT_RELU };
        nrt_sgemm_ex(ta, tb, big, n, k, 1.0f, a, ta ? big : k, b, tb ? k : n, 0.0f, cb, n, &ep,
                     NULL);
        for (int th = 1; th <= 3; th++) {
            float *cs = calloc((size_t)(m * n), sizeof(float));
            for (size_t i = 0; i < need + 8; i++)
                buf[i] = -7.0f;
            NrtWorkspace ws = { buf, need };
            omp_set_num_threads(th);
            /* op(A)'s first m rows: with ta, the first m columns of the k x big A */
            nrt_sgemm_ex(ta, tb, m, n, k, 1.0f, a, ta ? big : k, b, tb ? k : n, 0.0f, cs, n, &ep,
                         &ws);
            omp_set_num_threads(2);
            assert_memory_equal(cs, cb, (size_t)(m * n) * sizeof(float));
            for (size_t i = need; i < need + 8; i++)
                assert_true(buf[i] == -7.0f);
            free(cs);
        }
        free(a), free(b), free(bias), free(cb);
    }
    free(buf);
#else
    skip();
#endif
}

/* ---- dense layer ------------------------------------------------------ */

static void expect_close(const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs((double)want[i]))))
            fail_msg("element %zu: %.9g vs %.9g", i, (double)got[i], (double)want[i]);
}

static void dense_case(int64_t n, int64_t in, int64_t out, bool accumulate)
{
    float *x = rand_buf((size_t)(n * in)), *w = rand_buf((size_t)(out * in)), *b = rand_buf((size_t)out);
    float *dy = rand_buf((size_t)(n * out));
    float *y = rand_buf((size_t)(n * out)), *yr = malloc((size_t)(n * out) * sizeof(float));
    size_t wsn = nrt_dense_workspace_floats(n, in, out);
    float *wsb = malloc(wsn * sizeof(float));
    NrtWorkspace ws = { wsb, wsn };
    double tol = 4e-7 * (double)(in > out ? (in > n ? in : n) : (out > n ? out : n));
    for (int act = 0; act <= 1; act++) {
        nrt_dense_forward(n, in, out, x, w, act ? b : NULL, (NrtAct)act, y, &ws);
        nrt_dense_forward_ref(n, in, out, x, w, act ? b : NULL, (NrtAct)act, yr);
        expect_close(y, yr, (size_t)(n * out), tol);
    }
    float *dx = rand_buf((size_t)(n * in)), *dxr = malloc((size_t)(n * in) * sizeof(float));
    memcpy(dxr, dx, (size_t)(n * in) * sizeof(float));
    nrt_dense_backward_data(n, in, out, dy, w, dx, accumulate, &ws);
    nrt_dense_backward_data_ref(n, in, out, dy, w, dxr, accumulate);
    expect_close(dx, dxr, (size_t)(n * in), tol);
    float *dw = rand_buf((size_t)(out * in)), *dwr = malloc((size_t)(out * in) * sizeof(float));
    memcpy(dwr, dw, (size_t)(out * in) * sizeof(float));
    nrt_dense_backward_weights(n, in, out, x, dy, dw, accumulate, &ws);
    nrt_dense_backward_weights_ref(n, in, out, x, dy, dwr, accumulate);
    expect_close(dw, dwr, (size_t)(out * in), tol);
    float *db = rand_buf((size_t)out);
    double *dbr = malloc((size_t)out * sizeof(double));
    for (int64_t o = 0; o < out; o++) {
        dbr[o] = accumulate ? db[o] : 0.0;
        for (int64_t i = 0; i < n; i++)
            dbr[o] += dy[i * out + o];
    }
    nrt_dense_backward_bias(n, out, dy, db, accumulate);
    for (int64_t o = 0; o < out; o++)
        assert_true(fabs(db[o] - dbr[o]) <= 1e-6 * n * (1.0 + fabs(dbr[o])));
    free(x), free(w), free(b), free(dy), free(y), free(yr), free(wsb);
    free(dx), free(dxr), free(dw), free(dwr), free(db), free(dbr);
}

static void test_dense(void **state)
{
    (void)state;
    static const int64_t dims[][3] = {
        {64, 784, 512}, {64, 512, 256}, {64, 256, 10}, {1, 784, 512}, {3, 5, 7}, {256, 120, 84},
    };
    for (int d = 0; d < 6; d++)
        for (int acc = 0; acc <= 1; acc++)
            dense_case(dims[d][0], dims[d][1], dims[d][2], acc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_all_transposes),
        cmocka_unit_test(test_shapes_portable_kernel),
        cmocka_unit_test(test_alpha_beta_and_strides),
        cmocka_unit_test(test_epilogue),
        cmocka_unit_test(test_k_zero),
        cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_small_m_rows_match),
        cmocka_unit_test(test_thread_count_bitwise),
        cmocka_unit_test(test_small_m_threads),
        cmocka_unit_test(test_par_decision),
        cmocka_unit_test(test_drivers_agree),
        cmocka_unit_test(test_dense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
