/* test_dropconnect.c - runtime/dropconnect.c against its definition.
 *
 * The reference builds sample i's mask explicitly with
 * nrt_rng_fill_dropout_mask (same key, element stream + j*in + c), masks
 * the weights and runs the plain dense kernels one sample at a time, in
 * double. The kernels under test keep the masks as bits between forward
 * and backward; they must agree with the reference to float rounding, give the same bits for 1 and 2 threads,
 * keep about 1-p of the weights (each kept one scaled by 1/(1-p)), and use
 * different masks for different samples, steps and streams.
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

enum { N = 5, IN = 301, OUT = 7 };   /* rows start off 4-word blocks; IN > 64: several lane batches */

static const double P = 0.3;
static const uint64_t SEED = 99, STEP = 4, STREAM = (uint64_t)3 << 32;

static float x[N * IN], w[OUT * IN], b[OUT], dy[N * OUT];
static float mask[N][OUT * IN];
static uint32_t bits[N * OUT * ((IN + 31) / 32)];

static void setup_data(void)
{
    nrt_rng_fill_normal(1, NRT_RNG_INIT, 0, 0, 0, N * IN, 0.0f, 1.0f, x);
    nrt_rng_fill_normal(1, NRT_RNG_INIT, 0, 1, 0, OUT * IN, 0.0f, 0.1f, w);
    nrt_rng_fill_normal(1, NRT_RNG_INIT, 0, 2, 0, OUT, 0.0f, 0.1f, b);
    nrt_rng_fill_normal(1, NRT_RNG_INIT, 0, 3, 0, N * OUT, 0.0f, 1.0f, dy);
    for (int i = 0; i < N; i++)
        nrt_rng_fill_dropout_mask(SEED, NRT_RNG_DROPCONNECT, STEP, (uint64_t)i, STREAM, OUT * IN, P,
                                  mask[i]);
}

static void assert_close(const float *got, const double *want, int64_t count)
{
    for (int64_t k = 0; k < count; k++)
        if (fabs(got[k] - want[k]) > 1e-4 * (1.0 + fabs(want[k])))
            fail_msg("element %lld: %.8g, reference %.8g", (long long)k, got[k], want[k]);
}

static void test_dropconnect_forward_matches_masked_weights(void **state)
{
    (void)state;
    setup_data();
    static float y[N * OUT];
    static double ref[N * OUT];
    for (int act = 0; act < 2; act++) {
        nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, act ? NRT_ACT_RELU : NRT_ACT_NONE, P,
                                      SEED, STEP, STREAM, bits, y);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OUT; j++) {
                double s = b[j];
                for (int c = 0; c < IN; c++)
                    s += (double)w[j * IN + c] * mask[i][j * IN + c] * x[i * IN + c];
                ref[i * OUT + j] = act && s < 0 ? 0 : s;
            }
        assert_close(y, ref, N * OUT);
    }
}

static void test_dropconnect_backward_matches_masked_weights(void **state)
{
    (void)state;
    setup_data();
    static float dw[OUT * IN], dx[N * IN];
    static double rdw[OUT * IN], rdx[N * IN];
    memset(rdw, 0, sizeof rdw);
    memset(rdx, 0, sizeof rdx);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++)
            for (int c = 0; c < IN; c++) {
                double m = mask[i][j * IN + c];
                rdw[j * IN + c] += m * dy[i * OUT + j] * x[i * IN + c];
                rdx[i * IN + c] += m * w[j * IN + c] * dy[i * OUT + j];
            }
    static float y[N * OUT];
    assert_int_equal(nrt_dropconnect_words(IN, OUT), OUT * ((IN + 31) / 32));
    nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, NRT_ACT_NONE, P, SEED, STEP, STREAM, bits, y);
    nrt_dropconnect_dense_backward_weights(N, IN, OUT, x, dy, P, bits, dw, false);
    nrt_dropconnect_dense_backward_data(N, IN, OUT, dy, w, P, bits, dx, false);
    assert_close(dw, rdw, OUT * IN);
    assert_close(dx, rdx, N * IN);
    /* accumulate adds to what is there */
    nrt_dropconnect_dense_backward_weights(N, IN, OUT, x, dy, P, bits, dw, true);
    nrt_dropconnect_dense_backward_data(N, IN, OUT, dy, w, P, bits, dx, true);
    for (int k = 0; k < OUT * IN; k++)
        rdw[k] *= 2;
    for (int k = 0; k < N * IN; k++)
        rdx[k] *= 2;
    assert_close(dw, rdw, OUT * IN);
    assert_close(dx, rdx, N * IN);
}

