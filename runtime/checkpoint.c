/* checkpoint.c - checkpoints as safetensors files
 * (https://github.com/huggingface/safetensors, "Format").
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...},
 *    "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [b, e]}, ...}
 * padded with spaces to a multiple of 8, then the raw little-endian data;
 * offsets count from the first data byte. Only F32 tensors are written or read.
 *
 * Save is atomic: the bytes go to path.tmp.<pid> in the same directory,
 * which is flushed, fsynced, closed and renamed over path, then the
 * directory is fsynced; on any failure before the rename the temporary file
 * is removed and a previous file at path is untouched; a failure of the
 * folder's fsync (after the rename) is reported, the new file complete.
 * A writer killed mid-save leaves its path.tmp.<pid>: every save first
 * removes those of writers that no longer run (remove_stale_temps).
 * tests/unit/test_checkpoint_io.c fails each of these calls in turn. Open reads the whole file and
 * validates everything before anything is used (sizes, JSON, dtypes,
 * shapes, offsets in bounds, byte counts, no overlaps), so a truncated or
 * hostile file gives NRT_ERR_FORMAT naming the file and the field, never a
 * crash. The JSON is jansson's (no hand-written parser).
 *
 * Integrity: safetensors has no checksum, so a flipped bit in the data (or
 * in a metadata value) would load as a different number. Every save adds
 * __metadata__ "netc_crc32": the CRC-32 (zlib) of the whole file with
 * those 8 hex digits read as "00000000"; open recomputes it and refuses a
 * mismatch. Files without the field (other tools' safetensors) load as
 * before.
 */
#include "netrt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CK_MAX_HEADER ((uint64_t)100 << 20)   /* 100 MiB, as safetensors */
enum { CK_MAX_RANK = 8 };

#define CK_CRC_KEY "netc_crc32"
static const char CK_CRC_FIELD[] = "\"" CK_CRC_KEY "\":\"";   /* then 8 hex digits */
static const char CK_CRC_ZERO[8] = {'0', '0', '0', '0', '0', '0', '0', '0'};

typedef struct CkEntry {
    char *name;
    int rank;
    int64_t shape[CK_MAX_RANK];
    uint64_t begin, end;   /* byte range within the data */
} CkEntry;

struct NrtCheckpoint {
    char *path;
    unsigned char *buf;    /* the whole file */
    const unsigned char *data;
    uint64_t data_size;
    CkEntry *entries;
    int nentries;
    char **meta;           /* key, value, key, value, ... */
    int nmeta;
};

static bool host_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* "(3,4)": shape text for messages. */
static void shape_text(int rank, const int64_t *shape, char *out, size_t size)
{
    size_t k = (size_t)snprintf(out, size, "(");
    for (int i = 0; i < rank && k < size; i++)
        k += (size_t)snprintf(out + k, size - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < size)
        snprintf(out + k, size - k, ")");
}

/* ---- save ---------------------------------------------------------------- */

static NrtStatus check_tensor_ref(const char *path, const NrtTensorRef *t, uint64_t *nbytes,
                                  NrtError *err)
{
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return nrt_error_set(err, NRT_ERR_ARG, "%s: bad tensor name '%s'", path,
                             t->name ? t->name : "(null)");
    if (t->rank < 0 || t->rank > 4)
        return nrt_error_set(err, NRT_ERR_ARG, "%s: tensor '%s' has rank %d (0..4 allowed)", path,
                             t->name, t->rank);
    uint64_t numel = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] < 0 || (t->shape[i] > 0 && numel > (UINT64_MAX / 8) / (uint64_t)t->shape[i]))
            return nrt_error_set(err, NRT_ERR_ARG, "%s: tensor '%s' has a bad shape", path, t->name);
        numel *= (uint64_t)t->shape[i];
    }
    if (numel > 0 && !t->data)
        return nrt_error_set(err, NRT_ERR_ARG, "%s: tensor '%s' has no data", path, t->name);
    *nbytes = numel * 4;
    return NRT_OK;
}

