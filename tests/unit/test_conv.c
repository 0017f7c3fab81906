/* test_conv.c - convolution kernels (im2col + SGEMM) against the direct-loop
 * references: forward (with bias and ReLU), backward data (overwrite and
 * accumulate), backward weights (overwrite and accumulate), backward bias.
 *
 * Error bound per element: 2 * (terms + 2) * 2^-24 * magnitude, where the
 * magnitude is the same reference run on absolute values (so the bound is
 * the float dot-product bound, not a guess). Configurations cover kernel
 * 1/3/5, stride 1/2, pad 0/1/2, 1..16 channels and filters, odd planes,
 * batches smaller and larger than NRT_CONV_SLOTS, the lenet_bn and resnet8
 * layer shapes, the AVX-512 and portable paths, the direct convolution
 * against im2col + SGEMM (bitwise) over awkward shapes, the caller's
 * workspace, and bitwise equality across thread counts.
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

static uint64_t rng_state = 0x2545f4914f6cdd1du;

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

static float *abs_copy(const float *p, size_t n)
{
    float *q = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        q[i] = fabsf(p[i]);
    return q;
}

static void expect_within(const char *what, const NrtConvShape *s, const float *got,
                          const float *want, const float *mag, size_t n, int64_t terms)
{
    double u = ldexp(1.0, -24);
    for (size_t i = 0; i < n; i++) {
        double bound = 2.0 * (double)(terms + 2) * u * (mag[i] + 1.0) + 1e-30;
        if (!(fabs((double)got[i] - want[i]) <= bound))
            fail_msg("%s n=%lld c=%lld h=%lld w=%lld f=%lld k=%lld s=%lld p=%lld: "
                     "element %zu: %.9g vs %.9g (bound %.3g)", what, (long long)s->n,
                     (long long)s->c, (long long)s->h, (long long)s->w, (long long)s->f,
                     (long long)s->k, (long long)s->stride, (long long)s->pad, i,
                     (double)got[i], (double)want[i], bound);
    }
}

typedef struct Bufs {
    size_t nx, ny, nw;
    float *x, *w, *b, *dy;
    float *ax, *aw, *ab, *ady;   /* absolute values, for the bounds */
} Bufs;

static Bufs bufs_new(const NrtConvShape *s)
{
    Bufs B;
    B.nx = (size_t)(s->n * s->c * s->h * s->w);
    B.ny = (size_t)(s->n * s->f * nrt_conv_out_h(s) * nrt_conv_out_w(s));
    B.nw = (size_t)(s->f * s->c * s->k * s->k);
    B.x = rand_buf(B.nx), B.w = rand_buf(B.nw), B.b = rand_buf((size_t)s->f), B.dy = rand_buf(B.ny);
    B.ax = abs_copy(B.x, B.nx), B.aw = abs_copy(B.w, B.nw);
    B.ab = abs_copy(B.b, (size_t)s->f), B.ady = abs_copy(B.dy, B.ny);
    return B;
}

static void bufs_free(Bufs *B)
{
    free(B->x), free(B->w), free(B->b), free(B->dy);
    free(B->ax), free(B->aw), free(B->ab), free(B->ady);
}

static void check_forward(const NrtConvShape *s, const Bufs *B, NrtWorkspace *ws)
{
    float *y = malloc(B->ny * sizeof(float)), *yr = malloc(B->ny * sizeof(float));
    float *mag = malloc(B->ny * sizeof(float));
    nrt_conv_forward_ref(s, B->ax, B->aw, B->ab, NRT_ACT_NONE, mag);
    for (int act = 0; act <= 1; act++) {
        const float *bias = act ? B->b : NULL;
        for (size_t i = 0; i < B->ny; i++)
            y[i] = NAN;
        nrt_conv_forward(s, B->x, B->w, bias, (NrtAct)act, y, ws);
        nrt_conv_forward_ref(s, B->x, B->w, bias, (NrtAct)act, yr);
        expect_within("forward", s, y, yr, mag, B->ny, s->c * s->k * s->k);
    }
    free(y), free(yr), free(mag);
}

