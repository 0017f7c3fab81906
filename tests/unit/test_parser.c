/* test_parser.c - the grammar, the AST it builds, error recovery and the
 * robustness promises of parse_file() (ast.h).
 *
 * Trees are compared through ast_print()'s stable S-expression dump; spans
 * and counts are checked on the structs. Pathological inputs (deep nesting,
 * 100,000-link chains, binary garbage, exhausted memory) are generated in
 * memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ast.h"
#include "fault.h"

/* malloc that never returns NULL (the compiler learns that from abort). */
static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    return p;
}

typedef struct Fixture {
    Arena a;
    DiagSink d;
    Source src;
    AstFile f;
    int nerr;
} Fixture;

static Fixture *parse_n(const char *text, size_t len)
{
    Fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    arena_init(&fx->a);
    diag_init(&fx->d, &fx->a);
    char *copy = arena_alloc(&fx->a, len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    fx->src = (Source){"t.net", copy, len};
    fx->nerr = parse_file(&fx->src, &fx->a, &fx->d, &fx->f);
    return fx;
}

static Fixture *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void done(Fixture *fx)
{
    arena_free(&fx->a);
    free(fx);
}

/* ast_print() into a heap string. */
static char *dump(const AstFile *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    ast_print(f, out);
    fclose(out);
    return buf;
}

static void check_dump(const Fixture *fx, const char *want)
{
    char *got = dump(&fx->f);
    if (strcmp(got, want) != 0)
        fail_msg("dump differs:\n--- got\n%s--- want\n%s", got, want);
    free(got);
}

static void check_ok_dump(const char *text, const char *want)
{
    Fixture *fx = parse(text);
    if (fx->nerr)
        fail_msg("%d error(s), first: %d:%d %s", fx->nerr, fx->d.first->sp.line,
                 fx->d.first->sp.col, fx->d.first->msg);
    check_dump(fx, want);
    done(fx);
}

static const Diag *diag_at(const Fixture *fx, int i)
{
    const Diag *dg = fx->d.first;
    while (dg && i-- > 0)
        dg = dg->next;
    assert_non_null(dg);
    return dg;
}

static void check_error(const Fixture *fx, int i, int line, int col, const char *text)
{
    const Diag *dg = diag_at(fx, i);
    if (dg->sp.line != line || dg->sp.col != col || !strstr(dg->msg, text))
        fail_msg("error %d: got %d:%d '%s', want %d:%d '%s'", i, dg->sp.line, dg->sp.col,
                 dg->msg, line, col, text);
}

static void check_span(SrcSpan sp, int line, int col, int end_line, int end_col)
{
    assert_non_null(sp.src);
    if (sp.line != line || sp.col != col || sp.end_line != end_line || sp.end_col != end_col)
        fail_msg("span %d:%d-%d:%d, want %d:%d-%d:%d", sp.line, sp.col, sp.end_line,
                 sp.end_col, line, col, end_line, end_col);
}

/* ---- every statement kind ---------------------------------------------- */

static void test_parser_model_input_target(void **state)
{
    (void)state;
    Fixture *fx = parse("model lenet;\ninput image [1, 28, 28];\ninput v [784];\n"
                        "target label classes(10);\n"
                        "target coarse classes(3) = map(label, [0, 0, 1]);\n");
    assert_int_equal(fx->nerr, 0);
    check_dump(fx, "(model lenet)\n(input image 1 28 28)\n(input v 784)\n"
                   "(target label (call classes 10))\n"
                   "(target coarse (call classes 3) (call map (call label) (list 0 0 1)))\n");
    const AstStmt *in = fx->f.stmts[1];
    assert_int_equal(in->kind, STMT_INPUT);
    assert_int_equal(in->input.ndims, 3);
    assert_int_equal(in->input.dims[2].value, 28);
    check_span(in->input.dims[2].sp, 2, 21, 2, 23);
    check_span(in->name_sp, 2, 7, 2, 12);
    check_span(in->sp, 2, 1, 2, 25);
    assert_null(fx->f.stmts[3]->target.derive);
    assert_non_null(fx->f.stmts[4]->target.derive);
    assert_string_equal(fx->f.stmts[4]->target.kind->call.name, "classes");
    done(fx);
}

static void test_parser_preprocess_default_loss_output(void **state)
{
    (void)state;
    check_ok_dump("preprocess standardize(mean=[0.286], std=[0.353]);\n"
                  "default init kaiming(fan=out);\n"
                  "default bias_init zeros;\n"
                  "loss cross_entropy(logits, label, smoothing=0.1);\n"
                  "loss mse(p, t) weight 0.5;\n"
                  "loss mse(p, t) weight -2;\n"
                  "output probs = softmax(logits);\n",
                  "(preprocess (call standardize (mean= (list 0.286)) (std= (list 0.353))))\n"
                  "(default init (call kaiming (fan= (call out))))\n"
                  "(default bias_init (call zeros))\n"
                  "(loss (call cross_entropy (call logits) (call label) (smoothing= 0.1)))\n"
                  "(loss (call mse (call p) (call t)) (weight 0.5))\n"
                  "(loss (call mse (call p) (call t)) (weight -2))\n"
                  "(output probs (call softmax (call logits)))\n");
    Fixture *fx = parse("default init kaiming;\nloss mse(p, t) weight 0.5;\n");
    assert_int_equal(fx->f.stmts[0]->kind, STMT_DEFAULT);
    assert_string_equal(fx->f.stmts[0]->name, "init");
    assert_string_equal(fx->f.stmts[0]->deflt.call->call.name, "kaiming");
    const AstStmt *loss = fx->f.stmts[1];
    assert_true(loss->loss.weight->num.value == 0.5);
    check_span(loss->loss.weight->sp, 2, 23, 2, 26);
    check_span(loss->sp, 2, 1, 2, 27);
    done(fx);
}

static void test_parser_block(void **state)
{
    (void)state;
    const char *text = "block res(f, p) {\n"
                       "  a = in -> conv(f, 3, pad=same) -> relu;\n"
                       "  out = (a -> drop_path(p)) + in;\n"
                       "}\n"
                       "block empty() { }\n";
    check_ok_dump(text,
                  "(block res (params f p)\n"
                  "  (bind a (chain (call in) (call conv (call f) 3 (pad= (call same))) (call relu)))\n"
                  "  (bind out (sum (paren (chain (call a) (call drop_path (call p)))) (call in))))\n"
                  "(block empty (params))\n");
    Fixture *fx = parse(text);
    const AstStmt *b = fx->f.stmts[0];
    assert_int_equal(b->kind, STMT_BLOCK);
    assert_int_equal(b->block.nparams, 2);
    assert_string_equal(b->block.params[1], "p");
    check_span(b->block.param_sps[1], 1, 14, 1, 15);
    assert_int_equal(b->block.nbody, 2);
    assert_int_equal(b->block.body[1]->kind, STMT_BIND);
    check_span(b->sp, 1, 1, 4, 2);
    check_span(b->name_sp, 1, 7, 1, 10);
    assert_int_equal(fx->f.stmts[1]->block.nparams, 0);
    done(fx);
}

static void test_parser_train_settings(void **state)
{
    (void)state;
    const char *text = "train {\n"
                       "  data idx(train_images=\"a/b.gz\", targets=[\"x\", \"y\"]);\n"
                       "  batch 64; epochs 10; seed 9000000000;\n"
                       "  optimizer adamw(lr=1e-3, weight_decay=0.01);\n"
                       "  schedule step(every=3, gamma=0.5);\n"
                       "  regularize l2(5e-4, biases=true);\n"
                       "  augment translate(2), flip(vertical), rotate(10);\n"
                       "  mix cutmix(1.0);\n"
                       "}\n";
    check_ok_dump(text,
                  "(train\n"
                  "  (data (call idx (train_images= \"a/b.gz\") (targets= (list \"x\" \"y\"))))\n"
                  "  (batch 64)\n  (epochs 10)\n  (seed 9000000000)\n"
                  "  (optimizer (call adamw (lr= 1e-3) (weight_decay= 0.01)))\n"
                  "  (schedule (call step (every= 3) (gamma= 0.5)))\n"
                  "  (regularize (call l2 5e-4 (biases= (call true))))\n"
                  "  (augment (call translate 2) (call flip (call vertical)) (call rotate 10))\n"
                  "  (mix (call cutmix 1.0)))\n");
    Fixture *fx = parse(text);
    const AstStmt *t = fx->f.stmts[0];
    assert_int_equal(t->train.nsettings, 9);
    AstStmtKind kinds[] = {STMT_SET_DATA, STMT_SET_BATCH, STMT_SET_EPOCHS, STMT_SET_SEED,
                           STMT_SET_OPTIMIZER, STMT_SET_SCHEDULE, STMT_SET_REGULARIZE,
                           STMT_SET_AUGMENT, STMT_SET_MIX};
    for (int i = 0; i < 9; i++)
        assert_int_equal(t->train.settings[i]->kind, kinds[i]);
    assert_true(t->train.settings[3]->int_setting.value == 9000000000LL);
    check_span(t->train.settings[1]->int_setting.value_sp, 3, 9, 3, 11);
    check_span(t->train.settings[1]->sp, 3, 3, 3, 12);
    assert_int_equal(t->train.settings[7]->augment.ncalls, 3);
    check_span(t->sp, 1, 1, 9, 2);
    done(fx);
}

static void test_parser_expressions(void **state)
{
    (void)state;
    check_ok_dump("a = x;\nb = relu();\nc = x -> f -> g(1);\nd = x + y + z;\n"
                  "e = (x -> f) + g(x + y, k=(z));\nf = concat(a, b, c);\n"
                  "g = f(s=\"q\\\"\\\\\", l=[], n=[[1, 2], [-3.5]]);\n"
                  "h = f(data=1, weight=2, in=3) -> batch -> seed;\n",
                  "(bind a (call x))\n"
                  "(bind b (call relu ()))\n"
                  "(bind c (chain (call x) (call f) (call g 1)))\n"
                  "(bind d (sum (call x) (call y) (call z)))\n"
                  "(bind e (sum (paren (chain (call x) (call f))) (call g (sum (call x) (call y)) (k= (paren (call z))))))\n"
                  "(bind f (call concat (call a) (call b) (call c)))\n"
                  "(bind g (call f (s= \"q\\\"\\\\\") (l= (list)) (n= (list (list 1 2) (list -3.5)))))\n"
                  "(bind h (chain (call f (data= 1) (weight= 2) (in= 3)) (call batch) (call seed)))\n");
    Fixture *fx = parse("x = a -> b + c;\n");
    const AstNode *sum = fx->f.stmts[0]->bind.expr;
    assert_int_equal(sum->kind, AST_SUM);
    assert_int_equal(sum->sum.nterms, 2);
    assert_int_equal(sum->sum.terms[0]->kind, AST_CHAIN);
    check_span(sum->sp, 1, 5, 1, 15);
    check_span(sum->sum.terms[0]->sp, 1, 5, 1, 11);
    assert_false(sum->sum.terms[1]->call.has_parens);
    done(fx);
}

/* The full example of LANGUAGE.md, byte for byte. */
static const char language_example[] =
    "model lenet;                                  # the model's name: prefix of the generated C API\n"
    "\n"
    "input  image [1, 28, 28];                     # C,H,W (float in [0,1] after decoding uint8), or [D]\n"
    "target label classes(10);                     # integer labels 0..9\n"
    "\n"
    "preprocess standardize;                       # see \"Preprocessing\"\n"
    "default init kaiming;                         # default init of conv/dense weights\n"
    "default bias_init zeros;\n"
    "\n"
    "logits = image\n"
    "  -> conv(6, 5, pad=2) -> batchnorm -> relu -> maxpool(2)\n"
    "  -> conv(16, 5)       -> batchnorm -> relu -> maxpool(2)\n"
    "  -> dense(120) -> relu -> dropout(0.5)\n"
    "  -> dense(84)  -> relu -> dropout(0.5)\n"
    "  -> dense(10, init=xavier);\n"
    "\n"
    "loss cross_entropy(logits, label);\n"
    "output probs = softmax(logits);               # what predict() returns; default: every loss's prediction\n"
    "\n"
    "train {\n"
    "  data fashion_mnist;                         # the embedded default data set\n"
    "  batch 64;\n"
    "  epochs 10;\n"
    "  seed 1;\n"
    "  optimizer sgd(lr=0.05, momentum=0.9, nesterov=true);\n"
    "  schedule cosine;\n"
    "  regularize l2(5e-4);\n"
    "  augment translate(2), flip, rotate(10), cutout(8), noise(0.02);\n"
    "  mix mixup(0.2);\n"
    "}\n";

static void test_parser_language_example(void **state)
{
    (void)state;
    Fixture *fx = parse(language_example);
    assert_int_equal(fx->nerr, 0);
    check_dump(fx,
        "(model lenet)\n"
        "(input image 1 28 28)\n"
        "(target label (call classes 10))\n"
        "(preprocess (call standardize))\n"
        "(default init (call kaiming))\n"
        "(default bias_init (call zeros))\n"
        "(bind logits (chain (call image) (call conv 6 5 (pad= 2)) (call batchnorm) (call relu)"
        " (call maxpool 2) (call conv 16 5) (call batchnorm) (call relu) (call maxpool 2)"
        " (call dense 120) (call relu) (call dropout 0.5) (call dense 84) (call relu)"
        " (call dropout 0.5) (call dense 10 (init= (call xavier)))))\n"
        "(loss (call cross_entropy (call logits) (call label)))\n"
        "(output probs (call softmax (call logits)))\n"
        "(train\n"
        "  (data (call fashion_mnist))\n"
        "  (batch 64)\n"
        "  (epochs 10)\n"
        "  (seed 1)\n"
        "  (optimizer (call sgd (lr= 0.05) (momentum= 0.9) (nesterov= (call true))))\n"
        "  (schedule (call cosine))\n"
        "  (regularize (call l2 5e-4))\n"
        "  (augment (call translate 2) (call flip) (call rotate 10) (call cutout 8) (call noise 0.02))\n"
        "  (mix (call mixup 0.2)))\n");
    const AstStmt *logits = fx->f.stmts[6];
    check_span(logits->sp, 10, 1, 15, 29);
    const AstNode *ch = logits->bind.expr;
    assert_int_equal(ch->chain.ncalls, 15);
    check_span(ch->chain.calls[0]->sp, 11, 6, 11, 23);
    check_span(ch->chain.calls[0]->call.name_sp, 11, 6, 11, 10);
    check_span(ch->chain.calls[14]->call.args[1].key_sp, 15, 16, 15, 20);
    check_span(fx->f.stmts[9]->sp, 20, 1, 30, 2);
    done(fx);
}

static void test_parser_stmt_kind_names(void **state)
{
    (void)state;
    assert_string_equal(ast_stmt_kind_name(STMT_MODEL), "model");
    assert_string_equal(ast_stmt_kind_name(STMT_BIND), "bind");
    assert_string_equal(ast_stmt_kind_name(STMT_SET_AUGMENT), "augment");
    assert_string_equal(ast_stmt_kind_name(STMT_SET_MIX), "mix");
    for (int k = STMT_MODEL; k <= STMT_SET_AUGMENT; k++)
        assert_string_not_equal(ast_stmt_kind_name((AstStmtKind)k), "?");
}

/* ---- error recovery ---------------------------------------------------- */

static void test_parser_reports_every_error(void **state)
{
    (void)state;
    Fixture *fx = parse("model m\n"                            /* 1 */
                        "input image [1, 28, 28];\n"           /* 2 */
                        "x = image -> -> relu;\n"              /* 3 */
                        "y = conv(6, 5 pad=2) -> relu;\n"      /* 4 */
                        "block b(x y) { out = x; }\n"          /* 5 */
                        "z = a b c;\n"                         /* 6 */
                        "train {\n"                            /* 7 */
                        "  batch 64\n"                         /* 8 */
                        "  epochs x;\n"                        /* 9 */
                        "  seed 3;\n"                          /* 10 */
                        "}\n"                                  /* 11 */
                        "output p = softmax(z)\n");            /* 12 */
    assert_int_equal(fx->nerr, 8);
    check_error(fx, 0, 1, 8, "expected ';' after statement");
    check_error(fx, 1, 3, 14, "unexpected '->', expecting identifier");
    check_error(fx, 2, 4, 15, "unexpected identifier 'pad', expecting ')' or ','");
    check_error(fx, 3, 5, 11, "unexpected identifier 'y'");
    check_error(fx, 4, 6, 7, "unexpected identifier 'b', expecting ';'");
    check_error(fx, 5, 8, 11, "expected ';' after statement");
    check_error(fx, 6, 9, 10, "unexpected identifier 'x', expecting integer");
    check_error(fx, 7, 12, 22, "expected ';' after statement");
    /* Statements with a missing ';' are kept; broken ones are dropped. */
    check_dump(fx, "(model m)\n(input image 1 28 28)\n(train\n  (batch 64)\n  (seed 3))\n"
                   "(output p (call softmax (call z)))\n");
    done(fx);
}

static void test_parser_missing_semicolon_keeps_going(void **state)
{
    (void)state;
    Fixture *fx = parse("x = a -> relu\ny = x\nloss mse(y, t)\n");
    assert_int_equal(fx->nerr, 3);
    check_error(fx, 0, 1, 14, "expected ';'");
    check_span(diag_at(fx, 0)->sp, 1, 14, 1, 15);
    check_error(fx, 1, 2, 6, "expected ';'");
    check_error(fx, 2, 3, 15, "expected ';'");
    assert_int_equal(fx->f.nstmts, 3);
    check_span(fx->f.stmts[0]->sp, 1, 1, 1, 14);
    done(fx);
}

static void test_parser_resyncs_at_semicolon_and_brace(void **state)
{
    (void)state;
    Fixture *fx = parse("x = ) ;\ny = ( ;\nblock b(p) { a = ; out = p; }\n"
                        "train { batch x; epochs 2; seed }\nz = ok;\n");
    assert_int_equal(fx->nerr, 5);
    check_error(fx, 0, 1, 5, "unexpected ')', expecting identifier or '('");
    check_error(fx, 1, 2, 7, "unexpected ';'");
    check_error(fx, 2, 3, 18, "unexpected ';'");
    check_error(fx, 3, 4, 15, "unexpected identifier 'x', expecting integer");
    check_error(fx, 4, 4, 33, "unexpected '}', expecting integer");
    check_dump(fx, "(block b (params p)\n  (bind out (call p)))\n(train\n  (epochs 2))\n"
                   "(bind z (call ok))\n");
    done(fx);
    /* An error in a train setting right before '}' closes the section. */
    fx = parse("train { batch 2; seed }\nmodel m;\n");
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 1, 23, "unexpected '}', expecting integer");
    check_dump(fx, "(train\n  (batch 2))\n(model m)\n");
    done(fx);
}

