/* linear_model.c - a hand-written stand-in for the generated C of
 * tests/e2e/linear.net (softmax regression 784 -> 10, standardize,
 * SGD with momentum 0.9).
 *
 * Test scaffolding for the training driver and the C backend (cache,
 * compile, dlopen, the NrtModelInfo contract), not the product: netc's
 * emitter produces the real thing. Its checkpoint is a plain binary file
 * ("LINFIX1" magic, structure hash, step, statistics, parameters), checked
 * for magic, hash and size.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

enum { B = 64, D = 784, K = 10 };
#define STRUCTURE_HASH UINT64_C(0x6c696e6561723031)

struct NrtModel {
    float w[K * D], b[K];
    float gw[K * D], gb[K];
    float vw[K * D], vb[K];     /* momentum */
    float mean, std;
    uint64_t step;
    float logits[B * K], xs[B * D];
};

const NrtModelInfo *linear_info(void);

static NrtStatus lin_create(NrtModel **out, uint64_t seed, NrtError *err)
{
    NrtModel *m = calloc(1, sizeof *m);
    if (!m)
        return nrt_error_set(err, NRT_ERR_NOMEM, "out of memory");
    /* Small deterministic weights from the seed (xorshift). */
    uint64_t s = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
    for (int i = 0; i < K * D; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        m->w[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.01f;
    }
    m->std = 1;
    *out = m;
    return NRT_OK;
}

static void lin_destroy(NrtModel *m) { free(m); }

static NrtStatus lin_save(const NrtModel *m, const char *path, NrtError *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    uint64_t h = STRUCTURE_HASH;
    int ok = f && fwrite("LINFIX1", 8, 1, f) && fwrite(&h, 8, 1, f) && fwrite(&m->step, 8, 1, f)
          && fwrite(&m->mean, 4, 1, f) && fwrite(&m->std, 4, 1, f)
          && fwrite(m->w, sizeof m->w, 1, f) && fwrite(m->b, sizeof m->b, 1, f)
          && fwrite(m->vw, sizeof m->vw, 1, f) && fwrite(m->vb, sizeof m->vb, 1, f);
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0)
        return nrt_error_set(err, NRT_ERR_IO, "%s: cannot write", path);
    return NRT_OK;
}

static NrtStatus lin_load(NrtModel *m, const char *path, NrtError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nrt_error_set(err, NRT_ERR_IO, "%s: cannot open", path);
    char magic[8] = {0};
    uint64_t h = 0;
    NrtModel tmp = *m;
    int ok = fread(magic, 8, 1, f) && memcmp(magic, "LINFIX1", 8) == 0;
    ok = ok && fread(&h, 8, 1, f);
    if (ok && h != STRUCTURE_HASH) {
        fclose(f);
        return nrt_error_set(err, NRT_ERR_MISMATCH, "%s: checkpoint of another model", path);
    }
    ok = ok && fread(&tmp.step, 8, 1, f) && fread(&tmp.mean, 4, 1, f) && fread(&tmp.std, 4, 1, f)
      && fread(tmp.w, sizeof tmp.w, 1, f) && fread(tmp.b, sizeof tmp.b, 1, f)
      && fread(tmp.vw, sizeof tmp.vw, 1, f) && fread(tmp.vb, sizeof tmp.vb, 1, f);
    fclose(f);
    if (!ok)
        return nrt_error_set(err, NRT_ERR_FORMAT, "%s: not a linear checkpoint or truncated",
                             path);
    *m = tmp;
    return NRT_OK;
}

static NrtStatus lin_fit(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < count * D; i++) {
        double v = images[i] / 255.0;
        s += v;
        s2 += v * v;
    }
    double n = (double)(count * D), mean = s / n;
    m->mean = (float)mean;
    m->std = (float)sqrt(s2 / n - mean * mean);
    if (!(m->std > 0))
        return nrt_error_set(err, NRT_ERR_NUMERIC, "constant images: std = 0");
    return NRT_OK;
}

static void forward(NrtModel *m, const float *x, int n)
{
    for (int i = 0; i < n * D; i++)
        m->xs[i] = (x[i] - m->mean) / m->std;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            float acc = m->b[k];
            for (int j = 0; j < D; j++)
                acc += m->w[k * D + j] * m->xs[i * D + j];
            m->logits[i * K + k] = acc;
        }
}

