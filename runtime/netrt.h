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

/* ---- small kernels: does a parallel region pay? (par.c) ------------------ */

/* Wall nanoseconds a parallel region of `threads` threads costs here past
 * its work, measured per team size on first use and again when the figure
 * is older than 2 s (7 regions with 20 us of work per thread, each after
 * 200 us of work on the caller; median): ~2 us when OpenMP threads spin,
 * tens of us with OMP_WAIT_POLICY=passive or when other processes hold the
 * cores. INT64_MAX without OpenMP, inside a
 * parallel region, or while another thread is measuring. */
int64_t nrt_par_region_ns(int threads);
/* Fixes the cost every later decision uses (ns >= 0; tests force either
 * path with 0 and INT64_MAX), or (ns < 0) drops it and any measurement so
 * the next use measures again. */
void nrt_par_set_region_ns(int64_t ns);
/* Threads to run `parts` fixed parts of a kernel that takes about work_ns
 * on one thread: min(nrt_get_threads(), parts) when the time that saves
 * exceeds 3 region costs, else 1 (always 1 inside a parallel region).
 * Callers partition so that results never depend on the answer. */
int nrt_par_threads(double work_ns, int parts);

/* ---- random numbers: Philox4x32-10 (rng.c) ------------------------------- */

/* Every random number in netc is a pure function of (seed, purpose, step,
 * sample, element): no generator state, so a value never depends on the
 * thread count or on the order of the calls. The generator is
 * Philox4x32-10 (Salmon et al. 2011, Random123) with key = the seed's two
 * 32-bit halves (low first) and the 128-bit counter
 *   ctr[0] = low 32 bits of x, ctr[1] = sample, ctr[2] = step,
 *   ctr[3] = purpose << 24 | domain << 22 | (x >> 32)   (22 bits)
 * where domain 0 ("words") has x = element / 4 and the draw is word
 * element % 4 of the block; domain 1 ("substreams", for samplers that need
 * a variable number of words: gamma, beta, bounded integers) has
 * x = element | (tag << 20 | block) << 32; domain 2 (permutations) has
 * x = position | attempt << 32. Ranges: step and sample are used modulo
 * 2^32, element < 2^56 for word draws and < 2^32 for substream draws,
 * purpose < 256. Different purposes, steps or samples never share a block;
 * draws of different kinds (u32, normal, gamma) at nearby elements of the
 * same (purpose, step, sample) may: give them distinct element slots (4
 * apart, or in separate ranges). */
enum {
    NRT_RNG_INIT = 1,        /* parameter initialization (sample = parameter id) */
    NRT_RNG_SHUFFLE = 2,     /* data-set order (step = epoch) */
    NRT_RNG_DROPOUT = 3,
    NRT_RNG_DROPCONNECT = 4,
    NRT_RNG_DROP_PATH = 5,
    NRT_RNG_NOISE = 6,       /* gaussian_noise */
    NRT_RNG_AUGMENT = 7,
    NRT_RNG_MIX = 8,         /* mixup / cutmix lambda, box and partners */
    NRT_RNG_FRACPOOL = 9,    /* fractional max-pooling regions */
};

/* Random123's philox4x32_10 exactly: out = Philox(ctr, key), 10 rounds. */
void nrt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* The four words of word-domain block `block` (elements 4*block .. +3). */
void nrt_rng_block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                   uint64_t block, uint32_t out[4]);

/* Scalar draws; each is a function of its arguments only. */
uint32_t nrt_rng_u32(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                     uint64_t element);
/* u32 * 2^-32: in [0, 1), 32 random bits. */
double nrt_rng_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element);
/* (u32 >> 8) * 2^-24: a float in [0, 1) with every value exactly representable. */
float nrt_rng_uniformf(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element);
/* Standard normal by Box-Muller on one word pair of a block: elements
 * 4b, 4b+1 share words 0, 1 (r cos t, r sin t), 4b+2, 4b+3 words 2, 3, with
 * u1 = (w0 + 0.5) 2^-32 in (0, 1), r = sqrt(-2 ln u1), t = 2 pi w1 2^-32. */
double nrt_rng_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                      uint64_t element);
/* The same Box-Muller on the same words in float (rng_normal.c): within
 * about 1e-6 (1 + |z|) of (float)nrt_rng_normal, about 40x faster in batch
 * fills; the same bits on every CPU, compiler and thread count. This is
 * the generator of noise (augment, gaussian_noise); init keeps the double. */
float nrt_rng_normalf(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                      uint64_t element);
/* Uniform integer in [0, bound) without modulo bias (Lemire's method on
 * 64-bit words of the element's substream); 0 when bound is 0. */
uint64_t nrt_rng_below(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element, uint64_t bound);
/* Gamma(shape, 1) by Marsaglia-Tsang (2000), shape < 1 through
 * Gamma(shape + 1) * U^(1/shape); NaN for shape <= 0 or not finite. */
double nrt_rng_gamma(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                     uint64_t element, double shape);
/* Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b), computed from log X
 * and log Y so tiny shapes do not give 0/0; in [0, 1], NaN for a bad shape. */
double nrt_rng_beta(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                    uint64_t element, double a, double b);
/* A uniformly random permutation of 0..n-1 (Fisher-Yates; the swap partner
 * of position i is drawn from (seed, purpose, step, i) alone), n <= 2^32. */
void nrt_rng_permutation(uint64_t seed, uint32_t purpose, uint64_t step, int64_t n,
                         int64_t *perm);

/* Batch fills: out[i] is the scalar draw at element first + i (bitwise the
 * same as calling the scalar function), OpenMP over blocks for large n.
 * fill_normal: out[i] = mean + std * z in float, z = nrt_rng_normalf. */
void nrt_rng_fill_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                          uint64_t first, int64_t n, float *out);       /* uniformf */
void nrt_rng_fill_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                         uint64_t first, int64_t n, float mean, float std, float *out);
/* out[i] = 1 with probability p (u32 < ceil(p 2^32)), else 0. */
void nrt_rng_fill_bernoulli(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                            uint64_t first, int64_t n, double p, uint8_t *out);
/* Inverted-dropout mask: out[i] = 1/(1-p_drop) where the unit is kept (the
 * bernoulli draw with p = 1 - p_drop is 1), else 0. */
void nrt_rng_fill_dropout_mask(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                               uint64_t first, int64_t n, double p_drop, float *out);

/* Parameter initialization: w[i] depends only on (seed, param_id, i), drawn
 * at (NRT_RNG_INIT, step 0, sample param_id, element i). normal:
 * (float)(std * nrt_rng_normal) (the double generator: init runs once, and
 * its bits, so every trained result, stay as they were);
 * uniform: U[-a, a) as a * (2 u - 1) with u = nrt_rng_uniformf. */
