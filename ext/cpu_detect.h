/* CPU feature detection: CPUID plus XGETBV, so a level is only offered when the OS has
 * also enabled the register state it needs (a CPU flag alone is not enough). */
#ifndef VK_CPU_DETECT_H
#define VK_CPU_DETECT_H

#include <stdint.h>

enum {
    VK_CPU_SSE2 = 1 << 0,
    VK_CPU_SSSE3 = 1 << 1,
    VK_CPU_SSE41 = 1 << 2,
    VK_CPU_AVX = 1 << 3,
    VK_CPU_FMA = 1 << 4,
    VK_CPU_AVX2 = 1 << 5,
    VK_CPU_AVXVNNI = 1 << 6,
    VK_CPU_AVX512F = 1 << 7,
    VK_CPU_AVX512BW = 1 << 8,
    VK_CPU_AVX512VL = 1 << 9,
    VK_CPU_AVX512VNNI = 1 << 10,
    VK_CPU_OS_YMM = 1 << 11, /* XCR0: SSE and AVX state enabled */
    VK_CPU_OS_ZMM = 1 << 12, /* XCR0: opmask and ZMM state enabled */
};

/* Bit set of VK_CPU_* flags of the running CPU. */
uint32_t vk_cpu_flags(void);
/* Bit set of vk_level values (isa.h) this CPU and OS can run (bit 0, ref, always set). */
uint32_t vk_cpu_levels(void);

#endif
