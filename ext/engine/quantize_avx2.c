/* Activation quantisation and dequantisation, 8 lanes (AVX2, compiled without FMA).
 * Same IEEE operations per element as quantize_ref.c, so the same bytes and floats: the
 * absmax is a max (exact, so the lane count does not change it), and each element is
 * quantised on its own. */
#ifndef __AVX2__
#error "compile quantize_avx2.c with -mavx2 (and no FMA contraction)"
#endif
#include <immintrin.h>

#include "quantize.h"

/* t = x * inv, NaN -> 0, clamp to +-127, then t +- 0.5 truncated: the scalar rule. */
static inline __m256i quantize8(const float *x, __m256 inv)
{
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256 half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
    t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_EQ_OQ));
    t = _mm256_max_ps(_mm256_min_ps(t, hi), lo);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_or_ps(_mm256_and_ps(t, sign), half)));
}

/* The common case, every x finite, absmax not capped and 127/absmax finite: then
 * |x * inv| <= 127 (1 + 2^-24)^2 < 127.5, so the NaN mask and the clamp of quantize8 change nothing and are
 * skipped; the rounding is the same operations, so the same bytes. */
static inline __m256i quantize8_finite(const float *x, __m256 inv)
{
    const __m256 half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_or_ps(_mm256_and_ps(t, sign), half)));
}

static inline int q_absmax_blocks(const float *x, int n, float *absmax, int *finite)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    __m256 sum = _mm256_setzero_ps(); /* NaN or inf if some x is (or the sum overflows) */
    int i = 0;
    for (; i + 16 <= n; i += 16) { /* maxps(a, m) keeps m when a is NaN, as the scalar test */
        const __m256 a0 = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
        const __m256 a1 = _mm256_and_ps(_mm256_loadu_ps(x + i + 8), abs_mask);
        m0 = _mm256_max_ps(a0, m0);
        m1 = _mm256_max_ps(a1, m1);
        sum = _mm256_add_ps(sum, _mm256_add_ps(a0, a1));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 a0 = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
        m0 = _mm256_max_ps(a0, m0);
        sum = _mm256_add_ps(sum, a0);
    }
    /* lanes hold +0 or positive, never NaN: any order of max gives the scalar's max */
    const __m256 m = _mm256_max_ps(m0, m1);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    *absmax = _mm_cvtss_f32(h);
    *finite = _mm256_movemask_ps(_mm256_cmp_ps(sum, _mm256_set1_ps(3.4e38f), _CMP_LE_OQ)) == 0xff;
    return i;
}

static inline int q_round_blocks(const float *x, int n, uint8_t *xu, float inv, int fast)
{
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i bias = _mm256_set1_epi16(128);
    int i = 0;
    if (fast) {
        /* 32 at a time: |q| <= 127, so both packs are exact; they interleave the four
         * blocks' 4-element halves within 128-bit lanes, one permute restores the order,
         * and q + 128 is q ^ 0x80 on the bytes */
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), flip = _mm256_set1_epi8((char)0x80);
        for (; i + 32 <= n; i += 32) {
            const __m256i w01 = _mm256_packs_epi32(quantize8_finite(x + i, vinv), quantize8_finite(x + i + 8, vinv));
            const __m256i w23 =
                _mm256_packs_epi32(quantize8_finite(x + i + 16, vinv), quantize8_finite(x + i + 24, vinv));
            const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
            _mm256_storeu_si256((__m256i *)(xu + i), _mm256_xor_si256(b, flip));
        }
        for (; i + 16 <= n; i += 16) {
            __m256i w = _mm256_packs_epi32(quantize8_finite(x + i, vinv), quantize8_finite(x + i + 8, vinv));
            w = _mm256_add_epi16(_mm256_permute4x64_epi64(w, 0xd8), bias);
            _mm_storeu_si128((__m128i *)(xu + i),
                             _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
        }
    }
    for (; i + 16 <= n; i += 16) {
        /* packs works within 128-bit halves: [a0-3 b0-3 | a4-7 b4-7]; restore order */
        __m256i w = _mm256_packs_epi32(quantize8(x + i, vinv), quantize8(x + i + 8, vinv));
        w = _mm256_add_epi16(_mm256_permute4x64_epi64(w, 0xd8), bias);
        _mm_storeu_si128((__m128i *)(xu + i),
                         _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
    }
    return i;
}

#define VK_Q_BLOCKS 1
#define VK_ISA avx2
#include "vec_f32_avx2.h"
#include "quantize_body.h"
