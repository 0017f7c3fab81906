/* bench_kernels.c - GFLOP/s of libnetrt's SGEMM and convolution kernels,
 * and the share of a measured FMA peak.
 *
 * Peak: a register-only loop of independent zmm FMAs (24 accumulators, no
 * memory traffic), on 1 and on 2 threads, compiled for AVX-512 through a
 * target attribute (portable vectors elsewhere). Each figure is the median
 * of R timed runs after a warm-up; workspaces are allocated once, outside
 * the timing, as generated code does. Convolutions are timed under both
 * algorithms (nrt_conv_set_algo: im2col + SGEMM, direct) alternately; a
 * pass the direct kernels do not cover shows the same path twice. Usage: bench_kernels [runs [filter]]
 * (runs default 9; filter: only the rows whose name contains it).
 * Speed only: correctness is the unit tests' job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netrt.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Wall time, or with BENCH_CPU=1 in the environment the process's CPU
 * time (robust on a shared host for 1-thread rows; for 2 threads it adds
 * both threads' time, so it hides the parallel speed-up). */
static double now(void)
{
    static int cpu = -1;
    if (cpu < 0)
        cpu = getenv("BENCH_CPU") && atoi(getenv("BENCH_CPU")) == 1;
    struct timespec t;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- FMA peak --------------------------------------------------------------- */

typedef float V16 __attribute__((vector_size(64)));

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"), noinline))
#else
__attribute__((noinline))
#endif
static float fma_loop(long iters)
{
    V16 x = {0}, y = {0};
    for (int i = 0; i < 16; i++)
        x[i] = 1.0f + 1e-7f * (float)i, y[i] = 1e-7f;
    /* 24 named accumulators: an array would be kept in memory. */
#define NRT_ACC(X) V16 a##X = y * (float)X;
#define NRT_FMA(X) a##X = a##X * x + y;
#define NRT_SUM(X) s += a##X[0];
#define NRT_EACH(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) \
    F(12) F(13) F(14) F(15) F(16) F(17) F(18) F(19) F(20) F(21) F(22) F(23)
    NRT_EACH(NRT_ACC)
    for (long it = 0; it < iters; it++) {
        NRT_EACH(NRT_FMA)
    }
    float s = 0.0f;
    NRT_EACH(NRT_SUM)
    return s;
}

/* GFLOP/s of the FMA loop on `threads` threads (all run it at once). */
static double fma_peak(int threads, int runs)
{
    const long iters = 20 * 1000 * 1000;
    double *t = malloc((size_t)runs * sizeof *t);
    volatile float sink = 0.0f;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
#pragma omp parallel num_threads(threads)
        {
            float s = fma_loop(iters);
#pragma omp atomic
            sink += s;
        }
        t[r] = now() - t0;
    }
    double flops = 2.0 * 16 * 24 * (double)iters * threads;
    double g = flops / median(t, runs) / 1e9;
    free(t);
    (void)sink;
    return g;
}

/* ---- kernels -------------------------------------------------------------------- */

typedef struct Gemm {
    const char *name;
    bool ta, tb;
    int64_t m, n, k;
} Gemm;

static float *rand_floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
    return p;
}

/* Runs f(ctx) enough times per sample to last >= 20 ms; median s per call. */
static double time_call(void (*f)(void *), void *ctx, int runs)
{
    f(ctx);
    double t0 = now();
    int reps = 0;
    while (now() - t0 < 0.02 || reps < 1)
        f(ctx), reps++;
    double *t = malloc((size_t)runs * sizeof *t);
    for (int r = 0; r < runs; r++) {
        double s = now();
        for (int i = 0; i < reps; i++)
            f(ctx);
        t[r] = (now() - s) / reps;
    }
    double m = median(t, runs);
    free(t);
    return m;
}

typedef struct GemmCtx {
    const Gemm *g;
    float *a, *b, *c;
    NrtWorkspace ws;
} GemmCtx;

