/* test_checkpoint.c - safetensors checkpoints (runtime/checkpoint.c).
 *
 * Round trip (bitwise values, metadata, listing, deterministic bytes); every
 * kind of broken file built here byte by byte: truncated at every offset,
 * header length beyond the file, bad JSON, wrong types and values for each
 * field, out-of-bounds and overlapping offsets, byte flips at every header
 * position. Each must be refused with NRT_ERR_FORMAT (or NRT_ERR_MISMATCH
 * when the file is well-formed but not what the reader expects) and a
 * message naming the file, and must never crash or yield wrong data.
 * Atomic saves: a failing save leaves no temporary file and the previous
 * checkpoint loadable and identical; a save removes the temporaries of
 * writers killed mid-save (dead pids) and nothing else.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "netrt.h"

/* ---- fixture: a scratch directory and a small valid checkpoint ---------- */

static char g_dir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/netc-test-ckpt.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", g_dir, name);
}

static float g_w[12], g_b[3], g_s[1];

/* w (3,4) with special values, b (3), a scalar and an empty (0,5) tensor. */
static int sample_tensors(NrtTensorRef t[4])
{
    uint32_t nan_payload = 0x7fc12345u, denorm = 0x00000001u;
    for (int i = 0; i < 12; i++)
        g_w[i] = (float)i * 0.25f - 1.0f;
    memcpy(&g_w[3], &nan_payload, 4);
    memcpy(&g_w[4], &denorm, 4);
    g_w[5] = -0.0f;
    g_w[6] = INFINITY;
    g_b[0] = 1e30f;
    g_b[1] = -1e-30f;
    g_b[2] = 3.0f;
    g_s[0] = 42.5f;
    t[0] = (NrtTensorRef){"fc.weight", 2, {3, 4}, g_w};
    t[1] = (NrtTensorRef){"fc.bias", 1, {3}, g_b};
    t[2] = (NrtTensorRef){"step_scale", 0, {0}, g_s};
    t[3] = (NrtTensorRef){"empty", 2, {0, 5}, NULL};
    return 4;
}

static const NrtKV g_meta[2] = {{"model", "mlp"}, {"step", "1234"}};

static void save_sample(const char *path)
{
    NrtTensorRef t[4];
    int n = sample_tensors(t);
    NrtError err = {0};
    assert_int_equal(nrt_checkpoint_save(path, t, n, g_meta, 2, &err), NRT_OK);
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *size = (size_t)len;
    return buf;
}

/* The header length of a safetensors file: its first 8 bytes, little-endian. */
static uint64_t header_len(const unsigned char *buf)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    return hlen;
}

static void spill(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

/* A file with header length hlen (as stored), header text and data bytes. */
static void craft_len(const char *path, uint64_t hlen, const char *header, size_t data_bytes)
{
    size_t jl = strlen(header), size = 8 + jl + data_bytes;
    unsigned char *buf = calloc(1, size);
    assert_non_null(buf);
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)(hlen >> (8 * b));
    memcpy(buf + 8, header, jl);
    for (size_t i = 0; i < data_bytes; i++)
        buf[8 + jl + i] = (unsigned char)(i * 7);
    spill(path, buf, size);
    free(buf);
}

static void craft(const char *path, const char *header, size_t data_bytes)
{
    craft_len(path, strlen(header), header, data_bytes);
}

/* Opening path must fail with code, a message naming the file and, when
 * not NULL, containing `what`. */
static void expect_open_fails(const char *path, NrtStatus code, const char *what)
{
    NrtCheckpoint *ck = (NrtCheckpoint *)&ck;
    NrtError err = {0};
    NrtStatus st = nrt_checkpoint_open(path, &ck, &err);
    if (st != code || !strstr(err.msg, path) || (what && !strstr(err.msg, what)))
        fail_msg("open %s: status %d (want %d), message '%s' (want '%s')", path, (int)st,
                 (int)code, err.msg, what ? what : "");
    assert_null(ck);
}

static NrtCheckpoint *open_ok(const char *path)
{
    NrtCheckpoint *ck = NULL;
    NrtError err = {0};
    NrtStatus st = nrt_checkpoint_open(path, &ck, &err);
    if (st != NRT_OK)
        fail_msg("open %s: %s", path, err.msg);
    return ck;
}

/* ---- round trip ---------------------------------------------------------- */

