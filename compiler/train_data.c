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

#include <zlib.h>

#include "netc_config.h"

enum { PATH_SIZE = 4096 };

/* ---- IDX files and the shuffle generator ---------------------------------------
 * Interim: runtime/data.c (IDX loading) and runtime/rng.c (Philox) were
 * not in the tree when this driver was written; these two private versions
 * follow the same formats and are to be replaced by the runtime's. */

typedef enum IdxType { IDX_U8 = 0x08, IDX_I32 = 0x0C, IDX_F32 = 0x0D } IdxType;

typedef struct IdxArray {
    IdxType type;
    int rank;
    int64_t dims[4];
    void *data;          /* malloc'ed, host byte order */
} IdxArray;

static void idx_free(IdxArray *x)
{
    free(x->data);
    x->data = NULL;
}

static size_t idx_elem_size(int type)
{
    return type == IDX_U8 ? 1 : type == IDX_I32 || type == IDX_F32 ? 4 : 0;
}

static NrtStatus idx_header(gzFile f, const char *path, IdxArray *x, int64_t *n, NrtError *err)
{
    unsigned char h[4], d[4];
    if (gzread(f, h, 4) != 4)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated IDX header", path);
    if (h[0] != 0 || h[1] != 0 || !idx_elem_size(h[2]) || h[3] < 1 || h[3] > 4)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x "
                             "%02x; expected 00 00, a type of 08/0c/0d and 1 to 4 dimensions)",
                             path, h[0], h[1], h[2], h[3]);
    x->type = (IdxType)h[2];
    x->rank = h[3];
    *n = 1;
    for (int i = 0; i < x->rank; i++) {
        if (gzread(f, d, 4) != 4)
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated IDX header", path);
        x->dims[i] = (int64_t)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3];
        *n *= x->dims[i];
        if (*n > ((int64_t)1 << 36))
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: IDX dimensions too large", path);
    }
    return NRT_OK;
}

/* Reads a gzip'ed or plain IDX file (zlib reads both) and checks that the
 * data is exactly as long as the header says. */
static NrtStatus idx_load(const char *path, IdxArray *x, NrtError *err)
{
    memset(x, 0, sizeof *x);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return nrt_error_set(err, NRT_ERR_IO, "cannot open '%s': %s", path,
                             errno ? strerror(errno) : "out of memory");
    int64_t n = 0;
    NrtStatus st = idx_header(f, path, x, &n, err);
    size_t bytes = (size_t)n * idx_elem_size(x->type);
    if (st == NRT_OK && !(x->data = malloc(bytes ? bytes : 1)))
        st = nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    size_t got = 0;
    while (st == NRT_OK && got < bytes) {
        unsigned chunk = bytes - got > (1u << 30) ? 1u << 30 : (unsigned)(bytes - got);
        int r = gzread(f, (char *)x->data + got, chunk);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    char extra;
    if (st == NRT_OK && got < bytes)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated: the header promises %zu bytes "
                           "of data, the file has %zu", path, bytes, got);
    else if (st == NRT_OK && gzread(f, &extra, 1) == 1)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: more data than the header's dimensions "
                           "say (size mismatch)", path);
    gzclose(f);
    for (size_t i = 0; st == NRT_OK && x->type != IDX_U8 && i < bytes; i += 4) {
        unsigned char *p = (unsigned char *)x->data + i;   /* big endian -> host */
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        memcpy(p, &v, 4);
    }
    if (st != NRT_OK)
        idx_free(x);
    return st;
}

enum { SHUFFLE_PURPOSE = 7 };

