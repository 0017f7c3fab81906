/* schedule.c - learning-rate schedules (LANGUAGE.md, `schedule ...;`).
 *
 * With lr the optimizer's rate, S the steps per epoch, E the epochs and
 * e = step / S the (fractional) epoch:
 *   constant            lr
 *   step(every, gamma)  lr * gamma^floor(step / (every * S))
 *   cosine(warmup=W)    lr * (step + 1) / (W * S)                for step < W*S
 *                       lr * (1 + cos(pi * (step - W*S) / (E*S - W*S))) / 2 after
 * The cosine would reach 0 at step E*S, one past the last step; steps past
 * the end (a resumed run with more epochs than configured) stay at 0 for
 * cosine and keep decaying for step.
 */
#include <math.h>

#include "netrt.h"

static const double pi = 3.14159265358979323846;

double nrt_schedule_lr(const NrtTrainConfig *c, int64_t step, int64_t steps_per_epoch)
{
    double lr = c->lr;
    int64_t S = steps_per_epoch > 0 ? steps_per_epoch : 1;
    if (step < 0)
        step = 0;
    switch (c->schedule) {
    case NRT_SCHED_CONSTANT:
        return lr;
    case NRT_SCHED_STEP: {
        int64_t every = c->step_every > 0 ? c->step_every * S : S;
        return lr * pow(c->step_gamma, (double)(step / every));
    }
    case NRT_SCHED_COSINE: {
        int64_t warm = c->warmup > 0 ? c->warmup * S : 0;
        int64_t total = (c->epochs > 0 ? c->epochs : 1) * S;
        if (step < warm)
            return lr * (double)(step + 1) / (double)warm;
        if (total <= warm || step >= total)
            return step >= total ? 0.0 : lr;
        return lr * 0.5 * (1.0 + cos(pi * (double)(step - warm) / (double)(total - warm)));
    }
    }
    return lr;
}
