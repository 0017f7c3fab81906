/* preprocess_stats.c - preprocessing statistics over a uint8 training set
 * (LANGUAGE.md, Preprocessing): per-channel mean and std (standardize,
 * mean_channel), the mean image (mean_image), and ZCA whitening (zca).
 *
 * Input: images count x d, d = c x hw, pixel values p; statistics are of
 * x = p / 255. Every sum over the data set is an exact integer (a 256-bin
 * histogram per channel, per-pixel sums, sums of pixel products), so the
 * result is the same for any thread count and any split of the work; only
 * the final few operations are floating point, in double.
 * ZCA: W = U diag(1/sqrt(l + eps)) U^T from the covariance's
 * eigendecomposition by Householder tridiagonalization and implicit QL
 * (EISPACK tred2/tql2; about 6 d^3 flops, seconds at d = 784), deterministic.
 * The cyclic Jacobi solver (Golub & Van Loan, Matrix Computations, 8.5;
 * nrt_eigen_sym) is kept as the simple reference the QL solver is tested
 * against.
 * These are setup functions, not kernels: they allocate what they need.
 */
#include "netrt.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ZCA_MAX_D 4096
enum { COV_CHUNK = 256, JACOBI_SWEEPS = 60, MEAN_BLOCK = 64 };

static NrtStatus check_sizes(const char *what, const uint8_t *images, int64_t count, int64_t d,
                             NrtError *err)
{
    if (!images || count < 1 || d < 1 || count > INT64_MAX / d)
        return nrt_error_set(err, NRT_ERR_ARG, "%s: needs at least one image of at least one "
                             "value (count %lld, size %lld)", what, (long long)count, (long long)d);
    return NRT_OK;
}

NrtStatus nrt_stats_channels(const uint8_t *images, int64_t count, int64_t c, int64_t hw,
                             double *mean, double *std, NrtError *err)
{
    if (c < 1 || hw < 1 || c > INT64_MAX / hw)
        return nrt_error_set(err, NRT_ERR_ARG, "channel statistics: bad image shape %lld x %lld",
                             (long long)c, (long long)hw);
    const int64_t d = c * hw;
    NrtStatus st = check_sizes("channel statistics", images, count, d, err);
    for (int64_t ch = 0; st == NRT_OK && ch < c; ch++) {
        uint64_t hist[256] = {0};
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(+ : hist[:256]) if (count * hw >= (1 << 16))
#endif
        for (int64_t n = 0; n < count; n++) {
            const uint8_t *p = images + n * d + ch * hw;
            for (int64_t k = 0; k < hw; k++)
                hist[p[k]]++;
        }
        uint64_t sum = 0;
        for (int v = 0; v < 256; v++)
            sum += (uint64_t)v * hist[v];
        double total = (double)count * (double)hw, m = (double)sum / total, var = 0.0;
        for (int v = 0; v < 256; v++)
            var += (double)hist[v] * (v - m) * (v - m);
        mean[ch] = m / 255.0;
        std[ch] = sqrt(var / total) / 255.0;
    }
    return st;
}

/* sums[k] = sum over images of pixel k; blocks of MEAN_BLOCK pixels keep
 * the reads contiguous. */
static void pixel_sums(const uint8_t *images, int64_t count, int64_t d, uint64_t *sums)
{
    int64_t nblocks = (d + MEAN_BLOCK - 1) / MEAN_BLOCK;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (count * d >= (1 << 16))
#endif
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t k0 = b * MEAN_BLOCK, k1 = k0 + MEAN_BLOCK < d ? k0 + MEAN_BLOCK : d;
        for (int64_t k = k0; k < k1; k++)
            sums[k] = 0;
        for (int64_t n = 0; n < count; n++)
            for (int64_t k = k0; k < k1; k++)
                sums[k] += images[n * d + k];
    }
}

NrtStatus nrt_stats_mean_image(const uint8_t *images, int64_t count, int64_t d, double *mean,
                               NrtError *err)
{
    NrtStatus st = check_sizes("mean image", images, count, d, err);
    if (st != NRT_OK)
        return st;
    uint64_t *sums = malloc((size_t)d * sizeof *sums);
    if (!sums)
        return nrt_error_set(err, NRT_ERR_NOMEM, "mean image: out of memory");
    pixel_sums(images, count, d, sums);
    for (int64_t k = 0; k < d; k++)
        mean[k] = (double)sums[k] / (double)count / 255.0;
    free(sums);
    return NRT_OK;
}

