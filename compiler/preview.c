/* preview.c - `netc preview`: a PNG grid of the training samples of one
 * step, exactly as the model's augmentation and mixing produce them.
 *
 * Input: a .net file (checked by the front end), its training data and a
 * seed and step. The batch is the one `netc train` feeds at that step:
 * the epoch's Philox shuffle (purpose SHUFFLE, step = epoch), pixels / 255,
 * then the generated train step's own input steps with the same runtime
 * calls and keys (emit_c.c body_augment / body_preprocess, the mix step):
 *   nrt_augment_geometric (translate, flip, rotate) -> preprocessing with
 *   float statistics from nrt_stats_* over the whole training set ->
 *   nrt_augment_post (cutout, noise) -> nrt_mixup / nrt_cutmix,
 * every draw keyed by (seed, purpose, step, sample). The result is the
 * tensor the network's first layer reads (--raw writes it, for the test
 * that compares it with the generated code's buffer: tests/cli).
 *
 * Display: that tensor is normalized, so the picture maps it back through
 * the inverse of the (affine) preprocessing: x / s, x + mean, x * std +
 * mean. Geometric augmentation and mixing commute with the inverse, so the
 * picture is the augmented [0,1] image; cutout shows the value 0 of the
 * normalized input, i.e. the mean intensity, and noise is in pixel units
 * of std * sd. zca has no cheap inverse: each image is shown min-max
 * scaled. No C compiler is involved: the model's code is never built.
 */
#include "preview.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "netrt.h"
#include "source_file.h"
#include "train_data.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };

static const char preview_usage[] =
    "usage: netc preview MODEL.net -o FILE.png [flags]\n"
    "\n"
    "Writes a grid of training samples as the model's augmentation and mixing\n"
    "produce them at one training step (shown before normalization: the\n"
    "preprocessing is inverted for display; zca images are min-max scaled).\n"
    "\n"
    "flags:\n"
    "  -o FILE.png    the picture (required)\n"
    "  --data DIR     a folder with the four Fashion-MNIST file names\n"
    "  --seed N       the training seed (default: the model's)\n"
    "  --step N       the global training step, from 0 (default 0)\n"
    "  --count N      samples shown, at most the batch (default: min(batch, 64))\n"
    "  --raw FILE     also write the network's input for the whole batch\n"
    "                 (n x input floats, little-endian float32)\n"
    "  --color=auto|always|never\n"
    "\n"
    "exit status: 0 ok, 1 errors in the model or data, 2 bad usage or a file\n"
    "that cannot be read or written\n";

typedef struct PreviewArgs {
    const char *model, *out, *data_dir, *raw, *color;
    uint64_t seed, step;
    bool seed_set;
    int64_t count;      /* 0: default */
    bool help;
} PreviewArgs;

/* ---- command line ---------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* The value of flag argv[*i] ("--seed 3" or "--seed=3"); NULL if missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static bool flag_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Numeric flags; returns 0, 1 (not this flag) or 2 with a message. */
static int numeric_flag(int argc, char **argv, int *i, PreviewArgs *a, char *err, size_t size)
{
    static const char *names[] = {"--seed", "--step", "--count"};
    for (int k = 0; k < 3; k++) {
        if (!flag_is(argv[*i], names[k]))
            continue;
        const char *v = flag_value(argc, argv, i, names[k]);
        uint64_t x;
        uint64_t max = k == 2 ? 1u << 20 : k == 1 ? UINT64_MAX / 2 : UINT64_MAX;
        if (!v || !parse_u64(v, max, &x) || (k == 2 && x == 0)) {
            snprintf(err, size, "%s needs %s, not '%s'", names[k],
                     k == 2 ? "an integer in 1..1048576" : "a non-negative integer",
                     v ? v : "(nothing)");
            return 2;
        }
        if (k == 0)
            a->seed = x, a->seed_set = true;
        else if (k == 1)
            a->step = x;
        else
            a->count = (int64_t)x;
        return 0;
    }
    return 1;
}

static int file_flag(int argc, char **argv, int *i, PreviewArgs *a, char *err, size_t size)
{
    static const char *names[] = {"-o", "--data", "--raw", "--color"};
    const char **dst[] = {&a->out, &a->data_dir, &a->raw, &a->color};
    for (int k = 0; k < 4; k++) {
        if (!flag_is(argv[*i], names[k]))
            continue;
        const char *v = k == 3 ? (argv[*i][7] == '=' ? argv[*i] + 8 : NULL)
                               : flag_value(argc, argv, i, names[k]);
        if (!v || !*v) {
            snprintf(err, size, k == 3 ? "--color=auto|always|never" : "%s needs a %s",
                     names[k], k == 1 ? "folder" : "file name");
            return 2;
        }
        *dst[k] = v;
        return 0;
    }
    return 1;
}

