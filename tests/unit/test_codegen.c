/* test_codegen.c - the kernel program (lower.c, autodiff.c) and the C
 * emitter (emit_c.c), through netc_compile() on small models.
 *
 * Checks what the golden files cannot show by themselves: the memory plan
 * keeps buffers in bounds and apart, gradients of fanned-out values are
 * overwritten once and accumulated after, values without trainable
 * ancestors get no gradient, the optimizer state is contiguous, the
 * structure hash follows the structure, every regularizer and wide
 * concat/add lowers, and emission is byte-for-byte deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit_c.h"
#include "frontend.h"
#include "kernel.h"

static NetcCompilation comp;
static unsigned fuse_off;       /* IrFuse bits lower_src turns off (--no-fuse) */

/* body: graph statements; the model has input x [1, 8, 8] and target y. */
static int lower_src(const char *body, const char *train, KProgram **kp)
{
    char src[4096];
    snprintf(src, sizeof src,
             "model m;\ninput x [1, 8, 8];\ntarget y classes(4);\n%s\n"
             "train { data idx(train_images=\"a\", train_labels=\"b\"); %s }\n",
             body, train ? train : "");
    netc_compilation_free(&comp);
    assert_true(netc_compilation_init(&comp, "t.net", src, strlen(src)));
    if (netc_compile(&comp)) {
        diag_print_all(&comp.diags, stderr, false);
        fail_msg("the test model does not compile");
    }
    *kp = NULL;
    comp.graph->fuse &= ~fuse_off;
    return lower_program(comp.graph, "t.net", &comp.diags, kp);
}

static const char *residual =
    "a = x -> conv(4, 3, pad=1) -> relu;\n"
    "b = a -> conv(4, 3, pad=1) -> batchnorm;\n"
    "c = relu(a + b) -> maxpool(2);\n"
    "d = concat(c, c -> conv(2, 1)) -> global_avgpool -> dense(4);\n"
    "loss cross_entropy(d, y);\n";

static const KBuf *buf(const KProgram *kp, int id)
{
    assert_true(id >= 0 && (size_t)id < kp->bufs.len);
    return &kp->bufs.items[id];
}

static int64_t floats(const KProgram *kp, const KBuf *b)
{
    return b->per_sample ? b->per_sample * kp->batch : b->fixed;
}

/* Lifetimes in one step list: first[b]..last[b], -1 when unused there. */
static void lifetimes(const KProgram *kp, const KStepList *list, int *first, int *last)
{
    for (size_t i = 0; i < kp->bufs.len; i++)
        first[i] = last[i] = -1;
    for (size_t i = 0; i < list->len; i++)
        for (int k = 0; k < list->items[i].nbuf; k++) {
            int id = list->items[i].buf[k];
            if (id < 0)
                continue;
            if (first[id] < 0)
                first[id] = (int)i;
            last[id] = (int)i;
        }
}

static void test_codegen_buffers_in_bounds_and_disjoint(void **state)
{
    (void)state;
    KProgram *kp;
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    size_t nb = kp->bufs.len;
    int *f1 = calloc(nb, sizeof(int)), *l1 = calloc(nb, sizeof(int));
    int *f2 = calloc(nb, sizeof(int)), *l2 = calloc(nb, sizeof(int));
    assert_true(f1 && l1 && f2 && l2);
    lifetimes(kp, &kp->train, f1, l1);
    lifetimes(kp, &kp->predict, f2, l2);
    int shared = 0;
    for (size_t i = 0; i < nb; i++) {
        const KBuf *a = &kp->bufs.items[i];
        int64_t top = a->space == KS_PARAMS ? kp->block_floats : kp->arena_floats;
        assert_true(a->off >= 0 && a->off + floats(kp, a) <= top);
        assert_int_equal(a->off % 16, 0);
        if (a->space != KS_ARENA)
            continue;
        /* an arena buffer belongs to one list */
        assert_false(f1[i] >= 0 && f2[i] >= 0);
        for (size_t j = i + 1; j < nb; j++) {
            const KBuf *b = &kp->bufs.items[j];
            if (b->space != KS_ARENA)
                continue;
            bool apart = a->off + floats(kp, a) <= b->off || b->off + floats(kp, b) <= a->off;
            bool live1 = f1[i] >= 0 && f1[j] >= 0 && f1[i] <= l1[j] && f1[j] <= l1[i];
            bool live2 = f2[i] >= 0 && f2[j] >= 0 && f2[i] <= l2[j] && f2[j] <= l2[i];
            if ((live1 || live2) && !apart)
                fail_msg("%s and %s are live together and overlap", a->name, b->name);
            shared += !apart;
        }
    }
    /* the plan does reuse memory (gradients die early, predict reuses train's) */
    assert_true(shared > 0);
    free(f1), free(l1), free(f2), free(l2);
}

