/* report.h - `netc check`: the per-layer table a user reads.
 *
 * One row per graph node (name, op with its key attributes, output shape,
 * parameters, forward FLOPs per sample), then totals: trainable parameters,
 * forward FLOPs per sample, activation memory per sample, and the memory a
 * training step at the model's batch size needs; then, for models the C
 * backend lowers, the memory it plans (report_plan).
 */
#ifndef NETC_REPORT_H
#define NETC_REPORT_H

#include <stdio.h>

#include "graph.h"
#include "kernel.h"

void report_print(const IrGraph *g, FILE *f);

/* The memory the generated code allocates at create(): the activation
 * arena as planned (liveness reuse over the training step and predict, for
 * the compiled batch) next to the sum of its buffers without reuse, and the
 * parameter block (parameters, statistics, gradients, optimizer state). */
void report_plan(const KProgram *kp, FILE *f);

/* "conv 6x5x5 pad 2": the op and its defining attributes. */
void report_describe_op(const IrNode *n, char *buf, size_t size);

/* 1234567 -> "1.23M", bytes -> "4.5 MiB". */
void report_human_count(int64_t v, char *buf, size_t size);
void report_human_bytes(int64_t v, char *buf, size_t size);

#endif
