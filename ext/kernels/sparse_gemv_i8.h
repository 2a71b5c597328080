/* Contract of the block-sparse int8 GEMV kernels. One storage format for every ISA.
 *
 * Matrix: int8 weights in blocks of 16 rows x 4 columns, 64 bytes row-major (row r of
 * a block is bytes 4r..4r+3). Row block rb holds the blocks row_ptr[rb] ..
 * row_ptr[rb+1]-1; col_idx[k] is the block column (units of 4 columns) of block k.
 * Rows are padded to a multiple of 16 and columns to a multiple of 4.
 *
 * Activations: unsigned "offset binary" bytes xu = x + 128, padded to cols_padded.
 * This is the operand AVX2 maddubs and AVX-512 VNNI dpbusd want; every level computes
 *     y[r] = sum_c w[r][c] * xu[c]  -  128 * row_sums[r]  =  sum_c w[r][c] * x[c]
 * exactly in int32.
 *
 * Preconditions (checked once when a matrix is built, in vocoder/blocksparse.py):
 *  - every index in range, col_idx strictly increasing inside a row block;
 *  - cols <= 65536, so no int32 sum can overflow;
 *  - the saturation rule: per row and column pair (2k, 2k+1), positive weights sum to
 *    <= 128 and negative weights to >= -128, so a maddubs pair sum always fits int16.
 * Under these every level returns the exact integer result: bit-identical everywhere.
 *
 * The kernels allocate nothing, keep no state, and read only the arrays given.
 */
#ifndef VK_SPARSE_GEMV_I8_H
#define VK_SPARSE_GEMV_I8_H

#include <stdint.h>

#define VK_BLOCK_ROWS 16
#define VK_BLOCK_COLS 4
#define VK_BLOCK_BYTES 64
/* Batched kernels take 1..VK_MAX_BATCH vectors at once. */
#define VK_MAX_BATCH 16

typedef struct {
    int32_t row_blocks;      /* rows_padded / 16 */
    int32_t col_blocks;      /* cols_padded / 4 */
    const int32_t *row_ptr;  /* [row_blocks + 1] */
    const int32_t *col_idx;  /* [nnz] */
    const int8_t *blocks;    /* [nnz * 64], 64-byte aligned */
    const int32_t *row_sums; /* [row_blocks * 16] sum of each row's weights */
} vk_bsmat;

/* y[0 .. rows_padded) = W x. */
typedef void (*vk_gemv_fn)(const vk_bsmat *m, const uint8_t *xu, int32_t *y);

/* Y[n] = W X[n] for n in 0..batch-1; X rows are x_stride bytes apart, Y rows y_stride
 * int32 apart. Each weight block is loaded once per group of vectors. */
typedef void (*vk_gemm_fn)(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride, int32_t *y, int y_stride);

/* Per-ISA entry points; each lives in its own file compiled with its own flags. */
#define VK_DECLARE_LEVEL(isa)                                                                               \
    void vk_sparse_gemv_i8_##isa(const vk_bsmat *m, const uint8_t *xu, int32_t *y);                         \
    void vk_sparse_gemm_i8_##isa(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride, int32_t *y, \
                                 int y_stride);
VK_DECLARE_LEVEL(ref)
VK_DECLARE_LEVEL(sse2)
VK_DECLARE_LEVEL(avx2)
VK_DECLARE_LEVEL(avxvnni)
VK_DECLARE_LEVEL(avx512)
VK_DECLARE_LEVEL(avx512vnni)

#endif
