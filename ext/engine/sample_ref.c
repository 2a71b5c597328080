/* Plain C Gumbel-max sampler: the definition the vector versions must match (see
 * sample.h). Used by the ref and sse2 levels (SSE2 has no 32-bit multiply or gather,
 * so a vector version would not pay) and on non-x86 builds. */
#include "sample.h"

#include <math.h>

int vk_sample_f32_ref(const float *logits, int n, float t, const float *noise, uint64_t key)
{
    float top = -INFINITY;
    int k_top = 0;
    for (int k = 0; k < n; k++)
        if (logits[k] > top) {
            top = logits[k];
            k_top = k;
        }                          /* false for NaN */
    if (!(t > 0.0f)) return k_top; /* argmax: the first class holding the largest logit */
    /* every class, in order, without branches on the data (they mispredict on flat
     * distributions); the vector levels skip classes, soundly, instead */
    key = vk_noise_key(key, top);
    const uint32_t key_lo = (uint32_t)key, key_hi = (uint32_t)(key >> 32);
    float best_v = -INFINITY;
    int best = 0;
    for (int k = 0; k < n; k++) {
        float v = logits[k] + t * noise[vk_noise_index((uint32_t)k, key_lo, key_hi)];
        best = v > best_v ? k : best;
        best_v = v > best_v ? v : best_v;
    }
    return best;
}

int vk_sample_acc_f32_ref(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *logits,
                          int n, float t, const float *noise, uint64_t key)
{
    vk_dequantize_f32_ref(acc, row_scale, x_scale, bias, logits, n);
    return vk_sample_f32_ref(logits, n, t, noise, key);
}
