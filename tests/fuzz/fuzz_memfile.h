/* fuzz_memfile.h - the fuzz input as a file path, for loaders that take one.
 *
 * The runtime's loaders open paths (safetensors via stdio, IDX via zlib's
 * gzopen), so each input is written to one memfd (an in-memory regular
 * file, no disk I/O) and handed over as /proc/self/fd/N. The same file is
 * rewritten for every input.
 */
#ifndef NETC_FUZZ_MEMFILE_H
#define NETC_FUZZ_MEMFILE_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

enum { FUZZ_MEMFILES = 4 };

/* The path of a regular file holding exactly data[0..size); `slot`
 * (0..FUZZ_MEMFILES-1) picks one of a few such files. */
static const char *fuzz_memfile_in(int slot, const uint8_t *data, size_t size)
{
    static int fds[FUZZ_MEMFILES] = {-1, -1, -1, -1};
    static char paths[FUZZ_MEMFILES][64];
    int fd = fds[slot];
    char *path = paths[slot];
    if (fd < 0) {
        fd = memfd_create("netc-fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof paths[0], "/proc/self/fd/%d", fd);
        fds[slot] = fd;
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_memfile");
        abort();
    }
    return path;
}

static const char *fuzz_memfile(const uint8_t *data, size_t size)
{
    return fuzz_memfile_in(0, data, size);
}

#endif
