/* The stream: frames in, steps, samples out (latency silence, de-emphasis, DC blocker,
 * underruns counted). */
#include <string.h>

#include "wavernn_internal.h"

/* ---------- streaming ---------- */

static int64_t oldest_frame_needed(const vk_engine *e)
{
    /* sub-tensor 0 leads; conditioning of frames before cond_next is cached, so raw
     * frames older than its context window are no longer read. */
    return e->cond_next - e->m.ctx_before;
}

int vk_engine_feed(vk_engine *e, const float *frames, int n)
{
    if (e->finished || n <= 0) return 0;
    int64_t room = e->fcap - (e->frames_fed - oldest_frame_needed(e));
    if (room < 0) room = 0;
    if (n > room) n = (int)room;
    for (int i = 0; i < n; i++) {
        int64_t f = e->frames_fed + i;
        const float *raw = frames + (int64_t)i * e->n_features;
        vk_wr_normalize_frame(e, raw, e->frames + (f % e->fcap) * e->n_features);
        e->voicing_fed[f % e->fcap] = vk_wr_raw_voicing(e, raw);
        if (e->pred) vk_pred_frame_from_features(e->pred_setup, raw, &e->pred_fed[f % e->fcap]);
        if (e->n_excitation)
            vk_wr_exc_params(e, frames + (int64_t)i * e->n_features, &e->exc_inc[f % e->fcap], &e->exc_k[f % e->fcap],
                             &e->exc_v[f % e->fcap]);
    }
    e->frames_fed += n;
    return n;
}

void vk_engine_finish(vk_engine *e) { e->finished = 1; }

/* Frame whose conditioning the step needs for sub-tensor 0 (the leader). */
int vk_wr_step_ready(const vk_engine *e, int64_t t)
{
    if (e->frames_fed == 0) return 0;
    int64_t f0 = (t * e->n_subscale) / e->hop;
    if (e->finished) return 1;
    return f0 + e->m.lookahead < e->frames_fed;
}

static void prev_sample(const vk_engine *e, int64_t i, int *a, int *b, float *audio)
{
    if (i < 0) {
        if (e->m.head == VK_HEAD_DUAL) {
            *a = 128;
            *b = 0;
        } else {
            *a = e->n_classes / 2;
            *b = 0;
        }
        *audio = 0.0f;
        return;
    }
    *a = e->hist_a[i & e->hmask];
    *b = e->hist_b[i & e->hmask];
    *audio = e->hist_audio[i & e->hmask];
}

/* A predictor preset's inputs (docs/model.md): the classes of the last sample s and of
 * the prediction p, and the last remainder class. */
static void pred_inputs(const vk_engine *e, float p, float *x)
{
    const float s_prev = e->pred->s[(e->pred->pos - 1) & (VK_PRED_RING - 1)]; /* 0 before the start */
    x[0] = class_input(vk_pred_class(e->pred_thr, e->n_classes, s_prev), e->n_classes);
    x[1] = class_input(vk_pred_class(e->pred_thr, e->n_classes, p), e->n_classes);
    x[2] = class_input(e->pred->pos ? e->hist_a[(e->pred->pos - 1) & e->hmask] : e->n_classes / 2, e->n_classes);
}

/* Lanes of every sub-tensor active in engine e's next step, with their inputs set and
 * conditioning computed. Returns the lane count. */
int vk_wr_prepare_lanes(vk_engine *e, vk_lane *ln)
{
    const int B = e->n_subscale, F = e->horizon, H = e->n_hidden, n_in = e->n_in;
    const int64_t t = e->step;
    int nb = F > 0 ? (int)(t / F) + 1 : B;
    if (nb > B) nb = B;
    vk_wr_compute_cond_upto(e, (t * B) / e->hop);
    for (int b = 0; b < nb; b++) {
        const int64_t j = t - (int64_t)b * F;
        const int64_t i = j * B + b;
        ln[b].e = e;
        ln[b].b = b;
        ln[b].i = i;
        ln[b].cond = e->cond + ((i / e->hop) % e->ccap) * 3 * H;
        float *x = e->xin + b * (n_in + 1);
        int pa, pb;
        float pa_audio;
        prev_sample(e, i - B, &pa, &pb, &pa_audio);
        ln[b].temperature = frame_temperature(e, e->voicing_cond[(i / e->hop) % e->ccap]);
        if (e->pred) { /* B = 1: i is the next sample of the predictor's state */
            const vk_pred_frame *fr = &e->pred_cond[(i / e->hop) % e->ccap];
            ln[b].stp = vk_pred_stp(fr, e->pred);
            ln[b].pred = ln[b].stp + vk_pred_ltp(fr, e->pred);
            pred_inputs(e, ln[b].pred, x);
        } else {
            if (e->m.head == VK_HEAD_DUAL) {
                x[0] = byte_input(pa);
                x[1] = byte_input(pb);
            } else {
                x[0] = class_input(pa, e->n_classes);
                x[1] = 0.0f;
            }
            x[2] = 0.0f;
        }
        for (int k = 1; k <= F; k++) {
            int64_t ci = (j + k - 1) * B + b - 1;
            x[2 + k] = (b == 0 || ci < 0) ? 0.0f : e->hist_audio[ci & e->hmask];
        }
        if (e->n_excitation) {
            const float *ev = exc_of(e, i);
            x[3 + F] = ev[0];
            x[4 + F] = ev[1];
        }
    }
    return nb;
}

