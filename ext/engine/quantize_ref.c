/* Activation quantisation and dequantisation in plain C: the definition every level
 * must equal (quantize.h), and the ref level's. */
#define VK_ISA ref
#include "quantize_body.h"
