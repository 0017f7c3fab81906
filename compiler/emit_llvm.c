/* emit_llvm.c - prints the kernel program as LLVM IR (emit_llvm.h).
 *
 * Input: a JitModel (its KProgram lowered without errors). Output: a module
 * with one internal function `void STEP(i8 *m, i32 n)` per KStep and the two
 * exported step lists. Each step body mirrors the same-named body_* of
 * emit_c.c: the same runtime function, the same constant arguments (ints
 * as i64, doubles bit-exact, float constants rounded to float first), the
 * same RNG purposes and streams; the steps the C does inline are IR loops
 * in the same element order with the same float operations (no fast-math
 * flags), so the two backends compute the same bits. Runtime functions are
 * declared on first use from a signature string and recorded with their
 * addresses for the JIT's symbol table.
 * Pointers are i8* throughout (LLVM 14 still has typed pointers): buffers
 * are byte offsets from the model's block or arena, fields of struct
 * NrtModel byte offsets from m.
 */
#include "emit_llvm.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct LE {
    const JitModel *jm;
    const KProgram *kp;
    const IrGraph *g;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef v, i1, i8, i32, i64, f32, f64, p8, pf, step_ty;
    LLVMAttributeRef zext;
    /* the step being built */
    LLVMValueRef fn, m, n, n64, block, arena;
    LLVMBasicBlockRef entry;
    ElSymbol *syms;
    size_t nsyms, cap;
    bool nomem;
} LE;

/* ---- values -------------------------------------------------------------------- */

static LLVMValueRef ci64(LE *E, int64_t v)
{
    return LLVMConstInt(E->i64, (unsigned long long)v, 1);
}

static LLVMValueRef ci32(LE *E, int64_t v)
{
    return LLVMConstInt(E->i32, (unsigned long long)v, 1);
}

static LLVMValueRef cbool(LE *E, bool v)
{
    return LLVMConstInt(E->i1, v ? 1 : 0, 0);
}

/* A float constant: the value rounded to float, as the C's "%.9gf". */
static LLVMValueRef cf32(LE *E, double v)
{
    return LLVMConstReal(E->f32, (double)(float)v);
}

static LLVMValueRef cf64(LE *E, double v)
{
    return LLVMConstReal(E->f64, v);
}

static LLVMValueRef null8(LE *E)
{
    return LLVMConstPointerNull(E->p8);
}

/* i8* p + bytes */
static LLVMValueRef byte_gep(LE *E, LLVMValueRef p, LLVMValueRef bytes)
{
    return LLVMBuildInBoundsGEP2(E->b, E->i8, p, &bytes, 1, "");
}

/* The address of a field of the model: (ty *)((i8 *)m + off). */
static LLVMValueRef field(LE *E, size_t off, LLVMTypeRef ty)
{
    LLVMValueRef p = byte_gep(E, E->m, ci64(E, (int64_t)off));
    return LLVMBuildBitCast(E->b, p, LLVMPointerType(ty, 0), "");
}

static LLVMValueRef load_field(LE *E, size_t off, LLVMTypeRef ty)
{
    return LLVMBuildLoad2(E->b, ty, field(E, off, ty), "");
}

/* Buffer id as i8* (NULL for -1): block or arena + 4 * off. */
static LLVMValueRef buf(LE *E, int id)
{
    if (id < 0)
        return null8(E);
    const KBuf *k = &E->kp->bufs.items[id];
    return byte_gep(E, k->space == KS_PARAMS ? E->block : E->arena, ci64(E, 4 * k->off));
}

/* float element i of an i8* buffer: address */
static LLVMValueRef elem(LE *E, LLVMValueRef p, LLVMValueRef i)
{
    LLVMValueRef fp = LLVMBuildBitCast(E->b, p, E->pf, "");
    return LLVMBuildInBoundsGEP2(E->b, E->f32, fp, &i, 1, "");
}

/* the same address as i8*, for runtime calls */
static LLVMValueRef elem8(LE *E, LLVMValueRef p, LLVMValueRef i)
{
    return LLVMBuildBitCast(E->b, elem(E, p, i), E->p8, "");
}

static LLVMValueRef load_elem(LE *E, LLVMValueRef p, LLVMValueRef i)
{
    return LLVMBuildLoad2(E->b, E->f32, elem(E, p, i), "");
}

/* n * k as i64 */
static LLVMValueRef n_times(LE *E, int64_t k)
{
    return LLVMBuildNSWMul(E->b, E->n64, ci64(E, k), "");
}

static LLVMValueRef model_seed(LE *E)
{
    return load_field(E, offsetof(NrtModel, seed), E->i64);
}

static LLVMValueRef model_step(LE *E)
{
    return load_field(E, offsetof(NrtModel, step), E->i64);
}

static LLVMValueRef model_ws(LE *E)
{
    return byte_gep(E, E->m, ci64(E, (int64_t)offsetof(NrtModel, ws)));
}

/* An absolute address in this process as i8*: the JIT runs here. */
static LLVMValueRef caddr(LE *E, const void *p)
{
    return LLVMConstIntToPtr(LLVMConstInt(E->i64, (unsigned long long)(uintptr_t)p, 0), E->p8);
}

/* ---- runtime calls ---------------------------------------------------------------- */

/* Signature letters: v void, b bool, i int32, l int64, f float, d double,
 * p any pointer. The first letter is the result. */
static LLVMTypeRef sig_type(LE *E, char c)
{
    switch (c) {
    case 'v': return E->v;
    case 'b': return E->i1;
    case 'i': return E->i32;
    case 'l': return E->i64;
    case 'f': return E->f32;
    case 'd': return E->f64;
    default: return E->p8;
    }
}

static void add_symbol(LE *E, const char *name, ElFn addr)
{
    if (E->nsyms == E->cap) {
        size_t cap = E->cap ? 2 * E->cap : 32;
        ElSymbol *s = realloc(E->syms, cap * sizeof *s);
        if (!s) {
            E->nomem = true;
            return;
        }
        E->syms = s, E->cap = cap;
    }
    E->syms[E->nsyms++] = (ElSymbol){name, addr};
}

