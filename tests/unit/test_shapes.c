/* test_shapes.c - shape inference of every op, through netc_compile().
 *
 * Each test compiles a small model `z = x -> <ops>;` on a chosen input (data
 * idx, so any input shape is allowed) and checks the shape of z, or the
 * error (fragment and line:col) a bad shape gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontend.h"

static NetcCompilation comp;

/* Line 4 holds the ops under test: "z = x -> " is 9 columns wide. */
static int compile_chain(const char *input, const char *chain)
{
    char src[2048];
    snprintf(src, sizeof src,
             "model m;\ninput x %s;\ntarget y classes(10);\nz = x -> %s;\n"
             "loss cross_entropy(z -> dense(10), y);\n"
             "train { data idx(train_images=\"a\", train_labels=\"b\"); }\n",
             input, chain);
    netc_compilation_free(&comp);
    assert_true(netc_compilation_init(&comp, "t.net", src, strlen(src)));
    return netc_compile(&comp);
}

static const IrNode *node_named(const char *value_name)
{
    assert_non_null(comp.graph);
    for (size_t i = 0; i < comp.graph->nodes.len; i++) {
        const IrNode *n = comp.graph->nodes.items[i];
        if (n->out && n->out->name && !strcmp(n->out->name, value_name))
            return n;
    }
    fail_msg("no value named %s", value_name);
    return NULL;
}

static void dump_diags(void)
{
    diag_print_all(&comp.diags, stderr, false);
}

static void expect_shape(const char *input, const char *chain, int rank, int64_t d0, int64_t d1,
                         int64_t d2)
{
    if (compile_chain(input, chain) != 0) {
        dump_diags();
        fail_msg("'%s' on %s did not compile", chain, input);
    }
    IrShape s = node_named("z")->out->shape;
    int64_t want[3] = {d0, d1, d2};
    assert_int_equal(s.rank, rank);
    for (int i = 0; i < rank; i++)
        if (s.d[i] != want[i]) {
            char buf[64];
            fail_msg("'%s' on %s gives %s", chain, input, ir_shape_str(s, buf, sizeof buf));
        }
}

static const Diag *find_diag(DiagLevel level, int line, int col, const char *frag)
{
    for (const Diag *dg = comp.diags.first; dg; dg = dg->next) {
        if (level == DIAG_ERROR && dg->level == DIAG_ERROR && dg->sp.line == line &&
            dg->sp.col == col && strstr(dg->msg, frag))
            return dg;
        for (const Diag *n = dg->notes; n && level == DIAG_NOTE; n = n->next)
            if (n->sp.line == line && n->sp.col == col && strstr(n->msg, frag))
                return n;
    }
    return NULL;
}

static void expect_error(const char *input, const char *chain, int col, const char *frag)
{
    assert_int_not_equal(compile_chain(input, chain), 0);
    assert_null(comp.graph);
    if (!find_diag(DIAG_ERROR, 4, col, frag)) {
        dump_diags();
        fail_msg("no error at 4:%d containing '%s'", col, frag);
    }
}

/* ---- dense, flatten ---------------------------------------------------- */

static void test_shape_dense(void **state)
{
    (void)state;
    expect_shape("[1, 28, 28]", "dense(120)", 1, 120, 0, 0);
    expect_shape("[784]", "dense(7, bias=false)", 1, 7, 0, 0);
    const IrNode *n = node_named("z");
    assert_int_equal(n->weight->shape.d[0], 7);
    assert_int_equal(n->weight->shape.d[1], 784);
    assert_null(n->bias);
    assert_int_equal(n->weight->fan_in, 784);
    assert_int_equal(n->weight->fan_out, 7);
}

static void test_shape_flatten(void **state)
{
    (void)state;
    expect_shape("[3, 5, 7]", "flatten", 1, 105, 0, 0);
    expect_shape("[10]", "flatten", 1, 10, 0, 0);
}

/* ---- conv -------------------------------------------------------------- */

static void test_shape_conv(void **state)
{
    (void)state;
    expect_shape("[1, 28, 28]", "conv(6, 5)", 3, 6, 24, 24);
    expect_shape("[1, 28, 28]", "conv(6, 5, pad=2)", 3, 6, 28, 28);
    expect_shape("[3, 32, 32]", "conv(8, 3, stride=2, pad=1)", 3, 8, 16, 16);
    expect_shape("[3, 31, 30]", "conv(8, 3, stride=2)", 3, 8, 15, 14);
    const IrNode *n = node_named("z");
    assert_int_equal(n->weight->shape.rank, 4);
    assert_int_equal(n->weight->fan_in, 3 * 9);
    assert_int_equal(n->weight->fan_out, 8 * 9);
    assert_int_equal(n->bias->shape.d[0], 8);
}

