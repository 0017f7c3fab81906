/* conv_avx512.c - AVX-512 im2col for the short rows of small images.
 *
 * Built like gemm_avx512.c (own flags, x86-64 only) and called by conv.c
 * only when the CPU has avx512f. Contract (isa_kernels.h): the same col as
 * conv.c's portable im2col, for output rows of at most 32 columns and
 * strides 1 and 2. Each output row is one or two masked vector moves
 * instead of a loop: masked-off lanes are never read, so a window that
 * starts before or ends after an input row touches nothing outside it.
 * Measured: im2col was 28% of a resnet8 training step with the scalar
 * rows.
 */
#include "isa_kernels.h"

#include <immintrin.h>

static __mmask16 lanes(int64_t lo, int64_t hi)   /* bits [lo, hi) of 0..15, clipped */
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    return hi <= lo ? 0 : (__mmask16)(((1u << (hi - lo)) - 1) << lo);
}

/* 16 output columns ox0..ox0+15 of one row: in[ox*st + off] where ox is in
 * [lo, hi), else 0 (st is 1 or 2; `in` is the input row of width w). */
static __m512 row_vec(const float *in, int64_t w, int64_t ox0, int64_t lo, int64_t hi,
                      int64_t st, int64_t off)
{
    __mmask16 out = lanes(lo - ox0, hi - ox0);
    int64_t base = ox0 * st + off;   /* source of lane 0 */
    if (st == 1)
        return _mm512_maskz_loadu_ps(out, (const float *)((uintptr_t)in + (uintptr_t)(base * 4)));
    __mmask16 ma = lanes(-base, w - base), mb = lanes(-base - 16, w - base - 16);
    __m512 a = _mm512_maskz_loadu_ps(ma, (const float *)((uintptr_t)in + (uintptr_t)(base * 4)));
    __m512 b = _mm512_maskz_loadu_ps(mb, (const float *)((uintptr_t)in +
                                                         (uintptr_t)((base + 16) * 4)));
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_maskz_permutex2var_ps(out, a, even, b);
}

bool nrt_im2col_avx512(const NrtConvShape *s, int64_t oh, int64_t ow, const float *x,
                       float *col)
{
    int64_t k = s->k, st = s->stride, p = oh * ow;
    if (ow > 32 || (st != 1 && st != 2))
        return false;
    __mmask16 m0 = lanes(0, ow), m1 = lanes(0, ow - 16);
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t ki = 0; ki < k; ki++)
            for (int64_t kj = 0; kj < k; kj++) {
                float *row = col + ((ci * k + ki) * k + kj) * p;
                int64_t off = kj - s->pad;
                /* ox*st + off in [0, w)  <=>  ox in [lo, hi) */
                int64_t lo = off >= 0 ? 0 : (-off + st - 1) / st;
                int64_t hi = s->w - off <= 0 ? 0 : (s->w - off + st - 1) / st;
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * st - s->pad + ki;
                    float *out = row + oy * ow;
                    if (iy < 0 || iy >= s->h) {
                        _mm512_mask_storeu_ps(out, m0, _mm512_setzero_ps());
                        if (m1)
                            _mm512_mask_storeu_ps(out + 16, m1, _mm512_setzero_ps());
                        continue;
                    }
                    const float *in = x + (ci * s->h + iy) * s->w;
                    _mm512_mask_storeu_ps(out, m0, row_vec(in, s->w, 0, lo, hi, st, off));
                    if (m1)
                        _mm512_mask_storeu_ps(out + 16, m1, row_vec(in, s->w, 16, lo, hi, st, off));
                }
            }
    return true;
}
