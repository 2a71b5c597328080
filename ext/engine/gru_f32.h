/* The GRU update with its input gates, per ISA level (docs/model.md):
 *
 *   gx  = in_w @ x + cond + sub_bias        (one sum per row, inputs in order)
 *   r   = sigmoid(gx_r + gh_r);  u = sigmoid(gx_z + gh_z)
 *   n   = tanh(gx_n + r * gh_n); h' = (1 - u) * n + u * h
 *
 * for units [u0, u1), where gh = R h is read as R's int32 accumulators and dequantised
 * on the fly. Every level runs the same IEEE operations in the same order on
 * each unit (only the lane count differs, and there is no FMA), so every level gives
 * the same bits. gru_f32_body.h holds the body; each gru_f32_<isa>.c compiles it with
 * its own flags; isa_dispatch.c puts each in its levels' tables. */
#ifndef VK_GRU_F32_H
#define VK_GRU_F32_H

#include <stdint.h>

/* min and max with the x86 minps/maxps rule (the second operand when either is NaN),
 * so plain C and every vector level treat NaN alike without an extra mask. */
static inline float vk_minf(float a, float b) { return a < b ? a : b; }
static inline float vk_maxf(float a, float b) { return a > b ? a : b; }

/* [7/6] Pade approximant of tanh (Lambert's continued fraction), error < 1e-4 on the
 * clamped range. The clamps use the min/max rule above: NaN saturates to +4.97, so a
 * bad input gives ~1 and cannot poison the state. No clamp is needed on the way out:
 * checked for every float x in [0, 4.97] with these float operations, num / den <=
 * 0.9999995, and it is odd in x exactly, so |tanh| < 1. gru_f32_body.h runs the same
 * operations lane by lane. */
static inline float vk_tanh1(float x)
{
    x = vk_maxf(vk_minf(x, 4.97f), -4.97f);
    float x2 = x * x;
    float num = x * (135135.0f + x2 * (17325.0f + x2 * (378.0f + x2)));
    float den = 135135.0f + x2 * (62370.0f + x2 * (3150.0f + x2 * 28.0f));
    return num / den;
}

typedef struct {
    const float *in_t; /* in_w transposed, [n_in][3H] */
    int n_in, H;
    /* sub_bias is all zero (always so at B = 1): the gates skip adding it, which saves
     * a 3H-float stream per step; adding +0 would only turn a -0 gate into +0. */
    int sub_bias_zero;
} vk_gru_shape;

/* gh = R h as the kernel left it: row r of gh is (float)acc[r] * (row_scale[r] *
 * x_scale) + bias[r], the dequantize rule (quantize.h) (bias required). */
typedef struct {
    const int32_t *acc;
    const float *row_scale, *bias;
    float x_scale;
} vk_gru_rec;

/* Returns max |h'| over the units written, so h' can be quantised without a pass to
 * find it (isa.h's quantize_max, which needs x free of NaN). h' is always finite:
 * the clamps in vk_tanh1 take NaN and inf to +-4.97, so r, u are in [0, 1] and |n| < 1,
 * and h' = (1 - u) n + u h stays within about 1 of 0 from h = 0 on. */
typedef float (*vk_gru_fn)(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                           const vk_gru_rec *gh, const float *h, float *hnew, int u0, int u1);

/* Per-ISA versions (gru_f32_<isa>.c, each compiled with its own flags). */
#define VK_DECLARE_GRU(isa)                                                                                 \
    float vk_gru_f32_##isa(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias, \
                           const vk_gru_rec *gh, const float *h, float *hnew, int u0, int u1);
VK_DECLARE_GRU(ref)
VK_DECLARE_GRU(sse2)
VK_DECLARE_GRU(avx2)
VK_DECLARE_GRU(avx512)

#endif
