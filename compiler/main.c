/* main.c - the netc driver: command line, files, exit codes.
 *
 * The only place that prints diagnostics and decides exit status:
 *   0  success
 *   1  the input (a .net file, a data file, a checkpoint) has errors
 *   2  bad command line, or a file that cannot be read or written
 * Everything else lives in the compiler core (frontend.h), which never
 * prints or exits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dot.h"
#include "emit_c.h"
#include "frontend.h"
#include "netc_config.h"
#include "preview.h"
#include "report.h"
#include "train.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };
#define MAX_SOURCE_BYTES ((size_t)64 << 20)

static const char usage_text[] =
    "usage: netc <command> [options] MODEL.net\n"
    "\n"
    "commands:\n"
    "  check MODEL.net [--ir] [--ast]   check a model; print its layers, parameters and FLOPs\n"
    "                                   (--ir: the graph IR, --ast: the syntax tree)\n"
    "  graph MODEL.net [-o FILE.dot]    write the network as Graphviz DOT (default: stdout)\n"
    "  MODEL.net -o MODEL.c             generate C: MODEL.c and MODEL.h\n"
    "  train MODEL.net [flags]          train the model (--epochs --batch --seed --threads\n"
    "                                   --data --out --resume)\n"
    "  eval MODEL.net --weights CKPT    print test accuracy of a checkpoint\n"
    "  preview MODEL.net -o FILE.png    training samples as augmentation and mixing make\n"
    "                                   them (--data --seed --step --count --raw)\n"
    "\n"
    "options:\n"
    "  --color=auto|always|never        color diagnostics (auto: when stderr is a terminal)\n"
    "  --no-fuse[=LIST]                 generate code without the fusion passes (all, or the\n"
    "                                   listed ones of epilogue,bnfold,elementwise,update)\n"
    "  -h, --help                       this help\n"
    "  --version                        print the version\n"
    "\n"
    "exit status: 0 ok, 1 errors in the input, 2 bad usage or unreadable file\n";

typedef struct Options {
    const char *command;     /* "check", "graph", "emit", "train", "eval" */
    const char *input;
    const char *output;
    bool print_ir, print_ast;
    bool color;
    unsigned fuse_off;       /* IrFuse bits turned off by --no-fuse */
} Options;

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("netc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(run 'netc --help' for usage)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static bool want_color(const char *mode)
{
    if (strcmp(mode, "always") == 0)
        return true;
    if (strcmp(mode, "never") == 0)
        return false;
    const char *term = getenv("TERM");
    return isatty(STDERR_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
}

static bool is_command(const char *s)
{
    static const char *commands[] = {"check", "graph", "train", "eval"};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(s, commands[i]) == 0)
            return true;
    return false;
}

/* Parses argv into o; returns -1 to continue, or an exit status. */
static int parse_args(int argc, char **argv, Options *o)
{
    const char *color = "auto";
    int i = 1;
    if (i < argc && is_command(argv[i]))
        o->command = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("netc %s (LLVM JIT: %s, OpenMP: %s)\n", NETC_VERSION,
                   NETC_HAVE_LLVM ? "yes" : "no", NETC_HAVE_OPENMP ? "yes" : "no");
            return 0;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (++i == argc)
                return usage_error("%s needs a file name", a);
            o->output = argv[i];
        } else if (strcmp(a, "--no-fuse") == 0 || strncmp(a, "--no-fuse=", 10) == 0) {
            if (!ir_fuse_parse(a[9] ? a + 10 : NULL, &o->fuse_off))
                return usage_error("unknown fusion pass in '%s' (epilogue, bnfold, elementwise)", a);
        } else if (strcmp(a, "--ir") == 0) {
            o->print_ir = true;
        } else if (strcmp(a, "--ast") == 0) {
            o->print_ast = true;
        } else if (strncmp(a, "--color=", 8) == 0) {
            color = a + 8;
            if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never"))
                return usage_error("unknown color mode '%s' (auto, always or never)", color);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (o->input) {
            return usage_error("more than one model file given ('%s')", a);
        } else {
            o->input = a;
        }
    }
    if (!o->command)
        o->command = "emit";
    if (!o->input)
        return argc == 1 ? (fputs(usage_text, stderr), EXIT_USAGE)
                         : usage_error("no model file given");
    if ((o->print_ir || o->print_ast) && strcmp(o->command, "check") != 0)
        return usage_error("--ir and --ast go with 'netc check'");
    o->color = want_color(color);
    return -1;
}