/* argv[0] is "preview". Returns 0, or 2 with a message in err. */
static int parse_args(int argc, char **argv, PreviewArgs *a, char *err, size_t size)
{
    memset(a, 0, sizeof *a);
    a->color = "auto";
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            a->help = true;
            return 0;
        }
        int rc = numeric_flag(argc, argv, &i, a, err, size);
        if (rc == 1)
            rc = file_flag(argc, argv, &i, a, err, size);
        if (rc == 0)
            continue;
        if (rc == 2)
            return 2;
        if (s[0] == '-' && s[1] != '\0') {
            snprintf(err, size, "unknown option '%s'", s);
            return 2;
        }
        if (a->model) {
            snprintf(err, size, "more than one model file given ('%s')", s);
            return 2;
        }
        a->model = s;
    }
    const char *c = a->color;
    if (strcmp(c, "auto") && strcmp(c, "always") && strcmp(c, "never")) {
        snprintf(err, size, "unknown color mode '%s' (auto, always or never)", c);
        return 2;
    }
    if (!a->model)
        snprintf(err, size, "no model file given");
    else if (!a->out)
        snprintf(err, size, "preview needs -o FILE.png");
    return a->model && a->out ? 0 : 2;
}

/* ---- the model ------------------------------------------------------------------ */

/* Front end; *live says whether c must be freed. */
static int compile(const PreviewArgs *a, NetcCompilation *c, bool color, bool *live)
{
    size_t len;
    char *text = netc_read_source(a->model, &len);
    if (!text)
        return EXIT_USAGE;
    bool ok = netc_compilation_init(c, a->model, text, len);
    free(text);
    *live = true;
    if (!ok) {
        fputs("netc: out of memory\n", stderr);
        return EXIT_INPUT;
    }
    int nerr = netc_compile(c);
    diag_print_all(&c->diags, stderr, color);
    if (c->arena.failed) {
        fputs("netc: out of memory\n", stderr);
        return EXIT_INPUT;
    }
    if (nerr) {
        fprintf(stderr, "%d error%s.\n", nerr, nerr == 1 ? "" : "s");
        return EXIT_INPUT;
    }
    const IrShape *in = &c->graph->input.shape;
    if (in->rank != 3 || (in->d[0] != 1 && in->d[0] != 3)) {
        char buf[64];
        fprintf(stderr, "netc: %s: preview shows images: input '%s' is %s, not [1, H, W] or "
                "[3, H, W]\n", a->model, c->graph->input.name, ir_shape_str(*in, buf, sizeof buf));
        return EXIT_INPUT;
    }
    return 0;
}

/* ---- data ----------------------------------------------------------------------- */

/* The training images, as `netc train` would read them (train_data.c's
 * file names), checked against the input size. */
static int load_images(const PreviewArgs *a, const IrGraph *g, NrtIdx *idx, int64_t *count)
{
    NrtTrainConfig cfg = {0};
    if (g->train.data.kind == IR_DATA_IDX) {
        cfg.train_images = g->train.data.train_images;
        cfg.train_labels = g->train.data.train_labels;
    }
    TrainDataRequest rq = {.cfg = &cfg, .data_dir = a->data_dir, .model_path = a->model,
                           .want_train = true};
    char paths[4][4096];
    train_data_paths(&rq, paths);
    NrtError err = {0};
    if (nrt_idx_load(paths[0], idx, &err) != NRT_OK) {
        fprintf(stderr, "netc: %s\n", err.msg);
        return err.code == NRT_ERR_IO ? EXIT_USAGE : EXIT_INPUT;
    }
    int64_t per = 1, d = ir_shape_numel(g->input.shape);
    for (int k = 1; k < idx->rank; k++)
        per *= idx->dims[k];
    if (idx->type != NRT_IDX_U8 || idx->rank < 2 || per != d || idx->dims[0] < 1) {
        fprintf(stderr, "netc: %s: %" PRId64 " images of %" PRId64 " %s, but model '%s' takes "
                "%" PRId64 " bytes per sample\n", paths[0], idx->dims[0], per,
                idx->type == NRT_IDX_U8 ? "bytes" : "non-byte values", g->model, d);
        nrt_idx_free(idx);
        return EXIT_INPUT;
    }
    *count = idx->dims[0];
    return 0;
}

