/* bench_augment.c - cost of training-time augmentation per batch: a 64-image
 * 1x28x28 batch (Fashion-MNIST shape) through nrt_augment_geometric
 * (translate 2, flip, flip vertical, rotate 15) + nrt_augment_post (cutout
 * 8, noise 0.1), each part alone, and mixup and cutmix, on 1 and 2 threads.
 *
 * Usage: bench_augment [runs] [cpu]. Prints the median and the best over
 * runs of the mean time per batch (each run >= 20 ms of calls, a new step
 * per call so the draws change), in microseconds; on a shared host the best
 * is the closer to the uncontended cost. With "cpu" the clock is the
 * process's CPU time (CLOCK_PROCESS_CPUTIME_ID) instead of the wall clock:
 * on a loaded host the 1-thread column then counts the work, not the
 * waiting (the 2-thread column sums both threads). Speed only: not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netrt.h"

enum { N = 64, C = 1, H = 28, W = 28 };

typedef enum Job {
    JOB_COPY, JOB_AUGMENT, JOB_GEOMETRIC, JOB_POST, JOB_CUTOUT, JOB_NOISE, JOB_MIXUP, JOB_CUTMIX,
} Job;

typedef struct Bufs {
    const float *src;   /* the raw batch, copied into x before every call */
    float *x, *scratch;
    int64_t perm[N];
} Bufs;

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void run(Job job, Bufs *b, uint64_t step)
{
    static const NrtAugmentSpec spec = {.translate = 2, .flip = true, .flip_vertical = true,
                                        .rotate = 15, .cutout = 8, .noise = 0.1};
    NrtMixInfo info;
    memcpy(b->x, b->src, (size_t)(N * C * H * W) * sizeof *b->x);
    if (job == JOB_AUGMENT || job == JOB_GEOMETRIC)
        nrt_augment_geometric(b->x, N, C, H, W, &spec, 1, step, 0, b->scratch);
    static const NrtAugmentSpec cutout = {.cutout = 8}, noise = {.noise = 0.1};
    if (job == JOB_AUGMENT || job == JOB_POST)
        nrt_augment_post(b->x, N, C, H, W, &spec, 1, step, 0);
    if (job == JOB_CUTOUT)
        nrt_augment_post(b->x, N, C, H, W, &cutout, 1, step, 0);
    if (job == JOB_NOISE)
        nrt_augment_post(b->x, N, C, H, W, &noise, 1, step, 0);
    if (job == JOB_MIXUP)
        nrt_mixup(b->x, N, C * H * W, 0.2, 1, step, b->perm, &info, b->scratch);
    if (job == JOB_CUTMIX)
        nrt_cutmix(b->x, N, C, H, W, 1.0, 1, step, b->perm, &info, b->scratch);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Microseconds per call: median and best over runs. */
static void time_job(Job job, Bufs *b, int runs, double *median, double *best)
{
    double *t = malloc((size_t)runs * sizeof *t);
    uint64_t step = 0;
    for (int i = 0; i < 20; i++)
        run(job, b, step++);
    for (int r = 0; r < runs; r++) {
        long calls = 0;
        double t0 = now(), t1;
        do {
            run(job, b, step++);
            calls++;
        } while ((t1 = now()) - t0 < 0.02);
        t[r] = 1e6 * (t1 - t0) / (double)calls;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp);
    *median = t[runs / 2];
    *best = t[0];
    free(t);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 9;
    if (runs < 1)
        runs = 1;
    if (argc > 2 && strcmp(argv[2], "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    Bufs b;
    float *src = malloc((size_t)(N * C * H * W) * sizeof *src);
    b.src = src;
    b.x = malloc((size_t)(N * C * H * W) * sizeof *b.x);
    b.scratch = malloc(nrt_augment_scratch_floats(N, C, H, W) * sizeof *b.scratch);
    if (!src || !b.x || !b.scratch)
        return 1;
    for (int i = 0; i < N * C * H * W; i++)
        src[i] = (float)(i % 255) / 255.0f;
    static const char *const names[] = {
        "copy only (baseline, included below)", "all augmentations (geometric + post)",
        "geometric: translate, flip, flip(vertical), rotate", "post: cutout, noise",
        "cutout(8) alone", "noise(0.1) alone", "mixup(0.2)", "cutmix(1.0)",
    };
    printf("| %d x %dx%dx%d batch, us per batch (%s) | 1 thread median | best | 2 threads median "
           "| best |\n| --- | ---: | ---: | ---: | ---: |\n", N, C, H, W,
           bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
    for (int j = JOB_COPY; j <= JOB_CUTMIX; j++) {
        double m1, b1, m2, b2;
        nrt_set_threads(1);
        time_job((Job)j, &b, runs, &m1, &b1);
        nrt_set_threads(2);
        time_job((Job)j, &b, runs, &m2, &b2);
        printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", names[j], m1, b1, m2, b2);
    }
    free(src);
    free(b.x);
    free(b.scratch);
    return 0;
}
