/* rng_normal.h - private to libnetrt: the float normal kernel of
 * rng_normal.c, built once per ISA (NRT_NORMAL_KERNEL names the copy).
 *
 * NrtNormalKey is a Philox block counter without its block index: key
 * words (seed), counter word 1 (sample), word 2 (step) and the fixed top
 * bits of word 3 (purpose << 24 | domain << 22). The kernel writes
 * out[0 .. 4 nb) for blocks b0 .. b0 + nb - 1, nb <= NRT_NORMAL_BLOCKS;
 * every copy gives the same bits (rng_normal.c says why).
 */
#ifndef NETRT_RNG_NORMAL_H
#define NETRT_RNG_NORMAL_H

#include <stdint.h>

#include "netrt.h"
#include "nrt_hidden.h"

enum { NRT_NORMAL_BLOCKS = 64 };   /* 256 floats per call */

typedef struct NrtNormalKey {
    uint32_t k0, k1, sample, step, hi;
} NrtNormalKey;

NRT_HIDDEN void nrt_normal_blocks_portable(const NrtNormalKey *key, uint64_t b0, int nb,
                                           float mean, float std, float *out);
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
NRT_HIDDEN void nrt_normal_blocks_avx512(const NrtNormalKey *key, uint64_t b0, int nb,
                                         float mean, float std, float *out);
#endif

#ifndef NRT_NORMAL_KERNEL
#define NRT_NORMAL_KERNEL nrt_normal_blocks_portable
#endif

#endif
