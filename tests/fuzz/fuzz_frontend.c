/* fuzz_frontend.c - libFuzzer target for the whole front end.
 *
 * Any byte string is a candidate .net file: it goes through the lexer,
 * parser, checker and IR verifier exactly as `netc check` runs them, and
 * the diagnostics are rendered (into /dev/null) so the caret code is
 * exercised too. Built with clang -fsanitize=fuzzer,address,undefined when
 * meson is configured with -Dfuzz=true.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    NetcCompilation c;
    if (netc_compilation_init(&c, "fuzz.net", (const char *)data, size)) {
        netc_compile(&c);
        if (devnull)
            diag_print_all(&c.diags, devnull, false);
        if (c.graph && devnull)
            ir_print(c.graph, devnull);
    }
    netc_compilation_free(&c);
    return 0;
}
