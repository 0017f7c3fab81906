/* test_data.c - IDX files and data sets (runtime/data.c).
 *
 * Small IDX files, plain and gzip'ed, are written into a fresh temporary
 * folder; each defect gets its own file and must be refused with its own
 * status and message. The last group loads the real Fashion-MNIST files
 * (dataset-fashion-mnist); without them the binary exits 77 (skip) once the
 * synthetic tests have passed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "netrt.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DATA_TEST_ASAN 1   /* clang's spelling of __SANITIZE_ADDRESS__ */
#endif
#endif

static char g_dir[256];

static const char *tmp_path(const char *name)
{
    static char buf[64][512];   /* paths stay valid for a whole test */
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static const char *write_raw(const char *name, const void *p, size_t n)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_gz(const char *name, const void *p, size_t n)
{
    const char *path = tmp_path(name);
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, p, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
    return path;
}

/* An IDX file image: header (type, dims) + payload, into buf; returns its size. */
static size_t idx_bytes(unsigned char *buf, int type, int rank, const uint32_t *dims,
                        const void *payload, size_t payload_size)
{
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = (unsigned char)type;
    buf[n++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24);
        buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8);
        buf[n++] = (unsigned char)dims[i];
    }
    memcpy(buf + n, payload, payload_size);
    return n + payload_size;
}

/* 3 images of 2 x 2 and their labels. */
static const unsigned char PIX[12] = {0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25};
static const unsigned char LAB[3] = {4, 0, 7};

static const char *images_file(const char *name, bool gz)
{
    unsigned char buf[64];
    uint32_t dims[3] = {3, 2, 2};
    size_t n = idx_bytes(buf, 0x08, 3, dims, PIX, sizeof PIX);
    return gz ? write_gz(name, buf, n) : write_raw(name, buf, n);
}

static const char *labels_file(const char *name, bool gz, uint32_t count)
{
    unsigned char buf[64];
    size_t n = idx_bytes(buf, 0x08, 1, &count, LAB, count);
    return gz ? write_gz(name, buf, n) : write_raw(name, buf, n);
}

static void expect_idx_error(const char *path, NrtStatus code, const char *fragment)
{
    NrtIdx x;
    NrtError err = {0};
    NrtStatus st = nrt_idx_load(path, &x, &err);
    if (st != code || !strstr(err.msg, fragment) || !strstr(err.msg, path))
        fail_msg("%s: got %d '%s', expected %d with '%s'", path, st, err.msg, code, fragment);
    assert_null(x.data);
}

static void test_data_load_plain_and_gzip(void **state)
{
    (void)state;
    /* gzip under a plain name and plain under a .gz name are both read */
    const char *paths[4] = {images_file("a-images", false), labels_file("a-labels", true, 3),
                            images_file("b-images.gz", true), labels_file("b-labels.gz", false, 3)};
    NrtDataset ds;
    NrtError err = {0};
    assert_int_equal(nrt_dataset_load_idx(paths[0], paths[1], paths[2], paths[3], &ds, &err), NRT_OK);
    assert_int_equal(ds.train.count, 3);
    assert_int_equal(ds.test.count, 3);
    assert_int_equal(ds.train.item_size, 4);
    assert_true(ds.c == 1 && ds.h == 2 && ds.w == 2);
    assert_int_equal(ds.classes, 8);
    assert_memory_equal(ds.test.images, PIX, sizeof PIX);
    int64_t idx[2] = {2, 0};
    float x[8];
    int32_t y[2];
    assert_int_equal(nrt_dataset_gather(&ds.train, idx, 2, x, y, &err), NRT_OK);
    assert_true(x[0] == 200.0f / 255.0f && x[3] == 25.0f / 255.0f);
    assert_true(x[4] == 0.0f && x[5] == 1.0f && x[6] == 51.0f / 255.0f);
    assert_int_equal(y[0], 7);
    assert_int_equal(y[1], 4);
    idx[1] = 3;
    assert_int_equal(nrt_dataset_gather(&ds.train, idx, 2, x, NULL, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "sample index 3"));
    nrt_dataset_free(&ds);
    assert_null(ds.train.images);
}

