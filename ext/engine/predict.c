/* Linear prediction from the features (predict.h; docs/model.md, "Prediction").
 * Scalar, baseline flags, -ffp-contract=off: the same bits on every level. Per frame in
 * double from + - * / only (detmath.h), so no C library function decides a bit. */
#include "predict.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detmath.h"

#define LN_FLOOR (-23.025850929940457) /* ln(1e-10): the features' floor */
#define LAG_WINDOW_HZ 50.0
#define WHITE_NOISE 1.0001 /* -40 dB added to R[0]: keeps Levinson well conditioned */
#define REFLECTION_MAX 0.999
#define HIGHPASS_HZ 70.0

/* ln x for x > 0, from + - * / (frexp/ldexp are exact): x = m 2^e, m in [0.5, 1),
 * ln m = 2 atanh((m - 1)/(m + 1)), |z| <= 1/3 so 40 terms are far past double's
 * precision. */
static double det_log(double x)
{
    int e;
    double m = frexp(x, &e);
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int k = 1; k <= 79; k += 2) {
        sum = sum + term / k;
        term = term * z2;
    }
    return 2.0 * sum + e * 0.69314718055994530942;
}

/* e^x from + - * only: 2^n 2^(k/16) e^r with r = (y - n - k/16) ln 2 in [0, ln 2 / 16),
 * y = x log2 e; 2^(k/16) from a table made at setup (vk_exp2), e^r by its Taylor series
 * to r^6 (relative error < 1e-13), 2^n built exactly. Runs 129 times a frame. */
static double fast_exp(const double *two_k16, double x)
{
    double y = x * 1.44269504088896340736;
    if (!(y > -1000.0)) return 0.0; /* below the relevance of anything here (and NaN) */
    if (y > 1000.0) y = 1000.0;
    /* floor by truncation (baseline x86-64 has no rounding instruction: floor() is a call) */
    double n = (double)(int)y;
    if (n > y) n = n - 1.0;
    const double f = (y - n) * 16.0;
    const int k = f < 15.0 ? (int)f : 15; /* y - n may round up to 1 for y just below 0 */
    const double r = (f - k) * (0.69314718055994530942 / 16.0);
    const double p =
        1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720))))));
    union {
        double d;
        uint64_t u;
    } two_n = {.u = (uint64_t)((int64_t)n + 1023) << 52}; /* 2^n, exactly */
    return p * two_k16[k] * two_n.d;
}

static double det_exp(double x) { return vk_exp2(x * 1.44269504088896340736); }

static double mel(double hz) { return 2595.0 * det_log(1.0 + hz / 700.0) / 2.30258509299404568402; }

static double mel_inv(double m) { return 700.0 * (det_exp(m / 2595.0 * 2.30258509299404568402) - 1.0); }

int vk_pred_setup_init(vk_pred_setup *su, int sample_rate, int n_env, double preemphasis, double ltp_gain)
{
    memset(su, 0, sizeof(*su));
    if (n_env < 1 || n_env > VK_PRED_MAX_ENV || sample_rate < 1000 || !(preemphasis >= 0.0 && preemphasis <= 0.99) ||
        !(ltp_gain >= 0.0 && ltp_gain <= 0.99))
        return -1;
    su->sample_rate = sample_rate;
    su->n_env = n_env;
    su->ltp_gain = ltp_gain;
    const int nb = VK_PRED_BINS - 1; /* bin b is b * sr / (2 nb) Hz */
    /* band centres as features.mel_weights places them: N + 2 mel-spaced edges over 0..sr/2 */
    const double top = mel(sample_rate / 2.0);
    for (int j = 0; j < n_env; j++) {
        double hz = mel_inv(top * (j + 1) / (n_env + 1));
        su->centre[j] = hz / (sample_rate / 2.0) * nb;
    }
    /* each bin's place between two band centres (flat beyond the outer ones) */
    for (int b = 0, j = 0; b <= nb; b++) {
        if (n_env == 1 || b <= su->centre[0]) {
            su->bin_band[b] = 0;
            su->bin_t[b] = 0.0;
            continue;
        }
        if (b >= su->centre[n_env - 1]) {
            su->bin_band[b] = n_env - 2;
            su->bin_t[b] = 1.0;
            continue;
        }
        while (j + 1 < n_env - 1 && su->centre[j + 1] < b) j++;
        su->bin_band[b] = j;
        su->bin_t[b] = (b - su->centre[j]) / (su->centre[j + 1] - su->centre[j]);
    }
    for (int b = 0; b <= nb; b++) {
        const double wt = (b == 0 || b == nb) ? 0.5 : 1.0; /* trapezoid rule over 0..pi */
        for (int k = 0; k <= VK_PRED_ORDER; k++) su->cosw[b][k] = wt * vk_sinpi((double)b * k / nb + 0.5);
        const double c = vk_sinpi((double)b / nb + 0.5);
        su->tilt[b] = 1.0 + preemphasis * preemphasis - 2.0 * preemphasis * c;
        /* nothing of the voice lies below its lowest f0: a 2nd-order Butterworth high-pass
         * at 70 Hz on the spectrum keeps the synthesis filter's gain there low, so a
         * sampled remainder's bias at a stop's burst cannot swing the output (thumps) */
        const double fr = (double)b / nb * (sample_rate / 2.0) / HIGHPASS_HZ, f4 = fr * fr * fr * fr;
        su->tilt[b] = su->tilt[b] * (f4 / (1.0 + f4));
    }
    const double g = 2.0 * 3.14159265358979323846 * LAG_WINDOW_HZ / sample_rate;
    for (int k = 0; k <= VK_PRED_ORDER; k++) su->lag_window[k] = det_exp(-0.5 * (g * k) * (g * k));
    for (int k = 0; k < 16; k++) su->two_k16[k] = vk_exp2(k / 16.0);
    return 0;
}

