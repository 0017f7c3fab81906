/* dropconnect.c - dense layers with per-sample DropConnect masks (Wan et al.
 * 2013).
 *
 * Every sample i sees its own weight matrix W * M_i, where M_i[j][c] is
 * 1/(1-p) with probability 1-p and 0 otherwise. The masks are never stored
 * (n x out x in floats would dwarf the activations): each kernel
 * regenerates the bits it needs from Philox, keyed by (seed,
 * NRT_RNG_DROPCONNECT, step, sample i, element stream + j*in + c), so
 * forward and backward see the same mask, and the result depends on no
 * thread count. The keep rule and scale are nrt_rng_fill_dropout_mask's:
 * kept iff the 32-bit word < (1-p) 2^32, value (float)(1/(1-p)).
 * Work split: forward over (sample, output) pairs, weight gradient over
 * output rows (samples summed in order), data gradient over samples; each
 * result element has one writer and a fixed summation order.
 */
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

/* Multipliers (0 or 1/(1-p)) of sample i's mask at elements e .. e+len-1. */
static void mask_span(const DcKey *k, int64_t i, uint64_t e, int64_t len, float *m)
{
    uint32_t bits[4];
    for (int64_t c = 0; c < len; c++, e++) {
        if (c == 0 || (e & 3) == 0)
            nrt_rng_block(k->seed, NRT_RNG_DROPCONNECT, k->step, (uint64_t)i, e >> 2, bits);
        m[c] = (double)bits[e & 3] < k->keep32 ? k->scale : 0.0f;
    }
}

/* Masks are generated DC_ROW elements at a time into a stack buffer. */
enum { DC_ROW = 256 };

/* sum_c (w[c] M_i[j][c]) x[c], in c order. */
static float dot_masked(const DcKey *k, int64_t i, int64_t j, int64_t in, const float *w,
                        const float *x)
{
    float m[DC_ROW], acc = 0.0f;
    for (int64_t c0 = 0; c0 < in; c0 += DC_ROW) {
        int64_t len = in - c0 < DC_ROW ? in - c0 : DC_ROW;
        mask_span(k, i, k->stream + (uint64_t)(j * in + c0), len, m);
        for (int64_t c = 0; c < len; c++)
            acc += (w[c0 + c] * m[c]) * x[c0 + c];
    }
    return acc;
}

void nrt_dropconnect_dense_forward(int64_t n, int64_t in, int64_t out, const float *x,
                                   const float *w, const float *b, NrtAct act, double p,
                                   uint64_t seed, uint64_t step, uint64_t stream, float *y)
{
    DcKey k = dc_key(p, seed, step, stream);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN)
    for (int64_t q = 0; q < n * out; q++) {
        int64_t i = q / out, j = q % out;
        float v = dot_masked(&k, i, j, in, w + j * in, x + i * in) + (b ? b[j] : 0.0f);
        y[q] = act == NRT_ACT_RELU && !(v > 0.0f) ? 0.0f : v;
    }
}

void nrt_dropconnect_dense_backward_weights(int64_t n, int64_t in, int64_t out, const float *x,
                                            const float *dy, double p, uint64_t seed,
                                            uint64_t step, uint64_t stream, float *dw,
                                            bool accumulate)
{
    DcKey k = dc_key(p, seed, step, stream);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN && out > 1)
    for (int64_t j = 0; j < out; j++) {
        float *row = dw + j * in, m[DC_ROW];
        if (!accumulate)
            for (int64_t c = 0; c < in; c++)
                row[c] = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            float g = dy[i * out + j];
            const float *xi = x + i * in;
            for (int64_t c0 = 0; c0 < in; c0 += DC_ROW) {
                int64_t len = in - c0 < DC_ROW ? in - c0 : DC_ROW;
                mask_span(&k, i, k.stream + (uint64_t)(j * in + c0), len, m);
                for (int64_t c = 0; c < len; c++)
                    row[c0 + c] += (m[c] * g) * xi[c0 + c];
            }
        }
    }
}

void nrt_dropconnect_dense_backward_data(int64_t n, int64_t in, int64_t out, const float *dy,
                                         const float *w, double p, uint64_t seed, uint64_t step,
                                         uint64_t stream, float *dx, bool accumulate)
{
    DcKey k = dc_key(p, seed, step, stream);
    DC_PARALLEL_FOR(n * out * in >= DC_PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        float *xi = dx + i * in, m[DC_ROW];
        if (!accumulate)
            for (int64_t c = 0; c < in; c++)
                xi[c] = 0.0f;
        for (int64_t j = 0; j < out; j++) {
            float g = dy[i * out + j];
            const float *wj = w + j * in;
            for (int64_t c0 = 0; c0 < in; c0 += DC_ROW) {
                int64_t len = in - c0 < DC_ROW ? in - c0 : DC_ROW;
                mask_span(&k, i, k.stream + (uint64_t)(j * in + c0), len, m);
                for (int64_t c = 0; c < len; c++)
                    xi[c0 + c] += (wj[c0 + c] * m[c]) * g;
            }
        }
    }
}
