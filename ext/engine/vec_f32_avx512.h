/* vec_f32_scalar.h's operations on 16 lanes (AVX-512F; compile without FMA). */
#ifndef VK_VEC_F32_H
#define VK_VEC_F32_H
#include <immintrin.h>
#define VK_V __m512
#define VK_W 16
#define VK_LOAD _mm512_loadu_ps
#define VK_LOADI(p) _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(p)))
#define VK_STORE _mm512_storeu_ps
#define VK_SET1 _mm512_set1_ps
#define VK_ADD _mm512_add_ps
#define VK_SUB _mm512_sub_ps
#define VK_MUL _mm512_mul_ps
#define VK_DIV _mm512_div_ps
#define VK_MIN _mm512_min_ps
#define VK_MAX _mm512_max_ps
#define VK_ABS(a) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)))
#define VK_HMAX _mm512_reduce_max_ps /* lanes >= +0, no NaN: any order */
#endif
