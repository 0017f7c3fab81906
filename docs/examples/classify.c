/* classify.c - use a netc-generated model in your own program.
 *
 *     netc dsl-examples/lenet.net -o lenet.c          # writes lenet.c and lenet.h
 *     netc train dsl-examples/lenet.net --out lenet.safetensors
 *     cc -O2 -fopenmp -DMODEL_LENET -I runtime classify.c lenet.c \
 *        -L build/runtime -lnetrt -lm -o classify
 *     ./classify lenet.safetensors [COUNT]
 *
 * Loads the checkpoint, classifies the first COUNT Fashion-MNIST test images
 * (raw pixels in [0, 1]: predict() applies the model's own preprocessing)
 * and prints each prediction and the accuracy. Build it with -DMODEL_MLP to
 * use mlp.c instead; any generated model works the same way.
 */
#include <stdio.h>
#include <stdlib.h>

#include "netrt.h"

#ifdef MODEL_MLP
#include "mlp.h"
#define M(name) mlp_##name
#define BATCH MLP_BATCH
#define INPUT_SIZE MLP_INPUT_SIZE
#define CLASSES MLP_OUTPUT_LOGITS_SIZE
#else
#include "lenet.h"
#define M(name) lenet_##name
#define BATCH LENET_BATCH
#define INPUT_SIZE LENET_INPUT_SIZE
#define CLASSES LENET_OUTPUT_PROBS_SIZE
#endif

static const char *const class_names[10] = {
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
};

static int fail(const char *what, const NrtError *err)
{
    fprintf(stderr, "classify: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: classify CHECKPOINT [COUNT]\n");
        return 2;
    }
    int64_t count = argc > 2 ? atoll(argv[2]) : 1000;
    NrtError err = {0};
    NrtDataset data;
    if (nrt_dataset_load_fashion_mnist(NULL, &data, &err) != NRT_OK)
        return fail("test data", &err);
    if (count < 1 || count > data.test.count)
        count = data.test.count;

    NrtModel *model;
    if (M(create)(&model, 1, &err) != NRT_OK || M(load)(model, argv[1], &err) != NRT_OK)
        return fail(argv[1], &err);

    static float x[BATCH * INPUT_SIZE], scores[BATCH * CLASSES];
    float *const outs[] = {scores};
    int64_t index[BATCH], correct = 0;
    for (int64_t first = 0; first < count; first += BATCH) {
        int n = (int)(count - first < BATCH ? count - first : BATCH);
        for (int i = 0; i < n; i++)
            index[i] = first + i;
        int32_t labels[BATCH];
        if (nrt_dataset_gather(&data.test, index, n, x, labels, &err) != NRT_OK
            || M(predict)(model, x, n, outs, &err) != NRT_OK)
            return fail("predict", &err);
        int32_t guess[BATCH];
        nrt_argmax_rows(n, CLASSES, scores, guess);
        for (int i = 0; i < n; i++) {
            correct += guess[i] == labels[i];
            if (first + i < 5)
                printf("image %lld: %s (label: %s)\n", (long long)(first + i),
                       class_names[guess[i]], class_names[labels[i]]);
        }
    }
    printf("accuracy on %lld test images: %.2f%%\n", (long long)count,
           100.0 * (double)correct / (double)count);
    M(free)(model);
    nrt_dataset_free(&data);
    return 0;
}
