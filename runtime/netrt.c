/* netrt.c - library-wide facts: version, errors, thread count. */
#include "netrt.h"

#include <stdarg.h>
#include <stdio.h>

#include "netc_config.h"

#ifdef _OPENMP
#include <omp.h>
#endif

const char *nrt_version(void)
{
    return NETC_VERSION;
}

const char *nrt_status_name(NrtStatus s)
{
    switch (s) {
    case NRT_OK: return "ok";
    case NRT_ERR_NOMEM: return "out of memory";
    case NRT_ERR_IO: return "I/O error";
    case NRT_ERR_FORMAT: return "malformed file";
    case NRT_ERR_MISMATCH: return "mismatch";
    case NRT_ERR_ARG: return "bad argument";
    case NRT_ERR_NUMERIC: return "non-finite number";
    }
    return "unknown error";
}

NrtStatus nrt_error_set(NrtError *err, NrtStatus code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void nrt_set_threads(int n)
{
#ifdef _OPENMP
    if (n > 0)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int nrt_get_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