void nrt_init_normal(float *w, int64_t n, float std, uint64_t seed, uint64_t param_id);
void nrt_init_uniform(float *w, int64_t n, float a, uint64_t seed, uint64_t param_id);
void nrt_init_constant(float *w, int64_t n, float value);

/* ---- data sets: IDX files, gzip or raw (data.c) -------------------------- */

/* IDX (http://yann.lecun.com/exdb/mnist/): bytes 00 00 <type> <rank>, then
 * rank big-endian uint32 dimensions, then the elements, big-endian, row
 * major. Read through zlib, so gzip'ed and plain files both work whatever
 * their names. A file is refused (NRT_ERR_FORMAT, the message names the
 * file and the defect) when it is empty, its header is short, the magic or
 * type code is wrong, the rank is 0 or above NRT_IDX_MAX_RANK, the first
 * dimension is over NRT_IDX_MAX_ITEMS or the data over NRT_IDX_MAX_BYTES,
 * the data is shorter than the header promises (truncated) or longer
 * (trailing data: a wrong header or two files glued together), or the
 * gzip stream is corrupt. A missing path or a directory is NRT_ERR_IO. */
enum { NRT_IDX_MAX_RANK = 8 };
#define NRT_IDX_MAX_ITEMS ((int64_t)1 << 31)
#define NRT_IDX_MAX_BYTES ((int64_t)16 << 30)

typedef enum NrtIdxType {
    NRT_IDX_U8 = 0x08, NRT_IDX_I8 = 0x09, NRT_IDX_I16 = 0x0B, NRT_IDX_I32 = 0x0C,
    NRT_IDX_F32 = 0x0D, NRT_IDX_F64 = 0x0E,
} NrtIdxType;

typedef struct NrtIdx {
    NrtIdxType type;
    int rank;
    int64_t dims[NRT_IDX_MAX_RANK];
    int64_t count;        /* dims[0]: items */
    int64_t item_size;    /* elements per item: product of dims[1..rank) (1 for rank 1) */
    size_t elem_bytes;    /* 1, 2, 4 or 8 */
    void *data;           /* count * item_size elements, host byte order; malloc'ed */
} NrtIdx;

NrtStatus nrt_idx_load(const char *path, NrtIdx *out, NrtError *err);
void nrt_idx_free(NrtIdx *x);

/* An image classification data set: uint8 images (count x item_size, as in
 * the file; a rank-3 file count x H x W is C = 1) and int32 labels. Images
 * stay uint8 (47 MB for Fashion-MNIST's training set, a quarter of the
 * floats) and become floats x / 255 per batch (nrt_dataset_gather). */
typedef struct NrtDataSplit {
    int64_t count, item_size;
    uint8_t *images;
    int32_t *labels;
} NrtDataSplit;

typedef struct NrtDataset {
    int64_t c, h, w;        /* item shape: images count x H x W -> (1, H, W);
                             * count x C x H x W -> (C, H, W); count x D -> (1, 1, D) */
    int32_t classes;        /* 1 + the largest label in either split */
    NrtDataSplit train, test;
} NrtDataset;

/* Images must be U8 of rank 2 to 4, labels U8 or I32 of rank 1 with
 * labels >= 0. Errors: NRT_ERR_MISMATCH when a split's image and label
 * counts differ or the train and test images differ in shape, NRT_ERR_FORMAT
 * for a wrong type, rank or a negative label, or the file's own error. */
NrtStatus nrt_dataset_load_idx(const char *train_images, const char *train_labels,
                               const char *test_images, const char *test_labels,
                               NrtDataset *out, NrtError *err);
/* dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; dir NULL: the
 * Debian dataset-fashion-mnist folder (NETC_FASHION_MNIST_DIR). */
NrtStatus nrt_dataset_load_fashion_mnist(const char *dir, NrtDataset *out, NrtError *err);
void nrt_dataset_free(NrtDataset *ds);
/* x (n x item_size floats) = images[indices[i]] / 255 (the float division,
 * as PyTorch's ToTensor), y (n labels, may be NULL) = labels[indices[i]].
 * OpenMP over samples. NRT_ERR_ARG (and nothing written) for an index
 * outside [0, count). */
NrtStatus nrt_dataset_gather(const NrtDataSplit *s, const int64_t *indices, int64_t n, float *x,
                             int32_t *y, NrtError *err);

/* Preprocessing statistics (preprocess_stats.c) of x = pixel / 255 over a
 * uint8 training set, images count x d with d = c x hw (CHW per image).
 * Sums are exact integers (any thread count gives the same bits), the
 * rest is double. NRT_ERR_ARG for count < 1 or a bad size, NRT_ERR_NOMEM. */
/* Per channel: mean and population std over count x hw values (c each). */
NrtStatus nrt_stats_channels(const uint8_t *images, int64_t count, int64_t c, int64_t hw,
                             double *mean, double *std, NrtError *err);
/* The mean image (d values). */
NrtStatus nrt_stats_mean_image(const uint8_t *images, int64_t count, int64_t d, double *mean,
                               NrtError *err);
/* ZCA whitening: mean (d) and W (d x d, row major) = U diag(1/sqrt(l + eps))
 * U^T from the population covariance U diag(l) U^T (eigenvalues clamped at
 * 0), so W (x - mean) has covariance ~ identity for eps -> 0. Cost: the
 * covariance is count x d^2 / 2 integer multiply-adds, the eigensolver
 * (nrt_eigen_sym_ql) about 6 d^3 flops, d <= 4096. */
NrtStatus nrt_stats_zca(const uint8_t *images, int64_t count, int64_t d, double eps, double *mean,
                        double *w, NrtError *err);
/* Symmetric eigendecomposition by cyclic Jacobi rotations: a (n x n, row
 * major, destroyed) = V diag(lambda) V^T, V's columns the eigenvectors,
 * lambda ascending. Returns the sweeps used, or -1 if 60 sweeps did not
 * bring the off-diagonal mass below 1e-22 of the total. */
int nrt_eigen_sym(int64_t n, double *a, double *lambda, double *v);
/* The same decomposition by Householder tridiagonalization and implicit QL
 * (EISPACK tred2/tql2), a (n x n) kept: about 6 n^3 flops, what
 * nrt_stats_zca uses. Returns 0, or -1 (out of memory, or an eigenvalue
 * not converged in 60 iterations). */
int nrt_eigen_sym_ql(int64_t n, const double *a, double *lambda, double *v);

/* ---- checkpoints: safetensors (checkpoint.c) ----------------------------- */

/* A checkpoint is a safetensors file: 8-byte little-endian header length N,
 * N bytes of JSON {"__metadata__": {"k": "v"}, "name": {"dtype": "F32",
 * "shape": [...], "data_offsets": [b, e]}, ...} padded with spaces to a
 * multiple of 8, then the little-endian data (offsets from its start).
 * Tensors are laid out in the order given; the same input gives the same
 * bytes. */
