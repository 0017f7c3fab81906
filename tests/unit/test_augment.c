/* test_augment.c - augmentation (augment.c) and PNG grids (png.c).
 *
 * Exact properties: a seed reproduces the batch bitwise, for 1 and 2
 * threads and for a batch split in two calls; flip twice is the identity;
 * translate moves a blob by exactly the drawn (dx, dy) and keeps its mass;
 * rotate by 0 is the identity, a point follows the drawn rotation, and any
 * angle keeps a centered Gaussian blob's mass within interpolation error;
 * the padded fast path equals the reference bitwise; cutout zeroes exactly
 * the drawn square (size*size pixels when inside) and its mean area over
 * many samples matches the clipped-area formula; noise has mean 0 and the
 * asked std within statistical bounds; the spec parser rejects bad
 * amounts. PNG grids round-trip through libpng's reader pixel for pixel,
 * and a write that fails midway leaves no file behind.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#include <png.h>

#include "netrt.h"

enum { H = 28, W = 28, HW = H * W };

static float *batch_new(int64_t n, int64_t c)
{
    float *x = malloc((size_t)(n * c * HW) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n * c * HW; i++)
        x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    return x;
}

static float *copy_of(const float *x, size_t count)
{
    float *y = malloc(count * sizeof *y);
    assert_non_null(y);
    memcpy(y, x, count * sizeof *y);
    return y;
}

static NrtAugmentSpec all_spec(void)
{
    return (NrtAugmentSpec){.translate = 3, .flip = true, .flip_vertical = true, .rotate = 15,
                            .cutout = 8, .noise = 0.1};
}

static void run_all(float *x, int64_t n, int64_t first, uint64_t seed, uint64_t step)
{
    NrtAugmentSpec s = all_spec();
    float *scratch = malloc(nrt_augment_scratch_floats(n, 1, H, W) * sizeof *scratch);
    assert_non_null(scratch);
    nrt_augment_geometric(x, n, 1, H, W, &s, seed, step, first, scratch);
    nrt_augment_post(x, n, 1, H, W, &s, seed, step, first);
    free(scratch);
}

static void test_determinism(void **state)
{
    (void)state;
    int64_t n = 64;
    float *a = batch_new(n, 1), *b = copy_of(a, (size_t)(n * HW)), *c = copy_of(a, (size_t)(n * HW));
    float *d = copy_of(a, (size_t)(n * HW)), *e = copy_of(a, (size_t)(n * HW));
    int threads = nrt_get_threads();
    nrt_set_threads(1);
    run_all(a, n, 0, 42, 7);
    nrt_set_threads(2);
    run_all(b, n, 0, 42, 7);
    run_all(c, 40, 0, 42, 7);              /* the same step split in two calls */
    run_all(c + 40 * HW, n - 40, 40, 42, 7);
    nrt_set_threads(threads);
    assert_memory_equal(a, b, (size_t)(n * HW) * sizeof *a);
    assert_memory_equal(a, c, (size_t)(n * HW) * sizeof *a);
    run_all(d, n, 0, 43, 7);               /* another seed or step: other images */
    run_all(e, n, 0, 42, 8);
    assert_memory_not_equal(a, d, (size_t)(n * HW) * sizeof *a);
    assert_memory_not_equal(a, e, (size_t)(n * HW) * sizeof *a);
    free(a), free(b), free(c), free(d), free(e);
}

