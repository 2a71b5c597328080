/* GRU update, 4 lanes (SSE2, baseline x86-64). */
#ifndef __SSE2__
#error "compile gru_f32_sse2.c with -msse2"
#endif
#define VK_ISA sse2
#include "vec_f32_sse2.h"
#include "gru_f32_body.h"
