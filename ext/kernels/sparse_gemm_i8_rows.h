/* The batched kernel's loop over row blocks, shared by the 256-bit and 512-bit bodies.
 * The including body defines VK_FN, VK_GROUP (4 or 8: vectors per weight load) and
 * gemm_group(ci, ce, w, row_sums, rb, x, x_stride, y, y_stride, G), which multiplies one
 * row block's blocks (col_idx ci..ce, weights from w) into G vectors. G is a constant
 * at every call below, so gemm_group's loops over the vectors unroll. */
void VK_FN(vk_sparse_gemm_i8_)(const vk_bsmat *m, int batch, const uint8_t *xu, int x_stride, int32_t *y, int y_stride)
{
    /* Local copies, as in the single-vector kernel: y's stores may alias m's fields. */
    const int32_t *row_ptr = m->row_ptr, *row_sums = m->row_sums, *col_idx = m->col_idx;
    const int8_t *blocks = m->blocks;
    const int row_blocks = m->row_blocks;
    for (int rb = 0; rb < row_blocks; rb++) {
        const int32_t *ci = col_idx + row_ptr[rb], *ce = col_idx + row_ptr[rb + 1];
        const int8_t *w = blocks + (int64_t)row_ptr[rb] * VK_BLOCK_BYTES;
        for (int n = 0; n < batch; n += VK_GROUP) {
            const uint8_t *x = xu + (int64_t)n * x_stride;
            int32_t *out = y + (int64_t)n * y_stride;
#define VK_GEMM_GROUP(G) gemm_group(ci, ce, w, row_sums, rb, x, x_stride, out, y_stride, G)
            switch (batch - n >= VK_GROUP ? VK_GROUP : batch - n) {
#if VK_GROUP >= 8
                case 8: VK_GEMM_GROUP(8); break;
                case 7: VK_GEMM_GROUP(7); break;
                case 6: VK_GEMM_GROUP(6); break;
                case 5: VK_GEMM_GROUP(5); break;
#endif
                case 4: VK_GEMM_GROUP(4); break;
                case 3: VK_GEMM_GROUP(3); break;
                case 2: VK_GEMM_GROUP(2); break;
                default: VK_GEMM_GROUP(1); break;
            }
#undef VK_GEMM_GROUP
        }
    }
}
