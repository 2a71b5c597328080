/* SSE2: no byte multiply, so weights and activations are widened to int16 and
 * multiplied with pmaddwd, which is exact for these ranges. A block is four quarters
 * of 4 rows x 4 columns (16 bytes). Compiled with -msse2. */
#ifndef __SSE2__
#error "compile sparse_gemv_i8_sse2.c with -msse2"
#endif
#include <emmintrin.h>
#include "sparse_gemv_i8.h"

/* 4 activation bytes widened to int16 and repeated: x0 x1 x2 x3 x0 x1 x2 x3. */
static inline __m128i load_x4(const uint8_t *x)
{
    int32_t v;
    __builtin_memcpy(&v, x, 4);
    __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128(v), _mm_setzero_si128());
    return _mm_unpacklo_epi64(b, b);
}

/* Sum of pairs: [a0+a1, a2+a3, b0+b1, b2+b3]. */
static inline __m128i pair_sums(__m128i a, __m128i b)
{
    __m128 fa = _mm_castsi128_ps(a), fb = _mm_castsi128_ps(b);
    __m128i even = _mm_castps_si128(_mm_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0)));
    __m128i odd = _mm_castps_si128(_mm_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm_add_epi32(even, odd);
}

/* Takes the matrix's fields as locals of the caller: y's int32 stores may alias m's
 * fields, so reading them through m would reload them every row block. */
static inline void row_block(const int32_t *row_ptr, const int32_t *col_idx, const int8_t *blocks,
                             const int32_t *row_sums, int rb, const uint8_t *xu, int32_t *y)
{
    /* acc[2q] covers rows 4q, 4q+1 and acc[2q+1] rows 4q+2, 4q+3, each as two partial
     * sums per row: eight independent chains. */
    __m128i acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm_setzero_si128();
    const int32_t *ci = col_idx + row_ptr[rb], *ce = col_idx + row_ptr[rb + 1];
    const int8_t *w = blocks + (int64_t)row_ptr[rb] * VK_BLOCK_BYTES;
    for (; ci < ce; ci++, w += VK_BLOCK_BYTES) {
        __m128i xv = load_x4(xu + (int64_t)ci[0] * VK_BLOCK_COLS);
        for (int q = 0; q < 4; q++) {
            __m128i wv = _mm_loadu_si128((const __m128i *)(w + 16 * q));
            __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(wv, wv), 8);
            __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(wv, wv), 8);
            acc[2 * q] = _mm_add_epi32(acc[2 * q], _mm_madd_epi16(lo, xv));
            acc[2 * q + 1] = _mm_add_epi32(acc[2 * q + 1], _mm_madd_epi16(hi, xv));
        }
    }
    const int32_t *rs = row_sums + rb * VK_BLOCK_ROWS;
    int32_t *out = y + rb * VK_BLOCK_ROWS;
    for (int q = 0; q < 4; q++) {
        __m128i sums = pair_sums(acc[2 * q], acc[2 * q + 1]);
        __m128i corr = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(rs + 4 * q)), 7);
        _mm_storeu_si128((__m128i *)(out + 4 * q), _mm_sub_epi32(sums, corr));
    }
}

void vk_sparse_gemv_i8_sse2(const vk_bsmat *m, const uint8_t *xu, int32_t *y)
{
    const int32_t *row_ptr = m->row_ptr, *col_idx = m->col_idx, *row_sums = m->row_sums;
    const int8_t *blocks = m->blocks;
    const int row_blocks = m->row_blocks;
    for (int rb = 0; rb < row_blocks; rb++) row_block(row_ptr, col_idx, blocks, row_sums, rb, xu, y);
}

/* Eight accumulators per vector already fill the register file, so the batch shares
 * weights through L1 rather than through registers. */
void vk_sparse_gemm_i8_sse2(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride, int32_t *y, int y_stride)
{
    const int32_t *row_ptr = m->row_ptr, *col_idx = m->col_idx, *row_sums = m->row_sums;
    const int8_t *blocks = m->blocks;
    const int row_blocks = m->row_blocks;
    for (int rb = 0; rb < row_blocks; rb++)
        for (int n = 0; n < batch; n++)
            row_block(row_ptr, col_idx, blocks, row_sums, rb, xu + (int64_t)n * x_stride, y + (int64_t)n * y_stride);
}
