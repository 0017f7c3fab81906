/* train.c - `netc train` and `netc eval`: the training driver.
 *
 * Input: a .net file and flags. The model is checked by the front end
 * (diagnostics as in `netc check`), its code comes from a backend (the
 * LLVM JIT in-process, jit.c, when netc was built with LLVM; else the C one:
 * cc_backend.c; --backend chooses), and everything the run does
 * goes through the model's NrtModelInfo (netrt.h), so both backends drive
 * the same loop and print the same numbers. Guarantees: the same seed gives
 * the same shuffles for any thread count (Philox, purpose SHUFFLE, keyed by
 * the epoch), a checkpoint is written atomically at the end of every epoch
 * and every --checkpoint-every steps (the runtime's save, with the run's
 * position as metadata), and an interrupt (SIGINT) stops after the current
 * step without touching the last checkpoint. Resuming continues from the
 * checkpoint's step and seed: epoch = step / steps_per_epoch, and because an
 * epoch's order depends only on (seed, epoch) and every draw of the step on
 * (seed, step), a resumed run is bitwise the uninterrupted one. A NaN or Inf
 * found by the generated step's guard stops the run or (--on-nan rollback)
 * reloads the last checkpoint once.
 */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc_backend.h"
#include "emit_c.h"
#include "frontend.h"
#include "kernel.h"
#include "netc_config.h"
#if NETC_HAVE_LLVM
#include "jit.h"
#endif
#include "progress.h"
#include "source_file.h"
#include "thread_tuner.h"
#include "train_data.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };
enum { ERRBUF = 16384 };

static const char train_usage[] =
    "usage: netc train MODEL.net [flags]\n"
    "       netc eval MODEL.net --weights CKPT [flags]\n"
    "\n"
    "flags (override the model's train section):\n"
    "  --epochs N        number of epochs\n"
    "  --batch N         batch size\n"
    "  --seed N          seed of every random draw (init, shuffling, dropout, ...)\n"
    "  --threads N       at most N OpenMP threads (default: all cores); one while\n"
    "                    that trains faster (another process is busy on the cores)\n"
    "  --data DIR        a folder with the four Fashion-MNIST file names\n"
    "                    (train-images-idx3-ubyte.gz, ...; gzip'ed or plain)\n"
    "  --out FILE        checkpoint written after each epoch (default MODEL.safetensors)\n"
    "  --resume CKPT     continue training from a checkpoint (same seed and data)\n"
    "  --checkpoint-every N  also save the checkpoint every N steps within an epoch\n"
    "  --on-nan stop|rollback  a NaN or Inf in the loss, a gradient or a parameter\n"
    "                    stops training before the update (stop, the default), or\n"
    "                    reloads the last checkpoint and continues (rollback)\n"
    "  --elapsed         end each epoch's line with the wall time since netc started\n"
    "                    and the training time so far (time to accuracy)\n"
    "  --weights CKPT    eval: the checkpoint to evaluate\n"
    "  --backend jit|cc  how the model's code is built: jit = LLVM in-process (the\n"
    "                    default when netc has LLVM), cc = C compiler + cache\n"
    "  --no-fuse[=LIST]  generate the model's code without the fusion passes (all, or\n"
    "                    the listed ones of epilogue,bnfold,elementwise,update)\n"
    "  --color=auto|always|never\n"
    "\n"
    "exit status: 0 ok, 1 errors in the model, data or checkpoint, 2 bad usage,\n"
    "130 interrupted\n";

