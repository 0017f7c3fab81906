/* diag.c - collecting and rendering diagnostics; see diag.h.
 *
 * Rendering follows gcc/clang: the location, the level, the message, then the
 * source line (tabs kept, non-printable bytes shown as '?') and a caret with
 * '~' under the rest of the span on that line. Long lines are clipped around
 * the caret so a 1 MB line never floods the terminal.
 */
#include "diag.h"

#include <stdlib.h>
#include <string.h>

enum { DEFAULT_MAX_ERRORS = 50, CLIP_WIDTH = 120 };

void diag_init(DiagSink *d, Arena *a)
{
    memset(d, 0, sizeof *d);
    d->a = a;
    d->max_errors = DEFAULT_MAX_ERRORS;
}

bool diag_full(const DiagSink *d)
{
    return d->nerrors >= d->max_errors;
}

__attribute__((format(printf, 4, 0)))
static Diag *diag_new(DiagSink *d, DiagLevel level, SrcSpan sp, const char *fmt, va_list ap)
{
    Diag *dg = arena_alloc(d->a, sizeof *dg);
    if (!dg)
        return NULL;
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *msg = arena_alloc(d->a, len > 0 ? (size_t)len + 1 : 1);
    if (!msg)
        return NULL;
    if (len > 0)
        vsnprintf(msg, (size_t)len + 1, fmt, ap);
    dg->level = level;
    dg->sp = sp;
    dg->msg = msg;
    return dg;
}

__attribute__((format(printf, 4, 0)))
static Diag *diag_report(DiagSink *d, DiagLevel level, SrcSpan sp, const char *fmt, va_list ap)
{
    if (level == DIAG_ERROR) {
        d->nerrors++;
        if (d->nerrors > d->max_errors) {
            d->truncated = true;
            return NULL;
        }
    } else {
        d->nwarnings++;
    }
    Diag *dg = diag_new(d, level, sp, fmt, ap);
    if (!dg)
        return NULL;
    if (d->last)
        d->last->next = dg;
    else
        d->first = dg;
    d->last = dg;
    return dg;
}

Diag *diag_verror(DiagSink *d, SrcSpan sp, const char *fmt, va_list ap)
{
    return diag_report(d, DIAG_ERROR, sp, fmt, ap);
}

Diag *diag_error(DiagSink *d, SrcSpan sp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Diag *dg = diag_report(d, DIAG_ERROR, sp, fmt, ap);
    va_end(ap);
    return dg;
}

Diag *diag_warning(DiagSink *d, SrcSpan sp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Diag *dg = diag_report(d, DIAG_WARNING, sp, fmt, ap);
    va_end(ap);
    return dg;
}

void diag_note(DiagSink *d, Diag *parent, SrcSpan sp, const char *fmt, ...)
{
    if (!parent)
        return;
    va_list ap;
    va_start(ap, fmt);
    Diag *n = diag_new(d, DIAG_NOTE, sp, fmt, ap);
    va_end(ap);
    if (!n)
        return;
    Diag **tail = &parent->notes;
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
}

SrcSpan span_join(SrcSpan a, SrcSpan b)
{
    if (!span_valid(a))
        return b;
    if (!span_valid(b))
        return a;
    SrcSpan r = a;
    r.end_line = b.end_line;
    r.end_col = b.end_col;
    return r;
}

/* Finds the start and length of 1-based line `line` in src. */
static bool find_line(const Source *src, int line, const char **start, size_t *len)
{
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n && p[n - 1] == '\r')
        n--;
    *start = p;
    *len = n;
    return true;
}

static const char *level_name(DiagLevel level)
{
    switch (level) {
    case DIAG_ERROR: return "error";
    case DIAG_WARNING: return "warning";
    case DIAG_NOTE: return "note";
    }
    return "error";
}

static const char *level_color(DiagLevel level)
{
    switch (level) {
    case DIAG_ERROR: return "\033[1;31m";
    case DIAG_WARNING: return "\033[1;35m";
    case DIAG_NOTE: return "\033[1;36m";
    }
    return "";
}

static void print_source_line(const Diag *dg, FILE *f, bool color)
{
    const char *line;
    size_t len;
    if (!find_line(dg->sp.src, dg->sp.line, &line, &len))
        return;
    size_t col = dg->sp.col > 0 ? (size_t)dg->sp.col - 1 : 0;
    if (col > len)
        col = len;
    size_t end = len;
    if (dg->sp.end_line == dg->sp.line && dg->sp.end_col > dg->sp.col)
        end = (size_t)dg->sp.end_col - 1;
    if (end > len)
        end = len;
    if (end <= col)
        end = col + 1;
    /* Clip very long lines to a window around the caret. */
    size_t from = col > CLIP_WIDTH / 2 ? col - CLIP_WIDTH / 2 : 0;
    size_t to = from + CLIP_WIDTH < len ? from + CLIP_WIDTH : len;
    if (end > to)
        end = to > col ? to : col + 1;
    fprintf(f, " %5d | %s", dg->sp.line, from ? "..." : "");
    for (size_t i = from; i < to; i++) {
        unsigned char ch = (unsigned char)line[i];
        fputc(ch == '\t' || (ch >= 32 && ch < 127) ? ch : '?', f);
    }
    fprintf(f, "%s\n       | %s", to < len ? "..." : "", from ? "   " : "");
    for (size_t i = from; i < col; i++)
        fputc(line[i] == '\t' ? '\t' : ' ', f);
    if (color)
        fputs("\033[1;32m", f);
    fputc('^', f);
    for (size_t i = col + 1; i < end; i++)
        fputc('~', f);
    if (color)
        fputs("\033[0m", f);
    fputc('\n', f);
}

static void print_one(const Diag *dg, FILE *f, bool color)
{
    if (color)
        fputs("\033[1m", f);
    if (span_valid(dg->sp))
        fprintf(f, "%s:%d:%d: ", dg->sp.src->path, dg->sp.line, dg->sp.col);
    else
        fputs("netc: ", f);
    if (color)
        fprintf(f, "%s%s:\033[0m\033[1m %s\033[0m\n", level_color(dg->level),
                level_name(dg->level), dg->msg);
    else
        fprintf(f, "%s: %s\n", level_name(dg->level), dg->msg);
    if (span_valid(dg->sp))
        print_source_line(dg, f, color);
}

void diag_print(const Diag *dg, FILE *f, bool color)
{
    print_one(dg, f, color);
    for (const Diag *n = dg->notes; n; n = n->next)
        print_one(n, f, color);
}

void diag_print_all(const DiagSink *d, FILE *f, bool color)
{
    for (const Diag *dg = d->first; dg; dg = dg->next)
        diag_print(dg, f, color);
    if (d->truncated)
        fprintf(f, "netc: too many errors (%d), stopping after the first %d\n",
                d->nerrors, d->max_errors);
}

_Noreturn void netc_die_(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netc: internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
