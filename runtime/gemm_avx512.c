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
#include "gemm_finish_avx512.h"

enum { NV = NRT_GEMM_NR / 16 };

void nrt_gemm_kernel_avx512(int64_t kc, const float *ap, const float *bp, int64_t ldbp,
                            float *c, int64_t ldc, int mr, int nr,
                            const NrtGemmTile *t)
{
    NrtV16 acc[NRT_GEMM_MR][NV];
    for (int i = 0; i < NRT_GEMM_MR; i++)
        for (int j = 0; j < NV; j++)
            acc[i][j] = (NrtV16){0};
    /* C rows are often 4 KB apart (same L1 set): fetch them early. */
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(c + i * ldc, 1, 3);
        __builtin_prefetch(c + i * ldc + 16, 1, 3);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const NrtV16u *b = (const NrtV16u *)(bp + p * ldbp);
        const float *a = ap + p * NRT_GEMM_MR;
        NrtV16 b0 = b[0], b1 = b[1];
        __builtin_prefetch(a + 8 * NRT_GEMM_MR, 0, 3);
        for (int i = 0; i < NRT_GEMM_MR; i++) {
            acc[i][0] += a[i] * b0;
            acc[i][1] += a[i] * b1;
        }
    }
    /* Edges are vector stores too: masked lanes, rows past mr skipped. */
    __mmask16 m[NV];
    for (int j = 0; j < NV; j++) {
        int left = nr - j * 16;
        m[j] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    for (int i = 0; i < NRT_GEMM_MR; i++)
        if (i < mr)
            for (int j = 0; j < NV; j++)
                if (m[j])
                    nrt_finish_vec(acc[i][j], c + i * ldc + j * 16, i, j, t, m[j]);
}

/* ---- transposing packers (edge panels zero-padded) ------------------------ */

/* In-register 8x8 transpose: r[i][j] -> r[j][i]. */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* In-register 16x16 transpose: r[i][j] -> r[j][i]. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c], 128-bit lane L: column 4L + c of rows 4g .. 4g+3 */
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 v01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 w01 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v23 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
        __m512 w23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
        r[c] = _mm512_shuffle_f32x4(v01, w01, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v01, w01, 0xdd);
        r[8 + c] = _mm512_shuffle_f32x4(v23, w23, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v23, w23, 0xdd);
    }
}

/* dst[p][r] = src[r * ld + p] for r < mr (<= MR = 8), p < kc, rows past mr
 * zero: one A panel of a row-major A, 8 x 8 blocks at a time. */
void nrt_gemm_pack_rows8_avx512(const float *src, int64_t ld, int mr, int64_t kc, float *dst)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++)
            r[i] = i < mr ? _mm256_loadu_ps(src + i * ld + p) : _mm256_setzero_ps();
        transpose8(r);
        for (int q = 0; q < 8; q++)
            _mm256_storeu_ps(dst + (p + q) * 8, r[q]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < 8; i++)
            dst[p * 8 + i] = i < mr ? src[i * ld + p] : 0.0f;
}

/* dst[p][j] = rows[j][p] for j < nr (<= NR = 32), p < kc, columns past
 * nr zero: one B panel whose 32 source rows lie anywhere, 16 x 16 blocks
 * at a time. dst is 64-byte aligned. */
static void pack_row_ptrs32(const float *const rows[NRT_GEMM_NR], int nr, int64_t kc, float *dst)
{
    int64_t p = 0;
    for (; p + 16 <= kc; p += 16)
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = h * 16 + i < nr ? _mm512_loadu_ps(rows[h * 16 + i] + p) : _mm512_setzero_ps();
            transpose16(r);
            for (int q = 0; q < 16; q++)
                _mm512_store_ps(dst + (p + q) * NRT_GEMM_NR + h * 16, r[q]);
        }
    for (; p < kc; p++)
        for (int j = 0; j < NRT_GEMM_NR; j++)
            dst[p * NRT_GEMM_NR + j] = j < nr ? rows[j][p] : 0.0f;
}

