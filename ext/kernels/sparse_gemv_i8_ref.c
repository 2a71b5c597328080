/* Portable C reference: the definition every SIMD level must match bit for bit. */
#include "sparse_gemv_i8.h"

void vk_sparse_gemv_i8_ref(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    /* Local copies: y's int32 stores may alias m's fields, so reading them through m
     * would reload them every row block. */
    const int32_t *row_ptr = m->row_ptr, *col_idx = m->col_idx, *row_sums = m->row_sums;
    const int8_t *blocks = m->blocks;
    const int row_blocks = m->row_blocks;
    for (int rb = 0; rb < row_blocks; rb++) {
        int32_t acc[VK_BLOCK_ROWS] = {0};
        for (int k = row_ptr[rb]; k < row_ptr[rb + 1]; k++) {
            const int8_t *w = blocks + (int64_t)k * VK_BLOCK_BYTES;
            const uint8_t *x = xu + (int64_t)col_idx[k] * VK_BLOCK_COLS;
            for (int r = 0; r < VK_BLOCK_ROWS; r++)
                for (int c = 0; c < VK_BLOCK_COLS; c++) acc[r] += (int32_t)w[r * VK_BLOCK_COLS + c] * (int32_t)x[c];
        }
        for (int r = 0; r < VK_BLOCK_ROWS; r++) {
            int i = rb * VK_BLOCK_ROWS + r;
            y[i] = acc[r] - 128 * row_sums[i];
        }
    }
}

void vk_sparse_gemm_i8_ref(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride, int32_t *y, int y_stride)
{
    for (int n = 0; n < batch; n++) vk_sparse_gemv_i8_ref(m, xu + (int64_t)n * x_stride, y + (int64_t)n * y_stride);
}
