/* Streaming WaveRNN: conditioning, GRU with coarse/fine split, dual or mu-law softmax
 * head, Gumbel-max sampling, subscale batching. See docs/model.md.
 *
 * The matrix products go through the per-level kernels (exact integers); the hot
 * elementwise code (GRU update, quantiser, sampler) has per-level versions that run the
 * same IEEE operations per element (gru_f32_body.h, quantize.h, sample.h); the rest of
 * the float code is here, compiled once with -ffp-contract=off. So every level
 * produces the same samples. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include "wavernn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detmath.h"
#include "isa.h"
#include "predict.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define GUMBEL_BITS VK_NOISE_BITS /* sample.h indexes the table with this many bits */
#define GUMBEL_SIZE (1 << GUMBEL_BITS)

struct vk_engine {
    vk_model m;
    vk_isa_table isa; /* the level's functions (a copy: one load per call, as fields) */
    vk_gru_shape gshape;
    int H, Hc, B, F, n_in, K, nf, Q, hop, E;
    uint64_t rng;
    float temperature, temperature_unvoiced;
    float deemph;  /* de-emphasis state: its last output */
    float dc_out;  /* DC blocker state: its last output, before clamping */
    float dc_pole; /* r of the DC blocker, 1 - 2 pi highpass_hz / rate */

    /* prediction (predictor presets): per queued frame (ring of fcap, computed at feed),
     * copied per computed frame (ring of ccap) as the excitation is; the voicing per
     * frame for the temperature likewise */
    vk_pred_setup *pred_setup;
    vk_pred_frame *pred_fed, *pred_cond;
    vk_pred_state *pred;
    float *pred_thr;
    float *voicing_fed, *voicing_cond;

    /* normalised frames, ring of fcap */
    float *frames;
    int fcap;
    int64_t frames_fed;
    int finished;

    /* excitation parameters per queued frame (ring of fcap), computed at feed */
    double *exc_inc, *exc_v;
    int32_t *exc_k;
    /* excitation per sample of each frame in the cond ring, [ccap][hop][E] */
    float *exc;
    double exc_phase; /* phase at the start of frame cond_next */

    /* conditioning per frame, ring of ccap; frames below cond_next are computed */
    float *cond;
    int ccap;
    int64_t cond_next; /* next frame whose conditioning is computed */
    float *cond_in, *cond_hid;

    /* per sub-tensor state and scratch; strides padded to 64 bytes */
    float *h, *hnew, *hid, *logits, *xin;
    float *hmax; /* [B] max |h| of each sub-tensor's state, for R's quantisation */
    uint8_t *xu;
    int32_t *acc, *acc_r;
    float *xscale, *xscale_r;
    float *exc_w0, *exc_w1; /* exc_out_w's two columns, [H] each (one vector load per term) */
    float *mulaw_table; /* [Q] audio value of each mu-law class */
    float *in_t;        /* in_w transposed, [n_in][3H] */
    int sx, sacc, shid, sq;

    /* generated history by global sample index, ring of hcap (power of two) */
    int32_t *hist_a, *hist_b; /* dual: coarse, fine; mulaw: class */
    float *hist_audio;
    int64_t hmask;

    int64_t step;          /* next subscale step */
    int64_t frontier;      /* every sample below this index is generated */
    int64_t delivered;     /* generated samples already rendered */
    int64_t pending_zeros; /* latency silence still to emit */
    int64_t underrun;
    int64_t latency;

    float gumbel[GUMBEL_SIZE];
};

/* ---------- deterministic elementwise maths (no libm in the sample loop) ---------- */



static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Gumbel-max: argmax(logits + T * g), g from a table of Gumbel quantiles indexed by a
 * hash of (key, class); one key per call from the seeded RNG. The per-level sampler
 * (sample.h) prunes classes the bounded noise cannot lift to the top, which keeps the
 * sample exact and avoids exp() entirely; T = 0 is plain argmax and draws no key. The
 * logits come as the output layer's accumulators: the sampler dequantises them in its
 * first pass (writing logits[0..n)). */
static int sample_class(vk_engine *e, float temperature, const vk_layer *L, const int32_t *acc, float x_scale,
                        float *logits, int n)
{
    if (!(temperature > 0.0f))
        return e->isa.sample_acc(acc, L->scales, x_scale, L->bias, logits, n, 0.0f, e->gumbel, 0);
    const uint64_t key = rng_next(&e->rng);
    return e->isa.sample_acc(acc, L->scales, x_scale, L->bias, logits, n, temperature, e->gumbel, key);
}

/* ---------- mappings between classes, network inputs and audio ---------- */

static inline float byte_input(int v) { return ((float)v - 127.5f) / 127.5f; }

static inline float dual_audio(int c, int f) { return (float)(c * 256 + f - 32768) / 32768.0f; }

static inline float class_input(int k, int q) { return 2.0f * (float)k / (float)(q - 1) - 1.0f; }

/* ---------- excitation (docs/model.md) ---------- */

/* Per-frame parameters from the raw (not normalised) f0 and voicing features. */
static void exc_params(const vk_engine *e, const float *raw, double *inc, int32_t *k, double *v)
{
    double m = raw[0], vv = raw[1];
    if (!(m == m)) m = 60.0;
    m = m < 12.0 ? 12.0 : (m > 120.0 ? 120.0 : m);
    if (!(vv == vv)) vv = 0.0;
    vv = vv < 0.0 ? 0.0 : (vv > 1.0 ? 1.0 : vv);
    *inc = 440.0 * vk_exp2((m - 69.0) / 12.0) / (double)e->m.sample_rate;
    *k = (int32_t)floor(0.5 / *inc);
    *v = *k >= 1 ? vv : 0.0;
}

#ifdef __SSE2__
/* vk_sinpi on two lanes, the same double operations; for 0 <= y < 2^30, where
 * truncation is floor and n fits an int32 (exc_frame checks). */
