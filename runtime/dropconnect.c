/* dropconnect.c - dense layers with per-sample DropConnect masks (Wan et al.
 * 2013).
 *
 * Every sample i sees its own weight matrix W * M_i, where M_i[j][c] is
 * 1/(1-p) with probability 1-p and 0 otherwise, drawn from Philox keyed by
 * (seed, NRT_RNG_DROPCONNECT, step, sample i, element stream + j*in + c).
 * The keep rule and scale are nrt_rng_fill_dropout_mask's: kept iff the
 * 32-bit word < (1-p) 2^32, value (float)(1/(1-p)). The forward pass draws
 * the masks once and keeps them as bits (n x out x in floats would dwarf
 * the activations; bits are 1/32 of that), the backward passes read them.
 * Work split: forward over (sample, output) pairs, weight gradient over
 * output rows (samples summed in order), data gradient over samples; each
 * result element has one writer and a fixed summation order, so the result
 * depends on no thread count.
 */
#include <stdbool.h>

#include "netrt.h"

#define DC_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define DC_PARALLEL_FOR(cond) DC_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define DC_PARALLEL_FOR(cond)
#endif

enum { DC_PAR_MIN = 1 << 14 };

typedef struct DcKey {
    uint64_t seed, step, stream;
    double keep32;      /* (1-p) 2^32: a word below it keeps the weight */
    float scale;        /* 1/(1-p) */
} DcKey;

static DcKey dc_key(double p, uint64_t seed, uint64_t step, uint64_t stream)
{
    double keep = 1.0 - p;
    DcKey k = {seed, step, stream, keep * 4294967296.0, keep > 0.0 ? (float)(1.0 / keep) : 0.0f};
    return k;
}

int64_t nrt_dropconnect_words(int64_t in, int64_t out)
{
    return out * ((in + 31) / 32);
}

/* Philox4x32-10 on DC_LANES consecutive word-domain blocks x0, x0+1, ...
 * of (seed, NRT_RNG_DROPCONNECT, step, sample): bitwise nrt_rng_block
 * (rng.c, netrt.h's counter layout), written lane-parallel so the compiler
 * can vectorize the multiplies. words[4*l + q] = word q of block x0 + l. */
enum { DC_LANES = 16 };

static void philox_lanes(const DcKey *k, uint64_t sample, uint64_t x0, uint32_t *words)
{
    uint32_t c0[DC_LANES], c1[DC_LANES], c2[DC_LANES], c3[DC_LANES];
    for (int l = 0; l < DC_LANES; l++) {
        uint64_t x = x0 + (uint64_t)l;
        c0[l] = (uint32_t)x, c1[l] = (uint32_t)sample, c2[l] = (uint32_t)k->step;
        c3[l] = (uint32_t)NRT_RNG_DROPCONNECT << 24 | (uint32_t)(x >> 32 & 0x3FFFFFu);
    }
    uint32_t k0 = (uint32_t)k->seed, k1 = (uint32_t)(k->seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < DC_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1, c3[l] = (uint32_t)p0, c0[l] = n0, c2[l] = n2;
        }
        k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < DC_LANES; l++)
        words[4 * l] = c0[l], words[4 * l + 1] = c1[l], words[4 * l + 2] = c2[l], words[4 * l + 3] = c3[l];
}

/* Row j of sample i: draws the mask (elements stream + j*in + c), stores
 * it as bits (a row starts on a word of its own, so rows have one writer)
 * and returns sum_c (w[c] M[c]) x[c] in c order. */
static float row_forward(const DcKey *k, int64_t i, int64_t j, int64_t in, const float *w,
                         const float *x, uint32_t *bits)
{
    uint64_t e0 = k->stream + (uint64_t)(j * in), blk = e0 >> 2;
    uint32_t r[4 * DC_LANES], word = 0;
    float acc = 0.0f;
    philox_lanes(k, (uint64_t)i, blk, r);
    for (int64_t c = 0; c < in; c++) {
        uint64_t e = e0 + (uint64_t)c;
        if ((e >> 2) - blk >= DC_LANES) {
            blk = e >> 2;
            philox_lanes(k, (uint64_t)i, blk, r);
        }
        bool keep = (double)r[((e >> 2) - blk) << 2 | (e & 3)] < k->keep32;
        acc += (w[c] * ((float)keep * k->scale)) * x[c];
        word |= (uint32_t)keep << (c & 31);
        if ((c & 31) == 31 || c == in - 1) {
            bits[c >> 5] = word;
            word = 0;
        }
    }
    return acc;
}

void nrt_dropconnect_dense_forward(int64_t n, int64_t in, int64_t out, const float *x,
                                   const float *w, const float *b, NrtAct act, double p,
                                   uint64_t seed, uint64_t step, uint64_t stream, uint32_t *bits,
                                   float *y)
{
    DcKey k = dc_key(p, seed, step, stream);
    int64_t rw = (in + 31) / 32, sw = nrt_dropconnect_words(in, out);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN)
    for (int64_t q = 0; q < n * out; q++) {
        int64_t i = q / out, j = q % out;
        float v = row_forward(&k, i, j, in, w + j * in, x + i * in, bits + i * sw + j * rw);
        v += b ? b[j] : 0.0f;
        y[q] = act == NRT_ACT_RELU && !(v > 0.0f) ? 0.0f : v;
    }
}

/* Branch-free: kept and dropped weights are equally likely, so a branch
 * would be mispredicted half the time. */
static inline float bit_mask(const uint32_t *row, int64_t c, float scale)
{
    return (float)(row[c >> 5] >> (c & 31) & 1u) * scale;
}

void nrt_dropconnect_dense_backward_weights(int64_t n, int64_t in, int64_t out, const float *x,
                                            const float *dy, double p, const uint32_t *bits,
                                            float *dw, bool accumulate)
{
    float scale = dc_key(p, 0, 0, 0).scale;
    int64_t rw = (in + 31) / 32, sw = nrt_dropconnect_words(in, out);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN && out > 1)
    for (int64_t j = 0; j < out; j++) {
        float *row = dw + j * in;
        if (!accumulate)
            for (int64_t c = 0; c < in; c++)
                row[c] = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            float g = dy[i * out + j];
            const float *xi = x + i * in;
            const uint32_t *mb = bits + i * sw + j * rw;
            for (int64_t c = 0; c < in; c++)
                row[c] += (bit_mask(mb, c, scale) * g) * xi[c];
        }
    }
}

void nrt_dropconnect_dense_backward_data(int64_t n, int64_t in, int64_t out, const float *dy,
                                         const float *w, double p, const uint32_t *bits,
                                         float *dx, bool accumulate)
{
    float scale = dc_key(p, 0, 0, 0).scale;
    int64_t rw = (in + 31) / 32, sw = nrt_dropconnect_words(in, out);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        float *xi = dx + i * in;
        if (!accumulate)
            for (int64_t c = 0; c < in; c++)
                xi[c] = 0.0f;
        for (int64_t j = 0; j < out; j++) {
            float g = dy[i * out + j];
            const float *wj = w + j * in;
            const uint32_t *mb = bits + i * sw + j * rw;
            for (int64_t c = 0; c < in; c++)
                xi[c] += (wj[c] * bit_mask(mb, c, scale)) * g;
        }
    }
}
