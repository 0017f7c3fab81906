/* pool_avx512.c - AVX-512 2x2 stride-2 max pooling, one output row of up
 * to 16 columns per step.
 *
 * Built like gemm_avx512.c (own flags, x86-64 only); pool.c calls it only
 * when the CPU has avx512f. Contract (isa_kernels.h): the same y and
 * argmax as pool.c's scalar 2x2 path, whose rule is plane_max's: windows
 * are visited (0,0), (0,1), (1,0), (1,1), a value replaces the best when
 * it is greater or NaN. Here the even and odd columns of the two input
 * rows are separated by permutes and the rule is applied lane-wise with
 * mask compares, without the branches that made the scalar loop 9% of a
 * lenet_bn training step.
 */
#include "isa_kernels.h"

#include <immintrin.h>

static void take_if(__m512 *best, __m512i *arg, __m512 v, __m512i at)
{
    __mmask16 take = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) |
                     _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    *best = _mm512_mask_mov_ps(*best, take, v);
    *arg = _mm512_mask_mov_epi32(*arg, take, at);
}

bool nrt_maxpool2_avx512(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                         const float *x, float *y, int32_t *argmax)
{
    if (ow > 16 || w > 32 || 2 * ow > w || 2 * oh > h)
        return false;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __mmask16 m_lo = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1);
    __mmask16 m_hi = (__mmask16)(w <= 16 ? 0 : (1u << (w - 16)) - 1);
    __mmask16 m_out = (__mmask16)((1u << ow) - 1);
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            __m512 a0 = _mm512_maskz_loadu_ps(m_lo, r0), a1 = _mm512_maskz_loadu_ps(m_hi, r0 + 16);
            __m512 b0 = _mm512_maskz_loadu_ps(m_lo, r1), b1 = _mm512_maskz_loadu_ps(m_hi, r1 + 16);
            __m512i col = _mm512_add_epi32(even, _mm512_set1_epi32((int32_t)(2 * oy * w)));
            __m512i row1 = _mm512_set1_epi32((int32_t)w), one = _mm512_set1_epi32(1);
            __m512 best = _mm512_permutex2var_ps(a0, even, a1);
            __m512i arg = col;
            take_if(&best, &arg, _mm512_permutex2var_ps(a0, odd, a1), _mm512_add_epi32(col, one));
            take_if(&best, &arg, _mm512_permutex2var_ps(b0, even, b1),
                    _mm512_add_epi32(col, row1));
            take_if(&best, &arg, _mm512_permutex2var_ps(b0, odd, b1),
                    _mm512_add_epi32(_mm512_add_epi32(col, row1), one));
            int64_t o = (p * oh + oy) * ow;
            _mm512_mask_storeu_ps(y + o, m_out, best);
            if (argmax)
                _mm512_mask_storeu_epi32(argmax + o, m_out, arg);
        }
    }
    return true;
}
