/* sema_train.c - the one-time statements and the train section.
 *
 * Declarations: model (a C identifier), input ([D] or [C, H, W]), targets
 * (from the data, map(...) of an earlier classes target, or a file of their
 * own), preprocess and `default init|bias_init`. Then the train section
 * with every default of LANGUAGE.md filled in, and the checks that tie the
 * two together (fashion_mnist's shapes, idx target files, image-only
 * augmentations). A second copy of a one-time statement or setting is an
 * error with a note at the first; so is a second `regularize l1` or the
 * same augmentation twice. Augmentations are stored in LANGUAGE.md's fixed
 * application order (translate, flip, rotate, [preprocess], cutout, noise)
 * whatever order they are written in.
 */
#include <inttypes.h>
#include <string.h>

#include "sema_int.h"

/* Reports a duplicate of a one-time statement; returns true if *first was set. */
static bool duplicate(Sema *s, const AstStmt **first, const AstStmt *st, const char *what)
{
    if (!*first) {
        *first = st;
        return false;
    }
    Diag *dg = sema_error(s, st->sp, "%s is given twice", what);
    diag_note(s->d, dg, (*first)->sp, "first given here");
    return true;
}

static const char *suggest_in(Sema *s, const char *name, const char *const *cands, int n)
{
    const char *best = sema_closest(name, cands, n);
    return best ? arena_printf(s->a, "; did you mean '%s'?", best) : "";
}

/* The index of call's name among names, or -1 after an "unknown <what>" error. */
static int choose(Sema *s, const AstNode *call, const char *what, const char *const *names, int n)
{
    if (call->kind != AST_CALL) {
        sema_error(s, call->sp, "expected %s, got %s", what, sema_describe(s, &s->top, call));
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(call->call.name, names[i]))
            return i;
    char *list = arena_strdup(s->a, "");
    for (int i = 0; i < n && list; i++)
        list = arena_printf(s->a, "%s%s%s", list, i ? ", " : "", names[i]);
    sema_error(s, call->call.name_sp, "unknown %s '%s'%s (expected %s)", what, call->call.name,
               suggest_in(s, call->call.name, names, n), list ? list : "");
    return -1;
}

/* A name that tensors, targets and the input share. */
static bool declare_name(Sema *s, const AstStmt *st, NameKind kind, IrValue *v, int target)
{
    if (sema_find_op(st->name) || strmap_get(&s->blocks, st->name) || !strcmp(st->name, "in")) {
        sema_error(s, st->name_sp, "'%s' is the name of %s; choose another name", st->name,
                   sema_find_op(st->name) ? "an op" : !strcmp(st->name, "in") ? "a block's input"
                                                                             : "a block");
        return false;
    }
    Name *old = sema_lookup(&s->top, st->name);
    if (old) {
        Diag *dg = sema_error(s, st->name_sp, "'%s' is already declared", st->name);
        diag_note(s->d, dg, old->sp, "first declared here");
        return false;
    }
    Name *nm = arena_alloc(s->a, sizeof *nm);
    if (!nm || !strmap_put(s->a, &s->top.names, st->name, nm))
        return false;
    *nm = (Name){kind, st->name, st->name_sp, v, target, false};
    return true;
}

/* ---- declarations ---------------------------------------------------- */

/* The span of the input's "[...]", found in the source after the name. */
static SrcSpan dims_span(const AstStmt *st)
{
    SrcSpan sp = st->sp;
    if (!st->input.ndims)
        return sp;
    sp = span_join(st->input.dims[0].sp, st->input.dims[st->input.ndims - 1].sp);
    const Source *src = st->name_sp.src;
    const char *text = src ? src->text : NULL;
    /* walk back from the first dimension over blanks to the '[' on its line */
    size_t off = 0;
    int line = 1;
    for (; text && off < src->len && line < sp.line; off++)
        line += text[off] == '\n';
    size_t at = off + (size_t)(sp.col - 1);
    int col = sp.col;
    while (text && at > off && col > 1 && (text[at - 1] == ' ' || text[at - 1] == '\t'))
        at--, col--;
    if (text && at > off && text[at - 1] == '[') {
        sp.col = col - 1;
        sp.end_col++;
    }
    return sp;
}

