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

/* ---- generated models: the descriptor every generated model exports ---- */

/* A generated model `foo` exports `const NrtModelInfo *foo_info(void)`, the
 * one symbol `netc train` looks up after dlopen (and the JIT after linking).
 * It describes the model and gives its entry points; the same functions are
 * also exported under their own names (foo_create, ...) for users of
 * foo.h. See docs/generated-api.md. */

enum { NRT_MODEL_ABI = 1, NRT_MAX_TARGETS = 8, NRT_MAX_OUTPUTS = 8, NRT_MAX_AUGMENTS = 8 };

typedef struct NrtModel NrtModel;   /* opaque: one instance of a generated model */

typedef enum NrtTargetKind { NRT_TARGET_CLASSES, NRT_TARGET_VALUES } NrtTargetKind;
typedef enum NrtTargetSource {
    NRT_TARGET_FROM_DATA, NRT_TARGET_FROM_MAP, NRT_TARGET_FROM_FILE,
} NrtTargetSource;

typedef struct NrtTargetInfo {
    const char *name;
    NrtTargetKind kind;
    int64_t n;                    /* classes or values per sample */
    NrtTargetSource source;
    int map_base;                 /* FROM_MAP: the target it is derived from */
    const int32_t *map;           /* FROM_MAP: map[base label] */
    int64_t nmap;
    const char *file;             /* FROM_FILE: IDX labels file (train), NULL otherwise */
    const char *test_file;
} NrtTargetInfo;

typedef struct NrtOutputInfo {
    const char *name;
    int64_t size;                 /* floats per sample */
} NrtOutputInfo;

typedef struct NrtParamInfo {
    const char *name;             /* "conv1.weight": the checkpoint tensor name */
    int rank;
    int64_t shape[4];
    int64_t numel;
    bool trainable;               /* false: running statistics */
} NrtParamInfo;

typedef enum NrtOptimizer { NRT_OPT_SGD, NRT_OPT_ADAM, NRT_OPT_ADAMW } NrtOptimizer;
typedef enum NrtSchedule { NRT_SCHED_CONSTANT, NRT_SCHED_STEP, NRT_SCHED_COSINE } NrtSchedule;
typedef enum NrtAugment {
    NRT_AUG_TRANSLATE, NRT_AUG_FLIP, NRT_AUG_FLIP_VERTICAL, NRT_AUG_ROTATE,
    NRT_AUG_CUTOUT, NRT_AUG_NOISE,
} NrtAugment;
typedef enum NrtMix { NRT_MIX_NONE, NRT_MIX_MIXUP, NRT_MIX_CUTMIX } NrtMix;

typedef struct NrtTrainConfig {
    int64_t batch, epochs;
    uint64_t seed;
    NrtOptimizer optimizer;
    double lr, momentum, beta1, beta2, eps, weight_decay;
    bool nesterov;
    NrtSchedule schedule;
    int64_t step_every, warmup;   /* in epochs */
    double step_gamma;
    int naugments;
    NrtAugment augment[NRT_MAX_AUGMENTS];   /* in application order */
    double augment_amount[NRT_MAX_AUGMENTS];
    NrtMix mix;
    double mix_alpha;
    const char *train_images, *train_labels, *test_images, *test_labels;  /* NULL: fashion_mnist */
} NrtTrainConfig;

/* One training batch: n samples of raw input (floats in [0,1], the input
 * shape per sample) and, per target, int32 labels or float values. */
typedef struct NrtBatch {
    const float *x;
    int n;
    const int32_t *labels[NRT_MAX_TARGETS];   /* classes targets */
    const float *values[NRT_MAX_TARGETS];     /* values targets */
} NrtBatch;

typedef struct NrtModelInfo {
    uint32_t abi;                 /* NRT_MODEL_ABI */
    const char *name;
    uint64_t structure_hash;      /* stored in checkpoints; load refuses others */
    int64_t batch;                /* the largest n a call accepts */
    int input_rank;
    int64_t input_shape[3];
    int64_t input_size;           /* floats per sample */
    int ntargets;
    const NrtTargetInfo *targets;
    int noutputs;
    const NrtOutputInfo *outputs;
    int nparams;
    const NrtParamInfo *params;
    NrtTrainConfig train;         /* the .net file's train section, defaults filled in */

    NrtStatus (*create)(NrtModel **out, uint64_t seed, NrtError *err);
    void (*destroy)(NrtModel *m);
    NrtStatus (*save)(const NrtModel *m, const char *path, NrtError *err);
    NrtStatus (*load)(NrtModel *m, const char *path, NrtError *err);
    /* Preprocessing statistics from the training set (uint8 images, count x
     * input_size), computed in double precision. */
    NrtStatus (*fit_preprocess)(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err);
    /* Inference: outs[k] receives n x outputs[k].size floats. */
    NrtStatus (*predict)(NrtModel *m, const float *x, int n, float *const *outs, NrtError *err);
    /* Forward, backward and update with learning rate lr; *loss = the
     * weighted total loss averaged over the batch. */
    NrtStatus (*train_step)(NrtModel *m, const NrtBatch *b, float lr, float *loss, NrtError *err);
    float *(*param)(NrtModel *m, int index);         /* parameter data */
    float *(*grad)(NrtModel *m, int index);          /* its gradient (NULL if not trainable) */
    uint64_t *(*step)(NrtModel *m);                  /* optimizer steps taken */
} NrtModelInfo;

/* Learning rate at a step for a config's schedule (LANGUAGE.md formulas). */
double nrt_schedule_lr(const NrtTrainConfig *c, int64_t step, int64_t steps_per_epoch);

#ifdef __cplusplus
}
#endif

#endif
