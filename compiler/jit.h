/* jit.h - `netc train` with LLVM: kernel program -> LLVM IR -> ORC LLJIT,
 * in this process.
 *
 * jit_open lowers nothing itself: it takes a KProgram, prints its step
 * lists as LLVM IR (emit_llvm.c), verifies the IR (debug builds), runs the
 * O3 pipeline for the host CPU (512-bit vectors where the CPU has
 * AVX-512), links it in an LLJIT whose only external symbols are the
 * libnetrt functions the IR calls (registered by address) and the C
 * library, and returns the model's NrtModelInfo (jit_model.h gives the
 * non-compiled half). Every LLVM failure comes back as a message; nothing
 * here prints or exits.
 */
#ifndef NETC_JIT_H
#define NETC_JIT_H

#include <stddef.h>

#include "kernel.h"
#include "netrt.h"

typedef struct JitModule JitModule;

typedef struct JitTimes {
    double ir_ms, opt_ms, codegen_ms;   /* IR printing, O3, machine code + link */
} JitTimes;

/* Compiles kp (which must outlive the module). NULL (err filled) on failure. */
JitModule *jit_open(const KProgram *kp, char *err, size_t errsize);
const NrtModelInfo *jit_info(const JitModule *j);
JitTimes jit_times(const JitModule *j);
void jit_close(JitModule *j);   /* NULL is fine */

#endif
