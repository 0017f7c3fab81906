/* optim_kernels.h - private to libnetrt: the per-element loops of the
 * parameter update (optim_kernels.c), built once per ISA like the normal
 * kernel (NRT_OPTK names the copy: nrt_optk_*_portable / _avx512).
 *
 * Every copy computes each element with the same IEEE operations in the
 * same order, no contraction into FMA, so all copies give the bits of the
 * scalar loops they replace (optim.c before them, built without FMA).
 */
#ifndef NETRT_OPTIM_KERNELS_H
#define NETRT_OPTIM_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "nrt_hidden.h"

/* Bits of nrt_optk_guard_*: a NaN or Inf in the data / in the gradient. */
enum { NRT_OPTK_BAD_W = 1, NRT_OPTK_BAD_G = 2 };

/* The SGD modes: w -= lr*g; momentum: v = mu*v + g, w -= lr*v; Nesterov:
 * w -= lr*(g + mu*v) with the new v. */
typedef enum NrtSgdMode { NRT_SGD_PLAIN, NRT_SGD_MOMENTUM, NRT_SGD_NESTEROV } NrtSgdMode;

#define NRT_OPTK_DECLARE(sfx)                                                                            \
    /* w[0..n) scanned; g (NULL: none) receives the penalty l1*sign(w) + l2*w when `penalty`,    \
     * then is scanned; returns NRT_OPTK_BAD_* bits */                                                   \
    NRT_HIDDEN unsigned nrt_optk_guard_##sfx(int64_t n, const float *w, float *g, float l1, float l2, \
                                             bool penalty);                                             \
    NRT_HIDDEN void nrt_optk_penalty_##sfx(int64_t n, const float *w, float *g, float l1, float l2);     \
    NRT_HIDDEN void nrt_optk_sgd_##sfx(int64_t n, float *w, const float *g, float *v, float lr, float mu, \
                                       NrtSgdMode mode);

NRT_OPTK_DECLARE(portable)
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
NRT_OPTK_DECLARE(avx512)
#endif

#endif
