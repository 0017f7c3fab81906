/* frontend.h - the compiler core's entry point: text to checked graph IR.
 *
 * netc_compile() is the pipeline in one place (QBE's func()): each stage
 * runs in order and reports into the DiagSink; the first stage with errors
 * stops the pipeline. Nothing here prints or exits - the driver does.
 */
#ifndef NETC_FRONTEND_H
#define NETC_FRONTEND_H

#include "ast.h"
#include "graph.h"

typedef struct NetcCompilation {
    Arena arena;
    DiagSink diags;
    Source src;
    AstFile ast;
    IrGraph *graph;     /* NULL unless every stage succeeded */
} NetcCompilation;

/* Sets up c for the source text (copied; may contain NUL bytes). path is
 * only used in messages. Returns false when memory runs out. */
bool netc_compilation_init(NetcCompilation *c, const char *path, const char *text, size_t len);
void netc_compilation_free(NetcCompilation *c);

/* parse -> sema -> verify. Returns the number of errors. */
int netc_compile(NetcCompilation *c);

#endif
