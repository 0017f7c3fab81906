/* frontend.c - the pipeline: parse, check, verify; see frontend.h. */
#include "frontend.h"

#include <string.h>

#include "sema.h"

bool netc_compilation_init(NetcCompilation *c, const char *path, const char *text, size_t len)
{
    memset(c, 0, sizeof *c);
    arena_init(&c->arena);
    diag_init(&c->diags, &c->arena);
    char *copy = arena_strndup(&c->arena, text, len);
    char *pathcopy = arena_strdup(&c->arena, path);
    if (!copy || !pathcopy)
        return false;
    c->src.path = pathcopy;
    c->src.text = copy;
    c->src.len = len;
    return true;
}

void netc_compilation_free(NetcCompilation *c)
{
    arena_free(&c->arena);
}

int netc_compile(NetcCompilation *c)
{
    DiagSink *d = &c->diags;
    if (parse_file(&c->src, &c->arena, d, &c->ast) || d->nerrors)
        return d->nerrors;
    if (sema_run(&c->ast, &c->arena, d, &c->graph) || d->nerrors) {
        c->graph = NULL;
        return d->nerrors;
    }
    if (ir_verify(c->graph, d)) {
        c->graph = NULL;
        return d->nerrors;
    }
    return 0;
}
