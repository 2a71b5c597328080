/* Activation quantisation and dequantisation around the integer kernels. The baseline
 * pair (quantize.c, SSE2 on x86-64) is the definition; the engine's per-level pairs
 * (quantize_avx2.c, quantize_avx512.c) run the same IEEE operations per element with
 * more lanes and no FMA, so every level gives the same bits. */
#ifndef VK_QUANTIZE_H
#define VK_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

/* The scalar rules every level shares (the vector bodies run the same operations per
 * lane; the leftover elements go through these). */

/* One element: t = x * inv, NaN -> 0, clamped to +-127, rounded half away from zero. */
static inline int vk_quantize_one(float t)
{
    if (!(t == t)) return 0; /* NaN */
    if (t > 127.0f) t = 127.0f;
    if (t < -127.0f) t = -127.0f;
    return t < 0.0f ? -(int)(0.5f - t) : (int)(t + 0.5f);
}

/* an infinite absmax is held at 3e38 so the scale stays finite */
static inline float vk_absmax_cap(float absmax) { return absmax <= 3.0e38f ? absmax : 3.0e38f; }

/* absmax folded over x[i..n); NaN never becomes the max and an infinite max is held at
 * 3e38 so the scale stays finite. */
static inline float vk_absmax_tail(const float *x, int i, int n, float absmax)
{
    for (; i < n; i++) {
        float a = x[i] < 0.0f ? -x[i] : x[i];
        if (a > absmax) absmax = a; /* false for NaN */
    }
    return vk_absmax_cap(absmax);
}

/* Quantise x[0..n) to offset-binary bytes (q + 128, q in [-127, 127]) with the dynamic
 * scale absmax/127; pads xu[n..n_padded) with 128 (zero). NaN counts as 0, +-inf
 * clamps. Returns the scale (1 when x is all zero). */
float vk_quantize_f32(const float *x, int n, int n_padded, uint8_t *xu);

/* The same bytes and scale as vk_quantize_f32(x, n, n_padded, xu) for an x without
 * NaN whose largest |x[i]| is maxabs (+inf allowed), which the producer of x found as
 * it wrote x: saves the quantiser its first pass. Both producers write no NaN (relu
 * maps it to 0; the GRU state is finite, gru_f32.h), so a finite maxabs proves every x
 * finite and the vector levels round without the NaN mask and clamp. */
float vk_quantize_max_f32(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);

/* y[r] = (float)acc[r] * (row_scale[r] * x_scale) + bias[r], bias may be NULL. */
void vk_dequantize(const int32_t *acc, const float *row_scale, float x_scale,
                   const float *bias, float *y, int rows);

/* A hidden layer's output in one pass: vk_dequantize's y[r], then (w0 not NULL) the
 * excitation's term y[r] + (w0[r] * e0 + w1[r] * e1), then relu (y > 0 ? y : 0, so
 * NaN -> +0, -0 -> +0). Returns max y[r] (+0 for rows = 0): the maxabs for
 * quantize_max, as every y is >= +0 and none is NaN. */
float vk_dequantize_relu(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                         const float *w0, const float *w1, float e0, float e1, float *y, int rows);

/* Per-level versions for the engine's sample loop: every level returns the same bits
 * as the two functions above (same IEEE operations per element, no FMA). The sampler
 * rides along here because the engine keeps one per-level table of these elementwise
 * functions. */
typedef float (*vk_quantize_fn)(const float *x, int n, int n_padded, uint8_t *xu);
typedef void (*vk_dequantize_fn)(const int32_t *acc, const float *row_scale, float x_scale,
                                 const float *bias, float *y, int rows);
typedef float (*vk_quantize_max_fn)(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);
typedef float (*vk_dequantize_relu_fn)(const int32_t *acc, const float *row_scale, float x_scale,
                                       const float *bias, const float *w0, const float *w1, float e0,
                                       float e1, float *y, int rows);
typedef struct {
    vk_quantize_fn quantize;
    vk_dequantize_fn dequantize;
    vk_sample_fn sample;
    vk_quantize_max_fn quantize_max;
    vk_dequantize_relu_fn dequantize_relu;
    vk_sample_acc_fn sample_acc;
} vk_quant_fns;

#ifndef VK_NO_X86
float vk_quantize_f32_avx2(const float *x, int n, int n_padded, uint8_t *xu);
void vk_dequantize_avx2(const int32_t *acc, const float *row_scale, float x_scale,
                        const float *bias, float *y, int rows);
float vk_quantize_max_f32_avx2(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);
float vk_dequantize_relu_avx2(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                              const float *w0, const float *w1, float e0, float e1, float *y, int rows);
float vk_quantize_f32_avx512(const float *x, int n, int n_padded, uint8_t *xu);
void vk_dequantize_avx512(const int32_t *acc, const float *row_scale, float x_scale,
                          const float *bias, float *y, int rows);
float vk_quantize_max_f32_avx512(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);
float vk_dequantize_relu_avx512(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                                const float *w0, const float *w1, float e0, float e1, float *y, int rows);
#endif

/* The functions for a kernel level (VK_LEVEL_*). */
vk_quant_fns vk_quant_for_level(int level);

/* End of a vector sampler's first pass: the classes [k, n) past its last full vector are
 * dequantised (acc not NULL; else logits are given) and scanned on from the vector
 * lanes' top and class, keeping the first largest. Sets *top_out, returns the class. */
static inline int vk_top_tail(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                              float *logits, int k, int n, float top, int k_top, float *top_out)
{
    if (acc && k < n) vk_dequantize(acc + k, row_scale + k, x_scale, bias ? bias + k : NULL, logits + k, n - k);
    for (; k < n; k++)
        if (logits[k] > top) { top = logits[k]; k_top = k; }
    *top_out = top;
    return k_top;
}

#endif
