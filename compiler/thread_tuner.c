/* thread_tuner.c - netc train's choice between all its threads and one
 * (thread_tuner.h says why).
 *
 * Steps are timed in windows of at least TUNER_WINDOW_S. A probe runs one
 * window with the other thread count, then the faster count stays (one
 * thread must win by TUNER_MARGIN, so noise does not move an idle machine
 * to one thread). Probes come:
 * - at once when a window of all threads shows contention: the process got
 *   less than TUNER_CONTENDED of the CPU time its threads could use
 *   (spinning counts as use, so an idle machine shows about 1.0) -- once
 *   per episode, not again while it lasts;
 * - at once when a window runs TUNER_SLOWDOWN slower than the one before;
 * - planned, TUNER_FIRST_PROBE_S after the start, then twice as far apart
 *   each time the choice holds, up to TUNER_MAX_INTERVAL_S (on one thread
 *   this is how the tuner sees that the other process has gone).
 * The step after a pause is not timed: it pays for the pause's cold cache.
 */
#include "thread_tuner.h"

static int slot(int threads) { return threads == 1; }

void tuner_init(ThreadTuner *t, int most)
{
    *t = (ThreadTuner){ .most = most > 0 ? most : 1, .threads = most > 0 ? most : 1,
                        .window_start = -1, .next_probe = -1,
                        .interval = TUNER_FIRST_PROBE_S };
}

void tuner_pause(ThreadTuner *t)
{
    t->window_start = -1;
}

/* The end of a probe: keep the faster count. */
static void end_probe(ThreadTuner *t, double now)
{
    int best = t->rate[1] > TUNER_MARGIN * t->rate[0] ? 1 : t->most;
    int before = t->threads == 1 ? t->most : 1;   /* a probe runs the other count */
    t->probing = false;
    if (best == before)
        t->interval = t->interval * 2 < TUNER_MAX_INTERVAL_S ? t->interval * 2
                                                             : TUNER_MAX_INTERVAL_S;
    else
        t->interval = TUNER_FIRST_PROBE_S;
    t->next_probe = now + t->interval;
    t->threads = best;
}

static void end_window(ThreadTuner *t, double rate, double busy, double now)
{
    double *last = &t->rate[slot(t->threads)];
    bool slowed = !t->probing && *last > 0 && rate < TUNER_SLOWDOWN * *last;
    bool contended = t->threads > 1 && busy < TUNER_CONTENDED;
    bool newly_contended = contended && !t->contended && !t->probing;
    if (t->threads > 1)
        t->contended = contended;
    *last = rate;
    if (t->probing) {
        end_probe(t, now);
    } else if (slowed || newly_contended || now >= t->next_probe) {
        t->probing = true;
        t->threads = t->threads == 1 ? t->most : 1;
    }
}

int tuner_step(ThreadTuner *t, int64_t images, double now, double cpu)
{
    if (t->most < 2)
        return t->threads;
    if (t->window_start < 0) {   /* the first step after a pause: not timed */
        t->window_start = now;
        t->window_cpu = cpu;
        t->window_images = 0;
        if (t->next_probe < 0)
            t->next_probe = now + TUNER_FIRST_PROBE_S;
        return t->threads;
    }
    t->window_images += images;
    double dt = now - t->window_start;
    if (dt < TUNER_WINDOW_S)
        return t->threads;
    double busy = (cpu - t->window_cpu) / (dt * t->threads);
    end_window(t, (double)t->window_images / dt, busy, now);
    t->window_start = now;
    t->window_cpu = cpu;
    t->window_images = 0;
    return t->threads;
}
