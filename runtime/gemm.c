/* gemm.c - single-precision GEMM: C = alpha * op(A) * op(B) + beta * C,
 * row-major, with an optional fused epilogue (bias per row or column, ReLU).
 *
 * Inputs: op(A) is M x K, op(B) is K x N, C is M x N (leading dimensions
 * lda, ldb, ldc in floats). A and B are only read; C is read when beta != 0
 * and always written. The packing buffers come from the caller
 * (NrtWorkspace, sized by nrt_sgemm_workspace_floats); nothing is allocated
 * unless the caller passes no workspace (then one malloc per call).
 *
 * Method (Goto/BLIS): for each NC-column block and KC-deep slice of K, pack
 * B into NR-column panels and A into MR-row panels, then run an MR x NR
 * register-blocked micro-kernel (gemm_kernel.h) over the tiles of C. The
 * packing absorbs both transposes, so one kernel serves all four cases.
 *
 * Two drivers: up to M = 512 rows (every model GEMM here), threads split
 * C by columns and pack privately, one parallel region without inner
 * barriers (gemm_split); taller products share packed panels (gemm_blocked,
 * three barriers per K slice).
 *
 * Determinism: the blocking depends only on the shape. Each tile of C is
 * computed by exactly one thread, over the K slices in increasing order,
 * from the same packed values in both drivers, so results are bitwise
 * identical for any thread count. Small products (M*N*K below
 * NRT_GEMM_PAR_MIN) run without a parallel region.
 *
 * ISA: the AVX-512 kernel (gemm_avx512.c) is chosen at run time when the CPU
 * has avx512f; otherwise a portable GNU-vector kernel runs. With AVX-512,
 * products of at most NRT_GEMV_MAX_M rows of a non-transposed A (batch-1
 * inference) skip packing altogether (nrt_gemv_avx512), on as many threads
 * as pays for its region (par.c).
 */
#include "netrt.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_kernel.h"
#include "par_team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    MR = NRT_GEMM_MR,
    NR = NRT_GEMM_NR,
    KC = NRT_GEMM_KC,   /* K slice: an 8 KB A micro-panel and a 32 KB B micro-panel fit L1 */
    MC = 128,           /* rows of C per task: the A block (128 KB) stays in L2 */
    NT = 128,           /* columns of C per task */
    NC = 2048,          /* columns per packed B block (at most 2 MB) */
    MB = 1024,          /* rows per packed A block (at most 1 MB) */
    DIRECT_B_MAX_M = 32, /* up to this M, B panels are used too few times to pack */
    SPLIT_MAX_M = 512,   /* up to this M, threads split C by columns (gemm_split) */
    ALIGN = 16,         /* floats: packed buffers start on 64-byte lines */
};

#define NRT_GEMM_PAR_MIN ((int64_t)1 << 20)   /* M*N*K below this: one thread */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static float *align_floats(float *p)
{
    uintptr_t u = (uintptr_t)p, a = ALIGN * sizeof(float);
    return (float *)((u + a - 1) / a * a);
}

/* ---- kernel selection ---------------------------------------------------- */

static _Atomic int gemm_isa = NRT_ISA_AUTO;

static NrtIsa isa_detect(void)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return NRT_ISA_AVX512;
#endif
    return NRT_ISA_PORTABLE;
}

NrtIsa nrt_sgemm_set_isa(NrtIsa isa)
{
    NrtIsa best = isa_detect();
    if (isa == NRT_ISA_AUTO || (isa == NRT_ISA_AVX512 && best != NRT_ISA_AVX512))
        isa = best;
    atomic_store(&gemm_isa, (int)isa);
    return isa;
}

NrtIsa nrt_sgemm_isa(void)
{
    int isa = atomic_load(&gemm_isa);
    if (isa == NRT_ISA_AUTO)
        isa = (int)nrt_sgemm_set_isa(NRT_ISA_AUTO);
    return (NrtIsa)isa;
}

static NrtGemmKernel *kernel_for(NrtIsa isa)
{
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (isa == NRT_ISA_AVX512)
        return nrt_gemm_kernel_avx512;
#endif
    (void)isa;
    return nrt_gemm_kernel_portable;
}

