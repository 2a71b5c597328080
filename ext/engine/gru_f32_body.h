/* Body of the fused gates + GRU update; see gru_f32.h. Before including, define
 * VK_ISA (the level's name: the function is vk_gru_f32_<VK_ISA>) and, for a vector
 * version, include that width's operations
 * (vec_f32_sse2.h, vec_f32_avx2.h, vec_f32_avx512.h). Without them the same code is
 * instantiated on single floats (vec_f32_scalar.h): that is vk_gru_f32_ref, the
 * definition, and the vector versions hand it their leftover units, so there is one
 * sequence of operations per unit, written once. */
#include <stddef.h>

#include "gru_f32.h"
#include "vk_paste.h"

#ifndef VK_V
#include "vec_f32_scalar.h"
#define VK_GRU_SCALAR 1
#endif

#ifdef __GNUC__
#define VK_GRU_INLINE static inline __attribute__((always_inline))
#else
#define VK_GRU_INLINE static inline
#endif

/* vk_tanh1, lane by lane */
VK_GRU_INLINE VK_V gru_tanhv(VK_V x)
{
    x = VK_MAX(VK_MIN(x, VK_SET1(4.97f)), VK_SET1(-4.97f));
    VK_V x2 = VK_MUL(x, x);
    VK_V num = VK_ADD(VK_SET1(378.0f), x2);
    num = VK_ADD(VK_SET1(17325.0f), VK_MUL(x2, num));
    num = VK_ADD(VK_SET1(135135.0f), VK_MUL(x2, num));
    num = VK_MUL(x, num);
    VK_V den = VK_ADD(VK_SET1(3150.0f), VK_MUL(x2, VK_SET1(28.0f)));
    den = VK_ADD(VK_SET1(62370.0f), VK_MUL(x2, den));
    den = VK_ADD(VK_SET1(135135.0f), VK_MUL(x2, den));
    return VK_DIV(num, den); /* |.| < 1: see vk_tanh1 */
}

/* sigmoid(x) = 0.5 + 0.5 tanh(x / 2) (the halving is exact) */
VK_GRU_INLINE VK_V gru_sigmoidv(VK_V x)
{
    const VK_V half = VK_SET1(0.5f);
    return VK_ADD(half, VK_MUL(half, gru_tanhv(VK_MUL(half, x))));
}

/* in_w @ x + cond + sub_bias for rows r.. of one gate: the inputs in order, then cond,
 * then sub_bias (sb NULL: known zero, not added) */
VK_GRU_INLINE VK_V gru_gatev(const float *restrict in_t, int H3, const float *restrict x, int n_in,
                             const float *restrict cond, const float *restrict sb, int r)
{
    VK_V g = VK_MUL(VK_LOAD(in_t + r), VK_SET1(x[0]));
    for (int i = 1; i < n_in; i++) g = VK_ADD(g, VK_MUL(VK_LOAD(in_t + (long)i * H3 + r), VK_SET1(x[i])));
    g = VK_ADD(g, VK_LOAD(cond + r));
    return sb ? VK_ADD(g, VK_LOAD(sb + r)) : g;
}

/* gh = (float)acc * (row_scale * x_scale) + bias for rows r..: R's dequantisation,
 * the operations of dequantize (quantize.h) in its order, so the same bits as the separate pass
 * it replaces (which wrote gh to memory only for the gates to read it back) */
VK_GRU_INLINE VK_V gru_ghv(const vk_gru_rec *restrict g, VK_V xs, int r)
{
    return VK_ADD(VK_MUL(VK_LOADI(g->acc + r), VK_MUL(VK_LOAD(g->row_scale + r), xs)), VK_LOAD(g->bias + r));
}

/* Units [u0, u1) in steps of VK_W; returns the first unit not done. Inlined with a
 * constant n_in, so the input loops unroll and the broadcasts of x stay in registers
 * (restrict: no store can change x, in_t, cond, ...).
 *
 * One unit's work is a chain of ~120 cycles of latency (gate sums, three rational
 * functions with a division each) but only ~130 instructions for 8 units, so a single
 * loop keeps just two chains in the out-of-order window and idles. Split into three
 * passes over a chunk (input gates; r, u and n's argument; tanh and the update) each
 * chain is short and many run at once. Same operations per unit, same bits. */
