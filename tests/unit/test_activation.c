/* test_activation.c - runtime/activation.c and runtime/dropout.c: each
 * forward against its double formula, each backward by a finite-difference
 * gradient check (layers_test.h), accumulation, softmax stability, dropout
 * masks from random bits, drop_path and noise. */
#include "layers_test.h"

enum { ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID };

typedef struct ActCase {
    int kind;
    double slope;
    int64_t numel;
    double *x, *r;
} ActCase;

static double act_ref(const ActCase *a, double x)
{
    switch (a->kind) {
    case ACT_RELU:
        return x > 0.0 ? x : 0.0;
    case ACT_LEAKY:
        return x > 0.0 ? x : a->slope * x;
    case ACT_TANH:
        return tanh(x);
    default:
        return 1.0 / (1.0 + exp(-x));
    }
}

static double act_objective(void *ctx)
{
    const ActCase *a = ctx;
    double J = 0.0;
    for (int64_t i = 0; i < a->numel; i++)
        J += a->r[i] * act_ref(a, a->x[i]);
    return J;
}

static void act_forward(int kind, float slope, int64_t n, const float *x, float *y)
{
    switch (kind) {
    case ACT_RELU: nrt_relu_forward(n, x, y); break;
    case ACT_LEAKY: nrt_leaky_relu_forward(n, slope, x, y); break;
    case ACT_TANH: nrt_tanh_forward(n, x, y); break;
    default: nrt_sigmoid_forward(n, x, y); break;
    }
}

static void act_backward(int kind, float slope, int64_t n, const float *dy, const float *x,
                         const float *y, float *dx, bool acc)
{
    switch (kind) {
    case ACT_RELU: nrt_relu_backward(n, dy, y, dx, acc); break;
    case ACT_LEAKY: nrt_leaky_relu_backward(n, slope, dy, x, dx, acc); break;
    case ACT_TANH: nrt_tanh_backward(n, dy, y, dx, acc); break;
    default: nrt_sigmoid_backward(n, dy, y, dx, acc); break;
    }
}

/* Inputs away from relu's kink: |x| >= 0.05. */
static void check_activation(int kind, float slope)
{
    enum { N = 200 };
    float x[N], y[N], dy[N], dx[N], dx2[N];
    double want[N], xd[N], rd[N];
    lt_fill(x, N, (uint64_t)kind + 40, -4.0, 4.0);
    for (int i = 0; i < N; i++)
        if (fabsf(x[i]) < 0.05f)
            x[i] = 0.05f + 0.5f * (float)i / N;
    x[0] = -100.0f, x[1] = 100.0f;        /* saturation without NaN */
    lt_fill(dy, N, (uint64_t)kind + 50, -1.0, 1.0);
    lt_to_double(x, xd, N);
    lt_to_double(dy, rd, N);
    ActCase a = {.kind = kind, .slope = slope, .numel = N, .x = xd, .r = rd};
    for (int i = 0; i < N; i++)
        want[i] = act_ref(&a, xd[i]);
    act_forward(kind, slope, N, x, y);
    lt_check_close("y", y, want, N, 1e-7, 4e-7);
    act_backward(kind, slope, N, dy, x, y, dx, false);
    for (int i = 2; i < N; i++)
        lt_check_grad("dx", i, dx[i], lt_numeric(xd, i, act_objective, &a));
    for (int i = 0; i < N; i++)
        dx2[i] = 1.0f;
    act_backward(kind, slope, N, dy, x, y, dx2, true);
    for (int i = 0; i < N; i++)
        assert_true(fabsf(dx2[i] - (1.0f + dx[i])) <= 1e-6f);
    act_forward(kind, slope, N, x, x);      /* in place */
    assert_memory_equal(x, y, sizeof y);
}

static void test_act_relu(void **state) { (void)state; check_activation(ACT_RELU, 0.0f); }
static void test_act_leaky_relu(void **state)
{
    (void)state;
    check_activation(ACT_LEAKY, 0.01f);
    check_activation(ACT_LEAKY, 0.2f);
}
static void test_act_tanh(void **state) { (void)state; check_activation(ACT_TANH, 0.0f); }
static void test_act_sigmoid(void **state) { (void)state; check_activation(ACT_SIGMOID, 0.0f); }