typedef struct NrtTensorRef {
    const char *name;
    int rank;             /* 0..4 */
    int64_t shape[4];
    const float *data;    /* numel floats */
} NrtTensorRef;

typedef struct NrtKV {
    const char *key;
    const char *value;
} NrtKV;

/* Atomic: writes path.tmp.<pid> in the same directory, fflush, fsync,
 * fclose, rename over path, fsync the directory. On failure (NRT_ERR_IO, or
 * NRT_ERR_ARG for a bad name/shape/duplicate) the temporary file is removed
 * and an existing file at path is left as it was. */
NrtStatus nrt_checkpoint_save(const char *path, const NrtTensorRef *t, int n, const NrtKV *meta,
                              int nmeta, NrtError *err);

/* An opened checkpoint: the whole file in memory, validated. */
typedef struct NrtCheckpoint NrtCheckpoint;

/* Reads and validates the whole file: size >= 8, header length <= size - 8
 * and <= 100 MiB, a JSON object without duplicate keys, every tensor F32
 * with a shape of non-negative integers (rank <= 8) and data_offsets [b, e]
 * with b <= e <= data size and e - b = 4 * numel, no two tensors sharing a
 * byte, __metadata__ an object of strings. Any violation: NRT_ERR_FORMAT
 * with the file and the tensor/field in the message (NRT_ERR_IO when the
 * file cannot be read). *out is NULL on failure. */
NrtStatus nrt_checkpoint_open(const char *path, NrtCheckpoint **out, NrtError *err);
/* Copies tensor name into dst after checking it has exactly (rank, shape);
 * a missing tensor or another shape is NRT_ERR_MISMATCH naming both shapes. */
NrtStatus nrt_checkpoint_read(const NrtCheckpoint *ck, const char *name, int rank,
                              const int64_t *shape, float *dst, NrtError *err);
const char *nrt_checkpoint_meta(const NrtCheckpoint *ck, const char *key);   /* NULL: absent */
bool nrt_checkpoint_has(const NrtCheckpoint *ck, const char *name);
/* Listing for tools: tensors in header order; shape returns the rank (and
 * fills shape[0..rank)) or -1 when there is no such tensor. */
int nrt_checkpoint_count(const NrtCheckpoint *ck);
const char *nrt_checkpoint_name(const NrtCheckpoint *ck, int i);
int nrt_checkpoint_shape(const NrtCheckpoint *ck, const char *name, int64_t shape[8]);
void nrt_checkpoint_close(NrtCheckpoint *ck);   /* NULL is fine */

/* A generated model's checkpoint: every tensor lives `off` floats into the
 * model's one block (parameters, statistics, optimizer state). Saving adds
 * __metadata__ format=netc, model, structure_hash, step and seed. Loading
 * refuses another structure hash and is all or nothing: the tensors are read
 * into a copy of the block (aligned_alloc(64, ...)) that replaces *block,
 * which is freed, only when every one was there with its shape. */
typedef struct NrtBlockTensor {
    const char *name;
    int rank;
    int64_t shape[4];
    int64_t off;
} NrtBlockTensor;

typedef struct NrtBlockLayout {
    const char *model;
    const char *structure_hash;     /* 16 hex digits */
    const NrtBlockTensor *tensors;
    int ntensors;
    int64_t block_floats;
} NrtBlockLayout;

NrtStatus nrt_block_save(const NrtBlockLayout *l, const float *block, uint64_t step, uint64_t seed,
                         const char *path, NrtError *err);
NrtStatus nrt_block_load(const NrtBlockLayout *l, float **block, uint64_t *step, uint64_t *seed,
                         const char *path, NrtError *err);
/* Extra __metadata__ entries every later nrt_block_save adds: the training
 * driver's position in the run (epoch, step in the epoch, examples per
 * epoch, ...), so a checkpoint says where to resume without the generated
 * code knowing about epochs. Copied; n = 0 clears; at most 16 entries, keys
 * under 32 bytes, values under 128 (else NRT_ERR_ARG, nothing changed).
 * Not thread-safe: set it before saving. */
NrtStatus nrt_block_set_run_meta(const NrtKV *kv, int n, NrtError *err);

/* Numeric guard: the index of the first NaN or Inf in x[0..n), or -1. */
int64_t nrt_find_nonfinite(const float *x, int64_t n);

/* One parameter of the guard pass: offsets in the parameter block of its
 * data and its gradient (-1: none), its size, and the penalty added to its
 * gradient first (l1 = l2 = 0: none). */
typedef struct NrtGuardSpan {
    int64_t off, grad, numel;
    double l1, l2;
} NrtGuardSpan;
/* What nrt_guard_pass found: the first span (in table order) whose data
 * holds a NaN/Inf, else the first whose gradient does, and the element. */
typedef struct NrtGuardBad {
    int span;
    bool grad;
    int64_t elem;
} NrtGuardBad;
/* The numeric guard and the penalties in one pass over memory: for every
 * span, the gradient receives its penalty exactly as nrt_penalty_grad adds
 * it (same bits), then data and (penalized) gradient are scanned for NaN and
 * Inf. Every penalty is applied even when something is bad. Returns false
 * and fills *bad if anything is non-finite. Elementwise, any thread count
 * gives the same bits and the same answer. */
bool nrt_guard_pass(float *block, int n, const NrtGuardSpan *spans, NrtGuardBad *bad);

/* ---- dense and convolution math (gemm.c, conv.c) ------------------------- */

/* Scratch space from the caller. Any float-aligned buffer works (kernels
 * align inside it); its contents are garbage after a call, and one
 * workspace must not serve two calls at the same time. Each kernel family
 * states how many floats it needs (nrt_*_workspace_floats); the size
 * depends only on the shape, never on the thread count. A NULL or too
 * small workspace makes the call malloc and free its own (fine in tests,
 * not in a training step). */
typedef struct NrtWorkspace {
    float *buf;
    size_t floats;
} NrtWorkspace;

typedef enum NrtAct { NRT_ACT_NONE = 0, NRT_ACT_RELU = 1 } NrtAct;
typedef enum NrtBiasKind {
    NRT_BIAS_NONE = 0,
    NRT_BIAS_ROW = 1,   /* bias[i] added to row i of C (M floats) */
    NRT_BIAS_COL = 2,   /* bias[j] added to column j of C (N floats) */
} NrtBiasKind;

/* Fused GEMM epilogue: C = act(alpha*op(A)*op(B) + beta*C + bias). */
typedef struct NrtEpilogue {
    NrtBiasKind bias_kind;
    const float *bias;
    NrtAct act;
} NrtEpilogue;

typedef enum NrtIsa { NRT_ISA_AUTO = 0, NRT_ISA_PORTABLE = 1, NRT_ISA_AVX512 = 2 } NrtIsa;

/* Which SGEMM kernel runs (process-wide; the default is the best the CPU
 * supports). Forcing NRT_ISA_PORTABLE is for tests and comparisons; asking
 * for AVX512 on a CPU without it selects the portable kernel. Returns the
 * kernel now in use. */
