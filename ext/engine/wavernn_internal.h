/* The engine's insides, shared by the files of the WaveRNN engine (wavernn.h is the
 * public contract, docs/model.md the model):
 *
 *   wavernn.c        construction, level, reset
 *   conditioning.c   per frame: normalised features, excitation, conditioning network
 *   lanes.c          per sample: the network for every sample in flight (GRU, output
 *                    layers, sampling)
 *   stream.c         feeding frames, stepping, rendering the output stream
 *   teacher_force.c  the network on given classes (tests)
 *   batch.c          several engines on one model stepped together
 *
 * Per-level operations come from the engine's copy of its level's table (isa.h); the
 * float code here is compiled once with -ffp-contract=off, so every level produces the
 * same samples. */
#ifndef VK_WAVERNN_INTERNAL_H
#define VK_WAVERNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "isa.h"
#include "predict.h"
#include "rng.h"
#include "wavernn.h"

#define GUMBEL_BITS VK_NOISE_BITS /* sample.h indexes the table with this many bits */
#define GUMBEL_SIZE (1 << GUMBEL_BITS)

struct vk_engine {
    vk_model m;
    vk_isa_table isa; /* the level's functions (a copy: one load per call, as fields) */
    vk_gru_shape gshape;
    /* sizes (docs/model.md's symbols in the comments) */
    int n_hidden;     /* H: GRU units */
    int n_coarse;     /* Hc = H/2: coarse units (dual head) */
    int n_subscale;   /* B: subscale sub-tensors (1: sequential) */
    int horizon;      /* F: subscale horizon (0 when B = 1) */
    int n_in;         /* n_in = 3 + F + E: GRU inputs */
    int ctx_frames;   /* K = ctx_before + 1 + lookahead: frames the conditioning sees */
    int n_features;   /* nf: features per frame */
    int n_classes;    /* Q: classes of the first softmax (256 for dual) */
    int hop;          /* samples per frame */
    int n_excitation; /* E: excitation channels, 0 or 2 */
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
    float *mulaw_table;     /* [Q] audio value of each mu-law class */
    float *in_t;            /* in_w transposed, [n_in][3H] */
    int xu_stride;          /* bytes between lanes' quantised inputs (64-byte multiple) */
    int acc_stride;         /* int32 between lanes' accumulators (>= max(3H, Q), 16-multiple) */
    int state_stride;       /* floats between sub-tensors' h, hnew, hid (H padded to 16) */
    int logits_stride;      /* floats between sub-tensors' logits (Q padded to 16) */

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

/* ---------- mappings between classes, network inputs and audio ---------- */

static inline float byte_input(int v) { return ((float)v - 127.5f) / 127.5f; }

static inline float dual_audio(int c, int f) { return (float)(c * 256 + f - 32768) / 32768.0f; }

static inline float class_input(int k, int q) { return 2.0f * (float)k / (float)(q - 1) - 1.0f; }

static inline int64_t clamp_frame(int64_t f, int64_t last) { return f < 0 ? 0 : (f > last ? last : f); }

/* Excitation of global sample i (its frame's conditioning is computed). */
static inline const float *exc_of(const vk_engine *e, int64_t i)
{
    int64_t f = i / e->hop;
    return e->exc + ((f % e->ccap) * e->hop + (i - f * e->hop)) * 2;
}

/* The temperature of a frame of voicing v: linear from the unvoiced to the voiced one
 * (exactly the one temperature when both are equal, as in every preset before format 4). */
static inline float frame_temperature(const vk_engine *e, float v)
{
    return e->temperature_unvoiced + v * (e->temperature - e->temperature_unvoiced);
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

/* Batched scratch: quantised inputs and accumulators of up to VK_MAX_BATCH lanes; R's
 * accumulators have their own (both GRU halves read them, the output layers run
 * between). */
typedef struct {
    uint8_t *xu;
    int32_t *acc, *acc_r;
    float *xscale, *xscale_r;
} vk_scratch;

/* conditioning.c */
void vk_wr_exc_params(const vk_engine *e, const float *raw, double *inc, int32_t *k, double *v);
double vk_wr_exc_frame(const vk_engine *e, double p, double inc, int32_t k, double v, float *out);
float vk_wr_raw_voicing(const vk_engine *e, const float *raw);
void vk_wr_normalize_frame(const vk_engine *e, const float *raw, float *z);
void vk_wr_cond_from_window(vk_engine *e, float *out);
void vk_wr_compute_cond_upto(vk_engine *e, int64_t upto);
/* lanes.c */
void vk_wr_step_lanes(const vk_engine *w, vk_lane *ln, int nl, const vk_scratch *s, const int32_t *force_a,
                      const int32_t *force_b, float *out_a, float *out_b);
/* stream.c */
int vk_wr_step_ready(const vk_engine *e, int64_t t);
int vk_wr_prepare_lanes(vk_engine *e, vk_lane *ln);
void vk_wr_commit_states(vk_engine *e, int nl);
void vk_wr_finish_lanes(vk_engine *e, const vk_lane *ln, int nl);
void vk_wr_run_step(vk_engine *e);
/* wavernn.c: zeroed, 64-byte aligned, size rounded up to 64 bytes */
void *vk_wr_alloc(size_t n);

#endif
