/* data.c - data sets from IDX files (MNIST's format, gzip'ed or plain) and
 * batches gathered from them.
 *
 * Input: paths. zlib's gzread reads gzip and plain files alike, so a file's
 * name does not matter. Every check a hostile or damaged file needs is
 * here, each with its own message naming the file: empty, short header,
 * magic, type code, rank, absurd dimensions (checked before allocating),
 * corrupt gzip, truncated data, trailing data, and for data sets the
 * image/label pairing. Trailing data is an error rather than a warning: it
 * means the header's dimensions are wrong or two files were glued
 * together, and training on a misread file fails silently.
 * Output: elements in host byte order; data sets keep uint8 pixels and
 * convert x / 255 per batch (nrt_dataset_gather), which costs nothing
 * next to a training step and keeps Fashion-MNIST at 55 MB, not 220.
 */
#include "netrt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "netc_config.h"

enum { GZ_CHUNK = 1 << 30, GZ_BUFFER = 1 << 18 };

static size_t idx_elem_bytes(int type)
{
    switch (type) {
    case NRT_IDX_U8: case NRT_IDX_I8: return 1;
    case NRT_IDX_I16: return 2;
    case NRT_IDX_I32: case NRT_IDX_F32: return 4;
    case NRT_IDX_F64: return 8;
    }
    return 0;
}

/* Reads up to n bytes; *got says how many arrived. A zlib error (corrupt
 * gzip stream) is NRT_ERR_FORMAT; a short read is not an error here. */
static NrtStatus gz_read_all(gzFile f, const char *path, void *buf, uint64_t n, uint64_t *got,
                             NrtError *err)
{
    *got = 0;
    while (*got < n) {
        unsigned chunk = n - *got > GZ_CHUNK ? GZ_CHUNK : (unsigned)(n - *got);
        int r = gzread(f, (char *)buf + *got, chunk);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            if (zerr == Z_ERRNO)
                return nrt_error_set(err, NRT_ERR_IO, "%s: read error: %s", path, strerror(errno));
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: corrupt gzip data after %llu bytes: %s",
                                 path, (unsigned long long)*got, msg);
        }
        if (r == 0)
            break;
        *got += (uint64_t)r;
    }
    return NRT_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* "60000 x 28 x 28" */
static void dims_str(const NrtIdx *x, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < x->rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, i ? " x %lld" : "%lld", (long long)x->dims[i]);
}

/* Magic, type and rank: the first four bytes. */
static NrtStatus idx_magic(gzFile f, const char *path, NrtIdx *x, NrtError *err)
{
    unsigned char h[4];
    uint64_t got;
    NrtStatus st = gz_read_all(f, path, h, 4, &got, err);
    if (st != NRT_OK)
        return st;
    if (got == 0)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: empty file", path);
    if (got < 4)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated header: %llu of the 4 magic "
                             "bytes", path, (unsigned long long)got);
    if (h[0] != 0 || h[1] != 0)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: not an IDX file: bad magic %02x %02x %02x "
                             "%02x (expected 00 00, type, rank)", path, h[0], h[1], h[2], h[3]);
    if (!idx_elem_bytes(h[2]))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: unknown IDX type code 0x%02x (expected "
                             "08, 09, 0b, 0c, 0d or 0e)", path, h[2]);
    if (h[3] < 1 || h[3] > NRT_IDX_MAX_RANK)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: IDX rank %d is not supported (1 to %d "
                             "dimensions)", path, h[3], NRT_IDX_MAX_RANK);
    x->type = (NrtIdxType)h[2];
    x->rank = h[3];
    x->elem_bytes = idx_elem_bytes(h[2]);
    return NRT_OK;
}

