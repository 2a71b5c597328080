/* The live singer and host glue; see voice.h. Event times are absolute device samples
 * assigned when render() pops them; an event at model time tm changes the first frame
 * starting at or after tm + EVENT_DELAY model samples. Frames are generated only when
 * the engine needs them, and never past the current block (the engine's lookahead is
 * covered by its own latency), so the same events give the same samples whatever the
 * block sizes. */
#include "voice.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detmath.h"
#include "resample.h"

#define EVENT_DELAY 2    /* model samples; see above */
#define MAX_SEG (VK_MAX_ONSET + VK_MAX_CODA + 2)

/* Singing parameters (seconds, semitones). */
#define ENV_TAU 0.012        /* phoneme transitions */
#define VOICING_TAU 0.008
#define GLIDE_TAU 0.045      /* legato portamento */
#define GAIN_TAU 0.010
#define VIB_RATE 5.5         /* Hz */
#define VIB_DELAY 0.25
#define VIB_RAMP 0.35
#define VIB_DEPTH 0.25       /* semitones, natural vibrato after the delay */
#define VIB_MOD_DEPTH 0.75   /* semitones added at full mod wheel */
#define BEND_RANGE 2.0

struct vk_voice {
    vk_engine *eng;
    vk_resampler *rs;
    int in_rate, out_rate, hop, nf, n_env;
    int64_t lag; /* subscale lag of the engine, model samples */

    /* phone set (copied) */
    int n_ph, sil;
    float *env_table, *voicing_table;
    int32_t *frames_table;

    /* producer -> consumer ring */
    vk_voice_event q[VK_VOICE_QUEUE];
    uint32_t q_head, q_tail; /* head: next to pop (consumer), tail: next to push (producer) */
    int64_t dropped;

    /* popped, ordered by time */
    vk_voice_event pending[VK_VOICE_PENDING];
    int n_pending;

    int64_t dev_pos, frame_next;

    /* singer state */
    double f0_cur, f0_target, vib_phase, a_env, a_voicing, a_glide, a_gain;
    double bend, mod, expr, breath, velocity_gain, gain_ln_cur;
    int gliding, active;
    int64_t note_frames;
    int16_t seg_ph[MAX_SEG];
    int32_t seg_len[MAX_SEG]; /* frames; -1 = hold */
    int n_seg, seg_i, seg_t;
    float env_cur[VK_MAX_ENV];
    double voicing_cur;
    float frame[2 + VK_MAX_ENV];
};

/* ---------- construction ---------- */

vk_voice *vk_voice_create(const vk_model *model, const vk_phoneset *ph, int level, uint64_t seed,
                          int device_rate)
{
    if (!model || !ph || ph->n_env < 1 || ph->n_env > VK_MAX_ENV || model->n_features != 2 + ph->n_env ||
        ph->n_phonemes < 1 || ph->sil < 0 || ph->sil >= ph->n_phonemes || device_rate < 1)
        return NULL;
    vk_voice *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->in_rate = model->sample_rate;
    v->out_rate = device_rate;
    v->hop = model->hop;
    v->nf = model->n_features;
    v->n_env = ph->n_env;
    v->n_ph = ph->n_phonemes;
    v->sil = ph->sil;
    v->lag = (int64_t)model->subscale * (model->subscale - 1) * model->horizon;
    v->env_table = malloc(sizeof(float) * (size_t)ph->n_phonemes * ph->n_env);
    v->voicing_table = malloc(sizeof(float) * (size_t)ph->n_phonemes);
    v->frames_table = malloc(sizeof(int32_t) * (size_t)ph->n_phonemes);
    /* the engine needs only a few frames queued: they are made just in time */
    v->eng = vk_engine_create(model, level, seed, 64);
    v->rs = vk_resampler_create(model->sample_rate, device_rate);
    if (!v->env_table || !v->voicing_table || !v->frames_table || !v->eng || !v->rs) {
        vk_voice_destroy(v);
        return NULL;
    }
    for (int64_t i = 0; i < (int64_t)ph->n_phonemes * ph->n_env; i++) {
        float x = ph->envelopes[i];
        v->env_table[i] = x == x ? (x > 50.0f ? 50.0f : (x < -50.0f ? -50.0f : x)) : -23.0f;
    }
    for (int i = 0; i < ph->n_phonemes; i++) {
        float x = ph->voicing[i];
        v->voicing_table[i] = x == x ? (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)) : 0.0f;
        int32_t f = ph->frames[i];
        v->frames_table[i] = f < 1 ? 1 : (f > 1000 ? 1000 : f);
    }
    const double frame_s = (double)v->hop / v->in_rate;
    v->a_env = 1.0 - exp(-frame_s / ENV_TAU);
    v->a_voicing = 1.0 - exp(-frame_s / VOICING_TAU);
    v->a_glide = 1.0 - exp(-frame_s / GLIDE_TAU);
    v->a_gain = 1.0 - exp(-frame_s / GAIN_TAU);
    vk_voice_reset(v, seed);
    return v;
}

