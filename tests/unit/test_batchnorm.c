/* test_batchnorm.c - runtime/batchnorm.c against a double-precision
 * reference: forward (training and inference, NCHW and N x D, fused ReLU),
 * running statistics, finite-difference gradient checks of the backward
 * (see layers_test.h), accumulation, bitwise equality for 1 and 2
 * threads, and the mask from x (the *_affine pair) against the mask
 * from y. */
#include "layers_test.h"

typedef struct BnCase {
    int64_t n, c, sp;
    bool relu;
    double eps;
    double *x, *gamma, *beta, *r;   /* r: weights of the objective sum r*y */
} BnCase;

/* Training forward in double: y (n, c, sp), mean and biased var (c). */
static void bn_ref(const BnCase *b, double *y, double *mean, double *var)
{
    int64_t M = b->n * b->sp;
    for (int64_t ch = 0; ch < b->c; ch++) {
        double s = 0.0, q = 0.0;
        for (int64_t i = 0; i < b->n; i++)
            for (int64_t j = 0; j < b->sp; j++)
                s += b->x[(i * b->c + ch) * b->sp + j];
        double m = s / (double)M;
        for (int64_t i = 0; i < b->n; i++)
            for (int64_t j = 0; j < b->sp; j++) {
                double d = b->x[(i * b->c + ch) * b->sp + j] - m;
                q += d * d;
            }
        double v = q / (double)M, inv = 1.0 / sqrt(v + b->eps);
        for (int64_t i = 0; i < b->n; i++)
            for (int64_t j = 0; j < b->sp; j++) {
                int64_t k = (i * b->c + ch) * b->sp + j;
                double o = (b->x[k] - m) * inv * b->gamma[ch] + b->beta[ch];
                y[k] = b->relu && o < 0.0 ? 0.0 : o;
            }
        if (mean)
            mean[ch] = m;
        if (var)
            var[ch] = v;
    }
}

static double bn_objective(void *ctx)
{
    const BnCase *b = ctx;
    int64_t len = b->n * b->c * b->sp;
    double *y = lt_dalloc(len), J = 0.0;
    bn_ref(b, y, NULL, NULL);
    for (int64_t k = 0; k < len; k++)
        J += b->r[k] * y[k];
    free(y);
    return J;
}

/* Float inputs for a case and their double copies in b. */
typedef struct BnData {
    float *x, *gamma, *beta, *r;
} BnData;

static void bn_data(BnCase *b, BnData *d, uint64_t seed)
{
    int64_t len = b->n * b->c * b->sp;
    d->x = lt_alloc(len);
    d->r = lt_alloc(len);
    d->gamma = lt_alloc(b->c);
    d->beta = lt_alloc(b->c);
    lt_fill(d->x, len, seed, -2.0, 3.0);
    lt_fill(d->r, len, seed + 1, -1.0, 1.0);
    lt_fill(d->gamma, b->c, seed + 2, 0.5, 1.5);
    lt_fill(d->beta, b->c, seed + 3, -0.5, 0.5);
    b->x = lt_dalloc(len);
    b->r = lt_dalloc(len);
    b->gamma = lt_dalloc(b->c);
    b->beta = lt_dalloc(b->c);
    lt_to_double(d->x, b->x, len);
    lt_to_double(d->r, b->r, len);
    lt_to_double(d->gamma, b->gamma, b->c);
    lt_to_double(d->beta, b->beta, b->c);
}

static void bn_free(BnCase *b, BnData *d)
{
    free(d->x), free(d->r), free(d->gamma), free(d->beta);
    free(b->x), free(b->r), free(b->gamma), free(b->beta);
}

