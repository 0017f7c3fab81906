/* graph.h - the graph IR: what the network computes, fully checked.
 *
 * sema builds it from the AST; autodiff, the passes and both emitters read
 * it. Invariants (ir_verify checks them):
 *   - nodes are in topological order and node ids are their indices;
 *   - every value has exactly one producer and a static per-sample shape
 *     (the batch dimension N is implicit: a value of shape [C,H,W] is an
 *     N x C x H x W tensor at run time, [D] is N x D);
 *   - every size fits in int64 and the whole model fits under IR_MAX_BYTES;
 *   - blocks are expanded: a node remembers the block instance (IrScope) it
 *     came from only for naming and drawing;
 *   - defaults are resolved: every attribute, init and train setting holds
 *     its final value.
 * Everything lives in the compilation's Arena.
 */
#ifndef NETC_GRAPH_H
#define NETC_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

/* A model needing more than this for parameters plus per-batch activations
 * is refused (16 GiB: well past anything this compiler targets, well short
 * of a malloc that takes the machine down). */
#define IR_MAX_BYTES ((int64_t)16 << 30)
enum { IR_MAX_RANK = 4, IR_MAX_NODES = 1000000 };

enum {
    IR_F_PARAMS = 1 << 0,
    IR_F_RANDOM = 1 << 1,
    IR_F_TRAIN_ONLY = 1 << 2,
    IR_F_LOSS = 1 << 3,
    IR_F_ELEMENTWISE = 1 << 4,
};

typedef enum IrOp {
#define X(e, name, arity, flags) IR_OP_##e,
#include "ir_ops.def"
#undef X
    IR_OP_COUNT
} IrOp;

const char *ir_op_name(IrOp op);
int ir_op_arity(IrOp op);
unsigned ir_op_flags(IrOp op);

/* A shape without the batch dimension: [D] or [C, H, W]; parameters use up
 * to 4 dims ([F, C, K, K]). */
typedef struct IrShape {
    int rank;
    int64_t d[IR_MAX_RANK];
} IrShape;

int64_t ir_shape_numel(IrShape s);          /* product of dims (checked by sema) */
/* Writes "[1, 28, 28]" into buf; returns buf. */
char *ir_shape_str(IrShape s, char *buf, size_t size);

typedef struct IrNode IrNode;

typedef struct IrValue {
    int id;
    IrShape shape;
    IrNode *producer;
    const char *name;       /* the bound name if any, else the producer's name */
    SrcSpan sp;             /* where it was produced */
} IrValue;

typedef enum IrInitKind {
    IR_INIT_ZEROS, IR_INIT_ONES, IR_INIT_CONSTANT, IR_INIT_NORMAL, IR_INIT_UNIFORM,
    IR_INIT_XAVIER,          /* N(0, 1/fan_in) */
    IR_INIT_XAVIER_UNIFORM,  /* U(-sqrt(3/fan_in), sqrt(3/fan_in)) */
    IR_INIT_GLOROT,          /* N(0, 2/(fan_in+fan_out)) */
    IR_INIT_KAIMING,         /* N(0, gain/fan), gain = 2/(1+slope^2) */
    IR_INIT_KAIMING_UNIFORM, /* U(-sqrt(3 gain/fan), sqrt(3 gain/fan)) */
} IrInitKind;

typedef struct IrInit {
    IrInitKind kind;
    double value;           /* constant(v), normal(std), uniform(a) */
    bool fan_out;           /* kaiming(fan=out) */
    double slope;           /* kaiming(slope=a) */
    SrcSpan sp;
} IrInit;

const char *ir_init_name(IrInitKind k);

typedef enum IrParamKind {
    IR_PARAM_WEIGHT, IR_PARAM_BIAS, IR_PARAM_GAMMA, IR_PARAM_BETA,
    IR_PARAM_RUNNING_MEAN, IR_PARAM_RUNNING_VAR,   /* state, not trained */
} IrParamKind;