static void check_backward_data(const NrtConvShape *s, const Bufs *B, NrtWorkspace *ws)
{
    float *dx = malloc(B->nx * sizeof(float)), *dxr = malloc(B->nx * sizeof(float));
    float *mag = malloc(B->nx * sizeof(float));
    for (int acc = 0; acc <= 1; acc++) {
        for (size_t i = 0; i < B->nx; i++)
            dx[i] = dxr[i] = acc ? frand() : NAN;
        for (size_t i = 0; i < B->nx; i++)
            mag[i] = acc ? fabsf(dx[i]) : 0.0f;
        nrt_conv_backward_data(s, B->dy, B->w, dx, acc, ws);
        nrt_conv_backward_data_ref(s, B->dy, B->w, dxr, acc);
        nrt_conv_backward_data_ref(s, B->ady, B->aw, mag, true);
        expect_within("backward data", s, dx, dxr, mag, B->nx, s->f * s->k * s->k + 1);
    }
    free(dx), free(dxr), free(mag);
}

static void check_backward_weights(const NrtConvShape *s, const Bufs *B, NrtWorkspace *ws)
{
    float *dw = malloc(B->nw * sizeof(float)), *dwr = malloc(B->nw * sizeof(float));
    float *mag = malloc(B->nw * sizeof(float));
    int64_t terms = s->n * nrt_conv_out_h(s) * nrt_conv_out_w(s) + NRT_CONV_SLOTS + 1;
    for (int acc = 0; acc <= 1; acc++) {
        for (size_t i = 0; i < B->nw; i++)
            dw[i] = dwr[i] = acc ? frand() : NAN;
        for (size_t i = 0; i < B->nw; i++)
            mag[i] = acc ? fabsf(dw[i]) : 0.0f;
        nrt_conv_backward_weights(s, B->x, B->dy, dw, acc, ws);
        nrt_conv_backward_weights_ref(s, B->x, B->dy, dwr, acc);
        nrt_conv_backward_weights_ref(s, B->ax, B->ady, mag, true);
        expect_within("backward weights", s, dw, dwr, mag, B->nw, terms);
    }
    free(dw), free(dwr), free(mag);
}

static void check_backward_bias(const NrtConvShape *s, const Bufs *B)
{
    int64_t p = nrt_conv_out_h(s) * nrt_conv_out_w(s);
    float db[16], mag[16], want[16];
    for (int acc = 0; acc <= 1; acc++) {
        for (int64_t o = 0; o < s->f; o++) {
            db[o] = acc ? frand() : NAN;
            double sum = acc ? db[o] : 0.0, m = acc ? fabs(db[o]) : 0.0;
            for (int64_t i = 0; i < s->n; i++)
                for (int64_t q = 0; q < p; q++) {
                    sum += B->dy[(i * s->f + o) * p + q];
                    m += B->ady[(i * s->f + o) * p + q];
                }
            want[o] = (float)sum, mag[o] = (float)m;
        }
        nrt_conv_backward_bias(s, B->dy, db, acc);
        expect_within("backward bias", s, db, want, mag, (size_t)s->f, s->n * p + s->n + 1);
    }
}

static void check_all(const NrtConvShape *s, NrtWorkspace *ws)
{
    Bufs B = bufs_new(s);
    check_forward(s, &B, ws);
    check_backward_data(s, &B, ws);
    check_backward_weights(s, &B, ws);
    if (s->f <= 16)
        check_backward_bias(s, &B);
    bufs_free(&B);
}

static void test_small_configurations(void **state)
{
    (void)state;
    static const int64_t ks[] = {1, 3, 5}, cf[][2] = {{1, 1}, {3, 5}, {16, 7}, {2, 16}};
    static const int64_t ns[] = {1, 3, 11};
    int count = 0;
    for (int ki = 0; ki < 3; ki++)
        for (int64_t st = 1; st <= 2; st++)
            for (int64_t pad = 0; pad <= 2; pad++)
                for (int c = 0; c < 4; c++) {
                    NrtConvShape s = { ns[count % 3], cf[c][0], 7 + count % 3, 9 - count % 2,
                                       cf[c][1], ks[ki], st, pad };
                    count++;
                    if (s.h + 2 * pad < s.k || s.w + 2 * pad < s.k)
                        continue;
                    check_all(&s, NULL);
                }
}