NrtIsa nrt_sgemm_set_isa(NrtIsa isa);
NrtIsa nrt_sgemm_isa(void);

/* Floats of workspace nrt_sgemm needs: at most
 * min(K,256) * (roundup(min(N,2048),32) + roundup(min(M,1024),8)) + 16. */
size_t nrt_sgemm_workspace_floats(int64_t M, int64_t N, int64_t K);
/* The same for a product run on up to `threads` threads: with M <= 512 the
 * threads pack private slices, at most threads * (min(K,256) *
 * (roundup(M,8) + min(2048, 32*ceil(ceil(N/32)/threads))) + 16). With less,
 * nrt_sgemm uses as many threads as the workspace holds (same bits). */
size_t nrt_sgemm_workspace_floats_threads(int64_t M, int64_t N, int64_t K, int threads);

/* C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is M x K (A is
 * M x K, or K x M when transA), op(B) is K x N (B is K x N, or N x K when
 * transB). C is not read when beta == 0. Bitwise identical results for any
 * thread count. */
void nrt_sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
               float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc, NrtWorkspace *ws);
/* The same with a fused epilogue (ep may be NULL). */
void nrt_sgemm_ex(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, const NrtEpilogue *ep, NrtWorkspace *ws);
/* References: one dot product per element, accumulated in double. */
void nrt_sgemm_ref(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc);
void nrt_sgemm_ref_ex(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, const NrtEpilogue *ep);

/* Dense layer (dense.c): x is (n, in), w is (out, in) as in PyTorch, b is
 * (out), y is (n, out). Backward kernels overwrite their output, or add to
 * it when accumulate is true. Workspace: nrt_dense_workspace_floats. */
size_t nrt_dense_workspace_floats(int64_t n, int64_t in, int64_t out);
/* y = act(x w^T + b); b may be NULL. */
void nrt_dense_forward(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                       const float *b, NrtAct act, float *y, NrtWorkspace *ws);
void nrt_dense_forward_ref(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                           const float *b, NrtAct act, float *y);
/* dx (n, in) = dy (n, out) w. */
void nrt_dense_backward_data(int64_t n, int64_t in, int64_t out, const float *dy, const float *w,
                             float *dx, bool accumulate, NrtWorkspace *ws);
void nrt_dense_backward_data_ref(int64_t n, int64_t in, int64_t out, const float *dy,
                                 const float *w, float *dx, bool accumulate);
/* dw (out, in) = dy^T x. */
void nrt_dense_backward_weights(int64_t n, int64_t in, int64_t out, const float *x,
                                const float *dy, float *dw, bool accumulate, NrtWorkspace *ws);
void nrt_dense_backward_weights_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                    const float *dy, float *dw, bool accumulate);
/* db (out) = sum over the n rows of dy, in row order. */
void nrt_dense_backward_bias(int64_t n, int64_t out, const float *dy, float *db, bool accumulate);

/* Convolution (conv.c): x is (n, c, h, w) NCHW, weights (f, c, k, k), bias
 * (f), y is (n, f, oh, ow) with oh = (h + 2*pad - k) / stride + 1 (ow
 * alike); padding is zeros. Forward is im2col + SGEMM per sample (a 1x1,
 * stride 1, pad 0 convolution uses x directly), or on AVX-512 CPUs for most
 * shapes a direct kernel with the same bits; backward data of a stride-1
 * convolution is the forward convolution of dy with the flipped weights;
 * backward weights packs its GEMM panels from a padded copy of x, and
 * stride-2 backward data runs as four direct convolutions (one per pixel
 * phase), where that is faster (summed in other fixed orders).
 * Samples are split into
 * min(n, NRT_CONV_SLOTS) fixed groups, one workspace slot each, so at most
 * NRT_CONV_SLOTS threads work on samples and the weight gradient is summed
 * per group in sample order, then over the groups in group order: bitwise
 * identical for any thread count. With n == 1 the GEMM itself is split. */
enum { NRT_CONV_SLOTS = 8 };

typedef struct NrtConvShape {
    int64_t n, c, h, w;   /* input */
    int64_t f, k;         /* filters, kernel size (square) */
    int64_t stride, pad;
} NrtConvShape;

/* How convolutions run (process-wide; tests and benchmarks): AUTO picks
 * per shape; IM2COL forces im2col + SGEMM everywhere; DIRECT forces the
 * direct kernels wherever they apply (AVX-512 CPUs; not 1x1 stride-1
 * unpadded convolutions, which use x as the column matrix, nor backward
 * data of strides above 2). Forward and stride-1 backward data give the
 * same bits either way; the weight gradient and stride-2 backward data sum
 * in another (fixed) order when direct. */
typedef enum NrtConvAlgo { NRT_CONV_AUTO = 0, NRT_CONV_IM2COL = 1, NRT_CONV_DIRECT = 2 } NrtConvAlgo;
void nrt_conv_set_algo(NrtConvAlgo algo);

int64_t nrt_conv_out_h(const NrtConvShape *s);
int64_t nrt_conv_out_w(const NrtConvShape *s);
/* Workspace floats, with K = c*k*k, P = oh*ow, T = f*k*k, Q = h*w and r16
 * rounding up to 16:
 *   NRT_CONV_SLOTS * (r16(max(K*P, T*Q, D)) + r16(G) + r16(f*K)) + S,
 *   G = max(nrt_sgemm_workspace_floats(f, P, K),
 *           nrt_sgemm_workspace_floats(K, P, f),
 *           nrt_sgemm_workspace_floats(f, K, P),
 *           nrt_sgemm_workspace_floats(f, K, Pd),
 *           nrt_sgemm_workspace_floats(c, Q, T)),
 * where D is what the direct path keeps per slot (the padded, stride-phase
 * split copy of one sample of x, c * st^2 * ceil((h + 2 pad) / st) *
 * ceil((w + 2 pad) / st) + 32 floats, then dy in Pd padded positions, and
 * the same copy for the transposed convolution of backward data), and S the
 * flipped weights (c*T), the direct path's packed weights and tap offsets,
 * and nrt_conv_forward_bn's folded weights and bias (f*K, f) (each rounded
 * to 16). conv.c is the definition. */
size_t nrt_conv_workspace_floats(const NrtConvShape *s);
/* y = act(conv(x, w) + bias); bias may be NULL. */
void nrt_conv_forward(const NrtConvShape *s, const float *x, const float *w, const float *bias,
                      NrtAct act, float *y, NrtWorkspace *ws);
void nrt_conv_forward_ref(const NrtConvShape *s, const float *x, const float *w,
                          const float *bias, NrtAct act, float *y);
