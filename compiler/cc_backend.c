/* cc_backend.c - generated C -> cached shared object -> dlopen'ed model.
 *
 * Input: a model's source and a callback that emits its C. Output: the
 * model's NrtModelInfo from a dlopen'ed object whose ABI and name were
 * checked. Cache entries are `<cache>/<model>-<key>.so` (with the C kept
 * next to it as `<model>-<key>.c` for debugging). A build happens in a
 * private temporary folder inside the cache and ends with rename(2), so
 * two concurrent runs of the same model both succeed and neither loads a
 * partial file. The key hashes everything the object depends on, including
 * the netc executable's size and mtime: during development the version
 * string stays the same while the emitter changes.
 */
#include "cc_backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netc_config.h"

enum { CCB_MAX_ARGS = 64, CCB_PATH = 4096 };

__attribute__((format(printf, 3, 4)))
static bool fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return false;
}

/* snprintf for file names: false when the name did not fit. */
__attribute__((format(printf, 3, 4)))
static bool pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < size;
}

uint64_t ccb_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    /* The terminating NUL separates fields: ("ab","c") != ("a","bc"). */
    return ccb_hash(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool ccb_cache_dir(char *buf, size_t size)
{
    const char *dir = getenv("NETC_CACHE_DIR");
    if (dir && *dir)
        return (size_t)snprintf(buf, size, "%s", dir) < size;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg == '/')
        return (size_t)snprintf(buf, size, "%s/netc", xdg) < size;
    const char *home = getenv("HOME");
    if (home && *home)
        return (size_t)snprintf(buf, size, "%s/.cache/netc", home) < size;
    return false;
}

/* mkdir -p for the cache folder. */
static bool make_dirs(const char *path, char *err, size_t errsize)
{
    char buf[CCB_PATH];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return fail(err, errsize, "cache folder name too long");
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return fail(err, errsize, "cannot create cache folder '%s': %s", buf, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    if (!is_dir(path))
        return fail(err, errsize, "cache path '%s' is not a folder", path);
    return true;
}

/* The folder holding the running executable. */
static bool exe_dir(char *buf, size_t size)
{
    char path[CCB_PATH];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash)
        return false;
    *slash = '\0';
    return (size_t)snprintf(buf, size, "%s", path) < size;
}

static bool set_paths(CcbPaths *p, const char *inc, const char *lib)
{
    return (size_t)snprintf(p->include_dir, sizeof p->include_dir, "%s", inc)
               < sizeof p->include_dir
        && (size_t)snprintf(p->lib_dir, sizeof p->lib_dir, "%s", lib) < sizeof p->lib_dir;
}

bool ccb_runtime_paths(CcbPaths *p, char *err, size_t errsize)
{
    const char *inc = getenv("NETC_RUNTIME_INCLUDE_DIR"), *lib = getenv("NETC_RUNTIME_LIB_DIR");
    if (inc && *inc && lib && *lib)
        return set_paths(p, inc, lib) || fail(err, errsize, "runtime path too long");
    char dir[CCB_PATH], probe[CCB_PATH + 64];
    if (!exe_dir(dir, sizeof dir))
        return fail(err, errsize, "cannot find the netc executable (/proc/self/exe)");
    /* Build tree: build/compiler/netc next to build/runtime/libnetrt.so. */
    pathf(probe, sizeof probe, "%s/../runtime/libnetrt.so", dir);
    if (is_file(probe)) {
        pathf(probe, sizeof probe, "%s/../runtime", dir);
        return set_paths(p, NETC_SOURCE_RUNTIME_DIR, probe)
            || fail(err, errsize, "runtime path too long");
    }
    /* Installed, possibly relocated: <prefix>/bin/netc. */
    char pinc[CCB_PATH + 64], plib[CCB_PATH + 64];
    pathf(pinc, sizeof pinc, "%s/../%s", dir, NETC_INSTALL_INCLUDEDIR_REL);
    pathf(plib, sizeof plib, "%s/../%s", dir, NETC_INSTALL_LIBDIR_REL);
    pathf(probe, sizeof probe, "%s/netrt.h", pinc);
    if (is_file(probe))
        return set_paths(p, pinc, plib) || fail(err, errsize, "runtime path too long");
    pathf(probe, sizeof probe, "%s/netrt.h", NETC_INSTALL_INCLUDEDIR);
    if (is_file(probe))
        return set_paths(p, NETC_INSTALL_INCLUDEDIR, NETC_INSTALL_LIBDIR)
            || fail(err, errsize, "runtime path too long");
    return fail(err, errsize,
                "cannot find the runtime (netrt.h and libnetrt) next to the netc executable in "
                "'%s'; set NETC_RUNTIME_INCLUDE_DIR and NETC_RUNTIME_LIB_DIR", dir);
}

