/* GRU update, 8 lanes (AVX2 machines; AVX arithmetic only, compiled without FMA). */
#include <immintrin.h>
#define VK_GRU_NAME vk_gru_f32_avx2
#define VK_V __m256
#define VK_W 8
#define VK_LOAD _mm256_loadu_ps
#define VK_STORE _mm256_storeu_ps
#define VK_SET1 _mm256_set1_ps
#define VK_ADD _mm256_add_ps
#define VK_SUB _mm256_sub_ps
#define VK_MUL _mm256_mul_ps
#define VK_DIV _mm256_div_ps
#define VK_MIN _mm256_min_ps
#define VK_MAX _mm256_max_ps
#include "gru_f32_body.h"
