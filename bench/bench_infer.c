/* bench_infer.c - inference speed of one generated model: images/s of
 * predict() at the model's compiled batch, or its latency at batch 1.
 *
 * Usage: bench_infer MODEL.so NAME N [THREADS]
 *   MODEL.so  the generated C of NAME.net compiled as a shared object (run.sh
 *             does it: `netc NAME.net -o m.c`, then cc -O3 -march=native
 *             -ffp-contract=fast -fopenmp -shared), built for batch >= N;
 *   N         samples per predict() call.
 * Prints "NAME N img_s us_per_call region_ns" (median of 5 windows of >=
 * 0.2 s after two warm-up calls; region_ns: what libnetrt measured a
 * parallel region of THREADS threads to cost, which decides whether
 * batch-1 kernels split, -1 when it does not apply: one thread). The input is a fixed random batch in [0, 1) and the
 * weights are the seeded initial ones: speed does not depend on the values.
 * Not a test: a benchmark (bench/run.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "netrt.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const NrtModelInfo *open_model(const char *path, const char *name)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_infer: %s\n", dlerror());
        return NULL;
    }
    char sym[256];
    snprintf(sym, sizeof sym, "%s_info", name);
    const NrtModelInfo *(*info)(void);
    *(void **)&info = dlsym(h, sym);   /* POSIX's way around ISO C's pointer rule */
    if (!info) {
        fprintf(stderr, "bench_infer: %s: no symbol %s\n", path, sym);
        return NULL;
    }
    return info();
}

/* Median seconds per predict() call of n samples. */
static double time_predict(const NrtModelInfo *mi, NrtModel *m, const float *x, int n,
                           float *const *outs)
{
    enum { WINDOWS = 5 };
    double t[WINDOWS];
    mi->predict(m, x, n, outs, NULL);
    mi->predict(m, x, n, outs, NULL);
    for (int w = 0; w < WINDOWS; w++) {
        long calls = 0;
        double t0 = now(), dt;
        do {
            mi->predict(m, x, n, outs, NULL);
            calls++;
            dt = now() - t0;
        } while (dt < 0.2);
        t[w] = dt / (double)calls;
    }
    qsort(t, WINDOWS, sizeof t[0], cmp_double);
    return t[WINDOWS / 2];
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_infer MODEL.so NAME N [THREADS]\n");
        return 2;
    }
    int n = atoi(argv[3]);
#ifdef _OPENMP
    if (argc > 4)
        omp_set_num_threads(atoi(argv[4]));
#endif
    const NrtModelInfo *mi = open_model(argv[1], argv[2]);   /* resolves against our libnetrt */
    if (!mi)
        return 1;
    if (mi->abi != NRT_MODEL_ABI || mi->noutputs > 8) {
        fprintf(stderr, "bench_infer: %s: ABI %u or %d outputs not supported (libnetrt %s)\n",
                argv[1], mi->abi, mi->noutputs, nrt_version());
        return 1;
    }
    if (n < 1 || n > mi->batch) {
        fprintf(stderr, "bench_infer: N = %d but the model was built for batch %lld\n", n,
                (long long)mi->batch);
        return 2;
    }
    NrtModel *m = NULL;
    NrtError err = {0};
    if (mi->create(&m, 1, &err) != NRT_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    float *x = malloc((size_t)n * (size_t)mi->input_size * sizeof(float));
    float *outs[8] = {0};
    for (int64_t i = 0; i < (int64_t)n * mi->input_size; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int k = 0; k < mi->noutputs && k < 8; k++)
        outs[k] = malloc((size_t)n * (size_t)mi->outputs[k].size * sizeof(float));
    double sec = time_predict(mi, m, x, n, outs);
    int64_t region = nrt_get_threads() > 1 ? nrt_par_region_ns(nrt_get_threads()) : -1;
    printf("%s %d %.1f %.2f %lld\n", argv[2], n, n / sec, sec * 1e6,
           (long long)(region == INT64_MAX ? -1 : region));
    for (int k = 0; k < 8; k++)
        free(outs[k]);
    free(x);
    mi->destroy(m);
    return 0;
}