/* Inference with a batchnorm folded in, every call (the compiler's bnfold
 * pass): y = act(conv(x, w * scale) + (bias - mean) * scale + beta), scale =
 * gamma / sqrt(var + eps) per filter; bias may be NULL. The same bits as
 * nrt_batchnorm_fold into (wf, bf) then nrt_conv_forward(x, wf, bf): the
 * fold writes straight into the direct path's packed weights (in the
 * workspace, split over threads with the packing at batch 1). */
void nrt_conv_forward_bn(const NrtConvShape *s, const float *x, const float *w,
                         const float *bias, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, double eps,
                         NrtAct act, float *y, NrtWorkspace *ws);
/* dx (n, c, h, w) from dy (n, f, oh, ow): overwrite or accumulate. */
void nrt_conv_backward_data(const NrtConvShape *s, const float *dy, const float *w, float *dx,
                            bool accumulate, NrtWorkspace *ws);
void nrt_conv_backward_data_ref(const NrtConvShape *s, const float *dy, const float *w,
                                float *dx, bool accumulate);
/* dw (f, c, k, k) summed over the batch: overwrite or accumulate. */
void nrt_conv_backward_weights(const NrtConvShape *s, const float *x, const float *dy,
                               float *dw, bool accumulate, NrtWorkspace *ws);
void nrt_conv_backward_weights_ref(const NrtConvShape *s, const float *x, const float *dy,
                                   float *dw, bool accumulate);
/* db (f) = sum of dy over n, oh, ow (per sample in order, then samples in
 * order): overwrite or accumulate. */
void nrt_conv_backward_bias(const NrtConvShape *s, const float *dy, float *db, bool accumulate);
/* nrt_conv_backward_weights and nrt_conv_backward_bias in one call, both
 * overwriting or both accumulating: each sample's plane sums are taken
 * while the weight gradient has that sample's dy in cache (in the
 * parallel groups) and added in sample order after them, so db gets the
 * bits of nrt_conv_backward_bias and dw those of
 * nrt_conv_backward_weights, without the separate, serial pass over dy.
 * db may be NULL (no bias). */
void nrt_conv_backward_weights_bias(const NrtConvShape *s, const float *x, const float *dy,
                                    float *dw, float *db, bool accumulate, NrtWorkspace *ws);

/* ---- pooling, activations, batchnorm, dropout, losses, optimizers -------- */

/* Conventions of this section (pool.c, activation.c, batchnorm.c,
 * dropout.c, loss.c, optim.c): numel counts floats; a backward kernel with
 * `accumulate` false overwrites its output and with true adds to it (a
 * tensor read by several ops); inputs are never modified. Elementwise
 * kernels allow y == x (and dx == dy when not accumulating). */

/* An activation fused into another kernel's output (batchnorm, add), with
 * the definitions of activation.c below (NRT_FUSED_LEAKY_RELU takes a slope). */
typedef enum NrtFusedAct {
    NRT_FUSED_NONE = 0,
    NRT_FUSED_RELU = 1,
    NRT_FUSED_LEAKY_RELU = 2,
    NRT_FUSED_TANH = 3,
    NRT_FUSED_SIGMOID = 4,
} NrtFusedAct;

/* Batch normalization (batchnorm.c), per channel over n and spatial: x and
 * y are (n, c, spatial) with spatial = h*w (spatial = 1, c = D for an
 * N x D input). Statistics: shifted sums, float vector lanes over chunks of
 * at most 1024 values, every chunk added in double, in a fixed order.
 * Training: batch mean and biased variance; save_mean, save_invstd (c)
 * receive mean and 1/sqrt(var + eps) for the backward; running_mean and
 * running_var (c, may both be NULL) become (1-momentum)*r + momentum*batch,
 * the variance unbiased (M/(M-1), M = n*spatial), as in PyTorch. relu
 * fuses max(0, .) into the output. */
void nrt_batchnorm_forward_train(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 bool relu, float *y, float *save_mean, float *save_invstd);
/* Inference: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
void nrt_batchnorm_forward_infer(int64_t n, int64_t c, int64_t spatial, const float *x,
                                 const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 double eps, bool relu, float *y);
/* PyTorch's backward: with g = dy (masked by y > 0 when y_relu, the fused
 * forward's output, is not NULL), xhat = (x - mean) * invstd:
 *   dbeta = sum g, dgamma = sum g*xhat,
 *   dx = gamma*invstd * (g - dbeta/M - xhat*dgamma/M).
 * dx (may be NULL: parameter gradients only): overwrite/accumulate by
 * accumulate_dx; dgamma, dbeta (c) by accumulate_params. */
void nrt_batchnorm_backward(int64_t n, int64_t c, int64_t spatial, const float *dy,
                            const float *x, const float *y_relu, const float *gamma,
                            const float *save_mean, const float *save_invstd, float *dx,
                            float *dgamma, float *dbeta, bool accumulate_dx,
                            bool accumulate_params);

/* Batchnorm folded into the conv or dense layer before it, for inference
 * (the fusion pass of docs/architecture.md): for each of the f output
 * channels, with scale = gamma / sqrt(running_var + eps) in double as
 * nrt_batchnorm_forward_infer computes it,
 *   w_out[o][k] = w[o][k] * (float)scale    (k < per: c*k*k for conv, in for dense)
 *   b_out[o]    = (b[o] - running_mean) * scale + beta     (b NULL: 0; in double)
 * Then conv(x, w_out) + b_out is batchnorm(conv(x, w) + b) up to float
 * rounding. */
void nrt_batchnorm_fold(int64_t f, int64_t per, const float *w, const float *b,
                        const float *gamma, const float *beta, const float *running_mean,
                        const float *running_var, double eps, float *w_out, float *b_out);
/* Its per-channel part alone: scale_out[o] = (float)scale, b_out[o] the
 * folded bias; w * scale_out[o] (one float multiply) is the folded weight
 * (nrt_conv_forward_bn scales its packed panels with it). */
void nrt_batchnorm_fold_scales(int64_t f, const float *b, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, double eps,
                               float *scale_out, float *b_out);

/* The same with any fused activation of NrtFusedAct (activation.c below)
 * that batchnorm takes: NRT_FUSED_NONE, _RELU or _LEAKY_RELU (slope in
 * [0, 1]; tanh and sigmoid count as none: they are compute-bound, so a
 * fused pass would save little). The backward reads the forward's output
 * y_act: g = dy where y > 0, else 0 (relu) or dy * slope (leaky_relu),
 * the bits of the activation's own backward kernel. */
void nrt_batchnorm_forward_train_act(int64_t n, int64_t c, int64_t spatial, const float *x,
                                     const float *gamma, const float *beta, double eps,
                                     double momentum, float *running_mean, float *running_var,
                                     NrtFusedAct act, float slope, float *y, float *save_mean,
                                     float *save_invstd);
void nrt_batchnorm_forward_infer_act(int64_t n, int64_t c, int64_t spatial, const float *x,
                                     const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var,
                                     double eps, NrtFusedAct act, float slope, float *y);
