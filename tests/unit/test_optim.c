/* test_optim.c - runtime/optim.c: SGD (plain, momentum, Nesterov), Adam
 * (with L2), AdamW against hand-computed steps and against numbers torch
 * 1.13 produced; the L1/L2 penalties (gradient check of the penalty term,
 * value, threads); the numeric guard's scan (nrt_find_nonfinite) and its
 * pass with the penalties fused (nrt_guard_pass). */
#include <float.h>

#include "layers_test.h"

/* Three steps on w = val(7, 0.7, 0.3) with gradients val(7, 1.3, 0.5 + s)
 * at step s, as tests/unit/gen_layers_ref.py ran them through torch.optim
 * (torch 1.13, foreach=False). */
static const double torch_sgd_nesterov[7] = {   /* SGD(lr=0.1, momentum=0.9, nesterov) */
    -0.253385067, 0.532036006, 1.37502313, 1.18999386, -0.0665048808, -1.18421423,
    -1.17565393};
static const double torch_sgd_momentum[7] = {   /* SGD(lr=0.05, momentum=0.5) */
    0.148834735, 0.761728048, 1.0956881, 0.810858309, 0.00999348983, -0.76415199,
    -1.02741992};
static const double torch_adam[7] = {           /* Adam(lr=0.01) */
    0.266338408, 0.82016027, 0.997173667, 0.702363789, 0.047748398, -0.641092062,
    -0.995588124};
static const double torch_adam_l2[7] = {        /* Adam(lr=0.01, weight_decay=0.1) */
    0.266271472, 0.818918526, 0.995549858, 0.701836467, 0.047598239, -0.640951812,
    -0.993425548};
static const double torch_adamw[7] = {          /* AdamW(lr=0.01, weight_decay=0.1) */
    0.265482366, 0.817667186, 0.994214594, 0.700309575, 0.0476028025, -0.639228463,
    -0.992630899};

enum { OPT_SGD, OPT_ADAM, OPT_ADAM_L2, OPT_ADAMW };

static void run_torch_case(int kind, double lr, double momentum, bool nesterov, float *w)
{
    float g[7], s1[7] = {0}, s2[7] = {0};
    lt_sin(w, 7, 0.7, 0.3);
    for (int s = 0; s < 3; s++) {
        lt_sin(g, 7, 1.3, 0.5 + s);
        if (kind == OPT_SGD)
            nrt_sgd_step(7, w, g, s1, lr, momentum, nesterov);
        else
            nrt_adam_step(7, w, g, s1, s2, lr, 0.9, 0.999, 1e-8,
                          kind == OPT_ADAM ? 0.0 : 0.1, kind == OPT_ADAMW, s + 1);
    }
}

static void test_optim_torch_sgd(void **state)
{
    (void)state;
    float w[7];
    run_torch_case(OPT_SGD, 0.1, 0.9, true, w);
    lt_check_close("nesterov", w, torch_sgd_nesterov, 7, 1e-7, 1e-6);
    run_torch_case(OPT_SGD, 0.05, 0.5, false, w);
    lt_check_close("momentum", w, torch_sgd_momentum, 7, 1e-7, 1e-6);
}

static void test_optim_torch_adam(void **state)
{
    (void)state;
    float w[7];
    run_torch_case(OPT_ADAM, 0.01, 0, false, w);
    lt_check_close("adam", w, torch_adam, 7, 1e-7, 1e-6);
    run_torch_case(OPT_ADAM_L2, 0.01, 0, false, w);
    lt_check_close("adam_l2", w, torch_adam_l2, 7, 1e-7, 1e-6);
    run_torch_case(OPT_ADAMW, 0.01, 0, false, w);
    lt_check_close("adamw", w, torch_adamw, 7, 1e-7, 1e-6);
}

/* By hand: w = 1, g = 0.5, lr 0.1. Plain: 0.95. Momentum 0.9: v = 0.5,
 * 0.95; w = 0.95, 0.855. Nesterov: updates 0.5 + 0.45 = 0.95 and
 * 0.5 + 0.9 * 0.95 = 1.355; w = 0.905, 0.7695. */
