/* test_init_stats.c - every initializer of LANGUAGE.md gives the mean and
 * variance its formula promises, through the real pipeline: a .net with
 * one conv and one dense layer per scheme goes through netc_compile, the C
 * emitter and the C backend (cc_backend.c: compile, dlopen), and the
 * generated create() fills the parameters; nothing here calls an init
 * helper directly.
 *
 * Expectations, written from LANGUAGE.md (not from emit_c.c): fan_in =
 * in_channels k k (conv) or inputs (dense), fan_out = filters k k or units;
 *   xavier N(0, 1/fan_in), xavier_uniform U(+-sqrt(3/fan_in)),
 *   glorot N(0, 2/(fan_in + fan_out)), kaiming = msra = he N(0, 2/fan),
 *   kaiming_uniform U(+-sqrt(6/fan)), gain 2/(1 + slope^2) instead of 2,
 *   fan = fan_out with fan=out, normal(s) N(0, s^2), uniform(a) U(+-a),
 *   zeros, ones, constant(v) exactly; biases zeros unless given;
 *   batchnorm(gamma=zeros): gamma 0, beta 0.
 * Checks per tensor of n values, each within Z = 5 standard errors: mean
 * (se sigma/sqrt(n)), variance (se sigma^2 sqrt(2/n) for a normal,
 * sqrt(0.8/n) for a uniform: (mu4 - sigma^4)/n), kurtosis (3 for a
 * normal, 1.8 for a uniform; se sqrt(24/n), the normal's, an upper bound
 * for the uniform's), and |w| <= a for a uniform. A wrong fan (x2 here), a
 * wrong gain (x1.25) or a normal drawn for a uniform fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "cc_backend.h"
#include "emit_c.h"
#include "frontend.h"

#define Z 5.0

typedef enum Kind { K_NORMAL, K_UNIFORM, K_CONST } Kind;

typedef struct Scheme {
    const char *text;      /* init=... */
    Kind kind;
    double gain_fan;       /* normal/uniform: variance = gain_fan / fan (when fan > 0) */
    int fan;               /* 0 fixed, 1 fan_in, 2 fan_out, 3 fan_in + fan_out */
    double value;          /* K_CONST value; fixed variance when fan = 0 */
} Scheme;

static const Scheme schemes[] = {
    {"xavier", K_NORMAL, 1.0, 1, 0},
    {"xavier_uniform", K_UNIFORM, 1.0, 1, 0},
    {"glorot", K_NORMAL, 2.0, 3, 0},
    {"kaiming", K_NORMAL, 2.0, 1, 0},
    {"msra", K_NORMAL, 2.0, 1, 0},
    {"he", K_NORMAL, 2.0, 1, 0},
    {"kaiming_uniform", K_UNIFORM, 2.0, 1, 0},
    {"kaiming(fan=out)", K_NORMAL, 2.0, 2, 0},
    {"kaiming(slope=0.5)", K_NORMAL, 2.0 / 1.25, 1, 0},
    {"kaiming_uniform(fan=out, slope=0.3)", K_UNIFORM, 2.0 / 1.09, 2, 0},
    {"normal(0.02)", K_NORMAL, 0, 0, 0.02 * 0.02},
    {"uniform(0.1)", K_UNIFORM, 0, 0, 0.1 * 0.1 / 3},
    {"zeros", K_CONST, 0, 0, 0.0},
    {"ones", K_CONST, 0, 0, 1.0},
    {"constant(0.3)", K_CONST, 0, 0, 0.3},
};
enum { NSCHEMES = sizeof schemes / sizeof schemes[0] };

/* conv: 32 -> 64 channels, 3x3; dense: 32*7*7 = 1568 -> 128 */
enum { CONV_FI = 32 * 9, CONV_FO = 64 * 9, DENSE_FI = 1568, DENSE_FO = 128 };

static char model_text[8192];

/* conv2..conv16 and dense1..dense15 carry the schemes in order; constant
 * schemes set bias_init too. */
static void build_model(void)
{
    int n = snprintf(model_text, sizeof model_text,
                     "model inits_stats;\ninput image [1, 28, 28];\ntarget label classes(10);\n"
                     "preprocess none;\n"
                     "x0 = image -> conv(32, 3, pad=1) -> maxpool(2);\nd0 = x0 -> maxpool(2);\n");
    for (int i = 0; i < NSCHEMES; i++) {
        const char *s = schemes[i].text, *b = schemes[i].kind == K_CONST ? s : "zeros";
        n += snprintf(model_text + n, sizeof model_text - (size_t)n,
                      "c%d = x0 -> conv(64, 3, pad=1, init=%s, bias_init=%s);\n"
                      "e%d = d0 -> dense(128, init=%s, bias_init=%s);\n", i, s, b, i, s, b);
    }
    n += snprintf(model_text + n, sizeof model_text - (size_t)n, "y = (c0");
    for (int i = 1; i < NSCHEMES; i++)
        n += snprintf(model_text + n, sizeof model_text - (size_t)n, " + c%d", i);
    n += snprintf(model_text + n, sizeof model_text - (size_t)n,
                  ") -> batchnorm(gamma=zeros) -> global_avgpool -> flatten;\nz = e0");
    for (int i = 1; i < NSCHEMES; i++)
        n += snprintf(model_text + n, sizeof model_text - (size_t)n, " + e%d", i);
    n += snprintf(model_text + n, sizeof model_text - (size_t)n,
                  ";\nlogits = concat(y, z) -> dense(10);\nloss cross_entropy(logits, label);\n"
                  "train { batch 1; }\n");
    assert_true((size_t)n < sizeof model_text);
}

