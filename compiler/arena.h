/* arena.h - bump allocation for one compilation.
 *
 * Everything the compiler builds (tokens' strings, AST, graph IR, tables) is
 * allocated from one Arena and released together by arena_free(). Memory is
 * zeroed. Allocation failure is reported, never fatal: arena_alloc returns
 * NULL and sets a->failed, and the driver reports "out of memory".
 */
#ifndef NETC_ARENA_H
#define NETC_ARENA_H

#include <stddef.h>
#include <stdbool.h>

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
    ArenaChunk *head;
    size_t total;       /* bytes handed out so far */
    size_t limit;       /* 0 = no limit; otherwise allocations past it fail */
    bool failed;        /* an allocation failed at least once */
} Arena;

void arena_init(Arena *a);
void arena_free(Arena *a);

/* Zeroed, aligned to 16. NULL (and a->failed) on overflow or exhaustion. */
void *arena_alloc(Arena *a, size_t size);
/* n * size with overflow check. */
void *arena_array(Arena *a, size_t n, size_t size);
char *arena_strndup(Arena *a, const char *s, size_t len);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Growable array in an arena: old storage is abandoned on growth (cheap in
 * a bump allocator and simple to reason about).
 *
 *     Vec(IrNode *) nodes = {0};
 *     if (!vec_push(a, &nodes, n)) return error;
 */
#define Vec(T) struct { T *items; size_t len, cap; }

bool vec_grow_(Arena *a, void **items, size_t *cap, size_t elem, size_t need);
#define vec_push(a, v, x) \
    (((v)->len < (v)->cap || \
      vec_grow_((a), (void **)&(v)->items, &(v)->cap, sizeof *(v)->items, (v)->len + 1)) \
     ? ((v)->items[(v)->len++] = (x), true) : false)

#endif