static void gemm_call(void *p)
{
    GemmCtx *x = p;
    const Gemm *g = x->g;
    nrt_sgemm(g->ta, g->tb, g->m, g->n, g->k, 1.0f, x->a, g->ta ? g->m : g->k, x->b,
              g->tb ? g->k : g->n, 0.0f, x->c, g->n, &x->ws);
}

static double bench_gemm(const Gemm *g, int runs)
{
    GemmCtx x = { g, rand_floats((size_t)(g->m * g->k)), rand_floats((size_t)(g->k * g->n)),
                  rand_floats((size_t)(g->m * g->n)), {NULL, 0} };
    x.ws.floats = nrt_sgemm_workspace_floats(g->m, g->n, g->k);
    x.ws.buf = malloc(x.ws.floats * sizeof(float));
    double s = time_call(gemm_call, &x, runs);
    free(x.a), free(x.b), free(x.c), free(x.ws.buf);
    return 2.0 * (double)(g->m * g->n * g->k) / s / 1e9;
}

typedef enum ConvPass { CONV_FWD, CONV_BWD_DATA, CONV_BWD_WEIGHTS } ConvPass;

typedef struct ConvCtx {
    NrtConvShape s;
    ConvPass pass;
    float *x, *w, *b, *y;
    NrtWorkspace ws;
} ConvCtx;

static void conv_call(void *p)
{
    ConvCtx *c = p;
    if (c->pass == CONV_FWD)
        nrt_conv_forward(&c->s, c->x, c->w, c->b, NRT_ACT_RELU, c->y, &c->ws);
    else if (c->pass == CONV_BWD_DATA)
        nrt_conv_backward_data(&c->s, c->y, c->w, c->x, false, &c->ws);
    else
        nrt_conv_backward_weights(&c->s, c->x, c->y, c->w, false, &c->ws);
}

/* GFLOP/s of one convolution pass under the im2col (r[0]) and the direct
 * (r[1]) algorithm, timed alternately (A B A B ...: the host is shared). */