/* s[i*d + j] (j >= i) = sum over images of p_i p_j, exactly. Products are
 * <= 65025 and counts < 2^31, so uint64 cannot overflow. */
static void pixel_products(const uint8_t *images, int64_t count, int64_t d, uint64_t *s)
{
    memset(s, 0, (size_t)(d * d) * sizeof *s);
    for (int64_t n0 = 0; n0 < count; n0 += COV_CHUNK) {
        int64_t n1 = n0 + COV_CHUNK < count ? n0 + COV_CHUNK : count;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) if ((n1 - n0) * d * d >= (1 << 18))
#endif
        for (int64_t i = 0; i < d; i++) {
            uint64_t *row = s + i * d;
            for (int64_t n = n0; n < n1; n++) {
                const uint8_t *x = images + n * d;
                uint32_t xi = x[i];
                if (xi)
                    for (int64_t j = i; j < d; j++)
                        row[j] += xi * x[j];
            }
        }
    }
}

/* One Jacobi rotation zeroing a[p][q] (p < q), applied to a and v. */
static void jacobi_rotate(int64_t n, double *a, double *v, int64_t p, int64_t q)
{
    double apq = a[p * n + q];
    double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
    double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
    double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
    for (int64_t k = 0; k < n; k++) {   /* columns p, q */
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (int64_t k = 0; k < n; k++) {   /* rows p, q */
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
    a[p * n + q] = a[q * n + p] = 0.0;
    for (int64_t k = 0; k < n; k++) {
        double vkp = v[k * n + p], vkq = v[k * n + q];
        v[k * n + p] = c * vkp - s * vkq;
        v[k * n + q] = s * vkp + c * vkq;
    }
}

static double off_diagonal(int64_t n, const double *a, double *total)
{
    double off = 0.0, all = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = a[i * n + j] * a[i * n + j];
            all += x;
            off += i != j ? x : 0.0;
        }
    *total = all;
    return off;
}

/* Ascending eigenvalues, eigenvector columns moving with them. */
static void sort_eigen(int64_t n, double *lambda, double *v)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t m = i;
        for (int64_t j = i + 1; j < n; j++)
            m = lambda[j] < lambda[m] ? j : m;
        if (m == i)
            continue;
        double t = lambda[i];
        lambda[i] = lambda[m];
        lambda[m] = t;
        for (int64_t k = 0; k < n; k++) {
            t = v[k * n + i];
            v[k * n + i] = v[k * n + m];
            v[k * n + m] = t;
        }
    }
}

int nrt_eigen_sym(int64_t n, double *a, double *lambda, double *v)
{
    for (int64_t i = 0; i < n * n; i++)
        v[i] = 0.0;
    for (int64_t i = 0; i < n; i++)
        v[i * n + i] = 1.0;
    int sweeps = -1;
    for (int sweep = 0; sweep <= JACOBI_SWEEPS; sweep++) {
        double total, off = off_diagonal(n, a, &total);
        if (off <= 1e-22 * total || total == 0.0) {
            sweeps = sweep;
            break;
        }
        if (sweep == JACOBI_SWEEPS)
            break;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++)
                if (a[p * n + q] != 0.0)
                    jacobi_rotate(n, a, v, p, q);
    }
    for (int64_t i = 0; i < n; i++)
        lambda[i] = a[i * n + i];
    sort_eigen(n, lambda, v);
    return sweeps;
}

/* ---- Householder tridiagonalization + implicit QL (EISPACK tred2/tql2,
 * as in JAMA's EigenvalueDecomposition): about 6 n^3 flops in all, a few
 * times faster than the Jacobi sweeps at n = 784. v (n x n, row major)
 * holds A on entry and the accumulated transformations on exit. */

