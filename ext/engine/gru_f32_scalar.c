/* Plain C GRU update (non-x86 builds, and the reference for the vector versions). */
#define VK_GRU_NAME vk_gru_f32_scalar
#include "gru_f32_body.h"
