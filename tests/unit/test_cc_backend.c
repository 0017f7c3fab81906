/* test_cc_backend.c - netc train's C backend: cache key, build, reuse,
 * compiler errors, symbol and ABI checks, concurrent builds.
 *
 * Uses the hand-written model tests/e2e/linear_model.c (argv[1]) as the
 * "generated" C. Each test gets a fresh cache folder under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cc_backend.h"

static const char *fixture_path;

typedef struct EmitCounter {
    const char *from;       /* file copied as the C */
    const char *text;       /* or this text */
    int calls;
} EmitCounter;

static bool emit_copy(void *ctx, const char *c_path, const char *h_path, char *err,
                      size_t errsize)
{
    (void)h_path;
    EmitCounter *e = ctx;
    e->calls++;
    FILE *out = fopen(c_path, "wb");
    if (!out)
        return snprintf(err, errsize, "cannot write %s", c_path), false;
    if (e->text) {
        fputs(e->text, out);
    } else {
        FILE *in = fopen(e->from, "rb");
        if (!in)
            return fclose(out), snprintf(err, errsize, "no fixture %s", e->from), false;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
    }
    return fclose(out) == 0;
}

static int fresh_cache(void **state)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/netc-cctest-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("NETC_CACHE_DIR", dir, 1);
    *state = dir;
    return 0;
}

static int drop_cache(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
    return system(cmd) == 0 ? 0 : -1;
}

static CcbRequest linear_request(EmitCounter *e, const char *variant)
{
    static const char src[] = "model linear; # stands for the .net text";
    return (CcbRequest){"linear", src, sizeof src - 1, variant, emit_copy, e};
}

static void test_cc_backend_builds_then_reuses(void **state)
{
    (void)state;
    EmitCounter e = {.from = fixture_path};
    CcbRequest r = linear_request(&e, "batch=64");
    CcbModule m;
    char err[8192];
    bool ok = ccb_open(&r, &m, err, sizeof err);
    if (!ok)
        fail_msg("%s", err);
    assert_false(m.cached);
    assert_int_equal(e.calls, 1);
    assert_string_equal(m.info->name, "linear");
    assert_int_equal(m.info->input_size, 784);
    NrtModel *model;
    NrtError nerr;
    assert_int_equal(m.info->create(&model, 1, &nerr), NRT_OK);
    assert_int_equal(*m.info->step(model), 0);
    m.info->destroy(model);
    char first[4096];
    snprintf(first, sizeof first, "%s", m.so_path);
    ccb_close(&m);

    assert_true(ccb_open(&r, &m, err, sizeof err));
    assert_true(m.cached);
    assert_int_equal(e.calls, 1);          /* not emitted again */
    assert_string_equal(m.so_path, first);
    ccb_close(&m);
}

static void test_cc_backend_key_covers_inputs(void **state)
{
    (void)state;
    EmitCounter e = {0};
    CcbRequest r = linear_request(&e, "batch=64");
    char k0[33], k1[33], k2[33], k3[33], k4[33];
    ccb_cache_key(&r, "cc -O3", NULL, k0);
    ccb_cache_key(&r, "cc -O3", NULL, k1);
    assert_string_equal(k0, k1);            /* deterministic */
    assert_int_equal(strlen(k0), 32);
    ccb_cache_key(&r, "cc -O2", NULL, k2);
    r.variant = "batch=128";
    ccb_cache_key(&r, "cc -O3", NULL, k3);
    r.variant = "batch=64";
    r.source_len -= 1;
    ccb_cache_key(&r, "cc -O3", NULL, k4);
    assert_string_not_equal(k0, k2);
    assert_string_not_equal(k0, k3);
    assert_string_not_equal(k0, k4);
}

static void test_cc_backend_reports_compiler_errors(void **state)
{
    (void)state;
    EmitCounter e = {.text = "int linear_info(void) { return undeclared_thing; }\n"};
    CcbRequest r = linear_request(&e, "broken");
    CcbModule m;
    char err[8192];
    assert_false(ccb_open(&r, &m, err, sizeof err));
    assert_non_null(strstr(err, "the C compiler failed"));
    assert_non_null(strstr(err, "undeclared_thing"));    /* cc's own message */
    assert_null(m.handle);
}

static void test_cc_backend_checks_symbol_and_abi(void **state)
{
    (void)state;
    EmitCounter e = {.text = "int other_symbol;\n"};
    CcbRequest r = linear_request(&e, "nosym");
    CcbModule m;
    char err[8192];
    assert_false(ccb_open(&r, &m, err, sizeof err));
    assert_non_null(strstr(err, "linear_info"));

    EmitCounter e2 = {.text = "#include \"netrt.h\"\n"
                              "const NrtModelInfo *linear_info(void);\n"
                              "static const NrtModelInfo i = {.abi = 999, .name = \"linear\"};\n"
                              "const NrtModelInfo *linear_info(void) { return &i; }\n"};
    r = linear_request(&e2, "badabi");
    assert_false(ccb_open(&r, &m, err, sizeof err));
    assert_non_null(strstr(err, "ABI 999"));
}

/* Two processes building the same model at once both succeed. */
static void test_cc_backend_concurrent_builds(void **state)
{
    (void)state;
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            EmitCounter e = {.from = fixture_path};
            CcbRequest r = linear_request(&e, "concurrent");
            CcbModule m;
            char err[8192];
            bool ok = ccb_open(&r, &m, err, sizeof err);
            if (!ok)
                fprintf(stderr, "child %d: %s\n", i, err);
            _exit(ok && m.info->input_size == 784 ? 0 : 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

static void test_cc_backend_cache_dir_from_env(void **state)
{
    (void)state;
    char buf[4096], *saved = getenv("NETC_CACHE_DIR") ? strdup(getenv("NETC_CACHE_DIR")) : NULL;
    unsetenv("NETC_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    assert_true(ccb_cache_dir(buf, sizeof buf));
    assert_string_equal(buf, "/x/cache/netc");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    assert_true(ccb_cache_dir(buf, sizeof buf));
    assert_string_equal(buf, "/home/u/.cache/netc");
    setenv("NETC_CACHE_DIR", "/c", 1);
    assert_true(ccb_cache_dir(buf, sizeof buf));
    assert_string_equal(buf, "/c");
    if (saved)
        setenv("NETC_CACHE_DIR", saved, 1);
    free(saved);
}

int main(int argc, char **argv)
{
    fixture_path = argc > 1 ? argv[1] : "tests/e2e/linear_model.c";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cc_backend_builds_then_reuses, fresh_cache,
                                        drop_cache),
        cmocka_unit_test(test_cc_backend_key_covers_inputs),
        cmocka_unit_test_setup_teardown(test_cc_backend_reports_compiler_errors, fresh_cache,
                                        drop_cache),
        cmocka_unit_test_setup_teardown(test_cc_backend_checks_symbol_and_abi, fresh_cache,
                                        drop_cache),
        cmocka_unit_test_setup_teardown(test_cc_backend_concurrent_builds, fresh_cache,
                                        drop_cache),
        cmocka_unit_test_setup_teardown(test_cc_backend_cache_dir_from_env, fresh_cache,
                                        drop_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
