/* jit_agree.c - the LLVM JIT and the emitted C give the same model.
 *
 * usage: jit_agree [--batch N] [--steps N] PATH...   (a .net file or a folder of them)
 *
 * Per model: the front end, lower_program, then both backends of `netc
 * train`: jit_open (in-process LLVM) and ccb_open (the emitted C compiled
 * with -O3 -march=native -ffp-contract=fast, dlopen'ed). Checks, in order:
 *   - the NrtModelInfo tables agree field by field (names, shapes, targets,
 *     outputs, the train configuration, structure hash);
 *   - create with the model's seed gives the same parameter bits, and
 *     fit_preprocess on the same synthetic images the same statistics;
 *   - STEPS training steps on the same synthetic batches (labels, values
 *     drawn from a fixed LCG) give losses equal to 1e-5 relative;
 *   - predict on a fresh batch agrees to 1e-5 relative (of the output's
 *     largest magnitude), with the same argmax per row;
 *   - the JIT's checkpoint loads into the C model and predicts the same.
 * Prints one line per model with the largest differences and how many
 * losses were bit-identical. The model's batch is overridden (--batch,
 * default 8) to keep it fast. Exits 77 (skipped) without LLVM, 1 on any
 * disagreement or error.
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

#include "cc_backend.h"
#include "emit_c.h"
#include "frontend.h"
#include "jit.h"
#include "kernel.h"
#include "agree_common.h"

enum { ERRBUF = 16384 };

static int64_t g_batch = 8, g_steps = 50;

/* ---- comparisons ------------------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void compare_config(const char *name, const NrtTrainConfig *a, const NrtTrainConfig *b)
{
    bool ok = a->batch == b->batch && a->epochs == b->epochs && a->seed == b->seed
           && a->optimizer == b->optimizer && a->lr == b->lr && a->momentum == b->momentum
           && a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps
           && a->weight_decay == b->weight_decay && a->nesterov == b->nesterov
           && a->schedule == b->schedule && a->step_every == b->step_every && a->warmup == b->warmup
           && a->step_gamma == b->step_gamma && a->naugments == b->naugments && a->mix == b->mix
           && a->mix_alpha == b->mix_alpha && same_str(a->train_images, b->train_images)
           && same_str(a->train_labels, b->train_labels) && same_str(a->test_images, b->test_images)
           && same_str(a->test_labels, b->test_labels);
    for (int i = 0; ok && i < a->naugments; i++)
        ok = a->augment[i] == b->augment[i] && a->augment_amount[i] == b->augment_amount[i];
    if (!ok)
        agree_fail(name, "the train configurations differ");
}

static void compare_tables(const char *name, const NrtModelInfo *a, const NrtModelInfo *b)
{
    bool ok = a->abi == b->abi && same_str(a->name, b->name) && a->structure_hash == b->structure_hash
           && a->batch == b->batch && a->input_rank == b->input_rank && a->input_size == b->input_size
           && a->ntargets == b->ntargets && a->noutputs == b->noutputs && a->nparams == b->nparams;
    for (int i = 0; ok && i < a->input_rank; i++)
        ok = a->input_shape[i] == b->input_shape[i];
    for (int t = 0; ok && t < a->ntargets; t++) {
        const NrtTargetInfo *x = &a->targets[t], *y = &b->targets[t];
        ok = same_str(x->name, y->name) && x->kind == y->kind && x->n == y->n && x->source == y->source
          && same_str(x->file, y->file) && same_str(x->test_file, y->test_file) && x->nmap == y->nmap
          && (x->source != NRT_TARGET_FROM_MAP
              || (x->map_base == y->map_base && memcmp(x->map, y->map, (size_t)x->nmap * 4) == 0));
    }
    for (int o = 0; ok && o < a->noutputs; o++)
        ok = same_str(a->outputs[o].name, b->outputs[o].name) && a->outputs[o].size == b->outputs[o].size;
    for (int p = 0; ok && p < a->nparams; p++) {
        const NrtParamInfo *x = &a->params[p], *y = &b->params[p];
        ok = same_str(x->name, y->name) && x->rank == y->rank && x->numel == y->numel
          && x->trainable == y->trainable && memcmp(x->shape, y->shape, sizeof x->shape) == 0;
    }
    if (!ok)
        agree_fail(name, "the model tables (NrtModelInfo) differ");
    compare_config(name, &a->train, &b->train);
}

/* Largest |a - b| / max(|a|, |b|, floor) over n floats. */
static double rel_diff(const float *a, const float *b, int64_t n, double floor)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i]))    /* a diverged run: both NaN is agreement */
            continue;
        double d = fabs((double)a[i] - b[i]), s = fmax(fmax(fabs((double)a[i]), fabs((double)b[i])), floor);
        if (d / s > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d / s;
    }
    return worst;
}