/* One B panel of a transposed B: dst[p][j] = src[j * ld + p]. */
void nrt_gemm_pack_rows32_avx512(const float *src, int64_t ld, int nr, int64_t kc, float *dst)
{
    const float *rows[NRT_GEMM_NR];
    for (int j = 0; j < nr; j++)
        rows[j] = src + j * ld;
    pack_row_ptrs32(rows, nr, kc, dst);
}

/* The B panel of an implicit GEMM whose rows lie anywhere: dst[p][j] =
 * base[off[j] + p] (conv.c: the taps of a padded image, read at every
 * position). */
void nrt_gemm_pack_offsets32_avx512(const float *base, const int32_t *off, int nr, int64_t kc,
                                    float *dst)
{
    const float *rows[NRT_GEMM_NR];
    for (int j = 0; j < nr; j++)
        rows[j] = base + off[j];
    pack_row_ptrs32(rows, nr, kc, dst);
}

/* ---- small M without packing (gemm_kernel.h: NrtGemv) --------------------- */

/* Bit-for-bit what the packed path computes for the same rows: every
 * element accumulates fma(a[p], b[p], acc) in increasing p within K slices
 * of NRT_GEMM_KC, each slice finished by nrt_finish_vec with the same first /
 * last flags. Generated models rely on it: predict() of one sample equals
 * that sample's outputs in a full batch. */

static NrtGemmTile gemv_tile(const NrtGemv *g, int64_t i, int64_t j, bool first, bool last)
{
    NrtGemmTile t = { .alpha = g->alpha, .beta = g->beta, .first = first, .last = last,
                      .bias_row = NULL, .bias_col = NULL, .act = NRT_ACT_NONE };
    if (g->ep) {
        if (g->ep->bias_kind == NRT_BIAS_ROW && g->ep->bias)
            t.bias_row = g->ep->bias + i;
        if (g->ep->bias_kind == NRT_BIAS_COL && g->ep->bias)
            t.bias_col = g->ep->bias + j;
        t.act = g->ep->act;
    }
    return t;
}

static __mmask16 first_lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* The 16 x 16 block of B at rows j.., columns p.. transposed, as
 * transpose16 of its rows gives it, with a quarter fewer port-5 shuffles:
 * the first stage is done by the loads (rows i and i + 8 of eight columns
 * side by side, one 256-bit load inserted into each half), then an 8 x 8
 * transpose of both 256-bit halves at once. r[q] = column p + q, rows
 * j .. j + 15. */
static inline __attribute__((always_inline)) void load_transposed16(const float *b, int64_t ldb,
                                                                   __m512 r[16])
{
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int h = 0; h < 2; h++) {   /* columns p + 8h .. p + 8h + 7 */
        __m512 t[8], u[8], v[8];
        for (int i = 0; i < 8; i++)
            t[i] = _mm512_castpd_ps(_mm512_insertf64x4(   /* avx512f's insert; no DQ needed */
                _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(b + i * ldb + 8 * h))),
                _mm256_castps_pd(_mm256_loadu_ps(b + (i + 8) * ldb + 8 * h)), 1));
        for (int i = 0; i < 8; i += 2) {
            u[i] = _mm512_unpacklo_ps(t[i], t[i + 1]);
            u[i + 1] = _mm512_unpackhi_ps(t[i], t[i + 1]);
        }
        for (int g = 0; g < 8; g += 4) {
            v[g] = _mm512_shuffle_ps(u[g], u[g + 2], 0x44);
            v[g + 1] = _mm512_shuffle_ps(u[g], u[g + 2], 0xee);
            v[g + 2] = _mm512_shuffle_ps(u[g + 1], u[g + 3], 0x44);
            v[g + 3] = _mm512_shuffle_ps(u[g + 1], u[g + 3], 0xee);
        }
        for (int c = 0; c < 4; c++) {   /* 128-bit lanes: (v[c], v[4+c]) low and high pairs */
            r[8 * h + c] = _mm512_permutex2var_ps(v[c], lo, v[4 + c]);
            r[8 * h + 4 + c] = _mm512_permutex2var_ps(v[c], hi, v[4 + c]);
        }
    }
}

