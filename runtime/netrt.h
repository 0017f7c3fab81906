/* netrt.h - libnetrt, the netc runtime: this header is its whole public face.
 *
 * Generated code (and netc itself) calls these kernels. Conventions:
 *   - tensors are dense float32, NCHW (or N x D), passed as plain pointers
 *     with their dimensions as int64_t;
 *   - a kernel's forward and backward sit next to each other; backward
 *     kernels say which buffers they overwrite and which they accumulate into;
 *   - kernels never allocate, print, or touch globals; scratch space comes
 *     from the caller;
 *   - results are bitwise identical for any number of OpenMP threads: work
 *     is partitioned independently of the thread count and every reduction
 *     runs in a fixed order;
 *   - functions that can fail return an NrtStatus and fill an NrtError.
 * Sections below are one per runtime file (see runtime/README.md).
 */
#ifndef NETRT_H
#define NETRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors (netrt.c) ---------------------------------------------------- */

typedef enum NrtStatus {
    NRT_OK = 0,
    NRT_ERR_NOMEM,      /* an allocation failed */
    NRT_ERR_IO,         /* open/read/write/fsync/rename failed (errno in msg) */
    NRT_ERR_FORMAT,     /* a file is malformed: bad magic, truncated, bad header */
    NRT_ERR_MISMATCH,   /* a file is well-formed but not for this model/shape */
    NRT_ERR_ARG,        /* a bad argument (batch too large, unknown name, ...) */
    NRT_ERR_NUMERIC,    /* NaN or Inf where a finite number is needed */
} NrtStatus;

typedef struct NrtError {
    NrtStatus code;
    char msg[512];      /* one line, says which file/tensor/field and why */
} NrtError;

const char *nrt_version(void);
const char *nrt_status_name(NrtStatus s);
/* Sets err (when not NULL) and returns code. */
NrtStatus nrt_error_set(NrtError *err, NrtStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- threads (netrt.c) --------------------------------------------------- */

void nrt_set_threads(int n);   /* 0 = OpenMP's default */
int nrt_get_threads(void);

/* ---- random numbers: Philox4x32-10 (rng.c) ------------------------------- */

/* ---- data sets: IDX files, gzip or raw (data.c) -------------------------- */

/* ---- checkpoints: safetensors (checkpoint.c) ----------------------------- */

/* ---- dense and convolution math (gemm.c, conv.c) ------------------------- */

/* ---- pooling, activations, batchnorm, dropout, losses, optimizers -------- */

#ifdef __cplusplus
}
#endif

#endif