static void test_shape_conv_same(void **state)
{
    (void)state;
    expect_shape("[4, 28, 28]", "conv(8, 3, pad=same)", 3, 8, 28, 28);
    assert_int_equal(node_named("z")->conv.pad, 1);
    expect_shape("[4, 28, 28]", "conv(8, 5, stride=2, pad=same)", 3, 8, 14, 14);
    expect_shape("[4, 7, 7]", "conv(8, 3, stride=2, pad=same)", 3, 8, 4, 4);   /* ceil(7/2) */
    expect_error("[4, 28, 28]", "conv(8, 4, pad=same)", 25, "pad=same needs an odd kernel");
}

static void test_shape_conv_errors(void **state)
{
    (void)state;
    expect_error("[1, 4, 4]", "conv(8, 5)", 10, "output would be empty");
    const Diag *note = find_diag(DIAG_NOTE, 2, 7, "[1, 4, 4]");
    assert_non_null(note);
    expect_error("[784]", "conv(8, 3)", 10, "conv needs a [C, H, W] input, got [784]");
    expect_error("[1, 28, 28]", "conv(8, 0)", 18, "conv: kernel must be >= 1, got 0");
    expect_error("[1, 28, 28]", "conv(8, 3, pad=-1)", 25, "conv: pad must be >= 0, got -1");
}

/* ---- pooling ----------------------------------------------------------- */

static void test_shape_maxpool(void **state)
{
    (void)state;
    expect_shape("[6, 28, 28]", "maxpool(2)", 3, 6, 14, 14);
    assert_int_equal(node_named("z")->pool.stride, 2);
    expect_shape("[6, 28, 28]", "maxpool(3, stride=1, pad=1)", 3, 6, 28, 28);
    expect_shape("[6, 7, 7]", "maxpool(2)", 3, 6, 3, 3);   /* floor mode */
    expect_error("[6, 28, 28]", "maxpool(2, pad=2)", 25, "pad must be at most size/2");
    expect_error("[1, 4, 4]", "maxpool(8)", 10, "output would be empty");
    expect_error("[16]", "maxpool(2)", 10, "maxpool needs a [C, H, W] input");
}

static void test_shape_avgpool(void **state)
{
    (void)state;
    expect_shape("[56, 14, 14]", "avgpool(3, stride=2, pad=1)", 3, 56, 7, 7);
    expect_shape("[2, 9, 9]", "avgpool(3)", 3, 2, 3, 3);
}

static void test_shape_global_avgpool(void **state)
{
    (void)state;
    expect_shape("[64, 7, 7]", "global_avgpool", 3, 64, 1, 1);
    expect_error("[64]", "global_avgpool", 10, "global_avgpool needs a [C, H, W] input");
}

static void test_shape_fractional_maxpool(void **state)
{
    (void)state;
    expect_shape("[32, 28, 28]", "fractional_maxpool(1.414)", 3, 32, 19, 19);
    expect_shape("[32, 14, 14]", "fractional_maxpool(ratio=2.0, overlap=true)", 3, 32, 7, 7);
    assert_true(node_named("z")->frac.overlap);
    expect_error("[32, 28, 28]", "fractional_maxpool(1.0)", 29, "ratio must be in (1, 2]");
    expect_error("[32, 1, 1]", "fractional_maxpool(1.5)", 10, "output would be empty");
}

/* ---- elementwise and normalization ------------------------------------- */

static void test_shape_activations(void **state)
{
    (void)state;
    expect_shape("[3, 5, 5]", "relu", 3, 3, 5, 5);
    expect_shape("[3, 5, 5]", "tanh", 3, 3, 5, 5);
    expect_shape("[17]", "sigmoid", 1, 17, 0, 0);
    expect_shape("[17]", "leaky_relu", 1, 17, 0, 0);
    assert_true(node_named("z")->leaky.slope == 0.01);
    expect_shape("[17]", "leaky_relu(slope=0.2)", 1, 17, 0, 0);
    assert_true(node_named("z")->leaky.slope == 0.2);
}

