/* The one dispatch file: each level's table of functions (isa.h). Compiled with baseline
 * flags: it only takes addresses and never executes an ISA-specific instruction. A level
 * uses the best version of each operation its CPU can run (an operation without a
 * version of its own for a level takes the one below it: AVX-VNNI is AVX2 but for the
 * kernels). */
#include "isa.h"

#ifdef VK_NO_X86
/* Not x86: only the ref files are built; the x86 tables are never offered
 * (vk_cpu_levels) and point at ref. */
#define VK_X86(fn, ref_fn) ref_fn
#else
#define VK_X86(fn, ref_fn) fn
#endif

const vk_isa_table vk_table_ref = {
    .name = "ref",
    .sparse_gemv = vk_sparse_gemv_i8_ref,
    .sparse_gemm = vk_sparse_gemm_i8_ref,
    .gru = vk_gru_f32_ref,
    .quantize = vk_quantize_f32_ref,
    .quantize_max = vk_quantize_max_f32_ref,
    .dequantize = vk_dequantize_f32_ref,
    .dequantize_relu = vk_dequantize_relu_f32_ref,
    .sample = vk_sample_f32_ref,
    .sample_acc = vk_sample_acc_f32_ref,
    .excitation = vk_excitation_f64_ref,
    .dense = vk_dense_f32_ref,
};

/* The baseline float work of every x86 level (SSE2 is all it needs). */
#define VK_SSE2_FRAME_ENTRIES                                            \
    .excitation = VK_X86(vk_excitation_f64_sse2, vk_excitation_f64_ref), \
    .dense = VK_X86(vk_dense_f32_sse2, vk_dense_f32_ref)

const vk_isa_table vk_table_sse2 = {
    .name = "sse2",
    .sparse_gemv = VK_X86(vk_sparse_gemv_i8_sse2, vk_sparse_gemv_i8_ref),
    .sparse_gemm = VK_X86(vk_sparse_gemm_i8_sse2, vk_sparse_gemm_i8_ref),
    .gru = VK_X86(vk_gru_f32_sse2, vk_gru_f32_ref),
    .quantize = VK_X86(vk_quantize_f32_sse2, vk_quantize_f32_ref),
    .quantize_max = VK_X86(vk_quantize_max_f32_sse2, vk_quantize_max_f32_ref),
    .dequantize = VK_X86(vk_dequantize_f32_sse2, vk_dequantize_f32_ref),
    .dequantize_relu = VK_X86(vk_dequantize_relu_f32_sse2, vk_dequantize_relu_f32_ref),
    .sample = vk_sample_f32_ref, /* no 32-bit multiply or gather: plain C is as fast */
    .sample_acc = vk_sample_acc_f32_ref,
    VK_SSE2_FRAME_ENTRIES,
};

/* AVX2 and AVX-VNNI differ only in the kernels' dot product. */
#define VK_AVX2_FLOAT_ENTRIES                                                                                      \
    .gru = VK_X86(vk_gru_f32_avx2, vk_gru_f32_ref), .quantize = VK_X86(vk_quantize_f32_avx2, vk_quantize_f32_ref), \
    .quantize_max = VK_X86(vk_quantize_max_f32_avx2, vk_quantize_max_f32_ref),                                     \
    .dequantize = VK_X86(vk_dequantize_f32_avx2, vk_dequantize_f32_ref),                                           \
    .dequantize_relu = VK_X86(vk_dequantize_relu_f32_avx2, vk_dequantize_relu_f32_ref),                            \
    .sample = VK_X86(vk_sample_f32_avx2, vk_sample_f32_ref),                                                       \
    .sample_acc = VK_X86(vk_sample_acc_f32_avx2, vk_sample_acc_f32_ref)

const vk_isa_table vk_table_avx2 = {
    .name = "avx2",
    .sparse_gemv = VK_X86(vk_sparse_gemv_i8_avx2, vk_sparse_gemv_i8_ref),
    .sparse_gemm = VK_X86(vk_sparse_gemm_i8_avx2, vk_sparse_gemm_i8_ref),
    VK_AVX2_FLOAT_ENTRIES,
    VK_SSE2_FRAME_ENTRIES,
};

const vk_isa_table vk_table_avxvnni = {
    .name = "avxvnni",
    .sparse_gemv = VK_X86(vk_sparse_gemv_i8_avxvnni, vk_sparse_gemv_i8_ref),
    .sparse_gemm = VK_X86(vk_sparse_gemm_i8_avxvnni, vk_sparse_gemm_i8_ref),
    VK_AVX2_FLOAT_ENTRIES,
    VK_SSE2_FRAME_ENTRIES,
};

/* AVX-512 and AVX-512 VNNI differ only in the kernels' dot product. */
#define VK_AVX512_FLOAT_ENTRIES                                                                                        \
    .gru = VK_X86(vk_gru_f32_avx512, vk_gru_f32_ref), .quantize = VK_X86(vk_quantize_f32_avx512, vk_quantize_f32_ref), \
    .quantize_max = VK_X86(vk_quantize_max_f32_avx512, vk_quantize_max_f32_ref),                                       \
    .dequantize = VK_X86(vk_dequantize_f32_avx512, vk_dequantize_f32_ref),                                             \
    .dequantize_relu = VK_X86(vk_dequantize_relu_f32_avx512, vk_dequantize_relu_f32_ref),                              \
    .sample = VK_X86(vk_sample_f32_avx512, vk_sample_f32_ref),                                                         \
    .sample_acc = VK_X86(vk_sample_acc_f32_avx512, vk_sample_acc_f32_ref)

const vk_isa_table vk_table_avx512 = {
    .name = "avx512",
    .sparse_gemv = VK_X86(vk_sparse_gemv_i8_avx512, vk_sparse_gemv_i8_ref),
    .sparse_gemm = VK_X86(vk_sparse_gemm_i8_avx512, vk_sparse_gemm_i8_ref),
    VK_AVX512_FLOAT_ENTRIES,
    VK_SSE2_FRAME_ENTRIES,
};

const vk_isa_table vk_table_avx512vnni = {
    .name = "avx512vnni",
    .sparse_gemv = VK_X86(vk_sparse_gemv_i8_avx512vnni, vk_sparse_gemv_i8_ref),
    .sparse_gemm = VK_X86(vk_sparse_gemm_i8_avx512vnni, vk_sparse_gemm_i8_ref),
    VK_AVX512_FLOAT_ENTRIES,
    VK_SSE2_FRAME_ENTRIES,
};

const vk_isa_table *const vk_isa_tables[VK_LEVEL_COUNT] = {
    &vk_table_ref, &vk_table_sse2, &vk_table_avx2, &vk_table_avxvnni, &vk_table_avx512, &vk_table_avx512vnni,
};
