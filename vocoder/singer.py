"""The singer: timed events in, conditioning frames out (``docs/features.md``), streaming.

::

    from vocoder.singer import Singer
    from vocoder.events import Event
    s = Singer(preset, seed=0)                  # a Preset, or a preset config dict
    s.set_lyrics("Twin-kle twin-kle lit-tle star")
    s.push(Event.note_on(0.0, 60, 100))         # times in seconds on the singer's clock
    s.push(Event.note_off(0.5, 60))
    f = s.frames(200)                           # float32 [200, n_features]; advances time

``frames(n)`` renders the next ``n`` frames (frame ``t`` covers samples
``[t*hop, (t+1)*hop)`` and is evaluated at its centre). Events may be pushed ahead of
time (a file: all at once) or as they happen (a keyboard: at :attr:`Singer.time`); an
event in the past takes effect at once. The singer plans each note :attr:`LEAD` seconds
before it sounds, so with events pushed ahead onset consonants start before the note
and the vowel lands on the beat; live, the consonants start at the key press. The output
only depends on the events and the seed, not on how the frames are requested.

What it does:

* **Lyrics**: a note_on's ``syllable`` (readers resolve them from the file), else the next
  syllable of the lyric cursor (:meth:`set_lyrics`, ``lyric`` events), else the default
  vowel. A legato note (played before the previous one is released, or within
  ``legato_gap`` after it) that takes its syllable from the cursor glides on the current
  vowel without re-articulating; so does a melisma note. Onset consonants end at the note
  start, the vowel sustains (a diphthong moves to its second vowel at the end), the coda
  closes the note; between legato notes the coda and the next onset share the gap.
* **Pitch**: the note plus pitch bend (``bend_range`` semitones, or what RPN 0 sets), portamento between legato
  notes, vibrato (``vibrato_rate`` Hz, ``vibrato_depth`` semitones, fading in after
  ``vibrato_delay``; the mod wheel CC1 adds up to ``mod_depth``), a slow seeded drift of
  a few cents; linear across rests (as feature extraction interpolates unvoiced frames).
* **Dynamics**: velocity (``velocity_db`` dB per decade around velocity 100) and
  expression CC11 / breath CC2 (``cc_db`` dB per decade) add ``2 ln(gain)`` to every
  envelope band.
* **Spectrum**: per-phoneme envelopes and voicing from the preset's singer data
  (``config["singer"]``), or a built-in table from published formant frequencies,
  cross-faded over ``transition`` seconds.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields, replace

import numpy as np

from . import lyrics as _lyrics
from .events import (CC_ALL_NOTES_OFF, CC_BREATH, CC_EXPRESSION, CC_MODULATION, CONTROL, LYRIC, NOTE_OFF, NOTE_ON,
                     PITCH_BEND, Event)
from .lyrics import VOWELS, Syllable

#: Seconds before a note's start at which the singer plans it (its consonants start then at the earliest).
LEAD = 0.4
ENV_FLOOR = math.log(1e-10)
LN10_10 = math.log(10.0) / 10.0


@dataclass(frozen=True)
class SingerOptions:
    """Performance settings (seconds, semitones, dB)."""

    vibrato_rate: float = 5.5
    vibrato_depth: float = 0.25      # peak deviation, semitones
    vibrato_delay: float = 0.25      # after the vowel starts
    vibrato_attack: float = 0.35     # fade-in time
    mod_depth: float = 1.0           # extra peak depth at mod wheel 127
    drift_cents: float = 5.0         # peak slow drift
    portamento: float = 0.07         # glide between legato notes
    bend_range: float = 2.0          # semitones at full pitch bend
    transition: float = 0.035        # phoneme cross-fade
    release: float = 0.06            # vowel to silence
    legato_gap: float = 0.08         # a gap this short joins two notes
    velocity_db: float = 30.0        # dB per decade of velocity around 100
    cc_db: float = 40.0              # dB per decade of CC11 / CC2 below 127
    consonant_scale: float = 1.0     # multiplies every consonant duration

    def replace(self, **kw) -> "SingerOptions":
        return replace(self, **kw)


# --------------------------------------------------------------------------- fallback table

# F1, F2, F3 (Hz) of American English vowels (Peterson & Barney 1952 / Hillenbrand et al.
# 1995, adult male averages) and approximants.
_FORMANTS = {
    "AA": (730, 1090, 2440), "AE": (660, 1720, 2410), "AH": (520, 1190, 2390), "AO": (570, 840, 2410),
    "EH": (530, 1840, 2480), "ER": (490, 1350, 1690), "IH": (390, 1990, 2550), "IY": (270, 2290, 3010),
    "UH": (440, 1020, 2240), "UW": (300, 870, 2240), "OW": (450, 800, 2400), "AY": (660, 1400, 2450),
    "AW": (640, 1100, 2400), "EY": (450, 2000, 2600), "OY": (500, 1000, 2400),
    "L": (360, 1300, 2700), "R": (420, 1300, 1600), "W": (300, 700, 2200), "Y": (280, 2200, 3000),
    "M": (250, 1100, 2200), "N": (250, 1500, 2500), "NG": (250, 2000, 2700),
}
_VOICED_CONS = {"B", "D", "G", "V", "DH", "Z", "ZH", "JH", "M", "N", "NG", "L", "R", "W", "Y"}
_STOPS = {"P", "B", "T", "D", "K", "G"}
_DURATIONS = {  # seconds, typical sung consonants
    "P": 0.06, "B": 0.05, "T": 0.06, "D": 0.05, "K": 0.07, "G": 0.06, "CH": 0.09, "JH": 0.08,
    "F": 0.09, "V": 0.07, "TH": 0.08, "DH": 0.05, "S": 0.11, "Z": 0.08, "SH": 0.11, "ZH": 0.08, "HH": 0.06,
    "M": 0.07, "N": 0.07, "NG": 0.07, "L": 0.06, "R": 0.06, "W": 0.06, "Y": 0.05,
}
# (centre Hz, bandwidth Hz, level dB relative to the vowel peak) of noise consonants
_NOISE = {
    "S": (6000, 2500, -14), "Z": (6000, 2500, -18), "SH": (3000, 1500, -12), "ZH": (3000, 1500, -16),
    "CH": (3200, 1800, -14), "JH": (3000, 1800, -18), "F": (4000, 6000, -30), "V": (4000, 6000, -30),
    "TH": (5000, 6000, -32), "DH": (4000, 6000, -30), "T": (4000, 2500, -20), "D": (3500, 2500, -24),
    "K": (2000, 900, -20), "G": (2000, 900, -24), "P": (1200, 4000, -26), "B": (1000, 4000, -28),
}
# Diphthongs sustain their first vowel and move to the second at the end.
DIPHTHONGS = {"AY": ("AA", "IH"), "AW": ("AA", "UH"), "EY": ("EH", "IY"), "OY": ("AO", "IY"), "OW": ("OW", "UW")}


def _mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def _band_weights(n_env: int, sample_rate: int, n_bins: int = 513) -> np.ndarray:
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    edges = _mel_inv(np.linspace(0.0, _mel(sample_rate / 2.0), n_env + 2))
    w = np.zeros((n_env, n_bins))
    for b in range(n_env):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        w[b] = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
        if w[b].sum() <= 0:
            w[b, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def _resonance_db(f, fc, bw):
    return 10 * np.log10(fc ** 4 / ((fc ** 2 - f ** 2) ** 2 + (f * bw) ** 2 + 1e-12))


#: Mean band level (ln power) of each consonant relative to the vowels' mean, and voicing,
#: measured on sung English (Festival's kal voice in singing mode, 120 files, middle
#: halves of each phone); the shapes come from the formant and noise models below.
_CONSONANT_LEVEL = {
    "B": (-7.7, 0.3), "CH": (-6.3, 0.0), "D": (-6.9, 0.2), "DH": (-5.6, 0.3), "F": (-2.9, 0.0),
    "G": (-7.5, 0.25), "HH": (-2.1, 0.3), "JH": (-5.9, 0.15), "K": (-9.2, 0.0), "L": (-1.7, 0.85),
    "M": (-2.7, 0.65), "N": (-2.6, 0.65), "NG": (-2.4, 0.7), "P": (-9.9, 0.0), "R": (-2.1, 0.95),
    "S": (-1.9, 0.0), "SH": (-1.6, 0.0), "T": (-8.8, 0.0), "TH": (-4.8, 0.0), "V": (-3.9, 0.55),
    "W": (-3.1, 0.9), "Y": (-1.7, 0.9), "Z": (-1.8, 0.7), "ZH": (-2.0, 0.6),
}
#: Mean band level of sung vowels (ln power of audio in [-1, 1], docs/features.md).
VOWEL_LEVEL = -6.0


def fallback_table(sample_rate: int, n_env: int) -> dict:
    """Built-in singer data: phoneme -> (envelope [n_env] ln power, voicing, duration s).

    Shapes from formant frequencies (vowels, approximants, nasals), noise bands
    (fricatives, affricates) and closures with a voice bar (stops); levels and voicing
    measured on sung English (:data:`_CONSONANT_LEVEL`); vowels average
    :data:`VOWEL_LEVEL`; ``sil`` is the features' floor (digital silence)."""
    f = np.linspace(0.0, sample_rate / 2.0, 513)
    w = _band_weights(n_env, sample_rate, 513)
    tilt = -10 * np.log10(1 + (f / 250.0) ** 2)  # glottal source with lip radiation: -6 dB/oct

    def vowel_db(fs, level=0.0):
        db = tilt.copy()
        for fc, bw in zip(tuple(fs) + (3500, 4500), (90, 110, 160, 250, 300)):
            if fc < sample_rate / 2:
                db += _resonance_db(f, fc, bw)
        return db + level

    raw = {}
    for p, fs in _FORMANTS.items():
        if p in ("M", "N", "NG"):
            anti = {"M": 1000, "N": 1800, "NG": 3000}[p]
            raw[p] = vowel_db(fs) - _resonance_db(f, anti, 200) - 12 * (f > 500)
        else:
            raw[p] = vowel_db(fs)
    bar = vowel_db((250, 1500, 2500))
    for p, (fc, bw, _) in _NOISE.items():
        db = 10 * np.log10(1.0 / (1.0 + ((f - fc) / bw) ** 2))
        if p in _STOPS:  # mostly closure: a weak burst, a voice bar for the voiced ones
            db = db - 10
            if p in _VOICED_CONS:
                db = np.maximum(db, bar - bar.max())
        elif p in _VOICED_CONS:
            db = np.maximum(db, bar - bar.max() - 10)
        raw[p] = db
    raw["HH"] = vowel_db(_FORMANTS["AH"]) - tilt  # breath: flat source through the vocal tract
    out = {}
    for p, db in raw.items():
        env = np.log(np.maximum(w @ (10.0 ** (db / 10.0)), 1e-30))
        if p in VOWELS:
            level, voiced = VOWEL_LEVEL, 1.0
        else:
            rel, voiced = _CONSONANT_LEVEL.get(p, (-6.0, 0.0))
            level = VOWEL_LEVEL + rel
        dev = env - env.mean()
        if p in _FORMANTS or p == "HH":
            dev *= 0.5  # the resonance model's peaks and valleys are twice as deep as sung spectra
        out[p] = (np.maximum(dev + level, ENV_FLOOR + 1.0), voiced, _DURATIONS.get(p, 0.2))
    out["sil"] = (np.full(n_env, ENV_FLOOR), 0.0, 0.2)
    return out


