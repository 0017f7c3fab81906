/* fuzz_safetensors.c - libFuzzer target for the checkpoint loader
 * (runtime/checkpoint.c): any byte string is a candidate .safetensors file.
 *
 * It is opened (size checks, JSON via jansson, dtypes, shapes, offsets,
 * overlaps), and when it is accepted every query is exercised: metadata,
 * each tensor read with its own shape and refused with a wrong one, and
 * nrt_block_load with a small fixed layout (a model of two tensors), the
 * path `netc train --resume` takes. Built with clang
 * -fsanitize=fuzzer,address,undefined when meson has -Dfuzz=true.
 */
#include "fuzz_memfile.h"

#include <string.h>

#include "netrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const NrtBlockTensor fz_tensors[] = {
    {"w", 2, {2, 3, 0, 0}, 0},
    {"b", 1, {3, 0, 0, 0}, 6},
};
static const NrtBlockLayout fz_layout = {"fuzz", "0123456789abcdef", fz_tensors, 2, 9};

static void read_every_tensor(const NrtCheckpoint *ck)
{
    int n = nrt_checkpoint_count(ck);
    for (int i = 0; i < n; i++) {
        const char *name = nrt_checkpoint_name(ck, i);
        int64_t shape[8] = {0};
        int rank = nrt_checkpoint_shape(ck, name, shape);
        uint64_t numel = 1;
        for (int d = 0; d < rank; d++)
            numel *= (uint64_t)shape[d];
        if (numel > ((size_t)1 << 24))   /* the file holds them all: it is that big */
            continue;
        float *dst = malloc((size_t)(numel ? numel : 1) * sizeof *dst);
        NrtError err = {0};
        if (dst) {
            (void)nrt_checkpoint_read(ck, name, rank, shape, dst, &err);
            shape[0] += 1;
            (void)nrt_checkpoint_read(ck, name, rank > 0 ? rank : 1, shape, dst, &err);
        }
        free(dst);
    }
    (void)nrt_checkpoint_meta(ck, "step");
    (void)nrt_checkpoint_has(ck, "w");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile(data, size);
    NrtCheckpoint *ck = NULL;
    NrtError err = {0};
    if (nrt_checkpoint_open(path, &ck, &err) == NRT_OK) {
        read_every_tensor(ck);
        nrt_checkpoint_close(ck);
    } else if (!err.msg[0]) {
        abort();   /* every refusal says why */
    }
    float *block = aligned_alloc(64, 64);
    uint64_t step = 0, seed = 0;
    if (block && nrt_block_load(&fz_layout, &block, &step, &seed, path, &err) != NRT_OK
        && !err.msg[0])
        abort();
    free(block);
    return 0;
}
