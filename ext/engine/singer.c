/* The singer; see singer.h. Every choice below is made once for render and live. */
#include "singer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detmath.h"

#define MAX_SEG (2 * (VK_MAX_ONSET + VK_MAX_CODA) + 2)

struct vk_singer {
    vk_singer_params p;
    int hop, sample_rate, n_env, n_ph, sil;
    float *env_table, *voicing_table;
    int32_t *frames_table;
    /* per-frame smoothing factors, 1 - exp(-frame / tau) */
    double a_env, a_voicing, a_glide, a_gain, frame_s;

    vk_voice_event pending[VK_SINGER_PENDING];
    int n_pending;
    int64_t frame_next;

    /* state */
    double f0_cur, f0_target, vib_phase, vib_amount, a_vib_release;
    double bend, bend_range, mod, expr, breath, velocity_db, gain_ln_cur;
    int held, gliding, rpn_msb, rpn_lsb;
    int64_t note_frames, release_left, release_frame;
    int16_t seg_ph[MAX_SEG];
    int32_t seg_len[MAX_SEG]; /* frames; -1 = hold */
    int n_seg, seg_i, seg_t;
    float env_cur[VK_MAX_ENV];
    double voicing_cur;
};

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
static double finite_or(double x, double fallback) { return x == x && fabs(x) < 1e30 ? x : fallback; }
static double smoothing(double frame_s, double tau) { return tau > 0.0 ? 1.0 - exp(-frame_s / tau) : 1.0; }

vk_singer *vk_singer_create(const vk_phoneset *ph, const vk_singer_params *p, int hop, int sample_rate)
{
    if (!ph || !p || ph->n_env < 1 || ph->n_env > VK_MAX_ENV || ph->n_phonemes < 1 || ph->sil < 0 ||
        ph->sil >= ph->n_phonemes || hop < 1 || sample_rate < 1)
        return NULL;
    vk_singer *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->p = *p;
    s->hop = hop;
    s->sample_rate = sample_rate;
    s->n_env = ph->n_env;
    s->n_ph = ph->n_phonemes;
    s->sil = ph->sil;
    s->env_table = malloc(sizeof(float) * (size_t)ph->n_phonemes * ph->n_env);
    s->voicing_table = malloc(sizeof(float) * (size_t)ph->n_phonemes);
    s->frames_table = malloc(sizeof(int32_t) * (size_t)ph->n_phonemes);
    if (!s->env_table || !s->voicing_table || !s->frames_table) {
        vk_singer_destroy(s);
        return NULL;
    }
    for (int64_t i = 0; i < (int64_t)ph->n_phonemes * ph->n_env; i++) {
        float x = ph->envelopes[i];
        s->env_table[i] = x == x ? (x > 50.0f ? 50.0f : (x < -50.0f ? -50.0f : x)) : -23.0f;
    }
    for (int i = 0; i < ph->n_phonemes; i++) {
        float x = ph->voicing[i];
        s->voicing_table[i] = x == x ? (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)) : 0.0f;
        int32_t f = ph->frames[i];
        s->frames_table[i] = f < 1 ? 1 : (f > 1000 ? 1000 : f);
    }
    s->frame_s = (double)hop / sample_rate;
    s->a_env = smoothing(s->frame_s, p->transition_tau);
    s->a_voicing = smoothing(s->frame_s, p->voicing_tau);
    s->a_glide = smoothing(s->frame_s, p->portamento_tau);
    s->a_gain = smoothing(s->frame_s, p->gain_tau);
    s->a_vib_release = p->vibrato_release > 0.0 ? s->frame_s / p->vibrato_release : 1.0;
    vk_singer_reset(s);
    return s;
}

void vk_singer_destroy(vk_singer *s)
{
    if (!s) return;
    free(s->env_table);
    free(s->voicing_table);
    free(s->frames_table);
    free(s);
}

static void hold_silence(vk_singer *s)
{
    s->seg_ph[0] = (int16_t)s->sil;
    s->seg_len[0] = -1;
    s->n_seg = 1;
    s->seg_i = 0;
    s->seg_t = 0;
}

