/* test_arena.c - the bump allocator and its growable arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "fault.h"

static void test_arena_alloc_is_zeroed_and_aligned(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    for (size_t size = 1; size < 300; size += 7) {
        unsigned char *p = arena_alloc(&a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
    }
    arena_free(&a);
}

static void test_arena_large_allocation_gets_own_chunk(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    char *big = arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    big[(1 << 20) - 1] = 1;
    assert_non_null(arena_alloc(&a, 10));
    arena_free(&a);
}

static void test_arena_overflow_fails_cleanly(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    assert_null(arena_array(&a, SIZE_MAX / 2, 4));
    assert_true(a.failed);
    assert_null(arena_alloc(&a, SIZE_MAX - 3));
    arena_free(&a);
}

static void test_arena_limit(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    a.limit = 1000;
    assert_non_null(arena_alloc(&a, 512));
    assert_null(arena_alloc(&a, 600));
    assert_true(a.failed);
    arena_free(&a);
}

static void test_arena_malloc_failure_is_reported(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    netc_fault_fail_after(1);
    assert_null(arena_alloc(&a, 16));
    assert_true(a.failed);
    netc_fault_fail_after(0);
    assert_non_null(arena_alloc(&a, 16));
    arena_free(&a);
}

static void test_arena_strings(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    assert_string_equal(arena_strndup(&a, "hello world", 5), "hello");
    assert_string_equal(arena_strdup(&a, "x"), "x");
    assert_string_equal(arena_printf(&a, "%s-%d", "conv", 3), "conv-3");
    arena_free(&a);
}

static void test_vec_push_grows_and_keeps_order(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    Vec(int) v = {0};
    for (int i = 0; i < 10000; i++)
        assert_true(vec_push(&a, &v, i * 3));
    assert_int_equal(v.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(v.items[i], i * 3);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alloc_is_zeroed_and_aligned),
        cmocka_unit_test(test_arena_large_allocation_gets_own_chunk),
        cmocka_unit_test(test_arena_overflow_fails_cleanly),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_arena_malloc_failure_is_reported),
        cmocka_unit_test(test_arena_strings),
        cmocka_unit_test(test_vec_push_grows_and_keeps_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
