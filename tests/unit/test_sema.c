/* test_sema.c - the checker through netc_compile(): defaults, every init,
 * preprocess mode, optimizer, schedule, augmentation and mix with its
 * values, blocks and naming, and a broad set of errors (message fragment
 * and line:col).
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

#define HEAD "model m;\ninput x [1, 28, 28];\ntarget y classes(10);\n"   /* lines 1-3 */
#define LOSS "loss cross_entropy(l, y);\n"

static int compile(const char *src)
{
    netc_compilation_free(&comp);
    assert_true(netc_compilation_init(&comp, "t.net", src, strlen(src)));
    return netc_compile(&comp);
}

static const IrGraph *ok(const char *src)
{
    if (compile(src) != 0) {
        diag_print_all(&comp.diags, stderr, false);
        fail_msg("did not compile:\n%s", src);
    }
    return comp.graph;
}

static bool has_diag(DiagLevel level, int line, int col, const char *frag)
{
    for (const Diag *dg = comp.diags.first; dg; dg = dg->next) {
        if (level != DIAG_NOTE && dg->level == level && dg->sp.line == line &&
            dg->sp.col == col && strstr(dg->msg, frag))
            return true;
        for (const Diag *n = dg->notes; n && level == DIAG_NOTE; n = n->next)
            if (n->sp.line == line && n->sp.col == col && strstr(n->msg, frag))
                return true;
    }
    return false;
}

static void expect(const char *src, int line, int col, const char *frag)
{
    assert_int_not_equal(compile(src), 0);
    assert_null(comp.graph);
    if (!has_diag(DIAG_ERROR, line, col, frag)) {
        diag_print_all(&comp.diags, stderr, false);
        fail_msg("no error at %d:%d containing '%s'", line, col, frag);
    }
}

static void expect_note(int line, int col, const char *frag)
{
    if (!has_diag(DIAG_NOTE, line, col, frag)) {
        diag_print_all(&comp.diags, stderr, false);
        fail_msg("no note at %d:%d containing '%s'", line, col, frag);
    }
}

static const IrNode *node(const char *name)
{
    for (size_t i = 0; i < comp.graph->nodes.len; i++)
        if (!strcmp(comp.graph->nodes.items[i]->name, name))
            return comp.graph->nodes.items[i];
    fail_msg("no node %s", name);
    return NULL;
}

/* ---- defaults ---------------------------------------------------------- */

static void test_sema_defaults(void **state)
{
    (void)state;
    const IrGraph *g = ok(HEAD "l = x -> dense(10);\n" LOSS);
    const IrTrain *t = &g->train;
    assert_string_equal(g->model, "m");
    assert_int_equal(t->batch, 64);
    assert_int_equal(t->epochs, 10);
    assert_int_equal(t->seed, 1);
    assert_int_equal(t->opt.kind, IR_OPT_SGD);
    assert_true(t->opt.lr == 0.01 && t->opt.momentum == 0.9 && !t->opt.nesterov);
    assert_int_equal(t->sched.kind, IR_SCHED_CONSTANT);
    assert_true(t->reg.l1 == 0 && t->reg.l2 == 0 && !t->reg.biases);
    assert_int_equal(t->naug, 0);
    assert_int_equal(t->mix.kind, IR_MIX_NONE);
    assert_int_equal(t->data.kind, IR_DATA_FASHION_MNIST);
    assert_int_equal(g->pre.kind, IR_PRE_NONE);
    const IrNode *d = node("dense1");
    assert_int_equal(d->weight->init.kind, IR_INIT_KAIMING);
    assert_false(d->weight->init.fan_out);
    assert_int_equal(d->bias->init.kind, IR_INIT_ZEROS);
    assert_int_equal(g->outputs.len, 1);   /* the loss's prediction */
    assert_string_equal(g->outputs.items[0].name, "l");
    assert_int_equal(g->targets.items[0]->source, IR_TARGET_FROM_DATA);
}