static void test_optim_sgd_by_hand(void **state)
{
    (void)state;
    float g = 0.5f, w = 1.0f, v = 0.0f;
    nrt_sgd_step(1, &w, &g, NULL, 0.1, 0.0, false);
    assert_true(fabsf(w - 0.95f) < 1e-7f);
    w = 1.0f;
    nrt_sgd_step(1, &w, &g, &v, 0.1, 0.9, false);
    nrt_sgd_step(1, &w, &g, &v, 0.1, 0.9, false);
    assert_true(fabsf(v - 0.95f) < 1e-7f && fabsf(w - 0.855f) < 1e-7f);
    w = 1.0f, v = 0.0f;
    nrt_sgd_step(1, &w, &g, &v, 0.1, 0.9, true);
    assert_true(fabsf(w - 0.905f) < 1e-7f);
    nrt_sgd_step(1, &w, &g, &v, 0.1, 0.9, true);
    assert_true(fabsf(w - 0.7695f) < 1e-7f);
}

/* Adam's first step is lr * sign(g) (m/sqrt(v) = g/|g| after bias
 * correction); AdamW shrinks w by lr*wd first; at step 1000 the bias
 * corrections have gone (1 - 0.9^1000 = 1). */
static void test_optim_adam_by_hand(void **state)
{
    (void)state;
    float w[3] = {1.0f, 2.0f, -1.0f}, g[3] = {0.3f, -2.0f, 1e-3f}, m[3] = {0}, v[3] = {0};
    nrt_adam_step(3, w, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.0, false, 1);
    assert_true(fabsf(w[0] - 0.99f) < 1e-6f && fabsf(w[1] - 2.01f) < 1e-6f);
    assert_true(fabsf(w[2] - (-1.01f)) < 1e-6f);
    assert_true(fabsf(m[0] - 0.03f) < 1e-8f && fabsf(v[1] - 0.004f) < 1e-9f);
    float w2 = 2.0f, g2 = 0.0f, m2 = 0.0f, v2 = 0.0f;
    nrt_adam_step(1, &w2, &g2, &m2, &v2, 0.1, 0.9, 0.999, 1e-8, 0.5, true, 1);
    assert_true(fabsf(w2 - 2.0f * (1.0f - 0.05f)) < 1e-7f);   /* g = 0: only the decay */
    float w3 = 0.0f, g3 = 1.0f, m3 = 0.5f, v3 = 0.25f;
    nrt_adam_step(1, &w3, &g3, &m3, &v3, 0.1, 0.9, 0.999, 0.0, 0.0, false, 1000);
    /* m = 0.55, v = 0.25075, bias corrections 1 and 1 - 0.999^1000 */
    double want = -0.1 / (1.0 - pow(0.9, 1000)) * 0.55
                  / (sqrt(0.25075) / sqrt(1.0 - pow(0.999, 1000)));
    assert_true(fabs(w3 - want) < 1e-6);
}

/* ---- penalties ----------------------------------------------------------- */

typedef struct PenCase {
    int64_t n;
    double l1, l2, *w;
} PenCase;

static double pen_ref(void *ctx)
{
    const PenCase *p = ctx;
    double s = 0.0;
    for (int64_t i = 0; i < p->n; i++)
        s += p->l1 * fabs(p->w[i]) + 0.5 * p->l2 * p->w[i] * p->w[i];
    return s;
}

static void test_optim_penalty(void **state)
{
    (void)state;
    float w[3] = {-2.0f, 0.0f, 3.0f}, g[3] = {1.0f, 1.0f, 1.0f};
    nrt_penalty_grad(3, w, 0.1, 0.01, g);
    assert_true(fabsf(g[0] - (1.0f - 0.02f - 0.1f)) < 1e-7f);
    assert_true(g[1] == 1.0f);                                /* sign(0) = 0 */
    assert_true(fabsf(g[2] - (1.0f + 0.03f + 0.1f)) < 1e-7f);
    assert_true(fabs(nrt_penalty_value(3, w, 0.1, 0.01) - 0.565) < 1e-12);
    /* gradient check of the penalty term, away from w = 0 */
    enum { N = 40 };
    float wf[N], gf[N] = {0};
    double wd[N];
    lt_fill(wf, N, 3, -2.0, 2.0);
    for (int i = 0; i < N; i++)
        if (fabsf(wf[i]) < 0.01f)
            wf[i] = 0.5f;
    lt_to_double(wf, wd, N);
    PenCase p = {.n = N, .l1 = 3e-3, .l2 = 5e-2, .w = wd};
    nrt_penalty_grad(N, wf, p.l1, p.l2, gf);
    for (int i = 0; i < N; i++)
        lt_check_grad("penalty", i, gf[i], lt_numeric(wd, i, pen_ref, &p));
    assert_true(fabs(nrt_penalty_value(N, wf, p.l1, p.l2) - pen_ref(&p)) < 1e-12);
}