static void decl_input(Sema *s, const AstStmt *st)
{
    int r = st->input.ndims;
    if (r != 1 && r != 3) {
        sema_error(s, dims_span(st), "input must be [D] or [C, H, W], got %d dimension%s", r,
                   r == 1 ? "" : "s");
        declare_name(s, st, NAME_INPUT, &s->errv, -1);
        return;
    }
    IrShape sh = {r, {0}};
    for (int i = 0; i < r; i++) {
        int64_t d = st->input.dims[i].value;
        if (d < 1 || d > INT32_MAX) {
            sema_error(s, st->input.dims[i].sp, "input dimensions must be in [1, 2^31), got %" PRId64, d);
            declare_name(s, st, NAME_INPUT, &s->errv, -1);
            return;
        }
        sh.d[i] = d;
    }
    if (ir_shape_numel(sh) == INT64_MAX) {
        sema_error(s, st->sp, "input has more than 2^63 elements");
        return;
    }
    if (!declare_name(s, st, NAME_INPUT, NULL, -1))
        return;
    s->g->input = (IrInput){st->name, sh, st->name_sp, NULL};
    s->input_st = st;
}

/* The input node is created once the batch size is known (memory cap). */
void sema_make_input(Sema *s)
{
    if (!s->g->input.name)
        return;
    IrNode *n = sema_node(s, &s->top, IR_OP_INPUT, s->g->input.sp, NULL, 0, s->g->input.shape);
    if (!n)
        return;
    n->name = s->g->input.name;
    n->out->name = s->g->input.name;
    strmap_put(s->a, &s->node_names, n->name, (void *)n->name);
    s->g->input.value = n->out;
    sema_lookup(&s->top, n->name)->value = n->out;
}

static const ArgSpec n_classes[] = {{"n", AK_INT, RG_GE2, true, NULL}};
static const ArgSpec n_values[] = {{"n", AK_INT, RG_GE1, true, NULL}};
static const ArgSpec map_specs[] = {{"values", AK_INTS, RG_ANY, true, NULL}};

static bool target_map(Sema *s, const AstStmt *st, IrTarget *t)
{
    const AstNode *d = st->target.derive;
    static const char *const derive[] = {"map"};
    if (choose(s, d, "target source", derive, 1) < 0)
        return false;
    if (!d->call.nargs || d->call.args[0].key) {
        sema_error(s, d->sp, "map needs a base target: map(base, [labels])");
        return false;
    }
    const AstNode *b = d->call.args[0].value;
    Name *nm = b->kind == AST_CALL ? sema_lookup(&s->top, b->call.name) : NULL;
    if (nm && nm->kind == NAME_TARGET && nm->target < 0)
        return false;   /* the base's declaration had an error, already reported */
    if (!nm || nm->kind != NAME_TARGET || s->g->targets.items[nm->target]->kind != IR_TARGET_CLASSES) {
        sema_error(s, b->sp, "map: the base must be an earlier classes target, got %s",
                   sema_describe(s, &s->top, b));
        return false;
    }
    const IrTarget *base = s->g->targets.items[nm->target];
    ArgVal v[1];
    if (!sema_bind_args(s, &s->top, d, "map", map_specs, 1, 1, v))
        return false;
    if (v[0].n != base->n) {
        sema_error(s, v[0].sp, "map: the list needs one label per class of '%s' (%" PRId64 "), got %d",
                   base->name, base->n, v[0].n);
        return false;
    }
    for (int i = 0; i < v[0].n; i++)
        if (v[0].ints[i] < 0 || v[0].ints[i] >= t->n) {
            sema_error(s, d->call.args[1].value->list.items[i]->sp,
                       "map: labels of '%s' must be in [0, %" PRId64 "), got %" PRId64, t->name,
                       t->n, v[0].ints[i]);
            return false;
        }
    t->source = IR_TARGET_FROM_MAP;
    t->map_base = nm->target;
    t->map = v[0].ints;
    t->nmap = v[0].n;
    return true;
}

