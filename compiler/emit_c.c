/* emit_c.c - prints the kernel program as C (MODEL.c + MODEL.h).
 *
 * Input: a KProgram from lower_program. Output: a self-contained C11 file
 * that includes only standard headers, netrt.h and its own header, and
 * links against libnetrt only. Layout of MODEL.c, top to bottom: the model
 * struct and the two memory spaces (P(off): parameter block, A(off):
 * activation arena, both in floats); the counter-based RNG; one static
 * function per kernel step, named after its graph nodes and preceded by
 * the source line it came from; the step lists (predict, train_step); the
 * parameter table; create/free/fit_preprocess/save/load; the NrtModelInfo.
 * Deterministic: everything is printed in program order, floats with
 * round-trip precision, and no host path or time ever appears.
 */
#include "emit_c.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kernel_info.h"
#include "netc_config.h"

typedef struct Emit {
    const KProgram *kp;
    const IrGraph *g;
    FILE *f;
    char M[128];            /* model name upper-cased: macro prefix */
    const char *m;          /* model name: function prefix */
    bool failed;            /* out of memory: the output is incomplete */
} Emit;

__attribute__((format(printf, 2, 3)))
static void out(Emit *E, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->f, fmt, ap);
    va_end(ap);
}

/* A float constant that reads back to the same float: "0.100000001f". */
static const char *flt(char *buf, double v)
{
    snprintf(buf, 40, "%.9g", (double)(float)v);
    if (!strpbrk(buf, ".eni"))
        strcat(buf, ".0");
    strcat(buf, "f");
    return buf;
}

/* A double constant, round-trip exact, in the fewest digits that are. */
static const char *dbl(char *buf, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eni"))
        strcat(buf, ".0");
    return buf;
}

static void out_cstring(Emit *E, const char *s)
{
    if (!s) {
        out(E, "NULL");
        return;
    }
    out(E, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out(E, "\\%c", c);
        else if (c < 32 || c >= 127)
            out(E, "\\%03o", c);
        else
            out(E, "%c", c);
    }
    out(E, "\"");
}

/* The source text of a span (its first line), safe inside a comment. */
static void out_span_text(Emit *E, SrcSpan sp)
{
    if (!span_valid(sp) || !sp.src->text)
        return;
    const char *t = sp.src->text, *end = t + sp.src->len;
    for (int line = 1; line < sp.line && t < end; t++)
        if (*t == '\n')
            line++;
    const char *p = t + (sp.col - 1);
    int len = 0, max = sp.end_line == sp.line ? sp.end_col - sp.col : 1 << 30;
    out(E, ": ");
    for (char prev = 0; p + len < end && p[len] != '\n' && len < max && len < 72; len++) {
        char c = p[len];
        if (c == '/' && prev == '*')
            out(E, " ");
        out(E, "%c", isprint((unsigned char)c) ? c : ' ');
        prev = c;
    }
    if (len == 72 || (sp.end_line > sp.line))
        out(E, " ...");
}

/* ---- buffers ------------------------------------------------------------- */

static const KBuf *kbuf(const Emit *E, int id)
{
    return &E->kp->bufs.items[id];
}

/* "    const float *x = A(1234);   relu1" as one declaration line. */
static void decl(Emit *E, bool writes, const char *var, int id)
{
    const char *q = writes ? "" : "const ";
    if (id < 0) {
        out(E, "    %sfloat *%s = NULL;\n", q, var);
        return;
    }
    const KBuf *b = kbuf(E, id);
    out(E, "    %sfloat *%s = %c(%" PRId64 ");    /* %s */\n", q, var,
        b->space == KS_PARAMS ? 'P' : 'A', b->off, b->name);
}

/* ---- step bodies --------------------------------------------------------- */

/* zca: y = (x - mean) W^T, the product as a dense layer without bias. */
static void body_zca(Emit *E, const KStep *s)
{
    int64_t d = ir_shape_numel(E->g->input.shape);
    if (s->i[0])
        out(E, "    const float *x = m->x;    /* the caller's raw input */\n");
    else
        decl(E, false, "x", s->buf[0]);
    decl(E, true, "y", s->buf[0]);
    decl(E, false, "mean", s->buf[1]);
    decl(E, false, "zca", s->buf[2]);
    decl(E, true, "xc", s->buf[3]);
    out(E, "    enum { D = %" PRId64 " };\n", d);
    out(E, "    for (int64_t k = 0; k < (int64_t)n * D; k++)\n"
           "        xc[k] = x[k] - mean[k %% D];\n");
    out(E, "    nrt_dense_forward(n, D, D, xc, zca, NULL, NRT_ACT_NONE, y, &m->ws);\n");
}

static void body_preprocess(Emit *E, const KStep *s)
{
    if (E->g->pre.kind == IR_PRE_ZCA) {
        body_zca(E, s);
        return;
    }
    const KProgram *kp = E->kp;
    char b1[40];
    int64_t d = ir_shape_numel(E->g->input.shape);
    int64_t c = kp->pre_channels;
    if (s->i[0])
        out(E, "    const float *x = m->x;    /* the caller's raw input */\n");
    else
        decl(E, false, "x", s->buf[0]);
    decl(E, true, "y", s->buf[0]);
    if (s->buf[1] >= 0)
        decl(E, false, "mean", s->buf[1]);
    if (s->buf[2] >= 0)
        decl(E, false, "sd", s->buf[2]);
    const char *expr = "x[k]";
    char ebuf[96];
    switch (E->g->pre.kind) {
    case IR_PRE_SCALE:
        snprintf(ebuf, sizeof ebuf, "x[k] * %s", flt(b1, E->g->pre.scale));
        expr = ebuf;
        break;
    case IR_PRE_MEAN_IMAGE:
    case IR_PRE_MEAN_CHANNEL: expr = "x[k] - mean[c]"; break;
    case IR_PRE_STANDARDIZE: expr = "(x[k] - mean[c]) / sd[c]"; break;
    default: break;
    }
    out(E, "    enum { C = %" PRId64 ", S = %" PRId64 " };    /* statistics channels, values each */\n",
        c, d / c);
    out(E, "    for (int64_t i = 0; i < n; i++)\n"
           "        for (int64_t c = 0; c < C; c++)\n"
           "            for (int64_t j = 0; j < S; j++) {\n"
           "                int64_t k = (i * C + c) * S + j;\n"
           "                y[k] = %s;\n"
           "            }\n", expr);
    if (E->g->pre.kind == IR_PRE_NONE || E->g->pre.kind == IR_PRE_SCALE)
        out(E, "    (void)C;\n");
}

static void out_augment_spec(Emit *E)
{
    const IrTrain *t = &E->g->train;
    char b1[40];
    out(E, "    static const NrtAugmentSpec spec = {");
    const char *sep = "";
    for (int i = 0; i < t->naug; i++) {
        const IrAugment *a = &t->aug[i];
        switch (a->kind) {
        case IR_AUG_TRANSLATE: out(E, "%s.translate = %" PRId64, sep, (int64_t)a->amount); break;
        case IR_AUG_FLIP: out(E, "%s.%s = true", sep, a->vertical ? "flip_vertical" : "flip"); break;
        case IR_AUG_ROTATE: out(E, "%s.rotate = %s", sep, dbl(b1, a->amount)); break;
        case IR_AUG_CUTOUT: out(E, "%s.cutout = %" PRId64, sep, (int64_t)a->amount); break;
        case IR_AUG_NOISE: out(E, "%s.noise = %s", sep, dbl(b1, a->amount)); break;
        }
        sep = ", ";
    }
    out(E, "};\n");
}

/* An input [D] (noise is its only augmentation) is one channel of 1 x D. */
static void out_image_dims(Emit *E)
{
    const IrShape *sh = &E->g->input.shape;
    bool image = sh->rank == 3;
    out(E, "    enum { C = %" PRId64 ", H = %" PRId64 ", W = %" PRId64 " };\n",
        image ? sh->d[0] : 1, image ? sh->d[1] : 1, image ? sh->d[2] : sh->d[0]);
}

static void body_augment(Emit *E, const KStep *s)
{
    out_augment_spec(E);
    out_image_dims(E);
    decl(E, true, "x", s->buf[0]);
    if (s->op == K_AUGMENT_GEO) {
        decl(E, true, "scratch", s->buf[1]);
        out(E, "    memcpy(x, m->x, (size_t)n * (C * H * W) * sizeof *x);\n");
        out(E, "    nrt_augment_geometric(x, n, C, H, W, &spec, m->seed, m->step, 0, scratch);\n");
    } else {
        out(E, "    nrt_augment_post(x, n, C, H, W, &spec, m->seed, m->step, 0);\n");
    }
}

/* Per-sample dropconnect masks from (seed, NRT_RNG_DROPCONNECT, step,
 * sample i, element STREAM << 32 | j*IN + c), kept as bits for the backward. */
static void body_dense_dc(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { IN = %" PRId64 ", OUT = %" PRId64 " };\n", s->i[0], s->i[1]);
    out(E, "    const double p = %s;    /* dropconnect */\n", dbl(b1, s->f[0]));
    if (s->op == K_DENSE_DC_FWD) {
        out(E, "    const uint64_t stream = (uint64_t)%" PRId64 " << 32;    /* node id */\n", s->i[3]);
        decl(E, false, "x", s->buf[0]);
        decl(E, false, "w", s->buf[1]);
        decl(E, false, "b", s->buf[2]);
        decl(E, true, "y", s->buf[3]);
        decl(E, true, "bits", s->buf[4]);
        out(E, "    nrt_dropconnect_dense_forward(n, IN, OUT, x, w, b, %s, p, m->seed, m->step, stream,\n"
               "                                  (uint32_t *)bits, y);\n", s->i[2] ? "NRT_ACT_RELU" : "NRT_ACT_NONE");
        return;
    }
    decl(E, false, "bits", s->buf[6]);
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "x", s->buf[1]);
    if (s->buf[3] >= 0) {
        decl(E, false, "w", s->buf[2]);
        decl(E, true, "dx", s->buf[3]);
    }
    decl(E, true, "dw", s->buf[4]);
    if (s->buf[5] >= 0)
        decl(E, true, "db", s->buf[5]);
    out(E, "    nrt_dropconnect_dense_backward_weights(n, IN, OUT, x, dy, p, (const uint32_t *)bits, dw, false);\n");
    if (s->buf[5] >= 0)
        out(E, "    nrt_dense_backward_bias(n, OUT, dy, db, false);\n");
    if (s->buf[3] >= 0)
        out(E, "    nrt_dropconnect_dense_backward_data(n, IN, OUT, dy, w, p, (const uint32_t *)bits, dx, %s);\n",
            s->acc ? "true" : "false");
}