/* Forward vs reference, including saved statistics and running stats. */
static void check_forward(int64_t n, int64_t c, int64_t sp, bool relu)
{
    BnCase b = {.n = n, .c = c, .sp = sp, .relu = relu, .eps = 1e-5};
    BnData d;
    bn_data(&b, &d, (uint64_t)(n * 131 + c * 7 + sp));
    int64_t len = n * c * sp, M = n * sp;
    float *y = lt_alloc(len), *sm = lt_alloc(c), *si = lt_alloc(c);
    float *rm = lt_alloc(c), *rv = lt_alloc(c);
    double *ry = lt_dalloc(len), *mean = lt_dalloc(c), *var = lt_dalloc(c);
    double *want_rm = lt_dalloc(c), *want_rv = lt_dalloc(c), *want_si = lt_dalloc(c);
    for (int64_t ch = 0; ch < c; ch++)
        rm[ch] = 0.25f, rv[ch] = 2.0f;
    nrt_batchnorm_forward_train(n, c, sp, d.x, d.gamma, d.beta, 1e-5, 0.1, rm, rv, relu, y, sm,
                                si);
    bn_ref(&b, ry, mean, var);
    for (int64_t ch = 0; ch < c; ch++) {
        want_rm[ch] = 0.9 * 0.25 + 0.1 * mean[ch];
        want_rv[ch] = 0.9 * 2.0 + 0.1 * var[ch] * (double)M / (double)(M - 1);
        want_si[ch] = 1.0 / sqrt(var[ch] + 1e-5);
    }
    lt_check_close("y", y, ry, len, 2e-6, 2e-6);
    lt_check_close("save_mean", sm, mean, c, 1e-7, 1e-6);
    lt_check_close("save_invstd", si, want_si, c, 0.0, 1e-6);
    lt_check_close("running_mean", rm, want_rm, c, 1e-7, 1e-6);
    lt_check_close("running_var", rv, want_rv, c, 0.0, 1e-6);
    free(y), free(sm), free(si), free(rm), free(rv);
    free(ry), free(mean), free(var), free(want_rm), free(want_rv), free(want_si);
    bn_free(&b, &d);
}

static void test_batchnorm_forward_nchw(void **state)
{
    (void)state;
    check_forward(3, 4, 15, false);
    check_forward(2, 3, 7, false);   /* plane shorter than the 8 lanes */
}

static void test_batchnorm_forward_rows(void **state)
{
    (void)state;
    check_forward(7, 70, 1, false);  /* two feature blocks */
    check_forward(2, 5, 1, false);
}

static void test_batchnorm_forward_relu(void **state)
{
    (void)state;
    check_forward(3, 4, 15, true);
    check_forward(9, 3, 1, true);
}

/* Running statistics without a running buffer stay untouched (NULL), and
 * with momentum 1 become the batch statistics (variance unbiased). */
static void test_batchnorm_running_stats(void **state)
{
    (void)state;
    /* channel 0: values 1, 2, 3, 6 over (n=2, sp=2): mean 3, biased var 3.5 */
    float x[8] = {1, 2, 0, 0, 3, 6, 0, 0}, g[2] = {1, 1}, be[2] = {0, 0};
    float y[8], sm[2], si[2], rm[2] = {5, 5}, rv[2] = {7, 7};
    nrt_batchnorm_forward_train(2, 2, 2, x, g, be, 0.0, 1.0, rm, rv, false, y, sm, si);
    assert_true(rm[0] == 3.0f && rm[1] == 0.0f);
    assert_true(fabsf(rv[0] - 3.5f * 4.0f / 3.0f) < 1e-6f && rv[1] == 0.0f);
    assert_true(fabsf(si[0] - (float)(1.0 / sqrt(3.5))) < 1e-7f);
    /* momentum 0.1 from the default init (0, 1) */
    float rm2[2] = {0, 0}, rv2[2] = {1, 1};
    nrt_batchnorm_forward_train(2, 2, 2, x, g, be, 1e-5, 0.1, rm2, rv2, false, y, sm, si);
    assert_true(fabsf(rm2[0] - 0.3f) < 1e-7f);
    assert_true(fabsf(rv2[0] - (0.9f + 0.1f * 3.5f * 4.0f / 3.0f)) < 1e-6f);
    nrt_batchnorm_forward_train(2, 2, 2, x, g, be, 1e-5, 0.1, NULL, NULL, false, y, sm, si);
}

static void test_batchnorm_forward_infer(void **state)
{
    (void)state;
    int64_t n = 3, c = 5, sp = 6, len = n * c * sp;
    float *x = lt_alloc(len), *y = lt_alloc(len), g[5], be[5], rm[5], rv[5];
    double *want = lt_dalloc(len);
    lt_fill(x, len, 11, -3.0, 3.0);
    lt_fill(g, c, 12, 0.5, 2.0);
    lt_fill(be, c, 13, -1.0, 1.0);
    lt_fill(rm, c, 14, -1.0, 1.0);
    lt_fill(rv, c, 15, 0.1, 4.0);
    for (int relu = 0; relu < 2; relu++) {
        nrt_batchnorm_forward_infer(n, c, sp, x, g, be, rm, rv, 1e-3, relu, y);
        for (int64_t k = 0; k < len; k++) {
            int64_t ch = (k / sp) % c;
            double o = ((double)x[k] - rm[ch]) / sqrt((double)rv[ch] + 1e-3) * g[ch] + be[ch];
            want[k] = relu && o < 0.0 ? 0.0 : o;
        }
        lt_check_close("y", y, want, len, 2e-6, 2e-6);
    }
    free(x), free(y), free(want);
}

