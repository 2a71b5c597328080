/* vec_f32_scalar.h's operations on 4 lanes (SSE2). */
#ifndef VK_VEC_F32_H
#define VK_VEC_F32_H
#include <emmintrin.h>
static inline float vk_hmax_sse2(__m128 m) /* lanes >= +0, no NaN: any order */
{
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
#define VK_V __m128
#define VK_W 4
#define VK_LOAD _mm_loadu_ps
#define VK_LOADI(p) _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VK_STORE _mm_storeu_ps
#define VK_SET1 _mm_set1_ps
#define VK_ADD _mm_add_ps
#define VK_SUB _mm_sub_ps
#define VK_MUL _mm_mul_ps
#define VK_DIV _mm_div_ps
#define VK_MIN _mm_min_ps
#define VK_MAX _mm_max_ps
#define VK_ABS(a) _mm_andnot_ps(_mm_set1_ps(-0.0f), (a))
#define VK_HMAX vk_hmax_sse2
#endif