/* Conv dropconnect: one mask per batch from (seed, NRT_RNG_DROPCONNECT, step,
 * sample 0, element STREAM << 32 | k); the convolution uses w * mask. */
static void body_dropconnect(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };    /* weights */\n", s->i[0]);
    out(E, "    (void)n;\n");
    if (s->op == K_DROPCONNECT_GRAD) {
        decl(E, false, "mask", s->buf[0]);
        decl(E, true, "dw", s->buf[1]);
        out(E, "    nrt_dropout_backward(D, dw, mask, dw, false);\n");
        return;
    }
    decl(E, false, "w", s->buf[0]);
    decl(E, true, "mask", s->buf[1]);
    decl(E, true, "wm", s->buf[2]);
    out(E, "    const uint64_t stream = (uint64_t)%" PRId64 " << 32;    /* node id */\n", s->i[1]);
    out(E, "    nrt_rng_fill_dropout_mask(m->seed, NRT_RNG_DROPCONNECT, m->step, 0, stream, D, %s, mask);\n",
        dbl(b1, s->f[0]));
    out(E, "    nrt_dropout_forward(D, w, mask, wm);\n");
}

/* drop_path: one draw per sample at (seed, NRT_RNG_DROP_PATH, step, sample i,
 * element STREAM << 32). */
static void body_drop_path(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };    /* values per sample */\n", s->i[0]);
    if (s->op == K_DROP_PATH_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        decl(E, true, "scale", s->buf[2]);
        out(E, "    const uint64_t stream = (uint64_t)%" PRId64 " << 32;    /* node id */\n", s->i[1]);
        out(E, "    for (int i = 0; i < n; i++)\n"
               "        nrt_rng_fill_dropout_mask(m->seed, NRT_RNG_DROP_PATH, m->step, (uint64_t)i, stream, 1, %s,\n"
               "                                  scale + i);\n", dbl(b1, s->f[0]));
        out(E, "    nrt_drop_path_forward(n, D, x, scale, y);\n");
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "scale", s->buf[1]);
    decl(E, true, "dx", s->buf[2]);
    out(E, "    nrt_drop_path_backward(n, D, dy, scale, dx, %s);\n", s->acc ? "true" : "false");
}

/* gaussian_noise: N(0,1) at (seed, NRT_RNG_NOISE, step, sample i, element
 * STREAM << 32 | j), written into y first. */
static void body_noise(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };    /* values per sample */\n", s->i[0]);
    decl(E, false, "x", s->buf[0]);
    decl(E, true, "y", s->buf[1]);
    out(E, "    const uint64_t stream = (uint64_t)%" PRId64 " << 32;    /* node id */\n", s->i[1]);
    out(E, "    for (int i = 0; i < n; i++)\n"
           "        nrt_rng_fill_normal(m->seed, NRT_RNG_NOISE, m->step, (uint64_t)i, stream, D, 0.0f, 1.0f,\n"
           "                            y + (int64_t)i * D);\n");
    out(E, "    nrt_gaussian_noise_forward((int64_t)n * D, x, y, %s, y);\n", flt(b1, s->f[0]));
}

/* Regions per sample drawn at the training step, or one set fixed by the seed
 * (predict): nrt_fracpool_draw. */
static void body_fracpool(Emit *E, const KStep *s)
{
    bool train = s->i[7] != 0;
    out(E, "    enum { C = %" PRId64 ", H = %" PRId64 ", W = %" PRId64 ", OH = %" PRId64 ", OW = %" PRId64
           " };\n", s->i[0], s->i[1], s->i[2], s->i[3], s->i[4]);
    if (s->op == K_FRACPOOL_BWD) {
        decl(E, false, "dy", s->buf[0]);
        decl(E, false, "argmax", s->buf[1]);
        decl(E, true, "dx", s->buf[2]);
        out(E, "    const NrtFracPool p = {.n = n, .c = C, .h = H, .w = W, .oh = OH, .ow = OW};\n");
        out(E, "    nrt_fracpool_backward(&p, dy, (const int32_t *)argmax, dx, %s);\n",
            s->acc ? "true" : "false");
        return;
    }
    decl(E, false, "x", s->buf[0]);
    decl(E, true, "y", s->buf[1]);
    if (s->buf[2] >= 0)
        decl(E, true, "argmax", s->buf[2]);
    decl(E, true, "regions", s->buf[3]);
    out(E, "    const int64_t sets = %s;\n", train ? "n" : "1");
    out(E, "    int32_t *r = (int32_t *)regions;\n");
    out(E, "    nrt_fracpool_draw(m->seed, %s, (uint64_t)%" PRId64 " << 32, sets, H, W, OH, OW, %s, r);\n",
        train ? "m->step" : "NRT_FRACPOOL_INFER_STEP", s->i[6], s->i[5] ? "true" : "false");
    out(E, "    const NrtFracPool p = {n, C, H, W, OH, OW, %s, r, r + sets * OH, r + 2 * sets * OH,\n"
           "                         r + 2 * sets * OH + sets * OW};\n",
        train ? "NRT_FRAC_PER_SAMPLE" : "NRT_FRAC_SHARED");
    out(E, "    nrt_fracpool_forward(&p, x, y, %s);\n", s->buf[2] >= 0 ? "(int32_t *)argmax" : "NULL");
}

/* mixup / cutmix of the whole batch: lambda and the partners for the losses. */
static void body_mix(Emit *E, const KStep *s)
{
    char b1[40];
    bool cut = s->i[0] == IR_MIX_CUTMIX;
    out(E, "    enum { C = %" PRId64 ", H = %" PRId64 ", W = %" PRId64 " };%s\n", s->i[1], s->i[2],
        s->i[3], cut ? "" : "    /* mixup: C = values per sample */");
    decl(E, true, "x", s->buf[0]);
    decl(E, true, "scratch", s->buf[1]);
    decl(E, true, "perm", s->buf[2]);
    decl(E, true, "lambda", s->buf[3]);
    out(E, "    NrtMixInfo info;\n");
    if (cut)
        out(E, "    nrt_cutmix(x, n, C, H, W, %s, m->seed, m->step, (int64_t *)perm, &info, scratch);\n",
            dbl(b1, s->f[0]));
    else
        out(E, "    (void)H, (void)W;\n"
               "    nrt_mixup(x, n, C, %s, m->seed, m->step, (int64_t *)perm, &info, scratch);\n",
            dbl(b1, s->f[0]));
    out(E, "    lambda[0] = info.lambda;\n");
}

static void body_dense(Emit *E, const KStep *s)
{
    out(E, "    enum { IN = %" PRId64 ", OUT = %" PRId64 " };\n", s->i[0], s->i[1]);
    if (s->op == K_DENSE_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, false, "w", s->buf[1]);
        decl(E, false, "b", s->buf[2]);
        decl(E, true, "y", s->buf[3]);
        out(E, "    nrt_dense_forward(n, IN, OUT, x, w, b, %s, y, &m->ws);\n",
            s->i[2] ? "NRT_ACT_RELU" : "NRT_ACT_NONE");
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "x", s->buf[1]);
    if (s->buf[3] >= 0) {
        decl(E, false, "w", s->buf[2]);
        decl(E, true, "dx", s->buf[3]);
    }
    decl(E, true, "dw", s->buf[4]);
    if (s->buf[5] >= 0)
        decl(E, true, "db", s->buf[5]);
    out(E, "    nrt_dense_backward_weights(n, IN, OUT, x, dy, dw, false, &m->ws);\n");
    if (s->buf[5] >= 0)
        out(E, "    nrt_dense_backward_bias(n, OUT, dy, db, false);\n");
    if (s->buf[3] >= 0)
        out(E, "    nrt_dense_backward_data(n, IN, OUT, dy, w, dx, %s, &m->ws);\n",
            s->acc ? "true" : "false");
}

static void out_conv_shape(Emit *E, const KStep *s, const char *n)
{
    out(E, "    const NrtConvShape s = {%s, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
           ", %" PRId64 ", %" PRId64 ", %" PRId64 "};    /* n, c, h, w, filters, kernel, stride, pad */\n",
        n, s->i[0], s->i[1], s->i[2], s->i[3], s->i[4], s->i[5], s->i[6]);
}

static void body_conv(Emit *E, const KStep *s)
{
    out_conv_shape(E, s, "n");
    if (s->op == K_CONV_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, false, "w", s->buf[1]);
        decl(E, false, "b", s->buf[2]);
        decl(E, true, "y", s->buf[3]);
        const char *act = s->i[7] ? "NRT_ACT_RELU" : "NRT_ACT_NONE";
        if (s->nbuf < 8) {
            out(E, "    nrt_conv_forward(&s, x, w, b, %s, y, &m->ws);\n", act);
            return;
        }
        decl(E, false, "gamma", s->buf[4]);
        decl(E, false, "beta", s->buf[5]);
        decl(E, false, "rmean", s->buf[6]);
        decl(E, false, "rvar", s->buf[7]);
        char eps[40];
        out(E, "    nrt_conv_forward_bn(&s, x, w, b, gamma, beta, rmean, rvar, %s, %s, y, &m->ws);\n",
            dbl(eps, s->f[0]), act);
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "x", s->buf[1]);
    if (s->buf[3] >= 0) {
        decl(E, false, "w", s->buf[2]);
        decl(E, true, "dx", s->buf[3]);
    }
    decl(E, true, "dw", s->buf[4]);
    if (s->buf[5] >= 0)
        decl(E, true, "db", s->buf[5]);
    if (s->buf[5] >= 0)     /* the bias's sums inside the weight gradient's pass */
        out(E, "    nrt_conv_backward_weights_bias(&s, x, dy, dw, db, false, &m->ws);\n");
    else
        out(E, "    nrt_conv_backward_weights(&s, x, dy, dw, false, &m->ws);\n");
    if (s->buf[3] >= 0)
        out(E, "    nrt_conv_backward_data(&s, dy, w, dx, %s, &m->ws);\n", s->acc ? "true" : "false");
}

