/* loss.c - cross entropy (label smoothing, two-label mixing), mean squared
 * error, argmax and accuracy.
 *
 * Both losses return the mean over the batch as PyTorch's reduction='mean'
 * does, and write weight * d(mean)/d(input) so that a weighted sum of
 * losses (multi-task) needs no extra pass. Rows are split into LOSS_CHUNKS
 * fixed chunks (independent of the thread count); each chunk sums its rows
 * in order in double, then the chunk sums are added in chunk order: the
 * loss is bitwise the same for any number of threads.
 *
 * Cross entropy with smoothing s over k classes (PyTorch >= 1.10):
 *   row loss = (1-s) * (-log p_y) + (s/k) * sum_j (-log p_j)
 *            = -sum_j t_j log p_j,  t = (1-s) onehot(y) + s/k,
 *   d(row loss)/d logit_j = p_j - t_j.
 * Mixup/cutmix mix the targets: t = lambda t(y_a) + (1-lambda) t(y_b),
 * which is exactly lambda CE(y_a) + (1-lambda) CE(y_b).
 */
#include <assert.h>
#include <math.h>

#include "netrt.h"

#define LOSS_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define LOSS_PARALLEL_FOR(cond) LOSS_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define LOSS_PARALLEL_FOR(cond)
#endif

enum { LOSS_CHUNKS = 64, LOSS_PAR_MIN = 1 << 14 };

/* One row of cross entropy: returns its loss, writes scale * (p - t). */
static double ce_row(int64_t k, const float *z, int32_t ya, int32_t yb, double lambda,
                     double s, double scale, float *dz, bool accumulate)
{
    double m = z[0], sum = 0.0, sum_logp = 0.0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > m)
            m = z[j];
    for (int64_t j = 0; j < k; j++)
        sum += exp(z[j] - m);
    double lse = m + log(sum);
    for (int64_t j = 0; j < k; j++)
        sum_logp += z[j] - lse;
    double off = s / (double)k;   /* target mass every class gets */
    double loss = -off * sum_logp - (1.0 - s) * (lambda * (z[ya] - lse)
                                                 + (1.0 - lambda) * (z[yb] - lse));
    if (!dz)
        return loss;
    for (int64_t j = 0; j < k; j++) {
        double t = off + (1.0 - s) * ((j == ya ? lambda : 0.0) + (j == yb ? 1.0 - lambda : 0.0));
        float g = (float)(scale * (exp(z[j] - lse) - t));
        dz[j] = accumulate ? dz[j] + g : g;
    }
    return loss;
}

double nrt_cross_entropy(int64_t n, int64_t k, const float *logits, const int32_t *labels,
                         const int32_t *labels_b, double lambda, double smoothing,
                         double weight, float *dlogits, bool accumulate)
{
    double part[LOSS_CHUNKS], total = 0.0;
    double scale = weight / (double)n;
    if (!labels_b)
        lambda = 1.0;
    LOSS_PARALLEL_FOR(n * k >= LOSS_PAR_MIN)
    for (int64_t c = 0; c < LOSS_CHUNKS; c++) {
        double acc = 0.0;
        for (int64_t i = n * c / LOSS_CHUNKS; i < n * (c + 1) / LOSS_CHUNKS; i++) {
            int32_t ya = labels[i], yb = labels_b ? labels_b[i] : ya;
            assert(ya >= 0 && ya < k && yb >= 0 && yb < k);
            acc += ce_row(k, logits + i * k, ya, yb, lambda, smoothing, scale,
                          dlogits ? dlogits + i * k : NULL, accumulate);
        }
        part[c] = acc;
    }
    for (int c = 0; c < LOSS_CHUNKS; c++)
        total += part[c];
    return total / (double)n;
}

/* One row of squared errors against the mixed target; the gradient of the
 * mixed loss is 2 (pred - (lambda a + (1-lambda) b)) times the scale. */
static double mse_row(int64_t d, const float *p, const float *ta, const float *tb,
                      double lambda, double scale, float *dp, bool accumulate)
{
    double loss = 0.0;
    for (int64_t j = 0; j < d; j++) {
        double ea = (double)p[j] - ta[j], eb = tb ? (double)p[j] - tb[j] : ea;
        loss += lambda * ea * ea + (1.0 - lambda) * eb * eb;
        if (dp) {
            float g = (float)(scale * 2.0 * (lambda * ea + (1.0 - lambda) * eb));
            dp[j] = accumulate ? dp[j] + g : g;
        }
    }
    return loss;
}

double nrt_mse(int64_t n, int64_t d, const float *pred, const float *target,
               const float *target_b, double lambda, double weight, float *dpred,
               bool accumulate)
{
    double part[LOSS_CHUNKS], total = 0.0;
    double count = (double)n * (double)d, scale = weight / count;
    if (!target_b)
        lambda = 1.0;
    LOSS_PARALLEL_FOR(n * d >= LOSS_PAR_MIN)
    for (int64_t c = 0; c < LOSS_CHUNKS; c++) {
        double acc = 0.0;
        for (int64_t i = n * c / LOSS_CHUNKS; i < n * (c + 1) / LOSS_CHUNKS; i++)
            acc += mse_row(d, pred + i * d, target + i * d, target_b ? target_b + i * d : NULL,
                           lambda, scale, dpred ? dpred + i * d : NULL, accumulate);
        part[c] = acc;
    }
    for (int c = 0; c < LOSS_CHUNKS; c++)
        total += part[c];
    return total / count;
}

/* ---- predictions --------------------------------------------------------- */

void nrt_argmax_rows(int64_t n, int64_t k, const float *x, int32_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * k;
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (r[j] > r[best])
                best = j;
        out[i] = (int32_t)best;
    }
}

int64_t nrt_count_correct(int64_t n, int64_t k, const float *logits, const int32_t *labels)
{
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t pred;
        nrt_argmax_rows(1, k, logits + i * k, &pred);
        correct += pred == labels[i];
    }
    return correct;
}