static void test_shape_batchnorm(void **state)
{
    (void)state;
    expect_shape("[6, 14, 14]", "batchnorm", 3, 6, 14, 14);
    const IrNode *n = node_named("z");
    assert_int_equal(n->gamma->shape.d[0], 6);
    assert_int_equal(n->running_var->shape.d[0], 6);
    assert_false(n->running_mean->trainable);
    assert_int_equal(n->gamma->init.kind, IR_INIT_ONES);
    expect_shape("[120]", "batchnorm(momentum=0.05, eps=1e-3, gamma=zeros)", 1, 120, 0, 0);
    n = node_named("z");
    assert_int_equal(n->beta->shape.d[0], 120);
    assert_int_equal(n->gamma->init.kind, IR_INIT_ZEROS);
    assert_true(n->bn.momentum == 0.05 && n->bn.eps == 1e-3);
    expect_error("[6]", "batchnorm(gamma=kaiming)", 26, "gamma must be zeros, ones or constant");
}

static void test_shape_dropouts(void **state)
{
    (void)state;
    expect_shape("[8, 4, 4]", "dropout(0.5)", 3, 8, 4, 4);
    expect_shape("[8, 4, 4]", "drop_path(0.1)", 3, 8, 4, 4);
    expect_shape("[8]", "gaussian_noise(0.05)", 1, 8, 0, 0);
    expect_error("[8]", "dropout(1.5)", 18, "dropout: p must be in [0, 1), got 1.5");
    expect_error("[8]", "drop_path(1)", 20, "drop_path: p must be in [0, 1), got 1");
    expect_error("[8]", "gaussian_noise(0)", 25, "gaussian_noise: std must be > 0, got 0");
}

static void test_shape_softmax_output(void **state)
{
    (void)state;
    const char *src = "model m;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n"
                      "loss cross_entropy(l, y);\noutput p = softmax(l);\n";
    netc_compilation_free(&comp);
    assert_true(netc_compilation_init(&comp, "t.net", src, strlen(src)));
    assert_int_equal(netc_compile(&comp), 0);
    assert_int_equal(comp.graph->outputs.len, 1);
    assert_int_equal(comp.graph->outputs.items[0].value->shape.d[0], 10);
    assert_int_equal(comp.graph->outputs.items[0].value->producer->op, IR_OP_SOFTMAX);
    /* inside the graph it is an error, located at the softmax */
    expect_error("[16]", "softmax -> relu", 10, "softmax can only be an output");
}

/* ---- joins ------------------------------------------------------------- */

static void test_shape_concat(void **state)
{
    (void)state;
    /* the chained x is the first input: 4 + 3 + 4 + 5 channels */
    expect_shape("[4, 8, 8]", "concat(x -> conv(3, 1), x, x -> conv(5, 3, pad=1))", 3, 16, 8, 8);
    assert_int_equal(node_named("z")->nin, 4);
    expect_shape("[4, 8, 8]", "conv(2, 1) -> concat(x)", 3, 6, 8, 8);
    expect_shape("[5]", "concat(x, x -> dense(3))", 1, 13, 0, 0);
    expect_error("[4, 8, 8]", "concat(x, x -> conv(3, 3))", 10, "concat: cannot join [4, 8, 8] and [3, 6, 6]");
    expect_error("[4, 8, 8]", "concat(x, x -> flatten)", 10, "ranks differ");
    expect_error("[4, 8, 8]", "concat", 10, "concat needs at least 2 inputs, got 1");
}

static void test_shape_add(void **state)
{
    (void)state;
    expect_shape("[4, 8, 8]", "conv(4, 3, pad=1) + x", 3, 4, 8, 8);
    expect_shape("[4, 8, 8]", "relu + x + x", 3, 4, 8, 8);
    assert_int_equal(node_named("z")->nin, 3);
    expect_error("[4, 8, 8]", "relu(x + x)", 15, "relu takes one input and already has one from '->'");
    expect_error("[4, 8, 8]", "conv(4, 3) + x", 5, "cannot add [4, 6, 6] and [4, 8, 8]");
    assert_non_null(find_diag(DIAG_NOTE, 2, 7, "'x' has shape [4, 8, 8]"));
    assert_non_null(find_diag(DIAG_NOTE, 4, 10, "has shape [4, 6, 6]"));
}

/* ---- losses ------------------------------------------------------------ */

static int compile_src(const char *src)
{
    netc_compilation_free(&comp);
    assert_true(netc_compilation_init(&comp, "t.net", src, strlen(src)));
    return netc_compile(&comp);
}