#define VK_GRU_CHUNK 64 /* units per chunk, a multiple of every VK_W */
VK_GRU_INLINE int gru_run(const float *restrict in_t, int H, const float *restrict x, int n_in,
                          const float *restrict cond, const float *restrict sb, const vk_gru_rec *restrict gh,
                          const float *restrict h, float *restrict hnew, int u0, int u1, float *absmax)
{
    const int H3 = 3 * H;
    const VK_V xs = VK_SET1(gh->x_scale);
    VK_V m = VK_SET1(0.0f); /* max |h'| so far (maxps keeps m for NaN, as the quantiser) */
    float ga[VK_GRU_CHUNK], gb[VK_GRU_CHUNK], gc[VK_GRU_CHUNK];
    int c0 = u0;
    while (u1 - c0 >= VK_W) {
        int cn = u1 - c0 < VK_GRU_CHUNK ? u1 - c0 : VK_GRU_CHUNK;
        cn -= cn % VK_W;
        for (int k = 0; k < cn; k += VK_W) { /* pre-activations of r and u, n's input part */
            const int j = c0 + k;
            VK_STORE(ga + k, VK_ADD(gru_gatev(in_t, H3, x, n_in, cond, sb, j), gru_ghv(gh, xs, j)));
            VK_STORE(gb + k, VK_ADD(gru_gatev(in_t, H3, x, n_in, cond, sb, H + j), gru_ghv(gh, xs, H + j)));
            VK_STORE(gc + k, gru_gatev(in_t, H3, x, n_in, cond, sb, 2 * H + j));
        }
        for (int k = 0; k < cn; k += VK_W) { /* r, u; n's argument */
            const int j = c0 + k;
            VK_V r = gru_sigmoidv(VK_LOAD(ga + k));
            VK_STORE(gb + k, gru_sigmoidv(VK_LOAD(gb + k)));
            VK_STORE(gc + k, VK_ADD(VK_LOAD(gc + k), VK_MUL(r, gru_ghv(gh, xs, 2 * H + j))));
        }
        for (int k = 0; k < cn; k += VK_W) { /* n and the new state */
            const int j = c0 + k;
            VK_V u = VK_LOAD(gb + k);
            VK_V n = gru_tanhv(VK_LOAD(gc + k));
            VK_V keep = VK_MUL(u, VK_LOAD(h + j));
            const VK_V hn = VK_ADD(VK_MUL(VK_SUB(VK_SET1(1.0f), u), n), keep);
            VK_STORE(hnew + j, hn);
            m = VK_MAX(VK_ABS(hn), m);
        }
        c0 += cn;
    }
    *absmax = VK_HMAX(m);
    return c0;
}

float VK_FN(vk_gru_f32_)(const vk_gru_shape *s, const float *x, const float *cond, const float *sb,
                         const vk_gru_rec *gh, const float *h, float *hnew, int u0, int u1)
{
    const float *in_t = s->in_t;
    const int H = s->H;
    int j;
    float m;
    /* 3 + F + E inputs: the usual counts get their own unrolled copy, with and without
     * the sub_bias stream (a NULL constant folds the test away) */
    if (s->sub_bias_zero) {
        switch (s->n_in) {
            case 3: j = gru_run(in_t, H, x, 3, cond, NULL, gh, h, hnew, u0, u1, &m); break;
            case 5: j = gru_run(in_t, H, x, 5, cond, NULL, gh, h, hnew, u0, u1, &m); break;
            default: j = gru_run(in_t, H, x, s->n_in, cond, NULL, gh, h, hnew, u0, u1, &m); break;
        }
    } else {
        switch (s->n_in) {
            case 4: j = gru_run(in_t, H, x, 4, cond, sb, gh, h, hnew, u0, u1, &m); break;
            case 6: j = gru_run(in_t, H, x, 6, cond, sb, gh, h, hnew, u0, u1, &m); break;
            default: j = gru_run(in_t, H, x, s->n_in, cond, sb, gh, h, hnew, u0, u1, &m); break;
        }
    }
#ifndef VK_GRU_SCALAR
    if (j < u1) { /* leftover units */
        const float mt = vk_gru_f32_ref(s, x, cond, sb, gh, h, hnew, j, u1);
        m = vk_maxf(mt, m);
    }
#else
    (void)j;
#endif
    return m;
}
