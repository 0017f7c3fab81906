/* driver.c - runs one generated model through its descriptor (golden test).
 *
 *     cc driver.c foo.c -DMODEL_INFO=foo_info -lnetrt -lm -fopenmp
 *     ./driver TMPDIR
 *
 * On a fixed synthetic batch (an integer hash, labels in range, values in
 * [0, 1]) it checks what every generated model must do, exiting 1 with a
 * message at the first failure:
 *   - create with a seed twice gives bitwise-equal parameters;
 *   - fit_preprocess, then 8 train_steps on the same batch: every loss is
 *     finite and the last is below the first (the model can fit one batch);
 *   - every trainable parameter has a gradient, and predict writes finite
 *     outputs of the advertised sizes for n = batch and n = 1;
 *   - save then load into a fresh model gives bitwise-equal predictions;
 *     load refuses another structure hash and a wrong shape
 *     (NRT_ERR_MISMATCH) and then leaves the model as it was;
 *   - the same steps with 1 and with 2 threads give bitwise-equal parameters.
 * Prints one line with the losses on success.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

#ifndef MODEL_INFO
#error "compile with -DMODEL_INFO=<model>_info"
#endif
const NrtModelInfo *MODEL_INFO(void);

enum { STEPS = 8 };

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("driver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(NrtStatus st, const NrtError *err, const char *what)
{
    if (st != NRT_OK)
        fail("%s: %s: %s", what, nrt_status_name(st), err->msg);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        fail("out of memory");
    return p;
}

static uint32_t hash32(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return (uint32_t)(x ^ (x >> 33));
}

typedef struct Data {
    float *x;
    uint8_t *images;
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
    NrtBatch b;
} Data;

static void make_data(const NrtModelInfo *info, Data *d)
{
    int64_t B = info->batch, D = info->input_size;
    d->x = xcalloc((size_t)(B * D), sizeof *d->x);
    d->images = xcalloc((size_t)(B * D), 1);
    for (int64_t i = 0; i < B * D; i++) {
        d->images[i] = (uint8_t)(hash32((uint64_t)i) & 255);
        d->x[i] = d->images[i] / 255.0f;
    }
    d->b.x = d->x;
    d->b.n = (int)B;
    for (int t = 0; t < info->ntargets; t++) {
        const NrtTargetInfo *ti = &info->targets[t];
        if (ti->kind == NRT_TARGET_CLASSES) {
            d->labels[t] = xcalloc((size_t)B, sizeof(int32_t));
            for (int64_t i = 0; i < B; i++)
                d->labels[t][i] = (int32_t)(hash32((uint64_t)(i + 1000 * (t + 1))) % ti->n);
            d->b.labels[t] = d->labels[t];
        } else {
            d->values[t] = xcalloc((size_t)(B * ti->n), sizeof(float));
            for (int64_t i = 0; i < B * ti->n; i++)
                d->values[t][i] = (float)(hash32((uint64_t)(i + 7777)) % 1000) / 1000.0f;
            d->b.values[t] = d->values[t];
        }
    }
}

static uint64_t params_hash(const NrtModelInfo *info, NrtModel *m)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (int i = 0; i < info->nparams; i++) {
        const unsigned char *p = (const unsigned char *)info->param(m, i);
        for (size_t k = 0; k < (size_t)info->params[i].numel * sizeof(float); k++)
            h = (h ^ p[k]) * UINT64_C(1099511628211);
    }
    return h;
}

static NrtModel *trained(const NrtModelInfo *info, Data *d, float *losses)
{
    NrtError err;
    NrtModel *m = NULL;
    check(info->create(&m, info->train.seed, &err), &err, "create");
    check(info->fit_preprocess(m, d->images, info->batch, &err), &err, "fit_preprocess");
    for (int s = 0; s < STEPS; s++) {
        float loss = NAN;
        check(info->train_step(m, &d->b, (float)info->train.lr, &loss, &err), &err, "train_step");
        if (losses)
            losses[s] = loss;
    }
    return m;
}

static float **alloc_outs(const NrtModelInfo *info)
{
    float **outs = xcalloc(NRT_MAX_OUTPUTS, sizeof *outs);
    for (int k = 0; k < info->noutputs; k++)
        outs[k] = xcalloc((size_t)(info->batch * info->outputs[k].size), sizeof(float));
    return outs;
}

static void predict(const NrtModelInfo *info, NrtModel *m, const Data *d, int n, float **outs)
{
    NrtError err;
    check(info->predict(m, d->x, n, outs, &err), &err, "predict");
    for (int k = 0; k < info->noutputs; k++)
        for (int64_t i = 0; i < n * info->outputs[k].size; i++)
            if (!isfinite(outs[k][i]))
                fail("output %s[%lld] is not finite", info->outputs[k].name, (long long)i);
}

static bool same_outputs(const NrtModelInfo *info, float **a, float **b, int n)
{
    for (int k = 0; k < info->noutputs; k++)
        if (memcmp(a[k], b[k], (size_t)(n * info->outputs[k].size) * sizeof(float)) != 0)
            return false;
    return true;
}

/* A checkpoint written here from m's parameters: hash_ok picks the
 * model's structure hash or another one; bad_shape gives the first
 * parameter a shape of one more element. load must refuse both kinds of
 * file the right way and leave the model as it was. */