typedef struct EmitCtx {
    const IrGraph *g;
    Arena *arena;
} EmitCtx;

static bool emit(void *ctx, const char *c_path, const char *h_path, char *err, size_t errsize)
{
    const EmitCtx *e = ctx;
    DiagSink d;
    diag_init(&d, e->arena);
    return emitc_files(e->g, "inits_stats.net", c_path, h_path, &d, err, errsize) == EMITC_OK;
}

static void check_moments(const char *name, const float *w, int64_t n, const Scheme *s,
                          double var)
{
    double s1 = 0, s2 = 0, s4 = 0, amax = 0;
    for (int64_t i = 0; i < n; i++) {
        s1 += w[i];
        amax = fmax(amax, fabs(w[i]));
    }
    double mean = s1 / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double e = w[i] - mean;
        s2 += e * e, s4 += e * e * e * e;
    }
    double v = s2 / (double)n, kurt = s4 / (double)n / (v * v);
    bool uni = s->kind == K_UNIFORM;
    double se_v = var * sqrt((uni ? 0.8 : 2.0) / (double)n), se_m = sqrt(var / (double)n);
    double se_k = sqrt(24.0 / (double)n), want_k = uni ? 1.8 : 3.0;
    bool ok = fabs(mean) <= Z * se_m && fabs(v - var) <= Z * se_v && fabs(kurt - want_k) <= Z * se_k;
    if (uni)
        ok = ok && amax <= sqrt(3.0 * var) * (1 + 1e-6);
    print_message("%-18s %-36s n %7lld  mean %+.2e  var %.4e (want %.4e, %+.1f se)  kurt %.2f\n",
                  name, s->text, (long long)n, mean, v, var, (v - var) / se_v, kurt);
    if (!ok)
        print_error("%s (%s): moments off\n", name, s->text);
    assert_true(ok);
}

static void check_param(const NrtParamInfo *p, const float *w)
{
    int k;
    bool conv = sscanf(p->name, "conv%d.", &k) == 1, dense = !conv && sscanf(p->name, "dense%d.", &k) == 1;
    int idx = conv ? k - 2 : dense ? k - 1 : -1;
    if (strncmp(p->name, "batchnorm", 9) == 0) {
        for (int64_t i = 0; i < p->numel; i++)
            assert_true(w[i] == 0.0f || strstr(p->name, "running_var"));
        return;
    }
    if (idx < 0 || idx >= NSCHEMES)
        return;
    const Scheme *s = &schemes[idx];
    bool bias = strstr(p->name, ".bias") != NULL;
    if (bias || s->kind == K_CONST) {
        float want = (float)(s->kind == K_CONST ? s->value : 0.0);
        for (int64_t i = 0; i < p->numel; i++)
            assert_true(w[i] == want);
        return;
    }
    double fi = conv ? CONV_FI : DENSE_FI, fo = conv ? CONV_FO : DENSE_FO;
    double fan = s->fan == 1 ? fi : s->fan == 2 ? fo : fi + fo;
    double var = s->fan == 0 ? s->value : s->gain_fan / fan;
    if (s->kind == K_UNIFORM && s->fan)
        var = s->gain_fan / fan;    /* U(+-sqrt(3 g/fan)) has variance g/fan */
    check_moments(p->name, w, p->numel, s, var);
}

static void test_every_init(void **state)
{
    (void)state;
    char cache[] = "/tmp/netc-initstats-XXXXXX";
    assert_non_null(mkdtemp(cache));
    setenv("NETC_CACHE_DIR", cache, 1);
    build_model();
    NetcCompilation c;
    assert_true(netc_compilation_init(&c, "inits_stats.net", model_text, strlen(model_text)));
    int nerr = netc_compile(&c);
    if (nerr)
        diag_print_all(&c.diags, stderr, false);
    assert_int_equal(nerr, 0);
    EmitCtx e = {c.graph, &c.arena};
    CcbRequest r = {c.graph->model, model_text, strlen(model_text), "init-stats", emit, &e};
    CcbModule mod;
    static char err[16384];
    bool opened = ccb_open(&r, &mod, err, sizeof err);
    if (!opened)
        print_error("%s\n", err);
    assert_true(opened);
    const NrtModelInfo *info = mod.info;
    NrtModel *m;
    NrtError nerr2 = {0};
    assert_int_equal(info->create(&m, 20261129, &nerr2), NRT_OK);
    int checked = 0;
    for (int i = 0; i < info->nparams; i++) {
        check_param(&info->params[i], info->param(m, i));
        checked++;
    }
    assert_true(checked >= 2 * 2 * NSCHEMES);
    info->destroy(m);
    ccb_close(&mod);
    netc_compilation_free(&c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
