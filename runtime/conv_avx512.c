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

/* How to build 16 output columns ox0..ox0+15 of every row of one tap
 * (ci, ki, kj): which lanes are inside the image (out), where lane 0 reads
 * (base, relative to the input row), and for stride 2 which lanes of the
 * two source vectors lie inside the input row (ma, mb). All of it is the
 * same for every output row of the tap, so it is computed once. */
typedef struct RowPlan {
    __mmask16 out, ma, mb;
    int64_t base;
} RowPlan;

static RowPlan row_plan(int64_t w, int64_t ox0, int64_t lo, int64_t hi, int64_t st, int64_t off)
{
    RowPlan r;
    r.out = lanes(lo - ox0, hi - ox0);
    r.base = ox0 * st + off;
    r.ma = lanes(-r.base, w - r.base);
    r.mb = lanes(-r.base - 16, w - r.base - 16);
    return r;
}

/* in[ox*st + off] for the plan's lanes, else 0 (st is 1 or 2; `in` is the
 * input row). The address arithmetic goes through uintptr_t because base
 * may point before the row: masked-off lanes are never read. */
static __m512 row_vec(const float *in, const RowPlan *r, int64_t st)
{
    const float *src = (const float *)((uintptr_t)in + (uintptr_t)(r->base * 4));
    if (st == 1)
        return _mm512_maskz_loadu_ps(r->out, src);
    __m512 a = _mm512_maskz_loadu_ps(r->ma, src);
    __m512 b = _mm512_maskz_loadu_ps(r->mb, (const float *)((uintptr_t)src + 64));
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_maskz_permutex2var_ps(r->out, a, even, b);
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
                RowPlan r0 = row_plan(s->w, 0, lo, hi, st, off);
                RowPlan r1 = row_plan(s->w, 16, lo, hi, st, off);
                const float *plane = x + ci * s->h * s->w;
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * st - s->pad + ki;
                    float *out = row + oy * ow;
                    bool inside = iy >= 0 && iy < s->h;
                    const float *in = plane + (inside ? iy : 0) * s->w;
                    __m512 v0 = inside ? row_vec(in, &r0, st) : _mm512_setzero_ps();
                    _mm512_mask_storeu_ps(out, m0, v0);
                    if (m1) {
                        __m512 v1 = inside ? row_vec(in, &r1, st) : _mm512_setzero_ps();
                        _mm512_mask_storeu_ps(out + 16, m1, v1);
                    }
                }
            }
    return true;
}
