/* jit_model.h - the generic half of a JIT-compiled model.
 *
 * The LLVM backend compiles only the two step lists of a KProgram (the
 * code that differs per model and runs per batch). Everything else a model
 * exports through NrtModelInfo (create/free, parameter initialization,
 * fit_preprocess, save/load, the parameter/target/output tables, the train
 * configuration) is this one C implementation, driven by the KProgram's
 * data. It calls the same libnetrt helpers with the same RNG keys and the
 * same constants as the C that emit_c.c prints, so a model gives the same
 * bits through either backend (tests/jit checks it).
 *
 * Lifetime: a JitModel points into its KProgram and IrGraph; both must
 * outlive it (netc keeps the compilation alive for the whole run).
 */
#ifndef NETC_JIT_MODEL_H
#define NETC_JIT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernel.h"
#include "kernel_info.h"
#include "netrt.h"

typedef struct JitModel JitModel;

/* One model instance. The step functions read and write it by the byte
 * offsets of JitLayout (emit_llvm.c), so its layout is free to change. */
struct NrtModel {
    float *block;               /* the parameter block (KS_PARAMS) */
    float *arena;               /* the activation arena (KS_ARENA) */
    NrtWorkspace ws;            /* scratch of the dense and conv kernels */
    uint64_t seed, step;
    /* the call in progress */
    const float *x;
    const NrtBatch *batch;
    float *const *outs;
    float lr;
    double loss;
    const JitModel *jm;         /* the model's descriptor */
};

/* A compiled step list: runs the steps in order on m for a batch of n. */
typedef void (*JitStepsFn)(NrtModel *m, int n);

/* Per parameter: where it lives and how it is initialized. */
typedef struct JitParamRow {
    int64_t off, grad, state[2];    /* offsets in the block; -1: none */
    KInitDist dist;
    double a;
} JitParamRow;

struct JitModel {
    const KProgram *kp;
    NrtModelInfo info;          /* create: set by the JIT (a compiled trampoline) */
    NrtParamInfo *params;
    JitParamRow *rows;
    NrtGuardSpan *spans;        /* the numeric guard's table (nrt_guard_pass) */
    NrtTargetInfo *targets;
    int32_t **maps;             /* FROM_MAP targets' maps, as int32 */
    NrtOutputInfo *outputs;
    NrtBlockTensor *ck;         /* checkpoint tensors */
    char (*ck_names)[160];
    NrtBlockLayout ck_layout;
    char hash[17];
    size_t ws_floats;           /* workspace floats at the full batch */
    NrtAugmentSpec aug;         /* the train section's augmentations */
    /* train_steps: the train list up to its first optimizer step;
     * update_steps: the rest; guard: there is an update, so the numeric
     * guard runs between them (as in the emitted C) */
    JitStepsFn predict_steps, train_steps, update_steps;
    bool guard;
};

/* Fills jm's tables from kp (everything but info.create and the step
 * functions). Returns false (err filled) when out of memory. */
bool jitm_init(JitModel *jm, const KProgram *kp, char *err, size_t errsize);
void jitm_fini(JitModel *jm);

/* info.create of a JIT model: the compiled trampoline calls this with its
 * descriptor (NrtModelInfo.create has no context argument). */
NrtStatus jitm_create(const JitModel *jm, NrtModel **out, uint64_t seed, NrtError *err);

#endif