static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "rt.safetensors");
    save_sample(p);
    NrtCheckpoint *ck = open_ok(p);
    NrtError err = {0};
    float w[12], b[3], s[1] = {0};
    assert_int_equal(nrt_checkpoint_read(ck, "fc.weight", 2, (int64_t[]){3, 4}, w, &err), NRT_OK);
    assert_int_equal(nrt_checkpoint_read(ck, "fc.bias", 1, (int64_t[]){3}, b, &err), NRT_OK);
    assert_int_equal(nrt_checkpoint_read(ck, "step_scale", 0, NULL, s, &err), NRT_OK);
    assert_int_equal(nrt_checkpoint_read(ck, "empty", 2, (int64_t[]){0, 5}, NULL, &err), NRT_OK);
    assert_memory_equal(w, g_w, sizeof w);
    assert_memory_equal(b, g_b, sizeof b);
    assert_memory_equal(s, g_s, sizeof s);
    assert_string_equal(nrt_checkpoint_meta(ck, "model"), "mlp");
    assert_string_equal(nrt_checkpoint_meta(ck, "step"), "1234");
    assert_null(nrt_checkpoint_meta(ck, "seed"));
    assert_true(nrt_checkpoint_has(ck, "fc.bias"));
    assert_false(nrt_checkpoint_has(ck, "fc.bia"));
    assert_int_equal(nrt_checkpoint_count(ck), 4);
    assert_string_equal(nrt_checkpoint_name(ck, 0), "fc.weight");
    assert_string_equal(nrt_checkpoint_name(ck, 3), "empty");
    assert_null(nrt_checkpoint_name(ck, 4));
    int64_t shape[8];
    assert_int_equal(nrt_checkpoint_shape(ck, "fc.weight", shape), 2);
    assert_int_equal(shape[0], 3);
    assert_int_equal(shape[1], 4);
    assert_int_equal(nrt_checkpoint_shape(ck, "nope", shape), -1);
    nrt_checkpoint_close(ck);
    nrt_checkpoint_close(NULL);
}

/* The layout on disk: length, space-padded JSON, data in the given order. */
static void test_checkpoint_layout(void **state)
{
    (void)state;
    char p[128], q[128];
    path_in(p, sizeof p, "layout1.safetensors");
    path_in(q, sizeof q, "layout2.safetensors");
    save_sample(p);
    save_sample(q);
    size_t n1, n2;
    unsigned char *a = slurp(p, &n1), *b = slurp(q, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);   /* deterministic bytes */
    uint64_t hlen = header_len(a);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n1, 8 + hlen + 4 * (12 + 3 + 1));
    assert_int_equal(a[8], '{');
    assert_memory_equal(a + 8 + hlen, g_w, sizeof g_w);
    assert_memory_equal(a + 8 + hlen + sizeof g_w, g_b, sizeof g_b);
    char *h = calloc(1, (size_t)hlen + 1);
    memcpy(h, a + 8, (size_t)hlen);
    assert_non_null(strstr(h, "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}"));
    const char *m = strstr(h, "\"__metadata__\":{\"model\":\"mlp\",\"step\":\"1234\",\"netc_crc32\":\"");
    assert_non_null(m);
    m += strlen("\"__metadata__\":{\"model\":\"mlp\",\"step\":\"1234\",\"netc_crc32\":\"");
    assert_int_equal(strspn(m, "0123456789abcdef"), 8);
    assert_memory_equal(m + 8, "\"}", 2);
    free(h);
    free(a);
    free(b);
}

/* ---- hostile files ------------------------------------------------------- */

static void test_checkpoint_truncated_everywhere(void **state)
{
    (void)state;
    char p[128], q[128];
    path_in(p, sizeof p, "full.safetensors");
    path_in(q, sizeof q, "cut.safetensors");
    save_sample(p);
    size_t size;
    unsigned char *buf = slurp(p, &size);
    for (size_t cut = 0; cut < size; cut++) {
        spill(q, buf, cut);
        expect_open_fails(q, NRT_ERR_FORMAT, NULL);
    }
    free(buf);
}

