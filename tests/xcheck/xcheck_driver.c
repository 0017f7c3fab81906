/* xcheck_driver.c - runs one generated model for the cross-checks.
 *
 * Compiled against any model netc emits, through its descriptor only:
 *     netc foo.net -o foo.c
 *     cc xcheck_driver.c foo.c -DMODEL_INFO=foo_info -lnetrt -lm -fopenmp
 * Two modes:
 *   xcheck DIR STEPS      reads DIR/batch.bin (written by xcheck.py), creates
 *                         the model with the .net's seed, saves DIR/init.safetensors,
 *                         predicts, runs STEPS train_steps on the batch (saving
 *                         DIR/step<k>.safetensors after each), predicts again,
 *                         and writes DIR/results.safetensors (losses, every
 *                         gradient after each step, predictions) and
 *                         DIR/params.txt / DIR/config.txt (what the model says
 *                         about itself, for xcheck.py to map and verify).
 *   train STEPS SEED OUT  trains STEPS steps on synthetic batches (a fixed
 *                         integer hash, different each step), saves OUT and
 *                         prints an FNV-1a hash of every parameter: the
 *                         determinism test compares it across runs and threads.
 * Guarantees: exit 0 only when every runtime call succeeded; any NrtStatus
 * other than NRT_OK is printed with its message and exits 1.
 * Why its own safetensors writer: results.safetensors holds test data
 * (gradients, outputs), not a model checkpoint, so it must not depend on
 * what the checkpoint API accepts; the format is simple enough to write here.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

#ifndef MODEL_INFO
#error "compile with -DMODEL_INFO=<model>_info"
#endif
const NrtModelInfo *MODEL_INFO(void);

/* ---- small helpers ------------------------------------------------------- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("xcheck_driver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(NrtStatus st, const NrtError *err, const char *what)
{
    if (st != NRT_OK)
        die("%s failed: %s: %s", what, nrt_status_name(st), err->msg);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static char *path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* ---- results.safetensors: F32 tensors copied as they are collected ----- */

typedef struct Entry {
    char name[160];
    int rank;
    int64_t shape[4];
    float *data;
    int64_t numel;
} Entry;

typedef struct Results {
    Entry *e;
    int n, cap;
} Results;

static void results_add(Results *r, const char *name, int rank, const int64_t *shape,
                        const float *data)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        Entry *e = realloc(r->e, (size_t)r->cap * sizeof *e);
        if (!e)
            die("out of memory");
        r->e = e;
    }
    Entry *e = &r->e[r->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->rank = rank;
    e->numel = 1;
    for (int i = 0; i < rank; i++) {
        e->shape[i] = shape[i];
        e->numel *= shape[i];
    }
    e->data = xmalloc((size_t)e->numel * sizeof(float));
    memcpy(e->data, data, (size_t)e->numel * sizeof(float));
}

/* Header: {"name":{"dtype":"F32","shape":[..],"data_offsets":[a,b]},...},
 * space-padded to a multiple of 8 as the format recommends. */
static void results_write(const Results *r, const char *path)
{
    size_t cap = 256 + (size_t)r->n * 256, len = 0;
    char *h = xmalloc(cap);
    int64_t off = 0;
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < r->n; i++) {
        const Entry *e = &r->e[i];
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                                i ? "," : "", e->name);
        for (int d = 0; d < e->rank; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%" PRId64, d ? "," : "", e->shape[d]);
        int64_t end = off + e->numel * 4;
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%" PRId64 ",%" PRId64 "]}",
                                off, end);
        off = end;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write %s", path);
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < r->n; i++)   /* x86-64 and every target here are little-endian */
        fwrite(r->e[i].data, sizeof(float), (size_t)r->e[i].numel, f);
    if (fclose(f) != 0)
        die("write error on %s", path);
    free(h);
}

/* ---- batches ------------------------------------------------------------ */

/* A batch and the storage behind it. */
typedef struct Batch {
    NrtBatch b;
    float *x;
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
} Batch;

