/* The live voice: host glue around the singer (singer.h) and the engine. Event times are
 * absolute device samples assigned when render() pops them, converted to the model's clock
 * (floor(device sample * model rate / device rate)) and handed to the singer, which applies
 * them at its frame boundaries (VK_EVENT_DELAY). Frames are generated only when the engine
 * needs them, and never past the current block (the engine's lookahead is covered by its
 * own latency), so the same events give the same samples whatever the block sizes. */
#include "voice.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resample.h"

struct vk_voice {
    vk_engine *eng;
    vk_resampler *rs;
    vk_singer *singer;
    int in_rate, out_rate, hop, nf, n_env;
    int64_t lag; /* subscale lag of the engine, model samples */

    /* producer -> consumer ring */
    vk_voice_event q[VK_VOICE_QUEUE];
    uint32_t q_head, q_tail; /* head: next to pop (consumer), tail: next to push (producer) */
    int64_t dropped;

    int64_t dev_pos;
    float frame[2 + VK_MAX_ENV];
};

/* ---------- construction ---------- */

vk_voice *vk_voice_create(const vk_model *model, const vk_phoneset *ph, const vk_singer_params *params, int level,
                          uint64_t seed, int device_rate)
{
    if (!model || !ph || !params || ph->n_env < 1 || ph->n_env > VK_MAX_ENV || model->n_features != 2 + ph->n_env ||
        device_rate < 1)
        return NULL;
    vk_voice *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->in_rate = model->sample_rate;
    v->out_rate = device_rate;
    v->hop = model->hop;
    v->nf = model->n_features;
    v->n_env = ph->n_env;
    v->lag = (int64_t)model->subscale * (model->subscale - 1) * model->horizon;
    /* the engine needs only a few frames queued: they are made just in time */
    v->eng = vk_engine_create(model, level, seed, 64);
    v->rs = vk_resampler_create(model->sample_rate, device_rate);
    v->singer = vk_singer_create(ph, params, model->hop, model->sample_rate);
    if (!v->eng || !v->rs || !v->singer) {
        vk_voice_destroy(v);
        return NULL;
    }
    vk_voice_reset(v, seed);
    return v;
}

void vk_voice_destroy(vk_voice *v)
{
    if (!v) return;
    vk_engine_destroy(v->eng);
    vk_resampler_destroy(v->rs);
    vk_singer_destroy(v->singer);
    free(v);
}