/* The gradient of `a` (used by the second conv and by the add) and of `c`
 * (used twice by the concat branch) is overwritten first, then added to. */
static void test_codegen_fanout_accumulates(void **state)
{
    (void)state;
    KProgram *kp;
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    const char *fanned[] = {"a.grad", "c.grad"};
    for (size_t k = 0; k < 2; k++) {
        int writes = 0, firsts = 0;
        for (size_t i = 0; i < kp->train.len; i++) {
            const KStep *s = &kp->train.items[i];
            for (int b = 0; b < s->nbuf; b++) {
                if (s->buf[b] < 0 || strcmp(buf(kp, s->buf[b])->name, fanned[k]))
                    continue;
                bool is_dx = (s->op == K_CONV_BWD && b == 3) || (s->op == K_GRAD_COPY && b == 1)
                          || (s->op == K_ACT_BWD && b == 3) || (s->op == K_MAXPOOL_BWD && b == 2)
                          || (s->op == K_CONCAT_BWD && b >= 1) || (s->op == K_BN_BWD && b == 5);
                if (!is_dx)
                    continue;
                bool acc = s->op == K_CONCAT_BWD ? (s->accmask >> (b - 1)) & 1 : s->acc;
                writes++;
                firsts += !acc;
                if (writes == 1)
                    assert_false(acc);
            }
        }
        if (writes < 2 || firsts != 1)
            fail_msg("%s: %d writes, %d overwrites", fanned[k], writes, firsts);
    }
}

/* The input depends on no parameter: the first conv computes no dx. */
static void test_codegen_no_gradient_for_input(void **state)
{
    (void)state;
    KProgram *kp;
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    for (size_t i = 0; i < kp->bufs.len; i++)
        assert_string_not_equal(kp->bufs.items[i].name, "x.grad");
    const KStep *first_conv_bwd = NULL;
    for (size_t i = 0; i < kp->train.len; i++)
        if (kp->train.items[i].op == K_CONV_BWD)
            first_conv_bwd = &kp->train.items[i];    /* the last one is conv1's */
    assert_non_null(first_conv_bwd);
    assert_int_equal(first_conv_bwd->buf[3], -1);
}

/* adam: parameters, gradients and both moments are contiguous runs in the
 * same order, so the single update step covers exactly the trainables. */
static void test_codegen_optimizer_state_contiguous(void **state)
{
    (void)state;
    KProgram *kp;
    assert_int_equal(lower_src(residual, "optimizer adam(lr=0.001);", &kp), 0);
    const KStep *upd = &kp->train.items[kp->train.len - 1];
    assert_int_equal(upd->op, K_OPT_ADAM);
    int64_t total = 0, prev[4] = {-1, -1, -1, -1};
    for (size_t i = 0; i < kp->params.len; i++) {
        const KParam *q = &kp->params.items[i];
        if (q->grad < 0) {
            assert_false(q->p->trainable);
            continue;
        }
        int ids[4] = {q->buf, q->grad, q->state[0], q->state[1]};
        for (int k = 0; k < 4; k++) {
            const KBuf *b = buf(kp, ids[k]);
            const KBuf *run = buf(kp, upd->buf[k]);
            assert_true(b->off >= run->off && b->off + b->fixed <= run->off + run->fixed);
            assert_true(b->off > prev[k]);
            prev[k] = b->off;
        }
        total += q->p->numel;
    }
    assert_true(upd->i[0] >= total);
}

static uint64_t hash_of(const char *body)
{
    KProgram *kp;
    assert_int_equal(lower_src(body, NULL, &kp), 0);
    return kp->structure_hash;
}

static void test_codegen_structure_hash(void **state)
{
    (void)state;
    const char *a = "z = x -> dense(16) -> relu -> dense(4);\nloss cross_entropy(z, y);\n";
    const char *b = "z = x -> dense(17) -> relu -> dense(4);\nloss cross_entropy(z, y);\n";
    const char *c = "z = x -> dense(16) -> tanh -> dense(4);\nloss cross_entropy(z, y);\n";
    uint64_t ha = hash_of(a);
    assert_true(ha == hash_of(a));
    assert_true(ha != hash_of(b));
    assert_true(ha != hash_of(c));
}

static int count_op(const KStepList *list, KOp op)
{
    int k = 0;
    for (size_t i = 0; i < list->len; i++)
        k += list->items[i].op == op;
    return k;
}