/* ---- command line ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int arg_error(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

/* A decimal integer in [lo, hi] (lo >= 0); false on junk, overflow or range. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > (unsigned long long)hi || (int64_t)v < lo)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* "--name value" or "--name=value": returns the value or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = false;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = true;
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    *matched = true;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

typedef enum FlagKind { F_COUNT, F_SEED, F_THREADS, F_STRING, F_LIMIT } FlagKind;

typedef struct FlagSpec {
    const char *name;
    FlagKind kind;
    size_t offset;
} FlagSpec;

#define FLAG(n, k, field) {n, k, offsetof(TrainArgs, field)}
static const FlagSpec flag_specs[] = {
    FLAG("--epochs", F_COUNT, epochs),       FLAG("--batch", F_COUNT, batch),
    FLAG("--seed", F_SEED, seed),            FLAG("--threads", F_THREADS, threads),
    FLAG("--data", F_STRING, data_dir),      FLAG("--out", F_STRING, out),
    FLAG("--resume", F_STRING, resume),      FLAG("--weights", F_STRING, weights),
    FLAG("--backend", F_STRING, backend),    FLAG("--c-source", F_STRING, c_source),
    FLAG("--limit-train", F_LIMIT, limit_train), FLAG("--limit-test", F_LIMIT, limit_test),
    FLAG("--color", F_STRING, color),
    FLAG("--checkpoint-every", F_COUNT, checkpoint_every), FLAG("--on-nan", F_STRING, on_nan),
};

static int set_flag(TrainArgs *a, const FlagSpec *f, const char *v, char *err, size_t errsize)
{
    char *field = (char *)a + f->offset;
    int64_t n;
    switch (f->kind) {
    case F_COUNT:
    case F_LIMIT:
        if (!parse_int(v, 1, f->kind == F_COUNT ? INT32_MAX : INT64_MAX / 2, &n))
            return arg_error(err, errsize, "%s needs a whole number >= 1, not '%s'", f->name, v);
        memcpy(field, &n, sizeof n);
        return 0;
    case F_SEED:
        if (!parse_u64(v, &a->seed))
            return arg_error(err, errsize, "--seed needs a whole number in 0..2^64-1, not '%s'",
                             v);
        a->seed_set = true;
        return 0;
    case F_THREADS:
        if (!parse_int(v, 1, 4096, &n))
            return arg_error(err, errsize, "--threads needs a number in 1..4096, not '%s'", v);
        a->threads = (int)n;
        return 0;
    case F_STRING:
        if (!*v)
            return arg_error(err, errsize, "%s needs a value", f->name);
        memcpy(field, &v, sizeof v);
        return 0;
    }
    return 0;
}

/* Checks combinations once every flag is known. */
static int check_args(TrainArgs *a, char *err, size_t errsize)
{
    if (!a->model_path)
        return arg_error(err, errsize, "no model file given");
    if (!a->backend)    /* a hand-written C file needs the C backend */
        a->backend = NETC_HAVE_LLVM && !a->c_source ? "jit" : "cc";
    if (strcmp(a->backend, "cc") != 0 && strcmp(a->backend, "jit") != 0)
        return arg_error(err, errsize, "unknown backend '%s' (jit or cc)", a->backend);
    if (strcmp(a->backend, "jit") == 0 && !NETC_HAVE_LLVM)
        return arg_error(err, errsize, "this netc was built without LLVM: --backend jit is not "
                                       "available (use --backend cc)");
    if (strcmp(a->backend, "jit") == 0 && a->c_source)
        return arg_error(err, errsize, "--c-source needs --backend cc");
    if (strcmp(a->color, "auto") && strcmp(a->color, "always") && strcmp(a->color, "never"))
        return arg_error(err, errsize, "unknown color mode '%s' (auto, always or never)",
                         a->color);
    if (a->eval && !a->weights)
        return arg_error(err, errsize, "netc eval needs --weights CKPT");
    if (strcmp(a->on_nan, "stop") != 0 && strcmp(a->on_nan, "rollback") != 0)
        return arg_error(err, errsize, "--on-nan needs 'stop' or 'rollback', not '%s'", a->on_nan);
    if (a->eval && (a->resume || a->out || a->epochs || a->checkpoint_every || a->elapsed))
        return arg_error(err, errsize, "--resume, --out, --epochs, --checkpoint-every and "
                                       "--elapsed go with 'netc train'");
    if (!a->eval && a->weights)
        return arg_error(err, errsize, "--weights goes with 'netc eval' (use --resume to "
                                       "continue training)");
    return 0;
}

int train_parse_args(int argc, char **argv, TrainArgs *a, char *err, size_t errsize)
{
    memset(a, 0, sizeof *a);
    a->eval = argc > 0 && strcmp(argv[0], "eval") == 0;
    a->color = "auto";
    a->on_nan = "stop";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->help = true;
            return 0;
        }
        if (strcmp(arg, "--elapsed") == 0) {    /* flags without a value: --elapsed, --no-fuse */
            a->elapsed = true;
            continue;
        }
        if (strcmp(arg, "--no-fuse") == 0 || strncmp(arg, "--no-fuse=", 10) == 0) {
            if (!ir_fuse_parse(arg[9] ? arg + 10 : NULL, &a->fuse_off))
                return arg_error(err, errsize, "unknown fusion pass in '%s' (epilogue, bnfold, "
                                               "elementwise)", arg);
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof flag_specs / sizeof *flag_specs && !matched; k++) {
            const char *v = flag_value(argc, argv, &i, flag_specs[k].name, &matched);
            if (matched && !v)
                return arg_error(err, errsize, "%s needs a value", flag_specs[k].name);
            if (matched && set_flag(a, &flag_specs[k], v, err, errsize))
                return EXIT_USAGE;
        }
        if (matched)
            continue;
        if (arg[0] == '-' && arg[1] != '\0')
            return arg_error(err, errsize, "unknown option '%s'", arg);
        if (a->model_path)
            return arg_error(err, errsize, "more than one model file given ('%s')", arg);
        a->model_path = arg;
    }
    return check_args(a, err, errsize);
}

/* ---- configuration ----------------------------------------------------------- */

NrtTrainConfig train_effective_config(const NrtTrainConfig *model, const TrainArgs *a)
{
    NrtTrainConfig c = *model;
    if (a->epochs)
        c.epochs = a->epochs;
    if (a->batch)
        c.batch = a->batch;
    if (a->seed_set)
        c.seed = a->seed;
    return c;
}

int64_t train_steps_per_epoch(int64_t count, int64_t batch)
{
    return batch > 0 ? (count + batch - 1) / batch : 0;
}

void train_match_outputs(const NrtModelInfo *info, int out_of_target[NRT_MAX_TARGETS])
{
    bool taken[NRT_MAX_OUTPUTS] = {false};
    for (int t = 0; t < NRT_MAX_TARGETS; t++) {
        out_of_target[t] = -1;
        if (t >= info->ntargets)
            continue;
        for (int o = 0; o < info->noutputs && o < NRT_MAX_OUTPUTS; o++) {
            if (!taken[o] && info->outputs[o].size == info->targets[t].n) {
                taken[o] = true;
                out_of_target[t] = o;
                break;
            }
        }
    }
}

