/* fuse_agree.c - the fusion passes change no result (docs/architecture.md,
 * "Fusion").
 *
 * usage: fuse_agree [--batch N] [--steps N] PATH...   (a .net file or a folder of them)
 *
 * Per model: the front end, then lower_program twice, with every fusion
 * pass (the default) and with none (IrGraph.fuse = 0, `--no-fuse`), both
 * compiled by the in-process JIT (jit_agree checks the JIT against the
 * emitted C). Checks, in order:
 *   - the two programs have the same tables and create the same parameters;
 *   - STEPS training steps on the same synthetic batches give bit-identical
 *     losses, and the parameters (running statistics included) and
 *     optimizer state after them are bit-identical: the training fusions
 *     (activation epilogues, add + activation, aliased add gradients) keep
 *     every float operation and its order;
 *   - predict on a fresh batch: bit-identical when no batchnorm was folded;
 *     with folding (w * scale rounded once, then the conv; instead of the
 *     conv, then (y + b - mean) * scale + beta) each output is within
 *     TOL = 1e-4 of the output's largest magnitude, and the argmax of every
 *     row agrees wherever the top two differ by more than that;
 *   - one more training step, then predict again: the fold follows the new
 *     parameters and running statistics (same tolerance);
 *   - the fused model's checkpoint loaded into a fresh fused model predicts
 *     bit-identically to the model that saved it.
 * Why 1e-4: a folded output differs from the unfused one by the rounding
 * of w*scale (2^-24 relative per weight) and of a differently ordered
 * affine step, so a few units of 2^-24 of the dot product's magnitude per
 * layer; through the 8 conv layers of resnet8 that compounds to ~1e-6 of
 * the largest output (printed per model). 1e-4 leaves two orders of
 * magnitude of room and still catches any wrong scale, shift, eps or
 * stale statistic, which are off by far more.
 * Exits 77 (skipped) without LLVM, 1 on any disagreement or error.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netc_config.h"

#if !NETC_HAVE_LLVM
int main(void)
{
    puts("SKIP: netc was built without LLVM");
    return 77;
}
#else

#include "frontend.h"
#include "jit.h"
#include "kernel.h"
#include "agree_common.h"

#define TOL 1e-4

static int64_t g_batch = 8, g_steps = 20;

/* ---- synthetic data ------------------------------------------------------------ */

/* ---- one model: F fused, U unfused ------------------------------------------------- */

typedef struct Pair {
    const char *name;
    const NrtModelInfo *fi, *ui;
    NrtModel *fm, *um;
    bool folds;         /* the fused predict list folds a batchnorm */
    double worst;       /* largest predict difference seen */
} Pair;

/* Parameters, running statistics, optimizer state and preprocessing
 * statistics: the whole checkpoint, through each model's save. */
static void compare_state(Pair *p, const char *dir, const char *when)
{
    for (int i = 0; i < p->fi->nparams; i++) {
        const float *a = p->fi->param(p->fm, i), *b = p->ui->param(p->um, i);
        if (memcmp(a, b, (size_t)p->fi->params[i].numel * sizeof(float)) != 0) {
            agree_fail(p->name, "%s: parameter %s differs", when, p->fi->params[i].name);
            return;
        }
    }
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s.fused.safetensors", dir, p->fi->name);
    snprintf(pb, sizeof pb, "%s/%s.unfused.safetensors", dir, p->fi->name);
    NrtError e = {0};
    size_t la = 0, lb = 0;
    char *a = NULL, *b = NULL;
    if (p->fi->save(p->fm, pa, &e) != NRT_OK || p->ui->save(p->um, pb, &e) != NRT_OK)
        agree_fail(p->name, "%s: save: %s", when, e.msg);
    else if (!(a = agree_read_all(pa, &la)) || !(b = agree_read_all(pb, &lb)) || la != lb || memcmp(a, b, la) != 0)
        agree_fail(p->name, "%s: the checkpoints (optimizer state included) differ", when);
    free(a), free(b);
    remove(pa), remove(pb);
}

