#include "graph.h"
int ir_verify(const IrGraph *g, DiagSink *d) { (void)g; (void)d; return 0; }
void ir_print(const IrGraph *g, FILE *f) { (void)g; (void)f; }