static void batch_alloc(Batch *bt, const NrtModelInfo *info, int n)
{
    memset(bt, 0, sizeof *bt);
    bt->b.n = n;
    bt->x = xmalloc((size_t)n * (size_t)info->input_size * sizeof(float));
    bt->b.x = bt->x;
    for (int t = 0; t < info->ntargets; t++) {
        if (info->targets[t].kind == NRT_TARGET_CLASSES) {
            bt->labels[t] = xmalloc((size_t)n * sizeof(int32_t));
            bt->b.labels[t] = bt->labels[t];
        } else {
            bt->values[t] = xmalloc((size_t)n * (size_t)info->targets[t].n * sizeof(float));
            bt->b.values[t] = bt->values[t];
        }
    }
}

static void read_exact(FILE *f, void *p, size_t size, size_t count, const char *path)
{
    if (fread(p, size, count, f) != count)
        die("%s: truncated", path);
}

/* batch.bin: "XCB1", int32 n, int32 ntargets, int64 input_size, int32 fit,
 * int32 0, then n x input_size float32, then per target n int32 labels or
 * n x size float32. fit = 1: the model's preprocessing statistics are to be
 * fitted on this batch (its pixels are k/255). Returns fit. */
static int batch_read(Batch *bt, const NrtModelInfo *info, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s", path);
    char magic[4];
    int32_t n, nt, fit[2];
    int64_t isz;
    read_exact(f, magic, 1, 4, path);
    read_exact(f, &n, sizeof n, 1, path);
    read_exact(f, &nt, sizeof nt, 1, path);
    read_exact(f, &isz, sizeof isz, 1, path);
    read_exact(f, fit, sizeof fit[0], 2, path);
    if (memcmp(magic, "XCB1", 4) != 0 || n < 1 || n > info->batch || nt != info->ntargets ||
        isz != info->input_size)
        die("%s: not a batch for this model (n %d of at most %" PRId64 ", %d targets, input %" PRId64
            ")", path, (int)n, info->batch, (int)nt, isz);
    batch_alloc(bt, info, n);
    read_exact(f, bt->x, sizeof(float), (size_t)n * (size_t)isz, path);
    for (int t = 0; t < nt; t++) {
        if (bt->labels[t])
            read_exact(f, bt->labels[t], sizeof(int32_t), (size_t)n, path);
        else
            read_exact(f, bt->values[t], sizeof(float), (size_t)n * (size_t)info->targets[t].n, path);
    }
    fclose(f);
    return fit[0];
}

static uint32_t hash32(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t h = 2166136261u;
    uint32_t w[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        h ^= w[i];
        h *= 16777619u;
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
    }
    return h;
}

/* A synthetic batch for training step `step`: pixels in [0,1], labels
 * uniform, mapped targets through their map, values in [-1,1]. */
static void batch_synth(Batch *bt, const NrtModelInfo *info, uint32_t step)
{
    int n = bt->b.n;
    for (int64_t i = 0; i < (int64_t)n * info->input_size; i++)
        bt->x[i] = (float)(hash32(step, 1, (uint32_t)i) >> 8) / 16777216.0f;
    for (int t = 0; t < info->ntargets; t++) {
        const NrtTargetInfo *ti = &info->targets[t];
        for (int i = 0; i < n; i++) {
            if (ti->kind == NRT_TARGET_VALUES) {
                for (int64_t j = 0; j < ti->n; j++)
                    bt->values[t][i * ti->n + j] =
                        (float)(hash32(step, 100 + (uint32_t)t, (uint32_t)(i * ti->n + j)) >> 8) /
                            8388608.0f - 1.0f;
            } else if (ti->source == NRT_TARGET_FROM_MAP) {
                bt->labels[t][i] = ti->map[bt->labels[ti->map_base][i]];
            } else {
                bt->labels[t][i] = (int32_t)(hash32(step, 100 + (uint32_t)t, (uint32_t)i) %
                                             (uint32_t)ti->n);
            }
        }
    }
}

/* A mapped target must be its base's labels through the map: the test's
 * batch file carries both, so check that they agree. */
