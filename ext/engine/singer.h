/* The singer: timed singer commands in, one feature frame per hop out.
 *
 * This is the ONE definition of how the voice sings (docs/render.md, docs/live.md):
 * vocoder.Voice / VoiceGroup / `vocoder live` (through voice.c) and `vocoder render`
 * (through vocoder.singer.Singer) run this code with the parameters of
 * vocoder.singer.SingerParams. The commands come from one Python planner
 * (vocoder.singer.NotePlanner: held notes, legato, lyric syllables). The only thing
 * render does that live cannot is VK_EV_ONSET: the consonants before a note's vowel
 * started early, because render knows when the note will come.
 *
 * A command at model sample tm takes effect in the first frame starting at or after
 * tm + VK_EVENT_DELAY (frame f covers model samples [f*hop, (f+1)*hop)).
 * Nothing allocates after create. */
#ifndef VK_SINGER_H
#define VK_SINGER_H

#include <stdint.h>

#define VK_EVENT_DELAY 2      /* model samples; see above */
#define VK_SINGER_PENDING 512 /* commands waiting for their frame */
#define VK_MAX_ONSET 12       /* consonants before a vowel (with a previous coda when joined) */
#define VK_MAX_CODA 8         /* consonants after it (a diphthong's off-glide included) */
#define VK_MAX_ENV 64

enum {
    VK_EV_NOTE = 1, /* start a note: pitch, velocity, vibrato clock; onset consonants, then the nucleus held */
    VK_EV_GLIDE,    /* legato: move the pitch, keep the phoneme */
    VK_EV_RELEASE,  /* note off: coda consonants, then silence */
    VK_EV_BEND,     /* value -1..1 times the bend range (2 semitones, or what RPN 0 sets) */
    VK_EV_CC,       /* controller cc, value 0..127 */
    VK_EV_PANIC,    /* silence now */
    VK_EV_ONSET     /* render only: the phonemes of a coming NOTE (its onset consonants, then its
                       nucleus) started early, so the vowel lands on the beat; pitch and
                       dynamics still change at the NOTE */
};

typedef struct {
    int32_t type, offset; /* offset: device samples from the start of the next render (voice.c) */
    float note, value;    /* note: MIDI number; value: velocity, bend or CC value */
    int32_t cc;
    int16_t nucleus, n_onset, n_coda;
    int16_t onset[VK_MAX_ONSET], coda[VK_MAX_CODA];
    int64_t time; /* model sample (the singer's clock) */
} vk_voice_event;

typedef struct {
    int n_phonemes, n_env, sil;
    const float *envelopes; /* [n_phonemes][n_env], ln power per band */
    const float *voicing;   /* [n_phonemes] 0..1 */
    const int32_t *frames;  /* [n_phonemes] duration of a consonant in frames (>= 1) */
} vk_phoneset;

/* Every number of the singer's behaviour; the defaults live in vocoder.singer.SingerParams
 * (one place) and are passed down. Seconds, semitones, dB. */
typedef struct {
    double vibrato_rate;    /* Hz */
    double vibrato_depth;   /* peak semitones after vibrato_delay + vibrato_attack */
    double vibrato_delay;   /* after the note starts */
    double vibrato_attack;  /* fade-in time */
    double vibrato_release; /* fade-out after a release */
    double mod_depth;       /* peak semitones added at mod wheel 127 */
    double portamento_tau;  /* legato glide, exponential time constant */
    double bend_range;      /* semitones at full bend until RPN 0 sets another */
    double transition_tau;  /* phoneme envelope changes */
    double voicing_tau;
    double gain_tau;    /* dynamics changes */
    double velocity_db; /* dB per decade of velocity around 100 */
    double cc_db;       /* dB per decade of expression CC11 and breath CC2 below 127 */
} vk_singer_params;

typedef struct vk_singer vk_singer;

/* NULL when out of memory or the arguments are inconsistent. Copies the phone set. */
vk_singer *vk_singer_create(const vk_phoneset *ph, const vk_singer_params *p, int hop, int sample_rate);
void vk_singer_destroy(vk_singer *s);
void vk_singer_reset(vk_singer *s);
/* Queue a command at ev->time (model samples). Returns 0 when the queue is full (dropped). */
int vk_singer_push(vk_singer *s, const vk_voice_event *ev);
/* The next frame ([2 + n_env]: f0, voicing, envelope) into out; applies due commands. */
void vk_singer_frame(vk_singer *s, float *out);
int64_t vk_singer_frame_index(const vk_singer *s); /* frames made since reset */
int vk_singer_n_pending(const vk_singer *s);
/* 1 when no note is held and no release is still singing its coda. */
int vk_singer_free(const vk_singer *s);

#endif
