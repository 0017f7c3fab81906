/* sema_values.c - call arguments checked against typed parameter specs.
 *
 * Every configurable thing in a .net file is a call (LANGUAGE.md "Values and
 * calls"): positional values first, then key=value pairs. An ArgSpec table
 * says, per parameter, its key, kind (integer, number, bool, init, pad,
 * string, word, lists), range and whether it is required; sema_bind_args
 * turns a call into ArgVals or reports, in one consistent voice:
 *     unknown key 'strid' for conv; did you mean 'stride'?
 *     conv: key 'stride' given twice
 *     dropout: p must be in [0, 1), got 1.5
 *     conv: filters must be an integer, got 2.5
 * Block parameters are followed to the caller's argument first
 * (sema_resolve), so a parameter can stand for any value.
 */
#include <math.h>
#include <string.h>

#include "sema_int.h"

const AstNode *sema_resolve(Sema *s, Env **env, const AstNode *n)
{
    (void)s;
    for (int guard = 0; guard <= SEMA_MAX_BLOCK_DEPTH + 1; guard++) {
        while (n->kind == AST_PAREN)
            n = n->paren.inner;
        if (n->kind != AST_CALL || n->call.has_parens || !*env)
            return n;
        const Closure *c = NULL;
        for (int i = 0; i < (*env)->nparams; i++)
            if (strcmp((*env)->param_names[i], n->call.name) == 0)
                c = &(*env)->params[i];
        if (!c)
            return n;
        n = c->node;
        *env = c->env;
    }
    return n;
}

bool sema_is_tensor_expr(Sema *s, Env *env, const AstNode *n)
{
    n = sema_resolve(s, &env, n);
    switch (n->kind) {
    case AST_CHAIN:
    case AST_SUM:
        return true;
    case AST_CALL:
        if (env->block && strcmp(n->call.name, "in") == 0)
            return true;
        if (sema_lookup(env, n->call.name))
            return sema_lookup(env, n->call.name)->kind != NAME_TARGET;
        return n->call.has_parens &&
               (sema_find_op(n->call.name) || strmap_get(&s->blocks, n->call.name));
    default:
        return false;
    }
}

const char *sema_describe(Sema *s, Env *env, const AstNode *n)
{
    n = sema_resolve(s, &env, n);
    switch (n->kind) {
    case AST_NUMBER:
        return n->num.text ? n->num.text : "a number";
    case AST_STRING:
        return "a string";
    case AST_LIST:
        return "a list";
    case AST_CHAIN:
    case AST_SUM:
    case AST_PAREN:
        return "a tensor expression";
    case AST_CALL:
        break;
    }
    const Name *nm = sema_lookup(env, n->call.name);
    if (nm && !n->call.has_parens)
        return arena_printf(s->a, "%s '%s'", nm->kind == NAME_TARGET ? "target" : "tensor",
                            n->call.name);
    if (env->block && !strcmp(n->call.name, "in") && !n->call.has_parens)
        return "tensor 'in'";
    return arena_printf(s->a, "'%s%s'", n->call.name, n->call.has_parens ? "(...)" : "");
}

int64_t sema_count_positional(const AstNode *call)
{
    int64_t n = 0;
    for (int i = 0; i < call->call.nargs; i++)
        n += call->call.args[i].key == NULL;
    return n;
}

/* ---- scalars --------------------------------------------------------- */

static const char *range_text(ArgRange r)
{
    switch (r) {
    case RG_GE0: return ">= 0";
    case RG_GE1: return ">= 1";
    case RG_GE2: return ">= 2";
    case RG_GT0: return "> 0";
    case RG_PROB: return "in [0, 1)";
    case RG_UNIT: return "in (0, 1]";
    case RG_RATIO: return "in (1, 2]";
    case RG_DEG: return "in (0, 180]";
    case RG_ANY: break;
    }
    return "";
}

static bool in_range(ArgRange r, double x)
{
    switch (r) {
    case RG_GE0: return x >= 0;
    case RG_GE1: return x >= 1;
    case RG_GE2: return x >= 2;
    case RG_GT0: return x > 0;
    case RG_PROB: return x >= 0 && x < 1;
    case RG_UNIT: return x > 0 && x <= 1;
    case RG_RATIO: return x > 1 && x <= 2;
    case RG_DEG: return x > 0 && x <= 180;
    case RG_ANY: break;
    }
    return true;
}

