/* reg_driver.c - libnetrt's regularizer kernels on inputs from a file, for
 * tests/xcheck/reg_xcheck.py (which compares them with PyTorch).
 *
 *   reg_driver frac|drop_path|mix IN OUT
 *
 * IN and OUT are flat little-endian arrays in the order below (the Python
 * side writes and reads them with numpy); sizes come first as int64.
 *   frac:      in  n c h w oh ow k | x f32 (n c h w) | u f32 (n c 2, torch's
 *                  _random_samples: [0] width, [1] height) | dy f32 (n c oh ow)
 *              out y f32 | argmax i32 (plane-local h*w index) | dx f32
 *   drop_path: in  n d seed step | p f64 | x f32 (n d) | dy f32 (n d)
 *              out scale f32 (n) | y f32 | dx f32
 *              (the mask as the generated code draws it: (seed, DROP_PATH,
 *              step, sample i, element 0))
 *   mix:       in  n k | lambda f64 | smoothing f64 | logits f32 (n k) |
 *                  labels i32 (n) | perm i64 (n)
 *              out loss f64 | dlogits f32 (n k)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

static FILE *in_f, *out_f;

static void get(void *p, size_t size, size_t count)
{
    if (fread(p, size, count, in_f) != count) {
        fprintf(stderr, "reg_driver: short input\n");
        exit(1);
    }
}

static void put(const void *p, size_t size, size_t count)
{
    if (fwrite(p, size, count, out_f) != count) {
        fprintf(stderr, "reg_driver: cannot write\n");
        exit(1);
    }
}

static void *alloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        fprintf(stderr, "reg_driver: out of memory\n");
        exit(1);
    }
    return p;
}

/* torch's region rule per plane, then netc's kernels. */
static void run_frac(void)
{
    int64_t v[7];
    get(v, sizeof *v, 7);
    int64_t n = v[0], c = v[1], h = v[2], w = v[3], oh = v[4], ow = v[5], k = v[6], P = n * c;
    float *x = alloc((size_t)(P * h * w) * 4), *u = alloc((size_t)(P * 2) * 4);
    float *dy = alloc((size_t)(P * oh * ow) * 4), *y = alloc((size_t)(P * oh * ow) * 4);
    float *dx = alloc((size_t)(P * h * w) * 4);
    int32_t *arg = alloc((size_t)(P * oh * ow) * 4);
    int32_t *rs = alloc((size_t)(P * oh) * 4), *re = alloc((size_t)(P * oh) * 4);
    int32_t *cs = alloc((size_t)(P * ow) * 4), *ce = alloc((size_t)(P * ow) * 4);
    get(x, 4, (size_t)(P * h * w));
    get(u, 4, (size_t)(P * 2));
    get(dy, 4, (size_t)(P * oh * ow));
    for (int64_t p = 0; p < P; p++) {
        nrt_fracpool_regions_torch(w, ow, k, u[2 * p], cs + p * ow, ce + p * ow);
        nrt_fracpool_regions_torch(h, oh, k, u[2 * p + 1], rs + p * oh, re + p * oh);
    }
    NrtFracPool fp = {.n = n, .c = c, .h = h, .w = w, .oh = oh, .ow = ow,
                      .share = NRT_FRAC_PER_PLANE, .row_start = rs, .row_end = re,
                      .col_start = cs, .col_end = ce};
    nrt_fracpool_forward(&fp, x, y, arg);
    nrt_fracpool_backward(&fp, dy, arg, dx, false);
    put(y, 4, (size_t)(P * oh * ow));
    put(arg, 4, (size_t)(P * oh * ow));
    put(dx, 4, (size_t)(P * h * w));
}

static void run_drop_path(void)
{
    int64_t v[4];
    double p;
    get(v, sizeof *v, 4);
    get(&p, sizeof p, 1);
    int64_t n = v[0], d = v[1];
    float *x = alloc((size_t)(n * d) * 4), *dy = alloc((size_t)(n * d) * 4);
    float *y = alloc((size_t)(n * d) * 4), *dx = alloc((size_t)(n * d) * 4);
    float *scale = alloc((size_t)n * 4);
    get(x, 4, (size_t)(n * d));
    get(dy, 4, (size_t)(n * d));
    for (int64_t i = 0; i < n; i++)
        nrt_rng_fill_dropout_mask((uint64_t)v[2], NRT_RNG_DROP_PATH, (uint64_t)v[3], (uint64_t)i,
                                  0, 1, p, scale + i);
    nrt_drop_path_forward(n, d, x, scale, y);
    nrt_drop_path_backward(n, d, dy, scale, dx, false);
    put(scale, 4, (size_t)n);
    put(y, 4, (size_t)(n * d));
    put(dx, 4, (size_t)(n * d));
}

static void run_mix(void)
{
    int64_t v[2];
    double lam, smoothing;
    get(v, sizeof *v, 2);
    get(&lam, sizeof lam, 1);
    get(&smoothing, sizeof smoothing, 1);
    int64_t n = v[0], k = v[1];
    float *logits = alloc((size_t)(n * k) * 4), *dl = alloc((size_t)(n * k) * 4);
    int32_t *labels = alloc((size_t)n * 4), *partner = alloc((size_t)n * 4);
    int64_t *perm = alloc((size_t)n * 8);
    get(logits, 4, (size_t)(n * k));
    get(labels, 4, (size_t)n);
    get(perm, 8, (size_t)n);
    nrt_mix_labels(n, labels, perm, partner);   /* as the generated loss step */
    double loss = nrt_cross_entropy(n, k, logits, labels, partner, lam, smoothing, 1.0, dl, false);
    put(&loss, sizeof loss, 1);
    put(dl, 4, (size_t)(n * k));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: reg_driver frac|drop_path|mix IN OUT\n");
        return 2;
    }
    in_f = fopen(argv[2], "rb");
    out_f = fopen(argv[3], "wb");
    if (!in_f || !out_f) {
        fprintf(stderr, "reg_driver: cannot open the files\n");
        return 1;
    }
    if (strcmp(argv[1], "frac") == 0)
        run_frac();
    else if (strcmp(argv[1], "drop_path") == 0)
        run_drop_path();
    else if (strcmp(argv[1], "mix") == 0)
        run_mix();
    else
        return fprintf(stderr, "reg_driver: unknown mode %s\n", argv[1]), 2;
    fclose(in_f);
    return fclose(out_f) == 0 ? 0 : 1;
}