/* Reads a whole file (NUL bytes are kept: the lexer reports them). Prints
 * why and returns NULL on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "netc: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    const char *why = buf ? NULL : "out of memory";
    while (!why) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *grown = cap < MAX_SOURCE_BYTES ? realloc(buf, cap * 2) : NULL;
        if (!grown)
            why = cap < MAX_SOURCE_BYTES ? "out of memory" : "larger than 64 MiB; not a model file";
        else
            buf = grown, cap *= 2;
    }
    if (!why && ferror(f))
        why = strerror(errno);
    fclose(f);
    if (why) {
        fprintf(stderr, "netc: cannot read '%s': %s\n", path, why);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int write_dot(const IrGraph *g, const char *path)
{
    if (!path) {
        dot_write(g, stdout);
        return 0;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "netc: cannot write '%s': %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    dot_write(g, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "netc: cannot write '%s': %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    return 0;
}

/* `netc check`: the memory the C backend plans, when it can lower the
 * model (lowering errors belong to `netc MODEL.net -o`, not to check, so
 * they are collected aside and dropped). */
static void print_plan(NetcCompilation *c, const char *path)
{
    DiagSink quiet;
    diag_init(&quiet, &c->arena);
    KProgram *kp = NULL;
    const char *base = strrchr(path, '/');
    if (lower_program(c->graph, base ? base + 1 : path, &quiet, &kp) == 0 && kp)
        report_plan(kp, stdout);
}

static int run(const Options *o, NetcCompilation *c)
{
    int nerr = netc_compile(c);
    if (o->print_ast && c->ast.src)
        ast_print(&c->ast, stdout);
    diag_print_all(&c->diags, stderr, o->color);
    if (c->arena.failed) {
        /* The message of the error that ran out may itself not fit. */
        fputs("netc: out of memory\n", stderr);
        return EXIT_INPUT;
    }
    if (nerr) {
        fprintf(stderr, "%d error%s.\n", nerr, nerr == 1 ? "" : "s");
        return EXIT_INPUT;
    }
    c->graph->fuse &= ~o->fuse_off;
    if (strcmp(o->command, "check") == 0) {
        if (o->print_ir)
            ir_print(c->graph, stdout);
        else if (!o->print_ast) {
            report_print(c->graph, stdout);
            print_plan(c, o->input);
        }
        return 0;
    }
    if (strcmp(o->command, "graph") == 0)
        return write_dot(c->graph, o->output);
    /* emit: MODEL.c and MODEL.h (train and eval never get here: main). */
    char h_path[4096], err[512];
    emitc_header_path(o->output, h_path, sizeof h_path);
    Diag *seen = c->diags.last;
    int st = emitc_files(c->graph, o->input, o->output, h_path, &c->diags, err, sizeof err);
    for (const Diag *dg = seen ? seen->next : c->diags.first; dg; dg = dg->next)
        diag_print(dg, stderr, o->color);
    if (st == EMITC_ERR_IO)
        fprintf(stderr, "netc: %s\n", err);
    return st == EMITC_OK ? 0 : st == EMITC_ERR_INPUT ? EXIT_INPUT : EXIT_USAGE;
}

/* Training runs many short OpenMP regions. With passive waiting each one
 * wakes a sleeping thread, about 70 us on an idle 2-vCPU KVM guest, which
 * cost small nets a third of their 2-thread speed; libgomp's default spin
 * (300,000 rounds, milliseconds) makes 2 threads up to 12x slower than 1
 * as soon as another process wants a core (bench/RESULTS.md, "wait
 * policy"). netc spins for TRAIN_SPINCOUNT rounds (about a millisecond:
 * longer than the gaps between a step's regions) and the thread tuner
 * (thread_tuner.h) drops to one thread while the cores are contended.
 * libgomp reads its settings once, when it is loaded, so unless the user
 * chose a policy, netc re-executes itself with one. */
#define TRAIN_SPINCOUNT "20000"

static void prefer_short_spin_openmp(char **argv)
{
    if (!NETC_HAVE_OPENMP || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("GOMP_SPINCOUNT", TRAIN_SPINCOUNT, 1) != 0)
        return;
    execv("/proc/self/exe", argv);   /* returns only on failure: carry on as we are */
}

int main(int argc, char **argv)
{
    /* train and eval have flags of their own (train.c). */
    if (argc > 1 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "eval") == 0)) {
        prefer_short_spin_openmp(argv);
        return train_main(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "preview") == 0)
        return preview_main(argc - 1, argv + 1, want_color);
    Options o = {0};
    int status = parse_args(argc, argv, &o);
    if (status >= 0)
        return status;
    if (strcmp(o.command, "emit") == 0 && !o.output)
        return usage_error("generating C needs -o MODEL.c");

    size_t len;
    char *text = read_file(o.input, &len);
    if (!text)
        return EXIT_USAGE;
    NetcCompilation c;
    bool ok = netc_compilation_init(&c, o.input, text, len);
    free(text);
    if (!ok) {
        fputs("netc: out of memory\n", stderr);
        netc_compilation_free(&c);
        return EXIT_INPUT;
    }
    status = run(&o, &c);
    netc_compilation_free(&c);
    return status;
}
