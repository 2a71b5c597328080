/* GRU update, 4 lanes (SSE2, baseline x86-64). */
#include <emmintrin.h>
#define VK_GRU_NAME vk_gru_f32_sse2
#define VK_V __m128
#define VK_W 4
#define VK_LOAD _mm_loadu_ps
#define VK_STORE _mm_storeu_ps
#define VK_SET1 _mm_set1_ps
#define VK_ADD _mm_add_ps
#define VK_SUB _mm_sub_ps
#define VK_MUL _mm_mul_ps
#define VK_DIV _mm_div_ps
#define VK_MIN _mm_min_ps
#define VK_MAX _mm_max_ps
#include "gru_f32_body.h"