/* ---- preprocessing, as the generated code does it ----------------------------- */

typedef struct Stats {
    int64_t channels;          /* statistics channels (d for mean_image and zca) */
    float *mean, *sd;          /* channels each; sd NULL unless standardize */
    float *zca;                /* d x d, row major (zca only) */
} Stats;

/* float statistics: literal ones, or nrt_stats_* in double cast to float
 * (emit_c.c's fit_preprocess). Returns 0 or an exit status. */
static int fit_stats(const IrGraph *g, const uint8_t *images, int64_t count, Stats *st)
{
    const IrPreprocess *pre = &g->pre;
    int64_t d = ir_shape_numel(g->input.shape);
    int64_t C = pre->kind == IR_PRE_MEAN_IMAGE || pre->kind == IR_PRE_ZCA ? d : g->input.shape.d[0];
    memset(st, 0, sizeof *st);
    st->channels = C;
    if (pre->kind == IR_PRE_NONE || pre->kind == IR_PRE_SCALE)
        return 0;
    double *dm = calloc((size_t)(2 * C + (pre->kind == IR_PRE_ZCA ? C * C : 0)), sizeof *dm);
    st->mean = malloc((size_t)C * sizeof *st->mean);
    st->sd = malloc((size_t)C * sizeof *st->sd);
    st->zca = pre->kind == IR_PRE_ZCA ? malloc((size_t)(C * C) * sizeof *st->zca) : NULL;
    NrtError err = {0};
    NrtStatus s = dm && st->mean && st->sd && (st->zca || pre->kind != IR_PRE_ZCA)
                      ? NRT_OK : nrt_error_set(&err, NRT_ERR_NOMEM, "out of memory");
    if (s == NRT_OK && pre->kind == IR_PRE_ZCA)
        s = nrt_stats_zca(images, count, d, pre->eps, dm, dm + 2 * C, &err);
    else if (s == NRT_OK && pre->mean)
        for (int64_t c = 0; c < C; c++) {
            dm[c] = (float)pre->mean[c < pre->nmean ? c : 0];
            dm[C + c] = pre->std ? (float)pre->std[c < pre->nstd ? c : 0] : 1.0;
        }
    else if (s == NRT_OK && pre->kind == IR_PRE_MEAN_IMAGE)
        s = nrt_stats_mean_image(images, count, C, dm, &err);
    else if (s == NRT_OK)
        s = nrt_stats_channels(images, count, C, d / C, dm, dm + C, &err);
    for (int64_t c = 0; s == NRT_OK && c < C; c++) {
        st->mean[c] = (float)dm[c];
        st->sd[c] = (float)dm[C + c];
    }
    for (int64_t k = 0; s == NRT_OK && st->zca && k < C * C; k++)
        st->zca[k] = (float)dm[2 * C + k];
    free(dm);
    if (s == NRT_OK && pre->kind == IR_PRE_STANDARDIZE)
        for (int64_t c = 0; c < C && s == NRT_OK; c++)
            if (!(st->sd[c] > 0))
                s = nrt_error_set(&err, NRT_ERR_NUMERIC, "channel %d is constant (std 0)", (int)c);
    if (s != NRT_OK) {
        fprintf(stderr, "netc: cannot compute the preprocessing statistics: %s\n", err.msg);
        return EXIT_INPUT;
    }
    return 0;
}

static void stats_free(Stats *st)
{
    free(st->mean);
    free(st->sd);
    free(st->zca);
}

/* y = pre(x) for n samples of d values; the expressions of body_preprocess
 * (and of the zca step: (x - mean) W^T as a dense layer). */
static void preprocess(const IrGraph *g, const Stats *st, float *x, int64_t n, int64_t d,
                       float *scratch)
{
    const IrPreprocess *pre = &g->pre;
    int64_t C = st->channels, S = d / C;
    if (pre->kind == IR_PRE_ZCA) {
        for (int64_t k = 0; k < n * d; k++)
            scratch[k] = x[k] - st->mean[k % d];
        nrt_dense_forward(n, d, d, scratch, st->zca, NULL, NRT_ACT_NONE, x, NULL);
        return;
    }
    float s = (float)pre->scale;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < S; j++) {
                float *v = &x[(i * C + c) * S + j];
                switch (pre->kind) {
                case IR_PRE_SCALE: *v = *v * s; break;
                case IR_PRE_MEAN_IMAGE:
                case IR_PRE_MEAN_CHANNEL: *v = *v - st->mean[c]; break;
                case IR_PRE_STANDARDIZE: *v = (*v - st->mean[c]) / st->sd[c]; break;
                default: break;
                }
            }
}

