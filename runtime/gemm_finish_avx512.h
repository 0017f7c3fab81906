/* gemm_finish_avx512.h - private to libnetrt: the tile epilogue of
 * gemm_kernel.h on 16 lanes, shared by the AVX-512 SGEMM kernel
 * (gemm_avx512.c) and the direct convolution (conv_direct_avx512.c), so
 * that both compute exactly the same floats. Include only from files built
 * with the AVX-512 flags.
 */
#ifndef NETRT_GEMM_FINISH_AVX512_H
#define NETRT_GEMM_FINISH_AVX512_H

#include <immintrin.h>

#include "gemm_kernel.h"

typedef float NrtV16 __attribute__((vector_size(64)));
typedef float NrtV16u __attribute__((vector_size(64), aligned(4)));
typedef int32_t NrtI16 __attribute__((vector_size(64)));

/* The tile epilogue (gemm_kernel.h) on 16 columns of row i, vector j; only
 * the lanes in `mask` are read and written (edges of C, bias_col). */
static inline void nrt_finish_vec(NrtV16 acc, float *c, int i, int j, const NrtGemmTile *t,
                                  __mmask16 mask)
{
    NrtV16 v = acc * t->alpha;
    if (t->first) {
        if (t->beta != 0.0f)
            v += (NrtV16)_mm512_maskz_loadu_ps(mask, c) * t->beta;
    } else {
        v = (NrtV16)_mm512_maskz_loadu_ps(mask, c) + v;
    }
    if (t->last) {
        if (t->bias_row)
            v += t->bias_row[i];
        if (t->bias_col)
            v += (NrtV16)_mm512_maskz_loadu_ps(mask, t->bias_col + j * 16);
        if (t->act == NRT_ACT_RELU)
            v = (NrtV16)((NrtI16)(v > 0.0f) & (NrtI16)v);
    }
    _mm512_mask_storeu_ps(c, mask, (__m512)v);
}

#endif
