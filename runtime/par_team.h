/* par_team.h - private to libnetrt: inside a parallel region, this
 * thread's place in the team OpenMP gave (which may be smaller than the
 * num_threads asked for), and its share of a fixed partition. Thread t of
 * T takes the parts [P*t/T, P*(t+1)/T): every part goes to exactly one
 * thread, the same way for any T (par.c: results never depend on it).
 */
#ifndef NETRT_PAR_TEAM_H
#define NETRT_PAR_TEAM_H

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct NrtTeam {
    int64_t t, size;   /* this thread's number, and the team's size (1 outside a region) */
} NrtTeam;

static inline NrtTeam nrt_team(void)
{
#ifdef _OPENMP
    return (NrtTeam){ omp_get_thread_num(), omp_get_num_threads() };
#else
    return (NrtTeam){ 0, 1 };
#endif
}

/* The first part of this thread's share of `parts`, and one past its last. */
static inline int64_t nrt_team_lo(NrtTeam tm, int64_t parts) { return parts * tm.t / tm.size; }
static inline int64_t nrt_team_hi(NrtTeam tm, int64_t parts)
{
    return parts * (tm.t + 1) / tm.size;
}

#endif
