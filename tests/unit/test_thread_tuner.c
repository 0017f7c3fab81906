/* test_thread_tuner.c - netc train's thread-count choice (thread_tuner.c),
 * driven by simulated machines: each step takes 64 images / the machine's
 * rate for the thread count in use, and the process gets `share` of the
 * CPU time its threads could use (1: idle machine; one thread always gets
 * its core). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "thread_tuner.h"

typedef struct Machine {
    double rate_most, rate_one;   /* images/s with all threads, with one */
    double share;                 /* of the cores all threads could use (0: 1) */
    double now, cpu;
    int64_t steps_one;            /* steps run on one thread */
} Machine;

/* Runs steps for `seconds` of simulated time. */
static void run(ThreadTuner *t, Machine *m, double seconds)
{
    double end = m->now + seconds;
    while (m->now < end) {
        bool one = t->threads == 1;
        double dt = 64.0 / (one ? m->rate_one : m->rate_most);
        m->now += dt;
        m->cpu += dt * (one ? 1.0 : t->threads * (m->share > 0 ? m->share : 1.0));
        m->steps_one += one;
        tuner_step(t, 64, m->now, m->cpu);
    }
}

static void test_idle_machine_keeps_all_threads(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 40000, .rate_one = 30000 };
    tuner_init(&t, 2);
    run(&t, &m, 60);
    assert_int_equal(t.threads, 2);
    assert_true(t.rate[1] > 0);                    /* it did probe one thread */
    assert_true(t.interval == TUNER_MAX_INTERVAL_S);   /* and backed off */
    /* The probes cost little: under 1% of the steps ran on one thread. */
    assert_true(m.steps_one * 64 < 0.01 * 60 * 40000);
}

static void test_busy_machine_moves_to_one_thread(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 40000, .rate_one = 30000 };
    tuner_init(&t, 2);
    run(&t, &m, 20);
    assert_int_equal(t.threads, 2);
    m.rate_most = 5000;              /* another process: spinning threads lose their core */
    m.share = 0.65;
    run(&t, &m, 0.3);                /* seen in the next window or two */
    assert_int_equal(t.threads, 1);
    run(&t, &m, 60);
    assert_int_equal(t.threads, 1);
    m.rate_most = 40000;             /* the other process ended */
    m.share = 1;
    run(&t, &m, TUNER_MAX_INTERVAL_S + 1);
    assert_int_equal(t.threads, 2);
}

/* Contended from the first step: no earlier rate shows a slowdown, the
 * CPU time does. */
static void test_contention_from_the_start(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 8000, .rate_one = 14000, .share = 0.6 };
    tuner_init(&t, 2);
    run(&t, &m, 0.2);
    assert_int_equal(t.threads, 1);
}

/* Mild contention where all threads still win: one probe, not a probe
 * every window while it lasts. */
static void test_mild_contention_probes_once(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 20000, .rate_one = 14000, .share = 0.75 };
    tuner_init(&t, 2);
    run(&t, &m, 20);
    assert_int_equal(t.threads, 2);
    assert_true(m.steps_one * 64 < 0.01 * 20 * 20000);
}

static void test_noise_does_not_flip(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 30000, .rate_one = 32000 };   /* within the margin */
    tuner_init(&t, 4);
    run(&t, &m, 30);
    assert_int_equal(t.threads, 4);
    m.rate_one = 40000;                                      /* clearly faster */
    run(&t, &m, TUNER_MAX_INTERVAL_S + 1);
    assert_int_equal(t.threads, 1);
}

static void test_one_thread_is_left_alone(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 1000, .rate_one = 1e9 };
    tuner_init(&t, 1);
    run(&t, &m, 10);
    assert_int_equal(t.threads, 1);
    assert_true(t.rate[0] == 0 && t.rate[1] == 0);
}

/* The step after a pause (evaluation, checkpoint) is not timed: a pause
 * as long as the training so far must not look like a slowdown. */
static void test_pause_is_not_training_time(void **state)
{
    (void)state;
    ThreadTuner t;
    Machine m = { .rate_most = 40000, .rate_one = 20000 };
    tuner_init(&t, 2);
    run(&t, &m, 20);
    double interval = t.interval;
    tuner_pause(&t);
    m.now += 20;
    run(&t, &m, 0.2);
    assert_int_equal(t.threads, 2);
    assert_true(t.interval >= interval);   /* no slowdown probe reset it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_machine_keeps_all_threads),
        cmocka_unit_test(test_busy_machine_moves_to_one_thread),
        cmocka_unit_test(test_contention_from_the_start),
        cmocka_unit_test(test_mild_contention_probes_once),
        cmocka_unit_test(test_noise_does_not_flip),
        cmocka_unit_test(test_one_thread_is_left_alone),
        cmocka_unit_test(test_pause_is_not_training_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