static void test_checkpoint_header_length(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "hlen.safetensors");
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    craft_len(p, UINT64_MAX, h, 4);
    expect_open_fails(p, NRT_ERR_FORMAT, "header length");
    craft_len(p, strlen(h) + 5, h, 4);   /* one byte beyond the file */
    expect_open_fails(p, NRT_ERR_FORMAT, "header length");
    craft_len(p, (uint64_t)200 << 20, h, 4);
    expect_open_fails(p, NRT_ERR_FORMAT, "header length");
    craft_len(p, strlen(h) - 1, h, 4);   /* JSON cut short */
    expect_open_fails(p, NRT_ERR_FORMAT, "JSON");
    craft_len(p, 0, h, 0);
    expect_open_fails(p, NRT_ERR_FORMAT, "JSON");
    craft_len(p, strlen(h), h, 4);
    nrt_checkpoint_close(open_ok(p));   /* the control is fine */
}

static void test_checkpoint_bad_json(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "json.safetensors");
    static const char *const bad[] = {
        "{", "{\"a\":", "not json", "{\"a\":{\"dtype\":\"F32\",}}", "{} {}",
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),   /* duplicate */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        craft(p, bad[i], 8);
        expect_open_fails(p, NRT_ERR_FORMAT, "JSON");
    }
    static const char *const not_object[] = {"[]", "\"x\"", "42", "null", "[{\"a\":1}]"};
    for (size_t i = 0; i < sizeof not_object / sizeof *not_object; i++) {
        craft(p, not_object[i], 0);
        expect_open_fails(p, NRT_ERR_FORMAT, "not a JSON object");
    }
}

typedef struct BadCase {
    const char *header;
    size_t data;
    const char *what;   /* expected in the message */
} BadCase;

static void run_bad_cases(const BadCase *c, size_t n)
{
    char p[128];
    path_in(p, sizeof p, "bad.safetensors");
    for (size_t i = 0; i < n; i++) {
        craft(p, c[i].header, c[i].data);
        expect_open_fails(p, NRT_ERR_FORMAT, c[i].what);
    }
}

#define T(fields) "{\"t\":{" fields "}}"

static void test_checkpoint_bad_dtype(void **state)
{
    (void)state;
    static const BadCase c[] = {
        {T("\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]"), 4, "unsupported dtype"},
        {T("\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]"), 8, "unsupported dtype"},
        {T("\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]"), 4, "unsupported dtype"},
        {T("\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]"), 4, "'t': no \"dtype\""},
        {T("\"shape\":[1],\"data_offsets\":[0,4]"), 4, "'t': no \"dtype\""},
        {"{\"t\":[1,2]}", 4, "'t' is not a JSON object"},
        {"{\"t\":\"F32\"}", 4, "'t' is not a JSON object"},
    };
    run_bad_cases(c, sizeof c / sizeof *c);
}

static void test_checkpoint_bad_shape(void **state)
{
    (void)state;
    static const BadCase c[] = {
        {T("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), 4, "'t': shape[0]"},
        {T("\"dtype\":\"F32\",\"shape\":[2,1.0],\"data_offsets\":[0,8]"), 8, "'t': shape[1]"},
        {T("\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]"), 8, "'t': shape[0]"},
        {T("\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,0]"), 8, "'t': shape[0]"},
        {T("\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]"), 8, "'t': shape[0]"},
        {T("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8, "'t': \"shape\""},
        {T("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), 4, "'t': \"shape\""},
        {T("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]"), 4, "rank 9"},
        /* numel * 4 overflows 64 bits */
        {T("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]"), 8,
         "too large"},
        {T("\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,4]"), 8,
         "too large"},
        {T("\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]"), 8,
         "JSON"},
    };
    run_bad_cases(c, sizeof c / sizeof *c);
}

static void test_checkpoint_bad_offsets(void **state)
{
    (void)state;
    static const BadCase c[] = {
        {T("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 4, "out of bounds"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]"), 8, "out of bounds"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]"), 8, "out of bounds"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]"), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]"), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]"), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]"), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\""), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1]"), 8, "data_offsets"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]"), 8,
         "out of bounds"},
        /* byte count and shape disagree */
        {T("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), 16, "the shape needs 12"},
        {T("\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]"), 16, "the shape needs 16"},
        {T("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,4]"), 16, "the shape needs 0"},
        /* overlaps */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "overlap"},
        /* holes and trailing bytes: every data byte belongs to a tensor */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
         "data bytes [4, 8) belong to no tensor (holes"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), 8,
         "data bytes [0, 4) belong to no tensor (holes"},
        {T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), 9,
         "data bytes [4, 9) belong to no tensor (trailing"},
        {"{\"__metadata__\":{\"k\":\"v\"}}", 4, "data bytes [0, 4) belong to no tensor"},
    };
    run_bad_cases(c, sizeof c / sizeof *c);
    /* Adjacent ranges and empty tensors anywhere are fine. */
    char p[128];
    path_in(p, sizeof p, "adjacent.safetensors");
    craft(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[6,6]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    nrt_checkpoint_close(open_ok(p));
}

