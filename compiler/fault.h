/* fault.h - the compiler's one door to malloc, so tests can fail the N-th
 * allocation (allocation-failure injection, SQLite-style faultsim).
 */
#ifndef NETC_FAULT_H
#define NETC_FAULT_H

#include <stddef.h>

void *netc_malloc(size_t size);
/* Make the n-th call from now (1-based) and every later one fail; 0 disables. */
void netc_fault_fail_after(long n);
/* netc_malloc calls since the last netc_fault_fail_after (tests size their loops with it). */
long netc_fault_calls(void);

#endif