static void bench_conv(const NrtConvShape *s, ConvPass pass, int runs, double r[2])
{
    int64_t p = nrt_conv_out_h(s) * nrt_conv_out_w(s);
    ConvCtx c = { *s, pass, rand_floats((size_t)(s->n * s->c * s->h * s->w)),
                  rand_floats((size_t)(s->f * s->c * s->k * s->k)), rand_floats((size_t)s->f),
                  rand_floats((size_t)(s->n * s->f * p)), {NULL, 0} };
    c.ws.floats = nrt_conv_workspace_floats(s);
    c.ws.buf = malloc(c.ws.floats * sizeof(float));
    double *t[2] = { malloc((size_t)runs * sizeof(double)), malloc((size_t)runs * sizeof(double)) };
    static const NrtConvAlgo algo[2] = { NRT_CONV_IM2COL, NRT_CONV_DIRECT };
    for (int r_ = 0; r_ < runs; r_++)
        for (int a = 0; a < 2; a++) {
            nrt_conv_set_algo(algo[a]);
            t[a][r_] = time_call(conv_call, &c, 1);
        }
    nrt_conv_set_algo(NRT_CONV_AUTO);
    for (int a = 0; a < 2; a++) {
        r[a] = 2.0 * (double)(s->n * s->f * s->c * s->k * s->k * p) / median(t[a], runs) / 1e9;
        free(t[a]);
    }
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.ws.buf);
}

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 9;
    const char *only = argc > 2 ? argv[2] : "";
    if (runs < 1)
        runs = 1;
    double peak[3] = {0, fma_peak(1, runs), fma_peak(2, runs)};
    printf("SGEMM kernel: %s\n\n", nrt_sgemm_isa() == NRT_ISA_AVX512 ? "avx512" : "portable");
    printf("| measured FMA peak | 1 thread | 2 threads |\n| --- | ---: | ---: |\n");
    printf("| GFLOP/s | %.1f | %.1f |\n\n", peak[1], peak[2]);

    static const Gemm gemms[] = {
        {"1024^3", false, false, 1024, 1024, 1024},
        {"256^3", false, false, 256, 256, 256},
        {"mlp fc1 fwd x W^T", false, true, 64, 512, 784},
        {"mlp fc2 fwd x W^T", false, true, 64, 256, 512},
        {"mlp fc3 fwd x W^T", false, true, 64, 10, 256},
        {"mlp fc1 bwd dW = dy^T x", true, false, 512, 784, 64},
        {"mlp fc1 bwd dx = dy W", false, false, 64, 784, 512},
        {"mlp fc1 fwd bs256", false, true, 256, 512, 784},
        {"lenet conv1 (per sample)", false, false, 6, 784, 25},
        {"lenet conv2 (per sample)", false, false, 16, 100, 150},
        {"resnet8 s1 conv (per sample)", false, false, 16, 784, 144},
        {"resnet8 s2 conv (per sample)", false, false, 32, 196, 144},
        {"resnet8 s3 conv (per sample)", false, false, 64, 49, 288},
    };
    printf("| GEMM (M x N x K) | shape | 1 thr GFLOP/s | %% peak | 2 thr GFLOP/s | %% peak |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
        const Gemm *g = &gemms[i];
        if (!strstr(g->name, only))
            continue;
        double r[3];
        for (int th = 1; th <= 2; th++) {
            set_threads(th);
            r[th] = bench_gemm(g, runs);
        }
        printf("| %s | %lldx%lldx%lld%s%s | %.1f | %.0f%% | %.1f | %.0f%% |\n", g->name,
               (long long)g->m, (long long)g->n, (long long)g->k, g->ta ? " A^T" : "",
               g->tb ? " B^T" : "", r[1], 100 * r[1] / peak[1], r[2], 100 * r[2] / peak[2]);
        fflush(stdout);
    }

    static const struct { const char *name; NrtConvShape s; } convs[] = {
        {"lenet conv1 1->6 5x5 p2 28x28", {64, 1, 28, 28, 6, 5, 1, 2}},
        {"lenet conv2 6->16 5x5 14x14", {64, 6, 14, 14, 16, 5, 1, 0}},
        {"resnet8 stem 1->16 3x3 28x28", {64, 1, 28, 28, 16, 3, 1, 1}},
        {"resnet8 s1 16->16 3x3 28x28", {64, 16, 28, 28, 16, 3, 1, 1}},
        {"resnet8 s2 16->32 3x3 s2 28x28", {64, 16, 28, 28, 32, 3, 2, 1}},
        {"resnet8 s2 32->32 3x3 14x14", {64, 32, 14, 14, 32, 3, 1, 1}},
        {"resnet8 s3 32->64 3x3 s2 14x14", {64, 32, 14, 14, 64, 3, 2, 1}},
        {"resnet8 s3 64->64 3x3 7x7", {64, 64, 7, 7, 64, 3, 1, 1}},
        {"resnet8 short 16->32 1x1 s2", {64, 16, 28, 28, 32, 1, 2, 0}},
        {"tta lenet c1 1->32 3x3 28x28 b128", {128, 1, 28, 28, 32, 3, 1, 1}},
        {"tta lenet c2 32->64 3x3 14x14 b128", {128, 32, 14, 14, 64, 3, 1, 1}},
        {"tta lenet c3 64->128 3x3 7x7 b128", {128, 64, 7, 7, 128, 3, 1, 1}},
    };
    static const char *pass_name[] = {"fwd", "bwd data", "bwd weights"};
    printf("\n| conv (batch 64 unless named) | pass | 1 thr im2col | 1 thr direct | %% peak |"
           " 2 thr im2col | 2 thr direct | %% peak |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++)
        for (int pass = 0; pass < 3 && strstr(convs[i].name, only); pass++) {
            double r[3][2];
            for (int th = 1; th <= 2; th++) {
                set_threads(th);
                bench_conv(&convs[i].s, (ConvPass)pass, runs, r[th]);
            }
            printf("| %s | %s | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% |\n", convs[i].name,
                   pass_name[pass], r[1][0], r[1][1], 100 * r[1][1] / peak[1], r[2][0], r[2][1],
                   100 * r[2][1] / peak[2]);
            fflush(stdout);
        }
    return 0;
}