static void train_both(Pair *p, AgreeBatch *bt, uint64_t *rng, int64_t steps)
{
    NrtError e1 = {0}, e2 = {0};
    int before = agree_nfail;
    for (int64_t step = 0; step < steps; step++) {
        agree_batch_fill(bt, p->fi, rng);
        float l1 = 0, l2 = 0;
        float lr = (float)nrt_schedule_lr(&p->fi->train, step, 100);
        NrtStatus s1 = p->fi->train_step(p->fm, &bt->b, lr, &l1, &e1);
        NrtStatus s2 = p->ui->train_step(p->um, &bt->b, lr, &l2, &e2);
        if (s1 != s2)
            agree_fail(p->name, "step %" PRId64 ": fused says '%s', unfused '%s'", step, s1 ? e1.msg : "ok",
                 s2 ? e2.msg : "ok");
        else if (memcmp(&l1, &l2, sizeof l1) != 0 && !(isnan(l1) && isnan(l2)))
            agree_fail(p->name, "step %" PRId64 ": loss %.9g (fused) vs %.9g (unfused)", step, (double)l1,
                 (double)l2);
        if (agree_nfail > before)
            return;
    }
}

/* Checks one output of n rows of `size` against the reference r. */
static void compare_output(Pair *p, const char *what, const float *f, const float *r, int n, int64_t size)
{
    int64_t total = n * size;
    double scale = 1e-30, worst = 0;
    for (int64_t i = 0; i < total; i++)
        scale = fmax(scale, fabs((double)r[i]));
    for (int64_t i = 0; i < total; i++)
        worst = fmax(worst, isnan(f[i]) != isnan(r[i]) ? INFINITY : fabs((double)f[i] - r[i]) / scale);
    p->worst = fmax(p->worst, worst);
    if (!p->folds && memcmp(f, r, (size_t)total * sizeof *f) != 0)
        agree_fail(p->name, "%s: predictions differ (%.3g relative) without a folded batchnorm", what, worst);
    if (!(worst <= TOL))
        agree_fail(p->name, "%s: predictions differ by %.3g of the largest output", what, worst);
    for (int i = 0; i < n && size > 1; i++) {
        const float *fr = f + i * size, *rr = r + i * size;
        int64_t a1 = 0, a2 = 0, second = -1;
        for (int64_t j = 1; j < size; j++) {
            a1 = fr[j] > fr[a1] ? j : a1;
            a2 = rr[j] > rr[a2] ? j : a2;
        }
        for (int64_t j = 0; j < size; j++)
            if (j != a2 && (second < 0 || rr[j] > rr[second]))
                second = j;
        if (a1 != a2 && rr[a2] - rr[second] > TOL * scale)
            agree_fail(p->name, "%s, sample %d: argmax %" PRId64 " (fused) vs %" PRId64, what, i, a1, a2);
    }
}

