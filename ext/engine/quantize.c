#include "quantize.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The SSE2 paths (baseline on x86-64, so the same code runs whatever kernel level is
 * active) perform the same IEEE operations in the same order as the scalar tails. */

static float quantize_given(const float *x, int n, int n_padded, uint8_t *xu, float absmax);

float vk_quantize_f32(const float *x, int n, int n_padded, uint8_t *xu)
{
    float absmax = 0.0f;
    int i = 0;
#ifdef __SSE2__
    const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 vmax = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) /* maxps(a, m) keeps m when a is NaN, as the scalar test */
        vmax = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(x + i), abs_mask), vmax);
    float lanes[4];
    _mm_storeu_ps(lanes, vmax);
    for (int k = 0; k < 4; k++)
        if (lanes[k] > absmax) absmax = lanes[k];
#endif
    return quantize_given(x, n, n_padded, xu, vk_absmax_tail(x, i, n, absmax));
}

float vk_quantize_max_f32(const float *x, int n, int n_padded, uint8_t *xu, float maxabs)
{
    return quantize_given(x, n, n_padded, xu, vk_absmax_cap(maxabs));
}

/* the second pass, once the (capped) absmax is known */
static float quantize_given(const float *x, int n, int n_padded, uint8_t *xu, float absmax)
{
    int i;
    if (absmax == 0.0f) {
        for (i = 0; i < n_padded; i++) xu[i] = 128;
        return 1.0f;
    }
    const float scale = absmax / 127.0f;
    const float inv = 127.0f / absmax;
    i = 0;
#ifdef __SSE2__
    const __m128 vinv = _mm_set1_ps(inv), hi = _mm_set1_ps(127.0f), lo = _mm_set1_ps(-127.0f);
    const __m128 half = _mm_set1_ps(0.5f), sign = _mm_set1_ps(-0.0f);
    const __m128i bias = _mm_set1_epi16(128);
    for (; i + 8 <= n; i += 8) {
        __m128i q[2];
        for (int h = 0; h < 2; h++) {
            __m128 t = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * h), vinv);
            t = _mm_and_ps(t, _mm_cmpeq_ps(t, t));          /* NaN -> 0 */
            t = _mm_max_ps(_mm_min_ps(t, hi), lo);
            __m128 r = _mm_add_ps(t, _mm_or_ps(_mm_and_ps(t, sign), half)); /* t +- 0.5 */
            q[h] = _mm_cvttps_epi32(r);
        }
        __m128i w = _mm_add_epi16(_mm_packs_epi32(q[0], q[1]), bias);
        _mm_storel_epi64((__m128i *)(xu + i), _mm_packus_epi16(w, w));
    }
#endif
    for (; i < n; i++) {
        int q = vk_quantize_one(x[i] * inv);
        xu[i] = (uint8_t)(q + 128);
    }
    for (; i < n_padded; i++) xu[i] = 128;
    return scale;
}

void vk_dequantize(const int32_t *acc, const float *row_scale, float x_scale,
                   const float *bias, float *y, int rows)
{
    for (int r = 0; r < rows; r++) {
        float s = row_scale[r] * x_scale;
        float v = (float)acc[r] * s;
        y[r] = bias ? v + bias[r] : v;
    }
}

/* vk_dequantize_relu: the plain C instance of the shared body (the definition) */
#define VK_DR_NAME vk_dequantize_relu
#include "dequantize_relu_body.h"
