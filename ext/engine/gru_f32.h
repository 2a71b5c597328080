/* The GRU update with its input gates, per ISA level (docs/model.md):
 *
 *   gx  = in_w @ x + cond + sub_bias        (one sum per row, inputs in order)
 *   r   = sigmoid(gx_r + gh_r);  u = sigmoid(gx_z + gh_z)
 *   n   = tanh(gx_n + r * gh_n); h' = (1 - u) * n + u * h
 *
 * for units [u0, u1). Every level runs the same IEEE operations in the same order on
 * each unit (only the lane count differs, and there is no FMA), so every level gives
 * the same bits. gru_f32_body.h holds the body; each gru_f32_<isa>.c compiles it with
 * its own flags. */
#ifndef VK_GRU_F32_H
#define VK_GRU_F32_H

/* [7/6] Pade approximant of tanh (Lambert's continued fraction), error < 1e-4 on the
 * clamped range; NaN maps to 0 so a bad input cannot poison the state. The vector
 * versions in gru_f32_body.h run the same operations lane by lane. */
static inline float vk_tanh1(float x)
{
    if (!(x == x)) return 0.0f;
    if (x > 4.97f) x = 4.97f;
    if (x < -4.97f) x = -4.97f;
    float x2 = x * x;
    float num = x * (135135.0f + x2 * (17325.0f + x2 * (378.0f + x2)));
    float den = 135135.0f + x2 * (62370.0f + x2 * (3150.0f + x2 * 28.0f));
    float r = num / den;
    return r > 1.0f ? 1.0f : (r < -1.0f ? -1.0f : r);
}

typedef struct {
    const float *in_t; /* in_w transposed, [n_in][3H] */
    int n_in, H;
} vk_gru_shape;

typedef void (*vk_gru_fn)(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                          const float *gh, const float *h, float *hnew, int u0, int u1);

void vk_gru_f32_scalar(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                       const float *gh, const float *h, float *hnew, int u0, int u1);
#ifndef VK_NO_X86
void vk_gru_f32_sse2(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                     const float *gh, const float *h, float *hnew, int u0, int u1);
void vk_gru_f32_avx2(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                     const float *gh, const float *h, float *hnew, int u0, int u1);
void vk_gru_f32_avx512(const vk_gru_shape *s, const float *x, const float *cond, const float *sub_bias,
                       const float *gh, const float *h, float *hnew, int u0, int u1);
#endif

/* The function for a kernel level (VK_LEVEL_*). */
vk_gru_fn vk_gru_for_level(int level);

#endif
