/* test_jit.c - the LLVM backend's contract: a compiled model behaves like
 * a generated one (descriptor, argument checks, training), and what LLVM
 * or the printer cannot do comes back as a message, never a crash.
 * Exits 77 (skipped) when netc was built without LLVM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc_config.h"

#if !NETC_HAVE_LLVM
int main(void)
{
    puts("SKIP: netc was built without LLVM");
    return 77;
}
#else

#include <cmocka.h>

#include "frontend.h"
#include "jit.h"
#include "kernel.h"

static const char model_src[] =
    "model tiny;\n"
    "input x [1, 28, 28];\n"
    "target y classes(10);\n"
    "preprocess standardize;\n"
    "logits = x -> conv(2, 3, pad=1) -> batchnorm -> relu -> maxpool(2) -> dense(5) -> relu\n"
    "  -> dropout(0.5) -> dense(10);\n"
    "loss cross_entropy(logits, y);\n"
    "train { batch 4; epochs 1; seed 3; optimizer adam(lr=0.01); }\n";

typedef struct Fixture {
    NetcCompilation c;
    KProgram *kp;
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_true(netc_compilation_init(&f->c, "tiny.net", model_src, sizeof model_src - 1));
    assert_int_equal(netc_compile(&f->c), 0);
    DiagSink d;
    diag_init(&d, &f->c.arena);
    assert_int_equal(lower_program(f->c.graph, "tiny.net", &d, &f->kp), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    if (!f)
        return 0;
    netc_compilation_free(&f->c);
    free(f);
    return 0;
}

static void test_jit_model_trains(void **state)
{
    Fixture *f = *state;
    char err[4096];
    JitModule *j = jit_open(f->kp, err, sizeof err);
    assert_non_null(j);
    const NrtModelInfo *info = jit_info(j);
    assert_int_equal(info->abi, NRT_MODEL_ABI);
    assert_string_equal(info->name, "tiny");
    assert_int_equal(info->batch, 4);
    assert_int_equal(info->input_size, 784);
    NrtModel *m = NULL;
    NrtError e = {0};
    assert_int_equal(info->create(&m, 3, &e), NRT_OK);
    static uint8_t img[8 * 784];
    for (int i = 0; i < 8 * 784; i++)
        img[i] = (uint8_t)(i * 37);
    assert_int_equal(info->fit_preprocess(m, img, 8, &e), NRT_OK);
    static float x[4 * 784];
    for (int i = 0; i < 4 * 784; i++)
        x[i] = (float)((i * 11) % 17) / 17.0f;
    int32_t labels[4] = {0, 1, 2, 1};
    NrtBatch b = {.x = x, .n = 4, .labels = {labels}};
    float first = 0, loss = 0;
    for (int s = 0; s < 30; s++) {
        assert_int_equal(info->train_step(m, &b, 0.01f, &loss, &e), NRT_OK);
        if (s == 0)
            first = loss;
    }
    assert_true(loss < first);    /* it learns the one batch */
    assert_int_equal(*info->step(m), 30);
    /* the argument checks of generated code */
    labels[2] = 10;
    assert_int_equal(info->train_step(m, &b, 0.01f, &loss, &e), NRT_ERR_ARG);
    assert_non_null(strstr(e.msg, "label 10 of sample 2"));
    float out[4 * 10];
    float *outs[1] = {out};
    assert_int_equal(info->predict(m, x, 5, outs, &e), NRT_ERR_ARG);
    assert_int_equal(info->predict(m, x, 2, outs, &e), NRT_OK);
    assert_null(info->grad(m, info->nparams));
    info->destroy(m);
    jit_close(j);
}

/* A step the printer does not know: a message naming it, no module. */
static void test_jit_unknown_step_is_an_error(void **state)
{
    Fixture *f = *state;
    char err[4096];
    KStep *s = &f->kp->train.items[f->kp->train.len - 1];
    KOp saved = s->op;
    s->op = (KOp)9999;
    JitModule *j = jit_open(f->kp, err, sizeof err);
    s->op = saved;
    assert_null(j);
    assert_non_null(strstr(err, "cannot print step"));
    assert_non_null(strstr(err, s->fn));
    jit_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jit_model_trains),
        cmocka_unit_test(test_jit_unknown_step_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

#endif
