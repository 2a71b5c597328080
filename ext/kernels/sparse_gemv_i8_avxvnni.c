/* AVX-VNNI (256-bit VNNI of CPUs without AVX-512): vpdpbusd adds four u8 x s8 products
 * into each int32 lane with no intermediate rounding. Its latency is ~5 cycles, hence
 * four accumulator sets. Compiled with -mavx2 -mavxvnni. */
#if !(defined(__AVX2__) && defined(__AVXVNNI__)) && !defined(VK_SIMDE_ISA_H)
#error "compile sparse_gemv_i8_avxvnni.c with -mavx2 -mavxvnni"
#endif
#define VK_ISA avxvnni
#define VK_UNROLL 4
#define VK_DOT4_ACC(acc, x, w) _mm256_dpbusd_avx_epi32((acc), (x), (w))
#include "sparse_gemv_i8_x86_256.h"