static const char *acc_str(const KStep *s)
{
    return s->acc ? "true" : "false";
}

static void body_pool(Emit *E, const KStep *s)
{
    out(E, "    const NrtPoolShape s = {n, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
           ", %" PRId64 "};    /* n, c, h, w, size, stride, pad: %" PRId64 " x %" PRId64 " out */\n",
        s->i[0], s->i[1], s->i[2], s->i[3], s->i[4], s->i[5], s->i[6], s->i[7]);
    switch (s->op) {
    case K_MAXPOOL_FWD:
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        if (s->buf[2] >= 0) {
            decl(E, true, "argmax", s->buf[2]);
            out(E, "    nrt_maxpool_forward(&s, x, y, (int32_t *)argmax);\n");
        } else {
            out(E, "    nrt_maxpool_forward(&s, x, y, NULL);\n");
        }
        break;
    case K_MAXPOOL_BWD:
        decl(E, false, "dy", s->buf[0]);
        decl(E, false, "argmax", s->buf[1]);
        decl(E, true, "dx", s->buf[2]);
        out(E, "    nrt_maxpool_backward(&s, dy, (const int32_t *)argmax, dx, %s);\n", acc_str(s));
        break;
    case K_AVGPOOL_FWD:
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        out(E, "    nrt_avgpool_forward(&s, x, y);\n");
        break;
    default:
        decl(E, false, "dy", s->buf[0]);
        decl(E, true, "dx", s->buf[1]);
        out(E, "    nrt_avgpool_backward(&s, dy, dx, %s);\n", acc_str(s));
        break;
    }
}

static void body_gap(Emit *E, const KStep *s)
{
    out(E, "    enum { C = %" PRId64 ", S = %" PRId64 " };    /* channels, values per channel */\n",
        s->i[0], s->i[1]);
    if (s->op == K_GAP_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        out(E, "    nrt_global_avgpool_forward(n, C, S, x, y);\n");
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, true, "dx", s->buf[1]);
    out(E, "    nrt_global_avgpool_backward(n, C, S, dy, dx, %s);\n", acc_str(s));
}

static void body_act(Emit *E, const KStep *s)
{
    static const char *names[] = {"relu", "leaky_relu", "tanh", "sigmoid"};
    char b1[40];
    KAct a = (KAct)s->i[0];
    out(E, "    enum { D = %" PRId64 " };\n", s->i[1]);
    const char *slope = a == KACT_LEAKY_RELU ? flt(b1, s->f[0]) : NULL;
    if (s->op == K_ACT_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        out(E, "    nrt_%s_forward((int64_t)n * D, %s%sx, y);\n", names[a], slope ? slope : "",
            slope ? ", " : "");
        return;
    }
    /* leaky_relu's rule reads x, the others read y */
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, slope ? "x" : "y", s->buf[slope ? 1 : 2]);
    decl(E, true, "dx", s->buf[3]);
    out(E, "    nrt_%s_backward((int64_t)n * D, %s%sdy, %s, dx, %s);\n", names[a], slope ? slope : "",
        slope ? ", " : "", slope ? "x" : "y", acc_str(s));
}

/* The NrtFusedAct of a batchnorm step's fused activation (i2). */
static const char *bn_act_name(const KStep *s)
{
    return s->i[2] > 1 ? "NRT_FUSED_LEAKY_RELU" : s->i[2] ? "NRT_FUSED_RELU" : "NRT_FUSED_NONE";
}

static void body_bn(Emit *E, const KStep *s)
{
    char b1[40], b2[40], b3[40];
    out(E, "    enum { C = %" PRId64 ", S = %" PRId64 " };    /* channels, values per channel */\n",
        s->i[0], s->i[1]);
    if (s->op == K_BN_FWD_TRAIN || s->op == K_BN_FWD_INFER) {
        bool tr = s->op == K_BN_FWD_TRAIN;
        decl(E, false, "x", s->buf[0]);
        decl(E, false, "gamma", s->buf[1]);
        decl(E, false, "beta", s->buf[2]);
        decl(E, tr, "rmean", s->buf[3]);
        decl(E, tr, "rvar", s->buf[4]);
        decl(E, true, "y", s->buf[5]);
        if (tr) {
            decl(E, true, "mean", s->buf[6]);
            decl(E, true, "invstd", s->buf[7]);
        }
        if (tr && s->i[2])
            decl(E, true, "affine", s->buf[8]);
        if (tr && s->i[2])
            out(E, "    nrt_batchnorm_forward_train_affine(n, C, S, x, gamma, beta, %s, %s, rmean, rvar,\n"
                   "                                       %s, %s, y, mean, invstd, affine);\n",
                dbl(b1, s->f[1]), dbl(b2, s->f[0]), bn_act_name(s), flt(b3, s->f[2]));
        else if (tr)
            out(E, "    nrt_batchnorm_forward_train(n, C, S, x, gamma, beta, %s, %s, rmean, rvar, %s, y,\n"
                   "                                mean, invstd);\n", dbl(b1, s->f[1]), dbl(b2, s->f[0]),
                s->i[2] ? "true" : "false");
        else if (s->i[2] > 1)
            out(E, "    nrt_batchnorm_forward_infer_act(n, C, S, x, gamma, beta, rmean, rvar, %s,\n"
                   "                                    NRT_FUSED_LEAKY_RELU, %s, y);\n", dbl(b1, s->f[1]),
                flt(b3, s->f[2]));
        else
            out(E, "    nrt_batchnorm_forward_infer(n, C, S, x, gamma, beta, rmean, rvar, %s, %s, y);\n",
                dbl(b1, s->f[1]), s->i[2] ? "true" : "false");
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "x", s->buf[1]);
    decl(E, false, "gamma", s->buf[2]);
    decl(E, false, "mean", s->buf[3]);
    decl(E, false, "invstd", s->buf[4]);
    decl(E, true, "dx", s->buf[5]);
    decl(E, true, "dgamma", s->buf[6]);
    decl(E, true, "dbeta", s->buf[7]);
    if (s->buf[8] >= 0) {
        decl(E, false, "affine", s->buf[8]);
        out(E, "    nrt_batchnorm_backward_affine(n, C, S, dy, x, affine, %s, %s, gamma, mean, invstd,\n"
               "                                  dx, dgamma, dbeta, %s, false);\n", bn_act_name(s),
            flt(b3, s->f[2]), acc_str(s));
    } else {
        out(E, "    nrt_batchnorm_backward(n, C, S, dy, x, NULL, gamma, mean, invstd, dx, dgamma, dbeta, %s,\n"
               "                           false);\n", acc_str(s));
    }
}

/* Masks from (seed, NRT_RNG_DROPOUT, step, sample i, element STREAM << 32 | j):
 * one stream per dropout node, the same bits for any thread count. */
static void body_dropout(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };    /* values per sample */\n", s->i[0]);
    if (s->op == K_DROPOUT_FWD) {
        decl(E, false, "x", s->buf[0]);
        decl(E, true, "y", s->buf[1]);
        decl(E, true, "mask", s->buf[2]);
        out(E, "    const uint64_t stream = (uint64_t)%" PRId64 " << 32;    /* node id */\n", s->i[1]);
        out(E, "    for (int i = 0; i < n; i++)\n"
               "        nrt_rng_fill_dropout_mask(m->seed, NRT_RNG_DROPOUT, m->step, (uint64_t)i, stream, D, %s,\n"
               "                                  mask + (int64_t)i * D);\n", dbl(b1, s->f[0]));
        out(E, "    nrt_dropout_forward((int64_t)n * D, x, mask, y);\n");
        return;
    }
    decl(E, false, "dy", s->buf[0]);
    decl(E, false, "mask", s->buf[1]);
    decl(E, true, "dx", s->buf[2]);
    out(E, "    nrt_dropout_backward((int64_t)n * D, dy, mask, dx, %s);\n", acc_str(s));
}

static void body_add(Emit *E, const KStep *s)
{
    out(E, "    enum { D = %" PRId64 " };\n", s->i[0]);
    int nin = s->nbuf - 1;
    char var[16];
    for (int k = 0; k < nin; k++) {
        snprintf(var, sizeof var, "x%d", k);
        decl(E, false, var, s->buf[k]);
    }
    decl(E, true, "y", s->buf[nin]);
    if (s->i[1]) {     /* the activation fused in: one pass (runtime/eltwise.c) */
        static const char *acts[] = {"RELU", "LEAKY_RELU", "TANH", "SIGMOID"};
        char b1[40];
        out(E, "    const float *const xs[] = {x0");
        for (int k = 1; k < nin; k++)
            out(E, ", x%d", k);
        out(E, "};\n    nrt_add_act_forward((int64_t)n * D, %d, xs, NRT_FUSED_%s, %s, y);\n", nin,
            acts[s->i[1] - 1], flt(b1, s->f[0]));
        return;
    }
    out(E, "    for (int64_t i = 0; i < (int64_t)n * D; i++)\n        y[i] = x0[i]");
    for (int k = 1; k < nin; k++)
        out(E, " + x%d[i]", k);
    out(E, ";\n");
}

/* Inference: the batchnorm's scale and shift folded into the weights and
 * bias of the dense/conv step that follows, on every call (never stale). */
static void body_bn_fold(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { F = %" PRId64 ", PER = %" PRId64 " };    /* output channels, weights each */\n",
        s->i[0], s->i[1]);
    decl(E, false, "w", s->buf[0]);
    decl(E, false, "b", s->buf[1]);
    decl(E, false, "gamma", s->buf[2]);
    decl(E, false, "beta", s->buf[3]);
    decl(E, false, "rmean", s->buf[4]);
    decl(E, false, "rvar", s->buf[5]);
    decl(E, true, "wf", s->buf[6]);
    decl(E, true, "bf", s->buf[7]);
    out(E, "    (void)n;\n    nrt_batchnorm_fold(F, PER, w, b, gamma, beta, rmean, rvar, %s, wf, bf);\n",
        dbl(b1, s->f[0]));
}