/* Autocorrelation of the frame's envelope (pre-emphasis tilt applied), then
 * Levinson-Durbin with every reflection coefficient clamped into the stable range.
 * a[1..16] of A(z) = 1 + sum a_k z^-k; k_out (may be NULL) the reflection
 * coefficients. Returns the final error over R[0] (1 when the envelope was unusable:
 * then a is all zero, no prediction). */
static double levinson_from_features(const vk_pred_setup *su, const float *raw, double *a, double *k_out)
{
    const int nb = VK_PRED_BINS - 1, ne = su->n_env;
    double L[VK_PRED_MAX_ENV], P[VK_PRED_BINS], R[VK_PRED_ORDER + 1];
    double lmax = -1e300;
    for (int j = 0; j < ne; j++) {
        double v = raw[2 + j];
        if (!(v == v)) v = LN_FLOOR;
        v = v > 50.0 ? 50.0 : (v < -50.0 ? -50.0 : v);
        L[j] = v;
        if (v > lmax) lmax = v;
    }
    /* log power linear between band centres (flat beyond the outer ones), relative to
     * the loudest band: LPC does not care about level, and exp cannot overflow */
    if (ne == 1) L[1] = L[0];
    double l[VK_PRED_BINS];
    for (int b = 0; b <= nb; b++) {
        const int j = su->bin_band[b];
        l[b] = L[j] + su->bin_t[b] * (L[j + 1] - L[j]) - lmax;
    }
    for (int b = 0; b <= nb; b++) { /* a loop of its own: the bins' exp chains overlap */
        P[b] = fast_exp(su->two_k16, l[b]) * su->tilt[b];
    }
    /* bins outside, lags inside: 17 independent sums, each still in bin order */
    double acc[VK_PRED_ORDER + 1] = {0.0};
    for (int b = 0; b <= nb; b++)
        for (int k = 0; k <= VK_PRED_ORDER; k++) acc[k] = acc[k] + P[b] * su->cosw[b][k];
    for (int k = 0; k <= VK_PRED_ORDER; k++) R[k] = acc[k] * su->lag_window[k];
    R[0] = R[0] * WHITE_NOISE;
    memset(a, 0, sizeof(double) * (VK_PRED_ORDER + 1));
    a[0] = 1.0;
    if (k_out) memset(k_out, 0, sizeof(double) * VK_PRED_ORDER);
    if (!(R[0] > 0.0) || !(R[0] < 1e300)) return 1.0;
    double err = R[0];
    for (int i = 1; i <= VK_PRED_ORDER; i++) {
        double acc = R[i];
        for (int m = 1; m < i; m++) acc = acc + a[m] * R[i - m];
        double k = -acc / err;
        if (!(k == k)) k = 0.0;
        k = k > REFLECTION_MAX ? REFLECTION_MAX : (k < -REFLECTION_MAX ? -REFLECTION_MAX : k);
        double tmp[VK_PRED_ORDER + 1];
        for (int m = 1; m < i; m++) tmp[m] = a[m] + k * a[i - m];
        for (int m = 1; m < i; m++) a[m] = tmp[m];
        a[i] = k;
        err = err * (1.0 - k * k);
        if (k_out) k_out[i - 1] = k;
    }
    return err / R[0];
}

