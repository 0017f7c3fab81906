/* rng.c - counter-based random numbers: Philox4x32-10 and the draws built
 * on it (uniform, normal, Bernoulli, bounded integers, gamma, beta,
 * permutations, parameter initialization).
 *
 * Philox4x32-10 is J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011, bit for bit as
 * Random123's philox4x32_10 (tests/unit/test_rng.c checks its kat_vectors).
 *
 * Every draw is a pure function of (seed, purpose, step, sample, element):
 * netrt.h gives the counter layout. There is no generator state, so any
 * thread may compute any value, in any order, and a seed gives the same
 * numbers for every thread count (LANGUAGE.md, Randomness). Samplers that
 * need a variable number of words (rejection: gamma, bounded integers) read
 * a private substream of blocks keyed by their element, so a rejection
 * never shifts the numbers another element sees.
 */
#include "netrt.h"
#include "rng_normal.h"

#include <math.h>

#include "isa_kernels.h"
#include <stdbool.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u   /* golden ratio */
#define PHILOX_W1 0xBB67AE85u   /* sqrt(3) - 1 */

enum { DOMAIN_WORDS = 0, DOMAIN_SUB = 1, DOMAIN_PERM = 2 };
enum { SUB_BLOCKS = 1 << 20 };          /* blocks per substream (22-bit field: tag, block) */
enum { TAG_GAMMA_A = 0, TAG_GAMMA_B = 1, TAG_BELOW = 2 };
#define RNG_PAR_MIN ((int64_t)1 << 14)  /* elements below this: one thread */
enum { GROUP = 16 };                    /* blocks per batch-fill task (one AVX-512 Philox call) */

static const double TWO_M32 = 1.0 / 4294967296.0;
static const double TWO_PI = 6.283185307179586476925286766559;

void nrt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
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
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* One block at counter (x, sample, step) in a domain (netrt.h layout). */
static void rng_raw(uint64_t seed, uint32_t purpose, uint32_t domain, uint64_t step,
                    uint64_t sample, uint64_t x, uint32_t out[4])
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)x, (uint32_t)sample, (uint32_t)step,
                       (purpose & 0xFFu) << 24 | domain << 22 | (uint32_t)(x >> 32 & 0x3FFFFFu)};
    nrt_philox4x32_10(ctr, key, out);
}

void nrt_rng_block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                   uint64_t block, uint32_t out[4])
{
    rng_raw(seed, purpose, DOMAIN_WORDS, step, sample, block, out);
}

uint32_t nrt_rng_u32(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                     uint64_t element)
{
    uint32_t w[4];
    nrt_rng_block(seed, purpose, step, sample, element >> 2, w);
    return w[element & 3];
}

static double u32_to_unit(uint32_t w)
{
    return (double)w * TWO_M32;
}

static float u32_to_unitf(uint32_t w)
{
    return (float)(w >> 8) * (1.0f / 16777216.0f);
}

/* In (0, 1): safe under log. */
static double u32_to_open(uint32_t w)
{
    return ((double)w + 0.5) * TWO_M32;
}

double nrt_rng_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element)
{
    return u32_to_unit(nrt_rng_u32(seed, purpose, step, sample, element));
}

float nrt_rng_uniformf(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element)
{
    return u32_to_unitf(nrt_rng_u32(seed, purpose, step, sample, element));
}

/* Box-Muller on words (a, b): the cosine or the sine branch. */
static double box_muller(uint32_t a, uint32_t b, bool sine)
{
    double r = sqrt(-2.0 * log(u32_to_open(a)));
    double t = TWO_PI * u32_to_unit(b);
    return sine ? r * sin(t) : r * cos(t);
}

/* The normal at element e from e's block words w. */
static double normal_in_block(const uint32_t w[4], uint64_t e)
{
    unsigned k = (unsigned)(e & 3);
    return box_muller(w[k & 2], w[(k & 2) + 1], k & 1);
}

double nrt_rng_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                      uint64_t element)
{
    uint32_t w[4];
    nrt_rng_block(seed, purpose, step, sample, element >> 2, w);
    return normal_in_block(w, element);
}

/* The float normal kernel for this CPU, the ISA choice of the whole runtime
 * (nrt_sgemm_isa; rng_normal.c: every copy gives the same bits). */
static void normal_blocks(const NrtNormalKey *key, uint64_t b0, int nb, float mean, float std,
                          float *out)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (nrt_sgemm_isa() == NRT_ISA_AVX512) {
        nrt_normal_blocks_avx512(key, b0, nb, mean, std, out);
        return;
    }
#endif
    nrt_normal_blocks_portable(key, b0, nb, mean, std, out);
}

static NrtNormalKey normal_key(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample)
{
    NrtNormalKey k = {(uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)sample, (uint32_t)step,
                      (purpose & 0xFFu) << 24 | (uint32_t)DOMAIN_WORDS << 22};
    return k;
}