/* ---- model: front end and backend ------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
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

typedef struct EmitCtx {
    const IrGraph *g;
    const char *source_path;   /* the .net file, for the generated header comment */
    const char *c_source;      /* --c-source: copied instead of generated */
    Arena *arena;              /* the compilation's, for the C backend's diagnostics */
    bool color;
} EmitCtx;

static bool copy_file(const char *from, const char *to, char *err, size_t errsize)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    if (out && fclose(out) != 0)
        ok = false;
    if (in)
        fclose(in);
    if (!ok)
        snprintf(err, errsize, "cannot copy '%s' to '%s': %s", from, to, strerror(errno));
    return ok;
}

/* The model's C from the emitter. */
/* Generates the model's C through the C backend. Unsupported constructs are
 * reported with their locations here, as `netc model.net -o model.c` would. */
static bool train_emit_c(const EmitCtx *e, const char *c_path, const char *h_path, char *err,
                         size_t errsize)
{
    DiagSink d;
    diag_init(&d, e->arena);
    int rc = emitc_files(e->g, e->source_path, c_path, h_path, &d, err, errsize);
    if (rc == EMITC_ERR_INPUT) {
        diag_print_all(&d, stderr, e->color);
        snprintf(err, errsize, "cannot generate C for model '%s' (%d error%s above)",
                 e->g->model, d.nerrors, d.nerrors == 1 ? "" : "s");
    }
    return rc == EMITC_OK;
}

static bool emit_model(void *ctx, const char *c_path, const char *h_path, char *err,
                       size_t errsize)
{
    const EmitCtx *e = ctx;
    if (e->c_source)
        return copy_file(e->c_source, c_path, err, errsize);
    return train_emit_c(e, c_path, h_path, err, errsize);
}

/* NETC_TEST_POISON=STEP:WHAT:VALUE, for the tests of the numeric guard:
 * before step STEP (1-based) write VALUE (nan, inf, -inf or a number) into
 * element 0 of parameter WHAT, of the batch's input when WHAT is "input",
 * or of the batch's values of target WHAT (a huge finite target under mse
 * makes the loss the only thing that overflows). Once. */
typedef struct TrainPoison {
    uint64_t step;             /* 0: off */
    char what[128];
    float value;
} TrainPoison;

typedef struct Session {
    TrainArgs args;
    bool color;
    char *text;
    size_t len;
    NetcCompilation comp;
    bool comp_live;
    CcbModule mod;
#if NETC_HAVE_LLVM
    JitModule *jit;
#endif
    const NrtModelInfo *info;
    NrtModel *model;
    NrtTrainConfig cfg;
    TrainSplit train, test;
    char out_path[4096];
    const char *last_ckpt;     /* the checkpoint a rollback reloads (NULL: none yet) */
    int64_t rolled_back_to;    /* the step of the last rollback (-1: none) */
    TrainPoison poison;        /* NETC_TEST_POISON (tests only) */
    double t_start;            /* progress_now() when train_main began (--elapsed) */
    double train_s;            /* seconds of training steps in this run so far (--elapsed) */
    ThreadTuner tuner;         /* all threads or one, whichever trains faster now */
    bool thread_flip;          /* NETC_TEST_THREAD_FLIP (tests only) */
    int64_t epoch_steps, steps_on_one;   /* this epoch's steps, and those the tuner chose 1 thread for */
} Session;

/* Front end: diagnostics as `netc check` prints them. */
static int compile_model(Session *s)
{
    s->text = netc_read_source(s->args.model_path, &s->len);
    if (!s->text)
        return EXIT_USAGE;
    if (!netc_compilation_init(&s->comp, s->args.model_path, s->text, s->len)) {
        fputs("netc: out of memory\n", stderr);
        return EXIT_INPUT;
    }
    s->comp_live = true;
    int nerr = netc_compile(&s->comp);
    diag_print_all(&s->comp.diags, stderr, s->color);
    if (s->comp.arena.failed) {
        fputs("netc: out of memory\n", stderr);
        return EXIT_INPUT;
    }
    if (nerr) {
        fprintf(stderr, "%d error%s.\n", nerr, nerr == 1 ? "" : "s");
        return EXIT_INPUT;
    }
    /* The batch is a compile-time constant of the generated code. */
    if (s->args.batch)
        s->comp.graph->train.batch = s->args.batch;
    s->comp.graph->fuse &= ~s->args.fuse_off;
    return 0;
}

#if NETC_HAVE_LLVM
/* The kernel program (unsupported constructs reported with their locations,
 * as the C backend does), compiled in-process. */
static int open_jit(Session *s)
{
    DiagSink d;
    diag_init(&d, &s->comp.arena);
    KProgram *kp = NULL;
    const char *slash = strrchr(s->args.model_path, '/');
    if (lower_program(s->comp.graph, slash ? slash + 1 : s->args.model_path, &d, &kp)) {
        diag_print_all(&d, stderr, s->color);
        fprintf(stderr, "netc: cannot compile model '%s' (%d error%s above)\n", s->comp.graph->model,
                d.nerrors, d.nerrors == 1 ? "" : "s");
        return EXIT_INPUT;
    }
    char *err = malloc(ERRBUF);
    s->jit = err ? jit_open(kp, err, ERRBUF) : NULL;
    if (!s->jit) {
        fprintf(stderr, "netc: %s\n", err ? err : "out of memory");
        free(err);
        return EXIT_INPUT;
    }
    free(err);
    s->info = jit_info(s->jit);
    return 0;
}
#endif