static inline __m128d sinpi2(__m128d y)
{
    const __m128d sign = _mm_set1_pd(-0.0);
    const __m128i q = _mm_cvttpd_epi32(_mm_add_pd(y, _mm_set1_pd(0.5))); /* n = floor(y + 0.5) */
    const __m128d r = _mm_sub_pd(y, _mm_cvtepi32_pd(q));
    const __m128d x = _mm_mul_pd(_mm_set1_pd(3.14159265358979323846), r), nx2 = _mm_xor_pd(_mm_mul_pd(x, x), sign);
    __m128d p = _mm_setzero_pd();
    for (int k = 23; k >= 3; k -= 2)
        p = _mm_mul_pd(_mm_add_pd(p, _mm_set1_pd(1.0)), _mm_div_pd(nx2, _mm_set1_pd((double)k * (k - 1))));
    const __m128d s = _mm_mul_pd(x, _mm_add_pd(_mm_set1_pd(1.0), p));
    /* n odd: flip the sign (lane i's n is q[i]; move its low bit to bit 63 of lane i) */
    const __m128i odd = _mm_slli_epi64(_mm_and_si128(_mm_unpacklo_epi32(q, q), _mm_set1_epi32(1)), 63);
    return _mm_xor_pd(s, _mm_castsi128_pd(odd));
}
#endif

/* hop samples of excitation for one frame from phase p; returns the next frame's phase.
 * The SSE2 path runs two samples at once (the divisions of vk_sinpi's series dominate,
 * and the divider takes two doubles as fast as one); same operations per sample. */
static double exc_samples(double p, double inc, int32_t k, double v, int hop, int vector, float *out)
{
    const double n2 = 2.0 * k + 1.0;
    int j = 0;
#ifdef __SSE2__
    if (vector) {
        /* phi <= 1 + hop * inc and n2 phi < 2 / inc + ...: far below 2^30 for any real rate,
         * but checked, so the lanes' truncation is floor; else the scalar loop takes over */
        const __m128d vp = _mm_set1_pd(p), vinc = _mm_set1_pd(inc), vn2 = _mm_set1_pd(n2), vv = _mm_set1_pd(v);
        const __m128d lim = _mm_set1_pd(1073741824.0), two = _mm_set1_pd(2.0);
        const __m128d absmask = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffll));
        for (; j + 2 <= hop; j += 2) {
            __m128d phi = _mm_add_pd(vp, _mm_mul_pd(_mm_setr_pd((double)j, (double)(j + 1)), vinc));
            const __m128d ok0 = _mm_and_pd(_mm_cmpge_pd(phi, _mm_setzero_pd()), _mm_cmplt_pd(phi, lim));
            if (_mm_movemask_pd(ok0) != 3) break;
            phi = _mm_sub_pd(phi, _mm_cvtepi32_pd(_mm_cvttpd_epi32(phi))); /* phi - floor(phi) */
            const __m128d y = _mm_mul_pd(vn2, phi);
            if (_mm_movemask_pd(_mm_and_pd(_mm_cmpge_pd(y, _mm_setzero_pd()), _mm_cmplt_pd(y, lim))) != 3) break;
            const __m128d s = sinpi2(phi);
            const __m128d tiny = _mm_cmplt_pd(_mm_and_pd(s, absmask), _mm_set1_pd(1e-9));
            const __m128d q = _mm_div_pd(sinpi2(y), _mm_mul_pd(vn2, s));
            const __m128d pulse = _mm_or_pd(_mm_and_pd(tiny, _mm_set1_pd(1.0)), _mm_andnot_pd(tiny, q));
            const __m128 o0 = _mm_cvtpd_ps(_mm_mul_pd(vv, pulse));                /* lanes 0, 1 */
            const __m128 o1 = _mm_cvtpd_ps(_mm_mul_pd(vv, sinpi2(_mm_mul_pd(two, phi))));
            _mm_storeu_ps(out + 2 * j, _mm_unpacklo_ps(o0, o1)); /* pulse, sine of j, then of j + 1 */
        }
    }
#else
    (void)vector;
#endif
    for (; j < hop; j++) {
        double phi = p + (double)j * inc;
        phi = phi - floor(phi);
        double s = vk_sinpi(phi);
        double pulse = fabs(s) < 1e-9 ? 1.0 : vk_sinpi(n2 * phi) / (n2 * s);
        out[2 * j] = (float)(v * pulse);
        out[2 * j + 1] = (float)(v * vk_sinpi(2.0 * phi));
    }
    double next = p + (double)hop * inc;
    return next - floor(next);
}

static double exc_frame(const vk_engine *e, double p, double inc, int32_t k, double v, float *out)
{
    return exc_samples(p, inc, k, v, e->hop, 1, out);
}

/* Test hook: the SSE2 excitation against the scalar loop it must equal bit for bit, over
 * MIDI pitches 12..120 in steps of 1/8 and 40 frames each from a phase of 0.37. Returns
 * the number of differing output floats (0 on a build without SSE2, trivially). */
int64_t vk_excitation_selfcheck(int sample_rate, int hop)
{
    if (sample_rate <= 0 || hop <= 0 || hop > 4096) return -1;
    float a[2 * 4096], b[2 * 4096];
    int64_t bad = 0;
    for (int m8 = 12 * 8; m8 <= 120 * 8; m8++) {
        const double inc = 440.0 * vk_exp2((m8 / 8.0 - 69.0) / 12.0) / (double)sample_rate;
        const int32_t k = (int32_t)floor(0.5 / inc);
        const double v = k >= 1 ? 1.0 : 0.0;
        double pa = 0.37, pb = 0.37;
        for (int f = 0; f < 40; f++) {
            pa = exc_samples(pa, inc, k, v, hop, 1, a);
            pb = exc_samples(pb, inc, k, v, hop, 0, b);
            bad += memcmp(&pa, &pb, sizeof pa) != 0;
            for (int j = 0; j < 2 * hop; j++) bad += memcmp(&a[j], &b[j], sizeof(float)) != 0;
        }
    }
    return bad;
}

/* ---------- conditioning ---------- */

