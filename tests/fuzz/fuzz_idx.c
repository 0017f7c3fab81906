/* fuzz_idx.c - libFuzzer target for the IDX data loader (runtime/data.c):
 * any byte string is a candidate IDX file, plain or gzip'ed (zlib reads
 * both).
 *
 * It is loaded (magic, type, rank, dimension limits, truncation, trailing
 * data, corrupt gzip); when accepted, every element is touched (so ASan
 * sees a short buffer) and the file is offered as the training images of a
 * data set whose other three files are valid (2 labels, 2 test images of
 * 2x2), the path `netc train --data` takes.
 * Built with clang -fsanitize=fuzzer,address,undefined when meson has
 * -Dfuzz=true.
 */
#include "fuzz_memfile.h"

#include "netrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned char sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile(data, size);
    NrtIdx x;
    NrtError err = {0};
    if (nrt_idx_load(path, &x, &err) != NRT_OK) {
        if (!err.msg[0])
            abort();   /* every refusal says why */
        return 0;
    }
    const unsigned char *p = x.data;
    size_t bytes = (size_t)(x.count * x.item_size) * x.elem_bytes;
    unsigned char acc = 0;
    for (size_t i = 0; i < bytes; i++)
        acc ^= p[i];
    sink = acc;
    nrt_idx_free(&x);
    /* A valid IDX file: as a data set's training images, then labels. */
    static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    static const uint8_t images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2,
                                     1, 2, 3, 4, 5, 6, 7, 8};
    const char *lab = fuzz_memfile_in(1, labels, sizeof labels);
    const char *img = fuzz_memfile_in(2, images, sizeof images);
    NrtDataset ds;
    if (nrt_dataset_load_idx(path, lab, img, lab, &ds, &err) == NRT_OK)
        nrt_dataset_free(&ds);
    if (nrt_dataset_load_idx(img, path, img, lab, &ds, &err) == NRT_OK)
        nrt_dataset_free(&ds);
    return 0;
}