def singer_table(config: dict, n_env: int, sample_rate: int) -> tuple:
    """``(table, pitch_range, from_data)`` for a preset config: its singer data where
    present and consistent, every missing phoneme from :func:`fallback_table` shifted to
    the data's level."""
    fb = fallback_table(sample_rate, n_env)
    data = config.get("singer") or {}
    try:
        phon = list(data["phonemes"])
        envs = np.asarray(data["envelopes"], np.float64)
        if envs.shape != (len(phon), n_env) or not np.all(np.isfinite(envs)):
            raise ValueError
        voic = np.asarray(data.get("voicing", [1.0] * len(phon)), np.float64)
        durs = np.asarray(data.get("durations", [0.1] * len(phon)), np.float64)
        if voic.shape != (len(phon),) or durs.shape != (len(phon),):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return fb, None, False
    table = {}
    for i, p in enumerate(phon):
        p = str(p)
        p = "sil" if p.lower() in ("sil", "sp", "pau", "") else p.upper().rstrip("012")
        table[p] = (envs[i].copy(), float(np.clip(voic[i], 0, 1)), float(np.clip(durs[i], 0.02, 0.25)))
    vow = [table[p][0].mean() for p in VOWELS if p in table]
    shift = (float(np.mean(vow)) - float(np.mean([fb[p][0].mean() for p in VOWELS]))) if vow else 0.0
    for p, (env, v, d) in fb.items():
        if p not in table:
            table[p] = (env + (shift if p != "sil" else 0.0), v, d)
    pr = data.get("pitch_range")
    try:
        pr = (float(pr[0]), float(pr[1])) if pr is not None else None
    except (TypeError, ValueError, IndexError):
        pr = None
    return table, pr, True


