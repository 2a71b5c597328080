/* The table of kernels per level. Compiled with baseline flags: it only takes
 * addresses, it never executes an ISA-specific instruction. */
#include "sparse_gemv_i8.h"

#define VK_ENTRY(isa) {#isa, vk_sparse_gemv_i8_##isa, vk_sparse_gemm_i8_##isa}

#ifdef VK_NO_X86
/* Not x86: only ref is built; the other rows are never offered (vk_cpu_levels). */
#define VK_ENTRY_X86(isa) {#isa, vk_sparse_gemv_i8_ref, vk_sparse_gemm_i8_ref}
#else
#define VK_ENTRY_X86(isa) VK_ENTRY(isa)
#endif

const vk_kernel_table vk_kernel_tables[VK_LEVEL_COUNT] = {
    VK_ENTRY(ref), VK_ENTRY_X86(sse2), VK_ENTRY_X86(avx2),
    VK_ENTRY_X86(avxvnni), VK_ENTRY_X86(avx512), VK_ENTRY_X86(avx512vnni),
};