typedef struct IrParam {
    int id;
    const char *name;       /* "conv1.weight": unique, used in checkpoints */
    IrParamKind kind;
    IrShape shape;
    int64_t numel;
    int64_t fan_in, fan_out;
    IrInit init;
    double l1, l2;          /* resolved penalty coefficients (0 = none) */
    bool trainable;         /* false for running statistics */
    IrNode *owner;
} IrParam;

typedef struct IrScope IrScope;
struct IrScope {
    int id;
    const char *block;      /* block name */
    const char *label;      /* instance label, unique among siblings: "basic2" */
    IrScope *parent;        /* NULL: called from the top level */
    SrcSpan call_sp;        /* the call that expanded it */
};

struct IrNode {
    int id;
    IrOp op;
    const char *name;       /* unique: "conv1", "stage2.conv1" */
    IrScope *scope;         /* NULL at the top level */
    SrcSpan sp;             /* the op's call in the source */
    IrValue **in;
    int nin;
    IrValue *out;           /* losses: a scalar (rank 0) */
    IrParam *weight, *bias, *gamma, *beta, *running_mean, *running_var;
    union {
        struct { int64_t units; double dropconnect; } dense;
        struct { int64_t filters, kernel, stride, pad; double dropconnect; } conv;
        struct { int64_t size, stride, pad; } pool;
        struct { double ratio; bool overlap; } frac;
        struct { double slope; } leaky;
        struct { double momentum, eps; } bn;
        struct { double p; } drop;              /* dropout, drop_path */
        struct { double std; } noise;
        struct { int target; double weight, smoothing; } loss;
    };
};

typedef struct IrInput {
    const char *name;
    IrShape shape;
    SrcSpan sp;
    IrValue *value;
} IrInput;

typedef enum IrTargetKind { IR_TARGET_CLASSES, IR_TARGET_VALUES } IrTargetKind;
typedef enum IrTargetSource {
    IR_TARGET_FROM_DATA,    /* the first target: labels of the data set */
    IR_TARGET_FROM_MAP,     /* map(base, [...]) */
    IR_TARGET_FROM_FILE,    /* data idx(targets=[...]) */
} IrTargetSource;

typedef struct IrTarget {
    int id;
    const char *name;
    IrTargetKind kind;
    int64_t n;              /* classes(n) or values(n) */
    IrTargetSource source;
    int map_base;           /* FROM_MAP: index of the base target */
    int64_t *map;           /* FROM_MAP: map[base_label] = this label */
    int64_t nmap;
    SrcSpan sp;
} IrTarget;

typedef enum IrPreKind {
    IR_PRE_NONE, IR_PRE_SCALE, IR_PRE_MEAN_IMAGE, IR_PRE_MEAN_CHANNEL,
    IR_PRE_STANDARDIZE, IR_PRE_ZCA,
} IrPreKind;

typedef struct IrPreprocess {
    IrPreKind kind;
    double scale;           /* scale(s) */
    double eps;             /* zca(eps) */
    double *mean, *std;     /* literal statistics, or NULL: from the training set */
    int nmean, nstd;
    SrcSpan sp;
} IrPreprocess;

typedef enum IrOptKind { IR_OPT_SGD, IR_OPT_ADAM, IR_OPT_ADAMW } IrOptKind;
typedef enum IrSchedKind { IR_SCHED_CONSTANT, IR_SCHED_STEP, IR_SCHED_COSINE } IrSchedKind;
typedef enum IrAugKind {
    IR_AUG_TRANSLATE, IR_AUG_FLIP, IR_AUG_ROTATE, IR_AUG_CUTOUT, IR_AUG_NOISE,
} IrAugKind;
typedef enum IrMixKind { IR_MIX_NONE, IR_MIX_MIXUP, IR_MIX_CUTMIX } IrMixKind;
typedef enum IrDataKind { IR_DATA_FASHION_MNIST, IR_DATA_IDX } IrDataKind;

typedef struct IrAugment {
    IrAugKind kind;
    double amount;          /* translate px, rotate deg, cutout size, noise std */
    bool vertical;          /* flip(vertical) */
    SrcSpan sp;
} IrAugment;

