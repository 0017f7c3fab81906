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
 * nrt_rng_mask16_avx512 is rng.c's dropout-mask fill for 16 blocks.
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

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
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
