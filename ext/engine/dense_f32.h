/* Dense float layer of the conditioning network, y = w @ x + b (w row-major [rows][cols]).
 * Each row sums in four interleaved partial sums (columns c = 4i + lane), combined as
 * (s0 + s1) + (s2 + s3), then the leftover columns, then b: one fixed order, so every
 * version (dense_f32_<isa>.c) gives the same bits as the plain C rows below. */
#ifndef VK_DENSE_F32_H
#define VK_DENSE_F32_H

#include <stdint.h>

typedef void (*vk_dense_fn)(const float *w, const float *b, const float *x, int rows, int cols, float *y);

/* Rows r..rows-1 one at a time: the definition (the ref version is this from r = 0; a
 * vector version runs it on the rows it leaves). */
static inline void vk_dense_rows(const float *w, const float *b, const float *x, int r, int rows, int cols, float *y)
{
    const int c4 = cols & ~3;
    for (; r < rows; r++) {
        const float *wr = w + (int64_t)r * cols;
        float l0 = 0.0f, l1 = 0.0f, l2 = 0.0f, l3 = 0.0f;
        for (int c = 0; c < c4; c += 4) {
            l0 = l0 + wr[c] * x[c];
            l1 = l1 + wr[c + 1] * x[c + 1];
            l2 = l2 + wr[c + 2] * x[c + 2];
            l3 = l3 + wr[c + 3] * x[c + 3];
        }
        float s = (l0 + l1) + (l2 + l3);
        for (int c = c4; c < cols; c++) s = s + wr[c] * x[c];
        y[r] = s + b[r];
    }
}

#define VK_DECLARE_DENSE(isa) \
    void vk_dense_f32_##isa(const float *w, const float *b, const float *x, int rows, int cols, float *y);
VK_DECLARE_DENSE(ref)
VK_DECLARE_DENSE(sse2)

#endif