static void test_shape_losses(void **state)
{
    (void)state;
    assert_int_equal(compile_src("model m;\ninput x [8, 4, 4];\ntarget y classes(10);\n"
                                 "target v values(3);\n"
                                 "l = x -> conv(10, 4);\nr = x -> dense(3);\n"
                                 "loss cross_entropy(l, y, smoothing=0.1);\nloss mse(r, v) weight 2;\n"
                                 "train { data idx(train_images=\"a\", train_labels=\"b\", "
                                 "targets=[\"v.idx\"]); }\n"), 0);
    const IrGraph *g = comp.graph;
    assert_int_equal(g->losses.len, 2);
    assert_int_equal(g->losses.items[0]->out->shape.rank, 0);
    assert_true(g->losses.items[0]->loss.smoothing == 0.1);
    assert_int_equal(g->losses.items[1]->loss.target, 1);
    assert_true(g->losses.items[1]->loss.weight == 2);
    assert_string_equal(g->train.data.target_files[1], "v.idx");
    assert_null(g->train.data.target_files[0]);
    /* default outputs: each loss's prediction */
    assert_int_equal(g->outputs.len, 2);
    assert_string_equal(g->outputs.items[0].name, "l");
}

static void test_shape_loss_errors(void **state)
{
    (void)state;
    const char *head = "model m;\ninput x [784];\ntarget y classes(10);\ntarget v values(3) ;\n";
    char src[1024];
    snprintf(src, sizeof src, "%sl = x -> dense(7);\nloss cross_entropy(l, y);\n", head);
    assert_int_not_equal(compile_src(src), 0);
    assert_non_null(find_diag(DIAG_ERROR, 6, 6, "logits have shape [7] but 'y' has 10 classes"));
    snprintf(src, sizeof src, "%sl = x -> dense(4);\nloss mse(l, v);\n", head);
    assert_int_not_equal(compile_src(src), 0);
    assert_non_null(find_diag(DIAG_ERROR, 6, 6, "mse: the prediction has shape [4] (4 values) but 'v' has 3"));
    snprintf(src, sizeof src, "%sl = x -> dense(3);\nloss cross_entropy(l, v);\n", head);
    assert_int_not_equal(compile_src(src), 0);
    assert_non_null(find_diag(DIAG_ERROR, 6, 23, "cross_entropy needs a classes target"));
    snprintf(src, sizeof src, "%sl = x -> cross_entropy(y);\n", head);
    assert_int_not_equal(compile_src(src), 0);
    assert_non_null(find_diag(DIAG_ERROR, 5, 10, "'cross_entropy' is a loss"));
}

/* ---- sizes ------------------------------------------------------------- */

static void test_shape_overflow_and_memory(void **state)
{
    (void)state;
    expect_error("[1, 28, 28]", "dense(2000000000)", 10, "does not fit in memory");
    expect_error("[1000000, 1000000, 1000000]", "flatten -> dense(2000000000)", 21,
                 "weight [2000000000, 1000000000000000000] has more than 2^63 elements");
    expect_error("[1, 28, 28]", "dense(99999999999)", 16, "units must fit in 32 bits");
}

static int teardown(void **state)
{
    (void)state;
    netc_compilation_free(&comp);
    memset(&comp, 0, sizeof comp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_shape_dense, teardown),
        cmocka_unit_test_teardown(test_shape_flatten, teardown),
        cmocka_unit_test_teardown(test_shape_conv, teardown),
        cmocka_unit_test_teardown(test_shape_conv_same, teardown),
        cmocka_unit_test_teardown(test_shape_conv_errors, teardown),
        cmocka_unit_test_teardown(test_shape_maxpool, teardown),
        cmocka_unit_test_teardown(test_shape_avgpool, teardown),
        cmocka_unit_test_teardown(test_shape_global_avgpool, teardown),
        cmocka_unit_test_teardown(test_shape_fractional_maxpool, teardown),
        cmocka_unit_test_teardown(test_shape_activations, teardown),
        cmocka_unit_test_teardown(test_shape_batchnorm, teardown),
        cmocka_unit_test_teardown(test_shape_dropouts, teardown),
        cmocka_unit_test_teardown(test_shape_softmax_output, teardown),
        cmocka_unit_test_teardown(test_shape_concat, teardown),
        cmocka_unit_test_teardown(test_shape_add, teardown),
        cmocka_unit_test_teardown(test_shape_losses, teardown),
        cmocka_unit_test_teardown(test_shape_loss_errors, teardown),
        cmocka_unit_test_teardown(test_shape_overflow_and_memory, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
