/* test_mix.c - batch mixing (mix.c): mixup and cutmix.
 *
 * mixup: x becomes lambda x + (1 - lambda) x[perm] exactly (float), perm is
 * a permutation, and over many batches lambda ~ Beta(a, a) has mean 1/2 and
 * variance 1/(4(2a+1)) within statistical bounds. cutmix: the pasted box is
 * what info says, every pixel outside it is the sample's own and every
 * pixel inside it the partner's, and lambda is exactly the kept area
 * fraction. Both: the same seed gives the same bytes for 1 and 2 threads,
 * alpha <= 0 leaves the batch alone.
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

enum { N = 64, C = 3, H = 12, W = 10, D = C * H * W };

/* Sample i, element k: a value that names both. */
static void fill(float *x)
{
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++)
            x[i * D + k] = (float)i + (float)k / 1024.0f;
}

static void check_perm(const int64_t *perm, int64_t n)
{
    char seen[N] = {0};
    for (int64_t i = 0; i < n; i++) {
        assert_true(perm[i] >= 0 && perm[i] < n);
        assert_false(seen[perm[i]]);
        seen[perm[i]] = 1;
    }
}

static void test_mixup_values(void **state)
{
    (void)state;
    static float x[N * D], orig[N * D], scratch[N * D];
    int64_t perm[N];
    NrtMixInfo info;
    fill(x);
    memcpy(orig, x, sizeof x);
    nrt_mixup(x, N, D, 0.4, 17, 5, perm, &info, scratch);
    check_perm(perm, N);
    assert_true(info.lambda > 0.0f && info.lambda < 1.0f);
    assert_true(info.x0 == 0 && info.x1 == 0 && info.y0 == 0 && info.y1 == 0);
    float lam = info.lambda, rest = 1.0f - lam;
    int moved = 0;
    for (int i = 0; i < N; i++) {
        moved += perm[i] != i;
        for (int k = 0; k < D; k++)
            assert_true(x[i * D + k] == lam * orig[i * D + k] + rest * orig[perm[i] * D + k]);
    }
    assert_true(moved > N / 2);
}

static void test_mixup_lambda_distribution(void **state)
{
    (void)state;
    const double alphas[3] = {0.2, 1.0, 2.0};
    enum { BATCHES = 4000 };
    float x[4 * 2], scratch[4 * 2];
    int64_t perm[4];
    for (int a = 0; a < 3; a++) {
        double sum = 0, sq = 0, alpha = alphas[a];
        for (int b = 0; b < BATCHES; b++) {
            NrtMixInfo info;
            memset(x, 0, sizeof x);
            nrt_mixup(x, 4, 2, alpha, 99, (uint64_t)b, perm, &info, scratch);
            assert_true(info.lambda >= 0.0f && info.lambda <= 1.0f);
            sum += info.lambda;
            sq += (double)info.lambda * info.lambda;
        }
        double mean = sum / BATCHES, var = sq / BATCHES - mean * mean;
        double want_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
        /* the mean's sd is sqrt(var / 4000) <= 0.0063; the variance's
         * relative sd is below 3% for these alphas */
        assert_true(fabs(mean - 0.5) < 0.03);
        assert_true(fabs(var - want_var) < 0.12 * want_var);
    }
}

static void test_cutmix_box(void **state)
{
    (void)state;
    static float x[N * D], orig[N * D], scratch[N * D];
    int64_t perm[N];
    int nonempty = 0;
    double lsum = 0;
    for (uint64_t step = 0; step < 300; step++) {
        NrtMixInfo info;
        fill(x);
        memcpy(orig, x, sizeof x);
        nrt_cutmix(x, N, C, H, W, 1.0, 3, step, perm, &info, scratch);
        check_perm(perm, N);
        assert_true(info.y0 >= 0 && info.y0 <= info.y1 && info.y1 <= H);
        assert_true(info.x0 >= 0 && info.x0 <= info.x1 && info.x1 <= W);
        int64_t area = (info.y1 - info.y0) * (info.x1 - info.x0);
        assert_true(info.lambda == (float)(1.0 - (double)area / (H * W)));
        nonempty += area > 0;
        lsum += info.lambda;
        for (int i = 0; i < N; i++) {
            int64_t kept = 0;
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++) {
                        int k = (ch * H + y) * W + xx;
                        bool in = y >= info.y0 && y < info.y1 && xx >= info.x0 && xx < info.x1;
                        float want = in ? orig[perm[i] * D + k] : orig[i * D + k];
                        assert_true(x[i * D + k] == want);
                        kept += x[i * D + k] == orig[i * D + k];
                    }
            /* a moved sample keeps exactly the fraction lambda of its pixels */
            if (perm[i] != i) {
                assert_int_equal(kept, D - C * area);
                assert_true(info.lambda == (float)((double)kept / D));
            }
        }
    }
    assert_true(nonempty > 250);
    /* E[lambda] for alpha = 1 (l uniform): integrate the kept fraction of
     * the clipped floor() box over l (midpoint rule) and all centers. Per
     * batch lambda's sd is below 0.3, so 300 batches: sd below 0.018. */
    double expect = 0;
    enum { STEPS = 4000 };
    for (int s = 0; s < STEPS; s++) {
        double r = sqrt(1.0 - (s + 0.5) / STEPS);
        int64_t bh = (int64_t)floor(H * r), bw = (int64_t)floor(W * r);
        for (int64_t cy = 0; cy < H; cy++)
            for (int64_t cx = 0; cx < W; cx++) {
                int64_t y0 = cy - bh / 2, x0 = cx - bw / 2;
                int64_t ys = (y0 + bh > H ? H : y0 + bh) - (y0 < 0 ? 0 : y0);
                int64_t xs = (x0 + bw > W ? W : x0 + bw) - (x0 < 0 ? 0 : x0);
                expect += 1.0 - (double)(ys * xs) / (H * W);
            }
    }
    expect /= (double)STEPS * H * W;
    assert_true(fabs(lsum / 300 - expect) < 0.07);
}

