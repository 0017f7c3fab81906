/* train_data.c - data files for `netc train`: names, loading, checks,
 * shuffling, batches.
 *
 * Input: a model's descriptor and its (overridden) train config. File
 * reading and format checks (magic, truncation, gzip) are the runtime's
 * (data.c); this file checks that what was read fits the model: image
 * size = input size, one label per image, labels inside classes(n),
 * value files shaped count x n. Derived `map` targets are computed from
 * their base labels here, once. Relative `data idx(...)` paths are taken
 * relative to the model file's folder, as #include paths are.
 */
#include "train_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "netc_config.h"

enum { PATH_SIZE = 4096 };

/* ---- file names ---------------------------------------------------------------- */

static const char *const fashion_names[4] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
};

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* dir/name, or dir/name without ".gz" when only the unpacked file exists. */
static void in_dir(char *out, const char *dir, const char *name)
{
    snprintf(out, PATH_SIZE, "%s/%s", dir, name);
    if (exists(out))
        return;
    char plain[PATH_SIZE];
    snprintf(plain, sizeof plain, "%s", out);
    size_t n = strlen(plain);
    if (n > 3 && strcmp(plain + n - 3, ".gz") == 0) {
        plain[n - 3] = '\0';
        if (exists(plain))
            memcpy(out, plain, n - 2);
    }
}

/* A path from the model file: relative ones are relative to its folder. */
static void from_model(char *out, const char *model_path, const char *file)
{
    const char *slash = model_path ? strrchr(model_path, '/') : NULL;
    if (file[0] == '/' || !slash)
        snprintf(out, PATH_SIZE, "%s", file);
    else
        snprintf(out, PATH_SIZE, "%.*s/%s", (int)(slash - model_path), model_path, file);
}

void train_data_paths(const TrainDataRequest *rq, char paths[4][4096])
{
    const NrtTrainConfig *c = rq->cfg;
    const char *files[4] = {c->train_images, c->train_labels, c->test_images, c->test_labels};
    const char *dir = getenv("NETC_FASHION_MNIST_DIR");
    if (!dir || !*dir)
        dir = NETC_FASHION_MNIST_DIR;
    for (int i = 0; i < 4; i++) {
        if (rq->data_dir)
            in_dir(paths[i], rq->data_dir, fashion_names[i]);
        else if (files[i])
            from_model(paths[i], rq->model_path, files[i]);
        else
            in_dir(paths[i], dir, fashion_names[i]);
    }
}

void train_data_free(TrainSplit *s)
{
    free(s->images);
    for (int t = 0; t < NRT_MAX_TARGETS; t++) {
        free(s->labels[t]);
        free(s->values[t]);
    }
    memset(s, 0, sizeof *s);
}

/* ---- loading ----------------------------------------------------------------- */

static NrtStatus load_images(const char *path, const NrtModelInfo *info, int64_t limit,
                             TrainSplit *s, NrtError *err)
{
    NrtIdx idx;
    NrtStatus st = nrt_idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    int64_t per = 1;
    for (int d = 1; d < idx.rank; d++)
        per *= idx.dims[d];
    if (idx.type != NRT_IDX_U8 || idx.rank < 2 || per != info->input_size) {
        char shape[96] = "";
        for (int d = 1, n = 0; d < idx.rank && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, d > 1 ? "x%lld" : "%lld",
                          (long long)idx.dims[d]);
        const char *kind = idx.type == NRT_IDX_U8 ? "bytes" : "non-byte values";
        nrt_idx_free(&idx);
        return nrt_error_set(err, NRT_ERR_MISMATCH,
                             "%s: images are %s %s (%lld values each) but model '%s' takes "
                             "%lld per sample", path, shape, kind,
                             (long long)per, info->name, (long long)info->input_size);
    }
    s->count = limit > 0 && limit < idx.dims[0] ? limit : idx.dims[0];
    s->input_size = per;
    s->images = (uint8_t *)idx.data;   /* takes the buffer over */
    return NRT_OK;
}

