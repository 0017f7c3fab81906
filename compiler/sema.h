/* sema.h - the checker: AST in, graph IR out.
 *
 * Resolves names, expands blocks (recursion and runaway expansion are
 * errors), validates every op, init, preprocess mode, optimizer, schedule,
 * augmentation and mix against LANGUAGE.md (unknown names and keys,
 * duplicates, value kinds, ranges), infers every shape with 64-bit overflow
 * checks and the IR_MAX_BYTES cap, and fills in every default.
 */
#ifndef NETC_SEMA_H
#define NETC_SEMA_H

#include "ast.h"
#include "graph.h"

/* Returns the number of errors reported into d; *out is the graph when that
 * number is 0 (NULL otherwise). */
int sema_run(const AstFile *f, Arena *a, DiagSink *d, IrGraph **out);

#endif
