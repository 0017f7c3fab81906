/* test_pool.c - runtime/pool.c: max, average, global average and fractional
 * max pooling against straightforward double references, PyTorch's rules
 * (padding, ties, NaN, count_include_pad), finite-difference gradient checks
 * of every backward (layers_test.h), region sequences (Graham's, and
 * PyTorch's checked against numbers torch produced), and 1 vs 2 threads. */
#include "layers_test.h"

/* Regions of a pooling: rows [rs[o], re[o]) for output row o, columns alike;
 * one set for every plane. */
typedef struct Regions {
    int64_t n, c, h, w, oh, ow;
    int32_t rs[64], re[64], cs[64], ce[64];
    bool avg;                     /* average with divisor kk instead of max */
    double kk;
    double *x, *r;
} Regions;

static void regions_from_pool(Regions *g, const NrtPoolShape *s)
{
    g->n = s->n, g->c = s->c, g->h = s->h, g->w = s->w;
    g->oh = nrt_pool_out_h(s), g->ow = nrt_pool_out_w(s);
    assert_true(g->oh <= 64 && g->ow <= 64);
    for (int64_t o = 0; o < g->oh; o++) {
        int64_t a = o * s->stride - s->pad;
        g->rs[o] = (int32_t)(a < 0 ? 0 : a);
        g->re[o] = (int32_t)(a + s->k > s->h ? s->h : a + s->k);
    }
    for (int64_t o = 0; o < g->ow; o++) {
        int64_t a = o * s->stride - s->pad;
        g->cs[o] = (int32_t)(a < 0 ? 0 : a);
        g->ce[o] = (int32_t)(a + s->k > s->w ? s->w : a + s->k);
    }
    g->kk = (double)(s->k * s->k);
}

/* y (n, c, oh, ow) in double; arg (may be NULL) the first max's index. */
static void pool_ref(const Regions *g, double *y, int32_t *arg)
{
    for (int64_t p = 0; p < g->n * g->c; p++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                double best = -INFINITY, sum = 0.0;
                int32_t at = -1;
                for (int32_t r = g->rs[oy]; r < g->re[oy]; r++)
                    for (int32_t q = g->cs[ox]; q < g->ce[ox]; q++) {
                        double v = g->x[p * g->h * g->w + r * g->w + q];
                        sum += v;
                        if (at < 0 || v > best)
                            best = v, at = (int32_t)(r * g->w + q);
                    }
                int64_t o = (p * g->oh + oy) * g->ow + ox;
                y[o] = g->avg ? sum / g->kk : best;
                if (arg)
                    arg[o] = at;
            }
}

static double pool_objective(void *ctx)
{
    const Regions *g = ctx;
    int64_t len = g->n * g->c * g->oh * g->ow;
    double *y = lt_dalloc(len), J = 0.0;
    pool_ref(g, y, NULL);
    for (int64_t k = 0; k < len; k++)
        J += g->r[k] * y[k];
    free(y);
    return J;
}

/* Distinct values (a shuffled ramp) so that max pooling has no ties. */
static void fill_distinct(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(-1.0 + 2.0 * (double)i / (double)n);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lt_uniform(&s, 0.0, (double)(i + 1));
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
}

/* Forward (values, argmax) and backward (gradient check) of one max or
 * average pooling shape. */