static void body_grad_copy(Emit *E, const KStep *s)
{
    out(E, "    enum { D = %" PRId64 " };\n", s->i[0]);
    decl(E, false, "dy", s->buf[0]);
    decl(E, true, "dx", s->buf[1]);
    if (s->acc)
        out(E, "    for (int64_t i = 0; i < (int64_t)n * D; i++)\n        dx[i] += dy[i];\n");
    else
        out(E, "    memcpy(dx, dy, (size_t)n * D * sizeof *dx);\n");
}

static void body_concat(Emit *E, const KStep *s)
{
    bool fwd = s->op == K_CONCAT_FWD;
    int nin = s->nbuf - 1;
    out(E, "    enum { S = %" PRId64 ", CT = %" PRId64 " };    /* values per channel, channels out */\n",
        s->i[0], s->i[2]);
    decl(E, fwd, fwd ? "y" : "dy", s->buf[fwd ? nin : 0]);
    char var[16];
    for (int k = 0, first = fwd ? 0 : 1; k < nin; k++) {
        if (s->buf[first + k] < 0)
            continue;
        snprintf(var, sizeof var, "%s%d", fwd ? "x" : "dx", k);
        decl(E, !fwd, var, s->buf[first + k]);
    }
    out(E, "    for (int64_t i = 0; i < n; i++) {\n");
    int64_t off = s->i[1];
    for (int k = 0, first = fwd ? 0 : 1; k < nin; k++) {
        int64_t ck = s->i[3 + k];
        if (s->buf[first + k] >= 0) {
            if (fwd)
                out(E, "        memcpy(y + (i * CT + %" PRId64 ") * S, x%d + i * %" PRId64
                       " * S, %" PRId64 " * S * sizeof(float));\n", off, k, ck, ck);
            else if (!(s->accmask & (1u << k)))
                out(E, "        memcpy(dx%d + i * %" PRId64 " * S, dy + (i * CT + %" PRId64
                       ") * S, %" PRId64 " * S * sizeof(float));\n", k, ck, off, ck);
            else
                out(E, "        for (int64_t j = 0; j < %" PRId64 " * S; j++)\n"
                       "            dx%d[i * %" PRId64 " * S + j] += dy[(i * CT + %" PRId64 ") * S + j];\n",
                    ck, k, ck, off);
        }
        off += ck;
    }
    out(E, "    }\n");
}

static void body_softmax(Emit *E, const KStep *s)
{
    out(E, "    enum { K = %" PRId64 " };\n", s->i[0]);
    decl(E, false, "x", s->buf[0]);
    decl(E, true, "y", s->buf[1]);
    out(E, "    nrt_softmax_forward(n, K, x, y);\n");
}

/* The batch mean of cross entropy (PyTorch's label smoothing), weighted;
 * the kernel writes weight * its gradient. */
static void body_cross_entropy(Emit *E, const KStep *s)
{
    char b1[40], b2[40];
    out(E, "    enum { K = %" PRId64 ", TARGET = %" PRId64 " };\n", s->i[0], s->i[1]);
    decl(E, false, "x", s->buf[0]);
    decl(E, true, "dx", s->buf[1]);
    out(E, "    const double weight = %s;\n", dbl(b1, s->f[0]));
    if (s->buf[2] < 0) {
        out(E, "    m->loss += weight * nrt_cross_entropy(n, K, x, m->batch->labels[TARGET], NULL, 1.0, %s,\n"
               "                                          weight, dx, %s);\n", dbl(b2, s->f[1]), acc_str(s));
        return;
    }
    decl(E, false, "perm", s->buf[2]);
    decl(E, false, "lambda", s->buf[3]);
    decl(E, true, "partner", s->buf[4]);
    out(E, "    const int32_t *labels = m->batch->labels[TARGET];\n"
           "    nrt_mix_labels(n, labels, (const int64_t *)perm, (int32_t *)partner);\n");
    out(E, "    m->loss += weight * nrt_cross_entropy(n, K, x, labels, (const int32_t *)partner, lambda[0],\n"
           "                                          %s, weight, dx, %s);\n", dbl(b2, s->f[1]), acc_str(s));
}

static void body_mse(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 ", TARGET = %" PRId64 " };\n", s->i[0], s->i[1]);
    decl(E, false, "x", s->buf[0]);
    decl(E, true, "dx", s->buf[1]);
    out(E, "    const double weight = %s;\n", dbl(b1, s->f[0]));
    if (s->buf[2] < 0) {
        out(E, "    m->loss += weight * nrt_mse(n, D, x, m->batch->values[TARGET], NULL, 1.0, weight, dx, %s);\n",
            acc_str(s));
        return;
    }
    decl(E, false, "perm", s->buf[2]);
    decl(E, false, "lambda", s->buf[3]);
    decl(E, true, "mixed", s->buf[4]);
    out(E, "    nrt_mix_values(n, D, m->batch->values[TARGET], (const int64_t *)perm, lambda[0], mixed);\n");
    out(E, "    m->loss += weight * nrt_mse(n, D, x, mixed, NULL, 1.0, weight, dx, %s);\n", acc_str(s));
}

static void body_output(Emit *E, const KStep *s)
{
    out(E, "    enum { D = %" PRId64 " };\n", s->i[1]);
    decl(E, false, "y", s->buf[0]);
    out(E, "    memcpy(m->outs[%" PRId64 "], y, (size_t)n * D * sizeof *y);\n", s->i[0]);
}

static void body_penalty(Emit *E, const KStep *s)
{
    char b1[40], b2[40];
    out(E, "    enum { D = %" PRId64 " };\n", s->i[0]);
    decl(E, false, "w", s->buf[0]);
    decl(E, true, "dw", s->buf[1]);
    out(E, "    (void)n;\n    nrt_penalty_grad(D, w, %s, %s, dw);    /* l1, l2 */\n",
        dbl(b1, s->f[0]), dbl(b2, s->f[1]));
}

static void body_sgd(Emit *E, const KStep *s)
{
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };    /* every trainable parameter */\n", s->i[0]);
    decl(E, true, "w", s->buf[0]);
    decl(E, false, "dw", s->buf[1]);
    decl(E, true, "v", s->buf[2]);
    out(E, "    (void)n;\n    nrt_sgd_step(D, w, dw, v, m->lr, %s, %s);    /* momentum, nesterov */\n",
        dbl(b1, s->f[0]), s->f[1] != 0 ? "true" : "false");
}

static void body_adam(Emit *E, const KStep *s)
{
    char b1[40], b2[40], b3[40], b4[40];
    out(E, "    enum { D = %" PRId64 " };    /* every trainable parameter */\n", s->i[0]);
    decl(E, true, "w", s->buf[0]);
    decl(E, false, "dw", s->buf[1]);
    decl(E, true, "mo", s->buf[2]);
    decl(E, true, "ve", s->buf[3]);
    out(E, "    (void)n;\n"
           "    /* beta1, beta2, eps, weight decay, decoupled (adamw), t */\n"
           "    nrt_adam_step(D, w, dw, mo, ve, m->lr, %s, %s, %s, %s, %s, (int64_t)m->step + 1);\n",
        dbl(b1, s->f[0]), dbl(b2, s->f[1]), dbl(b3, s->f[2]), dbl(b4, s->f[3]),
        s->f[3] != 0 ? "true" : "false");
}

static void emit_step_body(Emit *E, const KStep *s)
{
    switch (s->op) {
    case K_PREPROCESS: body_preprocess(E, s); break;
    case K_AUGMENT_GEO:
    case K_AUGMENT_POST: body_augment(E, s); break;
    case K_DENSE_FWD:
    case K_DENSE_BWD: body_dense(E, s); break;
    case K_CONV_FWD:
    case K_CONV_BWD: body_conv(E, s); break;
    case K_MAXPOOL_FWD:
    case K_MAXPOOL_BWD:
    case K_AVGPOOL_FWD:
    case K_AVGPOOL_BWD: body_pool(E, s); break;
    case K_ACT_FWD:
    case K_ACT_BWD: body_act(E, s); break;
    case K_BN_FWD_TRAIN:
    case K_BN_FWD_INFER:
    case K_BN_BWD: body_bn(E, s); break;
    case K_DROPOUT_FWD:
    case K_DROPOUT_BWD: body_dropout(E, s); break;
    case K_ADD_FWD: body_add(E, s); break;
    case K_GRAD_COPY: body_grad_copy(E, s); break;
    case K_CONCAT_FWD:
    case K_CONCAT_BWD: body_concat(E, s); break;
    case K_GAP_FWD:
    case K_GAP_BWD: body_gap(E, s); break;
    case K_SOFTMAX: body_softmax(E, s); break;
    case K_CROSS_ENTROPY: body_cross_entropy(E, s); break;
    case K_MSE: body_mse(E, s); break;
    case K_OUTPUT: body_output(E, s); break;
    case K_PENALTY: body_penalty(E, s); break;
    case K_OPT_SGD: body_sgd(E, s); break;
    case K_OPT_ADAM: body_adam(E, s); break;
    case K_DENSE_DC_FWD:
    case K_DENSE_DC_BWD: body_dense_dc(E, s); break;
    case K_DROPCONNECT_MASK:
    case K_DROPCONNECT_GRAD: body_dropconnect(E, s); break;
    case K_DROP_PATH_FWD:
    case K_DROP_PATH_BWD: body_drop_path(E, s); break;
    case K_NOISE_FWD: body_noise(E, s); break;
    case K_FRACPOOL_FWD:
    case K_FRACPOOL_BWD: body_fracpool(E, s); break;
    case K_MIX: body_mix(E, s); break;
    case K_BN_FOLD: body_bn_fold(E, s); break;
    }
}