static json_t *tensor_json(const NrtTensorRef *t, uint64_t begin, uint64_t end)
{
    json_t *shape = json_array();
    for (int i = 0; i < t->rank; i++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[i]));
    json_t *offs = json_array();
    json_array_append_new(offs, json_integer((json_int_t)begin));
    json_array_append_new(offs, json_integer((json_int_t)end));
    json_t *o = json_object();
    json_object_set_new(o, "dtype", json_string("F32"));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "data_offsets", offs);
    return o;
}

/* The header JSON, padded with spaces to a multiple of 8; *total = data bytes. */
static char *build_header(const char *path, const NrtTensorRef *t, int n, const NrtKV *meta,
                          int nmeta, size_t *len, uint64_t *total, NrtError *err)
{
    json_t *root = json_object(), *m = json_object();
    for (int i = 0; i < nmeta; i++)
        if (!meta[i].key || !meta[i].value || strcmp(meta[i].key, CK_CRC_KEY) == 0
            || json_object_set_new(m, meta[i].key, json_string(meta[i].value)) != 0) {
            json_decref(m);
            json_decref(root);
            nrt_error_set(err, NRT_ERR_ARG, "%s: bad metadata entry %d (NULL, not UTF-8 or "
                          "the reserved \"" CK_CRC_KEY "\")", path, i);
            return NULL;
        }
    json_object_set_new(m, CK_CRC_KEY, json_string("00000000"));   /* save_crc fills it */
    json_object_set_new(root, "__metadata__", m);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nbytes = 0;
        NrtStatus st = check_tensor_ref(path, &t[i], &nbytes, err);
        if (st == NRT_OK && json_object_get(root, t[i].name))
            st = nrt_error_set(err, NRT_ERR_ARG, "%s: tensor '%s' appears twice", path, t[i].name);
        if (st == NRT_OK && json_object_set_new(root, t[i].name, tensor_json(&t[i], off, off + nbytes)))
            st = nrt_error_set(err, NRT_ERR_ARG, "%s: tensor name %d is not UTF-8", path, i);
        if (st != NRT_OK) {
            json_decref(root);
            return NULL;
        }
        off += nbytes;
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js) {
        nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory writing the header", path);
        return NULL;
    }
    size_t jl = strlen(js), padded = (jl + 7) / 8 * 8;
    char *h = malloc(padded ? padded : 8);
    if (h) {
        memcpy(h, js, jl);
        memset(h + jl, ' ', padded - jl);
    } else {
        nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory writing the header", path);
    }
    free(js);
    *len = padded;
    *total = off;
    return h;
}

/* Floats as little-endian bytes, converting in chunks on a big-endian host. */
static bool write_floats(FILE *f, const float *x, uint64_t numel)
{
    if (host_little_endian())
        return fwrite(x, 4, (size_t)numel, f) == (size_t)numel;
    unsigned char chunk[4096];
    for (uint64_t i = 0; i < numel;) {
        size_t k = 0;
        for (; k < sizeof chunk / 4 && i < numel; k++, i++) {
            uint32_t v;
            memcpy(&v, &x[i], 4);
            for (int b = 0; b < 4; b++)
                chunk[4 * k + (size_t)b] = (unsigned char)(v >> (8 * b));
        }
        if (fwrite(chunk, 4, k, f) != k)
            return false;
    }
    return true;
}

static void len8_bytes(uint64_t hlen, unsigned char len8[8])
{
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)(hlen >> (8 * b));
}

/* zlib's crc32 over any length (its length argument is an unsigned int). */
static uint32_t crc_bytes(uint32_t crc, const void *p, uint64_t n)
{
    const unsigned char *c = p;
    for (; n > 0;) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, c, k);
        c += k;
        n -= k;
    }
    return crc;
}

static uint64_t numel_of(const NrtTensorRef *t)
{
    uint64_t numel = 1;
    for (int d = 0; d < t->rank; d++)
        numel *= (uint64_t)t->shape[d];
    return numel;
}