static int open_backend(Session *s)
{
#if NETC_HAVE_LLVM
    if (strcmp(s->args.backend, "jit") == 0)
        return open_jit(s);
#endif
    char variant[64];
    snprintf(variant, sizeof variant, "batch=%" PRId64 ";fuse=%u%s", s->comp.graph->train.batch,
             s->comp.graph->fuse, s->args.c_source ? ";hand-written" : "");
    EmitCtx ectx = {s->comp.graph, s->args.model_path, s->args.c_source, &s->comp.arena,
                   s->color};
    CcbRequest req = {s->comp.graph->model, s->text, s->len, variant, emit_model, &ectx};
    /* A hand-written C file is keyed by its own bytes. */
    char *c_text = NULL;
    if (s->args.c_source) {
        if (!(c_text = netc_read_source(s->args.c_source, &req.source_len)))
            return EXIT_USAGE;
        req.source = c_text;
    }
    char *err = malloc(ERRBUF);
    bool ok = err && ccb_open(&req, &s->mod, err, ERRBUF);
    if (!ok)
        fprintf(stderr, "netc: %s\n", err ? err : "out of memory");
    free(c_text);
    free(err);
    if (!ok)
        return EXIT_INPUT;
    s->info = s->mod.info;
    return 0;
}

/* ---- evaluation --------------------------------------------------------------- */

typedef struct EvalResult {
    int64_t count;
    double accuracy[NRT_MAX_TARGETS];   /* percent; classes targets */
    double mse[NRT_MAX_TARGETS];        /* values targets */
    bool has[NRT_MAX_TARGETS];
} EvalResult;

static void score_chunk(const NrtModelInfo *info, const TrainSplit *d, int64_t first, int n,
                        float *const *outs, const int *match, double *sums)
{
    for (int t = 0; t < info->ntargets; t++) {
        int o = match[t];
        if (o < 0)
            continue;
        int64_t size = info->outputs[o].size;
        for (int i = 0; i < n; i++) {
            const float *row = outs[o] + (int64_t)i * size;
            if (info->targets[t].kind == NRT_TARGET_CLASSES) {
                int64_t best = 0;
                for (int64_t j = 1; j < size; j++)
                    if (row[j] > row[best])
                        best = j;
                sums[t] += best == d->labels[t][first + i];
            } else {
                const float *want = d->values[t] + (first + i) * size;
                for (int64_t j = 0; j < size; j++)
                    sums[t] += ((double)row[j] - want[j]) * ((double)row[j] - want[j]);
            }
        }
    }
}

/* Runs predict over the whole split in chunks of the model's batch. */
static NrtStatus evaluate(const NrtModelInfo *info, NrtModel *m, const TrainSplit *d,
                          EvalResult *r, NrtError *err)
{
    int match[NRT_MAX_TARGETS];
    train_match_outputs(info, match);
    int64_t B = info->batch;
    float *x = malloc((size_t)(B * info->input_size) * sizeof *x);
    float *outs[NRT_MAX_OUTPUTS] = {NULL};
    bool ok = x != NULL;
    for (int o = 0; o < info->noutputs && ok; o++)
        ok = (outs[o] = malloc((size_t)(B * info->outputs[o].size) * sizeof(float))) != NULL;
    NrtStatus st = ok ? NRT_OK : nrt_error_set(err, NRT_ERR_NOMEM, "out of memory (evaluation)");
    double sums[NRT_MAX_TARGETS] = {0};
    for (int64_t first = 0; st == NRT_OK && first < d->count; first += B) {
        int n = (int)(d->count - first < B ? d->count - first : B);
        train_data_gather_range(d, first, n, x);
        st = info->predict(m, x, n, outs, err);
        if (st == NRT_OK)
            score_chunk(info, d, first, n, outs, match, sums);
    }
    memset(r, 0, sizeof *r);
    r->count = d->count;
    for (int t = 0; t < info->ntargets && t < NRT_MAX_TARGETS; t++) {
        r->has[t] = match[t] >= 0 && d->count > 0;
        double per = d->count > 0 ? sums[t] / (double)d->count : 0;
        if (info->targets[t].kind == NRT_TARGET_CLASSES)
            r->accuracy[t] = 100.0 * per;
        else
            r->mse[t] = per / (double)info->targets[t].n;
    }
    for (int o = 0; o < info->noutputs; o++)
        free(outs[o]);
    free(x);
    return st;
}

/* "test accuracy: label 85.21%, coarse 93.10%; test mse: ink 0.00123". */
static void format_eval(const NrtModelInfo *info, const EvalResult *r, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int kind = 0; kind < 2; kind++) {
        const char *sep = kind == 0 ? "test accuracy: " : "test mse: ";
        for (int t = 0; t < info->ntargets && n < size; t++) {
            bool classes = info->targets[t].kind == NRT_TARGET_CLASSES;
            if (!r->has[t] || classes != (kind == 0))
                continue;
            n += (size_t)snprintf(buf + n, size - n, n && sep[0] == 't' ? "; %s%s " : "%s%s ",
                                  sep, info->targets[t].name);
            if (n < size)
                n += (size_t)(classes ? snprintf(buf + n, size - n, "%.2f%%", r->accuracy[t])
                                      : snprintf(buf + n, size - n, "%.5f", r->mse[t]));
            sep = ", ";
        }
    }
    if (!buf[0])
        snprintf(buf, size, "no output matches a target: nothing to score");
}

