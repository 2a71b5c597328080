/* AVX-512 VNNI: one vpdpbusd per 16 x 4 block, exact (no intermediate saturation).
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni. */
#define VK_ISA avx512vnni
#define VK_DOT4_ACC(acc, x, w) _mm512_dpbusd_epi32((acc), (x), (w))
#include "sparse_gemv_i8_x86_512.h"