/* The CRC of the file to be written (the 8 digits of its field as zeros),
 * written into that field: the one unescaped CK_CRC_FIELD of the header. */
static void save_crc(char *header, size_t hlen, const NrtTensorRef *t, int n)
{
    unsigned char len8[8];
    len8_bytes(hlen, len8);
    uint32_t crc = crc_bytes((uint32_t)crc32(0, Z_NULL, 0), len8, 8);
    crc = crc_bytes(crc, header, hlen);   /* the field holds "00000000" here */
    for (int i = 0; i < n; i++) {
        uint64_t numel = numel_of(&t[i]);
        if (host_little_endian() || numel == 0) {
            crc = crc_bytes(crc, t[i].data, 4 * numel);
            continue;
        }
        for (uint64_t j = 0; j < numel; j++) {
            uint32_t v;
            unsigned char le[4];
            memcpy(&v, &t[i].data[j], 4);
            for (int b = 0; b < 4; b++)
                le[b] = (unsigned char)(v >> (8 * b));
            crc = crc_bytes(crc, le, 4);
        }
    }
    size_t fl = sizeof CK_CRC_FIELD - 1;
    for (size_t i = 0; i + fl + 8 <= hlen; i++)
        if (memcmp(header + i, CK_CRC_FIELD, fl) == 0) {
            char hex[9];
            snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
            memcpy(header + i + fl, hex, 8);
            return;
        }
}

static bool write_all(FILE *f, const char *header, size_t hlen, const NrtTensorRef *t, int n)
{
    unsigned char len8[8];
    len8_bytes(hlen, len8);
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen)
        return false;
    for (int i = 0; i < n; i++) {
        uint64_t numel = numel_of(&t[i]);
        if (numel > 0 && !write_floats(f, t[i].data, numel))
            return false;
    }
    return fflush(f) == 0 && fsync(fileno(f)) == 0;
}

/* The pid of a temporary name's suffix: decimal, no sign or leading zero,
 * 1 .. INT_MAX; else 0. */
static pid_t temp_pid(const char *digits)
{
    if (digits[0] < '1' || digits[0] > '9')
        return 0;
    long long v = 0;
    for (const char *c = digits; *c; c++) {
        if (*c < '0' || *c > '9' || c - digits >= 10)
            return 0;
        v = v * 10 + (*c - '0');
    }
    return v <= INT_MAX ? (pid_t)v : 0;
}

/* Removes what writers killed during a save left behind: in path's folder,
 * files named exactly <name of path>.tmp.<pid> (the temporary names of
 * nrt_checkpoint_save) whose pid no process has (kill(pid, 0) fails with
 * ESRCH). A live pid, even a reused one, keeps its file; our own temporary
 * does not exist yet. Best effort: nothing here fails a save. A writer in
 * another pid namespace or on another host sharing the folder would look
 * dead: do not point two such writers at one checkpoint path. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    char dir[4200], file[4300];
    int dl = slash == path ? 1 : slash ? (int)(slash - path) : 1;
    if (dl >= (int)sizeof dir)
        return;
    memcpy(dir, slash ? path : ".", (size_t)dl);
    dir[dl] = '\0';
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, base, bl) != 0 || strncmp(e->d_name + bl, ".tmp.", 5) != 0)
            continue;
        pid_t pid = temp_pid(e->d_name + bl + 5);
        if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        if (snprintf(file, sizeof file, "%s%s%s", dir, dl == 1 && dir[0] == '/' ? "" : "/",
                     e->d_name) < (int)sizeof file)
            unlink(file);
    }
    closedir(d);
}

/* Makes the rename durable: fsyncs the folder that holds path. A file
 * system that cannot sync a directory (EINVAL: not supported) is accepted;
 * any other failure is an error, because after a crash the folder could
 * still name the previous file. */
