/* Streaming WaveRNN: construction, level and reset (wavernn_internal.h lists the other
 * files of the engine). See docs/model.md. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wavernn_internal.h"

/* ---------- construction ---------- */

void *vk_wr_alloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64)) return NULL;
    memset(p, 0, n ? (n + 63) / 64 * 64 : 64);
    return p;
}

static int pad16(int n) { return (n + 15) / 16 * 16; }

vk_engine *vk_engine_create(const vk_model *model, int level, uint64_t seed, int frame_capacity)
{
    if (level < 0 || level >= VK_LEVEL_COUNT || frame_capacity < 1) return NULL;
    vk_engine *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->m = *model;
    e->n_hidden = model->hidden;
    e->n_coarse = model->hidden / 2;
    e->n_subscale = model->subscale;
    e->horizon = model->horizon;
    e->n_excitation = model->excitation;
    e->n_in = 3 + model->horizon + e->n_excitation;
    e->ctx_frames = model->ctx_before + 1 + model->lookahead;
    e->n_features = model->n_features;
    e->n_classes = model->n_classes;
    e->hop = model->hop;
    const int B = e->n_subscale, H = e->n_hidden;

    e->fcap = frame_capacity + e->ctx_frames;
    /* frames between the oldest sub-tensor and sub-tensor 0, plus slack */
    e->ccap = (int)(((int64_t)B * (B - 1) * e->horizon) / e->hop) + 4;
    int64_t span = (int64_t)B * ((int64_t)(B - 1) * e->horizon + 2) + 64;
    int64_t hcap = 64;
    while (hcap < 2 * span) hcap <<= 1;
    e->hmask = hcap - 1;

    int max_cols = H, max_rows = 3 * H > e->n_classes ? 3 * H : e->n_classes;
    e->xu_stride = (max_cols + 3) / 4 * 4;
    e->xu_stride = (e->xu_stride + 63) / 64 * 64;
    e->acc_stride = pad16(max_rows);
    e->state_stride = pad16(H);
    e->logits_stride = pad16(e->n_classes);

    e->frames = vk_wr_alloc(sizeof(float) * e->fcap * e->n_features);
    e->exc_inc = vk_wr_alloc(sizeof(double) * e->fcap);
    e->exc_v = vk_wr_alloc(sizeof(double) * e->fcap);
    e->exc_k = vk_wr_alloc(sizeof(int32_t) * e->fcap);
    e->exc = vk_wr_alloc(sizeof(float) * e->ccap * e->hop * 2);
    e->cond = vk_wr_alloc(sizeof(float) * e->ccap * 3 * H);
    e->cond_in = vk_wr_alloc(sizeof(float) * e->ctx_frames * e->n_features);
    e->cond_hid = vk_wr_alloc(sizeof(float) * model->cond_hidden);
    e->h = vk_wr_alloc(sizeof(float) * B * e->state_stride);
    e->hmax = vk_wr_alloc(sizeof(float) * B);
    e->hnew = vk_wr_alloc(sizeof(float) * B * e->state_stride);
    e->hid = vk_wr_alloc(sizeof(float) * B * e->state_stride);
    e->logits = vk_wr_alloc(sizeof(float) * B * e->logits_stride);
    e->xin = vk_wr_alloc(sizeof(float) * B * (e->n_in + 1));
    e->xu = vk_wr_alloc((size_t)B * e->xu_stride);
    e->acc = vk_wr_alloc(sizeof(int32_t) * B * e->acc_stride);
    e->acc_r = vk_wr_alloc(sizeof(int32_t) * B * e->acc_stride);
    e->xscale = vk_wr_alloc(sizeof(float) * B);
    e->xscale_r = vk_wr_alloc(sizeof(float) * B);
    e->exc_w0 = vk_wr_alloc(sizeof(float) * H);
    e->exc_w1 = vk_wr_alloc(sizeof(float) * H);
    e->hist_a = vk_wr_alloc(sizeof(int32_t) * hcap);
    e->hist_b = vk_wr_alloc(sizeof(int32_t) * hcap);
    e->hist_audio = vk_wr_alloc(sizeof(float) * hcap);
    e->mulaw_table = vk_wr_alloc(sizeof(float) * e->n_classes);
    e->in_t = vk_wr_alloc(sizeof(float) * e->n_in * 3 * H);
    e->voicing_fed = vk_wr_alloc(sizeof(float) * e->fcap);
    e->voicing_cond = vk_wr_alloc(sizeof(float) * e->ccap);
    if (model->predictor) {
        e->pred_setup = vk_wr_alloc(sizeof(vk_pred_setup));
        e->pred_fed = vk_wr_alloc(sizeof(vk_pred_frame) * e->fcap);
        e->pred_cond = vk_wr_alloc(sizeof(vk_pred_frame) * e->ccap);
        e->pred = vk_wr_alloc(sizeof(vk_pred_state));
        e->pred_thr = vk_wr_alloc(sizeof(float) * e->n_classes);
        if (!e->pred_setup || !e->pred_fed || !e->pred_cond || !e->pred || !e->pred_thr ||
            model->head != VK_HEAD_MULAW || B != 1 || e->n_features < 3 || e->n_features - 2 > VK_PRED_MAX_ENV ||
            vk_pred_setup_init(e->pred_setup, model->sample_rate, e->n_features - 2, model->preemphasis,
                               model->ltp_gain)) {
            vk_engine_destroy(e);
            return NULL;
        }
    }
    if ((e->n_excitation &&
         (e->n_excitation != 2 || !model->exc_out_w || e->n_features < 2 || model->sample_rate < 1)) ||
        !(model->preemphasis >= 0.0f && model->preemphasis <= 0.99f) || !e->exc_inc || !e->exc_v || !e->exc_k ||
        !e->exc || !e->mulaw_table || !e->in_t || !e->frames || !e->cond || !e->cond_in || !e->cond_hid || !e->h ||
        !e->hnew || !model->R.bias || /* the GRU adds it unconditionally */
        !e->voicing_fed || !e->voicing_cond || !(model->highpass_hz >= 0.0f && model->highpass_hz < 1000.0f) ||
        !(model->temperature_unvoiced >= 0.0f) || !(model->temperature_unvoiced <= 100.0f) ||
        model->O2.rows != e->n_classes ||
        (model->head == VK_HEAD_DUAL && model->O4.rows != 256) || /* one logit a class */
        !e->hmax || !e->hid || !e->logits || !e->xin || !e->xu || !e->acc || !e->xscale || !e->acc_r || !e->xscale_r ||
        !e->exc_w0 || !e->exc_w1 || !e->hist_a || !e->hist_b || !e->hist_audio) {
        vk_engine_destroy(e);
        return NULL;
    }
    vk_mulaw_table(e->n_classes, e->mulaw_table); /* double precision, then rounded: no libm in the sample loop */
    if (e->pred_thr) vk_pred_thresholds(e->n_classes, e->mulaw_table, e->pred_thr);
    for (int r = 0; e->n_excitation && r < H; r++) {
        e->exc_w0[r] = model->exc_out_w[2 * r];
        e->exc_w1[r] = model->exc_out_w[2 * r + 1];
    }
    for (int r = 0; r < 3 * H; r++)
        for (int i = 0; i < e->n_in; i++) e->in_t[(int64_t)i * 3 * H + r] = model->in_w[(int64_t)r * e->n_in + i];
    e->gshape.in_t = e->in_t;
    e->gshape.n_in = e->n_in;
    e->gshape.H = H;
    e->gshape.sub_bias_zero = 1;
    for (int64_t i = 0; i < (int64_t)B * 3 * H; i++) e->gshape.sub_bias_zero &= model->sub_bias[i] == 0.0f;
    for (int i = 0; i < GUMBEL_SIZE; i++) {
        double u = (i + 0.5) / GUMBEL_SIZE;
        e->gumbel[i] = (float)(-log(-log(u)));
    }
    vk_engine_set_level(e, level);
    e->dc_pole = (float)(1.0 - 2.0 * 3.14159265358979323846 * (double)model->highpass_hz /
                                   (double)(model->sample_rate > 0 ? model->sample_rate : 16000));
    e->latency = (int64_t)model->lookahead * e->hop + (int64_t)B * (B - 1) * e->horizon;
    vk_engine_reset(e, seed);
    return e;
}

