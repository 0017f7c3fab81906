/* source_file.c - a model's source text from a file; see source_file.h. */
#include "source_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCE_BYTES ((size_t)NETC_MAX_SOURCE_MIB << 20)

char *netc_read_source(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "netc: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_SOURCE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_SOURCE_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > MAX_SOURCE_BYTES;
    fclose(f);
    if (bad) {
        fprintf(stderr, "netc: cannot read '%s': %s\n", path,
                !buf ? "out of memory" : n > MAX_SOURCE_BYTES ? "larger than 64 MiB" : "read error");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
