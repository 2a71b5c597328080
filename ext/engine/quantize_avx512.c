/* Activation quantisation and dequantisation, 16 lanes (AVX-512F, compiled without
 * FMA). Same IEEE operations per element as quantize.c; see quantize_avx2.c. */
#include <immintrin.h>

#include "quantize.h"

static float quantize_given(const float *x, int n, int n_padded, uint8_t *xu, float absmax, int finite);

float vk_quantize_f32_avx512(const float *x, int n, int n_padded, uint8_t *xu)
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
    float absmax = 0.0f;
    int finite = 1;
    for (int k = 0; k < 16; k++) {
        if (lanes[k] > absmax) absmax = lanes[k];
        finite &= sums[k] <= 3.4e38f;
    }
    return quantize_given(x, n, n_padded, xu, vk_absmax_tail(x, i, n, absmax), finite);
}

/* x holds no NaN (quantize.h), so a finite maxabs means every x is finite. */
float vk_quantize_max_f32_avx512(const float *x, int n, int n_padded, uint8_t *xu, float maxabs)
{
    return quantize_given(x, n, n_padded, xu, vk_absmax_cap(maxabs), maxabs <= 3.4e38f);
}

/* The second pass, once the (capped) absmax is known; finite: every x is. */
static float quantize_given(const float *x, int n, int n_padded, uint8_t *xu, float absmax, int finite)
{
    int i;
    if (absmax == 0.0f) {
        for (i = 0; i < n_padded; i++) xu[i] = 128;
        return 1.0f;
    }
    const float scale = absmax / 127.0f;
    const float inv = 127.0f / absmax;
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0.5f)), sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512i bias = _mm512_set1_epi32(128);
    i = 0;
    if (finite && absmax < 3.0e38f && inv <= 3.4e38f) /* then |t| < 127.5: no mask or clamp (quantize_avx2.c) */
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
    for (; i < n; i++) xu[i] = (uint8_t)(vk_quantize_one(x[i] * inv) + 128);
    for (; i < n_padded; i++) xu[i] = 128;
    return scale;
}

void vk_dequantize_avx512(const int32_t *acc, const float *row_scale, float x_scale,
                          const float *bias, float *y, int rows)
{
    const __m512 xs = _mm512_set1_ps(x_scale);
    int r = 0;
    for (; r + 16 <= rows; r += 16) {
        __m512 s = _mm512_mul_ps(_mm512_loadu_ps(row_scale + r), xs);
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(acc + r)), s);
        _mm512_storeu_ps(y + r, bias ? _mm512_add_ps(v, _mm512_loadu_ps(bias + r)) : v);
    }
    for (; r < rows; r++) {
        float s = row_scale[r] * x_scale;
        float v = (float)acc[r] * s;
        y[r] = bias ? v + bias[r] : v;
    }
}

/* vk_dequantize_relu, 16 lanes */
#define VK_DR_NAME vk_dequantize_relu_avx512
#include "vec_f32_avx512.h"
#include "dequantize_relu_body.h"