static void batch_check_maps(const Batch *bt, const NrtModelInfo *info)
{
    for (int t = 0; t < info->ntargets; t++) {
        const NrtTargetInfo *ti = &info->targets[t];
        if (ti->kind != NRT_TARGET_CLASSES)
            continue;
        for (int i = 0; i < bt->b.n; i++) {
            int32_t y = bt->labels[t][i];
            if (y < 0 || y >= ti->n)
                die("batch: target %s label %d out of range", ti->name, (int)y);
            if (ti->source == NRT_TARGET_FROM_MAP &&
                y != ti->map[bt->labels[ti->map_base][i]])
                die("batch: target %s sample %d is %d, the map says %d", ti->name, i, (int)y,
                    (int)ti->map[bt->labels[ti->map_base][i]]);
        }
    }
}

/* ---- the model's own description ---------------------------------------- */

static void write_params_txt(const NrtModelInfo *info, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s", path);
    for (int i = 0; i < info->nparams; i++) {
        const NrtParamInfo *p = &info->params[i];
        fprintf(f, "%d %s %d", i, p->name, p->trainable ? 1 : 0);
        for (int d = 0; d < p->rank; d++)
            fprintf(f, " %" PRId64, p->shape[d]);
        fputc('\n', f);
    }
    fclose(f);
}

static const char *opt_name(NrtOptimizer o)
{
    return o == NRT_OPT_SGD ? "sgd" : o == NRT_OPT_ADAM ? "adam" : "adamw";
}

static void write_config_txt(const NrtModelInfo *info, int n, const char *path)
{
    const NrtTrainConfig *c = &info->train;
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s", path);
    fprintf(f, "name %s\nbatch %" PRId64 "\nn %d\nseed %" PRIu64 "\n", info->name, info->batch, n,
            c->seed);
    fprintf(f, "optimizer %s\nlr %.17g\nmomentum %.17g\nnesterov %d\n", opt_name(c->optimizer),
            c->lr, c->momentum, c->nesterov ? 1 : 0);
    fprintf(f, "beta1 %.17g\nbeta2 %.17g\neps %.17g\nweight_decay %.17g\n", c->beta1, c->beta2,
            c->eps, c->weight_decay);
    for (int k = 0; k < info->noutputs; k++)
        fprintf(f, "output %d %s %" PRId64 "\n", k, info->outputs[k].name, info->outputs[k].size);
    for (int t = 0; t < info->ntargets; t++)
        fprintf(f, "target %d %s %s %" PRId64 "\n", t, info->targets[t].name,
                info->targets[t].kind == NRT_TARGET_CLASSES ? "classes" : "values",
                info->targets[t].n);
    fclose(f);
}

/* ---- the two modes -------------------------------------------------------- */

static void predict_into(const NrtModelInfo *info, NrtModel *m, const Batch *bt, Results *r,
                         const char *prefix)
{
    float *outs[NRT_MAX_OUTPUTS];
    NrtError err = {0};
    for (int k = 0; k < info->noutputs; k++)
        outs[k] = xmalloc((size_t)bt->b.n * (size_t)info->outputs[k].size * sizeof(float));
    check(info->predict(m, bt->x, bt->b.n, outs, &err), &err, "predict");
    for (int k = 0; k < info->noutputs; k++) {
        char name[160];
        int64_t shape[2] = {bt->b.n, info->outputs[k].size};
        snprintf(name, sizeof name, "%s.%d", prefix, k);
        results_add(r, name, 2, shape, outs[k]);
        free(outs[k]);
    }
}

/* Preprocessing statistics from n images given as floats k/255. */
static void fit_on(const NrtModelInfo *info, NrtModel *m, const float *x, int64_t n)
{
    NrtError err = {0};
    uint8_t *img = xmalloc((size_t)(n * info->input_size));
    for (int64_t i = 0; i < n * info->input_size; i++)
        img[i] = (uint8_t)(x[i] * 255.0f + 0.5f);
    check(info->fit_preprocess(m, img, n, &err), &err, "fit_preprocess");
    free(img);
}

static void grads_into(const NrtModelInfo *info, NrtModel *m, Results *r, int step)
{
    for (int i = 0; i < info->nparams; i++) {
        const NrtParamInfo *p = &info->params[i];
        if (!p->trainable)
            continue;
        const float *g = info->grad(m, i);
        if (!g)
            die("grad(%s) is NULL for a trainable parameter", p->name);
        char name[160];
        snprintf(name, sizeof name, "grad%d.%s", step, p->name);
        results_add(r, name, p->rank, p->shape, g);
    }
}