static double max_abs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i]));
    return m;
}

/* ---- synthetic data ----------------------------------------------------------- */

/* ---- one model ----------------------------------------------------------------- */

typedef struct Pair {
    const NrtModelInfo *ji, *ci;
    NrtModel *jm, *cm;
} Pair;

static bool emit_cb(void *ctx, const char *c_path, const char *h_path, char *err, size_t errsize)
{
    NetcCompilation *c = ctx;
    DiagSink d;
    diag_init(&d, &c->arena);
    return emitc_files(c->graph, c->src.path, c_path, h_path, &d, err, errsize) == EMITC_OK;
}

static void compare_params(const char *name, Pair *p, const char *when)
{
    for (int i = 0; i < p->ji->nparams; i++) {
        const float *a = p->ji->param(p->jm, i), *b = p->ci->param(p->cm, i);
        if (memcmp(a, b, (size_t)p->ji->params[i].numel * sizeof(float)) != 0) {
            agree_fail(name, "%s: parameter %s differs", when, p->ji->params[i].name);
            return;
        }
    }
}

/* Runs STEPS training steps on both; returns the largest relative loss difference. */
static double train_both(const char *name, Pair *p, AgreeBatch *bt, uint64_t *rng, int *identical)
{
    double worst = 0;
    NrtError e1 = {0}, e2 = {0};
    for (int64_t step = 0; step < g_steps; step++) {
        agree_batch_fill(bt, p->ji, rng);
        float l1 = 0, l2 = 0;
        float lr = (float)nrt_schedule_lr(&p->ji->train, step, 100);
        NrtStatus s1 = p->ji->train_step(p->jm, &bt->b, lr, &l1, &e1);
        NrtStatus s2 = p->ci->train_step(p->cm, &bt->b, lr, &l2, &e2);
        if (s1 != s2) {
            agree_fail(name, "step %" PRId64 ": jit says '%s', C says '%s'", step, s1 ? e1.msg : "ok", s2 ? e2.msg : "ok");
            return INFINITY;
        }
        double d = fabs((double)l1 - l2) / fmax(fmax(fabs((double)l1), fabs((double)l2)), 1e-30);
        if (isnan(l1) && isnan(l2))    /* diverged on both (random labels, a large lr) */
            d = 0;
        *identical += memcmp(&l1, &l2, sizeof l1) == 0 || (isnan(l1) && isnan(l2));
        worst = fmax(worst, d);
        if (!(d <= 1e-5))
            agree_fail(name, "step %" PRId64 ": loss %.9g (jit) vs %.9g (C)", step, (double)l1, (double)l2);
    }
    return worst;
}