/* Dimensions, with the size limits checked before anything is allocated. */
static NrtStatus idx_dims(gzFile f, const char *path, NrtIdx *x, uint64_t *bytes, NrtError *err)
{
    unsigned char d[4 * NRT_IDX_MAX_RANK];
    uint64_t need = 4 * (uint64_t)x->rank, got;
    NrtStatus st = gz_read_all(f, path, d, need, &got, err);
    if (st != NRT_OK)
        return st;
    if (got < need)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated header: %d dimensions need %llu "
                             "bytes, file has %llu", path, x->rank, (unsigned long long)need,
                             (unsigned long long)got);
    uint64_t total = x->elem_bytes;
    for (int i = 0; i < x->rank; i++)
        x->dims[i] = be32(d + 4 * i);
    char ds[160];
    dims_str(x, ds, sizeof ds);
    if (x->dims[0] > NRT_IDX_MAX_ITEMS)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: absurd IDX dimensions %s: more than 2^31 "
                             "items", path, ds);
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] && total > (uint64_t)NRT_IDX_MAX_BYTES / (uint64_t)x->dims[i])
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: absurd IDX dimensions %s: more than "
                                 "16 GiB of data", path, ds);
        total *= (uint64_t)x->dims[i];
    }
    /* With 0 items the total is 0 whatever the item shape: bound the item
     * alone too (found by fuzz_idx: 0 x 2^31 x 2^31 x ... overflowed). */
    uint64_t item = 1;
    for (int i = 1; i < x->rank; i++) {
        if (x->dims[i] && item > (uint64_t)NRT_IDX_MAX_BYTES / (uint64_t)x->dims[i])
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: absurd IDX dimensions %s: more than "
                                 "16 GiB per item", path, ds);
        item *= (uint64_t)x->dims[i];
    }
    x->count = x->dims[0];
    x->item_size = (int64_t)item;
    *bytes = total;
    return NRT_OK;
}

/* After the promised data: nothing may follow. Counts what does (up to 1 GiB). */
static NrtStatus idx_trailing(gzFile f, const char *path, uint64_t bytes, NrtError *err)
{
    char buf[1 << 16];
    uint64_t extra = 0, got;
    do {
        NrtStatus st = gz_read_all(f, path, buf, sizeof buf, &got, err);
        if (st != NRT_OK)
            return st;
        extra += got;
    } while (got == sizeof buf && extra < ((uint64_t)1 << 30));
    if (extra)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: trailing data: %s%llu bytes after the "
                             "%llu the header describes", path, got == sizeof buf ? "over " : "",
                             (unsigned long long)extra, (unsigned long long)bytes);
    return NRT_OK;
}

/* Big-endian elements to host order, whatever the host. */
static void idx_to_host(NrtIdx *x, uint64_t bytes)
{
    unsigned char *p = x->data;
    size_t eb = x->elem_bytes;
    for (uint64_t i = 0; eb > 1 && i < bytes; i += eb) {
        if (eb == 2) {
            uint16_t v = (uint16_t)(p[i] << 8 | p[i + 1]);
            memcpy(p + i, &v, 2);
        } else if (eb == 4) {
            uint32_t v = be32(p + i);
            memcpy(p + i, &v, 4);
        } else {
            uint64_t v = (uint64_t)be32(p + i) << 32 | be32(p + i + 4);
            memcpy(p + i, &v, 8);
        }
    }
}

/* The data, read in chunks into a buffer that grows with what actually
 * arrives (doubling, from 1 MiB), so a 16-byte file whose header promises
 * 16 GiB costs a megabyte, not 16 GiB, before it is refused as truncated. */
static NrtStatus idx_read_data(gzFile f, const char *path, NrtIdx *x, uint64_t bytes,
                               uint64_t *got, NrtError *err)
{
    uint64_t cap = 0;
    *got = 0;
    while (*got < bytes) {
        if (*got == cap) {
            uint64_t want = cap ? 2 * cap : (uint64_t)1 << 20;
            cap = want < bytes ? want : bytes;
            void *grown = realloc(x->data, (size_t)cap);
            if (!grown)
                return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory for %llu bytes of "
                                     "data", path, (unsigned long long)cap);
            x->data = grown;
        }
        uint64_t n;
        NrtStatus st = gz_read_all(f, path, (char *)x->data + *got, cap - *got, &n, err);
        if (st != NRT_OK)
            return st;
        *got += n;
        if (*got < cap)
            break;   /* the file ended */
    }
    if (!x->data && !(x->data = malloc(1)))
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    return NRT_OK;
}

