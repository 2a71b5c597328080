/* A live singing voice: events in, audio at the device rate out.
 *
 * Events come from one producer thread through a bounded lock-free ring; render()
 * (the audio thread) pops them, turns them into feature frames (the live singer:
 * pitch with glide, bend and vibrato, dynamics, phoneme envelopes), runs the engine
 * and resamples. After create nothing allocates, locks or blocks. */
#ifndef VK_VOICE_H
#define VK_VOICE_H

#include <stdint.h>
#include "wavernn.h"

#define VK_VOICE_QUEUE 1024  /* events in flight between the producer and render (power of 2) */
#define VK_VOICE_PENDING 512 /* popped events waiting for their time */
#define VK_MAX_ONSET 6
#define VK_MAX_CODA 6
#define VK_MAX_ENV 64

enum {
    VK_EV_NOTE = 1, /* start a syllable on a note: onset consonants, then the nucleus held */
    VK_EV_GLIDE,    /* legato: move the pitch, keep the phoneme */
    VK_EV_RELEASE,  /* note off: coda consonants, then silence */
    VK_EV_BEND,     /* value -1..1 = -2..+2 semitones */
    VK_EV_CC,       /* controller cc, value 0..127 */
    VK_EV_PANIC     /* silence now */
};

typedef struct {
    int32_t type, offset; /* offset: device samples from the start of the next render */
    float note, value;    /* note: MIDI number; value: velocity, bend or CC value */
    int32_t cc;
    int16_t nucleus, n_onset, n_coda;
    int16_t onset[VK_MAX_ONSET], coda[VK_MAX_CODA];
    int64_t time;         /* set by render: absolute device sample */
} vk_voice_event;

typedef struct {
    int n_phonemes, n_env, sil;
    const float *envelopes;       /* [n_phonemes][n_env], ln power per band */
    const float *voicing;         /* [n_phonemes] 0..1 */
    const int32_t *frames;        /* [n_phonemes] typical duration in frames (>= 1) */
} vk_phoneset;

typedef struct vk_voice vk_voice;

/* NULL when out of memory or arguments are inconsistent (the model's features must be
 * f0, voicing, then n_env envelope bands). Copies the phone set. */
vk_voice *vk_voice_create(const vk_model *model, const vk_phoneset *ph, int level, uint64_t seed,
                          int device_rate);
void vk_voice_destroy(vk_voice *v);
void vk_voice_reset(vk_voice *v, uint64_t seed);
void vk_voice_set_level(vk_voice *v, int level);

/* Producer side (one thread at a time). Returns 0 when the queue is full (dropped, counted). */
int vk_voice_push(vk_voice *v, const vk_voice_event *ev);
/* Consumer side: fill out[0..n) at the device rate. */
void vk_voice_render(vk_voice *v, float *out, int n);

int64_t vk_voice_latency(const vk_voice *v);   /* device samples, event to sound, at most */
int64_t vk_voice_dropped(const vk_voice *v);
int64_t vk_voice_underrun(const vk_voice *v);  /* model samples the engine could not produce */
int64_t vk_voice_position(const vk_voice *v);  /* device samples rendered */
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
