/* test_compile_faults.c - allocation-failure injection in the compiler:
 * every dsl-example is compiled to C (front end, lowering, C emission into
 * files) with each of its allocations failing in turn.
 *
 * The compiler allocates only through netc_malloc (compiler/fault.c: the
 * arena's chunks and the emitter's tables). A clean compile counts K calls;
 * then for N = 1..K the N-th call and every later one fail: the compile
 * must report an error (front-end errors with the arena marked failed, or
 * the emitter refusing) and never produce output as if nothing happened,
 * and must not crash; in the sanitize build LeakSanitizer checks that every
 * failed compile freed what it had.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit_c.h"
#include "fault.h"
#include "frontend.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Compiles text to C and H files: true when it succeeded. */
static bool compile(const char *path, const char *text, size_t len, const char *c_path,
                    const char *h_path)
{
    NetcCompilation c;
    if (!netc_compilation_init(&c, path, text, len))
        return false;
    bool ok = netc_compile(&c) == 0 && !c.arena.failed && c.graph;
    if (ok) {
        DiagSink d;
        diag_init(&d, &c.arena);
        char err[512];
        ok = emitc_files(c.graph, path, c_path, h_path, &d, err, sizeof err) == EMITC_OK
             && !c.arena.failed;
    }
    netc_compilation_free(&c);
    return ok;
}

static void test_compile_every_example_every_failure(void **state)
{
    (void)state;
    char dir[] = "/tmp/netc-test-cfault.XXXXXX", c_path[128], h_path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(c_path, sizeof c_path, "%s/m.c", dir);
    snprintf(h_path, sizeof h_path, "%s/m.h", dir);
    DIR *d = opendir("dsl-examples");
    assert_non_null(d);
    int examples = 0;
    long points = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".net") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "dsl-examples/%s", e->d_name);
        size_t len;
        char *text = slurp(path, &len);
        netc_fault_fail_after(0);
        assert_true(compile(path, text, len, c_path, h_path));
        long total = netc_fault_calls();
        for (long k = 1; k <= total; k++) {
            netc_fault_fail_after(k);
            bool ok = compile(path, text, len, c_path, h_path);
            netc_fault_fail_after(0);
            if (ok)
                fail_msg("%s: allocation %ld of %ld failed but the compile succeeded", path, k,
                         total);
        }
        printf("%s: %ld allocations, each failed in turn\n", path, total);
        points += total;
        examples++;
        free(text);
    }
    closedir(d);
    printf("%d examples, %ld allocation-failure points\n", examples, points);
    assert_true(examples >= 5);
    unlink(c_path);
    unlink(h_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_every_example_every_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
