/* Gumbel-max sampler, 8 classes at a time (AVX2). Same definition and same class as
 * vk_sample_f32_ref (sample.h).
 *
 * Speed comes from skipping, soundly, the classes that cannot win (for a flat
 * distribution ~90% of the 8-class blocks), because the noise gather is the costly
 * part (~8 cycles per block on Zen 3):
 * 1. l + t * noise_max < v_top: no noise can lift the class to the top class's value.
 * 2. The hash (cheap integer ops) gives the table index; the table is non-decreasing,
 *    so the entry at the largest index of the index's bucket bounds the noise. Buckets
 *    are powers of two of (table size - index), i.e. of 1 - u, where the Gumbel
 *    quantile grows fastest. Per call each bucket's bound becomes a threshold on the
 *    logit (a one-register permute looks it up): this pass runs on most blocks of a
 *    flat distribution, and its chain of dependent operations, not their count, is
 *    what it waits on, so it is kept short. Where pass 1 let most blocks on (flat:
 *    ~90% here) pass 2 takes every block with the hash input stepped in a register,
 *    which costs less than carrying it through pass 1's list; else it takes the listed
 *    blocks only (a peaked distribution). Stage 2's test is sound on its own, so the
 *    extra blocks change nothing but time.
 * Only blocks where some class passes both fetch their noise. Each lane keeps its
 * first maximum (strict >), so the lane reduction recovers the first maximum overall;
 * skipped classes have values below v_top, which the top class's lane holds at least. */
#ifndef __AVX2__
#error "compile sample_avx2.c with -mavx2 (and no FMA contraction)"
#endif
#include <immintrin.h>
#include <math.h>

#include "sample.h"

#if VK_NOISE_BITS != 12
#error "the bucket registers below are laid out for a 4096-entry table"
#endif

/* The largest lane value (-inf when none beats it) and, among lanes holding it, the
 * lowest class (0 when the value is -inf). Lanes hold no NaN. Branchless. */
static inline int vk_first_max8(__m256 v, __m256i k, float *vmax)
{
    __m256 m = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 1));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1))); /* max in every lane */
    const __m256 hit =
        _mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_EQ_OQ), _mm256_cmp_ps(m, _mm256_set1_ps(-INFINITY), _CMP_GT_OQ));
    __m256i c = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), _mm256_castsi256_ps(k), hit));
    c = _mm256_min_epi32(c, _mm256_permute2x128_si256(c, c, 1));
    c = _mm256_min_epi32(c, _mm256_shuffle_epi32(c, _MM_SHUFFLE(1, 0, 3, 2)));
    c = _mm256_min_epi32(c, _mm256_shuffle_epi32(c, _MM_SHUFFLE(2, 3, 0, 1)));
    *vmax = _mm256_cvtss_f32(m);
    const int cls = _mm256_cvtsi256_si32(c);
    return cls == 0x7fffffff ? 0 : cls;
}

/* One block of logits for the top pass: loaded, or (acc not NULL) dequantised from the
 * output layer's accumulators by the dequantize rule (quantize.h) and stored to logits. */
static inline __m256 logit_block(const int32_t *acc, const float *row_scale, __m256 xs, const float *bias,
                                 float *logits, int k)
{
    if (!acc) return _mm256_loadu_ps(logits + k);
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(acc + k))),
                             _mm256_mul_ps(_mm256_loadu_ps(row_scale + k), xs));
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + k));
    _mm256_storeu_ps(logits + k, v);
    return v;
}

/* The top logit and its first class in one pass, without branches: each lane keeps its
 * first maximum (strict >, false for NaN); two sets of lanes (even, odd blocks) so the
 * compare-blend chains overlap. With acc, the pass also writes the logits (the
 * dequantisation and the top share one pass; the leftover rows by the scalar rule). */
