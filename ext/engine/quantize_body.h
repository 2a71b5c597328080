/* Body of the activation quantiser and dequantisers (quantize.h), compiled once per
 * ISA file. Before including, the file defines VK_ISA (the functions are
 * vk_quantize_f32_<VK_ISA>, vk_quantize_max_f32_<VK_ISA>, vk_dequantize_f32_<VK_ISA>,
 * vk_dequantize_relu_f32_<VK_ISA>), includes its width's float operations
 * (vec_f32_sse2.h, vec_f32_avx2.h, vec_f32_avx512.h) and, for vector quantising, defines
 * VK_Q_BLOCKS and two functions on whole vectors:
 *
 *   int q_absmax_blocks(const float *x, int n, float *absmax, int *finite)
 *       max |x[i]| over the vectors it takes (NaN never the max) to *absmax; *finite
 *       = 1 only if it proved every x finite (0 is always allowed); returns how many
 *       elements it took (the rest are folded in by vk_absmax_tail).
 *   int q_round_blocks(const float *x, int n, uint8_t *xu, float inv, int fast)
 *       the bytes of the elements it takes (vk_quantize_one's rule on x * inv, + 128);
 *       fast = 1: every |x * inv| < 127.5, no NaN mask or clamp needed. Returns how
 *       many it took (the rest go through vk_quantize_one).
 *
 * Without them (quantize_ref.c) everything runs on single floats (vec_f32_scalar.h):
 * the definition, which the vector versions hand their leftover elements, so there is
 * one sequence of operations per element, written once. */
#include <stddef.h>

#include "quantize.h"
#include "vk_paste.h"

#ifndef VK_V
#include "vec_f32_scalar.h"
#define VK_Q_SCALAR 1
#endif

#ifdef __GNUC__
#define VK_Q_INLINE static inline __attribute__((always_inline))
#else
#define VK_Q_INLINE static inline
#endif

#ifndef VK_Q_BLOCKS
VK_Q_INLINE int q_absmax_blocks(const float *x, int n, float *absmax, int *finite)
{
    (void)x, (void)n;
    *absmax = 0.0f;
    *finite = 0;
    return 0;
}
VK_Q_INLINE int q_round_blocks(const float *x, int n, uint8_t *xu, float inv, int fast)
{
    (void)x, (void)n, (void)xu, (void)inv, (void)fast;
    return 0;
}
#endif

/* The second pass, once the (capped) absmax is known; finite: every x is. */
static float quantize_given(const float *x, int n, int n_padded, uint8_t *xu, float absmax, int finite)
{
    int i;
    if (absmax == 0.0f) {
        for (i = 0; i < n_padded; i++) xu[i] = 128;
        return 1.0f;
    }
    const float scale = absmax / 127.0f;
    const float inv = 127.0f / absmax;
    /* absmax < 3e38: not capped, so |x| <= absmax holds (a capped one would let |x * inv|
     * pass 127.5): then |x * inv| <= 127 (1 + 2^-24)^2 < 127.5 for every finite x */
    i = q_round_blocks(x, n, xu, inv, finite && absmax < 3.0e38f && inv <= 3.4e38f);
    for (; i < n; i++) xu[i] = (uint8_t)(vk_quantize_one(x[i] * inv) + 128);
    for (; i < n_padded; i++) xu[i] = 128;
    return scale;
}

float VK_FN(vk_quantize_f32_)(const float *x, int n, int n_padded, uint8_t *xu)
{
    float absmax;
    int finite;
    const int i = q_absmax_blocks(x, n, &absmax, &finite);
    return quantize_given(x, n, n_padded, xu, vk_absmax_tail(x, i, n, absmax), finite);
}

/* x holds no NaN (quantize.h), so a finite maxabs means every x is finite. */
float VK_FN(vk_quantize_max_f32_)(const float *x, int n, int n_padded, uint8_t *xu, float maxabs)
{
    return quantize_given(x, n, n_padded, xu, vk_absmax_cap(maxabs), maxabs <= 3.4e38f);
}