static void decl_target(Sema *s, const AstStmt *st)
{
    static const char *const kinds[] = {"classes", "values"};
    const AstNode *k = st->target.kind;
    int kind = choose(s, k, "target kind", kinds, 2);
    ArgVal v[1];
    if (kind < 0 || !sema_bind_args(s, &s->top, k, kinds[kind], kind ? n_values : n_classes, 1, 0, v)) {
        declare_name(s, st, NAME_TARGET, NULL, -1);   /* known, but broken: no follow-ups */
        return;
    }
    IrTarget *t = arena_alloc(s->a, sizeof *t);
    if (!t)
        return;
    *t = (IrTarget){.id = (int)s->g->targets.len, .name = st->name, .n = v[0].i,
                    .kind = kind ? IR_TARGET_VALUES : IR_TARGET_CLASSES, .sp = st->name_sp,
                    .source = s->g->targets.len ? IR_TARGET_FROM_FILE : IR_TARGET_FROM_DATA};
    if (s->g->targets.len >= SEMA_MAX_TARGETS) {
        sema_error(s, st->name_sp, "too many targets: at most %d", SEMA_MAX_TARGETS);
        return;
    }
    if (st->target.derive && !s->g->targets.len) {
        sema_error(s, st->target.derive->sp,
                   "the first target is filled by the data set; it cannot be derived");
        return;
    }
    if (st->target.derive && (kind != 0 || !target_map(s, st, t))) {
        if (kind != 0)
            sema_error(s, st->target.derive->sp, "only a classes target can be derived with map");
        declare_name(s, st, NAME_TARGET, NULL, -1);
        return;
    }
    if (declare_name(s, st, NAME_TARGET, NULL, t->id))
        vec_push(s->a, &s->g->targets, t);
}

static const ArgSpec scale_specs[] = {{"s", AK_NUM, RG_GT0, true, NULL}};
static const ArgSpec std_specs[] = {
    {"mean", AK_NUMS, RG_ANY, false, NULL},
    {"std", AK_NUMS, RG_GT0, false, NULL},
};
static const ArgSpec zca_specs[] = {{"eps", AK_NUM, RG_GT0, false, NULL}};

static void decl_preprocess(Sema *s, const AstStmt *st)
{
    static const char *const names[] = {"none", "scale", "mean_image", "mean_channel",
                                        "standardize", "zca"};
    static const ArgSpec *const specs[] = {NULL, scale_specs, NULL, NULL, std_specs, zca_specs};
    static const int nspecs[] = {0, 1, 0, 0, 2, 1};
    const AstNode *c = st->preprocess.call;
    int k = choose(s, c, "preprocess", names, 6);
    ArgVal v[2];
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], specs[k], nspecs[k], 0, v))
        return;
    IrPreprocess *p = &s->g->pre;
    *p = (IrPreprocess){.kind = (IrPreKind)k, .sp = c->sp, .eps = 0.01};
    if (k == IR_PRE_SCALE)
        p->scale = v[0].x;
    if (k == IR_PRE_ZCA && v[0].given)
        p->eps = v[0].x;
    if (k != IR_PRE_STANDARDIZE || (!v[0].given && !v[1].given))
        return;
    if (v[0].given != v[1].given) {
        sema_error(s, c->sp, "standardize: give both mean and std, or neither");
        return;
    }
    const IrShape *in = &s->g->input.shape;
    int64_t ch = in->rank == 3 ? in->d[0] : 1;
    for (int i = 0; i < 2; i++)
        if (s->g->input.name && v[i].n != ch) {
            sema_error(s, v[i].sp, "standardize: %s needs one value per input channel (%" PRId64
                       "), got %d", i ? "std" : "mean", ch, v[i].n);
            return;
        }
    p->mean = v[0].nums;
    p->nmean = v[0].n;
    p->std = v[1].nums;
    p->nstd = v[1].n;
}

static void decl_default(Sema *s, const AstStmt *st)
{
    bool bias = !strcmp(st->name, "bias_init");
    if (!bias && strcmp(st->name, "init") != 0) {
        sema_error(s, st->name_sp, "unknown default '%s'; expected 'init' or 'bias_init'", st->name);
        return;
    }
    const AstStmt **first = bias ? &s->def_bias_init_st : &s->def_init_st;
    if (duplicate(s, first, st, bias ? "default bias_init" : "default init"))
        return;
    IrInit init;
    if (sema_eval_init(s, &s->top, st->deflt.call, bias ? "default bias_init" : "default init", &init))
        *(bias ? &s->def_bias_init : &s->def_init) = init;
}