/* Draws of a spec are reproducible, in range, and both outcomes occur. */
static void test_draws(void **state)
{
    (void)state;
    NrtAugmentSpec s = all_spec();
    int flips = 0, vflips = 0, dxs[7] = {0};
    double amin = 1e9, amax = -1e9;
    for (int64_t i = 0; i < 2000; i++) {
        NrtAugmentDraw d, d2;
        nrt_augment_draw(&s, H, W, 5, 3, i, &d);
        nrt_augment_draw(&s, H, W, 5, 3, i, &d2);
        assert_memory_equal(&d, &d2, sizeof d);
        assert_true(d.dx >= -3 && d.dx <= 3 && d.dy >= -3 && d.dy <= 3);
        assert_true(d.angle >= -15 && d.angle <= 15);
        assert_true(d.cut_y >= 0 && d.cut_y < H && d.cut_x >= 0 && d.cut_x < W);
        dxs[d.dx + 3]++;
        flips += d.flip;
        vflips += d.flip_vertical;
        amin = fmin(amin, d.angle);
        amax = fmax(amax, d.angle);
    }
    for (int k = 0; k < 7; k++)   /* 2000/7 = 286 expected, sd about 16 */
        assert_true(dxs[k] > 200 && dxs[k] < 370);
    assert_true(flips > 850 && flips < 1150 && vflips > 850 && vflips < 1150);
    assert_true(amin < -14 && amax > 14);
}

static void test_flip_twice_identity(void **state)
{
    (void)state;
    int64_t n = 16, c = 3;
    float *x = batch_new(n, c), *orig = copy_of(x, (size_t)(n * c * HW));
    float *scratch = malloc(nrt_augment_scratch_floats(n, c, H, W) * sizeof *scratch);
    NrtAugmentSpec s = {.flip = true, .flip_vertical = true};
    nrt_augment_geometric(x, n, c, H, W, &s, 9, 1, 0, scratch);
    assert_memory_not_equal(x, orig, (size_t)(n * c * HW) * sizeof *x);
    for (int64_t i = 0; i < n; i++) {   /* the mirror of what was drawn, per channel */
        NrtAugmentDraw d;
        nrt_augment_draw(&s, H, W, 9, 1, i, &d);
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t sy = d.flip_vertical ? H - 1 - y : y, sx = d.flip ? W - 1 - xx : xx;
                    assert_true(x[((i * c + ch) * H + y) * W + xx] ==
                                orig[((i * c + ch) * H + sy) * W + sx]);
                }
    }
    nrt_augment_geometric(x, n, c, H, W, &s, 9, 1, 0, scratch);
    assert_memory_equal(x, orig, (size_t)(n * c * HW) * sizeof *x);
    free(x), free(orig), free(scratch);
}

/* A blob of distinct values in rows/cols [10, 18): with |shift| <= 3 it
 * stays inside. */
static void blob(float *img)
{
    memset(img, 0, HW * sizeof *img);
    for (int y = 10; y < 18; y++)
        for (int x = 10; x < 18; x++)
            img[y * W + x] = 1.0f + (float)(y * W + x) / 1000.0f;
}

static double mass(const float *img, int64_t count)
{
    double m = 0;
    for (int64_t i = 0; i < count; i++)
        m += img[i];
    return m;
}

static void test_translate_exact(void **state)
{
    (void)state;
    int64_t n = 200;
    float *x = malloc((size_t)(n * HW) * sizeof *x), *scratch;
    scratch = malloc(nrt_augment_scratch_floats(n, 1, H, W) * sizeof *scratch);
    for (int64_t i = 0; i < n; i++)
        blob(x + i * HW);
    float ref[HW];
    blob(ref);
    NrtAugmentSpec s = {.translate = 3};
    nrt_augment_geometric(x, n, 1, H, W, &s, 11, 2, 100, scratch);
    int moved = 0;
    for (int64_t i = 0; i < n; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(&s, H, W, 11, 2, 100 + i, &d);
        moved += d.dx != 0 || d.dy != 0;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                int sy = y - (int)d.dy, sx = xx - (int)d.dx;
                float want = sy >= 0 && sy < H && sx >= 0 && sx < W ? ref[sy * W + sx] : 0.0f;
                assert_true(x[i * HW + y * W + xx] == want);
            }
        assert_true(mass(x + i * HW, HW) == mass(ref, HW));
    }
    assert_true(moved > n / 2);
    /* at the border the shifted-out content is gone and zeros come in */
    float edge[HW];
    for (int k = 0; k < HW; k++)
        edge[k] = 1.0f;
    NrtAugmentSpec big = {.translate = 5};
    NrtAugmentDraw d;
    int64_t sample = 0;
    do   /* a sample that moves in both directions */
        nrt_augment_draw(&big, H, W, 1, 1, ++sample, &d);
    while (d.dx == 0 || d.dy == 0);
    nrt_augment_geometric(edge, 1, 1, H, W, &big, 1, 1, sample, scratch);
    double zeros = 0;
    for (int k = 0; k < HW; k++)
        zeros += edge[k] == 0.0f;
    double lx = (double)llabs(d.dx), ly = (double)llabs(d.dy);
    assert_true(zeros == lx * H + ly * W - lx * ly);
    free(x), free(scratch);
}

