/* For a test build only (setup.py with VOCODER_EMULATE_ISA=1): force-included, with
 * -include, before each AVX-512, AVX-512 VNNI and AVX-VNNI file, which is then compiled
 * for AVX2. SIMDe (SIMD Everywhere, Debian's libsimde-dev) supplies those ISAs'
 * intrinsics in portable code with the instructions' exact results, so every level's
 * own source runs, slowly, on a CPU without it, and the tests compare its bits with the
 * plain C level. It checks our code (lane orders, masks, tails), not the compiler's
 * native code for those instructions.
 *
 * SIMDe includes <immintrin.h> for the native AVX2 parts; its include guard then makes
 * the files' own #include <immintrin.h> empty, so the native AVX-512 declarations
 * never meet the aliases below. SIMDe 0.7.4 lacks a few intrinsics we use: they are
 * defined here, lane by lane, as the instruction reference (and, for the reductions,
 * GCC's own sequence of operations) defines them. */
#ifndef VK_SIMDE_ISA_H
#define VK_SIMDE_ISA_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <stdint.h>

/* VPMOVDB: truncate each int32 to its low byte */
static inline simde__m128i vk_emu_mm512_cvtepi32_epi8(simde__m512i a)
{
    simde__m512i_private p = simde__m512i_to_private(a);
    simde__m128i_private r;
    for (int i = 0; i < 16; i++) r.i8[i] = (int8_t)(uint8_t)(uint32_t)p.i32[i];
    return simde__m128i_from_private(r);
}
#define _mm512_cvtepi32_epi8(a) vk_emu_mm512_cvtepi32_epi8(a)

/* VCVTDQ2PS under the default rounding (to nearest even), as a C conversion */
static inline simde__m512 vk_emu_mm512_cvtepi32_ps(simde__m512i a)
{
    simde__m512i_private p = simde__m512i_to_private(a);
    simde__m512_private r;
    for (int i = 0; i < 16; i++) r.f32[i] = (float)p.i32[i];
    return simde__m512_from_private(r);
}
#define _mm512_cvtepi32_ps(a) vk_emu_mm512_cvtepi32_ps(a)

/* VCVTTPS2DQ: truncate; NaN and out-of-range give INT32_MIN (the "integer indefinite") */
static inline simde__m512i vk_emu_mm512_cvttps_epi32(simde__m512 a)
{
    simde__m512_private p = simde__m512_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) {
        const float x = p.f32[i];
        r.i32[i] = (x >= -2147483648.0f && x < 2147483648.0f) ? (int32_t)x : INT32_MIN;
    }
    return simde__m512i_from_private(r);
}
#define _mm512_cvttps_epi32(a) vk_emu_mm512_cvttps_epi32(a)

/* VGATHERDPS, all lanes */
static inline simde__m512 vk_emu_mm512_i32gather_ps(simde__m512i idx, const void *base, int scale)
{
    simde__m512i_private p = simde__m512i_to_private(idx);
    simde__m512_private r;
    for (int i = 0; i < 16; i++) r.f32[i] = *(const float *)((const char *)base + (int64_t)p.i32[i] * scale);
    return simde__m512_from_private(r);
}
#define _mm512_i32gather_ps(idx, base, scale) vk_emu_mm512_i32gather_ps((idx), (base), (scale))

/* GCC's _mm512_mask_reduce_min_epi32: lanes off the mask count as INT32_MAX */
static inline int vk_emu_mm512_mask_reduce_min_epi32(simde__mmask16 k, simde__m512i a)
{
    simde__m512i_private p = simde__m512i_to_private(a);
    int32_t m = INT32_MAX;
    for (int i = 0; i < 16; i++)
        if (((k >> i) & 1) && p.i32[i] < m) m = p.i32[i];
    return m;
}
#define _mm512_mask_reduce_min_epi32(k, a) vk_emu_mm512_mask_reduce_min_epi32((k), (a))

/* GCC's _mm512_reduce_max_ps, its operations in its order (MAXPS returns the second
 * operand when either is NaN or both are zeros, so the order can matter) */
static inline float vk_emu_mm512_reduce_max_ps(simde__m512 a)
{
    simde__m512_private p = simde__m512_to_private(a);
    const simde__m256 t1 = p.m256[1], t2 = p.m256[0];
    const simde__m256 t3 = simde_mm256_max_ps(t1, t2);
    const simde__m128 t6 = simde_mm_max_ps(simde_mm256_extractf128_ps(t3, 1), simde_mm256_extractf128_ps(t3, 0));
    const simde__m128 t7 = simde_mm_shuffle_ps(t6, t6, SIMDE_MM_SHUFFLE(1, 0, 3, 2)); /* {2, 3, 0, 1} */
    const simde__m128 t8 = simde_mm_max_ps(t6, t7);
    const simde__m128 t9 = simde_mm_shuffle_ps(t8, t8, SIMDE_MM_SHUFFLE(0, 1, 0, 1)); /* {1, 0, 1, 0} */
    return simde_mm_cvtss_f32(simde_mm_max_ps(t8, t9));
}
#define _mm512_reduce_max_ps(a) vk_emu_mm512_reduce_max_ps(a)

/* SIMDe 0.7.4's alias for this one takes four arguments (a copy of the masked form's) */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16((a), (b))

/* AVX-VNNI's VPDPBUSD (VEX) computes what AVX512-VL's does */
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32((src), (a), (b))

#endif