/* Calls runtime function `name` (at addr) with args; declares it once. */
static LLVMValueRef call_rt(LE *E, const char *name, ElFn addr, const char *sig, LLVMValueRef *args)
{
    unsigned nargs = (unsigned)strlen(sig) - 1;
    LLVMTypeRef params[24];
    for (unsigned k = 0; k < nargs && k < 24; k++)
        params[k] = sig_type(E, sig[k + 1]);
    LLVMTypeRef ty = LLVMFunctionType(sig_type(E, sig[0]), params, nargs, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(E->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(E->mod, name, ty);
        LLVMSetFunctionCallConv(fn, LLVMCCallConv);
        for (unsigned k = 0; k < nargs; k++)
            if (sig[k + 1] == 'b')
                LLVMAddAttributeAtIndex(fn, k + 1, E->zext);
        add_symbol(E, name, addr);
    }
    LLVMValueRef c = LLVMBuildCall2(E->b, ty, fn, args, nargs, "");
    for (unsigned k = 0; k < nargs; k++)
        if (sig[k + 1] == 'b')
            LLVMAddCallSiteAttribute(c, k + 1, E->zext);
    return c;
}

#define RT(E, fn, sig, ...) call_rt(E, #fn, (ElFn)fn, sig, (LLVMValueRef[]){__VA_ARGS__})

static void memcpy_bytes(LE *E, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes)
{
    LLVMBuildMemCpy(E->b, dst, 4, src, 4, bytes);
}

/* ---- loops ------------------------------------------------------------------------- */

typedef struct Loop {
    LLVMBasicBlockRef pre, head, body, exit;
    LLVMValueRef i;
} Loop;

/* for (i = 0; i < count; i++) { ... }: returns i; close with loop_close. */
static LLVMValueRef loop_open(LE *E, Loop *L, LLVMValueRef count)
{
    L->pre = LLVMGetInsertBlock(E->b);
    L->head = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "loop");
    L->body = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "body");
    L->exit = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "done");
    LLVMBuildBr(E->b, L->head);
    LLVMPositionBuilderAtEnd(E->b, L->head);
    L->i = LLVMBuildPhi(E->b, E->i64, "i");
    LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, L->i, count, ""), L->body, L->exit);
    LLVMPositionBuilderAtEnd(E->b, L->body);
    return L->i;
}

static void loop_close(LE *E, Loop *L)
{
    LLVMValueRef next = LLVMBuildNSWAdd(E->b, L->i, ci64(E, 1), "");
    LLVMBasicBlockRef last = LLVMGetInsertBlock(E->b);
    LLVMBuildBr(E->b, L->head);
    LLVMValueRef vals[2] = {ci64(E, 0), next};
    LLVMBasicBlockRef from[2] = {L->pre, last};
    LLVMAddIncoming(L->i, vals, from, 2);
    LLVMPositionBuilderAtEnd(E->b, L->exit);
}

/* An array of count i64 values on the stack (its alloca in the entry
 * block), as i8*: NrtConvShape and NrtPoolShape (all int64 fields),
 * NrtFracPool, NrtMixInfo (static asserts below pin their layouts). */
static LLVMValueRef stack_slots(LE *E, const LLVMValueRef *vals, int count)
{
    LLVMBuilderRef b = E->b;
    LLVMTypeRef ty = LLVMArrayType(E->i64, (unsigned)count);
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(b);
    LLVMValueRef first = LLVMGetFirstInstruction(E->entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, E->entry);
    LLVMValueRef a = LLVMBuildAlloca(b, ty, "slots");
    LLVMPositionBuilderAtEnd(b, cur);
    for (int k = 0; k < count; k++) {
        LLVMValueRef idx[2] = {ci64(E, 0), ci64(E, k)};
        LLVMBuildStore(b, vals[k], LLVMBuildInBoundsGEP2(b, ty, a, idx, 2, ""));
    }
    return LLVMBuildBitCast(b, a, E->p8, "");
}

_Static_assert(sizeof(NrtConvShape) == 8 * 8 && sizeof(NrtPoolShape) == 7 * 8,
               "NrtConvShape and NrtPoolShape are int64 fields only");

/* {n, vals[0..count)}: a conv or pool shape. */
static LLVMValueRef shape_struct(LE *E, const int64_t *vals, int count)
{
    LLVMValueRef v[K_MAX_INTS + 1] = {E->n64};
    for (int k = 0; k < count && k < K_MAX_INTS; k++)
        v[k + 1] = ci64(E, vals[k]);
    return stack_slots(E, v, count + 1);
}

/* ---- step bodies (emit_c.c's body_* in the same order) ------------------------------ */

static LLVMValueRef pre_value(LE *E, const KStep *s, LLVMValueRef v, LLVMValueRef c)
{
    switch (E->g->pre.kind) {
    case IR_PRE_SCALE: return LLVMBuildFMul(E->b, v, cf32(E, E->g->pre.scale), "");
    case IR_PRE_MEAN_IMAGE:
    case IR_PRE_MEAN_CHANNEL: return LLVMBuildFSub(E->b, v, load_elem(E, buf(E, s->buf[1]), c), "");
    case IR_PRE_STANDARDIZE:
        return LLVMBuildFDiv(E->b, LLVMBuildFSub(E->b, v, load_elem(E, buf(E, s->buf[1]), c), ""),
                             load_elem(E, buf(E, s->buf[2]), c), "");
    default: return v;
    }
}

/* zca: xc[k] = x[k] - mean[k % D], then y = xc W^T as a dense layer without bias. */
static void body_zca(LE *E, const KStep *s)
{
    int64_t D = ir_shape_numel(E->g->input.shape);
    LLVMValueRef x = s->i[0] ? load_field(E, offsetof(NrtModel, x), E->p8) : buf(E, s->buf[0]);
    LLVMValueRef mean = buf(E, s->buf[1]), xc = buf(E, s->buf[3]);
    Loop L;
    LLVMValueRef k = loop_open(E, &L, n_times(E, D));
    LLVMValueRef v = LLVMBuildFSub(E->b, load_elem(E, x, k),
                                   load_elem(E, mean, LLVMBuildSRem(E->b, k, ci64(E, D), "")), "");
    LLVMBuildStore(E->b, v, elem(E, xc, k));
    loop_close(E, &L);
    RT(E, nrt_dense_forward, "vlllpppipp", E->n64, ci64(E, D), ci64(E, D), xc, buf(E, s->buf[2]), null8(E),
       ci32(E, NRT_ACT_NONE), buf(E, s->buf[0]), model_ws(E));
}

/* y[(i C + c) S + j] = pre(x[...]) over samples, statistics channels, values. */
static void body_preprocess(LE *E, const KStep *s)
{
    if (E->g->pre.kind == IR_PRE_ZCA) {
        body_zca(E, s);
        return;
    }
    int64_t d = ir_shape_numel(E->g->input.shape), C = E->kp->pre_channels, S = d / C;
    LLVMValueRef x = s->i[0] ? load_field(E, offsetof(NrtModel, x), E->p8) : buf(E, s->buf[0]);
    LLVMValueRef y = buf(E, s->buf[0]);
    Loop outer, inner;
    LLVMValueRef r = loop_open(E, &outer, n_times(E, C));
    LLVMValueRef c = LLVMBuildSRem(E->b, r, ci64(E, C), "c");
    LLVMValueRef base = LLVMBuildNSWMul(E->b, r, ci64(E, S), "");
    LLVMValueRef j = loop_open(E, &inner, ci64(E, S));
    LLVMValueRef k = LLVMBuildNSWAdd(E->b, base, j, "k");
    LLVMValueRef v = pre_value(E, s, load_elem(E, x, k), c);
    LLVMBuildStore(E->b, v, elem(E, y, k));
    loop_close(E, &inner);
    loop_close(E, &outer);
}