/* ---- the portable kernel: 8-float GNU vectors, any target ---------------- */

typedef float NrtV8 __attribute__((vector_size(32)));
typedef float NrtV8u __attribute__((vector_size(32), aligned(4)));

void nrt_gemm_kernel_portable(int64_t kc, const float *ap, const float *bp, int64_t ldbp,
                              float *c, int64_t ldc, int mr, int nr,
                              const NrtGemmTile *t)
{
    enum { NV = NR / 8 };
    NrtV8 acc[MR][NV];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        const NrtV8u *b = (const NrtV8u *)(bp + p * ldbp);
        const float *a = ap + p * MR;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NV; j++)
                acc[i][j] += a[i] * b[j];
    }
    nrt_gemm_store_edge((const float *)acc, c, ldc, mr, nr, t);
}

/* ---- packing ------------------------------------------------------------- */

typedef struct Gemm {
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
    const NrtEpilogue *ep;
    NrtGemmKernel *kernel;
    bool fast_pack;   /* AVX-512 transposing packers for full panels */
    bool direct_b;    /* small M: full B panels are read in place, not packed */
    const NrtBPacker *packer;   /* B made panel by panel (implicit GEMM), or NULL */
} Gemm;

/* dst[p][r] = op(A)(i0 + r, p0 + p), rows past mr are zero. */
static void pack_a_panel(const Gemm *g, int64_t i0, int mr, int64_t p0, int64_t kc, float *dst)
{
    if (g->ta && mr == MR) {
        for (int64_t p = 0; p < kc; p++)
            memcpy(dst + p * MR, g->a + (p0 + p) * g->lda + i0, MR * sizeof(float));
        return;
    }
    if (g->ta) {
        for (int64_t p = 0; p < kc; p++) {
            const float *src = g->a + (p0 + p) * g->lda + i0;
            float *d = dst + p * MR;
            int r = 0;
            for (; r < mr; r++)
                d[r] = src[r];
            for (; r < MR; r++)
                d[r] = 0.0f;
        }
        return;
    }
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (g->fast_pack) {
        nrt_gemm_pack_rows8_avx512(g->a + i0 * g->lda + p0, g->lda, mr, kc, dst);
        return;
    }
#endif
    for (int r = 0; r < MR; r++) {
        if (r >= mr) {
            for (int64_t p = 0; p < kc; p++)
                dst[p * MR + r] = 0.0f;
            continue;
        }
        const float *src = g->a + (i0 + r) * g->lda + p0;
        for (int64_t p = 0; p < kc; p++)
            dst[p * MR + r] = src[p];
    }
}

/* dst[p][j] = op(B)(p0 + p, j0 + j), columns past nr are zero. */
static void pack_b_panel(const Gemm *g, int64_t j0, int nr, int64_t p0, int64_t kc, float *dst)
{
    if (g->packer) {
        g->packer->pack(g->packer->ctx, j0, nr, p0, kc, dst);
        return;
    }
    if (!g->tb && nr == NR) {   /* fixed-size copies compile to vector moves */
        for (int64_t p = 0; p < kc; p++)
            memcpy(dst + p * NR, g->b + (p0 + p) * g->ldb + j0, NR * sizeof(float));
        return;
    }
    if (!g->tb) {
        for (int64_t p = 0; p < kc; p++) {
            const float *src = g->b + (p0 + p) * g->ldb + j0;
            float *d = dst + p * NR;
            int j = 0;
            for (; j < nr; j++)
                d[j] = src[j];
            for (; j < NR; j++)
                d[j] = 0.0f;
        }
        return;
    }
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (g->fast_pack) {
        nrt_gemm_pack_rows32_avx512(g->b + j0 * g->ldb + p0, g->ldb, nr, kc, dst);
        return;
    }
#endif
    /* B^T: each source row (one column of op(B)) is read contiguously. */
    for (int j = 0; j < NR; j++) {
        if (j >= nr) {
            for (int64_t p = 0; p < kc; p++)
                dst[p * NR + j] = 0.0f;
            continue;
        }
        const float *src = g->b + (j0 + j) * g->ldb + p0;
        for (int64_t p = 0; p < kc; p++)
            dst[p * NR + j] = src[p];
    }
}

