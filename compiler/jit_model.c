/* jit_model.c - the generic half of a JIT-compiled model (jit_model.h).
 *
 * Input: a KProgram (its graph checked and lowered). Output: the tables of
 * an NrtModelInfo and its entry points, implemented once for every model.
 * Each function mirrors what emit_c.c prints for a model, with the same
 * runtime calls, constants and RNG keys: parameters from (seed,
 * NRT_RNG_INIT, parameter index), preprocessing statistics in double,
 * checkpoints through nrt_block_save/nrt_block_load with the same tensor
 * names and structure hash, the same numeric guard before the update. The
 * per-batch work runs in the compiled step functions (jm->predict_steps,
 * jm->train_steps, jm->update_steps).
 */
#include "jit_model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_info.h"

static const KBuf *kbuf(const KProgram *kp, int id)
{
    return &kp->bufs.items[id];
}

static int64_t off_or_none(const KProgram *kp, int id)
{
    return id >= 0 ? kbuf(kp, id)->off : -1;
}

/* ---- tables ------------------------------------------------------------------ */

static void fill_params(JitModel *jm)
{
    const KProgram *kp = jm->kp;
    for (size_t i = 0; i < kp->params.len; i++) {
        const KParam *q = &kp->params.items[i];
        const IrParam *p = q->p;
        NrtParamInfo *pi = &jm->params[i];
        pi->name = p->name;
        pi->rank = p->shape.rank;
        for (int d = 0; d < 4; d++)
            pi->shape[d] = d < p->shape.rank ? p->shape.d[d] : 0;
        pi->numel = p->numel;
        pi->trainable = p->trainable;
        JitParamRow *r = &jm->rows[i];
        r->off = kbuf(kp, q->buf)->off;
        r->grad = off_or_none(kp, q->grad);
        r->state[0] = off_or_none(kp, q->state[0]);
        r->state[1] = off_or_none(kp, q->state[1]);
        r->dist = kinfo_init_dist(p, &r->a);
        NrtGuardSpan *sp = &jm->spans[i];
        *sp = (NrtGuardSpan){r->off, r->grad, p->numel, 0, 0};
        kinfo_guard_penalty(kp, q, &sp->l1, &sp->l2);
    }
}

static bool fill_targets(JitModel *jm)
{
    const IrGraph *g = jm->kp->g;
    for (size_t t = 0; t < g->targets.len; t++) {
        const IrTarget *tg = g->targets.items[t];
        NrtTargetInfo *ti = &jm->targets[t];
        ti->name = tg->name;
        ti->kind = tg->kind == IR_TARGET_CLASSES ? NRT_TARGET_CLASSES : NRT_TARGET_VALUES;
        ti->n = tg->n;
        ti->source = tg->source == IR_TARGET_FROM_DATA ? NRT_TARGET_FROM_DATA
                   : tg->source == IR_TARGET_FROM_MAP ? NRT_TARGET_FROM_MAP : NRT_TARGET_FROM_FILE;
        if (tg->source == IR_TARGET_FROM_MAP) {
            if (!(jm->maps[t] = malloc((size_t)(tg->nmap > 0 ? tg->nmap : 1) * sizeof(int32_t))))
                return false;
            for (int64_t i = 0; i < tg->nmap; i++)
                jm->maps[t][i] = (int32_t)tg->map[i];
            ti->map_base = tg->map_base;
            ti->map = jm->maps[t];
            ti->nmap = tg->nmap;
        }
        const IrTrain *tr = &g->train;
        if ((int)t < tr->data.ntarget_files && tr->data.target_files && tr->data.target_files[t]) {
            ti->file = tr->data.target_files[t];
            ti->test_file = tr->data.target_test_files ? tr->data.target_test_files[t] : NULL;
        }
    }
    for (size_t k = 0; k < g->outputs.len; k++) {
        jm->outputs[k].name = g->outputs.items[k].name;
        jm->outputs[k].size = ir_shape_numel(g->outputs.items[k].value->shape);
    }
    return true;
}