static void test_sema_default_init_statements(void **state)
{
    (void)state;
    ok(HEAD "default init xavier;\ndefault bias_init constant(0.01);\n"
            "l = x -> dense(10) -> dense(10, init=he, bias_init=zeros);\n" LOSS);
    assert_int_equal(node("dense1")->weight->init.kind, IR_INIT_XAVIER);
    assert_true(node("dense1")->bias->init.kind == IR_INIT_CONSTANT &&
                node("dense1")->bias->init.value == 0.01);
    assert_int_equal(node("dense2")->weight->init.kind, IR_INIT_KAIMING);
    assert_int_equal(node("dense2")->bias->init.kind, IR_INIT_ZEROS);
    expect(HEAD "default l2 zeros;\nl = x -> dense(10);\n" LOSS, 4, 9, "unknown default 'l2'");
    expect(HEAD "default init xavier;\ndefault init he;\nl = x -> dense(10);\n" LOSS, 5, 1,
           "default init is given twice");
    expect_note(4, 1, "first given here");
}

/* ---- inits ------------------------------------------------------------- */

static void test_sema_every_init(void **state)
{
    (void)state;
    static const struct { const char *text; IrInitKind kind; double value; bool fan_out; double slope; } cases[] = {
        {"zeros", IR_INIT_ZEROS, 0, false, 0},
        {"ones", IR_INIT_ONES, 0, false, 0},
        {"constant(0.5)", IR_INIT_CONSTANT, 0.5, false, 0},
        {"normal(0.001)", IR_INIT_NORMAL, 0.001, false, 0},
        {"uniform(a=0.05)", IR_INIT_UNIFORM, 0.05, false, 0},
        {"xavier", IR_INIT_XAVIER, 0, false, 0},
        {"xavier_uniform", IR_INIT_XAVIER_UNIFORM, 0, false, 0},
        {"glorot", IR_INIT_GLOROT, 0, false, 0},
        {"kaiming", IR_INIT_KAIMING, 0, false, 0},
        {"msra", IR_INIT_KAIMING, 0, false, 0},
        {"he(fan=out)", IR_INIT_KAIMING, 0, true, 0},
        {"kaiming(slope=0.1)", IR_INIT_KAIMING, 0, false, 0.1},
        {"kaiming_uniform(fan=out, slope=0.2)", IR_INIT_KAIMING_UNIFORM, 0, true, 0.2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char src[512];
        snprintf(src, sizeof src, HEAD "l = x -> conv(4, 3, init=%s) -> dense(10);\n" LOSS,
                 cases[i].text);
        ok(src);
        const IrInit *in = &node("conv1")->weight->init;
        assert_int_equal(in->kind, cases[i].kind);
        assert_true(in->value == cases[i].value);
        assert_int_equal(in->fan_out, cases[i].fan_out);
        assert_true(in->slope == cases[i].slope);
    }
    expect(HEAD "l = x -> dense(10, init=kaimnig);\n" LOSS, 4, 25, "unknown init 'kaimnig'; did you mean 'kaiming'?");
    expect(HEAD "l = x -> dense(10, init=normal(0));\n" LOSS, 4, 32, "normal: std must be > 0, got 0");
    expect(HEAD "l = x -> dense(10, init=kaiming(fan=sideways));\n" LOSS, 4, 37, "fan must be one of in/out");
    expect(HEAD "l = x -> dense(10, init=xavier(2));\n" LOSS, 4, 32, "xavier takes no arguments");
    expect(HEAD "l = x -> dense(10, init=3);\n" LOSS, 4, 25, "expected an init");
}

/* ---- preprocess -------------------------------------------------------- */

static void test_sema_preprocess(void **state)
{
    (void)state;
    static const struct { const char *text; IrPreKind kind; } modes[] = {
        {"none", IR_PRE_NONE}, {"scale(2.0)", IR_PRE_SCALE}, {"mean_image", IR_PRE_MEAN_IMAGE},
        {"mean_channel", IR_PRE_MEAN_CHANNEL}, {"standardize", IR_PRE_STANDARDIZE},
        {"zca", IR_PRE_ZCA}, {"zca(eps=0.1)", IR_PRE_ZCA},
        {"standardize(mean=[0.286], std=[0.353])", IR_PRE_STANDARDIZE},
    };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        char src[512];
        snprintf(src, sizeof src, HEAD "preprocess %s;\nl = x -> dense(10);\n" LOSS, modes[i].text);
        const IrGraph *g = ok(src);
        assert_int_equal(g->pre.kind, modes[i].kind);
    }
    const IrGraph *g = comp.graph;
    assert_int_equal(g->pre.nmean, 1);
    assert_true(g->pre.mean[0] == 0.286 && g->pre.std[0] == 0.353);
    ok(HEAD "preprocess zca;\nl = x -> dense(10);\n" LOSS);
    assert_true(comp.graph->pre.eps == 0.01);
    ok(HEAD "preprocess scale(2.0);\nl = x -> dense(10);\n" LOSS);
    assert_true(comp.graph->pre.scale == 2.0);
    expect(HEAD "preprocess standardize(mean=[0.1, 0.2], std=[1, 1]);\nl = x -> dense(10);\n" LOSS,
           4, 29, "mean needs one value per input channel (1), got 2");
    expect(HEAD "preprocess standardize(mean=[0.1], std=[0]);\nl = x -> dense(10);\n" LOSS, 4, 41,
           "std must be > 0, got 0");
    expect(HEAD "preprocess whiten;\nl = x -> dense(10);\n" LOSS, 4, 12, "unknown preprocess 'whiten'");
    expect(HEAD "preprocess zca(eps=0);\nl = x -> dense(10);\n" LOSS, 4, 20, "zca: eps must be > 0");
    expect(HEAD "preprocess none;\npreprocess none;\nl = x -> dense(10);\n" LOSS, 5, 1,
           "preprocess is given twice");
}

