/* test_lexer.c - tokens, their spans and lexical errors, seen through
 * parse_file() (the scanner's own API is internal to the parser).
 *
 * Each test parses a small text and checks the AST nodes' values and spans
 * or the diagnostics' messages and locations. Pathological inputs (1 MB
 * identifiers, NUL bytes, CRLF) are generated in memory.
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

/* Parses exactly len bytes of text (which may hold NUL bytes). */
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

static const Diag *diag_at(const Fixture *fx, int i)
{
    const Diag *dg = fx->d.first;
    while (dg && i-- > 0)
        dg = dg->next;
    assert_non_null(dg);
    return dg;
}

static void check_span(SrcSpan sp, int line, int col, int end_line, int end_col)
{
    assert_non_null(sp.src);
    assert_int_equal(sp.line, line);
    assert_int_equal(sp.col, col);
    assert_int_equal(sp.end_line, end_line);
    assert_int_equal(sp.end_col, end_col);
}

/* Error i is at line:col and its message contains text. */
static void check_error(const Fixture *fx, int i, int line, int col, const char *text)
{
    const Diag *dg = diag_at(fx, i);
    assert_int_equal(dg->level, DIAG_ERROR);
    if (dg->sp.line != line || dg->sp.col != col || !strstr(dg->msg, text))
        fail_msg("error %d: got %d:%d '%s', want %d:%d '%s'", i, dg->sp.line, dg->sp.col,
                 dg->msg, line, col, text);
}

/* The expression of the only statement, a bind. */
static const AstNode *bind_expr(const Fixture *fx)
{
    assert_int_equal(fx->f.nstmts, 1);
    assert_int_equal(fx->f.stmts[0]->kind, STMT_BIND);
    return fx->f.stmts[0]->bind.expr;
}

/* Argument i of a call. */
static const AstNode *arg(const AstNode *call, int i)
{
    assert_int_equal(call->kind, AST_CALL);
    assert_true(i < call->call.nargs);
    return call->call.args[i].value;
}

static void test_lexer_call_spans(void **state)
{
    (void)state;
    Fixture *fx = parse("x = conv(6, 5, pad=2);\n");
    assert_int_equal(fx->nerr, 0);
    const AstNode *c = bind_expr(fx);
    assert_int_equal(c->kind, AST_CALL);
    assert_string_equal(c->call.name, "conv");
    assert_true(c->call.has_parens);
    check_span(c->sp, 1, 5, 1, 22);
    check_span(c->call.name_sp, 1, 5, 1, 9);
    assert_int_equal(c->call.nargs, 3);
    check_span(arg(c, 0)->sp, 1, 10, 1, 11);
    check_span(arg(c, 1)->sp, 1, 13, 1, 14);
    assert_string_equal(c->call.args[2].key, "pad");
    check_span(c->call.args[2].key_sp, 1, 16, 1, 19);
    check_span(arg(c, 2)->sp, 1, 20, 1, 21);
    assert_null(c->call.args[0].key);
    check_span(fx->f.stmts[0]->sp, 1, 1, 1, 23);
    check_span(fx->f.stmts[0]->name_sp, 1, 1, 1, 2);
    done(fx);
}

static void test_lexer_spans_across_lines_and_tabs(void **state)
{
    (void)state;
    Fixture *fx = parse("# header\n\n\tx = a\n  -> relu;   # trailing\n");
    assert_int_equal(fx->nerr, 0);
    const AstNode *ch = bind_expr(fx);
    assert_int_equal(ch->kind, AST_CHAIN);
    check_span(ch->sp, 3, 6, 4, 10);
    check_span(ch->chain.head->sp, 3, 6, 3, 7);
    check_span(ch->chain.calls[0]->sp, 4, 6, 4, 10);
    check_span(fx->f.stmts[0]->sp, 3, 2, 4, 11);
    done(fx);
}

