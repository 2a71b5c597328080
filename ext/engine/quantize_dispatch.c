/* Which activation quantiser and sampler each kernel level uses in the engine (all
 * give the same bits). */
#include "quantize.h"
#include "kernels/sparse_gemv_i8.h"

vk_quant_fns vk_quant_for_level(int level)
{
    vk_quant_fns f = {vk_quantize_f32, vk_dequantize, vk_sample_scalar, vk_quantize_max_f32, vk_dequantize_relu,
                      vk_sample_acc_scalar};
#ifdef VK_NO_X86
    (void)level;
#else
    switch (level) {
    case VK_LEVEL_AVX2:
    case VK_LEVEL_AVXVNNI:
        f.quantize = vk_quantize_f32_avx2;
        f.dequantize = vk_dequantize_avx2;
        f.sample = vk_sample_avx2;
        f.quantize_max = vk_quantize_max_f32_avx2;
        f.dequantize_relu = vk_dequantize_relu_avx2;
        f.sample_acc = vk_sample_acc_avx2;
        break;
    case VK_LEVEL_AVX512:
    case VK_LEVEL_AVX512VNNI:
        f.quantize = vk_quantize_f32_avx512;
        f.dequantize = vk_dequantize_avx512;
        f.sample = vk_sample_avx512;
        f.quantize_max = vk_quantize_max_f32_avx512;
        f.dequantize_relu = vk_dequantize_relu_avx512;
        f.sample_acc = vk_sample_acc_avx512;
        break;
    default: /* ref and sse2: the baseline (SSE2) quantiser and the plain C sampler */
        break;
    }
#endif
    return f;
}
