/* test_loss.c - runtime/loss.c: cross entropy (label smoothing, mixed
 * labels, weights) and mse against double references and PyTorch's
 * numbers, finite-difference gradient checks (layers_test.h), argmax and
 * accuracy, and the same bits for 1 and 2 threads. */
#include "layers_test.h"

typedef struct CeCase {
    int64_t n, k;
    const int32_t *ya, *yb;
    double lambda, s;
    double *z;
} CeCase;

/* Mean over rows of lambda CE(ya) + (1-lambda) CE(yb), PyTorch's smoothing:
 * CE(y) = (1-s)(-log p_y) + s/k sum_j (-log p_j). */
static double ce_ref(void *ctx)
{
    const CeCase *c = ctx;
    double total = 0.0;
    for (int64_t i = 0; i < c->n; i++) {
        const double *z = c->z + i * c->k;
        double m = -INFINITY, sum = 0.0, all = 0.0;
        for (int64_t j = 0; j < c->k; j++)
            m = fmax(m, z[j]);
        for (int64_t j = 0; j < c->k; j++)
            sum += exp(z[j] - m);
        double lse = m + log(sum);
        for (int64_t j = 0; j < c->k; j++)
            all += -(z[j] - lse);
        double smooth = c->s / (double)c->k * all;
        double la = (1.0 - c->s) * -(z[c->ya[i]] - lse) + smooth;
        double lb = c->yb ? (1.0 - c->s) * -(z[c->yb[i]] - lse) + smooth : la;
        total += c->lambda * la + (1.0 - c->lambda) * lb;
    }
    return total / (double)c->n;
}

static void check_ce(int64_t n, int64_t k, double s, bool mix, double weight)
{
    float *z = lt_alloc(n * k), *dz = lt_alloc(n * k);
    double *zd = lt_dalloc(n * k);
    int32_t *ya = malloc((size_t)n * sizeof *ya), *yb = malloc((size_t)n * sizeof *yb);
    lt_fill(z, n * k, (uint64_t)(n + k), -4.0, 4.0);
    lt_to_double(z, zd, n * k);
    for (int64_t i = 0; i < n; i++)
        ya[i] = (int32_t)((i * 7) % k), yb[i] = (int32_t)((i * 3 + 1) % k);
    CeCase c = {.n = n, .k = k, .ya = ya, .yb = mix ? yb : NULL, .lambda = mix ? 0.3 : 1.0,
                .s = s, .z = zd};
    double loss = nrt_cross_entropy(n, k, z, ya, mix ? yb : NULL, mix ? 0.3 : 0.77, s, weight,
                                    dz, false);
    double want = ce_ref(&c);
    assert_true(fabs(loss - want) <= 1e-12 * fabs(want));
    for (int64_t i = 0; i < n * k; i++)
        lt_check_grad("dlogits", i, dz[i] / weight, lt_numeric(zd, i, ce_ref, &c));
    /* no gradient buffer: the same loss */
    assert_true(nrt_cross_entropy(n, k, z, ya, mix ? yb : NULL, mix ? 0.3 : 0.77, s, weight, NULL,
                                  false) == loss);
    free(z), free(dz), free(zd), free(ya), free(yb);
}

static void test_loss_ce(void **state)
{
    (void)state;
    check_ce(5, 10, 0.0, false, 1.0);
    check_ce(70, 3, 0.0, false, 2.5);   /* more rows than chunks */
}

static void test_loss_ce_smoothing(void **state)
{
    (void)state;
    check_ce(6, 10, 0.1, false, 1.0);
    check_ce(3, 2, 0.5, false, 0.5);
}

static void test_loss_ce_mix(void **state)
{
    (void)state;
    check_ce(6, 10, 0.0, true, 1.0);
    check_ce(9, 5, 0.2, true, 1.0);
}

/* F.cross_entropy(z, y, label_smoothing=0.1) with z = 3 val(20, 0.9, 0.2)
 * as (5, 4), y = i % 4, printed by tests/unit/gen_layers_ref.py (torch 1.13). */
static const double torch_ce_smooth_loss = 2.0244073867797852;
static const double torch_ce_smooth_grad[20] = {
    -0.174215749, 0.0811163485, 0.08591903, 0.00718036247, 0.00907654688, -0.180605665,
    0.00828032568, 0.163248777, 0.0879169405, 0.0888874978, -0.172765598, -0.00403885543,
    -0.00442630099, -0.00319617661, 0.0180772934, -0.0104548289, -0.00960570201,
    0.0172438454, -0.00323466142, -0.00440349057};

static void test_loss_ce_torch(void **state)
{
    (void)state;
    float z[20], dz[20];
    int32_t y[5] = {0, 1, 2, 3, 0};
    lt_sin(z, 20, 0.9, 0.2);
    for (int i = 0; i < 20; i++)
        z[i] *= 3.0f;
    double loss = nrt_cross_entropy(5, 4, z, y, NULL, 1.0, 0.1, 1.0, dz, false);
    assert_true(fabs(loss - torch_ce_smooth_loss) < 1e-6);
    lt_check_close("dlogits", dz, torch_ce_smooth_grad, 20, 1e-7, 1e-5);
}

/* Huge logits: no overflow; a confident right answer costs ~0. */
static void test_loss_ce_stable(void **state)
{
    (void)state;
    float z[3] = {1000.0f, -1000.0f, 0.0f}, dz[3];
    int32_t y = 0;
    double loss = nrt_cross_entropy(1, 3, z, &y, NULL, 1.0, 0.0, 1.0, dz, false);
    assert_true(loss >= 0.0 && loss < 1e-300);
    assert_true(dz[0] == 0.0f && dz[1] == 0.0f && dz[2] == 0.0f);
    y = 1;
    loss = nrt_cross_entropy(1, 3, z, &y, NULL, 1.0, 0.0, 1.0, dz, false);
    assert_true(fabs(loss - 2000.0) < 1e-9);
    assert_true(dz[0] == 1.0f && dz[1] == -1.0f);
}