static NrtStatus fsync_dir_of(const char *path, NrtError *err)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = fd >= 0 ? fsync(fd) : -1, saved = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0 && saved != EINVAL)
        return nrt_error_set(err, NRT_ERR_IO, "%s is complete but its folder %s could not be "
                             "synced (%s): after a crash it may hold the previous checkpoint",
                             path, dir, strerror(saved));
    return NRT_OK;
}

NrtStatus nrt_checkpoint_save(const char *path, const NrtTensorRef *t, int n, const NrtKV *meta,
                              int nmeta, NrtError *err)
{
    if (!path || n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && !meta))
        return nrt_error_set(err, NRT_ERR_ARG, "checkpoint save: bad arguments");
    size_t hlen;
    uint64_t total;
    char *header = build_header(path, t, n, meta, nmeta, &hlen, &total, err);
    if (!header)
        return err ? err->code : NRT_ERR_ARG;
    save_crc(header, hlen, t, n);
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(header);
        return nrt_error_set(err, NRT_ERR_ARG, "%s: path too long", path);
    }
    remove_stale_temps(path);
    NrtStatus st = NRT_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        st = nrt_error_set(err, NRT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
    } else {
        /* The errno of the first call that failed: write, close or rename. */
        bool ok = write_all(f, header, hlen, t, n);
        int saved = errno;
        if (fclose(f) != 0 && ok) {
            ok = false;
            saved = errno;
        }
        if (ok && rename(tmp, path) != 0) {
            ok = false;
            saved = errno;
        }
        if (!ok) {
            st = nrt_error_set(err, NRT_ERR_IO, "cannot write %s: %s", path, strerror(saved));
            unlink(tmp);
        } else {
            st = fsync_dir_of(path, err);
        }
    }
    free(header);
    return st;
}

/* ---- open and validate --------------------------------------------------- */

static NrtStatus read_file(const char *path, unsigned char **buf, uint64_t *size, NrtError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nrt_error_set(err, NRT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return nrt_error_set(err, NRT_ERR_IO, "cannot read %s: not a regular file", path);
    }
    *size = (uint64_t)sb.st_size;
    *buf = malloc(*size ? (size_t)*size : 1);
    if (!*buf) {
        fclose(f);
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory (%llu bytes)", path,
                             (unsigned long long)*size);
    }
    size_t got = fread(*buf, 1, (size_t)*size, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || got != (size_t)*size) {
        free(*buf);
        *buf = NULL;
        return nrt_error_set(err, NRT_ERR_IO, "cannot read %s: %s", path,
                             bad ? strerror(errno) : "file changed while reading");
    }
    return NRT_OK;
}

static NrtStatus parse_shape(const char *path, const char *name, json_t *shape, CkEntry *e,
                             uint64_t *numel, NrtError *err)
{
    if (!json_is_array(shape))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array",
                             path, name);
    size_t rank = json_array_size(shape);
    if (rank > CK_MAX_RANK)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s': rank %zu (at most %d)", path,
                             name, rank, CK_MAX_RANK);
    e->rank = (int)rank;
    *numel = 1;
    for (size_t i = 0; i < rank; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return nrt_error_set(err, NRT_ERR_FORMAT,
                                 "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                                 name, i);
        uint64_t v = (uint64_t)json_integer_value(d);
        if (v > 0 && *numel > (UINT64_MAX / 8) / v)
            return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s': the shape is too large",
                                 path, name);
        *numel *= v;
        e->shape[i] = (int64_t)v;
    }
    return NRT_OK;
}

