/* Token pasting for the per-ISA files: a shared body (a *_body.h) is compiled once per
 * ISA file, which defines VK_ISA (ref, sse2, avx2, ...) before including it, and names
 * its functions VK_FN(vk_<op>_<types>_), e.g. VK_FN(vk_gru_f32_) is vk_gru_f32_avx2. */
#ifndef VK_PASTE_H
#define VK_PASTE_H
#define VK_CAT_(a, b) a##b
#define VK_CAT(a, b) VK_CAT_(a, b)
#define VK_FN(name) VK_CAT(name, VK_ISA)
#endif
