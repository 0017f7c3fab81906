/* kernel_info.c - facts about a kernel program shared by the backends
 * (kernel_info.h): the C emitter prints them, the JIT model uses them. */
#include "kernel_info.h"

#include <math.h>

/* fan_in / fan_out of 0 (a shape without one) count as 1. */
KInitDist kinfo_init_dist(const IrParam *p, double *a)
{
    const IrInit *in = &p->init;
    double fi = (double)(p->fan_in > 0 ? p->fan_in : 1), fo = (double)(p->fan_out > 0 ? p->fan_out : 1);
    double gain = 2.0 / (1.0 + in->slope * in->slope), fan = in->fan_out ? fo : fi;
    switch (in->kind) {
    case IR_INIT_ZEROS: *a = 0; return KDIST_CONST;
    case IR_INIT_ONES: *a = 1; return KDIST_CONST;
    case IR_INIT_CONSTANT: *a = in->value; return KDIST_CONST;
    case IR_INIT_NORMAL: *a = in->value; return KDIST_NORMAL;
    case IR_INIT_UNIFORM: *a = in->value; return KDIST_UNIFORM;
    case IR_INIT_XAVIER: *a = sqrt(1.0 / fi); return KDIST_NORMAL;
    case IR_INIT_XAVIER_UNIFORM: *a = sqrt(3.0 / fi); return KDIST_UNIFORM;
    case IR_INIT_GLOROT: *a = sqrt(2.0 / (fi + fo)); return KDIST_NORMAL;
    case IR_INIT_KAIMING: *a = sqrt(gain / fan); return KDIST_NORMAL;
    case IR_INIT_KAIMING_UNIFORM: *a = sqrt(3.0 * gain / fan); return KDIST_UNIFORM;
    }
    *a = 0;
    return KDIST_CONST;
}

void kinfo_guard_penalty(const KProgram *kp, const KParam *q, double *l1, double *l2)
{
    bool fused = kp->guard_penalties && q->grad >= 0;
    *l1 = fused ? q->p->l1 : 0;
    *l2 = fused ? q->p->l2 : 0;
}