static void image_dims(LE *E, int64_t dims[3])
{
    const IrShape *sh = &E->g->input.shape;
    bool image = sh->rank == 3;
    dims[0] = image ? sh->d[0] : 1;
    dims[1] = image ? sh->d[1] : 1;
    dims[2] = image ? sh->d[2] : sh->d[0];
}

static void body_augment(LE *E, const KStep *s)
{
    int64_t d[3];
    image_dims(E, d);
    LLVMValueRef x = buf(E, s->buf[0]), spec = caddr(E, &E->jm->aug);
    LLVMValueRef C = ci64(E, d[0]), H = ci64(E, d[1]), W = ci64(E, d[2]);
    if (s->op == K_AUGMENT_GEO) {
        memcpy_bytes(E, x, load_field(E, offsetof(NrtModel, x), E->p8), n_times(E, 4 * d[0] * d[1] * d[2]));
        RT(E, nrt_augment_geometric, "vpllllplllp", x, E->n64, C, H, W, spec, model_seed(E), model_step(E),
           ci64(E, 0), buf(E, s->buf[1]));
    } else {
        RT(E, nrt_augment_post, "vpllllplll", x, E->n64, C, H, W, spec, model_seed(E), model_step(E),
           ci64(E, 0));
    }
}

static void body_dense(LE *E, const KStep *s)
{
    LLVMValueRef IN = ci64(E, s->i[0]), OUT = ci64(E, s->i[1]);
    if (s->op == K_DENSE_FWD) {
        RT(E, nrt_dense_forward, "vlllpppipp", E->n64, IN, OUT, buf(E, s->buf[0]), buf(E, s->buf[1]),
           buf(E, s->buf[2]), ci32(E, s->i[2] ? NRT_ACT_RELU : NRT_ACT_NONE), buf(E, s->buf[3]), model_ws(E));
        return;
    }
    LLVMValueRef dy = buf(E, s->buf[0]), x = buf(E, s->buf[1]);
    RT(E, nrt_dense_backward_weights, "vlllpppbp", E->n64, IN, OUT, x, dy, buf(E, s->buf[4]),
       cbool(E, false), model_ws(E));
    if (s->buf[5] >= 0)
        RT(E, nrt_dense_backward_bias, "vllppb", E->n64, OUT, dy, buf(E, s->buf[5]), cbool(E, false));
    if (s->buf[3] >= 0)
        RT(E, nrt_dense_backward_data, "vlllpppbp", E->n64, IN, OUT, dy, buf(E, s->buf[2]), buf(E, s->buf[3]),
           cbool(E, s->acc), model_ws(E));
}

static void body_conv(LE *E, const KStep *s)
{
    LLVMValueRef sh = shape_struct(E, s->i, 7);
    if (s->op == K_CONV_FWD && s->nbuf >= 8) {   /* predict, a batchnorm folded in */
        const int *b = s->buf;
        RT(E, nrt_conv_forward_bn, "vppppppppdipp", sh, buf(E, b[0]), buf(E, b[1]), buf(E, b[2]),
           buf(E, b[4]), buf(E, b[5]), buf(E, b[6]), buf(E, b[7]), cf64(E, s->f[0]),
           ci32(E, s->i[7] ? NRT_ACT_RELU : NRT_ACT_NONE), buf(E, b[3]), model_ws(E));
        return;
    }
    if (s->op == K_CONV_FWD) {
        RT(E, nrt_conv_forward, "vppppipp", sh, buf(E, s->buf[0]), buf(E, s->buf[1]), buf(E, s->buf[2]),
           ci32(E, s->i[7] ? NRT_ACT_RELU : NRT_ACT_NONE), buf(E, s->buf[3]), model_ws(E));
        return;
    }
    LLVMValueRef dy = buf(E, s->buf[0]);
    RT(E, nrt_conv_backward_weights_bias, "vpppppbp", sh, buf(E, s->buf[1]), dy, buf(E, s->buf[4]),
       buf(E, s->buf[5]), cbool(E, false), model_ws(E));     /* buf(-1): NULL, no bias */
    if (s->buf[3] >= 0)
        RT(E, nrt_conv_backward_data, "vppppbp", sh, dy, buf(E, s->buf[2]), buf(E, s->buf[3]),
           cbool(E, s->acc), model_ws(E));
}

static void body_pool(LE *E, const KStep *s)
{
    LLVMValueRef sh = shape_struct(E, s->i, 6);
    switch (s->op) {
    case K_MAXPOOL_FWD:
        RT(E, nrt_maxpool_forward, "vpppp", sh, buf(E, s->buf[0]), buf(E, s->buf[1]), buf(E, s->buf[2]));
        break;
    case K_MAXPOOL_BWD:
        RT(E, nrt_maxpool_backward, "vppppb", sh, buf(E, s->buf[0]), buf(E, s->buf[1]), buf(E, s->buf[2]),
           cbool(E, s->acc));
        break;
    case K_AVGPOOL_FWD:
        RT(E, nrt_avgpool_forward, "vppp", sh, buf(E, s->buf[0]), buf(E, s->buf[1]));
        break;
    default:
        RT(E, nrt_avgpool_backward, "vpppb", sh, buf(E, s->buf[0]), buf(E, s->buf[1]), cbool(E, s->acc));
        break;
    }
}

static void body_gap(LE *E, const KStep *s)
{
    LLVMValueRef C = ci64(E, s->i[0]), S = ci64(E, s->i[1]);
    if (s->op == K_GAP_FWD)
        RT(E, nrt_global_avgpool_forward, "vlllpp", E->n64, C, S, buf(E, s->buf[0]), buf(E, s->buf[1]));
    else
        RT(E, nrt_global_avgpool_backward, "vlllppb", E->n64, C, S, buf(E, s->buf[0]), buf(E, s->buf[1]),
           cbool(E, s->acc));
}