/* ---- training ------------------------------------------------------------------ */

/* A file that cannot be read or written is exit status 2 (main.c's rule);
 * a malformed or mismatched one, or anything else, 1. */
static int exit_status_of(NrtStatus code)
{
    return code == NRT_ERR_IO ? EXIT_USAGE : EXIT_INPUT;
}

static int runtime_error(const char *what, const NrtError *err)
{
    fprintf(stderr, "netc: %s: %s\n", what, err->msg[0] ? err->msg : nrt_status_name(err->code));
    return exit_status_of(err->code);
}

typedef struct BatchBuf {
    int64_t *order;
    float *x;
    int32_t *labels[NRT_MAX_TARGETS];
    float *values[NRT_MAX_TARGETS];
} BatchBuf;

static bool batch_alloc(BatchBuf *bb, const NrtModelInfo *info, int64_t count)
{
    memset(bb, 0, sizeof *bb);
    int64_t B = info->batch;
    bool ok = (bb->order = malloc((size_t)(count ? count : 1) * sizeof *bb->order))
           && (bb->x = malloc((size_t)(B * info->input_size) * sizeof(float)));
    for (int t = 0; t < info->ntargets && ok; t++) {
        if (info->targets[t].kind == NRT_TARGET_CLASSES)
            ok = (bb->labels[t] = malloc((size_t)B * sizeof(int32_t))) != NULL;
        else
            ok = (bb->values[t] = malloc((size_t)(B * info->targets[t].n) * sizeof(float)));
    }
    return ok;
}

static void batch_free(BatchBuf *bb)
{
    free(bb->order);
    free(bb->x);
    for (int t = 0; t < NRT_MAX_TARGETS; t++) {
        free(bb->labels[t]);
        free(bb->values[t]);
    }
}

/* Returned by run_epoch when --on-nan rollback asks for the last checkpoint. */
enum { STATUS_ROLLBACK = -1 };

/* Where the run stands after `step` steps, as checkpoint metadata: with the
 * seed (the generated code's own metadata) it fixes everything that comes
 * next: the epoch's order is the Philox shuffle keyed by (seed, epoch), the
 * position in it is epoch_step, and every random draw of the generated step
 * is keyed by (seed, purpose, step), so there is no generator state beyond
 * the step counter. train_examples and batch are checked on resume. */
static NrtStatus set_run_meta(const Session *s, uint64_t step, NrtError *err)
{
    int64_t spe = train_steps_per_epoch(s->train.count, s->cfg.batch);
    char v[5][24];
    snprintf(v[0], sizeof v[0], "%" PRIu64, step / (uint64_t)spe);
    snprintf(v[1], sizeof v[1], "%" PRIu64, step % (uint64_t)spe);
    snprintf(v[2], sizeof v[2], "%" PRId64, spe);
    snprintf(v[3], sizeof v[3], "%" PRId64, s->train.count);
    snprintf(v[4], sizeof v[4], "%" PRId64, s->cfg.batch);
    const NrtKV kv[] = {
        {"epoch", v[0]}, {"epoch_step", v[1]}, {"steps_per_epoch", v[2]},
        {"train_examples", v[3]}, {"batch", v[4]}, {"data_order", "philox_shuffle(seed,epoch)"},
    };
    return nrt_block_set_run_meta(kv, (int)(sizeof kv / sizeof *kv), err);
}

/* Saves the checkpoint (atomically: the runtime's save). */
static int save_checkpoint(Session *s)
{
    NrtError err = {0};
    if (set_run_meta(s, *s->info->step(s->model), &err) != NRT_OK
        || s->info->save(s->model, s->out_path, &err) != NRT_OK)
        return runtime_error("cannot save the checkpoint", &err);
    s->last_ckpt = s->out_path;
    return 0;
}

/* The test hook NETC_TEST_POISON, applied before the step it names. */
static void apply_poison(Session *s, uint64_t step, float *x, float *const *values)
{
    TrainPoison *p = &s->poison;
    if (!p->step || p->step != step + 1)
        return;
    p->step = 0;
    if (strcmp(p->what, "input") == 0) {
        x[0] = p->value;
        return;
    }
    for (int i = 0; i < s->info->nparams; i++)
        if (strcmp(s->info->params[i].name, p->what) == 0)
            s->info->param(s->model, i)[0] = p->value;
    for (int t = 0; t < s->info->ntargets && t < NRT_MAX_TARGETS; t++)
        if (values[t] && strcmp(s->info->targets[t].name, p->what) == 0)
            values[t][0] = p->value;
}

/* A failed step: a non-finite number stops the run (or asks for a
 * rollback); anything else is an error. */
static int step_failed(Session *s, Progress *p, int64_t epoch, const NrtError *err)
{
    progress_abort(p);
    if (err->code != NRT_ERR_NUMERIC)
        return runtime_error("training step failed", err);
    fprintf(stderr, "netc: epoch %" PRId64 ", %s\n", epoch + 1, err->msg);
    if (strcmp(s->args.on_nan, "rollback") == 0)
        return STATUS_ROLLBACK;
    fprintf(stderr, "netc: training stopped; the last checkpoint (%s) is unchanged "
            "(--on-nan rollback reloads it and continues)\n", s->last_ckpt ? s->last_ckpt : "none");
    return EXIT_INPUT;
}

