#include "sema.h"
int sema_run(const AstFile *f, Arena *a, DiagSink *d, IrGraph **out)
{
    (void)f; (void)a; *out = NULL;
    diag_error(d, (SrcSpan){0}, "checker not written yet");
    return 1;
}