static NrtAugment aug_kind(const IrAugment *a)
{
    switch (a->kind) {
    case IR_AUG_TRANSLATE: return NRT_AUG_TRANSLATE;
    case IR_AUG_FLIP: return a->vertical ? NRT_AUG_FLIP_VERTICAL : NRT_AUG_FLIP;
    case IR_AUG_ROTATE: return NRT_AUG_ROTATE;
    case IR_AUG_CUTOUT: return NRT_AUG_CUTOUT;
    case IR_AUG_NOISE: return NRT_AUG_NOISE;
    }
    return NRT_AUG_TRANSLATE;
}

/* The train section as emit_c.c's emit_train_config prints it. */
static void fill_train_config(JitModel *jm)
{
    const IrTrain *t = &jm->kp->g->train;
    NrtTrainConfig *c = &jm->info.train;
    c->batch = t->batch;
    c->epochs = t->epochs;
    c->seed = t->seed;
    c->optimizer = t->opt.kind == IR_OPT_SGD ? NRT_OPT_SGD
                 : t->opt.kind == IR_OPT_ADAM ? NRT_OPT_ADAM : NRT_OPT_ADAMW;
    c->lr = t->opt.lr, c->momentum = t->opt.momentum;
    c->beta1 = t->opt.beta1, c->beta2 = t->opt.beta2;
    c->eps = t->opt.eps, c->weight_decay = t->opt.weight_decay;
    c->nesterov = t->opt.nesterov;
    c->schedule = t->sched.kind == IR_SCHED_CONSTANT ? NRT_SCHED_CONSTANT
                : t->sched.kind == IR_SCHED_STEP ? NRT_SCHED_STEP : NRT_SCHED_COSINE;
    c->step_every = t->sched.every, c->warmup = t->sched.warmup, c->step_gamma = t->sched.gamma;
    c->naugments = t->naug;
    for (int i = 0; i < t->naug && i < NRT_MAX_AUGMENTS; i++) {
        c->augment[i] = aug_kind(&t->aug[i]);
        c->augment_amount[i] = t->aug[i].amount;
    }
    c->mix = t->mix.kind == IR_MIX_NONE ? NRT_MIX_NONE
           : t->mix.kind == IR_MIX_MIXUP ? NRT_MIX_MIXUP : NRT_MIX_CUTMIX;
    c->mix_alpha = t->mix.alpha;
    bool idx = t->data.kind == IR_DATA_IDX;
    c->train_images = idx ? t->data.train_images : NULL;
    c->train_labels = idx ? t->data.train_labels : NULL;
    c->test_images = idx ? t->data.test_images : NULL;
    c->test_labels = idx ? t->data.test_labels : NULL;
}

/* The augmentation spec the K_AUGMENT_* steps pass (emit_c.c: out_augment_spec). */
static void fill_augment(JitModel *jm)
{
    const IrTrain *t = &jm->kp->g->train;
    for (int i = 0; i < t->naug; i++) {
        const IrAugment *a = &t->aug[i];
        switch (a->kind) {
        case IR_AUG_TRANSLATE: jm->aug.translate = (int64_t)a->amount; break;
        case IR_AUG_FLIP:
            if (a->vertical)
                jm->aug.flip_vertical = true;
            else
                jm->aug.flip = true;
            break;
        case IR_AUG_ROTATE: jm->aug.rotate = a->amount; break;
        case IR_AUG_CUTOUT: jm->aug.cutout = (int64_t)a->amount; break;
        case IR_AUG_NOISE: jm->aug.noise = a->amount; break;
        }
    }
}

/* Checkpoint tensors (emit_c.c: emit_ck_table): parameters and running
 * statistics, then optimizer state, then preprocessing statistics. */