/* predict on the same batch: relative to each output's largest magnitude, same argmax. */
static double predict_both(const char *name, Pair *p, NrtModel *cm, AgreeBatch *bt, uint64_t *rng)
{
    const NrtModelInfo *info = p->ji;
    float *o1[NRT_MAX_OUTPUTS] = {0}, *o2[NRT_MAX_OUTPUTS] = {0};
    double worst = 0;
    agree_batch_fill(bt, info, rng);
    int n = (int)info->batch;
    for (int k = 0; k < info->noutputs; k++) {
        o1[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
        o2[k] = calloc((size_t)(n * info->outputs[k].size), sizeof(float));
    }
    NrtError e = {0};
    if (p->ji->predict(p->jm, bt->x, n, o1, &e) != NRT_OK || p->ci->predict(cm, bt->x, n, o2, &e) != NRT_OK)
        agree_fail(name, "predict failed: %s", e.msg);
    for (int k = 0; k < info->noutputs; k++) {
        int64_t size = info->outputs[k].size, total = n * size;
        worst = fmax(worst, rel_diff(o1[k], o2[k], total, fmax(max_abs(o2[k], total), 1e-30)));
        for (int i = 0; i < n && size > 1; i++) {
            int64_t a1 = 0, a2 = 0;
            for (int64_t j = 1; j < size; j++) {
                a1 = o1[k][i * size + j] > o1[k][i * size + a1] ? j : a1;
                a2 = o2[k][i * size + j] > o2[k][i * size + a2] ? j : a2;
            }
            if (a1 != a2)
                agree_fail(name, "output %s, sample %d: argmax %" PRId64 " (jit) vs %" PRId64 " (C)",
                     info->outputs[k].name, i, a1, a2);
        }
        free(o1[k]), free(o2[k]);
    }
    if (!(worst <= 1e-5))
        agree_fail(name, "predictions differ by %.3g relative", worst);
    return worst;
}

/* fit_preprocess on the same synthetic uint8 images. */
static void fit_both(const char *name, Pair *p, uint64_t *rng)
{
    int64_t count = 64, d = p->ji->input_size;
    uint8_t *img = malloc((size_t)(count * d));
    for (int64_t i = 0; i < count * d; i++)
        img[i] = (uint8_t)(agree_lcg(rng) % 256);
    NrtError e1 = {0}, e2 = {0};
    NrtStatus s1 = p->ji->fit_preprocess(p->jm, img, count, &e1);
    NrtStatus s2 = p->ci->fit_preprocess(p->cm, img, count, &e2);
    if (s1 != NRT_OK || s2 != NRT_OK)
        agree_fail(name, "fit_preprocess: %s / %s", e1.msg, e2.msg);
    free(img);
}

/* The JIT's checkpoint in a fresh C model predicts as the JIT does. */
static void checkpoint_both(const char *name, Pair *p, AgreeBatch *bt, uint64_t *rng, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.jit.safetensors", dir, p->ji->name);
    NrtError e = {0};
    NrtModel *fresh = NULL;
    if (p->ji->save(p->jm, path, &e) != NRT_OK || p->ci->create(&fresh, 1, &e) != NRT_OK
        || p->ci->load(fresh, path, &e) != NRT_OK) {
        agree_fail(name, "checkpoint: %s", e.msg);
    } else {
        uint64_t r2 = *rng;
        predict_both(name, p, fresh, bt, &r2);
    }
    if (fresh)
        p->ci->destroy(fresh);
    remove(path);
}

static void run_checks(const char *name, Pair *p, const char *dir);

static void run_pair(const char *name, Pair *p, const char *dir)
{
    run_checks(name, p, dir);
    if (p->jm)
        p->ji->destroy(p->jm);
    if (p->cm)
        p->ci->destroy(p->cm);
}

static void run_checks(const char *name, Pair *p, const char *dir)
{
    int before = agree_nfail;
    compare_tables(name, p->ji, p->ci);
    if (agree_nfail > before)
        return;
    NrtError e = {0};
    uint64_t seed = p->ji->train.seed;
    if (p->ji->create(&p->jm, seed, &e) != NRT_OK || p->ci->create(&p->cm, seed, &e) != NRT_OK) {
        agree_fail(name, "create: %s", e.msg);
        return;
    }
    uint64_t rng = 12345;
    compare_params(name, p, "after create");
    fit_both(name, p, &rng);
    compare_params(name, p, "after fit_preprocess");
    AgreeBatch bt;
    if (!agree_batch_alloc(&bt, p->ji)) {
        agree_fail(name, "out of memory");
        return;
    }
    int identical = 0;
    double dl = train_both(name, p, &bt, &rng, &identical);
    double dp = predict_both(name, p, p->cm, &bt, &rng);
    checkpoint_both(name, p, &bt, &rng, dir);
    const char *base = strrchr(name, '/');
    printf("%-20s %3" PRId64 " steps at batch %" PRId64 ": loss max rel diff %.2g (%d bit-identical), "
           "predict max rel diff %.2g, checkpoint loads across\n", base ? base + 1 : name, g_steps, g_batch,
           dl, identical, dp);
    agree_batch_free(&bt);
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
    char *err = malloc(ERRBUF);
    KProgram *kp = NULL;
    JitModule *jit = NULL;
    CcbModule mod = {0};
    if (netc_compile(&c)) {
        diag_print_all(&c.diags, stdout, false);
        agree_fail(path, "front-end errors");
    } else {
        c.graph->train.batch = g_batch;
        DiagSink d;
        diag_init(&d, &c.arena);
        char variant[64];
        snprintf(variant, sizeof variant, "batch=%" PRId64, g_batch);
        CcbRequest rq = {c.graph->model, text, len, variant, emit_cb, &c};
        if (lower_program(c.graph, path, &d, &kp))
            agree_fail(path, "lower_program failed");
        else if (!(jit = jit_open(kp, err, ERRBUF)))
            agree_fail(path, "%s", err);
        else if (!ccb_open(&rq, &mod, err, ERRBUF))
            agree_fail(path, "%s", err);
        else
            run_pair(path, &(Pair){jit_info(jit), mod.info, NULL, NULL}, dir);
    }
    (void)kp;
    jit_close(jit);
    ccb_close(&mod);
    netc_compilation_free(&c);
    free(err);
    free(text);
}

int main(int argc, char **argv)
{
    return agree_main(argc, argv, "jit_agree", &g_batch, &g_steps, check_model);
}

#endif