static void test_lexer_crlf_line_endings(void **state)
{
    (void)state;
    Fixture *fx = parse("model m;\r\ninput i [1, 2];\r\nx = i -> relu\r\n  -> dense(3);\r\n");
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 3);
    check_span(fx->f.stmts[1]->sp, 2, 1, 2, 16);
    check_span(fx->f.stmts[1]->input.dims[1].sp, 2, 13, 2, 14);
    const AstNode *ch = fx->f.stmts[2]->bind.expr;
    check_span(ch->chain.calls[1]->sp, 4, 6, 4, 14);
    done(fx);
    /* An error after CRLF lines is still located by bytes, '\r' excluded. */
    fx = parse("model m;\r\nx = ) ;\r\n");
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 2, 5, "unexpected ')'");
    done(fx);
}

static void test_lexer_no_trailing_newline(void **state)
{
    (void)state;
    Fixture *fx = parse("model m;\nx = a -> relu;");
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 2);
    check_span(fx->f.stmts[1]->sp, 2, 1, 2, 15);
    done(fx);
    fx = parse("model m;  # a comment at the very end");
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 1);
    done(fx);
}

static void test_lexer_integers(void **state)
{
    (void)state;
    Fixture *fx = parse("x = f(0, 42, -7, 9223372036854775807, - 3);");
    assert_int_equal(fx->nerr, 0);
    const AstNode *c = bind_expr(fx);
    int64_t want[] = {0, 42, -7, INT64_MAX, -3};
    const char *text[] = {"0", "42", "-7", "9223372036854775807", "-3"};
    for (int i = 0; i < 5; i++) {
        const AstNode *n = arg(c, i);
        assert_int_equal(n->kind, AST_NUMBER);
        assert_true(n->num.is_int);
        assert_true(n->num.ival == want[i]);
        assert_true(n->num.value == (double)want[i]);
        assert_string_equal(n->num.text, text[i]);
    }
    check_span(arg(c, 2)->sp, 1, 14, 1, 16);   /* the '-' belongs to the number */
    check_span(arg(c, 4)->sp, 1, 39, 1, 42);
    done(fx);
}

static void test_lexer_floats(void **state)
{
    (void)state;
    Fixture *fx = parse("x = f(0.5, 5e-4, 1e5, .25, 2., -1.5E+2, 3.0);");
    assert_int_equal(fx->nerr, 0);
    const AstNode *c = bind_expr(fx);
    double want[] = {0.5, 5e-4, 1e5, 0.25, 2.0, -150.0, 3.0};
    for (int i = 0; i < 7; i++) {
        const AstNode *n = arg(c, i);
        assert_int_equal(n->kind, AST_NUMBER);
        assert_false(n->num.is_int);
        assert_true(n->num.value == want[i]);
    }
    assert_string_equal(arg(c, 1)->num.text, "5e-4");
    check_span(arg(c, 1)->sp, 1, 12, 1, 16);
    done(fx);
}

static void test_lexer_integer_too_large(void **state)
{
    (void)state;
    Fixture *fx = parse("model m;\nx = f(1, 9223372036854775808);\ny = g(99999999999999999999999);\n");
    assert_int_equal(fx->nerr, 2);
    check_error(fx, 0, 2, 10, "too large");
    check_span(diag_at(fx, 0)->sp, 2, 10, 2, 29);
    check_error(fx, 1, 3, 7, "too large");
    done(fx);
}

static void test_lexer_bad_numbers(void **state)
{
    (void)state;
    Fixture *fx = parse("x = f(5abc, 1.5.3, 2e, 1e999);\ny = g(1);\n");
    assert_int_equal(fx->nerr, 4);
    check_error(fx, 0, 1, 7, "invalid number '5abc'");
    check_error(fx, 1, 1, 13, "invalid number '1.5.3'");
    check_error(fx, 2, 1, 20, "invalid number '2e'");
    check_error(fx, 3, 1, 24, "out of range");
    assert_int_equal(fx->f.nstmts, 2);   /* lexical errors do not derail the parser */
    done(fx);
}

