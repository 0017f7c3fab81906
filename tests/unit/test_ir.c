/* test_ir.c - the graph IR: op tables, builders, numel and shape strings,
 * the cost model, the verifier (on hand-broken graphs) and the printer's
 * stability.
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

static void test_ir_op_tables(void **state)
{
    (void)state;
    assert_string_equal(ir_op_name(IR_OP_CONV), "conv");
    assert_string_equal(ir_op_name(IR_OP_FRACTIONAL_MAXPOOL), "fractional_maxpool");
    assert_int_equal(ir_op_arity(IR_OP_DENSE), 1);
    assert_int_equal(ir_op_arity(IR_OP_CONCAT), -1);
    assert_true(ir_op_flags(IR_OP_DROPOUT) & IR_F_TRAIN_ONLY);
    assert_true(ir_op_flags(IR_OP_MSE) & IR_F_LOSS);
    assert_string_equal(ir_op_name(IR_OP_COUNT), "?");
    assert_string_equal(ir_init_name(IR_INIT_KAIMING_UNIFORM), "kaiming_uniform");
}

static void test_ir_numel_and_str(void **state)
{
    (void)state;
    char buf[64];
    IrShape s = {3, {1, 28, 28}};
    assert_int_equal(ir_shape_numel(s), 784);
    assert_string_equal(ir_shape_str(s, buf, sizeof buf), "[1, 28, 28]");
    assert_string_equal(ir_shape_str((IrShape){0, {0}}, buf, sizeof buf), "[]");
    assert_int_equal(ir_shape_numel((IrShape){0, {0}}), 1);
    IrShape big = {3, {INT64_MAX / 2, 3, 1}};
    assert_true(ir_shape_numel(big) == INT64_MAX);   /* saturates, never wraps */
    char tiny[4];
    ir_shape_str(s, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 3);
}

/* A two-node graph built by hand: input [4] -> dense(3). */
static IrGraph *small_graph(Arena *a)
{
    IrGraph *g = ir_graph_new(a);
    g->model = "m";
    g->train.batch = 8;
    IrNode *in = ir_node_new(g, IR_OP_INPUT, (SrcSpan){0});
    in->name = "x";
    in->out = ir_value_new(g, (IrShape){1, {4}}, (SrcSpan){0});
    in->out->producer = in;
    g->input = (IrInput){"x", {1, {4}}, {0}, in->out};
    IrNode *d = ir_node_new(g, IR_OP_DENSE, (SrcSpan){0});
    d->name = "dense1";
    d->in = arena_alloc(a, sizeof *d->in);
    d->in[0] = in->out;
    d->nin = 1;
    d->dense.units = 3;
    d->out = ir_value_new(g, (IrShape){1, {3}}, (SrcSpan){0});
    d->out->producer = d;
    ir_param_new(g, d, IR_PARAM_WEIGHT, (IrShape){2, {3, 4}});
    ir_param_new(g, d, IR_PARAM_BIAS, (IrShape){1, {3}});
    return g;
}

static void test_ir_builders(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    IrGraph *g = small_graph(&a);
    assert_int_equal(g->nodes.len, 2);
    assert_int_equal(g->nodes.items[1]->id, 1);
    assert_int_equal(g->values.items[1]->id, 1);
    const IrNode *d = g->nodes.items[1];
    assert_string_equal(d->weight->name, "dense1.weight");
    assert_string_equal(d->bias->name, "dense1.bias");
    assert_int_equal(d->weight->numel, 12);
    assert_true(d->weight->trainable);
    assert_int_equal(ir_graph_param_count(g), 15);
    IrParam *rm = ir_param_new(g, g->nodes.items[1], IR_PARAM_RUNNING_MEAN, (IrShape){1, {3}});
    assert_false(rm->trainable);
    assert_int_equal(ir_graph_param_count(g), 15);
    arena_free(&a);
}

