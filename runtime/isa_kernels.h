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
NRT_HIDDEN bool nrt_maxpool2_avx512(int64_t planes, int64_t h, int64_t w, int64_t oh,
                                    int64_t ow, const float *x, float *y, int32_t *argmax);
#endif

#endif
