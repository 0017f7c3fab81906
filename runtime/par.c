/* par.c - whether a small kernel pays for a parallel region: what a region
 * costs on this machine, measured once, and the decision built on it.
 *
 * Why: on the 2-vCPU guest this is tuned on, an OpenMP region costs ~2 us
 * when libgomp's threads spin between regions (its default, or
 * GOMP_SPINCOUNT) and ~70 us with OMP_WAIT_POLICY=passive on an idle
 * machine (waking a halted vCPU), ~5 us passive when loaded. A batch-1
 * layer takes 5-50 us, so no fixed threshold is right for both policies.
 * nrt_par_threads() weighs a kernel's estimated one-thread time against
 * the measured cost instead.
 *
 * Measurement (nrt_par_region_ns): on first use for a team size T, one
 * warm-up region (it may create the threads), then PROBES regions of T
 * threads, each after GAP_NS of busy work on the calling thread (as a
 * layer's serial work precedes the next region: long enough for a passive
 * worker to sleep and its vCPU to halt), in which every thread is busy for
 * WORK_NS (a batch-1 layer's share); the cost is the median of the wall
 * time past WORK_NS. The work matters: on a loaded host a passive worker
 * wakes in ~4 us (an empty region's median) but then shares its core, and
 * a region with 10 us of work per thread took 24 us (measured with another
 * process training on 2 threads): the split lost there. The figure is
 * measured again when it is older than 2 s (about 0.1% of the time), as
 * the load, hence the cost, changes (with spinning threads a region
 * measured at 1.2 us took milliseconds once another process took a core),
 * and a probe over 1 ms ends a measurement. Thread-safe: the slot is
 * claimed with a compare-and-swap; a caller that finds a measurement under
 * way gets the previous figure, or "no region" (1 thread) if there is
 * none, instead of waiting.
 * nrt_par_set_region_ns fixes the cost (tests force both paths with it),
 * and so does the environment variable NRT_REGION_NS (nanoseconds) for a
 * whole process, read on first use.
 *
 * Bits: the choice decides only how many threads run a fixed partition of
 * the work; callers give every output element to exactly one part,
 * computed the same way in any part, so results never depend on it.
 * The cache is one of libnetrt's few globals (with the ISA choice).
 */
#define _POSIX_C_SOURCE 200809L
#include "netrt.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    MAX_TEAM = 64,      /* cached team sizes 2..MAX_TEAM (larger ones share the last) */
    PROBES = 7,
    GAP_NS = 200000,    /* 200 us: above the guest's halt-poll window (50 us) */
    WORK_NS = 20000,    /* each thread's busy time inside a probe */
    PAYBACK = 3,        /* a region must save this many times its cost */
    GIVE_UP_NS = 1000000,   /* a probe over 1 ms settles it: no split will pay */
};

#define REMEASURE_NS ((int64_t)2000000000)   /* the load changes: measure again after 2 s */
#define UNKNOWN ((int64_t)0)
#define MEASURING ((int64_t)-1)

static _Atomic int64_t forced_ns = -2;   /* >= 0: fixed; -1: measured; -2: read NRT_REGION_NS */

#ifdef _OPENMP
static _Atomic int64_t region_ns[MAX_TEAM + 1];   /* 0 unknown, -1 being measured */
static _Atomic int64_t region_at[MAX_TEAM + 1];   /* when it was measured (now_ns) */

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Busy work on the calling thread for about ns nanoseconds. */
static void busy_ns(int64_t ns)
{
    int64_t t0 = now_ns();
    while (now_ns() - t0 < ns) {
    }
}

static int64_t measure(int team)
{
#pragma omp parallel num_threads(team)
    busy_ns(1000);
    int64_t t[PROBES];
    for (int i = 0; i < PROBES; i++) {
        busy_ns(GAP_NS);
        int64_t t0 = now_ns();
#pragma omp parallel num_threads(team)
        busy_ns(WORK_NS);
        t[i] = now_ns() - t0 - WORK_NS;
        if (t[i] > GIVE_UP_NS)
            return t[i];
    }
    qsort(t, PROBES, sizeof t[0], cmp_i64);
    return t[PROBES / 2] > 0 ? t[PROBES / 2] : 1;
}
#endif

/* NRT_REGION_NS as a cost, or -1 (measure) when unset or not a number. */
static int64_t env_cost(void)
{
    const char *e = getenv("NRT_REGION_NS");
    char *end;
    long long v = e ? strtoll(e, &end, 10) : -1;
    return e && *e && !*end && v >= 0 ? (int64_t)v : -1;
}

int64_t nrt_par_region_ns(int threads)
{
    int64_t forced = atomic_load(&forced_ns);
    if (forced == -2) {
        int64_t expect = -2;
        atomic_compare_exchange_strong(&forced_ns, &expect, env_cost());
        forced = atomic_load(&forced_ns);
    }
    if (forced >= 0)
        return forced;
#ifdef _OPENMP
    if (threads <= 1 || omp_in_parallel())
        return INT64_MAX;
    int slot = threads < MAX_TEAM ? threads : MAX_TEAM;
    int64_t v = atomic_load(&region_ns[slot]), t = now_ns();
    if (v > 0 && t - atomic_load(&region_at[slot]) < REMEASURE_NS)
        return v;
    if (v == MEASURING || !atomic_compare_exchange_strong(&region_ns[slot], &v, MEASURING))
        return v > 0 ? v : INT64_MAX;   /* another thread is measuring: its last figure, or none */
    v = measure(threads);
    atomic_store(&region_at[slot], now_ns());
    atomic_store(&region_ns[slot], v);
    return v;
#else
    (void)threads;
    return INT64_MAX;
#endif
}

void nrt_par_set_region_ns(int64_t ns)
{
    if (ns >= 0) {
        atomic_store(&forced_ns, ns);
        return;
    }
    atomic_store(&forced_ns, -1);
#ifdef _OPENMP
    for (int i = 0; i <= MAX_TEAM; i++) {   /* measure again on next use */
        int64_t v = atomic_load(&region_ns[i]);
        if (v > 0)
            atomic_compare_exchange_strong(&region_ns[i], &v, UNKNOWN);
    }
#endif
}

int nrt_par_threads(double work_ns, int parts)
{
#ifndef _OPENMP
    (void)work_ns, (void)parts;
    return 1;
#else
    int t = nrt_get_threads();
    if (parts < t)
        t = parts;
    if (t <= 1 || omp_in_parallel())
        return 1;
    double saved = work_ns * (1.0 - 1.0 / t);
    int64_t cost = nrt_par_region_ns(t);
    if (cost == INT64_MAX || saved <= (double)PAYBACK * (double)cost)
        return 1;
    return t;
#endif
}