/* The inference fold: w_out = w * (float)(gamma / sqrt(var + eps)) per
 * output channel, exactly (one float multiply), and the bias within float
 * rounding of the double value; the AVX-512 and portable weight loops give
 * the same bits (per-channel lengths 1, 9, 17, 144, 1000: the masked
 * tails and the 64-float blocks). */
static void test_batchnorm_fold(void **state)
{
    (void)state;
    static const int64_t pers[] = {1, 9, 17, 144, 1000};
    for (int t = 0; t < 5; t++) {
        int64_t f = 7, per = pers[t], nw = f * per;
        float *w = lt_alloc(nw), *wf = lt_alloc(nw), *wp = lt_alloc(nw), b[7], g[7], be[7];
        float rm[7], rv[7], bf[7], bp[7];
        lt_fill(w, nw, 21 + t, -2.0, 2.0);
        lt_fill(b, f, 22, -1.0, 1.0);
        lt_fill(g, f, 23, 0.5, 2.0);
        lt_fill(be, f, 24, -1.0, 1.0);
        lt_fill(rm, f, 25, -1.0, 1.0);
        lt_fill(rv, f, 26, 0.1, 4.0);
        NrtIsa best = nrt_sgemm_set_isa(NRT_ISA_AUTO);
        nrt_batchnorm_fold(f, per, w, b, g, be, rm, rv, 1e-5, wf, bf);
        nrt_sgemm_set_isa(NRT_ISA_PORTABLE);
        nrt_batchnorm_fold(f, per, w, b, g, be, rm, rv, 1e-5, wp, bp);
        nrt_sgemm_set_isa(best);
        assert_memory_equal(wf, wp, (size_t)nw * sizeof(float));
        assert_memory_equal(bf, bp, sizeof bf);
        for (int64_t o = 0; o < f; o++) {
            double scale = g[o] / sqrt((double)rv[o] + 1e-5);
            for (int64_t k = 0; k < per; k++)
                assert_true(wf[o * per + k] == w[o * per + k] * (float)scale);
            double want = ((double)b[o] - rm[o]) * scale + be[o];
            assert_true(fabs(bf[o] - want) <= 1e-6 * (fabs(want) + 1.0));
        }
        free(w), free(wf), free(wp);
    }
}

/* Backward of the float kernel vs numeric gradients of the double forward. */
static void check_backward(int64_t n, int64_t c, int64_t sp, bool relu)
{
    BnCase b = {.n = n, .c = c, .sp = sp, .relu = relu, .eps = 1e-5};
    BnData d;
    bn_data(&b, &d, (uint64_t)(n * 17 + c * 5 + sp + relu));
    int64_t len = n * c * sp;
    float *y = lt_alloc(len), *sm = lt_alloc(c), *si = lt_alloc(c), *dx = lt_alloc(len);
    float *dg = lt_alloc(c), *db = lt_alloc(c);
    nrt_batchnorm_forward_train(n, c, sp, d.x, d.gamma, d.beta, 1e-5, 0.1, NULL, NULL, relu, y,
                                sm, si);
    nrt_batchnorm_backward(n, c, sp, d.r, d.x, relu ? y : NULL, d.gamma, sm, si, dx, dg, db,
                           false, false);
    for (int64_t k = 0; k < len; k++)
        lt_check_grad("dx", k, dx[k], lt_numeric(b.x, k, bn_objective, &b));
    for (int64_t ch = 0; ch < c; ch++) {
        lt_check_grad("dgamma", ch, dg[ch], lt_numeric(b.gamma, ch, bn_objective, &b));
        lt_check_grad("dbeta", ch, db[ch], lt_numeric(b.beta, ch, bn_objective, &b));
    }
    free(y), free(sm), free(si), free(dx), free(dg), free(db);
    bn_free(&b, &d);
}

static void test_batchnorm_gradcheck_nchw(void **state)
{
    (void)state;
    check_backward(3, 4, 10, false);
    check_backward(2, 2, 3, false);
}