static int fill_checkpoint(JitModel *jm)
{
    const KProgram *kp = jm->kp;
    const char *state_sfx = kp->g->train.opt.kind == IR_OPT_SGD ? "momentum" : NULL;
    int count = 0;
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < kp->params.len; i++) {
            const KParam *q = &kp->params.items[i];
            if (pass > 0 && q->state[pass - 1] < 0)
                continue;
            const char *sfx = pass == 0 ? NULL : state_sfx ? state_sfx : pass == 1 ? "adam_m" : "adam_v";
            snprintf(jm->ck_names[count], sizeof jm->ck_names[count], "%s%s%s", q->p->name,
                     sfx ? "." : "", sfx ? sfx : "");
            NrtBlockTensor *t = &jm->ck[count++];
            t->name = jm->ck_names[count - 1];
            t->rank = q->p->shape.rank;
            for (int d = 0; d < 4; d++)
                t->shape[d] = d < q->p->shape.rank ? q->p->shape.d[d] : 0;
            t->off = kbuf(kp, pass == 0 ? q->buf : q->state[pass - 1])->off;
        }
    int pre[2] = {kp->pre_mean, kp->pre_std};
    for (int k = 0; k < 2; k++) {
        if (pre[k] < 0)
            continue;
        NrtBlockTensor *t = &jm->ck[count++];
        t->name = kbuf(kp, pre[k])->name;
        t->rank = k == 1 && kp->g->pre.kind == IR_PRE_ZCA ? 2 : 1;   /* zca: the d x d matrix */
        t->shape[0] = kp->pre_channels;
        t->shape[1] = t->rank == 2 ? kp->pre_channels : 0;
        t->off = kbuf(kp, pre[k])->off;
    }
    return count;
}

/* The largest scratch any dense or conv step asks for at the full batch
 * (emit_c.c: emit_workspace). */
static size_t workspace_floats(const KProgram *kp)
{
    size_t f = 16;
    for (size_t i = 0; i < kp->train.len; i++) {
        const KStep *s = &kp->train.items[i];
        size_t k = 0;
        if (s->op == K_PREPROCESS && kp->g->pre.kind == IR_PRE_ZCA) {
            int64_t d = ir_shape_numel(kp->g->input.shape);
            k = nrt_dense_workspace_floats(kp->batch, d, d);
        } else if (s->op == K_DENSE_FWD || s->op == K_DENSE_BWD) {
            k = nrt_dense_workspace_floats(kp->batch, s->i[0], s->i[1]);
        } else if (s->op == K_CONV_FWD || s->op == K_CONV_BWD) {
            NrtConvShape cs = {kp->batch, s->i[0], s->i[1], s->i[2], s->i[3], s->i[4], s->i[5], s->i[6]};
            k = nrt_conv_workspace_floats(&cs);
        }
        f = k > f ? k : f;
    }
    return f;
}

/* ---- entry points ------------------------------------------------------------ */

static void jm_free(NrtModel *m)
{
    if (!m)
        return;
    free(m->block);
    free(m->arena);
    free(m->ws.buf);
    free(m);
}

/* Parameter i from (seed, NRT_RNG_INIT, sample i, element); preprocessing
 * statistics from literals, else 0 / 1 until fit_preprocess. */
static void init_params(const JitModel *jm, NrtModel *m)
{
    const KProgram *kp = jm->kp;
    for (int i = 0; i < jm->info.nparams; i++) {
        float *p = m->block + jm->rows[i].off;
        int64_t k = jm->params[i].numel;
        float a = (float)jm->rows[i].a;
        if (jm->rows[i].dist == KDIST_NORMAL)
            nrt_init_normal(p, k, a, m->seed, (uint64_t)i);
        else if (jm->rows[i].dist == KDIST_UNIFORM)
            nrt_init_uniform(p, k, a, m->seed, (uint64_t)i);
        else
            nrt_init_constant(p, k, a);
    }
    const IrPreprocess *pre = &kp->g->pre;
    for (int k = 0; k < 2; k++) {
        int buf = k ? kp->pre_std : kp->pre_mean;
        const double *lit = k ? pre->std : pre->mean;
        int nlit = k ? pre->nstd : pre->nmean;
        if (buf < 0)
            continue;
        float *dst = m->block + kbuf(kp, buf)->off;
        if (k == 1 && pre->kind == IR_PRE_ZCA) {    /* the identity until fit_preprocess */
            for (int64_t c = 0; c < kp->pre_channels; c++)
                dst[c * kp->pre_channels + c] = 1.0f;
            continue;
        }
        for (int64_t c = 0; c < kp->pre_channels; c++)
            dst[c] = !lit || nlit == 0 ? (k ? 1.0f : 0.0f) : (float)lit[nlit == 1 ? 0 : c];
    }
}

