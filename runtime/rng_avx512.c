/* rng_avx512.c - Philox4x32-10 on 16 counters at once, for rng.c's
 * dropout-mask fill.
 *
 * Built with the AVX-512 flags of runtime/meson.build and called only when
 * the CPU has avx512f (rng.c checks nrt_sgemm_isa()). Computes exactly the
 * words rng.c's scalar nrt_philox4x32_10 computes (the same 32 x 32 -> 64
 * products, xors and key schedule, lane by lane), so the masks are bit for
 * bit the scalar ones; only the speed differs: the scalar fill spent about
 * 10 ns per element (a quarter of an mlp training step), this one about 1.
 */
#include <immintrin.h>

#include "isa_kernels.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* 32 x 32 -> 64 products of every lane: the high halves, lo gets the low ones. */
static __m512i mul_hilo(__m512i a, __m512i m, __m512i *lo)
{
    __m512i even = _mm512_mul_epu32(a, m);
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

/* Lane l: counter (c0 + l, c1, c2, c3) under key; out[j] = word j. */
static void philox16(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, const uint32_t key[2],
                     __m512i out[4])
{
    __m512i x0 = _mm512_add_epi32(_mm512_set1_epi32((int)c0),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                    13, 14, 15));
    __m512i x1 = _mm512_set1_epi32((int)c1), x2 = _mm512_set1_epi32((int)c2);
    __m512i x3 = _mm512_set1_epi32((int)c3);
    __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        __m512i lo0, lo1;
        __m512i hi0 = mul_hilo(x0, m0, &lo0), hi1 = mul_hilo(x2, m1, &lo1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32((int)k1));
        x1 = lo1;
        x3 = lo0;
        x0 = n0;
        x2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = x0;
    out[1] = x1;
    out[2] = x2;
    out[3] = x3;
}

void nrt_rng_mask16_avx512(const uint32_t key[2], const uint32_t ctr[4], uint64_t below,
                           float scale, float *out)
{
    __m512i w[4];
    philox16(ctr[0], ctr[1], ctr[2], ctr[3], key, w);
    __m512 v[4], s = _mm512_set1_ps(scale);
    for (int j = 0; j < 4; j++) {
        __mmask16 keep = below > 0xFFFFFFFFu ? (__mmask16)0xFFFF
                         : _mm512_cmplt_epu32_mask(w[j], _mm512_set1_epi32((int)(uint32_t)below));
        v[j] = _mm512_maskz_mov_ps(keep, s);
    }
    /* v[j] lane l is element 4 l + j: interleave into out[4 l + j]. */
    __m512 ab_lo = _mm512_unpacklo_ps(v[0], v[1]), ab_hi = _mm512_unpackhi_ps(v[0], v[1]);
    __m512 cd_lo = _mm512_unpacklo_ps(v[2], v[3]), cd_hi = _mm512_unpackhi_ps(v[2], v[3]);
    __m512 r[4];   /* r[k], 128-bit chunk q: block 4 q + k */
    r[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
    r[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
    r[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
    r[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
    /* 4 x 4 transpose of the 128-bit chunks: out vector q = blocks 4q .. 4q+3. */
    __m512 t0 = _mm512_shuffle_f32x4(r[0], r[1], 0x44), t1 = _mm512_shuffle_f32x4(r[0], r[1], 0xee);
    __m512 t2 = _mm512_shuffle_f32x4(r[2], r[3], 0x44), t3 = _mm512_shuffle_f32x4(r[2], r[3], 0xee);
    _mm512_storeu_ps(out, _mm512_shuffle_f32x4(t0, t2, 0x88));
    _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(t0, t2, 0xdd));
    _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(t1, t3, 0x88));
    _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(t1, t3, 0xdd));
}