/* relu'(0) = 0 and leaky_relu'(0) = slope, as PyTorch defines them. */
static void test_act_kinks(void **state)
{
    (void)state;
    float x[2] = {0.0f, -0.0f}, y[2], dy[2] = {1, 1}, dx[2];
    nrt_relu_forward(2, x, y);
    nrt_relu_backward(2, dy, y, dx, false);
    assert_true(dx[0] == 0.0f && dx[1] == 0.0f);
    nrt_leaky_relu_backward(2, 0.1f, dy, x, dx, false);
    assert_true(dx[0] == 0.1f && dx[1] == 0.1f);
}

/* ---- softmax ------------------------------------------------------------- */

typedef struct SmCase {
    int64_t n, k;
    double *x, *r;
} SmCase;

static double sm_objective(void *ctx)
{
    const SmCase *s = ctx;
    double J = 0.0;
    for (int64_t i = 0; i < s->n; i++) {
        double m = -INFINITY, z = 0.0;
        for (int64_t j = 0; j < s->k; j++)
            m = fmax(m, s->x[i * s->k + j]);
        for (int64_t j = 0; j < s->k; j++)
            z += exp(s->x[i * s->k + j] - m);
        for (int64_t j = 0; j < s->k; j++)
            J += s->r[i * s->k + j] * exp(s->x[i * s->k + j] - m) / z;
    }
    return J;
}

static void test_act_softmax(void **state)
{
    (void)state;
    enum { N = 4, K = 7 };
    float x[N * K], y[N * K], ly[N * K], dy[N * K], dx[N * K];
    double xd[N * K], rd[N * K], want[N * K], lwant[N * K];
    lt_fill(x, N * K, 60, -5.0, 5.0);
    for (int j = 0; j < K; j++)
        x[3 * K + j] = 1000.0f + (float)j;   /* would overflow exp without the max */
    lt_fill(dy, N * K, 61, -1.0, 1.0);
    lt_to_double(x, xd, N * K);
    lt_to_double(dy, rd, N * K);
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, z = 0.0;
        for (int j = 0; j < K; j++)
            m = fmax(m, xd[i * K + j]);
        for (int j = 0; j < K; j++)
            z += exp(xd[i * K + j] - m);
        for (int j = 0; j < K; j++) {
            want[i * K + j] = exp(xd[i * K + j] - m) / z;
            lwant[i * K + j] = xd[i * K + j] - m - log(z);
        }
    }
    nrt_softmax_forward(N, K, x, y);
    nrt_log_softmax_forward(N, K, x, ly);
    lt_check_close("softmax", y, want, N * K, 1e-8, 1e-6);
    lt_check_close("log_softmax", ly, lwant, N * K, 1e-6, 1e-6);
    SmCase s = {.n = N, .k = K, .x = xd, .r = rd};
    nrt_softmax_backward(N, K, dy, y, dx, false);
    for (int i = 0; i < N * K; i++)
        lt_check_grad("dx", i, dx[i], lt_numeric(xd, i, sm_objective, &s));
}

/* ---- dropout, drop_path, noise ------------------------------------------ */

/* Kept iff bits >= round(p 2^32): the threshold and its extremes. */
static void test_dropout_mask(void **state)
{
    (void)state;
    assert_true(nrt_dropout_threshold(0.0) == 0);
    assert_true(nrt_dropout_threshold(0.5) == 2147483648u);
    assert_true(nrt_dropout_threshold(0.25) == 1073741824u);
    assert_true(nrt_dropout_threshold(0.9999999999999) == UINT32_MAX);
    uint32_t bits[6] = {0, 1073741823u, 1073741824u, 2147483648u, UINT32_MAX, 7};
    float mask[6];
    nrt_dropout_mask(6, bits, 0.25, mask);
    float keep = 1.0f / 0.75f;
    assert_true(mask[0] == 0.0f && mask[1] == 0.0f && mask[5] == 0.0f);
    assert_true(mask[2] == keep && mask[3] == keep && mask[4] == keep);
    nrt_dropout_mask(6, bits, 0.0, mask);
    for (int i = 0; i < 6; i++)
        assert_true(mask[i] == 1.0f);
}

