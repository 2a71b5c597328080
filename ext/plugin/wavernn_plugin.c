/* The built-in voice plugin: the WaveRNN voice (ext/engine/voice.c) behind the plugin
 * ABI (vocoder_plugin.h), so a host drives it exactly as it drives a third-party plugin.
 *
 * The voice itself is made by the host from a preset (vocoder.Voice: the safetensors
 * loader validates every field and index in Python before any C sees it), so this
 * descriptor's instantiate refuses to work alone; vk_wavernn_plugin_wrap gives an
 * instance around a voice the host owns. Events must carry a phoneme plan
 * (VOCODER_EVF_PLAN, indices into the preset's phone set: the host's note planner,
 * vocoder.singer.NotePlanner, makes them from notes and lyrics), except a legato
 * NOTE_ON, NOTE_OFF without coda, BEND, CC and PANIC. */
#include "wavernn_plugin.h"

#include <stdlib.h>
#include <string.h>

struct vocoder_plugin_instance {
    vk_voice *v; /* borrowed: the host keeps the voice alive until destroy */
};

static vocoder_plugin_instance *wr_instantiate(const vocoder_plugin_config *c, char *error, uint32_t size)
{
    (void)c;
    if (error && size) {
        strncpy(error,
                "the WaveRNN voice is made by the host from a preset (vocoder.Voice); it has no "
                "stand-alone instantiate",
                size - 1);
        error[size - 1] = 0;
    }
    return NULL;
}

static void wr_destroy(vocoder_plugin_instance *inst) { free(inst); }

static int wr_event(vocoder_plugin_instance *inst, const vocoder_plugin_event *e)
{
    vk_voice_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.offset = e->offset > 0x7fffffffu ? 0x7fffffff : (int32_t)e->offset;
    ev.note = e->note;
    ev.value = e->value;
    const int plan = (e->flags & VOCODER_EVF_PLAN) != 0;
    switch (e->type) {
        case VOCODER_EV_NOTE_ON:
            if (!plan) {
                if (!(e->flags & VOCODER_EVF_LEGATO)) return 1; /* needs a plan: ignored */
                ev.type = VK_EV_GLIDE;
                break;
            }
            ev.type = VK_EV_NOTE;
            break;
        case VOCODER_EV_NOTE_OFF: ev.type = VK_EV_RELEASE; break;
        case VOCODER_EV_BEND: ev.type = VK_EV_BEND; break;
        case VOCODER_EV_CC:
            ev.type = VK_EV_CC;
            ev.cc = e->cc;
            break;
        case VOCODER_EV_PANIC: ev.type = VK_EV_PANIC; break;
        default: return 1; /* LYRIC and unknown types: the host's planner handles lyrics */
    }
    if (plan) {
        ev.nucleus = e->nucleus;
        ev.n_onset = e->n_onset < 0 ? 0 : (e->n_onset > VK_MAX_ONSET ? VK_MAX_ONSET : e->n_onset);
        ev.n_coda = e->n_coda < 0 ? 0 : (e->n_coda > VK_MAX_CODA ? VK_MAX_CODA : e->n_coda);
        memcpy(ev.onset, e->onset, sizeof(ev.onset[0]) * ev.n_onset);
        memcpy(ev.coda, e->coda, sizeof(ev.coda[0]) * ev.n_coda);
    }
    return vk_voice_push(inst->v, &ev);
}

static void wr_render(vocoder_plugin_instance *inst, float *out, uint32_t n)
{
    while (n > 0) { /* vk_voice_render takes an int */
        int k = n > (1u << 20) ? (1 << 20) : (int)n;
        vk_voice_render(inst->v, out, k);
        out += k;
        n -= (uint32_t)k;
    }
}

static uint32_t wr_latency(const vocoder_plugin_instance *inst)
{
    int64_t l = vk_voice_latency(inst->v);
    return l < 0 ? 0 : (uint32_t)l;
}

static const vocoder_plugin_descriptor WAVERNN = {
    VOCODER_PLUGIN_ABI_VERSION,
    sizeof(vocoder_plugin_descriptor),
    "vocoder.wavernn",
    "WaveRNN singing voice (built in)",
    "1.0",
    wr_instantiate,
    wr_destroy,
    wr_event,
    wr_render,
    wr_latency,
};

const vocoder_plugin_descriptor *vk_wavernn_plugin_descriptor(void) { return &WAVERNN; }

vocoder_plugin_instance *vk_wavernn_plugin_wrap(vk_voice *v)
{
    if (!v) return NULL;
    vocoder_plugin_instance *inst = calloc(1, sizeof(*inst));
    if (inst) inst->v = v;
    return inst;
}
