/* fuzz_frontend.c - libFuzzer target for the whole front end.
 *
 * Any byte string is a candidate .net file: it goes through the lexer,
 * parser, checker and IR verifier exactly as `netc check` runs them, then
 * through lowering, autodiff, memory planning and the C emitter as
 * `netc MODEL.net -o` runs them. The diagnostics and the emitted C are
 * rendered into /dev/null, so the caret code and every printer are
 * exercised too. Built with clang -fsanitize=fuzzer,address,undefined when
 * meson is configured with -Dfuzz=true.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "emit_c.h"
#include "frontend.h"
#include "kernel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* Lowering errors (constructs the C backend refuses) are diagnostics like
 * any other; a program that lowers is printed as C and header. */
static void emit(NetcCompilation *c)
{
    KProgram *kp = NULL;
    if (c->diags.nerrors == 0 && lower_program(c->graph, "fuzz.net", &c->diags, &kp) == 0 && kp)
        emitc_print(kp, devnull, devnull, "fuzz.h");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    NetcCompilation c;
    if (netc_compilation_init(&c, "fuzz.net", (const char *)data, size)) {
        netc_compile(&c);
        if (devnull)
            diag_print_all(&c.diags, devnull, false);
        if (c.graph && devnull) {
            ir_print(c.graph, devnull);
            emit(&c);
        }
    }
    netc_compilation_free(&c);
    return 0;
}