/* On uniform bits the kept fraction is 1 - p and the mean is preserved. */
static void test_dropout_statistics(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint32_t *bits = malloc(N * sizeof *bits);
    float *mask = lt_alloc(N), *x = lt_alloc(N), *y = lt_alloc(N);
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        bits[i] = (uint32_t)(lt_uniform(&s, 0.0, 4294967296.0));
        x[i] = 1.0f;
    }
    nrt_dropout_mask(N, bits, 0.3, mask);
    nrt_dropout_forward(N, x, mask, y);
    double kept = 0.0, mean = 0.0;
    for (int i = 0; i < N; i++)
        kept += mask[i] != 0.0f, mean += y[i];
    assert_true(fabs(kept / N - 0.7) < 0.005);
    assert_true(fabs(mean / N - 1.0) < 0.01);
    free(bits), free(mask), free(x), free(y);
}

static void test_dropout_forward_backward(void **state)
{
    (void)state;
    enum { N = 50 };
    float x[N], mask[N], y[N], dy[N], dx[N];
    lt_fill(x, N, 1, -1.0, 1.0);
    lt_fill(dy, N, 2, -1.0, 1.0);
    for (int i = 0; i < N; i++)
        mask[i] = i % 3 ? 2.0f : 0.0f;
    nrt_dropout_forward(N, x, mask, y);
    nrt_dropout_backward(N, dy, mask, dx, false);
    for (int i = 0; i < N; i++) {
        assert_true(y[i] == x[i] * mask[i]);
        assert_true(dx[i] == dy[i] * mask[i]);   /* d(x*mask)/dx = mask */
    }
    nrt_dropout_backward(N, dy, mask, dx, true);
    for (int i = 0; i < N; i++)
        assert_true(dx[i] == 2.0f * dy[i] * mask[i]);
}

static void test_drop_path(void **state)
{
    (void)state;
    enum { NS = 4, D = 6 };
    float x[NS * D], y[NS * D], dy[NS * D], dx[NS * D], scale[NS] = {0.0f, 1.25f, 1.25f, 0.0f};
    lt_fill(x, NS * D, 3, -1.0, 1.0);
    lt_fill(dy, NS * D, 4, -1.0, 1.0);
    nrt_drop_path_forward(NS, D, x, scale, y);
    nrt_drop_path_backward(NS, D, dy, scale, dx, false);
    for (int i = 0; i < NS * D; i++) {
        assert_true(y[i] == x[i] * scale[i / D]);
        assert_true(dx[i] == dy[i] * scale[i / D]);
    }
    nrt_drop_path_backward(NS, D, dy, scale, dx, true);
    for (int i = 0; i < NS * D; i++)
        assert_true(dx[i] == 2.0f * dy[i] * scale[i / D]);
    uint32_t bits[NS] = {0, UINT32_MAX, 3000000000u, 100u};
    float s2[NS];
    nrt_dropout_mask(NS, bits, 0.2, s2);   /* one draw per sample */
    assert_true(s2[0] == 0.0f && s2[1] == 1.25f && s2[2] == 1.25f && s2[3] == 0.0f);
}

static void test_gaussian_noise(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4}, z[4] = {0.5f, -1.0f, 0.0f, 2.0f}, y[4];
    nrt_gaussian_noise_forward(4, x, z, 0.1f, y);
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == x[i] + 0.1f * z[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_relu),
        cmocka_unit_test(test_act_leaky_relu),
        cmocka_unit_test(test_act_tanh),
        cmocka_unit_test(test_act_sigmoid),
        cmocka_unit_test(test_act_kinks),
        cmocka_unit_test(test_act_softmax),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_dropout_statistics),
        cmocka_unit_test(test_dropout_forward_backward),
        cmocka_unit_test(test_drop_path),
        cmocka_unit_test(test_gaussian_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
