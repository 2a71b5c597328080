/* Activation quantisation and dequantisation, 4 lanes (SSE2, baseline x86-64). Same
 * IEEE operations per element as quantize_ref.c, so the same bytes and floats: the
 * absmax is a max (exact, so the lane count does not change it), and each element is
 * quantised on its own. */
#ifndef __SSE2__
#error "compile quantize_sse2.c with -msse2"
#endif
#include <emmintrin.h>

#include "quantize.h"

static inline int q_absmax_blocks(const float *x, int n, float *absmax, int *finite)
{
    const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 vmax = _mm_setzero_ps();
    int i = 0;
    for (; i + 4 <= n; i += 4) /* maxps(a, m) keeps m when a is NaN, as the scalar test */
        vmax = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(x + i), abs_mask), vmax);
    float lanes[4], m = 0.0f;
    _mm_storeu_ps(lanes, vmax);
    for (int k = 0; k < 4; k++)
        if (lanes[k] > m) m = lanes[k];
    *absmax = m;
    *finite = 0; /* not tracked: the rounding below always masks and clamps */
    return i;
}

static inline int q_round_blocks(const float *x, int n, uint8_t *xu, float inv, int fast)
{
    (void)fast;
    const __m128 vinv = _mm_set1_ps(inv), hi = _mm_set1_ps(127.0f), lo = _mm_set1_ps(-127.0f);
    const __m128 half = _mm_set1_ps(0.5f), sign = _mm_set1_ps(-0.0f);
    const __m128i bias = _mm_set1_epi16(128);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i q[2];
        for (int h = 0; h < 2; h++) {
            __m128 t = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * h), vinv);
            t = _mm_and_ps(t, _mm_cmpeq_ps(t, t)); /* NaN -> 0 */
            t = _mm_max_ps(_mm_min_ps(t, hi), lo);
            __m128 r = _mm_add_ps(t, _mm_or_ps(_mm_and_ps(t, sign), half)); /* t +- 0.5 */
            q[h] = _mm_cvttps_epi32(r);
        }
        __m128i w = _mm_add_epi16(_mm_packs_epi32(q[0], q[1]), bias);
        _mm_storel_epi64((__m128i *)(xu + i), _mm_packus_epi16(w, w));
    }
    return i;
}

#define VK_Q_BLOCKS 1
#define VK_ISA sse2
#include "vec_f32_sse2.h"
#include "quantize_body.h"