typedef struct Ctx {
    Sema *s;
    const char *what;       /* "conv", "sgd", ... */
    const char *key;        /* the parameter */
} Ctx;

static bool kind_error(Ctx *c, Env *env, const AstNode *n, const char *want)
{
    sema_error(c->s, n->sp, "%s: %s must be %s, got %s", c->what, c->key, want,
               sema_describe(c->s, env, n));
    return false;
}

static bool check_range(Ctx *c, const AstNode *n, ArgRange r, double x)
{
    if (in_range(r, x))
        return true;
    sema_error(c->s, n->sp, "%s: %s must be %s, got %s", c->what, c->key, range_text(r),
               n->num.text ? n->num.text : "?");
    return false;
}

static bool eval_num(Ctx *c, Env *env, const AstNode *n, ArgRange r, double *out)
{
    n = sema_resolve(c->s, &env, n);
    if (n->kind != AST_NUMBER)
        return kind_error(c, env, n, "a number");
    if (!isfinite(n->num.value)) {
        sema_error(c->s, n->sp, "%s: %s must be finite, got %s", c->what, c->key, n->num.text);
        return false;
    }
    *out = n->num.value;
    return check_range(c, n, r, *out);
}

static bool looks_integral(const char *text)
{
    return text && !strpbrk(text, ".eE");
}

static bool eval_int(Ctx *c, Env *env, const AstNode *n, ArgRange r, int64_t *out)
{
    n = sema_resolve(c->s, &env, n);
    if (n->kind != AST_NUMBER)
        return kind_error(c, env, n, "an integer");
    if (!n->num.is_int && !looks_integral(n->num.text))
        return kind_error(c, env, n, "an integer");
    if (!n->num.is_int || n->num.ival > INT32_MAX || n->num.ival < INT32_MIN) {
        sema_error(c->s, n->sp, "%s: %s must fit in 32 bits, got %s", c->what, c->key,
                   n->num.text);
        return false;
    }
    *out = n->num.ival;
    return check_range(c, n, r, (double)*out);
}

/* The bare word a value is ("true", "same", "out"), or NULL. */
static const char *eval_word(Sema *s, Env **env, const AstNode **n)
{
    *n = sema_resolve(s, env, *n);
    if ((*n)->kind != AST_CALL || (*n)->call.has_parens)
        return NULL;
    return (*n)->call.name;
}

static bool eval_bool(Ctx *c, Env *env, const AstNode *n, bool *out)
{
    const char *w = eval_word(c->s, &env, &n);
    if (w && (!strcmp(w, "true") || !strcmp(w, "false"))) {
        *out = w[0] == 't';
        return true;
    }
    return kind_error(c, env, n, "true or false");
}

/* AK_WORD: index of the word among "a|b|c". */
static bool eval_choice(Ctx *c, Env *env, const AstNode *n, const char *words, int *out)
{
    const char *w = eval_word(c->s, &env, &n);
    int k = 0;
    for (const char *p = words; w && *p; k++) {
        size_t len = strcspn(p, "|");
        if (strlen(w) == len && strncmp(w, p, len) == 0) {
            *out = k;
            return true;
        }
        p += len + (p[len] == '|');
    }
    char *want = arena_printf(c->s->a, "one of %s", words);
    for (char *p = want; p && *p; p++)
        if (*p == '|')
            *p = '/';
    return kind_error(c, env, n, want ? want : "a word");
}

static bool eval_str(Ctx *c, Env *env, const AstNode *n, const char **out)
{
    n = sema_resolve(c->s, &env, n);
    if (n->kind != AST_STRING)
        return kind_error(c, env, n, "a string");
    if (n->str.len == 0) {
        sema_error(c->s, n->sp, "%s: %s must not be empty", c->what, c->key);
        return false;
    }
    *out = n->str.s;
    return true;
}

/* ---- lists ----------------------------------------------------------- */