static void check_pool(NrtPoolShape s, bool avg)
{
    Regions g = {.avg = avg};
    regions_from_pool(&g, &s);
    int64_t in = s.n * s.c * s.h * s.w, out = s.n * s.c * g.oh * g.ow;
    float *x = lt_alloc(in), *y = lt_alloc(out), *dy = lt_alloc(out), *dx = lt_alloc(in);
    int32_t *arg = calloc((size_t)out, sizeof *arg), *want_arg = calloc((size_t)out, sizeof *arg);
    double *want = lt_dalloc(out);
    g.x = lt_dalloc(in), g.r = lt_dalloc(out);
    fill_distinct(x, in, (uint64_t)(s.h * 31 + s.k));
    lt_fill(dy, out, 5, -1.0, 1.0);
    lt_to_double(x, g.x, in);
    lt_to_double(dy, g.r, out);
    pool_ref(&g, want, want_arg);
    if (avg) {
        nrt_avgpool_forward(&s, x, y);
        nrt_avgpool_backward(&s, dy, dx, false);
    } else {
        nrt_maxpool_forward(&s, x, y, arg);
        assert_memory_equal(arg, want_arg, (size_t)out * sizeof *arg);
        nrt_maxpool_backward(&s, dy, arg, dx, false);
    }
    lt_check_close("y", y, want, out, 1e-7, 1e-6);
    for (int64_t k = 0; k < in; k++)
        lt_check_grad("dx", k, dx[k], lt_numeric(g.x, k, pool_objective, &g));
    free(x), free(y), free(dy), free(dx), free(arg), free(want_arg), free(want);
    free(g.x), free(g.r);
}

static void test_pool_maxpool(void **state)
{
    (void)state;
    check_pool((NrtPoolShape){.n = 2, .c = 3, .h = 8, .w = 8, .k = 2, .stride = 2}, false);
    check_pool((NrtPoolShape){.n = 1, .c = 2, .h = 7, .w = 9, .k = 3, .stride = 2, .pad = 1},
               false);
    check_pool((NrtPoolShape){.n = 2, .c = 1, .h = 5, .w = 6, .k = 3, .stride = 1, .pad = 1},
               false);
    check_pool((NrtPoolShape){.n = 1, .c = 1, .h = 7, .w = 7, .k = 2, .stride = 2}, false);
}

static void test_pool_avgpool(void **state)
{
    (void)state;
    check_pool((NrtPoolShape){.n = 2, .c = 3, .h = 8, .w = 8, .k = 2, .stride = 2}, true);
    check_pool((NrtPoolShape){.n = 1, .c = 2, .h = 7, .w = 9, .k = 3, .stride = 2, .pad = 1},
               true);
    check_pool((NrtPoolShape){.n = 2, .c = 1, .h = 5, .w = 6, .k = 3, .stride = 1, .pad = 1},
               true);
}

/* PyTorch's rules: padding never wins (all-negative input), a NaN wins
 * and stays, the first of equal values wins; count_include_pad divides a
 * corner window by k*k. */
static void test_pool_rules(void **state)
{
    (void)state;
    NrtPoolShape s = {.n = 1, .c = 1, .h = 2, .w = 2, .k = 2, .stride = 1, .pad = 1};
    float x[4] = {-4, -3, -2, -1}, y[9];
    int32_t arg[9];
    nrt_maxpool_forward(&s, x, y, arg);
    assert_true(y[0] == -4.0f && arg[0] == 0);     /* window holds only x[0] and padding */
    assert_true(y[4] == -1.0f && arg[4] == 3);
    float t[4] = {5, 5, 5, 5};
    nrt_maxpool_forward(&s, t, y, arg);
    assert_true(arg[4] == 0 && arg[5] == 1 && arg[8] == 3);
    float z[4] = {1, NAN, 7, 2};
    nrt_maxpool_forward(&s, z, y, arg);
    assert_true(isnan(y[4]) && arg[4] == 1);
    nrt_avgpool_forward(&s, x, y);
    assert_true(y[0] == -1.0f && y[4] == -2.5f);
}

/* The same rules on the 2x2 stride-2 fast path: the first of equal values
 * wins, a NaN wins (a later NaN replaces it, as in plane_max), an all -inf
 * window picks its first element. */
