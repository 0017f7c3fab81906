/* ast.c - printing the syntax tree (`netc check --ast`, parser tests).
 *
 * The dump is an S-expression, one statement per line; block bodies and
 * train settings go on their own lines, indented by two spaces. It is stable
 * (tests compare it) and shows the tree as parsed, spans left out:
 *
 *   (model lenet)
 *   (input image 1 28 28)
 *   (target coarse (call classes 3) (call map (call label) (list 0 1)))
 *   (preprocess (call standardize (mean= (list 0.286))))
 *   (default init (call kaiming))
 *   (block res (params f)
 *     (bind out (sum (paren (chain (call in) (call relu))) (call in))))
 *   (bind x (chain (call image) (call conv 6 5 (pad= 2)) (call relu)))
 *   (loss (call mse (call x) (call y)) (weight 0.5))
 *   (output p (call softmax (call x)))
 *   (train
 *     (data (call fashion_mnist))
 *     (batch 64)
 *     (augment (call flip) (call translate 2)))
 *
 * A call is (call NAME ARG...); `()` after the name marks a call written
 * with parentheses (relu() as opposed to relu) - it is printed only when
 * there are no arguments, since arguments imply parentheses. A keyword
 * argument is (KEY= VALUE). Numbers appear as written ("5e-4", "-2"),
 * strings quoted with \" \\ and \xHH for bytes outside printable ASCII.
 * Nesting is bounded by the parser's AST_MAX_DEPTH, so recursion is safe.
 */
#include "ast.h"

static void print_node(const AstNode *n, FILE *out);

static void print_string(const char *s, int len, FILE *out)
{
    fputc('"', out);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, out);
        else
            fprintf(out, "\\x%02x", c);
    }
    fputc('"', out);
}

static void print_call(const AstNode *n, FILE *out)
{
    fprintf(out, "(call %s", n->call.name);
    if (n->call.has_parens && n->call.nargs == 0)
        fputs(" ()", out);
    for (int i = 0; i < n->call.nargs; i++) {
        const AstArg *arg = &n->call.args[i];
        fputc(' ', out);
        if (arg->key)
            fprintf(out, "(%s= ", arg->key);
        print_node(arg->value, out);
        if (arg->key)
            fputc(')', out);
    }
    fputc(')', out);
}

static void print_nodes(const char *head, AstNode *const *items, int n, FILE *out)
{
    fprintf(out, "(%s", head);
    for (int i = 0; i < n; i++) {
        fputc(' ', out);
        print_node(items[i], out);
    }
    fputc(')', out);
}

static void print_node(const AstNode *n, FILE *out)
{
    if (!n) {
        fputs("(null)", out);
        return;
    }
    switch (n->kind) {
    case AST_CALL:
        print_call(n, out);
        return;
    case AST_CHAIN:
        fputs("(chain ", out);
        print_node(n->chain.head, out);
        for (int i = 0; i < n->chain.ncalls; i++) {
            fputc(' ', out);
            print_node(n->chain.calls[i], out);
        }
        fputc(')', out);
        return;
    case AST_SUM:
        print_nodes("sum", n->sum.terms, n->sum.nterms, out);
        return;
    case AST_PAREN:
        fputs("(paren ", out);
        print_node(n->paren.inner, out);
        fputc(')', out);
        return;
    case AST_NUMBER:
        fputs(n->num.text ? n->num.text : "?", out);
        return;
    case AST_STRING:
        print_string(n->str.s, n->str.len, out);
        return;
    case AST_LIST:
        print_nodes("list", n->list.items, n->list.n, out);
        return;
    }
    fputs("(?)", out);
}

static void print_stmt(const AstStmt *s, int indent, FILE *out);

static void print_block(const AstStmt *s, int indent, FILE *out)
{
    fprintf(out, "(block %s (params", s->name);
    for (int i = 0; i < s->block.nparams; i++)
        fprintf(out, " %s", s->block.params[i]);
    fputc(')', out);
    for (int i = 0; i < s->block.nbody; i++) {
        fprintf(out, "\n%*s", indent + 2, "");
        print_stmt(s->block.body[i], indent + 2, out);
    }
    fputc(')', out);
}