/* A classes target's labels from a 1-D byte (or int32) IDX file. */
static NrtStatus load_labels(const char *path, const NrtTargetInfo *t, int64_t full_count,
                             int64_t count, int32_t **out, NrtError *err)
{
    NrtIdx idx;
    NrtStatus st = nrt_idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    if (idx.rank != 1 || idx.dims[0] != full_count
        || (idx.type != NRT_IDX_U8 && idx.type != NRT_IDX_I32)) {
        st = nrt_error_set(err, NRT_ERR_MISMATCH,
                           "%s: expected %lld labels (one byte or int32 per image, 1-D), found "
                           "a %d-D file of %lld entries", path, (long long)full_count,
                           idx.rank, (long long)idx.dims[0]);
        nrt_idx_free(&idx);
        return st;
    }
    int32_t *lab = malloc((size_t)(count ? count : 1) * sizeof *lab);
    for (int64_t i = 0; lab && i < count; i++) {
        lab[i] = idx.type == NRT_IDX_U8 ? ((const uint8_t *)idx.data)[i]
                                        : ((const int32_t *)idx.data)[i];
        if (lab[i] < 0 || lab[i] >= t->n) {
            st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: label %d of sample %lld is outside "
                               "classes(%lld) of target '%s'", path, (int)lab[i], (long long)i,
                               (long long)t->n, t->name);
            break;
        }
    }
    nrt_idx_free(&idx);
    if (!lab)
        return nrt_error_set(err, NRT_ERR_NOMEM, "out of memory reading %s", path);
    if (st != NRT_OK)
        free(lab);
    else
        *out = lab;
    return st;
}

/* A values target: a float32 (or byte, scaled to [0, 1]) IDX file of
 * full_count x n. */
static NrtStatus load_values(const char *path, const NrtTargetInfo *t, int64_t full_count,
                             int64_t count, float **out, NrtError *err)
{
    NrtIdx idx;
    NrtStatus st = nrt_idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    int64_t per = 1;
    for (int d = 1; d < idx.rank; d++)
        per *= idx.dims[d];
    if (idx.dims[0] != full_count || per != t->n
        || (idx.type != NRT_IDX_F32 && idx.type != NRT_IDX_U8)) {
        st = nrt_error_set(err, NRT_ERR_MISMATCH, "%s: expected %lld x %lld float32 values "
                           "for target '%s', found %lld x %lld", path, (long long)full_count,
                           (long long)t->n, t->name, (long long)idx.dims[0], (long long)per);
        nrt_idx_free(&idx);
        return st;
    }
    int64_t total = count * per;
    float *v = malloc((size_t)(total > 0 ? total : 1) * sizeof *v);
    for (int64_t i = 0; v && i < total; i++)
        v[i] = idx.type == NRT_IDX_F32 ? ((const float *)idx.data)[i]
                                       : ((const uint8_t *)idx.data)[i] / 255.0f;
    nrt_idx_free(&idx);
    if (!v)
        return nrt_error_set(err, NRT_ERR_NOMEM, "out of memory reading %s", path);
    *out = v;
    return NRT_OK;
}

static NrtStatus derive_map(const NrtTargetInfo *t, TrainSplit *s, int ti, NrtError *err)
{
    const int32_t *base = s->labels[t->map_base];
    int32_t *lab = malloc((size_t)(s->count ? s->count : 1) * sizeof *lab);
    if (!lab)
        return nrt_error_set(err, NRT_ERR_NOMEM, "out of memory (target '%s')", t->name);
    for (int64_t i = 0; i < s->count; i++)
        lab[i] = base[i] < t->nmap ? t->map[base[i]] : 0;
    s->labels[ti] = lab;
    return NRT_OK;
}