static void test_pool_rules_2x2(void **state)
{
    (void)state;
    NrtPoolShape s = {.n = 1, .c = 1, .h = 2, .w = 8, .k = 2, .stride = 2};
    float x[16] = {3, 3, 1, 2, NAN, 9, -INFINITY, -INFINITY,
                   3, 3, 5, 5, 8, NAN, -INFINITY, -INFINITY};
    for (int isa = 0; isa < 2; isa++) {   /* the AVX-512 path (if any), then the portable one */
        nrt_sgemm_set_isa(isa ? NRT_ISA_PORTABLE : NRT_ISA_AUTO);
        float y[4];
        int32_t arg[4];
        nrt_maxpool_forward(&s, x, y, arg);
        assert_true(y[0] == 3.0f && arg[0] == 0);
        assert_true(y[1] == 5.0f && arg[1] == 10);
        assert_true(isnan(y[2]) && arg[2] == 13);
        assert_true(y[3] == -INFINITY && arg[3] == 6);
        check_pool((NrtPoolShape){.n = 2, .c = 2, .h = 28, .w = 28, .k = 2, .stride = 2}, false);
        check_pool((NrtPoolShape){.n = 1, .c = 2, .h = 6, .w = 34, .k = 2, .stride = 2}, false);
    }
    nrt_sgemm_set_isa(NRT_ISA_AUTO);
}

/* accumulate adds the scatter to dx; without it dx is overwritten. */
static void test_pool_accumulate(void **state)
{
    (void)state;
    NrtPoolShape s = {.n = 2, .c = 2, .h = 6, .w = 6, .k = 3, .stride = 2, .pad = 1};
    int64_t in = 144, out = 2 * 2 * 3 * 3;
    float *x = lt_alloc(in), *y = lt_alloc(out), *dy = lt_alloc(out);
    float *a = lt_alloc(in), *b = lt_alloc(in);
    int32_t arg[36];
    lt_fill(x, in, 9, -1.0, 1.0);
    lt_fill(dy, out, 10, -1.0, 1.0);
    nrt_maxpool_forward(&s, x, y, arg);
    for (int avg = 0; avg < 2; avg++) {
        for (int64_t k = 0; k < in; k++)
            a[k] = 7.0f, b[k] = 0.5f;
        if (avg) {
            nrt_avgpool_backward(&s, dy, a, false);
            nrt_avgpool_backward(&s, dy, b, true);
        } else {
            nrt_maxpool_backward(&s, dy, arg, a, false);
            nrt_maxpool_backward(&s, dy, arg, b, true);
        }
        for (int64_t k = 0; k < in; k++)
            assert_true(fabsf(b[k] - (0.5f + a[k])) <= 1e-6f);
    }
    free(x), free(y), free(dy), free(a), free(b);
}

/* ---- global average pooling --------------------------------------------- */

typedef struct Gap {
    int64_t n, c, sp;
    double *x, *r;
} Gap;

static double gap_objective(void *ctx)
{
    const Gap *g = ctx;
    double J = 0.0;
    for (int64_t p = 0; p < g->n * g->c; p++) {
        double s = 0.0;
        for (int64_t j = 0; j < g->sp; j++)
            s += g->x[p * g->sp + j];
        J += g->r[p] * s / (double)g->sp;
    }
    return J;
}

static void test_pool_global_avgpool(void **state)
{
    (void)state;
    Gap g = {.n = 3, .c = 4, .sp = 13};
    int64_t in = 3 * 4 * 13, out = 12;
    float *x = lt_alloc(in), *y = lt_alloc(out), *dy = lt_alloc(out), *dx = lt_alloc(in);
    double want[12];
    g.x = lt_dalloc(in), g.r = lt_dalloc(out);
    lt_fill(x, in, 1, -3.0, 3.0);
    lt_fill(dy, out, 2, -1.0, 1.0);
    lt_to_double(x, g.x, in);
    lt_to_double(dy, g.r, out);
    nrt_global_avgpool_forward(3, 4, 13, x, y);
    for (int64_t p = 0; p < out; p++) {
        want[p] = 0.0;
        for (int64_t j = 0; j < 13; j++)
            want[p] += g.x[p * 13 + j] / 13.0;
    }
    lt_check_close("y", y, want, out, 1e-7, 1e-6);
    nrt_global_avgpool_backward(3, 4, 13, dy, dx, false);
    for (int64_t k = 0; k < in; k++)
        lt_check_grad("dx", k, dx[k], lt_numeric(g.x, k, gap_objective, &g));
    float before = dx[5];
    nrt_global_avgpool_backward(3, 4, 13, dy, dx, true);
    assert_true(dx[5] == 2.0f * before);
    free(x), free(y), free(dy), free(dx), free(g.x), free(g.r);
}

