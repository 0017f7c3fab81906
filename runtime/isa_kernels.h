/* isa_kernels.h - private to libnetrt: ISA-specific convolution and pooling
 * helpers (the SGEMM micro-kernels have their own header, gemm_kernel.h).
 *
 * nrt_im2col_avx512 writes exactly what conv.c's portable im2col writes
 * (col[(ci*k + ki)*k + kj][oy*ow + ox] = x[ci][oy*st - pad + ki][ox*st -
 * pad + kj], zero outside the image) and returns true, or returns false
 * without writing when the shape is outside what it handles (output rows
 * over 32 columns, strides other than 1 and 2). Call it only when the CPU
 * has avx512f.
 *
 * nrt_conv_pad_avx512 and nrt_conv_direct_avx512 (conv_direct_avx512.c)
 * are the direct convolution of one sample: the padded, phase-split copy
 * of x (the caller zeroes xp once; the copy writes only the image's own
 * positions, so the padding stays zero across samples), then y = epilogue(
 * conv + beta * y) with exactly the bits of im2col + nrt_sgemm_ex (the
 * geometry and tap offsets come from conv.c's direct_plan).
 * nrt_conv_unphase2_avx512 interleaves the four phase outputs of a
 * stride-2 backward data (conv.c's phase_run) back into dx.
 *
 * nrt_rng_mask16_avx512 is rng.c's dropout-mask fill for 16 blocks.
 *
 * nrt_scale_avx512 (scale_avx512.c) is dst[i] = src[i] * s, the batchnorm
 * fold's weight scaling, with the portable loop's bits.
 *
 * nrt_maxpool2_avx512 is pool.c's 2x2, stride-2, unpadded max pooling of
 * `planes` planes (same y and argmax, bit for bit) for input rows of at
 * most 32 columns, returning true; otherwise false, writing nothing.
 */
#ifndef NETRT_ISA_KERNELS_H
#define NETRT_ISA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "gemm_kernel.h"
#include "netrt.h"

/* One sample's direct convolution: M = f output channels, K = kk taps over
 * q padded positions (q = (oh - 1) * wq + ow; position oy*wq + ox is output
 * (oy, ox), valid when ox < ow); y planes are p = oh*ow floats apart. */
typedef struct NrtDirectConv {
    int64_t f, kk;
    int64_t wq, ow, q, p;
    const int32_t *off;   /* off[t]: where tap t reads in the copy, relative to q */
    const float *ap;      /* weights packed as gemm.c packs A: the slice from tap p0
                           * (kc deep) at ap + p0 * roundup(f, 8), 8-row panels of
                           * kc x 8 floats one after the other */
} NrtDirectConv;

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
NRT_HIDDEN void nrt_scale_avx512(const float *src, int64_t n, float s, float *dst);
NRT_HIDDEN void nrt_conv_pad_avx512(const NrtConvShape *s, int64_t hq, int64_t wq,
                                    const float *x, float *xp);
NRT_HIDDEN void nrt_conv_direct_avx512(const NrtDirectConv *d, const float *xp, float *y,
                                       float beta, const NrtEpilogue *ep);
/* The same over units [u0, u1) of the output only (unit u: the 32-position
 * tile u / npan times the 8-row panel u % npan, npan = ceil(f / 8); there
 * are nrt_conv_direct_units of them): threads taking disjoint ranges
 * compute exactly what one call computes. */
NRT_HIDDEN void nrt_conv_direct_units_avx512(const NrtDirectConv *d, const float *xp, float *y,
                                             float beta, const NrtEpilogue *ep, int64_t u0,
                                             int64_t u1);
NRT_HIDDEN int64_t nrt_conv_direct_units(const NrtDirectConv *d);
/* One packed 8-row weight panel of kc columns (ap[p*8 + r]) scaled in
 * place by row: ap[p*8 + r] *= s8[r], one float multiply (a batchnorm
 * folded into the packed weights: the fold's own product). */
NRT_HIDDEN void nrt_scale_panel8_avx512(float *ap, int64_t kc, const float s8[8]);
NRT_HIDDEN void nrt_conv_unphase2_avx512(const float *const yt[4], int64_t c, int64_t u,
                                         int64_t v, int64_t h, int64_t w, int64_t pad,
                                         float *dx, bool accumulate);
NRT_HIDDEN bool nrt_im2col_avx512(const NrtConvShape *s, int64_t oh, int64_t ow, const float *x,
                                  float *col);
/* rng_avx512.c: 16 Philox4x32-10 blocks at counters (ctr[0] + l, ctr[1],
 * ctr[2], ctr[3]), l = 0..15 (ctr[0] + 15 must not wrap), as dropout-mask
 * floats: out[4 l + j] = word j of block l < below ? scale : 0 (below up to
 * 2^32), exactly rng.c's scalar mask. */
NRT_HIDDEN void nrt_rng_mask16_avx512(const uint32_t key[2], const uint32_t ctr[4],
                                      uint64_t below, float scale, float *out);
NRT_HIDDEN bool nrt_maxpool2_avx512(int64_t planes, int64_t h, int64_t w, int64_t oh,
                                    int64_t ow, const float *x, float *y, int32_t *argmax);
#endif

#endif