/* Feature 1 as a voicing in [0, 1] (NaN -> 0); 1 for presets without one. */
static float raw_voicing(const vk_engine *e, const float *raw)
{
    if (e->nf < 2) return 1.0f;
    float v = raw[1];
    if (!(v == v)) v = 0.0f;
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

static void normalize_frame(const vk_engine *e, const float *raw, float *z)
{
    for (int i = 0; i < e->nf; i++) {
        float v = (raw[i] - e->m.feat_mean[i]) / e->m.feat_std[i];
        if (!(v == v)) v = 0.0f;
        z[i] = v > 8.0f ? 8.0f : (v < -8.0f ? -8.0f : v);
    }
}

/* y = w @ x + b. Each row sums in four interleaved partial sums (columns c = 4i + lane),
 * combined as (s0 + s1) + (s2 + s3), then the leftover columns: one fixed order, SIMD
 * or not, so the result is the same bits everywhere. The SSE2 path runs four rows at
 * once (x loaded once for all four; a 4x4 transpose lines the rows' partial sums up
 * for the same pairwise combination), eight where it can: each row's sum is a chain of
 * adds, and eight chains hide more of the adder's latency than four (a few per cent:
 * cond2's weights stream from L2 once per frame, which bounds this loop). */
#ifdef __SSE2__
static inline __m128 dense_finish4(__m128 a0, __m128 a1, __m128 a2, __m128 a3, const float *const *wr,
                                   const float *x, int c4, int cols, const float *b)
{
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* a_k = lane k of the four rows */
    __m128 sv = _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
    for (int c = c4; c < cols; c++)
        sv = _mm_add_ps(sv, _mm_mul_ps(_mm_setr_ps(wr[0][c], wr[1][c], wr[2][c], wr[3][c]), _mm_set1_ps(x[c])));
    return _mm_add_ps(sv, _mm_loadu_ps(b));
}
#endif

static void dense(const float *w, const float *b, const float *x, int rows, int cols, float *y)
{
    const int c4 = cols & ~3;
    int r = 0;
#ifdef __SSE2__
    for (; r + 8 <= rows; r += 8) {
        const float *wr[8];
        for (int k = 0; k < 8; k++) wr[k] = w + (int64_t)(r + k) * cols;
        __m128 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm_setzero_ps();
        for (int c = 0; c < c4; c += 4) {
            const __m128 xv = _mm_loadu_ps(x + c);
            for (int k = 0; k < 8; k++) a[k] = _mm_add_ps(a[k], _mm_mul_ps(_mm_loadu_ps(wr[k] + c), xv));
        }
        _mm_storeu_ps(y + r, dense_finish4(a[0], a[1], a[2], a[3], wr, x, c4, cols, b + r));
        _mm_storeu_ps(y + r + 4, dense_finish4(a[4], a[5], a[6], a[7], wr + 4, x, c4, cols, b + r + 4));
    }
    for (; r + 4 <= rows; r += 4) {
        const float *wr[4];
        for (int k = 0; k < 4; k++) wr[k] = w + (int64_t)(r + k) * cols;
        __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps(), a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps();
        for (int c = 0; c < c4; c += 4) {
            const __m128 xv = _mm_loadu_ps(x + c);
            a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(wr[0] + c), xv));
            a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(wr[1] + c), xv));
            a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(wr[2] + c), xv));
            a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(wr[3] + c), xv));
        }
        _mm_storeu_ps(y + r, dense_finish4(a0, a1, a2, a3, wr, x, c4, cols, b + r));
    }
#endif
    for (; r < rows; r++) {
        const float *wr = w + (int64_t)r * cols;
        float l0 = 0.0f, l1 = 0.0f, l2 = 0.0f, l3 = 0.0f;
        for (int c = 0; c < c4; c += 4) {
            l0 = l0 + wr[c] * x[c];
            l1 = l1 + wr[c + 1] * x[c + 1];
            l2 = l2 + wr[c + 2] * x[c + 2];
            l3 = l3 + wr[c + 3] * x[c + 3];
        }
        float s = (l0 + l1) + (l2 + l3);
        for (int c = c4; c < cols; c++) s = s + wr[c] * x[c];
        y[r] = s + b[r];
    }
}

/* cond = cond2(tanh(cond1(window))) where window holds K normalised frames. */
static void cond_from_window(vk_engine *e, float *out)
{
    const vk_model *m = &e->m;
    dense(m->cond1_w, m->cond1_b, e->cond_in, m->cond_hidden, e->K * e->nf, e->cond_hid);
    for (int i = 0; i < m->cond_hidden; i++) e->cond_hid[i] = vk_tanh1(e->cond_hid[i]);
    dense(m->cond2_w, m->cond2_b, e->cond_hid, 3 * e->H, m->cond_hidden, out);
}

static int64_t clamp_frame(int64_t f, int64_t last)
{
    return f < 0 ? 0 : (f > last ? last : f);
}

/* Conditioning (and excitation) of every frame up to `upto` (inclusive), from the
 * frame ring. */
static void compute_cond_upto(vk_engine *e, int64_t upto)
{
    const int64_t last = e->frames_fed - 1;
    for (; e->cond_next <= upto; e->cond_next++) {
        const int64_t f = e->cond_next;
        for (int k = 0; k < e->K; k++) {
            int64_t src = clamp_frame(f - e->m.ctx_before + k, last);
            memcpy(e->cond_in + k * e->nf, e->frames + (src % e->fcap) * e->nf, sizeof(float) * e->nf);
        }
        cond_from_window(e, e->cond + (f % e->ccap) * 3 * e->H);
        const int64_t own = clamp_frame(f, last) % e->fcap;
        e->voicing_cond[f % e->ccap] = e->voicing_fed[own];
        if (e->pred) e->pred_cond[f % e->ccap] = e->pred_fed[own];
        if (e->E) {
            int64_t src = own;
            e->exc_phase = exc_frame(e, e->exc_phase, e->exc_inc[src], e->exc_k[src], e->exc_v[src],
                                     e->exc + (f % e->ccap) * e->hop * 2);
        }
    }
}

/* Excitation of global sample i (its frame's conditioning is computed). */
static inline const float *exc_of(const vk_engine *e, int64_t i)
{
    int64_t f = i / e->hop;
    return e->exc + ((f % e->ccap) * e->hop + (i - f * e->hop)) * 2;
}

/* ---------- lanes: samples in flight, computed together ---------- */