/* ---- train section ----------------------------------------------------- */

static const IrTrain *train(const char *settings)
{
    char src[1024];
    snprintf(src, sizeof src, HEAD "l = x -> dense(10);\n" LOSS "train {\n%s\n}\n", settings);
    return &ok(src)->train;
}

static void test_sema_optimizers(void **state)
{
    (void)state;
    const IrTrain *t = train("optimizer sgd(lr=0.05, momentum=0.8, nesterov=true);");
    assert_true(t->opt.kind == IR_OPT_SGD && t->opt.lr == 0.05 && t->opt.momentum == 0.8 &&
                t->opt.nesterov);
    t = train("optimizer sgd(0.1);");
    assert_true(t->opt.lr == 0.1 && t->opt.momentum == 0);
    t = train("optimizer adam;");
    assert_true(t->opt.kind == IR_OPT_ADAM && t->opt.lr == 1e-3 && t->opt.beta1 == 0.9 &&
                t->opt.beta2 == 0.999 && t->opt.eps == 1e-8);
    t = train("optimizer adamw(lr=2e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05);");
    assert_true(t->opt.kind == IR_OPT_ADAMW && t->opt.lr == 2e-3 && t->opt.beta1 == 0.8 &&
                t->opt.beta2 == 0.99 && t->opt.eps == 1e-6 && t->opt.weight_decay == 0.05);
    t = train("optimizer adamw;");
    assert_true(t->opt.weight_decay == 0.01);
}

static void test_sema_schedules_and_ints(void **state)
{
    (void)state;
    const IrTrain *t = train("schedule step(4, 0.3);");
    assert_true(t->sched.kind == IR_SCHED_STEP && t->sched.every == 4 && t->sched.gamma == 0.3);
    t = train("schedule step(every=2);");
    assert_true(t->sched.gamma == 0.1);
    t = train("schedule cosine(warmup=1);\nepochs 3;");
    assert_true(t->sched.kind == IR_SCHED_COSINE && t->sched.warmup == 1 && t->epochs == 3);
    t = train("schedule constant;\nbatch 128;\nseed 9000000000;");
    assert_true(t->sched.kind == IR_SCHED_CONSTANT && t->batch == 128 && t->seed == 9000000000u);
}

