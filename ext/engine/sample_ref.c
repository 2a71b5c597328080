/* Plain C Gumbel-max sampler: the definition the vector versions must match (see
 * sample.h). Used by the ref and sse2 levels (SSE2 has no 32-bit multiply or gather,
 * so a vector version would not pay) and on non-x86 builds. */
#define VK_ISA ref
#include "sample_body.h"
