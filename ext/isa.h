/* Dispatch: one table of function pointers per ISA level, holding every operation that
 * has per-level versions. isa_dispatch.c defines the tables (and only it knows which
 * file implements what); vk_cpu_levels (cpu_detect.h) says which levels this CPU and OS
 * can run, and the caller picks one (vocoder.kernels: the highest, or VOCODER_ISA).
 * Every entry of every table gives the bits of the ref table's (plain C) entry.
 *
 * Contract headers per concern: kernels/sparse_gemv_i8.h (the integer kernels),
 * engine/gru_f32.h (GRU update), engine/quantize.h (activation quantiser and
 * dequantisers), engine/sample.h (Gumbel-max sampler), engine/excitation.h and
 * engine/dense_f32.h (baseline float work of the conditioning). */
#ifndef VK_ISA_H
#define VK_ISA_H

#include "engine/dense_f32.h"
#include "engine/excitation.h"
#include "engine/gru_f32.h"
#include "engine/quantize.h"
#include "engine/sample.h"
#include "kernels/sparse_gemv_i8.h"

/* ISA levels, lowest first. */
typedef enum {
    VK_LEVEL_REF = 0,
    VK_LEVEL_SSE2,
    VK_LEVEL_AVX2,
    VK_LEVEL_AVXVNNI,
    VK_LEVEL_AVX512,
    VK_LEVEL_AVX512VNNI,
    VK_LEVEL_COUNT
} vk_level;

typedef struct {
    const char *name;                      /* "ref", "sse2", ... (what VOCODER_ISA takes) */
    vk_gemv_fn sparse_gemv;                /* y = W x, int8 block-sparse W */
    vk_gemm_fn sparse_gemm;                /* Y = W X for up to VK_MAX_BATCH vectors */
    vk_gru_fn gru;                         /* gates + GRU update of a range of units */
    vk_quantize_fn quantize;               /* activations to offset bytes, absmax found */
    vk_quantize_max_fn quantize_max;       /* the same, absmax given */
    vk_dequantize_fn dequantize;           /* int32 accumulators to floats */
    vk_dequantize_relu_fn dequantize_relu; /* a hidden layer's output, max noted */
    vk_sample_fn sample;                   /* Gumbel-max class from logits */
    vk_sample_acc_fn sample_acc;           /* the same from an output layer's accumulators */
    vk_excitation_fn excitation;           /* a frame of excitation (per frame) */
    vk_dense_fn dense;                     /* a dense float layer (conditioning, per frame) */
} vk_isa_table;

/* One table per level (isa_dispatch.c). */
extern const vk_isa_table vk_table_ref, vk_table_sse2, vk_table_avx2, vk_table_avxvnni, vk_table_avx512,
    vk_table_avx512vnni;
/* The same, indexed by vk_level. */
extern const vk_isa_table *const vk_isa_tables[VK_LEVEL_COUNT];

#endif
