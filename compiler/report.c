/* report.c - the `netc check` table; see report.h. */
#include "report.h"

#include <inttypes.h>
#include <string.h>

void report_human_count(int64_t v, char *buf, size_t size)
{
    if (v < 10000)
        snprintf(buf, size, "%" PRId64, v);
    else if (v < 10000000)
        snprintf(buf, size, "%.1fK", (double)v / 1e3);
    else if (v < 10000000000)
        snprintf(buf, size, "%.1fM", (double)v / 1e6);
    else
        snprintf(buf, size, "%.1fG", (double)v / 1e9);
}

void report_human_bytes(int64_t v, char *buf, size_t size)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRId64 " B", v);
    else
        snprintf(buf, size, "%.1f %s", x, unit[u]);
}

void report_describe_op(const IrNode *n, char *buf, size_t size)
{
    const char *op = ir_op_name(n->op);
    switch (n->op) {
    case IR_OP_DENSE:
        snprintf(buf, size, "dense %" PRId64 "%s", n->dense.units,
                 n->dense.dropconnect > 0 ? " dropconnect" : "");
        break;
    case IR_OP_CONV:
        snprintf(buf, size, "conv %" PRId64 "x%" PRId64 "x%" PRId64 " /%" PRId64 " pad %" PRId64 "%s",
                 n->conv.filters, n->conv.kernel, n->conv.kernel, n->conv.stride, n->conv.pad,
                 n->conv.dropconnect > 0 ? " dropconnect" : "");
        break;
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
        snprintf(buf, size, "%s %" PRId64 " /%" PRId64 "%s", op, n->pool.size, n->pool.stride,
                 n->pool.pad ? " pad" : "");
        break;
    case IR_OP_FRACTIONAL_MAXPOOL:
        snprintf(buf, size, "%s %g%s", op, n->frac.ratio, n->frac.overlap ? " overlap" : "");
        break;
    case IR_OP_LEAKY_RELU:
        snprintf(buf, size, "%s %g", op, n->leaky.slope);
        break;
    case IR_OP_DROPOUT:
    case IR_OP_DROP_PATH:
        snprintf(buf, size, "%s %g", op, n->drop.p);
        break;
    case IR_OP_GAUSSIAN_NOISE:
        snprintf(buf, size, "%s %g", op, n->noise.std);
        break;
    case IR_OP_CROSS_ENTROPY:
    case IR_OP_MSE:
        if (n->loss.weight != 1.0)
            snprintf(buf, size, "%s x%g", op, n->loss.weight);
        else
            snprintf(buf, size, "%s", op);
        break;
    default:
        snprintf(buf, size, "%s", op);
        break;
    }
}

static int64_t node_param_count(const IrNode *n)
{
    int64_t total = 0;
    const IrParam *ps[] = {n->weight, n->bias, n->gamma, n->beta};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        if (ps[i] && ps[i]->trainable)
            total += ps[i]->numel;
    return total;
}

typedef struct Totals {
    int64_t params, flops, act_bytes, state_bytes;
} Totals;

static void print_row(const IrNode *n, FILE *f, Totals *t)
{
    char op[96], shape[64], params[32], flops[32];
    report_describe_op(n, op, sizeof op);
    if (n->out && n->out->shape.rank > 0)
        ir_shape_str(n->out->shape, shape, sizeof shape);
    else
        snprintf(shape, sizeof shape, "scalar");
    int64_t np = node_param_count(n);
    int64_t fl = ir_node_flops(n);
    report_human_count(np, params, sizeof params);
    report_human_count(fl, flops, sizeof flops);
    fprintf(f, "  %-22s %-28s %-16s %10s %10s  line %d\n", n->name, op, shape,
            np ? params : "-", fl ? flops : "-", n->sp.line);
    t->params += np;
    t->flops += fl;
    if (n->out && n->op != IR_OP_INPUT && !(ir_op_flags(n->op) & IR_F_LOSS))
        t->act_bytes += ir_shape_numel(n->out->shape) * 4;
}

void report_print(const IrGraph *g, FILE *f)
{
    char shape[64];
    ir_shape_str(g->input.shape, shape, sizeof shape);
    fprintf(f, "model %s: input %s %s, %zu target%s, %zu loss%s\n\n", g->model,
            g->input.name, shape, g->targets.len, g->targets.len == 1 ? "" : "s",
            g->losses.len, g->losses.len == 1 ? "" : "es");
    fprintf(f, "  %-22s %-28s %-16s %10s %10s\n", "layer", "op", "output", "params", "FLOPs");
    Totals t = {0};
    for (size_t i = 0; i < g->nodes.len; i++)
        print_row(g->nodes.items[i], f, &t);
    for (size_t i = 0; i < g->params.len; i++)
        t.state_bytes += g->params.items[i]->numel * 4;

    char buf[4][32];
    report_human_count(t.params, buf[0], sizeof buf[0]);
    report_human_count(t.flops, buf[1], sizeof buf[1]);
    report_human_bytes(t.act_bytes, buf[2], sizeof buf[2]);
    report_human_bytes(t.state_bytes, buf[3], sizeof buf[3]);
    fprintf(f, "\n  parameters:              %" PRId64 " (%s), %s with running statistics\n",
            t.params, buf[0], buf[3]);
    fprintf(f, "  forward FLOPs / sample:  %" PRId64 " (%s)\n", t.flops, buf[1]);
    fprintf(f, "  activations / sample:    %s\n", buf[2]);
    report_human_bytes(t.act_bytes * g->train.batch, buf[2], sizeof buf[2]);
    fprintf(f, "  activations / batch %-4" PRId64 " %s (forward; training keeps about 2x)\n",
            g->train.batch, buf[2]);
}

void report_plan(const KProgram *kp, FILE *f)
{
    int64_t unshared = 0;
    for (size_t i = 0; i < kp->bufs.len; i++) {
        const KBuf *b = &kp->bufs.items[i];
        if (b->space != KS_ARENA)
            continue;
        int64_t fl = b->per_sample ? b->per_sample * kp->batch : b->fixed;
        unshared += (fl + 15) / 16 * 16;   /* lower.c's rounding of each buffer */
    }
    char arena[32], plain[32], block[32];
    report_human_bytes(kp->arena_floats * 4, arena, sizeof arena);
    report_human_bytes(unshared * 4, plain, sizeof plain);
    report_human_bytes(kp->block_floats * 4, block, sizeof block);
    fprintf(f, "  planned arena, batch %-3" PRId64 " %s (%" PRId64 " bytes; %s without buffer reuse)\n",
            kp->batch, arena, kp->arena_floats * 4, plain);
    fprintf(f, "  planned parameter block: %s (parameters, statistics, gradients, optimizer state)\n",
            block);
}
