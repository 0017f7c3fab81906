/* augment.c - training-time, label-preserving augmentation of NCHW batches
 * (LANGUAGE.md, Regularization): translate, flip, flip(vertical), rotate
 * [nrt_augment_geometric], then the caller's preprocessing, then cutout,
 * noise [nrt_augment_post].
 *
 * x is (n, c, h, w), changed in place; all channels of a sample move
 * together. Geometric: output pixel (y, x) samples the flipped, translated
 * image at the rotated point, bilinearly, with 0 outside the image at every
 * stage (translate's and rotate's zero fill). Per sample, the translated,
 * flipped image goes into the caller's scratch with a zero border of one
 * pixel, and the bilinear taps read it without bounds checks; the plain
 * nrt_augment_geometric_ref computes the same bits from the definition. Cutout zeroes one square (DeVries &
 * Taylor 2017, arXiv:1708.04552) in all channels; noise adds N(0, std^2).
 *
 * Randomness: every draw is Philox keyed by (seed, NRT_RNG_AUGMENT, step,
 * sample, element) through rng.c, sample = first_sample + i, element a
 * fixed slot per parameter (AUG_EL_*) or AUG_EL_NOISE + the element's index
 * in the sample. Integers (shifts, cutout centers) come from nrt_rng_below's
 * substreams, flips and angles from uniform words at elements 2..4 (blocks
 * 0 and 1), noise from normal words at elements 64.. (blocks 16..): no two
 * draws share a word.
 * Samples are independent, so the result is the same for any thread count
 * and however the caller splits a step's batch.
 */
#include "netrt.h"

#include <math.h>
#include <string.h>

/* Element slots of a sample's draws; noise takes AUG_EL_NOISE + index. */
enum {
    AUG_EL_DX = 0, AUG_EL_DY = 1, AUG_EL_FLIP = 2, AUG_EL_FLIP_V = 3, AUG_EL_ANGLE = 4,
    AUG_EL_CUT_Y = 5, AUG_EL_CUT_X = 6, AUG_EL_NOISE = 64,
};

/* Elements below this: one thread. Geometric work and noise cost tens of
 * ns per element, so a 64 x 28 x 28 batch is worth two threads. */
#define AUG_PAR_MIN ((int64_t)1 << 14)
enum { AUG_NOISE_CHUNK = 256 };            /* noise floats drawn per fill */

/* Integer uniform in [lo, hi] (Lemire, no modulo bias). */
static int64_t draw_int(uint64_t seed, uint64_t step, int64_t sample, uint64_t el, int64_t lo,
                        int64_t hi)
{
    return lo + (int64_t)nrt_rng_below(seed, NRT_RNG_AUGMENT, step, (uint64_t)sample, el,
                                       (uint64_t)(hi - lo + 1));
}

void nrt_augment_draw(const NrtAugmentSpec *spec, int64_t h, int64_t w, uint64_t seed,
                      uint64_t step, int64_t sample, NrtAugmentDraw *d)
{
    memset(d, 0, sizeof *d);
    if (spec->translate > 0) {
        d->dx = draw_int(seed, step, sample, AUG_EL_DX, -spec->translate, spec->translate);
        d->dy = draw_int(seed, step, sample, AUG_EL_DY, -spec->translate, spec->translate);
    }
    if (spec->flip)
        d->flip = nrt_rng_uniform(seed, NRT_RNG_AUGMENT, step, (uint64_t)sample, AUG_EL_FLIP) < 0.5;
    if (spec->flip_vertical)
        d->flip_vertical =
            nrt_rng_uniform(seed, NRT_RNG_AUGMENT, step, (uint64_t)sample, AUG_EL_FLIP_V) < 0.5;
    if (spec->rotate > 0) {
        double u = nrt_rng_uniform(seed, NRT_RNG_AUGMENT, step, (uint64_t)sample, AUG_EL_ANGLE);
        d->angle = (2.0 * u - 1.0) * spec->rotate;
    }
    if (spec->cutout > 0) {
        d->cut_y = draw_int(seed, step, sample, AUG_EL_CUT_Y, 0, h - 1);
        d->cut_x = draw_int(seed, step, sample, AUG_EL_CUT_X, 0, w - 1);
    }
}