/* One sample being generated: sub-tensor b of engine e (its state, conditioning, RNG
 * and history). A subscale step runs the B sub-tensors of one engine as lanes; a voice
 * group runs one lane per engine. The matrix products take every lane in one batched
 * kernel call; the float work of a lane touches only its own engine's slot b, so a
 * lane gives the same bits alone or in any company. */
typedef struct {
    vk_engine *e;
    int b;
    int64_t i;         /* global sample index */
    const float *cond; /* conditioning of i's frame, [3H] */
    int cls_a, cls_b;
    float temperature; /* of i's frame */
    float stp, pred;   /* predictor presets: i's short-term and whole prediction */
    /* max |.| of what the GRU halves and the hidden layer wrote, so their quantisation
     * needs no pass to find it */
    float hmax_a, hmax_b, hid_max;
} vk_lane;

enum { BUF_H, BUF_HNEW, BUF_HNEW_FINE, BUF_HID, BUF_LOGITS };

static float *lane_buf(const vk_lane *l, int which)
{
    const vk_engine *e = l->e;
    const int b = l->b;
    switch (which) {
    case BUF_H: return e->h + (int64_t)b * e->shid;
    case BUF_HNEW: return e->hnew + (int64_t)b * e->shid;
    case BUF_HNEW_FINE: return e->hnew + (int64_t)b * e->shid + e->Hc;
    case BUF_HID: return e->hid + (int64_t)b * e->shid;
    default: return e->logits + (int64_t)b * e->sq;
    }
}

static float *lane_input(const vk_lane *l) { return l->e->xin + l->b * (l->e->n_in + 1); }

/* Batched scratch: quantised inputs and accumulators of up to VK_MAX_BATCH lanes; R's
 * accumulators have their own (both GRU halves read them, the output layers run
 * between). */
typedef struct {
    uint8_t *xu;
    int32_t *acc, *acc_r;
    float *xscale, *xscale_r;
} vk_scratch;

/* acc = L x for every lane (stride sacc), x quantised once with its scale in xscale[k];
 * maxabs[k] is the lane's max |x|, known from whoever wrote x. */
static void matmul_lanes(const vk_engine *w, const vk_layer *L, const vk_lane *ln, int nl, int in,
                         const float *maxabs, const vk_scratch *s, int32_t *acc, float *xscale)
{
    for (int k = 0; k < nl; k++)
        xscale[k] = w->isa.quantize_max(lane_buf(&ln[k], in), L->cols, L->cols_padded,
                                          s->xu + (int64_t)k * w->sx, maxabs[k]);
    if (nl == 1)
        w->isa.sparse_gemv(&L->m, s->xu, acc);
    else
        w->isa.sparse_gemm(&L->m, nl, s->xu, w->sx, acc, w->sacc);
}

/* First output layer of a softmax: hid = relu(L h + X exc) (X only with an excitation),
 * its max noted for the next layer. row0: the layer's first row in X. */
static void hidden_lanes(const vk_engine *w, const vk_layer *L, vk_lane *ln, int nl, int in, int row0,
                         const vk_scratch *s)
{
    float mx[VK_MAX_BATCH];
    for (int k = 0; k < nl; k++) mx[k] = in == BUF_HNEW ? ln[k].hmax_a : ln[k].hmax_b;
    matmul_lanes(w, L, ln, nl, in, mx, s, s->acc, s->xscale);
    for (int k = 0; k < nl; k++) {
        const float *ev = lane_input(&ln[k]) + 3 + w->F;
        ln[k].hid_max = w->isa.dequantize_relu(s->acc + (int64_t)k * w->sacc, L->scales, s->xscale[k], L->bias,
                                                 w->E ? w->exc_w0 + row0 : NULL, w->E ? w->exc_w1 + row0 : NULL,
                                                 w->E ? ev[0] : 0.0f, w->E ? ev[1] : 0.0f,
                                                 lane_buf(&ln[k], BUF_HID), L->rows);
    }
}

/* Second output layer and the draw: logits = L hid for every lane (n rows), then each
 * lane's class: forced[0] with the logits copied to out (teacher forcing, one lane), or
 * sampled. Returns nothing; the classes go to *cls of each lane (cls_a or cls_b). */
static void draw_lanes(const vk_engine *w, const vk_layer *L, vk_lane *ln, int nl, const vk_scratch *s, int fine,
                       const int32_t *forced, float *out)
{
    float mx[VK_MAX_BATCH];
    for (int k = 0; k < nl; k++) mx[k] = ln[k].hid_max;
    matmul_lanes(w, L, ln, nl, BUF_HID, mx, s, s->acc, s->xscale);
    for (int k = 0; k < nl; k++) {
        const int32_t *acc = s->acc + (int64_t)k * w->sacc;
        float *logits = lane_buf(&ln[k], BUF_LOGITS);
        int c;
        if (forced) {
            w->isa.dequantize(acc, L->scales, s->xscale[k], L->bias, logits, L->rows);
            memcpy(out, logits, sizeof(float) * L->rows);
            c = forced[0];
        } else {
            c = sample_class(ln[k].e, ln[k].temperature, L, acc, s->xscale[k], logits, L->rows);
        }
        if (fine) ln[k].cls_b = c;
        else ln[k].cls_a = c;
    }
}

/* The network for every lane: GRU (coarse half, then fine half once the coarse class
 * is known), softmax heads and sampling. Inputs (xin) and cond must be set. With
 * force_a/force_b (teacher forcing, one lane) the given classes are used instead of
 * sampled ones and the logits are copied to out_a/out_b. */
