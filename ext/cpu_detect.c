#include "cpu_detect.h"
#include "isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    /* xgetbv with ecx = 0, spelled as bytes so no -mxsave flag is needed. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

uint32_t vk_cpu_flags(void)
{
    unsigned a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    const unsigned max_leaf = a;
    __get_cpuid(1, &a, &b, &c, &d);
    if (d & (1u << 26)) f |= VK_CPU_SSE2;
    if (c & (1u << 9)) f |= VK_CPU_SSSE3;
    if (c & (1u << 19)) f |= VK_CPU_SSE41;
    if (c & (1u << 28)) f |= VK_CPU_AVX;
    if (c & (1u << 12)) f |= VK_CPU_FMA;
    const int osxsave = (c >> 27) & 1;
    if (osxsave) {
        uint64_t xcr0 = read_xcr0();
        if ((xcr0 & 0x6) == 0x6) f |= VK_CPU_OS_YMM;
        if ((xcr0 & 0xe6) == 0xe6) f |= VK_CPU_OS_ZMM;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (b & (1u << 5)) f |= VK_CPU_AVX2;
        if (b & (1u << 16)) f |= VK_CPU_AVX512F;
        if (b & (1u << 30)) f |= VK_CPU_AVX512BW;
        if (b & (1u << 31)) f |= VK_CPU_AVX512VL;
        if (c & (1u << 11)) f |= VK_CPU_AVX512VNNI;
        const unsigned max_sub = a;
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if (a & (1u << 4)) f |= VK_CPU_AVXVNNI;
        }
    }
    return f;
}
#else
uint32_t vk_cpu_flags(void) { return 0; }
#endif

static int has(uint32_t f, uint32_t need) { return (f & need) == need; }

uint32_t vk_cpu_levels(void)
{
#ifdef VK_EMULATED_ISA
    /* the test build of setup.py's VOCODER_EMULATE_ISA: every x86 level runs (SIMDe) */
    return (1u << VK_LEVEL_REF) | (1u << VK_LEVEL_SSE2) | (1u << VK_LEVEL_AVX2) | (1u << VK_LEVEL_AVXVNNI) |
           (1u << VK_LEVEL_AVX512) | (1u << VK_LEVEL_AVX512VNNI);
#endif
    const uint32_t f = vk_cpu_flags();
    uint32_t levels = 1u << VK_LEVEL_REF;
    const uint32_t avx2 = VK_CPU_AVX | VK_CPU_AVX2 | VK_CPU_FMA | VK_CPU_OS_YMM;
    const uint32_t avx512 = avx2 | VK_CPU_AVX512F | VK_CPU_AVX512BW | VK_CPU_AVX512VL | VK_CPU_OS_ZMM;
    if (has(f, VK_CPU_SSE2)) levels |= 1u << VK_LEVEL_SSE2;
    if (has(f, avx2)) levels |= 1u << VK_LEVEL_AVX2;
    if (has(f, avx2 | VK_CPU_AVXVNNI)) levels |= 1u << VK_LEVEL_AVXVNNI;
    if (has(f, avx512)) levels |= 1u << VK_LEVEL_AVX512;
    if (has(f, avx512 | VK_CPU_AVX512VNNI)) levels |= 1u << VK_LEVEL_AVX512VNNI;
    return levels;
}
