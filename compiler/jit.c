/* jit.c - ORC LLJIT backend (jit.h).
 *
 * Pipeline per model: JitModel tables (jit_model.c) -> IR of the step
 * lists (emit_llvm.c) + a `create` trampoline that passes the descriptor
 * (the train list in two, split where the numeric guard of jit_model.c
 * runs) -> function attributes for the host CPU -> verifier (unless NDEBUG) ->
 * "default<O3>" on a host target machine -> LLJIT (same target machine)
 * -> lookups. The runtime functions the IR names are defined in the main
 * JITDylib by address (LLVMOrcAbsoluteSymbols: libnetrt is linked into
 * netc, no symbol export needed); the C library (memcpy, memset that the
 * optimizer may introduce) comes from the process search generator.
 * Why 512-bit vectors: LLVM 14/15 vectorize at 256 bits on AVX-512 CPUs
 * unless a function says "prefer-vector-width"="512" (TOOLCHAIN.md).
 */
#include "jit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

#include "emit_llvm.h"
#include "jit_model.h"

#if LLVM_VERSION_MAJOR >= 15
typedef LLVMOrcCSymbolMapPair JitSymbolPair;
#else
typedef LLVMJITCSymbolMapPair JitSymbolPair;
#endif

struct JitModule {
    JitModel jm;
    LLVMOrcLLJITRef jit;
    JitTimes times;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Takes an LLVMErrorRef: false (err = "what: LLVM's message") or true. */
static bool llvm_ok(LLVMErrorRef e, const char *what, char *err, size_t errsize)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errsize, "LLVM JIT: %s: %s", what, msg ? msg : "unknown error");
    LLVMDisposeErrorMessage(msg);
    return false;
}

/* ---- the host ------------------------------------------------------------------- */

typedef struct Host {
    char *triple, *cpu, *features;
    LLVMTargetRef target;
} Host;

static void host_free(Host *h)
{
    LLVMDisposeMessage(h->triple);
    LLVMDisposeMessage(h->cpu);
    LLVMDisposeMessage(h->features);
}

static bool host_detect(Host *h, char *err, size_t errsize)
{
    memset(h, 0, sizeof *h);
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        snprintf(err, errsize, "LLVM JIT: this LLVM has no code generator for the host CPU");
        return false;
    }
    h->triple = LLVMGetDefaultTargetTriple();
    h->cpu = LLVMGetHostCPUName();
    h->features = LLVMGetHostCPUFeatures();
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(h->triple, &h->target, &msg)) {
        snprintf(err, errsize, "LLVM JIT: no target for '%s': %s", h->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        host_free(h);
        return false;
    }
    return true;
}

static LLVMTargetMachineRef host_machine(const Host *h)
{
    return LLVMCreateTargetMachine(h->target, h->triple, h->cpu, h->features, LLVMCodeGenLevelAggressive,
                                   LLVMRelocDefault, LLVMCodeModelJITDefault);
}

/* Every defined function compiles for the host CPU; 512-bit vectors when
 * it has AVX-512F. */
static void set_cpu_attributes(LLVMModuleRef mod, const Host *h)
{
    LLVMContextRef ctx = LLVMGetModuleContext(mod);
    bool avx512 = strstr(h->features, "+avx512f") != NULL;
    const char *kv[3][2] = {{"target-cpu", h->cpu}, {"target-features", h->features},
                            {"prefer-vector-width", "512"}};
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        for (int k = 0; k < (avx512 ? 3 : 2); k++)
            LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                    LLVMCreateStringAttribute(ctx, kv[k][0], (unsigned)strlen(kv[k][0]),
                                                              kv[k][1], (unsigned)strlen(kv[k][1])));
    }
}

/* ---- the module ------------------------------------------------------------------ */

/* NrtStatus netc_create(NrtModel **out, uint64_t seed, NrtError *err):
 * jitm_create(jm, out, seed, err), the descriptor as a constant. */
static void add_create(LLVMModuleRef mod, const JitModel *jm, ElModule *em)
{
    LLVMContextRef c = LLVMGetModuleContext(mod);
    LLVMTypeRef p8 = LLVMPointerType(LLVMInt8TypeInContext(c), 0), i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(c);
    LLVMTypeRef pub[3] = {p8, i64, p8}, inner[4] = {p8, p8, i64, p8};
    LLVMTypeRef pub_ty = LLVMFunctionType(i32, pub, 3, 0), inner_ty = LLVMFunctionType(i32, inner, 4, 0);
    LLVMValueRef fn = LLVMAddFunction(mod, "netc_create", pub_ty);
    LLVMValueRef callee = LLVMAddFunction(mod, "jitm_create", inner_ty);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMValueRef desc = LLVMConstIntToPtr(LLVMConstInt(i64, (unsigned long long)(uintptr_t)jm, 0), p8);
    LLVMValueRef args[4] = {desc, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
    LLVMBuildRet(b, LLVMBuildCall2(b, inner_ty, callee, args, 4, ""));
    LLVMDisposeBuilder(b);
    ElSymbol *s = realloc(em->syms, (em->nsyms + 1) * sizeof *s);
    if (s) {
        em->syms = s;
        em->syms[em->nsyms++] = (ElSymbol){"jitm_create", (ElFn)jitm_create};
    }
}

static bool verify(LLVMModuleRef mod, char *err, size_t errsize)
{
#ifdef NDEBUG
    (void)mod, (void)err, (void)errsize;
    return true;
#else
    char *msg = NULL;
    bool bad = LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg);
    if (bad)
        snprintf(err, errsize, "LLVM JIT: the generated IR does not verify (a netc bug): %.1500s",
                 msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return !bad;
#endif
}

static bool optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, char *err, size_t errsize)
{
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(o, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(o, 1);
    bool ok = llvm_ok(LLVMRunPasses(mod, "default<O3>", tm, o), "optimization failed", err, errsize);
    LLVMDisposePassBuilderOptions(o);
    return ok;
}

/* ---- the JIT ---------------------------------------------------------------------- */

static bool define_symbols(LLVMOrcLLJITRef jit, const ElModule *em, char *err, size_t errsize)
{
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
    JitSymbolPair *pairs = calloc(em->nsyms + 1, sizeof *pairs);
    if (!pairs) {
        snprintf(err, errsize, "out of memory (JIT symbols)");
        return false;
    }
    for (size_t i = 0; i < em->nsyms; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, em->syms[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)em->syms[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, em->nsyms);
    free(pairs);
    if (!llvm_ok(LLVMOrcJITDylibDefine(jd, mu), "cannot define the runtime symbols", err, errsize)) {
        LLVMOrcDisposeMaterializationUnit(mu);
        return false;
    }
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (!llvm_ok(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit),
                                                                      NULL, NULL),
                 "cannot search the process for C library symbols", err, errsize))
        return false;
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return true;
}