static void test_rotate(void **state)
{
    (void)state;
    float img[HW], orig[HW], scratch[(H + 2) * (W + 2)];
    blob(img);
    memcpy(orig, img, sizeof img);
    NrtAugmentSpec zero = {.rotate = 0};
    nrt_augment_geometric(img, 1, 1, H, W, &zero, 1, 1, 0, scratch);
    assert_memory_equal(img, orig, sizeof img);

    /* A point's centroid follows the forward rotation, counter-clockwise
     * as displayed: (u, v) = (x - cx, y - cy) goes to
     * (u cos + v sin, -u sin + v cos). */
    NrtAugmentSpec s = {.rotate = 90};
    double amax = 0;
    for (int64_t i = 0; i < 100; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(&s, H, W, 3, 3, i, &d);
        amax = fmax(amax, fabs(d.angle));
        float point[HW] = {0};
        point[5 * W + 20] = 1.0f;
        nrt_augment_geometric(point, 1, 1, H, W, &s, 3, 3, i, scratch);
        double m = 0, mx = 0, my = 0;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                m += point[y * W + xx];
                mx += xx * point[y * W + xx];
                my += y * point[y * W + xx];
            }
        double t = d.angle * 3.14159265358979323846 / 180.0, u = 6.5, v = -8.5;
        assert_true(m > 0.5 && m < 1.5);
        assert_true(fabs(mx / m - (13.5 + u * cos(t) + v * sin(t))) < 0.5);
        assert_true(fabs(my / m - (13.5 - u * sin(t) + v * cos(t))) < 0.5);
    }
    assert_true(amax > 80);
    /* Mass of a centered Gaussian blob (sd 3 px, negligible at the border):
     * rotation keeps area and bilinear sampling of a smooth image errs by
     * well under 1%; and bilinear never leaves the value range. */
    for (int64_t i = 0; i < 200; i++) {
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                double r2 = (y - 13.5) * (y - 13.5) + (xx - 13.5) * (xx - 13.5);
                img[y * W + xx] = (float)exp(-r2 / 18.0);
            }
        double m0 = mass(img, HW);
        NrtAugmentSpec r = {.rotate = 180};
        nrt_augment_geometric(img, 1, 1, H, W, &r, 8, 8, i, scratch);
        assert_true(fabs(mass(img, HW) - m0) < 0.005 * m0);
        for (int k = 0; k < HW; k++)
            assert_true(img[k] >= 0.0f && img[k] <= 1.0f);
    }
}

/* The padded fast path against the definition, bitwise, over specs,
 * channel counts and a non-square plane. */
static void test_geometric_vs_ref(void **state)
{
    (void)state;
    const NrtAugmentSpec specs[] = {
        {.translate = 2}, {.flip = true}, {.flip_vertical = true}, {.rotate = 30},
        {.translate = 4, .flip = true, .flip_vertical = true, .rotate = 180},
        {.translate = 20, .rotate = 10},   /* shifts larger than the plane */
    };
    const int64_t shapes[2][3] = {{3, 9, 13}, {1, 28, 28}};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++)
        for (int sh = 0; sh < 2; sh++) {
            int64_t n = 24, c = shapes[sh][0], h = shapes[sh][1], w = shapes[sh][2];
            size_t count = (size_t)(n * c * h * w);
            float *a = malloc(count * sizeof *a), *b;
            for (size_t i = 0; i < count; i++)
                a[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
            b = copy_of(a, count);
            float *scratch = malloc(nrt_augment_scratch_floats(n, c, h, w) * sizeof *scratch);
            nrt_augment_geometric(a, n, c, h, w, &specs[k], 4, 2, 10, scratch);
            nrt_augment_geometric_ref(b, n, c, h, w, &specs[k], 4, 2, 10, scratch);
            assert_memory_equal(a, b, count * sizeof *a);
            free(a), free(b), free(scratch);
        }
}