static void emit_step(Emit *E, const KStep *s)
{
    if (s->node && span_valid(s->node->sp)) {
        out(E, "/* %s:%d", E->kp->source_name, s->node->sp.line);
        out_span_text(E, s->node->sp);
        out(E, " */\n");
    } else {
        out(E, "/* %s */\n", k_op_name(s->op));
    }
    out(E, "static void %s(NrtModel *m, int n)\n{\n", s->fn);
    emit_step_body(E, s);
    out(E, "}\n\n");
}

/* ---- the fixed parts ----------------------------------------------------- */

static void emit_prelude(Emit *E, const char *h_name)
{
    const KProgram *kp = E->kp;
    out(E, "/* %s.c - the %s model, generated by netc %s from %s; do not edit.\n"
           " *\n"
           " * API: %s (see docs/generated-api.md). Memory: one parameter block\n"
           " * (P(off), in floats: parameters, statistics, gradients, optimizer state)\n"
           " * and one activation arena (A(off)), both allocated by %s_create.\n"
           " */\n", E->m, E->m, NETC_VERSION, kp->source_name, h_name, E->m);
    out(E, "#include <math.h>\n#include <stdbool.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
           "#include <stdio.h>\n#include <string.h>\n\n#include \"netrt.h\"\n#include \"%s\"\n\n", h_name);
    out(E, "#define BLOCK_FLOATS %" PRId64 "\n#define ARENA_FLOATS %" PRId64 "\n",
        kp->block_floats, kp->arena_floats);
    out(E, "#define STRUCTURE_HASH_STR \"%016" PRIx64 "\"    /* %s_STRUCTURE_HASH in checkpoints */\n",
        kp->structure_hash, E->M);
    out(E, "#define P(off) (m->block + (off))\n#define A(off) (m->arena + (off))\n\n");
    out(E, "struct NrtModel {\n"
           "    float *block;               /* BLOCK_FLOATS */\n"
           "    float *arena;               /* ARENA_FLOATS */\n"
           "    NrtWorkspace ws;            /* scratch of the dense and conv kernels */\n"
           "    uint64_t seed, step;\n"
           "    /* the call in progress */\n"
           "    const float *x;\n"
           "    const NrtBatch *batch;\n"
           "    float *const *outs;\n"
           "    float lr;\n"
           "    double loss;\n"
           "};\n\n");
}

static void emit_steps(Emit *E)
{
    for (size_t i = 0; i < E->kp->predict.len; i++)
        emit_step(E, &E->kp->predict.items[i]);
    for (size_t i = 0; i < E->kp->train.len; i++)
        emit_step(E, &E->kp->train.items[i]);
}

/* ---- initialization ------------------------------------------------------ */

static const char *param_enum(const Emit *E, const IrParam *p, char *buf, size_t size)
{
    int len = snprintf(buf, size, "%s_P_", E->M);
    for (const char *c = p->name; *c && (size_t)len + 1 < size; c++)
        buf[len++] = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
    buf[len] = '\0';
    return buf;
}

static void emit_tables(Emit *E)
{
    const KProgram *kp = E->kp;
    char b1[40];
    out(E, "static const NrtParamInfo params[%s_NPARAMS] = {\n", E->M);
    for (size_t i = 0; i < kp->params.len; i++) {
        const IrParam *p = kp->params.items[i].p;
        out(E, "    {");
        out_cstring(E, p->name);
        out(E, ", %d, {", p->shape.rank);
        for (int d = 0; d < 4; d++)
            out(E, "%s%" PRId64, d ? ", " : "", d < p->shape.rank ? p->shape.d[d] : 0);
        out(E, "}, %" PRId64 ", %s},\n", p->numel, p->trainable ? "true" : "false");
    }
    out(E, "};\n\n");
    out(E, "/* Per parameter: data offset, gradient offset (-1: none), optimizer state\n"
           " * offsets (-1: none), init: distribution (0 constant, 1 normal(0, a),\n"
           " * 2 uniform(-a, a)) and a. */\n"
           "static const struct {\n"
           "    int64_t off, grad, state[2];\n"
           "    int dist;\n"
           "    double a;\n"
           "} layout[%s_NPARAMS] = {\n", E->M);
    for (size_t i = 0; i < kp->params.len; i++) {
        const KParam *q = &kp->params.items[i];
        double a;
        KInitDist dist = kinfo_init_dist(q->p, &a);
        int64_t offs[4] = {kbuf(E, q->buf)->off, q->grad >= 0 ? kbuf(E, q->grad)->off : -1,
                           q->state[0] >= 0 ? kbuf(E, q->state[0])->off : -1,
                           q->state[1] >= 0 ? kbuf(E, q->state[1])->off : -1};
        out(E, "    {%" PRId64 ", %" PRId64 ", {%" PRId64 ", %" PRId64 "}, %d, %s},    /* %s: %s */\n",
            offs[0], offs[1], offs[2], offs[3], (int)dist, dbl(b1, a), q->p->name,
            ir_init_name(q->p->init.kind));
    }
    out(E, "};\n\n");
}

static void emit_init(Emit *E)
{
    out(E, "/* Parameter i from (seed, NRT_RNG_INIT, sample i, element): the same bits\n"
           " * for any thread count. */\n"
           "static void init_params(NrtModel *m)\n"
           "{\n"
           "    for (int i = 0; i < %s_NPARAMS; i++) {\n"
           "        float *p = P(layout[i].off);\n"
           "        const int64_t k = params[i].numel;\n"
           "        if (layout[i].dist == 1)\n"
           "            nrt_init_normal(p, k, (float)layout[i].a, m->seed, (uint64_t)i);\n"
           "        else if (layout[i].dist == 2)\n"
           "            nrt_init_uniform(p, k, (float)layout[i].a, m->seed, (uint64_t)i);\n"
           "        else\n"
           "            nrt_init_constant(p, k, (float)layout[i].a);\n"
           "    }\n", E->M);
    const KProgram *kp = E->kp;
    const IrPreprocess *pre = &E->g->pre;
    char b1[40];
    for (int k = 0; k < 2; k++) {
        int buf = k ? kp->pre_std : kp->pre_mean;
        const double *lit = k ? pre->std : pre->mean;
        int nlit = k ? pre->nstd : pre->nmean;
        if (buf < 0)
            continue;
        if (k == 1 && pre->kind == IR_PRE_ZCA) {
            out(E, "    for (int64_t c = 0; c < %" PRId64 "; c++)    /* %s: the identity until fit_preprocess */\n"
                   "        P(%" PRId64 ")[c * %" PRId64 " + c] = 1.0f;\n", kp->pre_channels,
                kbuf(E, buf)->name, kbuf(E, buf)->off, kp->pre_channels);
            continue;
        }
        out(E, "    for (int64_t c = 0; c < %" PRId64 "; c++)    /* %s */\n", kp->pre_channels,
            kbuf(E, buf)->name);
        if (!lit || nlit == 0) {
            out(E, "        P(%" PRId64 ")[c] = %s;    /* until fit_preprocess */\n",
                kbuf(E, buf)->off, k ? "1.0f" : "0.0f");
            continue;
        }
        out(E, "        P(%" PRId64 ")[c] = (const float[]){", kbuf(E, buf)->off);
        for (int i = 0; i < nlit; i++)
            out(E, "%s%s", i ? ", " : "", flt(b1, lit[i]));
        out(E, "}[%s];\n", nlit == 1 ? "0" : "c");
    }
    out(E, "}\n\n");
}

/* ---- the API ------------------------------------------------------------- */

static void emit_workspace(Emit *E)
{
    out(E, "/* The largest scratch any dense or conv step asks for at the full batch. */\n"
           "static size_t workspace_floats(void)\n"
           "{\n"
           "    size_t f = 16;\n");
    for (size_t i = 0; i < E->kp->train.len; i++) {
        const KStep *s = &E->kp->train.items[i];
        if (s->op == K_PREPROCESS && E->g->pre.kind == IR_PRE_ZCA) {
            int64_t d = ir_shape_numel(E->g->input.shape);
            out(E, "    {\n        size_t k = nrt_dense_workspace_floats(%s_BATCH, %" PRId64 ", %" PRId64
                   ");    /* zca */\n        f = k > f ? k : f;\n    }\n", E->M, d, d);
        } else if (s->op == K_DENSE_FWD || s->op == K_DENSE_BWD) {
            out(E, "    {\n        size_t k = nrt_dense_workspace_floats(%s_BATCH, %" PRId64 ", %" PRId64
                   ");    /* %s */\n        f = k > f ? k : f;\n    }\n", E->M, s->i[0], s->i[1], s->fn);
        } else if (s->op == K_CONV_FWD || s->op == K_CONV_BWD) {
            char batch[160];
            snprintf(batch, sizeof batch, "%s_BATCH", E->M);
            out(E, "    {\n    ");
            out_conv_shape(E, s, batch);
            out(E, "        size_t k = nrt_conv_workspace_floats(&s);    /* %s */\n", s->fn);
            out(E, "        f = k > f ? k : f;\n    }\n");
        }
    }
    out(E, "    return f;\n}\n\n");
}

static void emit_create(Emit *E)
{
    out(E, "NrtStatus %s_create(NrtModel **out, uint64_t seed, NrtError *err)\n"
           "{\n"
           "    if (!out)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_create: out is NULL\");\n"
           "    *out = NULL;\n"
           "    NrtModel *m = calloc(1, sizeof *m);\n"
           "    size_t ws = workspace_floats();\n"
           "    if (m) {\n"
           "        m->block = aligned_alloc(64, (size_t)BLOCK_FLOATS * sizeof(float));\n"
           "        m->arena = aligned_alloc(64, (size_t)ARENA_FLOATS * sizeof(float));\n"
           "        m->ws.buf = aligned_alloc(64, (ws + 15) / 16 * 16 * sizeof(float));\n"
           "        m->ws.floats = ws;\n"
           "    }\n"
           "    if (!m || !m->block || !m->arena || !m->ws.buf) {\n"
           "        %s_free(m);\n"
           "        return nrt_error_set(err, NRT_ERR_NOMEM, \"%s: out of memory (%%zu MiB)\",\n"
           "                             (size_t)(BLOCK_FLOATS + ARENA_FLOATS + ws) * 4 >> 20);\n"
           "    }\n"
           "    memset(m->block, 0, (size_t)BLOCK_FLOATS * sizeof(float));\n"
           "    memset(m->arena, 0, (size_t)ARENA_FLOATS * sizeof(float));\n"
           "    m->seed = seed;\n"
           "    init_params(m);\n"
           "    *out = m;\n"
           "    return NRT_OK;\n"
           "}\n\n", E->m, E->m, E->m, E->m);
    out(E, "void %s_free(NrtModel *m)\n"
           "{\n"
           "    if (!m)\n"
           "        return;\n"
           "    free(m->block);\n"
           "    free(m->arena);\n"
           "    free(m->ws.buf);\n"
           "    free(m);\n"
           "}\n\n", E->m);
}

