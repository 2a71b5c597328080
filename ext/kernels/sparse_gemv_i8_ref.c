/* Portable C reference: the definition every SIMD level must match bit for bit. */
#include "sparse_gemv_i8.h"

void vk_sparse_gemv_i8_ref(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    for (int rb = 0; rb < m->row_blocks; rb++) {
        int32_t acc[VK_BLOCK_ROWS] = {0};
        for (int k = m->row_ptr[rb]; k < m->row_ptr[rb + 1]; k++) {
            const int8_t *w = m->blocks + (int64_t)k * VK_BLOCK_BYTES;
            const uint8_t *x = xu + (int64_t)m->col_idx[k] * VK_BLOCK_COLS;
            for (int r = 0; r < VK_BLOCK_ROWS; r++)
                for (int c = 0; c < VK_BLOCK_COLS; c++)
                    acc[r] += (int32_t)w[r * VK_BLOCK_COLS + c] * (int32_t)x[c];
        }
        for (int r = 0; r < VK_BLOCK_ROWS; r++) {
            int i = rb * VK_BLOCK_ROWS + r;
            y[i] = acc[r] - 128 * m->row_sums[i];
        }
    }
}

void vk_sparse_gemm_i8_ref(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride,
                           int32_t *y, int y_stride)
{
    for (int n = 0; n < batch; n++)
        vk_sparse_gemv_i8_ref(m, xu + (int64_t)n * x_stride, y + (int64_t)n * y_stride);
}
