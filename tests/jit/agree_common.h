/* agree_common.h - what jit_agree and fuse_agree share: the command line
 * (PATH... of .net files or folders), failure counting, a fixed LCG and the
 * synthetic batches both programs train and predict on.
 *
 * Both compare two builds of the same model (JIT vs emitted C, fused vs
 * unfused) on identical inputs, so the inputs come from one place.
 */
#ifndef NETC_AGREE_COMMON_H
#define NETC_AGREE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

extern int agree_nfail;

uint64_t agree_lcg(uint64_t *s);

/* The whole file, NUL-terminated; NULL on any error. */
char *agree_read_all(const char *path, size_t *len);

/* Prints "FAIL model: ..." and counts it. */
__attribute__((format(printf, 2, 3)))
void agree_fail(const char *model, const char *fmt, ...);

typedef struct AgreeBatch {
    NrtBatch b;
    float *x;
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
} AgreeBatch;

bool agree_batch_alloc(AgreeBatch *bt, const NrtModelInfo *info);
void agree_batch_free(AgreeBatch *bt);
/* Pixels in [0, 1], labels in [0, n), values in [0, 1), all from rng. */
void agree_batch_fill(AgreeBatch *bt, const NrtModelInfo *info, uint64_t *rng);

/* Parses `[--batch N] [--steps N] PATH...` into *batch and *steps, runs
 * check_model on every .net file (a folder: its .net files, sorted) with a
 * fresh temporary folder, and returns the exit status (1 on any failure). */
int agree_main(int argc, char **argv, const char *prog, int64_t *batch, int64_t *steps,
               void (*check_model)(const char *path, const char *dir));

#endif
