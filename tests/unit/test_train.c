/* test_train.c - netc train's driver pieces: flags, effective config,
 * epoch arithmetic, output/target matching, shuffles, data file names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "netc_config.h"
#include "train.h"
#include "train_data.h"

static int parse(TrainArgs *a, const char *const *argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    char err[256];
    return train_parse_args(argc, (char **)argv, a, err, sizeof err);
}

static void test_train_args_defaults(void **state)
{
    (void)state;
    TrainArgs a;
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", NULL}), 0);
    assert_string_equal(a.model_path, "m.net");
    assert_false(a.eval);
    assert_int_equal(a.epochs, 0);
    assert_int_equal(a.batch, 0);
    assert_false(a.seed_set);
    /* the JIT when netc has LLVM, else the C backend */
    assert_string_equal(a.backend, NETC_HAVE_LLVM ? "jit" : "cc");
    assert_null(a.out);
    assert_false(a.elapsed);
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", "--c-source", "m.c", NULL}), 0);
    assert_string_equal(a.backend, "cc");
}

static void test_train_args_all_flags(void **state)
{
    (void)state;
    TrainArgs a;
    assert_int_equal(parse(&a, (const char *[]){"train", "--epochs", "3", "--batch=128", "m.net",
                                                "--seed", "18446744073709551615", "--threads=2",
                                                "--data", "d", "--out", "o.st", "--resume",
                                                "r.st", "--backend=cc", "--limit-train",
                                                "20000", "--limit-test=2000", "--elapsed",
                                                NULL}),
                     0);
    assert_true(a.elapsed);
    assert_int_equal(a.epochs, 3);
    assert_int_equal(a.batch, 128);
    assert_true(a.seed_set);
    assert_true(a.seed == UINT64_MAX);
    assert_int_equal(a.threads, 2);
    assert_string_equal(a.data_dir, "d");
    assert_string_equal(a.out, "o.st");
    assert_string_equal(a.resume, "r.st");
    assert_string_equal(a.backend, "cc");
    assert_int_equal(a.limit_train, 20000);
    assert_int_equal(a.limit_test, 2000);
    /* jit: only when built with LLVM, and never with a hand-written C file */
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", "--backend", "jit", NULL}),
                     NETC_HAVE_LLVM ? 0 : 2);
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", "--backend", "jit", "--c-source",
                                                "m.c", NULL}), 2);
}

