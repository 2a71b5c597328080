/* Gumbel-max sampler, 16 classes at a time (AVX-512F). Same definition and same class
 * as vk_sample_f32_ref (sample.h), and the same sound skipping as sample_avx2.c (see
 * there); with 16 lanes one permute holds every bucket's threshold, unclamped. */
#if !defined(__AVX512F__) && !defined(VK_SIMDE_ISA_H)
#error "compile sample_avx512.c with -mavx512f (and no FMA contraction)"
#endif
#include <immintrin.h>
#include <math.h>

#include "sample.h"

/* The largest lane value (-inf when none beats it) and, among lanes holding it, the
 * lowest class (0 when the value is -inf). Lanes hold no NaN. */
static inline int vk_first_max16(__m512 v, __m512i k, float *vmax)
{
    const float m = _mm512_reduce_max_ps(v);
    *vmax = m;
    if (!(m > -INFINITY)) return 0;
    return _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(v, _mm512_set1_ps(m), _CMP_EQ_OQ), k);
}

/* The top logit and its first class in one pass, without branches: each lane keeps its
 * first maximum (strict >, false for NaN); 16 lanes do what AVX2's two sets of 8 do.
 * With acc, the pass also writes the logits, dequantised by the dequantize rule (quantize.h) (the
 * leftover rows by the scalar rule); see sample_avx2.c. */
static inline int top_pass(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *logits,
                           int n, float *top_out)
{
    int k = 0;
    const __m512 xs = _mm512_set1_ps(x_scale);
    __m512 t0 = _mm512_set1_ps(-INFINITY);
    __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), k0 = i0;
    const __m512i step16 = _mm512_set1_epi32(16);
    for (; k + 16 <= n; k += 16) {
        __m512 a;
        if (acc) {
            a = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(acc + k)),
                              _mm512_mul_ps(_mm512_loadu_ps(row_scale + k), xs));
            if (bias) a = _mm512_add_ps(a, _mm512_loadu_ps(bias + k));
            _mm512_storeu_ps(logits + k, a);
        } else {
            a = _mm512_loadu_ps(logits + k);
        }
        const __mmask16 ga = _mm512_cmp_ps_mask(a, t0, _CMP_GT_OQ);
        t0 = _mm512_mask_mov_ps(t0, ga, a);
        k0 = _mm512_mask_mov_epi32(k0, ga, i0);
        i0 = _mm512_add_epi32(i0, step16);
    }
    float top;
    const int k_top = vk_first_max16(t0, k0, &top); /* 0 when no lane beats -inf */
    return vk_top_tail(acc, row_scale, x_scale, bias, logits, k, n, top, k_top, top_out);
}

