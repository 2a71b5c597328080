/* AVX-512BW: the AVX2 sequence (maddubs, madd with ones) on whole blocks.
 * Compiled with -mavx512f -mavx512bw -mavx512vl. */
#if !(defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)) && !defined(VK_SIMDE_ISA_H)
#error "compile sparse_gemv_i8_avx512.c with -mavx512f -mavx512bw -mavx512vl"
#endif
#define VK_ISA avx512
#define VK_DOT4_ACC(acc, x, w) \
    _mm512_add_epi32((acc), _mm512_madd_epi16(_mm512_maddubs_epi16((x), (w)), _mm512_set1_epi16(1)))
#include "sparse_gemv_i8_x86_512.h"
