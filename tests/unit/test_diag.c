/* test_diag.c - diagnostic collection and gcc-style rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"

/* Renders every diagnostic of d into a heap string. */
static char *render(const DiagSink *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    diag_print_all(d, f, false);
    fclose(f);
    return buf;
}

static SrcSpan span(const Source *src, int line, int col, int end_col)
{
    return (SrcSpan){src, line, col, line, end_col};
}

static void test_diag_renders_location_line_and_caret(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    Source src = {"m.net", "model m;\nx = image -> convv(3);\n", 33};
    Diag *e = diag_error(&d, span(&src, 2, 14, 19), "unknown op '%s'", "convv");
    diag_note(&d, e, span(&src, 1, 1, 6), "model starts here");
    char *out = render(&d);
    assert_non_null(strstr(out, "m.net:2:14: error: unknown op 'convv'\n"));
    assert_non_null(strstr(out, "x = image -> convv(3);\n"));
    assert_non_null(strstr(out, "|              ^~~~~\n"));
    assert_non_null(strstr(out, "m.net:1:1: note: model starts here\n"));
    assert_int_equal(d.nerrors, 1);
    free(out);
    arena_free(&a);
}

static void test_diag_caps_errors(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    d.max_errors = 3;
    Source src = {"m.net", "x\n", 2};
    for (int i = 0; i < 10; i++)
        diag_error(&d, span(&src, 1, 1, 2), "error %d", i);
    assert_true(diag_full(&d));
    assert_true(d.truncated);
    char *out = render(&d);
    assert_non_null(strstr(out, "error 2"));
    assert_null(strstr(out, "error 3"));
    assert_non_null(strstr(out, "too many errors"));
    free(out);
    arena_free(&a);
}

static void test_diag_clips_huge_lines(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    Source src = {"big.net", text, n};
    diag_error(&d, span(&src, 1, 500000, 500010), "identifier too long");
    char *out = render(&d);
    assert_true(strlen(out) < 1000);
    assert_non_null(strstr(out, "big.net:1:500000: error: identifier too long"));
    free(out);
    free(text);
    arena_free(&a);
}

static void test_diag_shows_unprintable_bytes_safely(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    Source src = {"bin.net", "ab\0\x01\xff", 5};
    diag_error(&d, span(&src, 1, 3, 4), "unexpected character");
    char *out = render(&d);
    assert_non_null(strstr(out, "ab???"));
    free(out);
    arena_free(&a);
}

static void test_diag_span_past_line_end_is_clamped(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    DiagSink d;
    diag_init(&d, &a);
    Source src = {"m.net", "abc", 3};
    diag_error(&d, span(&src, 1, 4, 4), "expected ';' at end of input");
    diag_error(&d, span(&src, 7, 1, 2), "line beyond the end");
    char *out = render(&d);
    assert_non_null(strstr(out, "m.net:1:4: error: expected ';'"));
    assert_non_null(strstr(out, "   ^\n"));
    assert_non_null(strstr(out, "m.net:7:1: error: line beyond the end\n"));
    free(out);
    arena_free(&a);
}

static void test_span_join(void **state)
{
    (void)state;
    Source src = {"m.net", "", 0};
    SrcSpan s = span_join(span(&src, 1, 2, 5), (SrcSpan){&src, 3, 1, 3, 9});
    assert_int_equal(s.line, 1);
    assert_int_equal(s.col, 2);
    assert_int_equal(s.end_line, 3);
    assert_int_equal(s.end_col, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag_renders_location_line_and_caret),
        cmocka_unit_test(test_diag_caps_errors),
        cmocka_unit_test(test_diag_clips_huge_lines),
        cmocka_unit_test(test_diag_shows_unprintable_bytes_safely),
        cmocka_unit_test(test_diag_span_past_line_end_is_clamped),
        cmocka_unit_test(test_span_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