/* The driver's own guard for a hand-written model (--c-source), after a
 * step that returned OK: every parameter and gradient finite. Generated
 * steps (C and JIT) check this themselves before their update, so for them
 * this scan of the whole block every step would be work done twice. A
 * hand-written step is caught here, after its update but before anything is
 * saved. */
static NrtStatus check_finite_after(Session *s, uint64_t step, NrtError *err)
{
    const NrtModelInfo *info = s->info;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < info->nparams; i++) {
            const float *x = pass == 0 ? info->param(s->model, i) : info->grad(s->model, i);
            int64_t k = x ? nrt_find_nonfinite(x, info->params[i].numel) : -1;
            if (k >= 0)
                return nrt_error_set(err, NRT_ERR_NUMERIC, "step %" PRIu64 ": %s '%s' is %g at "
                                     "element %" PRId64 " (after the update; nothing saved)",
                                     step + 1, pass == 0 ? "parameter" : "the gradient of",
                                     info->params[i].name, (double)x[k], k);
        }
    return NRT_OK;
}

/* CPU time of the whole process (all threads), for the thread tuner. */
static double cpu_seconds(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0)
        return 0;
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The thread count of the next step: the tuner's, or with the test hook
 * NETC_TEST_THREAD_FLIP all threads and one in turn (results must not
 * change: tests/e2e/thread_flip.sh). */
static void next_threads(Session *s, uint64_t step, int images)
{
    int threads = s->tuner.threads;
    s->epoch_steps++;
    /* Steps the tuner chose one thread for; its probes' steps do not count. */
    s->steps_on_one += s->tuner.most > 1 && threads == 1 && !s->tuner.probing && !s->thread_flip;
    if (s->thread_flip)
        nrt_set_threads(step % 2 ? s->tuner.most : 1);
    else if (tuner_step(&s->tuner, images, progress_now(), cpu_seconds()) != threads)
        nrt_set_threads(s->tuner.threads);
}

/* One epoch's steps from batch `done` on; returns 0, STATUS_ROLLBACK or an
 * exit status. */
static int run_epoch(Session *s, BatchBuf *bb, Progress *p, int64_t epoch, int64_t done)
{
    const NrtModelInfo *info = s->info;
    int64_t B = s->cfg.batch, N = s->train.count, spe = train_steps_per_epoch(N, B);
    NrtError err = {0};
    train_data_shuffle(s->cfg.seed, (uint64_t)epoch, N, bb->order);
    for (int64_t k = done; k < spe && !interrupted; k++) {
        int n = (int)(N - k * B < B ? N - k * B : B);
        NrtBatch b = {.x = bb->x, .n = n};
        train_data_gather(&s->train, info, bb->order + k * B, n, bb->x, bb->labels, bb->values);
        for (int t = 0; t < NRT_MAX_TARGETS; t++) {
            b.labels[t] = bb->labels[t];
            b.values[t] = bb->values[t];
        }
        uint64_t step = *info->step(s->model);
        float lr = (float)nrt_schedule_lr(&s->cfg, (int64_t)step, spe), loss = 0;
        apply_poison(s, step, bb->x, bb->values);
        if (info->train_step(s->model, &b, lr, &loss, &err) != NRT_OK
            || (s->args.c_source && check_finite_after(s, step, &err) != NRT_OK))
            return step_failed(s, p, epoch, &err);
        if (!isfinite(loss)) {
            nrt_error_set(&err, NRT_ERR_NUMERIC, "step %" PRIu64 ": the loss is %g (learning "
                          "rate %g): training diverged; try a smaller lr", step + 1,
                          (double)loss, (double)lr);
            return step_failed(s, p, epoch, &err);
        }
        progress_step(p, n, loss);
        next_threads(s, step, n);
        int64_t every = s->args.checkpoint_every;
        if (every && (step + 1) % (uint64_t)every == 0 && k + 1 < spe) {
            int st = save_checkpoint(s);
            if (st)
                return st;
            tuner_pause(&s->tuner);
        }
    }
    return 0;
}

static int finish_epoch(Session *s, Progress *p)
{
    NrtError err = {0};
    EvalResult r;
    char line[512] = "", extra[600];
    progress_epoch_stop(p);
    if (s->test.count > 0) {
        if (evaluate(s->info, s->model, &s->test, &r, &err) != NRT_OK)
            return runtime_error("evaluation failed", &err);
        format_eval(s->info, &r, line, sizeof line);
    }
    int st = save_checkpoint(s);
    if (st)
        return st;
    int len = snprintf(extra, sizeof extra, "%s%s", line[0] ? "; " : "", line);
    if (s->steps_on_one > 0 && len >= 0 && (size_t)len < sizeof extra)
        len += snprintf(extra + len, sizeof extra - (size_t)len, "; %.0f%% of the steps on one "
                        "thread (faster while the cores were busy)",
                        100.0 * (double)s->steps_on_one / (double)s->epoch_steps);
    s->train_s += p->elapsed;
    if (s->args.elapsed && len >= 0 && (size_t)len < sizeof extra)
        snprintf(extra + len, sizeof extra - (size_t)len, "; elapsed %.2fs, training %.2fs",
                 progress_now() - s->t_start, s->train_s);
    progress_epoch_end(p, extra);
    return 0;
}

