/* nrt_hidden.h - private to libnetrt: NRT_HIDDEN marks functions shared
 * between the runtime's own files (the per-ISA copies of kernels and their
 * dispatchers) that must not be exported from libnetrt.so. */
#ifndef NETRT_NRT_HIDDEN_H
#define NETRT_NRT_HIDDEN_H

#if defined(__GNUC__) && !defined(_WIN32)
#define NRT_HIDDEN __attribute__((visibility("hidden")))
#else
#define NRT_HIDDEN
#endif

#endif
