/* Dense float layer in plain C: the definition (dense_f32.h), and the ref level's. */
#include "dense_f32.h"

void vk_dense_f32_ref(const float *w, const float *b, const float *x, int rows, int cols, float *y)
{
    vk_dense_rows(w, b, x, 0, rows, cols, y);
}