/* Multi-byte types come out in host order. */
static void test_data_idx_types(void **state)
{
    (void)state;
    unsigned char buf[128];
    const unsigned char i32[8] = {0xff, 0xff, 0xff, 0xfe, 0x00, 0x01, 0x02, 0x03};
    const unsigned char f32[8] = {0x3f, 0xc0, 0x00, 0x00, 0xc0, 0x20, 0x00, 0x00};
    const unsigned char i16[4] = {0x80, 0x00, 0x12, 0x34};
    const unsigned char f64[8] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
    uint32_t two = 2, one = 1, dims[2] = {1, 2};
    NrtIdx x;
    NrtError err = {0};
    size_t n = idx_bytes(buf, 0x0C, 2, dims, i32, 8);
    assert_int_equal(nrt_idx_load(write_gz("i32.gz", buf, n), &x, &err), NRT_OK);
    assert_true(x.rank == 2 && x.count == 1 && x.item_size == 2 && x.elem_bytes == 4);
    assert_int_equal(((int32_t *)x.data)[0], -2);
    assert_int_equal(((int32_t *)x.data)[1], 0x010203);
    nrt_idx_free(&x);
    n = idx_bytes(buf, 0x0D, 1, &two, f32, 8);
    assert_int_equal(nrt_idx_load(write_raw("f32", buf, n), &x, &err), NRT_OK);
    assert_true(((float *)x.data)[0] == 1.5f && ((float *)x.data)[1] == -2.5f);
    nrt_idx_free(&x);
    n = idx_bytes(buf, 0x0B, 1, &two, i16, 4);
    assert_int_equal(nrt_idx_load(write_raw("i16", buf, n), &x, &err), NRT_OK);
    assert_true(((int16_t *)x.data)[0] == -32768 && ((int16_t *)x.data)[1] == 0x1234);
    nrt_idx_free(&x);
    n = idx_bytes(buf, 0x0E, 1, &one, f64, 8);
    assert_int_equal(nrt_idx_load(write_raw("f64", buf, n), &x, &err), NRT_OK);
    assert_true(((double *)x.data)[0] == 3.141592653589793);
    nrt_idx_free(&x);
}

static void test_data_bad_header(void **state)
{
    (void)state;
    unsigned char buf[64];
    uint32_t dims[3] = {3, 2, 2};
    size_t n = idx_bytes(buf, 0x08, 3, dims, PIX, sizeof PIX);
    expect_idx_error(write_raw("empty", buf, 0), NRT_ERR_FORMAT, "empty file");
    expect_idx_error(write_raw("short-magic", buf, 2), NRT_ERR_FORMAT,
                     "truncated header: 2 of the 4 magic bytes");
    expect_idx_error(write_raw("short-dims", buf, 9), NRT_ERR_FORMAT,
                     "truncated header: 3 dimensions need 12 bytes, file has 5");
    buf[0] = 0x01;
    expect_idx_error(write_raw("magic", buf, n), NRT_ERR_FORMAT, "bad magic 01 00 08 03");
    buf[0] = 0;
    buf[2] = 0x07;
    expect_idx_error(write_gz("type.gz", buf, n), NRT_ERR_FORMAT, "unknown IDX type code 0x07");
    buf[2] = 0x08;
    buf[3] = 0;
    expect_idx_error(write_raw("rank0", buf, n), NRT_ERR_FORMAT, "IDX rank 0 is not supported");
    buf[3] = 9;
    expect_idx_error(write_raw("rank9", buf, n), NRT_ERR_FORMAT, "IDX rank 9 is not supported");
}

static void test_data_bad_sizes(void **state)
{
    (void)state;
    unsigned char buf[64];
    uint32_t dims[3] = {3, 2, 2};
    size_t n = idx_bytes(buf, 0x08, 3, dims, PIX, sizeof PIX);
    expect_idx_error(write_raw("trunc", buf, n - 5), NRT_ERR_FORMAT,
                     "truncated: header promises 12 bytes of data (3 x 2 x 2 x 1 B), file has 7");
    expect_idx_error(write_gz("trunc.gz", buf, n - 12), NRT_ERR_FORMAT,
                     "header promises 12 bytes of data (3 x 2 x 2 x 1 B), file has 0");
    unsigned char more[80];
    memcpy(more, buf, n);
    memcpy(more + n, "xyz", 3);
    expect_idx_error(write_raw("trailing", more, n + 3), NRT_ERR_FORMAT,
                     "trailing data: 3 bytes after the 12 the header describes");
    uint32_t huge_count[3] = {0x80000001u, 1, 1};
    n = idx_bytes(buf, 0x08, 3, huge_count, PIX, 4);
    expect_idx_error(write_raw("huge-count", buf, n), NRT_ERR_FORMAT,
                     "absurd IDX dimensions 2147483649 x 1 x 1: more than 2^31 items");
    uint32_t huge[4] = {65536, 65536, 65536, 65536};
    n = idx_bytes(buf, 0x0E, 4, huge, PIX, 4);
    expect_idx_error(write_raw("huge", buf, n), NRT_ERR_FORMAT, "more than 16 GiB of data");
}