float nrt_rng_normalf(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                      uint64_t element)
{
    NrtNormalKey key = normal_key(seed, purpose, step, sample);
    float z[4];
    normal_blocks(&key, element >> 2, 1, 0.0f, 1.0f, z);
    return z[element & 3];
}

/* ---- substreams: sequential words for rejection samplers ----------------- */

typedef struct Sub {
    uint64_t seed, step, sample, element;
    uint32_t purpose, tag, block;
    int word;
    uint32_t w[4];
    bool exhausted;   /* SUB_BLOCKS blocks used: callers stop and fall back */
} Sub;

static Sub sub_open(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                    uint64_t element, uint32_t tag)
{
    Sub s = {.seed = seed, .step = step, .sample = sample, .element = element & 0xFFFFFFFFu,
             .purpose = purpose, .tag = tag, .block = 0, .word = 4, .exhausted = false};
    return s;
}

static uint32_t sub_u32(Sub *s)
{
    if (s->word == 4) {
        if (s->block == SUB_BLOCKS) {
            s->exhausted = true;
            s->block = 0;
        }
        uint64_t hi = (uint64_t)(s->tag << 20 | s->block);
        rng_raw(s->seed, s->purpose, DOMAIN_SUB, s->step, s->sample, s->element | hi << 32, s->w);
        s->block++;
        s->word = 0;
    }
    return s->w[s->word++];
}

/* Two words, high first (two statements: C leaves call order in one expression open). */
static uint64_t sub_u64(Sub *s)
{
    uint64_t hi = sub_u32(s);
    return hi << 32 | sub_u32(s);
}

static double sub_normal(Sub *s)
{
    uint32_t a = sub_u32(s);
    return box_muller(a, sub_u32(s), false);
}

/* 64 x 64 -> 128 bits, as (hi, lo). */
static uint64_t mul64(uint64_t a, uint64_t b, uint64_t *lo)
{
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t ll = al * bl, hl = ah * bl, lh = al * bh, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (uint32_t)hl + (uint32_t)lh;
    *lo = (mid << 32) | (uint32_t)ll;
    return hh + (hl >> 32) + (lh >> 32) + (mid >> 32);
}

/* Lemire, "Fast random integer generation in an interval", TOMACS 2019:
 * x * bound / 2^64, rejecting the low parts that would bias the result. */
uint64_t nrt_rng_below(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                       uint64_t element, uint64_t bound)
{
    if (bound == 0)
        return 0;
    Sub s = sub_open(seed, purpose, step, sample, element, TAG_BELOW);
    uint64_t lo, hi = mul64(sub_u64(&s), bound, &lo);
    if (lo < bound) {
        uint64_t t = (0 - bound) % bound;
        while (lo < t && !s.exhausted)
            hi = mul64(sub_u64(&s), bound, &lo);
    }
    return hi;
}

/* log of a Gamma(a, 1) draw for a >= 1: Marsaglia & Tsang, "A simple method
 * for generating gamma variables", ACM TOMS 26(3), 2000. */
