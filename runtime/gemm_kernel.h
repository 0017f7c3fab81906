/* gemm_kernel.h - private to libnetrt: the SGEMM micro-kernel contract.
 *
 * gemm.c packs A into MR-row panels (layout [k][MR], zero-padded rows) and
 * B into NR-column panels (layout [k][NR], zero-padded columns, 64-byte
 * aligned; or, for small M, full B panels are read in place with row
 * stride ldbp, unaligned) and calls one micro-kernel per MR x NR tile of C. The kernel
 * computes the full MR x NR product over kc and then writes only the valid
 * mr x nr corner through the tile epilogue below (the AVX-512 kernel with
 * masked vector stores, the portable one element by element). Kernels exist per ISA
 * (gemm.c: portable GNU vectors; gemm_avx512.c: zmm) and must all follow
 * this epilogue exactly, so every path computes the same formula.
 */
#ifndef NETRT_GEMM_KERNEL_H
#define NETRT_GEMM_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "netrt.h"
#include "nrt_hidden.h"

enum {
    NRT_GEMM_MR = 8,     /* rows of a micro-tile (broadcast from packed A) */
    NRT_GEMM_NR = 32,    /* columns of a micro-tile (two zmm vectors) */
    NRT_GEMM_KC = 256,   /* K slice (gemm.c): each tile of C is finished once per slice */
};

/* What the kernel does with its accumulator acc (one K block of alpha*A*B):
 *   first K block: c = alpha*acc + beta*c   (c is not read when beta == 0)
 *   later blocks:  c = c + alpha*acc
 *   last K block:  then c += bias (row or column), then the activation. */
typedef struct NrtGemmTile {
    float alpha, beta;
    bool first, last;
    const float *bias_row;   /* bias of the tile's first row, or NULL */
    const float *bias_col;   /* bias of the tile's first column, or NULL */
    NrtAct act;
} NrtGemmTile;

typedef void NrtGemmKernel(int64_t kc, const float *ap, const float *bp, int64_t ldbp,
                           float *c, int64_t ldc, int mr, int nr,
                           const NrtGemmTile *t);

NRT_HIDDEN void nrt_gemm_kernel_portable(int64_t kc, const float *ap, const float *bp, int64_t ldbp,
                                         float *c, int64_t ldc, int mr, int nr,
                                         const NrtGemmTile *t);
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
NRT_HIDDEN void nrt_gemm_kernel_avx512(int64_t kc, const float *ap, const float *bp, int64_t ldbp,
                                       float *c, int64_t ldc, int mr, int nr,
                                       const NrtGemmTile *t);
/* A small-M product without packing (batch-1 inference): C = epilogue(
 * alpha * A op(B) + beta C) for A not transposed, M <= NRT_GEMV_MAX_M, over
 * the columns [j0, j1) of C only, with exactly the packed path's bits (the
 * same fma order over K and the same per-KC-slice epilogue), so a row of
 * C does not depend on M, and splitting [0, N) among threads changes
 * nothing. */
enum { NRT_GEMV_MAX_M = 4 };
typedef struct NrtGemv {
    bool tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
    const NrtEpilogue *ep;
} NrtGemv;
NRT_HIDDEN void nrt_gemv_avx512(const NrtGemv *g, int64_t j0, int64_t j1);

/* Transposing packers: dst[p][r] = src[r*ld + p] for the first mr (nr)
 * rows, zeros for the rest of the panel. */
NRT_HIDDEN void nrt_gemm_pack_rows8_avx512(const float *src, int64_t ld, int mr, int64_t kc,
                                           float *dst);
NRT_HIDDEN void nrt_gemm_pack_rows32_avx512(const float *src, int64_t ld, int nr, int64_t kc,
                                            float *dst);
/* The same with row j at base + off[j] (rows anywhere). */
NRT_HIDDEN void nrt_gemm_pack_offsets32_avx512(const float *base, const int32_t *off, int nr,
                                               int64_t kc, float *dst);
#endif

/* Implicit GEMM: op(B) made panel by panel instead of read from memory.
 * pack fills dst[p][j] = op(B)(p0 + p, j0 + j) for p < kc, j < nr, and
 * zeros for j in [nr, NRT_GEMM_NR) (dst is 64-byte aligned).
 * nrt_sgemm_packer computes C = alpha op(A) op(B) + beta C (no epilogue)
 * with exactly the blocking, packing of A, kernels and order of nrt_sgemm,
 * on the calling thread, in the caller's workspace (at least
 * nrt_sgemm_workspace_floats(M, N, K)); false when that is too small. */
typedef struct NrtBPacker {
    void (*pack)(const void *ctx, int64_t j0, int nr, int64_t p0, int64_t kc, float *dst);
    const void *ctx;
} NrtBPacker;
NRT_HIDDEN bool nrt_sgemm_packer(bool transA, int64_t M, int64_t N, int64_t K, float alpha,
                                 const float *A, int64_t lda, const NrtBPacker *b, float beta,
                                 float *C, int64_t ldc, NrtWorkspace *ws);

/* The scalar epilogue for one element (edges and the K == 0 case). */
static inline float nrt_gemm_finish(float acc, float c, int i, int j, const NrtGemmTile *t)
{
    float v = t->alpha * acc;
    if (t->first)
        v = t->beta != 0.0f ? v + t->beta * c : v;
    else
        v = c + v;
    if (t->last) {
        if (t->bias_row)
            v += t->bias_row[i];
        if (t->bias_col)
            v += t->bias_col[j];
        if (t->act == NRT_ACT_RELU)
            v = v > 0.0f ? v : 0.0f;
    }
    return v;
}

/* Writes the valid mr x nr corner of a tile held in tmp[MR][NR]. */
static inline void nrt_gemm_store_edge(const float *tmp, float *c, int64_t ldc,
                                       int mr, int nr, const NrtGemmTile *t)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] = nrt_gemm_finish(tmp[i * NRT_GEMM_NR + j], c[i * ldc + j], i, j, t);
}

#endif
