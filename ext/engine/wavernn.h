/* The streaming WaveRNN engine (docs/model.md is the contract).
 *
 * vk_engine_create allocates everything the engine will ever use; after that no call
 * allocates, locks or fails loudly: feed() and render() run without the GIL from an
 * audio callback. Missing frames become silence and are counted. */
#ifndef VK_WAVERNN_H
#define VK_WAVERNN_H

#include <stdint.h>
#include "kernels/sparse_gemv_i8.h"

typedef struct {
    vk_bsmat m;
    const float *scales; /* [rows] */
    const float *bias;   /* [rows] */
    int rows, cols, cols_padded;
} vk_layer;

enum { VK_HEAD_DUAL = 0, VK_HEAD_MULAW = 1 };

typedef struct {
    int hidden, head, n_classes, subscale, horizon;
    int n_features, hop, ctx_before, lookahead, cond_hidden;
    int excitation, sample_rate;       /* E (0 or 2): features 0, 1 are f0 and voicing */
    float temperature;                 /* of voiced frames (voicing 1) */
    float temperature_unvoiced;        /* of unvoiced frames; linear in the voicing between */
    float preemphasis;                 /* a: the output is de-emphasised, y = x + a y[-1] */
    float highpass_hz;                 /* corner of the DC blocker after the de-emphasis */
    int predictor;                     /* 1: the network models the remainder after predict.h's
                                              prediction (mulaw head, B = 1 only) */
    float ltp_gain;                    /* the pitch predictor's gain at voicing 1 */
    const float *feat_mean, *feat_std; /* [nf] */
    const float *cond1_w, *cond1_b;    /* [cond_hidden, K*nf], [cond_hidden] */
    const float *cond2_w, *cond2_b;    /* [3H, cond_hidden], [3H] */
    const float *in_w;                 /* [3H, 3+F+E] */
    const float *sub_bias;             /* [B, 3H] */
    const float *exc_out_w;            /* [H, E]; NULL when E = 0 */
    vk_layer R, O1, O2, O3, O4;        /* O3, O4 unused for the mulaw head */
} vk_model;

typedef struct vk_engine vk_engine;

/* Returns NULL when memory is short or the model is inconsistent. frame_capacity:
 * frames the feature queue holds (feed beyond it is refused, not blocked). */
vk_engine *vk_engine_create(const vk_model *model, int level, uint64_t seed, int frame_capacity);
void vk_engine_destroy(vk_engine *e);
/* Back to the state right after create (same seed unless changed). */
void vk_engine_reset(vk_engine *e, uint64_t seed);
void vk_engine_set_level(vk_engine *e, int level);
/* Sample at temperature t in every frame (voiced or not) until the next reset. */
void vk_engine_set_temperature(vk_engine *e, float t);

/* Queue n frames of nf features each. Returns how many were taken (fewer when the
 * queue is full). */
int vk_engine_feed(vk_engine *e, const float *frames, int n);
/* No more frames will come: the last frame is repeated for the lookahead. */
void vk_engine_finish(vk_engine *e);
/* Fill out[0..n) with the next n samples of the output stream: latency_samples of
 * silence, then the generated audio. When frames run out, silence (counted). */
void vk_engine_render(vk_engine *e, float *out, int n);

int64_t vk_engine_latency(const vk_engine *e);
/* test hook: differing floats between the SSE2 and scalar excitation (0 = same bits) */
int64_t vk_excitation_selfcheck(int sample_rate, int hop);
int64_t vk_engine_underrun_samples(const vk_engine *e);
int64_t vk_engine_generated(const vk_engine *e);
/* Samples render() can deliver now without running out of frames. */
int64_t vk_engine_ready(const vk_engine *e);

/* Teacher forcing for tests (B = 1): run the network over the given audio classes
 * (dual: coarse[i], fine[i]; mulaw: cls[i]) and write the logits it predicts. */
void vk_engine_teacher_force(vk_engine *e, const float *features, int n_frames, const int32_t *cls_a,
                             const int32_t *cls_b, int n, float *logits_a, float *logits_b);

/* ---- several engines on one model, stepped together (live voices on one preset) ----
 * Each engine keeps its own state, features, RNG and history; one step runs the matrix
 * products of all of them as one batched kernel call. An engine gives the same samples
 * stepped alone or in a group. */
typedef struct vk_batch vk_batch;

/* Scratch for up to VK_MAX_BATCH engines built on like's model; NULL when memory is short. */
vk_batch *vk_batch_create(const vk_engine *like);
void vk_batch_destroy(vk_batch *g);
/* 1 when a and b were built from identical weights and hyperparameters (same pointers
 * or same contents), so they may share a batch. */
int vk_engine_same_model(const vk_engine *a, const vk_engine *b);
/* One step on every engine of es[0..n) whose features allow it (the others are left
 * alone); engines must share the model of the batch. Returns how many stepped. */
int vk_engine_step_group(vk_batch *g, vk_engine *const *es, int n);
/* Samples render() can deliver without stepping: latency silence plus generated. */
int64_t vk_engine_buffered(const vk_engine *e);

#endif
