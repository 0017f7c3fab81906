/* diag.h - source spans and the diagnostic sink.
 *
 * The compiler core never prints: every stage reports into a DiagSink, and
 * the driver renders the collected diagnostics in the familiar
 *     path:line:col: error: message
 *         source line
 *         ^~~~~
 * format, followed by attached note: lines. Lines and columns are 1-based;
 * columns count bytes. A span is [line:col, end_line:end_col) - end exclusive.
 */
#ifndef NETC_DIAG_H
#define NETC_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "arena.h"

typedef struct Source {
    const char *path;   /* as given by the user, printed in diagnostics */
    const char *text;   /* NUL-terminated copy; may contain NUL bytes before len */
    size_t len;
} Source;

typedef struct SrcSpan {
    const Source *src;  /* NULL: no location (e.g. a command-line flag) */
    int line, col;
    int end_line, end_col;
} SrcSpan;

typedef enum DiagLevel { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag Diag;
struct Diag {
    DiagLevel level;
    SrcSpan sp;
    const char *msg;
    Diag *notes;        /* notes attached to this diagnostic, in order */
    Diag *next;
};

typedef struct DiagSink {
    Arena *a;
    Diag *first, *last;
    int nerrors, nwarnings;
    int max_errors;     /* stop recording after this many errors (0 = 50) */
    bool truncated;     /* more errors were found than recorded */
} DiagSink;

void diag_init(DiagSink *d, Arena *a);

/* Report an error/warning; returns the Diag so notes can be attached. Returns
 * NULL once max_errors is reached (note() accepts NULL). */
Diag *diag_error(DiagSink *d, SrcSpan sp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
Diag *diag_warning(DiagSink *d, SrcSpan sp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(DiagSink *d, Diag *parent, SrcSpan sp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
Diag *diag_verror(DiagSink *d, SrcSpan sp, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* True when no more errors will be recorded: passes may stop early. */
bool diag_full(const DiagSink *d);

/* Render every diagnostic to f (source line, caret and underline). color
 * adds ANSI colors as gcc does on a terminal. */
void diag_print_all(const DiagSink *d, FILE *f, bool color);
void diag_print(const Diag *dg, FILE *f, bool color);

/* Span helpers. */
SrcSpan span_join(SrcSpan a, SrcSpan b);   /* from a's start to b's end */
static inline bool span_valid(SrcSpan sp) { return sp.src != NULL && sp.line > 0; }

/* Compiler bugs: print "netc: internal error at file:line: ..." and abort. */
_Noreturn void netc_die_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define NETC_DIE(...) netc_die_(__FILE__, __LINE__, __VA_ARGS__)
/* A defensive check that "can't happen": true in release, asserts in debug. */
#ifdef NDEBUG
#define NETC_NEVER(x) (x)
#else
#define NETC_NEVER(x) ((x) ? (NETC_DIE("NETC_NEVER(%s)", #x), 1) : 0)
#endif

#endif
