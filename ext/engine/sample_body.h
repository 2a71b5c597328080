/* Body of the Gumbel-max sampler (sample.h), compiled once per ISA file. Before
 * including, the file defines VK_ISA (the functions are vk_sample_f32_<VK_ISA> and
 * vk_sample_acc_f32_<VK_ISA>) and, for a vector version, VK_S_PASSES and its two passes:
 *
 *   static int top_pass(const int32_t *acc, const float *row_scale, float x_scale,
 *                       const float *bias, float *logits, int n, float *top_out)
 *       the top logit (to *top_out) and its first class; with acc (not NULL) the logits
 *       are first dequantised from it (quantize.h's rule) and written to logits.
 *   static int sample_rest(const float *logits, int n, float t, const float *noise,
 *                          uint64_t key, float top, int k_top)
 *       the class, once the top is known (t <= 0: k_top).
 *
 * Without them (sample_ref.c) the passes below run on single classes: the definition.
 * The vector passes end in vk_top_tail and vk_sample_tail (sample.h), the same scalar
 * steps, on the classes past their last full vector. */
#include <math.h>

#include "sample.h"
#include "vk_paste.h"

#ifndef VK_S_PASSES
static int top_pass(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *logits, int n,
                    float *top_out)
{
    return vk_top_tail(acc, row_scale, x_scale, bias, logits, 0, n, -INFINITY, 0, top_out);
}

/* every class, in order, without branches on the data; the vector levels skip classes,
 * soundly, instead */
static int sample_rest(const float *logits, int n, float t, const float *noise, uint64_t key, float top, int k_top)
{
    if (!(t > 0.0f)) return k_top; /* argmax: the first class holding the largest logit */
    key = vk_noise_key(key, top);
    return vk_sample_tail(logits, 0, n, t, noise, (uint32_t)key, (uint32_t)(key >> 32), -INFINITY, 0);
}
#endif

int VK_FN(vk_sample_f32_)(const float *logits, int n, float t, const float *noise, uint64_t key)
{
    float top;
    const int k_top = top_pass(NULL, NULL, 0.0f, NULL, (float *)logits, n, &top); /* reads only */
    return sample_rest(logits, n, t, noise, key, top, k_top);
}

int VK_FN(vk_sample_acc_f32_)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                              float *logits, int n, float t, const float *noise, uint64_t key)
{
    float top;
    const int k_top = top_pass(acc, row_scale, x_scale, bias, logits, n, &top);
    return sample_rest(logits, n, t, noise, key, top, k_top);
}
