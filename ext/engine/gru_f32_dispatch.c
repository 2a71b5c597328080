/* Which GRU update each kernel level uses (all give the same bits). */
#include "gru_f32.h"
#include "kernels/sparse_gemv_i8.h"

vk_gru_fn vk_gru_for_level(int level)
{
#ifdef VK_NO_X86
    (void)level;
    return vk_gru_f32_scalar;
#else
    switch (level) {
    case VK_LEVEL_AVX2:
    case VK_LEVEL_AVXVNNI:
        return vk_gru_f32_avx2;
    case VK_LEVEL_AVX512:
    case VK_LEVEL_AVX512VNNI:
        return vk_gru_f32_avx512;
    case VK_LEVEL_SSE2:
        return vk_gru_f32_sse2;
    default: /* ref: plain C, so the level test compares it with the vector versions */
        return vk_gru_f32_scalar;
    }
#endif
}
