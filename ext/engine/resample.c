/* Polyphase resampler: upsample by L, low-pass, keep every M-th sample, computed
 * directly as y[n] = sum_k h[phase + k L] x[base - k] with base = floor(n M / L) and
 * phase = n M mod L. The prototype filter is a Kaiser-windowed sinc. */
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256 /* input samples fetched at a time */
#define PI 3.14159265358979323846

struct vk_resampler {
    int L, M;                            /* reduced ratio out/in = L/M */
    float *h;                            /* [L][TAPS], phase-major, taps in order k = 0.. */
    float buf[VK_RESAMPLE_TAPS + CHUNK]; /* input history; buf[i] is input index buf_start + i */
    int64_t buf_start, buf_end;          /* absolute input indices held: [buf_start, buf_end) */
    int64_t n_out;                       /* outputs produced */
    int64_t phase_acc;                   /* n_out * M, kept as base*L + phase */
};

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0;
    for (int k = 1; k < 40; k++) {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
    }
    return sum;
}

vk_resampler *vk_resampler_create(int in_rate, int out_rate)
{
    if (in_rate < 1 || out_rate < 1 || in_rate > 384000 || out_rate > 384000) return NULL;
    vk_resampler *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    int g = gcd(in_rate, out_rate);
    r->L = out_rate / g;
    r->M = in_rate / g;
    const int T = VK_RESAMPLE_TAPS, L = r->L;
    r->h = malloc(sizeof(float) * (size_t)L * T);
    if (!r->h) {
        free(r);
        return NULL;
    }
    /* Cutoff a little below the lower Nyquist, in cycles per sample of the rate L*in. */
    const double fc = 0.5 * 0.92 * (r->L < r->M ? (double)r->L / r->M : 1.0) / L;
    const int N = L * T;
    const double c = (N - 1) / 2.0, beta = 8.0, i0b = bessel_i0(beta);
    for (int j = 0; j < N; j++) {
        double t = j - c, x = 2.0 * fc * t;
        double sinc = fabs(x) < 1e-12 ? 1.0 : sin(PI * x) / (PI * x);
        double w = (2.0 * j) / (N - 1) - 1.0;
        double win = bessel_i0(beta * sqrt(1.0 - w * w > 0.0 ? 1.0 - w * w : 0.0)) / i0b;
        /* gain L: zero stuffing divides the level by L */
        r->h[(j % L) * T + j / L] = (float)(L * 2.0 * fc * sinc * win);
    }
    vk_resampler_reset(r);
    return r;
}

void vk_resampler_destroy(vk_resampler *r)
{
    if (!r) return;
    free(r->h);
    free(r);
}

void vk_resampler_reset(vk_resampler *r)
{
    memset(r->buf, 0, sizeof(r->buf));
    /* the history before input 0 is silence */
    r->buf_start = -(VK_RESAMPLE_TAPS - 1);
    r->buf_end = 0;
    r->n_out = 0;
    r->phase_acc = 0;
}

double vk_resampler_delay(const vk_resampler *r)
{
    if (r->L == 1 && r->M == 1) return 0.0;
    return (VK_RESAMPLE_TAPS * r->L - 1) / 2.0 / r->M;
}

int64_t vk_resampler_input_needed(const vk_resampler *r, int n)
{
    if (n <= 0) return 0;
    if (r->L == 1 && r->M == 1) return n;
    int64_t need = (r->phase_acc + (int64_t)(n - 1) * r->M) / r->L + 1 - r->buf_end;
    return need > 0 ? need : 0;
}

void vk_resampler_pull(vk_resampler *r, float *out, int n, vk_resample_source src, void *ctx)
{
    const int T = VK_RESAMPLE_TAPS;
    if (r->L == 1 && r->M == 1) { /* same rate: no filter, no delay */
        src(ctx, out, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        const int64_t base = r->phase_acc / r->L;
        const int phase = (int)(r->phase_acc % r->L);
        while (base >= r->buf_end) {
            /* keep the last T-1 inputs, fetch up to CHUNK more */
            int64_t keep_from = r->buf_end - (T - 1);
            int shift = (int)(keep_from - r->buf_start);
            if (shift > 0) {
                memmove(r->buf, r->buf + shift, sizeof(float) * (size_t)(r->buf_end - keep_from));
                r->buf_start = keep_from;
            }
            int have = (int)(r->buf_end - r->buf_start);
            /* fetch only what this call needs (plus nothing), so input is pulled lazily */
            int64_t need = ((r->phase_acc + (int64_t)(n - 1 - i) * r->M) / r->L) + 1 - r->buf_end;
            int take = need < CHUNK ? (int)need : CHUNK;
            if (take > T + CHUNK - have) take = T + CHUNK - have;
            src(ctx, r->buf + have, take);
            r->buf_end += take;
        }
        const float *h = r->h + phase * T;
        const float *x = r->buf + (base - r->buf_start); /* x[-k] = input base - k */
        float acc = 0.0f;
        for (int k = 0; k < T; k++) acc += h[k] * x[-k];
        out[i] = acc;
        r->phase_acc += r->M;
        r->n_out++;
    }
}