static void test_optim_penalty_threads(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    float *w = lt_alloc(N);
    lt_fill(w, N, 12, -1.0, 1.0);
    int before = nrt_get_threads();
    nrt_set_threads(1);
    double a = nrt_penalty_value(N, w, 1e-4, 5e-4);
    nrt_set_threads(2);
    double b = nrt_penalty_value(N, w, 1e-4, 5e-4);
    nrt_set_threads(before);
    assert_memory_equal(&a, &b, sizeof a);
    free(w);
}

/* The guard scans in blocks: a bad value anywhere (block edges, the tail,
 * the last element) is found, the first of several wins, and the largest
 * finite values, subnormals and -0 are not bad. */
static void test_optim_find_nonfinite(void **state)
{
    (void)state;
    enum { N = 1300 };
    float *x = lt_alloc(N);
    lt_fill(x, N, 5, -1.0, 1.0);
    x[3] = FLT_MAX;
    x[700] = -FLT_MAX;
    x[800] = FLT_MIN / 4.0f;
    x[900] = -0.0f;
    assert_int_equal(nrt_find_nonfinite(x, N), -1);
    assert_int_equal(nrt_find_nonfinite(x, 0), -1);
    const int64_t at[] = {0, 1, 511, 512, 513, 1023, 1024, 1299};
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            float keep = x[at[i]];
            x[at[i]] = bad[k];
            assert_int_equal(nrt_find_nonfinite(x, N), at[i]);
            assert_int_equal(nrt_find_nonfinite(x, at[i]), -1);   /* not scanned past n */
            x[at[i]] = keep;
        }
    x[1100] = NAN;
    x[600] = INFINITY;
    assert_int_equal(nrt_find_nonfinite(x, N), 600);
    free(x);
}

/* A block of three parameters: a (300 000 floats, l2), b (1 000, no
 * gradient), c (700, l1 + l2), then their gradients (b has none). */
enum { GA = 300000, GB = 1000, GC = 700, GFLOATS = 2 * GA + GB + 2 * GC };
static const NrtGuardSpan g_spans[3] = {
    {0, GA + GB + GC, GA, 0.0, 5e-4}, {GA, -1, GB, 0.0, 0.0}, {GA + GB, 2 * GA + GB + GC, GC, 3e-3, 5e-2}};

static float *guard_block_new(void)
{
    float *x = lt_alloc(GFLOATS);
    lt_fill(x, GFLOATS, 21, -2.0, 2.0);
    x[17] = 0.0f;       /* sign(0) = 0 under l1 */
    x[GA + GB + 5] = 0.0f;
    return x;
}

/* The pass adds each gradient's penalty with nrt_penalty_grad's bits, on 1
 * and 2 threads alike, and finds nothing in a finite block. */
static void test_optim_guard_pass_penalty(void **state)
{
    (void)state;
    float *ref = guard_block_new();
    for (int s = 0; s < 3; s++)
        if (g_spans[s].grad >= 0)
            nrt_penalty_grad(g_spans[s].numel, ref + g_spans[s].off, g_spans[s].l1, g_spans[s].l2,
                             ref + g_spans[s].grad);
    int before = nrt_get_threads();
    for (int t = 1; t <= 2; t++) {
        nrt_set_threads(t);
        float *x = guard_block_new();
        NrtGuardBad bad = {-1, false, -1};
        assert_true(nrt_guard_pass(x, 3, g_spans, &bad));
        assert_int_equal(bad.span, -1);
        assert_memory_equal(x, ref, GFLOATS * sizeof *x);
        free(x);
    }
    nrt_set_threads(before);
    free(ref);
}

/* The first bad parameter (table order, then element) wins over any bad
 * gradient; with none, the first bad gradient; every penalty is added even
 * so; 1 and 2 threads give the same answer. */