static NrtStatus parse_offsets(const char *path, const char *name, json_t *offs, uint64_t nbytes,
                               uint64_t data_size, CkEntry *e, NrtError *err)
{
    json_t *b = json_array_get(offs, 0), *en = json_array_get(offs, 1);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(b)
        || !json_is_integer(en) || json_integer_value(b) < 0 || json_integer_value(en) < 0)
        return nrt_error_set(err, NRT_ERR_FORMAT,
                             "%s: tensor '%s': \"data_offsets\" is not two non-negative integers",
                             path, name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->begin > e->end || e->end > data_size)
        return nrt_error_set(err, NRT_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] out of bounds (%llu data "
                             "bytes; truncated file?)",
                             path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                             (unsigned long long)data_size);
    if (e->end - e->begin != nbytes)
        return nrt_error_set(err, NRT_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets span %llu bytes, the shape needs %llu",
                             path, name, (unsigned long long)(e->end - e->begin),
                             (unsigned long long)nbytes);
    return NRT_OK;
}

static NrtStatus parse_tensor(const char *path, const char *name, json_t *v, uint64_t data_size,
                              CkEntry *e, NrtError *err)
{
    if (!json_is_object(v))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", path,
                             name);
    json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s': no \"dtype\" string", path,
                             name);
    if (strcmp(json_string_value(dt), "F32") != 0)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: tensor '%s': unsupported dtype \"%s\" (F32 only)",
                             path, name, json_string_value(dt));
    uint64_t numel = 0;
    NrtStatus st = parse_shape(path, name, json_object_get(v, "shape"), e, &numel, err);
    if (st != NRT_OK)
        return st;
    st = parse_offsets(path, name, json_object_get(v, "data_offsets"), numel * 4, data_size, e,
                       err);
    if (st != NRT_OK)
        return st;
    e->name = strdup(name);
    return e->name ? NRT_OK : nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
}

static NrtStatus parse_meta(NrtCheckpoint *ck, json_t *m, NrtError *err)
{
    if (!json_is_object(m))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object",
                             ck->path);
    ck->meta = calloc(2 * json_object_size(m) + 1, sizeof *ck->meta);
    if (!ck->meta)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", ck->path);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_is_string(v))
            return nrt_error_set(err, NRT_ERR_FORMAT,
                                 "%s: __metadata__ \"%s\" is not a string", ck->path, k);
        ck->meta[2 * ck->nmeta] = strdup(k);
        ck->meta[2 * ck->nmeta + 1] = strdup(json_string_value(v));
        ck->nmeta++;
        if (!ck->meta[2 * ck->nmeta - 2] || !ck->meta[2 * ck->nmeta - 1])
            return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", ck->path);
    }
    return NRT_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const CkEntry *x = *(const CkEntry *const *)a, *y = *(const CkEntry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Non-empty byte ranges must not share a byte, and together they must
 * cover the data exactly: safetensors allows no holes and no bytes after
 * the last tensor (a file with either was not written by a conforming
 * writer, or was appended to). */
static NrtStatus check_overlaps(NrtCheckpoint *ck, NrtError *err)
{
    const CkEntry **order = malloc((size_t)(ck->nentries + 1) * sizeof *order);
    if (!order)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", ck->path);
    int m = 0;
    for (int i = 0; i < ck->nentries; i++)
        if (ck->entries[i].end > ck->entries[i].begin)
            order[m++] = &ck->entries[i];
    qsort(order, (size_t)m, sizeof *order, cmp_begin);
    NrtStatus st = NRT_OK;
    for (int i = 1; i < m && st == NRT_OK; i++)
        if (order[i]->begin < order[i - 1]->end)
            st = nrt_error_set(err, NRT_ERR_FORMAT,
                               "%s: tensors '%s' and '%s' overlap in the data", ck->path,
                               order[i - 1]->name, order[i]->name);
    uint64_t covered = 0;   /* bytes [0, covered) belong to tensors */
    for (int i = 0; i < m && st == NRT_OK; i++) {
        if (order[i]->begin > covered)
            st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: data bytes [%llu, %llu) belong to no "
                               "tensor (holes are not allowed)", ck->path,
                               (unsigned long long)covered, (unsigned long long)order[i]->begin);
        covered = order[i]->end;
    }
    if (st == NRT_OK && covered < ck->data_size)
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: data bytes [%llu, %llu) belong to no tensor "
                           "(trailing data after the last tensor)", ck->path,
                           (unsigned long long)covered, (unsigned long long)ck->data_size);
    free(order);
    return st;
}