void sema_declarations(Sema *s)
{
    const AstStmt *model = NULL, *input = NULL, *pre = NULL;
    s->def_init = (IrInit){.kind = IR_INIT_KAIMING};
    s->def_bias_init = (IrInit){.kind = IR_INIT_ZEROS};
    for (int i = 0; i < s->f->nstmts; i++) {
        const AstStmt *st = s->f->stmts[i];
        if (!st)
            continue;
        switch (st->kind) {
        case STMT_MODEL:
            s->nmodel++;
            if (!duplicate(s, &model, st, "model") &&
                sema_valid_c_name(s, st->name, st->name_sp, "model")) {
                s->g->model = st->name;
                s->g->model_sp = st->name_sp;
            }
            break;
        case STMT_INPUT:
            if (!s->input_st)
                s->input_st = st;
            if (!duplicate(s, &input, st, "input"))
                decl_input(s, st);
            break;
        case STMT_TARGET:
            s->ntarget++;
            decl_target(s, st);
            break;
        case STMT_PREPROCESS:
            duplicate(s, &pre, st, "preprocess");
            break;
        case STMT_DEFAULT:
            decl_default(s, st);
            break;
        default:
            break;
        }
    }
    if (pre)
        decl_preprocess(s, pre);
}

/* ---- the train section ----------------------------------------------- */

typedef struct TrainSeen {
    const AstStmt *data, *opt, *sched, *mix, *batch, *epochs, *seed, *l1, *l2;
    const AstNode *aug[6];   /* by IrAugKind, flip vertical at 5 */
} TrainSeen;

static const ArgSpec idx_specs[] = {
    {"train_images", AK_STR, RG_ANY, true, NULL},
    {"train_labels", AK_STR, RG_ANY, true, NULL},
    {"test_images", AK_STR, RG_ANY, false, NULL},
    {"test_labels", AK_STR, RG_ANY, false, NULL},
    {"targets", AK_STRS, RG_ANY, false, NULL},
};

static void set_data(Sema *s, const AstStmt *st)
{
    static const char *const names[] = {"fashion_mnist", "idx"};
    const AstNode *c = st->setting.call;
    int k = choose(s, c, "data set", names, 2);
    ArgVal v[5];
    IrTrain *t = &s->g->train;
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], k ? idx_specs : NULL, k ? 5 : 0, 0, v))
        return;
    t->data.kind = k ? IR_DATA_IDX : IR_DATA_FASHION_MNIST;
    t->data.sp = c->sp;
    if (!k)
        return;
    if (v[2].given != v[3].given) {
        sema_error(s, c->sp, "idx: give both test_images and test_labels, or neither");
        return;
    }
    t->data.train_images = v[0].s;
    t->data.train_labels = v[1].s;
    t->data.test_images = v[2].given ? v[2].s : NULL;
    t->data.test_labels = v[3].given ? v[3].s : NULL;
    s->idx_targets.strs = v[4].strs;
    s->idx_targets.n = v[4].n;
    s->idx_targets.given = v[4].given;
    s->idx_targets.sp = v[4].sp;
}

static const ArgSpec sgd_specs[] = {
    {"lr", AK_NUM, RG_GT0, true, NULL},
    {"momentum", AK_NUM, RG_PROB, false, NULL},
    {"nesterov", AK_BOOL, RG_ANY, false, NULL},
};
static const ArgSpec adam_specs[] = {
    {"lr", AK_NUM, RG_GT0, false, NULL},
    {"beta1", AK_NUM, RG_PROB, false, NULL},
    {"beta2", AK_NUM, RG_PROB, false, NULL},
    {"eps", AK_NUM, RG_GT0, false, NULL},
    {"weight_decay", AK_NUM, RG_GE0, false, NULL},
};