static void test_cutout(void **state)
{
    (void)state;
    int64_t n = 4000, c = 2, size = 8;
    float *x = malloc((size_t)(n * c * HW) * sizeof *x);
    for (int64_t i = 0; i < n * c * HW; i++)
        x[i] = 1.0f;
    NrtAugmentSpec s = {.cutout = size};
    nrt_augment_post(x, n, c, H, W, &s, 21, 4, 0);
    double total = 0;
    int inside = 0;
    for (int64_t i = 0; i < n; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(&s, H, W, 21, 4, i, &d);
        int64_t z[2] = {0, 0};
        int64_t y0 = d.cut_y - size / 2, x0 = d.cut_x - size / 2;
        for (int64_t ch = 0; ch < c; ch++)
            for (int k = 0; k < HW; k++) {
                int64_t y = k / W, xx = k % W;
                bool cut = y >= y0 && y < y0 + size && xx >= x0 && xx < x0 + size;
                assert_true(x[(i * c + ch) * HW + k] == (cut ? 0.0f : 1.0f));
                z[ch] += cut;
            }
        assert_int_equal(z[0], z[1]);   /* the same square in every channel */
        bool in = d.cut_y - size / 2 >= 0 && d.cut_y - size / 2 + size <= H &&
                  d.cut_x - size / 2 >= 0 && d.cut_x - size / 2 + size <= W;
        if (in) {
            assert_int_equal(z[0], size * size);
            inside++;
        }
        total += (double)z[0];
    }
    /* E[area] = E[clipped rows] * E[clipped cols], center uniform */
    double ey = 0;
    for (int64_t cy = 0; cy < H; cy++) {
        int64_t y0 = cy - size / 2, y1 = y0 + size;
        ey += (double)((y1 > H ? H : y1) - (y0 < 0 ? 0 : y0));
    }
    ey /= H;
    double mean = total / (double)n, expect = ey * ey;
    /* area in [16, 64]: sd below 16, so the mean's sd is below 0.26 */
    assert_true(fabs(mean - expect) < 0.8);
    assert_true(inside > n / 3);
    free(x);
}

static void test_noise(void **state)
{
    (void)state;
    int64_t n = 64;
    float *x = calloc((size_t)(n * HW), sizeof *x);
    NrtAugmentSpec s = {.noise = 0.25};
    nrt_augment_post(x, n, 1, H, W, &s, 77, 1, 0);
    double sum = 0, sq = 0, cnt = (double)(n * HW);
    for (int64_t i = 0; i < n * HW; i++) {
        sum += x[i];
        sq += (double)x[i] * x[i];
    }
    double mean = sum / cnt, sd = sqrt(sq / cnt - mean * mean);
    /* 50176 draws: mean's sd 0.0011, std's relative sd 0.3% */
    assert_true(fabs(mean) < 0.006);
    assert_true(fabs(sd - 0.25) < 0.006);
    /* different samples and elements: no two equal neighbours */
    assert_true(x[0] != x[1] && x[0] != x[HW]);
    free(x);
}

static NrtTrainConfig cfg_with(int count, const NrtAugment *k, const double *a)
{
    NrtTrainConfig c;
    memset(&c, 0, sizeof c);
    c.naugments = count;
    for (int i = 0; i < count; i++) {
        c.augment[i] = k[i];
        c.augment_amount[i] = a[i];
    }
    return c;
}