static void test_sema_regularize(void **state)
{
    (void)state;
    const IrTrain *t = train("regularize l1(1e-5);\nregularize l2(5e-4, biases=true);");
    assert_true(t->reg.l1 == 1e-5 && t->reg.l2 == 5e-4 && t->reg.biases);
    ok(HEAD "l = x -> conv(4, 3) -> batchnorm -> dense(10, l2=1e-3) -> dense(10, l1=0);\n" LOSS
            "train { regularize l1(1e-5); regularize l2(5e-4); }\n");
    const IrNode *c = node("conv1"), *d1 = node("dense1"), *d2 = node("dense2"), *bn = node("batchnorm1");
    assert_true(c->weight->l1 == 1e-5 && c->weight->l2 == 5e-4);
    assert_true(c->bias->l1 == 0 && c->bias->l2 == 0);     /* biases: not without biases=true */
    assert_true(d1->weight->l2 == 1e-3 && d1->weight->l1 == 1e-5);   /* per key override */
    assert_true(d2->weight->l1 == 0 && d2->weight->l2 == 5e-4);
    assert_true(bn->gamma->l2 == 0 && bn->beta->l2 == 0);
    ok(HEAD "l = x -> conv(4, 3) -> batchnorm -> dense(10);\n" LOSS
            "train { regularize l2(1e-4, biases=true); }\n");
    assert_true(node("conv1")->bias->l2 == 1e-4 && node("batchnorm1")->beta->l2 == 1e-4);
    assert_true(node("batchnorm1")->gamma->l2 == 0);
}