static inline int top_pass(const int32_t *acc, const float *row_scale, float x_scale, const float *bias, float *logits,
                           int n, float *top_out)
{
    int k = 0;
    const __m256 ninf = _mm256_set1_ps(-INFINITY), xs = _mm256_set1_ps(x_scale);
    const __m256i eight = _mm256_set1_epi32(8);
    __m256 t0 = ninf, t1 = ninf;
    __m256i i0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), i1 = _mm256_add_epi32(i0, eight);
    __m256i k0 = i0, k1 = i1;
    const __m256i step16 = _mm256_set1_epi32(16);
    const int n8 = n & ~7;
    for (; k + 16 <= n8; k += 16) {
        const __m256 a = logit_block(acc, row_scale, xs, bias, logits, k);
        const __m256 b = logit_block(acc, row_scale, xs, bias, logits, k + 8);
        const __m256 ga = _mm256_cmp_ps(a, t0, _CMP_GT_OQ), gb = _mm256_cmp_ps(b, t1, _CMP_GT_OQ);
        t0 = _mm256_blendv_ps(t0, a, ga);
        t1 = _mm256_blendv_ps(t1, b, gb);
        k0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k0), _mm256_castsi256_ps(i0), ga));
        k1 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k1), _mm256_castsi256_ps(i1), gb));
        i0 = _mm256_add_epi32(i0, step16);
        i1 = _mm256_add_epi32(i1, step16);
    }
    if (k < n8) { /* an odd block */
        const __m256 a = logit_block(acc, row_scale, xs, bias, logits, k);
        const __m256 ga = _mm256_cmp_ps(a, t0, _CMP_GT_OQ);
        t0 = _mm256_blendv_ps(t0, a, ga);
        k0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k0), _mm256_castsi256_ps(i0), ga));
        k += 8;
    }
    /* merge the two sets: the larger value, the lower class on a tie (t1's classes are
     * not all above t0's) */
    {
        const __m256 g = _mm256_cmp_ps(t1, t0, _CMP_GT_OQ);
        const __m256 eq =
            _mm256_and_ps(_mm256_cmp_ps(t1, t0, _CMP_EQ_OQ), _mm256_castsi256_ps(_mm256_cmpgt_epi32(k0, k1)));
        const __m256 take1 = _mm256_or_ps(g, eq);
        t0 = _mm256_blendv_ps(t0, t1, take1);
        k0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k0), _mm256_castsi256_ps(k1), take1));
    }
    float top;
    const int k_top = vk_first_max8(t0, k0, &top); /* 0 when no lane beats -inf */
    return vk_top_tail(acc, row_scale, x_scale, bias, logits, k, n, top, k_top, top_out);
}

/* Stage 2 on one block: the table indices of its classes (the hash of their inputs x,
 * as vk_noise_index) to *idx, and whether some class beats its bucket's threshold. */
static inline int noise_test(__m256 l, __m256i x, __m256i khi, __m256 thr, __m256i *idx)
{
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, khi);
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu)); /* (the last xorshift keeps the top bits) */
    *idx = _mm256_srli_epi32(x, 32 - VK_NOISE_BITS);
    const __m256 m = _mm256_cvtepi32_ps(
        _mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(VK_NOISE_SIZE), *idx), _mm256_set1_epi32(32))); /* exact */
    const __m256 th = _mm256_permutevar8x32_ps(thr, _mm256_srli_epi32(_mm256_castps_si256(m), 23));
    return _mm256_movemask_ps(_mm256_cmp_ps(l, th, _CMP_GT_OQ)) != 0;
}

