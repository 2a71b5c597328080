/* GRU update, 8 lanes (AVX2 machines; AVX arithmetic only, compiled without FMA). */
#ifndef __AVX2__
#error "compile gru_f32_avx2.c with -mavx2 (and no FMA contraction)"
#endif
#define VK_ISA avx2
#include "vec_f32_avx2.h"
#include "gru_f32_body.h"
