/* dot.c - Graphviz output; see dot.h. */
#include "dot.h"

#include "report.h"

static void write_node(const IrNode *n, FILE *f, int indent)
{
    char op[96];
    report_describe_op(n, op, sizeof op);
    const char *shape = "box";
    const char *fill = "#e8eef9";
    if (n->op == IR_OP_INPUT) {
        shape = "ellipse";
        fill = "#fdf1d6";
    } else if (ir_op_flags(n->op) & IR_F_LOSS) {
        shape = "octagon";
        fill = "#f9e0e0";
    } else if (n->weight || n->gamma) {
        fill = "#dcefdc";
    }
    fprintf(f, "%*sn%d [label=\"%s\\n%s\", shape=%s, fillcolor=\"%s\"];\n", indent, "",
            n->id, n->name, op, shape, fill);
}

/* Emits the nodes of scope s (NULL: top level), then its child scopes as
 * nested clusters. Depth is bounded by sema's block expansion limit. */
static void write_scope(const IrGraph *g, const IrScope *s, FILE *f, int indent)
{
    for (size_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.items[i]->scope == s)
            write_node(g->nodes.items[i], f, indent);
    for (size_t i = 0; i < g->scopes.len; i++) {
        const IrScope *c = g->scopes.items[i];
        if (c->parent != s)
            continue;
        fprintf(f, "%*ssubgraph cluster_%d {\n", indent, "", c->id);
        fprintf(f, "%*slabel=\"%s (block %s)\"; style=\"rounded,dashed\"; color=\"#7a8aa8\";\n",
                indent + 2, "", c->label, c->block);
        write_scope(g, c, f, indent + 2);
        fprintf(f, "%*s}\n", indent, "");
    }
}

static void write_edges(const IrGraph *g, FILE *f)
{
    char shape[64];
    for (size_t i = 0; i < g->nodes.len; i++) {
        const IrNode *n = g->nodes.items[i];
        for (int k = 0; k < n->nin; k++) {
            const IrValue *v = n->in[k];
            ir_shape_str(v->shape, shape, sizeof shape);
            fprintf(f, "  n%d -> n%d [label=\"%s\"];\n", v->producer->id, n->id, shape);
        }
    }
    for (size_t i = 0; i < g->targets.len; i++) {
        const IrTarget *t = g->targets.items[i];
        fprintf(f, "  t%d [label=\"%s\\n%s(%lld)\", shape=ellipse, fillcolor=\"#fdf1d6\"];\n",
                t->id, t->name, t->kind == IR_TARGET_CLASSES ? "classes" : "values",
                (long long)t->n);
    }
    for (size_t i = 0; i < g->losses.len; i++) {
        const IrNode *n = g->losses.items[i];
        fprintf(f, "  t%d -> n%d [style=dashed];\n", n->loss.target, n->id);
    }
    for (size_t i = 0; i < g->outputs.len; i++) {
        const IrOutput *o = &g->outputs.items[i];
        ir_shape_str(o->value->shape, shape, sizeof shape);
        fprintf(f, "  out%zu [label=\"output %s\", shape=ellipse, fillcolor=\"#fdf1d6\"];\n",
                i, o->name);
        fprintf(f, "  n%d -> out%zu [label=\"%s\"];\n", o->value->producer->id, i, shape);
    }
}

void dot_write(const IrGraph *g, FILE *f)
{
    fprintf(f, "digraph \"%s\" {\n", g->model);
    fputs("  rankdir=TB;\n"
          "  node [style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#556070\"];\n", f);
    write_scope(g, NULL, f, 2);
    write_edges(g, f);
    fputs("}\n", f);
}
