/* Body shared by the 512-bit kernels (AVX-512BW, AVX-512 VNNI). The including file
 * defines VK_ISA and VK_DOT4_ACC(acc, x, w) as in sparse_gemv_i8_x86_256.h. One zmm
 * register holds a whole 16 x 4 block: one lane per row. */
#include <immintrin.h>
#include <string.h>
#include "sparse_gemv_i8.h"

#define VK_CAT_(a, b) a##b
#define VK_CAT(a, b) VK_CAT_(a, b)
#define VK_FN(name) VK_CAT(name, VK_ISA)

#define VK_UNROLL 4 /* independent accumulators in the single-vector loop */
#define VK_GROUP 8  /* vectors per weight load in the batched kernel */

static inline __m512i bcast4(const uint8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm512_set1_epi32(v);
}

static inline void store_rows(const vk_bsmat *m, int rb, __m512i acc, int32_t *y)
{
    const int32_t *rs = m->row_sums + rb * VK_BLOCK_ROWS;
    __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)rs), 7);
    _mm512_storeu_si512((void *)(y + rb * VK_BLOCK_ROWS), _mm512_sub_epi32(acc, corr));
}

void VK_FN(vk_sparse_gemv_i8_)(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    const int32_t *col_idx = m->col_idx;
    for (int rb = 0; rb < m->row_blocks; rb++) {
        __m512i acc[VK_UNROLL];
        for (int u = 0; u < VK_UNROLL; u++) acc[u] = _mm512_setzero_si512();
        int k = m->row_ptr[rb];
        const int end = m->row_ptr[rb + 1];
        for (; k + VK_UNROLL <= end; k += VK_UNROLL) {
            for (int u = 0; u < VK_UNROLL; u++) {
                const int8_t *w = m->blocks + (int64_t)(k + u) * VK_BLOCK_BYTES;
                __m512i xb = bcast4(xu + (int64_t)col_idx[k + u] * VK_BLOCK_COLS);
                acc[u] = VK_DOT4_ACC(acc[u], xb, _mm512_loadu_si512((const void *)w));
            }
        }
        for (; k < end; k++) {
            const int8_t *w = m->blocks + (int64_t)k * VK_BLOCK_BYTES;
            __m512i xb = bcast4(xu + (int64_t)col_idx[k] * VK_BLOCK_COLS);
            acc[0] = VK_DOT4_ACC(acc[0], xb, _mm512_loadu_si512((const void *)w));
        }
        acc[0] = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
        store_rows(m, rb, acc[0], y);
    }
}

static inline __attribute__((always_inline)) void gemm_group(
    const vk_bsmat *m, int rb, const uint8_t *xu, int x_stride, int32_t *y, int y_stride,
    const int G)
{
    __m512i acc[VK_GROUP];
    for (int g = 0; g < G; g++) acc[g] = _mm512_setzero_si512();
    for (int k = m->row_ptr[rb]; k < m->row_ptr[rb + 1]; k++) {
        const int64_t col = (int64_t)m->col_idx[k] * VK_BLOCK_COLS;
        __m512i w = _mm512_loadu_si512((const void *)(m->blocks + (int64_t)k * VK_BLOCK_BYTES));
        for (int g = 0; g < G; g++)
            acc[g] = VK_DOT4_ACC(acc[g], bcast4(xu + (int64_t)g * x_stride + col), w);
    }
    for (int g = 0; g < G; g++) store_rows(m, rb, acc[g], y + (int64_t)g * y_stride);
}

void VK_FN(vk_sparse_gemm_i8_)(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride,
                               int32_t *y, int y_stride)
{
    for (int rb = 0; rb < m->row_blocks; rb++) {
        for (int n = 0; n < batch; n += VK_GROUP) {
            const uint8_t *x = xu + (int64_t)n * x_stride;
            int32_t *out = y + (int64_t)n * y_stride;
            switch (batch - n >= VK_GROUP ? VK_GROUP : batch - n) {
            case 8: gemm_group(m, rb, x, x_stride, out, y_stride, 8); break;
            case 7: gemm_group(m, rb, x, x_stride, out, y_stride, 7); break;
            case 6: gemm_group(m, rb, x, x_stride, out, y_stride, 6); break;
            case 5: gemm_group(m, rb, x, x_stride, out, y_stride, 5); break;
            case 4: gemm_group(m, rb, x, x_stride, out, y_stride, 4); break;
            case 3: gemm_group(m, rb, x, x_stride, out, y_stride, 3); break;
            case 2: gemm_group(m, rb, x, x_stride, out, y_stride, 2); break;
            default: gemm_group(m, rb, x, x_stride, out, y_stride, 1); break;
            }
        }
    }
}
