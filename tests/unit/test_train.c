/* test_train.c - netc train's driver pieces: flags, effective config,
 * epoch arithmetic, output/target matching, shuffles, data file names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    assert_string_equal(a.backend, "cc");
    assert_null(a.out);
}

static void test_train_args_all_flags(void **state)
{
    (void)state;
    TrainArgs a;
    assert_int_equal(parse(&a, (const char *[]){"train", "--epochs", "3", "--batch=128", "m.net",
                                                "--seed", "18446744073709551615", "--threads=2",
                                                "--data", "d", "--out", "o.st", "--resume",
                                                "r.st", "--backend=jit", "--limit-train",
                                                "20000", "--limit-test=2000", NULL}),
                     0);
    assert_int_equal(a.epochs, 3);
    assert_int_equal(a.batch, 128);
    assert_true(a.seed_set);
    assert_true(a.seed == UINT64_MAX);
    assert_int_equal(a.threads, 2);
    assert_string_equal(a.data_dir, "d");
    assert_string_equal(a.out, "o.st");
    assert_string_equal(a.resume, "r.st");
    assert_string_equal(a.backend, "jit");
    assert_int_equal(a.limit_train, 20000);
    assert_int_equal(a.limit_test, 2000);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