static void tred2(int64_t n, double *v, double *d, double *e)
{
#define V(i, j) v[(i) * n + (j)]
    for (int64_t j = 0; j < n; j++)
        d[j] = V(n - 1, j);
    for (int64_t i = n - 1; i > 0; i--) {
        double scale = 0.0, h = 0.0;
        for (int64_t k = 0; k < i; k++)
            scale += fabs(d[k]);
        if (scale == 0.0) {
            e[i] = d[i - 1];
            for (int64_t j = 0; j < i; j++) {
                d[j] = V(i - 1, j);
                V(i, j) = 0.0;
                V(j, i) = 0.0;
            }
        } else {
            for (int64_t k = 0; k < i; k++) {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            double f = d[i - 1], g = sqrt(h);
            if (f > 0)
                g = -g;
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for (int64_t j = 0; j < i; j++)
                e[j] = 0.0;
            for (int64_t j = 0; j < i; j++) {
                f = d[j];
                V(j, i) = f;
                g = e[j] + V(j, j) * f;
                for (int64_t k = j + 1; k <= i - 1; k++) {
                    g += V(k, j) * d[k];
                    e[k] += V(k, j) * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for (int64_t j = 0; j < i; j++) {
                e[j] /= h;
                f += e[j] * d[j];
            }
            double hh = f / (h + h);
            for (int64_t j = 0; j < i; j++)
                e[j] -= hh * d[j];
            for (int64_t j = 0; j < i; j++) {
                f = d[j];
                g = e[j];
                for (int64_t k = j; k <= i - 1; k++)
                    V(k, j) -= f * e[k] + g * d[k];
                d[j] = V(i - 1, j);
                V(i, j) = 0.0;
            }
        }
        d[i] = h;
    }
    for (int64_t i = 0; i < n - 1; i++) {
        V(n - 1, i) = V(i, i);
        V(i, i) = 1.0;
        double h = d[i + 1];
        if (h != 0.0) {
            for (int64_t k = 0; k <= i; k++)
                d[k] = V(k, i + 1) / h;
            for (int64_t j = 0; j <= i; j++) {
                double g = 0.0;
                for (int64_t k = 0; k <= i; k++)
                    g += V(k, i + 1) * V(k, j);
                for (int64_t k = 0; k <= i; k++)
                    V(k, j) -= g * d[k];
            }
        }
        for (int64_t k = 0; k <= i; k++)
            V(k, i + 1) = 0.0;
    }
    for (int64_t j = 0; j < n; j++) {
        d[j] = V(n - 1, j);
        V(n - 1, j) = 0.0;
    }
    V(n - 1, n - 1) = 1.0;
    e[0] = 0.0;
#undef V
}

/* QL with implicit shifts on the tridiagonal (d, e); vt holds the
 * transformations transposed (row k = column k), so each rotation touches
 * two contiguous rows. Returns false when an eigenvalue needs more than
 * 60 iterations. */
static bool tql2(int64_t n, double *d, double *e, double *vt)
{
    for (int64_t i = 1; i < n; i++)
        e[i - 1] = e[i];
    e[n - 1] = 0.0;
    double f = 0.0, tst1 = 0.0, eps = ldexp(1.0, -52);
    for (int64_t l = 0; l < n; l++) {
        tst1 = fmax(tst1, fabs(d[l]) + fabs(e[l]));
        int64_t m = l;
        while (m < n - 1 && fabs(e[m]) > eps * tst1)
            m++;
        for (int iter = 0; m > l; iter++) {
            if (iter == 60)
                return false;
            double g = d[l], p = (d[l + 1] - g) / (2.0 * e[l]), r = hypot(p, 1.0);
            if (p < 0)
                r = -r;
            d[l] = e[l] / (p + r);
            d[l + 1] = e[l] * (p + r);
            double dl1 = d[l + 1], h = g - d[l];
            for (int64_t i = l + 2; i < n; i++)
                d[i] -= h;
            f += h;
            p = d[m];
            double c = 1.0, c2 = c, c3 = c, el1 = e[l + 1], s = 0.0, s2 = 0.0;
            for (int64_t i = m - 1; i >= l; i--) {
                c3 = c2;
                c2 = c;
                s2 = s;
                g = c * e[i];
                h = c * p;
                r = hypot(p, e[i]);
                e[i + 1] = s * r;
                s = e[i] / r;
                c = p / r;
                p = c * d[i] - s * g;
                d[i + 1] = h + s * (c * g + s * d[i]);
                double *a = vt + i * n, *b = vt + (i + 1) * n;
                for (int64_t k = 0; k < n; k++) {
                    h = b[k];
                    b[k] = s * a[k] + c * h;
                    a[k] = c * a[k] - s * h;
                }
            }
            p = -s * s2 * c3 * el1 * e[l] / dl1;
            e[l] = s * p;
            d[l] = c * p;
            if (!(fabs(e[l]) > eps * tst1))
                break;
        }
        d[l] += f;
        e[l] = 0.0;
    }
    return true;
}

static void transpose(int64_t n, double *a)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            double t = a[i * n + j];
            a[i * n + j] = a[j * n + i];
            a[j * n + i] = t;
        }
}

int nrt_eigen_sym_ql(int64_t n, const double *a, double *lambda, double *v)
{
    if (n < 1)
        return 0;
    double *e = malloc((size_t)n * sizeof *e);
    if (!e)
        return -1;
    memcpy(v, a, (size_t)(n * n) * sizeof *v);
    tred2(n, v, lambda, e);
    transpose(n, v);
    bool ok = tql2(n, lambda, e, v);
    transpose(n, v);
    free(e);
    if (!ok)
        return -1;
    sort_eigen(n, lambda, v);
    return 0;
}

/* cov (d x d, full) of x = p / 255 from the exact sums; mean receives E x. */
static void covariance(const uint64_t *s, const uint64_t *sums, int64_t count, int64_t d,
                       double *mean, double *cov)
{
    double nn = (double)count;
    for (int64_t i = 0; i < d; i++)
        mean[i] = (double)sums[i] / nn;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = i; j < d; j++) {
            double cij = ((double)s[i * d + j] / nn - mean[i] * mean[j]) / (255.0 * 255.0);
            cov[i * d + j] = cov[j * d + i] = cij;
        }
    for (int64_t i = 0; i < d; i++)
        mean[i] /= 255.0;
}

