/* progress.h - training progress for `netc train`.
 *
 * On a terminal: one status line redrawn in place (at most ten times a
 * second): epoch, a bar with batch k/N, the running mean loss of the
 * epoch, images per second and the estimated time left for the whole run.
 * Elsewhere (a pipe, a log file): nothing during the epoch, then the same
 * plain summary line per epoch that a terminal keeps once the bar is gone.
 * The formatting functions are pure so tests can check them.
 */
#ifndef NETC_PROGRESS_H
#define NETC_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ProgressStats {
    int64_t epoch, epochs;      /* 1-based epoch of epochs */
    int64_t batch, nbatches;    /* batches done in this epoch, of nbatches */
    double loss;                /* running mean loss of the epoch */
    double images_per_s;
    double eta_s;               /* seconds left for the whole run; < 0: unknown */
} ProgressStats;

/* "1:02:03", "2:05" or "42s". */
void progress_format_duration(char *buf, size_t size, double seconds);
/* The terminal status line (no newline, no escape codes). */
void progress_format_bar(char *buf, size_t size, const ProgressStats *s);
/* The per-epoch summary: "epoch 2/10: loss 0.4321, 5210 img/s, 11.5s". */
void progress_format_epoch(char *buf, size_t size, const ProgressStats *s, double elapsed_s);

typedef struct Progress {
    FILE *f;
    bool tty;
    ProgressStats st;
    double loss_sum;
    int64_t loss_count;
    int64_t images;
    int64_t batches_left_after;  /* batches in the epochs after this one */
    double t_start, t_last_draw, elapsed;
    bool drawn, stopped;
} Progress;

double progress_now(void);      /* monotonic seconds */
void progress_init(Progress *p, FILE *f, bool tty);
/* Starts epoch `epoch` (1-based) of `epochs`, nbatches per epoch, resuming
 * after `done` batches. */
void progress_epoch_begin(Progress *p, int64_t epoch, int64_t epochs, int64_t nbatches,
                          int64_t done);
/* One training step of n images with this loss. */
void progress_step(Progress *p, int n, double loss);
/* Freezes the epoch's time and speed (call before test evaluation) and
 * clears the bar. */
void progress_epoch_stop(Progress *p);
/* Ends the epoch: clears the bar and prints the summary, then `extra`
 * (e.g. "; test accuracy: label 85.20%") and a newline. */
void progress_epoch_end(Progress *p, const char *extra);
/* Clears the bar without a summary (interrupted runs). */
void progress_abort(Progress *p);

#endif