/* ---- fractional max pooling --------------------------------------------- */

/* Graham's disjoint regions tile [0, in) with lengths floor(alpha) or one
 * more; overlapping ones add the next boundary element. */
static void test_pool_frac_regions(void **state)
{
    (void)state;
    const int64_t ins[] = {28, 20, 14, 9, 100, 5};
    const double ratios[] = {1.414, 1.414, 2.0, 1.5, 1.9, 1.01};
    for (int t = 0; t < 6; t++) {
        int64_t in = ins[t], out = nrt_fracpool_out(in, ratios[t]);
        assert_int_equal(out, (int64_t)floor((double)in / ratios[t]));
        int64_t K = in / out;
        for (int ui = 0; ui < 50; ui++) {
            int32_t s[100], e[100], so[100], eo[100];
            double u = ui / 50.0;
            nrt_fracpool_regions(in, out, u, false, s, e);
            nrt_fracpool_regions(in, out, u, true, so, eo);
            assert_int_equal(s[0], 0);
            assert_int_equal(e[out - 1], in);
            for (int64_t i = 0; i < out; i++) {
                int64_t len = e[i] - s[i];
                assert_true(len == K || len == K + 1);
                if (i + 1 < out)
                    assert_int_equal(e[i], s[i + 1]);
                assert_int_equal(so[i], s[i]);
                assert_int_equal(eo[i], i + 1 < out ? e[i] + 1 : in);
            }
        }
    }
    /* in 10, out 4: alpha 2.5, max_u 0.6; u01 0.5 gives u = 0.3 and
     * a_i = ceil(2.5 (i + 0.3)) - 1 = 3, 5, 8 */
    int32_t s[4], e[4];
    nrt_fracpool_regions(10, 4, 0.5, false, s, e);
    assert_true(s[1] == 3 && s[2] == 5 && s[3] == 8 && e[3] == 10);
}

/* F.fractional_max_pool2d(x, 2, output_size=(6, 7), _random_samples=u) on
 * x (2, 3, 9, 11) = val(594, 0.61, 0.05), u (2, 3, 2) = |val(12, 2.3, 0.9)|
 * * 0.99, printed by tests/unit/gen_layers_ref.py with torch 1.13. */
#include "test_pool_torch.inc"

static void test_pool_frac_torch(void **state)
{
    (void)state;
    enum { N = 2, C = 3, H = 9, W = 11, OH = 6, OW = 7, P = N * C };
    float x[N * C * H * W], uu[P * 2], y[P * OH * OW];
    int32_t rs[P * OH], re[P * OH], cs[P * OW], ce[P * OW], arg[P * OH * OW];
    lt_sin(x, N * C * H * W, 0.61, 0.05);
    lt_sin(uu, P * 2, 2.3, 0.9);
    for (int p = 0; p < P; p++) {
        /* torch: |u| * 0.99 in float; [0] is the width's, [1] the height's */
        float uw = fabsf(uu[2 * p]) * 0.99f, uh = fabsf(uu[2 * p + 1]) * 0.99f;
        nrt_fracpool_regions_torch(W, OW, 2, uw, cs + p * OW, ce + p * OW);
        nrt_fracpool_regions_torch(H, OH, 2, uh, rs + p * OH, re + p * OH);
    }
    NrtFracPool fp = {.n = N, .c = C, .h = H, .w = W, .oh = OH, .ow = OW,
                      .share = NRT_FRAC_PER_PLANE, .row_start = rs, .row_end = re,
                      .col_start = cs, .col_end = ce};
    nrt_fracpool_forward(&fp, x, y, arg);
    for (int k = 0; k < P * OH * OW; k++) {
        assert_true(y[k] == (float)torch_frac_y[k]);
        assert_int_equal(arg[k], (int32_t)torch_frac_idx[k]);
    }
}

