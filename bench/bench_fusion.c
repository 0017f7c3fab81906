/* bench_fusion.c - what each fusion pass buys, measured in one process (a
 * benchmark, not a test; bench/RESULTS.md, "Fusion", has the tables).
 *
 * usage: bench_fusion [--batch N] [--steps N] [--reps N] [--threads N] [--infer 1] MODEL.net...
 *
 * Per model, six programs from one graph: every pass (fused), each pass
 * off alone (--no-fuse=epilogue / bnfold / elementwise / update) and none
 * (--no-fuse), all JIT-compiled here, so they share the runtime and differ
 * in their step code alone. Training: STEPS train_step calls (lr 0.01, the
 * same synthetic batch) per variant, the variants alternated REPS times;
 * inference: predict at the batch and at batch 1 alike. Times are process
 * CPU time per call (run it with --threads 1 and OMP_WAIT_POLICY=passive),
 * the fastest of the REPS windows (the least disturbed on a shared
 * machine) with the median beside it; "time / fused" > 1 is what the
 * pass(es) turned off there bought.
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
    puts("bench_fusion: netc was built without LLVM");
    return 77;
}
#else

#include "frontend.h"
#include "jit.h"
#include "kernel.h"

enum { NV = 6, MAXREPS = 64 };
static const char *vname[NV] = {"fused", "no epilogue", "no bnfold", "no elementwise", "no update", "--no-fuse"};
static const unsigned voff[NV] = {0, IR_FUSE_EPILOGUE, IR_FUSE_BN_FOLD, IR_FUSE_ELEMENTWISE, IR_FUSE_UPDATE,
                                  IR_FUSE_ALL};

static int64_t g_batch = 64, g_steps = 20, g_reps = 7, g_infer_only = 0;   /* --infer 1: no training */

/* Process CPU time, not wall time: on a shared machine the time spent
 * waiting for a core is not the program's (with one OpenMP thread and a
 * passive wait policy it is the step's own compute and memory time). */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0', *len = (size_t)n;
    return buf;
}

typedef struct Variant {
    JitModule *jit;
    const NrtModelInfo *info;
    NrtModel *m;
    double t[3][MAXREPS];   /* seconds per call: train, predict at the batch, predict at 1 */
} Variant;

typedef struct Data {
    NrtBatch b;
    float *x, *outs[NRT_MAX_OUTPUTS];
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
} Data;

static void data_make(Data *d, const NrtModelInfo *info)
{
    memset(d, 0, sizeof *d);
    int64_t n = info->batch;
    uint64_t s = 1;
    d->x = malloc((size_t)(n * info->input_size) * sizeof(float));
    for (int64_t i = 0; i < n * info->input_size; i++)
        d->x[i] = (float)((s = s * 6364136223846793005ULL + 1) >> 40) / (float)(1 << 24);
    d->b = (NrtBatch){.x = d->x, .n = (int)n};
    for (int t = 0; t < info->ntargets; t++) {
        int64_t k = info->targets[t].n;
        d->labels[t] = calloc((size_t)n, sizeof(int32_t));
        d->values[t] = calloc((size_t)(n * k), sizeof(float));
        for (int64_t i = 0; i < n; i++)
            d->labels[t][i] = (int32_t)(i % k);
        d->b.labels[t] = d->labels[t];
        d->b.values[t] = d->values[t];
    }
    for (int k = 0; k < info->noutputs; k++)
        d->outs[k] = malloc((size_t)(n * info->outputs[k].size) * sizeof(float));
}

static void data_free(Data *d)
{
    free(d->x);
    for (int t = 0; t < NRT_MAX_TARGETS; t++)
        free(d->labels[t]), free(d->values[t]);
    for (int k = 0; k < NRT_MAX_OUTPUTS; k++)
        free(d->outs[k]);
}

/* Seconds per call of `what` (0 train, 1 predict at the batch, 2 at 1). */
static double window(Variant *v, Data *d, int what)
{
    NrtError e;
    float loss;
    int64_t calls = what == 2 ? 20 * g_steps : g_steps;
    double t0 = now_s();
    for (int64_t i = 0; i < calls; i++) {
        NrtStatus st = what == 0 ? v->info->train_step(v->m, &d->b, 0.01f, &loss, &e)
                                 : v->info->predict(v->m, d->x, what == 1 ? d->b.n : 1, d->outs, &e);
        if (st != NRT_OK) {
            fprintf(stderr, "bench_fusion: %s\n", e.msg);
            exit(1);
        }
    }
    return (now_s() - t0) / (double)calls;
}