static void test_lexer_strings_and_escapes(void **state)
{
    (void)state;
    Fixture *fx = parse("x = f(\"a b\", \"q\\\"x\\\\y\", \"\", \"caf\xc3\xa9\");");
    assert_int_equal(fx->nerr, 0);
    const AstNode *c = bind_expr(fx);
    const AstNode *s = arg(c, 0);
    assert_int_equal(s->kind, AST_STRING);
    assert_string_equal(s->str.s, "a b");
    assert_int_equal(s->str.len, 3);
    check_span(s->sp, 1, 7, 1, 12);
    assert_string_equal(arg(c, 1)->str.s, "q\"x\\y");
    assert_int_equal(arg(c, 1)->str.len, 5);
    assert_int_equal(arg(c, 2)->str.len, 0);
    assert_string_equal(arg(c, 3)->str.s, "caf\xc3\xa9");   /* UTF-8 inside strings is fine */
    done(fx);
}

static void test_lexer_bad_escape(void **state)
{
    (void)state;
    Fixture *fx = parse("x = f(\"ab\\ncd\\t\");\ny = g;\n");
    assert_int_equal(fx->nerr, 1);   /* one error per string */
    check_error(fx, 0, 1, 10, "unknown escape sequence");
    check_span(diag_at(fx, 0)->sp, 1, 10, 1, 12);
    assert_int_equal(fx->f.nstmts, 2);
    done(fx);
}

static void test_lexer_nul_in_string(void **state)
{
    (void)state;
    static const char text[] = "x = f(\"a\0b\");";
    Fixture *fx = parse_n(text, sizeof text - 1);
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 1, 9, "NUL character in string");
    done(fx);
}

static void test_lexer_unterminated_string(void **state)
{
    (void)state;
    /* At end of file. */
    Fixture *fx = parse("model m;\nx = f(\"abc");
    assert_true(fx->nerr >= 1);
    check_error(fx, 0, 2, 7, "unterminated string");
    assert_int_equal(fx->f.nstmts, 1);
    done(fx);
    /* A newline ends it too; the string token still counts, so the
     * statement completes on the next line without a second error. */
    fx = parse("x = f(\"abc\n);\ny = g;\n");
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 1, 7, "unterminated string");
    assert_int_equal(fx->f.nstmts, 2);
    assert_string_equal(fx->f.stmts[1]->name, "y");
    done(fx);
    /* A trailing backslash at end of file. */
    fx = parse("x = f(\"abc\\");
    check_error(fx, 0, 1, 7, "unterminated string");
    done(fx);
}

static void test_lexer_comments(void **state)
{
    (void)state;
    Fixture *fx = parse("# only\n   # comments\n#\n# \"not a string\n#");
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 0);
    done(fx);
    fx = parse("model m; # model other;\n# x = ;\n");
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 1);
    done(fx);
}

static void test_lexer_empty_input(void **state)
{
    (void)state;
    Fixture *fx = parse_n("", 0);
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(fx->f.nstmts, 0);
    assert_ptr_equal(fx->f.src, &fx->src);
    done(fx);
    fx = parse(" \t\r\n\f\v\n");
    assert_int_equal(fx->nerr, 0);
    done(fx);
}

static void test_lexer_unknown_characters(void **state)
{
    (void)state;
    Fixture *fx = parse("model m;\nx = a @@@ -> relu;\ny = b \xc3\xa9 -> c;\nz = c > d;\n");
    assert_int_equal(fx->nerr, 4);
    check_error(fx, 0, 2, 7, "unexpected character '@'");
    check_span(diag_at(fx, 0)->sp, 2, 7, 2, 10);   /* one error for the run */
    check_error(fx, 1, 3, 7, "unexpected character '\\xc3'");
    check_error(fx, 2, 4, 7, "unexpected character '>'");
    /* The parser sees `z = c d;`: one more error, at 'd'. */
    check_error(fx, 3, 4, 9, "unexpected identifier 'd'");
    assert_int_equal(fx->f.nstmts, 3);
    done(fx);
    fx = parse("x = a . b;");
    check_error(fx, 0, 1, 7, "unexpected character '.'");
    done(fx);
}