def build_singer_data(items, hop_seconds: float, pitch_range=None) -> dict:
    """Singer data (``docs/features.md``) from a corpus: ``items`` are ``(features,
    phones)`` pairs, ``features`` float ``[frames, 2 + n_env]`` from
    :func:`vocoder.features.extract` and ``phones`` ``[[ARPAbet, start_s, end_s], ...]``.

    Per phoneme: the median envelope and the voiced fraction over the middle half of
    each occurrence, the median duration. Frames no phone covers (or labelled ``sil``,
    ``sp``, ``pau``) are silence. ``pitch_range`` defaults to the 5th..95th percentile of
    the voiced f0, rounded outwards; ``level`` is the median band mean of voiced frames.
    """
    envs, voic, durs = {}, {}, {}
    voiced_f0, voiced_lvl = [], []
    n_env = None
    for feats, phones in items:
        f = np.asarray(feats, np.float64)
        if f.ndim != 2 or f.shape[1] < 3:
            raise ValueError(f"features: expected [frames, 2 + n_env], got {f.shape}")
        if n_env is None:
            n_env = f.shape[1] - 2
        elif f.shape[1] - 2 != n_env:
            raise ValueError("features: every item must have the same number of envelope bands")
        covered = np.zeros(len(f), bool)
        for p, s, e in phones:
            p = str(p).strip()
            p = "sil" if p.lower() in ("sil", "sp", "pau", "") else p.upper().rstrip("012")
            a, b = int(round(s / hop_seconds)), int(round(e / hop_seconds))
            a, b = max(0, a), min(len(f), b)
            if b <= a:
                continue
            if p != "sil":
                covered[a:b] = True
            q = (b - a) // 4
            mid = f[a + q:b - q] if b - a >= 4 else f[a:b]
            envs.setdefault(p, []).append(mid[:, 2:])
            voic.setdefault(p, []).append(mid[:, 1])
            durs.setdefault(p, []).append(e - s)
        rest = f[~covered]
        if len(rest):
            envs.setdefault("sil", []).append(rest[:, 2:])
            voic.setdefault("sil", []).append(rest[:, 1])
        v = f[:, 1] > 0.5
        voiced_f0.append(f[v, 0])
        voiced_lvl.append(f[v, 2:].mean(axis=1))
    if n_env is None:
        raise ValueError("no items")
    names = sorted(envs, key=lambda p: (p == "sil", p))
    f0 = np.concatenate(voiced_f0) if voiced_f0 else np.zeros(0)
    if pitch_range is None:
        pitch_range = [int(np.floor(np.percentile(f0, 5))), int(np.ceil(np.percentile(f0, 95)))] if len(f0) else None
    lvl = np.concatenate(voiced_lvl) if voiced_lvl else np.zeros(0)
    return {
        "version": 1,
        "n_env": int(n_env),
        "phonemes": names,
        "envelopes": [np.median(np.concatenate(envs[p]), axis=0).round(4).tolist() for p in names],
        "voicing": [round(float(np.mean(np.concatenate(voic[p]))), 4) for p in names],
        "durations": [round(float(np.median(durs[p])), 4) if p in durs else 0.2 for p in names],
        "pitch_range": list(pitch_range) if pitch_range is not None else None,
        "level": round(float(np.median(lvl)), 4) if len(lvl) else None,
    }


