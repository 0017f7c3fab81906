/* eltwise.c - elementwise chains in one pass (the compiler's fusion pass,
 * docs/architecture.md "Fusion"): y = act(x0 + x1 + ...).
 *
 * Inputs: nin >= 1 tensors of numel floats (y may be one of them), an
 * activation with activation.c's definitions. The sum is formed left to
 * right in float and the activation is the same expression as its
 * activation.c kernel, so the result is bit-identical to the unfused
 * steps (the generated add loop, then nrt_*_forward); only the memory
 * traffic of the intermediate tensor is saved. Work is split into fixed
 * blocks, blocks over threads: the same bits for any thread count.
 */
#include <math.h>

#include "netrt.h"

#define ELT_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define ELT_PARALLEL_FOR(cond) ELT_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define ELT_PARALLEL_FOR(cond)
#endif

/* A block of 1024 floats (4 KB) stays in L1 between the sum and the
 * activation; below ELT_PAR_MIN floats one thread does the work. */
enum { ELT_BLOCK = 1024, ELT_PAR_MIN = 1 << 16 };

/* y[0, len) = act(y) in place, activation.c's expressions. */
static void elt_act(float *y, int64_t len, NrtFusedAct act, float slope)
{
    switch (act) {
    case NRT_FUSED_NONE:
        break;
    case NRT_FUSED_RELU:
        for (int64_t i = 0; i < len; i++) {
            float v = y[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
        break;
    case NRT_FUSED_LEAKY_RELU:
        for (int64_t i = 0; i < len; i++)
            y[i] = y[i] > 0.0f ? y[i] : y[i] * slope;
        break;
    case NRT_FUSED_TANH:
        for (int64_t i = 0; i < len; i++)
            y[i] = tanhf(y[i]);
        break;
    case NRT_FUSED_SIGMOID:
        for (int64_t i = 0; i < len; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    }
}

/* One block: y = x0 + x1, then + x2 ..., then the activation. */
static void elt_add_block(int64_t off, int64_t len, int nin, const float *const *x,
                          NrtFusedAct act, float slope, float *y)
{
    float *yb = y + off;
    const float *a = x[0] + off;
    if (nin == 1) {
        for (int64_t i = 0; i < len; i++)
            yb[i] = a[i];
    }
    for (int k = 1; k < nin; k++) {
        const float *b = x[k] + off;
        for (int64_t i = 0; i < len; i++)
            yb[i] = a[i] + b[i];
        a = yb;
    }
    elt_act(yb, len, act, slope);
}

void nrt_add_act_forward(int64_t numel, int nin, const float *const *x, NrtFusedAct act,
                         float slope, float *y)
{
    int64_t nblocks = (numel + ELT_BLOCK - 1) / ELT_BLOCK;
    ELT_PARALLEL_FOR(numel >= ELT_PAR_MIN)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t off = blk * ELT_BLOCK;
        int64_t len = numel - off < ELT_BLOCK ? numel - off : ELT_BLOCK;
        elt_add_block(off, len, nin, x, act, slope, y);
    }
}