static void step_lanes(const vk_engine *w, vk_lane *ln, int nl, const vk_scratch *s,
                       const int32_t *force_a, const int32_t *force_b, float *out_a, float *out_b)
{
    const int H = w->H, Hc = w->Hc;
    const int dual = w->m.head == VK_HEAD_DUAL;

    vk_gru_rec g[VK_MAX_BATCH];
    {
        float mx[VK_MAX_BATCH];
        for (int k = 0; k < nl; k++) mx[k] = ln[k].e->hmax[ln[k].b];
        matmul_lanes(w, &w->m.R, ln, nl, BUF_H, mx, s, s->acc_r, s->xscale_r);
    }
    for (int k = 0; k < nl; k++) { /* the GRU dequantises R h itself */
        g[k] = (vk_gru_rec){s->acc_r + (int64_t)k * w->sacc, w->m.R.scales, w->m.R.bias, s->xscale_r[k]};
        ln[k].hmax_a = w->isa.gru(&w->gshape, lane_input(&ln[k]), ln[k].cond, w->m.sub_bias + (int64_t)ln[k].b * 3 * H,
                              &g[k], lane_buf(&ln[k], BUF_H), lane_buf(&ln[k], BUF_HNEW), 0, dual ? Hc : H);
    }

    /* coarse (or the only) softmax */
    hidden_lanes(w, &w->m.O1, ln, nl, BUF_HNEW, 0, s);
    draw_lanes(w, &w->m.O2, ln, nl, s, 0, force_a, out_a);
    if (!dual) {
        for (int k = 0; k < nl; k++) {
            ln[k].cls_b = 0;
            ln[k].hmax_b = 0.0f;
        }
        return;
    }

    /* fine half: now the current coarse sample is known */
    for (int k = 0; k < nl; k++) {
        float *x = lane_input(&ln[k]);
        x[2] = byte_input(ln[k].cls_a);
        ln[k].hmax_b = w->isa.gru(&w->gshape, x, ln[k].cond, w->m.sub_bias + (int64_t)ln[k].b * 3 * H, &g[k],
                              lane_buf(&ln[k], BUF_H), lane_buf(&ln[k], BUF_HNEW), Hc, H);
    }
    /* the fine layers read the fine half of each state vector */
    hidden_lanes(w, &w->m.O3, ln, nl, BUF_HNEW_FINE, Hc, s);
    draw_lanes(w, &w->m.O4, ln, nl, s, 1, force_b, out_b);
}

/* ---------- construction ---------- */

static void *alloc(size_t n)
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
    e->H = model->hidden;
    e->Hc = model->hidden / 2;
    e->B = model->subscale;
    e->F = model->horizon;
    e->E = model->excitation;
    e->n_in = 3 + model->horizon + e->E;
    e->K = model->ctx_before + 1 + model->lookahead;
    e->nf = model->n_features;
    e->Q = model->n_classes;
    e->hop = model->hop;
    const int B = e->B, H = e->H;

    e->fcap = frame_capacity + e->K;
    /* frames between the oldest sub-tensor and sub-tensor 0, plus slack */
    e->ccap = (int)(((int64_t)B * (B - 1) * e->F) / e->hop) + 4;
    int64_t span = (int64_t)B * ((int64_t)(B - 1) * e->F + 2) + 64;
    int64_t hcap = 64;
    while (hcap < 2 * span) hcap <<= 1;
    e->hmask = hcap - 1;

    int max_cols = H, max_rows = 3 * H > e->Q ? 3 * H : e->Q;
    e->sx = (max_cols + 3) / 4 * 4;
    e->sx = (e->sx + 63) / 64 * 64;
    e->sacc = pad16(max_rows);
    e->shid = pad16(H);
    e->sq = pad16(e->Q);

    e->frames = alloc(sizeof(float) * e->fcap * e->nf);
    e->exc_inc = alloc(sizeof(double) * e->fcap);
    e->exc_v = alloc(sizeof(double) * e->fcap);
    e->exc_k = alloc(sizeof(int32_t) * e->fcap);
    e->exc = alloc(sizeof(float) * e->ccap * e->hop * 2);
    e->cond = alloc(sizeof(float) * e->ccap * 3 * H);
    e->cond_in = alloc(sizeof(float) * e->K * e->nf);
    e->cond_hid = alloc(sizeof(float) * model->cond_hidden);
    e->h = alloc(sizeof(float) * B * e->shid);
    e->hmax = alloc(sizeof(float) * B);
    e->hnew = alloc(sizeof(float) * B * e->shid);
    e->hid = alloc(sizeof(float) * B * e->shid);
    e->logits = alloc(sizeof(float) * B * e->sq);
    e->xin = alloc(sizeof(float) * B * (e->n_in + 1));
    e->xu = alloc((size_t)B * e->sx);
    e->acc = alloc(sizeof(int32_t) * B * e->sacc);
    e->acc_r = alloc(sizeof(int32_t) * B * e->sacc);
    e->xscale = alloc(sizeof(float) * B);
    e->xscale_r = alloc(sizeof(float) * B);
    e->exc_w0 = alloc(sizeof(float) * H);
    e->exc_w1 = alloc(sizeof(float) * H);
    e->hist_a = alloc(sizeof(int32_t) * hcap);
    e->hist_b = alloc(sizeof(int32_t) * hcap);
    e->hist_audio = alloc(sizeof(float) * hcap);
    e->mulaw_table = alloc(sizeof(float) * e->Q);
    e->in_t = alloc(sizeof(float) * e->n_in * 3 * H);
    e->voicing_fed = alloc(sizeof(float) * e->fcap);
    e->voicing_cond = alloc(sizeof(float) * e->ccap);
    if (model->predictor) {
        e->pred_setup = alloc(sizeof(vk_pred_setup));
        e->pred_fed = alloc(sizeof(vk_pred_frame) * e->fcap);
        e->pred_cond = alloc(sizeof(vk_pred_frame) * e->ccap);
        e->pred = alloc(sizeof(vk_pred_state));
        e->pred_thr = alloc(sizeof(float) * e->Q);
        if (!e->pred_setup || !e->pred_fed || !e->pred_cond || !e->pred || !e->pred_thr ||
            model->head != VK_HEAD_MULAW || B != 1 || e->nf < 3 || e->nf - 2 > VK_PRED_MAX_ENV ||
            vk_pred_setup_init(e->pred_setup, model->sample_rate, e->nf - 2, model->preemphasis, model->ltp_gain)) {
            vk_engine_destroy(e);
            return NULL;
        }
    }
    if ((e->E && (e->E != 2 || !model->exc_out_w || e->nf < 2 || model->sample_rate < 1)) ||
        !(model->preemphasis >= 0.0f && model->preemphasis <= 0.99f) ||
        !e->exc_inc || !e->exc_v || !e->exc_k || !e->exc ||
        !e->mulaw_table || !e->in_t || !e->frames || !e->cond || !e->cond_in || !e->cond_hid || !e->h || !e->hnew ||
        !model->R.bias || /* the GRU adds it unconditionally */
        !e->voicing_fed || !e->voicing_cond || !(model->highpass_hz >= 0.0f && model->highpass_hz < 1000.0f) ||
        !(model->temperature_unvoiced >= 0.0f) || !(model->temperature_unvoiced <= 100.0f) ||
        model->O2.rows != e->Q || (model->head == VK_HEAD_DUAL && model->O4.rows != 256) || /* one logit a class */
        !e->hmax || !e->hid || !e->logits || !e->xin || !e->xu || !e->acc || !e->xscale || !e->acc_r ||
        !e->xscale_r || !e->exc_w0 || !e->exc_w1 ||
        !e->hist_a || !e->hist_b || !e->hist_audio) {
        vk_engine_destroy(e);
        return NULL;
    }
    vk_mulaw_table(e->Q, e->mulaw_table); /* double precision, then rounded: no libm in the sample loop */
    if (e->pred_thr) vk_pred_thresholds(e->Q, e->mulaw_table, e->pred_thr);
    for (int r = 0; e->E && r < H; r++) {
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
    e->latency = (int64_t)model->lookahead * e->hop + (int64_t)B * (B - 1) * e->F;
    vk_engine_reset(e, seed);
    return e;
}