static bool eval_list(Ctx *c, Env *env, const AstNode *n, const ArgSpec *sp, ArgVal *v)
{
    n = sema_resolve(c->s, &env, n);
    if (n->kind != AST_LIST)
        return kind_error(c, env, n, "a list");
    int len = n->list.n;
    v->n = len;
    size_t m = len ? (size_t)len : 1;
    v->nums = sp->kind == AK_NUMS ? arena_array(c->s->a, m, sizeof *v->nums) : NULL;
    v->ints = sp->kind == AK_INTS ? arena_array(c->s->a, m, sizeof *v->ints) : NULL;
    v->strs = sp->kind == AK_STRS ? arena_array(c->s->a, m, sizeof *v->strs) : NULL;
    if (!v->nums && !v->ints && !v->strs)
        return false;
    bool ok = true;
    for (int i = 0; i < len; i++) {
        const AstNode *it = n->list.items[i];
        if (sp->kind == AK_NUMS)
            ok &= eval_num(c, env, it, sp->range, &v->nums[i]);
        else if (sp->kind == AK_INTS)
            ok &= eval_int(c, env, it, sp->range, &v->ints[i]);
        else
            ok &= eval_str(c, env, it, &v->strs[i]);
        if (!ok)
            break;   /* one bad element is enough */
    }
    return ok;
}

/* ---- initializers ---------------------------------------------------- */

static const char *const init_names[] = {
    "zeros", "ones", "constant", "normal", "uniform", "xavier", "xavier_uniform", "glorot",
    "kaiming", "msra", "he", "kaiming_uniform",
};
static const IrInitKind init_kinds[] = {
    IR_INIT_ZEROS, IR_INIT_ONES, IR_INIT_CONSTANT, IR_INIT_NORMAL, IR_INIT_UNIFORM,
    IR_INIT_XAVIER, IR_INIT_XAVIER_UNIFORM, IR_INIT_GLOROT, IR_INIT_KAIMING, IR_INIT_KAIMING,
    IR_INIT_KAIMING, IR_INIT_KAIMING_UNIFORM,
};

static const ArgSpec spec_constant[] = {{"v", AK_NUM, RG_ANY, true, NULL}};
static const ArgSpec spec_normal[] = {{"std", AK_NUM, RG_GT0, true, NULL}};
static const ArgSpec spec_uniform[] = {{"a", AK_NUM, RG_GT0, true, NULL}};
static const ArgSpec spec_kaiming[] = {
    {"fan", AK_WORD, RG_ANY, false, "in|out"},
    {"slope", AK_NUM, RG_GE0, false, NULL},
};

bool sema_eval_init(Sema *s, Env *env, const AstNode *n, const char *what, IrInit *out)
{
    const char *w = NULL;
    n = sema_resolve(s, &env, n);
    if (n->kind == AST_CALL)
        w = n->call.name;
    int k = -1;
    for (int i = 0; w && i < (int)(sizeof init_names / sizeof *init_names); i++)
        if (!strcmp(w, init_names[i]))
            k = i;
    if (k < 0) {
        if (w)
            sema_error(s, n->call.name_sp, "%s: unknown init '%s'%s%s%s", what, w,
                       sema_closest(w, init_names, 12) ? "; did you mean '" : "",
                       sema_closest(w, init_names, 12) ? sema_closest(w, init_names, 12) : "",
                       sema_closest(w, init_names, 12) ? "'?" : "");
        else
            sema_error(s, n->sp, "%s: expected an init (zeros, ones, constant(v), normal(std), "
                       "uniform(a), xavier, xavier_uniform, glorot, kaiming, kaiming_uniform), got %s",
                       what, sema_describe(s, env, n));
        return false;
    }
    *out = (IrInit){.kind = init_kinds[k], .sp = n->sp};
    const ArgSpec *specs = NULL;
    int nspecs = 0;
    if (init_kinds[k] == IR_INIT_CONSTANT)
        specs = spec_constant, nspecs = 1;
    else if (init_kinds[k] == IR_INIT_NORMAL)
        specs = spec_normal, nspecs = 1;
    else if (init_kinds[k] == IR_INIT_UNIFORM)
        specs = spec_uniform, nspecs = 1;
    else if (init_kinds[k] == IR_INIT_KAIMING || init_kinds[k] == IR_INIT_KAIMING_UNIFORM)
        specs = spec_kaiming, nspecs = 2;
    ArgVal v[2];
    if (!sema_bind_args(s, env, n, init_names[k], specs, nspecs, 0, v))
        return false;
    if (nspecs == 1)
        out->value = v[0].x;
    if (nspecs == 2) {
        out->fan_out = v[0].given && v[0].word == 1;
        out->slope = v[1].given ? v[1].x : 0;
    }
    return true;
}

/* ---- binding --------------------------------------------------------- */

