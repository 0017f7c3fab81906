/* png.c - write a batch of NCHW float images as one PNG grid (libpng).
 *
 * Inputs: x is (n, c, h, w) with c = 1 (grey) or 3 (RGB). Images are laid
 * out row-major in a grid of `cols` columns (cols <= 0: ceil(sqrt(n))),
 * each magnified `scale` times (nearest neighbour), separated and framed by
 * NRT_PNG_GAP pixels of mid-grey (128) so image borders stay visible; cells
 * past the last image are grey too.
 *
 * Values: NRT_PNG_CLAMP maps v to round(255 * clamp(v, 0, 1)) (raw [0,1]
 * data); NRT_PNG_MINMAX first maps each image's own [min, max] onto [0, 1]
 * (for preprocessed inputs, whose range is arbitrary; a constant image
 * becomes 0). NaN is written as 0.
 *
 * Guarantees: the file appears atomically (a temp file in the same folder,
 * fsync, rename); on any failure the temp file is removed, nothing leaks
 * and err says why. libpng reports errors by longjmp: the jump target is in
 * one small function whose locals do not change after setjmp, and every
 * resource is owned by the caller of that function, so the jump cannot
 * strand anything.
 */
#include "netrt.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PNG_MAX_SIDE = 1000000, PNG_GREY = 128 };

typedef struct PngGrid {
    const float *x;
    int64_t n, c, h, w;
    int64_t cols, rows, scale;
    int64_t width, height;     /* of the whole grid, pixels */
    NrtPngRange range;
} PngGrid;

/* libpng's error callback: keep the message and jump back to png_put. */
typedef struct PngFail {
    char msg[200];
} PngFail;

static void png_on_error(png_structp png, png_const_charp msg)
{
    PngFail *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;   /* the runtime never prints; warnings do not fail a write */
}

static uint8_t to_byte(float v, float lo, float inv)
{
    float t = (v - lo) * inv;
    if (!(t > 0.0f))   /* also NaN */
        return 0;
    if (t >= 1.0f)
        return 255;
    return (uint8_t)lrintf(t * 255.0f);
}

/* The affine map image k's values go through: t = (v - lo) * inv. */
static void image_range(const PngGrid *g, int64_t k, float *lo, float *inv)
{
    *lo = 0.0f;
    *inv = 1.0f;
    if (g->range != NRT_PNG_MINMAX)
        return;
    const float *p = g->x + k * g->c * g->h * g->w;
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < g->c * g->h * g->w; i++) {
        if (p[i] < mn) mn = p[i];   /* NaN compares false: skipped */
        if (p[i] > mx) mx = p[i];
    }
    if (mx > mn && isfinite(mx - mn)) {
        *lo = mn;
        *inv = 1.0f / (mx - mn);
    } else {
        *lo = INFINITY;   /* constant or empty image: all 0 */
    }
}

/* Fills one output row (width * channels bytes) of grid row gy. */
static void grid_row(const PngGrid *g, int64_t gy, uint8_t *row, const float *lo, const float *inv)
{
    int64_t ch = g->c, cell = g->h * g->scale + NRT_PNG_GAP;
    memset(row, PNG_GREY, (size_t)(g->width * ch));
    int64_t r = (gy - NRT_PNG_GAP) / cell, yin = (gy - NRT_PNG_GAP) % cell;
    if (gy < NRT_PNG_GAP || yin >= g->h * g->scale)
        return;
    int64_t iy = yin / g->scale, cellw = g->w * g->scale + NRT_PNG_GAP;
    for (int64_t col = 0; col < g->cols; col++) {
        int64_t k = r * g->cols + col;
        if (k >= g->n)
            break;
        const float *img = g->x + k * ch * g->h * g->w;
        uint8_t *out = row + (NRT_PNG_GAP + col * cellw) * ch;
        for (int64_t px = 0; px < g->w * g->scale; px++)
            for (int64_t cc = 0; cc < ch; cc++)
                out[px * ch + cc] = to_byte(img[(cc * g->h + iy) * g->w + px / g->scale],
                                            lo[k], inv[k]);
    }
}

/* Writes the PNG stream to f. Everything it uses is allocated by the caller
 * and freed there, so a longjmp out of libpng loses nothing; the png structs
 * are destroyed on both paths. Returns 0 or -1 with fail->msg set. */