void vk_engine_destroy(vk_engine *e)
{
    if (!e) return;
    void *bufs[] = {e->frames, e->exc_inc, e->exc_v, e->exc_k, e->exc, e->cond, e->cond_in, e->cond_hid, e->h, e->hnew,
                    e->hmax, e->hid, e->logits, e->xin, e->xu, e->acc, e->xscale, e->acc_r, e->xscale_r,
                    e->exc_w0, e->exc_w1,
                    e->hist_a, e->hist_b, e->hist_audio, e->mulaw_table, e->in_t, e->voicing_fed, e->voicing_cond,
                    e->pred_setup, e->pred_fed, e->pred_cond, e->pred, e->pred_thr};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]);
    free(e);
}

void vk_engine_set_level(vk_engine *e, int level)
{
    e->isa = *vk_isa_tables[level];
}

void vk_engine_set_temperature(vk_engine *e, float t) { e->temperature = e->temperature_unvoiced = t > 0.0f ? t : 0.0f; }

/* The temperature of a frame of voicing v: linear from the unvoiced to the voiced one
 * (exactly the one temperature when both are equal, as in every preset before format 4). */
static inline float frame_temperature(const vk_engine *e, float v)
{
    return e->temperature_unvoiced + v * (e->temperature - e->temperature_unvoiced);
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
    memset(e->h, 0, sizeof(float) * e->B * e->shid);
    memset(e->hmax, 0, sizeof(float) * e->B);
    e->step = 0;
    e->frontier = 0;
    e->delivered = 0;
    e->pending_zeros = e->latency;
    e->underrun = 0;
}

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
        const float *raw = frames + (int64_t)i * e->nf;
        normalize_frame(e, raw, e->frames + (f % e->fcap) * e->nf);
        e->voicing_fed[f % e->fcap] = raw_voicing(e, raw);
        if (e->pred) vk_pred_frame_from_features(e->pred_setup, raw, &e->pred_fed[f % e->fcap]);
        if (e->E)
            exc_params(e, frames + (int64_t)i * e->nf, &e->exc_inc[f % e->fcap], &e->exc_k[f % e->fcap],
                       &e->exc_v[f % e->fcap]);
    }
    e->frames_fed += n;
    return n;
}

void vk_engine_finish(vk_engine *e) { e->finished = 1; }

/* Frame whose conditioning the step needs for sub-tensor 0 (the leader). */
static int step_ready(const vk_engine *e, int64_t t)
{
    if (e->frames_fed == 0) return 0;
    int64_t f0 = (t * e->B) / e->hop;
    if (e->finished) return 1;
    return f0 + e->m.lookahead < e->frames_fed;
}

static void prev_sample(const vk_engine *e, int64_t i, int *a, int *b, float *audio)
{
    if (i < 0) {
        if (e->m.head == VK_HEAD_DUAL) { *a = 128; *b = 0; }
        else { *a = e->Q / 2; *b = 0; }
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
    x[0] = class_input(vk_pred_class(e->pred_thr, e->Q, s_prev), e->Q);
    x[1] = class_input(vk_pred_class(e->pred_thr, e->Q, p), e->Q);
    x[2] = class_input(e->pred->pos ? e->hist_a[(e->pred->pos - 1) & e->hmask] : e->Q / 2, e->Q);
}

/* Lanes of every sub-tensor active in engine e's next step, with their inputs set and
 * conditioning computed. Returns the lane count. */
static int prepare_lanes(vk_engine *e, vk_lane *ln)
{
    const int B = e->B, F = e->F, H = e->H, n_in = e->n_in;
    const int64_t t = e->step;
    int nb = F > 0 ? (int)(t / F) + 1 : B;
    if (nb > B) nb = B;
    compute_cond_upto(e, (t * B) / e->hop);
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
            if (e->m.head == VK_HEAD_DUAL) { x[0] = byte_input(pa); x[1] = byte_input(pb); }
            else { x[0] = class_input(pa, e->Q); x[1] = 0.0f; }
            x[2] = 0.0f;
        }
        for (int k = 1; k <= F; k++) {
            int64_t ci = (j + k - 1) * B + b - 1;
            x[2 + k] = (b == 0 || ci < 0) ? 0.0f : e->hist_audio[ci & e->hmask];
        }
        if (e->E) {
            const float *ev = exc_of(e, i);
            x[3 + F] = ev[0];
            x[4 + F] = ev[1];
        }
    }
    return nb;
}

/* The new states become the states of the lanes 0..nl-1: a pointer swap when every
 * sub-tensor stepped (no copy), else a copy (lanes past nl keep their state). */
static void commit_states(vk_engine *e, int nl)
{
    if (nl == e->B) {
        float *t = e->h;
        e->h = e->hnew;
        e->hnew = t;
    } else {
        memcpy(e->h, e->hnew, sizeof(float) * nl * e->shid);
    }
}

