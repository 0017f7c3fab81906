/* gemm_avx512.c - the AVX-512 SGEMM micro-kernel (8 x 32 tile).
 *
 * Built only on x86-64, with its own flags (-mavx512f -mfma
 * -mprefer-vector-width=512 -O3, see runtime/meson.build), and called only
 * when the CPU reports avx512f (gemm.c checks at run time), so the rest of
 * the library still runs on any x86-64. Contract: gemm_kernel.h.
 *
 * 16 zmm accumulators (8 rows x 2 vectors) hide the 4-cycle FMA latency on
 * two FMA ports; each k step loads two B vectors and broadcasts 8 A values.
 * Measured: 8x32, 12x32, 14x32 and 8x48 all reach the same in-L1 speed here
 * (~235 GFLOP/s per core at turbo), and 8 rows waste least on the model
 * shapes (M = 6, 16, 32, 64). GNU vector types keep gcc and clang from
 * re-blocking the loops (TOOLCHAIN.md).
 */
#include "gemm_kernel.h"

typedef float NrtV16 __attribute__((vector_size(64)));
typedef float NrtV16u __attribute__((vector_size(64), aligned(4)));
typedef int32_t NrtI16 __attribute__((vector_size(64)));

enum { NV = NRT_GEMM_NR / 16 };

static NrtV16 finish_vec(NrtV16 acc, float *c, int i, int j, const NrtGemmTile *t)
{
    NrtV16u *cp = (NrtV16u *)c;
    NrtV16 v = acc * t->alpha;
    if (t->first) {
        if (t->beta != 0.0f)
            v += *cp * t->beta;
    } else {
        v = *cp + v;
    }
    if (t->last) {
        if (t->bias_row)
            v += t->bias_row[i];
        if (t->bias_col)
            v += *(const NrtV16u *)(t->bias_col + j * 16);
        if (t->act == NRT_ACT_RELU)
            v = (NrtV16)((NrtI16)(v > 0.0f) & (NrtI16)v);
    }
    return v;
}

void nrt_gemm_kernel_avx512(int64_t kc, const float *ap, const float *bp,
                            float *c, int64_t ldc, int mr, int nr,
                            const NrtGemmTile *t)
{
    NrtV16 acc[NRT_GEMM_MR][NV];
    for (int i = 0; i < NRT_GEMM_MR; i++)
        for (int j = 0; j < NV; j++)
            acc[i][j] = (NrtV16){0};
    for (int64_t p = 0; p < kc; p++) {
        const NrtV16 *b = (const NrtV16 *)(bp + p * NRT_GEMM_NR);
        const float *a = ap + p * NRT_GEMM_MR;
        NrtV16 b0 = b[0], b1 = b[1];
        for (int i = 0; i < NRT_GEMM_MR; i++) {
            acc[i][0] += a[i] * b0;
            acc[i][1] += a[i] * b1;
        }
    }
    if (mr == NRT_GEMM_MR && nr == NRT_GEMM_NR) {
        for (int i = 0; i < NRT_GEMM_MR; i++)
            for (int j = 0; j < NV; j++) {
                float *cij = c + i * ldc + j * 16;
                *(NrtV16u *)cij = finish_vec(acc[i][j], cij, i, j, t);
            }
        return;
    }
    NrtV16 tmp[NRT_GEMM_MR][NV];
    for (int i = 0; i < NRT_GEMM_MR; i++)
        for (int j = 0; j < NV; j++)
            tmp[i][j] = acc[i][j];
    nrt_gemm_store_edge((const float *)tmp, c, ldc, mr, nr, t);
}
