/* emit_c.h - the C backend: kernel program -> MODEL.c + MODEL.h.
 *
 * The generated pair compiles with `cc -std=c11 -Wall -Wextra -Wpedantic
 * -Werror -fopenmp`, links against libnetrt only, and exports the API of
 * docs/generated-api.md (model name as prefix) plus `<model>_info()`, the
 * NrtModelInfo descriptor of runtime/netrt.h. Output is deterministic: the
 * same graph and source name give the same bytes.
 */
#ifndef NETC_EMIT_C_H
#define NETC_EMIT_C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "graph.h"
#include "kernel.h"

enum { EMITC_OK = 0, EMITC_ERR_INPUT = 1, EMITC_ERR_IO = 2 };

/* Prints kp as C: the source file into c, the header into h. h_name is how
 * the .c includes the header ("lenet.h"). Returns false if a write failed. */
bool emitc_print(const KProgram *kp, FILE *c, FILE *h, const char *h_name);

/* MODEL.h next to MODEL.c: c_path with its extension replaced by ".h"
 * (".h" appended when it has none). */
void emitc_header_path(const char *c_path, char *buf, size_t size);

/* Lowers g and writes c_path and h_path (each through a temporary file and
 * a rename). source_path names the .net file; only its basename goes into
 * the output. Returns EMITC_OK; EMITC_ERR_INPUT with errors reported into d
 * (unsupported constructs); EMITC_ERR_IO with err filled. */
int emitc_files(const IrGraph *g, const char *source_path, const char *c_path,
                const char *h_path, DiagSink *d, char *err, size_t errsize);

#endif