static void set_optimizer(Sema *s, const AstStmt *st)
{
    static const char *const names[] = {"sgd", "adam", "adamw"};
    const AstNode *c = st->setting.call;
    int k = choose(s, c, "optimizer", names, 3);
    ArgVal v[5];
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], k ? adam_specs : sgd_specs,
                                 k == 0 ? 3 : k == 1 ? 4 : 5, 0, v))
        return;
    IrTrain *t = &s->g->train;
    t->opt.kind = (IrOptKind)k;
    t->opt.sp = c->sp;
    if (k == 0) {
        t->opt.lr = v[0].x;
        t->opt.momentum = v[1].given ? v[1].x : 0;
        t->opt.nesterov = v[2].given && v[2].b;
        if (t->opt.nesterov && t->opt.momentum == 0)
            sema_error(s, v[2].sp, "sgd: nesterov=true needs momentum > 0");
        return;
    }
    t->opt.momentum = 0;
    t->opt.lr = v[0].given ? v[0].x : 1e-3;
    t->opt.beta1 = v[1].given ? v[1].x : 0.9;
    t->opt.beta2 = v[2].given ? v[2].x : 0.999;
    t->opt.eps = v[3].given ? v[3].x : 1e-8;
    t->opt.weight_decay = k == 2 ? (v[4].given ? v[4].x : 0.01) : 0;
}

static const ArgSpec step_specs[] = {
    {"every", AK_INT, RG_GE1, true, NULL},
    {"gamma", AK_NUM, RG_UNIT, false, NULL},
};
static const ArgSpec cosine_specs[] = {{"warmup", AK_INT, RG_GE0, false, NULL}};

static void set_schedule(Sema *s, const AstStmt *st)
{
    static const char *const names[] = {"constant", "step", "cosine"};
    static const ArgSpec *const specs[] = {NULL, step_specs, cosine_specs};
    static const int nspecs[] = {0, 2, 1};
    const AstNode *c = st->setting.call;
    int k = choose(s, c, "schedule", names, 3);
    ArgVal v[2];
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], specs[k], nspecs[k], 0, v))
        return;
    IrTrain *t = &s->g->train;
    t->sched.kind = (IrSchedKind)k;
    t->sched.sp = c->sp;
    if (k == 1) {
        t->sched.every = v[0].i;
        t->sched.gamma = v[1].given ? v[1].x : 0.1;
    } else if (k == 2) {
        t->sched.warmup = v[0].given ? v[0].i : 0;
    }
}

static const ArgSpec l1_specs[] = {{"a", AK_NUM, RG_GT0, true, NULL}};
static const ArgSpec l2_specs[] = {
    {"a", AK_NUM, RG_GT0, true, NULL},
    {"biases", AK_BOOL, RG_ANY, false, NULL},
};

static void set_regularize(Sema *s, const AstStmt *st, TrainSeen *seen)
{
    static const char *const names[] = {"l1", "l2"};
    const AstNode *c = st->setting.call;
    int k = choose(s, c, "regularizer", names, 2);
    ArgVal v[2];
    if (k < 0 || duplicate(s, k ? &seen->l2 : &seen->l1, st, k ? "regularize l2" : "regularize l1") ||
        !sema_bind_args(s, &s->top, c, names[k], k ? l2_specs : l1_specs, k ? 2 : 1, 0, v))
        return;
    IrTrain *t = &s->g->train;
    t->reg.sp = c->sp;
    if (k == 0) {
        t->reg.l1 = v[0].x;
    } else {
        t->reg.l2 = v[0].x;
        t->reg.biases = v[1].given && v[1].b;
    }
}

static const ArgSpec px_specs[] = {{"px", AK_INT, RG_GE1, true, NULL}};
static const ArgSpec flip_specs[] = {{"axis", AK_WORD, RG_ANY, false, "horizontal|vertical"}};
static const ArgSpec deg_specs[] = {{"deg", AK_NUM, RG_DEG, true, NULL}};
static const ArgSpec size_specs[] = {{"size", AK_INT, RG_GE1, true, NULL}};
static const ArgSpec std1_specs[] = {{"std", AK_NUM, RG_GT0, true, NULL}};

static void set_augment(Sema *s, const AstNode *c, TrainSeen *seen, IrAugment *slots, bool *has)
{
    static const char *const names[] = {"translate", "flip", "rotate", "cutout", "noise"};
    static const ArgSpec *const specs[] = {px_specs, flip_specs, deg_specs, size_specs, std1_specs};
    int k = choose(s, c, "augmentation", names, 5);
    ArgVal v[1];
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], specs[k], 1, 0, v))
        return;
    bool vertical = k == IR_AUG_FLIP && v[0].given && v[0].word == 1;
    int slot = vertical ? 5 : k;
    if (seen->aug[slot]) {
        Diag *dg = sema_error(s, c->sp, "augmentation '%s%s' is given twice", names[k],
                              vertical ? "(vertical)" : "");
        diag_note(s->d, dg, seen->aug[slot]->sp, "first given here");
        return;
    }
    seen->aug[slot] = c;
    has[slot] = true;
    double amount = k == IR_AUG_FLIP ? 0.5 : (k == IR_AUG_TRANSLATE || k == IR_AUG_CUTOUT)
                                                 ? (double)v[0].i : v[0].x;
    slots[slot] = (IrAugment){(IrAugKind)k, amount, vertical, c->sp};
}

