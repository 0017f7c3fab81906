/* arena.c - bump allocator; see arena.h. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

struct ArenaChunk {
    ArenaChunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

enum { CHUNK_MIN = 64 * 1024 };

void arena_init(Arena *a)
{
    memset(a, 0, sizeof *a);
}

void arena_free(Arena *a)
{
    ArenaChunk *c = a->head;
    while (c) {
        ArenaChunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(Arena *a, size_t size)
{
    if (size > SIZE_MAX / 2) {   /* before rounding, which could wrap */
        a->failed = true;
        return NULL;
    }
    size = size ? (size + 15) & ~(size_t)15 : 16;
    if (a->limit && a->total + size > a->limit) {
        a->failed = true;
        return NULL;
    }
    ArenaChunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = size > CHUNK_MIN ? size : CHUNK_MIN;
        c = netc_malloc(sizeof *c + csize);
        if (!c) {
            a->failed = true;
            return NULL;
        }
        c->used = 0;
        c->size = csize;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void *arena_array(Arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        a->failed = true;
        return NULL;
    }
    return arena_alloc(a, n * size);
}

char *arena_strndup(Arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p)
        memcpy(p, s, len);
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)len + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool vec_grow_(Arena *a, void **items, size_t *cap, size_t elem, size_t need)
{
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = arena_array(a, ncap, elem);
    if (!p)
        return false;
    if (*items)
        memcpy(p, *items, *cap * elem);
    *items = p;
    *cap = ncap;
    return true;
}
