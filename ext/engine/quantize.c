#include "quantize.h"

float vk_quantize_f32(const float *x, int n, int n_padded, uint8_t *xu)
{
    float absmax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = x[i] < 0.0f ? -x[i] : x[i];
        if (a > absmax) absmax = a; /* false for NaN: NaN never becomes the max */
    }
    if (!(absmax <= 3.0e38f)) absmax = 3.0e38f; /* inf: keep the scale finite */
    if (absmax == 0.0f) {
        for (int i = 0; i < n_padded; i++) xu[i] = 128;
        return 1.0f;
    }
    const float scale = absmax / 127.0f;
    const float inv = 127.0f / absmax;
    for (int i = 0; i < n; i++) {
        float t = x[i] * inv;
        int q;
        if (t >= 127.0f) q = 127;
        else if (t <= -127.0f) q = -127;
        else if (t >= 0.0f) q = (int)(t + 0.5f);   /* round half away from zero */
        else if (t < 0.0f) q = -(int)(0.5f - t);
        else q = 0; /* NaN */
        xu[i] = (uint8_t)(q + 128);
    }
    for (int i = n; i < n_padded; i++) xu[i] = 128;
    return scale;
}

void vk_dequantize(const int32_t *acc, const float *row_scale, float x_scale,
                   const float *bias, float *y, int rows)
{
    for (int r = 0; r < rows; r++) {
        float s = row_scale[r] * x_scale;
        float v = (float)acc[r] * s;
        y[r] = bias ? v + bias[r] : v;
    }
}
