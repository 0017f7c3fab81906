/* ast.h - the syntax tree of a .net file, exactly as written.
 *
 * The parser builds it, sema reads it; nothing here knows what an op means.
 * Every node carries its source span. Chains and sums are stored flat (a
 * head and a list) rather than as left-deep trees, so a 100,000-link chain
 * costs no recursion depth; the only nesting is through parentheses, call
 * arguments and lists, which the parser caps at AST_MAX_DEPTH.
 *
 * All memory belongs to the compilation's Arena.
 */
#ifndef NETC_AST_H
#define NETC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

enum { AST_MAX_DEPTH = 256 };

typedef struct AstNode AstNode;

typedef enum AstKind {
    AST_CALL,    /* name or name(args): a tensor ref, an op, or a value word */
    AST_CHAIN,   /* head -> call -> call ... */
    AST_SUM,     /* term + term + ... */
    AST_PAREN,   /* ( expr ): kept so spans and printing stay faithful */
    AST_NUMBER,  /* 3, -2, 0.5, 5e-4 */
    AST_STRING,  /* "path" (escapes resolved) */
    AST_LIST,    /* [v, v, ...] */
} AstKind;

typedef struct AstArg {
    const char *key;    /* NULL for a positional argument */
    SrcSpan key_sp;
    AstNode *value;
} AstArg;

struct AstNode {
    AstKind kind;
    SrcSpan sp;          /* the whole node */
    union {
        struct {
            const char *name;
            SrcSpan name_sp;
            bool has_parens;        /* relu vs relu(): both are calls */
            AstArg *args;
            int nargs;
        } call;
        struct {
            AstNode *head;          /* a primary: AST_CALL or AST_PAREN */
            AstNode **calls;        /* each an AST_CALL */
            int ncalls;
        } chain;
        struct {
            AstNode **terms;        /* each a chain or primary, >= 2 of them */
            int nterms;
        } sum;
        struct {
            AstNode *inner;
        } paren;
        struct {
            double value;
            int64_t ival;           /* valid when is_int */
            bool is_int;            /* written without '.', 'e' and in int64 range */
            const char *text;       /* as written, for messages */
        } num;
        struct {
            const char *s;          /* escapes resolved; may contain no NUL */
            int len;
        } str;
        struct {
            AstNode **items;
            int n;
        } list;
    };
};

typedef enum AstStmtKind {
    STMT_MODEL,        /* model NAME; */
    STMT_INPUT,        /* input NAME [d, d, d]; */
    STMT_TARGET,       /* target NAME call [= call]; */
    STMT_PREPROCESS,   /* preprocess call; */
    STMT_DEFAULT,      /* default KEY call; */
    STMT_BLOCK,        /* block NAME(p, ...) { bind... } */
    STMT_BIND,         /* NAME = expr; */
    STMT_LOSS,         /* loss call [weight number]; */
    STMT_OUTPUT,       /* output NAME = expr; */
    STMT_TRAIN,        /* train { setting... } */
    /* settings, only inside train { } */
    STMT_SET_DATA, STMT_SET_OPTIMIZER, STMT_SET_SCHEDULE, STMT_SET_REGULARIZE,
    STMT_SET_MIX, STMT_SET_BATCH, STMT_SET_EPOCHS, STMT_SET_SEED, STMT_SET_AUGMENT,
} AstStmtKind;

typedef struct AstDim {
    int64_t value;
    SrcSpan sp;
} AstDim;

typedef struct AstStmt AstStmt;
struct AstStmt {
    AstStmtKind kind;
    SrcSpan sp;            /* the whole statement */
    const char *name;      /* model/input/target/block/bind/output name; default's key */
    SrcSpan name_sp;
    union {
        struct { AstDim *dims; int ndims; } input;
        struct { AstNode *kind; AstNode *derive; } target;   /* derive may be NULL */
        struct { AstNode *call; } preprocess, deflt, setting; /* deflt: default KEY call */
        struct { const char **params; SrcSpan *param_sps; int nparams;
                 AstStmt **body; int nbody; } block;          /* body: STMT_BIND only */
        struct { AstNode *expr; } bind, output;
        struct { AstNode *call; AstNode *weight; } loss;      /* weight may be NULL */
        struct { AstStmt **settings; int nsettings; } train;
        struct { int64_t value; SrcSpan value_sp; } int_setting;  /* batch/epochs/seed */
        struct { AstNode **calls; int ncalls; } augment;
    };
};

typedef struct AstFile {
    const Source *src;
    AstStmt **stmts;
    int nstmts;
} AstFile;

/* Parses src into *out. Syntax errors go to d (up to its limit); the
 * returned tree holds every statement that parsed. Returns the number of
 * errors reported. Never prints, never exits. */
int parse_file(const Source *src, Arena *a, DiagSink *d, AstFile *out);

/* Prints the tree as an indented S-expression (for tests and `netc parse`). */
void ast_print(const AstFile *f, FILE *out);
const char *ast_stmt_kind_name(AstStmtKind k);

#endif
