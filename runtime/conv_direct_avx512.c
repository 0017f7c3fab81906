/* conv_direct_avx512.c - direct (implicit-GEMM) convolution of one sample,
 * AVX-512: the SGEMM micro-kernel with its B vectors loaded straight from a
 * zero-padded copy of the image instead of from an im2col column matrix.
 *
 * The padded copy (nrt_conv_pad_avx512) splits each channel into
 * stride x stride phase planes of wq columns (phase (a, b) holds padded
 * rows a, a + st, ... and columns b, b + st, ...). Output (oy, ox) is then
 * the padded position q = oy*wq + ox, and tap (ci, ki, kj) reads the copy
 * at q + off[tap] for every position: 16 consecutive outputs are one
 * unaligned vector load. Positions with ox >= ow are computed and thrown
 * away (2*pad/(w + 2*pad) of the lanes at stride 1).
 *
 * Bits: for every valid position and tap the loaded value is exactly the
 * im2col entry (zero in the padding), the weights are packed as gemm.c
 * packs A, each 8 x 32 tile accumulates fma(a, b, acc) over the taps in
 * increasing order within K slices of NRT_GEMM_KC, and each slice ends in
 * the same epilogue (gemm_finish_avx512.h) applied to the valid lanes
 * compressed to y's contiguous layout. So y is bitwise what im2col +
 * nrt_sgemm_ex computes (tests/unit/test_conv.c checks it).
 *
 * Built with the AVX-512 flags (runtime/meson.build); conv.c calls it only
 * when the CPU has avx512f. Contract: isa_kernels.h.
 */
#include "isa_kernels.h"

#include <string.h>

#include "gemm_finish_avx512.h"

enum { MR = NRT_GEMM_MR, KC = NRT_GEMM_KC, QT = NRT_GEMM_NR };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static __mmask16 first_lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* ---- the padded, phase-split copy ------------------------------------- */

/* dst[j] = src[j] for j < n: 16-lane masked moves (rows are short; a
 * memcpy call per row cost more than the copy). */
static void copy_row(float *dst, const float *src, int64_t n)
{
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
    }
}

/* Stride 2: the even columns of src (n of them: src[0], src[2], ...) to
 * d0, the odd ones (n_odd) to d1; 32 source floats per step. */
static void split_row2(float *d0, float *d1, const float *src, int64_t n, int64_t n_odd)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    int64_t w = n + n_odd;   /* source floats */
    for (int64_t j = 0; 2 * j < w; j += 16) {
        __m512 a = _mm512_maskz_loadu_ps(first_lanes(w - 2 * j), src + 2 * j);
        __m512 b = _mm512_maskz_loadu_ps(first_lanes(w - 2 * j - 16), src + 2 * j + 16);
        _mm512_mask_storeu_ps(d0 + j, first_lanes(n - j), _mm512_permutex2var_ps(a, even, b));
        _mm512_mask_storeu_ps(d1 + j, first_lanes(n_odd - j), _mm512_permutex2var_ps(a, odd, b));
    }
}

/* Any stride: dst[j] = src[j * st] for j < n. */
static void copy_strided(float *dst, const float *src, int64_t n, int64_t st)
{
    for (int64_t j = 0; j < n; j++)
        dst[j] = src[j * st];
}

/* Padded row r of phase row a = r % st: the image row's columns ix go to
 * phase b = (ix + pad) % st, column (ix + pad) / st. */
static float *phase_at(const NrtConvShape *s, int64_t hq, int64_t wq, float *xp, int64_t ci,
                       int64_t r, int64_t ix)
{
    int64_t st = s->stride, c = ix + s->pad;
    return xp + ((ci * st + r % st) * st + c % st) * hq * wq + (r / st) * wq + c / st;
}

