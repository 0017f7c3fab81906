/* bench_jit.c - the LLVM JIT against the emitted C: compile time and
 * training speed (a benchmark, not a test; bench/jit.sh runs it and
 * bench/RESULTS.md has the table).
 *
 * usage: bench_jit [--batch N] [--steps N] [--reps N] MODEL.net...
 *
 * Per model: the JIT compile time (jit_open: IR, O3, machine code and
 * linking; the median of REPS compiles, each phase shown), the C path's
 * time to emit and compile the C (-O3 -march=native, into an empty cache,
 * once), then training images/s of each backend: STEPS train_step calls on
 * synthetic batches after 3 warm-up steps, alternated JIT C, C JIT, ...
 * REPS times, the median of each. Both run in this process on the same
 * runtime, so the difference is the compiled step code alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netc_config.h"

#if !NETC_HAVE_LLVM
int main(void)
{
    puts("bench_jit: netc was built without LLVM");
    return 77;
}
#else

#include "cc_backend.h"
#include "emit_c.h"
#include "frontend.h"
#include "jit.h"
#include "kernel.h"

static int64_t g_batch = 64, g_steps = 30, g_reps = 5;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool emit_cb(void *ctx, const char *c_path, const char *h_path, char *err, size_t errsize)
{
    NetcCompilation *c = ctx;
    DiagSink d;
    diag_init(&d, &c->arena);
    return emitc_files(c->graph, c->src.path, c_path, h_path, &d, err, errsize) == EMITC_OK;
}

/* images/s of `steps` train steps (after 3 warm-up steps) on one batch. */
static double train_rate(const NrtModelInfo *info, NrtModel *m, const NrtBatch *b)
{
    NrtError e = {0};
    float loss;
    for (int i = 0; i < 3; i++)
        info->train_step(m, b, (float)info->train.lr, &loss, &e);
    double t0 = now_s();
    for (int64_t i = 0; i < g_steps; i++)
        info->train_step(m, b, (float)info->train.lr, &loss, &e);
    return (double)(g_steps * b->n) / (now_s() - t0);
}

static bool make_batch(const NrtModelInfo *info, NrtBatch *b)
{
    int n = (int)info->batch;
    float *x = malloc((size_t)(n * info->input_size) * sizeof *x);
    if (!x)
        return false;
    for (int64_t i = 0; i < n * info->input_size; i++)
        x[i] = (float)((i * 2654435761u) % 256) / 255.0f;
    *b = (NrtBatch){.x = x, .n = n};
    for (int t = 0; t < info->ntargets; t++) {
        int64_t k = info->targets[t].kind == NRT_TARGET_CLASSES ? 1 : info->targets[t].n;
        void *p = calloc((size_t)(n * k), 4);
        if (!p)
            return false;
        if (info->targets[t].kind == NRT_TARGET_CLASSES)
            b->labels[t] = p;
        else
            b->values[t] = p;
    }
    return true;
}

static void bench_model(const char *path, NetcCompilation *c, size_t len)
{
    c->graph->train.batch = g_batch;
    DiagSink d;
    diag_init(&d, &c->arena);
    KProgram *kp = NULL;
    char err[16384];
    if (lower_program(c->graph, path, &d, &kp)) {
        printf("%s: cannot lower\n", path);
        return;
    }
    double ms[64], opt[64], cg[64], ir[64];
    JitModule *jit = NULL;
    for (int r = 0; r < g_reps && r < 64; r++) {
        jit_close(jit);
        double t0 = now_s();
        if (!(jit = jit_open(kp, err, sizeof err))) {
            printf("%s: %s\n", path, err);
            return;
        }
        ms[r] = (now_s() - t0) * 1e3;
        JitTimes t = jit_times(jit);
        ir[r] = t.ir_ms, opt[r] = t.opt_ms, cg[r] = t.codegen_ms;
    }
    char variant[64];
    snprintf(variant, sizeof variant, "batch=%" PRId64 ";bench", g_batch);
    CcbRequest rq = {c->graph->model, c->src.text, len, variant, emit_cb, c};
    CcbModule mod = {0};
    double t0 = now_s();
    if (!ccb_open(&rq, &mod, err, sizeof err)) {
        printf("%s: %s\n", path, err);
        jit_close(jit);
        return;
    }
    double cc_s = now_s() - t0;
    const NrtModelInfo *ji = jit_info(jit), *ci = mod.info;
    NrtModel *jm = NULL, *cm = NULL;
    NrtError e = {0};
    NrtBatch b = {0};
    double rj[64], rc[64];
    if (make_batch(ji, &b) && ji->create(&jm, 1, &e) == NRT_OK && ci->create(&cm, 1, &e) == NRT_OK) {
        for (int r = 0; r < g_reps && r < 64; r++) {    /* A B B A: neither always goes first */
            if (r % 2 == 0) {
                rj[r] = train_rate(ji, jm, &b);
                rc[r] = train_rate(ci, cm, &b);
            } else {
                rc[r] = train_rate(ci, cm, &b);
                rj[r] = train_rate(ji, jm, &b);
            }
        }
        int n = (int)(g_reps < 64 ? g_reps : 64);
        double mj = median(rj, n), mc = median(rc, n);
        printf("| %s | %" PRId64 " | %.0f (IR %.0f, O3 %.0f, codegen+link %.0f) | %.1f | %.0f | %.0f | %+.1f%% |\n",
               c->graph->model, g_batch, median(ms, n), median(ir, n), median(opt, n), median(cg, n), cc_s, mj, mc,
               100.0 * (mj - mc) / mc);
        fflush(stdout);
    }
    if (jm)
        ji->destroy(jm);
    if (cm)
        ci->destroy(cm);
    free((void *)b.x);
    jit_close(jit);
    ccb_close(&mod);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            g_batch = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--steps") == 0)
            g_steps = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            g_reps = atoll(argv[i + 1]);
    }
    if (i >= argc || g_batch < 1 || g_steps < 1 || g_reps < 1) {
        fputs("usage: bench_jit [--batch N] [--steps N] [--reps N] MODEL.net...\n", stderr);
        return 2;
    }
    puts("| model | batch | JIT compile ms (median) | C emit+cc s | JIT img/s | C img/s | JIT vs C |");
    puts("| --- | --- | --- | --- | --- | --- | --- |");
    for (; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        static char text[1 << 20];
        size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f)
            fclose(f);
        text[len] = '\0';
        NetcCompilation c;
        if (!f || !netc_compilation_init(&c, argv[i], text, len)) {
            printf("%s: cannot read\n", argv[i]);
            continue;
        }
        if (netc_compile(&c))
            printf("%s: cannot compile\n", argv[i]);
        else
            bench_model(argv[i], &c, len);
        netc_compilation_free(&c);
    }
    return 0;
}

#endif
