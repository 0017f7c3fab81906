/* augment.c - training-time, label-preserving augmentation of NCHW batches
 * (LANGUAGE.md, Regularization): translate, flip, flip(vertical), rotate
 * [nrt_augment_geometric], then the caller's preprocessing, then cutout,
 * noise [nrt_augment_post].
 *
 * x is (n, c, h, w), changed in place; all channels of a sample move
 * together. Geometric: output pixel (y, x) samples the flipped, translated
 * image at the rotated point, bilinearly, with 0 outside the image at every
 * stage (translate's and rotate's zero fill). One pass per sample through a
 * copy of it in the caller's scratch. Cutout zeroes one square (DeVries &
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

#define AUG_PAR_MIN ((int64_t)1 << 14)   /* elements below this: one thread */
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
    return (size_t)(n * c * h * w);
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

/* No rotation: every output pixel is one source pixel (or 0). */
static void shift_flip(float *out, const float *src, int64_t c, const AugMap *m)
{
    int64_t hw = m->h * m->w;
    for (int64_t y = 0; y < m->h; y++)
        for (int64_t x = 0; x < m->w; x++) {
            int64_t i = map_index(m, y, x);
            for (int64_t ch = 0; ch < c; ch++)
                out[ch * hw + y * m->w + x] = i < 0 ? 0.0f : src[ch * hw + i];
        }
}

/* Output (y, x) takes the bilinear value at the point the inverse rotation
 * about the center gives: (sx, sy) = center + R(angle) (x - cx, y - cy). */
static void rotate_bilinear(float *out, const float *src, int64_t c, const AugMap *m)
{
    double rad = m->d->angle * (3.14159265358979323846 / 180.0);
    double cs = cos(rad), sn = sin(rad);
    double cy = 0.5 * (double)(m->h - 1), cx = 0.5 * (double)(m->w - 1);
    int64_t hw = m->h * m->w;
    for (int64_t y = 0; y < m->h; y++)
        for (int64_t x = 0; x < m->w; x++) {
            double u = (double)x - cx, v = (double)y - cy;
            double sx = cx + u * cs - v * sn, sy = cy + u * sn + v * cs;
            double fx0 = floor(sx), fy0 = floor(sy);
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

void nrt_augment_geometric(float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                           const NrtAugmentSpec *spec, uint64_t seed, uint64_t step,
                           int64_t first_sample, float *scratch)
{
    if (spec->translate <= 0 && !spec->flip && !spec->flip_vertical && !(spec->rotate > 0))
        return;
    int64_t size = c * h * w;
#pragma omp parallel for schedule(static) if (n * size >= AUG_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        NrtAugmentDraw d;
        nrt_augment_draw(spec, h, w, seed, step, first_sample + i, &d);
        if (d.dx == 0 && d.dy == 0 && !d.flip && !d.flip_vertical && d.angle == 0.0)
            continue;
        float *img = x + i * size, *src = scratch + i * size;
        memcpy(src, img, (size_t)size * sizeof *img);
        AugMap m = {h, w, &d};
        if (d.angle == 0.0)
            shift_flip(img, src, c, &m);
        else
            rotate_bilinear(img, src, c, &m);
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
#pragma omp parallel for schedule(static) if (n * size >= AUG_PAR_MIN)
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