/* The inverse for display: back to pixel intensities in [0, 1]. */
static void unprocess(const IrGraph *g, const Stats *st, float *x, int64_t n, int64_t d)
{
    const IrPreprocess *pre = &g->pre;
    int64_t C = st->channels, S = d / C;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < S; j++) {
                float *v = &x[(i * C + c) * S + j];
                switch (pre->kind) {
                case IR_PRE_SCALE: *v = *v / (float)pre->scale; break;
                case IR_PRE_MEAN_IMAGE:
                case IR_PRE_MEAN_CHANNEL: *v = *v + st->mean[c]; break;
                case IR_PRE_STANDARDIZE: *v = *v * st->sd[c] + st->mean[c]; break;
                default: break;
                }
            }
}

/* ---- the batch ----------------------------------------------------------------- */

static void augment_spec(const IrTrain *t, NrtAugmentSpec *spec, bool *geo, bool *post)
{
    memset(spec, 0, sizeof *spec);
    *geo = *post = false;
    for (int i = 0; i < t->naug; i++) {
        const IrAugment *a = &t->aug[i];
        switch (a->kind) {
        case IR_AUG_TRANSLATE: spec->translate = (int64_t)a->amount; *geo = true; break;
        case IR_AUG_FLIP:
            *(a->vertical ? &spec->flip_vertical : &spec->flip) = true;
            *geo = true;
            break;
        case IR_AUG_ROTATE: spec->rotate = a->amount; *geo = true; break;
        case IR_AUG_CUTOUT: spec->cutout = (int64_t)a->amount; *post = true; break;
        case IR_AUG_NOISE: spec->noise = a->amount; *post = true; break;
        }
    }
}

typedef struct Batch {
    int64_t n, epoch, index;    /* samples; the step's epoch and batch in it */
    float *x;                   /* n x d: the network's input */
    int64_t *perm;              /* mixing partners */
    NrtMixInfo mix;
} Batch;

/* Pixels of the step's samples (train_data.c: shuffle, then / 255). */
static void gather(const IrGraph *g, const uint8_t *images, int64_t count, uint64_t seed,
                   uint64_t step, Batch *b, int64_t *order)
{
    int64_t B = g->train.batch, d = ir_shape_numel(g->input.shape);
    int64_t spe = (count + B - 1) / B;
    b->epoch = (int64_t)(step / (uint64_t)spe);
    b->index = (int64_t)(step % (uint64_t)spe);
    b->n = count - b->index * B < B ? count - b->index * B : B;
    train_data_shuffle(seed, (uint64_t)b->epoch, count, order);
    const float inv = 1.0f / 255.0f;
    for (int64_t i = 0; i < b->n; i++) {
        const uint8_t *src = images + order[b->index * B + i] * d;
        for (int64_t k = 0; k < d; k++)
            b->x[i * d + k] = (float)src[k] * inv;
    }
}

/* The generated train step's input steps, in its order (lower.c). */
static void transform(const IrGraph *g, const Stats *st, uint64_t seed, uint64_t step, Batch *b,
                      float *scratch)
{
    const IrShape *in = &g->input.shape;
    int64_t C = in->d[0], H = in->d[1], W = in->d[2], d = C * H * W, n = b->n;
    NrtAugmentSpec spec;
    bool geo, post;
    augment_spec(&g->train, &spec, &geo, &post);
    if (geo)
        nrt_augment_geometric(b->x, n, C, H, W, &spec, seed, step, 0, scratch);
    preprocess(g, st, b->x, n, d, scratch);
    if (post)
        nrt_augment_post(b->x, n, C, H, W, &spec, seed, step, 0);
    double alpha = g->train.mix.alpha;
    if (g->train.mix.kind == IR_MIX_MIXUP)
        nrt_mixup(b->x, n, d, alpha, seed, step, b->perm, &b->mix, scratch);
    else if (g->train.mix.kind == IR_MIX_CUTMIX)
        nrt_cutmix(b->x, n, C, H, W, alpha, seed, step, b->perm, &b->mix, scratch);
    else
        nrt_mixup(b->x, n, d, 0.0, seed, step, b->perm, &b->mix, scratch);   /* identity */
}

