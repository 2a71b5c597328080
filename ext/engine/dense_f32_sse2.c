/* Dense float layer, four rows at once (SSE2, baseline x86-64): x is loaded once for
 * all four, and a 4x4 transpose lines the rows' partial sums up for the same pairwise
 * combination as vk_dense_rows (dense_f32.h), so the same bits; eight rows where it
 * can: each row's sum is a chain of adds, and eight chains hide more of the adder's
 * latency than four (a few per cent: cond2's weights stream from L2 once per frame,
 * which bounds this loop). */
#ifndef __SSE2__
#error "compile dense_f32_sse2.c with -msse2"
#endif
#include <emmintrin.h>

#include "dense_f32.h"

static inline __m128 dense_finish4(__m128 a0, __m128 a1, __m128 a2, __m128 a3, const float *const *wr, const float *x,
                                   int c4, int cols, const float *b)
{
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* a_k = lane k of the four rows */
    __m128 sv = _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
    for (int c = c4; c < cols; c++)
        sv = _mm_add_ps(sv, _mm_mul_ps(_mm_setr_ps(wr[0][c], wr[1][c], wr[2][c], wr[3][c]), _mm_set1_ps(x[c])));
    return _mm_add_ps(sv, _mm_loadu_ps(b));
}

void vk_dense_f32_sse2(const float *w, const float *b, const float *x, int rows, int cols, float *y)
{
    const int c4 = cols & ~3;
    int r = 0;
    for (; r + 8 <= rows; r += 8) {
        const float *wr[8];
        for (int k = 0; k < 8; k++) wr[k] = w + (int64_t)(r + k) * cols;
        __m128 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm_setzero_ps();
        for (int c = 0; c < c4; c += 4) {
            const __m128 xv = _mm_loadu_ps(x + c);
            for (int k = 0; k < 8; k++) a[k] = _mm_add_ps(a[k], _mm_mul_ps(_mm_loadu_ps(wr[k] + c), xv));
        }
        _mm_storeu_ps(y + r, dense_finish4(a[0], a[1], a[2], a[3], wr, x, c4, cols, b + r));
        _mm_storeu_ps(y + r + 4, dense_finish4(a[4], a[5], a[6], a[7], wr + 4, x, c4, cols, b + r + 4));
    }
    for (; r + 4 <= rows; r += 4) {
        const float *wr[4];
        for (int k = 0; k < 4; k++) wr[k] = w + (int64_t)(r + k) * cols;
        __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps(), a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps();
        for (int c = 0; c < c4; c += 4) {
            const __m128 xv = _mm_loadu_ps(x + c);
            a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(wr[0] + c), xv));
            a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(wr[1] + c), xv));
            a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(wr[2] + c), xv));
            a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(wr[3] + c), xv));
        }
        _mm_storeu_ps(y + r, dense_finish4(a0, a1, a2, a3, wr, x, c4, cols, b + r));
    }
    vk_dense_rows(w, b, x, r, rows, cols, y);
}
