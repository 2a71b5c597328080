/* GRU update, 16 lanes (AVX-512F; compiled without FMA). */
#if !defined(__AVX512F__) && !defined(VK_SIMDE_ISA_H)
#error "compile gru_f32_avx512.c with -mavx512f (and no FMA contraction)"
#endif
#define VK_ISA avx512
#include "vec_f32_avx512.h"
#include "gru_f32_body.h"
