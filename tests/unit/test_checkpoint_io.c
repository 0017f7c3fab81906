/* test_checkpoint_io.c - I/O-failure injection for checkpoint saving
 * (runtime/checkpoint.c compiled with io_faults.h forced in).
 *
 * A clean save is logged first: its calls must fsync the temporary file
 * before the rename and the folder after it. Then every call of the save
 * (open, fdopen, each fwrite, fflush, fsync of the file, fclose, rename,
 * open and fsync of the folder) fails in turn, once with EIO and once with
 * ENOSPC: the save must return NRT_ERR_IO with a message naming the file
 * and the errno, leave no temporary file, and the checkpoint at the path
 * must be the previous one byte for byte (or, when only the folder's fsync
 * failed, the new one, complete) and load. Last a real full disk: a file
 * size limit (RLIMIT_FSIZE) below the new checkpoint's size.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "io_faults.h"
#include "netrt.h"

/* io_faults.h's macros are for checkpoint.c only: here the real calls. */
#undef open
#undef fdopen
#undef fwrite
#undef fflush
#undef fsync
#undef fclose
#undef rename

/* ---- the wrappers ------------------------------------------------------ */

enum { MAX_LOG = 256 };
static int g_calls, g_fail_at, g_errno;   /* g_fail_at 0: no failure */
static char g_log[MAX_LOG];                /* one letter per call, see below */

/* Logs the call as `letter` and says whether it must fail. */
static bool fault_here(char letter)
{
    if (g_calls < MAX_LOG - 1)
        g_log[g_calls] = letter;
    g_calls++;
    if (g_calls == g_fail_at) {
        errno = g_errno;
        return true;
    }
    return false;
}

static void faults_reset(int fail_at, int e)
{
    g_calls = 0;
    g_fail_at = fail_at;
    g_errno = e;
    memset(g_log, 0, sizeof g_log);
}

int fault_open(const char *path, int flags, ...)
{
    int mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, int);
        va_end(ap);
    }
    if (fault_here((flags & O_DIRECTORY) ? 'D' : 'O'))   /* D: the folder */
        return -1;
    return open(path, flags, mode);
}

FILE *fault_fdopen(int fd, const char *mode)
{
    return fault_here('P') ? NULL : fdopen(fd, mode);
}

size_t fault_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    return fault_here('W') ? 0 : fwrite(p, size, n, f);
}

int fault_fflush(FILE *f)
{
    return fault_here('F') ? EOF : fflush(f);
}

/* S: fsync of a file, Y: of a folder. */
int fault_fsync(int fd)
{
    struct stat sb;
    bool dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
    return fault_here(dir ? 'Y' : 'S') ? -1 : fsync(fd);
}

int fault_fclose(FILE *f)
{
    bool fail = fault_here('C');
    int rc = fclose(f);   /* the stream is gone either way, as with a real failure */
    if (fail) {
        errno = g_errno;
        return EOF;
    }
    return rc;
}

int fault_rename(const char *from, const char *to)
{
    return fault_here('R') ? -1 : rename(from, to);
}

/* ---- fixture ------------------------------------------------------------- */

static char g_dir[64], g_path[128];
static float g_old[6] = {1, 2, 3, 4, 5, 6}, g_new[8] = {-1, -2, -3, -4, -5, -6, -7, -8};