static void print_train(const AstStmt *s, int indent, FILE *out)
{
    fputs("(train", out);
    for (int i = 0; i < s->train.nsettings; i++) {
        fprintf(out, "\n%*s", indent + 2, "");
        print_stmt(s->train.settings[i], indent + 2, out);
    }
    fputc(')', out);
}

static void print_stmt(const AstStmt *s, int indent, FILE *out)
{
    const char *kw = ast_stmt_kind_name(s->kind);
    switch (s->kind) {
    case STMT_MODEL:
        fprintf(out, "(model %s)", s->name);
        return;
    case STMT_INPUT:
        fprintf(out, "(input %s", s->name);
        for (int i = 0; i < s->input.ndims; i++)
            fprintf(out, " %lld", (long long)s->input.dims[i].value);
        fputc(')', out);
        return;
    case STMT_TARGET:
        fprintf(out, "(target %s ", s->name);
        print_node(s->target.kind, out);
        if (s->target.derive) {
            fputc(' ', out);
            print_node(s->target.derive, out);
        }
        fputc(')', out);
        return;
    case STMT_DEFAULT:
        fprintf(out, "(default %s ", s->name);
        print_node(s->deflt.call, out);
        fputc(')', out);
        return;
    case STMT_BLOCK:
        print_block(s, indent, out);
        return;
    case STMT_BIND:
    case STMT_OUTPUT:
        fprintf(out, "(%s %s ", kw, s->name);
        print_node(s->bind.expr, out);
        fputc(')', out);
        return;
    case STMT_LOSS:
        fputs("(loss ", out);
        print_node(s->loss.call, out);
        if (s->loss.weight) {
            fputs(" (weight ", out);
            print_node(s->loss.weight, out);
            fputc(')', out);
        }
        fputc(')', out);
        return;
    case STMT_TRAIN:
        print_train(s, indent, out);
        return;
    case STMT_SET_BATCH:
    case STMT_SET_EPOCHS:
    case STMT_SET_SEED:
        fprintf(out, "(%s %lld)", kw, (long long)s->int_setting.value);
        return;
    case STMT_SET_AUGMENT:
        print_nodes(kw, s->augment.calls, s->augment.ncalls, out);
        return;
    case STMT_PREPROCESS:
    case STMT_SET_DATA:
    case STMT_SET_OPTIMIZER:
    case STMT_SET_SCHEDULE:
    case STMT_SET_REGULARIZE:
    case STMT_SET_MIX:
        fprintf(out, "(%s ", kw);
        print_node(s->setting.call, out);
        fputc(')', out);
        return;
    }
    fputs("(?)", out);
}

void ast_print(const AstFile *f, FILE *out)
{
    for (int i = 0; i < f->nstmts; i++) {
        print_stmt(f->stmts[i], 0, out);
        fputc('\n', out);
    }
}

const char *ast_stmt_kind_name(AstStmtKind k)
{
    switch (k) {
    case STMT_MODEL: return "model";
    case STMT_INPUT: return "input";
    case STMT_TARGET: return "target";
    case STMT_PREPROCESS: return "preprocess";
    case STMT_DEFAULT: return "default";
    case STMT_BLOCK: return "block";
    case STMT_BIND: return "bind";
    case STMT_LOSS: return "loss";
    case STMT_OUTPUT: return "output";
    case STMT_TRAIN: return "train";
    case STMT_SET_DATA: return "data";
    case STMT_SET_OPTIMIZER: return "optimizer";
    case STMT_SET_SCHEDULE: return "schedule";
    case STMT_SET_REGULARIZE: return "regularize";
    case STMT_SET_MIX: return "mix";
    case STMT_SET_BATCH: return "batch";
    case STMT_SET_EPOCHS: return "epochs";
    case STMT_SET_SEED: return "seed";
    case STMT_SET_AUGMENT: return "augment";
    }
    return "?";
}