static double log_gamma_ge1(Sub *s, double a)
{
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    while (!s->exhausted) {
        double x = sub_normal(s), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = u32_to_open(sub_u32(s));
        if (u < 1.0 - 0.0331 * (x * x) * (x * x) || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return log(d) + log(v);
    }
    return log(a);   /* 2^22 words without acceptance: unreachable in practice */
}

/* log Gamma(a) draw; a < 1 boosts: Gamma(a) = Gamma(a + 1) U^(1/a). */
static double log_gamma(Sub *s, double a)
{
    if (a >= 1.0)
        return log_gamma_ge1(s, a);
    double g = log_gamma_ge1(s, a + 1.0);
    return g + log(u32_to_open(sub_u32(s))) / a;
}

static bool shape_ok(double a)
{
    return a > 0.0 && isfinite(a);
}

double nrt_rng_gamma(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                     uint64_t element, double shape)
{
    if (!shape_ok(shape))
        return NAN;
    Sub s = sub_open(seed, purpose, step, sample, element, TAG_GAMMA_A);
    return exp(log_gamma(&s, shape));
}

double nrt_rng_beta(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                    uint64_t element, double a, double b)
{
    if (!shape_ok(a) || !shape_ok(b))
        return NAN;
    Sub sa = sub_open(seed, purpose, step, sample, element, TAG_GAMMA_A);
    Sub sb = sub_open(seed, purpose, step, sample, element, TAG_GAMMA_B);
    double lx = log_gamma(&sa, a), ly = log_gamma(&sb, b);
    return 1.0 / (1.0 + exp(ly - lx));   /* X / (X + Y); exp overflow gives 0 */
}

/* Uniform in [0, bound], bound < 2^32, for permutation position i: 32-bit
 * Lemire on the words of blocks (i, attempt). */
static uint64_t perm_draw(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t i)
{
    uint64_t bound = i + 1;
    uint32_t t = (uint32_t)((0x100000000u - bound) % bound);
    uint64_t m = 0;
    for (uint64_t attempt = 0; attempt < ((uint64_t)1 << 22); attempt++) {
        uint32_t w[4];
        rng_raw(seed, purpose, DOMAIN_PERM, step, 0, i | attempt << 32, w);
        for (int k = 0; k < 4; k++) {
            m = (uint64_t)w[k] * bound;
            if ((uint32_t)m >= t)
                return m >> 32;
        }
    }
    return m >> 32;   /* 2^24 rejections in a row: unreachable in practice */
}

void nrt_rng_permutation(uint64_t seed, uint32_t purpose, uint64_t step, int64_t n,
                         int64_t *perm)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)perm_draw(seed, purpose, step, (uint64_t)i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---- batch fills ---------------------------------------------------------- */

typedef enum FillKind { FILL_UNIFORM, FILL_NORMAL, FILL_BERNOULLI, FILL_MASK } FillKind;

typedef struct Fill {
    uint64_t seed, step, sample, first;
    uint32_t purpose;
    int64_t n;
    FillKind kind;
    double a, b;          /* normal: mean, std; bernoulli/mask: threshold, scale */
    float *f;
    uint8_t *u8;
} Fill;

/* The block's four normals, each pair's logarithm and square root once:
 * the same operations, so the same bits, as normal_in_block. */
static void block_normals(const uint32_t w[4], double z[4])
{
    for (int k = 0; k < 4; k += 2) {
        double r = sqrt(-2.0 * log(u32_to_open(w[k])));
        double t = TWO_PI * u32_to_unit(w[k + 1]);
        z[k] = r * cos(t);
        z[k + 1] = r * sin(t);
    }
}

/* Elements of block blk that fall in [first, first + n). */
static void fill_block(const Fill *fl, uint64_t blk)
{
    uint32_t w[4];
    double z[4];
    nrt_rng_block(fl->seed, fl->purpose, fl->step, fl->sample, blk, w);
    if (fl->kind == FILL_NORMAL)
        block_normals(w, z);
    for (uint64_t e = blk * 4; e < blk * 4 + 4; e++) {
        if (e < fl->first || e - fl->first >= (uint64_t)fl->n)
            continue;
        uint64_t i = e - fl->first;
        switch (fl->kind) {
        case FILL_UNIFORM: fl->f[i] = u32_to_unitf(w[e & 3]); break;
        case FILL_NORMAL: fl->f[i] = (float)(fl->a + fl->b * z[e & 3]); break;
        case FILL_BERNOULLI: fl->u8[i] = (double)w[e & 3] < fl->a; break;
        case FILL_MASK: fl->f[i] = (double)w[e & 3] < fl->a ? (float)fl->b : 0.0f; break;
        }
    }
}

/* Blocks [blk, blk + count), count <= GROUP. A dropout mask of 16 whole
 * blocks whose counters share their high word goes through AVX-512 when the
 * CPU has it (the same words, so the same bits; 10x faster). */
static void fill_group(const Fill *fl, uint64_t blk, int64_t count)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (fl->kind == FILL_MASK && count == GROUP && blk * 4 >= fl->first &&
        (blk + GROUP) * 4 <= fl->first + (uint64_t)fl->n && blk >> 32 == (blk + GROUP - 1) >> 32 &&
        nrt_sgemm_isa() == NRT_ISA_AVX512) {
        uint32_t key[2] = {(uint32_t)fl->seed, (uint32_t)(fl->seed >> 32)};
        uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)fl->sample, (uint32_t)fl->step,
                           (fl->purpose & 0xFFu) << 24 | DOMAIN_WORDS << 22 |
                               (uint32_t)(blk >> 32 & 0x3FFFFFu)};
        /* (double)w < a  <=>  w < ceil(a) for integer w */
        nrt_rng_mask16_avx512(key, ctr, (uint64_t)ceil(fl->a), (float)fl->b,
                              fl->f + (blk * 4 - fl->first));
        return;
    }
#endif
    for (int64_t k = 0; k < count; k++)
        fill_block(fl, blk + (uint64_t)k);
}

static void fill_run(const Fill *fl)
{
    if (fl->n <= 0)
        return;
    uint64_t b0 = fl->first >> 2, b1 = (fl->first + (uint64_t)fl->n - 1) >> 2;
    int64_t nb = (int64_t)(b1 - b0 + 1), ng = (nb + GROUP - 1) / GROUP;
    if (fl->n < RNG_PAR_MIN) {   /* no region at all: a per-sample mask fill is ~1 us */
        for (int64_t g = 0; g < ng; g++)
            fill_group(fl, b0 + (uint64_t)(g * GROUP), nb - g * GROUP < GROUP ? nb - g * GROUP : GROUP);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t g = 0; g < ng; g++)
        fill_group(fl, b0 + (uint64_t)(g * GROUP), nb - g * GROUP < GROUP ? nb - g * GROUP : GROUP);
}