/* --on-nan rollback: reload the last checkpoint and go on from its step. A
 * second failure before any newer checkpoint would repeat itself (the same
 * seed and step give the same batch and draws), so it stops instead. */
static int rollback(Session *s)
{
    NrtError err = {0};
    if (!s->last_ckpt) {
        fputs("netc: no checkpoint to roll back to yet; training stopped\n", stderr);
        return EXIT_INPUT;
    }
    if (s->info->load(s->model, s->last_ckpt, &err) != NRT_OK)
        return runtime_error("cannot roll back to the last checkpoint", &err);
    uint64_t step = *s->info->step(s->model);
    if (s->rolled_back_to == (int64_t)step) {
        fprintf(stderr, "netc: not finite again after rolling back to step %" PRIu64 " (%s): "
                "training stopped\n", step, s->last_ckpt);
        return EXIT_INPUT;
    }
    s->rolled_back_to = (int64_t)step;
    fprintf(stderr, "netc: rolled back to %s (step %" PRIu64 "); continuing\n", s->last_ckpt,
            step);
    return 0;
}

static int train_epochs(Session *s, BatchBuf *bb, Progress *p, int64_t spe)
{
    int status = 0;
    while (status == 0) {
        uint64_t step = *s->info->step(s->model);
        int64_t epoch = (int64_t)(step / (uint64_t)spe), done = (int64_t)(step % (uint64_t)spe);
        if (epoch >= s->cfg.epochs)
            break;
        progress_epoch_begin(p, epoch + 1, s->cfg.epochs, spe, done);
        tuner_pause(&s->tuner);
        s->epoch_steps = s->steps_on_one = 0;
        status = run_epoch(s, bb, p, epoch, done);
        if (status == STATUS_ROLLBACK) {
            status = rollback(s);
            continue;
        }
        if (status == 0 && interrupted) {
            progress_abort(p);
            fprintf(stderr, "netc: interrupted in epoch %" PRId64 "; the last checkpoint (%s) "
                    "is unchanged\n", epoch + 1, s->out_path);
            status = EXIT_INTERRUPTED;
        }
        if (status == 0)
            status = finish_epoch(s, p);
    }
    return status;
}

static int train_loop(Session *s)
{
    int64_t spe = train_steps_per_epoch(s->train.count, s->cfg.batch);
    if (spe == 0) {
        fputs("netc: the training set is empty\n", stderr);
        return EXIT_INPUT;
    }
    uint64_t step = *s->info->step(s->model);
    int64_t epoch = (int64_t)(step / (uint64_t)spe);
    if (epoch >= s->cfg.epochs) {
        printf("the checkpoint is at step %" PRIu64 " = epoch %" PRId64 " of %" PRId64
               ": nothing left to train (raise --epochs)\n", step, epoch, s->cfg.epochs);
        return 0;
    }
    BatchBuf bb;
    if (!batch_alloc(&bb, s->info, s->train.count)) {
        batch_free(&bb);
        fputs("netc: out of memory (batch buffers)\n", stderr);
        return EXIT_INPUT;
    }
    Progress p;
    progress_init(&p, stdout, isatty(STDOUT_FILENO));
    int status = train_epochs(s, &bb, &p, spe);
    batch_free(&bb);
    if (status == 0)
        printf("checkpoint: %s\n", s->out_path);
    return status;
}

/* ---- commands ------------------------------------------------------------------ */

/* The model, fresh (preprocessing fitted on the training set) or from a
 * checkpoint. */
static int make_model(Session *s, const char *ckpt)
{
    NrtError err = {0};
    if (s->info->create(&s->model, s->cfg.seed, &err) != NRT_OK)
        return runtime_error("cannot create the model", &err);
    if (ckpt) {
        if (s->info->load(s->model, ckpt, &err) != NRT_OK)
            return runtime_error("cannot load the checkpoint", &err);
        return 0;
    }
    if (s->info->fit_preprocess(s->model, s->train.images, s->train.count, &err) != NRT_OK)
        return runtime_error("cannot compute the preprocessing statistics", &err);
    return 0;
}

static int load_data(Session *s)
{
    NrtError err = {0};
    TrainDataRequest rq = {
        .info = s->info, .cfg = &s->cfg, .data_dir = s->args.data_dir,
        .model_path = s->args.model_path, .want_train = !s->args.eval,
        .limit_train = s->args.limit_train, .limit_test = s->args.limit_test,
    };
    if (train_data_load(&rq, &s->train, &s->test, &err) != NRT_OK) {
        fprintf(stderr, "netc: %s\n", err.msg);
        return exit_status_of(err.code);
    }
    return 0;
}