static void test_threads_and_off(void **state)
{
    (void)state;
    static float a[N * D], b[N * D], scratch[N * D];
    int64_t pa[N], pb[N];
    NrtMixInfo ia, ib;
    int threads = nrt_get_threads();
    for (int kind = 0; kind < 2; kind++) {
        fill(a);
        fill(b);
        nrt_set_threads(1);
        if (kind == 0)
            nrt_mixup(a, N, D, 0.3, 8, 2, pa, &ia, scratch);
        else
            nrt_cutmix(a, N, C, H, W, 0.3, 8, 2, pa, &ia, scratch);
        nrt_set_threads(2);
        if (kind == 0)
            nrt_mixup(b, N, D, 0.3, 8, 2, pb, &ib, scratch);
        else
            nrt_cutmix(b, N, C, H, W, 0.3, 8, 2, pb, &ib, scratch);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(pa, pb, sizeof pa);
        assert_memory_equal(&ia, &ib, sizeof ia);
    }
    /* a batch large enough for the parallel paths (mix.c's MIX_PAR_MIN) */
    enum { BN = 128, BC = 4, BH = 64, BW = 64, BD = BC * BH * BW };
    float *x1 = malloc(sizeof(float) * BN * BD), *x2 = malloc(sizeof(float) * BN * BD);
    float *sc = malloc(sizeof(float) * BN * BD);
    int64_t q1[BN], q2[BN];
    assert_true(x1 && x2 && sc);
    for (uint64_t step = 0; step < 8; step++)
        for (int kind = 0; kind < 2; kind++) {
            for (int i = 0; i < BN * BD; i++)
                x1[i] = x2[i] = (float)(i % 9973) * 1e-3f;
            nrt_set_threads(1);
            if (kind == 0)
                nrt_mixup(x1, BN, BD, 0.3, 8, step, q1, &ia, sc);
            else
                nrt_cutmix(x1, BN, BC, BH, BW, 0.3, 8, step, q1, &ia, sc);
            nrt_set_threads(2);
            if (kind == 0)
                nrt_mixup(x2, BN, BD, 0.3, 8, step, q2, &ib, sc);
            else
                nrt_cutmix(x2, BN, BC, BH, BW, 0.3, 8, step, q2, &ib, sc);
            assert_memory_equal(x1, x2, sizeof(float) * BN * BD);
            assert_memory_equal(q1, q2, sizeof q1);
            assert_memory_equal(&ia, &ib, sizeof ia);
        }
    free(x1), free(x2), free(sc);
    nrt_set_threads(threads);
    fill(a);
    memcpy(b, a, sizeof a);
    nrt_mixup(a, N, D, 0.0, 8, 2, pa, &ia, scratch);
    nrt_cutmix(a, N, C, H, W, -1.0, 8, 2, pb, &ib, scratch);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < N; i++)
        assert_true(pa[i] == i && pb[i] == i);
    assert_true(ia.lambda == 1.0f && ib.lambda == 1.0f);
}

/* The losses' partner targets: labels gathered, values mixed by lambda. */
static void test_mix_targets(void **state)
{
    (void)state;
    const int32_t labels[4] = {3, 1, 4, 1};
    const int64_t perm[4] = {2, 0, 3, 1};
    int32_t out[4];
    nrt_mix_labels(4, labels, perm, out);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 1);
    assert_int_equal(out[3], 1);
    const float v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    float mv[8];
    nrt_mix_values(4, 2, v, perm, 0.25f, mv);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            assert_float_equal(mv[i * 2 + j], 0.25f * v[i * 2 + j] + 0.75f * v[perm[i] * 2 + j], 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixup_values),
        cmocka_unit_test(test_mixup_lambda_distribution),
        cmocka_unit_test(test_cutmix_box),
        cmocka_unit_test(test_threads_and_off),
        cmocka_unit_test(test_mix_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