static NrtStatus idx_body(gzFile f, const char *path, NrtIdx *x, NrtError *err)
{
    uint64_t bytes = 0, got;
    NrtStatus st = idx_magic(f, path, x, err);
    if (st == NRT_OK)
        st = idx_dims(f, path, x, &bytes, err);
    if (st == NRT_OK)
        st = idx_read_data(f, path, x, bytes, &got, err);
    if (st != NRT_OK)
        return st;
    if (got < bytes) {
        char ds[160];
        dims_str(x, ds, sizeof ds);
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: truncated: header promises %llu bytes of "
                             "data (%s x %zu B), file has %llu", path, (unsigned long long)bytes,
                             ds, x->elem_bytes, (unsigned long long)got);
    }
    if ((st = idx_trailing(f, path, bytes, err)) != NRT_OK)
        return st;
    idx_to_host(x, bytes);
    return NRT_OK;
}

NrtStatus nrt_idx_load(const char *path, NrtIdx *out, NrtError *err)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return nrt_error_set(err, NRT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return nrt_error_set(err, NRT_ERR_IO, "%s: is a directory, not an IDX file", path);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return nrt_error_set(err, errno ? NRT_ERR_IO : NRT_ERR_NOMEM, "cannot open '%s': %s", path,
                             errno ? strerror(errno) : "out of memory");
    gzbuffer(f, GZ_BUFFER);
    NrtStatus st = idx_body(f, path, out, err);
    gzclose(f);
    if (st != NRT_OK)
        nrt_idx_free(out);
    return st;
}

void nrt_idx_free(NrtIdx *x)
{
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* ---- data sets ------------------------------------------------------------ */

void nrt_dataset_free(NrtDataset *ds)
{
    free(ds->train.images);
    free(ds->train.labels);
    free(ds->test.images);
    free(ds->test.labels);
    memset(ds, 0, sizeof *ds);
}

static NrtStatus load_images(const char *path, NrtIdx *x, NrtError *err)
{
    NrtStatus st = nrt_idx_load(path, x, err);
    if (st != NRT_OK)
        return st;
    if (x->type != NRT_IDX_U8)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: images must be unsigned bytes (IDX type "
                           "08), the file has type %02x", path, x->type);
    else if (x->rank < 2 || x->rank > 4)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: images need 2 to 4 dimensions (count x H x "
                           "W), the file has %d", path, x->rank);
    else if (x->count == 0)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: no images", path);
    if (st != NRT_OK)
        nrt_idx_free(x);
    return st;
}

/* Labels as int32, from U8 or I32 files. */
static NrtStatus load_labels(const char *path, int32_t **labels, int64_t *count, NrtError *err)
{
    NrtIdx x;
    NrtStatus st = nrt_idx_load(path, &x, err);
    if (st != NRT_OK)
        return st;
    if ((x.type != NRT_IDX_U8 && x.type != NRT_IDX_I32) || x.rank != 1)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: labels must be one dimension of unsigned "
                           "bytes or int32 (IDX type 08 or 0c), the file has type %02x and %d "
                           "dimensions", path, x.type, x.rank);
    else if (!(*labels = malloc((size_t)(x.count ? x.count : 1) * sizeof **labels)))
        st = nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; st == NRT_OK && i < x.count; i++) {
        int32_t v = x.type == NRT_IDX_U8 ? ((const uint8_t *)x.data)[i] : ((const int32_t *)x.data)[i];
        if (v < 0)
            st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: label %lld is negative (%d)", path,
                               (long long)i, (int)v);
        else if (v == INT32_MAX)   /* the class count, 1 + the largest label, must fit */
            st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: label %lld is %d, too large for a "
                               "class index", path, (long long)i, (int)v);
        else
            (*labels)[i] = v;
    }
    *count = x.count;
    nrt_idx_free(&x);
    if (st != NRT_OK) {
        free(*labels);
        *labels = NULL;
    }
    return st;
}