static const ArgSpec alpha_specs[] = {{"alpha", AK_NUM, RG_GT0, true, NULL}};

static void set_mix(Sema *s, const AstStmt *st)
{
    static const char *const names[] = {"none", "mixup", "cutmix"};
    const AstNode *c = st->setting.call;
    int k = choose(s, c, "mix", names, 3);
    ArgVal v[1];
    if (k < 0 || !sema_bind_args(s, &s->top, c, names[k], k ? alpha_specs : NULL, k ? 1 : 0, 0, v))
        return;
    IrTrain *t = &s->g->train;
    t->mix.kind = (IrMixKind)k;
    t->mix.alpha = k ? v[0].x : 0;
    t->mix.sp = c->sp;
}

static void set_int(Sema *s, const AstStmt *st, int64_t lo, int64_t hi, int64_t *out,
                    const char *what)
{
    int64_t x = st->int_setting.value;
    if (x < lo || x > hi) {
        sema_error(s, st->int_setting.value_sp, "%s must be in [%" PRId64 ", %" PRId64 "], got %" PRId64,
                   what, lo, hi, x);
        return;
    }
    *out = x;
}

static void train_defaults(IrTrain *t)
{
    memset(t, 0, sizeof *t);
    t->batch = 64;
    t->epochs = 10;
    t->seed = 1;
    t->opt.kind = IR_OPT_SGD;
    t->opt.lr = 0.01;
    t->opt.momentum = 0.9;
    t->opt.beta1 = 0.9;
    t->opt.beta2 = 0.999;
    t->opt.eps = 1e-8;
    t->sched.kind = IR_SCHED_CONSTANT;
    t->sched.gamma = 0.1;
    t->mix.kind = IR_MIX_NONE;
    t->data.kind = IR_DATA_FASHION_MNIST;
}

static void train_setting(Sema *s, const AstStmt *st, TrainSeen *seen, IrAugment *slots, bool *has)
{
    IrTrain *t = &s->g->train;
    int64_t seed = 0;
    switch (st->kind) {
    case STMT_SET_DATA:
        if (!duplicate(s, &seen->data, st, "data"))
            set_data(s, st);
        break;
    case STMT_SET_OPTIMIZER:
        if (!duplicate(s, &seen->opt, st, "optimizer"))
            set_optimizer(s, st);
        break;
    case STMT_SET_SCHEDULE:
        if (!duplicate(s, &seen->sched, st, "schedule"))
            set_schedule(s, st);
        break;
    case STMT_SET_REGULARIZE:
        set_regularize(s, st, seen);
        break;
    case STMT_SET_MIX:
        if (!duplicate(s, &seen->mix, st, "mix"))
            set_mix(s, st);
        break;
    case STMT_SET_BATCH:
        if (!duplicate(s, &seen->batch, st, "batch"))
            set_int(s, st, 1, INT32_MAX, &t->batch, "batch");
        break;
    case STMT_SET_EPOCHS:
        if (!duplicate(s, &seen->epochs, st, "epochs"))
            set_int(s, st, 1, INT32_MAX, &t->epochs, "epochs");
        break;
    case STMT_SET_SEED:
        if (!duplicate(s, &seen->seed, st, "seed")) {
            seed = (int64_t)t->seed;
            set_int(s, st, 0, INT64_MAX, &seed, "seed");
            t->seed = (uint64_t)seed;
        }
        break;
    case STMT_SET_AUGMENT:
        for (int i = 0; i < st->augment.ncalls; i++)
            set_augment(s, st->augment.calls[i], seen, slots, has);
        break;
    default:
        break;
    }
}

/* Stores the augmentations in application order: translate, flip,
 * flip(vertical), rotate, cutout, noise. */