/* The rest of the sampler once the top and its class are known. */
static int sample_rest(const float *logits, int n, float t, const float *noise, uint64_t key, float top, int k_top)
{
    int k;
    if (!(t > 0.0f)) return k_top;

    key = vk_noise_key(key, top);
    const uint32_t key_lo = (uint32_t)key, key_hi = (uint32_t)(key >> 32);
    float v0 = top + t * noise[vk_noise_index((uint32_t)k_top, key_lo, key_hi)];
    if (!(v0 == v0)) v0 = -INFINITY;
    const float t_max = t * noise[VK_NOISE_SIZE - 1];

    /* bucket bounds, by the low 4 bits of the float exponent (127 + e) of
     * m = VK_NOISE_SIZE - index, m in [2^e, 2^(e+1)) */
    float tab[16];
    for (int j = 0; j < 16; j++) tab[j] = noise[VK_NOISE_SIZE - 1]; /* unused entries */
    for (int e = 0; e <= VK_NOISE_BITS; e++) tab[(127 + e) & 15] = noise[VK_NOISE_SIZE - (1 << e)];
    const __m512 btab = _mm512_loadu_ps(tab);

    /* each bound as a threshold on the logit, as sample_avx2.c: l <= thr gives
     * fl(l + fl(t g)) < v0; -inf where none is found */
    const __m512 vv0 = _mm512_set1_ps(v0), vtemp = _mm512_set1_ps(t), vtmax = _mm512_set1_ps(t_max);
    const __m512 tb = _mm512_mul_ps(vtemp, btab);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    __m512 thr = _mm512_sub_ps(vv0, tb);
    for (int it = 0; it < 3; it++) {
        const __mmask16 good = _mm512_cmp_ps_mask(_mm512_add_ps(thr, tb), vv0, _CMP_LT_OQ);
        const __m512 athr = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(thr), absmask));
        const __m512 down =
            _mm512_sub_ps(thr, _mm512_add_ps(_mm512_mul_ps(athr, _mm512_set1_ps(0x1p-20f)), _mm512_set1_ps(0x1p-100f)));
        thr = _mm512_mask_mov_ps(down, good, thr);
    }
    thr =
        _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), _mm512_cmp_ps_mask(_mm512_add_ps(thr, tb), vv0, _CMP_LT_OQ), thr);

    const __m512i khi = _mm512_set1_epi32((int)key_hi), size = _mm512_set1_epi32(VK_NOISE_SIZE);
    const __m512i c1 = _mm512_set1_epi32(0x7feb352d), c2 = _mm512_set1_epi32((int)0x846ca68bu);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i iota_g = _mm512_mullo_epi32(iota, _mm512_set1_epi32((int)0x9e3779b9u));
    const __m512i step_g = _mm512_set1_epi32((int)(16u * 0x9e3779b9u));
    __m512 best = _mm512_set1_ps(-INFINITY);
    __m512i best_k = _mm512_setzero_si512();
    enum { VK_CHUNK = 64 };
    int list_a[VK_CHUNK], list_b[VK_CHUNK];
    __m512i pre_a[VK_CHUNK], idx_b[VK_CHUNK];
    const int n16 = n & ~15;
    for (int c0 = 0; c0 < n16; c0 += 16 * VK_CHUNK) {
        const int c_end = c0 + 16 * VK_CHUNK < n16 ? c0 + 16 * VK_CHUNK : n16;
        int na = 0;
        __m512i xk = _mm512_add_epi32(_mm512_set1_epi32((int)(key_lo + (uint32_t)c0 * 0x9e3779b9u)), iota_g);
        for (k = c0; k < c_end; k += 16) { /* the hash input key_lo + class * golden rides along */
            list_a[na] = k;
            pre_a[na] = xk;
            xk = _mm512_add_epi32(xk, step_g);
            na += _mm512_cmp_ps_mask(_mm512_add_ps(_mm512_loadu_ps(logits + k), vtmax), vv0, _CMP_GE_OQ) != 0;
        }
        int nb = 0;
        for (int j = 0; j < na; j++) {
            const int kb = list_a[j];
            const __m512 l = _mm512_loadu_ps(logits + kb);
            __m512i x = pre_a[j];
            x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
            x = _mm512_mullo_epi32(x, c1);
            x = _mm512_xor_si512(x, khi);
            x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
            x = _mm512_mullo_epi32(x, c2); /* (the hash's last xorshift keeps the top bits) */
            const __m512i idx = _mm512_srli_epi32(x, 32 - VK_NOISE_BITS);
            const __m512 m = _mm512_cvtepi32_ps(_mm512_sub_epi32(size, idx)); /* exact: <= 2^12 */
            const __m512 th = _mm512_permutexvar_ps(_mm512_srli_epi32(_mm512_castps_si512(m), 23), thr);
            list_b[nb] = kb;
            idx_b[nb] = idx;
            nb += _mm512_cmp_ps_mask(l, th, _CMP_GT_OQ) != 0;
        }
        for (int j = 0; j < nb; j++) {
            const int kb = list_b[j];
            const __m512 g = _mm512_i32gather_ps(idx_b[j], noise, 4);
            const __m512 v = _mm512_add_ps(_mm512_loadu_ps(logits + kb), _mm512_mul_ps(vtemp, g));
            const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_ps(best, gt, v);
            best_k = _mm512_mask_mov_epi32(best_k, gt, _mm512_add_epi32(_mm512_set1_epi32(kb), iota));
        }
    }
    k = n16;
    float best_v;
    const int cls = vk_first_max16(best, best_k, &best_v);
    return vk_sample_tail(logits, k, n, t, noise, key_lo, key_hi, best_v, cls); /* after every vector class */
}

#define VK_S_PASSES 1
#define VK_ISA avx512
#include "sample_body.h"
