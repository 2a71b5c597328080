"""The singer's numbers: :class:`SingerParams`, one parameter set for render and live."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

#: The only behaviour render has and live lacks: onset consonants placed before the beat.
EARLY_ONSETS = "onset consonants start before the note, so its vowel lands on the beat"


@dataclass(frozen=True)
class SingerParams:
    """Every number of the singer's behaviour (seconds, semitones, dB): the one place
    their defaults are written. :class:`Singer`, :class:`vocoder.Voice` (and so
    ``VoiceGroup`` and ``vocoder live``) pass them to the compiled singer.

    Where the two former singers disagreed, the value kept and why:
    ``mod_depth`` 0.75 (not 1.0): with the natural 0.25 it makes at most +-1 semitone, the
    widest vibrato a trained singer uses. ``portamento_tau`` 0.045 exponential (not a
    0.07 s linear ramp centred before the note): it needs no knowledge of the future and
    is one state variable, like every other transition here. ``cc_db`` 40 (not 20):
    General MIDI's recommended curve for volume and expression, which keyboards and
    sequencers are made for. ``bend_range`` with RPN 0 (only render had it): files and
    keyboards both send it.
    """

    vibrato_rate: float = 5.5  # Hz
    vibrato_depth: float = 0.25  # peak deviation, semitones
    vibrato_delay: float = 0.25  # after the note starts
    vibrato_attack: float = 0.35  # fade-in time
    vibrato_release: float = 0.05  # fade-out after the note ends
    mod_depth: float = 0.75  # extra peak depth at mod wheel 127
    portamento_tau: float = 0.045  # legato glide, exponential
    bend_range: float = 2.0  # semitones at full pitch bend (until RPN 0 sets another)
    transition_tau: float = 0.012  # phoneme envelope changes, exponential
    voicing_tau: float = 0.008
    gain_tau: float = 0.010  # dynamics changes
    velocity_db: float = 30.0  # dB per decade of velocity around 100
    cc_db: float = 40.0  # dB per decade of CC11 / CC2 below 127
    consonant_scale: float = 1.0  # multiplies every consonant duration

    def replace(self, **kw) -> SingerParams:
        return replace(self, **kw)

    def for_core(self) -> dict:
        """The fields the compiled singer takes (``consonant_scale`` is applied to the phone set)."""
        d = asdict(self)
        d.pop("consonant_scale")
        return {k: float(v) for k, v in d.items()}

    @classmethod
    def make(cls, params=None, **overrides) -> SingerParams:
        p = params if params is not None else cls()
        if not isinstance(p, cls):
            raise TypeError(f"singer parameters must be a SingerParams, got {type(p).__name__}")
        if overrides:
            bad = sorted(set(overrides) - {f.name for f in fields(cls)})
            if bad:
                raise TypeError(f"Singer: unknown option(s) {', '.join(bad)}")
            p = replace(p, **overrides)
        for f in fields(cls):
            v = getattr(p, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"singer parameter {f.name} must be a finite number >= 0, got {v!r}")
        return p


#: The former name of :class:`SingerParams` (the public API keeps it).
SingerOptions = SingerParams
