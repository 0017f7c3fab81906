/* cc_backend.h - `netc train` without LLVM: generated C -> shared object ->
 * dlopen.
 *
 * The generated C of a model is cached in a folder ($NETC_CACHE_DIR, else
 * $XDG_CACHE_HOME/netc, else ~/.cache/netc) under a key that hashes the
 * model source, the codegen variant (e.g. an overridden batch size), the
 * netc version and executable, the runtime header and the compiler command.
 * A miss emits the C (through a callback), compiles it with the system C
 * compiler into a temporary file and renames it into place, so concurrent
 * runs never see a half-written object; a hit just dlopens it.
 * Nothing here prints: failures come back as a message (with the compiler's
 * output when cc failed).
 */
#ifndef NETC_CC_BACKEND_H
#define NETC_CC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

/* Writes the model's C into c_path (and its header next to it when the C
 * includes one). Returns false and fills err on failure. */
typedef bool (*CcbEmitFn)(void *ctx, const char *c_path, const char *h_path, char *err,
                          size_t errsize);

typedef struct CcbRequest {
    const char *model;          /* the model name: file names and `<model>_info` */
    const char *source;         /* the .net text (hashed) */
    size_t source_len;
    const char *variant;        /* codegen settings beyond the source ("batch=64"), or NULL */
    CcbEmitFn emit;
    void *emit_ctx;
} CcbRequest;

typedef struct CcbModule {
    void *handle;               /* dlopen handle */
    const NrtModelInfo *info;
    char so_path[4096];
    bool cached;                /* true: reused a cached object */
} CcbModule;

/* Where the compiler finds the runtime header and library. */
typedef struct CcbPaths {
    char include_dir[4096];
    char lib_dir[4096];
} CcbPaths;

/* The cache folder (not created). Returns false when no folder can be named. */
bool ccb_cache_dir(char *buf, size_t size);

/* The runtime's include and library folders, found from the netc executable
 * (build tree or installed layout), or $NETC_RUNTIME_INCLUDE_DIR and
 * $NETC_RUNTIME_LIB_DIR. */
bool ccb_runtime_paths(CcbPaths *p, char *err, size_t errsize);

/* The 32-hex-digit cache key of r under the compiler command `cc_flags`
 * and the runtime header at header_path (its bytes are hashed). */
void ccb_cache_key(const CcbRequest *r, const char *cc_flags, const char *header_path,
                   char key[33]);

/* A 64-bit FNV-1a hash continuing from h (start with CCB_HASH_INIT). */
#define CCB_HASH_INIT UINT64_C(0xcbf29ce484222325)
uint64_t ccb_hash(uint64_t h, const void *data, size_t len);

/* Looks up or builds the model's shared object and opens it; checks the
 * descriptor's ABI and name. Returns false and fills err (possibly
 * several lines: the compiler's output) on failure. */
bool ccb_open(const CcbRequest *r, CcbModule *m, char *err, size_t errsize);
void ccb_close(CcbModule *m);

#endif
