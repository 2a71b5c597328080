/* Body of the fused gates + GRU update; see gru_f32.h. Before including, define
 * VK_GRU_NAME and, for a vector version, VK_V (vector type), VK_W (lanes) and the
 * operations VK_LOAD, VK_STORE, VK_SET1, VK_ADD, VK_SUB, VK_MUL, VK_DIV, VK_MIN,
 * VK_MAX, VK_NAN_TO_ZERO. The scalar tail is the same sequence of operations. */
#include "gru_f32.h"

static inline float gru_sigmoid1(float x) { return 0.5f + 0.5f * vk_tanh1(0.5f * x); }

static inline float gru_gate1(const vk_gru_shape *s, const float *x, const float *cond, const float *sb, int r)
{
    const int H3 = 3 * s->H;
    float g = s->in_t[r] * x[0];
    for (int i = 1; i < s->n_in; i++) g = g + s->in_t[(long)i * H3 + r] * x[i];
    return (g + cond[r]) + sb[r];
}

#ifdef VK_V
static inline VK_V gru_tanhv(VK_V x)
{
    x = VK_NAN_TO_ZERO(x);
    x = VK_MAX(VK_MIN(x, VK_SET1(4.97f)), VK_SET1(-4.97f));
    VK_V x2 = VK_MUL(x, x);
    VK_V num = VK_ADD(VK_SET1(378.0f), x2);
    num = VK_ADD(VK_SET1(17325.0f), VK_MUL(x2, num));
    num = VK_ADD(VK_SET1(135135.0f), VK_MUL(x2, num));
    num = VK_MUL(x, num);
    VK_V den = VK_ADD(VK_SET1(3150.0f), VK_MUL(x2, VK_SET1(28.0f)));
    den = VK_ADD(VK_SET1(62370.0f), VK_MUL(x2, den));
    den = VK_ADD(VK_SET1(135135.0f), VK_MUL(x2, den));
    VK_V r = VK_DIV(num, den);
    return VK_MAX(VK_MIN(r, VK_SET1(1.0f)), VK_SET1(-1.0f));
}

static inline VK_V gru_sigmoidv(VK_V x)
{
    const VK_V half = VK_SET1(0.5f);
    return VK_ADD(half, VK_MUL(half, gru_tanhv(VK_MUL(half, x))));
}

static inline VK_V gru_gatev(const vk_gru_shape *s, const float *x, const float *cond, const float *sb, int r)
{
    const int H3 = 3 * s->H;
    VK_V g = VK_MUL(VK_LOAD(s->in_t + r), VK_SET1(x[0]));
    for (int i = 1; i < s->n_in; i++) g = VK_ADD(g, VK_MUL(VK_LOAD(s->in_t + (long)i * H3 + r), VK_SET1(x[i])));
    return VK_ADD(VK_ADD(g, VK_LOAD(cond + r)), VK_LOAD(sb + r));
}
#endif

void VK_GRU_NAME(const vk_gru_shape *s, const float *x, const float *cond, const float *sb,
                 const float *gh, const float *h, float *hnew, int u0, int u1)
{
    const int H = s->H;
    int j = u0;
#ifdef VK_V
    for (; j + VK_W <= u1; j += VK_W) {
        VK_V r = gru_sigmoidv(VK_ADD(gru_gatev(s, x, cond, sb, j), VK_LOAD(gh + j)));
        VK_V u = gru_sigmoidv(VK_ADD(gru_gatev(s, x, cond, sb, H + j), VK_LOAD(gh + H + j)));
        VK_V n = gru_tanhv(VK_ADD(gru_gatev(s, x, cond, sb, 2 * H + j), VK_MUL(r, VK_LOAD(gh + 2 * H + j))));
        VK_V keep = VK_MUL(u, VK_LOAD(h + j));
        VK_STORE(hnew + j, VK_ADD(VK_MUL(VK_SUB(VK_SET1(1.0f), u), n), keep));
    }
#endif
    for (; j < u1; j++) {
        float r = gru_sigmoid1(gru_gate1(s, x, cond, sb, j) + gh[j]);
        float u = gru_sigmoid1(gru_gate1(s, x, cond, sb, H + j) + gh[H + j]);
        float n = vk_tanh1(gru_gate1(s, x, cond, sb, 2 * H + j) + r * gh[2 * H + j]);
        hnew[j] = (1.0f - u) * n + u * h[j];
    }
}
