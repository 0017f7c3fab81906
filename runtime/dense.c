/* dense.c - fully connected layer: forward and backward on top of SGEMM.
 *
 * Shapes (PyTorch's nn.Linear): x (n, in), w (out, in), b (out),
 * y (n, out). Forward y = act(x w^T + b) fuses bias and activation into the
 * GEMM epilogue; backward dx = dy w, dw = dy^T x, db = column sums of dy.
 * Backward kernels overwrite their output or, with accumulate, add to it
 * (beta = 1), so shared weights can sum their gradients. Every reduction
 * runs in a fixed order: results do not depend on the thread count.
 */
#include "netrt.h"

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Sized for the thread count at the time of the call (generated code asks
 * when it creates a model); with more threads later, the GEMMs use as many
 * as the workspace holds (same bits, gemm.c). */
size_t nrt_dense_workspace_floats(int64_t n, int64_t in, int64_t out)
{
    int t = nrt_get_threads();
    size_t f = nrt_sgemm_workspace_floats_threads(n, out, in, t);
    f = max_size(f, nrt_sgemm_workspace_floats_threads(n, in, out, t));
    return max_size(f, nrt_sgemm_workspace_floats_threads(out, in, n, t));
}

/* y (n, out) = act(x (n, in) w^T + b). */
void nrt_dense_forward(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                       const float *b, NrtAct act, float *y, NrtWorkspace *ws)
{
    NrtEpilogue ep = { .bias_kind = b ? NRT_BIAS_COL : NRT_BIAS_NONE, .bias = b, .act = act };
    nrt_sgemm_ex(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out, &ep, ws);
}

void nrt_dense_forward_ref(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                           const float *b, NrtAct act, float *y)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t k = 0; k < in; k++)
                acc += (double)x[i * in + k] * w[o * in + k];
            if (act == NRT_ACT_RELU && acc < 0.0)
                acc = 0.0;
            y[i * out + o] = (float)acc;
        }
}

/* dx (n, in) = dy (n, out) w (out, in). */
void nrt_dense_backward_data(int64_t n, int64_t in, int64_t out, const float *dy, const float *w,
                             float *dx, bool accumulate, NrtWorkspace *ws)
{
    nrt_sgemm(false, false, n, in, out, 1.0f, dy, out, w, in, accumulate ? 1.0f : 0.0f, dx, in, ws);
}

void nrt_dense_backward_data_ref(int64_t n, int64_t in, int64_t out, const float *dy,
                                 const float *w, float *dx, bool accumulate)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < in; k++) {
            double acc = accumulate ? dx[i * in + k] : 0.0;
            for (int64_t o = 0; o < out; o++)
                acc += (double)dy[i * out + o] * w[o * in + k];
            dx[i * in + k] = (float)acc;
        }
}

/* dw (out, in) = dy^T (out, n) x (n, in). */
void nrt_dense_backward_weights(int64_t n, int64_t in, int64_t out, const float *x,
                                const float *dy, float *dw, bool accumulate, NrtWorkspace *ws)
{
    nrt_sgemm(true, false, out, in, n, 1.0f, dy, out, x, in, accumulate ? 1.0f : 0.0f, dw, in, ws);
}

void nrt_dense_backward_weights_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                    const float *dy, float *dw, bool accumulate)
{
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < in; k++) {
            double acc = accumulate ? dw[o * in + k] : 0.0;
            for (int64_t i = 0; i < n; i++)
                acc += (double)dy[i * out + o] * x[i * in + k];
            dw[o * in + k] = (float)acc;
        }
}

/* db (out) = sum over rows of dy (n, out), row 0 first; vectorizes over out. */
void nrt_dense_backward_bias(int64_t n, int64_t out, const float *dy, float *db, bool accumulate)
{
    if (!accumulate)
        for (int64_t o = 0; o < out; o++)
            db[o] = 0.0f;
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++)
            db[o] += dy[i * out + o];
}