static void report(const char *name, Variant *v, int what)
{
    static const char *kinds[3] = {"train", "predict", "predict"};
    double best[NV], med[NV];
    for (int k = 0; k < NV; k++) {
        double s[MAXREPS];
        memcpy(s, v[k].t[what], (size_t)g_reps * sizeof *s);
        qsort(s, (size_t)g_reps, sizeof *s, cmp_dbl);
        best[k] = s[0];
        med[k] = s[g_reps / 2];
    }
    for (int k = 0; k < NV; k++)
        printf("| %s | %s b%" PRId64 " | %s | %.1f us | %.1f us | %.3fx |\n", name, kinds[what],
               what == 2 ? (int64_t)1 : g_batch, vname[k], best[k] * 1e6, med[k] * 1e6, best[k] / best[0]);
}

static void bench_model(const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    NetcCompilation c;
    if (!text || !netc_compilation_init(&c, path, text, len) || netc_compile(&c)) {
        fprintf(stderr, "bench_fusion: cannot compile %s\n", path);
        exit(1);
    }
    c.graph->train.batch = g_batch;
    Variant v[NV];
    memset(v, 0, sizeof v);
    char err[4096];
    for (int k = 0; k < NV; k++) {
        KProgram *kp;
        DiagSink d;
        diag_init(&d, &c.arena);
        c.graph->fuse = IR_FUSE_ALL & ~voff[k];
        NrtError e;
        if (lower_program(c.graph, path, &d, &kp) || !(v[k].jit = jit_open(kp, err, sizeof err))
            || (v[k].info = jit_info(v[k].jit))->create(&v[k].m, 1, &e) != NRT_OK) {
            fprintf(stderr, "bench_fusion: %s: %s\n", path, err);
            exit(1);
        }
    }
    Data d;
    data_make(&d, v[0].info);
    for (int what = g_infer_only ? 1 : 0; what < 3; what++) {
        for (int k = 0; k < NV; k++)
            window(&v[k], &d, what);    /* warm-up */
        for (int r = 0; r < g_reps; r++)
            for (int k = 0; k < NV; k++)
                v[k].t[what][r] = window(&v[k], &d, what);
    }
    const char *base = strrchr(path, '/');
    char name[256];
    snprintf(name, sizeof name, "%s", base ? base + 1 : path);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
    for (int what = g_infer_only ? 1 : 0; what < 3; what++)
        report(name, v, what);
    for (int k = 0; k < NV; k++) {
        v[k].info->destroy(v[k].m);
        jit_close(v[k].jit);
    }
    data_free(&d);
    netc_compilation_free(&c);
    free(text);
}

int main(int argc, char **argv)
{
    int first = 1, threads = 0;
    for (; first + 1 < argc && argv[first][0] == '-'; first += 2) {
        int64_t v = atoll(argv[first + 1]);
        if (strcmp(argv[first], "--batch") == 0)
            g_batch = v;
        else if (strcmp(argv[first], "--steps") == 0)
            g_steps = v;
        else if (strcmp(argv[first], "--reps") == 0)
            g_reps = v;
        else if (strcmp(argv[first], "--threads") == 0)
            threads = (int)v;
        else if (strcmp(argv[first], "--infer") == 0)
            g_infer_only = v;
    }
    if (first >= argc || g_batch < 1 || g_steps < 1 || g_reps < 1 || g_reps > MAXREPS) {
        fputs("usage: bench_fusion [--batch N] [--steps N] [--reps N] [--threads N] [--infer 1] MODEL.net...\n",
              stderr);
        return 2;
    }
    if (threads > 0)
        nrt_set_threads(threads);
    printf("| model | call | variant | fastest | median | time / fused |\n| --- | --- | --- | ---: | ---: | ---: |\n");
    for (int i = first; i < argc; i++)
        bench_model(argv[i]);
    return 0;
}

#endif
