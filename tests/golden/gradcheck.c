/* gradcheck.c - the generated train_step's gradients against central finite
 * differences of its own loss (tests/golden/gradcheck*.net). The training
 * step counter is held fixed, so the random masks, regions and mixing
 * partners are drawn once and stay the same during the differences.
 *
 *     cc gradcheck.c model.c -DMODEL_INFO=<model>_info -lnetrt -lm
 *
 * train_step with lr = 0 leaves every parameter where it is (SGD moves by
 * lr * velocity) and reports the loss and the gradient of this batch; the
 * batchnorm running statistics it updates do not enter the training-mode
 * loss. For up to 8 elements of every trainable parameter,
 *     fd = (loss(w + h) - loss(w - h)) / 2h,  h in {1e-3, 3e-4, 3e-3}
 * must match the gradient within 5e-4 + 5% for one of the steps (float32
 * forward passes; kinks of maxpool and leaky_relu spoil large steps), or,
 * when a kink lies within h (the one-sided differences disagree), one of
 * the one-sided differences must.
 * Exit 1 with one line per mismatch.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "netrt.h"

#ifndef MODEL_INFO
#error "compile with -DMODEL_INFO=<model>_info"
#endif
const NrtModelInfo *MODEL_INFO(void);

enum { N = 8 };

static const NrtModelInfo *info;
static NrtModel *m;
static NrtBatch batch;

/* Every random draw of a training step (dropout and dropconnect masks,
 * drop_path, noise, fractional pooling regions, mixing) is keyed by the
 * step counter: holding it at one value holds them fixed, so all the loss
 * evaluations of a check see the same function of the parameters. */
enum { FIXED_STEP = 7 };

static double loss_now(void)
{
    NrtError err;
    float loss;
    *info->step(m) = FIXED_STEP;
    if (info->train_step(m, &batch, 0.0f, &loss, &err) != NRT_OK) {
        fprintf(stderr, "gradcheck: train_step: %s\n", err.msg);
        exit(1);
    }
    return loss;
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

static void make_batch(void)
{
    static float x[N * 1024], values[NRT_MAX_TARGETS][N * 64];
    static int32_t labels[NRT_MAX_TARGETS][N];
    if (info->input_size > 1024)
        exit(1);
    for (int64_t i = 0; i < N * info->input_size; i++)
        x[i] = (float)(mix((uint32_t)i) % 1000) / 1000.0f;
    batch.x = x;
    batch.n = N;
    for (int t = 0; t < info->ntargets; t++) {
        for (int64_t i = 0; i < N * info->targets[t].n && i < N * 64; i++)
            values[t][i] = (float)(mix((uint32_t)(i + 5000)) % 1000) / 1000.0f;
        for (int i = 0; i < N; i++)
            labels[t][i] = (int32_t)(mix((uint32_t)(i + 9000 * (t + 1))) % (uint32_t)info->targets[t].n);
        batch.labels[t] = labels[t];
        batch.values[t] = values[t];
    }
}

typedef struct Diff {
    double central, fwd, bwd;   /* (L(w+h) - L(w-h)) / 2h, (L(w+h) - L(w)) / h, (L(w) - L(w-h)) / h */
} Diff;

/* Differences at element e around the loss l0 of the unperturbed w, which
 * is restored after. */
static Diff fdiff(float *w, int64_t e, double h, double l0)
{
    float w0 = w[e];
    w[e] = (float)(w0 + h);
    double hp = (double)w[e] - (double)w0, lp = loss_now();
    w[e] = (float)(w0 - h);
    double hm = (double)w0 - (double)w[e], lm = loss_now();
    w[e] = w0;
    return (Diff){(lp - lm) / (hp + hm), (lp - l0) / hp, (l0 - lm) / hm};
}

static bool close(double a, double b)
{
    return fabs(a - b) <= 5e-4 + 0.05 * fmax(fabs(a), fabs(b));
}

/* The central difference agrees, or a kink lies within h (the one-sided
 * differences disagree) and the gradient is the one-sided difference of
 * the side without it (maxpool ties, relu at 0). */
static bool agrees(double g, Diff d)
{
    return close(d.central, g) || (!close(d.fwd, d.bwd) && (close(d.fwd, g) || close(d.bwd, g)));
}

int main(void)
{
    /* A kink (maxpool, leaky_relu) within h spoils the larger steps, float
     * rounding the smaller one: an element passes when one of them agrees. */
    static const double steps[3] = {1e-3, 3e-4, 3e-3};
    info = MODEL_INFO();
    NrtError err;
    if (info->create(&m, 5, &err) != NRT_OK) {
        fprintf(stderr, "gradcheck: create: %s\n", err.msg);
        return 1;
    }
    make_batch();
    /* statistics (zca's whitening matrix) from 64 pseudo-random images */
    static uint8_t images[64 * 1024];
    for (int64_t i = 0; i < 64 * info->input_size; i++)
        images[i] = (uint8_t)(mix((uint32_t)(i + 77777)) & 255);
    if (info->fit_preprocess(m, images, 64, &err) != NRT_OK) {
        fprintf(stderr, "gradcheck: fit_preprocess: %s\n", err.msg);
        return 1;
    }
    int bad = 0, checked = 0;
    for (int p = 0; p < info->nparams; p++) {
        if (!info->params[p].trainable)
            continue;
        float *w = info->param(m, p);
        int64_t numel = info->params[p].numel;
        for (int k = 0; k < 8 && k < numel; k++) {
            int64_t e = numel <= 8 ? k : (int64_t)(mix((uint32_t)(p * 131 + k)) % (uint32_t)numel);
            double l0 = loss_now(), g = info->grad(m, p)[e], fd = 0;
            bool ok = false;
            for (int t = 0; t < 3 && !ok; t++) {
                Diff d = fdiff(w, e, steps[t], l0);
                fd = d.central;
                ok = agrees(g, d);
            }
            checked++;
            if (!ok) {
                printf("gradcheck: %s[%lld]: gradient %.6g, finite difference %.6g\n",
                       info->params[p].name, (long long)e, g, fd);
                bad++;
            }
        }
    }
    info->destroy(m);
    printf("gradcheck: %d of %d gradients match finite differences\n", checked - bad, checked);
    return bad ? 1 : 0;
}