static void test_checkpoint_bad_metadata(void **state)
{
    (void)state;
    static const BadCase c[] = {
        {"{\"__metadata__\":{\"step\":12}}", 0, "__metadata__ \"step\" is not a string"},
        {"{\"__metadata__\":{\"a\":\"x\",\"b\":null}}", 0, "\"b\" is not a string"},
        {"{\"__metadata__\":[\"a\"]}", 0, "\"__metadata__\" is not a JSON object"},
        {"{\"__metadata__\":\"a\"}", 0, "\"__metadata__\" is not a JSON object"},
    };
    run_bad_cases(c, sizeof c / sizeof *c);
}

static void test_checkpoint_not_readable(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "does-not-exist.safetensors");
    expect_open_fails(p, NRT_ERR_IO, "cannot open");
    expect_open_fails(g_dir, NRT_ERR_IO, NULL);   /* a directory */
}

/* ---- the reader's expectations ------------------------------------------ */

static void test_checkpoint_mismatch(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "mm.safetensors");
    save_sample(p);
    NrtCheckpoint *ck = open_ok(p);
    float dst[16];
    NrtError err = {0};
    assert_int_equal(nrt_checkpoint_read(ck, "fc2.weight", 2, (int64_t[]){3, 4}, dst, &err),
                     NRT_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "no tensor 'fc2.weight'"));
    assert_non_null(strstr(err.msg, "(3,4)"));
    assert_non_null(strstr(err.msg, p));
    assert_int_equal(nrt_checkpoint_read(ck, "fc.weight", 2, (int64_t[]){4, 3}, dst, &err),
                     NRT_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "'fc.weight' has shape (3,4), expected (4,3)"));
    assert_int_equal(nrt_checkpoint_read(ck, "fc.weight", 1, (int64_t[]){12}, dst, &err),
                     NRT_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "has shape (3,4), expected (12)"));
    assert_int_equal(nrt_checkpoint_read(ck, "step_scale", 1, (int64_t[]){1}, dst, &err),
                     NRT_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "has shape (), expected (1)"));
    nrt_checkpoint_close(ck);
}

/* Reads every sample tensor; true when all match the originals bitwise,
 * false when one is refused with MISMATCH. Wrong data fails the test. */
static bool read_all_or_mismatch(const NrtCheckpoint *ck, const char *what)
{
    NrtTensorRef t[4];
    int n = sample_tensors(t);
    for (int i = 0; i < n; i++) {
        float dst[12];
        NrtError err = {0};
        NrtStatus st = nrt_checkpoint_read(ck, t[i].name, t[i].rank, t[i].shape, dst, &err);
        if (st == NRT_ERR_MISMATCH && err.msg[0])
            return false;
        if (st != NRT_OK)
            fail_msg("%s: read %s: status %d", what, t[i].name, (int)st);
        int64_t numel = 1;
        for (int d = 0; d < t[i].rank; d++)
            numel *= t[i].shape[d];
        if (numel > 0 && memcmp(dst, t[i].data, (size_t)numel * 4) != 0)
            fail_msg("%s: tensor %s read back wrong data", what, t[i].name);
    }
    return true;
}

/* Every byte of the length field and the header, changed three ways: the
 * file is refused (the checksum catches what the parser cannot: a metadata
 * value, a padding byte), except for a change of the checksum key's own
 * name, which leaves a file without a checksum whose data is intact. */