static NrtStatus parse_header(NrtCheckpoint *ck, json_t *root, NrtError *err)
{
    if (!json_is_object(root))
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: the header is not a JSON object", ck->path);
    ck->entries = calloc(json_object_size(root) + 1, sizeof *ck->entries);
    if (!ck->entries)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", ck->path);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        NrtStatus st;
        if (strcmp(k, "__metadata__") == 0) {
            st = ck->meta ? nrt_error_set(err, NRT_ERR_FORMAT, "%s: two __metadata__", ck->path)
                          : parse_meta(ck, v, err);
        } else {
            st = parse_tensor(ck->path, k, v, ck->data_size, &ck->entries[ck->nentries], err);
            if (st == NRT_OK)
                ck->nentries++;
        }
        if (st != NRT_OK)
            return st;
    }
    return check_overlaps(ck, err);
}

/* A file with a "netc_crc32" (nrt_checkpoint_save's) must match it: the
 * field appears once in the raw header, as 8 hex digits equal to the parsed
 * value, and the CRC of the file with them as zeros is their value. */
static NrtStatus check_crc(const NrtCheckpoint *ck, uint64_t hlen, NrtError *err)
{
    const char *want = nrt_checkpoint_meta(ck, CK_CRC_KEY);
    if (!want)
        return NRT_OK;
    const char *h = (const char *)ck->buf + 8;
    size_t fl = sizeof CK_CRC_FIELD - 1;
    uint64_t at = 0;
    int found = 0;
    for (uint64_t i = 0; i + fl + 9 <= hlen; i++)
        if (memcmp(h + i, CK_CRC_FIELD, fl) == 0) {
            at = i + fl;
            found++;
        }
    char *end = NULL;
    bool hex8 = strlen(want) == 8 && strspn(want, "0123456789abcdef") == 8;
    unsigned long stored = found == 1 && hex8 ? strtoul(want, &end, 16) : 0;
    if (found != 1 || !end || *end || memcmp(h + at, want, 8) != 0 || h[at + 8] != '"')
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: malformed \"" CK_CRC_KEY "\" field",
                             ck->path);
    uint32_t crc = crc_bytes((uint32_t)crc32(0, Z_NULL, 0), ck->buf, 8 + at);
    crc = crc_bytes(crc, CK_CRC_ZERO, 8);
    crc = crc_bytes(crc, h + at + 8, hlen - at - 8 + ck->data_size);
    if (crc != (uint32_t)stored)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: checksum mismatch (stored %s, computed "
                             "%08x): the file changed or was damaged after it was written",
                             ck->path, want, (unsigned)crc);
    return NRT_OK;
}

/* Sizes first, then the JSON. */
static NrtStatus ck_validate(NrtCheckpoint *ck, uint64_t size, NrtError *err)
{
    if (size < 8)
        return nrt_error_set(err, NRT_ERR_FORMAT,
                             "%s: %llu bytes, too short for a safetensors file (truncated?)",
                             ck->path, (unsigned long long)size);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = n << 8 | ck->buf[b];
    if (n > CK_MAX_HEADER || n > size - 8)
        return nrt_error_set(err, NRT_ERR_FORMAT,
                             "%s: header length %llu is beyond the file's %llu bytes or 100 MiB "
                             "(truncated or not a safetensors file?)",
                             ck->path, (unsigned long long)n, (unsigned long long)size);
    ck->data = ck->buf + 8 + n;
    ck->data_size = size - 8 - n;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)ck->buf + 8, (size_t)n,
                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: bad JSON header at byte %d: %s", ck->path,
                             jerr.position, jerr.text);
    NrtStatus st = parse_header(ck, root, err);
    json_decref(root);
    return st == NRT_OK ? check_crc(ck, n, err) : st;
}