static NrtStatus load_split(const char *images, const char *labels, NrtDataSplit *s, NrtIdx *x,
                            NrtError *err)
{
    int64_t nlabels = 0;
    NrtStatus st = load_images(images, x, err);
    if (st != NRT_OK)
        return st;
    s->images = x->data;          /* the split owns the pixels from here on */
    s->count = x->count;
    s->item_size = x->item_size;
    if ((st = load_labels(labels, &s->labels, &nlabels, err)) != NRT_OK)
        return st;
    if (nlabels != s->count)
        return nrt_error_set(err, NRT_ERR_MISMATCH, "%s has %lld images but %s has %lld labels",
                             images, (long long)s->count, labels, (long long)nlabels);
    return NRT_OK;
}

static bool same_item_shape(const NrtIdx *a, const NrtIdx *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 1; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

static void dataset_shape(NrtDataset *ds, const NrtIdx *x)
{
    ds->c = x->rank == 4 ? x->dims[1] : 1;
    ds->h = x->rank >= 3 ? x->dims[x->rank - 2] : 1;
    ds->w = x->dims[x->rank - 1];
    int32_t top = -1;
    for (int k = 0; k < 2; k++) {
        const NrtDataSplit *s = k ? &ds->test : &ds->train;
        for (int64_t i = 0; i < s->count; i++)
            top = s->labels[i] > top ? s->labels[i] : top;
    }
    ds->classes = top + 1;
}

NrtStatus nrt_dataset_load_idx(const char *train_images, const char *train_labels,
                               const char *test_images, const char *test_labels,
                               NrtDataset *out, NrtError *err)
{
    memset(out, 0, sizeof *out);
    NrtIdx tr, te;
    NrtStatus st = load_split(train_images, train_labels, &out->train, &tr, err);
    if (st == NRT_OK)
        st = load_split(test_images, test_labels, &out->test, &te, err);
    if (st == NRT_OK && !same_item_shape(&tr, &te)) {
        char a[160], b[160];
        dims_str(&tr, a, sizeof a);
        dims_str(&te, b, sizeof b);
        st = nrt_error_set(err, NRT_ERR_MISMATCH, "the training images (%s: %s) and the test "
                           "images (%s: %s) differ in shape", train_images, a, test_images, b);
    }
    if (st == NRT_OK)
        dataset_shape(out, &tr);
    else
        nrt_dataset_free(out);
    return st;
}

NrtStatus nrt_dataset_load_fashion_mnist(const char *dir, NrtDataset *out, NrtError *err)
{
    static const char *const names[4] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    };
    char paths[4][4096];
    if (!dir)
        dir = NETC_FASHION_MNIST_DIR;
    for (int i = 0; i < 4; i++) {
        int len = snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
        if (len < 0 || (size_t)len >= sizeof paths[i]) {
            memset(out, 0, sizeof *out);
            return nrt_error_set(err, NRT_ERR_ARG, "data folder path too long: %.64s...", dir);
        }
    }
    return nrt_dataset_load_idx(paths[0], paths[1], paths[2], paths[3], out, err);
}

NrtStatus nrt_dataset_gather(const NrtDataSplit *s, const int64_t *indices, int64_t n, float *x,
                             int32_t *y, NrtError *err)
{
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= s->count)
            return nrt_error_set(err, NRT_ERR_ARG, "sample index %lld (position %lld of the batch) "
                                 "is outside the data set's %lld samples", (long long)indices[i],
                                 (long long)i, (long long)s->count);
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    const int64_t d = s->item_size;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n * d >= (1 << 15))
#endif
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = s->images + indices[i] * d;
        float *dst = x + i * d;
        for (int64_t k = 0; k < d; k++)
            dst[k] = lut[src[k]];
        if (y)
            y[i] = s->labels[indices[i]];
    }
    return NRT_OK;
}