static void body_act(LE *E, const KStep *s)
{
    KAct a = (KAct)s->i[0];
    LLVMValueRef nd = n_times(E, s->i[1]), slope = cf32(E, s->f[0]);
    if (s->op == K_ACT_FWD) {
        LLVMValueRef x = buf(E, s->buf[0]), y = buf(E, s->buf[1]);
        switch (a) {
        case KACT_RELU: RT(E, nrt_relu_forward, "vlpp", nd, x, y); break;
        case KACT_LEAKY_RELU: RT(E, nrt_leaky_relu_forward, "vlfpp", nd, slope, x, y); break;
        case KACT_TANH: RT(E, nrt_tanh_forward, "vlpp", nd, x, y); break;
        case KACT_SIGMOID: RT(E, nrt_sigmoid_forward, "vlpp", nd, x, y); break;
        }
        return;
    }
    /* leaky_relu's rule reads x, the others read y */
    LLVMValueRef dy = buf(E, s->buf[0]), x = buf(E, s->buf[1]), y = buf(E, s->buf[2]);
    LLVMValueRef dx = buf(E, s->buf[3]), acc = cbool(E, s->acc);
    switch (a) {
    case KACT_RELU: RT(E, nrt_relu_backward, "vlpppb", nd, dy, y, dx, acc); break;
    case KACT_LEAKY_RELU: RT(E, nrt_leaky_relu_backward, "vlfpppb", nd, slope, dy, x, dx, acc); break;
    case KACT_TANH: RT(E, nrt_tanh_backward, "vlpppb", nd, dy, y, dx, acc); break;
    case KACT_SIGMOID: RT(E, nrt_sigmoid_backward, "vlpppb", nd, dy, y, dx, acc); break;
    }
}

static void body_bn(LE *E, const KStep *s)
{
    LLVMValueRef C = ci64(E, s->i[0]), S = ci64(E, s->i[1]);
    const int *b = s->buf;
    /* i2 > 1: leaky_relu, the _act kernels; in training any fused
     * activation takes the _affine pair (as emit_c.c) */
    LLVMValueRef leaky = ci32(E, NRT_FUSED_LEAKY_RELU), slope = cf32(E, s->f[2]);
    LLVMValueRef fused = ci32(E, s->i[2] > 1 ? NRT_FUSED_LEAKY_RELU
                                 : s->i[2] ? NRT_FUSED_RELU : NRT_FUSED_NONE);
    if (s->op == K_BN_FWD_TRAIN && s->i[2]) {
        RT(E, nrt_batchnorm_forward_train_affine, "vlllpppddppifpppp", E->n64, C, S, buf(E, b[0]),
           buf(E, b[1]), buf(E, b[2]), cf64(E, s->f[1]), cf64(E, s->f[0]), buf(E, b[3]), buf(E, b[4]), fused,
           slope, buf(E, b[5]), buf(E, b[6]), buf(E, b[7]), buf(E, b[8]));
    } else if (s->op == K_BN_FWD_TRAIN) {
        RT(E, nrt_batchnorm_forward_train, "vlllpppddppbppp", E->n64, C, S, buf(E, b[0]), buf(E, b[1]),
           buf(E, b[2]), cf64(E, s->f[1]), cf64(E, s->f[0]), buf(E, b[3]), buf(E, b[4]), cbool(E, s->i[2]),
           buf(E, b[5]), buf(E, b[6]), buf(E, b[7]));
    } else if (s->op == K_BN_FWD_INFER && s->i[2] > 1) {
        RT(E, nrt_batchnorm_forward_infer_act, "vlllpppppdifp", E->n64, C, S, buf(E, b[0]), buf(E, b[1]),
           buf(E, b[2]), buf(E, b[3]), buf(E, b[4]), cf64(E, s->f[1]), leaky, slope, buf(E, b[5]));
    } else if (s->op == K_BN_FWD_INFER) {
        RT(E, nrt_batchnorm_forward_infer, "vlllpppppdbp", E->n64, C, S, buf(E, b[0]), buf(E, b[1]),
           buf(E, b[2]), buf(E, b[3]), buf(E, b[4]), cf64(E, s->f[1]), cbool(E, s->i[2]), buf(E, b[5]));
    } else if (b[8] >= 0) {
        RT(E, nrt_batchnorm_backward_affine, "vlllpppifppppppbb", E->n64, C, S, buf(E, b[0]), buf(E, b[1]),
           buf(E, b[8]), fused, slope, buf(E, b[2]), buf(E, b[3]), buf(E, b[4]), buf(E, b[5]), buf(E, b[6]),
           buf(E, b[7]), cbool(E, s->acc), cbool(E, false));
    } else {
        RT(E, nrt_batchnorm_backward, "vlllpppppppppbb", E->n64, C, S, buf(E, b[0]), buf(E, b[1]),
           buf(E, b[8]), buf(E, b[2]), buf(E, b[3]), buf(E, b[4]), buf(E, b[5]), buf(E, b[6]), buf(E, b[7]),
           cbool(E, s->acc), cbool(E, false));
    }
}

/* Masks from (seed, NRT_RNG_DROPOUT, step, sample i, element STREAM << 32 | j). */
static void body_dropout(LE *E, const KStep *s)
{
    int64_t D = s->i[0];
    if (s->op == K_DROPOUT_BWD) {
        RT(E, nrt_dropout_backward, "vlpppb", n_times(E, D), buf(E, s->buf[0]), buf(E, s->buf[1]),
           buf(E, s->buf[2]), cbool(E, s->acc));
        return;
    }
    LLVMValueRef mask = buf(E, s->buf[2]), seed = model_seed(E), step = model_step(E);
    Loop L;
    LLVMValueRef i = loop_open(E, &L, E->n64);
    LLVMValueRef mi = byte_gep(E, mask, LLVMBuildNSWMul(E->b, i, ci64(E, 4 * D), ""));
    RT(E, nrt_rng_fill_dropout_mask, "vlilllldp", seed, ci32(E, NRT_RNG_DROPOUT), step, i,
       ci64(E, (int64_t)((uint64_t)s->i[1] << 32)), ci64(E, D), cf64(E, s->f[0]), mi);
    loop_close(E, &L);
    RT(E, nrt_dropout_forward, "vlppp", n_times(E, D), buf(E, s->buf[0]), mask, buf(E, s->buf[1]));
}

/* y[i] = x0[i] + x1[i] + ... (left to right, as the C); with a fused
 * activation the runtime's one-pass kernel, its inputs as an array of
 * pointers on the stack. */
static void body_add(LE *E, const KStep *s)
{
    int nin = s->nbuf - 1;
    LLVMValueRef x[K_MAX_BUFS] = {0}, y = buf(E, s->buf[nin]);
    for (int k = 0; k < nin; k++)
        x[k] = buf(E, s->buf[k]);
    if (s->i[1]) {
        LLVMValueRef ptrs[K_MAX_BUFS];
        for (int k = 0; k < nin; k++)
            ptrs[k] = LLVMBuildPtrToInt(E->b, x[k], E->i64, "");
        RT(E, nrt_add_act_forward, "vlipifp", n_times(E, s->i[0]), ci32(E, nin), stack_slots(E, ptrs, nin),
           ci32(E, s->i[1]), cf32(E, s->f[0]), y);
        return;
    }
    Loop L;
    LLVMValueRef i = loop_open(E, &L, n_times(E, s->i[0]));
    LLVMValueRef sum = load_elem(E, x[0], i);
    for (int k = 1; k < nin; k++)
        sum = LLVMBuildFAdd(E->b, sum, load_elem(E, x[k], i), "");
    LLVMBuildStore(E->b, sum, elem(E, y, i));
    loop_close(E, &L);
}