void nrt_conv_pad_avx512(const NrtConvShape *s, int64_t hq, int64_t wq, const float *x,
                         float *xp)
{
    int64_t st = s->stride, w = s->w, pad = s->pad, plane = hq * wq;
    if (st == 1) {   /* no divisions per row: they cost more than the copy */
        for (int64_t ci = 0; ci < s->c; ci++) {
            float *d = xp + ci * plane + pad * wq + pad;
            for (int64_t iy = 0; iy < s->h; iy++)
                copy_row(d + iy * wq, x + (ci * s->h + iy) * w, w);
        }
        return;
    }
    for (int64_t ci = 0; ci < s->c; ci++)
        for (int64_t iy = 0; iy < s->h; iy++) {
            int64_t r = iy + s->pad;
            const float *src = x + (ci * s->h + iy) * w;
            if (st == 2) {   /* ix = 0 goes to phase pad % 2, ix = 1 to the other */
                float *row = xp + (ci * 4 + (r & 1) * 2) * plane + (r >> 1) * wq;
                float *d0 = row + (pad & 1) * plane + (pad >> 1);
                float *d1 = row + ((pad + 1) & 1) * plane + ((pad + 1) >> 1);
                split_row2(d0, d1, src, (w + 1) / 2, w / 2);
            } else {
                for (int64_t ix0 = 0; ix0 < st && ix0 < w; ix0++)
                    copy_strided(phase_at(s, hq, wq, xp, ci, r, ix0), src + ix0,
                                 (w - ix0 + st - 1) / st, st);
            }
        }
}

/* ---- the tile ---------------------------------------------------------- */

/* Which lanes of the 32 positions q0 .. q0+31 are real outputs, where the
 * first real one of each 16-lane half goes in y, and how many there are. */
typedef struct TileLanes {
    __mmask16 m[2];
    int64_t pos[2];
    int cnt[2];
} TileLanes;

static TileLanes tile_lanes(const NrtDirectConv *d, int64_t q0)
{
    TileLanes tl = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
    uint32_t bits = 0;   /* lane l valid: q0 + l < q and its column < ow; by row segments */
    int64_t end = d->q - q0 < QT ? d->q - q0 : QT;
    for (int64_t l = 0, ox = q0 % d->wq; l < end; l += d->wq - ox, ox = 0) {
        int64_t valid = d->ow - ox < end - l ? d->ow - ox : end - l;
        if (valid > 0)
            bits |= (uint32_t)(((uint64_t)1 << valid) - 1) << l;
    }
    for (int j = 0; j < 2; j++) {
        tl.m[j] = (__mmask16)(bits >> (16 * j));
        tl.cnt[j] = __builtin_popcount(tl.m[j]);
        if (tl.cnt[j]) {
            int64_t q = q0 + 16 * j + __builtin_ctz(tl.m[j]);
            tl.pos[j] = q / d->wq * d->ow + q % d->wq;
        }
    }
    return tl;
}

/* One 8 x 32 tile over the K slice [p0, p0 + kc): rows i0 .. i0+mr-1 of y,
 * positions q0 .. q0+31 (xb = xp + q0). */
static void tile(int64_t kc, const float *ap, const float *xb, const int32_t *off, float *y,
                 int64_t ldy, int mr, const TileLanes *tl, const NrtGemmTile *t)
{
    NrtV16 acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = (NrtV16){0};
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const NrtV16u *b = (const NrtV16u *)(xb + off[p]);
        const float *a = ap + p * MR;
        NrtV16 b0 = b[0], b1 = b[1];
        for (int i = 0; i < MR; i++) {
            acc[i][0] += a[i] * b0;
            acc[i][1] += a[i] * b1;
        }
    }
    for (int i = 0; i < MR; i++)
        if (i < mr)
            for (int j = 0; j < 2; j++)
                if (tl->cnt[j]) {
                    NrtV16 v = (NrtV16)_mm512_maskz_compress_ps(tl->m[j], (__m512)acc[i][j]);
                    nrt_finish_vec(v, y + i * ldy + tl->pos[j], i, 0, t, first_lanes(tl->cnt[j]));
                }
}

/* Units u0 .. u1-1 of the output: unit u is the 32-position tile u / npan
 * times the 8-row panel u % npan. Each (tile, panel) is computed alone and
 * the same way whatever the range, so a split into ranges keeps the bits. */
