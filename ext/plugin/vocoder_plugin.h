/* vocoder_plugin.h: the voice plugin ABI of the vocoder host (version 1).
 *
 * A voice plugin is a shared library that exports one C symbol,
 *
 *     const vocoder_plugin_descriptor *vocoder_plugin_entry(void);
 *
 * returning a static descriptor. The host (vocoder serve, vocoder plugins, and any
 * other host: an LV2 or CLAP wrapper, your own program) checks `abi_version` and
 * `struct_size` before touching anything else, then creates instances with
 * `instantiate`, sends them events and asks them for audio with `render`.
 *
 * Threads and real time (the contract every plugin keeps):
 *   - instantiate / destroy run off the audio thread; they may allocate and block.
 *   - event, render and latency run on the audio thread, never at the same time
 *     for one instance: events sent between two renders take effect `offset`
 *     samples into the next render. They must not allocate, lock, block, or do
 *     I/O, and they cannot fail: a bad event is ignored, an internal problem
 *     gives silence. render writes exactly n finite samples into out.
 *   - Different instances may run on different threads at the same time.
 *
 * The header holds no host-language types (no Python): plain C99, fixed-width
 * integers, so a plugin needs nothing but this file. Mono output at the sample
 * rate given to instantiate.
 *
 * Versioning: VOCODER_PLUGIN_ABI_VERSION changes whenever a field changes meaning
 * or moves; a host refuses a library whose abi_version differs from its own.
 * Fields are only ever appended within one version, so `struct_size` lets a host
 * see what a plugin built against an older header of the same version has. */
#ifndef VOCODER_PLUGIN_H
#define VOCODER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VOCODER_PLUGIN_ABI_VERSION 1u
#define VOCODER_PLUGIN_ENTRY "vocoder_plugin_entry" /* the exported symbol's name */

#define VOCODER_PLUGIN_MAX_ONSET 12 /* consonants before a vowel in a phoneme plan */
#define VOCODER_PLUGIN_MAX_CODA 8   /* consonants after it */
#define VOCODER_PLUGIN_SYLLABLE 32  /* bytes of lyric text in an event, NUL included */

/* Event types. */
enum {
    VOCODER_EV_NOTE_ON = 1,  /* note (MIDI number, fractional allowed), value = velocity 1..127 */
    VOCODER_EV_NOTE_OFF = 2, /* note released; for a phoneme plan, coda[] are the consonants to sing */
    VOCODER_EV_BEND = 3,     /* value -1..1 times the plugin's bend range (2 semitones by default) */
    VOCODER_EV_CC = 4,       /* controller cc 0..127, value 0..127 */
    VOCODER_EV_LYRIC = 5,    /* syllable: the text the NEXT note on sings (a plugin may ignore it) */
    VOCODER_EV_PANIC = 6     /* silence now, every note released, bend reset */
};

/* Event flags. */
#define VOCODER_EVF_PLAN 1u   /* nucleus/onset/coda hold a phoneme plan (indices into the preset's phone set) */
#define VOCODER_EVF_LEGATO 2u /* NOTE_ON: glide from the sounding note; with no plan, keep the phoneme */

typedef struct vocoder_plugin_event {
    uint32_t type;   /* VOCODER_EV_* */
    uint32_t offset; /* samples into the next render block (clamped to it by the plugin) */
    uint32_t flags;  /* VOCODER_EVF_* */
    int32_t cc;      /* CC number for VOCODER_EV_CC */
    float note;      /* MIDI note number */
    float value;     /* velocity, bend or CC value */
    /* phoneme plan (VOCODER_EVF_PLAN): the vowel, the consonants before it, after it */
    int16_t nucleus, n_onset, n_coda, reserved;
    int16_t onset[VOCODER_PLUGIN_MAX_ONSET];
    int16_t coda[VOCODER_PLUGIN_MAX_CODA];
    /* lyric syllable, UTF-8, NUL-terminated ("" when none): for NOTE_ON the syllable this
     * note sings, for LYRIC the next one */
    char syllable[VOCODER_PLUGIN_SYLLABLE];
} vocoder_plugin_event;

/* What instantiate receives. The preset is either a file path or bytes in memory
 * (or neither: the plugin's own default). The memory belongs to the host and is
 * valid only during the call. */
typedef struct vocoder_plugin_config {
    uint32_t struct_size;    /* sizeof(vocoder_plugin_config) of the host */
    uint32_t sample_rate;    /* Hz, 8000..384000 */
    uint64_t seed;           /* for any randomness: same seed, same events, same samples */
    const char *preset_path; /* NULL or a NUL-terminated UTF-8 path */
    const void *preset_data; /* NULL or preset_size bytes */
    uint64_t preset_size;
    uint32_t max_block; /* the longest n render will be called with */
    uint32_t reserved;
} vocoder_plugin_config;

typedef struct vocoder_plugin_instance vocoder_plugin_instance; /* the plugin's own type */

typedef struct vocoder_plugin_descriptor {
    uint32_t abi_version; /* VOCODER_PLUGIN_ABI_VERSION the plugin was built against */
    uint32_t struct_size; /* sizeof(vocoder_plugin_descriptor) */
    const char *id;       /* unique, reverse-DNS style: "org.example.saw"; [A-Za-z0-9._-] */
    const char *name;     /* for people */
    const char *version;  /* the plugin's own version, e.g. "1.0.2" */

    /* NULL on failure, with a NUL-terminated message written into error[0..error_size). */
    vocoder_plugin_instance *(*instantiate)(const vocoder_plugin_config *config, char *error, uint32_t error_size);
    void (*destroy)(vocoder_plugin_instance *inst);

    /* Audio thread (see above). event returns 1 when taken, 0 when dropped (queue full). */
    int (*event)(vocoder_plugin_instance *inst, const vocoder_plugin_event *ev);
    void (*render)(vocoder_plugin_instance *inst, float *out, uint32_t n);
    /* Samples from an event to its sound, at most. Constant for an instance. */
    uint32_t (*latency)(const vocoder_plugin_instance *inst);
} vocoder_plugin_descriptor;

typedef const vocoder_plugin_descriptor *(*vocoder_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
