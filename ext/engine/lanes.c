/* Per sample: the network for every lane (a sample in flight): GRU (coarse half, then
 * fine half), the output layers and the draw, with the matrix products of all lanes in
 * one batched kernel call. */
#include <string.h>

#include "wavernn_internal.h"

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

static float *lane_buf(const vk_lane *l, int which)
{
    const vk_engine *e = l->e;
    const int b = l->b;
    switch (which) {
        case BUF_H: return e->h + (int64_t)b * e->state_stride;
        case BUF_HNEW: return e->hnew + (int64_t)b * e->state_stride;
        case BUF_HNEW_FINE: return e->hnew + (int64_t)b * e->state_stride + e->n_coarse;
        case BUF_HID: return e->hid + (int64_t)b * e->state_stride;
        default: return e->logits + (int64_t)b * e->logits_stride;
    }
}

static float *lane_input(const vk_lane *l) { return l->e->xin + l->b * (l->e->n_in + 1); }

/* acc = L x for every lane (acc_stride apart), x quantised once with its scale in xscale[k];
 * maxabs[k] is the lane's max |x|, known from whoever wrote x. */
static void matmul_lanes(const vk_engine *w, const vk_layer *L, const vk_lane *ln, int nl, int in, const float *maxabs,
                         const vk_scratch *s, int32_t *acc, float *xscale)
{
    for (int k = 0; k < nl; k++)
        xscale[k] = w->isa.quantize_max(lane_buf(&ln[k], in), L->cols, L->cols_padded,
                                        s->xu + (int64_t)k * w->xu_stride, maxabs[k]);
    if (nl == 1)
        w->isa.sparse_gemv(&L->m, s->xu, acc);
    else
        w->isa.sparse_gemm(&L->m, nl, s->xu, w->xu_stride, acc, w->acc_stride);
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
        const float *ev = lane_input(&ln[k]) + 3 + w->horizon;
        ln[k].hid_max = w->isa.dequantize_relu(
            s->acc + (int64_t)k * w->acc_stride, L->scales, s->xscale[k], L->bias,
            w->n_excitation ? w->exc_w0 + row0 : NULL, w->n_excitation ? w->exc_w1 + row0 : NULL,
            w->n_excitation ? ev[0] : 0.0f, w->n_excitation ? ev[1] : 0.0f, lane_buf(&ln[k], BUF_HID), L->rows);
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
        const int32_t *acc = s->acc + (int64_t)k * w->acc_stride;
        float *logits = lane_buf(&ln[k], BUF_LOGITS);
        int c;
        if (forced) {
            w->isa.dequantize(acc, L->scales, s->xscale[k], L->bias, logits, L->rows);
            memcpy(out, logits, sizeof(float) * L->rows);
            c = forced[0];
        } else {
            c = sample_class(ln[k].e, ln[k].temperature, L, acc, s->xscale[k], logits, L->rows);
        }
        if (fine)
            ln[k].cls_b = c;
        else
            ln[k].cls_a = c;
    }
}

/* The network for every lane: GRU (coarse half, then fine half once the coarse class
 * is known), softmax heads and sampling. Inputs (xin) and cond must be set. With
 * force_a/force_b (teacher forcing, one lane) the given classes are used instead of
 * sampled ones and the logits are copied to out_a/out_b. */
void vk_wr_step_lanes(const vk_engine *w, vk_lane *ln, int nl, const vk_scratch *s, const int32_t *force_a,
                      const int32_t *force_b, float *out_a, float *out_b)
{
    const int H = w->n_hidden, Hc = w->n_coarse;
    const int dual = w->m.head == VK_HEAD_DUAL;

    vk_gru_rec g[VK_MAX_BATCH];
    {
        float mx[VK_MAX_BATCH];
        for (int k = 0; k < nl; k++) mx[k] = ln[k].e->hmax[ln[k].b];
        matmul_lanes(w, &w->m.R, ln, nl, BUF_H, mx, s, s->acc_r, s->xscale_r);
    }
    for (int k = 0; k < nl; k++) { /* the GRU dequantises R h itself */
        g[k] = (vk_gru_rec){s->acc_r + (int64_t)k * w->acc_stride, w->m.R.scales, w->m.R.bias, s->xscale_r[k]};
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