void nrt_rng_fill_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                          uint64_t first, int64_t n, float *out)
{
    Fill fl = {.seed = seed, .step = step, .sample = sample, .first = first, .purpose = purpose,
               .n = n, .kind = FILL_UNIFORM, .f = out};
    fill_run(&fl);
}

/* The elements of [first, first + n) in the group of blocks from gb. */
static void normal_group(const NrtNormalKey *key, uint64_t first, int64_t n, uint64_t gb,
                         uint64_t b1, float mean, float std, float *out)
{
    float z[4 * NRT_NORMAL_BLOCKS];
    int nb = (int)(b1 - gb + 1 < NRT_NORMAL_BLOCKS ? b1 - gb + 1 : NRT_NORMAL_BLOCKS);
    normal_blocks(key, gb, nb, mean, std, z);
    uint64_t e0 = gb * 4 > first ? gb * 4 : first, e1 = (gb + (uint64_t)nb) * 4;
    e1 = e1 < first + (uint64_t)n ? e1 : first + (uint64_t)n;
    for (uint64_t e = e0; e < e1; e++)
        out[e - first] = z[e - gb * 4];
}

/* Blocks b0 .. b1 in groups of NRT_NORMAL_BLOCKS; a group's values do not
 * depend on where it starts, so neither the grouping nor the threads do.
 * Below RNG_PAR_MIN no parallel region at all (augment.c fills 256 floats
 * at a time inside its own region over samples). */
void nrt_rng_fill_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                         uint64_t first, int64_t n, float mean, float std, float *out)
{
    if (n <= 0)
        return;
    NrtNormalKey key = normal_key(seed, purpose, step, sample);
    uint64_t b0 = first >> 2, b1 = (first + (uint64_t)n - 1) >> 2;
    int64_t groups = (int64_t)((b1 - b0) / NRT_NORMAL_BLOCKS + 1);
    if (n < RNG_PAR_MIN) {
        for (int64_t g = 0; g < groups; g++)
            normal_group(&key, first, n, b0 + (uint64_t)g * NRT_NORMAL_BLOCKS, b1, mean, std, out);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t g = 0; g < groups; g++)
        normal_group(&key, first, n, b0 + (uint64_t)g * NRT_NORMAL_BLOCKS, b1, mean, std, out);
}

/* The double Box-Muller of nrt_rng_normal into floats (parameter init). */
static void fill_normal_double(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                               uint64_t first, int64_t n, float mean, float std, float *out)
{
    Fill fl = {.seed = seed, .step = step, .sample = sample, .first = first, .purpose = purpose,
               .n = n, .kind = FILL_NORMAL, .a = mean, .b = std, .f = out};
    fill_run(&fl);
}

/* w < p 2^32 for a uniform 32-bit w happens with probability ceil(p 2^32) / 2^32. */
void nrt_rng_fill_bernoulli(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                            uint64_t first, int64_t n, double p, uint8_t *out)
{
    Fill fl = {.seed = seed, .step = step, .sample = sample, .first = first, .purpose = purpose,
               .n = n, .kind = FILL_BERNOULLI, .a = p * 4294967296.0, .u8 = out};
    fill_run(&fl);
}

void nrt_rng_fill_dropout_mask(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample,
                               uint64_t first, int64_t n, double p_drop, float *out)
{
    double keep = 1.0 - p_drop;
    Fill fl = {.seed = seed, .step = step, .sample = sample, .first = first, .purpose = purpose,
               .n = n, .kind = FILL_MASK, .a = keep * 4294967296.0,
               .b = keep > 0.0 ? 1.0 / keep : 0.0, .f = out};
    fill_run(&fl);
}

/* ---- parameter initialization -------------------------------------------- */

void nrt_init_normal(float *w, int64_t n, float std, uint64_t seed, uint64_t param_id)
{
    fill_normal_double(seed, NRT_RNG_INIT, 0, param_id, 0, n, 0.0f, std, w);
}

void nrt_init_uniform(float *w, int64_t n, float a, uint64_t seed, uint64_t param_id)
{
    nrt_rng_fill_uniform(seed, NRT_RNG_INIT, 0, param_id, 0, n, w);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
#endif
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)((double)a * (2.0 * (double)w[i] - 1.0));
}

void nrt_init_constant(float *w, int64_t n, float value)
{
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
#endif
    for (int64_t i = 0; i < n; i++)
        w[i] = value;
}
