/* The plugin host's real-time mixer: channels of plugin instances (vocoder_plugin.h),
 * events and voice swaps handed over from one control thread through lock-free
 * single-producer/single-consumer slots, and callback timing for status displays.
 *
 * vp_host_render is the whole audio callback: it pops each channel's events, hands
 * them to the channel's instance, renders and mixes it, swaps in a voice posted with
 * vp_host_swap at the block boundary with a linear crossfade, and records how long it
 * took. It allocates nothing, takes no lock and cannot fail.
 *
 * Control side (one thread at a time): vp_host_send, vp_host_swap, vp_host_collect,
 * the getters. A swapped-out voice is handed back by vp_host_collect once its
 * crossfade is over; only then may the control thread destroy it. */
#ifndef VP_HOST_H
#define VP_HOST_H

#include <stdint.h>

#include "plugin/vocoder_plugin.h"

#define VP_MAX_CHANNELS 16
#define VP_RING 512    /* events in flight per channel (power of 2) */
#define VP_TIMES 16384 /* callback durations kept (power of 2) */

typedef struct vp_host vp_host;

typedef struct vp_voice { /* a voice as the mixer sees it; owned by the control side */
    const vocoder_plugin_descriptor *d;
    vocoder_plugin_instance *inst;
    int64_t tag; /* the control side's id */
} vp_voice;

vp_host *vp_host_create(int max_block, int crossfade);
void vp_host_destroy(vp_host *h); /* does not destroy instances */

/* Queue an event for channel ch's voice; 0 when dropped (ring full or bad channel). */
int vp_host_send(vp_host *h, int ch, const vocoder_plugin_event *ev);
/* Post v (NULL: silence) to become channel ch's voice at the next block; 0 when a
 * previous swap on ch is not finished (try again after vp_host_collect). */
int vp_host_swap(vp_host *h, int ch, vp_voice *v);
/* The voice channel ch let go of (faded out), or NULL; each is returned once. */
vp_voice *vp_host_collect(vp_host *h, int ch);
/* 1 while a swap on ch is posted or fading. */
int vp_host_swapping(vp_host *h, int ch);
void vp_host_set_gain(vp_host *h, int ch, float gain);

void vp_host_render(vp_host *h, float *out, int n);

/* Statistics. durations: copies up to max of the latest callback times (ns), newest
 * last; returns how many. */
int vp_host_times(vp_host *h, int64_t *ns, int max);
int64_t vp_host_callbacks(const vp_host *h);
int64_t vp_host_dropped(const vp_host *h, int ch);
float vp_host_peak(vp_host *h, int ch);                /* the peak since the last call */
int64_t vp_host_current_tag(const vp_host *h, int ch); /* -1: none */

/* A paced clock for hosts without an audio device: a thread (SCHED_FIFO at the lowest
 * priority where allowed) that renders `block` samples into nothing every block/rate
 * seconds by the monotonic clock, so timing and status stay meaningful. It never
 * touches Python. A period missed by more than one period counts as late and the clock
 * starts again from now. 0 on success. */
int vp_host_clock_start(vp_host *h, int block, int rate);
void vp_host_clock_stop(vp_host *h);
int64_t vp_host_clock_late(const vp_host *h);
int vp_host_clock_realtime(const vp_host *h); /* 1 when it got SCHED_FIFO, 0 if not, -1 not running */

#endif