/* Every regularizer lowers: its random step in training, the plain op (or
 * nothing) at inference. */
static void expect_lowered(const char *body, const char *train, KOp train_op, KOp absent_in_predict)
{
    KProgram *kp;
    if (lower_src(body, train, &kp) != 0) {
        diag_print_all(&comp.diags, stderr, false);
        fail_msg("'%s' does not lower", body);
    }
    assert_true(count_op(&kp->train, train_op) >= 1);
    assert_int_equal(count_op(&kp->predict, absent_in_predict), 0);
}

static void test_codegen_regularizers_lower(void **state)
{
    (void)state;
    expect_lowered("z = x -> gaussian_noise(0.1) -> dense(4);\nloss cross_entropy(z, y);", NULL,
                   K_NOISE_FWD, K_NOISE_FWD);
    expect_lowered("z = x -> dense(4, dropconnect=0.5);\nloss cross_entropy(z, y);", NULL,
                   K_DENSE_DC_BWD, K_DENSE_DC_FWD);
    expect_lowered("z = x -> conv(2, 3, dropconnect=0.5) -> dense(4);\nloss cross_entropy(z, y);",
                   NULL, K_DROPCONNECT_GRAD, K_DROPCONNECT_MASK);
    expect_lowered("b = x -> conv(1, 3, pad=1) -> drop_path(0.2);\nz = (x + b) -> dense(4);\n"
                   "loss cross_entropy(z, y);", NULL, K_DROP_PATH_BWD, K_DROP_PATH_FWD);
    expect_lowered("z = x -> fractional_maxpool(1.5) -> dense(4);\nloss cross_entropy(z, y);",
                   NULL, K_FRACPOOL_FWD, K_MAXPOOL_FWD);
    expect_lowered("z = x -> dense(4);\nloss cross_entropy(z, y);", "mix mixup(0.2);", K_MIX, K_MIX);
    expect_lowered("z = x -> dense(4);\nloss cross_entropy(z, y);", "mix cutmix(1.0);", K_MIX, K_MIX);
}

/* The mix step covers the whole input: mixup every value of a sample (as
 * one row of C*H*W), cutmix the image as C x H x W. */
static void test_codegen_mix_whole_input(void **state)
{
    (void)state;
    const char *kinds[2] = {"mix mixup(0.2);", "mix cutmix(1.0);"};
    for (int k = 0; k < 2; k++) {
        KProgram *kp;
        assert_int_equal(lower_src("z = x -> dense(4);\nloss cross_entropy(z, y);", kinds[k], &kp), 0);
        const KStep *mix = NULL;
        for (size_t i = 0; i < kp->train.len; i++)
            if (kp->train.items[i].op == K_MIX)
                mix = &kp->train.items[i];
        assert_non_null(mix);
        assert_int_equal(mix->i[1] * mix->i[2] * mix->i[3], 64);     /* x is [1, 8, 8] */
        assert_int_equal(mix->i[1], k == 0 ? 64 : 1);
    }
}

/* concat and add of more than K_MAX_BUFS - 1 tensors: several steps, the
 * concat's groups covering the output channels once, in order. */
static void test_codegen_wide_concat_and_add(void **state)
{
    (void)state;
    KProgram *kp;
    char body[2048] = "z = concat(x";
    for (int k = 0; k < 29; k++)
        strcat(body, ", x");
    strcat(body, ") -> dense(4);\nw = x");
    for (int k = 0; k < 20; k++)
        strcat(body, " + x");
    strcat(body, ";\nloss cross_entropy(z, y);\nloss cross_entropy(w -> dense(4), y);");
    assert_int_equal(lower_src(body, NULL, &kp), 0);
    assert_int_equal(count_op(&kp->train, K_CONCAT_FWD), 3);     /* 13 + 13 + 4 */
    assert_int_equal(count_op(&kp->train, K_ADD_FWD), 2);        /* 15, then y + 6 */
    int64_t next = 0;
    for (size_t i = 0; i < kp->train.len; i++) {
        const KStep *s = &kp->train.items[i];
        if (s->op != K_CONCAT_FWD)
            continue;
        assert_int_equal(s->i[1], next);
        assert_int_equal(s->i[2], 30);
        for (int k = 0; k < s->nbuf - 1; k++)
            next += s->i[3 + k];
    }
    assert_int_equal(next, 30);
}

