/* fault.c - counted malloc for allocation-failure injection; see fault.h. */
#include "fault.h"

#include <stdlib.h>

static long fail_countdown;   /* 0: injection off */

void netc_fault_fail_after(long n)
{
    fail_countdown = n;
}

void *netc_malloc(size_t size)
{
    if (fail_countdown > 0 && --fail_countdown == 0) {
        fail_countdown = 1;   /* keep failing: the caller must unwind */
        return NULL;
    }
    return malloc(size);
}
