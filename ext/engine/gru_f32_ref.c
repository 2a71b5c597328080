/* Plain C GRU update: the definition the vector versions must equal, and the ref
 * level's (gru_f32_body.h instantiated on single floats). */
#define VK_ISA ref
#include "gru_f32_body.h"