static int png_put(FILE *f, const PngGrid *g, uint8_t *row, const float *lo, const float *inv,
                   PngFail *fail)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, fail, png_on_error,
                                              png_on_warning);
    if (!png) {
        snprintf(fail->msg, sizeof fail->msg, "cannot create the libpng writer");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(fail->msg, sizeof fail->msg, "cannot create the libpng info");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)g->width, (png_uint_32)g->height, 8,
                 g->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t gy = 0; gy < g->height; gy++) {
        grid_row(g, gy, row, lo, inv);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static NrtStatus grid_layout(PngGrid *g, int cols, int scale, NrtError *err)
{
    if (g->n < 1 || g->h < 1 || g->w < 1 || (g->c != 1 && g->c != 3) || scale < 1)
        return nrt_error_set(err, NRT_ERR_ARG,
                             "png grid: need n, h, w >= 1, c = 1 or 3 and scale >= 1 "
                             "(got n=%lld c=%lld h=%lld w=%lld scale=%d)",
                             (long long)g->n, (long long)g->c, (long long)g->h,
                             (long long)g->w, scale);
    g->cols = cols > 0 ? cols : (int64_t)ceil(sqrt((double)g->n));
    if (g->cols > g->n)
        g->cols = g->n;
    g->rows = (g->n + g->cols - 1) / g->cols;
    g->scale = scale;
    if (g->h > PNG_MAX_SIDE || g->w > PNG_MAX_SIDE || scale > PNG_MAX_SIDE)
        return nrt_error_set(err, NRT_ERR_ARG, "png grid: image or scale too large");
    g->width = g->cols * (g->w * scale + NRT_PNG_GAP) + NRT_PNG_GAP;
    g->height = g->rows * (g->h * scale + NRT_PNG_GAP) + NRT_PNG_GAP;
    if (g->width > PNG_MAX_SIDE || g->height > PNG_MAX_SIDE)
        return nrt_error_set(err, NRT_ERR_ARG,
                             "png grid: %lld x %lld pixels is larger than %d per side",
                             (long long)g->width, (long long)g->height, PNG_MAX_SIDE);
    return NRT_OK;
}

/* Opens a temp file next to path; *tmp receives its malloc'ed name. */
static NrtStatus open_temp(const char *path, FILE **f, char **tmp, NrtError *err)
{
    size_t len = strlen(path) + sizeof ".tmp.XXXXXX";
    *f = NULL;
    *tmp = malloc(len);
    if (!*tmp)
        return nrt_error_set(err, NRT_ERR_NOMEM, "png %s: out of memory", path);
    snprintf(*tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(*tmp);
    /* mkstemp makes the file 0600; an image is for everyone to look at */
    *f = fd >= 0 && fchmod(fd, 0644) == 0 ? fdopen(fd, "wb") : NULL;
    if (*f)
        return NRT_OK;
    NrtStatus st = nrt_error_set(err, NRT_ERR_IO, "png %s: cannot create a temp file: %s",
                                 path, strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(*tmp);
    }
    free(*tmp);
    *tmp = NULL;
    return st;
}

/* Closes f (after fsync) and renames tmp to path, or removes tmp. */
static NrtStatus finish_file(FILE *f, const char *tmp, const char *path, bool ok, NrtError *err)
{
    NrtStatus st = NRT_OK;
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        st = nrt_error_set(err, NRT_ERR_IO, "png %s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && ok && st == NRT_OK)
        st = nrt_error_set(err, NRT_ERR_IO, "png %s: close failed: %s", path, strerror(errno));
    if (ok && st == NRT_OK && rename(tmp, path) != 0)
        st = nrt_error_set(err, NRT_ERR_IO, "png %s: rename failed: %s", path, strerror(errno));
    if (!ok || st != NRT_OK)
        unlink(tmp);
    return st;
}

NrtStatus nrt_png_write_grid_ex(const char *path, const float *x, int64_t n, int64_t c,
                                int64_t h, int64_t w, int cols, int scale, NrtPngRange range,
                                NrtError *err)
{
    PngGrid g = {.x = x, .n = n, .c = c, .h = h, .w = w, .range = range};
    if (!path || !x)
        return nrt_error_set(err, NRT_ERR_ARG, "png grid: NULL path or images");
    NrtStatus st = grid_layout(&g, cols, scale, err);
    if (st != NRT_OK)
        return st;
    uint8_t *row = malloc((size_t)(g.width * g.c));
    float *lo = malloc((size_t)g.n * sizeof *lo), *inv = malloc((size_t)g.n * sizeof *inv);
    if (!row || !lo || !inv) {
        free(row), free(lo), free(inv);
        return nrt_error_set(err, NRT_ERR_NOMEM, "png %s: out of memory", path);
    }
    for (int64_t k = 0; k < g.n; k++)
        image_range(&g, k, &lo[k], &inv[k]);
    char *tmp = NULL;
    FILE *f = NULL;
    st = open_temp(path, &f, &tmp, err);
    if (st == NRT_OK) {
        PngFail fail = {{0}};
        bool ok = png_put(f, &g, row, lo, inv, &fail) == 0;
        if (!ok)
            nrt_error_set(err, NRT_ERR_IO, "png %s: %s", path, fail.msg);
        st = finish_file(f, tmp, path, ok, err);
        if (!ok)
            st = NRT_ERR_IO;
    }
    free(tmp);
    free(row), free(lo), free(inv);
    return st;
}

NrtStatus nrt_png_write_grid(const char *path, const float *x, int64_t n, int64_t c, int64_t h,
                             int64_t w, int cols, int scale, NrtError *err)
{
    return nrt_png_write_grid_ex(path, x, n, c, h, w, cols, scale, NRT_PNG_CLAMP, err);
}
