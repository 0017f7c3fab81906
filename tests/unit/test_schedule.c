/* test_schedule.c - learning-rate schedules (runtime/schedule.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "netrt.h"

static void test_schedule_constant(void **state)
{
    (void)state;
    NrtTrainConfig c = {.lr = 0.1, .epochs = 3, .schedule = NRT_SCHED_CONSTANT};
    assert_true(nrt_schedule_lr(&c, 0, 10) == 0.1);
    assert_true(nrt_schedule_lr(&c, 29, 10) == 0.1);
}

/* step(4, 0.3) as in mlp.net: x0.3 after epochs 4 and 8. */
static void test_schedule_step(void **state)
{
    (void)state;
    NrtTrainConfig c = {.lr = 0.01, .epochs = 10, .schedule = NRT_SCHED_STEP,
                        .step_every = 4, .step_gamma = 0.3};
    assert_true(nrt_schedule_lr(&c, 0, 100) == 0.01);
    assert_true(nrt_schedule_lr(&c, 399, 100) == 0.01);
    assert_true(fabs(nrt_schedule_lr(&c, 400, 100) - 0.003) < 1e-15);
    assert_true(fabs(nrt_schedule_lr(&c, 799, 100) - 0.003) < 1e-15);
    assert_true(fabs(nrt_schedule_lr(&c, 800, 100) - 0.0009) < 1e-15);
}

static void test_schedule_cosine(void **state)
{
    (void)state;
    NrtTrainConfig c = {.lr = 1.0, .epochs = 4, .schedule = NRT_SCHED_COSINE};
    assert_true(nrt_schedule_lr(&c, 0, 10) == 1.0);
    assert_true(fabs(nrt_schedule_lr(&c, 20, 10) - 0.5) < 1e-12);     /* halfway */
    assert_true(nrt_schedule_lr(&c, 39, 10) < 0.01);
    assert_true(nrt_schedule_lr(&c, 40, 10) == 0.0);
    for (int s = 1; s < 40; s++)
        assert_true(nrt_schedule_lr(&c, s, 10) < nrt_schedule_lr(&c, s - 1, 10));
}

/* cosine(warmup=1): linear ramp over the first epoch, then the cosine. */
static void test_schedule_cosine_warmup(void **state)
{
    (void)state;
    NrtTrainConfig c = {.lr = 1.0, .epochs = 3, .schedule = NRT_SCHED_COSINE, .warmup = 1};
    assert_true(fabs(nrt_schedule_lr(&c, 0, 10) - 0.1) < 1e-12);
    assert_true(fabs(nrt_schedule_lr(&c, 4, 10) - 0.5) < 1e-12);
    assert_true(nrt_schedule_lr(&c, 10, 10) == 1.0);
    assert_true(fabs(nrt_schedule_lr(&c, 20, 10) - 0.5) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_constant),
        cmocka_unit_test(test_schedule_step),
        cmocka_unit_test(test_schedule_cosine),
        cmocka_unit_test(test_schedule_cosine_warmup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