size_t nrt_augment_scratch_floats(int64_t n, int64_t c, int64_t h, int64_t w)
{
    return (size_t)(n * c * (h + 2) * (w + 2));
}

/* Geometry of one sample: where pixel (y, x) of the flipped image comes
 * from in the original, or -1 when translate's zero fill covers it. */
typedef struct AugMap {
    int64_t h, w;
    const NrtAugmentDraw *d;
} AugMap;

static int64_t map_index(const AugMap *m, int64_t y, int64_t x)
{
    if (y < 0 || y >= m->h || x < 0 || x >= m->w)
        return -1;
    int64_t ty = m->d->flip_vertical ? m->h - 1 - y : y;
    int64_t tx = m->d->flip ? m->w - 1 - x : x;
    int64_t oy = ty - m->d->dy, ox = tx - m->d->dx;
    if (oy < 0 || oy >= m->h || ox < 0 || ox >= m->w)
        return -1;
    return oy * m->w + ox;
}

static float fetch(const float *plane, const AugMap *m, int64_t y, int64_t x)
{
    int64_t i = map_index(m, y, x);
    return i < 0 ? 0.0f : plane[i];
}

/* The inverse rotation about the center: output (x, y) samples the point
 * (sx, sy) = center + R (x - cx, y - cy); its bilinear cell and weights. */
typedef struct AugRot {
    double cs, sn, cy, cx;
} AugRot;

static AugRot rot_of(const AugMap *m)
{
    double rad = m->d->angle * (3.14159265358979323846 / 180.0);
    return (AugRot){cos(rad), sin(rad), 0.5 * (double)(m->h - 1), 0.5 * (double)(m->w - 1)};
}

/* floor for |v| < 2^62 without a libm call (baseline x86-64 has no
 * roundsd); exact, so the reference and the fast path agree. */
static double floor_small(double v)
{
    double t = (double)(int64_t)v;
    return t > v ? t - 1.0 : t;
}

static void rot_point(const AugRot *r, int64_t y, int64_t x, double *sy, double *sx)
{
    double u = (double)x - r->cx, v = (double)y - r->cy;
    *sx = r->cx + u * r->cs - v * r->sn;
    *sy = r->cy + u * r->sn + v * r->cs;
}

/* Reference: one sample, straight from the definition, every neighbour
 * through map_index. out and src are (c, h, w), distinct. */
static void geometric_one_ref(float *out, const float *src, int64_t c, const AugMap *m)
{
    AugRot r = rot_of(m);
    int64_t hw = m->h * m->w;
    for (int64_t y = 0; y < m->h; y++)
        for (int64_t x = 0; x < m->w; x++) {
            double sx, sy;
            rot_point(&r, y, x, &sy, &sx);
            if (!(fabs(sx) < 1e9 && fabs(sy) < 1e9))   /* far outside (or NaN): 0 */
                sx = sy = -2.0;
            double fx0 = floor_small(sx), fy0 = floor_small(sy);
            float ax = (float)(sx - fx0), ay = (float)(sy - fy0);
            int64_t x0 = (int64_t)fx0, y0 = (int64_t)fy0;
            for (int64_t ch = 0; ch < c; ch++) {
                const float *p = src + ch * hw;
                float top = (1.0f - ax) * fetch(p, m, y0, x0) + ax * fetch(p, m, y0, x0 + 1);
                float bot = (1.0f - ax) * fetch(p, m, y0 + 1, x0) + ax * fetch(p, m, y0 + 1, x0 + 1);
                out[ch * hw + y * m->w + x] = (1.0f - ay) * top + ay * bot;
            }
        }
}

/* pad (c, h+2, w+2) = the translated, flipped image inside a zero border,
 * so bilinear taps need no bounds checks. */
static void build_padded(float *pad, const float *img, int64_t c, const AugMap *m)
{
    int64_t pw = m->w + 2, ps = (m->h + 2) * pw, hw = m->h * m->w;
    memset(pad, 0, (size_t)(c * ps) * sizeof *pad);
    for (int64_t y = 0; y < m->h; y++)
        for (int64_t x = 0; x < m->w; x++) {
            int64_t i = map_index(m, y, x);
            if (i >= 0)
                for (int64_t ch = 0; ch < c; ch++)
                    pad[ch * ps + (y + 1) * pw + x + 1] = img[ch * hw + i];
        }
}

