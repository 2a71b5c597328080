"""The singer: score events in, per-frame conditioning out (f0, loudness, envelope).

One definition serves every host: :class:`SingerParams` is the one parameter set and
``ext/engine/singer.c`` the one compiled core. :class:`Singer` is the streaming
events-to-frames object that ``vocoder render`` uses; a live :class:`vocoder.Voice`
runs the same core inside its audio callback. :class:`NotePlanner` makes the note
decisions (held notes, legato, which syllable); :func:`build_singer_data` makes the
phoneme envelopes a preset carries.
"""

from .singer import (
    EARLY_ONSETS,
    NotePlanner,
    PhoneSet,
    Singer,
    SingerOptions,
    SingerParams,
    best_octave_shift,
    build_singer_data,
    fallback_table,
    note_name,
    singer_table,
)

__all__ = ["EARLY_ONSETS", "NotePlanner", "PhoneSet", "Singer", "SingerOptions", "SingerParams", "best_octave_shift",
           "build_singer_data", "fallback_table", "note_name", "singer_table"]
