/* ir_print.c - the stable text dump of a graph (`netc check --ir`).
 *
 * One fact per line, in id order, every resolved default written out, so a
 * diff of two dumps shows exactly what changed. Numbers print in the
 * shortest form that reads back to the same double; nothing depends on
 * pointers, the host or the time.
 */
#include "graph.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Shortest %.Ng (N <= 17) that round-trips. */
static const char *num(double x, char *buf, size_t size)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return buf;
}

/* Several numbers in one printf: each call takes the next buffer of a ring
 * (function calls are sequenced, so this is well defined). */
typedef struct NumRing {
    char buf[8][32];
    int next;
} NumRing;

static const char *ring_num(NumRing *r, double x)
{
    char *b = r->buf[r->next++ % 8];
    return num(x, b, sizeof r->buf[0]);
}

#define NUM(x) ring_num(&ring, (x))

static void print_init(const IrInit *in, FILE *f)
{
    NumRing ring = {0};
    fputs(ir_init_name(in->kind), f);
    switch (in->kind) {
    case IR_INIT_CONSTANT:
    case IR_INIT_NORMAL:
    case IR_INIT_UNIFORM:
        fprintf(f, "(%s)", NUM(in->value));
        break;
    case IR_INIT_KAIMING:
    case IR_INIT_KAIMING_UNIFORM:
        fprintf(f, "(fan=%s, slope=%s)", in->fan_out ? "out" : "in", NUM(in->slope));
        break;
    default:
        break;
    }
}

static void print_param(const IrParam *p, FILE *f)
{
    char shape[96];
    NumRing ring = {0};
    fprintf(f, "    param %d %s %s init=", p->id, p->name, ir_shape_str(p->shape, shape, sizeof shape));
    print_init(&p->init, f);
    fprintf(f, " fan_in=%" PRId64 " fan_out=%" PRId64, p->fan_in, p->fan_out);
    if (p->l1 > 0)
        fprintf(f, " l1=%s", NUM(p->l1));
    if (p->l2 > 0)
        fprintf(f, " l2=%s", NUM(p->l2));
    fprintf(f, "%s\n", p->trainable ? "" : " state");
}

static void print_attrs(const IrNode *n, FILE *f)
{
    NumRing ring = {0};
    switch (n->op) {
    case IR_OP_DENSE:
        fprintf(f, " units=%" PRId64 " dropconnect=%s", n->dense.units, NUM(n->dense.dropconnect));
        break;
    case IR_OP_CONV:
        fprintf(f, " filters=%" PRId64 " kernel=%" PRId64 " stride=%" PRId64 " pad=%" PRId64
                   " dropconnect=%s",
                n->conv.filters, n->conv.kernel, n->conv.stride, n->conv.pad,
                NUM(n->conv.dropconnect));
        break;
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
        fprintf(f, " size=%" PRId64 " stride=%" PRId64 " pad=%" PRId64, n->pool.size,
                n->pool.stride, n->pool.pad);
        break;
    case IR_OP_FRACTIONAL_MAXPOOL:
        fprintf(f, " ratio=%s overlap=%s", NUM(n->frac.ratio), n->frac.overlap ? "true" : "false");
        break;
    case IR_OP_LEAKY_RELU:
        fprintf(f, " slope=%s", NUM(n->leaky.slope));
        break;
    case IR_OP_BATCHNORM:
        fprintf(f, " momentum=%s eps=%s", NUM(n->bn.momentum), NUM(n->bn.eps));
        break;
    case IR_OP_DROPOUT:
    case IR_OP_DROP_PATH:
        fprintf(f, " p=%s", NUM(n->drop.p));
        break;
    case IR_OP_GAUSSIAN_NOISE:
        fprintf(f, " std=%s", NUM(n->noise.std));
        break;
    case IR_OP_CROSS_ENTROPY:
        fprintf(f, " target=%d weight=%s smoothing=%s", n->loss.target, NUM(n->loss.weight),
                NUM(n->loss.smoothing));
        break;
    case IR_OP_MSE:
        fprintf(f, " target=%d weight=%s", n->loss.target, NUM(n->loss.weight));
        break;
    default:
        break;
    }
}

static void print_node(const IrNode *n, FILE *f)
{
    char shape[96];
    fprintf(f, "  %%%d %s = %s(", n->id, n->name, ir_op_name(n->op));
    for (int k = 0; k < n->nin; k++)
        fprintf(f, "%s%%%d", k ? ", " : "", n->in[k]->producer->id);
    fprintf(f, ") -> %s", n->out->shape.rank ? ir_shape_str(n->out->shape, shape, sizeof shape)
                                             : "scalar");
    print_attrs(n, f);
    if (n->out->name && strcmp(n->out->name, n->name) != 0)
        fprintf(f, " as %s", n->out->name);
    if (n->scope)
        fprintf(f, " scope=%d", n->scope->id);
    fprintf(f, " @%d:%d\n", n->sp.line, n->sp.col);
    const IrParam *ps[] = {n->weight, n->bias, n->gamma, n->beta, n->running_mean,
                           n->running_var};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        if (ps[i])
            print_param(ps[i], f);
}

static void print_targets(const IrGraph *g, FILE *f)
{
    static const char *src[] = {"data", "map", "file"};
    for (size_t i = 0; i < g->targets.len; i++) {
        const IrTarget *t = g->targets.items[i];
        fprintf(f, "target %d %s %s(%" PRId64 ") from %s", t->id, t->name,
                t->kind == IR_TARGET_CLASSES ? "classes" : "values", t->n, src[t->source]);
        if (t->source == IR_TARGET_FROM_MAP) {
            fprintf(f, " base=%d [", t->map_base);
            for (int64_t k = 0; k < t->nmap; k++)
                fprintf(f, "%s%" PRId64, k ? ", " : "", t->map[k]);
            fputc(']', f);
        }
        fputc('\n', f);
    }
}