/* zca: mean and W in double (nrt_stats_zca), stored as floats. */
static void emit_fit_zca(Emit *E)
{
    const KProgram *kp = E->kp;
    char b1[40];
    out(E, "    enum { D = %" PRId64 " };\n", kp->pre_channels);
    out(E, "    double *mean = malloc((size_t)D * (D + 1) * sizeof *mean);\n"
           "    if (!mean)\n"
           "        return nrt_error_set(err, NRT_ERR_NOMEM, \"%s_fit_preprocess: out of memory\");\n"
           "    double *w = mean + D;\n"
           "    NrtStatus st = nrt_stats_zca(images, count, D, %s, mean, w, err);\n"
           "    for (int64_t k = 0; k < D && st == NRT_OK; k++)\n"
           "        P(%" PRId64 ")[k] = (float)mean[k];\n"
           "    for (int64_t k = 0; k < (int64_t)D * D && st == NRT_OK; k++)\n"
           "        P(%" PRId64 ")[k] = (float)w[k];\n"
           "    free(mean);\n    return st;\n}\n\n",
        E->m, dbl(b1, E->g->pre.eps), kbuf(E, kp->pre_mean)->off, kbuf(E, kp->pre_std)->off);
}

static void emit_fit(Emit *E)
{
    const KProgram *kp = E->kp;
    const IrPreprocess *pre = &E->g->pre;
    bool fit = kp->pre_mean >= 0 && !pre->mean;
    out(E, "/* Preprocessing statistics of the training set, in double precision:\n"
           " * %s. */\n", fit ? "per statistics channel over every sample and position"
                              : "this model needs none (or has literal ones)");
    out(E, "NrtStatus %s_fit_preprocess(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err)\n"
           "{\n"
           "    if (!m || (count > 0 && !images))\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_fit_preprocess: NULL argument\");\n",
        E->m, E->m);
    if (!fit) {
        out(E, "    (void)count;\n    return NRT_OK;\n}\n\n");
        return;
    }
    if (pre->kind == IR_PRE_ZCA) {
        emit_fit_zca(E);
        return;
    }
    int64_t d = ir_shape_numel(E->g->input.shape), c = kp->pre_channels;
    bool image = E->g->pre.kind == IR_PRE_MEAN_IMAGE;
    out(E, "    enum { C = %" PRId64 ", S = %" PRId64 " };    /* statistics channels, values each */\n",
        c, d / c);
    out(E, "    double *mean = malloc(2 * C * sizeof *mean);\n"
           "    if (!mean)\n"
           "        return nrt_error_set(err, NRT_ERR_NOMEM, \"%s_fit_preprocess: out of memory\");\n"
           "%s"
           "    NrtStatus st = %s;\n"
           "    for (int64_t c = 0; c < C && st == NRT_OK; c++) {\n"
           "        P(%" PRId64 ")[c] = (float)mean[c];\n",
        E->m, image ? "" : "    double *sd = mean + C;\n",
        image ? "nrt_stats_mean_image(images, count, C, mean, err)"
                    : "nrt_stats_channels(images, count, C, S, mean, sd, err)",
        kbuf(E, kp->pre_mean)->off);
    if (kp->pre_std >= 0)
        out(E, "        if (!(sd[c] > 0))\n"
               "            st = nrt_error_set(err, NRT_ERR_NUMERIC,\n"
               "                               \"%s_fit_preprocess: channel %%d is constant (std 0)\", (int)c);\n"
               "        P(%" PRId64 ")[c] = (float)sd[c];\n", E->m, kbuf(E, kp->pre_std)->off);
    out(E, "    }\n    free(mean);\n    return st;\n}\n\n");
}

/* Whether train step i updates a parameter (the numeric guard goes before
 * the first such step). */
static bool is_update(const KStep *s)
{
    return s->op == K_OPT_SGD || s->op == K_OPT_ADAM;
}

/* The numeric guard (docs/training.md, "Numeric guards"): before the first
 * update every parameter, every gradient and the loss must be finite, else
 * the step stops with the parameters and optimizer state unchanged and
 * names the step (1-based, as the driver counts) and the parameter. The
 * loss is summed in double but reported as a float: a sum past FLT_MAX (a
 * target of 1e30 under mse) is finite in double with finite gradients and
 * only the reported loss is inf, so the guard tests the float. With the
 * update fusion the pass adds the penalties too (kinfo_guard_penalty). */
static void emit_guard(Emit *E)
{
    char b1[40], b2[40];
    out(E, "/* The guard's pass (nrt_guard_pass): per parameter its data and gradient\n"
           " * offsets and size, and the penalty (l1, l2) added to the gradient first. */\n"
           "static const NrtGuardSpan guard_spans[%s_NPARAMS] = {\n", E->M);
    for (size_t i = 0; i < E->kp->params.len; i++) {
        const KParam *q = &E->kp->params.items[i];
        double l1, l2;
        kinfo_guard_penalty(E->kp, q, &l1, &l2);
        out(E, "    {%" PRId64 ", %" PRId64 ", %" PRId64 ", %s, %s},\n", kbuf(E, q->buf)->off,
            q->grad >= 0 ? kbuf(E, q->grad)->off : -1, q->p->numel, dbl(b1, l1), dbl(b2, l2));
    }
    out(E, "};\n\n"
           "/* Before the update: parameters, then gradients, then the loss finite, or\n"
           " * stop with the parameters and optimizer state unchanged, naming the step\n"
           " * and the parameter (a bad parameter poisons every gradient after it). */\n"
           "static NrtStatus check_finite(NrtModel *m, NrtError *err)\n"
           "{\n"
           "    const unsigned long long step = (unsigned long long)m->step + 1;\n"
           "    NrtGuardBad bad;\n"
           "    if (!nrt_guard_pass(m->block, %s_NPARAMS, guard_spans, &bad)) {\n"
           "        const float *x = P(bad.grad ? guard_spans[bad.span].grad : guard_spans[bad.span].off);\n"
           "        return nrt_error_set(err, NRT_ERR_NUMERIC, \"step %%llu: %%s '%%s' is %%g at element %%lld (before the update)\",\n"
           "                             step, bad.grad ? \"the gradient of\" : \"parameter\", params[bad.span].name,\n"
           "                             (double)x[bad.elem], (long long)bad.elem);\n"
           "    }\n"
           "    if (!isfinite((float)m->loss))   /* as the step reports it: a float */\n"
           "        return nrt_error_set(err, NRT_ERR_NUMERIC, \"step %%llu: the loss is %%g (before the update)\", step, (double)(float)m->loss);\n"
           "    return NRT_OK;\n"
           "}\n\n", E->M);
}

static void emit_run(Emit *E)
{
    const KProgram *kp = E->kp;
    const IrGraph *g = E->g;
    bool guard = false;
    for (size_t i = 0; i < kp->train.len; i++)
        guard = guard || is_update(&kp->train.items[i]);
    if (guard)
        emit_guard(E);
    out(E, "NrtStatus %s_predict(NrtModel *m, const float *x, int n, float *const *outs, NrtError *err)\n"
           "{\n"
           "    if (!m || !x || !outs)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_predict: NULL argument\");\n"
           "    if (n < 1 || n > %s_BATCH)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_predict: batch of %%d, not in 1..%%d\", n, %s_BATCH);\n"
           "    for (int k = 0; k < %s_NOUTPUTS; k++)\n"
           "        if (!outs[k])\n"
           "            return nrt_error_set(err, NRT_ERR_ARG, \"%s_predict: outs[%%d] is NULL\", k);\n"
           "    m->x = x;\n"
           "    m->outs = outs;\n", E->m, E->m, E->M, E->m, E->M, E->M, E->m);
    for (size_t i = 0; i < kp->predict.len; i++)
        out(E, "    %s(m, n);\n", kp->predict.items[i].fn);
    out(E, "    return NRT_OK;\n}\n\n");

    out(E, "NrtStatus %s_train_step(NrtModel *m, const NrtBatch *b, float lr, float *loss, NrtError *err)\n"
           "{\n"
           "    if (!m || !b || !b->x)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_train_step: NULL argument\");\n"
           "    if (b->n < 1 || b->n > %s_BATCH)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_train_step: batch of %%d, not in 1..%%d\", b->n, %s_BATCH);\n",
        E->m, E->m, E->M, E->m, E->M);
    for (size_t i = 0; i < g->losses.len; i++) {
        const IrNode *ln = g->losses.items[i];
        const IrTarget *t = g->targets.items[ln->loss.target];
        if (t->kind == IR_TARGET_VALUES) {
            out(E, "    if (!b->values[%d])\n"
                   "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_train_step: no values for target '%s'\");\n",
                ln->loss.target, E->m, t->name);
            continue;
        }
        out(E, "    if (!b->labels[%d])\n"
               "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_train_step: no labels for target '%s'\");\n"
               "    for (int i = 0; i < b->n; i++)\n"
               "        if (b->labels[%d][i] < 0 || b->labels[%d][i] >= %" PRId64 ")\n"
               "            return nrt_error_set(err, NRT_ERR_ARG, \"%s_train_step: label %%d of sample %%d is not a class of '%s' (0..%" PRId64 ")\",\n"
               "                                 (int)b->labels[%d][i], i);\n",
            ln->loss.target, E->m, t->name, ln->loss.target, ln->loss.target, t->n, E->m, t->name,
            t->n - 1, ln->loss.target);
    }
    out(E, "    const int n = b->n;\n"
           "    m->x = b->x;\n"
           "    m->batch = b;\n"
           "    m->lr = lr;\n"
           "    m->loss = 0;\n");
    for (size_t i = 0; i < kp->train.len; i++) {
        const KStep *s = &kp->train.items[i];
        if (is_update(s) && guard) {
            out(E, "    NrtStatus finite = check_finite(m, err);\n"
                   "    if (loss)\n"
                   "        *loss = (float)m->loss;\n"
                   "    if (finite != NRT_OK)\n"
                   "        return finite;\n");
            guard = false;
        }
        out(E, "    %s(m, n);\n", s->fn);
    }
    out(E, "    m->step++;\n"
           "    if (loss)\n"
           "        *loss = (float)m->loss;\n"
           "    if (!isfinite(m->loss))\n"
           "        return nrt_error_set(err, NRT_ERR_NUMERIC, \"%s_train_step: the loss is %%g at step %%llu\",\n"
           "                             m->loss, (unsigned long long)m->step);\n"
           "    return NRT_OK;\n}\n\n", E->m);
    out(E, "float *%s_param(NrtModel *m, int index)\n"
           "{\n"
           "    return m && index >= 0 && index < %s_NPARAMS ? P(layout[index].off) : NULL;\n"
           "}\n\n"
           "float *%s_grad(NrtModel *m, int index)\n"
           "{\n"
           "    return m && index >= 0 && index < %s_NPARAMS && layout[index].grad >= 0 ? P(layout[index].grad) : NULL;\n"
           "}\n\n"
           "uint64_t *%s_step(NrtModel *m)\n"
           "{\n"
           "    return m ? &m->step : NULL;\n"
           "}\n\n", E->m, E->M, E->m, E->M, E->m);
}