/* ---- the blocked driver -------------------------------------------------- */

static NrtGemmTile tile_for(const Gemm *g, int64_t i, int64_t j, bool first, bool last)
{
    NrtGemmTile t = {
        .alpha = g->alpha, .beta = g->beta, .first = first, .last = last,
        .bias_row = NULL, .bias_col = NULL, .act = NRT_ACT_NONE,
    };
    if (g->ep) {
        if (g->ep->bias_kind == NRT_BIAS_ROW && g->ep->bias)
            t.bias_row = g->ep->bias + i;
        if (g->ep->bias_kind == NRT_BIAS_COL && g->ep->bias)
            t.bias_col = g->ep->bias + j;
        t.act = g->ep->act;
    }
    return t;
}

/* One task: rows [i0, i0+mb) x columns [j0, j0+nb) of C for the K slice
 * [p0, p0+kc). ap and bp point at the packed panels of the task's first
 * row and column; with direct_b, full B panels come from B itself. */
static void run_task(const Gemm *g, int64_t i0, int64_t mb, int64_t j0, int64_t nb,
                     int64_t p0, int64_t kc, const float *ap, const float *bp)
{
    bool first = p0 == 0, last = p0 + kc == g->k;
    for (int64_t jr = 0; jr < nb; jr += NR) {
        int nr = (int)min64(NR, nb - jr);
        const float *bpan = bp + jr / NR * kc * NR;
        int64_t ldbp = NR;
        if (g->direct_b && nr == NR) {
            bpan = g->b + p0 * g->ldb + j0 + jr;
            ldbp = g->ldb;
        }
        for (int64_t ir = 0; ir < mb; ir += MR) {
            int mr = (int)min64(MR, mb - ir);
            NrtGemmTile t = tile_for(g, i0 + ir, j0 + jr, first, last);
            g->kernel(kc, ap + ir / MR * kc * MR, bpan, ldbp,
                      g->c + (i0 + ir) * g->ldc + j0 + jr, g->ldc, mr, nr, &t);
        }
    }
}

/* Packs A rows [ic, ic+mb) of slice p0, then runs every task of that block.
 * Called by all threads of the team (or by one when not parallel). */
static void run_row_block(const Gemm *g, int64_t ic, int64_t mb, int64_t jc, int64_t nc,
                          int64_t p0, int64_t kc, float *ap, const float *bp)
{
    int64_t npa = (mb + MR - 1) / MR;
#pragma omp for schedule(static)
    for (int64_t q = 0; q < npa; q++)
        pack_a_panel(g, ic + q * MR, (int)min64(MR, mb - q * MR), p0, kc, ap + q * kc * MR);
    int64_t nrow = (mb + MC - 1) / MC, ncol = (nc + NT - 1) / NT;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < nrow * ncol; task++) {
        int64_t r = task / ncol, s = task % ncol;
        run_task(g, ic + r * MC, min64(MC, mb - r * MC), jc + s * NT, min64(NT, nc - s * NT),
                 p0, kc, ap + r * MC * kc, bp + s * NT * kc);
    }
}

static void gemm_blocked(const Gemm *g, float *bp, float *ap, bool parallel)
{
#pragma omp parallel if (parallel)
    for (int64_t jc = 0; jc < g->n; jc += NC) {
        int64_t nc = min64(NC, g->n - jc);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(KC, g->k - p0);
            int64_t npb = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
            for (int64_t q = 0; q < npb; q++)
                if (!g->direct_b || min64(NR, nc - q * NR) < NR)
                    pack_b_panel(g, jc + q * NR, (int)min64(NR, nc - q * NR), p0, kc, bp + q * kc * NR);
            for (int64_t ic = 0; ic < g->m; ic += MB)
                run_row_block(g, ic, min64(MB, g->m - ic), jc, nc, p0, kc, ap, bp);
        }
    }
}