/* The rest of the sampler once the top and its class are known. */
static int sample_rest(const float *logits, int n, float t, const float *noise, uint64_t key, float top, int k_top)
{
    int k;
    const int n8 = n & ~7;
    if (!(t > 0.0f)) return k_top;

    key = vk_noise_key(key, top);
    const uint32_t key_lo = (uint32_t)key, key_hi = (uint32_t)(key >> 32);
    float v0 = top + t * noise[vk_noise_index((uint32_t)k_top, key_lo, key_hi)];
    if (!(v0 == v0)) v0 = -INFINITY;
    const float t_max = t * noise[VK_NOISE_SIZE - 1];

    /* Stage 2 skips a class when l + t * B < v0 for B a bound of its noise, B from the
     * bucket of its table index: m = VK_NOISE_SIZE - index in [2^e, 2^(e+1)) has largest
     * index VK_NOISE_SIZE - 2^e. m is clamped to >= 32, so e = 5..12 and the float
     * exponent of m (127 + e) picks lane (127 + e) & 7 of one register; the clamped
     * bucket (m < 64) takes the largest noise of all. */
#define VK_B(e) noise[VK_NOISE_SIZE - (1 << (e))]
    const __m256 bnd =
        _mm256_setr_ps(VK_B(9), VK_B(10), VK_B(11), VK_B(12), noise[VK_NOISE_SIZE - 1], VK_B(6), VK_B(7), VK_B(8));
#undef VK_B
    /* ... as a threshold on l: thr = the largest value found with fl(thr + fl(t B)) < v0,
     * so l <= thr gives fl(l + fl(t g)) <= fl(thr + fl(t B)) < v0 (rounding is monotone,
     * g <= B, t > 0): no such class can win or tie. Where none is found (v0 = -inf, t B
     * infinite, ...) thr = -inf, and only -inf and NaN logits (which never win) skip. */
    const __m256 vv0 = _mm256_set1_ps(v0), vtemp = _mm256_set1_ps(t), vtmax = _mm256_set1_ps(t_max);
    const __m256 tb = _mm256_mul_ps(vtemp, bnd);
    __m256 thr = _mm256_sub_ps(vv0, tb);
    for (int it = 0; it < 3; it++) {
        const __m256 good = _mm256_cmp_ps(_mm256_add_ps(thr, tb), vv0, _CMP_LT_OQ);
        const __m256 down = _mm256_sub_ps(
            thr, _mm256_add_ps(_mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), thr), _mm256_set1_ps(0x1p-20f)),
                               _mm256_set1_ps(0x1p-100f)));
        thr = _mm256_blendv_ps(down, thr, good);
    }
    thr = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), thr, _mm256_cmp_ps(_mm256_add_ps(thr, tb), vv0, _CMP_LT_OQ));

    const __m256i khi = _mm256_set1_epi32((int)key_hi);
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i iota_g = _mm256_mullo_epi32(iota, _mm256_set1_epi32((int)0x9e3779b9u));
    const __m256i step_g = _mm256_set1_epi32((int)(8u * 0x9e3779b9u));
    __m256 best = _mm256_set1_ps(-INFINITY);
    __m256i best_k = _mm256_setzero_si256();
    /* The tests are data-dependent and would mispredict as branches, so each pass
     * compacts the blocks that go on into a list (store, then advance by 0 or 1); the
     * next pass runs over the list. Chunks of VK_CHUNK blocks bound the lists. */
    enum { VK_CHUNK = 64 };
    int list_a[VK_CHUNK], list_b[VK_CHUNK];
    __m256i idx_b[VK_CHUNK];
    for (int c0 = 0; c0 < n8; c0 += 8 * VK_CHUNK) {
        const int c1_end = c0 + 8 * VK_CHUNK < n8 ? c0 + 8 * VK_CHUNK : n8;
        /* 1: no noise can lift any class of the block to v_top */
        int na = 0;
        for (k = c0; k < c1_end; k += 8) {
            const __m256 l = _mm256_loadu_ps(logits + k);
            list_a[na] = k;
            na += _mm256_movemask_ps(_mm256_cmp_ps(_mm256_add_ps(l, vtmax), vv0, _CMP_GE_OQ)) != 0;
        }
        /* 2: the noise index (the hash of key_lo + class * golden, wrapping as the
         * scalar) and its bucket's threshold. When most blocks went on (a flat
         * distribution) every block of the chunk takes this test, its hash input
         * stepped along in a register; else only the listed blocks, each hash input
         * made from its class. */
        int nb = 0;
        if (4 * na >= 3 * ((c1_end - c0) / 8)) {
            __m256i xk = _mm256_add_epi32(_mm256_set1_epi32((int)(key_lo + (uint32_t)c0 * 0x9e3779b9u)), iota_g);
            for (k = c0; k < c1_end; k += 8) {
                const __m256 l = _mm256_loadu_ps(logits + k);
                __m256i idx;
                const int go = noise_test(l, xk, khi, thr, &idx);
                xk = _mm256_add_epi32(xk, step_g);
                list_b[nb] = k;
                idx_b[nb] = idx;
                nb += go;
            }
        } else {
            for (int j = 0; j < na; j++) {
                const int kb = list_a[j];
                const __m256 l = _mm256_loadu_ps(logits + kb);
                __m256i idx;
                const int go = noise_test(
                    l, _mm256_add_epi32(_mm256_set1_epi32((int)(key_lo + (uint32_t)kb * 0x9e3779b9u)), iota_g), khi,
                    thr, &idx);
                list_b[nb] = kb;
                idx_b[nb] = idx;
                nb += go;
            }
        }
        /* 3: the noise itself, for the blocks left (~10% on a flat distribution) */
        for (int j = 0; j < nb; j++) {
            const int kb = list_b[j];
            const __m256 l = _mm256_loadu_ps(logits + kb);
            const __m256 g = _mm256_i32gather_ps(noise, idx_b[j], 4);
            const __m256 v = _mm256_add_ps(l, _mm256_mul_ps(vtemp, g));
            const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
            best = _mm256_blendv_ps(best, v, gt);
            const __m256i kv = _mm256_add_epi32(_mm256_set1_epi32(kb), iota);
            best_k = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(best_k), _mm256_castsi256_ps(kv), gt));
        }
    }
    k = n8;
    float best_v;
    const int cls = vk_first_max8(best, best_k, &best_v);
    return vk_sample_tail(logits, k, n, t, noise, key_lo, key_hi, best_v, cls); /* after every vector class */
}

#define VK_S_PASSES 1
#define VK_ISA avx2
#include "sample_body.h"
