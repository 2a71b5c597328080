/* Activation quantisation and dequantisation around the integer kernels. The plain C
 * versions (quantize_ref.c) are the definition; the per-ISA ones (quantize_sse2.c,
 * quantize_avx2.c, quantize_avx512.c) run the same IEEE operations per element with
 * more lanes and no FMA, so every level gives the same bits. All are instances of one
 * body, quantize_body.h. */
#ifndef VK_QUANTIZE_H
#define VK_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

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

/* The operations, as function types (isa.h's table holds one of each per level).
 *
 * quantize: x[0..n) to offset-binary bytes (q + 128, q in [-127, 127]) with the dynamic
 * scale absmax/127; pads xu[n..n_padded) with 128 (zero). NaN counts as 0, +-inf
 * clamps. Returns the scale (1 when x is all zero). */
typedef float (*vk_quantize_fn)(const float *x, int n, int n_padded, uint8_t *xu);

/* quantize_max: the same bytes and scale as quantize(x, n, n_padded, xu) for an x
 * without NaN whose largest |x[i]| is maxabs (+inf allowed), which the producer of x
 * found as it wrote x: saves the quantiser its first pass. Both producers write no NaN
 * (relu maps it to 0; the GRU state is finite, gru_f32.h), so a finite maxabs proves
 * every x finite and the vector levels round without the NaN mask and clamp. */
typedef float (*vk_quantize_max_fn)(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);

/* dequantize: y[r] = (float)acc[r] * (row_scale[r] * x_scale) + bias[r], bias may be NULL. */
typedef void (*vk_dequantize_fn)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *y,
                                 int rows);

/* dequantize_relu: a hidden layer's output in one pass: dequantize's y[r], then (w0 not
 * NULL) the excitation's term y[r] + (w0[r] * e0 + w1[r] * e1), then relu (y > 0 ? y : 0,
 * so NaN -> +0, -0 -> +0). Returns max y[r] (+0 for rows = 0): the maxabs for
 * quantize_max, as every y is >= +0 and none is NaN. */
typedef float (*vk_dequantize_relu_fn)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                                       const float *w0, const float *w1, float e0, float e1, float *y, int rows);

/* Per-ISA versions: quantize_<isa>.c, each compiled with its own flags, each an
 * instance of quantize_body.h. The _ref ones (plain C) are the definition; every level
 * returns their bits (same IEEE operations per element, no FMA). */
#define VK_DECLARE_QUANTIZE(isa)                                                                                     \
    float vk_quantize_f32_##isa(const float *x, int n, int n_padded, uint8_t *xu);                                   \
    float vk_quantize_max_f32_##isa(const float *x, int n, int n_padded, uint8_t *xu, float maxabs);                 \
    void vk_dequantize_f32_##isa(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,       \
                                 float *y, int rows);                                                                \
    float vk_dequantize_relu_f32_##isa(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, \
                                       const float *w0, const float *w1, float e0, float e1, float *y, int rows);
VK_DECLARE_QUANTIZE(ref)
VK_DECLARE_QUANTIZE(sse2)
VK_DECLARE_QUANTIZE(avx2)
VK_DECLARE_QUANTIZE(avx512)

#endif