double vk_pred_reflection(const vk_pred_setup *su, const float *raw, double *k)
{
    double a[VK_PRED_ORDER + 1];
    return levinson_from_features(su, raw, a, k);
}

void vk_pred_frame_from_features(const vk_pred_setup *su, const float *raw, vk_pred_frame *out)
{
    double a[VK_PRED_ORDER + 1];
    levinson_from_features(su, raw, a, NULL);
    for (int k = 0; k < VK_PRED_ORDER; k++) out->lpc[k] = (float)(-a[k + 1]);

    /* pitch: lag sr/f0 from the f0 feature, gain ltp_gain * voicing */
    double m = raw[0], v = raw[1];
    if (!(m == m)) m = 60.0;
    m = m < 12.0 ? 12.0 : (m > 120.0 ? 120.0 : m);
    if (!(v == v)) v = 0.0;
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    double T = su->sample_rate / (440.0 * vk_exp2((m - 69.0) / 12.0));
    T = T < 8.0 ? 8.0 : (T > VK_PRED_RING - 8.0 ? VK_PRED_RING - 8.0 : T);
    const double T0 = floor(T), d = T - T0;
    out->lag = (int32_t)T0;
    /* 4-point Lagrange at delay T0 + d from the nodes at delays T0 - 1 .. T0 + 2 */
    const double x[4] = {-1.0, 0.0, 1.0, 2.0};
    const double g = su->ltp_gain * v;
    for (int i = 0; i < 4; i++) {
        double w = 1.0;
        for (int q = 0; q < 4; q++)
            if (q != i) w = w * (d - x[q]) / (x[i] - x[q]);
        out->tap[i] = (float)(g * w);
    }
}

void vk_pred_reset(vk_pred_state *st) { memset(st, 0, sizeof(*st)); }

void vk_mulaw_table(int q, float *table)
{
    const double mu = q - 1;
    for (int k = 0; k < q; k++) {
        double y = 2.0 * k / mu - 1.0;
        double a = y < 0.0 ? -y : y;
        double x = (pow(1.0 + mu, a) - 1.0) / mu;
        table[k] = (float)(y < 0.0 ? -x : x);
    }
}

void vk_pred_thresholds(int q, const float *table, float *thr)
{
    for (int k = 0; k + 1 < q; k++) thr[k] = 0.5f * (table[k] + table[k + 1]);
}

int vk_pred_run(const vk_pred_setup *su, const float *features, int nf, int n_frames, int hop, int q,
                const float *target, const int32_t *noise, const int32_t *cls_in, int n, int32_t *cls_out,
                int32_t *in_s, int32_t *in_p, int32_t *in_e, float *pred_out, float *signal_out)
{
    float table[1024], thr[1024];
    if (q < 2 || q > 1024 || (q & (q - 1)) || n_frames < 1 || hop < 1) return -1;
    vk_pred_state *st = malloc(sizeof(*st)); /* 32 KB: not on the stack; this is no hot path */
    if (!st) return -1;
    vk_mulaw_table(q, table);
    vk_pred_thresholds(q, table, thr);
    vk_pred_reset(st);
    vk_pred_frame fr;
    int64_t cur = -1;
    float s_prev = 0.0f;
    int e_prev = q / 2;
    for (int i = 0; i < n; i++) {
        int64_t f = i / hop;
        if (f >= n_frames) f = n_frames - 1;
        if (f != cur) {
            vk_pred_frame_from_features(su, features + f * nf, &fr);
            cur = f;
        }
        const float stp = vk_pred_stp(&fr, st);
        const float p = stp + vk_pred_ltp(&fr, st);
        in_s[i] = vk_pred_class(thr, q, s_prev);
        in_p[i] = vk_pred_class(thr, q, p);
        in_e[i] = e_prev;
        int used;
        if (target) {
            const int k = vk_pred_class(thr, q, target[i] - p);
            cls_out[i] = k;
            used = k + (noise ? noise[i] : 0);
            used = used < 0 ? 0 : (used > q - 1 ? q - 1 : used);
        } else {
            used = cls_in[i] < 0 ? 0 : (cls_in[i] > q - 1 ? q - 1 : cls_in[i]);
        }
        s_prev = vk_pred_push(st, stp, p, table[used]);
        e_prev = used;
        if (pred_out) pred_out[i] = p;
        if (signal_out) signal_out[i] = s_prev;
    }
    free(st);
    return 0;
}
