/* Streaming rational resampler (polyphase windowed sinc), for the model rate to the
 * device rate. Coefficients are made at creation; processing allocates nothing and is
 * plain float C compiled once, so every ISA level gives the same samples. */
#ifndef VK_RESAMPLE_H
#define VK_RESAMPLE_H

#include <stdint.h>

#define VK_RESAMPLE_TAPS 32 /* taps per phase */

typedef struct vk_resampler vk_resampler;

/* Where the resampler gets its input: fill buf[0..n) with the next n input samples. */
typedef void (*vk_resample_source)(void *ctx, float *buf, int n);

/* NULL when out of memory or the rates are unusable (1..384000 Hz). */
vk_resampler *vk_resampler_create(int in_rate, int out_rate);
void vk_resampler_destroy(vk_resampler *r);
void vk_resampler_reset(vk_resampler *r);
/* Produce n output samples, pulling input from src as needed. */
void vk_resampler_pull(vk_resampler *r, float *out, int n, vk_resample_source src, void *ctx);
/* How many input samples the next pull of n outputs will fetch from its source. */
int64_t vk_resampler_input_needed(const vk_resampler *r, int n);
/* Group delay in output samples (0 when the rates are equal). */
double vk_resampler_delay(const vk_resampler *r);

#endif
