/* AVX2: maddubs multiplies unsigned activation bytes by signed weights and adds pairs
 * into int16 (exact under the saturation rule), madd with ones widens the pairs to
 * int32. Compiled with -mavx2 -mfma. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "compile sparse_gemv_i8_avx2.c with -mavx2 -mfma"
#endif
#define VK_ISA avx2
#define VK_UNROLL 3
#define VK_SETS 1
#define VK_DOT4_ACC(acc, x, w) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((x), (w)), _mm256_set1_epi16(1)))
#include "sparse_gemv_i8_x86_256.h"
