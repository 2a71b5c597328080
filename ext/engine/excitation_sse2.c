/* The excitation, two samples at once (SSE2, baseline x86-64): the divisions of
 * vk_sinpi's series dominate, and the divider takes two doubles as fast as one. Same
 * double operations per sample as vk_excitation_tail (excitation.h), so the same bits. */
#ifndef __SSE2__
#error "compile excitation_sse2.c with -msse2"
#endif
#include <emmintrin.h>

#include "excitation.h"

/* vk_sinpi on two lanes, the same double operations; for 0 <= y < 2^30, where
 * truncation is floor and n fits an int32 (the caller checks). */
static inline __m128d sinpi2(__m128d y)
{
    const __m128d sign = _mm_set1_pd(-0.0);
    const __m128i q = _mm_cvttpd_epi32(_mm_add_pd(y, _mm_set1_pd(0.5))); /* n = floor(y + 0.5) */
    const __m128d r = _mm_sub_pd(y, _mm_cvtepi32_pd(q));
    const __m128d x = _mm_mul_pd(_mm_set1_pd(3.14159265358979323846), r), nx2 = _mm_xor_pd(_mm_mul_pd(x, x), sign);
    __m128d p = _mm_setzero_pd();
    for (int k = 23; k >= 3; k -= 2)
        p = _mm_mul_pd(_mm_add_pd(p, _mm_set1_pd(1.0)), _mm_div_pd(nx2, _mm_set1_pd((double)k * (k - 1))));
    const __m128d s = _mm_mul_pd(x, _mm_add_pd(_mm_set1_pd(1.0), p));
    /* n odd: flip the sign (lane i's n is q[i]; move its low bit to bit 63 of lane i) */
    const __m128i odd = _mm_slli_epi64(_mm_and_si128(_mm_unpacklo_epi32(q, q), _mm_set1_epi32(1)), 63);
    return _mm_xor_pd(s, _mm_castsi128_pd(odd));
}

double vk_excitation_f64_sse2(double p, double inc, int32_t k, double v, int hop, float *out)
{
    const double n2 = 2.0 * k + 1.0;
    int j = 0;
    {
        /* phi <= 1 + hop * inc and n2 phi < 2 / inc + ...: far below 2^30 for any real rate,
         * but checked, so the lanes' truncation is floor; else the scalar loop takes over */
        const __m128d vp = _mm_set1_pd(p), vinc = _mm_set1_pd(inc), vn2 = _mm_set1_pd(n2), vv = _mm_set1_pd(v);
        const __m128d lim = _mm_set1_pd(1073741824.0), two = _mm_set1_pd(2.0);
        const __m128d absmask = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffll));
        for (; j + 2 <= hop; j += 2) {
            __m128d phi = _mm_add_pd(vp, _mm_mul_pd(_mm_setr_pd((double)j, (double)(j + 1)), vinc));
            const __m128d ok0 = _mm_and_pd(_mm_cmpge_pd(phi, _mm_setzero_pd()), _mm_cmplt_pd(phi, lim));
            if (_mm_movemask_pd(ok0) != 3) break;
            phi = _mm_sub_pd(phi, _mm_cvtepi32_pd(_mm_cvttpd_epi32(phi))); /* phi - floor(phi) */
            const __m128d y = _mm_mul_pd(vn2, phi);
            if (_mm_movemask_pd(_mm_and_pd(_mm_cmpge_pd(y, _mm_setzero_pd()), _mm_cmplt_pd(y, lim))) != 3) break;
            const __m128d s = sinpi2(phi);
            const __m128d tiny = _mm_cmplt_pd(_mm_and_pd(s, absmask), _mm_set1_pd(1e-9));
            const __m128d q = _mm_div_pd(sinpi2(y), _mm_mul_pd(vn2, s));
            const __m128d pulse = _mm_or_pd(_mm_and_pd(tiny, _mm_set1_pd(1.0)), _mm_andnot_pd(tiny, q));
            const __m128 o0 = _mm_cvtpd_ps(_mm_mul_pd(vv, pulse)); /* lanes 0, 1 */
            const __m128 o1 = _mm_cvtpd_ps(_mm_mul_pd(vv, sinpi2(_mm_mul_pd(two, phi))));
            _mm_storeu_ps(out + 2 * j, _mm_unpacklo_ps(o0, o1)); /* pulse, sine of j, then of j + 1 */
        }
    }
    return vk_excitation_tail(p, inc, k, v, hop, j, out);
}
