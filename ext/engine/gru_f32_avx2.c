/* GRU update, 8 lanes (AVX2 machines; AVX arithmetic only, compiled without FMA). */
#define VK_GRU_NAME vk_gru_f32_avx2
#include "vec_f32_avx2.h"
#include "gru_f32_body.h"