/* Rows [0, rows) in steps of VK_W; returns the first row not done. bias is tested once
 * per call: the caller passes a constant NULL to get a copy without it. */
VK_Q_INLINE int dq_run(const int32_t *restrict acc, const float *restrict row_scale, float x_scale,
                       const float *restrict bias, float *restrict y, int rows)
{
    const VK_V xs = VK_SET1(x_scale);
    int r = 0;
    for (; r + VK_W <= rows; r += VK_W) {
        VK_V v = VK_MUL(VK_LOADI(acc + r), VK_MUL(VK_LOAD(row_scale + r), xs));
        if (bias) v = VK_ADD(v, VK_LOAD(bias + r));
        VK_STORE(y + r, v);
    }
    return r;
}

void VK_FN(vk_dequantize_f32_)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *y,
                               int rows)
{
    const int r =
        bias ? dq_run(acc, row_scale, x_scale, bias, y, rows) : dq_run(acc, row_scale, x_scale, NULL, y, rows);
#ifndef VK_Q_SCALAR
    if (r < rows) /* leftover rows */
        vk_dequantize_f32_ref(acc + r, row_scale + r, x_scale, bias ? bias + r : NULL, y + r, rows - r);
#else
    (void)r;
#endif
}

/* The fused hidden-layer output: dequantisation, excitation term, relu and the max for
 * the next quantisation, in one pass over the rows instead of four. Rows [0, rows) in
 * steps of VK_W; returns the first row not done. bias and w0 are tested once per call:
 * the callers pass constant NULLs to get a copy without them. */
VK_Q_INLINE int dr_run(const int32_t *restrict acc, const float *restrict row_scale, float x_scale,
                       const float *restrict bias, const float *restrict w0, const float *restrict w1, float e0,
                       float e1, float *restrict y, int rows, float *max_out)
{
    const VK_V xs = VK_SET1(x_scale), ve0 = VK_SET1(e0), ve1 = VK_SET1(e1), zero = VK_SET1(0.0f);
    VK_V m = zero;
    int r = 0;
    for (; r + VK_W <= rows; r += VK_W) {
        VK_V v = VK_MUL(VK_LOADI(acc + r), VK_MUL(VK_LOAD(row_scale + r), xs)); /* dequantize */
        if (bias) v = VK_ADD(v, VK_LOAD(bias + r));
        if (w0) v = VK_ADD(v, VK_ADD(VK_MUL(VK_LOAD(w0 + r), ve0), VK_MUL(VK_LOAD(w1 + r), ve1)));
        v = VK_MAX(v, zero); /* v > 0 ? v : +0 */
        VK_STORE(y + r, v);
        m = VK_MAX(v, m);
    }
    *max_out = VK_HMAX(m);
    return r;
}

float VK_FN(vk_dequantize_relu_f32_)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                                     const float *w0, const float *w1, float e0, float e1, float *y, int rows)
{
    float m;
    int r;
    if (bias && w0)
        r = dr_run(acc, row_scale, x_scale, bias, w0, w1, e0, e1, y, rows, &m);
    else if (bias)
        r = dr_run(acc, row_scale, x_scale, bias, NULL, NULL, e0, e1, y, rows, &m);
    else if (w0)
        r = dr_run(acc, row_scale, x_scale, NULL, w0, w1, e0, e1, y, rows, &m);
    else
        r = dr_run(acc, row_scale, x_scale, NULL, NULL, NULL, e0, e1, y, rows, &m);
#ifndef VK_Q_SCALAR
    if (r < rows) { /* leftover rows */
        const float mt = vk_dequantize_relu_f32_ref(acc + r, row_scale + r, x_scale, bias ? bias + r : NULL,
                                                    w0 ? w0 + r : NULL, w1 ? w1 + r : NULL, e0, e1, y + r, rows - r);
        m = mt > m ? mt : m;
    }
#else
    (void)r;
#endif
    return m;
}