static void test_parser_block_header_error_skips_to_body(void **state)
{
    (void)state;
    Fixture *fx = parse("block b(x y z) {\n  a = x;\n  out = a;\n}\nmodel m;\nblock c;\ninput i [1];\n");
    assert_int_equal(fx->nerr, 2);
    check_error(fx, 0, 1, 11, "unexpected identifier 'y'");
    check_error(fx, 1, 6, 8, "unexpected ';', expecting '('");
    check_dump(fx, "(model m)\n(input i 1)\n");
    done(fx);
}

static void test_parser_statement_keyword_cannot_start_bind(void **state)
{
    (void)state;
    Fixture *fx = parse("data = x;\nbatch 3;\n}\nmodel m;\n");
    assert_int_equal(fx->nerr, 3);
    check_error(fx, 0, 1, 1, "unexpected 'data', expecting a statement");
    check_error(fx, 1, 2, 1, "unexpected 'batch', expecting a statement");
    check_error(fx, 2, 3, 1, "unexpected '}', expecting a statement");
    assert_int_equal(fx->f.nstmts, 1);
    done(fx);
}

static void test_parser_unexpected_end_of_file(void **state)
{
    (void)state;
    Fixture *fx = parse("model m;\nx = conv(6,");
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 2, 12, "unexpected end of file");
    assert_int_equal(fx->f.nstmts, 1);
    done(fx);
    fx = parse("train {\n  batch 3;\n");
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 3, 1, "unexpected end of file, expecting a train setting or '}'");
    done(fx);
}