/* ---- checkpoints ----------------------------------------------------------- */

/* Every tensor a checkpoint holds, in parameter order: parameters and
 * running statistics, then optimizer state, then preprocessing statistics. */
static void emit_ck_table(Emit *E)
{
    const KProgram *kp = E->kp;
    const char *state_sfx = E->g->train.opt.kind == IR_OPT_SGD ? "momentum" : NULL;
    int count = 0;
    out(E, "/* Checkpoint tensors: name, rank, shape, offset in the block. */\n"
           "static const NrtBlockTensor ck_tensors[] = {\n");
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < kp->params.len; i++) {
            const KParam *q = &kp->params.items[i];
            if (pass > 0 && (q->state[pass - 1] < 0))
                continue;
            const KBuf *b = kbuf(E, pass == 0 ? q->buf : q->state[pass - 1]);
            const char *sfx = pass == 0 ? NULL : state_sfx ? state_sfx : pass == 1 ? "adam_m" : "adam_v";
            out(E, "    {\"%s%s%s\", %d, {", q->p->name, sfx ? "." : "", sfx ? sfx : "", q->p->shape.rank);
            for (int d = 0; d < 4; d++)
                out(E, "%s%" PRId64, d ? ", " : "", d < q->p->shape.rank ? q->p->shape.d[d] : 0);
            out(E, "}, %" PRId64 "},\n", b->off);
            count++;
        }
    int pre[2] = {kp->pre_mean, kp->pre_std};
    for (int k = 0; k < 2; k++) {
        if (pre[k] < 0)
            continue;
        if (k == 1 && E->g->pre.kind == IR_PRE_ZCA)
            out(E, "    {\"%s\", 2, {%" PRId64 ", %" PRId64 ", 0, 0}, %" PRId64 "},\n", kbuf(E, pre[k])->name,
                kp->pre_channels, kp->pre_channels, kbuf(E, pre[k])->off);
        else
            out(E, "    {\"%s\", 1, {%" PRId64 ", 0, 0, 0}, %" PRId64 "},\n", kbuf(E, pre[k])->name,
                kp->pre_channels, kbuf(E, pre[k])->off);
        count++;
    }
    out(E, "};\nenum { NCK = %d };\n\n", count);
}

static void emit_checkpoint(Emit *E)
{
    emit_ck_table(E);
    out(E, "static const NrtBlockLayout ck_layout = {\n"
           "    \"%s\", STRUCTURE_HASH_STR, ck_tensors, NCK, BLOCK_FLOATS,\n"
           "};\n\n", E->m);
    out(E, "/* Parameters, running and preprocessing statistics, optimizer state; in\n"
           " * __metadata__ the model, its structure hash, the step and the seed. */\n"
           "NrtStatus %s_save(const NrtModel *m, const char *path, NrtError *err)\n"
           "{\n"
           "    if (!m || !path)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_save: NULL argument\");\n"
           "    return nrt_block_save(&ck_layout, m->block, m->step, m->seed, path, err);\n"
           "}\n\n", E->m, E->m);
    out(E, "/* All or nothing: the model is unchanged unless every tensor was there\n"
           " * with its shape and the structure hash matches. */\n"
           "NrtStatus %s_load(NrtModel *m, const char *path, NrtError *err)\n"
           "{\n"
           "    if (!m || !path)\n"
           "        return nrt_error_set(err, NRT_ERR_ARG, \"%s_load: NULL argument\");\n"
           "    return nrt_block_load(&ck_layout, &m->block, &m->step, &m->seed, path, err);\n"
           "}\n\n", E->m, E->m);
}

/* ---- the descriptor -------------------------------------------------------- */

static const char *opt_enum(IrOptKind k)
{
    return k == IR_OPT_SGD ? "NRT_OPT_SGD" : k == IR_OPT_ADAM ? "NRT_OPT_ADAM" : "NRT_OPT_ADAMW";
}

static const char *sched_enum(IrSchedKind k)
{
    return k == IR_SCHED_CONSTANT ? "NRT_SCHED_CONSTANT"
         : k == IR_SCHED_STEP ? "NRT_SCHED_STEP" : "NRT_SCHED_COSINE";
}

static const char *aug_enum(const IrAugment *a)
{
    switch (a->kind) {
    case IR_AUG_TRANSLATE: return "NRT_AUG_TRANSLATE";
    case IR_AUG_FLIP: return a->vertical ? "NRT_AUG_FLIP_VERTICAL" : "NRT_AUG_FLIP";
    case IR_AUG_ROTATE: return "NRT_AUG_ROTATE";
    case IR_AUG_CUTOUT: return "NRT_AUG_CUTOUT";
    case IR_AUG_NOISE: return "NRT_AUG_NOISE";
    }
    return "NRT_AUG_TRANSLATE";
}

static void emit_targets(Emit *E)
{
    const IrGraph *g = E->g;
    for (size_t t = 0; t < g->targets.len; t++) {
        const IrTarget *tg = g->targets.items[t];
        if (tg->source != IR_TARGET_FROM_MAP)
            continue;
        out(E, "static const int32_t map_%s[%" PRId64 "] = {", tg->name, tg->nmap);
        for (int64_t i = 0; i < tg->nmap; i++)
            out(E, "%s%" PRId64, i ? ", " : "", tg->map[i]);
        out(E, "};\n");
    }
    out(E, "static const NrtTargetInfo targets[%zu] = {\n", g->targets.len);
    for (size_t t = 0; t < g->targets.len; t++) {
        const IrTarget *tg = g->targets.items[t];
        const char *src = tg->source == IR_TARGET_FROM_DATA ? "NRT_TARGET_FROM_DATA"
                        : tg->source == IR_TARGET_FROM_MAP ? "NRT_TARGET_FROM_MAP"
                                                           : "NRT_TARGET_FROM_FILE";
        out(E, "    {.name = ");
        out_cstring(E, tg->name);
        out(E, ", .kind = %s, .n = %" PRId64 ", .source = %s",
            tg->kind == IR_TARGET_CLASSES ? "NRT_TARGET_CLASSES" : "NRT_TARGET_VALUES", tg->n, src);
        if (tg->source == IR_TARGET_FROM_MAP)
            out(E, ", .map_base = %d, .map = map_%s, .nmap = %" PRId64, tg->map_base, tg->name, tg->nmap);
        const IrTrain *tr = &g->train;
        if ((int)t < tr->data.ntarget_files && tr->data.target_files && tr->data.target_files[t]) {
            out(E, ", .file = ");
            out_cstring(E, tr->data.target_files[t]);
            out(E, ", .test_file = ");
            out_cstring(E, tr->data.target_test_files ? tr->data.target_test_files[t] : NULL);
        }
        out(E, "},\n");
    }
    out(E, "};\n");
    out(E, "static const NrtOutputInfo outputs[%zu] = {\n", g->outputs.len);
    for (size_t k = 0; k < g->outputs.len; k++) {
        out(E, "    {");
        out_cstring(E, g->outputs.items[k].name);
        out(E, ", %" PRId64 "},\n", ir_shape_numel(g->outputs.items[k].value->shape));
    }
    out(E, "};\n\n");
}

static void emit_train_config(Emit *E)
{
    const IrTrain *t = &E->g->train;
    char b[6][40];
    out(E, "    .train = {\n"
           "        .batch = %" PRId64 ", .epochs = %" PRId64 ", .seed = UINT64_C(%" PRIu64 "),\n",
        t->batch, t->epochs, t->seed);
    out(E, "        .optimizer = %s, .lr = %s, .momentum = %s, .beta1 = %s, .beta2 = %s,\n"
           "        .eps = %s, .weight_decay = %s, .nesterov = %s,\n",
        opt_enum(t->opt.kind), dbl(b[0], t->opt.lr), dbl(b[1], t->opt.momentum),
        dbl(b[2], t->opt.beta1), dbl(b[3], t->opt.beta2), dbl(b[4], t->opt.eps),
        dbl(b[5], t->opt.weight_decay), t->opt.nesterov ? "true" : "false");
    out(E, "        .schedule = %s, .step_every = %" PRId64 ", .warmup = %" PRId64 ", .step_gamma = %s,\n",
        sched_enum(t->sched.kind), t->sched.every, t->sched.warmup, dbl(b[0], t->sched.gamma));
    out(E, "        .naugments = %d,", t->naug);
    if (t->naug > 0) {
        out(E, " .augment = {");
        for (int i = 0; i < t->naug; i++)
            out(E, "%s%s", i ? ", " : "", aug_enum(&t->aug[i]));
        out(E, "}, .augment_amount = {");
        for (int i = 0; i < t->naug; i++)
            out(E, "%s%s", i ? ", " : "", dbl(b[0], t->aug[i].amount));
        out(E, "},");
    }
    out(E, "\n        .mix = %s, .mix_alpha = %s,\n",
        t->mix.kind == IR_MIX_NONE ? "NRT_MIX_NONE" : t->mix.kind == IR_MIX_MIXUP ? "NRT_MIX_MIXUP"
                                                                                  : "NRT_MIX_CUTMIX",
        dbl(b[0], t->mix.alpha));
    bool idx = t->data.kind == IR_DATA_IDX;
    const char *paths[4] = {t->data.train_images, t->data.train_labels, t->data.test_images,
                            t->data.test_labels};
    const char *keys[4] = {"train_images", "train_labels", "test_images", "test_labels"};
    for (int i = 0; i < 4; i++) {
        out(E, "        .%s = ", keys[i]);
        out_cstring(E, idx ? paths[i] : NULL);
        out(E, ",\n");
    }
    out(E, "    },\n");
}