static void print_list(const char *key, const double *v, int n, FILE *f)
{
    char nb[32];
    if (!v)
        return;
    fprintf(f, " %s=[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ", " : "", num(v[i], nb, sizeof nb));
    fputc(']', f);
}

static void print_preprocess(const IrPreprocess *p, FILE *f)
{
    static const char *names[] = {"none", "scale", "mean_image", "mean_channel", "standardize",
                                  "zca"};
    NumRing ring = {0};
    fprintf(f, "preprocess %s", names[p->kind]);
    if (p->kind == IR_PRE_SCALE)
        fprintf(f, " scale=%s", NUM(p->scale));
    if (p->kind == IR_PRE_ZCA)
        fprintf(f, " eps=%s", NUM(p->eps));
    print_list("mean", p->mean, p->nmean, f);
    print_list("std", p->std, p->nstd, f);
    fputc('\n', f);
}

static void print_data(const IrGraph *g, FILE *f)
{
    const IrTrain *t = &g->train;
    if (t->data.kind == IR_DATA_FASHION_MNIST) {
        fputs("  data fashion_mnist\n", f);
        return;
    }
    fprintf(f, "  data idx train_images=\"%s\" train_labels=\"%s\"", t->data.train_images,
            t->data.train_labels);
    if (t->data.test_images)
        fprintf(f, " test_images=\"%s\" test_labels=\"%s\"", t->data.test_images,
                t->data.test_labels);
    fputc('\n', f);
    for (int i = 0; i < t->data.ntarget_files; i++)
        if (t->data.target_files[i])
            fprintf(f, "  data target %d train=\"%s\" test=\"%s\"\n", i, t->data.target_files[i],
                    t->data.target_test_files[i] ? t->data.target_test_files[i] : "");
}

static void print_train(const IrGraph *g, FILE *f)
{
    static const char *opt[] = {"sgd", "adam", "adamw"};
    static const char *sched[] = {"constant", "step", "cosine"};
    static const char *aug[] = {"translate", "flip", "rotate", "cutout", "noise"};
    static const char *mix[] = {"none", "mixup", "cutmix"};
    const IrTrain *t = &g->train;
    NumRing ring = {0};
    fprintf(f, "train batch=%" PRId64 " epochs=%" PRId64 " seed=%" PRIu64 "\n", t->batch,
            t->epochs, t->seed);
    print_data(g, f);
    fprintf(f, "  optimizer %s lr=%s", opt[t->opt.kind], NUM(t->opt.lr));
    if (t->opt.kind == IR_OPT_SGD)
        fprintf(f, " momentum=%s nesterov=%s\n", NUM(t->opt.momentum),
                t->opt.nesterov ? "true" : "false");
    else
        fprintf(f, " beta1=%s beta2=%s eps=%s weight_decay=%s\n", NUM(t->opt.beta1),
                NUM(t->opt.beta2), NUM(t->opt.eps), NUM(t->opt.weight_decay));
    fprintf(f, "  schedule %s", sched[t->sched.kind]);
    if (t->sched.kind == IR_SCHED_STEP)
        fprintf(f, " every=%" PRId64 " gamma=%s", t->sched.every, NUM(t->sched.gamma));
    if (t->sched.kind == IR_SCHED_COSINE)
        fprintf(f, " warmup=%" PRId64, t->sched.warmup);
    fprintf(f, "\n  regularize l1=%s l2=%s biases=%s\n", NUM(t->reg.l1), NUM(t->reg.l2),
            t->reg.biases ? "true" : "false");
    for (int i = 0; i < t->naug; i++) {
        const IrAugment *a = &t->aug[i];
        fprintf(f, "  augment %s", aug[a->kind]);
        if (a->kind == IR_AUG_FLIP)
            fprintf(f, " %s\n", a->vertical ? "vertical" : "horizontal");
        else
            fprintf(f, " %s\n", NUM(a->amount));
    }
    fprintf(f, "  mix %s", mix[t->mix.kind]);
    if (t->mix.kind != IR_MIX_NONE)
        fprintf(f, " alpha=%s", NUM(t->mix.alpha));
    fputc('\n', f);
}

void ir_print(const IrGraph *g, FILE *f)
{
    char shape[96];
    fprintf(f, "model %s\n", g->model);
    fprintf(f, "input %s %s\n", g->input.name, ir_shape_str(g->input.shape, shape, sizeof shape));
    print_targets(g, f);
    print_preprocess(&g->pre, f);
    for (size_t i = 0; i < g->scopes.len; i++) {
        const IrScope *s = g->scopes.items[i];
        fprintf(f, "scope %d %s block=%s parent=%d @%d:%d\n", s->id, s->label, s->block,
                s->parent ? s->parent->id : -1, s->call_sp.line, s->call_sp.col);
    }
    fputs("nodes\n", f);
    for (size_t i = 0; i < g->nodes.len; i++)
        print_node(g->nodes.items[i], f);
    for (size_t i = 0; i < g->losses.len; i++)
        fprintf(f, "loss %zu %%%d\n", i, g->losses.items[i]->id);
    for (size_t i = 0; i < g->outputs.len; i++) {
        const IrOutput *o = &g->outputs.items[i];
        fprintf(f, "output %s = %%%d %s\n", o->name, o->value->producer->id,
                ir_shape_str(o->value->shape, shape, sizeof shape));
    }
    print_train(g, f);
}