void nrt_batchnorm_backward_act(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                const float *x, const float *y_act, NrtFusedAct act, float slope,
                                const float *gamma, const float *save_mean,
                                const float *save_invstd, float *dx, float *dgamma, float *dbeta,
                                bool accumulate_dx, bool accumulate_params);
/* The same pair without reading y in the backward: the training forward
 * also saves the float scale and shift it applied per channel
 * (save_affine, 2c floats: scale[c] then shift[c]), and the backward takes
 * the activation's mask from x (x*scale + shift > 0, the value the forward
 * tested: the same mask, so the bits of nrt_batchnorm_backward_act with
 * y_act) -- one stream less in both backward passes, x being read anyway.
 * save_affine may be NULL in the forward; NULL in the backward means no
 * mask (as y_act NULL). */
void nrt_batchnorm_forward_train_affine(int64_t n, int64_t c, int64_t spatial, const float *x,
                                        const float *gamma, const float *beta, double eps,
                                        double momentum, float *running_mean, float *running_var,
                                        NrtFusedAct act, float slope, float *y, float *save_mean,
                                        float *save_invstd, float *save_affine);
void nrt_batchnorm_backward_affine(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                   const float *x, const float *save_affine, NrtFusedAct act,
                                   float slope, const float *gamma, const float *save_mean,
                                   const float *save_invstd, float *dx, float *dgamma,
                                   float *dbeta, bool accumulate_dx, bool accumulate_params);

/* Pooling (pool.c): x is (n, c, h, w), y is (n, c, oh, ow) with
 * oh = (h + 2*pad - k) / stride + 1 (floor; ow alike), pad <= k/2. */
typedef struct NrtPoolShape {
    int64_t n, c, h, w;
    int64_t k, stride, pad;
} NrtPoolShape;

int64_t nrt_pool_out_h(const NrtPoolShape *s);
int64_t nrt_pool_out_w(const NrtPoolShape *s);
/* Max over each window; padding never wins (-inf, as in PyTorch), NaN
 * does. argmax (n, c, oh, ow; may be NULL at inference) receives the
 * winner's index ih*w + iw within its plane, the first one on ties. */
void nrt_maxpool_forward(const NrtPoolShape *s, const float *x, float *y, int32_t *argmax);
/* dx[plane][argmax] += dy, per plane in output order. */
void nrt_maxpool_backward(const NrtPoolShape *s, const float *dy, const int32_t *argmax,
                          float *dx, bool accumulate);
/* Average over the k*k window, padding counted as zeros
 * (count_include_pad=True, PyTorch's default): divisor k*k always. */
void nrt_avgpool_forward(const NrtPoolShape *s, const float *x, float *y);
void nrt_avgpool_backward(const NrtPoolShape *s, const float *dy, float *dx, bool accumulate);
/* x (n, c, spatial) -> y (n, c): the mean of each plane (double, in order). */
void nrt_global_avgpool_forward(int64_t n, int64_t c, int64_t spatial, const float *x, float *y);
void nrt_global_avgpool_backward(int64_t n, int64_t c, int64_t spatial, const float *dy,
                                 float *dx, bool accumulate);

/* Fractional max pooling (Graham 2014, pool.c). A region set holds, per
 * output row i, the input rows [row_start[i], row_end[i]) and per output
 * column j the columns [col_start[j], col_end[j]). */
int64_t nrt_fracpool_out(int64_t in, double ratio);   /* floor(in / ratio), >= 1 */
/* Graham's pseudo-random sequence as TensorFlow's fractional_max_pool
 * draws it: alpha = in/out, K = floor(alpha), u = (1 - u01) * min((K+2)/alpha
 * - 1, (in+1-K)/alpha - (out-1)), a_0 = 0, a_i = ceil(alpha*(i+u)) - 1 for
 * 0 < i < out, a_out = in. Region i is [a_i, a_(i+1)) (lengths K or K+1);
 * overlap adds the next boundary element: [a_i, min(a_(i+1) + 1, in)).
 * u01 in [0, 1) is the caller's uniform draw. */
void nrt_fracpool_regions(int64_t in, int64_t out, double u01, bool overlap, int32_t *start,
                          int32_t *end);
/* PyTorch's FractionalMaxPool2d(k) intervals for sample u in [0, 1):
 * alpha = (float)(in - k) / (out - 1), start_i = (int)((i + u)*alpha) -
 * (int)(u*alpha) in float arithmetic, start_(out-1) = in - k,
 * end_i = start_i + k. (torch draws u per (sample, plane), [0] for the
 * width, [1] for the height.) */
void nrt_fracpool_regions_torch(int64_t in, int64_t out, int64_t k, float u, int32_t *start,
                                int32_t *end);

typedef enum NrtFracShare {
    NRT_FRAC_SHARED = 0,       /* one region set for every plane (inference) */
    NRT_FRAC_PER_SAMPLE = 1,   /* set i for all channels of sample i */
    NRT_FRAC_PER_PLANE = 2,    /* set i*c + ch */
} NrtFracShare;

typedef struct NrtFracPool {
    int64_t n, c, h, w, oh, ow;
    NrtFracShare share;
    const int32_t *row_start, *row_end;   /* (sets, oh) */
    const int32_t *col_start, *col_end;   /* (sets, ow) */
} NrtFracPool;

/* Region sets drawn from Philox for netc's fractional_maxpool: set s uses
 * nrt_fracpool_regions with u01 = nrt_rng_uniform(seed, NRT_RNG_FRACPOOL,
 * step, sample s, element stream) for the rows and element stream + 1 for
 * the columns. regions (int32) = row_start (sets x oh), row_end (sets x oh),
 * col_start (sets x ow), col_end (sets x ow), 2 (oh + ow) per set.
 * Training draws one set per sample at the training step; inference one
 * shared set at step NRT_FRACPOOL_INFER_STEP, a function of the seed only. */
enum { NRT_FRACPOOL_INFER_STEP = 0x7fffffff };
void nrt_fracpool_draw(uint64_t seed, uint64_t step, uint64_t stream, int64_t sets, int64_t h,
                       int64_t w, int64_t oh, int64_t ow, bool overlap, int32_t *regions);
/* Max over each region, NaN wins, first index on ties; argmax as maxpool. */
void nrt_fracpool_forward(const NrtFracPool *p, const float *x, float *y, int32_t *argmax);
void nrt_fracpool_backward(const NrtFracPool *p, const float *dy, const int32_t *argmax,
                           float *dx, bool accumulate);

/* Activations (activation.c), elementwise over numel floats. Backward
 * kernels read the output y where that is the natural form (relu: y > 0,
 * tanh: 1 - y^2, sigmoid: y (1 - y)) and the input x for leaky_relu
 * (x > 0 ? 1 : slope, PyTorch's rule). */
