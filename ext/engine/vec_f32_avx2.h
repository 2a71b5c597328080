/* vec_f32_scalar.h's operations on 8 lanes (AVX arithmetic; compile without FMA). */
#ifndef VK_VEC_F32_H
#define VK_VEC_F32_H
#include <immintrin.h>
static inline float vk_hmax_avx2(__m256 v) /* lanes >= +0, no NaN: any order */
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
#define VK_V __m256
#define VK_W 8
#define VK_LOAD _mm256_loadu_ps
#define VK_LOADI(p) _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VK_STORE _mm256_storeu_ps
#define VK_SET1 _mm256_set1_ps
#define VK_ADD _mm256_add_ps
#define VK_SUB _mm256_sub_ps
#define VK_MUL _mm256_mul_ps
#define VK_DIV _mm256_div_ps
#define VK_MIN _mm256_min_ps
#define VK_MAX _mm256_max_ps
#define VK_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define VK_HMAX vk_hmax_avx2
#endif