static void test_parser_stops_at_error_limit(void **state)
{
    (void)state;
    char text[2000] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, "x = );\n");
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    d.max_errors = 5;
    Source src = {"t.net", text, strlen(text)};
    AstFile f;
    int n = parse_file(&src, &a, &d, &f);
    assert_int_equal(n, 5);
    assert_false(d.truncated);
    int count = 0;
    for (const Diag *dg = d.first; dg; dg = dg->next, count++)
        assert_int_equal(dg->sp.line, count + 1);
    assert_int_equal(count, 5);
    arena_free(&a);
}

static void test_parser_bad_characters_stop_at_error_limit(void **state)
{
    (void)state;
    enum { N = 200000 };
    char *t = xmalloc(N);
    for (int i = 0; i < N; i += 2) {
        t[i] = '@';
        t[i + 1] = ' ';
    }
    Fixture *fx = parse_n(t, N);
    assert_int_equal(fx->nerr, fx->d.max_errors);
    check_error(fx, 1, 1, 3, "unexpected character '@'");
    done(fx);
    free(t);
}

/* ---- robustness -------------------------------------------------------- */

/* "x = " + n times open + "a" + n times close + ";\n". */
static char *nested(int n, const char *open, const char *close, size_t *len)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *t = xmalloc(16 + (size_t)n * (lo + lc));
    char *p = t + sprintf(t, "x = ");
    for (int i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    *p++ = 'a';
    for (int i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    p += sprintf(p, ";\n");
    *len = (size_t)(p - t);
    return t;
}

static void test_parser_deep_nesting_is_capped(void **state)
{
    (void)state;
    static const char *kinds[][2] = {{"(", ")"}, {"f(", ")"}, {"g(k=[", "])"}, {"h([", "])"}};
    for (int k = 0; k < 4; k++) {
        size_t len;
        char *t = nested(20000, kinds[k][0], kinds[k][1], &len);
        Fixture *fx = parse_n(t, len);
        assert_int_equal(fx->nerr, 1);
        assert_non_null(strstr(diag_at(fx, 0)->msg, "nesting too deep (more than 256 levels)"));
        assert_int_equal(diag_at(fx, 0)->sp.line, 1);
        assert_int_equal(fx->f.nstmts, 0);
        done(fx);
        free(t);
    }
    /* The 257th '(' is the one reported. */
    size_t len;
    char *t = nested(257, "(", ")", &len);
    Fixture *fx = parse_n(t, len);
    check_error(fx, 0, 1, 5 + 256, "nesting too deep");
    done(fx);
    free(t);
}

static void test_parser_nesting_at_the_cap_is_fine(void **state)
{
    (void)state;
    size_t len;
    char *t = nested(AST_MAX_DEPTH, "(", ")", &len);
    Fixture *fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 0);
    const AstNode *n = fx->f.stmts[0]->bind.expr;
    int depth = 0;
    while (n->kind == AST_PAREN) {
        n = n->paren.inner;
        depth++;
    }
    assert_int_equal(depth, AST_MAX_DEPTH);
    char *d = dump(&fx->f);   /* printing recurses within the cap */
    assert_non_null(strstr(d, "(call a)"));
    free(d);
    done(fx);
    free(t);
    /* Nesting counts reset at ';': many shallow statements are fine. */
    t = nested(200, "f(", ")", &len);
    char *many = xmalloc(len * 3 + 1);
    for (int i = 0; i < 3; i++)
        memcpy(many + i * len, t, len);
    fx = parse_n(many, len * 3);
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 3);
    done(fx);
    free(many);
    free(t);
}