/* Forward against the reference and the backward's gradient check, with
 * per-sample overlapping Graham regions. */
static void test_pool_frac_gradcheck(void **state)
{
    (void)state;
    enum { N = 2, C = 2, H = 10, W = 9 };
    int64_t oh = nrt_fracpool_out(H, 1.414), ow = nrt_fracpool_out(W, 1.414);
    int32_t rs[N * 8], re[N * 8], cs[N * 8], ce[N * 8];
    for (int i = 0; i < N; i++) {
        nrt_fracpool_regions(H, oh, 0.3 + 0.4 * i, true, rs + i * oh, re + i * oh);
        nrt_fracpool_regions(W, ow, 0.8 - 0.5 * i, true, cs + i * ow, ce + i * ow);
    }
    NrtFracPool fp = {.n = N, .c = C, .h = H, .w = W, .oh = oh, .ow = ow,
                      .share = NRT_FRAC_PER_SAMPLE, .row_start = rs, .row_end = re,
                      .col_start = cs, .col_end = ce};
    int64_t in = N * C * H * W, out = N * C * oh * ow;
    float *x = lt_alloc(in), *y = lt_alloc(out), *dy = lt_alloc(out), *dx = lt_alloc(in);
    int32_t *arg = calloc((size_t)out, sizeof *arg);
    fill_distinct(x, in, 77);
    lt_fill(dy, out, 78, -1.0, 1.0);
    nrt_fracpool_forward(&fp, x, y, arg);
    nrt_fracpool_backward(&fp, dy, arg, dx, false);
    /* the reference works per sample: one Regions per sample, c planes each */
    for (int i = 0; i < N; i++) {
        Regions g = {.n = 1, .c = C, .h = H, .w = W, .oh = oh, .ow = ow};
        memcpy(g.rs, rs + i * oh, (size_t)oh * sizeof(int32_t));
        memcpy(g.re, re + i * oh, (size_t)oh * sizeof(int32_t));
        memcpy(g.cs, cs + i * ow, (size_t)ow * sizeof(int32_t));
        memcpy(g.ce, ce + i * ow, (size_t)ow * sizeof(int32_t));
        int64_t pin = C * H * W, pout = C * oh * ow;
        double *want = lt_dalloc(pout);
        g.x = lt_dalloc(pin), g.r = lt_dalloc(pout);
        lt_to_double(x + i * pin, g.x, pin);
        lt_to_double(dy + i * pout, g.r, pout);
        pool_ref(&g, want, NULL);
        lt_check_close("y", y + i * pout, want, pout, 0.0, 0.0);
        for (int64_t k = 0; k < pin; k++)
            lt_check_grad("dx", k, dx[i * pin + k], lt_numeric(g.x, k, pool_objective, &g));
        free(want), free(g.x), free(g.r);
    }
    free(x), free(y), free(dy), free(dx), free(arg);
}