static void emit_info(Emit *E)
{
    const IrGraph *g = E->g;
    const IrShape *in = &g->input.shape;
    emit_targets(E);
    out(E, "static const NrtModelInfo info = {\n"
           "    .abi = NRT_MODEL_ABI,\n"
           "    .name = \"%s\",\n"
           "    .structure_hash = %s_STRUCTURE_HASH,\n"
           "    .batch = %s_BATCH,\n"
           "    .input_rank = %d,\n"
           "    .input_shape = {", E->m, E->M, E->M, in->rank);
    for (int i = 0; i < in->rank; i++)
        out(E, "%s%" PRId64, i ? ", " : "", in->d[i]);
    out(E, "},\n    .input_size = %s_INPUT_SIZE,\n"
           "    .ntargets = %zu, .targets = targets,\n"
           "    .noutputs = %zu, .outputs = outputs,\n"
           "    .nparams = %s_NPARAMS, .params = params,\n", E->M, g->targets.len, g->outputs.len, E->M);
    emit_train_config(E);
    out(E, "    .create = %s_create, .destroy = %s_free, .save = %s_save, .load = %s_load,\n"
           "    .fit_preprocess = %s_fit_preprocess, .predict = %s_predict, .train_step = %s_train_step,\n"
           "    .param = %s_param, .grad = %s_grad, .step = %s_step,\n"
           "};\n\n"
           "const NrtModelInfo *%s_info(void)\n{\n    return &info;\n}\n",
        E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m);
}

/* ---- the header -------------------------------------------------------------- */

typedef struct NamedIndex {
    const char *name;
    size_t index;
} NamedIndex;

/* By name, then by index: equal names keep their parameter order. */
static int cmp_name_index(const void *pa, const void *pb)
{
    const NamedIndex *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

static void emit_header(Emit *E)
{
    const KProgram *kp = E->kp;
    const IrGraph *g = E->g;
    out(E, "/* %s.h - the %s model, generated by netc %s from %s; do not edit.\n"
           " * API and usage: docs/generated-api.md. */\n"
           "#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n#include \"netrt.h\"\n\n",
        E->m, E->m, NETC_VERSION, kp->source_name, E->M, E->M);
    out(E, "#define %s_BATCH %" PRId64 "    /* the largest n a call accepts */\n", E->M, kp->batch);
    out(E, "#define %s_INPUT_SIZE %" PRId64 "    /* floats per sample", E->M,
        ir_shape_numel(g->input.shape));
    if (g->input.shape.rank == 3)
        out(E, ": C x H x W */\n#define %s_INPUT_C %" PRId64 "\n#define %s_INPUT_H %" PRId64
               "\n#define %s_INPUT_W %" PRId64 "\n", E->M, g->input.shape.d[0], E->M,
            g->input.shape.d[1], E->M, g->input.shape.d[2]);
    else
        out(E, " */\n");
    out(E, "#define %s_NOUTPUTS %zu\n", E->M, g->outputs.len);
    for (size_t k = 0; k < g->outputs.len; k++) {
        char up[128];
        size_t j = 0;
        for (const char *c = g->outputs.items[k].name; *c && j + 1 < sizeof up; c++)
            up[j++] = (char)toupper((unsigned char)*c);
        up[j] = '\0';
        out(E, "#define %s_OUTPUT_%s %zu    /* outs[%zu]: %" PRId64 " floats per sample */\n",
            E->M, up, k, k, ir_shape_numel(g->outputs.items[k].value->shape));
        out(E, "#define %s_OUTPUT_%s_SIZE %" PRId64 "\n", E->M, up,
            ir_shape_numel(g->outputs.items[k].value->shape));
    }
    out(E, "#define %s_NPARAMS %zu\n", E->M, kp->params.len);
    out(E, "#define %s_STRUCTURE_HASH UINT64_C(0x%016" PRIx64 ")\n\n", E->M, kp->structure_hash);
    out(E, "/* Parameter indices for %s_param / %s_grad and %s_info()->params. */\nenum {\n",
        E->m, E->m, E->m);
    size_t np = kp->params.len;
    size_t nn = np ? np : 1;
    char (*names)[160] = netc_malloc(nn * sizeof *names);
    NamedIndex *order = names ? netc_malloc(nn * sizeof *order) : NULL;
    bool *dup = order ? netc_malloc(nn * sizeof *dup) : NULL;
    if (!names || !order || !dup) {
        free(names), free(order), free(dup);
        E->failed = true;
        errno = ENOMEM;
        return;
    }
    memset(dup, 0, nn * sizeof *dup);
    for (size_t i = 0; i < np; i++) {
        param_enum(E, kp->params.items[i].p, names[i], sizeof names[i]);
        order[i] = (NamedIndex){names[i], i};
    }
    /* "a.b_c" and "a_b.c" would both be A_B_C: all but the first get their index */
    qsort(order, np, sizeof *order, cmp_name_index);
    for (size_t k = 1; k < np; k++)
        dup[order[k].index] = strcmp(order[k].name, order[k - 1].name) == 0;
    for (size_t i = 0; i < np; i++) {
        if (dup[i])
            out(E, "    %s_%zu = %zu,\n", names[i], i, i);
        else
            out(E, "    %s = %zu,\n", names[i], i);
    }
    free(names), free(order), free(dup);
    out(E, "};\n\n");
    out(E, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    out(E, "NrtStatus %s_create(NrtModel **out, uint64_t seed, NrtError *err);\n"
           "void %s_free(NrtModel *m);\n"
           "NrtStatus %s_save(const NrtModel *m, const char *path, NrtError *err);\n"
           "NrtStatus %s_load(NrtModel *m, const char *path, NrtError *err);\n"
           "NrtStatus %s_fit_preprocess(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err);\n"
           "NrtStatus %s_predict(NrtModel *m, const float *x, int n, float *const *outs, NrtError *err);\n"
           "NrtStatus %s_train_step(NrtModel *m, const NrtBatch *b, float lr, float *loss, NrtError *err);\n"
           "float *%s_param(NrtModel *m, int index);\n"
           "float *%s_grad(NrtModel *m, int index);\n"
           "uint64_t *%s_step(NrtModel *m);\n"
           "const NrtModelInfo *%s_info(void);\n\n"
           "#ifdef __cplusplus\n}\n#endif\n\n"
           "#endif\n",
        E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m, E->m);
}

/* ---- entry points ------------------------------------------------------------ */

bool emitc_print(const KProgram *kp, FILE *c, FILE *h, const char *h_name)
{
    Emit E = {kp, kp->g, h, {0}, kp->g->model, false};
    size_t j = 0;
    for (const char *p = E.m; *p && j + 1 < sizeof E.M; p++)
        E.M[j++] = (char)toupper((unsigned char)*p);
    emit_header(&E);
    E.f = c;
    emit_prelude(&E, h_name);
    emit_steps(&E);
    emit_tables(&E);
    emit_init(&E);
    emit_workspace(&E);
    emit_create(&E);
    emit_fit(&E);
    emit_run(&E);
    emit_checkpoint(&E);
    emit_info(&E);
    return !E.failed && !ferror(c) && !ferror(h);
}

void emitc_header_path(const char *c_path, char *buf, size_t size)
{
    const char *slash = strrchr(c_path, '/');
    const char *dot = strrchr(c_path, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - c_path) : strlen(c_path);
    snprintf(buf, size, "%.*s.h", (int)stem, c_path);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Writes through path.tmp and a rename, so no half-written file remains. */
static FILE *open_tmp(const char *path, char *tmp, size_t size, char *err, size_t errsize)
{
    snprintf(tmp, size, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        snprintf(err, errsize, "cannot write '%s': %s", tmp, strerror(errno));
    return f;
}

static bool close_tmp(FILE *f, const char *tmp, const char *path, bool ok, char *err,
                      size_t errsize)
{
    if (fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        if (!*err)
            snprintf(err, errsize, "cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
    }
    return ok;
}

int emitc_files(const IrGraph *g, const char *source_path, const char *c_path,
                const char *h_path, DiagSink *d, char *err, size_t errsize)
{
    KProgram *kp = NULL;
    if (err && errsize)
        err[0] = '\0';
    if (lower_program(g, base_name(source_path), d, &kp))
        return EMITC_ERR_INPUT;
    char ctmp[4096], htmp[4096];
    FILE *c = open_tmp(c_path, ctmp, sizeof ctmp, err, errsize);
    FILE *h = c ? open_tmp(h_path, htmp, sizeof htmp, err, errsize) : NULL;
    if (!c || !h) {
        if (c)
            fclose(c), remove(ctmp);
        return EMITC_ERR_IO;
    }
    bool ok = emitc_print(kp, c, h, base_name(h_path));
    ok = close_tmp(h, htmp, h_path, ok, err, errsize);
    ok = close_tmp(c, ctmp, c_path, ok, err, errsize) && ok;
    return ok ? EMITC_OK : EMITC_ERR_IO;
}
