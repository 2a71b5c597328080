"""A live singing voice for your own audio callback: events in, audio out.

::

    import vocoder
    voice = vocoder.Voice(vocoder.load_preset("default"), sample_rate=48000, seed=0)
    voice.lyrics("twin kle twin kle lit tle star")
    voice.note_on(60, 100, offset=0)       # offset: samples into the next render() block
    voice.note_off(60, offset=37)
    out = numpy.zeros(128, numpy.float32)
    voice.render(out)                      # in the audio callback: fills out in place

Everything sample-by-sample runs in compiled code (``ext/engine/voice.c``): the singer
(``ext/engine/singer.c``) turns the events into feature frames (pitch with legato glide, bend and vibrato;
dynamics; the phonemes of the current syllable moving from one envelope to the next),
the engine turns frames into samples at the preset's rate, and a polyphase resampler
brings them to ``sample_rate``. :meth:`Voice.render` releases the GIL, allocates
nothing, takes no lock and never raises on the audio path.

Threads: call the event methods (``note_on`` ... ``panic``) from one thread at a time,
for example your MIDI thread, while :meth:`render` runs in the audio thread. They meet
in a bounded lock-free queue; when it is full an event is dropped and counted in
:attr:`dropped_events` rather than blocking anyone.

Timing: an event takes effect at ``offset`` samples into the next :meth:`render` call,
and is heard :attr:`latency_samples` later at most (one singer frame, the resampler's
delay and the engine's subscale lag; the engine's feature lookahead costs nothing here,
because the singer produces frames exactly as they are needed). The same events at the
same offsets give the same samples whatever the block sizes.

Several voices on one preset (say, MIDI channels routed to the same voice) are cheaper
together: :class:`VoiceGroup` renders them with one batched engine step per sample, the
matrix products of all voices in one kernel call, and gives each voice exactly the
samples it would give alone::

    group = vocoder.VoiceGroup([vocoder.Voice(p, 48000, seed=i) for i in range(4)])
    group[2].note_on(64)                   # events go to each voice as usual
    group.render(out)                      # out = the sum of the four voices

Lyrics: each new note sings the next syllable of the loaded lyrics (with no lyrics, the
vowel "ah"; at their end they start again); a note pressed while another is held is
legato: it glides there without a new syllable. Releasing it returns to the held note.
:meth:`lyric_step` moves the cursor, :meth:`lyric_restart` goes back to the first syllable.

The singer is the one :mod:`vocoder.singer` defines (its parameters are
:class:`vocoder.singer.SingerParams`, passed as ``params``): the same events at the same
samples give the same frames, and with the same seed the same samples, as ``vocoder
render``, except that render starts onset consonants before the beat
(:data:`vocoder.singer.EARLY_ONSETS`, docs/live.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..engine import kernels
from ..engine.wavernn import compiled_model

if TYPE_CHECKING:
    from ..engine.presets import Preset
    from ..singer import SingerParams

__all__ = ["Voice", "VoiceGroup"]


def _check_offset(offset) -> int:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"offset must be a sample count >= 0 into the next render block, got {offset!r}")
    return int(min(offset, 2**31 - 1))


def _check_number(name, x, lo, hi) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {x!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {x!r}")
    return v


class Voice:
    """One monophonic singing voice driven by note events; see the module docstring.

    Args:
        preset: a :class:`vocoder.Preset` whose features are ``f0``, ``voicing`` and the
            envelope bands of ``docs/features.md``.
        sample_rate: the rate :meth:`render` produces (your device's rate).
        seed: seeds the engine's sampling; same seed, same events, same samples.
        level: kernel level (default: the best this CPU has); the samples do not depend on it.
    """

    def __init__(
        self,
        preset: Preset,
        sample_rate: int = 48000,
        seed: int = 0,
        level: str | None = None,
        params: SingerParams | None = None,
    ) -> None:
        from .. import _engine
        from ..singer import NotePlanner, PhoneSet, SingerParams
        from ..singer.planner import _check_kinds

        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, (int, np.integer))
            or not 8000 <= sample_rate <= 384000
        ):
            raise ValueError(f"sample_rate must be an integer in 8000..384000 Hz, got {sample_rate!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
        cfg = preset.config
        self.params = SingerParams.make(params)
        try:
            self._phones = PhoneSet(cfg, self.params, who=f"preset {cfg['name']!r} cannot sing live")
        except ValueError as e:
            raise ValueError(str(e)) from None
        _check_kinds()
        self.pitch_range = self._phones.pitch_range
        # the one planner (held notes, legato, syllables); a keyboard's lyrics start again at their end
        self._planner = NotePlanner(self._phones, wrap_lyrics=True)

        self.preset = preset
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self.level = kernels.active_level() if level is None else level
        level_index = kernels._level_index(self.level)
        ccfg, dense, layers = compiled_model(preset)
        ph = self._phones
        self._core = _engine.VoiceCore(
            dense,
            layers,
            ccfg,
            ph.envelopes,
            ph.voicing,
            ph.frames,
            ph.sil,
            self.params.for_core(),
            level_index,
            self.seed,
            self.sample_rate,
        )
        self.syllable = ""

    # ---- properties -------------------------------------------------------------
    @property
    def latency_samples(self) -> int:
        """Device samples from an event's time to its sound, at most."""
        return int(self._core.latency)

    @property
    def dropped_events(self) -> int:
        """Events dropped because the queue to the audio thread was full."""
        return int(self._core.dropped)

    @property
    def underrun_samples(self) -> int:
        """Model-rate samples the engine could not produce (0 in normal operation)."""
        return int(self._core.underrun)

    @property
    def position(self) -> int:
        """Device samples rendered since creation or :meth:`reset`."""
        return int(self._core.position)

    def last_frame(self) -> np.ndarray:
        """The last feature frame sent to the engine: ``[f0, voicing, env...]``."""
        return self._core.last_frame()

    # ---- lyrics -----------------------------------------------------------------
    def lyrics(self, text: str) -> None:
        """Load lyrics; the next new note sings their first syllable."""
        if not isinstance(text, str):
            raise TypeError(f"lyrics must be a str, got {type(text).__name__}")
        self._planner.set_lyrics(text)

    def lyric_step(self, n: int = 1) -> None:
        """Move the lyric cursor by ``n`` syllables (negative: back), clamped."""
        self._planner.step(n)

    def lyric_restart(self) -> None:
        self._planner.step(-(1 << 30))

    @property
    def upcoming(self) -> str:
        """The syllable the next new note will sing ('' when there are no lyrics)."""
        up = self._planner.upcoming
        return up[0].text if up else ""

    # ---- events -----------------------------------------------------------------
    def _send(self, commands, offset: int) -> bool:
        ok = True
        for c in commands:
            ok = bool(self._core.push(offset, *c.args())) and ok
        syl = self._planner.syllable
        self.syllable = "" if syl is None else (syl.text or ("ah" if syl.phones == ("AA",) else " ".join(syl.phones)))
        return ok

    def note_on(self, note: float, velocity: float = 100, offset: int = 0) -> bool:
        """Start ``note`` (MIDI number) at ``offset`` samples into the next block.

        Velocity 0 is a note-off, as in MIDI. Returns False if the event was dropped."""
        note = _check_number("note", note, 0, 127)
        velocity = _check_number("velocity", velocity, 0, 127)
        offset = _check_offset(offset)
        return self._send(self._planner.note_on(note, velocity), offset)

    def note_off(self, note: float, offset: int = 0) -> bool:
        """Release ``note``. Back to a still-held note (legato) or sing the coda and stop."""
        note = _check_number("note", note, 0, 127)
        offset = _check_offset(offset)
        return self._send(self._planner.note_off(note), offset)

    def pitch_bend(self, value: float, offset: int = 0) -> bool:
        """Bend by ``value`` in -1..1 (times the bend range: 2 semitones, or what RPN 0 sets)."""
        offset = _check_offset(offset)
        return self._send(self._planner.bend(_check_number("pitch bend", value, -1, 1)), offset)

    def control(self, cc: int, value: float, offset: int = 0) -> bool:
        """A MIDI controller: 1 mod wheel (vibrato depth), 2 breath and 11 expression
        (dynamics), 101 / 100 / 6 (RPN 0: the pitch-bend range), 120 / 123 all sound /
        notes off (panic). Others are ignored."""
        cc = int(_check_number("controller", cc, 0, 127))
        value = _check_number("controller value", value, 0, 127)
        offset = _check_offset(offset)
        return self._send(self._planner.control(cc, value), offset)

    def panic(self, offset: int = 0) -> bool:
        """Silence now: every note released without its coda, bend reset."""
        return self._send(self._planner.panic(), _check_offset(offset))

    def reset(self, seed: int | None = None) -> None:
        """Back to the start (not while another thread renders)."""
        if seed is not None:
            self.seed = int(seed)
        self._core.reset(self.seed)
        self._planner.reset()
        self.syllable = ""

    # ---- audio --------------------------------------------------------------------
    def render(self, out: np.ndarray) -> None:
        """Fill ``out`` (float32, 1-D, C-contiguous, any length) with the next samples.

        Releases the GIL and allocates nothing. A wrong buffer is the only error (raised
        before any audio work, so check it once when you set up your callback)."""
        self._core.render(out)

    def __repr__(self) -> str:
        return (
            f"Voice({self.preset.config['name']!r}, sample_rate={self.sample_rate}, seed={self.seed}, "
            f"latency_samples={self.latency_samples})"
        )


class VoiceGroup:
    """Voices on one preset rendered together, with one batched engine step per sample.

    Each voice keeps its own events, lyrics, singer state, seed and sample rate; only
    the engines' matrix products are shared, as one kernel call over all voices (the
    int8 kernels load each weight block once for the whole group). A voice's samples
    are bit for bit those it renders alone, so grouping is purely a speed-up: four
    voices cost much less than four times one.

    Args:
        voices: 1 to 16 :class:`Voice` objects built on the same preset (the same
            object, or presets with identical weights). Send events to them as usual.
        max_block: the longest slice :meth:`render` mixes at once (longer blocks are
            cut into slices; the samples do not depend on it).

    Threads: the same rules as :class:`Voice`. While the group renders, do not call
    :meth:`Voice.render` on its voices (rendering them alone in between is fine).
    """

    def __init__(self, voices: Iterable[Voice], max_block: int = 1024) -> None:
        from .. import _engine

        voices = tuple(voices)
        for k, v in enumerate(voices):
            if not isinstance(v, Voice):
                raise TypeError(f"voice {k} is a {type(v).__name__}, not a vocoder.Voice")
        if len(set(map(id, voices))) != len(voices):
            raise ValueError("the same Voice appears twice in the group")
        if not isinstance(max_block, (int, np.integer)) or not 1 <= max_block <= 1 << 20:
            raise ValueError(f"max_block must be an integer in 1..1048576, got {max_block!r}")
        self.voices = voices
        self._core = _engine.VoiceGroupCore([v._core for v in voices], int(max_block))

    @classmethod
    def partition(cls, voices) -> list:
        """Split ``voices`` into as few groups as possible, each on one preset (at most 16
        voices each), keeping their order within a group."""
        from .. import _engine

        groups: list[list[Voice]] = []
        for v in voices:
            for g in groups:
                if len(g) < 16 and _engine.same_model(g[0]._core, v._core):
                    g.append(v)
                    break
            else:
                groups.append([v])
        return [cls(g) for g in groups]

    def __len__(self) -> int:
        return len(self.voices)

    def __getitem__(self, k) -> Voice:
        return self.voices[k]

    def __iter__(self):
        return iter(self.voices)

    def render(self, out: np.ndarray) -> None:
        """Fill ``out`` (float32, 1-D, C-contiguous) with the sum of the voices' next
        samples. Releases the GIL and allocates nothing."""
        self._core.render_mix(out)

    def render_each(self, outs: np.ndarray) -> None:
        """Fill ``outs`` (float32, shape ``[len(self), n]``, C-contiguous) with each
        voice's next ``n`` samples. Releases the GIL and allocates nothing."""
        self._core.render_each(outs)

    def __repr__(self) -> str:
        return f"VoiceGroup({len(self.voices)} voices on {self.voices[0].preset.config['name']!r})"