/* Rotation from the padded image: a point with sx in [-1, w) and sy in
 * [-1, h) has its four taps inside the padding; any other point has all
 * four outside the image, so 0. The same arithmetic as the reference. */
static void rotate_padded(float *out, const float *pad, int64_t c, const AugMap *m)
{
    AugRot r = rot_of(m);
    int64_t pw = m->w + 2, ps = (m->h + 2) * pw, hw = m->h * m->w;
    for (int64_t y = 0; y < m->h; y++)
        for (int64_t x = 0; x < m->w; x++) {
            double sx, sy;
            rot_point(&r, y, x, &sy, &sx);
            if (!(sx >= -1.0 && sx < (double)m->w && sy >= -1.0 && sy < (double)m->h)) {
                for (int64_t ch = 0; ch < c; ch++)
                    out[ch * hw + y * m->w + x] = 0.0f;
                continue;
            }
            double fx0 = floor_small(sx), fy0 = floor_small(sy);
            float ax = (float)(sx - fx0), ay = (float)(sy - fy0);
            const float *p = pad + ((int64_t)fy0 + 1) * pw + (int64_t)fx0 + 1;
            for (int64_t ch = 0; ch < c; ch++, p += ps) {
                float top = (1.0f - ax) * p[0] + ax * p[1];
                float bot = (1.0f - ax) * p[pw] + ax * p[pw + 1];
                out[ch * hw + y * m->w + x] = (1.0f - ay) * top + ay * bot;
            }
        }
}

static void geometric_one(float *img, float *pad, int64_t c, const AugMap *m)
{
    build_padded(pad, img, c, m);
    if (m->d->angle != 0.0) {
        rotate_padded(img, pad, c, m);
        return;
    }
    int64_t pw = m->w + 2, ps = (m->h + 2) * pw;   /* no rotation: the interior */
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = 0; y < m->h; y++)
            memcpy(img + (ch * m->h + y) * m->w, pad + ch * ps + (y + 1) * pw + 1,
                   (size_t)m->w * sizeof *img);
}

static bool draw_is_identity(const NrtAugmentDraw *d)
{
    return d->dx == 0 && d->dy == 0 && !d->flip && !d->flip_vertical && d->angle == 0.0;
}

static bool spec_has_geometric(const NrtAugmentSpec *spec)
{
    return spec->translate > 0 || spec->flip || spec->flip_vertical || spec->rotate > 0;
}

void nrt_augment_geometric(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                           const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                           int64_t first_sample, float *scratch)
{
    if (!spec_has_geometric(spec))
        return;
    int64_t size = c * h * w, psize = c * (h + 2) * (w + 2);
#pragma omp parallel for schedule(static) if (n * size >= AUG_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(spec, h, w, seed, step, first_sample + i, &d);
        AugMap m = {h, w, &d};
        if (!draw_is_identity(&d))
            geometric_one(x + i * size, scratch + i * psize, c, &m);
    }
}

void nrt_augment_geometric_ref(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                               const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                               int64_t first_sample, float *scratch)
{
    if (!spec_has_geometric(spec))
        return;
    int64_t size = c * h * w;
    for (int64_t i = 0; i < n; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(spec, h, w, seed, step, first_sample + i, &d);
        AugMap m = {h, w, &d};
        memcpy(scratch, x + i * size, (size_t)size * sizeof *x);
        geometric_one_ref(x + i * size, scratch, c, &m);
    }
}

static void cutout_one(float *img, int64_t c, int64_t h, int64_t w, int64_t s,
                       const NrtAugmentDraw *d)
{
    int64_t y0 = d->cut_y - s / 2, x0 = d->cut_x - s / 2;
    int64_t y1 = y0 + s, x1 = x0 + s;
    y0 = y0 < 0 ? 0 : y0;
    x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > h ? h : y1;
    x1 = x1 > w ? w : x1;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = y0; y < y1; y++)
            for (int64_t xx = x0; xx < x1; xx++)
                img[(ch * h + y) * w + xx] = 0.0f;
}