static int setup(Session *s)
{
    const NrtModelInfo *info = s->info;
    s->cfg = train_effective_config(&info->train, &s->args);
    if (s->cfg.batch != info->batch) {
        fprintf(stderr, "netc: --batch %" PRId64 " but the model's code was built for batch %"
                PRId64 "\n", s->cfg.batch, info->batch);
        return EXIT_USAGE;
    }
    if (s->args.threads)
        nrt_set_threads(s->args.threads);
    tuner_init(&s->tuner, nrt_get_threads());
    s->thread_flip = getenv("NETC_TEST_THREAD_FLIP") != NULL;
    snprintf(s->out_path, sizeof s->out_path, "%s",
             s->args.out ? s->args.out : info->name);
    if (!s->args.out)
        strncat(s->out_path, ".safetensors", sizeof s->out_path - strlen(s->out_path) - 1);
    return load_data(s);
}

static int do_eval(Session *s)
{
    NrtError err = {0};
    EvalResult r;
    char line[512];
    int status = make_model(s, s->args.weights);
    if (status)
        return status;
    if (evaluate(s->info, s->model, &s->test, &r, &err) != NRT_OK)
        return runtime_error("evaluation failed", &err);
    format_eval(s->info, &r, line, sizeof line);
    printf("%s (%" PRId64 " test images)\n", line, r.count);
    return 0;
}

/* A meta value of the checkpoint as a number; false when absent. */
static bool meta_u64(const NrtCheckpoint *ck, const char *key, uint64_t *v)
{
    return parse_u64(nrt_checkpoint_meta(ck, key), v);
}

/* --resume: the run continues with the checkpoint's seed (its shuffles and
 * draws) on the same training set; anything else would not be the run that
 * was interrupted. */
static int check_resume(Session *s)
{
    NrtCheckpoint *ck = NULL;
    NrtError err = {0};
    /* Not a safetensors file (a hand-written model's own format): the
     * model's load decides, and reports what is wrong. */
    if (nrt_checkpoint_open(s->args.resume, &ck, &err) != NRT_OK)
        return 0;
    uint64_t seed = s->cfg.seed, examples = 0, batch = 0;
    int status = 0;
    if (!meta_u64(ck, "seed", &seed)) {
        seed = s->cfg.seed;
    } else if (s->args.seed_set && seed != s->cfg.seed) {
        fprintf(stderr, "netc: --seed %" PRIu64 " but %s was trained with seed %" PRIu64
                " (drop --seed to continue that run)\n", s->cfg.seed, s->args.resume, seed);
        status = EXIT_USAGE;
    } else if (meta_u64(ck, "train_examples", &examples)
               && examples != (uint64_t)s->train.count) {
        fprintf(stderr, "netc: %s was trained on %" PRIu64 " examples per epoch, this run has %"
                PRId64 " (same --data and --limit-train to resume)\n", s->args.resume, examples,
                s->train.count);
        status = EXIT_USAGE;
    } else if (meta_u64(ck, "batch", &batch) && batch != (uint64_t)s->cfg.batch) {
        fprintf(stderr, "netc: %s was trained with batch %" PRIu64 ", this run has %" PRId64 "\n",
                s->args.resume, batch, s->cfg.batch);
        status = EXIT_USAGE;
    }
    s->cfg.seed = seed;
    nrt_checkpoint_close(ck);
    return status;
}

/* NETC_TEST_POISON=STEP:WHAT:VALUE (see TrainPoison); junk is ignored. */
static void parse_poison(TrainPoison *p)
{
    const char *env = getenv("NETC_TEST_POISON");
    unsigned long long step;
    char what[128], value[16];
    memset(p, 0, sizeof *p);
    if (!env || sscanf(env, "%llu:%127[^:]:%15s", &step, what, value) != 3)
        return;
    p->step = step;
    snprintf(p->what, sizeof p->what, "%s", what);
    char *end;
    float v = strtof(value, &end);   /* nan, inf and -inf are numbers to strtof */
    p->value = *end == '\0' && end != value ? v : NAN;
}

static int do_train(Session *s)
{
    int status = s->args.resume ? check_resume(s) : 0;
    if (!status)
        status = make_model(s, s->args.resume);
    if (status)
        return status;
    s->last_ckpt = s->args.resume;
    s->rolled_back_to = -1;
    parse_poison(&s->poison);
    if (s->args.resume)
        printf("resuming from %s at step %" PRIu64 "\n", s->args.resume, *s->info->step(s->model));
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    status = train_loop(s);
    sigaction(SIGINT, &old, NULL);
    return status;
}

static void session_free(Session *s)
{
    if (s->model)
        s->info->destroy(s->model);
    train_data_free(&s->train);
    train_data_free(&s->test);
    ccb_close(&s->mod);
#if NETC_HAVE_LLVM
    jit_close(s->jit);
#endif
    if (s->comp_live)
        netc_compilation_free(&s->comp);
    free(s->text);
}

int train_main(int argc, char **argv)
{
    Session s;
    memset(&s, 0, sizeof s);
    s.t_start = progress_now();
    char err[512];
    if (train_parse_args(argc, argv, &s.args, err, sizeof err)) {
        fprintf(stderr, "netc: %s\n(run 'netc %s --help' for usage)\n", err,
                argc > 0 && strcmp(argv[0], "eval") == 0 ? "eval" : "train");
        return EXIT_USAGE;
    }
    if (s.args.help) {
        fputs(train_usage, stdout);
        return 0;
    }
    s.color = want_color(s.args.color);
    int status = compile_model(&s);
    if (!status)
        status = open_backend(&s);
    if (!status)
        status = setup(&s);
    if (!status)
        status = s.args.eval ? do_eval(&s) : do_train(&s);
    session_free(&s);
    return status;
}
