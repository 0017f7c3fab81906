/* emit_llvm.h - the LLVM backend's printer: kernel program -> LLVM IR.
 *
 * Prints the same KProgram as emit_c.c, through the LLVM-C API: one
 * internal function per KStep (the same libnetrt call with the same
 * constants as the emitted C, or an IR loop for the steps the C does
 * inline: preprocess, add, grad_copy, concat, output) and the exported
 * step lists `void predict(NrtModel *m, int n)`, `train` and `update` (the
 * train list split at its first optimizer step) over struct NrtModel of
 * jit_model.h. The IR refers to the
 * model's constant data (the augmentation spec) by its address in this
 * process: it is meant for an in-process JIT (jit.c), never for a file.
 */
#ifndef NETC_EMIT_LLVM_H
#define NETC_EMIT_LLVM_H

#include <stdbool.h>
#include <stddef.h>

#include <llvm-c/Core.h>

#include "jit_model.h"
#include "kernel.h"

/* A runtime function the IR calls: the JIT must define it at addr. */
typedef void (*ElFn)(void);
typedef struct ElSymbol {
    const char *name;
    ElFn addr;
} ElSymbol;

typedef struct ElModule {
    LLVMModuleRef mod;          /* owned by the caller after success */
    ElSymbol *syms;             /* malloc'd; free with el_module_free */
    size_t nsyms;
} ElModule;

/* Builds the module of jm->kp in ctx: the predict list as predict_name,
 * the train list up to its first optimizer step as train_name and the rest
 * as update_name (the numeric guard runs between them, as in the emitted
 * C). Returns false (err filled) when a step cannot be printed or memory
 * runs out; out is then empty. */
bool el_build(const JitModel *jm, LLVMContextRef ctx, const char *predict_name, const char *train_name,
              const char *update_name, ElModule *out, char *err, size_t errsize);

/* Index of the train list's first optimizer step (its length if none). */
size_t el_first_update(const KProgram *kp);

/* Frees the symbol list (not the module). */
void el_module_free(ElModule *m);

#endif