/* w = U diag(1 / sqrt(max(l, 0) + eps)) U^T; lambda is overwritten. */
static void zca_matrix(int64_t d, double *lambda, const double *u, double eps, double *w)
{
    for (int64_t k = 0; k < d; k++)
        lambda[k] = 1.0 / sqrt((lambda[k] > 0.0 ? lambda[k] : 0.0) + eps);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (d >= 128)
#endif
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < d; k++)
                acc += u[i * d + k] * lambda[k] * u[j * d + k];
            w[i * d + j] = acc;
        }
}

NrtStatus nrt_stats_zca(const uint8_t *images, int64_t count, int64_t d, double eps, double *mean,
                        double *w, NrtError *err)
{
    NrtStatus st = check_sizes("ZCA", images, count, d, err);
    if (st != NRT_OK)
        return st;
    if (d > ZCA_MAX_D || !(eps > 0.0) || !isfinite(eps))
        return nrt_error_set(err, NRT_ERR_ARG, "ZCA: needs at most %d values per image (got "
                             "%lld) and eps > 0 (got %g)", ZCA_MAX_D, (long long)d, eps);
    size_t dd = (size_t)(d * d);
    uint64_t *s = malloc(dd * sizeof *s), *sums = malloc((size_t)d * sizeof *sums);
    double *cov = malloc(dd * sizeof *cov), *u = malloc(dd * sizeof *u);
    double *lambda = malloc((size_t)d * sizeof *lambda);
    if (!s || !sums || !cov || !u || !lambda) {
        st = nrt_error_set(err, NRT_ERR_NOMEM, "ZCA: out of memory for %lld x %lld matrices",
                           (long long)d, (long long)d);
    } else {
        pixel_products(images, count, d, s);
        pixel_sums(images, count, d, sums);
        covariance(s, sums, count, d, mean, cov);
        if (nrt_eigen_sym_ql(d, cov, lambda, u) < 0)
            st = nrt_error_set(err, NRT_ERR_NUMERIC, "ZCA: the eigensolver did not converge");
        else
            zca_matrix(d, lambda, u, eps, w);
    }
    free(s);
    free(sums);
    free(cov);
    free(u);
    free(lambda);
    return st;
}