NrtStatus nrt_checkpoint_open(const char *path, NrtCheckpoint **out, NrtError *err)
{
    *out = NULL;
    NrtCheckpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(path))) {
        free(ck);
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    }
    uint64_t size = 0;
    NrtStatus st = read_file(path, &ck->buf, &size, err);
    if (st == NRT_OK)
        st = ck_validate(ck, size, err);
    if (st != NRT_OK) {
        nrt_checkpoint_close(ck);
        return st;
    }
    *out = ck;
    return NRT_OK;
}

void nrt_checkpoint_close(NrtCheckpoint *ck)
{
    if (!ck)
        return;
    for (int i = 0; i < ck->nentries; i++)
        free(ck->entries[i].name);
    for (int i = 0; i < 2 * ck->nmeta; i++)
        free(ck->meta[i]);
    free(ck->entries);
    free(ck->meta);
    free(ck->buf);
    free(ck->path);
    free(ck);
}

/* ---- queries ------------------------------------------------------------- */

static const CkEntry *ck_find(const NrtCheckpoint *ck, const char *name)
{
    for (int i = 0; i < ck->nentries; i++)
        if (strcmp(ck->entries[i].name, name) == 0)
            return &ck->entries[i];
    return NULL;
}

bool nrt_checkpoint_has(const NrtCheckpoint *ck, const char *name)
{
    return ck_find(ck, name) != NULL;
}

const char *nrt_checkpoint_meta(const NrtCheckpoint *ck, const char *key)
{
    for (int i = 0; i < ck->nmeta; i++)
        if (strcmp(ck->meta[2 * i], key) == 0)
            return ck->meta[2 * i + 1];
    return NULL;
}

int nrt_checkpoint_count(const NrtCheckpoint *ck)
{
    return ck->nentries;
}

const char *nrt_checkpoint_name(const NrtCheckpoint *ck, int i)
{
    return i >= 0 && i < ck->nentries ? ck->entries[i].name : NULL;
}

int nrt_checkpoint_shape(const NrtCheckpoint *ck, const char *name, int64_t shape[8])
{
    const CkEntry *e = ck_find(ck, name);
    if (!e)
        return -1;
    memcpy(shape, e->shape, (size_t)e->rank * sizeof *shape);
    return e->rank;
}

NrtStatus nrt_checkpoint_read(const NrtCheckpoint *ck, const char *name, int rank,
                              const int64_t *shape, float *dst, NrtError *err)
{
    char want[160], have[160];
    shape_text(rank, shape, want, sizeof want);
    const CkEntry *e = ck_find(ck, name);
    if (!e)
        return nrt_error_set(err, NRT_ERR_MISMATCH, "%s: no tensor '%s' (expected shape %s)",
                             ck->path, name, want);
    bool same = e->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = e->shape[i] == shape[i];
    if (!same) {
        shape_text(e->rank, e->shape, have, sizeof have);
        return nrt_error_set(err, NRT_ERR_MISMATCH, "%s: tensor '%s' has shape %s, expected %s",
                             ck->path, name, have, want);
    }
    const unsigned char *p = ck->data + e->begin;
    uint64_t numel = (e->end - e->begin) / 4;
    if (numel > 0 && host_little_endian()) {
        memcpy(dst, p, (size_t)(e->end - e->begin));
        return NRT_OK;
    }
    for (uint64_t i = 0; i < numel; i++) {
        uint32_t v = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8
                     | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&dst[i], &v, 4);
    }
    return NRT_OK;
}

/* ---- a generated model's block ------------------------------------------------ */

enum { RUN_META_MAX = 16, RUN_KEY_MAX = 32, RUN_VALUE_MAX = 128 };
static char run_keys[RUN_META_MAX][RUN_KEY_MAX], run_values[RUN_META_MAX][RUN_VALUE_MAX];
static int run_nmeta;