static void test_sema_augment_order(void **state)
{
    (void)state;
    const IrTrain *t = train("augment noise(0.02), cutout(8), flip(vertical), rotate(10), flip, translate(2);");
    static const IrAugKind order[] = {IR_AUG_TRANSLATE, IR_AUG_FLIP, IR_AUG_FLIP, IR_AUG_ROTATE,
                                      IR_AUG_CUTOUT, IR_AUG_NOISE};
    assert_int_equal(t->naug, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(t->aug[i].kind, order[i]);
    assert_false(t->aug[1].vertical);
    assert_true(t->aug[2].vertical);
    assert_true(t->aug[0].amount == 2 && t->aug[3].amount == 10 && t->aug[4].amount == 8 &&
                t->aug[5].amount == 0.02);
    t = train("augment flip(horizontal);");
    assert_true(t->naug == 1 && !t->aug[0].vertical);
}

static void test_sema_mix_and_data(void **state)
{
    (void)state;
    const IrTrain *t = train("mix mixup(0.2);");
    assert_true(t->mix.kind == IR_MIX_MIXUP && t->mix.alpha == 0.2);
    t = train("mix cutmix(alpha=1.0);");
    assert_true(t->mix.kind == IR_MIX_CUTMIX && t->mix.alpha == 1.0);
    t = train("data fashion_mnist;");
    assert_int_equal(t->data.kind, IR_DATA_FASHION_MNIST);
    t = train("data idx(train_images=\"a\", train_labels=\"b\", test_images=\"c\", test_labels=\"d\");");
    assert_int_equal(t->data.kind, IR_DATA_IDX);
    assert_string_equal(t->data.train_images, "a");
    assert_string_equal(t->data.test_labels, "d");
}

static void test_sema_targets(void **state)
{
    (void)state;
    const IrGraph *g = ok(HEAD "target c classes(3) = map(y, [0, 2, 0, 2, 0, 1, 0, 1, 2, 1]);\n"
                               "l = x -> dense(10);\nk = x -> dense(3);\n" LOSS
                               "loss cross_entropy(k, c) weight 0.5;\n");
    const IrTarget *c = g->targets.items[1];
    assert_int_equal(c->source, IR_TARGET_FROM_MAP);
    assert_int_equal(c->map_base, 0);
    assert_int_equal(c->nmap, 10);
    assert_int_equal(c->map[1], 2);
    assert_true(g->losses.items[1]->loss.weight == 0.5);
    expect(HEAD "target c classes(3) = map(y, [0, 1]);\nl = x -> dense(10);\n" LOSS, 4, 30,
           "one label per class of 'y' (10), got 2");
    expect(HEAD "target c classes(3) = map(y, [0, 1, 2, 3, 0, 0, 0, 0, 0, 0]);\nl = x -> dense(10);\n" LOSS,
           4, 40, "labels of 'c' must be in [0, 3), got 3");
    expect(HEAD "target v values(2);\nl = x -> dense(10);\n" LOSS, 4, 8, "target 'v' has no source");
}

/* ---- blocks and naming ------------------------------------------------- */

static void test_sema_blocks_and_names(void **state)
{
    (void)state;
    ok(HEAD "block unit(f, act) {\n  out = in -> conv(f, 3, pad=same) -> act;\n}\n"
            "block stage(f) {\n  out = in -> unit(f, relu) -> unit(f=f, act=tanh);\n}\n"
            "l = x -> stage(4) -> stage(8) -> conv(2, 1) -> dense(10);\n" LOSS);
    const IrGraph *g = comp.graph;
    assert_int_equal(g->scopes.len, 6);
    assert_string_equal(g->scopes.items[1]->label, "unit1");
    assert_string_equal(g->scopes.items[1]->parent->label, "stage1");
    node("stage1.unit1.conv1");
    node("stage1.unit2.tanh1");
    node("stage2.unit1.relu1");
    assert_int_equal(node("stage2.unit2.conv1")->conv.filters, 8);
    node("conv1");
    assert_ptr_equal(node("stage2.unit2.conv1")->scope, g->scopes.items[5]);
    /* a default output named after a block's value is still a C identifier */
    ok(HEAD "block head() {\n  out = in -> dense(10);\n}\nloss cross_entropy(x -> head, y);\n");
    assert_string_equal(comp.graph->outputs.items[0].name, "head1_out");
}

static void test_sema_block_errors(void **state)
{
    (void)state;
    expect(HEAD "block a() {\n  out = in -> b;\n}\nblock b() {\n  out = in -> a;\n}\n"
                "l = x -> a -> dense(10);\n" LOSS, 8, 15, "block 'a' expands itself (recursion)");
    expect_note(10, 10, "inside block 'a', expanded here");
    expect(HEAD "block b(f) {\n  out = in -> conv(f, 3, pad=1);\n}\nl = x -> b(8, 2) -> dense(10);\n" LOSS,
           7, 10, "block 'b' takes 1 argument, got 2");
    expect(HEAD "block b(f) {\n  out = in -> conv(f, 3, pad=1);\n}\nl = x -> b -> dense(10);\n" LOSS,
           7, 10, "block 'b': missing argument 'f'");
    expect(HEAD "block b(f) {\n  out = in -> conv(f, 3, pad=1);\n}\nl = x -> b(g=2) -> dense(10);\n" LOSS,
           7, 12, "block 'b' has no parameter 'g'");
    expect(HEAD "block b() {\n  h = in -> relu;\n}\nl = x -> b -> dense(10);\n" LOSS, 4, 7,
           "block 'b' never binds 'out'");
    expect(HEAD "block b() {\n  out = x -> relu;\n}\nl = x -> b -> dense(10);\n" LOSS, 5, 9,
           "'x' is not visible inside block 'b'");
    expect_note(7, 10, "in block 'b' expanded here");
    expect(HEAD "block b(f) {\n  out = f -> relu;\n}\nl = x -> b(8) -> dense(10);\n" LOSS, 5, 9,
           "parameter 'f' is 8, not a tensor");
}

/* Exponential expansion is refused up front, nesting depth is capped. */
static void test_sema_expansion_limits(void **state)
{
    (void)state;
    char *src = malloc(1 << 16);
    assert_non_null(src);
    int n = snprintf(src, 1 << 16, HEAD "block b0() {\n  out = in -> relu;\n}\n");
    for (int i = 1; i <= 30; i++)
        n += snprintf(src + n, (size_t)(1 << 16) - (size_t)n,
                      "block b%d() {\n  out = in -> b%d -> b%d;\n}\n", i, i - 1, i - 1);
    snprintf(src + n, (size_t)(1 << 16) - (size_t)n, "l = x -> b30 -> dense(10);\n" LOSS);
    assert_int_not_equal(compile(src), 0);
    bool found = false;
    for (const Diag *dg = comp.diags.first; dg; dg = dg->next)
        found |= strstr(dg->msg, "would create about 1073741824 ops") != NULL;
    assert_true(found);
    n = snprintf(src, 1 << 16, HEAD "block b0() {\n  out = in -> relu;\n}\n");
    for (int i = 1; i <= 70; i++)
        n += snprintf(src + n, (size_t)(1 << 16) - (size_t)n,
                      "block b%d() {\n  out = in -> b%d;\n}\n", i, i - 1);
    snprintf(src + n, (size_t)(1 << 16) - (size_t)n, "l = x -> b70 -> dense(10);\n" LOSS);
    assert_int_not_equal(compile(src), 0);
    found = false;
    for (const Diag *dg = comp.diags.first; dg; dg = dg->next)
        found |= strstr(dg->msg, "nested more than 64 deep") != NULL;
    assert_true(found);
    free(src);
}

/* ---- errors ------------------------------------------------------------ */

static void test_sema_name_errors(void **state)
{
    (void)state;
    expect(HEAD "l = x -> convv(3, 3) -> dense(10);\n" LOSS, 4, 10, "unknown op 'convv'; did you mean 'conv'?");
    expect(HEAD "l = imag -> dense(10);\n" LOSS, 4, 5, "unknown name 'imag'");
    expect(HEAD "a = b -> relu;\nb = x -> relu;\nl = a -> dense(10);\n" LOSS, 4, 5,
           "'b' is used before its definition");
    expect(HEAD "l = x -> dense(10);\nl = x -> dense(10);\n" LOSS, 5, 1, "'l' is already bound");
    expect_note(4, 1, "was bound here");
    expect(HEAD "relu = x -> dense(10);\nl = relu;\n" LOSS, 4, 1, "'relu' is the name of an op");
    expect(HEAD "l = y -> dense(10);\n" LOSS, 4, 5, "'y' is a target");
    expect(HEAD "l = x -> x;\n" LOSS, 4, 10, "'x' is a tensor, not an op");
    expect(HEAD "l = x -> dense(10);\nloss cross_entropy(l, z);\n", 5, 23, "unknown target 'z'");
    expect(HEAD "l = x -> dense(10);\nloss hinge(l, y);\n", 5, 6, "unknown loss 'hinge'");
    expect(HEAD "l = x -> dense(10);\nloss dense(l, y);\n", 5, 6, "'dense' is not a loss");
    expect(HEAD "l = x -> dense(10);\n" LOSS "output p = l;\noutput p = l;\n", 7, 8,
           "output 'p' is defined twice");
}

static void test_sema_value_errors(void **state)
{
    (void)state;
    expect(HEAD "l = x -> conv(4, 3, strid=2) -> dense(10);\n" LOSS, 4, 21,
           "unknown key 'strid' for conv; did you mean 'stride'?");
    expect(HEAD "l = x -> conv(4, 3, stride=2, stride=1) -> dense(10);\n" LOSS, 4, 31,
           "conv: key 'stride' given twice");
    expect_note(4, 21, "first given here");
    expect(HEAD "l = x -> conv(4, kernel=3, 1) -> dense(10);\n" LOSS, 4, 28,
           "conv: positional argument after key=value arguments");
    expect(HEAD "l = x -> dropout(0.5, 1) -> dense(10);\n" LOSS, 4, 23, "dropout: too many arguments");
    expect(HEAD "l = x -> conv(2.5, 3) -> dense(10);\n" LOSS, 4, 15, "conv: filters must be an integer, got 2.5");
    expect(HEAD "l = x -> conv(x, 3) -> dense(10);\n" LOSS, 4, 15,
           "conv takes one input and already has one from '->'");
    expect(HEAD "l = x -> dense(\"ten\");\n" LOSS, 4, 16, "dense: units must be an integer, got a string");
    expect(HEAD "l = x -> dense(10, bias=1);\n" LOSS, 4, 25, "dense: bias must be true or false, got 1");
    expect(HEAD "l = x -> conv(4, 3, pad=full) -> dense(10);\n" LOSS, 4, 25,
           "conv: pad must be an integer or 'same', got 'full'");
    expect(HEAD "l = x -> conv(4) -> dense(10);\n" LOSS, 4, 10, "conv: missing 'kernel'");
    expect(HEAD "l = x -> leaky_relu(slope=1) -> dense(10);\n" LOSS, 4, 27, "slope must be in [0, 1)");
    expect(HEAD "l = x -> batchnorm(momentum=1) -> dense(10);\n" LOSS, 4, 29, "momentum must be in [0, 1)");
    expect(HEAD "l = x -> dense(10);\nloss cross_entropy(l, y, smoothing=1);\n", 5, 36,
           "smoothing must be in [0, 1)");
    expect(HEAD "l = x -> dense(10);\nloss cross_entropy(l, y) weight 0;\n", 5, 33,
           "loss weight must be > 0");
    expect(HEAD "l = dense(10);\n" LOSS, 4, 5, "dense needs an input");
}

static void test_sema_train_errors(void **state)
{
    (void)state;
#define TR(s) HEAD "l = x -> dense(10);\n" LOSS "train {\n" s "\n}\n"   /* settings on line 7 */
    expect(TR("optimizer sgd(lr=0);"), 7, 18, "sgd: lr must be > 0, got 0");
    expect(TR("optimizer sgd;"), 7, 11, "sgd: missing 'lr'");
    expect(TR("optimizer sgd(lr=0.1, nesterov=true);"), 7, 32, "nesterov=true needs momentum > 0");
    expect(TR("optimizer sgd(0.1, momentum=1);"), 7, 29, "momentum must be in [0, 1)");
    expect(TR("optimizer rmsprop;"), 7, 11, "unknown optimizer 'rmsprop'");
    expect(TR("schedule cosine(warmup=10);"), 7, 10, "warmup (10) must be less than epochs (10)");
    expect(TR("schedule step(every=0);"), 7, 21, "every must be >= 1");
    expect(TR("batch 0;"), 7, 7, "batch must be in [1, 2147483647], got 0");
    expect(TR("epochs 0;"), 7, 8, "epochs must be in [1");
    expect(TR("batch 8;\nbatch 9;"), 8, 1, "batch is given twice");
    expect(TR("regularize l2(1e-4);\nregularize l2(1e-3);"), 8, 1, "regularize l2 is given twice");
    expect(TR("regularize l3(1e-4);"), 7, 12, "unknown regularizer 'l3'");
    expect(TR("regularize l1(0);"), 7, 15, "l1: a must be > 0, got 0");
    expect(TR("augment flip, flip;"), 7, 15, "augmentation 'flip' is given twice");
    expect(TR("augment rotate(200);"), 7, 16, "rotate: deg must be in (0, 180], got 200");
    expect(TR("augment translate(28);"), 7, 9, "translate: 28 is too large");
    expect(TR("augment blur(1);"), 7, 9, "unknown augmentation 'blur'");
    expect(TR("mix mixup(0);"), 7, 11, "mixup: alpha must be > 0");
    expect(TR("mix mixup;"), 7, 5, "mixup: missing 'alpha'");
    expect(TR("data idx(train_images=\"a\");"), 7, 6, "idx: missing 'train_labels'");
    expect(TR("data idx(train_images=\"a\", train_labels=\"b\", test_images=\"c\");"), 7, 6,
           "give both test_images and test_labels");
    expect(TR("data idx(train_images=\"a\", train_labels=\"b\", targets=[\"t\"]);"), 7, 54,
           "targets needs 0 files");
    expect(TR("data mnist;"), 7, 6, "unknown data set 'mnist'");
    expect("model m;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS
           "train { mix cutmix(1.0); }\n", 6, 13, "cutmix needs an image input");
    expect("model m;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS
           "train { augment flip; }\n", 6, 17, "needs an image input");
    expect("model m;\ninput x [3, 32, 32];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS,
           2, 7, "fashion_mnist images are [1, 28, 28]");
    expect("model m;\ninput x [784];\ntarget y classes(5);\nl = x -> dense(5);\n" LOSS,
           3, 8, "fashion_mnist labels are classes(10)");
#undef TR
}

static void test_sema_statement_errors(void **state)
{
    (void)state;
    expect("model int;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS, 1, 7,
           "it is a C keyword");
    expect("model nrt_x;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS, 1, 7,
           "reserved for the runtime");
    expect("model m;\nmodel n;\ninput x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS,
           2, 1, "model is given twice");
    expect("input x [784];\ntarget y classes(10);\nl = x -> dense(10);\n" LOSS, 1, 1,
           "missing 'model' statement");
    expect("model m;\ntarget y classes(10);\n", 1, 1, "missing 'input' statement");
    expect("model m;\ninput x [784];\n", 1, 1, "missing 'target' statement");
    expect("model m;\ninput x [784];\ntarget y classes(10);\n", 1, 1, "no loss");
    expect("model m;\ninput x [28, 28];\ntarget y classes(10);\n", 2, 9, "input must be [D] or [C, H, W]");
    /* independent errors are all reported, without follow-ups */
    assert_int_not_equal(compile(HEAD "a = x -> convv(3);\nb = x -> dense(0);\nc = a -> relu;\n"
                                      "l = x -> dropout(2) -> dense(10);\n" LOSS), 0);
    assert_int_equal(comp.diags.nerrors, 3);
}

static void test_sema_warns_unused(void **state)
{
    (void)state;
    ok(HEAD "h = x -> dense(5);\nl = x -> dense(10);\n" LOSS);
    assert_int_equal(comp.diags.nwarnings, 1);
    assert_true(has_diag(DIAG_WARNING, 4, 1, "'h' is computed but never used"));
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
        cmocka_unit_test_teardown(test_sema_defaults, teardown),
        cmocka_unit_test_teardown(test_sema_default_init_statements, teardown),
        cmocka_unit_test_teardown(test_sema_every_init, teardown),
        cmocka_unit_test_teardown(test_sema_preprocess, teardown),
        cmocka_unit_test_teardown(test_sema_optimizers, teardown),
        cmocka_unit_test_teardown(test_sema_schedules_and_ints, teardown),
        cmocka_unit_test_teardown(test_sema_regularize, teardown),
        cmocka_unit_test_teardown(test_sema_augment_order, teardown),
        cmocka_unit_test_teardown(test_sema_mix_and_data, teardown),
        cmocka_unit_test_teardown(test_sema_targets, teardown),
        cmocka_unit_test_teardown(test_sema_blocks_and_names, teardown),
        cmocka_unit_test_teardown(test_sema_block_errors, teardown),
        cmocka_unit_test_teardown(test_sema_expansion_limits, teardown),
        cmocka_unit_test_teardown(test_sema_name_errors, teardown),
        cmocka_unit_test_teardown(test_sema_value_errors, teardown),
        cmocka_unit_test_teardown(test_sema_train_errors, teardown),
        cmocka_unit_test_teardown(test_sema_statement_errors, teardown),
        cmocka_unit_test_teardown(test_sema_warns_unused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