static char *emit_to_memory(const KProgram *kp, size_t *len)
{
    char *cbuf = NULL, *hbuf = NULL;
    size_t clen = 0, hlen = 0;
    FILE *c = open_memstream(&cbuf, &clen), *h = open_memstream(&hbuf, &hlen);
    assert_true(c && h);
    assert_true(emitc_print(kp, c, h, "m.h"));
    fclose(c);
    fclose(h);
    char *all = malloc(clen + hlen + 1);
    assert_non_null(all);
    memcpy(all, hbuf, hlen);
    memcpy(all + hlen, cbuf, clen + 1);
    free(cbuf);
    free(hbuf);
    *len = clen + hlen;
    return all;
}

static void test_codegen_emit_deterministic(void **state)
{
    (void)state;
    KProgram *kp;
    size_t l1, l2;
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    char *a = emit_to_memory(kp, &l1);
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    char *b = emit_to_memory(kp, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    /* readable: step functions named after nodes, located by source line */
    assert_non_null(strstr(a, "static void t"));
    assert_non_null(strstr(a, "_conv1_relu1_forward(NrtModel *m, int n)"));
    assert_non_null(strstr(a, "/* t.net:4: conv(4, 3, pad=1) */"));
    assert_null(strstr(a, "/tmp"));
    free(a);
    free(b);
}

/* conv -> relu and batchnorm -> relu become one step each; a relu whose
 * input has another use (c feeds the maxpool and the add) stays separate. */
static void test_codegen_fuses_relu(void **state)
{
    (void)state;
    KProgram *kp;
    const char *body = "a = x -> conv(4, 3, pad=1) -> relu;\n"
                       "b = a -> conv(4, 3, pad=1) -> batchnorm -> relu;\n"
                       "c = b -> dense(8);\n"
                       "d = relu(c) + c;\n"
                       "loss cross_entropy(d -> dense(4), y);\n";
    assert_int_equal(lower_src(body, NULL, &kp), 0);
    int conv_relu = 0, bn_relu = 0, relu_fwd = 0, relu_bwd = 0, bn_bwd_masked = 0;
    for (size_t i = 0; i < kp->train.len; i++) {
        const KStep *s = &kp->train.items[i];
        conv_relu += s->op == K_CONV_FWD && s->i[7];
        bn_relu += s->op == K_BN_FWD_TRAIN && s->i[2];
        relu_fwd += s->op == K_ACT_FWD;
        relu_bwd += s->op == K_ACT_BWD;
        bn_bwd_masked += s->op == K_BN_BWD && s->buf[8] >= 0;
    }
    assert_int_equal(conv_relu, 1);
    assert_int_equal(bn_relu, 1);
    assert_int_equal(bn_bwd_masked, 1);
    assert_int_equal(relu_fwd, 1);      /* relu(c): c is used twice */
    assert_int_equal(relu_bwd, 2);      /* that one and conv1's */
}

/* Ops of list with op, and with ints i[k] == v (k < 0: any). */
static int count_with(const KStepList *list, KOp op, int k, int64_t v)
{
    int c = 0;
    for (size_t i = 0; i < list->len; i++)
        c += list->items[i].op == op && (k < 0 || list->items[i].i[k] == v);
    return c;
}

/* The three passes and their switches: batchnorm folded into conv (by
 * the conv step itself) and dense (a fold step) at inference (not in
 * training); relu(p + q) one loop in both lists;
 * p + q's gradient: one copy, the other input takes dy's buffer; r + r
 * copies twice (the second adds to the first). --no-fuse: none of it. */
static void test_codegen_fusion_passes(void **state)
{
    (void)state;
    const char *body = "p = x -> conv(4, 3, pad=1) -> batchnorm -> relu;\n"
                       "q = p -> conv(4, 3, pad=1) -> batchnorm;\n"
                       "e = relu(p + q) -> flatten -> dense(8) -> batchnorm;\n"
                       "f = e + e;\n"
                       "loss cross_entropy(f -> dense(4), y);\n";
    KProgram *kp;
    for (int off = 0; off < 2; off++) {
        fuse_off = off ? IR_FUSE_ALL : 0;
        assert_int_equal(lower_src(body, NULL, &kp), 0);
        assert_int_equal(count_with(&kp->predict, K_BN_FOLD, -1, 0), off ? 0 : 1);   /* dense */
        int conv_bn = 0;   /* the convs fold their batchnorms themselves (nrt_conv_forward_bn) */
        for (size_t i = 0; i < kp->predict.len; i++)
            conv_bn += kp->predict.items[i].op == K_CONV_FWD && kp->predict.items[i].nbuf == 8;
        assert_int_equal(conv_bn, off ? 0 : 2);
        assert_int_equal(count_with(&kp->predict, K_BN_FWD_INFER, -1, 0), off ? 3 : 0);
        assert_int_equal(count_with(&kp->train, K_BN_FOLD, -1, 0), 0);
        assert_int_equal(count_with(&kp->train, K_BN_FWD_TRAIN, -1, 0), 3);
        for (int list = 0; list < 2; list++) {
            const KStepList *l = list ? &kp->train : &kp->predict;
            assert_int_equal(count_with(l, K_ADD_FWD, 1, 1 + KACT_RELU), off ? 0 : 1);
            assert_int_equal(count_with(l, K_ACT_FWD, -1, 0), off ? 2 : 0);
        }
        assert_int_equal(count_with(&kp->train, K_GRAD_COPY, -1, 0), off ? 5 : 3);   /* + flatten */
        assert_int_equal(count_with(&kp->train, K_CONV_FWD, 7, 1), 0);
        assert_int_equal(count_with(&kp->predict, K_CONV_FWD, 7, 1), off ? 0 : 1);   /* p's relu */
    }
    fuse_off = IR_FUSE_BN_FOLD;
    assert_int_equal(lower_src(body, NULL, &kp), 0);
    assert_int_equal(count_with(&kp->predict, K_BN_FOLD, -1, 0), 0);
    assert_int_equal(count_with(&kp->predict, K_ADD_FWD, 1, 1 + KACT_RELU), 1);
    fuse_off = 0;
    unsigned bits;
    assert_true(ir_fuse_parse(NULL, &bits) && bits == IR_FUSE_ALL);
    assert_true(ir_fuse_parse("bnfold,epilogue", &bits) && bits == (IR_FUSE_BN_FOLD | IR_FUSE_EPILOGUE));
    assert_true(ir_fuse_parse("elementwise,", &bits) && bits == IR_FUSE_ELEMENTWISE);
    assert_false(ir_fuse_parse("bnfold,,elementwise", &bits));
    assert_false(ir_fuse_parse("bn", &bits));
}

/* emitc_files: both files or an IO error naming the path, never a
 * half-written pair or a temporary left behind. */
static void test_codegen_files(void **state)
{
    (void)state;
    KProgram *kp;
    char err[512], dir[] = "/tmp/netc-codegen-XXXXXX", c[256], h[256], tmp[300];
    assert_int_equal(lower_src(residual, NULL, &kp), 0);
    assert_non_null(mkdtemp(dir));
    snprintf(c, sizeof c, "%s/m.c", dir);
    emitc_header_path(c, h, sizeof h);
    assert_int_equal(emitc_files(comp.graph, "some/dir/t.net", c, h, &comp.diags, err, sizeof err),
                     EMITC_OK);
    FILE *f = fopen(c, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "from t.net;"));     /* the basename only */
    assert_null(strstr(line, "some/dir"));
    remove(c);
    remove(h);
    snprintf(c, sizeof c, "%s/missing/m.c", dir);
    emitc_header_path(c, h, sizeof h);
    assert_int_equal(emitc_files(comp.graph, "t.net", c, h, &comp.diags, err, sizeof err),
                     EMITC_ERR_IO);
    assert_non_null(strstr(err, "missing/m.c"));
    snprintf(tmp, sizeof tmp, "%s.tmp", c);
    assert_null(fopen(tmp, "r"));
    assert_int_equal(rmdir(dir), 0);                  /* nothing left inside */
}

static void test_codegen_header_path(void **state)
{
    (void)state;
    char buf[256];
    emitc_header_path("out/lenet.c", buf, sizeof buf);
    assert_string_equal(buf, "out/lenet.h");
    emitc_header_path("dir.x/model", buf, sizeof buf);
    assert_string_equal(buf, "dir.x/model.h");
}

static int teardown(void **state)
{
    (void)state;
    netc_compilation_free(&comp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codegen_buffers_in_bounds_and_disjoint),
        cmocka_unit_test(test_codegen_fanout_accumulates),
        cmocka_unit_test(test_codegen_no_gradient_for_input),
        cmocka_unit_test(test_codegen_optimizer_state_contiguous),
        cmocka_unit_test(test_codegen_structure_hash),
        cmocka_unit_test(test_codegen_regularizers_lower),
        cmocka_unit_test(test_codegen_wide_concat_and_add),
        cmocka_unit_test(test_codegen_mix_whole_input),
        cmocka_unit_test(test_codegen_emit_deterministic),
        cmocka_unit_test(test_codegen_fuses_relu),
        cmocka_unit_test(test_codegen_fusion_passes),
        cmocka_unit_test(test_codegen_files),
        cmocka_unit_test(test_codegen_header_path),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
