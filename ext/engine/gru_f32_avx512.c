/* GRU update, 16 lanes (AVX-512F; compiled without FMA). */
#define VK_GRU_NAME vk_gru_f32_avx512
#include "vec_f32_avx512.h"
#include "gru_f32_body.h"