/* "x = a" + n times sep + "b" + ";\n" */
static char *repeated(int n, const char *sep, size_t *len)
{
    size_t ls = strlen(sep);
    char *t = xmalloc(16 + (size_t)n * (ls + 1));
    char *p = t + sprintf(t, "x = a");
    for (int i = 0; i < n; i++) {
        memcpy(p, sep, ls);
        p += ls;
        *p++ = 'b';
    }
    p += sprintf(p, ";\n");
    *len = (size_t)(p - t);
    return t;
}

static void test_parser_long_chain_is_flat(void **state)
{
    (void)state;
    size_t len;
    char *t = repeated(100000, " -> ", &len);
    Fixture *fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 0);
    const AstNode *ch = fx->f.stmts[0]->bind.expr;
    assert_int_equal(ch->kind, AST_CHAIN);
    assert_int_equal(ch->chain.ncalls, 100000);
    assert_string_equal(ch->chain.calls[99999]->call.name, "b");
    check_span(ch->sp, 1, 5, 1, (int)len - 1);
    /* Linear memory: the growing vector is not copied quadratically. */
    assert_true(fx->a.total < (size_t)100000 * 400);
    done(fx);
    free(t);
}

static void test_parser_long_sum_is_flat(void **state)
{
    (void)state;
    size_t len;
    char *t = repeated(100000, " + ", &len);
    Fixture *fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 0);
    const AstNode *s = fx->f.stmts[0]->bind.expr;
    assert_int_equal(s->kind, AST_SUM);
    assert_int_equal(s->sum.nterms, 100001);
    assert_true(fx->a.total < (size_t)100000 * 400);
    done(fx);
    free(t);
}