/* ---- the column-split driver (M <= SPLIT_MAX_M) ----------------------------
 * One parallel region without a barrier inside: thread t of T takes the
 * NR-panels [npb*t/T, npb*(t+1)/T) of C's columns and, for each K slice,
 * packs its own copy of A and its own B panels, then runs its tiles. The
 * blocked driver shares the packed panels, which takes three barriers per K
 * slice (13 for mlp fc1 forward); on the 2-vCPU host a barrier cost more
 * than the slice of work it guarded (mlp training was slower on 2 threads
 * than on 1). The private copies of A cost M*K copies per thread, against
 * M*K*N/T multiply-adds. Every tile sees the same packed values and the
 * same kernel calls in the same K order as in gemm_blocked, so the bits do
 * not depend on the driver nor on T. Per thread, the workspace holds an A
 * slice (ma x KC) and the thread's B panels (nbt x KC). */
static int64_t split_panels(int64_t n, int t, int nt)
{
    int64_t npb = (n + NR - 1) / NR;
    return npb * t / nt;
}

static int64_t split_width(int64_t n, int nt)   /* the widest share, at most NC */
{
    int64_t npb = (n + NR - 1) / NR;
    return min64((npb + nt - 1) / nt * NR, NC);
}

static size_t split_floats(int64_t m, int64_t n, int64_t k, int nt)
{
    int64_t kc = min64(k, KC);
    return (size_t)(nt * (round_up(m, MR) + split_width(n, nt)) * kc + nt * ALIGN);
}

/* Columns [j0, j1) of C, all rows, in blocks of NC columns. */
static void run_cols(const Gemm *g, int64_t j0, int64_t j1, float *ap, float *bp)
{
    int64_t npa = (g->m + MR - 1) / MR;
    for (int64_t jb = j0; jb < j1; jb += NC) {
        int64_t je = min64(j1, jb + NC);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(KC, g->k - p0);
            for (int64_t q = 0; q < npa; q++)
                pack_a_panel(g, q * MR, (int)min64(MR, g->m - q * MR), p0, kc, ap + q * kc * MR);
            for (int64_t j = jb; j < je; j += NR) {
                int nr = (int)min64(NR, je - j);
                if (!g->direct_b || nr < NR)
                    pack_b_panel(g, j, nr, p0, kc, bp + (j - jb) * kc);
            }
            for (int64_t ic = 0; ic < g->m; ic += MC)
                for (int64_t jc = jb; jc < je; jc += NT)
                    run_task(g, ic, min64(MC, g->m - ic), jc, min64(NT, je - jc), p0, kc,
                             ap + ic * kc, bp + (jc - jb) * kc);
        }
    }
}

/* Thread t's columns of gemm_split, in its private slice of buf. */
static void split_part(const Gemm *g, float *buf, int t, int nt)
{
    size_t per = split_floats(g->m, g->n, g->k, nt) / (size_t)nt;
    int64_t ma = round_up(g->m, MR);
    float *bp = align_floats(buf + (size_t)t * per);   /* B first: aligned panels */
    float *ap = bp + (int64_t)(per - ALIGN) - ma * min64(g->k, KC);
    int64_t j0 = split_panels(g->n, t, nt) * NR;
    int64_t j1 = min64(g->n, split_panels(g->n, t + 1, nt) * NR);
    if (j0 < j1)
        run_cols(g, j0, j1, ap, bp);
}

/* One thread calls split_part itself: no region at all, not even an
 * inactive one (a libgomp entry per call: the per-sample GEMMs of the
 * convolutions' weight gradients made 128 of lenet_bn's ~157 region calls
 * per step at batch 64). */