/* lenet_bn and resnet8 layers, batch 3 and 9 (over NRT_CONV_SLOTS). */
static void test_model_layers(void **state)
{
    (void)state;
    static const NrtConvShape layers[] = {
        {3, 1, 28, 28, 6, 5, 1, 2},    {9, 6, 14, 14, 16, 5, 1, 0},
        {3, 1, 28, 28, 16, 3, 1, 1},   {9, 16, 28, 28, 16, 3, 1, 1},
        {3, 16, 28, 28, 32, 3, 2, 1},  {3, 16, 28, 28, 32, 1, 2, 0},
        {3, 32, 14, 14, 64, 3, 2, 1},  {9, 64, 7, 7, 64, 3, 1, 1},
        {9, 32, 14, 14, 32, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        check_all(&layers[i], NULL);
}

/* Shapes outside the AVX-512 im2col (rows over 32 columns, stride 3) take
 * the portable rows; every shape also runs with the portable kernels. */
static void test_isa_paths(void **state)
{
    (void)state;
    static const NrtConvShape shapes[] = {
        {2, 3, 9, 40, 5, 3, 1, 1}, {2, 3, 11, 11, 4, 3, 3, 1}, {3, 16, 28, 28, 32, 3, 2, 1},
        {3, 16, 14, 14, 16, 3, 1, 1}, {2, 9, 10, 35, 8, 5, 2, 2},
    };
    for (int isa = 0; isa < 2; isa++) {
        nrt_sgemm_set_isa(isa ? NRT_ISA_PORTABLE : NRT_ISA_AUTO);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check_all(&shapes[i], NULL);
    }
    nrt_sgemm_set_isa(NRT_ISA_AUTO);
}

/* out = forward (bias, ReLU) then backward data (overwrite, then
 * accumulated onto itself) under one convolution algorithm. */
static void run_algo(NrtConvAlgo algo, const NrtConvShape *s, const Bufs *B, float *y,
                     float *dx, float *dx2)
{
    nrt_conv_set_algo(algo);
    nrt_conv_forward(s, B->x, B->w, B->b, NRT_ACT_RELU, y, NULL);
    nrt_conv_backward_data(s, B->dy, B->w, dx, false, NULL);
    memcpy(dx2, B->x, B->nx * sizeof(float));
    nrt_conv_backward_data(s, B->dy, B->w, dx2, true, NULL);
    nrt_conv_set_algo(NRT_CONV_AUTO);
}

/* The direct convolution (conv_direct_avx512.c) over awkward shapes: k = 1,
 * 3, 5, 7, stride 1 to 3, every pad 0 .. k-1, odd planes (some wider than
 * 32 columns), c = 1, filters not a multiple of 8, depth over one K slice:
 * forward and stride-1 backward data give the same bits as im2col + SGEMM
 * (but backward data of 4-7 channels: there a direct flip runs against
 * col2im), and everything (the weight gradient; strided backward data, by
 * phases at stride 2 and col2im at 3) is within the bound of the
 * reference (check_all). Without AVX-512 both runs take the im2col path. */
static void test_direct_paths(void **state)
{
    (void)state;
    static const int64_t cf[][2] = {{1, 5}, {3, 9}, {16, 17}, {30, 8}, {2, 1}, {5, 7}};
    int count = 0;
    for (int64_t k = 1; k <= 7; k += 2)
        for (int64_t st = 1; st <= 3; st++)
            for (int64_t pad = 0; pad < k; pad++) {
                int v = count++ % 6;
                NrtConvShape s = { 1 + count % 3, cf[v][0], 7 + 2 * (count % 4),
                                   count % 7 == 0 ? 37 : 9 + 2 * (count % 3), cf[v][1], k, st,
                                   pad };
                if (s.h + 2 * pad < k || s.w + 2 * pad < k)
                    continue;
                Bufs B = bufs_new(&s);
                float *out[2][3];
                for (int a = 0; a < 2; a++) {
                    out[a][0] = malloc(B.ny * sizeof(float));
                    out[a][1] = malloc(B.nx * sizeof(float));
                    out[a][2] = malloc(B.nx * sizeof(float));
                    run_algo(a ? NRT_CONV_DIRECT : NRT_CONV_IM2COL, &s, &B, out[a][0],
                             out[a][1], out[a][2]);
                }
                assert_memory_equal(out[0][0], out[1][0], B.ny * sizeof(float));
                /* strides 2-3 sum in other orders, and so does backward data of 4-7
                 * channels (a direct flip against col2im): check_all's bound below */
                if (st == 1 && (s.c < 4 || s.c >= 8)) {
                    assert_memory_equal(out[0][1], out[1][1], B.nx * sizeof(float));
                    assert_memory_equal(out[0][2], out[1][2], B.nx * sizeof(float));
                }
                for (int a = 0; a < 2; a++)
                    free(out[a][0]), free(out[a][1]), free(out[a][2]);
                bufs_free(&B);
                nrt_conv_set_algo(NRT_CONV_DIRECT);
                check_all(&s, NULL);
                nrt_conv_set_algo(NRT_CONV_AUTO);
            }
}

/* Batch 1 split over threads (the direct forward's units, weight panels
 * and channels of the padded copy): with the region cost forced to 0
 * (every split pays) and to "never", on 1-3 threads, the resnet8 shapes and
 * awkward ones (5 and 17 filters, 3 channels, stride 3, 37 columns, 7 x 7
 * planes of 2 tiles) give the bits of im2col + SGEMM, within the
 * reference's bound, into a caller's workspace nothing is written past. */
static void test_batch1_threads(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const NrtConvShape shapes[] = {
        {1, 16, 28, 28, 16, 3, 1, 1}, {1, 16, 28, 28, 32, 3, 2, 1}, {1, 64, 7, 7, 64, 3, 1, 1},
        {1, 3, 11, 37, 17, 5, 3, 2}, {1, 30, 9, 9, 5, 3, 2, 0}, {1, 8, 13, 12, 40, 3, 1, 2},
    };
    for (int sh = 0; sh < 6; sh++) {
        const NrtConvShape *s = &shapes[sh];
        Bufs B = bufs_new(s);
        size_t need = nrt_conv_workspace_floats(s);
        float *buf = malloc((need + 8) * sizeof(float)), *want = malloc(B.ny * sizeof(float));
        float *y = malloc(B.ny * sizeof(float));
        nrt_conv_set_algo(NRT_CONV_IM2COL);
        nrt_conv_forward(s, B.x, B.w, B.b, NRT_ACT_RELU, want, NULL);
        nrt_conv_set_algo(NRT_CONV_AUTO);
        for (int forced = 0; forced < 2; forced++)
            for (int th = 1; th <= 3; th++) {
                nrt_par_set_region_ns(forced ? INT64_MAX : 0);
                omp_set_num_threads(th);
                for (size_t i = 0; i < need + 8; i++)
                    buf[i] = NAN;   /* the copy's padding must be zeroed, not assumed */
                NrtWorkspace ws = { buf, need };
                nrt_conv_forward(s, B.x, B.w, B.b, NRT_ACT_RELU, y, &ws);
                omp_set_num_threads(2);
                assert_memory_equal(y, want, B.ny * sizeof(float));
                for (size_t i = need; i < need + 8; i++)
                    assert_true(isnan(buf[i]));
            }
        nrt_par_set_region_ns(0);
        omp_set_num_threads(3);
        check_forward(s, &B, NULL);
        omp_set_num_threads(2);
        nrt_par_set_region_ns(-1);
        free(buf), free(want), free(y);
        bufs_free(&B);
    }
#else
    skip();
#endif
}

/* nrt_conv_forward_bn (the batchnorm folded into the direct path's packed
 * weights, split over threads at batch 1) has the bits of
 * nrt_batchnorm_fold + nrt_conv_forward: batch 1 and 3, direct and im2col
 * shapes, with and without the conv's bias, relu and none, 1-3 threads
 * with the region cost forced to 0, the portable kernels too. */
static void test_forward_bn(void **state)
{
    (void)state;
    static const NrtConvShape shapes[] = {
        {1, 16, 28, 28, 16, 3, 1, 1}, {1, 32, 14, 14, 64, 3, 2, 1}, {3, 3, 11, 37, 17, 5, 3, 2},
        {1, 1, 28, 28, 16, 3, 1, 1}, {1, 16, 28, 28, 32, 1, 2, 0}, {3, 8, 13, 12, 40, 3, 1, 2},
    };
    for (int sh = 0; sh < 6; sh++) {
        NrtConvShape s = shapes[sh];
        Bufs B = bufs_new(&s);
        float *g = rand_buf((size_t)s.f), *be = rand_buf((size_t)s.f), *rm = rand_buf((size_t)s.f);
        float *rv = rand_buf((size_t)s.f), *wf = malloc(B.nw * sizeof(float));
        float *bf = malloc((size_t)s.f * sizeof(float)), *want = malloc(B.ny * sizeof(float));
        float *y = malloc(B.ny * sizeof(float));
        for (int64_t o = 0; o < s.f; o++)
            rv[o] = fabsf(rv[o]) + 0.1f;
        for (int v = 0; v < 8; v++) {
            const float *bias = v & 1 ? B.b : NULL;
            NrtAct act = v & 2 ? NRT_ACT_RELU : NRT_ACT_NONE;
            int th = 1 + v % 3;
            nrt_sgemm_set_isa(v & 4 ? NRT_ISA_PORTABLE : NRT_ISA_AUTO);
            nrt_batchnorm_fold(s.f, B.nw / (size_t)s.f, B.w, bias, g, be, rm, rv, 1e-5, wf, bf);
            nrt_conv_forward(&s, B.x, wf, bf, act, want, NULL);
#ifdef _OPENMP
            nrt_par_set_region_ns(0);
            omp_set_num_threads(th);
#endif
            nrt_conv_forward_bn(&s, B.x, B.w, bias, g, be, rm, rv, 1e-5, act, y, NULL);
#ifdef _OPENMP
            omp_set_num_threads(2);
            nrt_par_set_region_ns(-1);
#endif
            nrt_sgemm_set_isa(NRT_ISA_AUTO);
            (void)th;
            assert_memory_equal(y, want, B.ny * sizeof(float));
        }
        free(g), free(be), free(rm), free(rv), free(wf), free(bf), free(want), free(y);
        bufs_free(&B);
    }
}

/* The caller's workspace (exact size, unaligned), nothing written past it. */
static void test_workspace(void **state)
{
    (void)state;
    NrtConvShape s = { 10, 5, 12, 11, 7, 3, 2, 1 };
    size_t need = nrt_conv_workspace_floats(&s);
    float *buf = malloc((need + 9) * sizeof(float));
    for (size_t i = 0; i < need + 9; i++)
        buf[i] = -3.0f;
    NrtWorkspace ws = { buf + 1, need };
    check_all(&s, &ws);
    assert_true(buf[0] == -3.0f);
    for (size_t i = need + 1; i < need + 9; i++)
        assert_true(buf[i] == -3.0f);
    free(buf);
}

/* Same bits for 1, 2 and 3 threads, batch 20 and 1. */
static void test_thread_count_bitwise(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const NrtConvShape shapes[] = {{20, 16, 28, 28, 16, 3, 1, 1}, {1, 16, 28, 28, 32, 3, 2, 1}};
    for (int sh = 0; sh < 2; sh++) {
        const NrtConvShape *s = &shapes[sh];
        Bufs B = bufs_new(s);
        float *out[3][3];
        for (int th = 0; th < 3; th++) {
            omp_set_num_threads(th + 1);
            out[th][0] = malloc(B.ny * sizeof(float));
            out[th][1] = malloc(B.nx * sizeof(float));
            out[th][2] = malloc(B.nw * sizeof(float));
            nrt_conv_forward(s, B.x, B.w, B.b, NRT_ACT_RELU, out[th][0], NULL);
            nrt_conv_backward_data(s, B.dy, B.w, out[th][1], false, NULL);
            nrt_conv_backward_weights(s, B.x, B.dy, out[th][2], false, NULL);
        }
        omp_set_num_threads(2);
        size_t sizes[3] = {B.ny, B.nx, B.nw};
        for (int th = 1; th < 3; th++)
            for (int o = 0; o < 3; o++)
                assert_memory_equal(out[0][o], out[th][o], sizes[o] * sizeof(float));
        for (int th = 0; th < 3; th++)
            for (int o = 0; o < 3; o++)
                free(out[th][o]);
        bufs_free(&B);
    }
#else
    skip();
#endif
}

/* nrt_conv_backward_weights_bias: the bits of nrt_conv_backward_weights
 * and of nrt_conv_backward_bias called apart, overwriting and
 * accumulating, db NULL (weights alone), through the direct and the
 * im2col weight gradient, batch 1 (inline), 5 and 19 (groups), on 1-3
 * threads, into a caller's workspace nothing is written past. */
static void check_weights_bias(const NrtConvShape *s, NrtConvAlgo algo)
{
    Bufs B = bufs_new(s);
    size_t need = nrt_conv_workspace_floats(s);
    float *buf = malloc((need + 1) * sizeof(float));
    buf[need] = -3.0f;
    NrtWorkspace ws = { buf, need };
    float *dw[2], *db[2];
    nrt_conv_set_algo(algo);
    for (int acc = 0; acc < 2; acc++) {
        for (int v = 0; v < 2; v++) {
            dw[v] = malloc(B.nw * sizeof(float)), db[v] = malloc((size_t)s->f * sizeof(float));
            for (size_t i = 0; i < B.nw; i++)
                dw[v][i] = (float)i * 0.25f;
            for (int64_t o = 0; o < s->f; o++)
                db[v][o] = 1.5f - (float)o;
        }
        nrt_conv_backward_weights(s, B.x, B.dy, dw[0], acc, &ws);
        nrt_conv_backward_bias(s, B.dy, db[0], acc);
        nrt_conv_backward_weights_bias(s, B.x, B.dy, dw[1], db[1], acc, &ws);
        assert_memory_equal(dw[0], dw[1], B.nw * sizeof(float));
        assert_memory_equal(db[0], db[1], (size_t)s->f * sizeof(float));
        nrt_conv_backward_weights_bias(s, B.x, B.dy, dw[1], NULL, false, &ws);
        nrt_conv_backward_weights(s, B.x, B.dy, dw[0], false, &ws);
        assert_memory_equal(dw[0], dw[1], B.nw * sizeof(float));
        for (int v = 0; v < 2; v++)
            free(dw[v]), free(db[v]);
    }
    nrt_conv_set_algo(NRT_CONV_AUTO);
    assert_true(buf[need] == -3.0f);
    free(buf);
    bufs_free(&B);
}

static void test_weights_bias(void **state)
{
    (void)state;
    static const NrtConvShape shapes[] = {
        {19, 16, 28, 28, 16, 3, 1, 1}, {5, 16, 14, 14, 32, 3, 2, 1}, {1, 6, 14, 14, 16, 5, 1, 0},
        {5, 3, 11, 37, 17, 5, 3, 2}, {19, 8, 7, 7, 12, 1, 1, 0},
    };
    int before = nrt_get_threads();
    for (int th = 1; th <= 3; th++) {
        nrt_set_threads(th);
        for (int sh = 0; sh < 5; sh++) {
            check_weights_bias(&shapes[sh], NRT_CONV_DIRECT);
            check_weights_bias(&shapes[sh], NRT_CONV_IM2COL);
        }
    }
    nrt_set_threads(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_configurations),
        cmocka_unit_test(test_model_layers),
        cmocka_unit_test(test_isa_paths),
        cmocka_unit_test(test_direct_paths),
        cmocka_unit_test(test_batch1_threads),
        cmocka_unit_test(test_forward_bn),
        cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_thread_count_bitwise),
        cmocka_unit_test(test_weights_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
