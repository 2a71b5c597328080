/* The excitation in plain C: the definition (excitation.h), and the ref level's. */
#include "excitation.h"

double vk_excitation_f64_ref(double p, double inc, int32_t k, double v, int hop, float *out)
{
    return vk_excitation_tail(p, inc, k, v, hop, 0, out);
}
