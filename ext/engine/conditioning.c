/* Per frame: the features normalised, the excitation (docs/model.md) and the
 * conditioning network, computed once per frame into the engine's rings. */
#include <math.h>
#include <string.h>

#include "detmath.h"
#include "wavernn_internal.h"

/* ---------- excitation (docs/model.md) ---------- */

/* Per-frame parameters from the raw (not normalised) f0 and voicing features. */
void vk_wr_exc_params(const vk_engine *e, const float *raw, double *inc, int32_t *k, double *v)
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

/* hop samples of excitation for one frame from phase p (the level's version,
 * excitation.h); returns the next frame's phase. */
double vk_wr_exc_frame(const vk_engine *e, double p, double inc, int32_t k, double v, float *out)
{
    return e->isa.excitation(p, inc, k, v, e->hop, out);
}

/* Test hook: the SSE2 excitation against the plain C one it must equal bit for bit, over
 * MIDI pitches 12..120 in steps of 1/8 and 40 frames each from a phase of 0.37. Returns
 * the number of differing output floats (0 on a build without SSE2, trivially: its
 * table holds the plain C one). */
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
            pa = vk_table_sse2.excitation(pa, inc, k, v, hop, a);
            pb = vk_excitation_f64_ref(pb, inc, k, v, hop, b);
            bad += memcmp(&pa, &pb, sizeof pa) != 0;
            for (int j = 0; j < 2 * hop; j++) bad += memcmp(&a[j], &b[j], sizeof(float)) != 0;
        }
    }
    return bad;
}

/* ---------- conditioning ---------- */

/* Feature 1 as a voicing in [0, 1] (NaN -> 0); 1 for presets without one. */
float vk_wr_raw_voicing(const vk_engine *e, const float *raw)
{
    if (e->n_features < 2) return 1.0f;
    float v = raw[1];
    if (!(v == v)) v = 0.0f;
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

void vk_wr_normalize_frame(const vk_engine *e, const float *raw, float *z)
{
    for (int i = 0; i < e->n_features; i++) {
        float v = (raw[i] - e->m.feat_mean[i]) / e->m.feat_std[i];
        if (!(v == v)) v = 0.0f;
        z[i] = v > 8.0f ? 8.0f : (v < -8.0f ? -8.0f : v);
    }
}

/* cond = cond2(tanh(cond1(window))) where window holds K normalised frames. */
void vk_wr_cond_from_window(vk_engine *e, float *out)
{
    const vk_model *m = &e->m;
    e->isa.dense(m->cond1_w, m->cond1_b, e->cond_in, m->cond_hidden, e->ctx_frames * e->n_features, e->cond_hid);
    for (int i = 0; i < m->cond_hidden; i++) e->cond_hid[i] = vk_tanh1(e->cond_hid[i]);
    e->isa.dense(m->cond2_w, m->cond2_b, e->cond_hid, 3 * e->n_hidden, m->cond_hidden, out);
}

/* Conditioning (and excitation) of every frame up to `upto` (inclusive), from the
 * frame ring. */
void vk_wr_compute_cond_upto(vk_engine *e, int64_t upto)
{
    const int64_t last = e->frames_fed - 1;
    for (; e->cond_next <= upto; e->cond_next++) {
        const int64_t f = e->cond_next;
        for (int k = 0; k < e->ctx_frames; k++) {
            int64_t src = clamp_frame(f - e->m.ctx_before + k, last);
            memcpy(e->cond_in + k * e->n_features, e->frames + (src % e->fcap) * e->n_features,
                   sizeof(float) * e->n_features);
        }
        vk_wr_cond_from_window(e, e->cond + (f % e->ccap) * 3 * e->n_hidden);
        const int64_t own = clamp_frame(f, last) % e->fcap;
        e->voicing_cond[f % e->ccap] = e->voicing_fed[own];
        if (e->pred) e->pred_cond[f % e->ccap] = e->pred_fed[own];
        if (e->n_excitation) {
            int64_t src = own;
            e->exc_phase = vk_wr_exc_frame(e, e->exc_phase, e->exc_inc[src], e->exc_k[src], e->exc_v[src],
                                           e->exc + (f % e->ccap) * e->hop * 2);
        }
    }
}
