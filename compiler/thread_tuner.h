/* thread_tuner.h - netc train's choice between all its threads and one.
 *
 * netc train lets libgomp spin for a while when a thread waits for work
 * (main.c): on an idle machine a parallel region then starts in about 2 us
 * instead of about 70 us with passive waiting, which makes 2-thread
 * training of small nets up to 1.5x faster. But when another process wants
 * a core, a spinning thread takes it from the very thread it waits for,
 * and a step gets 2-12x slower (bench/RESULTS.md, "wait policy"). The tuner
 * times the steps and trains on one thread while that is faster: it probes
 * the other count now and then, and at once when the steps slow down or
 * the threads stop getting their cores. Every kernel gives the same bits
 * for any thread count, so the choice changes the speed, never the result.
 *
 * The tuner is pure: it is given the clocks and says which thread count
 * the next step should use, so tests drive it with made-up times.
 */
#ifndef NETC_THREAD_TUNER_H
#define NETC_THREAD_TUNER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ThreadTuner {
    int most;               /* the thread count netc may use (--threads or all cores) */
    int threads;            /* the count the next step runs with: most or 1 */
    double rate[2];         /* last images/s measured with most [0] and with 1 [1]; 0: none */
    bool probing;           /* the current window measures the other count */
    bool contended;         /* the last window's threads did not get their cores */
    double window_start;    /* wall clock at the start of the window; < 0: at the next step */
    double window_cpu;      /* process CPU time at the start of the window */
    int64_t window_images;
    double next_probe;      /* wall clock of the next probe; < 0: not planned yet */
    double interval;        /* seconds between probes; doubles while the choice holds */
} ThreadTuner;

/* Timing (seconds) and thresholds, exposed for tests. */
#define TUNER_WINDOW_S 0.05        /* a rate is measured over whole steps, at least this long */
#define TUNER_FIRST_PROBE_S 1.0    /* the first planned probe, and after the choice changes */
#define TUNER_MAX_INTERVAL_S 30.0  /* the longest time between planned probes */
#define TUNER_SLOWDOWN 0.7         /* a window this much slower than the last: probe now */
#define TUNER_CONTENDED 0.8        /* CPU time / (wall time x threads) below this: probe now */
#define TUNER_MARGIN 1.1           /* one thread wins only when this much faster */

/* most < 2 leaves the tuner idle: threads stays most. */
void tuner_init(ThreadTuner *t, int most);
/* A pause in the steps (evaluation, checkpoint): the next window starts
 * at the next step, so the pause is not counted as training time. */
void tuner_pause(ThreadTuner *t);
/* One step of `images` images ended at wall clock `now` with `cpu` seconds
 * of CPU time used by the whole process so far; returns the thread count
 * for the next step (t->threads). */
int tuner_step(ThreadTuner *t, int64_t images, double now, double cpu);

#endif
