/* Teacher forcing (tests: the engine against the float reference). */
#include <string.h>

#include "wavernn_internal.h"

void vk_engine_teacher_force(vk_engine *e, const float *features, int n_frames, const int32_t *cls_a,
                             const int32_t *cls_b, int n, float *logits_a, float *logits_b)
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
    memset(e->h, 0, sizeof(float) * e->state_stride);
    e->hmax[0] = 0.0f;
    for (int i = 0; i < n; i++) {
        int64_t f = i / e->hop;
        if (f != cur_frame) {
            for (int k = 0; k < e->ctx_frames; k++) {
                int64_t src = clamp_frame(f - e->m.ctx_before + k, n_frames - 1);
                vk_wr_normalize_frame(e, features + src * e->n_features, e->cond_in + k * e->n_features);
            }
            vk_wr_cond_from_window(e, e->cond);
            if (e->n_excitation) {
                double inc, v;
                int32_t k;
                vk_wr_exc_params(e, features + clamp_frame(f, n_frames - 1) * e->n_features, &inc, &k, &v);
                phase = vk_wr_exc_frame(e, phase, inc, k, v, exc);
            }
            if (e->pred)
                vk_pred_frame_from_features(e->pred_setup, features + clamp_frame(f, n_frames - 1) * e->n_features,
                                            &pf);
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
            x[0] = class_input(vk_pred_class(e->pred_thr, e->n_classes, s_prev), e->n_classes);
            x[1] = class_input(vk_pred_class(e->pred_thr, e->n_classes, lane.pred), e->n_classes);
            x[2] = class_input(i ? cls_a[i - 1] : e->n_classes / 2, e->n_classes);
        } else {
            x[0] = class_input(i ? cls_a[i - 1] : e->n_classes / 2, e->n_classes);
            x[1] = 0.0f;
            x[2] = 0.0f;
        }
        for (int k = 3; k < n_in; k++) x[k] = 0.0f;
        if (e->n_excitation) {
            x[n_in - 2] = ev[0];
            x[n_in - 1] = ev[1];
        }
        lane.i = i;
        vk_wr_step_lanes(e, &lane, 1, &s, cls_a + i, dual ? cls_b + i : NULL, logits_a + (int64_t)i * e->n_classes,
                         dual ? logits_b + (int64_t)i * 256 : NULL);
        vk_wr_commit_states(e, 1);
        e->hmax[0] = lane.hmax_a > lane.hmax_b ? lane.hmax_a : lane.hmax_b;
        if (e->pred) {
            const int c = cls_a[i] < 0 ? 0 : (cls_a[i] >= e->n_classes ? e->n_classes - 1 : cls_a[i]);
            s_prev = vk_pred_push(e->pred, lane.stp, lane.pred, e->mulaw_table[c]);
        }
    }
    if (e->pred) vk_pred_reset(e->pred);
}