/* Store the lanes' samples in e's history and move e to its next step. */
static void finish_lanes(vk_engine *e, const vk_lane *ln, int nl)
{
    for (int k = 0; k < nl; k++) {
        const int64_t i = ln[k].i;
        e->hist_a[i & e->hmask] = ln[k].cls_a;
        e->hist_b[i & e->hmask] = ln[k].cls_b;
        if (e->pred)
            e->hist_audio[i & e->hmask] = vk_pred_push(e->pred, ln[k].stp, ln[k].pred, e->mulaw_table[ln[k].cls_a]);
        else
            e->hist_audio[i & e->hmask] = e->m.head == VK_HEAD_DUAL ? dual_audio(ln[k].cls_a, ln[k].cls_b)
                                                                    : e->mulaw_table[ln[k].cls_a];
    }
    commit_states(e, nl);
    for (int k = 0; k < nl; k++) e->hmax[ln[k].b] = ln[k].hmax_a > ln[k].hmax_b ? ln[k].hmax_a : ln[k].hmax_b;
    e->step++;
    int64_t lag_pos = e->step - (int64_t)(e->B - 1) * e->F; /* positions done by every sub-tensor */
    if (lag_pos > 0) e->frontier = lag_pos * e->B;
}

/* One subscale step: every active sub-tensor generates one sample. */
static void run_step(vk_engine *e)
{
    vk_lane ln[VK_MAX_BATCH];
    const vk_scratch s = {e->xu, e->acc, e->acc_r, e->xscale, e->xscale_r};
    int nl = prepare_lanes(e, ln);
    step_lanes(e, ln, nl, &s, NULL, NULL, NULL, NULL);
    finish_lanes(e, ln, nl);
}

int64_t vk_engine_ready(const vk_engine *e)
{
    /* Generated and pending samples, plus what the queued frames allow without waiting. */
    int64_t have = e->pending_zeros + (e->frontier - e->delivered);
    if (e->frames_fed == 0) return have;
    if (e->finished) return INT64_MAX / 4;
    if (e->frames_fed - e->m.lookahead <= 0) return have;
    int64_t last_step = ((e->frames_fed - e->m.lookahead) * e->hop - 1) / e->B; /* last ready step */
    int64_t lag_pos = last_step + 1 - (int64_t)(e->B - 1) * e->F;
    int64_t frontier = lag_pos > 0 ? lag_pos * e->B : 0;
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
    while (k < n && e->pending_zeros > 0) { out[k++] = 0.0f; e->pending_zeros--; }
    while (k < n) {
        if (e->delivered < e->frontier) {
            out[k++] = deemphasize(e, e->hist_audio[e->delivered & e->hmask]);
            e->delivered++;
            continue;
        }
        if (!step_ready(e, e->step)) break;
        run_step(e);
    }
    if (k < n) {
        e->underrun += n - k;
        memset(out + k, 0, sizeof(float) * (n - k));
    }
}

int64_t vk_engine_latency(const vk_engine *e) { return e->latency; }
int64_t vk_engine_underrun_samples(const vk_engine *e) { return e->underrun; }
int64_t vk_engine_generated(const vk_engine *e) { return e->frontier; }

/* ---------- teacher forcing (tests: engine against the float reference) ---------- */

void vk_engine_teacher_force(vk_engine *e, const float *features, int n_frames,
                             const int32_t *cls_a, const int32_t *cls_b, int n,
                             float *logits_a, float *logits_b)
{
    const int n_in = e->n_in;
    const int dual = e->m.head == VK_HEAD_DUAL;
    const vk_scratch s = {e->xu, e->acc, e->acc_r, e->xscale, e->xscale_r};
    float *exc = e->exc;
    double phase = 0.0;
    int64_t cur_frame = -1;
    vk_lane lane = {e, 0, 0, e->cond, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}; /* cond slot 0: frames in order */
    vk_pred_frame pf;
    float s_prev = 0.0f;
    if (e->pred) vk_pred_reset(e->pred);
    memset(e->h, 0, sizeof(float) * e->shid);
    e->hmax[0] = 0.0f;
    for (int i = 0; i < n; i++) {
        int64_t f = i / e->hop;
        if (f != cur_frame) {
            for (int k = 0; k < e->K; k++) {
                int64_t src = clamp_frame(f - e->m.ctx_before + k, n_frames - 1);
                normalize_frame(e, features + src * e->nf, e->cond_in + k * e->nf);
            }
            cond_from_window(e, e->cond);
            if (e->E) {
                double inc, v;
                int32_t k;
                exc_params(e, features + clamp_frame(f, n_frames - 1) * e->nf, &inc, &k, &v);
                phase = exc_frame(e, phase, inc, k, v, exc);
            }
            if (e->pred) vk_pred_frame_from_features(e->pred_setup, features + clamp_frame(f, n_frames - 1) * e->nf, &pf);
            cur_frame = f;
        }
        const float *ev = exc + (i - cur_frame * e->hop) * 2;
        float *x = e->xin;
        if (dual) {
            x[0] = byte_input(i ? cls_a[i - 1] : 128);
            x[1] = byte_input(i ? cls_b[i - 1] : 0);
            x[2] = 0.0f;
        } else if (e->pred) {
            lane.stp = vk_pred_stp(&pf, e->pred);
            lane.pred = lane.stp + vk_pred_ltp(&pf, e->pred);
            x[0] = class_input(vk_pred_class(e->pred_thr, e->Q, s_prev), e->Q);
            x[1] = class_input(vk_pred_class(e->pred_thr, e->Q, lane.pred), e->Q);
            x[2] = class_input(i ? cls_a[i - 1] : e->Q / 2, e->Q);
        } else {
            x[0] = class_input(i ? cls_a[i - 1] : e->Q / 2, e->Q);
            x[1] = 0.0f;
            x[2] = 0.0f;
        }
        for (int k = 3; k < n_in; k++) x[k] = 0.0f;
        if (e->E) { x[n_in - 2] = ev[0]; x[n_in - 1] = ev[1]; }
        lane.i = i;
        step_lanes(e, &lane, 1, &s, cls_a + i, dual ? cls_b + i : NULL, logits_a + (int64_t)i * e->Q,
                   dual ? logits_b + (int64_t)i * 256 : NULL);
        commit_states(e, 1);
        e->hmax[0] = lane.hmax_a > lane.hmax_b ? lane.hmax_a : lane.hmax_b;
        if (e->pred) {
            const int c = cls_a[i] < 0 ? 0 : (cls_a[i] >= e->Q ? e->Q - 1 : cls_a[i]);
            s_prev = vk_pred_push(e->pred, lane.stp, lane.pred, e->mulaw_table[c]);
        }
    }
    if (e->pred) vk_pred_reset(e->pred);
}