void nrt_relu_forward(int64_t numel, const float *x, float *y);
void nrt_relu_backward(int64_t numel, const float *dy, const float *y, float *dx,
                       bool accumulate);
void nrt_leaky_relu_forward(int64_t numel, float slope, const float *x, float *y);
void nrt_leaky_relu_backward(int64_t numel, float slope, const float *dy, const float *x,
                             float *dx, bool accumulate);
void nrt_tanh_forward(int64_t numel, const float *x, float *y);
void nrt_tanh_backward(int64_t numel, const float *dy, const float *y, float *dx,
                       bool accumulate);
void nrt_sigmoid_forward(int64_t numel, const float *x, float *y);
void nrt_sigmoid_backward(int64_t numel, const float *dy, const float *y, float *dx,
                          bool accumulate);
/* y = act(x[0] + x[1] + ... + x[nin-1]) over numel floats in one pass
 * (eltwise.c), summed left to right: the same bits as the sum, then the
 * activation's own kernel. y may be one of the inputs. */
void nrt_add_act_forward(int64_t numel, int nin, const float *const *x, NrtFusedAct act,
                         float slope, float *y);
/* Row-wise over x (n, k), max-subtracted, sums in double. */
void nrt_softmax_forward(int64_t n, int64_t k, const float *x, float *y);
void nrt_log_softmax_forward(int64_t n, int64_t k, const float *x, float *y);
/* dx = y * (dy - sum_j dy_j y_j) per row. */
void nrt_softmax_backward(int64_t n, int64_t k, const float *dy, const float *y, float *dx,
                          bool accumulate);

/* Dropout, drop_path, gaussian noise (dropout.c). The randomness comes in
 * as data: the caller draws 32 uniform bits per element (Philox, rng.c) or
 * normals, so these kernels are pure and thread-count independent. A mask
 * holds the multiplier itself: 1/(1-p) for a kept element, 0 for a dropped
 * one (the same mask serves forward, backward and dropconnect). */
/* Kept iff bits >= threshold = round(p * 2^32) (clamped to 2^32 - 1), so
 * P(keep) = 1 - p up to 2^-32. */
uint32_t nrt_dropout_threshold(double p);
void nrt_dropout_mask(int64_t numel, const uint32_t *bits, double p, float *mask);
void nrt_dropout_forward(int64_t numel, const float *x, const float *mask, float *y);
void nrt_dropout_backward(int64_t numel, const float *dy, const float *mask, float *dx,
                          bool accumulate);
/* drop_path: x, y are (n, d), scale (n) is a mask from nrt_dropout_mask
 * with one draw per sample: y[i] = scale[i] * x[i]; backward alike. */
void nrt_drop_path_forward(int64_t n, int64_t d, const float *x, const float *scale, float *y);
void nrt_drop_path_backward(int64_t n, int64_t d, const float *dy, const float *scale,
                            float *dx, bool accumulate);
/* y = x + std * normals (N(0,1) draws); its backward is the identity. */
void nrt_gaussian_noise_forward(int64_t numel, const float *x, const float *normals, float std,
                                float *y);

/* DropConnect on a dense layer (dropconnect.c, Wan et al. 2013): sample i
 * uses W * M_i, M_i[j][c] = 1/(1-p) if the Philox word at (seed,
 * NRT_RNG_DROPCONNECT, step, sample i, element stream + j*in + c) is below
 * (1-p) 2^32 (nrt_rng_fill_dropout_mask's rule), else 0. The forward pass
 * keeps the masks as bits, nrt_dropconnect_words(in, out) uint32 words per
 * sample (row j at word j * ceil(in/32), bit c); the backward passes read
 * them. Results are the same for any thread count. Shapes as nrt_dense_*:
 * x (n, in), w (out, in), y (n, out).
 * y = act(x_i (W*M_i)^T + b) per sample (b may be NULL). */
int64_t nrt_dropconnect_words(int64_t in, int64_t out);
void nrt_dropconnect_dense_forward(int64_t n, int64_t in, int64_t out, const float *x,
                                   const float *w, const float *b, NrtAct act, double p,
                                   uint64_t seed, uint64_t step, uint64_t stream, uint32_t *bits,
                                   float *y);
/* dw = sum_i M_i * (dy_i^T x_i), samples in order: overwrite or accumulate. */
void nrt_dropconnect_dense_backward_weights(int64_t n, int64_t in, int64_t out, const float *x,
                                            const float *dy, double p, const uint32_t *bits,
                                            float *dw, bool accumulate);
/* dx_i = dy_i (W*M_i): overwrite or accumulate. */
void nrt_dropconnect_dense_backward_data(int64_t n, int64_t in, int64_t out, const float *dy,
                                         const float *w, double p, const uint32_t *bits,
                                         float *dx, bool accumulate);

/* Losses (loss.c). Each returns the mean loss over the batch (double sums
 * in a fixed order, thread-count independent) and, when dgrad is not NULL,
 * writes (or with accumulate adds) weight * d(mean loss)/d(input).
 * Cross entropy over logits (n, k) with labels in [0, k), PyTorch's label
 * smoothing s: per row (1-s)*(-log p_y) + s/k * sum_j (-log p_j). With
 * labels_b (mixup/cutmix partner labels; NULL: none) the row loss is
 * lambda * CE(labels) + (1 - lambda) * CE(labels_b). */
double nrt_cross_entropy(int64_t n, int64_t k, const float *logits, const int32_t *labels,
                         const int32_t *labels_b, double lambda, double smoothing,
                         double weight, float *dlogits, bool accumulate);
/* Mean squared error over n*d elements (PyTorch reduction='mean'); with
 * target_b: lambda * mse(target) + (1 - lambda) * mse(target_b). */
double nrt_mse(int64_t n, int64_t d, const float *pred, const float *target,
               const float *target_b, double lambda, double weight, float *dpred,
               bool accumulate);
/* out[i] = index of the largest x[i][j] (the first on ties). */
void nrt_argmax_rows(int64_t n, int64_t k, const float *x, int32_t *out);
int64_t nrt_count_correct(int64_t n, int64_t k, const float *logits, const int32_t *labels);

/* Optimizers and penalties (optim.c), PyTorch 1.13 semantics, float state.
 * Penalties: J' = J + l1 * sum|w| + l2/2 * sum w^2, so g += l1*sign(w) +
 * l2*w (sign(0) = 0); nrt_penalty_value gives the added term (double). */
void nrt_penalty_grad(int64_t numel, const float *w, double l1, double l2, float *g);
double nrt_penalty_value(int64_t numel, const float *w, double l1, double l2);
/* SGD: v = momentum*v + g; update = nesterov ? g + momentum*v : v
 * (v unused and may be NULL when momentum == 0: update = g); w -= lr*update.
 * v starts at zeros (PyTorch's first step v = g is the same). */
void nrt_sgd_step(int64_t numel, float *w, const float *g, float *v, double lr,
                  double momentum, bool nesterov);