static void test_ir_flops(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    IrGraph *g = small_graph(&a);
    assert_int_equal(ir_node_flops(g->nodes.items[0]), 0);
    assert_int_equal(ir_node_flops(g->nodes.items[1]), 2 * 4 * 3 + 3);
    arena_free(&a);

    NetcCompilation c;
    const char *src = "model m;\ninput x [2, 8, 8];\ntarget y classes(10);\n"
                      "l = x -> conv(4, 3, pad=1) -> relu -> maxpool(2) -> dense(10);\n"
                      "loss cross_entropy(l, y);\n"
                      "train { data idx(train_images=\"a\", train_labels=\"b\"); }\n";
    assert_true(netc_compilation_init(&c, "t.net", src, strlen(src)));
    assert_int_equal(netc_compile(&c), 0);
    const IrGraph *cg = c.graph;
    assert_int_equal(ir_node_flops(cg->nodes.items[1]), 2 * 2 * 9 * 4 * 64 + 4 * 64);   /* conv */
    assert_int_equal(ir_node_flops(cg->nodes.items[2]), 4 * 64);                        /* relu */
    assert_int_equal(ir_node_flops(cg->nodes.items[3]), 4 * 4 * 16);                    /* pool */
    assert_int_equal(ir_node_flops(cg->nodes.items[4]), 2 * 64 * 10 + 10);              /* dense */
    assert_int_equal(ir_graph_param_count(cg), 4 * 2 * 9 + 4 + 64 * 10 + 10);
    netc_compilation_free(&c);
}

static int verify(const IrGraph *g)
{
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    int n = ir_verify(g, &d);
    for (const Diag *dg = d.first; dg; dg = dg->next)
        assert_non_null(strstr(dg->msg, "internal:"));
    arena_free(&a);
    return n;
}

static void test_ir_verify_catches_breakage(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    IrGraph *g = small_graph(&a);
    assert_int_equal(verify(g), 0);

    g->nodes.items[1]->id = 7;                      /* id != index */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->id = 1;

    g->nodes.items[1]->in[0] = g->nodes.items[1]->out;   /* uses its own output */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->in[0] = g->nodes.items[0]->out;

    g->nodes.items[1]->out->shape.d[0] = 0;         /* empty shape */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->out->shape.d[0] = 3;

    g->nodes.items[1]->weight = NULL;               /* param not attached to its owner */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->weight = g->params.items[0];

    g->nodes.items[1]->name = "x";                  /* duplicate node name */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->name = "dense1";

    g->nodes.items[1]->out->shape.d[0] = INT64_C(1) << 40;   /* past IR_MAX_BYTES at batch 8 */
    assert_int_not_equal(verify(g), 0);
    g->nodes.items[1]->out->shape.d[0] = 3;
    assert_int_equal(verify(g), 0);
    arena_free(&a);
}

static char *print_to_string(const IrGraph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ir_print(g, f);
    fclose(f);
    return buf;
}

static char *compile_and_print(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char text[16384];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    NetcCompilation c;
    assert_true(netc_compilation_init(&c, path, text, n));
    assert_int_equal(netc_compile(&c), 0);
    char *out = print_to_string(c.graph);
    netc_compilation_free(&c);
    return out;
}

static void test_ir_print_is_stable(void **state)
{
    (void)state;
    char *a = compile_and_print("dsl-examples/lenet.net");
    if (!a)
        skip();
    char *b = compile_and_print("dsl-examples/lenet.net");
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "model lenet\ninput image [1, 28, 28]\n"));
    assert_non_null(strstr(a, "%1 conv1 = conv(%0) -> [6, 28, 28] filters=6 kernel=5 stride=1 pad=2"));
    assert_non_null(strstr(a, "param 0 conv1.weight [6, 1, 5, 5] init=kaiming(fan=in, slope=0) "
                              "fan_in=25 fan_out=150 l2=0.0005\n"));
    assert_non_null(strstr(a, "batchnorm1.running_var [6] init=ones fan_in=0 fan_out=0 state\n"));
    assert_non_null(strstr(a, "output probs = %"));
    assert_non_null(strstr(a, "optimizer sgd lr=0.05 momentum=0.9 nesterov=true\n"));
    assert_non_null(strstr(a, "schedule cosine warmup=0\n"));
    assert_non_null(strstr(a, "regularize l1=0 l2=0.0005 biases=false\n  mix none\n"));
    free(a);
    free(b);
}

static void test_ir_verify_accepts_examples(void **state)
{
    (void)state;
    static const char *files[] = {"dsl-examples/resnet.net", "dsl-examples/inception.net",
                                  "dsl-examples/multitask.net", "dsl-examples/regression.net"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *out = compile_and_print(files[i]);   /* netc_compile runs ir_verify */
        if (!out)
            skip();
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ir_op_tables),
        cmocka_unit_test(test_ir_numel_and_str),
        cmocka_unit_test(test_ir_builders),
        cmocka_unit_test(test_ir_flops),
        cmocka_unit_test(test_ir_verify_catches_breakage),
        cmocka_unit_test(test_ir_print_is_stable),
        cmocka_unit_test(test_ir_verify_accepts_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
