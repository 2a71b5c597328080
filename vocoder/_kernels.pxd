# Declarations shared with the engine module (vocoder/_engine.pyx).
from libc.stdint cimport int8_t, uint8_t, int32_t

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
    ctypedef struct vk_kernel_table:
        const char *name
        vk_gemv_fn gemv
        vk_gemm_fn gemm
    const vk_kernel_table vk_kernel_tables[]
    int VK_LEVEL_COUNT
    int VK_MAX_BATCH


cdef class PackedMatrix:
    cdef vk_bsmat m
    cdef readonly object row_ptr, col_idx, blocks, row_sums
    cdef readonly int rows_padded, cols_padded