static void test_train_args_rejects_bad_values(void **state)
{
    (void)state;
    TrainArgs a;
    const char *bad[][4] = {
        {"train", "m.net", "--epochs", "0"},      {"train", "m.net", "--epochs", "-1"},
        {"train", "m.net", "--batch", "12x"},     {"train", "m.net", "--batch", "99999999999"},
        {"train", "m.net", "--seed", "-3"},       {"train", "m.net", "--seed", "1e3"},
        {"train", "m.net", "--threads", "0"},     {"train", "m.net", "--backend", "gpu"},
        {"train", "m.net", "--bogus", "1"},       {"train", "m.net", "other.net", "--out"},
        {"eval", "m.net", "--epochs", "1"},       {"train", "m.net", "--weights", "w"},
        {"train", "m.net", "--color", "purple"},  {"train", "--epochs", "2", NULL},
        {"eval", "m.net", "--weights=w", "--elapsed"}, {"train", "m.net", "--elapsed=1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *argv[5] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL};
        if (parse(&a, argv) != 2)
            fail_msg("accepted: %s %s %s %s", bad[i][0], bad[i][1], bad[i][2],
                     bad[i][3] ? bad[i][3] : "");
    }
    /* A flag without its value. */
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", "--epochs", NULL}), 2);
}

static void test_train_args_eval(void **state)
{
    (void)state;
    TrainArgs a;
    assert_int_equal(parse(&a, (const char *[]){"eval", "m.net", NULL}), 2);
    assert_int_equal(parse(&a, (const char *[]){"eval", "m.net", "--weights", "w.st", NULL}), 0);
    assert_true(a.eval);
    assert_string_equal(a.weights, "w.st");
    assert_int_equal(parse(&a, (const char *[]){"train", "--help", NULL}), 0);
    assert_true(a.help);
}

static void test_train_effective_config(void **state)
{
    (void)state;
    NrtTrainConfig model = {.batch = 64, .epochs = 10, .seed = 1, .lr = 0.01};
    TrainArgs a;
    assert_int_equal(parse(&a, (const char *[]){"train", "m.net", "--epochs", "2", "--seed",
                                                "0", NULL}),
                     0);
    NrtTrainConfig c = train_effective_config(&model, &a);
    assert_int_equal(c.epochs, 2);
    assert_int_equal(c.seed, 0);     /* 0 is a seed, not "unset" */
    assert_int_equal(c.batch, 64);
    assert_true(c.lr == 0.01);
}

static void test_train_steps_per_epoch(void **state)
{
    (void)state;
    assert_int_equal(train_steps_per_epoch(60000, 64), 938);
    assert_int_equal(train_steps_per_epoch(64, 64), 1);
    assert_int_equal(train_steps_per_epoch(65, 64), 2);
    assert_int_equal(train_steps_per_epoch(0, 64), 0);
}

static void test_train_match_outputs(void **state)
{
    (void)state;
    NrtTargetInfo targets[3] = {
        {.name = "label", .kind = NRT_TARGET_CLASSES, .n = 10},
        {.name = "coarse", .kind = NRT_TARGET_CLASSES, .n = 3},
        {.name = "again", .kind = NRT_TARGET_CLASSES, .n = 10},
    };
    NrtOutputInfo outputs[2] = {{.name = "coarse_probs", .size = 3}, {.name = "fine", .size = 10}};
    NrtModelInfo info = {.ntargets = 3, .targets = targets, .noutputs = 2, .outputs = outputs};
    int m[NRT_MAX_TARGETS];
    train_match_outputs(&info, m);
    assert_int_equal(m[0], 1);
    assert_int_equal(m[1], 0);
    assert_int_equal(m[2], -1);      /* no output left for it */
    assert_int_equal(m[3], -1);
}

static bool is_permutation(const int64_t *o, int64_t n)
{
    char *seen = calloc((size_t)n + 1, 1);
    bool ok = seen != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        ok = o[i] >= 0 && o[i] < n && !seen[o[i]];
        if (ok)
            seen[o[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_train_shuffle_is_seeded(void **state)
{
    (void)state;
    enum { N = 1000 };
    int64_t a[N], b[N], c[N], d[N];
    train_data_shuffle(1, 0, N, a);
    train_data_shuffle(1, 0, N, b);
    train_data_shuffle(1, 1, N, c);
    train_data_shuffle(2, 0, N, d);
    assert_true(is_permutation(a, N));
    assert_true(is_permutation(c, N));
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);   /* another epoch */
    assert_memory_not_equal(a, d, sizeof a);   /* another seed */
    int fixed = 0;
    for (int i = 0; i < N; i++)
        fixed += a[i] == i;
    assert_true(fixed < 20);                   /* actually shuffled (expected ~1) */
    int64_t one[1];
    train_data_shuffle(5, 3, 1, one);
    assert_int_equal(one[0], 0);
    train_data_shuffle(5, 3, 0, one);           /* empty: touches nothing */
}

static void test_train_data_paths(void **state)
{
    (void)state;
    NrtTrainConfig cfg = {0};
    TrainDataRequest rq = {.cfg = &cfg, .model_path = "models/m.net"};
    char p[4][4096];
    setenv("NETC_FASHION_MNIST_DIR", "/fm", 1);
    train_data_paths(&rq, p);
    assert_string_equal(p[0], "/fm/train-images-idx3-ubyte.gz");
    assert_string_equal(p[3], "/fm/t10k-labels-idx1-ubyte.gz");
    cfg.train_images = "data/a.idx";
    cfg.test_labels = "/abs/d.idx";
    train_data_paths(&rq, p);
    assert_string_equal(p[0], "models/data/a.idx");   /* relative to the model file */
    assert_string_equal(p[3], "/abs/d.idx");
    rq.data_dir = "/mine";
    train_data_paths(&rq, p);
    assert_string_equal(p[0], "/mine/train-images-idx3-ubyte.gz");
    assert_string_equal(p[1], "/mine/train-labels-idx1-ubyte.gz");
}

/* ---- data files: a 2x2-pixel data set of 3 images in a temporary folder ---- */

static char data_dir[64];

static void write_bytes(const char *name, const unsigned char *b, size_t n, bool gz)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b, 1, n, f), n);
        fclose(f);
    }
}

