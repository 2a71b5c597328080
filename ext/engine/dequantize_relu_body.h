/* Body of vk_dequantize_relu (quantize.h): a hidden layer's dequantisation, excitation
 * term, relu and the max for the next quantisation, in one pass over the rows instead of
 * four (dequantise, add, relu, absmax). Before including, define VK_DR_NAME and, for a
 * vector version, include that width's operations (vec_f32_avx2.h, vec_f32_avx512.h).
 * Without them it is instantiated on single floats (vec_f32_scalar.h): vk_dequantize_relu, the definition; vector versions hand it their
 * leftover rows. Per row the same operations in the same order at every level. */
#include <stddef.h>

#include "quantize.h"

#ifndef VK_V
#include "vec_f32_scalar.h"
#define VK_DR_SCALAR 1
#endif

#ifdef __GNUC__
#define VK_DR_INLINE static inline __attribute__((always_inline))
#else
#define VK_DR_INLINE static inline
#endif

/* Rows [0, rows) in steps of VK_W; returns the first row not done. bias and w0 are
 * tested once per call: the callers pass constant NULLs to get a copy without them. */
VK_DR_INLINE int dr_run(const int32_t *restrict acc, const float *restrict row_scale, float x_scale,
                        const float *restrict bias, const float *restrict w0, const float *restrict w1,
                        float e0, float e1, float *restrict y, int rows, float *max_out)
{
    const VK_V xs = VK_SET1(x_scale), ve0 = VK_SET1(e0), ve1 = VK_SET1(e1), zero = VK_SET1(0.0f);
    VK_V m = zero;
    int r = 0;
    for (; r + VK_W <= rows; r += VK_W) {
        VK_V v = VK_MUL(VK_LOADI(acc + r), VK_MUL(VK_LOAD(row_scale + r), xs)); /* vk_dequantize */
        if (bias) v = VK_ADD(v, VK_LOAD(bias + r));
        if (w0) v = VK_ADD(v, VK_ADD(VK_MUL(VK_LOAD(w0 + r), ve0), VK_MUL(VK_LOAD(w1 + r), ve1)));
        v = VK_MAX(v, zero); /* v > 0 ? v : +0 */
        VK_STORE(y + r, v);
        m = VK_MAX(v, m);
    }
    *max_out = VK_HMAX(m);
    return r;
}

float VK_DR_NAME(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                 const float *w0, const float *w1, float e0, float e1, float *y, int rows)
{
    float m;
    int r;
    if (bias && w0) r = dr_run(acc, row_scale, x_scale, bias, w0, w1, e0, e1, y, rows, &m);
    else if (bias) r = dr_run(acc, row_scale, x_scale, bias, NULL, NULL, e0, e1, y, rows, &m);
    else if (w0) r = dr_run(acc, row_scale, x_scale, NULL, w0, w1, e0, e1, y, rows, &m);
    else r = dr_run(acc, row_scale, x_scale, NULL, NULL, NULL, e0, e1, y, rows, &m);
#ifndef VK_DR_SCALAR
    if (r < rows) { /* leftover rows */
        const float mt = vk_dequantize_relu(acc + r, row_scale + r, x_scale, bias ? bias + r : NULL,
                                            w0 ? w0 + r : NULL, w1 ? w1 + r : NULL, e0, e1, y + r, rows - r);
        m = mt > m ? mt : m;
    }
#else
    (void)r;
#endif
    return m;
}