static void softmax_row(float *row)
{
    float mx = row[0], sum = 0;
    for (int k = 1; k < K; k++)
        mx = row[k] > mx ? row[k] : mx;
    for (int k = 0; k < K; k++)
        sum += row[k] = expf(row[k] - mx);
    for (int k = 0; k < K; k++)
        row[k] /= sum;
}

static NrtStatus lin_predict(NrtModel *m, const float *x, int n, float *const *outs,
                             NrtError *err)
{
    if (n < 0 || n > B)
        return nrt_error_set(err, NRT_ERR_ARG, "batch of %d > %d", n, B);
    forward(m, x, n);
    for (int i = 0; i < n; i++) {
        memcpy(outs[0] + i * K, m->logits + i * K, K * sizeof(float));
        softmax_row(outs[0] + i * K);
    }
    return NRT_OK;
}

static NrtStatus lin_train_step(NrtModel *m, const NrtBatch *b, float lr, float *loss,
                                NrtError *err)
{
    if (b->n < 1 || b->n > B)
        return nrt_error_set(err, NRT_ERR_ARG, "batch of %d not in 1..%d", b->n, B);
    forward(m, b->x, b->n);
    double total = 0;
    memset(m->gw, 0, sizeof m->gw);
    memset(m->gb, 0, sizeof m->gb);
    for (int i = 0; i < b->n; i++) {
        float *p = m->logits + i * K;
        softmax_row(p);
        int y = b->labels[0][i];
        total -= log(p[y] > 1e-30f ? p[y] : 1e-30f);
        p[y] -= 1;
        for (int k = 0; k < K; k++) {
            float g = p[k] / (float)b->n;
            m->gb[k] += g;
            for (int j = 0; j < D; j++)
                m->gw[k * D + j] += g * m->xs[i * D + j];
        }
    }
    for (int i = 0; i < K * D; i++) {
        m->vw[i] = 0.9f * m->vw[i] + m->gw[i];
        m->w[i] -= lr * m->vw[i];
    }
    for (int k = 0; k < K; k++) {
        m->vb[k] = 0.9f * m->vb[k] + m->gb[k];
        m->b[k] -= lr * m->vb[k];
    }
    m->step++;
    *loss = (float)(total / b->n);
    return NRT_OK;
}

static float *lin_param(NrtModel *m, int i) { return i == 0 ? m->w : i == 1 ? m->b : NULL; }
static float *lin_grad(NrtModel *m, int i) { return i == 0 ? m->gw : i == 1 ? m->gb : NULL; }
static uint64_t *lin_step(NrtModel *m) { return &m->step; }

static const NrtTargetInfo targets[] = {
    {.name = "label", .kind = NRT_TARGET_CLASSES, .n = K, .source = NRT_TARGET_FROM_DATA},
};
static const NrtOutputInfo outputs[] = {{.name = "probs", .size = K}};
static const NrtParamInfo params[] = {
    {.name = "dense1.weight", .rank = 2, .shape = {K, D}, .numel = K * D, .trainable = true},
    {.name = "dense1.bias", .rank = 1, .shape = {K}, .numel = K, .trainable = true},
};

static const NrtModelInfo info = {
    .abi = NRT_MODEL_ABI, .name = "linear", .structure_hash = STRUCTURE_HASH, .batch = B,
    .input_rank = 1, .input_shape = {D}, .input_size = D,
    .ntargets = 1, .targets = targets, .noutputs = 1, .outputs = outputs,
    .nparams = 2, .params = params,
    .train = {.batch = B, .epochs = 1, .seed = 1, .optimizer = NRT_OPT_SGD, .lr = 0.01,
              .momentum = 0.9, .schedule = NRT_SCHED_CONSTANT},
    .create = lin_create, .destroy = lin_destroy, .save = lin_save, .load = lin_load,
    .fit_preprocess = lin_fit, .predict = lin_predict, .train_step = lin_train_step,
    .param = lin_param, .grad = lin_grad, .step = lin_step,
};

const NrtModelInfo *linear_info(void) { return &info; }
