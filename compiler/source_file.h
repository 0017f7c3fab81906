/* source_file.h - reading a model's source text for the driver commands.
 *
 * `netc train`, `netc eval` and `netc preview` read a .net file (and train
 * a hidden C file) the same way: at most 64 MiB, NUL bytes allowed (the
 * lexer reports them), every failure told on stderr as
 * "netc: cannot open|read 'PATH': why".
 */
#ifndef NETC_SOURCE_FILE_H
#define NETC_SOURCE_FILE_H

#include <stddef.h>

enum { NETC_MAX_SOURCE_MIB = 64 };

/* The whole file at path (malloc'ed, *len bytes, not NUL-terminated), or
 * NULL after printing why. */
char *netc_read_source(const char *path, size_t *len);

#endif