/* dx[i] += dy[i] for count elements starting at dxo / dyo (element offsets). */
static void acc_loop(LE *E, LLVMValueRef dx, LLVMValueRef dxo, LLVMValueRef dy, LLVMValueRef dyo,
                     LLVMValueRef count)
{
    Loop L;
    LLVMValueRef j = loop_open(E, &L, count);
    LLVMValueRef pd = elem(E, dx, LLVMBuildNSWAdd(E->b, dxo, j, ""));
    LLVMValueRef v = LLVMBuildFAdd(E->b, LLVMBuildLoad2(E->b, E->f32, pd, ""),
                                   load_elem(E, dy, LLVMBuildNSWAdd(E->b, dyo, j, "")), "");
    LLVMBuildStore(E->b, v, pd);
    loop_close(E, &L);
}

static void body_grad_copy(LE *E, const KStep *s)
{
    LLVMValueRef dy = buf(E, s->buf[0]), dx = buf(E, s->buf[1]);
    if (s->acc)
        acc_loop(E, dx, ci64(E, 0), dy, ci64(E, 0), n_times(E, s->i[0]));
    else
        memcpy_bytes(E, dx, dy, n_times(E, 4 * s->i[0]));
}

/* The channel layout of a concat step: values per channel, channels of y,
 * the first input's channel offset in y, channels of input k. */
typedef struct ConcatShape {
    int64_t S, CT, off0, c[K_MAX_BUFS];
} ConcatShape;

static ConcatShape concat_shape(const KStep *s)
{
    ConcatShape cs = {s->i[0], s->i[2], s->i[1], {0}};
    for (int k = 0; k < s->nbuf - 1 && 3 + k < K_MAX_INTS; k++)
        cs.c[k] = s->i[3 + k];
    return cs;
}

/* Per sample i and input k: the ck * S values at channel off of y. */
static void body_concat(LE *E, const KStep *s)
{
    bool fwd = s->op == K_CONCAT_FWD;
    int nin = s->nbuf - 1, first = fwd ? 0 : 1;
    ConcatShape cs = concat_shape(s);
    LLVMValueRef y = buf(E, s->buf[fwd ? nin : 0]);
    Loop L;
    LLVMValueRef i = loop_open(E, &L, E->n64);
    int64_t off = cs.off0;
    for (int k = 0; k < nin; k++) {
        int64_t ck = cs.c[k];
        if (s->buf[first + k] >= 0) {
            LLVMValueRef xk = buf(E, s->buf[first + k]);
            LLVMValueRef yo = LLVMBuildNSWMul(E->b, LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, i,
                                              ci64(E, cs.CT), ""), ci64(E, off), ""), ci64(E, cs.S), "");
            LLVMValueRef xo = LLVMBuildNSWMul(E->b, i, ci64(E, ck * cs.S), "");
            LLVMValueRef bytes = ci64(E, 4 * ck * cs.S);
            if (fwd)
                memcpy_bytes(E, elem(E, y, yo), elem(E, xk, xo), bytes);
            else if (!(s->accmask & (1u << k)))
                memcpy_bytes(E, elem(E, xk, xo), elem(E, y, yo), bytes);
            else
                acc_loop(E, xk, xo, y, yo, ci64(E, ck * cs.S));
        }
        off += ck;
    }
    loop_close(E, &L);
}

static void body_softmax(LE *E, const KStep *s)
{
    RT(E, nrt_softmax_forward, "vllpp", E->n64, ci64(E, s->i[0]), buf(E, s->buf[0]), buf(E, s->buf[1]));
}

/* m->batch->labels[t] or ->values[t] */
static LLVMValueRef batch_target(LE *E, bool labels, int64_t t)
{
    LLVMValueRef b = load_field(E, offsetof(NrtModel, batch), E->p8);
    size_t off = labels ? offsetof(NrtBatch, labels) : offsetof(NrtBatch, values);
    LLVMValueRef p = byte_gep(E, b, ci64(E, (int64_t)off + 8 * t));
    return LLVMBuildLoad2(E->b, E->p8, LLVMBuildBitCast(E->b, p, LLVMPointerType(E->p8, 0), ""), "");
}

/* m->loss += weight * r (contracted, as the C compiled with -ffp-contract=fast) */
static void add_loss(LE *E, double weight, LLVMValueRef r)
{
    LLVMValueRef p = field(E, offsetof(NrtModel, loss), E->f64);
    LLVMTypeRef pt[3] = {E->f64, E->f64, E->f64};
    LLVMTypeRef ty = LLVMFunctionType(E->f64, pt, 3, 0);
    LLVMValueRef fma = LLVMGetNamedFunction(E->mod, "llvm.fmuladd.f64");
    if (!fma)
        fma = LLVMAddFunction(E->mod, "llvm.fmuladd.f64", ty);
    LLVMValueRef args[3] = {cf64(E, weight), r, LLVMBuildLoad2(E->b, E->f64, p, "")};
    LLVMBuildStore(E->b, LLVMBuildCall2(E->b, ty, fma, args, 3, ""), p);
}

/* lambda[0] of K_MIX (a float) */
static LLVMValueRef mix_lambda(LE *E, const KStep *s)
{
    return load_elem(E, buf(E, s->buf[3]), ci64(E, 0));
}

/* With mixing (b2 perm, b3 lambda, b4 partner labels): lambda CE(labels) +
 * (1 - lambda) CE(labels[perm]). */
static void body_cross_entropy(LE *E, const KStep *s)
{
    LLVMValueRef labels = batch_target(E, true, s->i[1]), partner = null8(E), lambda = cf64(E, 1.0);
    if (s->buf[2] >= 0) {
        partner = buf(E, s->buf[4]);
        RT(E, nrt_mix_labels, "vlppp", E->n64, labels, buf(E, s->buf[2]), partner);
        lambda = LLVMBuildFPExt(E->b, mix_lambda(E, s), E->f64, "");
    }
    LLVMValueRef r = RT(E, nrt_cross_entropy, "dllpppdddpb", E->n64, ci64(E, s->i[0]), buf(E, s->buf[0]),
                        labels, partner, lambda, cf64(E, s->f[1]), cf64(E, s->f[0]), buf(E, s->buf[1]),
                        cbool(E, s->acc));
    add_loss(E, s->f[0], r);
}

