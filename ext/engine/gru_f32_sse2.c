/* GRU update, 4 lanes (SSE2, baseline x86-64). */
#define VK_GRU_NAME vk_gru_f32_sse2
#include "vec_f32_sse2.h"
#include "gru_f32_body.h"
