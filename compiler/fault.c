/* fault.c - counted malloc for allocation-failure injection; see fault.h. */
#include "fault.h"

#include <stdlib.h>

static long fail_countdown;   /* 0: injection off */
static long calls;            /* netc_malloc calls since the last netc_fault_fail_after */

void netc_fault_fail_after(long n)
{
    fail_countdown = n;
    calls = 0;
}

long netc_fault_calls(void)
{
    return calls;
}

void *netc_malloc(size_t size)
{
    calls++;
    if (fail_countdown > 0 && --fail_countdown == 0) {
        fail_countdown = 1;   /* keep failing: the caller must unwind */
        return NULL;
    }
    return malloc(size);
}