/* ---------- several engines on one model, stepped together ---------- */

struct vk_batch {
    int sx, sacc;
    vk_scratch s;
};

vk_batch *vk_batch_create(const vk_engine *like)
{
    vk_batch *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->sx = like->sx;
    g->sacc = like->sacc;
    g->s.xu = alloc((size_t)VK_MAX_BATCH * like->sx);
    g->s.acc = alloc(sizeof(int32_t) * VK_MAX_BATCH * like->sacc);
    g->s.acc_r = alloc(sizeof(int32_t) * VK_MAX_BATCH * like->sacc);
    g->s.xscale = alloc(sizeof(float) * VK_MAX_BATCH);
    g->s.xscale_r = alloc(sizeof(float) * VK_MAX_BATCH);
    if (!g->s.xu || !g->s.acc || !g->s.xscale || !g->s.acc_r || !g->s.xscale_r) {
        vk_batch_destroy(g);
        return NULL;
    }
    return g;
}

void vk_batch_destroy(vk_batch *g)
{
    if (!g) return;
    free(g->s.xu);
    free(g->s.acc);
    free(g->s.xscale);
    free(g->s.acc_r);
    free(g->s.xscale_r);
    free(g);
}

static int same_floats(const float *a, const float *b, int64_t n)
{
    return a == b || (a && b && memcmp(a, b, sizeof(float) * (size_t)n) == 0);
}

static int same_layer(const vk_layer *a, const vk_layer *b)
{
    if (a->rows != b->rows || a->cols != b->cols || a->cols_padded != b->cols_padded ||
        a->m.row_blocks != b->m.row_blocks || a->m.col_blocks != b->m.col_blocks)
        return 0;
    if (a->rows == 0) return 1;
    const int64_t nnz = a->m.row_ptr[a->m.row_blocks];
    if (nnz != b->m.row_ptr[b->m.row_blocks]) return 0;
    return (a->m.row_ptr == b->m.row_ptr ||
            !memcmp(a->m.row_ptr, b->m.row_ptr, sizeof(int32_t) * (size_t)(a->m.row_blocks + 1))) &&
           (a->m.col_idx == b->m.col_idx || !memcmp(a->m.col_idx, b->m.col_idx, sizeof(int32_t) * (size_t)nnz)) &&
           (a->m.blocks == b->m.blocks || !memcmp(a->m.blocks, b->m.blocks, (size_t)nnz * 64)) &&
           same_floats(a->scales, b->scales, a->rows) && same_floats(a->bias, b->bias, a->rows);
}

int vk_engine_same_model(const vk_engine *a, const vk_engine *b)
{
    const vk_model *x = &a->m, *y = &b->m;
    if (x->hidden != y->hidden || x->head != y->head || x->n_classes != y->n_classes ||
        x->subscale != y->subscale || x->horizon != y->horizon || x->n_features != y->n_features ||
        x->hop != y->hop || x->ctx_before != y->ctx_before || x->lookahead != y->lookahead ||
        x->cond_hidden != y->cond_hidden || x->excitation != y->excitation || x->sample_rate != y->sample_rate)
        return 0;
    const int H = a->H, nf = a->nf, ch = x->cond_hidden;
    return same_floats(x->feat_mean, y->feat_mean, nf) && same_floats(x->feat_std, y->feat_std, nf) &&
           same_floats(x->cond1_w, y->cond1_w, (int64_t)ch * a->K * nf) && same_floats(x->cond1_b, y->cond1_b, ch) &&
           same_floats(x->cond2_w, y->cond2_w, (int64_t)3 * H * ch) && same_floats(x->cond2_b, y->cond2_b, 3 * H) &&
           same_floats(x->in_w, y->in_w, (int64_t)3 * H * a->n_in) &&
           same_floats(x->sub_bias, y->sub_bias, (int64_t)a->B * 3 * H) &&
           (a->E == 0 || same_floats(x->exc_out_w, y->exc_out_w, (int64_t)H * a->E)) &&
           same_layer(&x->R, &y->R) && same_layer(&x->O1, &y->O1) && same_layer(&x->O2, &y->O2) &&
           same_layer(&x->O3, &y->O3) && same_layer(&x->O4, &y->O4);
}

int64_t vk_engine_buffered(const vk_engine *e) { return e->pending_zeros + (e->frontier - e->delivered); }

int vk_engine_step_group(vk_batch *g, vk_engine *const *es, int n)
{
    vk_lane ln[VK_MAX_BATCH];
    vk_engine *owners[VK_MAX_BATCH];
    int nl = 0, stepped = 0;
    for (int k = 0; k < n; k++) {
        vk_engine *e = es[k];
        if (!step_ready(e, e->step)) continue;
        stepped++;
        if (e->B != 1 || e->sx != g->sx || e->sacc != g->sacc) { /* subscale engines batch their own lanes */
            run_step(e);
            continue;
        }
        if (nl == VK_MAX_BATCH) {
            step_lanes(owners[0], ln, nl, &g->s, NULL, NULL, NULL, NULL);
            for (int j = 0; j < nl; j++) finish_lanes(owners[j], &ln[j], 1);
            nl = 0;
        }
        prepare_lanes(e, &ln[nl]);
        owners[nl++] = e;
    }
    if (nl) {
        step_lanes(owners[0], ln, nl, &g->s, NULL, NULL, NULL, NULL);
        for (int j = 0; j < nl; j++) finish_lanes(owners[j], &ln[j], 1);
    }
    return stepped;
}