static void test_checkpoint_byte_flips(void **state)
{
    (void)state;
    char p[128], q[128];
    path_in(p, sizeof p, "orig.safetensors");
    path_in(q, sizeof q, "flip.safetensors");
    save_sample(p);
    size_t size;
    unsigned char *buf = slurp(p, &size);
    uint64_t hlen = header_len(buf);
    static const unsigned char deltas[3] = {0xFF, 0x01, 0x80};
    int refused = 0, mismatched = 0, fine = 0;
    char *h = calloc(1, (size_t)hlen + 1);
    memcpy(h, buf + 8, (size_t)hlen);
    const char *key = strstr(h, "\"netc_crc32\"");
    assert_non_null(key);
    size_t key0 = 8 + (size_t)(key - h) + 1, key1 = key0 + strlen("netc_crc32");
    free(h);
    for (size_t pos = 0; pos < 8 + hlen; pos++)
        for (int k = 0; k < 3; k++) {
            unsigned char old = buf[pos];
            buf[pos] = (unsigned char)(k == 1 ? old + 1 : old ^ deltas[k]);
            spill(q, buf, size);
            buf[pos] = old;
            NrtCheckpoint *ck = NULL;
            NrtError err = {0};
            NrtStatus st = nrt_checkpoint_open(q, &ck, &err);
            if (st != NRT_OK) {
                if (st != NRT_ERR_FORMAT || !strstr(err.msg, q))
                    fail_msg("flip at %zu: status %d, '%s'", pos, (int)st, err.msg);
                refused++;
                continue;
            }
            char what[64];
            snprintf(what, sizeof what, "flip at %zu", pos);
            if (pos < key0 || pos >= key1)
                fail_msg("flip at %zu (outside the checksum's key) was accepted", pos);
            if (read_all_or_mismatch(ck, what))
                fine++;
            else
                mismatched++;
            nrt_checkpoint_close(ck);
        }
    free(buf);
    assert_int_equal(mismatched, 0);
    assert_true(refused >= 3 * (int)(8 + hlen) - 3 * (int)(key1 - key0));
}

/* A flipped bit anywhere in the data: refused by the checksum, by name. */
/* The checksum field itself malformed: not 8 lowercase hex digits, or
 * written with an escape (its raw bytes must be the digits). */