typedef struct IrTrain {
    int64_t batch, epochs;
    uint64_t seed;
    struct {
        IrOptKind kind;
        double lr, momentum, beta1, beta2, eps, weight_decay;
        bool nesterov;
        SrcSpan sp;
    } opt;
    struct { IrSchedKind kind; int64_t every; double gamma; int64_t warmup; SrcSpan sp; } sched;
    struct { double l1, l2; bool biases; SrcSpan sp; } reg;
    IrAugment *aug;         /* in the order they are applied (LANGUAGE.md) */
    int naug;
    struct { IrMixKind kind; double alpha; SrcSpan sp; } mix;
    struct {
        IrDataKind kind;
        const char *train_images, *train_labels, *test_images, *test_labels;
        const char **target_files;   /* IR_TARGET_FROM_FILE targets, by target id */
        int ntarget_files;
        /* (added by sema) the test split's file of each target, by target id,
         * NULL when there is no test set or the target is not from a file;
         * target_files and target_test_files both have ntarget_files entries
         * (= the number of targets). */
        const char **target_test_files;
        SrcSpan sp;
    } data;
} IrTrain;

typedef struct IrOutput {
    const char *name;
    IrValue *value;
    SrcSpan sp;
} IrOutput;

/* The fusion passes lower.c may apply (docs/architecture.md, "Fusion"):
 * a code-generation choice carried with the graph, as the batch is. All
 * are on unless the driver turns them off (`--no-fuse[=LIST]`). */
typedef enum IrFuse {
    IR_FUSE_EPILOGUE = 1 << 0,  /* activation into the conv/dense/batchnorm before it */
    IR_FUSE_BN_FOLD = 1 << 1,   /* inference: batchnorm folded into the conv/dense before it */
    IR_FUSE_ELEMENTWISE = 1 << 2, /* add + activation in one loop; add's gradient aliased */
    IR_FUSE_UPDATE = 1 << 3,    /* the penalties inside the numeric guard's pass over the block */
    IR_FUSE_ALL = (1 << 4) - 1,
} IrFuse;

typedef struct IrGraph {
    Arena *a;
    unsigned fuse;          /* IrFuse bits; IR_FUSE_ALL from ir_graph_new */
    const char *model;      /* a valid C identifier, not a keyword */
    SrcSpan model_sp;
    IrInput input;
    Vec(IrTarget *) targets;
    IrPreprocess pre;
    Vec(IrNode *) nodes;    /* topological order, id = index */
    Vec(IrValue *) values;
    Vec(IrParam *) params;  /* in creation order: weight, bias, gamma, beta... */
    Vec(IrNode *) losses;   /* loss nodes, in source order */
    Vec(IrOutput) outputs;  /* explicit outputs, or one per loss's prediction */
    Vec(IrScope *) scopes;
    IrTrain train;
} IrGraph;

/* `--no-fuse[=LIST]`: the IrFuse bits to turn off. NULL or "" (plain
 * --no-fuse): all; else comma-separated names of epilogue, bnfold,
 * elementwise, update. False for an unknown name. */
bool ir_fuse_parse(const char *list, unsigned *off);

/* Builders (sema uses them; they keep ids and orders consistent). NULL when
 * the arena is exhausted. */
IrGraph *ir_graph_new(Arena *a);
IrValue *ir_value_new(IrGraph *g, IrShape shape, SrcSpan sp);
IrNode *ir_node_new(IrGraph *g, IrOp op, SrcSpan sp);
IrParam *ir_param_new(IrGraph *g, IrNode *owner, IrParamKind kind, IrShape shape);

/* Cost model, per sample: multiply-adds count 2 FLOPs. */
int64_t ir_node_flops(const IrNode *n);
int64_t ir_graph_param_count(const IrGraph *g);   /* trainable scalars */

/* Checks the invariants above; reports violations as internal errors into d.
 * Returns the number of problems. */
int ir_verify(const IrGraph *g, DiagSink *d);

/* A readable, stable dump of the whole graph (netc check --ir). */
void ir_print(const IrGraph *g, FILE *f);

#endif
