/* The float operations the per-level bodies (gru_f32_body.h, quantize_body.h) are
 * written in, on single floats: the definitions every vector width must equal lane by
 * lane. MIN/MAX follow the x86 rule (the second operand when either is NaN), ABS clears
 * the sign bit, HMAX is the max of the lanes (none NaN). */
#ifndef VK_VEC_F32_H
#define VK_VEC_F32_H
static inline float vk_vec_minf(float a, float b) { return a < b ? a : b; }
static inline float vk_vec_maxf(float a, float b) { return a > b ? a : b; }
#define VK_V float
#define VK_W 1
#define VK_LOAD(p) (*(p))
#define VK_LOADI(p) ((float)*(p))
#define VK_STORE(p, v) (*(p) = (v))
#define VK_SET1(c) (c)
#define VK_ADD(a, b) ((a) + (b))
#define VK_SUB(a, b) ((a) - (b))
#define VK_MUL(a, b) ((a) * (b))
#define VK_DIV(a, b) ((a) / (b))
#define VK_MIN(a, b) vk_vec_minf((a), (b))
#define VK_MAX(a, b) vk_vec_maxf((a), (b))
#define VK_ABS(a) ((a) < 0.0f ? -(a) : (a))
#define VK_HMAX(a) (a)
#endif
