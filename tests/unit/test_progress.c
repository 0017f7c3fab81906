/* test_progress.c - netc train's progress line and epoch summaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

static void test_progress_duration(void **state)
{
    (void)state;
    char b[32];
    progress_format_duration(b, sizeof b, 42.4);
    assert_string_equal(b, "42s");
    progress_format_duration(b, sizeof b, 125);
    assert_string_equal(b, "2:05");
    progress_format_duration(b, sizeof b, 3723);
    assert_string_equal(b, "1:02:03");
    progress_format_duration(b, sizeof b, -1);
    assert_string_equal(b, "?");
}

static void test_progress_bar_line(void **state)
{
    (void)state;
    ProgressStats s = {.epoch = 2, .epochs = 10, .batch = 469, .nbatches = 938,
                       .loss = 0.43216, .images_per_s = 5210.4, .eta_s = 83};
    char b[256];
    progress_format_bar(b, sizeof b, &s);
    assert_string_equal(b, "epoch 2/10 [############............] 469/938 loss 0.4322 5210 img/s "
                           "ETA 1:23");
}

static void test_progress_epoch_line(void **state)
{
    (void)state;
    ProgressStats s = {.epoch = 3, .epochs = 3, .batch = 938, .nbatches = 938, .loss = 0.3,
                       .images_per_s = 6000};
    char b[256];
    progress_format_epoch(b, sizeof b, &s, 10.04);
    assert_string_equal(b, "epoch 3/3: loss 0.3000, 6000 img/s, 10.0s");
}

/* Not a terminal: no bar, one line per epoch with the epoch's mean loss. */
static void test_progress_plain_output(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    Progress p;
    progress_init(&p, f, false);
    progress_epoch_begin(&p, 1, 2, 3, 0);
    progress_step(&p, 64, 1.0);
    progress_step(&p, 64, 2.0);
    progress_step(&p, 10, 3.0);
    fflush(f);
    assert_int_equal(len, 0);
    progress_epoch_end(&p, "; test accuracy: label 80.00%");
    fclose(f);
    assert_non_null(strstr(buf, "epoch 1/2: loss 2.0000, "));
    assert_non_null(strstr(buf, "; test accuracy: label 80.00%\n"));
    assert_null(strchr(buf, '\r'));
    assert_int_equal(strchr(buf, '\n') - buf + 1, (long)strlen(buf));   /* one line */
    free(buf);
}

/* A terminal: the bar is drawn with \r and erased before the summary. */
static void test_progress_tty_output(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Progress p;
    progress_init(&p, f, true);
    progress_epoch_begin(&p, 1, 1, 2, 0);
    progress_step(&p, 64, 0.5);
    progress_step(&p, 64, 0.5);   /* the last batch is always drawn */
    progress_epoch_end(&p, NULL);
    fclose(f);
    assert_non_null(strstr(buf, "\repoch 1/1 [########################] 2/2 loss 0.5000"));
    assert_non_null(strstr(buf, "\r\033[Kepoch 1/1: loss 0.5000"));
    free(buf);
}

/* Resuming mid-epoch counts from the resumed batch. */
static void test_progress_resume_counts(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/null", "w");
    Progress p;
    progress_init(&p, f, false);
    progress_epoch_begin(&p, 2, 3, 10, 7);
    progress_step(&p, 64, 1.0);
    assert_int_equal(p.st.batch, 8);
    assert_int_equal(p.batches_left_after, 10);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_duration),
        cmocka_unit_test(test_progress_bar_line),
        cmocka_unit_test(test_progress_epoch_line),
        cmocka_unit_test(test_progress_plain_output),
        cmocka_unit_test(test_progress_tty_output),
        cmocka_unit_test(test_progress_resume_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