static bool lookup(LLVMOrcLLJITRef jit, const char *name, LLVMOrcExecutorAddress *addr, char *err,
                   size_t errsize)
{
    char what[160];
    snprintf(what, sizeof what, "cannot link '%s'", name);
    if (!llvm_ok(LLVMOrcLLJITLookup(jit, addr, name), what, err, errsize))
        return false;
    if (*addr == 0) {
        snprintf(err, errsize, "LLVM JIT: '%s' has no address", name);
        return false;
    }
    return true;
}

/* Hands mod and tm to a new LLJIT and resolves the three entry points. */
static bool link_module(JitModule *j, LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef mod,
                        LLVMTargetMachineRef tm, const ElModule *em, char *err, size_t errsize)
{
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    if (!llvm_ok(LLVMOrcCreateLLJIT(&j->jit, builder), "cannot create the JIT", err, errsize)) {
        j->jit = NULL;
        LLVMDisposeModule(mod);
        return false;
    }
    if (!define_symbols(j->jit, em, err, errsize)) {
        LLVMDisposeModule(mod);
        return false;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    if (!llvm_ok(LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm), "cannot add the module", err, errsize)) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return false;
    }
    LLVMOrcExecutorAddress p = 0, t = 0, u = 0, c = 0;
    if (!lookup(j->jit, "netc_predict", &p, err, errsize) || !lookup(j->jit, "netc_train", &t, err, errsize)
        || !lookup(j->jit, "netc_update", &u, err, errsize) || !lookup(j->jit, "netc_create", &c, err, errsize))
        return false;
    j->jm.predict_steps = (JitStepsFn)(uintptr_t)p;
    j->jm.train_steps = (JitStepsFn)(uintptr_t)t;
    j->jm.update_steps = (JitStepsFn)(uintptr_t)u;
    j->jm.guard = el_first_update(j->jm.kp) < j->jm.kp->train.len;
    j->jm.info.create = (NrtStatus (*)(NrtModel **, uint64_t, NrtError *))(uintptr_t)c;
    return true;
}

/* IR -> verified, optimized module -> linked JIT. */
static bool compile(JitModule *j, const Host *h, char *err, size_t errsize)
{
    double t0 = now_ms();
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
    ElModule em;
    bool ok = el_build(&j->jm, ctx, "netc_predict", "netc_train", "netc_update", &em, err, errsize);
    if (!ok) {
        LLVMOrcDisposeThreadSafeContext(tsc);
        return false;
    }
    add_create(em.mod, &j->jm, &em);
    set_cpu_attributes(em.mod, h);
    LLVMTargetMachineRef tm = host_machine(h);
    double t1 = now_ms();
    ok = verify(em.mod, err, errsize) && optimize(em.mod, tm, err, errsize);
    double t2 = now_ms();
    if (ok) {
        ok = link_module(j, tsc, em.mod, tm, &em, err, errsize);   /* owns mod and tm */
    } else {
        LLVMDisposeModule(em.mod);
        LLVMDisposeTargetMachine(tm);
    }
    LLVMOrcDisposeThreadSafeContext(tsc);
    el_module_free(&em);
    j->times = (JitTimes){t1 - t0, t2 - t1, now_ms() - t2};
    return ok;
}

JitModule *jit_open(const KProgram *kp, char *err, size_t errsize)
{
    JitModule *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errsize, "out of memory (JIT)");
        return NULL;
    }
    if (!jitm_init(&j->jm, kp, err, errsize)) {
        free(j);
        return NULL;
    }
    Host h;
    bool ok = host_detect(&h, err, errsize);
    if (ok) {
        ok = compile(j, &h, err, errsize);
        host_free(&h);
    }
    if (!ok) {
        jit_close(j);
        return NULL;
    }
    return j;
}

const NrtModelInfo *jit_info(const JitModule *j)
{
    return &j->jm.info;
}

JitTimes jit_times(const JitModule *j)
{
    return j->times;
}

void jit_close(JitModule *j)
{
    if (!j)
        return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e)
            LLVMConsumeError(e);
    }
    jitm_fini(&j->jm);
    free(j);
}
