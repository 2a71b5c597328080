/* AVX-512 VNNI: one vpdpbusd per 16 x 4 block, exact (no intermediate saturation).
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni. */
#if !(defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)) && \
    !defined(VK_SIMDE_ISA_H)
#error "compile sparse_gemv_i8_avx512vnni.c with -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif
#define VK_ISA avx512vnni
#define VK_DOT4_ACC(acc, x, w) _mm512_dpbusd_epi32((acc), (x), (w))
#include "sparse_gemv_i8_x86_512.h"