/* Targets of one split: the data set's labels, maps, and own files. */
static NrtStatus load_targets(const TrainDataRequest *rq, const char *labels_path, bool test,
                              int64_t full_count, TrainSplit *s, NrtError *err)
{
    const NrtModelInfo *info = rq->info;
    NrtStatus st = NRT_OK;
    for (int ti = 0; ti < info->ntargets && ti < NRT_MAX_TARGETS && st == NRT_OK; ti++) {
        const NrtTargetInfo *t = &info->targets[ti];
        char path[PATH_SIZE];
        if (t->source == NRT_TARGET_FROM_MAP) {
            st = derive_map(t, s, ti, err);
            continue;
        }
        if (t->source == NRT_TARGET_FROM_DATA)
            snprintf(path, sizeof path, "%s", labels_path);
        else if (test ? t->test_file : t->file)
            from_model(path, rq->model_path, test ? t->test_file : t->file);
        else
            return nrt_error_set(err, NRT_ERR_ARG, "target '%s' has no %s file", t->name,
                                 test ? "test" : "training");
        if (t->kind == NRT_TARGET_CLASSES)
            st = load_labels(path, t, full_count, s->count, &s->labels[ti], err);
        else
            st = load_values(path, t, full_count, s->count, &s->values[ti], err);
    }
    return st;
}

static NrtStatus load_split(const TrainDataRequest *rq, const char *images, const char *labels,
                            bool test, TrainSplit *s, NrtError *err)
{
    int64_t limit = test ? rq->limit_test : rq->limit_train;
    NrtStatus st = load_images(images, rq->info, 0, s, err);
    if (st != NRT_OK)
        return st;
    int64_t full = s->count;
    s->count = limit > 0 && limit < full ? limit : full;
    st = load_targets(rq, labels, test, full, s, err);
    if (st != NRT_OK)
        train_data_free(s);
    return st;
}

NrtStatus train_data_load(const TrainDataRequest *rq, TrainSplit *train, TrainSplit *test,
                          NrtError *err)
{
    char paths[4][4096];
    train_data_paths(rq, paths);
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    NrtStatus st = NRT_OK;
    if (rq->want_train)
        st = load_split(rq, paths[0], paths[1], false, train, err);
    if (st == NRT_OK)
        st = load_split(rq, paths[2], paths[3], true, test, err);
    if (st != NRT_OK)
        train_data_free(train);
    return st;
}

/* ---- epochs and batches ----------------------------------------------------- */

void train_data_shuffle(uint64_t seed, uint64_t epoch, int64_t count, int64_t *order)
{
    nrt_rng_permutation(seed, NRT_RNG_SHUFFLE, epoch, count, order);
}

void train_data_gather_range(const TrainSplit *s, int64_t first, int n, float *x)
{
    const float inv = 1.0f / 255.0f;
    const uint8_t *src = s->images + first * s->input_size;
    for (int64_t i = 0; i < (int64_t)n * s->input_size; i++)
        x[i] = (float)src[i] * inv;
}

/* Requests the cache lines of image i (a shuffled row of a 47 MB data set
 * is rarely cached: the gather waited on its loads, 2% of an mlp step). */
static void prefetch_image(const TrainSplit *s, int64_t i)
{
    const uint8_t *p = s->images + i * s->input_size;
    for (int64_t b = 0; b < s->input_size; b += 64)
        __builtin_prefetch(p + b);
    __builtin_prefetch(p + s->input_size - 1);
}

void train_data_gather(const TrainSplit *s, const NrtModelInfo *info, const int64_t *idx, int n,
                       float *x, int32_t *const *labels, float *const *values)
{
    enum { AHEAD = 4 };     /* images in flight */
    for (int i = 0; i < n && i < AHEAD; i++)
        prefetch_image(s, idx[i]);
    for (int i = 0; i < n; i++) {
        if (i + AHEAD < n)
            prefetch_image(s, idx[i + AHEAD]);
        train_data_gather_range(s, idx[i], 1, x + (int64_t)i * s->input_size);
    }
    for (int t = 0; t < info->ntargets && t < NRT_MAX_TARGETS; t++) {
        int64_t per = info->targets[t].n;
        for (int i = 0; i < n; i++) {
            if (labels[t])
                labels[t][i] = s->labels[t][idx[i]];
            else if (values[t])
                memcpy(values[t] + i * per, s->values[t] + idx[i] * per, (size_t)per * sizeof(float));
        }
    }
}