static void gemm_split(const Gemm *g, float *buf, int nt)
{
    if (nt <= 1) {
        split_part(g, buf, 0, 1);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    split_part(g, buf, omp_get_thread_num(), nt);
#else
    for (int t = 0; t < nt; t++)
        split_part(g, buf, t, nt);
#endif
}

/* The threads gemm_split may use: T when the product is large enough to
 * split and the workspace holds T private slices, else fewer, else 1. */
static int split_threads(int64_t m, int64_t n, int64_t k, size_t have, bool parallel)
{
    int nt = 1;
#ifdef _OPENMP
    if (parallel)
        nt = omp_get_max_threads();
#endif
    int64_t npb = (n + NR - 1) / NR;
    if (nt > npb)
        nt = (int)npb;
    while (nt > 1 && split_floats(m, n, k, nt) > have)
        nt--;
    return nt;
}

size_t nrt_sgemm_workspace_floats_threads(int64_t M, int64_t N, int64_t K, int threads)
{
    size_t f = nrt_sgemm_workspace_floats(M, N, K);
    if (M <= 0 || N <= 0 || K <= 0 || M > SPLIT_MAX_M || threads <= 1)
        return f;
    size_t s = split_floats(M, N, K, threads);
    return s > f ? s : f;
}

/* K == 0: C = beta*C (+ epilogue), the product is empty. */
static void gemm_scale_only(const Gemm *g)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            NrtGemmTile t = tile_for(g, i, j, true, true);
            float *c = g->c + i * g->ldc + j;
            *c = nrt_gemm_finish(0.0f, *c, 0, 0, &t);
        }
}

size_t nrt_sgemm_workspace_floats(int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0 || K <= 0)
        return 0;
    int64_t kc = min64(K, KC);
    int64_t nb = round_up(min64(N, NC), NR), ma = round_up(min64(M, MB), MR);
    size_t f = (size_t)(kc * nb + kc * ma + ALIGN);
    if (M <= SPLIT_MAX_M) {   /* gemm_split on one thread */
        size_t s = split_floats(M, N, K, 1);
        f = s > f ? s : f;
    }
    return f;
}

/* Runs a product with its packing buffer: the column-split driver up to
 * SPLIT_MAX_M rows, the blocked one above. */
static void gemm_drive(const Gemm *g, float *buf, size_t have, bool parallel)
{
    if (g->m <= SPLIT_MAX_M) {
        gemm_split(g, buf, split_threads(g->m, g->n, g->k, have, parallel));
    } else {
        float *bp = align_floats(buf);
        float *ap = bp + min64(g->k, KC) * round_up(min64(g->n, NC), NR);
        gemm_blocked(g, bp, ap, parallel);
    }
}

#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
/* Small M, A not transposed: no packing (packing B cost 60% of an mlp
 * batch-1 inference). The columns are cut into fixed blocks of GEMV_COLS,
 * and thread t of T takes the contiguous blocks [nblk*t/T, nblk*(t+1)/T):
 * every column is computed alone, the same way in any block, so the bits
 * do not depend on T. T is nrt_par_threads' answer for the product's
 * estimated one-thread time (GEMV_NS_PER_WEIGHT per float of B, per row of
 * A): 2 threads when OpenMP threads spin between regions (a region ~2 us),
 * 1 with passive waiting on an idle machine (~70 us: mlp batch-1 latency
 * was 80 us on 1 thread, 169 us on 2 under a fixed 64K-float threshold).
 * The partition is static, so each thread reads the same columns of B on
 * every call: on 2 cores each L2 keeps its half of the mlp's 2.1 MB of
 * weights, which one core reads from L3. */
enum { GEMV_COLS = 64 };
#define GEMV_NS_PER_WEIGHT 0.1   /* the mlp's three layers: 58 us for 535,818 weights (1 thread, L3) */

static void gemv(const NrtGemv *g)
{
    int64_t nblk = (g->n + GEMV_COLS - 1) / GEMV_COLS;
    double work = GEMV_NS_PER_WEIGHT * (double)g->n * (double)g->k * (double)g->m;
    int nt = nrt_par_threads(work, nblk < 64 ? (int)nblk : 64);
    (void)nt;   /* only the omp clauses read it */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        NrtTeam tm = nrt_team();
        int64_t b0 = nrt_team_lo(tm, nblk), b1 = nrt_team_hi(tm, nblk);
        if (b0 < b1)
            nrt_gemv_avx512(g, b0 * GEMV_COLS, min64(g->n, b1 * GEMV_COLS));
    }
}
#endif