NrtStatus jitm_create(const JitModel *jm, NrtModel **out, uint64_t seed, NrtError *err)
{
    const char *name = jm->info.name;
    if (!out)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_create: out is NULL", name);
    *out = NULL;
    const KProgram *kp = jm->kp;
    size_t ws = jm->ws_floats;
    NrtModel *m = calloc(1, sizeof *m);
    if (m) {
        m->block = aligned_alloc(64, (size_t)(kp->block_floats + 15) / 16 * 16 * sizeof(float));
        m->arena = aligned_alloc(64, (size_t)(kp->arena_floats + 15) / 16 * 16 * sizeof(float));
        m->ws.buf = aligned_alloc(64, (ws + 15) / 16 * 16 * sizeof(float));
        m->ws.floats = ws;
    }
    if (!m || !m->block || !m->arena || !m->ws.buf) {
        jm_free(m);
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s: out of memory (%zu MiB)", name,
                             (size_t)(kp->block_floats + kp->arena_floats + (int64_t)ws) * 4 >> 20);
    }
    memset(m->block, 0, (size_t)kp->block_floats * sizeof(float));
    memset(m->arena, 0, (size_t)kp->arena_floats * sizeof(float));
    m->seed = seed;
    m->jm = jm;
    init_params(jm, m);
    *out = m;
    return NRT_OK;
}

/* zca: mean and W in double (nrt_stats_zca), stored as floats (emit_c.c: emit_fit_zca). */
static NrtStatus fit_zca(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err)
{
    const KProgram *kp = m->jm->kp;
    int64_t D = kp->pre_channels;
    double *mean = malloc((size_t)D * (size_t)(D + 1) * sizeof *mean);
    if (!mean)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s_fit_preprocess: out of memory", m->jm->info.name);
    double *w = mean + D;
    NrtStatus st = nrt_stats_zca(images, count, D, kp->g->pre.eps, mean, w, err);
    float *pm = m->block + kbuf(kp, kp->pre_mean)->off, *pw = m->block + kbuf(kp, kp->pre_std)->off;
    for (int64_t k = 0; k < D && st == NRT_OK; k++)
        pm[k] = (float)mean[k];
    for (int64_t k = 0; k < D * D && st == NRT_OK; k++)
        pw[k] = (float)w[k];
    free(mean);
    return st;
}

/* Statistics in double per statistics channel (emit_c.c: emit_fit). */
static NrtStatus jm_fit_preprocess(NrtModel *m, const uint8_t *images, int64_t count, NrtError *err)
{
    if (!m || (count > 0 && !images))
        return nrt_error_set(err, NRT_ERR_ARG, "%s_fit_preprocess: NULL argument",
                             m ? m->jm->info.name : "model");
    const KProgram *kp = m->jm->kp;
    const IrPreprocess *pre = &kp->g->pre;
    const char *name = m->jm->info.name;
    if (kp->pre_mean < 0 || pre->mean)
        return NRT_OK;
    if (pre->kind == IR_PRE_ZCA)
        return fit_zca(m, images, count, err);
    int64_t c = kp->pre_channels, d = ir_shape_numel(kp->g->input.shape);
    double *mean = malloc(2 * (size_t)c * sizeof *mean), *sd = mean + c;
    if (!mean)
        return nrt_error_set(err, NRT_ERR_NOMEM, "%s_fit_preprocess: out of memory", name);
    NrtStatus st = pre->kind == IR_PRE_MEAN_IMAGE ? nrt_stats_mean_image(images, count, c, mean, err)
                                                  : nrt_stats_channels(images, count, c, d / c, mean, sd, err);
    float *pm = m->block + kbuf(kp, kp->pre_mean)->off;
    float *ps = kp->pre_std >= 0 ? m->block + kbuf(kp, kp->pre_std)->off : NULL;
    for (int64_t k = 0; k < c && st == NRT_OK; k++) {
        pm[k] = (float)mean[k];
        if (!ps)
            continue;
        if (!(sd[k] > 0))
            st = nrt_error_set(err, NRT_ERR_NUMERIC, "%s_fit_preprocess: channel %d is constant (std 0)",
                               name, (int)k);
        ps[k] = (float)sd[k];
    }
    free(mean);
    return st;
}

