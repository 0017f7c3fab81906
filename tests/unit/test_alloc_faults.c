/* test_alloc_faults.c - allocation-failure injection in libnetrt and the
 * generated code: every allocation made while a model is created, fitted,
 * stepped once and destroyed fails in turn.
 *
 * This executable replaces malloc, calloc, realloc, aligned_alloc,
 * posix_memalign, memalign and free (glibc supports replacing them; the
 * replacements call __libc_*), so every allocation of the process, the
 * shared libnetrt and the generated models compiled in (generated/mlp.c,
 * generated/lenet_bn.c: dense, conv, batchnorm, pooling, dropout, SGD with
 * momentum) goes through a counter. A clean armed run counts K allocations;
 * then for N = 1..K the N-th fails (and every later one, so unwinding code
 * is tested too): create, fit_preprocess or train_step must return
 * NRT_ERR_NOMEM with a message, destroy must free everything, and the live
 * allocations made while armed must be zero afterwards (a leak check of its
 * own, since LeakSanitizer cannot run with a replaced malloc). libgomp's
 * own allocations are let through (and not tracked): it aborts on a failed
 * allocation by design ("libgomp: Out of memory"), and LLVM's libomp (the
 * clang build) recurses until the stack overflows; no caller can change
 * either, and both keep thread-pool memory alive on purpose. Skipped
 * (77) under a sanitizer, which brings its own malloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_FAULTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_FAULTS_SANITIZED 1
#endif
#endif

const NrtModelInfo *mlp_info(void);
const NrtModelInfo *lenet_bn_info(void);

#ifndef ALLOC_FAULTS_SANITIZED

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void __libc_free(void *p);

/* ---- the counting allocator ------------------------------------------------ */

enum { LIVE_MAX = 1 << 14 };
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_armed;            /* count and track only while armed */
static long g_calls, g_fail_at;   /* fail call g_fail_at and every later one (0: never) */
static void *g_live[LIVE_MAX];    /* allocations made while armed, not yet freed */
static int g_nlive, g_overflow;

/* Whether the code at address pc belongs to the OpenMP runtime (libgomp
 * with gcc, libomp with clang). */
static int in_openmp_runtime(const void *pc)
{
    Dl_info dl;
    return dladdr(pc, &dl) && dl.dli_fname
           && (strstr(dl.dli_fname, "libgomp") || strstr(dl.dli_fname, "libomp"));
}

/* Whether this allocation (called from pc) must fail; counts it. */
static int alloc_fails(const void *pc)
{
    if (!g_armed || in_openmp_runtime(pc))
        return 0;
    pthread_mutex_lock(&g_lock);
    int fail = g_fail_at > 0 && ++g_calls >= g_fail_at;
    if (g_fail_at == 0)
        g_calls++;
    pthread_mutex_unlock(&g_lock);
    return fail;
}

static void *track(void *p, const void *pc)
{
    if (!p || !g_armed || in_openmp_runtime(pc))
        return p;
    pthread_mutex_lock(&g_lock);
    if (g_nlive < LIVE_MAX)
        g_live[g_nlive++] = p;
    else
        g_overflow = 1;
    pthread_mutex_unlock(&g_lock);
    return p;
}

static void untrack(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_lock);
    for (int i = g_nlive - 1; i >= 0; i--)
        if (g_live[i] == p) {
            g_live[i] = g_live[--g_nlive];
            break;
        }
    pthread_mutex_unlock(&g_lock);
}

void *malloc(size_t n)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__libc_malloc(n), __builtin_return_address(0));
}

void *calloc(size_t n, size_t size)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__libc_calloc(n, size), __builtin_return_address(0));
}

void *realloc(void *p, size_t n)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = __libc_realloc(p, n);
    if (q) {
        untrack(p);
        track(q, __builtin_return_address(0));
    }
    return q;
}

static void *aligned_from(const void *pc, size_t align, size_t n)
{
    if (alloc_fails(pc)) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__libc_memalign(align, n), pc);
}