void nrt_conv_direct_units_avx512(const NrtDirectConv *d, const float *xp, float *y, float beta,
                                  const NrtEpilogue *ep, int64_t u0, int64_t u1)
{
    int64_t mpad = (d->f + MR - 1) / MR * MR, npan = mpad / MR;
    int64_t qt = -1;
    TileLanes tl = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
    for (int64_t u = u0; u < u1; u++) {
        int64_t q0 = u / npan * QT, i0 = u % npan * MR;
        if (q0 != qt) {
            tl = tile_lanes(d, q0);
            qt = q0;
        }
        int mr = (int)min64(MR, d->f - i0);
        for (int64_t p0 = 0; p0 < d->kk; p0 += KC) {
            int64_t kc = min64(KC, d->kk - p0);
            NrtGemmTile t = { .alpha = 1.0f, .beta = beta, .first = p0 == 0,
                              .last = p0 + kc == d->kk, .bias_row = NULL,
                              .bias_col = NULL, .act = NRT_ACT_NONE };
            if (ep) {
                if (ep->bias_kind == NRT_BIAS_ROW && ep->bias)
                    t.bias_row = ep->bias + i0;
                t.act = ep->act;
            }
            tile(kc, d->ap + p0 * mpad + i0 * kc, xp + q0, d->off + p0, y + i0 * d->p,
                 d->p, mr, &tl, &t);
        }
    }
}

int64_t nrt_conv_direct_units(const NrtDirectConv *d)
{
    return (d->q + QT - 1) / QT * ((d->f + MR - 1) / MR);
}

void nrt_conv_direct_avx512(const NrtDirectConv *d, const float *xp, float *y, float beta,
                            const NrtEpilogue *ep)
{
    nrt_conv_direct_units_avx512(d, xp, y, beta, ep, 0, nrt_conv_direct_units(d));
}

/* ---- a batchnorm folded into packed weights ------------------------------ */

void nrt_scale_panel8_avx512(float *ap, int64_t kc, const float s8[8])
{
    __m512 pat = _mm512_castpd_ps(_mm512_insertf64x4(   /* s8 twice: avx512f only, no DQ */
        _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(s8))),
        _mm256_castps_pd(_mm256_loadu_ps(s8)), 1));
    int64_t n = kc * MR, i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(ap + i, _mm512_mul_ps(_mm512_loadu_ps(ap + i), pat));
    if (i < n) {   /* n is a multiple of 8 */
        __mmask16 m = first_lanes(n - i);
        _mm512_mask_storeu_ps(ap + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, ap + i), pat));
    }
}

/* ---- stride-2 backward data: the four phases back into dx ----------------- */

/* dx (c, h, w) (+)= the phase outputs yt[2a + b] (c, u, v): pixel (iy, ix)
 * comes from phase ((iy + pad) % 2, (ix + pad) % 2) at ((iy + pad) / 2,
 * (ix + pad) / 2); a NULL phase has no taps (zeros). Per dx row the two
 * phases' rows are interleaved 16 + 16 floats at a time. */
void nrt_conv_unphase2_avx512(const float *const yt[4], int64_t c, int64_t u, int64_t v,
                              int64_t h, int64_t w, int64_t pad, float *dx, bool accumulate)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                         15, 31);
    int64_t be = pad & 1, ve = pad >> 1, vo = (pad + 1) >> 1;   /* even ix: phase be, v = j + ve */
    int64_t ne = (w + 1) / 2, no = w / 2;
    for (int64_t ci = 0; ci < c; ci++)
        for (int64_t iy = 0; iy < h; iy++) {
            int64_t r = iy + pad, a = r & 1;
            const float *pe = yt[2 * a + be], *po = yt[2 * a + 1 - be];
            float *out = dx + (ci * h + iy) * w;
            for (int64_t j = 0; j < ne; j += 16) {
                __m512 e = pe ? _mm512_maskz_loadu_ps(first_lanes(ne - j),
                                                      pe + (ci * u + (r >> 1)) * v + ve + j)
                              : _mm512_setzero_ps();
                __m512 o = po ? _mm512_maskz_loadu_ps(first_lanes(no - j),
                                                      po + (ci * u + (r >> 1)) * v + vo + j)
                              : _mm512_setzero_ps();
                for (int half = 0; half < 2; half++) {
                    int64_t x0 = 2 * j + 16 * half;
                    __mmask16 m = first_lanes(w - x0);
                    if (!m)
                        break;
                    __m512 val = _mm512_permutex2var_ps(e, half ? hi : lo, o);
                    if (accumulate)
                        val = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + x0), val);
                    _mm512_mask_storeu_ps(out + x0, m, val);
                }
            }
        }
}