static void test_spec_from_config(void **state)
{
    (void)state;
    NrtAugment k[6] = {NRT_AUG_NOISE, NRT_AUG_CUTOUT, NRT_AUG_ROTATE, NRT_AUG_FLIP_VERTICAL,
                       NRT_AUG_FLIP, NRT_AUG_TRANSLATE};
    double a[6] = {0.1, 8, 15, 0, 0, 2};
    NrtTrainConfig c = cfg_with(6, k, a);
    NrtAugmentSpec s;
    NrtError err = {0};
    assert_int_equal(nrt_augment_spec_from_config(&s, &c, &err), NRT_OK);
    assert_true(s.translate == 2 && s.flip && s.flip_vertical && s.rotate == 15 &&
                s.cutout == 8 && s.noise == 0.1);
    double bad_px[1] = {2.5};
    NrtAugment tr[1] = {NRT_AUG_TRANSLATE};
    c = cfg_with(1, tr, bad_px);
    assert_int_equal(nrt_augment_spec_from_config(&s, &c, &err), NRT_ERR_ARG);
    assert_non_null(strstr(err.msg, "translate"));
    double neg[1] = {-1};
    NrtAugment no[1] = {NRT_AUG_NOISE};
    c = cfg_with(1, no, neg);
    assert_int_equal(nrt_augment_spec_from_config(&s, &c, &err), NRT_ERR_ARG);
    NrtAugment twice[2] = {NRT_AUG_FLIP, NRT_AUG_FLIP};
    double z[2] = {0, 0};
    c = cfg_with(2, twice, z);
    assert_int_equal(nrt_augment_spec_from_config(&s, &c, &err), NRT_ERR_ARG);
    c = cfg_with(0, k, a);
    assert_int_equal(nrt_augment_spec_from_config(&s, &c, &err), NRT_OK);
    float img[HW], orig[HW];
    blob(img);
    memcpy(orig, img, sizeof img);
    nrt_augment_geometric(img, 1, 1, H, W, &s, 1, 1, 0, NULL);   /* all off: untouched */
    nrt_augment_post(img, 1, 1, H, W, &s, 1, 1, 0);
    assert_memory_equal(img, orig, sizeof img);
}

/* ---- PNG ---------------------------------------------------------------- */

typedef struct PngImage {
    png_uint_32 width, height;
    int channels;
    unsigned char *px;   /* height * width * channels */
} PngImage;

static void png_read_all(const char *path, PngImage *im)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    im->channels = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    img.format = im->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    im->width = img.width;
    im->height = img.height;
    im->px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(im->px);
    assert_true(png_image_finish_read(&img, NULL, im->px, 0, NULL));
}

static unsigned char expect_byte(float v)
{
    if (!(v > 0.0f))
        return 0;
    return v >= 1.0f ? 255 : (unsigned char)lrintf(v * 255.0f);
}

static void check_grid(const PngImage *im, const float *x, int64_t n, int64_t c, int64_t h,
                       int64_t w, int cols, int scale, const float *lo, const float *inv)
{
    int64_t rows = (n + cols - 1) / cols;
    assert_int_equal(im->channels, c);
    assert_int_equal(im->width, cols * (w * scale + NRT_PNG_GAP) + NRT_PNG_GAP);
    assert_int_equal(im->height, rows * (h * scale + NRT_PNG_GAP) + NRT_PNG_GAP);
    for (png_uint_32 gy = 0; gy < im->height; gy++)
        for (png_uint_32 gx = 0; gx < im->width; gx++)
            for (int64_t ch = 0; ch < c; ch++) {
                unsigned char got = im->px[((size_t)gy * im->width + gx) * (size_t)c + (size_t)ch];
                int64_t cy = ((int64_t)gy - NRT_PNG_GAP) / (h * scale + NRT_PNG_GAP);
                int64_t cx = ((int64_t)gx - NRT_PNG_GAP) / (w * scale + NRT_PNG_GAP);
                int64_t iy = ((int64_t)gy - NRT_PNG_GAP) % (h * scale + NRT_PNG_GAP);
                int64_t ix = ((int64_t)gx - NRT_PNG_GAP) % (w * scale + NRT_PNG_GAP);
                int64_t k = cy * cols + cx;
                unsigned char want = 128;
                if (gy >= NRT_PNG_GAP && gx >= NRT_PNG_GAP && iy < h * scale && ix < w * scale &&
                    k < n) {
                    float v = x[((k * c + ch) * h + iy / scale) * w + ix / scale];
                    want = expect_byte(lo ? (v - lo[k]) * inv[k] : v);
                }
                assert_int_equal(got, want);
            }
}