void vk_singer_reset(vk_singer *s)
{
    s->n_pending = 0;
    s->frame_next = 0;
    s->f0_cur = s->f0_target = 60.0;
    s->vib_phase = 0.0;
    s->vib_amount = 0.0;
    s->bend = 0.0;
    s->bend_range = s->p.bend_range;
    s->rpn_msb = s->rpn_lsb = 127;
    s->mod = 0.0;
    s->expr = s->breath = 127.0;
    s->velocity_db = 0.0;
    s->gain_ln_cur = 0.0;
    s->held = 0;
    s->gliding = 0;
    s->note_frames = 0;
    s->release_left = 0;
    s->release_frame = -1;
    hold_silence(s);
    memcpy(s->env_cur, s->env_table + (int64_t)s->sil * s->n_env, sizeof(float) * s->n_env);
    s->voicing_cur = 0.0;
}

int vk_singer_push(vk_singer *s, const vk_voice_event *ev)
{
    if (s->n_pending == VK_SINGER_PENDING) return 0;
    /* after every command with time <= ev->time: equal times keep push order */
    int k = s->n_pending;
    while (k > 0 && s->pending[k - 1].time > ev->time) {
        s->pending[k] = s->pending[k - 1];
        k--;
    }
    s->pending[k] = *ev;
    s->n_pending++;
    return 1;
}

int64_t vk_singer_frame_index(const vk_singer *s) { return s->frame_next; }
int vk_singer_n_pending(const vk_singer *s) { return s->n_pending; }
int vk_singer_free(const vk_singer *s) { return !s->held && s->release_left == 0; }

static int clamp_ph(const vk_singer *s, int p) { return p >= 0 && p < s->n_ph ? p : s->sil; }

/* A new phoneme plan: consonants already under way (a coda being sung, or an onset started
 * early) are never cut; they finish first, then the new consonants, then `hold` held.
 * Returns the frames of consonants in the plan. */
static int64_t plan(vk_singer *s, const int16_t *cons, int n_cons, int hold)
{
    int16_t ph[MAX_SEG];
    int32_t len[MAX_SEG];
    int n = 0;
    int64_t total = 0;
    for (int i = s->seg_i; i < s->n_seg && n < MAX_SEG - 1; i++) {
        if (s->seg_len[i] < 0) break;
        int32_t left = s->seg_len[i] - (i == s->seg_i ? s->seg_t : 0);
        if (left <= 0) continue;
        ph[n] = s->seg_ph[i];
        len[n++] = left;
        total += left;
    }
    for (int i = 0; i < n_cons && n < MAX_SEG - 1; i++) {
        int p = clamp_ph(s, cons[i]);
        ph[n] = (int16_t)p;
        len[n++] = s->frames_table[p];
        total += s->frames_table[p];
    }
    ph[n] = (int16_t)clamp_ph(s, hold);
    len[n++] = -1;
    memcpy(s->seg_ph, ph, sizeof(int16_t) * n);
    memcpy(s->seg_len, len, sizeof(int32_t) * n);
    s->n_seg = n;
    s->seg_i = 0;
    s->seg_t = 0;
    return total;
}

static int n_of(int n, int max) { return n < 0 ? 0 : (n > max ? max : n); }

static void apply(vk_singer *s, const vk_voice_event *ev, int64_t frame)
{
    switch (ev->type) {
        case VK_EV_NOTE: {
            s->f0_target = clampd(finite_or(ev->note, 60.0), 0.0, 127.0);
            /* A note that follows a held one, or starts in the frame the last one was released
         * (touching notes in a file, a key released as the next is pressed), is joined to
         * it: the pitch glides. Otherwise (even during the last coda) it starts on pitch.
         * The rule looks only at note timing, never at the phonemes, so render's early
         * consonants cannot change the pitch. */
            s->gliding = s->held || s->release_frame == frame;
            if (!s->gliding) s->f0_cur = s->f0_target;
            double vel = clampd(finite_or(ev->value, 100.0), 1.0, 127.0);
            s->velocity_db = s->p.velocity_db * log10(vel / 100.0);
            s->note_frames = 0;
            s->vib_amount = 1.0;
            s->held = 1;
            s->release_left = 0;
            plan(s, ev->onset, n_of(ev->n_onset, VK_MAX_ONSET), ev->nucleus);
            break;
        }
        case VK_EV_ONSET: plan(s, ev->onset, n_of(ev->n_onset, VK_MAX_ONSET), ev->nucleus); break;
        case VK_EV_GLIDE:
            s->f0_target = clampd(finite_or(ev->note, 60.0), 0.0, 127.0);
            s->gliding = 1;
            break;
        case VK_EV_RELEASE:
            s->release_left = 1 + plan(s, ev->coda, n_of(ev->n_coda, VK_MAX_CODA), s->sil);
            s->release_frame = frame;
            s->held = 0;
            break;
        case VK_EV_BEND: s->bend = clampd(finite_or(ev->value, 0.0), -1.0, 1.0); break;
        case VK_EV_CC: {
            double x = clampd(finite_or(ev->value, 0.0), 0.0, 127.0);
            if (ev->cc == 1)
                s->mod = x / 127.0;
            else if (ev->cc == 2)
                s->breath = x;
            else if (ev->cc == 11)
                s->expr = x;
            else if (ev->cc == 101)
                s->rpn_msb = (int)x; /* registered parameter number */
            else if (ev->cc == 100)
                s->rpn_lsb = (int)x;
            else if (ev->cc == 6 && s->rpn_msb == 0 && s->rpn_lsb == 0)
                s->bend_range = x > 48.0 ? 48.0 : x;
            else if (ev->cc == 120 || ev->cc == 123) {
                hold_silence(s);
                s->held = 0;
                s->release_left = 0;
                s->gliding = 0;
            }
            break;
        }
        case VK_EV_PANIC:
            hold_silence(s);
            s->held = 0;
            s->release_left = 0;
            s->gliding = 0;
            s->bend = 0.0;
            break;
        default: break;
    }
}