static void test_batchnorm_gradcheck_rows(void **state)
{
    (void)state;
    check_backward(6, 67, 1, false);
}

static void test_batchnorm_gradcheck_relu(void **state)
{
    (void)state;
    check_backward(3, 4, 10, true);
    check_backward(8, 5, 1, true);
}

/* accumulate adds to dx and to the parameter gradients independently;
 * dx NULL gives the parameter gradients alone. */
static void test_batchnorm_backward_accumulate(void **state)
{
    (void)state;
    int64_t n = 4, c = 3, sp = 9, len = n * c * sp;
    float *x = lt_alloc(len), *dy = lt_alloc(len), *y = lt_alloc(len);
    float *dx1 = lt_alloc(len), *dx2 = lt_alloc(len), g[3] = {1, 2, 0.5f}, be[3] = {0};
    float sm[3], si[3], dg1[3], db1[3], dg2[3], db2[3];
    lt_fill(x, len, 3, -1.0, 1.0);
    lt_fill(dy, len, 4, -1.0, 1.0);
    nrt_batchnorm_forward_train(n, c, sp, x, g, be, 1e-5, 0.1, NULL, NULL, false, y, sm, si);
    nrt_batchnorm_backward(n, c, sp, dy, x, NULL, g, sm, si, dx1, dg1, db1, false, false);
    for (int64_t k = 0; k < len; k++)
        dx2[k] = 1.0f;
    for (int ch = 0; ch < 3; ch++)
        dg2[ch] = 2.0f, db2[ch] = 3.0f;
    nrt_batchnorm_backward(n, c, sp, dy, x, NULL, g, sm, si, dx2, dg2, db2, true, false);
    for (int64_t k = 0; k < len; k++)   /* FMA contraction may round the sum once */
        assert_true(fabsf(dx2[k] - (1.0f + dx1[k])) <= 1e-6f);
    for (int ch = 0; ch < 3; ch++)
        assert_true(dg2[ch] == dg1[ch] && db2[ch] == db1[ch]);
    nrt_batchnorm_backward(n, c, sp, dy, x, NULL, g, sm, si, NULL, dg2, db2, false, true);
    for (int ch = 0; ch < 3; ch++)
        assert_true(dg2[ch] == 2.0f * dg1[ch] && db2[ch] == 2.0f * db1[ch]);
    free(x), free(dy), free(y), free(dx1), free(dx2);
}

/* Training forward and backward with 1 and with 2 threads: same bits. */
static void check_threads(int64_t n, int64_t c, int64_t sp)
{
    int64_t len = n * c * sp;
    float *x = lt_alloc(len), *dy = lt_alloc(len), *g = lt_alloc(c), *be = lt_alloc(c);
    float *out[2][7];
    lt_fill(x, len, 21, -2.0, 5.0);
    lt_fill(dy, len, 22, -1.0, 1.0);
    lt_fill(g, c, 23, 0.5, 1.5);
    lt_fill(be, c, 24, -0.5, 0.5);
    int before = nrt_get_threads();
    for (int t = 0; t < 2; t++) {
        float **o = out[t];
        o[0] = lt_alloc(len), o[1] = lt_alloc(c), o[2] = lt_alloc(c), o[3] = lt_alloc(c);
        o[4] = lt_alloc(c), o[5] = lt_alloc(len), o[6] = lt_alloc(2 * c);
        nrt_set_threads(t + 1);
        nrt_batchnorm_forward_train(n, c, sp, x, g, be, 1e-5, 0.1, o[3], o[4], true, o[0], o[1],
                                    o[2]);
        nrt_batchnorm_backward(n, c, sp, dy, x, o[0], g, o[1], o[2], o[5], o[6], o[6] + c, false,
                               false);
    }
    nrt_set_threads(before);
    int64_t sizes[7] = {len, c, c, c, c, len, 2 * c};
    for (int k = 0; k < 7; k++) {
        assert_memory_equal(out[0][k], out[1][k], (size_t)sizes[k] * sizeof(float));
        free(out[0][k]), free(out[1][k]);
    }
    free(x), free(dy), free(g), free(be);
}

static void test_batchnorm_threads_bitwise(void **state)
{
    (void)state;
    check_threads(64, 16, 28 * 28);
    check_threads(256, 300, 1);
}