static void refused_load(const NrtModelInfo *info, NrtModel *m, const char *dir, bool hash_ok,
                         bool bad_shape, NrtStatus want)
{
    NrtTensorRef *t = xcalloc((size_t)info->nparams, sizeof *t);
    float *big = xcalloc((size_t)info->params[0].numel + 1, sizeof(float));
    for (int i = 0; i < info->nparams; i++) {
        t[i].name = info->params[i].name;
        t[i].rank = info->params[i].rank;
        for (int d = 0; d < t[i].rank; d++)
            t[i].shape[d] = info->params[i].shape[d];
        t[i].data = info->param(m, i);
    }
    if (bad_shape) {
        t[0].rank = 1;
        t[0].shape[0] = info->params[0].numel + 1;
        t[0].data = big;
    }
    char hash[32], path[4096];
    snprintf(hash, sizeof hash, "%016llx",
             (unsigned long long)(hash_ok ? info->structure_hash : info->structure_hash ^ 1));
    NrtKV meta[] = {{"format", "netc"}, {"model", info->name}, {"structure_hash", hash},
                    {"step", "3"}, {"seed", "1"}};
    snprintf(path, sizeof path, "%s/%s-bad.safetensors", dir, info->name);
    NrtError err;
    check(nrt_checkpoint_save(path, t, info->nparams, meta, 5, &err), &err, "checkpoint_save");
    uint64_t before = *info->step(m);
    NrtStatus st = info->load(m, path, &err);
    if (st != want)
        fail("load of a checkpoint with %s: got %s (%s), expected %s",
             bad_shape ? "a wrong shape" : "another structure hash", nrt_status_name(st), err.msg,
             nrt_status_name(want));
    if (*info->step(m) != before)
        fail("a refused load changed the model's step");
    free(big);
    free(t);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fail("usage: driver TMPDIR");
    const NrtModelInfo *info = MODEL_INFO();
    if (info->abi != NRT_MODEL_ABI)
        fail("ABI %u, expected %d", info->abi, NRT_MODEL_ABI);
    Data d;
    memset(&d, 0, sizeof d);
    make_data(info, &d);
    NrtError err;

    NrtModel *a = NULL, *b = NULL;
    check(info->create(&a, 42, &err), &err, "create");
    check(info->create(&b, 42, &err), &err, "create");
    if (params_hash(info, a) != params_hash(info, b))
        fail("create(42) twice gave different parameters");
    info->destroy(b);
    info->destroy(a);

    float losses[STEPS];
    nrt_set_threads(1);
    NrtModel *m = trained(info, &d, losses);
    uint64_t h1 = params_hash(info, m);
    for (int s = 0; s < STEPS; s++)
        if (!isfinite(losses[s]))
            fail("loss of step %d is not finite", s);
    if (!(losses[STEPS - 1] < losses[0]))
        fail("the loss did not decrease on a fixed batch: %g -> %g", losses[0], losses[STEPS - 1]);
    if (*info->step(m) != STEPS)
        fail("step counter %llu, expected %d", (unsigned long long)*info->step(m), STEPS);
    for (int i = 0; i < info->nparams; i++)
        if (info->params[i].trainable != (info->grad(m, i) != NULL))
            fail("parameter %s: gradient pointer does not match trainable", info->params[i].name);

    float **o1 = alloc_outs(info), **o2 = alloc_outs(info);
    predict(info, m, &d, (int)info->batch, o1);
    predict(info, m, &d, 1, o2);
    if (!same_outputs(info, o1, o2, 1))
        fail("predict of sample 0 alone differs from it in a full batch");

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", argv[1], info->name);
    check(info->save(m, path, &err), &err, "save");
    NrtModel *r = NULL;
    check(info->create(&r, 7, &err), &err, "create");
    check(info->load(r, path, &err), &err, "load");
    predict(info, r, &d, (int)info->batch, o2);
    if (!same_outputs(info, o1, o2, (int)info->batch))
        fail("predictions differ after save and load");
    if (*info->step(r) != STEPS)
        fail("load restored step %llu, expected %d", (unsigned long long)*info->step(r), STEPS);
    refused_load(info, r, argv[1], false, false, NRT_ERR_MISMATCH);
    refused_load(info, r, argv[1], true, true, NRT_ERR_MISMATCH);
    predict(info, r, &d, (int)info->batch, o2);
    if (!same_outputs(info, o1, o2, (int)info->batch))
        fail("a refused load changed the predictions");
    info->destroy(r);

    nrt_set_threads(2);
    NrtModel *m2 = trained(info, &d, NULL);
    if (params_hash(info, m2) != h1)
        fail("1 and 2 threads gave different parameters");
    info->destroy(m2);
    info->destroy(m);

    printf("%s: ok, loss", info->name);
    for (int s = 0; s < STEPS; s++)
        printf(" %.5g", (double)losses[s]);
    printf("\n");
    return 0;
}
