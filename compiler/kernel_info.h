/* kernel_info.h - facts about a kernel program that every backend prints
 * the same way (emit_c.c prints them as C, jit_model.c uses them directly).
 * One function per fact, so the backends cannot drift apart on it.
 */
#ifndef NETC_KERNEL_INFO_H
#define NETC_KERNEL_INFO_H

#include "graph.h"
#include "kernel.h"

/* How a parameter is initialized: constant a, normal(0, a) or uniform(-a, a).
 * The values are what the generated C's layout table stores. */
typedef enum KInitDist { KDIST_CONST = 0, KDIST_NORMAL = 1, KDIST_UNIFORM = 2 } KInitDist;

/* The distribution p's initializer stands for, and its a. */
KInitDist kinfo_init_dist(const IrParam *p, double *a);

/* The penalty the numeric guard's pass adds to q's gradient (the update
 * fusion: no K_PENALTY step of its own), or 0 and 0. */
void kinfo_guard_penalty(const KProgram *kp, const KParam *q, double *l1, double *l2);

#endif