/* The backward that takes the activation's mask from x and the forward's
 * saved scale and shift (nrt_batchnorm_*_affine) gives the bits of the
 * one that reads y: forward outputs, dx (overwritten and accumulated),
 * dgamma, dbeta, for relu, leaky_relu and none, planes with and without
 * vector tails (1, 7, 49, 100, 1100: across a 1024-value chunk) and
 * N x D rows (one and two feature blocks), on 1 and 2 threads. */
static void check_affine_mask(int64_t n, int64_t c, int64_t sp, NrtFusedAct act, int threads)
{
    int64_t len = n * c * sp;
    float slope = act == NRT_FUSED_LEAKY_RELU ? 0.125f : 0.0f;
    float *x = lt_alloc(len), *dy = lt_alloc(len), *g = lt_alloc(c), *be = lt_alloc(c);
    float *y[2], *st[2], *dx[2], *pg[2], *aff = lt_alloc(2 * c);
    lt_fill(x, len, (uint64_t)(31 + sp), -2.0, 2.0);
    lt_fill(dy, len, 32, -1.0, 1.0);
    lt_fill(g, c, 33, -1.5, 1.5);   /* negative gammas too: the mask flips with the scale */
    lt_fill(be, c, 34, -0.5, 0.5);
    int before = nrt_get_threads();
    nrt_set_threads(threads);
    for (int v = 0; v < 2; v++) {
        y[v] = lt_alloc(len), st[v] = lt_alloc(4 * c), dx[v] = lt_alloc(len), pg[v] = lt_alloc(2 * c);
        if (v == 0)
            nrt_batchnorm_forward_train_act(n, c, sp, x, g, be, 1e-5, 0.1, st[v] + 2 * c,
                                            st[v] + 3 * c, act, slope, y[v], st[v], st[v] + c);
        else
            nrt_batchnorm_forward_train_affine(n, c, sp, x, g, be, 1e-5, 0.1, st[v] + 2 * c,
                                               st[v] + 3 * c, act, slope, y[v], st[v],
                                               st[v] + c, aff);
        for (int acc = 0; acc < 2; acc++) {
            if (v == 0)
                nrt_batchnorm_backward_act(n, c, sp, dy, x, y[0], act, slope, g, st[0], st[0] + c,
                                           dx[0], pg[0], pg[0] + c, acc, acc);
            else
                nrt_batchnorm_backward_affine(n, c, sp, dy, x, aff, act, slope, g, st[1],
                                              st[1] + c, dx[1], pg[1], pg[1] + c, acc, acc);
        }
    }
    nrt_set_threads(before);
    assert_memory_equal(y[0], y[1], (size_t)len * sizeof(float));
    assert_memory_equal(st[0], st[1], (size_t)4 * c * sizeof(float));
    assert_memory_equal(dx[0], dx[1], (size_t)len * sizeof(float));
    assert_memory_equal(pg[0], pg[1], (size_t)2 * c * sizeof(float));
    for (int v = 0; v < 2; v++)
        free(y[v]), free(st[v]), free(dx[v]), free(pg[v]);
    free(x), free(dy), free(g), free(be), free(aff);
}

static void test_batchnorm_affine_mask(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{5, 3, 1100}, {4, 3, 100}, {6, 2, 49}, {3, 4, 7}, {9, 3, 1},
                                 {40, 70, 1}, {64, 16, 196}};
    const NrtFusedAct acts[] = {NRT_FUSED_RELU, NRT_FUSED_LEAKY_RELU, NRT_FUSED_NONE};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (size_t a = 0; a < 3; a++)
            for (int t = 1; t <= 2; t++)
                check_affine_mask(shapes[k][0], shapes[k][1], shapes[k][2], acts[a], t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm_forward_nchw),
        cmocka_unit_test(test_batchnorm_forward_rows),
        cmocka_unit_test(test_batchnorm_forward_relu),
        cmocka_unit_test(test_batchnorm_running_stats),
        cmocka_unit_test(test_batchnorm_forward_infer),
        cmocka_unit_test(test_batchnorm_fold),
        cmocka_unit_test(test_batchnorm_gradcheck_nchw),
        cmocka_unit_test(test_batchnorm_gradcheck_rows),
        cmocka_unit_test(test_batchnorm_gradcheck_relu),
        cmocka_unit_test(test_batchnorm_backward_accumulate),
        cmocka_unit_test(test_batchnorm_threads_bitwise),
        cmocka_unit_test(test_batchnorm_affine_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