static NrtStatus jm_predict(NrtModel *m, const float *x, int n, float *const *outs, NrtError *err)
{
    if (!m || !x || !outs)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_predict: NULL argument", m ? m->jm->info.name : "model");
    const NrtModelInfo *info = &m->jm->info;
    if (n < 1 || n > info->batch)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_predict: batch of %d, not in 1..%d", info->name, n,
                             (int)info->batch);
    for (int k = 0; k < info->noutputs; k++)
        if (!outs[k])
            return nrt_error_set(err, NRT_ERR_ARG, "%s_predict: outs[%d] is NULL", info->name, k);
    m->x = x;
    m->outs = outs;
    m->jm->predict_steps(m, n);
    return NRT_OK;
}

/* The batch's labels of every loss target are classes of the target. */
static NrtStatus check_batch(const JitModel *jm, const NrtBatch *b, NrtError *err)
{
    const IrGraph *g = jm->kp->g;
    const char *name = jm->info.name;
    for (size_t i = 0; i < g->losses.len; i++) {
        int tid = g->losses.items[i]->loss.target;
        const IrTarget *t = g->targets.items[tid];
        if (t->kind == IR_TARGET_VALUES) {
            if (!b->values[tid])
                return nrt_error_set(err, NRT_ERR_ARG, "%s_train_step: no values for target '%s'", name,
                                     t->name);
            continue;
        }
        if (!b->labels[tid])
            return nrt_error_set(err, NRT_ERR_ARG, "%s_train_step: no labels for target '%s'", name, t->name);
        for (int k = 0; k < b->n; k++)
            if (b->labels[tid][k] < 0 || b->labels[tid][k] >= t->n)
                return nrt_error_set(err, NRT_ERR_ARG,
                                     "%s_train_step: label %d of sample %d is not a class of '%s' (0..%"
                                     PRId64 ")", name, (int)b->labels[tid][k], k, t->name, t->n - 1);
    }
    return NRT_OK;
}

/* The numeric guard before the update (emit_c.c: emit_guard): parameters,
 * then gradients, then the loss finite, else stop with the parameters and
 * optimizer state unchanged, naming the step (1-based) and the parameter.
 * Its pass adds the fused penalties (kinfo_guard_penalty) first. */
static NrtStatus check_finite(const NrtModel *m, NrtError *err)
{
    const JitModel *jm = m->jm;
    const unsigned long long step = (unsigned long long)m->step + 1;
    NrtGuardBad bad;
    if (!nrt_guard_pass(m->block, jm->info.nparams, jm->spans, &bad)) {
        const NrtGuardSpan *sp = &jm->spans[bad.span];
        const float *x = m->block + (bad.grad ? sp->grad : sp->off);
        return nrt_error_set(err, NRT_ERR_NUMERIC, "step %llu: %s '%s' is %g at element %lld (before the update)",
                             step, bad.grad ? "the gradient of" : "parameter", jm->params[bad.span].name,
                             (double)x[bad.elem], (long long)bad.elem);
    }
    if (!isfinite((float)m->loss))   /* as the step reports it (emit_c.c: emit_guard) */
        return nrt_error_set(err, NRT_ERR_NUMERIC, "step %llu: the loss is %g (before the update)", step,
                             (double)(float)m->loss);
    return NRT_OK;
}

static NrtStatus jm_train_step(NrtModel *m, const NrtBatch *b, float lr, float *loss, NrtError *err)
{
    if (!m || !b || !b->x)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_train_step: NULL argument", m ? m->jm->info.name : "model");
    const NrtModelInfo *info = &m->jm->info;
    if (b->n < 1 || b->n > info->batch)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_train_step: batch of %d, not in 1..%d", info->name, b->n,
                             (int)info->batch);
    NrtStatus st = check_batch(m->jm, b, err);
    if (st != NRT_OK)
        return st;
    m->x = b->x;
    m->batch = b;
    m->lr = lr;
    m->loss = 0;
    m->jm->train_steps(m, b->n);
    if (m->jm->guard) {
        NrtStatus finite = check_finite(m, err);
        if (loss)
            *loss = (float)m->loss;
        if (finite != NRT_OK)
            return finite;
    }
    m->jm->update_steps(m, b->n);
    m->step++;
    if (loss)
        *loss = (float)m->loss;
    if (!isfinite(m->loss))
        return nrt_error_set(err, NRT_ERR_NUMERIC, "%s_train_step: the loss is %g at step %llu", info->name,
                             m->loss, (unsigned long long)m->step);
    return NRT_OK;
}