# --------------------------------------------------------------------------- timelines


class _Chain:
    """A value over time: from ``base``, each point ``(t0, w, v)`` (in t0 order) moves the
    value to ``v`` between ``t0`` and ``t0 + w`` (linear, or smoothstep)."""

    def __init__(self, base):
        self.base = np.asarray(base, np.float64)
        self.pts = []     # (t0, seq, w, value, smooth)
        self._seq = 0

    def add(self, t0, w, value, smooth=False):
        self._seq += 1
        bisect.insort(self.pts, (float(t0), self._seq, max(0.0, float(w)), np.asarray(value, np.float64), smooth))

    def last(self):
        return self.pts[-1][3] if self.pts else self.base

    def eval(self, t):
        e = np.broadcast_to(self.base, t.shape + self.base.shape).astype(np.float64)
        for t0, _, w, v, smooth in self.pts:
            if t0 > t[-1]:
                break
            if w <= 0:
                a = (t >= t0).astype(np.float64)
            else:
                a = np.clip((t - t0) / w, 0.0, 1.0)
                if smooth:
                    a = a * a * (3.0 - 2.0 * a)
            if self.base.ndim:
                a = a[:, None]
            e = e + (v - e) * a
        return e

    def prune(self, t):
        """Forget points that are complete before ``t`` (exact for times >= t)."""
        j = -1
        for k, (t0, _, w, v, _) in enumerate(self.pts):
            if t0 + w <= t:
                j = k
        if j >= 0:
            self.base = self.pts[j][3]
            del self.pts[:j + 1]


