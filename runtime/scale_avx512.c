/* scale_avx512.c - dst[i] = src[i] * s for n floats, AVX-512: the weight
 * scaling of the batchnorm fold (batchnorm.c), which runs on every predict
 * call (5% of resnet8's batch-1 latency as SSE code).
 *
 * One float multiply per element, rounded once in any vector width, so the
 * bits are those of the portable loop (no contraction: nothing to fuse).
 * Built with the AVX-512 flags (runtime/meson.build); called only when the
 * CPU has avx512f. Contract: isa_kernels.h.
 */
#include "isa_kernels.h"

#include <immintrin.h>

void nrt_scale_avx512(const float *src, int64_t n, float s, float *dst)
{
    __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 64; j += 16)
            _mm512_storeu_ps(dst + i + j, _mm512_mul_ps(_mm512_loadu_ps(src + i + j), vs));
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), vs));
    }
}