static void test_lexer_nul_bytes_are_characters(void **state)
{
    (void)state;
    static const char text[] = "model m;\0\0 x = \0a;\ninput i [1];";
    Fixture *fx = parse_n(text, sizeof text - 1);
    assert_int_equal(fx->nerr, 2);
    check_error(fx, 0, 1, 9, "unexpected character '\\x00'");
    check_span(diag_at(fx, 0)->sp, 1, 9, 1, 11);
    check_error(fx, 1, 1, 16, "unexpected character '\\x00'");
    /* Scanning went on past the NUL bytes to the end of the text. */
    assert_int_equal(fx->f.nstmts, 3);
    assert_int_equal(fx->f.stmts[2]->kind, STMT_INPUT);
    done(fx);
}

static void test_lexer_keywords_and_identifiers(void **state)
{
    (void)state;
    Fixture *fx = parse("models = in -> out -> model_x -> _a1 -> seed2 -> trainer;");
    assert_int_equal(fx->nerr, 0);
    const AstNode *ch = bind_expr(fx);
    assert_string_equal(fx->f.stmts[0]->name, "models");
    assert_string_equal(ch->chain.head->call.name, "in");
    const char *names[] = {"out", "model_x", "_a1", "seed2", "trainer"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(ch->chain.calls[i]->call.name, names[i]);
    done(fx);
}

/* The text "model " + n letters 'a' + ";\nx = b;\n". */
static char *long_ident_text(size_t n, size_t *len)
{
    char *t = xmalloc(n + 32);
    memcpy(t, "model ", 6);
    memset(t + 6, 'a', n);
    strcpy(t + 6 + n, ";\nx = b;\n");
    *len = strlen(t);
    return t;
}

static void test_lexer_identifier_length_limit(void **state)
{
    (void)state;
    size_t len;
    char *t = long_ident_text(255, &len);
    Fixture *fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 0);
    assert_int_equal(strlen(fx->f.stmts[0]->name), 255);
    done(fx);
    free(t);
    t = long_ident_text(256, &len);
    fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 1, 7, "identifier too long (256 characters");
    check_span(diag_at(fx, 0)->sp, 1, 7, 1, 263);
    assert_int_equal(fx->f.nstmts, 2);
    done(fx);
    free(t);
}

static void test_lexer_megabyte_identifier(void **state)
{
    (void)state;
    size_t len, n = (size_t)1 << 20;
    char *t = long_ident_text(n, &len);
    Fixture *fx = parse_n(t, len);
    assert_int_equal(fx->nerr, 1);
    check_error(fx, 0, 1, 7, "identifier too long (1048576 characters");
    assert_int_equal(fx->f.nstmts, 2);
    assert_int_equal(strlen(fx->f.stmts[0]->name), 255);
    check_span(fx->f.stmts[1]->sp, 2, 1, 2, 7);
    /* Linear: the identifier is not copied over and over. */
    assert_true(fx->a.total < 4 * n);
    done(fx);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lexer_call_spans),
        cmocka_unit_test(test_lexer_spans_across_lines_and_tabs),
        cmocka_unit_test(test_lexer_crlf_line_endings),
        cmocka_unit_test(test_lexer_no_trailing_newline),
        cmocka_unit_test(test_lexer_integers),
        cmocka_unit_test(test_lexer_floats),
        cmocka_unit_test(test_lexer_integer_too_large),
        cmocka_unit_test(test_lexer_bad_numbers),
        cmocka_unit_test(test_lexer_strings_and_escapes),
        cmocka_unit_test(test_lexer_bad_escape),
        cmocka_unit_test(test_lexer_nul_in_string),
        cmocka_unit_test(test_lexer_unterminated_string),
        cmocka_unit_test(test_lexer_comments),
        cmocka_unit_test(test_lexer_empty_input),
        cmocka_unit_test(test_lexer_unknown_characters),
        cmocka_unit_test(test_lexer_nul_bytes_are_characters),
        cmocka_unit_test(test_lexer_keywords_and_identifiers),
        cmocka_unit_test(test_lexer_identifier_length_limit),
        cmocka_unit_test(test_lexer_megabyte_identifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