/* Regression (found while writing fuzz_idx): a 16-byte file whose header
 * promises 15 GiB used to allocate the 15 GiB before finding it truncated.
 * The buffer now grows with the data: under a 4 GiB address-space limit
 * (in a child process) the file is refused as truncated, not out of memory. */
static void test_data_promise_is_not_allocated(void **state)
{
    (void)state;
    unsigned char buf[16] = {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 7};
    const char *path = write_raw("promises-15gib", buf, sizeof buf);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit lim = {(rlim_t)4 << 30, (rlim_t)4 << 30};
#if !defined(__SANITIZE_ADDRESS__) && !defined(DATA_TEST_ASAN)
        setrlimit(RLIMIT_AS, &lim);   /* ASan reserves terabytes of address space */
#endif
        (void)lim;
        NrtIdx x;
        NrtError err = {0};
        NrtStatus st = nrt_idx_load(path, &x, &err);
        _exit(st == NRT_ERR_FORMAT && strstr(err.msg, "truncated") ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Regressions found by fuzz_idx (UBSan, signed overflow): 0 items of an
 * absurd item shape, and a label of INT32_MAX (the class count overflowed). */
static void test_data_fuzz_regressions(void **state)
{
    (void)state;
    unsigned char zero[20] = {0, 0, 8, 4, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
                              0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
    expect_idx_error(write_raw("zero-items", zero, sizeof zero), NRT_ERR_FORMAT,
                     "more than 16 GiB per item");
    unsigned char img[18] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7, 9};
    unsigned char lab[16] = {0, 0, 0x0c, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff};
    const char *ip = write_raw("img2", img, sizeof img);
    const char *lp = write_raw("lab-max", lab, sizeof lab);
    NrtDataset ds;
    NrtError err = {0};
    assert_int_equal(nrt_dataset_load_idx(ip, lp, ip, lp, &ds, &err), NRT_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "label 1 is 2147483647, too large for a class index"));
}

/* A gzip stream with a damaged body or a cut-off end. */
static void test_data_corrupt_gzip(void **state)
{
    (void)state;
    enum { N = 4000 };
    static unsigned char buf[N + 16];
    uint32_t dims[2] = {100, 40};
    unsigned char payload[N];
    for (int i = 0; i < N; i++)
        payload[i] = (unsigned char)(i * 7 % 251);
    size_t n = idx_bytes(buf, 0x08, 2, dims, payload, N);
    const char *path = write_gz("corrupt.gz", buf, n);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
    fseek(f, size - 8, SEEK_SET);   /* the CRC and length trailer */
    fwrite(junk, 1, 8, f);
    fclose(f);
    expect_idx_error(path, NRT_ERR_FORMAT, "corrupt gzip data");
    assert_int_equal(truncate(path, size / 2), 0);
    NrtIdx x;
    NrtError err = {0};
    assert_int_equal(nrt_idx_load(path, &x, &err), NRT_ERR_FORMAT);
    assert_true(strstr(err.msg, "corrupt gzip") || strstr(err.msg, "truncated"));
}

static void test_data_not_a_file(void **state)
{
    (void)state;
    expect_idx_error(tmp_path("no-such-file.gz"), NRT_ERR_IO, "No such file");
    expect_idx_error(g_dir, NRT_ERR_IO, "is a directory");
}

static void expect_ds_error(const char *a, const char *b, const char *c, const char *d,
                            NrtStatus code, const char *fragment)
{
    NrtDataset ds;
    NrtError err = {0};
    NrtStatus st = nrt_dataset_load_idx(a, b, c, d, &ds, &err);
    if (st != code || !strstr(err.msg, fragment))
        fail_msg("got %d '%s', expected %d with '%s'", st, err.msg, code, fragment);
    assert_null(ds.train.images);
    assert_null(ds.test.labels);
}

static void test_data_dataset_errors(void **state)
{
    (void)state;
    const char *img = images_file("img", false), *lab = labels_file("lab", false, 3);
    const char *lab2 = labels_file("lab2", true, 2);
    expect_ds_error(img, lab, img, lab2, NRT_ERR_MISMATCH, "has 3 images but");
    expect_ds_error(img, lab, img, lab2, NRT_ERR_MISMATCH, "lab2 has 2 labels");
    expect_ds_error(img, img, img, lab, NRT_ERR_FORMAT, "labels must be one dimension");
    expect_ds_error(lab, lab, img, lab, NRT_ERR_FORMAT, "images need 2 to 4 dimensions");
    unsigned char buf[64];
    uint32_t dims[3] = {3, 4, 1};
    size_t n = idx_bytes(buf, 0x08, 3, dims, PIX, sizeof PIX);
    const char *tall = write_raw("tall", buf, n);
    expect_ds_error(img, lab, tall, lab, NRT_ERR_MISMATCH, "tall: 3 x 4 x 1) differ in shape");
    int32_t neg[3] = {0, 0, 0};
    uint32_t three = 3;
    n = idx_bytes(buf, 0x0C, 1, &three, neg, sizeof neg);
    buf[n - 1] = 0xff;   /* last label's low byte: still positive */
    buf[n - 4] = 0xff;   /* its high byte: negative */
    expect_ds_error(img, write_raw("neg", buf, n), img, lab, NRT_ERR_FORMAT,
                    "label 2 is negative");
    int32_t zeros[12] = {0};
    n = idx_bytes(buf, 0x0C, 3, dims, zeros, sizeof zeros);
    expect_ds_error(write_raw("i32img", buf, n), lab, img, lab, NRT_ERR_FORMAT,
                    "images must be unsigned bytes");
    expect_ds_error(img, lab, tmp_path("missing"), lab, NRT_ERR_IO, "missing");
}

/* A large gather runs on several threads and matches the per-pixel formula. */
static void test_data_gather_large(void **state)
{
    (void)state;
    enum { COUNT = 500, D = 300 };
    static uint8_t images[COUNT * D];
    static int32_t labels[COUNT];
    for (int i = 0; i < COUNT * D; i++)
        images[i] = (uint8_t)(i * 31 % 256);
    for (int i = 0; i < COUNT; i++)
        labels[i] = i % 10;
    NrtDataSplit s = {.count = COUNT, .item_size = D, .images = images, .labels = labels};
    static int64_t idx[COUNT];
    static float x[COUNT * D];
    static int32_t y[COUNT];
    for (int i = 0; i < COUNT; i++)
        idx[i] = (i * 37) % COUNT;
    NrtError err = {0};
    assert_int_equal(nrt_dataset_gather(&s, idx, COUNT, x, y, &err), NRT_OK);
    for (int i = 0; i < COUNT; i++) {
        assert_int_equal(y[i], labels[idx[i]]);
        for (int k = 0; k < D; k++)
            assert_true(x[i * D + k] == (float)images[idx[i] * D + k] / 255.0f);
    }
}

static void test_data_fashion_mnist(void **state)
{
    (void)state;
    NrtDataset ds;
    NrtError err = {0};
    NrtStatus st = nrt_dataset_load_fashion_mnist(NULL, &ds, &err);
    if (st != NRT_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.train.count, 60000);
    assert_int_equal(ds.test.count, 10000);
    assert_true(ds.c == 1 && ds.h == 28 && ds.w == 28);
    assert_int_equal(ds.train.item_size, 784);
    assert_int_equal(ds.classes, 10);
    assert_int_equal(ds.train.labels[0], 9);   /* ankle boot, in both splits */
    assert_int_equal(ds.test.labels[0], 9);
    long per_class[10] = {0};
    for (int64_t i = 0; i < ds.train.count; i++)
        per_class[ds.train.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(per_class[c], 6000);
    nrt_dataset_free(&ds);
}

static void remove_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/netc-test-data-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_load_plain_and_gzip),
        cmocka_unit_test(test_data_idx_types),
        cmocka_unit_test(test_data_bad_header),
        cmocka_unit_test(test_data_bad_sizes),
        cmocka_unit_test(test_data_promise_is_not_allocated),
        cmocka_unit_test(test_data_fuzz_regressions),
        cmocka_unit_test(test_data_corrupt_gzip),
        cmocka_unit_test(test_data_not_a_file),
        cmocka_unit_test(test_data_dataset_errors),
        cmocka_unit_test(test_data_gather_large),
    };
    int failed = cmocka_run_group_tests_name("synthetic", tests, NULL, NULL);
    remove_dir();
    if (failed)
        return failed;
    NrtDataset ds;
    NrtError err = {0};
    if (nrt_dataset_load_fashion_mnist(NULL, &ds, &err) == NRT_ERR_IO) {
        fprintf(stderr, "Fashion-MNIST test skipped: %s\n", err.msg);   /* package absent */
        return 77;
    }
    nrt_dataset_free(&ds);
    const struct CMUnitTest real[] = {cmocka_unit_test(test_data_fashion_mnist)};
    return cmocka_run_group_tests_name("fashion-mnist", real, NULL, NULL);
}