/* predict with model fm (fused) and um (unfused) on the same batch. */
static void predict_both(Pair *p, NrtModel *fm, AgreeBatch *bt, uint64_t *rng, const char *what)
{
    const NrtModelInfo *info = p->fi;
    int n = (int)info->batch;
    float *o1[NRT_MAX_OUTPUTS] = {0}, *o2[NRT_MAX_OUTPUTS] = {0};
    agree_batch_fill(bt, info, rng);
    for (int k = 0; k < info->noutputs; k++) {
        o1[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
        o2[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
    }
    NrtError e = {0};
    if (p->fi->predict(fm, bt->x, n, o1, &e) != NRT_OK || p->ui->predict(p->um, bt->x, n, o2, &e) != NRT_OK)
        agree_fail(p->name, "%s: predict failed: %s", what, e.msg);
    else
        for (int k = 0; k < info->noutputs; k++)
            compare_output(p, what, o1[k], o2[k], n, info->outputs[k].size);
    for (int k = 0; k < info->noutputs; k++)
        free(o1[k]), free(o2[k]);
}

/* The fused model's checkpoint in a fresh fused model predicts the same bits. */
static void reload_fused(Pair *p, AgreeBatch *bt, uint64_t *rng, const char *dir)
{
    const NrtModelInfo *info = p->fi;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.reload.safetensors", dir, info->name);
    NrtError e = {0};
    NrtModel *fresh = NULL;
    int n = (int)info->batch;
    float *o1[NRT_MAX_OUTPUTS] = {0}, *o2[NRT_MAX_OUTPUTS] = {0};
    for (int k = 0; k < info->noutputs; k++) {
        o1[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
        o2[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
    }
    agree_batch_fill(bt, info, rng);
    if (info->save(p->fm, path, &e) != NRT_OK || info->create(&fresh, 99, &e) != NRT_OK
        || info->predict(fresh, bt->x, n, o2, &e) != NRT_OK    /* folds the fresh parameters once */
        || info->load(fresh, path, &e) != NRT_OK || info->predict(p->fm, bt->x, n, o1, &e) != NRT_OK
        || info->predict(fresh, bt->x, n, o2, &e) != NRT_OK) {
        agree_fail(p->name, "reload: %s", e.msg);
    } else {
        for (int k = 0; k < info->noutputs; k++)
            if (memcmp(o1[k], o2[k], (size_t)(n * info->outputs[k].size) * sizeof(float)) != 0)
                agree_fail(p->name, "the reloaded fused model predicts differently");
    }
    for (int k = 0; k < info->noutputs; k++)
        free(o1[k]), free(o2[k]);
    if (fresh)
        info->destroy(fresh);
    remove(path);
}

static void run_checks(Pair *p, const char *dir)
{
    NrtError e = {0};
    uint64_t seed = p->fi->train.seed;
    if (p->fi->structure_hash != p->ui->structure_hash || p->fi->nparams != p->ui->nparams) {
        agree_fail(p->name, "the model tables differ");
        return;
    }
    if (p->fi->create(&p->fm, seed, &e) != NRT_OK || p->ui->create(&p->um, seed, &e) != NRT_OK) {
        agree_fail(p->name, "create: %s", e.msg);
        return;
    }
    uint64_t rng = 4242;
    int64_t count = 64, d = p->fi->input_size;
    uint8_t *img = malloc((size_t)(count * d));
    for (int64_t i = 0; i < count * d; i++)
        img[i] = (uint8_t)(agree_lcg(&rng) % 256);
    if (p->fi->fit_preprocess(p->fm, img, count, &e) != NRT_OK
        || p->ui->fit_preprocess(p->um, img, count, &e) != NRT_OK)
        agree_fail(p->name, "fit_preprocess: %s", e.msg);
    free(img);
    compare_state(p, dir, "after create");
    AgreeBatch bt;
    if (!agree_batch_alloc(&bt, p->fi)) {
        agree_fail(p->name, "out of memory");
        return;
    }
    train_both(p, &bt, &rng, g_steps);
    compare_state(p, dir, "after training");
    predict_both(p, p->fm, &bt, &rng, "after training");
    train_both(p, &bt, &rng, 1);
    predict_both(p, p->fm, &bt, &rng, "after one more step");
    reload_fused(p, &bt, &rng, dir);
    const char *base = strrchr(p->name, '/');
    printf("%-20s %3" PRId64 " steps at batch %" PRId64 ": losses and state bit-identical; predict %s "
           "(max diff %.2g of the largest output)\n", base ? base + 1 : p->name, g_steps, g_batch,
           p->folds ? "with folded batchnorm" : "bit-identical", p->worst);
    agree_batch_free(&bt);
}

static bool folds(const KProgram *kp)
{
    for (size_t i = 0; i < kp->predict.len; i++)
        if (kp->predict.items[i].op == K_BN_FOLD
            || (kp->predict.items[i].op == K_CONV_FWD && kp->predict.items[i].nbuf >= 8))
            return true;   /* a fold step (dense), or a conv folding its batchnorm itself */
    return false;
}

static void check_model(const char *path, const char *dir)
{
    size_t len = 0;
    char *text = agree_read_all(path, &len);
    NetcCompilation c;
    if (!text || !netc_compilation_init(&c, path, text, len)) {
        agree_fail(path, "cannot read");
        free(text);
        return;
    }
    char *err = malloc(16384);
    KProgram *kf = NULL, *ku = NULL;
    JitModule *jf = NULL, *ju = NULL;
    if (netc_compile(&c)) {
        diag_print_all(&c.diags, stdout, false);
        agree_fail(path, "front-end errors");
    } else {
        c.graph->train.batch = g_batch;
        DiagSink d;
        diag_init(&d, &c.arena);
        c.graph->fuse = IR_FUSE_ALL;
        bool ok = lower_program(c.graph, path, &d, &kf) == 0;
        c.graph->fuse = 0;
        ok = ok && lower_program(c.graph, path, &d, &ku) == 0;
        if (!ok)
            agree_fail(path, "lower_program failed");
        else if (!(jf = jit_open(kf, err, 16384)) || !(ju = jit_open(ku, err, 16384)))
            agree_fail(path, "%s", err);
        else {
            Pair p = {path, jit_info(jf), jit_info(ju), NULL, NULL, folds(kf), 0};
            run_checks(&p, dir);
            if (p.fm)
                p.fi->destroy(p.fm);
            if (p.um)
                p.ui->destroy(p.um);
        }
    }
    jit_close(jf);
    jit_close(ju);
    netc_compilation_free(&c);
    free(err);
    free(text);
}

int main(int argc, char **argv)
{
    return agree_main(argc, argv, "fuse_agree", &g_batch, &g_steps, check_model);
}

#endif