void vk_engine_destroy(vk_engine *e)
{
    if (!e) return;
    void *bufs[] = {e->frames,      e->exc_inc,  e->exc_v,       e->exc_k,        e->exc,        e->cond,
                    e->cond_in,     e->cond_hid, e->h,           e->hnew,         e->hmax,       e->hid,
                    e->logits,      e->xin,      e->xu,          e->acc,          e->xscale,     e->acc_r,
                    e->xscale_r,    e->exc_w0,   e->exc_w1,      e->hist_a,       e->hist_b,     e->hist_audio,
                    e->mulaw_table, e->in_t,     e->voicing_fed, e->voicing_cond, e->pred_setup, e->pred_fed,
                    e->pred_cond,   e->pred,     e->pred_thr};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]);
    free(e);
}

void vk_engine_set_level(vk_engine *e, int level) { e->isa = *vk_isa_tables[level]; }

void vk_engine_set_temperature(vk_engine *e, float t)
{
    e->temperature = e->temperature_unvoiced = t > 0.0f ? t : 0.0f;
}

void vk_engine_reset(vk_engine *e, uint64_t seed)
{
    uint64_t s = seed;
    e->rng = splitmix64(&s) | 1u;
    e->temperature = e->m.temperature;
    e->temperature_unvoiced = e->m.temperature_unvoiced;
    if (e->pred) vk_pred_reset(e->pred);
    e->frames_fed = 0;
    e->finished = 0;
    e->cond_next = 0;
    e->exc_phase = 0.0;
    e->deemph = 0.0f;
    e->dc_out = 0.0f;
    memset(e->h, 0, sizeof(float) * e->n_subscale * e->state_stride);
    memset(e->hmax, 0, sizeof(float) * e->n_subscale);
    e->step = 0;
    e->frontier = 0;
    e->delivered = 0;
    e->pending_zeros = e->latency;
    e->underrun = 0;
}