/* Overlapping windows scatter into shared inputs: 1 and 2 threads agree. */
static void test_pool_threads_bitwise(void **state)
{
    (void)state;
    NrtPoolShape s = {.n = 64, .c = 8, .h = 28, .w = 28, .k = 3, .stride = 2, .pad = 1};
    int64_t in = 64 * 8 * 28 * 28, out = 64 * 8 * nrt_pool_out_h(&s) * nrt_pool_out_w(&s);
    float *x = lt_alloc(in), *dy = lt_alloc(out), *y[2], *dx[2], *ax[2];
    int32_t *arg = calloc((size_t)out, sizeof *arg);
    lt_fill(x, in, 1, -1.0, 1.0);
    lt_fill(dy, out, 2, -1.0, 1.0);
    int before = nrt_get_threads();
    for (int t = 0; t < 2; t++) {
        nrt_set_threads(t + 1);
        y[t] = lt_alloc(out), dx[t] = lt_alloc(in), ax[t] = lt_alloc(in);
        nrt_maxpool_forward(&s, x, y[t], arg);
        nrt_maxpool_backward(&s, dy, arg, dx[t], false);
        nrt_avgpool_backward(&s, dy, ax[t], false);
    }
    nrt_set_threads(before);
    assert_memory_equal(y[0], y[1], (size_t)out * sizeof(float));
    assert_memory_equal(dx[0], dx[1], (size_t)in * sizeof(float));
    assert_memory_equal(ax[0], ax[1], (size_t)in * sizeof(float));
    for (int t = 0; t < 2; t++)
        free(y[t]), free(dx[t]), free(ax[t]);
    free(x), free(dy), free(arg);
}

/* nrt_fracpool_draw: set s is nrt_fracpool_regions at the documented
 * uniforms; sets, steps and streams differ; inference's set is fixed. */
static void test_pool_frac_draw(void **state)
{
    (void)state;
    enum { SETS = 3, H = 20, W = 17, OH = 14, OW = 12 };
    int32_t r[SETS * 2 * (OH + OW)], r2[SETS * 2 * (OH + OW)];
    int32_t s[OH], e[OH];
    const uint64_t stream = (uint64_t)5 << 32;
    nrt_fracpool_draw(42, 3, stream, SETS, H, W, OH, OW, true, r);
    for (int k = 0; k < SETS; k++) {
        nrt_fracpool_regions(H, OH, nrt_rng_uniform(42, NRT_RNG_FRACPOOL, 3, (uint64_t)k, stream),
                             true, s, e);
        assert_memory_equal(r + k * OH, s, sizeof s);
        assert_memory_equal(r + SETS * OH + k * OH, e, sizeof e);
        nrt_fracpool_regions(W, OW, nrt_rng_uniform(42, NRT_RNG_FRACPOOL, 3, (uint64_t)k, stream + 1),
                             true, s, e);
        assert_memory_equal(r + 2 * SETS * OH + k * OW, s, OW * sizeof(int32_t));
        assert_memory_equal(r + 2 * SETS * OH + SETS * OW + k * OW, e, OW * sizeof(int32_t));
    }
    assert_memory_not_equal(r, r + OH, OH * sizeof(int32_t));     /* sets 0 and 1: ~never equal */
    nrt_fracpool_draw(42, 4, stream, SETS, H, W, OH, OW, true, r2);
    assert_memory_not_equal(r, r2, sizeof r);
    nrt_fracpool_draw(42, NRT_FRACPOOL_INFER_STEP, stream, 1, H, W, OH, OW, false, r);
    nrt_fracpool_draw(42, NRT_FRACPOOL_INFER_STEP, stream, 1, H, W, OH, OW, false, r2);
    assert_memory_equal(r, r2, 2 * (OH + OW) * sizeof(int32_t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_maxpool),
        cmocka_unit_test(test_pool_avgpool),
        cmocka_unit_test(test_pool_rules),
        cmocka_unit_test(test_pool_rules_2x2),
        cmocka_unit_test(test_pool_accumulate),
        cmocka_unit_test(test_pool_global_avgpool),
        cmocka_unit_test(test_pool_frac_regions),
        cmocka_unit_test(test_pool_frac_torch),
        cmocka_unit_test(test_pool_frac_gradcheck),
        cmocka_unit_test(test_pool_frac_draw),
        cmocka_unit_test(test_pool_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
