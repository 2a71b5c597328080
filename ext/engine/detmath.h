/* Deterministic maths in double from + - * / only (plus floor and ldexp, which are
 * exact everywhere), so results do not depend on the C library. */
#ifndef VK_DETMATH_H
#define VK_DETMATH_H

#include <math.h>
#include <stdint.h>

static inline double vk_exp2(double x)
{
    double n = floor(x), r = (x - n) * 0.69314718055994530942; /* r in [0, ln 2) */
    double term = 1.0, sum = 1.0;
    for (int k = 1; k <= 18; k++) {
        term = term * r / k;
        sum = sum + term;
    }
    return ldexp(sum, (int)n);
}

static inline double vk_sinpi(double y)
{
    double n = floor(y + 0.5), r = y - n; /* r in [-0.5, 0.5] */
    double x = 3.14159265358979323846 * r, x2 = x * x;
    double p = 0.0;
    for (int k = 23; k >= 3; k -= 2) p = (p + 1.0) * (-x2 / ((double)k * (k - 1))); /* Horner on Taylor */
    double s = x * (1.0 + p);
    return ((int64_t)n & 1) ? -s : s;
}

#endif