NrtStatus nrt_block_set_run_meta(const NrtKV *kv, int n, NrtError *err)
{
    if (n < 0 || n > RUN_META_MAX || (n > 0 && !kv))
        return nrt_error_set(err, NRT_ERR_ARG, "run metadata: %d entries (0..%d)", n,
                             RUN_META_MAX);
    for (int i = 0; i < n; i++)
        if (!kv[i].key || !kv[i].value || strlen(kv[i].key) >= RUN_KEY_MAX
            || strlen(kv[i].value) >= RUN_VALUE_MAX)
            return nrt_error_set(err, NRT_ERR_ARG, "run metadata: entry %d is NULL or too long",
                                 i);
    for (int i = 0; i < n; i++) {
        snprintf(run_keys[i], RUN_KEY_MAX, "%s", kv[i].key);
        snprintf(run_values[i], RUN_VALUE_MAX, "%s", kv[i].value);
    }
    run_nmeta = n;
    return NRT_OK;
}

NrtStatus nrt_block_save(const NrtBlockLayout *l, const float *block, uint64_t step, uint64_t seed,
                         const char *path, NrtError *err)
{
    NrtTensorRef *t = malloc((size_t)(l->ntensors > 0 ? l->ntensors : 1) * sizeof *t);
    if (!t)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < l->ntensors; i++) {
        t[i].name = l->tensors[i].name;
        t[i].rank = l->tensors[i].rank;
        memcpy(t[i].shape, l->tensors[i].shape, sizeof t[i].shape);
        t[i].data = block + l->tensors[i].off;
    }
    char step_s[24], seed_s[24];
    snprintf(step_s, sizeof step_s, "%llu", (unsigned long long)step);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    NrtKV meta[5 + RUN_META_MAX] = {
        {"format", "netc"}, {"model", l->model}, {"structure_hash", l->structure_hash},
        {"step", step_s}, {"seed", seed_s},
    };
    for (int i = 0; i < run_nmeta; i++)
        meta[5 + i] = (NrtKV){run_keys[i], run_values[i]};
    NrtStatus st = nrt_checkpoint_save(path, t, l->ntensors, meta, 5 + run_nmeta, err);
    free(t);
    return st;
}

NrtStatus nrt_block_load(const NrtBlockLayout *l, float **block, uint64_t *step, uint64_t *seed,
                         const char *path, NrtError *err)
{
    NrtCheckpoint *ck = NULL;
    NrtStatus st = nrt_checkpoint_open(path, &ck, err);
    if (st != NRT_OK)
        return st;
    const char *model = nrt_checkpoint_meta(ck, "model");
    const char *hash = nrt_checkpoint_meta(ck, "structure_hash");
    const char *step_s = nrt_checkpoint_meta(ck, "step"), *seed_s = nrt_checkpoint_meta(ck, "seed");
    float *copy = NULL;
    size_t bytes = (size_t)l->block_floats * sizeof(float);
    if (!hash || strcmp(hash, l->structure_hash) != 0)
        st = nrt_error_set(err, NRT_ERR_MISMATCH,
                           "%s: a checkpoint of model '%s' with structure %s, not of this %s "
                           "(structure %s)", path, model ? model : "?", hash ? hash : "(none)",
                           l->model, l->structure_hash);
    else if (!(copy = aligned_alloc(64, (bytes + 63) / 64 * 64)))
        st = nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory", path);
    if (copy)
        memcpy(copy, *block, bytes);
    for (int i = 0; i < l->ntensors && st == NRT_OK; i++)
        st = nrt_checkpoint_read(ck, l->tensors[i].name, l->tensors[i].rank, l->tensors[i].shape,
                                 copy + l->tensors[i].off, err);
    if (st == NRT_OK && (!step_s || !seed_s))
        st = nrt_error_set(err, NRT_ERR_FORMAT, "%s: no step or seed in the metadata", path);
    if (st == NRT_OK) {
        free(*block);
        *block = copy;
        *step = strtoull(step_s, NULL, 10);
        *seed = strtoull(seed_s, NULL, 10);
    } else {
        free(copy);
    }
    nrt_checkpoint_close(ck);
    return st;
}