void nrt_sgemm_ex(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, const NrtEpilogue *ep, NrtWorkspace *ws)
{
    if (M <= 0 || N <= 0)
        return;
#if defined(__x86_64__) && defined(NRT_HAVE_AVX512_KERNEL)
    if (M <= NRT_GEMV_MAX_M && !transA && K > 0 && nrt_sgemm_isa() == NRT_ISA_AVX512) {
        NrtGemv v = { .tb = transB, .m = M, .n = N, .k = K, .alpha = alpha, .beta = beta,
                      .a = A, .b = B, .lda = lda, .ldb = ldb, .ldc = ldc, .c = C, .ep = ep };
        gemv(&v);
        return;
    }
#endif
    Gemm g = {
        .ta = transA, .tb = transB, .m = M, .n = N, .k = K, .alpha = alpha, .beta = beta,
        .a = A, .b = B, .lda = lda, .ldb = ldb, .ldc = ldc, .c = C, .ep = ep,
        .kernel = kernel_for(nrt_sgemm_isa()),
        .fast_pack = nrt_sgemm_isa() == NRT_ISA_AVX512,
        .direct_b = !transB && M <= DIRECT_B_MAX_M,
        .packer = NULL,
    };
    if (K <= 0) {
        gemm_scale_only(&g);
        return;
    }
    size_t need = nrt_sgemm_workspace_floats(M, N, K), have = need;
    bool parallel = M * N * K >= NRT_GEMM_PAR_MIN && (M > MC || N > NT);
#ifdef _OPENMP
    parallel = parallel && !omp_in_parallel();   /* callers may split work themselves */
#endif
    float *owned = NULL, *buf;
    if (ws && ws->buf && ws->floats >= need) {
        buf = ws->buf;
        have = ws->floats;
    } else {
#ifdef _OPENMP
        if (parallel)
            have = nrt_sgemm_workspace_floats_threads(M, N, K, omp_get_max_threads());
#endif
        owned = malloc(have * sizeof(float));
        if (!owned) {   /* no memory for packing: the slow path needs none */
            nrt_sgemm_ref_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
            return;
        }
        buf = owned;
    }
    gemm_drive(&g, buf, have, parallel);
    free(owned);
}

/* Implicit GEMM (gemm_kernel.h): B comes from the packer, the caller's
 * workspace holds the packing (no allocation, no GEMV shortcut, one
 * thread: callers split the work themselves). */
bool nrt_sgemm_packer(bool transA, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const NrtBPacker *b, float beta, float *C,
                      int64_t ldc, NrtWorkspace *ws)
{
    if (M <= 0 || N <= 0)
        return true;
    if (K <= 0 || !ws || !ws->buf || ws->floats < nrt_sgemm_workspace_floats(M, N, K))
        return false;
    Gemm g = {
        .ta = transA, .tb = true, .m = M, .n = N, .k = K, .alpha = alpha, .beta = beta,
        .a = A, .b = NULL, .lda = lda, .ldb = 0, .ldc = ldc, .c = C, .ep = NULL,
        .kernel = kernel_for(nrt_sgemm_isa()),
        .fast_pack = nrt_sgemm_isa() == NRT_ISA_AVX512,
        .direct_b = false, .packer = b,
    };
    gemm_drive(&g, ws->buf, ws->floats, false);
    return true;
}

void nrt_sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
               float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc, NrtWorkspace *ws)
{
    nrt_sgemm_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, ws);
}

/* ---- reference: the definition, one dot product per element --------------- */

void nrt_sgemm_ref_ex(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, const NrtEpilogue *ep)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < K; p++) {
                float a = transA ? A[p * lda + i] : A[i * lda + p];
                float b = transB ? B[j * ldb + p] : B[p * ldb + j];
                acc += (double)a * b;
            }
            double v = alpha * acc;
            if (beta != 0.0f)
                v += (double)beta * C[i * ldc + j];
            if (ep && ep->bias && ep->bias_kind == NRT_BIAS_ROW)
                v += ep->bias[i];
            if (ep && ep->bias && ep->bias_kind == NRT_BIAS_COL)
                v += ep->bias[j];
            if (ep && ep->act == NRT_ACT_RELU && v < 0.0)
                v = 0.0;
            C[i * ldc + j] = (float)v;
        }
}

void nrt_sgemm_ref(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc)
{
    nrt_sgemm_ref_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}