static NrtStatus jm_save(const NrtModel *m, const char *path, NrtError *err)
{
    if (!m || !path)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_save: NULL argument", m ? m->jm->info.name : "model");
    return nrt_block_save(&m->jm->ck_layout, m->block, m->step, m->seed, path, err);
}

static NrtStatus jm_load(NrtModel *m, const char *path, NrtError *err)
{
    if (!m || !path)
        return nrt_error_set(err, NRT_ERR_ARG, "%s_load: NULL argument", m ? m->jm->info.name : "model");
    return nrt_block_load(&m->jm->ck_layout, &m->block, &m->step, &m->seed, path, err);
}

static float *jm_param(NrtModel *m, int index)
{
    return m && index >= 0 && index < m->jm->info.nparams ? m->block + m->jm->rows[index].off : NULL;
}

static float *jm_grad(NrtModel *m, int index)
{
    return m && index >= 0 && index < m->jm->info.nparams && m->jm->rows[index].grad >= 0
               ? m->block + m->jm->rows[index].grad : NULL;
}

static uint64_t *jm_step(NrtModel *m)
{
    return m ? &m->step : NULL;
}

/* ---- the descriptor ------------------------------------------------------------ */

static bool alloc_tables(JitModel *jm)
{
    const KProgram *kp = jm->kp;
    size_t np = kp->params.len + 1, nt = kp->g->targets.len + 1, no = kp->g->outputs.len + 1;
    jm->params = calloc(np, sizeof *jm->params);
    jm->rows = calloc(np, sizeof *jm->rows);
    jm->spans = calloc(np, sizeof *jm->spans);
    jm->targets = calloc(nt, sizeof *jm->targets);
    jm->maps = calloc(nt, sizeof *jm->maps);
    jm->outputs = calloc(no, sizeof *jm->outputs);
    jm->ck = calloc(3 * np + 2, sizeof *jm->ck);
    jm->ck_names = calloc(3 * np + 2, sizeof *jm->ck_names);
    return jm->params && jm->rows && jm->spans && jm->targets && jm->maps && jm->outputs && jm->ck && jm->ck_names;
}

bool jitm_init(JitModel *jm, const KProgram *kp, char *err, size_t errsize)
{
    memset(jm, 0, sizeof *jm);
    jm->kp = kp;
    const IrGraph *g = kp->g;
    if (!alloc_tables(jm) || !fill_targets(jm)) {
        jitm_fini(jm);
        snprintf(err, errsize, "out of memory (JIT model tables)");
        return false;
    }
    fill_params(jm);
    fill_augment(jm);
    snprintf(jm->hash, sizeof jm->hash, "%016" PRIx64, kp->structure_hash);
    jm->ck_layout = (NrtBlockLayout){g->model, jm->hash, jm->ck, fill_checkpoint(jm), kp->block_floats};
    jm->ws_floats = workspace_floats(kp);
    NrtModelInfo *in = &jm->info;
    in->abi = NRT_MODEL_ABI;
    in->name = g->model;
    in->structure_hash = kp->structure_hash;
    in->batch = kp->batch;
    in->input_rank = g->input.shape.rank;
    for (int i = 0; i < g->input.shape.rank && i < 3; i++)
        in->input_shape[i] = g->input.shape.d[i];
    in->input_size = ir_shape_numel(g->input.shape);
    in->ntargets = (int)g->targets.len, in->targets = jm->targets;
    in->noutputs = (int)g->outputs.len, in->outputs = jm->outputs;
    in->nparams = (int)kp->params.len, in->params = jm->params;
    fill_train_config(jm);
    in->destroy = jm_free, in->save = jm_save, in->load = jm_load;
    in->fit_preprocess = jm_fit_preprocess, in->predict = jm_predict, in->train_step = jm_train_step;
    in->param = jm_param, in->grad = jm_grad, in->step = jm_step;
    return true;
}

void jitm_fini(JitModel *jm)
{
    if (jm->maps)
        for (size_t t = 0; t < jm->kp->g->targets.len; t++)
            free(jm->maps[t]);
    free(jm->params), free(jm->rows), free(jm->spans), free(jm->targets), free(jm->maps);
    free(jm->outputs), free(jm->ck), free(jm->ck_names);
    memset(jm, 0, sizeof *jm);
}