static int setup_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/netc-test-ckio.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/model.safetensors", g_dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static NrtStatus save(const float *w, int64_t n, NrtError *err)
{
    NrtTensorRef t = {"w", 1, {n}, w};
    NrtKV meta = {"step", n == 6 ? "1" : "2"};
    return nrt_checkpoint_save(g_path, &t, 1, &meta, 1, err);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 16);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static int files_in_dir(void)
{
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The file at g_path loads and holds `want` (n floats). */
static void assert_loads(const float *want, int64_t n)
{
    NrtCheckpoint *ck = NULL;
    NrtError err = {0};
    assert_int_equal(nrt_checkpoint_open(g_path, &ck, &err), NRT_OK);
    float got[8];
    assert_int_equal(nrt_checkpoint_read(ck, "w", 1, &n, got, &err), NRT_OK);
    assert_memory_equal(got, want, (size_t)n * sizeof *got);
    nrt_checkpoint_close(ck);
}

/* ---- tests ------------------------------------------------------------------- */

/* The order of a clean save: write, flush, fsync the file, close, rename,
 * then open and fsync the folder. */
static void test_save_call_order(void **state)
{
    (void)state;
    NrtError err = {0};
    faults_reset(0, 0);
    assert_int_equal(save(g_old, 6, &err), NRT_OK);
    const char *s = strchr(g_log, 'S'), *r = strchr(g_log, 'R'), *y = strchr(g_log, 'Y');
    assert_non_null(s);
    assert_non_null(r);
    assert_non_null(y);
    assert_true(s < r && r < y);
    assert_true(strchr(g_log, 'C') < r);
    assert_string_equal(g_log + strlen(g_log) - 2, "DY");
    assert_loads(g_old, 6);
}

static void fail_each_call(int e)
{
    NrtError err = {0};
    faults_reset(0, 0);
    assert_int_equal(save(g_old, 6, &err), NRT_OK);
    size_t n_old;
    unsigned char *old = slurp(g_path, &n_old);
    faults_reset(0, 0);
    assert_int_equal(save(g_new, 8, &err), NRT_OK);
    int ncalls = g_calls;
    char log[MAX_LOG];
    memcpy(log, g_log, sizeof log);
    int rename_at = (int)(strchr(log, 'R') - log) + 1;
    for (int k = 1; k <= ncalls; k++) {
        faults_reset(0, 0);
        assert_int_equal(save(g_old, 6, &err), NRT_OK);   /* the previous checkpoint */
        faults_reset(k, e);
        memset(&err, 0, sizeof err);
        assert_int_equal(save(g_new, 8, &err), NRT_ERR_IO);
        assert_int_equal(g_calls >= k, true);
        assert_non_null(strstr(err.msg, "model.safetensors"));
        assert_non_null(strstr(err.msg, strerror(e)));
        assert_int_equal(files_in_dir(), 1);   /* no temporary file left */
        if (k <= rename_at) {   /* up to and including the rename */
            size_t n;
            unsigned char *now = slurp(g_path, &n);
            assert_int_equal(n, n_old);
            assert_memory_equal(now, old, n);
            free(now);
            assert_loads(g_old, 6);
        } else {
            assert_loads(g_new, 8);   /* only the folder's sync failed */
        }
    }
    faults_reset(0, 0);
    free(old);
}

static void test_save_each_call_fails_eio(void **state)
{
    (void)state;
    fail_each_call(EIO);
}

static void test_save_each_call_fails_enospc(void **state)
{
    (void)state;
    fail_each_call(ENOSPC);
}

/* A real full disk: the file size limit is below the new checkpoint. */
static void test_save_full_disk(void **state)
{
    (void)state;
    NrtError err = {0};
    faults_reset(0, 0);
    assert_int_equal(save(g_old, 6, &err), NRT_OK);
    struct stat sb;
    assert_int_equal(stat(g_path, &sb), 0);
    float big[2048];
    for (int i = 0; i < 2048; i++)
        big[i] = (float)i;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size + 100;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    NrtTensorRef t = {"w", 1, {2048}, big};
    NrtStatus st = nrt_checkpoint_save(g_path, &t, 1, NULL, 0, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, NRT_ERR_IO);
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_int_equal(files_in_dir(), 1);
    assert_loads(g_old, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_call_order),
        cmocka_unit_test(test_save_each_call_fails_eio),
        cmocka_unit_test(test_save_each_call_fails_enospc),
        cmocka_unit_test(test_save_full_disk),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