/* With mixing: mse(pred, lambda v + (1 - lambda) v[perm]) (b4 the mixed targets). */
static void body_mse(LE *E, const KStep *s)
{
    LLVMValueRef target = batch_target(E, false, s->i[1]);
    if (s->buf[2] >= 0) {
        LLVMValueRef mixed = buf(E, s->buf[4]);
        RT(E, nrt_mix_values, "vllppfp", E->n64, ci64(E, s->i[0]), target, buf(E, s->buf[2]), mix_lambda(E, s),
           mixed);
        target = mixed;
    }
    LLVMValueRef r = RT(E, nrt_mse, "dllpppddpb", E->n64, ci64(E, s->i[0]), buf(E, s->buf[0]), target, null8(E),
                        cf64(E, 1.0), cf64(E, s->f[0]), buf(E, s->buf[1]), cbool(E, s->acc));
    add_loss(E, s->f[0], r);
}

static void body_output(LE *E, const KStep *s)
{
    LLVMValueRef outs = load_field(E, offsetof(NrtModel, outs), E->p8);
    LLVMValueRef p = byte_gep(E, outs, ci64(E, 8 * s->i[0]));
    LLVMValueRef dst = LLVMBuildLoad2(E->b, E->p8, LLVMBuildBitCast(E->b, p, LLVMPointerType(E->p8, 0), ""), "");
    memcpy_bytes(E, dst, buf(E, s->buf[0]), n_times(E, 4 * s->i[1]));
}

static void body_penalty(LE *E, const KStep *s)
{
    RT(E, nrt_penalty_grad, "vlpddp", ci64(E, s->i[0]), buf(E, s->buf[0]), cf64(E, s->f[0]), cf64(E, s->f[1]),
       buf(E, s->buf[1]));
}

static LLVMValueRef model_lr(LE *E)
{
    return LLVMBuildFPExt(E->b, load_field(E, offsetof(NrtModel, lr), E->f32), E->f64, "");
}

static void body_sgd(LE *E, const KStep *s)
{
    RT(E, nrt_sgd_step, "vlpppddb", ci64(E, s->i[0]), buf(E, s->buf[0]), buf(E, s->buf[1]), buf(E, s->buf[2]),
       model_lr(E), cf64(E, s->f[0]), cbool(E, s->f[1] != 0));
}

static void body_adam(LE *E, const KStep *s)
{
    LLVMValueRef t = LLVMBuildAdd(E->b, model_step(E), ci64(E, 1), "");
    RT(E, nrt_adam_step, "vlppppdddddbl", ci64(E, s->i[0]), buf(E, s->buf[0]), buf(E, s->buf[1]),
       buf(E, s->buf[2]), buf(E, s->buf[3]), model_lr(E), cf64(E, s->f[0]), cf64(E, s->f[1]), cf64(E, s->f[2]),
       cf64(E, s->f[3]), cbool(E, s->f[3] != 0), t);
}

/* ---- regularizers (emit_c.c: body_dense_dc ... body_mix) ------------------------- */

static LLVMValueRef stream_of(LE *E, int64_t node)
{
    return ci64(E, (int64_t)((uint64_t)node << 32));
}

/* Per-sample dropconnect masks from (seed, NRT_RNG_DROPCONNECT, step, sample
 * i, element STREAM << 32 | j*IN + c): the forward draws them into the mask
 * bits (b4), the backward reads them (b6). */
static void body_dense_dc(LE *E, const KStep *s)
{
    LLVMValueRef IN = ci64(E, s->i[0]), OUT = ci64(E, s->i[1]), p = cf64(E, s->f[0]);
    if (s->op == K_DENSE_DC_FWD) {
        RT(E, nrt_dropconnect_dense_forward, "vlllpppidlllpp", E->n64, IN, OUT, buf(E, s->buf[0]),
           buf(E, s->buf[1]), buf(E, s->buf[2]), ci32(E, s->i[2] ? NRT_ACT_RELU : NRT_ACT_NONE), p,
           model_seed(E), model_step(E), stream_of(E, s->i[3]), buf(E, s->buf[4]), buf(E, s->buf[3]));
        return;
    }
    LLVMValueRef dy = buf(E, s->buf[0]), bits = buf(E, s->buf[6]);
    RT(E, nrt_dropconnect_dense_backward_weights, "vlllppdppb", E->n64, IN, OUT, buf(E, s->buf[1]), dy, p, bits,
       buf(E, s->buf[4]), cbool(E, false));
    if (s->buf[5] >= 0)
        RT(E, nrt_dense_backward_bias, "vllppb", E->n64, OUT, dy, buf(E, s->buf[5]), cbool(E, false));
    if (s->buf[3] >= 0)
        RT(E, nrt_dropconnect_dense_backward_data, "vlllppdppb", E->n64, IN, OUT, dy, buf(E, s->buf[2]), p, bits,
           buf(E, s->buf[3]), cbool(E, s->acc));
}

/* Conv dropconnect: one mask per batch (sample 0), the convolution uses w * mask. */
static void body_dropconnect(LE *E, const KStep *s)
{
    LLVMValueRef D = ci64(E, s->i[0]);
    if (s->op == K_DROPCONNECT_GRAD) {
        LLVMValueRef dw = buf(E, s->buf[1]);
        RT(E, nrt_dropout_backward, "vlpppb", D, dw, buf(E, s->buf[0]), dw, cbool(E, false));
        return;
    }
    LLVMValueRef mask = buf(E, s->buf[1]);
    RT(E, nrt_rng_fill_dropout_mask, "vlilllldp", model_seed(E), ci32(E, NRT_RNG_DROPCONNECT), model_step(E),
       ci64(E, 0), stream_of(E, s->i[1]), D, cf64(E, s->f[0]), mask);
    RT(E, nrt_dropout_forward, "vlppp", D, buf(E, s->buf[0]), mask, buf(E, s->buf[2]));
}

/* drop_path: one draw per sample at (seed, NRT_RNG_DROP_PATH, step, sample i, STREAM << 32). */
static void body_drop_path(LE *E, const KStep *s)
{
    LLVMValueRef D = ci64(E, s->i[0]);
    if (s->op == K_DROP_PATH_BWD) {
        RT(E, nrt_drop_path_backward, "vllpppb", E->n64, D, buf(E, s->buf[0]), buf(E, s->buf[1]),
           buf(E, s->buf[2]), cbool(E, s->acc));
        return;
    }
    LLVMValueRef scale = buf(E, s->buf[2]), seed = model_seed(E), step = model_step(E);
    Loop L;
    LLVMValueRef i = loop_open(E, &L, E->n64);
    RT(E, nrt_rng_fill_dropout_mask, "vlilllldp", seed, ci32(E, NRT_RNG_DROP_PATH), step, i,
       stream_of(E, s->i[1]), ci64(E, 1), cf64(E, s->f[0]), elem8(E, scale, i));
    loop_close(E, &L);
    RT(E, nrt_drop_path_forward, "vllppp", E->n64, D, buf(E, s->buf[0]), scale, buf(E, s->buf[1]));
}

