/* Body shared by the 512-bit kernels (AVX-512BW, AVX-512 VNNI). The including file
 * defines VK_ISA and VK_DOT4_ACC(acc, x, w) as in sparse_gemv_i8_x86_256.h. One zmm
 * register holds a whole 16 x 4 block: one lane per row. */
#include <immintrin.h>
#include <string.h>
#include "sparse_gemv_i8.h"
#include "vk_paste.h"

#define VK_UNROLL 4 /* independent accumulators in the single-vector loop */
#define VK_GROUP 8  /* vectors per weight load in the batched kernel */

static inline __m512i bcast4(const uint8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm512_set1_epi32(v);
}

static inline void store_rows(const int32_t *row_sums, int rb, __m512i acc, int32_t *y)
{
    const int32_t *rs = row_sums + rb * VK_BLOCK_ROWS;
    __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)rs), 7);
    _mm512_storeu_si512((void *)(y + rb * VK_BLOCK_ROWS), _mm512_sub_epi32(acc, corr));
}

/* One block: its column's 4 activations against its 16 rows. */
#define VK_BLOCK_ACC(acc, xu, col, w) \
    ((acc) = VK_DOT4_ACC((acc), bcast4((xu) + (int64_t)(col)*VK_BLOCK_COLS), _mm512_loadu_si512((const void *)(w))))

void VK_FN(vk_sparse_gemv_i8_)(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    /* Local copies: y's int32 stores may alias m's fields, so reading them through m
     * would reload them every row block. Blocks and col_idx are walked in order. */
    const int32_t *row_ptr = m->row_ptr, *row_sums = m->row_sums, *col_idx = m->col_idx;
    const int row_blocks = m->row_blocks;
    const int32_t *ci = col_idx + row_ptr[0];
    const int8_t *w = m->blocks + (int64_t)row_ptr[0] * VK_BLOCK_BYTES;
    for (int rb = 0; rb < row_blocks; rb++) {
        __m512i acc[VK_UNROLL];
        for (int u = 0; u < VK_UNROLL; u++) acc[u] = _mm512_setzero_si512();
        const int32_t *ce = col_idx + row_ptr[rb + 1];
        for (; ce - ci >= VK_UNROLL; ci += VK_UNROLL, w += VK_UNROLL * VK_BLOCK_BYTES)
            for (int u = 0; u < VK_UNROLL; u++) VK_BLOCK_ACC(acc[u], xu, ci[u], w + u * VK_BLOCK_BYTES);
        /* The last 0..VK_UNROLL-1 blocks: straight-line tests rather than a loop, each
         * into its own accumulator (as in the 256-bit body). */
        for (int u = 0; u < VK_UNROLL - 1; u++) {
            if (ci < ce) {
                VK_BLOCK_ACC(acc[u], xu, ci[0], w);
                ci++;
                w += VK_BLOCK_BYTES;
            }
        }
        acc[0] = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
        store_rows(row_sums, rb, acc[0], y);
    }
}

/* The caller passes the row block's blocks (ci..ce, weights from w) and row_sums as
 * locals, so they are not reloaded through m after each group's stores. */
static inline __attribute__((always_inline)) void gemm_group(const int32_t *ci, const int32_t *ce, const int8_t *w,
                                                             const int32_t *row_sums, int rb, const uint8_t *xu,
                                                             int x_stride, int32_t *y, int y_stride, const int G)
{
    __m512i acc[VK_GROUP];
    for (int g = 0; g < G; g++) acc[g] = _mm512_setzero_si512();
    for (; ci < ce; ci++, w += VK_BLOCK_BYTES) {
        const int64_t col = (int64_t)ci[0] * VK_BLOCK_COLS;
        __m512i wv = _mm512_loadu_si512((const void *)w);
        for (int g = 0; g < G; g++) acc[g] = VK_DOT4_ACC(acc[g], bcast4(xu + (int64_t)g * x_stride + col), wv);
    }
    /* The correction once per group: each vector's store may alias row_sums, so
     * store_rows per vector would load it again. */
    __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(row_sums + rb * VK_BLOCK_ROWS)), 7);
    for (int g = 0; g < G; g++)
        _mm512_storeu_si512((void *)(y + (int64_t)g * y_stride + rb * VK_BLOCK_ROWS), _mm512_sub_epi32(acc[g], corr));
}

#include "sparse_gemm_i8_rows.h"