static void test_loss_ce_accumulate(void **state)
{
    (void)state;
    float z[8], a[8], b[8];
    int32_t y[2] = {1, 3};
    lt_fill(z, 8, 5, -1.0, 1.0);
    nrt_cross_entropy(2, 4, z, y, NULL, 1.0, 0.1, 0.5, a, false);
    for (int i = 0; i < 8; i++)
        b[i] = 1.0f;
    nrt_cross_entropy(2, 4, z, y, NULL, 1.0, 0.1, 0.5, b, true);
    for (int i = 0; i < 8; i++)
        assert_true(fabsf(b[i] - (1.0f + a[i])) <= 1e-7f);
}

/* ---- mse ----------------------------------------------------------------- */

typedef struct MseCase {
    int64_t n, d;
    double lambda;
    double *p;
    const float *ta, *tb;
} MseCase;

static double mse_ref(void *ctx)
{
    const MseCase *m = ctx;
    double s = 0.0;
    for (int64_t i = 0; i < m->n * m->d; i++) {
        double ea = m->p[i] - m->ta[i], eb = m->tb ? m->p[i] - m->tb[i] : ea;
        s += m->lambda * ea * ea + (1.0 - m->lambda) * eb * eb;
    }
    return s / (double)(m->n * m->d);
}

static void check_mse(int64_t n, int64_t d, bool mix, double weight)
{
    int64_t len = n * d;
    float *p = lt_alloc(len), *ta = lt_alloc(len), *tb = lt_alloc(len), *dp = lt_alloc(len);
    double *pd = lt_dalloc(len);
    lt_fill(p, len, 1, -2.0, 2.0);
    lt_fill(ta, len, 2, -2.0, 2.0);
    lt_fill(tb, len, 3, -2.0, 2.0);
    lt_to_double(p, pd, len);
    MseCase m = {.n = n, .d = d, .lambda = mix ? 0.6 : 1.0, .p = pd, .ta = ta,
                 .tb = mix ? tb : NULL};
    double loss = nrt_mse(n, d, p, ta, mix ? tb : NULL, 0.6, weight, dp, false);
    double want = mse_ref(&m);
    assert_true(fabs(loss - want) <= 1e-12 * want);
    for (int64_t i = 0; i < len; i++)
        lt_check_grad("dpred", i, dp[i] / weight, lt_numeric(pd, i, mse_ref, &m));
    free(p), free(ta), free(tb), free(dp), free(pd);
}

static void test_loss_mse(void **state)
{
    (void)state;
    check_mse(4, 3, false, 1.0);
    check_mse(100, 1, false, 3.0);
    check_mse(5, 2, true, 1.0);
    float p[2] = {1, 3}, t[2] = {0, 0}, g[2];
    assert_true(nrt_mse(2, 1, p, t, NULL, 1.0, 1.0, g, false) == 5.0);   /* (1 + 9) / 2 */
    assert_true(g[0] == 1.0f && g[1] == 3.0f);                          /* 2 (p - t) / 2 */
}

/* ---- predictions --------------------------------------------------------- */

static void test_loss_argmax(void **state)
{
    (void)state;
    float x[12] = {0, 3, 1, 3, -1, -2, -0.5f, -3, 7, 7, 7, 7};
    int32_t out[3], labels[3] = {1, 2, 1};
    nrt_argmax_rows(3, 4, x, out);
    assert_true(out[0] == 1 && out[1] == 2 && out[2] == 0);   /* first on ties */
    assert_int_equal(nrt_count_correct(3, 4, x, labels), 2);
}

/* Large batch: 1 and 2 threads give the same loss and gradient bits. */
static void test_loss_threads_bitwise(void **state)
{
    (void)state;
    enum { N = 4096, K = 100 };
    float *z = lt_alloc(N * K), *g0 = lt_alloc(N * K), *g1 = lt_alloc(N * K);
    int32_t *y = malloc(N * sizeof *y), *yb = malloc(N * sizeof *yb);
    lt_fill(z, N * K, 8, -6.0, 6.0);
    for (int i = 0; i < N; i++)
        y[i] = (i * 37) % K, yb[i] = (i * 11) % K;
    int before = nrt_get_threads();
    nrt_set_threads(1);
    double l0 = nrt_cross_entropy(N, K, z, y, yb, 0.4, 0.1, 1.0, g0, false);
    double m0 = nrt_mse(N, K, z, g0, NULL, 1.0, 1.0, NULL, false);
    nrt_set_threads(2);
    double l1 = nrt_cross_entropy(N, K, z, y, yb, 0.4, 0.1, 1.0, g1, false);
    double m1 = nrt_mse(N, K, z, g1, NULL, 1.0, 1.0, NULL, false);
    nrt_set_threads(before);
    assert_memory_equal(&l0, &l1, sizeof l0);
    assert_memory_equal(&m0, &m1, sizeof m0);
    assert_memory_equal(g0, g1, (size_t)N * K * sizeof(float));
    free(z), free(g0), free(g1), free(y), free(yb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_ce),
        cmocka_unit_test(test_loss_ce_smoothing),
        cmocka_unit_test(test_loss_ce_mix),
        cmocka_unit_test(test_loss_ce_torch),
        cmocka_unit_test(test_loss_ce_stable),
        cmocka_unit_test(test_loss_ce_accumulate),
        cmocka_unit_test(test_loss_mse),
        cmocka_unit_test(test_loss_argmax),
        cmocka_unit_test(test_loss_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