/* gaussian_noise: N(0,1) at (seed, NRT_RNG_NOISE, step, sample i, STREAM << 32 | j) into y first. */
static void body_noise(LE *E, const KStep *s)
{
    int64_t D = s->i[0];
    LLVMValueRef y = buf(E, s->buf[1]), seed = model_seed(E), step = model_step(E);
    Loop L;
    LLVMValueRef i = loop_open(E, &L, E->n64);
    RT(E, nrt_rng_fill_normal, "vlillllffp", seed, ci32(E, NRT_RNG_NOISE), step, i, stream_of(E, s->i[1]),
       ci64(E, D), cf32(E, 0.0), cf32(E, 1.0), elem8(E, y, LLVMBuildNSWMul(E->b, i, ci64(E, D), "")));
    loop_close(E, &L);
    RT(E, nrt_gaussian_noise_forward, "vlppfp", n_times(E, D), buf(E, s->buf[0]), y, cf32(E, s->f[0]), y);
}

_Static_assert(sizeof(NrtFracPool) == 11 * 8 && offsetof(NrtFracPool, share) == 48
                   && offsetof(NrtFracPool, row_start) == 56,
               "NrtFracPool is built as 11 int64 slots");

/* An NrtFracPool on the stack: n, C, H, W, OH, OW, share, then the region
 * arrays (NULL for the backward, which reads argmax only). */
static LLVMValueRef fracpool_struct(LE *E, const KStep *s, int64_t share, LLVMValueRef r[4])
{
    LLVMValueRef slot[11] = {E->n64};
    for (int k = 0; k < 5; k++)
        slot[1 + k] = ci64(E, s->i[k]);
    slot[6] = ci64(E, share);
    for (int k = 0; k < 4; k++)
        slot[7 + k] = r ? LLVMBuildPtrToInt(E->b, r[k], E->i64, "") : ci64(E, 0);
    return stack_slots(E, slot, 11);
}

/* Regions per sample drawn at the training step, or one set fixed by the
 * seed (predict): nrt_fracpool_draw. */
static void body_fracpool(LE *E, const KStep *s)
{
    bool train = s->i[7] != 0;
    int64_t OH = s->i[3], OW = s->i[4];
    if (s->op == K_FRACPOOL_BWD) {
        RT(E, nrt_fracpool_backward, "vppppb", fracpool_struct(E, s, 0, NULL), buf(E, s->buf[0]),
           buf(E, s->buf[1]), buf(E, s->buf[2]), cbool(E, s->acc));
        return;
    }
    LLVMValueRef sets = train ? E->n64 : ci64(E, 1), r0 = buf(E, s->buf[3]);
    RT(E, nrt_fracpool_draw, "vllllllllbp", model_seed(E), train ? model_step(E) : ci64(E, NRT_FRACPOOL_INFER_STEP),
       stream_of(E, s->i[6]), sets, ci64(E, s->i[1]), ci64(E, s->i[2]), ci64(E, OH), ci64(E, OW),
       cbool(E, s->i[5]), r0);
    LLVMValueRef soh = LLVMBuildNSWMul(E->b, sets, ci64(E, OH), ""), sow = LLVMBuildNSWMul(E->b, sets, ci64(E, OW), "");
    LLVMValueRef two_soh = LLVMBuildNSWAdd(E->b, soh, soh, "");
    /* int32 offsets, the same size as floats: elem8() gives the addresses */
    LLVMValueRef r[4] = {r0, elem8(E, r0, soh), elem8(E, r0, two_soh),
                         elem8(E, r0, LLVMBuildNSWAdd(E->b, two_soh, sow, ""))};
    RT(E, nrt_fracpool_forward, "vpppp",
       fracpool_struct(E, s, train ? NRT_FRAC_PER_SAMPLE : NRT_FRAC_SHARED, r), buf(E, s->buf[0]),
       buf(E, s->buf[1]), buf(E, s->buf[2]));
}

_Static_assert(offsetof(NrtMixInfo, lambda) == 0 && sizeof(NrtMixInfo) == 5 * 8,
               "NrtMixInfo is 5 int64 slots, lambda first");

/* mixup / cutmix of the batch in place; lambda[0] = info.lambda for the losses. */
static void body_mix(LE *E, const KStep *s)
{
    LLVMValueRef zero[5] = {ci64(E, 0), ci64(E, 0), ci64(E, 0), ci64(E, 0), ci64(E, 0)};
    LLVMValueRef info = stack_slots(E, zero, 5);
    LLVMValueRef x = buf(E, s->buf[0]), alpha = cf64(E, s->f[0]);
    if (s->i[0] == IR_MIX_CUTMIX)
        RT(E, nrt_cutmix, "vplllldllppp", x, E->n64, ci64(E, s->i[1]), ci64(E, s->i[2]), ci64(E, s->i[3]), alpha,
           model_seed(E), model_step(E), buf(E, s->buf[2]), info, buf(E, s->buf[1]));
    else
        RT(E, nrt_mixup, "vplldllppp", x, E->n64, ci64(E, s->i[1]), alpha, model_seed(E), model_step(E),
           buf(E, s->buf[2]), info, buf(E, s->buf[1]));
    LLVMValueRef lambda = LLVMBuildLoad2(E->b, E->f32, LLVMBuildBitCast(E->b, info, E->pf, ""), "");
    LLVMBuildStore(E->b, lambda, elem(E, buf(E, s->buf[3]), ci64(E, 0)));
}

/* Inference: batchnorm folded into the next dense/conv's weights and bias. */
static void body_bn_fold(LE *E, const KStep *s)
{
    const int *b = s->buf;
    RT(E, nrt_batchnorm_fold, "vllppppppdpp", ci64(E, s->i[0]), ci64(E, s->i[1]), buf(E, b[0]), buf(E, b[1]),
       buf(E, b[2]), buf(E, b[3]), buf(E, b[4]), buf(E, b[5]), cf64(E, s->f[0]), buf(E, b[6]), buf(E, b[7]));
}