void vk_voice_destroy(vk_voice *v)
{
    if (!v) return;
    vk_engine_destroy(v->eng);
    vk_resampler_destroy(v->rs);
    free(v->env_table);
    free(v->voicing_table);
    free(v->frames_table);
    free(v);
}

static void hold_silence(vk_voice *v)
{
    v->seg_ph[0] = (int16_t)v->sil;
    v->seg_len[0] = -1;
    v->n_seg = 1;
    v->seg_i = 0;
    v->seg_t = 0;
}

void vk_voice_reset(vk_voice *v, uint64_t seed)
{
    vk_engine_reset(v->eng, seed);
    vk_resampler_reset(v->rs);
    __atomic_store_n(&v->q_head, __atomic_load_n(&v->q_tail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    v->n_pending = 0;
    v->dev_pos = 0;
    v->frame_next = 0;
    v->f0_cur = v->f0_target = 60.0;
    v->vib_phase = 0.0;
    v->bend = 0.0;
    v->mod = 0.0;
    v->expr = v->breath = 1.0;
    v->velocity_gain = 1.0;
    v->gain_ln_cur = 0.0;
    v->gliding = 0;
    v->active = 0;
    v->note_frames = 0;
    hold_silence(v);
    memcpy(v->env_cur, v->env_table + (int64_t)v->sil * v->n_env, sizeof(float) * v->n_env);
    v->voicing_cur = 0.0;
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
        ev.time = v->dev_pos + (ev.offset > 0 ? ev.offset : 0);
        if (v->n_pending == VK_VOICE_PENDING) {
            __atomic_fetch_add(&v->dropped, 1, __ATOMIC_RELAXED);
            continue;
        }
        /* insert after every event with time <= ev.time: equal times keep push order */
        int k = v->n_pending;
        while (k > 0 && v->pending[k - 1].time > ev.time) { v->pending[k] = v->pending[k - 1]; k--; }
        v->pending[k] = ev;
        v->n_pending++;
    }
    __atomic_store_n(&v->q_head, head, __ATOMIC_RELEASE);
}

static int clamp_ph(const vk_voice *v, int p) { return p >= 0 && p < v->n_ph ? p : v->sil; }

static double finite_or(double x, double fallback) { return x == x && fabs(x) < 1e30 ? x : fallback; }

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

static void apply_event(vk_voice *v, const vk_voice_event *ev)
{
    switch (ev->type) {
    case VK_EV_NOTE: {
        v->f0_target = clampd(finite_or(ev->note, 60.0), 0.0, 127.0);
        if (!v->gliding || v->active == 0) v->f0_cur = v->f0_target;
        v->gliding = 0;
        double vel = clampd(finite_or(ev->value, 100.0), 1.0, 127.0);
        v->velocity_gain = pow(vel / 100.0, 1.5);
        v->note_frames = 0;
        int n = 0;
        int no = ev->n_onset < 0 ? 0 : (ev->n_onset > VK_MAX_ONSET ? VK_MAX_ONSET : ev->n_onset);
        for (int i = 0; i < no; i++) {
            int p = clamp_ph(v, ev->onset[i]);
            int32_t len = v->frames_table[p];
            v->seg_ph[n] = (int16_t)p;
            v->seg_len[n++] = len < 2 ? 2 : (len > 24 ? 24 : len);
        }
        v->seg_ph[n] = (int16_t)clamp_ph(v, ev->nucleus);
        v->seg_len[n++] = -1;
        v->n_seg = n;
        v->seg_i = 0;
        v->seg_t = 0;
        v->active = 1;
        break;
    }
    case VK_EV_GLIDE:
        v->f0_target = clampd(finite_or(ev->note, 60.0), 0.0, 127.0);
        v->gliding = 1;
        break;
    case VK_EV_RELEASE: {
        int n = 0;
        int nc = ev->n_coda < 0 ? 0 : (ev->n_coda > VK_MAX_CODA ? VK_MAX_CODA : ev->n_coda);
        for (int i = 0; i < nc; i++) {
            int p = clamp_ph(v, ev->coda[i]);
            int32_t len = v->frames_table[p];
            v->seg_ph[n] = (int16_t)p;
            v->seg_len[n++] = len < 2 ? 2 : (len > 24 ? 24 : len);
        }
        v->seg_ph[n] = (int16_t)v->sil;
        v->seg_len[n++] = -1;
        v->n_seg = n;
        v->seg_i = 0;
        v->seg_t = 0;
        v->active = 2;
        v->gliding = 0;
        break;
    }
    case VK_EV_BEND:
        v->bend = clampd(finite_or(ev->value, 0.0), -1.0, 1.0);
        break;
    case VK_EV_CC: {
        double x = clampd(finite_or(ev->value, 0.0), 0.0, 127.0);
        if (ev->cc == 1) v->mod = x / 127.0;
        else if (ev->cc == 2) v->breath = x / 127.0;
        else if (ev->cc == 11) v->expr = x / 127.0;
        else if (ev->cc == 120 || ev->cc == 123) { hold_silence(v); v->active = 0; v->gliding = 0; }
        break;
    }
    case VK_EV_PANIC:
        hold_silence(v);
        v->active = 0;
        v->gliding = 0;
        v->bend = 0.0;
        break;
    default:
        break;
    }
}

/* ---------- the live singer: one feature frame ---------- */

static void make_frame(vk_voice *v)
{
    const int64_t f = v->frame_next;
    /* events whose time has come for this frame (model time + delay <= frame start) */
    int used = 0;
    while (used < v->n_pending) {
        const int64_t tm = v->pending[used].time * v->in_rate / v->out_rate;
        if (tm + EVENT_DELAY > f * v->hop) break;
        apply_event(v, &v->pending[used]);
        used++;
    }
    if (used) {
        memmove(v->pending, v->pending + used, sizeof(vk_voice_event) * (size_t)(v->n_pending - used));
        v->n_pending -= used;
    }

    /* phoneme plan */
    int p = v->seg_ph[v->seg_i];
    if (v->seg_len[v->seg_i] >= 0 && ++v->seg_t >= v->seg_len[v->seg_i] && v->seg_i + 1 < v->n_seg) {
        v->seg_i++;
        v->seg_t = 0;
    }
    if (v->active == 2 && v->seg_ph[v->seg_i] == v->sil && v->seg_len[v->seg_i] < 0) v->active = 0;

    const float *target = v->env_table + (int64_t)p * v->n_env;
    const float a = (float)v->a_env;
    for (int k = 0; k < v->n_env; k++) v->env_cur[k] = v->env_cur[k] + (target[k] - v->env_cur[k]) * a;
    v->voicing_cur += (v->voicing_table[p] - v->voicing_cur) * v->a_voicing;

    /* pitch: glide, bend, vibrato */
    if (v->gliding) v->f0_cur += (v->f0_target - v->f0_cur) * v->a_glide;
    else v->f0_cur = v->f0_target;
    const double t_note = (double)v->note_frames * v->hop / v->in_rate;
    double ramp = (t_note - VIB_DELAY) / VIB_RAMP;
    ramp = clampd(ramp, 0.0, 1.0);
    const double depth = VIB_DEPTH * ramp + VIB_MOD_DEPTH * v->mod;
    const double vib = depth * vk_sinpi(2.0 * v->vib_phase);
    v->vib_phase += VIB_RATE * v->hop / v->in_rate;
    v->vib_phase -= floor(v->vib_phase);
    v->note_frames++;

    /* dynamics: a level offset on every band (ln power = 2 ln amplitude) */
    const double g = v->velocity_gain * v->expr * v->breath;
    const double gain_ln = 2.0 * log(g > 1e-4 ? g : 1e-4);
    v->gain_ln_cur += (gain_ln - v->gain_ln_cur) * v->a_gain;

    v->frame[0] = (float)(v->f0_cur + BEND_RANGE * v->bend + vib);
    v->frame[1] = (float)v->voicing_cur;
    for (int k = 0; k < v->n_env; k++) v->frame[2 + k] = v->env_cur[k] + (float)v->gain_ln_cur;
    vk_engine_feed(v->eng, v->frame, 1);
    v->frame_next++;
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
    double model = EVENT_DELAY + v->hop + (double)v->lag;
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
