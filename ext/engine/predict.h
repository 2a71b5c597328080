/* Linear prediction from what a frame already knows (docs/model.md, "Prediction").
 *
 * A preset with a predictor has its network model only the remainder of the signal s
 * (the pre-emphasised audio) after two predictions computed from the features, never
 * from the audio:
 *
 *   short-term (LPC):  stp[n] = sum_k lpc[k] s[n-1-k]       k = 0..15, from the envelope
 *   long-term (pitch): ltp[n] = sum_j tap[j] r[n-T0+1-j]    j = 0..3, lag sr/f0, gain in taps
 *   p[n] = stp[n] + ltp[n];   s[n] = clamp(p[n] + decode(class[n]));   r[n] = s[n] - stp[n]
 *
 * r is the short-term residual, so the pitch predictor acts on the excitation (as in CELP)
 * and cannot fight the envelope. Per frame the coefficients come from one scalar routine in
 * double precision; per sample the arithmetic is float32 in one fixed order with no FMA, in
 * one file compiled with baseline flags: the same bits on every ISA level. The engine and
 * Python (training data, the float reference, tests) call these same functions. */
#ifndef VK_PREDICT_H
#define VK_PREDICT_H

#include <stdint.h>

#define VK_PRED_ORDER 16
#define VK_PRED_BINS 129  /* linear grid 0..sr/2 the envelope is spread on (a 256-point FFT's) */
#define VK_PRED_RING 4096 /* history of s and r (power of two): holds the longest lag */
#define VK_PRED_MAX_ENV 64
#define VK_PRED_SIGNAL_MAX 2.0f /* s is clamped here: the network's errors cannot grow without bound */

typedef struct {
    int sample_rate, n_env;
    double ltp_gain;
    double centre[VK_PRED_MAX_ENV];               /* band centres, in bins of the grid */
    int32_t bin_band[VK_PRED_BINS];               /* bin b lies between centres j and j + 1 ... */
    double bin_t[VK_PRED_BINS];                   /* ... at this fraction of the way */
    double cosw[VK_PRED_BINS][VK_PRED_ORDER + 1]; /* cos(w_b k) times the bin's trapezoid weight */
    double tilt[VK_PRED_BINS];                    /* |1 - a e^{-jw}|^2: the pre-emphasis */
    double lag_window[VK_PRED_ORDER + 1];
    double two_k16[16]; /* 2^(k/16), for the envelope's exp */
} vk_pred_setup;

typedef struct {
    float lpc[VK_PRED_ORDER];
    float tap[4]; /* gain-scaled Lagrange taps on r[n-T0+1], r[n-T0], r[n-T0-1], r[n-T0-2] */
    int32_t lag;  /* T0 = floor(sr / f0) */
} vk_pred_frame;

typedef struct {
    float s[VK_PRED_RING], r[VK_PRED_RING];
    int64_t pos; /* index of the next sample */
} vk_pred_state;

/* 0 on success, -1 when the numbers make no sense (n_env outside 1..64, rate < 1000,
 * preemphasis outside 0..0.99, ltp_gain outside 0..0.99). */
int vk_pred_setup_init(vk_pred_setup *su, int sample_rate, int n_env, double preemphasis, double ltp_gain);

/* The frame's predictor from its raw features [f0 (MIDI), voicing, env0..env{n_env-1}]
 * (docs/features.md). Any input (NaN, inf, huge) gives finite coefficients of a stable
 * synthesis filter (every reflection coefficient in [-0.999, 0.999]). */
void vk_pred_frame_from_features(const vk_pred_setup *su, const float *raw, vk_pred_frame *out);

/* Reflection coefficients of the frame's last Levinson run (tests): NULL-safe helper
 * that recomputes them into k[0..15]; returns the prediction error power ratio. */
double vk_pred_reflection(const vk_pred_setup *su, const float *raw, double *k);

void vk_pred_reset(vk_pred_state *st);

/* Mu-law decode table of q classes (double precision, then rounded) and the q - 1
 * thresholds halfway between neighbouring classes that vk_pred_class searches. */
void vk_mulaw_table(int q, float *table);
void vk_pred_thresholds(int q, const float *table, float *thr);

/* The class whose value is nearest v (linear distance; thresholds between classes go
 * up): what the network is told about a continuous value, and the target class of a
 * remainder. NaN gives q/2. q must be a power of two (mu-law classes are). */
static inline int vk_pred_class(const float *thr, int q, float v)
{
    if (!(v == v)) return q / 2;
    /* q is a power of two: a branch-free binary search (the compare becomes a select;
     * a branch on a noise-like value mispredicts half the time) */
    int k = 0;
    for (int step = q >> 1; step > 0; step >>= 1) k += (v >= thr[k + step - 1]) ? step : 0;
    return k;
}

/* The two predictions of the next sample from the state (stp returned separately: the
 * residual update needs it). */
static inline float vk_pred_stp(const vk_pred_frame *f, const vk_pred_state *st)
{
    const int64_t m = VK_PRED_RING - 1, n = st->pos;
    float acc = 0.0f;
    for (int k = 0; k < VK_PRED_ORDER; k++) acc = acc + f->lpc[k] * st->s[(n - 1 - k) & m];
    return acc;
}

static inline float vk_pred_ltp(const vk_pred_frame *f, const vk_pred_state *st)
{
    const int64_t m = VK_PRED_RING - 1, b = st->pos - f->lag;
    float acc = f->tap[0] * st->r[(b + 1) & m];
    acc = acc + f->tap[1] * st->r[b & m];
    acc = acc + f->tap[2] * st->r[(b - 1) & m];
    acc = acc + f->tap[3] * st->r[(b - 2) & m];
    return acc;
}

/* The sample is prediction + the remainder's value; store it and its residual. Returns s. */
static inline float vk_pred_push(vk_pred_state *st, float stp, float p, float remainder)
{
    float s = p + remainder;
    if (!(s == s)) s = 0.0f;
    s = s > VK_PRED_SIGNAL_MAX ? VK_PRED_SIGNAL_MAX : (s < -VK_PRED_SIGNAL_MAX ? -VK_PRED_SIGNAL_MAX : s);
    const int64_t i = st->pos & (VK_PRED_RING - 1);
    st->s[i] = s;
    st->r[i] = s - stp;
    st->pos++;
    return s;
}

/* A whole signal through the predictor, as training and the float reference need it.
 * Frame t covers samples [t*hop, (t+1)*hop); frames past n_frames repeat the last.
 * Two modes:
 *  - target != NULL: the remainder class of each sample is the class of target[n] - p[n]
 *    (written to cls_out); the class that is used (what the next samples see) is that
 *    plus noise[n] (NULL: none), clamped: LPCNet's noise injection, so the network learns
 *    from a past as imperfect as its own.
 *  - target == NULL: cls_in[n] is used as the remainder class (teacher forcing the engine).
 * Per sample it writes the network's three input classes (docs/model.md): in_s, the class
 * of s[n-1]; in_p, the class of p[n]; in_e, the remainder class used at n-1 (q/2 and the
 * class of 0 before the start). pred_out/signal_out (may be NULL): p[n] and s[n].
 * Returns 0, or -1 for bad sizes or no memory. */
int vk_pred_run(const vk_pred_setup *su, const float *features, int nf, int n_frames, int hop, int q,
                const float *target, const int32_t *noise, const int32_t *cls_in, int n, int32_t *cls_out,
                int32_t *in_s, int32_t *in_p, int32_t *in_e, float *pred_out, float *signal_out);

#endif