static int run_xcheck(const NrtModelInfo *info, const char *dir, int steps)
{
    NrtError err = {0};
    NrtModel *m = NULL;
    Batch bt;
    Results r = {0};
    char *p = path_join(dir, "batch.bin");
    int fit = batch_read(&bt, info, p);
    free(p);
    batch_check_maps(&bt, info);
    check(info->create(&m, info->train.seed, &err), &err, "create");
    if (fit)
        fit_on(info, m, bt.x, bt.b.n);
    p = path_join(dir, "init.safetensors");
    check(info->save(m, p, &err), &err, "save");
    free(p);
    predict_into(info, m, &bt, &r, "pred0");
    float *losses = xmalloc((size_t)steps * sizeof(float));
    for (int s = 1; s <= steps; s++) {
        check(info->train_step(m, &bt.b, (float)info->train.lr, &losses[s - 1], &err), &err,
              "train_step");
        grads_into(info, m, &r, s);
        char name[64];
        snprintf(name, sizeof name, "step%d.safetensors", s);
        p = path_join(dir, name);
        check(info->save(m, p, &err), &err, "save");
        free(p);
    }
    predict_into(info, m, &bt, &r, "pred_final");
    int64_t lshape[1] = {steps};
    results_add(&r, "loss", 1, lshape, losses);
    if (*info->step(m) != (uint64_t)steps)
        die("step counter is %" PRIu64 " after %d steps", *info->step(m), steps);
    p = path_join(dir, "results.safetensors");
    results_write(&r, p);
    free(p);
    p = path_join(dir, "params.txt");
    write_params_txt(info, p);
    free(p);
    p = path_join(dir, "config.txt");
    write_config_txt(info, bt.b.n, p);
    free(p);
    info->destroy(m);
    printf("%s: %d step(s), loss", info->name, steps);
    for (int s = 0; s < steps; s++)
        printf(" %.7g", (double)losses[s]);
    printf("\n");
    return 0;
}

static uint64_t params_hash(const NrtModelInfo *info, NrtModel *m)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < info->nparams; i++) {
        const unsigned char *b = (const unsigned char *)info->param(m, i);
        for (int64_t j = 0; j < info->params[i].numel * 4; j++) {
            h ^= b[j];
            h *= 1099511628211ull;
        }
    }
    return h;
}

static int run_train(const NrtModelInfo *info, int steps, uint64_t seed, const char *out)
{
    NrtError err = {0};
    NrtModel *m = NULL;
    Batch bt;
    int n = (int)info->batch;
    batch_alloc(&bt, info, n);
    check(info->create(&m, seed, &err), &err, "create");
    /* Preprocessing statistics from a synthetic "training set". */
    int64_t count = 4 * info->batch;
    uint8_t *img = xmalloc((size_t)(count * info->input_size));
    for (int64_t i = 0; i < count * info->input_size; i++)
        img[i] = (uint8_t)(hash32(0xffffffffu, 7, (uint32_t)i) >> 24);
    check(info->fit_preprocess(m, img, count, &err), &err, "fit_preprocess");
    free(img);
    for (int s = 0; s < steps; s++) {
        float loss;
        batch_synth(&bt, info, (uint32_t)s);
        check(info->train_step(m, &bt.b, (float)info->train.lr, &loss, &err), &err, "train_step");
        if (s == steps - 1)
            printf("loss %.9g\n", (double)loss);
    }
    check(info->save(m, out, &err), &err, "save");
    printf("params_hash %016" PRIx64 "\n", params_hash(info, m));
    info->destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    const NrtModelInfo *info = MODEL_INFO();
    if (info->abi != NRT_MODEL_ABI)
        die("model ABI %u, driver built for %d", info->abi, NRT_MODEL_ABI);
    if (argc == 4 && strcmp(argv[1], "xcheck") == 0)
        return run_xcheck(info, argv[2], atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
    if (argc == 5 && strcmp(argv[1], "train") == 0)
        return run_train(info, atoi(argv[2]) > 0 ? atoi(argv[2]) : 1,
                         strtoull(argv[3], NULL, 10), argv[4]);
    fprintf(stderr, "usage: %s xcheck DIR STEPS | train STEPS SEED OUT.safetensors\n", argv[0]);
    return 2;
}
