/* A minimal voice plugin for the tests (and the example in docs/serve.md): a
 * band-limited sawtooth (PolyBLEP) at the note's pitch, velocity as loudness.
 * Build: gcc -shared -fPIC -O2 -I ext/plugin -o saw.so tests/plugin_saw.c -lm
 * Variants for the negative tests, by -D: SAW_ABI=N (a wrong ABI version),
 * SAW_NO_ENTRY (no exported entry symbol), SAW_FAIL (instantiate fails),
 * SAW_CRASH (instantiate segfaults), SAW_HANG (instantiate never returns),
 * SAW_ID="..." (another id). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vocoder_plugin.h"

#ifndef SAW_ABI
#define SAW_ABI VOCODER_PLUGIN_ABI_VERSION
#endif
#ifndef SAW_ID
#define SAW_ID "test.saw"
#endif

struct vocoder_plugin_instance {
    double rate, phase, inc, amp, target;
    float note, bend;
};

static vocoder_plugin_instance *saw_instantiate(const vocoder_plugin_config *c, char *error, uint32_t size)
{
#ifdef SAW_FAIL
    (void)c;
    strncpy(error, "this test plugin always refuses", size - 1);
    error[size - 1] = 0;
    return NULL;
#else
#ifdef SAW_CRASH
    volatile int *p = NULL;
    *p = 1;
#endif
#ifdef SAW_HANG
    for (volatile int spin = 1; spin;) {}
#endif
    if (c->sample_rate < 8000) {
        strncpy(error, "sample rate too low", size - 1);
        return NULL;
    }
    vocoder_plugin_instance *s = calloc(1, sizeof(*s));
    if (!s) {
        strncpy(error, "out of memory", size - 1);
        return NULL;
    }
    s->rate = c->sample_rate;
    return s;
#endif
}

static void saw_destroy(vocoder_plugin_instance *s) { free(s); }

static void set_pitch(vocoder_plugin_instance *s)
{
    s->inc = 440.0 * pow(2.0, (s->note + 2.0 * s->bend - 69.0) / 12.0) / s->rate;
}

static int saw_event(vocoder_plugin_instance *s, const vocoder_plugin_event *e)
{
    switch (e->type) {
        case VOCODER_EV_NOTE_ON:
            s->note = e->note;
            set_pitch(s);
            if (!(e->flags & VOCODER_EVF_LEGATO)) s->target = 0.3 * e->value / 127.0;
            break;
        case VOCODER_EV_NOTE_OFF: s->target = 0.0; break;
        case VOCODER_EV_BEND:
            s->bend = e->value;
            set_pitch(s);
            break;
        case VOCODER_EV_PANIC:
            s->target = 0.0;
            s->amp = 0.0;
            break;
        default: break;
    }
    return 1;
}

static double blep(double t, double dt)
{
    if (t < dt) {
        t /= dt;
        return t + t - t * t - 1.0;
    }
    if (t > 1.0 - dt) {
        t = (t - 1.0) / dt;
        return t * t + t + t + 1.0;
    }
    return 0.0;
}

static void saw_render(vocoder_plugin_instance *s, float *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        double x = 2.0 * s->phase - 1.0 - (s->inc > 0 ? blep(s->phase, s->inc) : 0.0);
        s->amp += 0.002 * (s->target - s->amp);
        out[i] = (float)(s->amp * x);
        s->phase += s->inc;
        if (s->phase >= 1.0) s->phase -= 1.0;
    }
}

static uint32_t saw_latency(const vocoder_plugin_instance *s)
{
    (void)s;
    return 0;
}

static const vocoder_plugin_descriptor SAW = {
    SAW_ABI,     sizeof(vocoder_plugin_descriptor),
    SAW_ID,      "Test sawtooth",
    "0.1",       saw_instantiate,
    saw_destroy, saw_event,
    saw_render,  saw_latency,
};

#ifndef SAW_NO_ENTRY
__attribute__((visibility("default"))) const vocoder_plugin_descriptor *vocoder_plugin_entry(void) { return &SAW; }
#else
const vocoder_plugin_descriptor *another_name(void) { return &SAW; }
#endif
