/* Body shared by the 256-bit kernels (AVX2, AVX-VNNI). The including file defines
 * VK_ISA (the level's name) and VK_DOT4_ACC(acc, x, w): add to each int32 lane of acc
 * the dot product of the 4 unsigned bytes of x with the 4 signed bytes of w.
 * A block is two halves of 8 rows x 4 columns (32 bytes each). */
#include <immintrin.h>
#include <string.h>
#include "sparse_gemv_i8.h"
#include "vk_paste.h"

/* The single-vector loop takes VK_UNROLL blocks per iteration and spreads them over
 * VK_SETS independent accumulator sets: with VNNI the chains through VK_DOT4_ACC must
 * not wait on each other (dpbusd has a latency of about 5 cycles); with AVX2 the chain
 * is one add, and one set unrolled by 3 measured fastest (fewer loop branches). */
#ifndef VK_UNROLL
#define VK_UNROLL 2
#endif
#ifndef VK_SETS
#define VK_SETS VK_UNROLL
#endif
#define VK_GROUP 4 /* vectors per weight load in the batched kernel */

static inline __m256i bcast4(const uint8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

static inline void store_rows(const int32_t *row_sums, int rb, __m256i lo, __m256i hi, int32_t *y)
{
    const int32_t *rs = row_sums + rb * VK_BLOCK_ROWS;
    __m256i c0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)rs), 7);
    __m256i c1 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(rs + 8)), 7);
    _mm256_storeu_si256((__m256i *)(y + rb * VK_BLOCK_ROWS), _mm256_sub_epi32(lo, c0));
    _mm256_storeu_si256((__m256i *)(y + rb * VK_BLOCK_ROWS + 8), _mm256_sub_epi32(hi, c1));
}

/* One block: its column's 4 activations against its two 8-row halves. */
#define VK_BLOCK_ACC(lo, hi, xu, col, w)                                                \
    do {                                                                                \
        __m256i xb_ = bcast4((xu) + (int64_t)(col)*VK_BLOCK_COLS);                      \
        (lo) = VK_DOT4_ACC((lo), xb_, _mm256_loadu_si256((const __m256i *)(w)));        \
        (hi) = VK_DOT4_ACC((hi), xb_, _mm256_loadu_si256((const __m256i *)((w) + 32))); \
    } while (0)

void VK_FN(vk_sparse_gemv_i8_)(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    /* Local copies: y's int32 stores may alias m's fields, so reading them through m
     * would reload them every row block. Blocks and col_idx are walked in order. */
    const int32_t *row_ptr = m->row_ptr, *row_sums = m->row_sums, *col_idx = m->col_idx;
    const int row_blocks = m->row_blocks;
    const int32_t *ci = col_idx + row_ptr[0];
    const int8_t *w = m->blocks + (int64_t)row_ptr[0] * VK_BLOCK_BYTES;
    for (int rb = 0; rb < row_blocks; rb++) {
        __m256i lo[VK_SETS], hi[VK_SETS];
        for (int s = 0; s < VK_SETS; s++) lo[s] = hi[s] = _mm256_setzero_si256();
        const int32_t *ce = col_idx + row_ptr[rb + 1];
        for (; ce - ci >= VK_UNROLL; ci += VK_UNROLL, w += VK_UNROLL * VK_BLOCK_BYTES)
            for (int u = 0; u < VK_UNROLL; u++)
                VK_BLOCK_ACC(lo[u % VK_SETS], hi[u % VK_SETS], xu, ci[u], w + u * VK_BLOCK_BYTES);
        /* The last 0..VK_UNROLL-1 blocks: straight-line tests rather than a loop, which
         * costs less on the short row blocks (about 5-15 blocks) of a 10% matrix. */
        for (int u = 0; u < VK_UNROLL - 1; u++) {
            if (ci < ce) {
                VK_BLOCK_ACC(lo[u % VK_SETS], hi[u % VK_SETS], xu, ci[0], w);
                ci++;
                w += VK_BLOCK_BYTES;
            }
        }
        for (int s = 1; s < VK_SETS; s++) {
            lo[0] = _mm256_add_epi32(lo[0], lo[s]);
            hi[0] = _mm256_add_epi32(hi[0], hi[s]);
        }
        store_rows(row_sums, rb, lo[0], hi[0], y);
    }
}

/* G is a constant at every call site, so the loops over g unroll and acc lives in
 * registers. The caller passes the row block's blocks (ci..ce, weights from w) and
 * row_sums as locals, so they are not reloaded through m after each group's stores. */
static inline __attribute__((always_inline)) void gemm_group(const int32_t *ci, const int32_t *ce, const int8_t *w,
                                                             const int32_t *row_sums, int rb, const uint8_t *xu,
                                                             int x_stride, int32_t *y, int y_stride, const int G)
{
    __m256i lo[VK_GROUP], hi[VK_GROUP];
    for (int g = 0; g < G; g++) lo[g] = hi[g] = _mm256_setzero_si256();
    for (; ci < ce; ci++, w += VK_BLOCK_BYTES) {
        const int64_t col = (int64_t)ci[0] * VK_BLOCK_COLS;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));
        for (int g = 0; g < G; g++) {
            __m256i xb = bcast4(xu + (int64_t)g * x_stride + col);
            lo[g] = VK_DOT4_ACC(lo[g], xb, w0);
            hi[g] = VK_DOT4_ACC(hi[g], xb, w1);
        }
    }
    /* The correction once per group: each vector's stores may alias row_sums, so
     * store_rows per vector would load it again. */
    const int32_t *rs = row_sums + rb * VK_BLOCK_ROWS;
    __m256i c0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)rs), 7);
    __m256i c1 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(rs + 8)), 7);
    for (int g = 0; g < G; g++) {
        int32_t *out = y + (int64_t)g * y_stride + rb * VK_BLOCK_ROWS;
        _mm256_storeu_si256((__m256i *)out, _mm256_sub_epi32(lo[g], c0));
        _mm256_storeu_si256((__m256i *)(out + 8), _mm256_sub_epi32(hi[g], c1));
    }
}

#include "sparse_gemm_i8_rows.h"