static void test_checkpoint_bad_crc_field(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "crcfield.safetensors");
    static const char *const heads[] = {
        "{\"__metadata__\":{\"netc_crc32\":\"zzzzzzzz\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"__metadata__\":{\"netc_crc32\":\"0000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"__metadata__\":{\"netc_crc32\":\"-0000001\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"__metadata__\":{\"netc_crc32\":\"\\u00300000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        craft(p, heads[i], 4);
        expect_open_fails(p, NRT_ERR_FORMAT, "malformed \"netc_crc32\"");
    }
    /* well-formed but wrong: a mismatch */
    craft(p, "{\"__metadata__\":{\"netc_crc32\":\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(p, NRT_ERR_FORMAT, "checksum mismatch (stored 00000000");
}

static void test_checkpoint_data_flips(void **state)
{
    (void)state;
    char p[128], q[128];
    path_in(p, sizeof p, "data.safetensors");
    path_in(q, sizeof q, "dflip.safetensors");
    save_sample(p);
    size_t size;
    unsigned char *buf = slurp(p, &size);
    uint64_t hlen = header_len(buf);
    for (size_t pos = 8 + hlen; pos < size; pos++)
        for (int bit = 0; bit < 8; bit += 7) {
            buf[pos] ^= (unsigned char)(1u << bit);
            spill(q, buf, size);
            buf[pos] ^= (unsigned char)(1u << bit);
            expect_open_fails(q, NRT_ERR_FORMAT, "checksum mismatch");
        }
    free(buf);
}

/* ---- saving -------------------------------------------------------------- */

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_checkpoint_save_missing_dir(void **state)
{
    (void)state;
    char p[160];
    path_in(p, sizeof p, "no/such/dir/x.safetensors");
    NrtTensorRef t[4];
    int n = sample_tensors(t);
    NrtError err = {0};
    assert_int_equal(nrt_checkpoint_save(p, t, n, NULL, 0, &err), NRT_ERR_IO);
    assert_non_null(strstr(err.msg, "no/such/dir/x.safetensors"));
    assert_false(exists(p));
}

/* The temporary path is a directory, so the save fails before the rename:
 * the old checkpoint stays, byte for byte, and nothing else is left. */
static void test_checkpoint_save_failure_keeps_old(void **state)
{
    (void)state;
    char p[128], tmp[192];
    path_in(p, sizeof p, "keep.safetensors");
    save_sample(p);
    size_t n0;
    unsigned char *before = slurp(p, &n0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    assert_int_equal(mkdir(tmp, 0700), 0);
    float other[3] = {7, 8, 9};
    NrtTensorRef t = {"fc.bias", 1, {3}, other};
    NrtError err = {0};
    assert_int_equal(nrt_checkpoint_save(p, &t, 1, NULL, 0, &err), NRT_ERR_IO);
    assert_non_null(strstr(err.msg, tmp));
    size_t n1;
    unsigned char *after = slurp(p, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    NrtCheckpoint *ck = open_ok(p);
    assert_true(read_all_or_mismatch(ck, "old file"));
    nrt_checkpoint_close(ck);
    assert_int_equal(rmdir(tmp), 0);
    /* With the obstacle gone the same save works and replaces the file. */
    assert_int_equal(nrt_checkpoint_save(p, &t, 1, NULL, 0, &err), NRT_OK);
    assert_false(exists(tmp));
    ck = open_ok(p);
    float got[3];
    assert_int_equal(nrt_checkpoint_read(ck, "fc.bias", 1, (int64_t[]){3}, got, &err), NRT_OK);
    assert_memory_equal(got, other, sizeof got);
    assert_false(nrt_checkpoint_has(ck, "fc.weight"));
    assert_null(nrt_checkpoint_meta(ck, "model"));
    nrt_checkpoint_close(ck);
    free(before);
    free(after);
}

/* A pid no process has: a child's, after it exited and was reaped (pids
 * are reused only after the whole range wraps). */
static long dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("partial", f);
    assert_int_equal(fclose(f), 0);
}

/* Leftovers of killed writers go at the next save; a live writer's
 * temporary, names that only look alike and other checkpoints' stay. */
static void test_checkpoint_save_removes_stale_temps(void **state)
{
    (void)state;
    enum { STALE = 2, KEEP = 7 };
    char p[128], stale[STALE][192], keep[KEEP][192];
    path_in(p, sizeof p, "run.st");
    long dead = dead_pid();
    snprintf(stale[0], sizeof stale[0], "%s.tmp.%ld", p, dead);
    snprintf(stale[1], sizeof stale[1], "%s.tmp.%ld", p, dead_pid());
    snprintf(keep[0], sizeof keep[0], "%s.tmp.%ld", p, (long)getppid());   /* alive */
    snprintf(keep[1], sizeof keep[1], "%s.tmp.%ldx", p, dead);
    snprintf(keep[2], sizeof keep[2], "%s.tmp.0%ld", p, dead);
    snprintf(keep[3], sizeof keep[3], "%s.tmp.0", p);
    snprintf(keep[4], sizeof keep[4], "%s/other.st.tmp.%ld", g_dir, dead);
    snprintf(keep[5], sizeof keep[5], "%s/xrun.st.tmp.%ld", g_dir, dead);
    snprintf(keep[6], sizeof keep[6], "%s.tmp.99999999999", p);
    for (int i = 0; i < STALE; i++)
        touch(stale[i]);
    for (int i = 0; i < KEEP; i++)
        touch(keep[i]);
    save_sample(p);
    for (int i = 0; i < STALE; i++)
        if (exists(stale[i]))
            fail_msg("%s (a dead writer's) was not removed", stale[i]);
    for (int i = 0; i < KEEP; i++) {
        if (!exists(keep[i]))
            fail_msg("%s was removed", keep[i]);
        assert_int_equal(unlink(keep[i]), 0);
    }
    NrtCheckpoint *ck = open_ok(p);
    nrt_checkpoint_close(ck);
}

static void test_checkpoint_save_bad_args(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "args.safetensors");
    float x[2] = {1, 2};
    NrtError err = {0};
    NrtTensorRef dup[2] = {{"a", 1, {2}, x}, {"a", 1, {2}, x}};
    assert_int_equal(nrt_checkpoint_save(p, dup, 2, NULL, 0, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "'a' appears twice"));
    NrtTensorRef bad[] = {
        {"r", 5, {1, 1, 1, 1}, x}, {"n", 1, {-2}, x}, {"", 1, {2}, x},
        {"__metadata__", 1, {2}, x}, {NULL, 1, {2}, x}, {"d", 1, {2}, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        assert_int_equal(nrt_checkpoint_save(p, &bad[i], 1, NULL, 0, &err), NRT_ERR_ARG);
        assert_true(err.msg[0] != 0);
    }
    NrtKV badmeta = {"k", "\xff\xfe"};   /* not UTF-8 */
    assert_int_equal(nrt_checkpoint_save(p, dup, 1, &badmeta, 1, &err), NRT_ERR_ARG);
    NrtKV reserved = {"netc_crc32", "00000000"};   /* the checksum's own field */
    assert_int_equal(nrt_checkpoint_save(p, dup, 1, &reserved, 1, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "reserved"));
    assert_false(exists(p));
    /* No tensors at all is a valid file. */
    assert_int_equal(nrt_checkpoint_save(p, NULL, 0, NULL, 0, &err), NRT_OK);
    NrtCheckpoint *ck = open_ok(p);
    assert_int_equal(nrt_checkpoint_count(ck), 0);
    nrt_checkpoint_close(ck);
}

/* nrt_block_save/nrt_block_load: a wrong-model file is refused and leaves
 * the block alone; the run metadata set by the driver is saved with it. */
static void test_block_wrong_model_and_run_meta(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "block.safetensors");
    static const NrtBlockTensor ta[] = {{"w", 1, {4, 0, 0, 0}, 0}};
    const NrtBlockLayout la = {"alpha", "00000000000000aa", ta, 1, 4};
    const NrtBlockLayout lb = {"beta", "00000000000000bb", ta, 1, 4};
    float *block = aligned_alloc(64, 64);
    for (int i = 0; i < 4; i++)
        block[i] = (float)i;
    NrtError err = {0};
    const NrtKV kv[] = {{"epoch", "3"}, {"epoch_step", "17"}};
    assert_int_equal(nrt_block_set_run_meta(kv, 2, &err), NRT_OK);
    assert_int_equal(nrt_block_save(&la, block, 5, 9, p, &err), NRT_OK);
    assert_int_equal(nrt_block_set_run_meta(NULL, 0, &err), NRT_OK);
    char longv[200];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    const NrtKV bad[] = {{"k", longv}};
    assert_int_equal(nrt_block_set_run_meta(bad, 1, &err), NRT_ERR_ARG);
    NrtCheckpoint *ck = open_ok(p);
    assert_string_equal(nrt_checkpoint_meta(ck, "epoch"), "3");
    assert_string_equal(nrt_checkpoint_meta(ck, "epoch_step"), "17");
    assert_string_equal(nrt_checkpoint_meta(ck, "step"), "5");
    nrt_checkpoint_close(ck);
    float *before = block;
    uint64_t step = 0, seed = 0;
    assert_int_equal(nrt_block_load(&lb, &block, &step, &seed, p, &err), NRT_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "a checkpoint of model 'alpha' with structure "
                                    "00000000000000aa, not of this beta (structure "
                                    "00000000000000bb)"));
    assert_ptr_equal(block, before);
    assert_true(step == 0 && seed == 0);
    assert_int_equal(nrt_block_load(&la, &block, &step, &seed, p, &err), NRT_OK);
    assert_true(step == 5 && seed == 9 && block[3] == 3.0f);
    free(block);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_layout),
        cmocka_unit_test(test_checkpoint_truncated_everywhere),
        cmocka_unit_test(test_checkpoint_header_length),
        cmocka_unit_test(test_checkpoint_bad_json),
        cmocka_unit_test(test_checkpoint_bad_dtype),
        cmocka_unit_test(test_checkpoint_bad_shape),
        cmocka_unit_test(test_checkpoint_bad_offsets),
        cmocka_unit_test(test_checkpoint_bad_metadata),
        cmocka_unit_test(test_checkpoint_not_readable),
        cmocka_unit_test(test_checkpoint_mismatch),
        cmocka_unit_test(test_checkpoint_byte_flips),
        cmocka_unit_test(test_checkpoint_data_flips),
        cmocka_unit_test(test_checkpoint_bad_crc_field),
        cmocka_unit_test(test_checkpoint_save_missing_dir),
        cmocka_unit_test(test_checkpoint_save_failure_keeps_old),
        cmocka_unit_test(test_checkpoint_save_removes_stale_temps),
        cmocka_unit_test(test_checkpoint_save_bad_args),
        cmocka_unit_test(test_block_wrong_model_and_run_meta),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