static void store_augments(Sema *s, IrAugment *slots, const bool *has)
{
    static const int order[] = {IR_AUG_TRANSLATE, IR_AUG_FLIP, 5, IR_AUG_ROTATE, IR_AUG_CUTOUT,
                                IR_AUG_NOISE};
    IrTrain *t = &s->g->train;
    t->aug = arena_array(s->a, 6, sizeof *t->aug);
    for (int i = 0; i < 6 && t->aug; i++)
        if (has[order[i]])
            t->aug[t->naug++] = slots[order[i]];
}

void sema_train(Sema *s)
{
    IrTrain *t = &s->g->train;
    train_defaults(t);
    TrainSeen seen = {0};
    IrAugment slots[6];
    bool has[6] = {false};
    const AstStmt *first = NULL;
    for (int i = 0; i < s->f->nstmts; i++) {
        const AstStmt *st = s->f->stmts[i];
        if (!st || st->kind != STMT_TRAIN || duplicate(s, &first, st, "train section"))
            continue;
        for (int k = 0; k < st->train.nsettings; k++)
            if (st->train.settings[k])
                train_setting(s, st->train.settings[k], &seen, slots, has);
    }
    store_augments(s, slots, has);
}

/* ---- cross checks ---------------------------------------------------- */

static SrcSpan data_span(Sema *s, SrcSpan fallback)
{
    return span_valid(s->g->train.data.sp) ? s->g->train.data.sp : fallback;
}

static void check_fashion_mnist(Sema *s, bool shapes)
{
    const IrGraph *g = s->g;
    const IrShape *in = &g->input.shape;
    char buf[96];
    bool image = in->rank == 3 && in->d[0] == 1 && in->d[1] == 28 && in->d[2] == 28;
    if (shapes && g->input.name && !image && !(in->rank == 1 && in->d[0] == 784)) {
        Diag *dg = sema_error(s, data_span(s, g->input.sp),
                              "fashion_mnist images are [1, 28, 28] (or [784] flattened), but "
                              "input '%s' is %s", g->input.name, ir_shape_str(*in, buf, sizeof buf));
        if (span_valid(g->train.data.sp))
            diag_note(s->d, dg, g->input.sp, "input declared here");
    }
    for (size_t i = 0; i < g->targets.len; i++) {
        const IrTarget *t = g->targets.items[i];
        if (shapes && i == 0 && (t->kind != IR_TARGET_CLASSES || t->n != 10))
            sema_error(s, t->sp, "fashion_mnist labels are classes(10), but target '%s' is %s(%" PRId64 ")",
                       t->name, t->kind == IR_TARGET_CLASSES ? "classes" : "values", t->n);
        if (t->source == IR_TARGET_FROM_FILE)
            sema_error(s, t->sp, "target '%s' has no source: fashion_mnist fills only the first "
                       "target; derive it with '= map(...)' or use data idx(..., targets=[...])",
                       t->name);
    }
}

/* targets=[...]: per file target in declaration order its train file, then
 * (if the data has a test set) its test file. */
static void check_idx_targets(Sema *s)
{
    IrGraph *g = s->g;
    IrTrain *t = &g->train;
    int nfile = 0, per = t->data.test_images ? 2 : 1;
    for (size_t i = 0; i < g->targets.len; i++)
        nfile += g->targets.items[i]->source == IR_TARGET_FROM_FILE;
    if (s->idx_targets.n != nfile * per || (nfile == 0 && s->idx_targets.given)) {
        sema_error(s, s->idx_targets.given ? s->idx_targets.sp : t->data.sp,
                   "idx: targets needs %d file%s (%d target%s read from files%s), got %d",
                   nfile * per, nfile * per == 1 ? "" : "s", nfile, nfile == 1 ? "" : "s",
                   per == 2 ? ", a train and a test file each" : "", s->idx_targets.n);
        return;
    }
    size_t n = g->targets.len ? g->targets.len : 1;
    t->data.target_files = arena_array(s->a, n, sizeof *t->data.target_files);
    t->data.target_test_files = arena_array(s->a, n, sizeof *t->data.target_test_files);
    if (!t->data.target_files || !t->data.target_test_files)
        return;
    t->data.ntarget_files = (int)g->targets.len;
    int k = 0;
    for (size_t i = 0; i < g->targets.len; i++) {
        if (g->targets.items[i]->source != IR_TARGET_FROM_FILE)
            continue;
        t->data.target_files[i] = s->idx_targets.strs[k++];
        if (per == 2)
            t->data.target_test_files[i] = s->idx_targets.strs[k++];
    }
}