static const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                       0, 51, 102, 255, 1, 2, 3, 4, 9, 9, 9, 9};
static const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1};

/* Writes all four files (train = test) gzip'ed, with the given images and
 * labels replacing the good ones for the training split. */
static void write_set(const unsigned char *img, size_t nimg, const unsigned char *lab,
                      size_t nlab)
{
    write_bytes("train-images-idx3-ubyte.gz", img, nimg, true);
    write_bytes("train-labels-idx1-ubyte.gz", lab, nlab, true);
    write_bytes("t10k-images-idx3-ubyte.gz", images, sizeof images, true);
    write_bytes("t10k-labels-idx1-ubyte.gz", labels, sizeof labels, true);
}

static const int32_t coarse_map[3] = {1, 1, 0};
static const NrtTargetInfo data_targets[2] = {
    {.name = "label", .kind = NRT_TARGET_CLASSES, .n = 3, .source = NRT_TARGET_FROM_DATA},
    {.name = "coarse", .kind = NRT_TARGET_CLASSES, .n = 2, .source = NRT_TARGET_FROM_MAP,
     .map_base = 0, .map = coarse_map, .nmap = 3},
};
static const NrtModelInfo data_info = {.name = "tiny", .input_size = 4, .ntargets = 2,
                                       .targets = data_targets};

static NrtStatus load(TrainSplit *tr, TrainSplit *te, NrtError *err, int64_t limit)
{
    NrtTrainConfig cfg = {0};
    TrainDataRequest rq = {.info = &data_info, .cfg = &cfg, .data_dir = data_dir,
                           .want_train = true, .limit_train = limit};
    memset(err, 0, sizeof *err);
    return train_data_load(&rq, tr, te, err);
}

static int make_data_dir(void **state)
{
    (void)state;
    snprintf(data_dir, sizeof data_dir, "/tmp/netc-datatest-XXXXXX");
    return mkdtemp(data_dir) ? 0 : -1;
}

static int drop_data_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_train_data_loads_and_gathers(void **state)
{
    (void)state;
    write_set(images, sizeof images, labels, sizeof labels);
    TrainSplit tr, te;
    NrtError err;
    assert_int_equal(load(&tr, &te, &err, 0), NRT_OK);
    assert_int_equal(tr.count, 3);
    assert_int_equal(te.count, 3);
    int64_t idx[2] = {2, 0};
    float x[8];
    int32_t l0[2], l1[2];
    int32_t *labs[NRT_MAX_TARGETS] = {l0, l1};
    float *vals[NRT_MAX_TARGETS] = {NULL};
    train_data_gather(&tr, &data_info, idx, 2, x, labs, vals);
    const float want[8] = {9, 9, 9, 9, 0, 51, 102, 255};   /* images 2 and 0 */
    for (int i = 0; i < 8; i++)
        assert_true(x[i] * 255.0f > want[i] - 1e-3f && x[i] * 255.0f < want[i] + 1e-3f);
    assert_int_equal(l0[0], 1);
    assert_int_equal(l0[1], 2);
    assert_int_equal(l1[0], 1);      /* map: 1 -> 1 */
    assert_int_equal(l1[1], 0);      /* map: 2 -> 0 */
    train_data_free(&tr);
    train_data_free(&te);
    assert_int_equal(load(&tr, &te, &err, 2), NRT_OK);    /* --limit-train 2 */
    assert_int_equal(tr.count, 2);
    assert_int_equal(te.count, 3);
    train_data_free(&tr);
    train_data_free(&te);
}