void vk_voice_reset(vk_voice *v, uint64_t seed)
{
    vk_engine_reset(v->eng, seed);
    vk_resampler_reset(v->rs);
    vk_singer_reset(v->singer);
    __atomic_store_n(&v->q_head, __atomic_load_n(&v->q_tail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    v->dev_pos = 0;
    memset(v->frame, 0, sizeof(v->frame));
}

void vk_voice_set_level(vk_voice *v, int level) { vk_engine_set_level(v->eng, level); }

/* ---------- events ---------- */

int vk_voice_push(vk_voice *v, const vk_voice_event *ev)
{
    uint32_t tail = v->q_tail; /* only the producer writes it */
    uint32_t head = __atomic_load_n(&v->q_head, __ATOMIC_ACQUIRE);
    if (tail - head >= VK_VOICE_QUEUE) {
        __atomic_fetch_add(&v->dropped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    v->q[tail & (VK_VOICE_QUEUE - 1)] = *ev;
    __atomic_store_n(&v->q_tail, tail + 1, __ATOMIC_RELEASE);
    return 1;
}

static void pop_events(vk_voice *v)
{
    uint32_t head = v->q_head;
    uint32_t tail = __atomic_load_n(&v->q_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) {
        vk_voice_event ev = v->q[head & (VK_VOICE_QUEUE - 1)];
        const int64_t dev = v->dev_pos + (ev.offset > 0 ? ev.offset : 0);
        ev.time = dev * v->in_rate / v->out_rate;
        if (!vk_singer_push(v->singer, &ev)) __atomic_fetch_add(&v->dropped, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&v->q_head, head, __ATOMIC_RELEASE);
}

static void make_frame(vk_voice *v)
{
    vk_singer_frame(v->singer, v->frame);
    vk_engine_feed(v->eng, v->frame, 1);
}

static void model_source(void *ctx, float *buf, int n)
{
    vk_voice *v = ctx;
    /* In pieces of at most 16 frames, so the engine's frame queue never fills; frames
     * are made just in time for each piece. */
    const int piece = 16 * v->hop;
    for (int done = 0; done < n;) {
        int k = n - done < piece ? n - done : piece;
        for (int guard = 0; vk_engine_ready(v->eng) < k && guard < 24; guard++) make_frame(v);
        vk_engine_render(v->eng, buf + done, k);
        done += k;
    }
}

/* The device gets finite samples in [-1, 1] whatever happened upstream. */
static void clamp_audio(float *out, int n)
{
    for (int i = 0; i < n; i++) {
        float x = out[i];
        out[i] = x == x ? (x > 1.0f ? 1.0f : (x < -1.0f ? -1.0f : x)) : 0.0f;
    }
}

void vk_voice_render(vk_voice *v, float *out, int n)
{
    if (n <= 0) return;
    pop_events(v);
    vk_resampler_pull(v->rs, out, n, model_source, v);
    clamp_audio(out, n);
    v->dev_pos += n;
}

int64_t vk_voice_latency(const vk_voice *v)
{
    /* event delay + one frame of quantisation + the engine's subscale lag, then the filter */
    double model = VK_EVENT_DELAY + v->hop + (double)v->lag;
    return (int64_t)ceil(model * v->out_rate / v->in_rate + vk_resampler_delay(v->rs));
}

int64_t vk_voice_dropped(const vk_voice *v) { return __atomic_load_n(&v->dropped, __ATOMIC_RELAXED); }
int64_t vk_voice_underrun(const vk_voice *v) { return vk_engine_underrun_samples(v->eng); }
int64_t vk_voice_position(const vk_voice *v) { return v->dev_pos; }
const float *vk_voice_last_frame(const vk_voice *v) { return v->frame; }

/* ---------- voices on one model, rendered together ---------- */

/* Model samples each voice generates ahead per round: well inside the engine's history
 * ring, so nothing generated is overwritten before the resampler reads it. */
#define GROUP_AHEAD 64

int vk_voice_same_model(const vk_voice *a, const vk_voice *b) { return vk_engine_same_model(a->eng, b->eng); }

vk_batch *vk_voice_batch_create(const vk_voice *like) { return vk_batch_create(like->eng); }

/* Make the frames and samples that pulling m outputs will read, for every voice, with
 * the engines stepping together. Frames follow the rule of model_source (as few as
 * cover the samples pulled within this render call), so the samples are those a voice
 * rendered alone would give. */
static void generate_group(vk_batch *g, vk_voice *const *vs, int nv, int m)
{
    int64_t need[VK_MAX_BATCH];
    vk_engine *es[VK_MAX_BATCH];
    for (int k = 0; k < nv; k++) {
        need[k] = vk_resampler_input_needed(vs[k]->rs, m);
        for (int guard = 0; vk_engine_ready(vs[k]->eng) < need[k] && guard < 24; guard++) make_frame(vs[k]);
    }
    for (;;) {
        int c = 0;
        for (int k = 0; k < nv; k++)
            if (vk_engine_buffered(vs[k]->eng) < need[k]) es[c++] = vs[k]->eng;
        if (c == 0 || vk_engine_step_group(g, es, c) == 0) break; /* a starved engine underruns in render */
    }
}

void vk_voice_render_group(vk_batch *g, vk_voice *const *vs, int nv, float *const *outs, int n)
{
    if (n <= 0 || nv <= 0) return;
    if (nv > VK_MAX_BATCH) nv = VK_MAX_BATCH;
    for (int k = 0; k < nv; k++) pop_events(vs[k]);
    int slice = n;
    for (int k = 0; k < nv; k++) {
        int64_t s = (int64_t)GROUP_AHEAD * vs[k]->out_rate / vs[k]->in_rate;
        if (s < 1) s = 1;
        if (s < slice) slice = (int)s;
    }
    for (int done = 0; done < n; done += slice) {
        const int m = n - done < slice ? n - done : slice;
        generate_group(g, vs, nv, m);
        for (int k = 0; k < nv; k++) vk_resampler_pull(vs[k]->rs, outs[k] + done, m, model_source, vs[k]);
    }
    for (int k = 0; k < nv; k++) {
        clamp_audio(outs[k], n);
        vs[k]->dev_pos += n;
    }
}
