"""The singer: timed events in, conditioning frames out (``docs/features.md``).

There is ONE singer. Its behaviour is the compiled core ``ext/engine/singer.c``; its
numbers are :class:`SingerParams` (defaults written here, once, and passed down); the
decisions about notes (held notes, legato, which syllable) are :class:`NotePlanner`.
:class:`vocoder.Voice`, :class:`vocoder.VoiceGroup` and ``vocoder live`` run them in
the audio callback; ``vocoder render`` runs them through :class:`Singer` here.

::

    from vocoder.singer import Singer
    from vocoder.score.events import Event
    s = Singer(preset)                          # a Preset, or a preset config dict
    s.set_lyrics("Twin-kle twin-kle lit-tle star")
    s.push(Event.note_on(0.0, 60, 100))         # times in seconds on the singer's clock
    s.push(Event.note_off(0.5, 60))
    f = s.frames(200)                           # float32 [200, n_features]; advances time

``frames(n)`` renders the next ``n`` frames (frame ``t`` covers samples
``[t*hop, (t+1)*hop)``). An event at time ``t`` takes effect in the first frame that
starts at or after ``round(t * sample_rate) + EVENT_DELAY`` samples, exactly as in a
:class:`vocoder.Voice` fed the same event at that sample. The output depends only on the
events, not on how the frames are requested.

**The one difference between render and live** (:data:`EARLY_ONSETS`): a singer who
reads the score starts the consonants before a vowel early so that the vowel lands on
the beat. :class:`Singer` knows the events ahead (a file, pushed at once) and does so:
a note's onset consonants start before it (after a rest: into the rest; after a note
that runs up to it: together with that note's coda, cutting its vowel, at most by half).
A live voice cannot know a key is coming, so it sings the consonants from the key press
and the vowel comes after them. Pitch, dynamics and vibrato are the same in both;
``Singer(..., early_onsets=False)`` gives exactly the frames of a live voice.

What the singer does (both paths):

* **Notes**: a note after silence starts on pitch; a note played while another is held,
  or in the same frame the previous one is released, is legato: the pitch glides
  (exponential, ``portamento_tau``). A legato note without a syllable of its own (a live
  key, a melisma) keeps the vowel; one with a syllable from the file articulates it
  (the previous coda, then the new onset). Releasing a key while another is held goes
  back to that one. Velocity: ``velocity_db`` dB per decade around 100.
* **Lyrics**: a note's own syllable (readers resolve them from the file), else the next
  syllable of the lyric cursor, else the default vowel. Onset consonants, then the
  nucleus held (a diphthong holds its first vowel and moves to the second at the
  release), then the coda at the release and silence. Consonants never cut each other.
* **Controllers**: pitch bend times ``bend_range`` semitones (RPN 0 sets the range);
  mod wheel CC1 adds up to ``mod_depth`` semitones of vibrato; expression CC11 and
  breath CC2: ``cc_db`` dB per decade below 127 (40: General MIDI's volume curve);
  CC120 / CC123: silence now.
* **Vibrato**: ``vibrato_rate`` Hz, ``vibrato_depth`` semitones after ``vibrato_delay``,
  faded in over ``vibrato_attack``, out over ``vibrato_release`` after the note ends.
* **Spectrum**: per-phoneme envelopes and voicing from the preset's singer data
  (``config["singer"]``), or a built-in table from published formant frequencies;
  transitions are exponential (``transition_tau``, ``voicing_tau``).

Dropped when the two singers were made one (docs/render.md): the slow random pitch
drift and per-note random vibrato rate, the glide centred before the beat, the linear
f0 across rests and the 80 ms "legato gap" (all needed the future or were render-only).
"""

from .data import build_singer_data, fallback_table, singer_table
from .params import EARLY_ONSETS, SingerOptions, SingerParams
from .planner import NotePlanner, PhoneSet
from .singer import Singer, best_octave_shift, note_name

__all__ = [
    "EARLY_ONSETS",
    "NotePlanner",
    "PhoneSet",
    "Singer",
    "SingerOptions",
    "SingerParams",
    "best_octave_shift",
    "build_singer_data",
    "fallback_table",
    "note_name",
    "singer_table",
]
