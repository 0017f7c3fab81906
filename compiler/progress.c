/* progress.c - the training progress line and per-epoch summaries.
 *
 * The running loss is the mean over the epoch so far (the number a user
 * compares between epochs), not a smoothed last value. Speed and ETA count
 * only training steps: the clock starts at progress_epoch_begin, so test
 * evaluation and checkpointing between epochs do not distort images/s.
 */
#include "progress.h"

#include <string.h>
#include <time.h>

enum { BAR_WIDTH = 24 };
#define REDRAW_SECONDS 0.1

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_format_duration(char *buf, size_t size, double seconds)
{
    if (!(seconds >= 0) || seconds > 1e8) {
        snprintf(buf, size, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf(buf, size, "%lds", s);
}

void progress_format_bar(char *buf, size_t size, const ProgressStats *s)
{
    char bar[BAR_WIDTH + 1], eta[32];
    int64_t fill = s->nbatches > 0 ? s->batch * BAR_WIDTH / s->nbatches : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    progress_format_duration(eta, sizeof eta, s->eta_s);
    snprintf(buf, size, "epoch %lld/%lld [%s] %lld/%lld loss %.4f %.0f img/s ETA %s",
             (long long)s->epoch, (long long)s->epochs, bar, (long long)s->batch,
             (long long)s->nbatches, s->loss, s->images_per_s, eta);
}

void progress_format_epoch(char *buf, size_t size, const ProgressStats *s, double elapsed_s)
{
    snprintf(buf, size, "epoch %lld/%lld: loss %.4f, %.0f img/s, %.1fs", (long long)s->epoch,
             (long long)s->epochs, s->loss, s->images_per_s, elapsed_s);
}

void progress_init(Progress *p, FILE *f, bool tty)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = tty;
}

void progress_epoch_begin(Progress *p, int64_t epoch, int64_t epochs, int64_t nbatches,
                          int64_t done)
{
    p->st = (ProgressStats){.epoch = epoch, .epochs = epochs, .batch = done,
                            .nbatches = nbatches, .eta_s = -1};
    p->loss_sum = 0;
    p->loss_count = 0;
    p->images = 0;
    p->batches_left_after = (epochs - epoch) * nbatches;
    p->t_start = p->t_last_draw = progress_now();
    p->drawn = false;
    p->stopped = false;
}

static void update_rates(Progress *p, double now)
{
    double dt = now - p->t_start;
    int64_t steps = p->loss_count;
    p->st.loss = steps ? p->loss_sum / (double)steps : 0;
    p->st.images_per_s = dt > 0 ? (double)p->images / dt : 0;
    int64_t left = p->st.nbatches - p->st.batch + p->batches_left_after;
    p->st.eta_s = steps > 0 && dt > 0 ? dt / (double)steps * (double)left : -1;
}

void progress_step(Progress *p, int n, double loss)
{
    p->st.batch++;
    p->loss_sum += loss;
    p->loss_count++;
    p->images += n;
    if (!p->tty)
        return;
    double now = progress_now();
    if (now - p->t_last_draw < REDRAW_SECONDS && p->st.batch < p->st.nbatches)
        return;
    p->t_last_draw = now;
    update_rates(p, now);
    char line[256];
    progress_format_bar(line, sizeof line, &p->st);
    fprintf(p->f, "\r%s\033[K", line);
    fflush(p->f);
    p->drawn = true;
}

void progress_abort(Progress *p)
{
    if (p->tty && p->drawn)
        fputs("\r\033[K", p->f);
    p->drawn = false;
    fflush(p->f);
}

void progress_epoch_stop(Progress *p)
{
    if (p->stopped)
        return;
    double now = progress_now();
    update_rates(p, now);
    p->elapsed = now - p->t_start;
    p->stopped = true;
    progress_abort(p);
}

void progress_epoch_end(Progress *p, const char *extra)
{
    progress_epoch_stop(p);
    char line[256];
    progress_format_epoch(line, sizeof line, &p->st, p->elapsed);
    fprintf(p->f, "%s%s\n", line, extra ? extra : "");
    fflush(p->f);
}
