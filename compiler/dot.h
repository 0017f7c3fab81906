/* dot.h - `netc graph`: the network as Graphviz DOT.
 *
 * Nodes are ops (losses as octagons, the input and targets as ellipses),
 * edges carry the shape of the tensor that flows along them, and every
 * block instance is a cluster nested inside the instance that called it.
 * Output is deterministic: everything is emitted in node-id order.
 */
#ifndef NETC_DOT_H
#define NETC_DOT_H

#include <stdio.h>

#include "graph.h"

void dot_write(const IrGraph *g, FILE *f);

#endif
