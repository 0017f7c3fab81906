/* train.h - `netc train` and `netc eval`: the training driver.
 *
 * train: compile the model, get its code from a backend (the cached C
 * shared object, cc_backend.h), load the data set, then per epoch shuffle
 * (Philox, purpose SHUFFLE), step through the batches with the scheduled
 * learning rate, evaluate on the test set and save a checkpoint. eval:
 * load a checkpoint and print test accuracy. Command-line flags override
 * the model's train section. The pieces below are exported for unit tests.
 */
#ifndef NETC_TRAIN_H
#define NETC_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

typedef struct TrainArgs {
    bool eval;                  /* `netc eval` */
    const char *model_path;
    int64_t epochs, batch;      /* 0: from the model */
    uint64_t seed;
    bool seed_set;
    int threads;                /* 0: OpenMP's default */
    const char *data_dir;       /* folder with the four Fashion-MNIST file names */
    const char *out;            /* checkpoint path; NULL: <model>.safetensors */
    const char *resume;         /* train: checkpoint to continue from */
    const char *weights;        /* eval: checkpoint to evaluate */
    const char *backend;        /* "jit" (default when built with LLVM) or "cc" */
    const char *c_source;       /* hidden: train this C file instead of generating it */
    int64_t limit_train, limit_test;   /* hidden: use only the first N samples (0: all) */
    const char *color;          /* auto, always, never */
    int64_t checkpoint_every;   /* also save every N steps inside an epoch (0: epoch ends only) */
    const char *on_nan;         /* "stop" (default) or "rollback" */
    bool elapsed;               /* end each epoch line with the wall time so far */
    unsigned fuse_off;          /* IrFuse bits turned off by --no-fuse[=LIST] */
    bool help;
} TrainArgs;

/* Parses argv[1..] of `netc train ...` / `netc eval ...` (argv[0] is the
 * command word). Returns 0, or 2 with a message in err. */
int train_parse_args(int argc, char **argv, TrainArgs *a, char *err, size_t errsize);

/* The configuration a run uses: the model's, with the flags applied. */
NrtTrainConfig train_effective_config(const NrtTrainConfig *model, const TrainArgs *a);

/* Number of steps in an epoch of `count` samples (the last batch may be
 * smaller). */
int64_t train_steps_per_epoch(int64_t count, int64_t batch);

/* For each classes or values target, the model output that predicts it
 * (-1: none): the first output not yet taken whose size is the number of
 * classes or values, targets in order. */
void train_match_outputs(const NrtModelInfo *info, int out_of_target[NRT_MAX_TARGETS]);

/* `netc train` / `netc eval`: argv[0] is "train" or "eval". Prints and
 * returns the exit status. */
int train_main(int argc, char **argv);

#endif