/* Plain files under the plain names, and gzip data under a plain name. */
static void test_train_data_plain_and_misnamed_gzip(void **state)
{
    (void)state;
    write_set(images, sizeof images, labels, sizeof labels);
    char path[128];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", data_dir);
    unlink(path);
    write_bytes("train-images-idx3-ubyte", images, sizeof images, false);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", data_dir);
    unlink(path);
    write_bytes("train-labels-idx1-ubyte", labels, sizeof labels, true);   /* gzip inside */
    TrainSplit tr, te;
    NrtError err;
    assert_int_equal(load(&tr, &te, &err, 0), NRT_OK);
    assert_int_equal(tr.labels[0][2], 1);
    train_data_free(&tr);
    train_data_free(&te);
}

static void expect_error(NrtStatus code, const char *fragment)
{
    TrainSplit tr, te;
    NrtError err;
    assert_int_equal(load(&tr, &te, &err, 0), code);
    if (!strstr(err.msg, fragment))
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
    assert_null(tr.images);
    assert_null(te.images);
}

static void test_train_data_rejects_bad_files(void **state)
{
    (void)state;
    unsigned char bad[sizeof images + 1];
    memcpy(bad, images, sizeof images);
    bad[2] = 0x42;                                           /* wrong type byte */
    write_set(bad, sizeof images, labels, sizeof labels);
    expect_error(NRT_ERR_FORMAT, "unknown IDX type code 0x42");
    write_set(images, sizeof images - 1, labels, sizeof labels);
    expect_error(NRT_ERR_FORMAT, "truncated");
    memcpy(bad, images, sizeof images);
    bad[sizeof images] = 7;
    write_set(bad, sizeof images + 1, labels, sizeof labels);
    expect_error(NRT_ERR_FORMAT, "trailing data: 1 bytes");
    memcpy(bad, images, sizeof images);
    bad[15] = 1;                                             /* 3 x 2 x 1 images */
    write_set(bad, sizeof images - 6, labels, sizeof labels);
    expect_error(NRT_ERR_MISMATCH, "takes 4 per sample");
    unsigned char lab[sizeof labels];
    memcpy(lab, labels, sizeof labels);
    lab[7] = 2;                                              /* 2 labels for 3 images */
    write_set(images, sizeof images, lab, sizeof labels - 1);
    expect_error(NRT_ERR_MISMATCH, "expected 3 labels");
    memcpy(lab, labels, sizeof labels);
    lab[10] = 5;                                             /* outside classes(3) */
    write_set(images, sizeof images, lab, sizeof labels);
    expect_error(NRT_ERR_FORMAT, "outside classes(3)");
    char path[128];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", data_dir);
    unlink(path);
    write_set(images, sizeof images, labels, sizeof labels);
    unlink(path);
    expect_error(NRT_ERR_IO, "t10k-images-idx3-ubyte.gz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_args_defaults),
        cmocka_unit_test(test_train_args_all_flags),
        cmocka_unit_test(test_train_args_rejects_bad_values),
        cmocka_unit_test(test_train_args_eval),
        cmocka_unit_test(test_train_effective_config),
        cmocka_unit_test(test_train_steps_per_epoch),
        cmocka_unit_test(test_train_match_outputs),
        cmocka_unit_test(test_train_shuffle_is_seeded),
        cmocka_unit_test(test_train_data_paths),
        cmocka_unit_test_setup_teardown(test_train_data_loads_and_gathers, make_data_dir,
                                        drop_data_dir),
        cmocka_unit_test_setup_teardown(test_train_data_plain_and_misnamed_gzip, make_data_dir,
                                        drop_data_dir),
        cmocka_unit_test_setup_teardown(test_train_data_rejects_bad_files, make_data_dir,
                                        drop_data_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