static void test_optim_guard_pass_bad(void **state)
{
    (void)state;
    struct {
        int64_t at[3];          /* bad floats (block offsets), -1: unused */
        NrtGuardBad want;
    } cases[] = {
        {{GA + GB + GC + 5, 250000, -1}, {0, false, 250000}},          /* parameter a beats a's gradient */
        {{GA + GB + 699, GA + 999, -1}, {1, false, 999}},              /* b before c */
        {{2 * GA + GB + GC + 3, GA + GB + GC + 299999, -1}, {0, true, 299999}},  /* gradients: a first */
        {{2 * GA + GB + GC + 3, -1, -1}, {2, true, 3}},
        {{GA + GB + GC + 511, GA + GB + GC + 513, GA + GB + GC + 512}, {0, true, 511}},
        {{GA + 7, GA + 6, -1}, {1, false, 6}},
    };
    int before = nrt_get_threads();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int t = 1; t <= 2; t++) {
            nrt_set_threads(t);
            float *x = guard_block_new(), *ref = guard_block_new();
            for (int k = 0; k < 3; k++)
                if (cases[c].at[k] >= 0)
                    x[cases[c].at[k]] = ref[cases[c].at[k]] = k == 1 ? INFINITY : NAN;
            for (int s = 0; s < 3; s++)
                if (g_spans[s].grad >= 0)
                    nrt_penalty_grad(g_spans[s].numel, ref + g_spans[s].off, g_spans[s].l1, g_spans[s].l2,
                                     ref + g_spans[s].grad);
            NrtGuardBad bad;
            assert_false(nrt_guard_pass(x, 3, g_spans, &bad));
            assert_int_equal(bad.span, cases[c].want.span);
            assert_int_equal(bad.grad, cases[c].want.grad);
            assert_int_equal(bad.elem, cases[c].want.elem);
            for (int64_t i = 0; i < GFLOATS; i++)    /* NaN-aware: every penalty added */
                assert_true(isnan(x[i]) ? isnan(ref[i]) : x[i] == ref[i]);
            free(x), free(ref);
        }
    nrt_set_threads(before);
}

/* The update loops come in a portable and an AVX-512 copy (optim_kernels.c),
 * picked by the runtime's ISA: both give the same bits (penalties, the
 * guard pass, SGD plain / momentum / Nesterov), tails included. */
static void run_update(float *x)
{
    NrtGuardBad bad;
    nrt_penalty_grad(GC, x + GA + GB, 3e-3, 5e-2, x + 2 * GA + GB);
    assert_true(nrt_guard_pass(x, 3, g_spans, &bad));
    float *w = x, *g = x + GA + GB + GC, *v = x + 2 * GA + GB + 2 * GC;
    nrt_sgd_step(GA - 3, w, g, v, 0.01, 0.0, false);
    nrt_sgd_step(GA - 3, w, g, v, 0.01, 0.9, false);
    nrt_sgd_step(GA - 5, w + 1, g + 1, v + 1, 0.03, 0.9, true);
}

static void test_optim_update_isas(void **state)
{
    (void)state;
    float *a = lt_alloc(GFLOATS + GA), *b = lt_alloc(GFLOATS + GA);
    lt_fill(a, GFLOATS + GA, 22, -2.0, 2.0);
    memcpy(b, a, (GFLOATS + GA) * sizeof *a);
    NrtIsa before = nrt_sgemm_isa();
    nrt_sgemm_set_isa(NRT_ISA_PORTABLE);
    run_update(a);
    if (nrt_sgemm_set_isa(NRT_ISA_AVX512) != NRT_ISA_AVX512)
        print_message("no AVX-512 here: only the portable copy ran\n");
    run_update(b);
    nrt_sgemm_set_isa(before);
    assert_memory_equal(a, b, (GFLOATS + GA) * sizeof *a);
    free(a), free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optim_torch_sgd),
        cmocka_unit_test(test_optim_torch_adam),
        cmocka_unit_test(test_optim_sgd_by_hand),
        cmocka_unit_test(test_optim_adam_by_hand),
        cmocka_unit_test(test_optim_penalty),
        cmocka_unit_test(test_optim_penalty_threads),
        cmocka_unit_test(test_optim_find_nonfinite),
        cmocka_unit_test(test_optim_guard_pass_penalty),
        cmocka_unit_test(test_optim_guard_pass_bad),
        cmocka_unit_test(test_optim_update_isas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
