/* conv_kernel.h - private to libnetrt: ISA-specific convolution helpers.
 *
 * nrt_im2col_avx512 writes exactly what conv.c's portable im2col writes
 * (col[(ci*k + ki)*k + kj][oy*ow + ox] = x[ci][oy*st - pad + ki][ox*st -
 * pad + kj], zero outside the image) and returns true, or returns false
 * without writing when the shape is outside what it handles (output rows
 * over 32 columns, strides other than 1 and 2). Call it only when the CPU
 * has avx512f.
 */
#ifndef NETRT_CONV_KERNEL_H
#define NETRT_CONV_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gemm_kernel.h"
#include "netrt.h"

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
NRT_HIDDEN bool nrt_im2col_avx512(const NrtConvShape *s, int64_t oh, int64_t ow, const float *x,
                                  float *col);
#endif

#endif