@dataclass
class _Voice:
    """The note the plan is on."""

    note: int
    pitch: float
    syllable: Syllable
    vowel_start: float
    vib: list            # its vibrato interval [start, end, rate]
    released: bool = False


class Singer:
    """Streaming front end: :meth:`push` events, take :meth:`frames`.

    Args:
        preset: a :class:`vocoder.Preset` or its config dict (needs ``sample_rate``,
            ``hop``, ``feature_names`` = f0, voicing, env0..; ``singer`` data optional).
        seed: seeds the pitch drift and vibrato rate variation (deterministic).
        transpose: semitones added to every note.
        lyrics: text for the lyric cursor (see :meth:`set_lyrics`).
        options: :class:`SingerOptions`, or keyword overrides of its fields.
    """

    def __init__(self, preset, seed: int = 0, transpose: int = 0, lyrics: str | None = None,
                 options: SingerOptions | None = None, **overrides):
        cfg = preset.config if hasattr(preset, "config") else dict(preset)
        try:
            self.sample_rate = int(cfg["sample_rate"])
            self.hop = int(cfg["hop"])
            names = list(cfg["feature_names"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"Singer: the preset config lacks {e}") from None
        n_env = len(names) - 2
        if names[:2] != ["f0", "voicing"] or n_env < 1 or names[2:] != [f"env{i}" for i in range(n_env)]:
            raise ValueError("Singer: the preset's features must be f0, voicing, env0..envN-1 "
                             f"(docs/features.md), got {names[:4]}{'...' if len(names) > 4 else ''}")
        self.n_env = n_env
        self.n_features = len(names)
        self.options = options or SingerOptions()
        if overrides:
            valid = {f.name for f in fields(SingerOptions)}
            bad = sorted(set(overrides) - valid)
            if bad:
                raise TypeError(f"Singer: unknown option(s) {', '.join(bad)}")
            self.options = replace(self.options, **overrides)
        self.seed = int(seed)
        self.transpose = int(transpose)
        self.table, self.pitch_range, self.has_singer_data = singer_table(cfg, n_env, self.sample_rate)
        self._vec = {p: np.concatenate([[v], env]) for p, (env, v, _) in self.table.items()}
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x51_6E_67])
        self._drift = (rng.uniform(0.06, 0.35, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.0, 3))
        self._drift_norm = float(self._drift[2].sum())
        self._rate_rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x76_69_62])
        self._initial_lyrics = lyrics
        self.reset()

    # ---- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Back to time 0 with no events, the lyric cursor refilled from ``lyrics``."""
        self.frame = 0
        self._pending = []          # sorted by (time, order, seq)
        self._seq = 0
        self._cursor = []
        self._phones = _Chain(self._vec["sil"])
        self._pitch = _Chain(60.0)
        self._gain = _Chain(0.0)       # dB from velocity
        self._cc = {CC_MODULATION: _Chain(0.0), CC_EXPRESSION: _Chain(127.0), CC_BREATH: _Chain(127.0)}
        self._bend = _Chain(0.0)
        self._bend_range = _Chain(self.options.bend_range)   # RPN 0 sets it
        self._rpn = [127, 127]
        self._vib = []                 # [start, end, rate]
        self._voice = None
        self._held = []
        self._free_at = 0.0            # end of the last release (consonants start after it)
        self._any_note = False
        self._rate_rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x76_69_62])
        if self._initial_lyrics:
            self.set_lyrics(self._initial_lyrics)

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    @property
    def time(self) -> float:
        """Start time (s) of the next frame :meth:`frames` returns."""
        return self.frame * self.hop / self.sample_rate

    @property
    def sounding(self) -> bool:
        """A note is on (or planned to be) and not released."""
        return self._voice is not None and not self._voice.released

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    # ---- lyrics ----------------------------------------------------------------------
    def set_lyrics(self, text: str) -> None:
        """Replace the lyric cursor with the syllables of ``text`` (one per note; see
        :func:`vocoder.lyrics.text_syllables`)."""
        self._cursor = list(_lyrics.text_syllables(text or ""))

    def add_lyrics(self, text: str) -> None:
        """Append the syllables of ``text`` to the lyric cursor."""
        self._cursor.extend(_lyrics.text_syllables(text or ""))

    @property
    def upcoming_syllables(self) -> list:
        """The syllables the cursor will give, next first."""
        return list(self._cursor)

    def _next_syllable(self) -> Syllable:
        while self._cursor:
            s = self._cursor.pop(0)
            if not s.melisma:
                return s
        return _lyrics.default_syllable()

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
            hint = (f"; --transpose {k + self.transpose:+d} fits {fit} of {len(ps)}"
                    + (f" (instead of {self.transpose:+d})" if self.transpose else "")
                    + ", or give --transpose auto")
        else:
            hint = "; no octave shift fits more of them"
        return (f"{len(below) + len(above)} of {len(ps)} notes lie outside the voice's trained range "
                f"{note_name(lo)}..{note_name(hi)}: {span}; they may sound poor{hint}")

    # ---- frames ----------------------------------------------------------------------
    def frames(self, n: int) -> np.ndarray:
        """The next ``n`` frames, float32 ``[n, n_features]``; advances :attr:`time`."""
        n = int(n)
        if n < 0:
            raise ValueError("frames: n must be >= 0")
        out = np.empty((n, self.n_features), np.float32)
        if n == 0:
            return out
        fs = self.frame_seconds
        t_start = self.frame * fs
        t_end = (self.frame + n) * fs
        if not self._any_note and not self._pitch.pts:
            first = next((e for _, _, e in self._pending if e.kind == NOTE_ON and e.velocity > 0), None)
            if first is not None:
                self._pitch.base = np.asarray(float(first.note + self.transpose))
        while self._pending and self._pending[0][2].time - LEAD <= t_end:
            _, _, ev = self._pending.pop(0)
            self._plan(ev, max(ev.time - LEAD, t_start))
        t = (self.frame + 0.5 + np.arange(n)) * fs
        ph = self._phones.eval(t)
        out[:, 1] = np.clip(ph[:, 0], 0.0, 1.0)
        gain = self._gain.eval(t) + self._cc_db(t)
        out[:, 2:] = np.maximum(ph[:, 1:] + gain[:, None] * LN10_10, ENV_FLOOR)
        out[:, 0] = np.clip(self._f0(t), 12.0, 120.0)
        self.frame += n
        for c in (self._phones, self._pitch, self._gain, self._bend, self._bend_range, *self._cc.values()):
            c.prune(t_end)
        self._vib = [v for v in self._vib if v[1] > t_end]
        return out

    def render_song(self, events, duration: float) -> np.ndarray:
        """All frames of ``duration`` seconds for ``events`` (resets first)."""
        self.reset()
        self.push_many(events)
        n = int(math.ceil(duration / self.frame_seconds - 1e-9))
        out = np.empty((n, self.n_features), np.float32)
        for a in range(0, n, 256):  # blocks keep the timelines short (same frames as one call)
            out[a:a + 256] = self.frames(min(256, n - a))
        return out

    # ---- evaluation --------------------------------------------------------------------
    def _cc_db(self, t):
        db = np.zeros_like(t)
        for c in (CC_EXPRESSION, CC_BREATH):
            v = self._cc[c].eval(t)
            db += self.options.cc_db * np.log10(np.maximum(v, 1.0) / 127.0)
        return db

    def _f0(self, t):
        o = self.options
        f0 = self._pitch.eval(t) + self._bend.eval(t) * self._bend_range.eval(t)
        freqs, phases, amps = self._drift
        drift = (amps[None, :] * np.sin(2 * np.pi * freqs[None, :] * t[:, None] + phases[None, :])).sum(1)
        f0 = f0 + drift * (o.drift_cents / 100.0) / self._drift_norm
        if self._vib:
            mod = self._cc[CC_MODULATION].eval(t) / 127.0 * o.mod_depth
            for start, end, rate in self._vib:
                if start >= t[-1] or end <= t[0]:
                    continue
                dt = t - start
                ramp = np.clip((dt - o.vibrato_delay) / max(o.vibrato_attack, 1e-6), 0.0, 1.0)
                fade = np.clip((end - t) / 0.05, 0.0, 1.0) * np.clip(dt / 0.05, 0.0, 1.0)
                depth = (o.vibrato_depth * ramp + mod) * fade
                inside = (t >= start) & (t < end)
                f0 = f0 + np.where(inside, depth * np.sin(2 * np.pi * rate * dt), 0.0)
        return f0

    # ---- planning ----------------------------------------------------------------------
    def _dur(self, p: str) -> float:
        return self.table.get(p, self.table["sil"])[2] * self.options.consonant_scale

    def _phone(self, boundary: float, p: str, now: float, width: float) -> None:
        """The spectrum moves to phoneme ``p``, centred on ``boundary``."""
        if p not in self._vec:
            p = "AH" if p in VOWELS else "sil"
        w = max(width, 1e-3)
        t0 = max(boundary - w / 2, now)
        if self._phones.pts:  # never before the phoneme planned last (a short burst must not hide the vowel)
            t0 = max(t0, self._phones.pts[-1][0])
        self._phones.add(t0, w, self._vec[p])

    def _consonants(self, phones, start: float, scale: float, now: float) -> float:
        """Lay consonants from ``start``; returns their end."""
        t = start
        tw = self.options.transition
        for p in phones:
            d = self._dur(p) * scale
            self._phone(t, p, now, min(tw, 0.6 * d))
            t += d
        return t

    def _sustain(self, nucleus: str, at: float, now: float) -> None:
        """The vowel from ``at`` (a diphthong's first part; :meth:`_closing` adds the rest)."""
        self._phone(at, DIPHTHONGS.get(nucleus, (nucleus,))[0], now, self.options.transition)

    def _offglide(self, syl: Syllable) -> tuple:
        d = DIPHTHONGS.get(syl.nucleus)
        return (d[1],) if d else ()

    def _closing(self, syl: Syllable) -> tuple:
        """Phones that end a syllable: a diphthong's second vowel, then the coda."""
        return self._offglide(syl) + tuple(syl.coda)

    def _cluster_dur(self, phones) -> float:
        return sum(0.08 if p in VOWELS else self._dur(p) for p in phones)

    def _lay(self, phones, start, scale, now):
        t = start
        for p in phones:
            if p in VOWELS:  # a diphthong's off-glide
                d = 0.08 * scale
                self._phone(t + 0.3 * d, p, now, d)
                t += d
            else:
                t = self._consonants((p,), t, scale, now)
        return t

    def _plan(self, ev: Event, now: float) -> None:
        k = ev.kind
        if k == NOTE_ON and ev.velocity > 0:
            self._note_on(ev, now)
        elif k == NOTE_OFF or k == NOTE_ON:
            self._note_off(ev, now)
        elif k == PITCH_BEND:
            self._bend.add(max(ev.time, now), 0.0, ev.value)
        elif k == CONTROL:
            if ev.control in self._cc:
                self._cc[ev.control].add(max(ev.time, now), 0.01, min(max(ev.value, 0.0), 127.0))
            elif ev.control in (101, 100):  # registered parameter number, MSB / LSB
                self._rpn[ev.control == 100] = int(ev.value)
            elif ev.control == 6 and self._rpn == [0, 0]:  # data entry for RPN 0: bend range
                self._bend_range.add(max(ev.time, now), 0.0, min(max(ev.value, 0.0), 48.0))
            elif ev.control == CC_ALL_NOTES_OFF or ev.control == 120:
                self._held.clear()
                if self.sounding:
                    self._release(max(ev.time, now), now)
        elif k == LYRIC:
            self.add_lyrics(ev.text)

    def _vel_db(self, velocity: int) -> float:
        return self.options.velocity_db * math.log10(max(int(velocity), 1) / 100.0)

    def _note_on(self, ev: Event, now: float) -> None:
        o = self.options
        T = max(ev.time, now)
        pitch = float(ev.note + self.transpose)
        self._held = [n for n in self._held if n != ev.note] + [ev.note]
        v = self._voice
        legato = v is not None and not v.released
        syl = ev.syllable
        if syl is None:
            syl = v.syllable if legato else self._next_syllable()
            if legato:
                syl = Syllable(melisma=True)
        elif syl.melisma and v is None:
            syl = _lyrics.default_syllable()
        vel_db = self._vel_db(ev.velocity)
        self._any_note = True
        if legato:
            glide_t0 = max(T - o.portamento / 2, now)
            if syl.melisma:
                if abs(v.pitch - pitch) < 1e-9:  # a re-struck note on the same vowel: a small dip
                    self._gain.add(max(T - 0.03, now), 0.03, self._gain.last() - 6.0)
                self._gain.add(T, 0.04, vel_db)
                self._pitch.add(glide_t0, o.portamento, pitch, smooth=True)
                v.vib[1] = T
                vib = [T, math.inf, self._vib_rate()]
                self._vib.append(vib)
                self._voice = _Voice(ev.note, pitch, v.syllable, T, vib)
                return
            # a new syllable on a legato note: the coda and the onset share the time before T
            phones = self._closing(v.syllable) + tuple(syl.onset)
            d = self._cluster_dur(phones)
            room = T - max(now, v.vowel_start + 0.5 * max(T - v.vowel_start, 0.0))
            scale = min(1.0, max(0.4, room / d)) if d > 0 else 1.0
            start = max(T - d * scale, now)
            end = self._lay(phones, start, scale, now)
            vowel_at = max(end, T) if phones else T
            self._sustain(syl.nucleus, vowel_at, now)
            self._pitch.add(glide_t0, o.portamento, pitch, smooth=True)
            self._gain.add(max(start, now), 0.04, vel_db)
            v.vib[1] = start
            vib = [vowel_at, math.inf, self._vib_rate()]
            self._vib.append(vib)
            self._voice = _Voice(ev.note, pitch, syl, vowel_at, vib)
            return
        # attack after silence
        if syl.melisma:
            syl = _lyrics.default_syllable()
        d = self._cluster_dur(syl.onset)
        room = T - max(now, self._free_at)
        scale = min(1.0, max(0.5, room / d)) if d > 0 else 1.0
        start = max(T - d * scale, now, self._free_at)
        end = self._lay(syl.onset, start, scale, now)
        vowel_at = max(end, T)
        self._sustain(syl.nucleus, vowel_at, now)
        if abs(float(self._pitch.last()) - pitch) > 1e-9:
            if not self._pitch.pts and self._voice is None:
                self._pitch.add(now, 0.0, pitch)
            else:
                t0 = max(now, min(start, vowel_at - 0.02))
                self._pitch.add(t0, max(vowel_at - t0, 0.01), pitch)
        self._gain.add(max(start - 0.01, now), 0.01, vel_db)
        vib = [vowel_at, math.inf, self._vib_rate()]
        self._vib.append(vib)
        self._voice = _Voice(ev.note, pitch, syl, vowel_at, vib)

    def _vib_rate(self) -> float:
        return self.options.vibrato_rate * float(self._rate_rng.uniform(0.94, 1.06))

    def _note_off(self, ev: Event, now: float) -> None:
        self._held = [n for n in self._held if n != ev.note]
        v = self._voice
        if v is None or v.released or ev.note != v.note:
            return
        T = max(ev.time, now)
        if self._held:  # live: back to a key still held, without re-articulating
            back = self._held[-1]
            self._held.pop()
            self._note_on(Event.note_on(T, back, 100, Syllable(melisma=True)), now)
            self._held.append(back)
            return
        nxt = self._next_note_on()
        if nxt is not None and nxt.time <= T + self.options.legato_gap:
            return  # the next note joins this one (planned when it comes)
        self._release(T, now, nxt)

    def _next_note_on(self):
        for _, _, e in self._pending:
            if e.kind == NOTE_ON and e.velocity > 0:
                return e
        return None

    def _release(self, T: float, now: float, nxt=None) -> None:
        o = self.options
        v = self._voice
        phones = self._closing(v.syllable)
        d = self._cluster_dur(phones)
        room = T - max(now, v.vowel_start + 0.5 * max(T - v.vowel_start, 0.0))
        scale = min(1.0, max(0.4, room / d)) if d > 0 else 1.0
        start = max(T - d * scale, now)
        end = self._lay(phones, start, scale, now)
        self._phone(end + o.release / 2, "sil", now, o.release)
        v.vib[1] = start
        v.released = True
        self._free_at = end + o.release
        self._held = []
        if nxt is not None:  # f0 runs straight to the next note across the rest
            target = float(nxt.note + self.transpose)
            if nxt.time > start:
                self._pitch.add(start, nxt.time - start, target)


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


__all__ = ["Singer", "SingerOptions", "fallback_table", "singer_table", "build_singer_data", "best_octave_shift",
           "note_name", "LEAD"]