/* false: a step this printer does not know (a KOp newer than it). */
static bool step_body(LE *E, const KStep *s)
{
    switch (s->op) {
    case K_PREPROCESS: body_preprocess(E, s); return true;
    case K_AUGMENT_GEO:
    case K_AUGMENT_POST: body_augment(E, s); return true;
    case K_DENSE_FWD:
    case K_DENSE_BWD: body_dense(E, s); return true;
    case K_CONV_FWD:
    case K_CONV_BWD: body_conv(E, s); return true;
    case K_MAXPOOL_FWD:
    case K_MAXPOOL_BWD:
    case K_AVGPOOL_FWD:
    case K_AVGPOOL_BWD: body_pool(E, s); return true;
    case K_ACT_FWD:
    case K_ACT_BWD: body_act(E, s); return true;
    case K_BN_FWD_TRAIN:
    case K_BN_FWD_INFER:
    case K_BN_BWD: body_bn(E, s); return true;
    case K_DROPOUT_FWD:
    case K_DROPOUT_BWD: body_dropout(E, s); return true;
    case K_ADD_FWD: body_add(E, s); return true;
    case K_GRAD_COPY: body_grad_copy(E, s); return true;
    case K_CONCAT_FWD:
    case K_CONCAT_BWD: body_concat(E, s); return true;
    case K_GAP_FWD:
    case K_GAP_BWD: body_gap(E, s); return true;
    case K_SOFTMAX: body_softmax(E, s); return true;
    case K_CROSS_ENTROPY: body_cross_entropy(E, s); return true;
    case K_MSE: body_mse(E, s); return true;
    case K_OUTPUT: body_output(E, s); return true;
    case K_PENALTY: body_penalty(E, s); return true;
    case K_OPT_SGD: body_sgd(E, s); return true;
    case K_OPT_ADAM: body_adam(E, s); return true;
    case K_DENSE_DC_FWD:
    case K_DENSE_DC_BWD: body_dense_dc(E, s); return true;
    case K_DROPCONNECT_MASK:
    case K_DROPCONNECT_GRAD: body_dropconnect(E, s); return true;
    case K_DROP_PATH_FWD:
    case K_DROP_PATH_BWD: body_drop_path(E, s); return true;
    case K_NOISE_FWD: body_noise(E, s); return true;
    case K_FRACPOOL_FWD:
    case K_FRACPOOL_BWD: body_fracpool(E, s); return true;
    case K_MIX: body_mix(E, s); return true;
    case K_BN_FOLD: body_bn_fold(E, s); return true;
    }
    return false;
}

/* ---- functions -------------------------------------------------------------------------- */

/* Positions the builder in a fresh `void name(i8 *m, i32 n)` and loads
 * the block and arena pointers. */
static void open_function(LE *E, const char *name, bool internal)
{
    E->fn = LLVMAddFunction(E->mod, name, E->step_ty);
    if (internal)
        LLVMSetLinkage(E->fn, LLVMInternalLinkage);
    E->entry = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "entry");
    LLVMPositionBuilderAtEnd(E->b, E->entry);
    E->m = LLVMGetParam(E->fn, 0);
    E->n = LLVMGetParam(E->fn, 1);
    E->n64 = LLVMBuildSExt(E->b, E->n, E->i64, "n64");
    E->block = load_field(E, offsetof(NrtModel, block), E->p8);
    E->arena = load_field(E, offsetof(NrtModel, arena), E->p8);
}

/* Steps [from, to) of list as internal functions, called in order by the
 * exported `name`. */
static bool build_list(LE *E, const KStepList *list, size_t from, size_t to, const char *name, char *err,
                       size_t errsize)
{
    LLVMValueRef *fns = calloc(list->len + 1, sizeof *fns);
    if (!fns) {
        snprintf(err, errsize, "out of memory (LLVM IR)");
        return false;
    }
    for (size_t i = from; i < to; i++) {
        const KStep *s = &list->items[i];
        open_function(E, s->fn, true);
        if (!step_body(E, s)) {
            snprintf(err, errsize, "the LLVM backend cannot print step %s (%s) yet", s->fn, k_op_name(s->op));
            free(fns);
            return false;
        }
        LLVMBuildRetVoid(E->b);
        fns[i] = E->fn;
    }
    open_function(E, name, false);
    for (size_t i = from; i < to; i++) {
        LLVMValueRef args[2] = {E->m, E->n};
        LLVMBuildCall2(E->b, E->step_ty, fns[i], args, 2, "");
    }
    LLVMBuildRetVoid(E->b);
    free(fns);
    return true;
}

static void init_types(LE *E)
{
    LLVMContextRef c = E->ctx;
    E->v = LLVMVoidTypeInContext(c);
    E->i1 = LLVMInt1TypeInContext(c);
    E->i8 = LLVMInt8TypeInContext(c);
    E->i32 = LLVMInt32TypeInContext(c);
    E->i64 = LLVMInt64TypeInContext(c);
    E->f32 = LLVMFloatTypeInContext(c);
    E->f64 = LLVMDoubleTypeInContext(c);
    E->p8 = LLVMPointerType(E->i8, 0);
    E->pf = LLVMPointerType(E->f32, 0);
    LLVMTypeRef params[2] = {E->p8, E->i32};
    E->step_ty = LLVMFunctionType(E->v, params, 2, 0);
    E->zext = LLVMCreateEnumAttribute(c, LLVMGetEnumAttributeKindForName("zeroext", 7), 0);
}

/* The first optimizer step of the train list (its length if none): the
 * numeric guard runs before it (emit_c.c: is_update). */
size_t el_first_update(const KProgram *kp)
{
    for (size_t i = 0; i < kp->train.len; i++)
        if (kp->train.items[i].op == K_OPT_SGD || kp->train.items[i].op == K_OPT_ADAM)
            return i;
    return kp->train.len;
}

bool el_build(const JitModel *jm, LLVMContextRef ctx, const char *predict_name, const char *train_name,
              const char *update_name, ElModule *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    LE E = {.jm = jm, .kp = jm->kp, .g = jm->kp->g, .ctx = ctx};
    init_types(&E);
    E.mod = LLVMModuleCreateWithNameInContext(jm->kp->g->model, ctx);
    E.b = LLVMCreateBuilderInContext(ctx);
    size_t u = el_first_update(E.kp);
    bool ok = build_list(&E, &E.kp->predict, 0, E.kp->predict.len, predict_name, err, errsize)
           && build_list(&E, &E.kp->train, 0, u, train_name, err, errsize)
           && build_list(&E, &E.kp->train, u, E.kp->train.len, update_name, err, errsize);
    if (ok && E.nomem) {
        snprintf(err, errsize, "out of memory (LLVM IR)");
        ok = false;
    }
    LLVMDisposeBuilder(E.b);
    if (!ok) {
        LLVMDisposeModule(E.mod);
        free(E.syms);
        return false;
    }
    *out = (ElModule){E.mod, E.syms, E.nsyms};
    return true;
}

void el_module_free(ElModule *m)
{
    free(m->syms);
    m->syms = NULL;
    m->nsyms = 0;
}
