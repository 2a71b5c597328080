/* Gumbel-max sampling per ISA level (docs/model.md, "Sampling").
 *
 *   t > 0:   class = argmax_k v_k,  v_k = logits[k] + t * noise[idx(key, k)]
 *   t <= 0:  class = argmax_k logits[k]
 *
 * noise is a non-decreasing table of 2^VK_NOISE_BITS Gumbel quantiles. The noise of
 * class k comes from a counter-based hash of (key, k) rather than from a sequential
 * RNG, so every class's noise is independent of which other classes were looked at: a
 * vector level draws 8 or 16 classes at once and skips the ones that provably cannot
 * win, and still picks the same class as the plain loop. The engine draws one 64-bit
 * key per call from its own seeded RNG; the sampler folds the top logit into it
 * (vk_noise_key).
 *
 * Definitions every level follows exactly (so the class is the same on all of them):
 * - v_k is one IEEE multiply and one add (no FMA), in float.
 * - argmax = the lowest k whose value is the largest and greater than -inf; NaN values
 *   never win; class 0 when no value is greater than -inf.
 * Skipping is only ever done on a bound that is sound in float arithmetic (rounding is
 * monotone): a class with logits[k] + t * B < v_top, where B >= its noise and v_top is
 * the value of the top-logit class, has v_k < v_top and can neither win nor tie. So
 * how much a level skips changes its speed, never the class. */
#ifndef VK_SAMPLE_H
#define VK_SAMPLE_H

#include <stdint.h>

#include "quantize.h"

#define VK_NOISE_BITS 12 /* noise table of 2^12 Gumbel quantiles */

/* Table index of class k's noise: the top bits of Wellons' "lowbias32" integer hash of
 * key_lo + k * golden ratio, with key_hi folded in between the two rounds (so two calls
 * whose low keys differ by a multiple of the step do not share shifted noise). The
 * hash's last step (x ^= x >> 16) cannot change the top 16 bits, so it is left out.
 * Only 32-bit wrapping multiplies, xors and shifts, which every vector level has. */
static inline uint32_t vk_noise_index(uint32_t k, uint32_t key_lo, uint32_t key_hi)
{
    uint32_t x = key_lo + k * 0x9e3779b9u;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= key_hi;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    return x >> (32 - VK_NOISE_BITS);
}

#define VK_NOISE_SIZE (1 << VK_NOISE_BITS)

/* Returns the class in [0, n). noise is only read when t > 0; key is ignored at t <= 0. */
/* The call's key with the top logit folded in (its bits, -0 read as +0, so every level
 * agrees). For given logits the key stays uniformly random, so the noise is still
 * independent Gumbel noise; but two runs whose logits differ draw different noise from
 * then on, as a sequential RNG would (without this, a render and a slightly perturbed
 * render would share noise and stay sample-identical until some argmax flipped). */
static inline uint64_t vk_noise_key(uint64_t key, float top)
{
    union {
        float f;
        uint32_t u;
    } b;
    b.f = top + 0.0f;
    return key ^ ((uint64_t)b.u * 0x9e3779b97f4a7c15ull);
}

typedef int (*vk_sample_fn)(const float *logits, int n, float t, const float *noise, uint64_t key);

/* The same class as vk_sample on logits[r] = (float)acc[r] * (row_scale[r] * x_scale)
 * + bias[r] (the dequantize rule (quantize.h); bias may be NULL), which it also writes to logits:
 * the output layer's dequantisation shares the sampler's first pass. */
typedef int (*vk_sample_acc_fn)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                                float *logits, int n, float t, const float *noise, uint64_t key);

/* Per-ISA versions (sample_<isa>.c, each compiled with its own flags, each an instance
 * of sample_body.h). ref is the definition; sse2 uses it too (SSE2 has no 32-bit multiply or gather, so a vector
 * version would not pay). */
#define VK_DECLARE_SAMPLE(isa)                                                                                \
    int vk_sample_f32_##isa(const float *logits, int n, float t, const float *noise, uint64_t key);           \
    int vk_sample_acc_f32_##isa(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, \
                                float *logits, int n, float t, const float *noise, uint64_t key);
VK_DECLARE_SAMPLE(ref)
VK_DECLARE_SAMPLE(avx2)
VK_DECLARE_SAMPLE(avx512)

/* End of a vector sampler's first pass: the classes [k, n) past its last full vector are
 * dequantised (acc not NULL; else logits are given) and scanned on from the vector
 * lanes' top and class, keeping the first largest. Sets *top_out, returns the class. */
static inline int vk_top_tail(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                              float *logits, int k, int n, float top, int k_top, float *top_out)
{
    if (acc && k < n) vk_dequantize_f32_ref(acc + k, row_scale + k, x_scale, bias ? bias + k : NULL, logits + k, n - k);
    for (; k < n; k++)
        if (logits[k] > top) {
            top = logits[k];
            k_top = k;
        }
    *top_out = top;
    return k_top;
}

/* The Gumbel values of classes [k, n), in order, folded into a running first maximum
 * (value best_v, class cls; returns the class): the plain C sampler runs it on every
 * class, the vector ones on the classes past their last full vector. Branchless (on a
 * flat distribution branches would mispredict). */
static inline int vk_sample_tail(const float *logits, int k, int n, float t, const float *noise, uint32_t key_lo,
                                 uint32_t key_hi, float best_v, int cls)
{
    for (; k < n; k++) {
        const float v = logits[k] + t * noise[vk_noise_index((uint32_t)k, key_lo, key_hi)];
        cls = v > best_v ? k : cls;
        best_v = v > best_v ? v : best_v;
    }
    return cls;
}

#endif
