/* Body shared by the 256-bit kernels (AVX2, AVX-VNNI). The including file defines
 * VK_ISA (the level's name) and VK_DOT4_ACC(acc, x, w): add to each int32 lane of acc
 * the dot product of the 4 unsigned bytes of x with the 4 signed bytes of w.
 * A block is two halves of 8 rows x 4 columns (32 bytes each). */
#include <immintrin.h>
#include <string.h>
#include "sparse_gemv_i8.h"

#define VK_CAT_(a, b) a##b
#define VK_CAT(a, b) VK_CAT_(a, b)
#define VK_FN(name) VK_CAT(name, VK_ISA)

/* Independent accumulator sets in the single-vector loop: the chains through
 * VK_DOT4_ACC must not wait on each other (dpbusd has a latency of about 5 cycles). */
#ifndef VK_UNROLL
#define VK_UNROLL 2
#endif
#define VK_GROUP 4 /* vectors per weight load in the batched kernel */

static inline __m256i bcast4(const uint8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

static inline void store_rows(const vk_bsmat *m, int rb, __m256i lo, __m256i hi, int32_t *y)
{
    const int32_t *rs = m->row_sums + rb * VK_BLOCK_ROWS;
    __m256i c0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)rs), 7);
    __m256i c1 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(rs + 8)), 7);
    _mm256_storeu_si256((__m256i *)(y + rb * VK_BLOCK_ROWS), _mm256_sub_epi32(lo, c0));
    _mm256_storeu_si256((__m256i *)(y + rb * VK_BLOCK_ROWS + 8), _mm256_sub_epi32(hi, c1));
}

void VK_FN(vk_sparse_gemv_i8_)(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    const int32_t *col_idx = m->col_idx;
    for (int rb = 0; rb < m->row_blocks; rb++) {
        __m256i lo[VK_UNROLL], hi[VK_UNROLL];
        for (int u = 0; u < VK_UNROLL; u++) lo[u] = hi[u] = _mm256_setzero_si256();
        int k = m->row_ptr[rb];
        const int end = m->row_ptr[rb + 1];
        for (; k + VK_UNROLL <= end; k += VK_UNROLL) {
            for (int u = 0; u < VK_UNROLL; u++) {
                const int8_t *w = m->blocks + (int64_t)(k + u) * VK_BLOCK_BYTES;
                __m256i xb = bcast4(xu + (int64_t)col_idx[k + u] * VK_BLOCK_COLS);
                lo[u] = VK_DOT4_ACC(lo[u], xb, _mm256_loadu_si256((const __m256i *)w));
                hi[u] = VK_DOT4_ACC(hi[u], xb, _mm256_loadu_si256((const __m256i *)(w + 32)));
            }
        }
        for (; k < end; k++) {
            const int8_t *w = m->blocks + (int64_t)k * VK_BLOCK_BYTES;
            __m256i xb = bcast4(xu + (int64_t)col_idx[k] * VK_BLOCK_COLS);
            lo[0] = VK_DOT4_ACC(lo[0], xb, _mm256_loadu_si256((const __m256i *)w));
            hi[0] = VK_DOT4_ACC(hi[0], xb, _mm256_loadu_si256((const __m256i *)(w + 32)));
        }
        for (int u = 1; u < VK_UNROLL; u++) {
            lo[0] = _mm256_add_epi32(lo[0], lo[u]);
            hi[0] = _mm256_add_epi32(hi[0], hi[u]);
        }
        store_rows(m, rb, lo[0], hi[0], y);
    }
}

/* G is a constant at every call site, so the loops over g unroll and acc lives in
 * registers. */
static inline __attribute__((always_inline)) void gemm_group(
    const vk_bsmat *m, int rb, const uint8_t *xu, int x_stride, int32_t *y, int y_stride,
    const int G)
{
    __m256i lo[VK_GROUP], hi[VK_GROUP];
    for (int g = 0; g < G; g++) lo[g] = hi[g] = _mm256_setzero_si256();
    for (int k = m->row_ptr[rb]; k < m->row_ptr[rb + 1]; k++) {
        const int8_t *w = m->blocks + (int64_t)k * VK_BLOCK_BYTES;
        const int64_t col = (int64_t)m->col_idx[k] * VK_BLOCK_COLS;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));
        for (int g = 0; g < G; g++) {
            __m256i xb = bcast4(xu + (int64_t)g * x_stride + col);
            lo[g] = VK_DOT4_ACC(lo[g], xb, w0);
            hi[g] = VK_DOT4_ACC(hi[g], xb, w1);
        }
    }
    for (int g = 0; g < G; g++) store_rows(m, rb, lo[g], hi[g], y + (int64_t)g * y_stride);
}

void VK_FN(vk_sparse_gemm_i8_)(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride,
                               int32_t *y, int y_stride)
{
    for (int rb = 0; rb < m->row_blocks; rb++) {
        for (int n = 0; n < batch; n += VK_GROUP) {
            const uint8_t *x = xu + (int64_t)n * x_stride;
            int32_t *out = y + (int64_t)n * y_stride;
            switch (batch - n >= VK_GROUP ? VK_GROUP : batch - n) {
            case 4: gemm_group(m, rb, x, x_stride, out, y_stride, 4); break;
            case 3: gemm_group(m, rb, x, x_stride, out, y_stride, 3); break;
            case 2: gemm_group(m, rb, x, x_stride, out, y_stride, 2); break;
            default: gemm_group(m, rb, x, x_stride, out, y_stride, 1); break;
            }
        }
    }
}