/* img[k] += N(0, std^2) drawn at element AUG_EL_NOISE + k, in chunks
 * through a stack buffer (the fill is bitwise the scalar draw). */
static void add_noise(float *img, int64_t size, float std, uint64_t seed, uint64_t step,
                      uint64_t sample)
{
    float buf[AUG_NOISE_CHUNK];
    for (int64_t k0 = 0; k0 < size; k0 += AUG_NOISE_CHUNK) {
        int64_t m = size - k0 < AUG_NOISE_CHUNK ? size - k0 : AUG_NOISE_CHUNK;
        nrt_rng_fill_normal(seed, NRT_RNG_AUGMENT, step, sample, AUG_EL_NOISE + (uint64_t)k0, m,
                            0.0f, std, buf);
        for (int64_t k = 0; k < m; k++)
            img[k0 + k] += buf[k];
    }
}

void nrt_augment_post(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                      const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                      int64_t first_sample)
{
    if (spec->cutout <= 0 && !(spec->noise > 0))
        return;
    int64_t size = c * h * w;
    float std = (float)spec->noise;
    /* cutout alone is a few stores per sample: not worth a parallel region */
    bool par = spec->noise > 0 && n * size >= AUG_PAR_MIN;
    (void)par;   /* read only by the OpenMP clause */
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float *img = x + i * size;
        uint64_t sample = (uint64_t)(first_sample + i);
        if (spec->cutout > 0) {
            NrtAugmentDraw d;
            nrt_augment_draw(spec, h, w, seed, step, first_sample + i, &d);
            cutout_one(img, c, h, w, spec->cutout, &d);
        }
        if (spec->noise > 0)
            add_noise(img, size, std, seed, step, sample);
    }
}

static NrtStatus whole_amount(double a, const char *what, int64_t *out, NrtError *err)
{
    if (!(a >= 0.0) || a > 1e6 || a != floor(a))
        return nrt_error_set(err, NRT_ERR_ARG, "augment %s(%g): need a whole number of pixels",
                             what, a);
    *out = (int64_t)a;
    return NRT_OK;
}

NrtStatus nrt_augment_spec_from_config(NrtAugmentSpec *spec, const NrtTrainConfig *cfg,
                                       NrtError *err)
{
    memset(spec, 0, sizeof *spec);
    if (cfg->naugments < 0 || cfg->naugments > NRT_MAX_AUGMENTS)
        return nrt_error_set(err, NRT_ERR_ARG, "augment: %d augmentations (at most %d)",
                             cfg->naugments, NRT_MAX_AUGMENTS);
    unsigned seen = 0;
    for (int k = 0; k < cfg->naugments; k++) {
        NrtAugment kind = cfg->augment[k];
        double a = cfg->augment_amount[k];
        if ((unsigned)kind > NRT_AUG_NOISE || (seen >> kind & 1u))
            return nrt_error_set(err, NRT_ERR_ARG, "augment: kind %d unknown or repeated",
                                 (int)kind);
        seen |= 1u << kind;
        NrtStatus st = NRT_OK;
        switch (kind) {
        case NRT_AUG_TRANSLATE: st = whole_amount(a, "translate", &spec->translate, err); break;
        case NRT_AUG_FLIP: spec->flip = true; break;
        case NRT_AUG_FLIP_VERTICAL: spec->flip_vertical = true; break;
        case NRT_AUG_CUTOUT: st = whole_amount(a, "cutout", &spec->cutout, err); break;
        case NRT_AUG_ROTATE:
        case NRT_AUG_NOISE:
            if (!(a >= 0.0) || !isfinite(a))
                return nrt_error_set(err, NRT_ERR_ARG, "augment %s(%g): need a finite amount >= 0",
                                     kind == NRT_AUG_ROTATE ? "rotate" : "noise", a);
            *(kind == NRT_AUG_ROTATE ? &spec->rotate : &spec->noise) = a;
            break;
        }
        if (st != NRT_OK)
            return st;
    }
    return NRT_OK;
}
