/* preview_driver.c - the tail of the driver preview_check.sh builds: it
 * follows `#include "m.c"` (a generated model) and the definitions of
 * input_steps (the generated train step's input steps, in order),
 * plain_steps (predict's preprocessing step), PLAIN_OFFSET (its output),
 * MODEL_CREATE, MODEL_FIT, MODEL_BATCH and INPUT_OFFSET (the arena offset
 * of the first layer's input).
 *
 *   driver IMAGES SEED STEP OUT PLAIN
 *
 * Takes the batch `netc train` feeds at global step STEP (the epoch's
 * Philox shuffle, pixels / 255), fits the model's preprocessing on all of
 * IMAGES, runs the input steps with m->step = STEP and writes the input
 * buffer to OUT (float32); PLAIN gets the batch through preprocessing
 * alone (augmentation and mixing off), so the caller can see they acted.
 */
#include <stdio.h>

static int fail(const char *what, const NrtError *err)
{
    fprintf(stderr, "driver: %s: %s\n", what, err ? err->msg : "out of memory");
    return 1;
}

static int write_floats(const char *path, const float *x, int64_t count)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, (size_t)count, f) == (size_t)count;
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok ? 0 : fail(path, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return fprintf(stderr, "usage: driver IMAGES SEED STEP OUT PLAIN\n"), 2;
    uint64_t seed = strtoull(argv[2], NULL, 10), step = strtoull(argv[3], NULL, 10);
    NrtError err = {0};
    NrtIdx idx;
    if (nrt_idx_load(argv[1], &idx, &err) != NRT_OK)
        return fail("images", &err);
    NrtModel *m;
    if (MODEL_CREATE(&m, seed, &err) != NRT_OK)
        return fail("create", &err);
    if (MODEL_FIT(m, idx.data, idx.count, &err) != NRT_OK)
        return fail("fit_preprocess", &err);
    int64_t B = MODEL_BATCH, D = idx.item_size, count = idx.count;
    int64_t spe = (count + B - 1) / B, epoch = (int64_t)(step / (uint64_t)spe);
    int64_t k = (int64_t)(step % (uint64_t)spe), n = count - k * B < B ? count - k * B : B;
    int64_t *order = malloc((size_t)count * sizeof *order);
    float *x = malloc((size_t)(B * D) * sizeof *x);
    if (!order || !x)
        return fail("buffers", NULL);
    nrt_rng_permutation(seed, NRT_RNG_SHUFFLE, (uint64_t)epoch, count, order);
    const uint8_t *px = idx.data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < D; j++)
            x[i * D + j] = (float)px[order[k * B + i] * D + j] * (1.0f / 255.0f);
    m->x = x;
    m->step = step;
    input_steps(m, (int)n);
    if (write_floats(argv[4], A(INPUT_OFFSET), n * D))
        return 1;
    /* the same batch through the inference preprocessing step alone */
    plain_steps(m, (int)n);
    if (write_floats(argv[5], A(PLAIN_OFFSET), n * D))
        return 1;
    free(order);
    free(x);
    nrt_idx_free(&idx);
    return 0;
}