static void test_parser_many_statements(void **state)
{
    (void)state;
    enum { N = 10000 };
    char *t = xmalloc((size_t)N * 40);
    char *p = t;
    for (int i = 0; i < N; i++)
        p += sprintf(p, "x%d = x%d -> relu;\n", i + 1, i);
    Fixture *fx = parse_n(t, (size_t)(p - t));
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, N);
    assert_string_equal(fx->f.stmts[N - 1]->name, "x10000");
    assert_int_equal(fx->f.stmts[N - 1]->sp.line, N);
    done(fx);
    free(t);
}

/* xorshift: the same garbage on every run. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_parser_binary_garbage(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    char *t = xmalloc(N);
    for (uint32_t seed = 1; seed <= 4; seed++) {
        uint32_t s = seed * 2654435761u;
        for (int i = 0; i < N; i++)
            t[i] = (char)(next_rand(&s) >> 24);
        Fixture *fx = parse_n(t, N);
        assert_true(fx->nerr > 0);
        assert_true(fx->nerr <= fx->d.max_errors);
        for (const Diag *dg = fx->d.first; dg; dg = dg->next)
            assert_true(dg->sp.line >= 1 && dg->sp.col >= 1);
        done(fx);
    }
    /* Garbage made of valid tokens only. */
    static const char *toks[] = {"(", ")", "[", "]", "{", "}", ",", ";", "=", "+", "-", "->",
                                 "x", "model", "train", "block", "1", "2.5", "\"s\"", "\n", " "};
    uint32_t s = 7;
    size_t n = 0;
    while (n < N - 8) {
        const char *tok = toks[next_rand(&s) % (sizeof toks / sizeof *toks)];
        memcpy(t + n, tok, strlen(tok));
        n += strlen(tok);
        t[n++] = ' ';
    }
    Fixture *fx = parse_n(t, n);
    assert_true(fx->nerr > 0);
    done(fx);
    free(t);
}