/* Adam / AdamW, t = the 1-based number of this step, m and v start at 0:
 *   AdamW (decoupled): w *= 1 - lr*weight_decay; Adam: g += weight_decay*w;
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
void nrt_adam_step(int64_t numel, float *w, const float *g, float *m, float *v, double lr,
                   double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                   int64_t t);

/* ---- augmentation, mixing, images (augment.c, mix.c, png.c) ---- */

/* Training-time augmentation (LANGUAGE.md, Regularization), per sample and
 * label-preserving, on NCHW float batches, in this order: translate, flip,
 * flip(vertical), rotate [nrt_augment_geometric], then the caller's
 * preprocessing, then cutout, noise [nrt_augment_post]. Every draw comes
 * from Philox keyed by (seed, NRT_RNG_AUGMENT, step, sample, element), with
 * sample = first_sample + i the sample's index within the step, so a seed
 * gives the same batch for any thread count or split of the batch. A field
 * at 0 (false) turns its augmentation off. */
typedef struct NrtAugmentSpec {
    int64_t translate;     /* px: integer shift uniform in [-px, px] in x and y, zero fill */
    bool flip;             /* horizontal mirror with p = 0.5 */
    bool flip_vertical;    /* vertical mirror with p = 0.5 */
    double rotate;         /* deg: angle uniform in [-deg, deg], bilinear about the
                            * center ((h-1)/2, (w-1)/2), zero fill */
    int64_t cutout;        /* side of one square set to 0, center uniform over the
                            * pixels, clipped at the borders (DeVries & Taylor 2017) */
    double noise;          /* std of the N(0, std^2) added to every element */
} NrtAugmentSpec;

/* What one sample drew: a pure function of (spec, h, w, seed, step, sample). */
typedef struct NrtAugmentDraw {
    int64_t dx, dy;        /* translate: content moves right by dx, down by dy */
    bool flip, flip_vertical;
    double angle;          /* rotate, degrees; positive turns the content
                            * counter-clockwise as displayed (y down) */
    int64_t cut_y, cut_x;  /* cutout: rows [cut_y - s/2, cut_y - s/2 + s), columns
                            * alike, clipped to the image */
} NrtAugmentDraw;

typedef struct NrtTrainConfig NrtTrainConfig;

/* spec from a train section's augment list (naugments, augment[],
 * augment_amount[]); the list order does not matter, the order above does.
 * NRT_ERR_ARG for a negative or non-finite amount or a repeated kind. */
NrtStatus nrt_augment_spec_from_config(NrtAugmentSpec *spec, const NrtTrainConfig *cfg,
                                       NrtError *err);
void nrt_augment_draw(const NrtAugmentSpec *spec, int64_t h, int64_t w, uint64_t seed,
                      uint64_t step, int64_t sample, NrtAugmentDraw *d);
/* Floats of scratch nrt_augment_geometric needs: n*c*(h+2)*(w+2). */
size_t nrt_augment_scratch_floats(int64_t n, int64_t c, int64_t h, int64_t w);
/* translate, flip, flip(vertical), rotate on x (n, c, h, w) in place; all
 * channels of a sample move together. scratch: nrt_augment_scratch_floats. */
void nrt_augment_geometric(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                           const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                           int64_t first_sample, float *scratch);
/* The same from the definition, one thread (scratch: c*h*w floats). */
void nrt_augment_geometric_ref(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                               const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                               int64_t first_sample, float *scratch);
/* cutout, then noise, on the preprocessed x (n, c, h, w) in place. */
void nrt_augment_post(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                      const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                      int64_t first_sample);

/* Batch mixing. lambda ~ Beta(alpha, alpha) and partner perm = a random
 * permutation of 0..n-1, both keyed by (seed, NRT_RNG_MIX, step); the loss
 * is lambda * L(y) + (1 - lambda) * L(y[perm]). alpha <= 0 (or not finite)
 * means no mixing: lambda = 1, perm = identity, x untouched. */
typedef struct NrtMixInfo {
    float lambda;              /* weight of each sample's own label */
    int64_t y0, y1, x0, x1;    /* cutmix: the pasted box, rows [y0, y1), columns
                                * [x0, x1); all 0 for mixup */
} NrtMixInfo;

/* Floats of scratch the mixers need: a copy of the batch, n*c*h*w. */
size_t nrt_mix_scratch_floats(int64_t n, int64_t c, int64_t h, int64_t w);
/* mixup (Zhang et al. 2018): x[i] = lambda x[i] + (1 - lambda) x[perm[i]],
 * x is (n, d). perm receives n indices. */
void nrt_mixup(float *x, int64_t n, int64_t d, double alpha, uint64_t seed, uint64_t step,
               int64_t *perm, NrtMixInfo *info, float *scratch);
/* cutmix (Yun et al. 2019): one box per batch, center uniform over the
 * pixels, sides h*sqrt(1-l) and w*sqrt(1-l) for the drawn l, clipped; every
 * x[i] gets the box of x[perm[i]] in all channels; info->lambda is then the
 * exact kept area fraction 1 - box area / (h*w). */
void nrt_cutmix(float *x, int64_t n, int64_t c, int64_t h, int64_t w, double alpha,
                uint64_t seed, uint64_t step, int64_t *perm, NrtMixInfo *info, float *scratch);
/* The partners' targets for the losses: out[i] = labels[perm[i]]; values
 * (n, d): out[i] = lambda values[i] + (1 - lambda) values[perm[i]]. */
void nrt_mix_labels(int64_t n, const int32_t *labels, const int64_t *perm, int32_t *out);
void nrt_mix_values(int64_t n, int64_t d, const float *values, const int64_t *perm, float lambda,
                    float *out);

/* A grid of images as one PNG: x is (n, c, h, w), c = 1 (grey) or 3 (RGB);
 * cols per row (<= 0: ceil(sqrt(n))), each image magnified scale times
 * (nearest), NRT_PNG_GAP grey (128) pixels between and around images.
 * NRT_PNG_CLAMP writes round(255 * clamp(v, 0, 1)); NRT_PNG_MINMAX first
 * maps each image's own [min, max] onto [0, 1] (for preprocessed inputs; a
 * constant image is black). NaN is black. Written atomically (temp file,
 * fsync, rename); on failure no file is left behind. */
enum { NRT_PNG_GAP = 1 };
typedef enum NrtPngRange { NRT_PNG_CLAMP = 0, NRT_PNG_MINMAX = 1 } NrtPngRange;
NrtStatus nrt_png_write_grid(const char *path, const float *x, int64_t n, int64_t c, int64_t h,
                             int64_t w, int cols, int scale, NrtError *err);
NrtStatus nrt_png_write_grid_ex(const char *path, const float *x, int64_t n, int64_t c,
                                int64_t h, int64_t w, int cols, int scale, NrtPngRange range,
                                NrtError *err);

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
