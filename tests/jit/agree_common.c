/* agree_common.c - see agree_common.h. */
#include "agree_common.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agree_nfail;
uint64_t agree_lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

char *agree_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0', *len = (size_t)n;
    return buf;
}

void agree_fail(const char *model, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", model);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    agree_nfail++;
}

bool agree_batch_alloc(AgreeBatch *bt, const NrtModelInfo *info)
{
    memset(bt, 0, sizeof *bt);
    bool ok = (bt->x = malloc((size_t)(info->batch * info->input_size) * sizeof(float))) != NULL;
    for (int t = 0; t < info->ntargets && ok; t++) {
        if (info->targets[t].kind == NRT_TARGET_CLASSES)
            ok = (bt->labels[t] = malloc((size_t)info->batch * sizeof(int32_t))) != NULL;
        else
            ok = (bt->values[t] = malloc((size_t)(info->batch * info->targets[t].n) * sizeof(float))) != NULL;
    }
    return ok;
}

void agree_batch_free(AgreeBatch *bt)
{
    free(bt->x);
    for (int t = 0; t < NRT_MAX_TARGETS; t++)
        free(bt->labels[t]), free(bt->values[t]);
}

void agree_batch_fill(AgreeBatch *bt, const NrtModelInfo *info, uint64_t *rng)
{
    int n = (int)info->batch;
    for (int64_t i = 0; i < n * info->input_size; i++)
        bt->x[i] = (float)(agree_lcg(rng) % 256) / 255.0f;
    bt->b = (NrtBatch){.x = bt->x, .n = n};
    for (int t = 0; t < info->ntargets; t++) {
        const NrtTargetInfo *ti = &info->targets[t];
        if (ti->kind == NRT_TARGET_CLASSES) {
            for (int i = 0; i < n; i++)
                bt->labels[t][i] = (int32_t)(agree_lcg(rng) % (uint64_t)ti->n);
            bt->b.labels[t] = bt->labels[t];
        } else {
            for (int64_t i = 0; i < n * ti->n; i++)
                bt->values[t][i] = (float)(agree_lcg(rng) % 1000) / 1000.0f;
            bt->b.values[t] = bt->values[t];
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A .net file, or every .net file in a folder (sorted). */
static void check_path(const char *path, const char *dir,
                       void (*check_model)(const char *path, const char *dir))
{
    DIR *d = opendir(path);
    if (!d) {
        check_model(path, dir);
        return;
    }
    char *names[512];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 512;) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".net") == 0) {
            names[n] = malloc(strlen(path) + l + 2);
            sprintf(names[n++], "%s/%s", path, e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    if (n == 0)
        agree_fail(path, "no .net files");
    for (int i = 0; i < n; i++) {
        check_model(names[i], dir);
        free(names[i]);
    }
}

int agree_main(int argc, char **argv, const char *prog, int64_t *batch, int64_t *steps,
               void (*check_model)(const char *path, const char *dir))
{
    char tmp[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/%s-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp", prog);
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    int first = 1;
    for (; first + 1 < argc && argv[first][0] == '-'; first += 2) {
        if (strcmp(argv[first], "--batch") == 0)
            *batch = atoll(argv[first + 1]);
        else if (strcmp(argv[first], "--steps") == 0)
            *steps = atoll(argv[first + 1]);
    }
    if (first >= argc || *batch < 1 || *steps < 1) {
        fprintf(stderr, "usage: %s [--batch N] [--steps N] PATH...\n", prog);
        return 2;
    }
    for (int i = first; i < argc; i++)
        check_path(argv[i], tmp, check_model);
    rmdir(tmp);
    if (agree_nfail)
        printf("%d disagreement(s)\n", agree_nfail);
    return agree_nfail ? 1 : 0;
}
