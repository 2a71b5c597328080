/* A live singing voice: events in, audio at the device rate out.
 *
 * Events come from one producer thread through a bounded lock-free ring; render()
 * (the audio thread) pops them, turns them into feature frames (singer.h, the one
 * singer render uses too), runs the engine and resamples. After create nothing allocates, locks or blocks. */
#ifndef VK_VOICE_H
#define VK_VOICE_H

#include <stdint.h>
#include "singer.h"
#include "wavernn.h"

#define VK_VOICE_QUEUE 1024 /* events in flight between the producer and render (power of 2) */
typedef struct vk_voice vk_voice;

/* NULL when out of memory or arguments are inconsistent (the model's features must be
 * f0, voicing, then n_env envelope bands). Copies the phone set. */
vk_voice *vk_voice_create(const vk_model *model, const vk_phoneset *ph, const vk_singer_params *params, int level,
                          uint64_t seed, int device_rate);
void vk_voice_destroy(vk_voice *v);
void vk_voice_reset(vk_voice *v, uint64_t seed);
void vk_voice_set_level(vk_voice *v, int level);

/* Producer side (one thread at a time). Returns 0 when the queue is full (dropped, counted). */
int vk_voice_push(vk_voice *v, const vk_voice_event *ev);
/* Consumer side: fill out[0..n) at the device rate. */
void vk_voice_render(vk_voice *v, float *out, int n);

int64_t vk_voice_latency(const vk_voice *v); /* device samples, event to sound, at most */
int64_t vk_voice_dropped(const vk_voice *v);
int64_t vk_voice_underrun(const vk_voice *v); /* model samples the engine could not produce */
int64_t vk_voice_position(const vk_voice *v); /* device samples rendered */
/* The last frame of features sent to the engine ([2 + n_env]); for tests and displays. */
const float *vk_voice_last_frame(const vk_voice *v);

/* Voices on one model rendered together: the engines' matrix products run as one
 * batched kernel call per sample, and each voice's samples are exactly those it gives
 * rendered alone. outs[k] receives voice k's n samples. At most VK_MAX_BATCH voices;
 * the batch comes from vk_voice_batch_create on any of them; never call render on a
 * voice of the group at the same time. */
int vk_voice_same_model(const vk_voice *a, const vk_voice *b);
vk_batch *vk_voice_batch_create(const vk_voice *like);
void vk_voice_render_group(vk_batch *g, vk_voice *const *vs, int nv, float *const *outs, int n);

#endif
