/* Activation quantisation and dequantisation, 16 lanes (AVX-512F, compiled without
 * FMA). Same IEEE operations per element as quantize_ref.c; see quantize_avx2.c. */
#if !defined(__AVX512F__) && !defined(VK_SIMDE_ISA_H)
#error "compile quantize_avx512.c with -mavx512f (and no FMA contraction)"
#endif
#include <immintrin.h>

#include "quantize.h"

static inline int q_absmax_blocks(const float *x, int n, float *absmax, int *finite)
{
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    __m512 m0 = _mm512_setzero_ps();
    __m512 sum = _mm512_setzero_ps(); /* NaN or inf if some x is (or the sum overflows) */
    int i = 0;
    for (; i + 16 <= n; i += 16) { /* maxps(a, m) keeps m when a is NaN, as the scalar test */
        const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask));
        m0 = _mm512_max_ps(a, m0);
        sum = _mm512_add_ps(sum, a);
    }
    float lanes[16], sums[16];
    _mm512_storeu_ps(lanes, m0);
    _mm512_storeu_ps(sums, sum);
    float m = 0.0f;
    int fin = 1;
    for (int k = 0; k < 16; k++) {
        if (lanes[k] > m) m = lanes[k];
        fin &= sums[k] <= 3.4e38f;
    }
    *absmax = m;
    *finite = fin;
    return i;
}

static inline int q_round_blocks(const float *x, int n, uint8_t *xu, float inv, int fast)
{
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0.5f)), sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512i bias = _mm512_set1_epi32(128);
    int i = 0;
    if (fast) /* |t| < 127.5: no mask or clamp (quantize_body.h) */
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
            __m512 h = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(t), sign), half));
            __m512i q = _mm512_add_epi32(_mm512_cvttps_epi32(_mm512_add_ps(t, h)), bias);
            _mm_storeu_si128((__m128i *)(xu + i), _mm512_cvtepi32_epi8(q));
        }
    for (; i + 16 <= n; i += 16) {
        __m512 t = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
        t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_EQ_OQ), t); /* NaN -> 0 */
        t = _mm512_max_ps(_mm512_min_ps(t, hi), lo);
        __m512 h = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(t), sign), half));
        __m512i q = _mm512_add_epi32(_mm512_cvttps_epi32(_mm512_add_ps(t, h)), bias); /* 1..255 */
        _mm_storeu_si128((__m128i *)(xu + i), _mm512_cvtepi32_epi8(q));
    }
    return i;
}

#define VK_Q_BLOCKS 1
#define VK_ISA avx512
#include "vec_f32_avx512.h"
#include "quantize_body.h"