/* op(B) = B^T (B is N x K): 16 columns of C at a time; 16 x 16 blocks of
 * B are transposed in registers (what packing does, without the memory
 * round trip) and fed to m broadcast rows of A. */
static void gemv_dot(const NrtGemv *g, int64_t j0, int64_t j1)
{
    for (int64_t j = j0; j < j1; j += 16) {
        int nj = j1 - j < 16 ? (int)(j1 - j) : 16;
        __mmask16 mj = first_lanes(nj);
        for (int64_t p0 = 0; p0 < g->k; p0 += NRT_GEMM_KC) {
            int64_t kc = g->k - p0 < NRT_GEMM_KC ? g->k - p0 : NRT_GEMM_KC;
            NrtV16 acc[NRT_GEMV_MAX_M] = {{0}, {0}, {0}, {0}};
            for (int64_t p = p0; p < p0 + kc; p += 16) {
                int np = p0 + kc - p < 16 ? (int)(p0 + kc - p) : 16;
                __mmask16 mp = first_lanes(np);
                __m512 r[16];   /* r[q] = B^T row p + q, columns j .. j+15 */
                if (np == 16 && nj == 16) {
                    load_transposed16(g->b + j * g->ldb + p, g->ldb, r);
                } else {
                    for (int q = 0; q < 16; q++)
                        r[q] = q < nj ? _mm512_maskz_loadu_ps(mp, g->b + (j + q) * g->ldb + p)
                                      : _mm512_setzero_ps();
                    transpose16(r);
                }
                if (g->m == 1 && np == 16) {   /* batch 1: one chain in a register */
                    NrtV16 c = acc[0];
                    for (int q = 0; q < 16; q++)
                        c += g->a[p + q] * (NrtV16)r[q];
                    acc[0] = c;
                    continue;
                }
                for (int q = 0; q < np; q++)
                    for (int64_t i = 0; i < g->m; i++)
                        acc[i] += g->a[i * g->lda + p + q] * (NrtV16)r[q];
            }
            for (int64_t i = 0; i < g->m; i++) {
                NrtGemmTile t = gemv_tile(g, i, j, p0 == 0, p0 + kc == g->k);
                nrt_finish_vec(acc[i], g->c + i * g->ldc + j, 0, 0, &t, mj);
            }
        }
    }
}

/* op(B) = B (K x N): 64 columns of C at a time, rows of B scaled by A. */
static void gemv_rows(const NrtGemv *g, int64_t j0, int64_t j1)
{
    for (int64_t j = j0; j < j1; j += 64) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++)
            m[q] = first_lanes(j1 - j - 16 * q);
        for (int64_t i = 0; i < g->m; i++) {
            const float *a = g->a + i * g->lda;
            for (int64_t p0 = 0; p0 < g->k; p0 += NRT_GEMM_KC) {
                int64_t p1 = g->k - p0 < NRT_GEMM_KC ? g->k : p0 + NRT_GEMM_KC;
                NrtV16 acc[4] = {{0}, {0}, {0}, {0}};
                for (int64_t p = p0; p < p1; p++) {
                    const float *brow = g->b + p * g->ldb + j;
                    for (int q = 0; q < 4; q++)
                        acc[q] += a[p] * (NrtV16)_mm512_maskz_loadu_ps(m[q], brow + 16 * q);
                }
                NrtGemmTile t = gemv_tile(g, i, j, p0 == 0, p1 == g->k);
                for (int q = 0; q < 4; q++)
                    if (m[q])
                        nrt_finish_vec(acc[q], g->c + i * g->ldc + j + 16 * q, 0, q, &t, m[q]);
            }
        }
    }
}

void nrt_gemv_avx512(const NrtGemv *g, int64_t j0, int64_t j1)
{
    if (g->tb)
        gemv_dot(g, j0, j1);
    else
        gemv_rows(g, j0, j1);
}
