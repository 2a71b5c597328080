"""Render's singer: :class:`Singer`, the streaming events-to-frames object, and the
range helpers ``vocoder render`` uses (:func:`best_octave_shift`, :func:`note_name`)."""

from __future__ import annotations

import bisect
import math

import numpy as np

from ..score.events import Event
from .params import SingerParams
from .planner import NOTE, ONSET, RELEASE, Command, NotePlanner, PhoneSet, _check_kinds

#: Seconds before an event at which :class:`Singer` plans it (consonants start then at the earliest).
LEAD = 0.4


class Singer:
    """The singer for a song: :meth:`push` events, take :meth:`frames`.

    Args:
        preset: a :class:`vocoder.Preset` or its config dict (needs ``sample_rate``,
            ``hop``, ``feature_names`` = f0, voicing, env0..; ``singer`` data optional).
        seed: kept for compatibility; the singer has no randomness (the engine's seed
            is what varies a performance).
        transpose: semitones added to every note.
        lyrics: text for the lyric cursor (see :meth:`set_lyrics`).
        options: :class:`SingerParams`, or keyword overrides of its fields.
        early_onsets: place onset consonants before the beat (:data:`EARLY_ONSETS`);
            False gives exactly the frames a live :class:`vocoder.Voice` makes.
    """

    def __init__(
        self,
        preset,
        seed: int = 0,
        transpose: int = 0,
        lyrics: str | None = None,
        options: SingerParams | None = None,
        early_onsets: bool = True,
        **overrides,
    ):
        from .. import _engine

        cfg = preset.config if hasattr(preset, "config") else dict(preset)
        self.options = self.params = SingerParams.make(options, **overrides)
        self.phones = PhoneSet(cfg, self.params, "Singer")
        _check_kinds()
        self.sample_rate, self.hop, self.n_env = self.phones.sample_rate, self.phones.hop, self.phones.n_env
        self.n_features = 2 + self.n_env
        self.table, self.pitch_range, self.has_singer_data = (
            self.phones.table,
            self.phones.pitch_range,
            self.phones.has_singer_data,
        )
        self.seed = int(seed)
        self.early_onsets = bool(early_onsets)
        self.delay = int(_engine.EVENT_DELAY)
        self._core = _engine.SingerCore(
            self.phones.envelopes,
            self.phones.voicing,
            self.phones.frames,
            self.phones.sil,
            self.params.for_core(),
            self.hop,
            self.sample_rate,
        )
        self._planner = NotePlanner(self.phones, transpose)
        self._lead_frames = int(LEAD * self.sample_rate / self.hop)
        self._initial_lyrics = lyrics
        self.reset()

    # ---- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Back to time 0 with no events, the lyric cursor refilled from ``lyrics``."""
        self._core.reset()
        self._planner.reset()
        self._planner.set_lyrics(self._initial_lyrics or "")
        self.frame = 0
        self._pending: list = []  # events not planned yet: (sort key, seq, event)
        self._seq = 0
        self._queue: list = []  # planned commands not given to the core: [frame, seq, time, command]
        self._last_note: int | None = None  # frame of the last NOTE
        self._last_release: list | None = None  # the last RELEASE entry
        self.early: list[tuple[int, int, int]] = []  # (onset frame, note frame, consonant frames) of every early onset

    @property
    def transpose(self) -> int:
        return self._planner.transpose

    @transpose.setter
    def transpose(self, t) -> None:
        self._planner.transpose = int(t)

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    @property
    def time(self) -> float:
        """Start time (s) of the next frame :meth:`frames` returns."""
        return self.frame * self.hop / self.sample_rate

    @property
    def sounding(self) -> bool:
        """A note is held (as far as the events planned so far go)."""
        return self._planner.sounding

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    # ---- lyrics ----------------------------------------------------------------------
    def set_lyrics(self, text: str) -> None:
        """Replace the lyric cursor with the syllables of ``text`` (one per note; see
        :func:`vocoder.score.lyrics.text_syllables`)."""
        self._planner.set_lyrics(text)

    def add_lyrics(self, text: str) -> None:
        """Append the syllables of ``text`` to the lyric cursor."""
        self._planner.add_lyrics(text)

    @property
    def upcoming_syllables(self) -> list:
        """The syllables the cursor will give, next first."""
        return self._planner.upcoming

    # ---- events ----------------------------------------------------------------------
    def push(self, event: Event) -> None:
        """Queue an event (any time; past times take effect at the next frame)."""
        if not isinstance(event, Event):
            raise TypeError(f"Singer.push: expected an Event, got {type(event).__name__}")
        self._seq += 1
        bisect.insort(self._pending, (event.sort_key, self._seq, event))

    def push_many(self, events) -> None:
        for e in events:
            self.push(e)

    def pitch_warning(self, notes) -> str | None:
        """A warning line when MIDI ``notes`` (after this singer's ``transpose``) leave the
        preset's trained pitch range, else ``None``. It names only the notes outside the
        range, and suggests the octave shift that fits the most notes (as the total
        ``--transpose`` to give, counted from the one already applied)."""
        if self.pitch_range is None:
            return None
        lo, hi = self.pitch_range
        ps = [int(n) + self.transpose for n in notes]
        below = [p for p in ps if p < lo]
        above = [p for p in ps if p > hi]
        if not below and not above:
            return None
        where = []
        if below:
            where.append(f"{len(below)} below ({note_name(min(below))}..{note_name(max(below))})")
        if above:
            where.append(f"{len(above)} above ({note_name(min(above))}..{note_name(max(above))})")
        span = ", ".join(where)
        k, fit = best_octave_shift(ps, self.pitch_range, -48 - self.transpose, 48 - self.transpose)
        if k:
            hint = (
                f"; --transpose {k + self.transpose:+d} fits {fit} of {len(ps)}"
                + (f" (instead of {self.transpose:+d})" if self.transpose else "")
                + ", or give --transpose auto"
            )
        else:
            hint = "; no octave shift fits more of them"
        return (
            f"{len(below) + len(above)} of {len(ps)} notes lie outside the voice's trained range "
            f"{note_name(lo)}..{note_name(hi)}: {span}; they may sound poor{hint}"
        )

    # ---- frames ----------------------------------------------------------------------
    def frames(self, n: int) -> np.ndarray:
        """The next ``n`` frames, float32 ``[n, n_features]``; advances :attr:`time`."""
        n = int(n)
        if n < 0:
            raise ValueError("frames: n must be >= 0")
        end = self.frame + n
        t_end = end * self.hop / self.sample_rate
        while self._pending and self._pending[0][2].time - LEAD <= t_end:
            _, _, ev = self._pending.pop(0)
            self._plan(ev)
        while self._queue and self._queue[0][0] < end:
            f, _, tm, cmd = self._queue.pop(0)
            if not self._core.push(tm, *cmd.args()):  # pragma: no cover - 512 commands in one block
                raise RuntimeError("Singer: too many events in one block of frames; ask for fewer frames")
        out = self._core.frames(n)
        self.frame = end
        return out

    def render_song(self, events, duration: float) -> np.ndarray:
        """All frames of ``duration`` seconds for ``events`` (resets first)."""
        self.reset()
        self.push_many(events)
        n = int(math.ceil(duration / self.frame_seconds - 1e-9))
        out = np.empty((n, self.n_features), np.float32)
        for a in range(0, n, 256):  # blocks keep the queues short (same frames as one call)
            out[a : a + 256] = self.frames(min(256, n - a))
        return out

    # ---- planning ----------------------------------------------------------------------
    def _frame_of(self, tm: int) -> int:
        """The frame a command at model sample ``tm`` takes effect in (as ext/engine/singer.c)."""
        return -(-(tm + self.delay) // self.hop)

    def _enqueue(self, f: int, tm: int, cmd: Command) -> list:
        self._seq += 1
        entry = [f, self._seq, tm, cmd]
        bisect.insort(self._queue, entry, key=lambda e: (e[0], e[1]))
        return entry

    def _plan(self, ev: Event) -> None:
        tm = max(int(round(ev.time * self.sample_rate)), self.frame * self.hop - self.delay)
        f = self._frame_of(tm)
        for cmd in self._planner.event(ev):
            if cmd.kind == NOTE:
                if cmd.onset and self.early_onsets:
                    cmd = self._early_onset(f, cmd)
                self._last_note = f
            entry = self._enqueue(f, tm, cmd)
            if cmd.kind == RELEASE:
                self._last_release = entry

    def _early_onset(self, fN: int, cmd: Command) -> Command:
        """EARLY_ONSETS, the one thing render does that live does not: start the consonants
        before the vowel so that it lands on frame ``fN``. After a rest they go into the rest
        (once the last release has sung its coda); after a note that runs up to this one,
        that note's coda moves with them, cutting its vowel, at most by half. Pitch,
        velocity and vibrato still change at ``fN``. Returns the NOTE without consonants."""
        ph = self.phones
        cons = cmd.onset
        floor = max(self.frame, fN - self._lead_frames)
        half = self._last_note + (fN - self._last_note) // 2 if self._last_note is not None else 0
        rel = self._last_release
        if rel is not None and self._last_note is not None and rel[0] < self._last_note:
            rel = None  # released before the last note began: that note is what sounds now
        if cmd.legato:  # the planner put the previous coda before the onset already
            floor = max(floor, half)
        elif rel is not None and rel[0] + 1 + ph.consonant_frames(rel[3].coda) > fN - ph.consonant_frames(cons):
            if rel[0] < self.frame:  # the release is already sung: no room before the note
                return cmd
            cons = rel[3].coda + cons  # joined: the coda goes just before the onset
            floor = max(floor, half)
        elif rel is not None:
            floor = max(floor, rel[0] + 1 + ph.consonant_frames(rel[3].coda))
        fO = max(fN - ph.consonant_frames(cons), floor)
        if fO >= fN:
            return cmd
        if len(cons) > len(cmd.onset):
            assert rel is not None  # only joining the coda above makes the onset longer
            rel[3] = rel[3].with_(coda=())
        self._enqueue(fO, fO * self.hop - self.delay, Command(ONSET, 0, 0, 0, cmd[4], cons))
        self.early.append((fO, fN, ph.consonant_frames(cons)))
        return cmd.with_(onset=())


def best_octave_shift(notes, pitch_range, lowest: int = -48, highest: int = 48) -> tuple:
    """``(shift, fitting)``: the multiple of 12 semitones in ``lowest..highest`` (keeping
    every note in MIDI 0..127) that puts the most of ``notes`` inside ``pitch_range`` =
    ``(lowest note, highest note)``, and how many then fit. Ties go to the smallest
    shift, so a song that already fits gets 0."""
    ps = [int(n) for n in notes]
    if not ps or pitch_range is None:
        return 0, len(ps)
    lo, hi = pitch_range
    best = (0, sum(lo <= p <= hi for p in ps))
    shifts = [k for k in range(-120, 121, 12) if lowest <= k <= highest]
    for k in sorted(shifts, key=lambda k: (abs(k), k)):
        if min(ps) + k < 0 or max(ps) + k > 127:
            continue
        fit = sum(lo <= p + k <= hi for p in ps)
        if fit > best[1]:
            best = (k, fit)
    return best


def note_name(midi) -> str:
    """``60`` -> ``"C4"``."""
    m = int(round(float(midi)))
    return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][m % 12] + str(m // 12 - 1)
