"""The score: what is to be sung, as timed events, whatever the source.

:mod:`vocoder.score.events` reads MIDI, karaoke and MusicXML files into a :class:`Song`
of :class:`Event` (note on/off, bend, CC, lyric syllables); :mod:`vocoder.score.lyrics`
turns words into syllables and phonemes (CMU dictionary, English spelling rules).
Every host, live or rendering, feeds the singer these same events.
"""

from .events import Event, Note, Song, SongError, read_midi, read_musicxml, read_song
from .lyrics import Syllable, text_syllables

__all__ = [
    "Event",
    "Note",
    "Song",
    "SongError",
    "Syllable",
    "read_midi",
    "read_musicxml",
    "read_song",
    "text_syllables",
]