/* About 1-p of the weights survive, scaled by 1/(1-p); samples, steps and
 * streams draw different masks. */
static void test_dropconnect_masks(void **state)
{
    (void)state;
    setup_data();
    int64_t kept = 0, total = 0, same01 = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < OUT * IN; k++) {
            float m = mask[i][k];
            assert_true(m == 0.0f || m == (float)(1.0 / (1.0 - P)));
            kept += m != 0.0f;
            total++;
            same01 += i == 1 && (mask[0][k] != 0.0f) == (m != 0.0f);
        }
    double rate = (double)kept / (double)total;     /* sd of the rate ~ 0.004 */
    assert_true(fabs(rate - (1.0 - P)) < 0.02);
    assert_true(same01 < OUT * IN * 0.7);          /* independent masks agree on ~58% */
    static float y0[N * OUT], y1[N * OUT], y2[N * OUT];
    nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, NRT_ACT_NONE, P, SEED, STEP, STREAM, bits, y0);
    nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, NRT_ACT_NONE, P, SEED, STEP + 1, STREAM, bits, y1);
    nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, NRT_ACT_NONE, P, SEED, STEP,
                                  STREAM + ((uint64_t)1 << 32), bits, y2);
    assert_memory_not_equal(y0, y1, sizeof y0);
    assert_memory_not_equal(y0, y2, sizeof y0);
    /* p = 0 is the plain dense layer */
    static float yp[N * OUT];
    static double ref[N * OUT];
    nrt_dropconnect_dense_forward(N, IN, OUT, x, w, b, NRT_ACT_NONE, 0.0, SEED, STEP, STREAM, bits, yp);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) {
            double s = b[j];
            for (int c = 0; c < IN; c++)
                s += (double)w[j * IN + c] * x[i * IN + c];
            ref[i * OUT + j] = s;
        }
    assert_close(yp, ref, N * OUT);
}

/* Big enough for the parallel paths: 1 and 2 threads give the same bits. */
static void test_dropconnect_thread_independent(void **state)
{
    (void)state;
    enum { BN = 16, BI = 513, BO = 40 };
    float *bx = malloc(sizeof(float) * BN * BI), *bw = malloc(sizeof(float) * BO * BI);
    float *bdy = malloc(sizeof(float) * BN * BO), *out[2][3];
    assert_true(bx && bw && bdy);
    nrt_rng_fill_normal(2, NRT_RNG_INIT, 0, 0, 0, BN * BI, 0.0f, 1.0f, bx);
    nrt_rng_fill_normal(2, NRT_RNG_INIT, 0, 1, 0, BO * BI, 0.0f, 0.1f, bw);
    nrt_rng_fill_normal(2, NRT_RNG_INIT, 0, 2, 0, BN * BO, 0.0f, 1.0f, bdy);
    for (int t = 0; t < 2; t++) {
        nrt_set_threads(t + 1);
        out[t][0] = malloc(sizeof(float) * BN * BO);
        out[t][1] = malloc(sizeof(float) * BO * BI);
        out[t][2] = malloc(sizeof(float) * BN * BI);
        assert_true(out[t][0] && out[t][1] && out[t][2]);
        uint32_t *bb = malloc(sizeof(uint32_t) * BN * (size_t)nrt_dropconnect_words(BI, BO));
        assert_non_null(bb);
        nrt_dropconnect_dense_forward(BN, BI, BO, bx, bw, NULL, NRT_ACT_RELU, 0.5, 7, 1, 0, bb, out[t][0]);
        nrt_dropconnect_dense_backward_weights(BN, BI, BO, bx, bdy, 0.5, bb, out[t][1], false);
        nrt_dropconnect_dense_backward_data(BN, BI, BO, bdy, bw, 0.5, bb, out[t][2], false);
        free(bb);
    }
    nrt_set_threads(0);
    assert_memory_equal(out[0][0], out[1][0], sizeof(float) * BN * BO);
    assert_memory_equal(out[0][1], out[1][1], sizeof(float) * BO * BI);
    assert_memory_equal(out[0][2], out[1][2], sizeof(float) * BN * BI);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++)
            free(out[t][k]);
    free(bx), free(bw), free(bdy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropconnect_forward_matches_masked_weights),
        cmocka_unit_test(test_dropconnect_backward_matches_masked_weights),
        cmocka_unit_test(test_dropconnect_masks),
        cmocka_unit_test(test_dropconnect_thread_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
