"""Note decisions: the phone set of a preset and :class:`NotePlanner` (held notes, legato,
which syllable), shared by render's :class:`~vocoder.singer.Singer` and the live voices."""

from __future__ import annotations

import numpy as np

from ..score import lyrics as _lyrics
from ..score.events import CONTROL, LYRIC, NOTE_OFF, NOTE_ON, PITCH_BEND, Event
from ..score.lyrics import Syllable
from .data import DIPHTHONGS, singer_table
from .params import SingerParams


def check_features(cfg: dict, who: str = "Singer") -> int:
    """The number of envelope bands of a preset config that can sing, else ValueError."""
    try:
        names = list(cfg["feature_names"])
        int(cfg["sample_rate"]), int(cfg["hop"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{who}: the preset config lacks {e}") from None
    n_env = len(names) - 2
    if names[:2] != ["f0", "voicing"] or not 1 <= n_env <= 64 or names[2:] != [f"env{i}" for i in range(n_env)]:
        raise ValueError(
            f"{who}: the preset's features must be f0, voicing, env0..envN-1 with 1..64 bands "
            f"(docs/features.md), got {names[:4]}{'...' if len(names) > 4 else ''}"
        )
    return n_env


class PhoneSet:
    """A preset's phonemes as the compiled singer takes them: envelopes, voicing and
    consonant durations in frames (times ``consonant_scale``), by index."""

    def __init__(self, cfg: dict, params: SingerParams, who: str = "Singer"):
        from ..score.lyrics import DEFAULT_VOWEL

        n_env = check_features(cfg, who)
        self.sample_rate, self.hop = int(cfg["sample_rate"]), int(cfg["hop"])
        self.n_env = n_env
        self.table, self.pitch_range, self.has_singer_data = singer_table(cfg, n_env, self.sample_rate)
        self.names = list(self.table)
        self.index = {p: i for i, p in enumerate(self.names)}
        hop_s = self.hop / self.sample_rate
        self.envelopes = np.ascontiguousarray([self.table[p][0] for p in self.names], np.float32)
        self.voicing = np.ascontiguousarray([self.table[p][1] for p in self.names], np.float32)
        self.frames = np.ascontiguousarray(
            [max(1, int(round(self.table[p][2] * params.consonant_scale / hop_s))) for p in self.names], np.int32
        )
        self.sil = self.index["sil"]
        self.default_vowel = self.index.get(DEFAULT_VOWEL, self.index.get("AH", self.sil))

    def ids(self, phones) -> tuple:
        return tuple(self.index.get(p, self.sil) for p in phones)

    def vowel(self, p) -> int:
        return self.index.get(p, self.index.get("AH", self.default_vowel))

    def consonant_frames(self, ids) -> int:
        return int(sum(int(self.frames[i]) for i in ids))


# --------------------------------------------------------------------------- the planner

# Command kinds, the same numbers as ext/engine/singer.h's (checked when a singer is built).
NOTE, GLIDE, RELEASE, BEND, CC, PANIC, ONSET = 1, 2, 3, 4, 5, 6, 7


class Command(tuple):
    """One command to the compiled singer: ``(kind, note, value, cc, nucleus, onset, coda)``
    with phonemes as indices; ``legato`` marks a NOTE that follows a held note."""

    __slots__ = ()

    def __new__(cls, kind, note=0.0, value=0.0, cc=0, nucleus=0, onset=(), coda=(), legato=False):
        return tuple.__new__(
            cls, (kind, float(note), float(value), int(cc), int(nucleus), tuple(onset), tuple(coda), bool(legato))
        )

    kind = property(lambda self: self[0])
    onset = property(lambda self: self[5])
    coda = property(lambda self: self[6])
    legato = property(lambda self: self[7])

    def with_(self, onset=None, coda=None) -> Command:
        kind, note, value, cc, nucleus, old_onset, old_coda, legato = self
        return Command(
            kind,
            note,
            value,
            cc,
            nucleus,
            old_onset if onset is None else onset,
            old_coda if coda is None else coda,
            legato,
        )

    def args(self) -> tuple:
        """What ``SingerCore.push`` / ``VoiceCore.push`` take after the time."""
        return self[:7]


def _check_kinds():
    from .. import _engine

    mine = (NOTE, GLIDE, RELEASE, BEND, CC, PANIC, ONSET)
    core = (
        _engine.EV_NOTE,
        _engine.EV_GLIDE,
        _engine.EV_RELEASE,
        _engine.EV_BEND,
        _engine.EV_CC,
        _engine.EV_PANIC,
        _engine.EV_ONSET,
    )
    if mine != core:  # pragma: no cover - a build out of step with this file
        raise RuntimeError(f"vocoder._engine's singer commands {core} differ from vocoder.singer's {mine}; rebuild")


class NotePlanner:
    """Held notes, legato and syllables: the one place a note event becomes singer
    commands (:class:`vocoder.Voice` calls it as events are pushed, :class:`Singer` as
    it plans a song). Commands are :class:`Command` tuples.

    ``wrap_lyrics``: at the end of the lyrics start again (a keyboard, ``Voice``) or sing
    the default vowel (a file, ``Singer``)."""

    def __init__(self, phones: PhoneSet, transpose: int = 0, wrap_lyrics: bool = False):
        self.phones = phones
        self.transpose = int(transpose)
        self.wrap_lyrics = wrap_lyrics
        self._sylls: list[Syllable] = []
        self._pos = 0
        self.reset()

    def reset(self) -> None:
        """No note held; the lyric cursor back to the first syllable."""
        self._held: list = []  # notes held, oldest first
        self._sounding: Syllable | None = None  # the syllable being sung
        self._last: Syllable | None = None  # the last syllable articulated (a melisma continues it)
        self._pos = 0

    # ---- lyrics ----
    def set_lyrics(self, text: str) -> None:
        self._sylls = [s for s in _lyrics.text_syllables(text or "") if not s.melisma]
        self._pos = 0

    def add_lyrics(self, text: str) -> None:
        self._sylls.extend(s for s in _lyrics.text_syllables(text or "") if not s.melisma)

    def step(self, n: int = 1) -> None:
        self._pos = max(0, min(len(self._sylls), self._pos + int(n)))

    @property
    def upcoming(self) -> list:
        """The syllables new notes will sing, next first (one turn when wrapping)."""
        if self.wrap_lyrics and self._sylls:
            k = self._pos % len(self._sylls)
            return self._sylls[k:] + self._sylls[:k]
        return self._sylls[self._pos :]

    def _next_syllable(self) -> Syllable:
        if self.wrap_lyrics and self._sylls:
            s = self._sylls[self._pos % len(self._sylls)]
            self._pos = (self._pos + 1) % len(self._sylls)
            return s
        if self._pos < len(self._sylls):
            self._pos += 1
            return self._sylls[self._pos - 1]
        return _lyrics.default_syllable()

    @property
    def sounding(self) -> bool:
        return bool(self._held)

    @property
    def syllable(self) -> Syllable | None:
        """The syllable being sung (None when no note is held)."""
        return self._sounding

    # ---- notes ----
    def _nucleus(self, syl: Syllable) -> int:
        return self.phones.vowel(DIPHTHONGS.get(syl.nucleus, (syl.nucleus,))[0])

    def _closing(self, syl) -> tuple:
        """Phones that end a syllable: a diphthong's second vowel, then the coda."""
        if syl is None:
            return ()
        d = DIPHTHONGS.get(syl.nucleus)
        return ((d[1],) if d else ()) + tuple(syl.coda)

    def note_on(self, note, velocity=100, syllable: Syllable | None = None) -> list:
        if velocity <= 0:
            return self.note_off(note)
        pitch = float(note) + self.transpose
        legato = bool(self._held)
        self._held = [n for n in self._held if n != note] + [note]
        if legato:
            if syllable is None or syllable.melisma:  # a key pressed while another is held, a melisma
                return [Command(GLIDE, pitch)]
            # a new syllable on a legato note (from the file): the coda, then the onset, gliding
            cons = self._closing(self._sounding) + tuple(syllable.onset)
            self._sounding = self._last = syllable
            return [Command(NOTE, pitch, velocity, 0, self._nucleus(syllable), self.phones.ids(cons), legato=True)]
        if syllable is None:
            syllable = self._next_syllable()
        elif syllable.melisma:  # a melisma after a rest goes on with the last vowel
            last = self._last
            syllable = Syllable((), last.nucleus, tuple(last.coda), last.text) if last else _lyrics.default_syllable()
        self._sounding = self._last = syllable
        return [Command(NOTE, pitch, velocity, 0, self._nucleus(syllable), self.phones.ids(syllable.onset))]

    def note_off(self, note) -> list:
        if note not in self._held:
            return []
        was_top = self._held[-1] == note
        self._held.remove(note)
        if self._held:  # back to a key still held, without re-articulating
            return [Command(GLIDE, float(self._held[-1]) + self.transpose)] if was_top else []
        coda = self.phones.ids(self._closing(self._sounding))
        self._sounding = None
        return [Command(RELEASE, coda=coda)]

    def bend(self, value) -> list:
        return [Command(BEND, value=value)]

    def control(self, cc, value) -> list:
        if cc in (120, 123):
            return self.panic()
        return [Command(CC, value=value, cc=cc)]

    def panic(self) -> list:
        self._held = []
        self._sounding = None
        return [Command(PANIC)]

    def event(self, ev: Event) -> list:
        k = ev.kind
        if k == NOTE_ON:
            return self.note_on(ev.note, ev.velocity, ev.syllable)
        if k == NOTE_OFF:
            return self.note_off(ev.note)
        if k == PITCH_BEND:
            return self.bend(ev.value)
        if k == CONTROL:
            return self.control(ev.control, ev.value)
        if k == LYRIC:
            self.add_lyrics(ev.text)
        return []
