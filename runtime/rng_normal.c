/* rng_normal.c - the fast float normal draws of nrt_rng_fill_normal and
 * nrt_rng_normalf: Philox4x32-10 blocks, then Box-Muller in float with our
 * own logarithm, sine and cosine, as plain loops over up to
 * NRT_NORMAL_BLOCKS blocks that gcc and clang vectorize.
 *
 * Input: the block counter (netrt.h layout, DOMAIN_WORDS) minus the block
 * index, the first block b0 and a count. Output: z[4k + j] = mean + std *
 * Z_j of block b0 + k, with Z_0, Z_1 = r cos t, r sin t from words (0, 1)
 * and Z_2, Z_3 from words (2, 3) -- the words and pairing of the double
 * nrt_rng_normal, which this approximates to about 1e-6 (tests/unit
 * test_rng.c measures it):
 *   u = (w0 + 1/2) 2^-32 in (0, 1), r = sqrt(-2 ln u), t = 2 pi w1 2^-32.
 * ln u: Cephes logf's polynomial on m - 1, m in [sqrt(1/2), sqrt(2)); for
 * u >= sqrt(1/2) the argument is -(1 - u), computed from ~w0 exactly, so
 * r keeps its relative precision near 0. t: the quadrant is the top two
 * bits of w1 + 2^29, the rest a signed angle of at most pi/4 for Cephes
 * sinf/cosf's polynomials.
 *
 * Same bits everywhere: rng.c builds this file twice (portable x86-64 and
 * AVX-512, picked at run time) with -ffp-contract=off -fno-math-errno, and
 * it uses only +, -, *, sqrt and integer/float conversions, all rounded
 * exactly by IEEE 754. Vector lanes, the scalar remainder loop, either ISA
 * and either compiler therefore give the same float for a block, so a
 * value never depends on how a fill is chunked or threaded.
 */
#include "rng_normal.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* ~0.70710678 * 2^32: from here on u >= sqrt(1/2) */
#define U_HIGH 0xB504F334u

/* The words of nb blocks, the pairs (w0, w1), (w2, w3) of block k at
 * pair indices 2k, 2k + 1 of wa (log side) and wb (angle side). */
static void philox_blocks(const NrtNormalKey *key, uint64_t b0, int nb, uint32_t *wa,
                          uint32_t *wb)
{
    for (int k = 0; k < nb; k++) {
        uint64_t x = b0 + (uint64_t)k;
        uint32_t c0 = (uint32_t)x, c1 = key->sample, c2 = key->step;
        uint32_t c3 = key->hi | (uint32_t)(x >> 32 & 0x3FFFFFu);
        uint32_t k0 = key->k0, k1 = key->k1;
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            c0 = n0;
            c2 = n2;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        wa[2 * k] = c0;
        wb[2 * k] = c1;
        wa[2 * k + 1] = c2;
        wb[2 * k + 1] = c3;
    }
}

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float float_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* -2 ln((w + 1/2) 2^-32), w a 32-bit word. */
static float minus2_log(uint32_t w)
{
    float u = ((float)w + 0.5f) * 0x1p-32f;
    float v = ((float)~w + 0.5f) * 0x1p-32f;   /* 1 - u */
    uint32_t b = bits_of(u);
    int32_t e = (int32_t)(b >> 23) - 126;
    float m = float_of((b & 0x7FFFFFu) | 0x3F000000u);   /* u = m 2^e, m in [1/2, 1) */
    /* m < sqrt(1/2): 2m - 1 and e - 1; u >= sqrt(1/2): -(1 - u) and 0 (bit
     * selects, so the loop has no branch and vectorizes) */
    uint32_t below = 0u - (uint32_t)(m < 0.70710678f), high = 0u - (uint32_t)(w >= U_HIGH);
    uint32_t xb = (bits_of(m + m - 1.0f) & below) | (bits_of(m - 1.0f) & ~below);
    float x = float_of((bits_of(-v) & high) | (xb & ~high));
    e = (e - (int32_t)(below & 1)) & (int32_t)~high;
    float fe = (float)e, z = x * x;
    float y = ((((((((7.0376836292e-2f * x - 1.1514610310e-1f) * x + 1.1676998740e-1f) * x -
                    1.2420140846e-1f) * x + 1.4249322787e-1f) * x - 1.6668057665e-1f) * x +
                 2.0000714765e-1f) * x - 2.4999993993e-1f) * x + 3.3333331174e-1f) * x * z;
    y = y - 2.12194440e-4f * fe - 0.5f * z;
    float ln = (x + y) + 0.693359375f * fe;
    return -2.0f * ln;
}

/* cos and sin of t = 2 pi w 2^-32. */
static void turn_cos_sin(uint32_t w, float *c_out, float *s_out)
{
    uint32_t q = (w + 0x20000000u) >> 30;             /* nearest quarter turn */
    int32_t f = (int32_t)(w - (q << 30));             /* in [-2^29, 2^29) */
    float x = (float)f * 1.46291807926715968e-9f;     /* pi/2 2^-30: |x| <= pi/4 */
    float z = x * x;
    float s = x + x * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
    float c = 1.0f - 0.5f * z +
              z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f +
                                                     z * 2.443315711809948e-5f));
    /* quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c), by bit
     * selects and sign flips (no branches, so the loop vectorizes) */
    uint32_t swap = 0u - (q & 1), cb = bits_of(c), sb = bits_of(s);
    uint32_t cq = (sb & swap) | (cb & ~swap), sq = (cb & swap) | (sb & ~swap);
    *c_out = float_of(cq ^ ((q + 1) & 2) << 30);
    *s_out = float_of(sq ^ (q & 2) << 30);
}

void NRT_NORMAL_KERNEL(const NrtNormalKey *key, uint64_t b0, int nb, float mean, float std,
                       float *out)
{
    uint32_t wa[2 * NRT_NORMAL_BLOCKS], wb[2 * NRT_NORMAL_BLOCKS];
    float zc[2 * NRT_NORMAL_BLOCKS], zs[2 * NRT_NORMAL_BLOCKS];
    nb = nb < NRT_NORMAL_BLOCKS ? nb : NRT_NORMAL_BLOCKS;
    philox_blocks(key, b0, nb, wa, wb);
    for (int p = 0; p < 2 * nb; p++) {
        float r = sqrtf(minus2_log(wa[p])), c, s;
        turn_cos_sin(wb[p], &c, &s);
        zc[p] = mean + std * (r * c);
        zs[p] = mean + std * (r * s);
    }
    for (int p = 0; p < 2 * nb; p++) {
        out[2 * p] = zc[p];
        out[2 * p + 1] = zs[p];
    }
}
