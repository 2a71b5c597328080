# Declarations shared with the engine module (vocoder/_engine.pyx).
from libc.stdint cimport int8_t, uint8_t, int32_t, uint64_t

cdef extern from "kernels/sparse_gemv_i8.h":
    ctypedef struct vk_bsmat:
        int32_t row_blocks
        int32_t col_blocks
        const int32_t *row_ptr
        const int32_t *col_idx
        const int8_t *blocks
        const int32_t *row_sums
    ctypedef void (*vk_gemv_fn)(const vk_bsmat *m, const uint8_t *xu, int32_t *y) noexcept nogil
    ctypedef void (*vk_gemm_fn)(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride,
                                int32_t *y, int y_stride) noexcept nogil
    int VK_MAX_BATCH

cdef extern from "engine/quantize.h":
    ctypedef float (*vk_quantize_fn)(const float *x, int n, int n_padded, uint8_t *xu) noexcept nogil
    ctypedef float (*vk_quantize_max_fn)(const float *x, int n, int n_padded, uint8_t *xu, float maxabs) noexcept nogil
    ctypedef void (*vk_dequantize_fn)(const int32_t *acc, const float *row_scale, float x_scale,
                                      const float *bias, float *y, int rows) noexcept nogil
    ctypedef float (*vk_dequantize_relu_fn)(const int32_t *acc, const float *row_scale, float x_scale,
                                            const float *bias, const float *w0, const float *w1, float e0,
                                            float e1, float *y, int rows) noexcept nogil

cdef extern from "engine/sample.h":
    ctypedef int (*vk_sample_fn)(const float *logits, int n, float t, const float *noise, uint64_t key) noexcept nogil
    ctypedef int (*vk_sample_acc_fn)(const int32_t *acc, const float *row_scale, float x_scale, const float *bias,
                                     float *logits, int n, float t, const float *noise, uint64_t key) noexcept nogil
    int VK_NOISE_SIZE

cdef extern from "isa.h":
    ctypedef struct vk_isa_table:
        const char *name
        vk_gemv_fn sparse_gemv
        vk_gemm_fn sparse_gemm
        vk_quantize_fn quantize
        vk_quantize_max_fn quantize_max
        vk_dequantize_fn dequantize
        vk_dequantize_relu_fn dequantize_relu
        vk_sample_fn sample
        vk_sample_acc_fn sample_acc
    const vk_isa_table *vk_isa_tables[]
    int VK_LEVEL_COUNT


cdef class PackedMatrix:
    cdef vk_bsmat m
    cdef readonly object row_ptr, col_idx, blocks, row_sums
    cdef readonly int rows_padded, cols_padded