/* The new states become the states of the lanes 0..nl-1: a pointer swap when every
 * sub-tensor stepped (no copy), else a copy (lanes past nl keep their state). */
void vk_wr_commit_states(vk_engine *e, int nl)
{
    if (nl == e->n_subscale) {
        float *t = e->h;
        e->h = e->hnew;
        e->hnew = t;
    } else {
        memcpy(e->h, e->hnew, sizeof(float) * nl * e->state_stride);
    }
}

/* Store the lanes' samples in e's history and move e to its next step. */
void vk_wr_finish_lanes(vk_engine *e, const vk_lane *ln, int nl)
{
    for (int k = 0; k < nl; k++) {
        const int64_t i = ln[k].i;
        e->hist_a[i & e->hmask] = ln[k].cls_a;
        e->hist_b[i & e->hmask] = ln[k].cls_b;
        if (e->pred)
            e->hist_audio[i & e->hmask] = vk_pred_push(e->pred, ln[k].stp, ln[k].pred, e->mulaw_table[ln[k].cls_a]);
        else
            e->hist_audio[i & e->hmask] =
                e->m.head == VK_HEAD_DUAL ? dual_audio(ln[k].cls_a, ln[k].cls_b) : e->mulaw_table[ln[k].cls_a];
    }
    vk_wr_commit_states(e, nl);
    for (int k = 0; k < nl; k++) e->hmax[ln[k].b] = ln[k].hmax_a > ln[k].hmax_b ? ln[k].hmax_a : ln[k].hmax_b;
    e->step++;
    int64_t lag_pos = e->step - (int64_t)(e->n_subscale - 1) * e->horizon; /* positions done by every sub-tensor */
    if (lag_pos > 0) e->frontier = lag_pos * e->n_subscale;
}

/* One subscale step: every active sub-tensor generates one sample. */
void vk_wr_run_step(vk_engine *e)
{
    vk_lane ln[VK_MAX_BATCH];
    const vk_scratch s = {e->xu, e->acc, e->acc_r, e->xscale, e->xscale_r};
    int nl = vk_wr_prepare_lanes(e, ln);
    vk_wr_step_lanes(e, ln, nl, &s, NULL, NULL, NULL, NULL);
    vk_wr_finish_lanes(e, ln, nl);
}

int64_t vk_engine_ready(const vk_engine *e)
{
    /* Generated and pending samples, plus what the queued frames allow without waiting. */
    int64_t have = e->pending_zeros + (e->frontier - e->delivered);
    if (e->frames_fed == 0) return have;
    if (e->finished) return INT64_MAX / 4;
    if (e->frames_fed - e->m.lookahead <= 0) return have;
    int64_t last_step = ((e->frames_fed - e->m.lookahead) * e->hop - 1) / e->n_subscale; /* last ready step */
    int64_t lag_pos = last_step + 1 - (int64_t)(e->n_subscale - 1) * e->horizon;
    int64_t frontier = lag_pos > 0 ? lag_pos * e->n_subscale : 0;
    if (frontier < e->frontier) frontier = e->frontier;
    return e->pending_zeros + frontier - e->delivered;
}

/* The network models pre-emphasised audio when the preset says so: undo it on the way
 * out, y = x + a y[-1] (one multiply, one add; its state is bounded by 1/(1-a)), block
 * DC, and clamp what leaves (docs/model.md). */
static inline float deemphasize(vk_engine *e, float x)
{
    if (e->m.preemphasis == 0.0f) return x;
    const float y = x + e->m.preemphasis * e->deemph;
    /* The de-emphasis has a gain of 1/(1-a) at DC, so a small bias of the sampled classes
     * would become rumble and eat headroom: a DC blocker at 20 Hz follows it,
     * z = y + (r z[-1] - y[-1]). */
    const float z = y + (e->dc_pole * e->dc_out - e->deemph);
    e->deemph = y;
    e->dc_out = z;
    return z > 1.0f ? 1.0f : (z < -1.0f ? -1.0f : z);
}

void vk_engine_render(vk_engine *e, float *out, int n)
{
    int k = 0;
    while (k < n && e->pending_zeros > 0) {
        out[k++] = 0.0f;
        e->pending_zeros--;
    }
    while (k < n) {
        if (e->delivered < e->frontier) {
            out[k++] = deemphasize(e, e->hist_audio[e->delivered & e->hmask]);
            e->delivered++;
            continue;
        }
        if (!vk_wr_step_ready(e, e->step)) break;
        vk_wr_run_step(e);
    }
    if (k < n) {
        e->underrun += n - k;
        memset(out + k, 0, sizeof(float) * (n - k));
    }
}

int64_t vk_engine_latency(const vk_engine *e) { return e->latency; }
int64_t vk_engine_underrun_samples(const vk_engine *e) { return e->underrun; }
int64_t vk_engine_generated(const vk_engine *e) { return e->frontier; }