static void test_parser_only_nul_bytes(void **state)
{
    (void)state;
    char t[4096] = {0};
    Fixture *fx = parse_n(t, sizeof t);
    assert_int_equal(fx->nerr, 1);   /* one run of bad characters */
    check_error(fx, 0, 1, 1, "unexpected character '\\x00'");
    done(fx);
}

static void test_parser_out_of_memory(void **state)
{
    (void)state;
    size_t len = strlen(language_example);
    int failures = 0;
    for (size_t limit = 16; limit < 64 * 1024; limit += limit < 2048 ? 16 : 509) {
        Arena a, da;
        arena_init(&a);
        arena_init(&da);
        a.limit = limit;
        DiagSink d;
        diag_init(&d, &da);   /* messages survive the AST arena's exhaustion */
        Source src = {"t.net", language_example, len};
        AstFile f;
        int n = parse_file(&src, &a, &d, &f);
        if (a.failed) {
            failures++;
            assert_int_equal(n, 1);
            assert_string_equal(d.first->msg, "out of memory");
            assert_null(d.first->next);
        } else {
            assert_int_equal(n, 0);
            assert_int_equal(f.nstmts, 10);
        }
        arena_free(&a);
        arena_free(&da);
    }
    assert_true(failures > 10);
}

static void test_parser_malloc_failure(void **state)
{
    (void)state;
    size_t len = strlen(language_example);
    for (long k = 1; k < 12; k++) {
        Arena a;
        arena_init(&a);
        DiagSink d;
        diag_init(&d, &a);
        Source src = {"t.net", language_example, len};
        AstFile f;
        netc_fault_fail_after(k);
        int n = parse_file(&src, &a, &d, &f);
        netc_fault_fail_after(0);
        /* Either it fit before the failure or the failure is one error. */
        assert_true(n == 0 || n == 1);
        if (n == 0)
            assert_int_equal(f.nstmts, 10);
        arena_free(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_model_input_target),
        cmocka_unit_test(test_parser_preprocess_default_loss_output),
        cmocka_unit_test(test_parser_block),
        cmocka_unit_test(test_parser_train_settings),
        cmocka_unit_test(test_parser_expressions),
        cmocka_unit_test(test_parser_language_example),
        cmocka_unit_test(test_parser_stmt_kind_names),
        cmocka_unit_test(test_parser_reports_every_error),
        cmocka_unit_test(test_parser_missing_semicolon_keeps_going),
        cmocka_unit_test(test_parser_resyncs_at_semicolon_and_brace),
        cmocka_unit_test(test_parser_block_header_error_skips_to_body),
        cmocka_unit_test(test_parser_statement_keyword_cannot_start_bind),
        cmocka_unit_test(test_parser_unexpected_end_of_file),
        cmocka_unit_test(test_parser_stops_at_error_limit),
        cmocka_unit_test(test_parser_bad_characters_stop_at_error_limit),
        cmocka_unit_test(test_parser_deep_nesting_is_capped),
        cmocka_unit_test(test_parser_nesting_at_the_cap_is_fine),
        cmocka_unit_test(test_parser_long_chain_is_flat),
        cmocka_unit_test(test_parser_long_sum_is_flat),
        cmocka_unit_test(test_parser_many_statements),
        cmocka_unit_test(test_parser_binary_garbage),
        cmocka_unit_test(test_parser_only_nul_bytes),
        cmocka_unit_test(test_parser_out_of_memory),
        cmocka_unit_test(test_parser_malloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
