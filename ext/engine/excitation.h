/* The excitation (docs/model.md, "Excitation"): per sample of a frame, a band-limited
 * pulse train at f0 (k harmonics) and a sine at f0, both times the voicing, in double
 * precision and rounded to float once. One version per ISA level (excitation_<isa>.c);
 * every one gives the bits of the plain C one (vk_excitation_tail: the same double
 * operations per sample; vk_excitation_selfcheck in wavernn.h checks them). */
#ifndef VK_EXCITATION_H
#define VK_EXCITATION_H

#include <math.h>
#include <stdint.h>

#include "detmath.h"

/* hop samples of one frame from phase p with phase increment inc (cycles per sample),
 * k harmonics and voicing v: out[2j] the pulse, out[2j + 1] the sine of sample j.
 * Returns the next frame's phase. */
typedef double (*vk_excitation_fn)(double p, double inc, int32_t k, double v, int hop, float *out);

/* Samples j..hop-1, one at a time, and the next phase: the definition (the ref version
 * is this from j = 0; a vector version runs it on the samples it leaves). */
static inline double vk_excitation_tail(double p, double inc, int32_t k, double v, int hop, int j, float *out)
{
    const double n2 = 2.0 * k + 1.0;
    for (; j < hop; j++) {
        double phi = p + (double)j * inc;
        phi = phi - floor(phi);
        double s = vk_sinpi(phi);
        double pulse = fabs(s) < 1e-9 ? 1.0 : vk_sinpi(n2 * phi) / (n2 * s);
        out[2 * j] = (float)(v * pulse);
        out[2 * j + 1] = (float)(v * vk_sinpi(2.0 * phi));
    }
    double next = p + (double)hop * inc;
    return next - floor(next);
}

#define VK_DECLARE_EXCITATION(isa) \
    double vk_excitation_f64_##isa(double p, double inc, int32_t k, double v, int hop, float *out);
VK_DECLARE_EXCITATION(ref)
VK_DECLARE_EXCITATION(sse2)

#endif