static void check_augments(Sema *s)
{
    const IrGraph *g = s->g;
    const IrShape *in = &g->input.shape;
    char buf[96];
    for (int i = 0; i < g->train.naug && g->input.name; i++) {
        const IrAugment *a = &g->train.aug[i];
        if (a->kind == IR_AUG_NOISE)
            continue;
        if (in->rank != 3) {
            sema_error(s, a->sp, "this augmentation needs an image input [C, H, W]; '%s' is %s",
                       g->input.name, ir_shape_str(*in, buf, sizeof buf));
            continue;
        }
        int64_t side = in->d[1] < in->d[2] ? in->d[1] : in->d[2];
        if ((a->kind == IR_AUG_TRANSLATE && a->amount >= (double)side) ||
            (a->kind == IR_AUG_CUTOUT && a->amount > (double)side))
            sema_error(s, a->sp, "%s: %g is too large for a %" PRId64 " x %" PRId64 " image",
                       a->kind == IR_AUG_TRANSLATE ? "translate" : "cutout", a->amount,
                       in->d[1], in->d[2]);
    }
    if (g->train.mix.kind == IR_MIX_CUTMIX && g->input.name && in->rank != 3)
        sema_error(s, g->train.mix.sp, "cutmix needs an image input [C, H, W]; '%s' is %s",
                   g->input.name, ir_shape_str(*in, buf, sizeof buf));
}

static void train_checks(Sema *s)
{
    const IrTrain *t = &s->g->train;
    if (t->sched.kind == IR_SCHED_COSINE && t->sched.warmup >= t->epochs)
        sema_error(s, t->sched.sp, "cosine: warmup (%" PRId64 ") must be less than epochs (%" PRId64 ")",
                   t->sched.warmup, t->epochs);
    /* The data set's shapes are checked on an otherwise clean model: an input
     * that is wrong for the data is rarely the first thing to fix. */
    if (t->data.kind == IR_DATA_FASHION_MNIST)
        check_fashion_mnist(s, s->d->nerrors == s->nerr_start);
    else
        check_idx_targets(s);
    check_augments(s);
}

static const char *human_bytes(Sema *s, int64_t v)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 6)
        x /= 1024, u++;
    return arena_printf(s->a, "%.1f %s", x, unit[u]);
}

static void check_size(Sema *s)
{
    if (!s->over_node)
        return;
    int64_t total = s->param_bytes > INT64_MAX - s->act_bytes ? INT64_MAX
                                                               : s->param_bytes + s->act_bytes;
    Diag *dg = sema_error(s, s->over_node->sp,
                          "the model does not fit in memory: it needs %s%s (parameters %s, "
                          "activations %s at batch %" PRId64 "), more than the limit of %s",
                          total == INT64_MAX ? "more than " : "", human_bytes(s, total),
                          human_bytes(s, s->param_bytes), human_bytes(s, s->act_bytes),
                          s->g->train.batch, human_bytes(s, IR_MAX_BYTES));
    diag_note(s->d, dg, s->over_node->sp, "the limit is crossed at '%s'", s->over_node->name);
}

void sema_finish(Sema *s)
{
    const IrGraph *g = s->g;
    if (!s->nmodel)
        sema_error(s, s->file_sp, "missing 'model' statement (e.g. 'model mynet;')");
    if (!s->input_st)
        sema_error(s, s->file_sp, "missing 'input' statement (e.g. 'input image [1, 28, 28];')");
    if (!s->ntarget)
        sema_error(s, s->file_sp, "missing 'target' statement (e.g. 'target label classes(10);')");
    if (!s->nloss)
        sema_error(s, s->file_sp, "no loss: add one, e.g. 'loss cross_entropy(logits, label);'");
    if (g->pre.kind == IR_PRE_ZCA && g->input.value) {
        int64_t d = ir_shape_numel(g->input.shape);   /* the d x d whitening matrix */
        sema_account(s, g->input.value->producer, d > 3037000499 ? INT64_MAX : d * d, 0);
    }
    train_checks(s);
    check_size(s);
}