/* Philox4x32-10 (Salmon et al. 2011): counter ctr, key (k0, k1). */
static void philox(uint32_t ctr[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0], p1 = (uint64_t)0xCD9E8D57u * ctr[2];
        uint32_t c[4] = {(uint32_t)(p1 >> 32) ^ ctr[1] ^ k0, (uint32_t)p1,
                         (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1, (uint32_t)p0};
        memcpy(ctr, c, sizeof c);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* The high 64 bits of a * b. */
static uint64_t mulhi64(uint64_t a, uint64_t b)
{
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t ll = al * bl, hl = ah * bl, lh = al * bh, hh = ah * bh;
    uint64_t cross = (ll >> 32) + (uint32_t)hl + lh;
    return (hl >> 32) + (cross >> 32) + hh;
}

/* Fisher-Yates with draw i keyed by (seed; i, stream, purpose). */
static void philox_permutation(uint64_t seed, uint32_t purpose, uint64_t stream, int64_t n,
                                int64_t *order)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t c[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)stream,
                         purpose << 16 ^ (uint32_t)(stream >> 32)};
        philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
        uint64_t r = (uint64_t)c[0] << 32 | c[1];
        int64_t j = (int64_t)mulhi64(r, (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

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
    IdxArray idx;
    NrtStatus st = idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    int64_t per = 1;
    for (int d = 1; d < idx.rank; d++)
        per *= idx.dims[d];
    if (idx.type != IDX_U8 || idx.rank < 2 || per != info->input_size) {
        char shape[96] = "";
        for (int d = 1, n = 0; d < idx.rank && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, d > 1 ? "x%lld" : "%lld",
                          (long long)idx.dims[d]);
        idx_free(&idx);
        return nrt_error_set(err, NRT_ERR_MISMATCH,
                             "%s: images are %s %s (%lld values each) but model '%s' takes "
                             "%lld per sample", path, shape,
                             idx.type == IDX_U8 ? "bytes" : "non-byte values",
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
    IdxArray idx;
    NrtStatus st = idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    if (idx.rank != 1 || idx.dims[0] != full_count
        || (idx.type != IDX_U8 && idx.type != IDX_I32)) {
        idx_free(&idx);
        return nrt_error_set(err, NRT_ERR_MISMATCH,
                             "%s: expected %lld labels (one byte or int32 per image, 1-D), found "
                             "a %d-D file of %lld entries", path, (long long)full_count,
                             idx.rank, (long long)idx.dims[0]);
    }
    int32_t *lab = malloc((size_t)(count ? count : 1) * sizeof *lab);
    for (int64_t i = 0; lab && i < count; i++) {
        lab[i] = idx.type == IDX_U8 ? ((const uint8_t *)idx.data)[i]
                                        : ((const int32_t *)idx.data)[i];
        if (lab[i] < 0 || lab[i] >= t->n) {
            st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: label %d of sample %lld is outside "
                               "classes(%lld) of target '%s'", path, (int)lab[i], (long long)i,
                               (long long)t->n, t->name);
            break;
        }
    }
    idx_free(&idx);
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
    IdxArray idx;
    NrtStatus st = idx_load(path, &idx, err);
    if (st != NRT_OK)
        return st;
    int64_t per = 1;
    for (int d = 1; d < idx.rank; d++)
        per *= idx.dims[d];
    if (idx.dims[0] != full_count || per != t->n
        || (idx.type != IDX_F32 && idx.type != IDX_U8)) {
        idx_free(&idx);
        return nrt_error_set(err, NRT_ERR_MISMATCH, "%s: expected %lld x %lld float32 values "
                             "for target '%s', found %lld x %lld", path, (long long)full_count,
                             (long long)t->n, t->name, (long long)idx.dims[0], (long long)per);
    }
    int64_t total = count * per;
    float *v = malloc((size_t)(total > 0 ? total : 1) * sizeof *v);
    for (int64_t i = 0; v && i < total; i++)
        v[i] = idx.type == IDX_F32 ? ((const float *)idx.data)[i]
                                       : ((const uint8_t *)idx.data)[i] / 255.0f;
    idx_free(&idx);
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
    philox_permutation(seed, SHUFFLE_PURPOSE, epoch, count, order);
}

void train_data_gather_range(const TrainSplit *s, int64_t first, int n, float *x)
{
    const float inv = 1.0f / 255.0f;
    const uint8_t *src = s->images + first * s->input_size;
    for (int64_t i = 0; i < (int64_t)n * s->input_size; i++)
        x[i] = (float)src[i] * inv;
}

void train_data_gather(const TrainSplit *s, const NrtModelInfo *info, const int64_t *idx, int n,
                       float *x, int32_t *const *labels, float *const *values)
{
    for (int i = 0; i < n; i++)
        train_data_gather_range(s, idx[i], 1, x + (int64_t)i * s->input_size);
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