static void test_png_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/netc_test_png_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    NrtError err = {0};
    /* grey, values outside [0, 1] and NaN, 5 images in 3 columns, scale 2 */
    int64_t n = 5, h = 6, w = 4;
    float g[5 * 6 * 4];
    for (int i = 0; i < 5 * 6 * 4; i++)
        g[i] = (float)(i % 13) / 10.0f - 0.1f;
    g[7] = NAN;
    assert_int_equal(nrt_png_write_grid(path, g, n, 1, h, w, 3, 2, &err), NRT_OK);
    PngImage im;
    png_read_all(path, &im);
    check_grid(&im, g, n, 1, h, w, 3, 2, NULL, NULL);
    free(im.px);
    /* RGB with min/max normalization, default columns (ceil(sqrt(3)) = 2) */
    float rgb[3 * 3 * 5 * 5];
    for (int i = 0; i < 3 * 3 * 5 * 5; i++)
        rgb[i] = (float)((i * 37) % 101) * 0.3f - 10.0f;
    for (int i = 2 * 75; i < 3 * 75; i++)
        rgb[i] = 4.0f;   /* constant image: black */
    assert_int_equal(nrt_png_write_grid_ex(path, rgb, 3, 3, 5, 5, 0, 1, NRT_PNG_MINMAX, &err),
                     NRT_OK);
    float lo[3], inv[3];
    for (int k = 0; k < 3; k++) {
        float mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < 75; i++) {
            mn = fminf(mn, rgb[k * 75 + i]);
            mx = fmaxf(mx, rgb[k * 75 + i]);
        }
        lo[k] = mx > mn ? mn : INFINITY;
        inv[k] = mx > mn ? 1.0f / (mx - mn) : 1.0f;
    }
    png_read_all(path, &im);
    check_grid(&im, rgb, 3, 3, 5, 5, 2, 1, lo, inv);
    free(im.px);
    unlink(path);
}

static void test_png_errors(void **state)
{
    (void)state;
    NrtError err = {0};
    float x[16] = {0};
    assert_int_equal(nrt_png_write_grid("/tmp/x.png", x, 1, 2, 2, 2, 1, 1, &err), NRT_ERR_ARG);
    assert_int_equal(nrt_png_write_grid("/tmp/x.png", x, 1, 1, 4, 4, 1, 0, &err), NRT_ERR_ARG);
    assert_int_equal(nrt_png_write_grid("/tmp/x.png", x, 0, 1, 4, 4, 1, 1, &err), NRT_ERR_ARG);
    assert_int_equal(nrt_png_write_grid("/nonexistent-dir/x.png", x, 1, 1, 4, 4, 1, 1, &err),
                     NRT_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.png"));
    /* A write that fails midway (file size limit, SIGXFSZ ignored): libpng
     * longjmps out or the final flush fails; either way NRT_ERR_IO and no
     * temp file is left in the folder. */
    char dir[] = "/tmp/netc_png_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/g.png", dir);
    int64_t side = 512;
    float *big = malloc((size_t)(side * side) * sizeof *big);
    uint32_t r = 12345;
    for (int64_t i = 0; i < side * side; i++) {   /* noise does not compress */
        r = r * 1664525u + 1013904223u;
        big[i] = (float)(r >> 8) / 16777216.0f;
    }
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 8192;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    NrtStatus st = nrt_png_write_grid(path, big, 1, 1, side, side, 1, 1, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, NRT_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    assert_true(strstr(err.msg, "Write Error") || strstr(err.msg, "write failed"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rmdir(dir), 0);   /* fails if a temp file was left */
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_draws),
        cmocka_unit_test(test_flip_twice_identity),
        cmocka_unit_test(test_translate_exact),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_geometric_vs_ref),
        cmocka_unit_test(test_cutout),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_spec_from_config),
        cmocka_unit_test(test_png_round_trip),
        cmocka_unit_test(test_png_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
