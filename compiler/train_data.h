/* train_data.h - the data side of `netc train`: which files, loading them
 * for a model's input and targets, shuffling and batch gathering.
 *
 * A split holds the raw uint8 images (count x input_size) and, per target,
 * int32 labels (classes; derived `map` targets already applied) or float
 * values (count x n). Images become floats in [0, 1] only when gathered
 * into a batch, so a split costs one byte per pixel.
 */
#ifndef NETC_TRAIN_DATA_H
#define NETC_TRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

typedef struct TrainSplit {
    int64_t count;
    int64_t input_size;
    uint8_t *images;
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
} TrainSplit;

typedef struct TrainDataRequest {
    const NrtModelInfo *info;
    const NrtTrainConfig *cfg;    /* data file names (NULL: Fashion-MNIST) */
    const char *data_dir;         /* --data: overrides cfg's files */
    const char *model_path;       /* relative idx(...) paths are relative to its folder */
    bool want_train;              /* false: test split only (eval) */
    int64_t limit_train, limit_test;   /* keep only the first N (0: all) */
} TrainDataRequest;

/* The four file names a run reads into paths[0..3] (train images, train
 * labels, test images, test labels). */
void train_data_paths(const TrainDataRequest *rq, char paths[4][4096]);

/* Loads the splits; on failure err says which file and why (the runtime's
 * message) and nothing stays allocated. */
NrtStatus train_data_load(const TrainDataRequest *rq, TrainSplit *train, TrainSplit *test,
                          NrtError *err);
void train_data_free(TrainSplit *s);

/* order[0..count) = the epoch's permutation of 0..count-1, from Philox
 * keyed by (seed, SHUFFLE, epoch): the same for any thread count. */
void train_data_shuffle(uint64_t seed, uint64_t epoch, int64_t count, int64_t *order);

/* Batch of the samples idx[0..n): x (n x input_size floats in [0, 1]),
 * labels[t] / values[t] for each target (buffers from the caller). */
void train_data_gather(const TrainSplit *s, const NrtModelInfo *info, const int64_t *idx, int n,
                       float *x, int32_t *const *labels, float *const *values);
/* x = samples first .. first+n-1. */
void train_data_gather_range(const TrainSplit *s, int64_t first, int n, float *x);

#endif