static uint64_t hash_file(uint64_t h, const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return hash_str(h, "(no file)");
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        h = ccb_hash(h, buf, n);
    fclose(f);
    return h;
}

/* The executable's identity: size and modification time. */
static uint64_t hash_exe(uint64_t h)
{
    struct stat st;
    if (stat("/proc/self/exe", &st) != 0)
        return hash_str(h, "(no exe)");
    int64_t id[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
    return ccb_hash(h, id, sizeof id);
}

void ccb_cache_key(const CcbRequest *r, const char *cc_flags, const char *header_path,
                   char key[33])
{
    uint64_t h[2] = {CCB_HASH_INIT, UINT64_C(0x84222325cbf29ce4)};
    for (int i = 0; i < 2; i++) {
        h[i] = hash_str(h[i], NETC_VERSION);
        h[i] = hash_str(h[i], r->model);
        h[i] = hash_str(h[i], r->variant);
        h[i] = hash_str(h[i], cc_flags);
        h[i] = ccb_hash(h[i], r->source, r->source_len);
        h[i] = hash_file(h[i], header_path);
        h[i] = hash_exe(h[i]);
    }
    snprintf(key, 33, "%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}

/* The compiler command without file names: $CC or cc, the optimization
 * flags, then $NETC_CFLAGS. Part of the cache key. */
static void cc_command_string(char *store, size_t size)
{
    const char *cc = getenv("CC");
    const char *extra = getenv("NETC_CFLAGS");
    snprintf(store, size, "%s -O3 -march=native -ffp-contract=fast -fPIC -shared%s %s",
             cc && *cc ? cc : "cc", NETC_HAVE_OPENMP ? " -fopenmp" : "", extra ? extra : "");
}

/* The same split on blanks into argv (pointers into store). */
static int cc_command(char *store, size_t size, const char **argv)
{
    cc_command_string(store, size);
    int argc = 0;
    for (char *tok = strtok(store, " \t"); tok && argc < CCB_MAX_ARGS - 16;
         tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    return argc;
}

/* Runs argv with stdout and stderr to log_path; returns the exit status
 * (or -1 when it could not run, 128+sig when killed). */
static int run_logged(const char *const *argv, const char *log_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* Appends the first part of a file to err. */
static void append_file(char *err, size_t size, const char *path)
{
    size_t used = strlen(err);
    FILE *f = fopen(path, "rb");
    if (!f || used + 1 >= size) {
        if (f)
            fclose(f);
        return;
    }
    size_t n = fread(err + used, 1, size - used - 1, f);
    err[used + n] = '\0';
    while (n > 0 && err[used + n - 1] == '\n')
        err[used + --n] = '\0';
    fclose(f);
}

static void remove_tree(const char *dir, const char *const *names, int nnames)
{
    char path[CCB_PATH + 64];
    for (int i = 0; i < nnames; i++) {
        pathf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

typedef struct BuildFiles {
    char tmp[CCB_PATH], c[CCB_PATH + 64], h[CCB_PATH + 64], so[CCB_PATH + 64], log[CCB_PATH + 64];
} BuildFiles;

/* Compiles the emitted C in b->tmp into b->so. */
static bool compile_c(const CcbRequest *r, const CcbPaths *paths, const BuildFiles *b, char *err,
                      size_t errsize)
{
    char store[2048], incflag[CCB_PATH + 4], libflag[CCB_PATH + 4], rpath[CCB_PATH + 16];
    const char *argv[CCB_MAX_ARGS];
    int argc = cc_command(store, sizeof store, argv);
    pathf(incflag, sizeof incflag, "-I%s", paths->include_dir);
    pathf(libflag, sizeof libflag, "-L%s", paths->lib_dir);
    pathf(rpath, sizeof rpath, "-Wl,-rpath,%s", paths->lib_dir);
    const char *tail[] = {incflag, b->c, "-o", b->so, libflag, rpath, "-lnetrt", "-lm", NULL};
    for (int i = 0; tail[i]; i++)
        argv[argc++] = tail[i];
    argv[argc] = NULL;
    int status = run_logged(argv, b->log);
    if (status == 0 && is_file(b->so))
        return true;
    size_t n = (size_t)snprintf(err, errsize,
                                "the C compiler failed (exit status %d) on the generated code of "
                                "'%s':\n ", status, r->model);
    for (int i = 0; i < argc && n < errsize; i++)
        n += (size_t)snprintf(err + n, errsize - n, " %s", argv[i]);
    if (n < errsize)
        snprintf(err + n, errsize - n, "\n");
    append_file(err, errsize, b->log);
    return false;
}

/* Emits and compiles into a private folder, then renames into the cache. */
static bool build(const CcbRequest *r, const char *cache, const char *key, const char *so_path,
                  char *err, size_t errsize)
{
    CcbPaths paths;
    if (!ccb_runtime_paths(&paths, err, errsize))
        return false;
    BuildFiles b;
    if (!pathf(b.tmp, sizeof b.tmp, "%s/tmp-%s-XXXXXX", cache, r->model) || !mkdtemp(b.tmp))
        return fail(err, errsize, "cannot create a build folder in '%s': %s", cache,
                    strerror(errno));
    pathf(b.c, sizeof b.c, "%s/%s.c", b.tmp, r->model);
    pathf(b.h, sizeof b.h, "%s/%s.h", b.tmp, r->model);
    pathf(b.so, sizeof b.so, "%s/%s.so", b.tmp, r->model);
    pathf(b.log, sizeof b.log, "%s/cc.log", b.tmp);
    char names[4][CCB_PATH];
    pathf(names[0], CCB_PATH, "%s.c", r->model);
    pathf(names[1], CCB_PATH, "%s.h", r->model);
    pathf(names[2], CCB_PATH, "%s.so", r->model);
    pathf(names[3], CCB_PATH, "cc.log");
    const char *list[] = {names[0], names[1], names[2], names[3]};
    bool ok = r->emit(r->emit_ctx, b.c, b.h, err, errsize) && compile_c(r, &paths, &b, err, errsize);
    if (ok) {
        char kept[CCB_PATH + 128];
        pathf(kept, sizeof kept, "%s/%s-%s.c", cache, r->model, key);
        rename(b.c, kept);   /* only for reading; losing it is harmless */
        if (rename(b.so, so_path) != 0)
            ok = fail(err, errsize, "cannot move the compiled model to '%s': %s", so_path,
                      strerror(errno));
    }
    remove_tree(b.tmp, list, 4);
    return ok;
}

static bool open_so(const CcbRequest *r, CcbModule *m, char *err, size_t errsize)
{
    /* RTLD_NODELETE: the object stays mapped after dlclose, so what its
     * libraries' constructors allocate stays reachable (and symbolized for
     * LeakSanitizer) instead of turning into leaks of an unknown module. */
    m->handle = dlopen(m->so_path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!m->handle)
        return fail(err, errsize, "cannot load '%s': %s", m->so_path, dlerror());
    char sym[256];
    snprintf(sym, sizeof sym, "%s_info", r->model);
    const NrtModelInfo *(*info_fn)(void);
    *(void **)&info_fn = dlsym(m->handle, sym);
    if (!info_fn)
        return fail(err, errsize, "'%s' does not export %s()", m->so_path, sym);
    m->info = info_fn();
    if (!m->info || m->info->abi != NRT_MODEL_ABI)
        return fail(err, errsize, "'%s' was built for model ABI %u, this netc uses %d",
                    m->so_path, m->info ? m->info->abi : 0u, NRT_MODEL_ABI);
    if (!m->info->name || strcmp(m->info->name, r->model) != 0)
        return fail(err, errsize, "'%s' describes model '%s', expected '%s'", m->so_path,
                    m->info->name ? m->info->name : "(null)", r->model);
    return true;
}

bool ccb_open(const CcbRequest *r, CcbModule *m, char *err, size_t errsize)
{
    memset(m, 0, sizeof *m);
    char cache[CCB_PATH], store[2048], key[33], header[CCB_PATH + 16];
    if (!ccb_cache_dir(cache, sizeof cache))
        return fail(err, errsize, "no cache folder: set NETC_CACHE_DIR or HOME");
    if (!make_dirs(cache, err, errsize))
        return false;
    CcbPaths paths;
    cc_command_string(store, sizeof store);
    header[0] = '\0';
    if (ccb_runtime_paths(&paths, err, errsize))
        pathf(header, sizeof header, "%s/netrt.h", paths.include_dir);
    ccb_cache_key(r, store, header[0] ? header : NULL, key);
    if (!pathf(m->so_path, sizeof m->so_path, "%s/%s-%s.so", cache, r->model, key))
        return fail(err, errsize, "cache folder name too long");
    m->cached = is_file(m->so_path);
    if (!m->cached && !build(r, cache, key, m->so_path, err, errsize))
        return false;
    if (!open_so(r, m, err, errsize)) {
        ccb_close(m);
        return false;
    }
    return true;
}

void ccb_close(CcbModule *m)
{
    if (m->handle)
        dlclose(m->handle);
    m->handle = NULL;
    m->info = NULL;
}