void *memalign(size_t align, size_t n);
void *memalign(size_t align, size_t n)
{
    return aligned_from(__builtin_return_address(0), align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    return aligned_from(__builtin_return_address(0), align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = aligned_from(__builtin_return_address(0), align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (g_armed)
        untrack(p);
    __libc_free(p);
}

/* ---- the test ------------------------------------------------------------------ */

static int g_failed;

#define EXPECT(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            g_failed++; \
        } \
    } while (0)

typedef struct Batch {
    uint8_t *images;
    float *x;
    int32_t *labels;
    NrtBatch b;
} Batch;

static void batch_make(const NrtModelInfo *info, Batch *d)
{
    int64_t B = info->batch, D = info->input_size;
    d->images = __libc_malloc((size_t)(B * D));
    d->x = __libc_malloc((size_t)(B * D) * sizeof(float));
    d->labels = __libc_malloc((size_t)B * sizeof(int32_t));
    for (int64_t i = 0; i < B * D; i++) {
        d->images[i] = (uint8_t)(i * 2654435761u >> 24);
        d->x[i] = (float)d->images[i] / 255.0f;
    }
    for (int64_t i = 0; i < B; i++)
        d->labels[i] = (int32_t)(i % info->targets[0].n);
    memset(&d->b, 0, sizeof d->b);
    d->b.x = d->x;
    d->b.n = (int)B;
    d->b.labels[0] = d->labels;
}

/* create, fit_preprocess, one train_step, destroy; the first failure. */
static NrtStatus one_step(const NrtModelInfo *info, const Batch *d, NrtError *err)
{
    NrtModel *m = NULL;
    float loss = 0;
    NrtStatus st = info->create(&m, 1, err);
    if (st == NRT_OK)
        st = info->fit_preprocess(m, d->images, info->batch, err);
    if (st == NRT_OK)
        st = info->train_step(m, &d->b, (float)info->train.lr, &loss, err);
    if (m)
        info->destroy(m);
    return st;
}

static void run(long fail_at, const NrtModelInfo *info, const Batch *d, NrtError *err,
                NrtStatus *st)
{
    g_calls = 0;
    g_fail_at = fail_at;
    g_nlive = 0;
    g_overflow = 0;
    memset(err, 0, sizeof *err);
    g_armed = 1;
    *st = one_step(info, d, err);
    g_armed = 0;
}

static void check_model(const NrtModelInfo *info)
{
    Batch d;
    batch_make(info, &d);
    NrtError err;
    NrtStatus st;
    EXPECT(one_step(info, &d, &err) == NRT_OK, "%s: warm-up: %s", info->name, err.msg);
    run(0, info, &d, &err, &st);
    long total = g_calls;
    EXPECT(st == NRT_OK && g_nlive == 0, "%s: clean run: %s, %d live", info->name,
           nrt_status_name(st), g_nlive);
    for (long n = 1; n <= total; n++) {
        run(n, info, &d, &err, &st);
        EXPECT(st == NRT_ERR_NOMEM && err.msg[0], "%s: allocation %ld of %ld failed: got %s '%s'",
               info->name, n, total, nrt_status_name(st), err.msg);
        EXPECT(g_nlive == 0 && !g_overflow, "%s: allocation %ld of %ld failed: %d allocations "
               "leaked", info->name, n, total, g_nlive);
    }
    printf("%s: %ld allocations in create + fit_preprocess + train_step + destroy, each failed "
           "in turn\n", info->name, total);
    __libc_free(d.images);
    __libc_free(d.x);
    __libc_free(d.labels);
}

int main(void)
{
    nrt_set_threads(1);
    check_model(mlp_info());
    check_model(lenet_bn_info());
    if (g_failed)
        printf("%d failures\n", g_failed);
    return g_failed ? 1 : 0;
}

#else

int main(void)
{
    puts("SKIP: a sanitizer replaces malloc itself");
    return 77;
}

#endif