static int write_raw(const char *path, const float *x, int64_t count)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(x, sizeof *x, (size_t)count, f) == (size_t)count;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "netc: cannot write '%s': %s\n", path, strerror(errno));
        remove(path);
        return EXIT_USAGE;
    }
    return 0;
}

static void describe(const IrGraph *g, const PreviewArgs *a, const Batch *b, uint64_t seed,
                     int64_t shown)
{
    printf("%s: step %" PRIu64 " (epoch %" PRId64 ", batch %" PRId64 "), seed %" PRIu64
           ", %" PRId64 " of %" PRId64 " samples", a->out, a->step, b->epoch + 1, b->index, seed,
           shown, b->n);
    if (g->train.mix.kind == IR_MIX_MIXUP)
        printf("; mixup lambda %.4f", (double)b->mix.lambda);
    else if (g->train.mix.kind == IR_MIX_CUTMIX)
        printf("; cutmix lambda %.4f, box rows %" PRId64 "..%" PRId64 ", columns %" PRId64
               "..%" PRId64, (double)b->mix.lambda, b->mix.y0, b->mix.y1 - 1, b->mix.x0,
               b->mix.x1 - 1);
    printf("\n");
}

/* Everything after the model is checked; returns the exit status. */
static int render(const PreviewArgs *a, const IrGraph *g, const uint8_t *images, int64_t count)
{
    const IrShape *in = &g->input.shape;
    int64_t B = g->train.batch, d = ir_shape_numel(*in);
    uint64_t seed = a->seed_set ? a->seed : g->train.seed;
    Stats st;
    int status = fit_stats(g, images, count, &st);
    if (status)
        return status;
    Batch b = {0};
    size_t geo_floats = nrt_augment_scratch_floats(B, in->d[0], in->d[1], in->d[2]);
    size_t floats = geo_floats > (size_t)(B * d) ? geo_floats : (size_t)(B * d);
    float *scratch = malloc(floats * sizeof *scratch);
    int64_t *order = malloc((size_t)count * sizeof *order);
    b.x = malloc((size_t)(B * d) * sizeof *b.x);
    b.perm = malloc((size_t)B * sizeof *b.perm);
    if (!scratch || !order || !b.x || !b.perm) {
        fputs("netc: out of memory\n", stderr);
        status = EXIT_INPUT;
    }
    if (!status) {
        gather(g, images, count, seed, a->step, &b, order);
        transform(g, &st, seed, a->step, &b, scratch);
        if (a->raw)
            status = write_raw(a->raw, b.x, b.n * d);
    }
    int64_t shown = a->count ? a->count : 64;
    shown = shown < b.n ? shown : b.n;
    if (!status) {
        unprocess(g, &st, b.x, shown, d);
        int scale = in->d[1] < 64 ? (int)((64 + in->d[1] - 1) / in->d[1]) : 1;
        NrtError err = {0};
        NrtPngRange range = g->pre.kind == IR_PRE_ZCA ? NRT_PNG_MINMAX : NRT_PNG_CLAMP;
        if (nrt_png_write_grid_ex(a->out, b.x, shown, in->d[0], in->d[1], in->d[2], 0, scale,
                                  range, &err) != NRT_OK) {
            fprintf(stderr, "netc: %s\n", err.msg);
            status = err.code == NRT_ERR_IO ? EXIT_USAGE : EXIT_INPUT;
        }
    }
    if (!status)
        describe(g, a, &b, seed, shown);
    free(scratch);
    free(order);
    free(b.x);
    free(b.perm);
    stats_free(&st);
    return status;
}

int preview_main(int argc, char **argv, bool (*want_color)(const char *))
{
    PreviewArgs a;
    char err[512];
    if (parse_args(argc, argv, &a, err, sizeof err)) {
        fprintf(stderr, "netc: %s\n(run 'netc preview --help' for usage)\n", err);
        return EXIT_USAGE;
    }
    if (a.help) {
        fputs(preview_usage, stdout);
        return 0;
    }
    NetcCompilation c;
    bool live = false;
    int status = compile(&a, &c, want_color(a.color), &live);
    NrtIdx idx = {0};
    int64_t count = 0;
    if (!status)
        status = load_images(&a, c.graph, &idx, &count);
    if (!status) {
        status = render(&a, c.graph, (const uint8_t *)idx.data, count);
        nrt_idx_free(&idx);
    }
    if (live)
        netc_compilation_free(&c);
    return status;
}