/* Exponential approach that lands exactly: the state stops changing once converged, so a
 * held note or a silence gives the same frame again and again. */
static double approach(double cur, double target, double a, double eps)
{
    double d = target - cur;
    return fabs(d) <= eps ? target : cur + d * a;
}

void vk_singer_frame(vk_singer *s, float *out)
{
    const int64_t f = s->frame_next;
    int used = 0;
    while (used < s->n_pending && s->pending[used].time + VK_EVENT_DELAY <= f * s->hop) {
        apply(s, &s->pending[used], f);
        used++;
    }
    if (used) {
        memmove(s->pending, s->pending + used, sizeof(vk_voice_event) * (size_t)(s->n_pending - used));
        s->n_pending -= used;
    }

    /* phoneme plan */
    int p = s->seg_ph[s->seg_i];
    if (s->seg_len[s->seg_i] >= 0 && ++s->seg_t >= s->seg_len[s->seg_i] && s->seg_i + 1 < s->n_seg) {
        s->seg_i++;
        s->seg_t = 0;
    }
    if (s->release_left > 0) s->release_left--;

    const float *target = s->env_table + (int64_t)p * s->n_env;
    const float a = (float)s->a_env;
    for (int k = 0; k < s->n_env; k++) s->env_cur[k] = s->env_cur[k] + (target[k] - s->env_cur[k]) * a;
    s->voicing_cur = approach(s->voicing_cur, s->voicing_table[p], s->a_voicing, 1e-7);

    /* pitch: glide, bend, vibrato (fading out after a release) */
    if (s->gliding)
        s->f0_cur = approach(s->f0_cur, s->f0_target, s->a_glide, 1e-5);
    else
        s->f0_cur = s->f0_target;
    if (!s->held) s->vib_amount = s->vib_amount > s->a_vib_release ? s->vib_amount - s->a_vib_release : 0.0;
    const double t_note = (double)s->note_frames * s->frame_s;
    const double ramp =
        clampd((t_note - s->p.vibrato_delay) / (s->p.vibrato_attack > 1e-6 ? s->p.vibrato_attack : 1e-6), 0.0, 1.0);
    const double depth = (s->p.vibrato_depth * ramp + s->p.mod_depth * s->mod) * s->vib_amount;
    const double vib = depth != 0.0 ? depth * vk_sinpi(2.0 * s->vib_phase) : 0.0;
    s->vib_phase += s->p.vibrato_rate * s->frame_s;
    s->vib_phase -= floor(s->vib_phase);
    s->note_frames++;

    /* dynamics: dB on every band (ln power = dB * ln(10) / 10); CC 0 counts as 1 */
    const double db = s->velocity_db + s->p.cc_db * log10((s->expr > 1.0 ? s->expr : 1.0) / 127.0) +
                      s->p.cc_db * log10((s->breath > 1.0 ? s->breath : 1.0) / 127.0);
    s->gain_ln_cur = approach(s->gain_ln_cur, db * (2.302585092994046 / 10.0), s->a_gain, 1e-7);

    out[0] = (float)(s->f0_cur + s->bend_range * s->bend + vib);
    out[1] = (float)s->voicing_cur;
    for (int k = 0; k < s->n_env; k++) out[2 + k] = s->env_cur[k] + (float)s->gain_ln_cur;
    s->frame_next++;
}