static bool eval_arg(Sema *s, Env *env, const AstNode *n, const char *what, const ArgSpec *sp,
                     ArgVal *v)
{
    Ctx c = {s, what, sp->key};
    v->sp = n->sp;
    switch (sp->kind) {
    case AK_INT:
        return eval_int(&c, env, n, sp->range, &v->i);
    case AK_NUM:
        return eval_num(&c, env, n, sp->range, &v->x);
    case AK_BOOL:
        return eval_bool(&c, env, n, &v->b);
    case AK_INIT:
        return sema_eval_init(s, env, n, arena_printf(s->a, "%s: %s", what, sp->key), &v->init);
    case AK_PAD: {
        Env *e2 = env;
        const AstNode *w = n;
        const char *word = eval_word(s, &e2, &w);
        if (word && !strcmp(word, "same")) {
            v->i = -1;
            return true;
        }
        if (w->kind != AST_NUMBER)
            return kind_error(&c, e2, w, "an integer or 'same'");
        return eval_int(&c, env, n, sp->range, &v->i);
    }
    case AK_STR:
        return eval_str(&c, env, n, &v->s);
    case AK_WORD:
        return eval_choice(&c, env, n, sp->words, &v->word);
    case AK_NUMS:
    case AK_INTS:
    case AK_STRS:
        return eval_list(&c, env, n, sp, v);
    }
    return false;
}

static int find_key(const ArgSpec *specs, int nspecs, const char *key)
{
    for (int i = 0; i < nspecs; i++)
        if (!strcmp(specs[i].key, key))
            return i;
    return -1;
}

static void unknown_key(Sema *s, const AstArg *arg, const char *what, const ArgSpec *specs,
                        int nspecs)
{
    const char *keys[32];
    int n = nspecs < 32 ? nspecs : 32;
    for (int i = 0; i < n; i++)
        keys[i] = specs[i].key;
    const char *best = sema_closest(arg->key, keys, n);
    if (!nspecs)
        sema_error(s, arg->key_sp, "unknown key '%s' for %s (it takes no keys)", arg->key, what);
    else
        sema_error(s, arg->key_sp, "unknown key '%s' for %s%s%s%s", arg->key, what,
                   best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
}

bool sema_bind_args(Sema *s, Env *env, const AstNode *call, const char *what,
                    const ArgSpec *specs, int nspecs, int skip, ArgVal *out)
{
    memset(out, 0, sizeof *out * (size_t)(nspecs ? nspecs : 0));
    SrcSpan first_sp[32];
    bool tried[32] = {false};
    bool ok = true, seen_key = false;
    if (nspecs > 32)
        NETC_DIE("sema_bind_args: %d specs", nspecs);
    int pos = 0;
    for (int i = skip; i < call->call.nargs; i++) {
        const AstArg *arg = &call->call.args[i];
        int k;
        if (arg->key) {
            seen_key = true;
            k = find_key(specs, nspecs, arg->key);
            if (k < 0) {
                unknown_key(s, arg, what, specs, nspecs);
                ok = false;
                continue;
            }
        } else if (seen_key) {
            sema_error(s, arg->value->sp, "%s: positional argument after key=value arguments",
                       what);
            ok = false;
            continue;
        } else {
            k = pos++;
            if (k >= nspecs) {
                if (nspecs)
                    sema_error(s, arg->value->sp, "%s: too many arguments (at most %d)", what,
                               nspecs + skip);
                else
                    sema_error(s, arg->value->sp, "%s takes no arguments%s", what,
                               skip ? " besides its input" : "");
                return false;
            }
        }
        if (tried[k]) {
            Diag *dg = sema_error(s, arg->key ? arg->key_sp : arg->value->sp,
                                  "%s: key '%s' given twice", what, specs[k].key);
            diag_note(s->d, dg, first_sp[k], "first given here");
            ok = false;
            continue;
        }
        tried[k] = true;
        first_sp[k] = arg->key ? span_join(arg->key_sp, arg->value->sp) : arg->value->sp;
        if (eval_arg(s, env, arg->value, what, &specs[k], &out[k]))
            out[k].given = true;
        else
            ok = false;
    }
    for (int k = 0; k < nspecs && ok; k++)
        if (specs[k].required && !out[k].given) {
            sema_error(s, call->sp, "%s: missing '%s'", what, specs[k].key);
            ok = false;
        }
    return ok;
}
